#!/usr/bin/env python3
"""Resident stack per idle /ws socket (docs/PERFORMANCE.md "Resident stack per idle socket").

usage: python3 bench/idle_stack.py SERVER_BIN [N=2000]

Starts SERVER_BIN on 127.0.0.1:18931 with a fresh DATA_DIR, registers one account, opens N
idle /ws sockets (each waits for its `ready`), and compares /proc/PID/smaps with none open:
the RSS added per socket, and the mean Rss of the mappings of exactly
CONNECTION_STACK_BYTES (256 KiB), which are the connection threads' stacks. Stops the server
by its PID. Needs `ulimit -n` above N.
"""
import base64, json, os, socket, subprocess, sys, tempfile, time

BIN = sys.argv[1]
N = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
PORT = 18931
STACK = 256 * 1024  # src/http/limits.rs CONNECTION_STACK_BYTES

def smaps(pid):
    total = stack = stacks = size = 0
    for line in open(f"/proc/{pid}/smaps"):
        parts = line.split()
        if len(parts) >= 5 and "-" in parts[0] and ":" not in parts[0]:
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            size = hi - lo
        elif parts and parts[0] == "Rss:":
            total += int(parts[1])
            if size == STACK:
                stack += int(parts[1])
                stacks += 1
    return total, stack, stacks

def main():
    env = dict(os.environ, LISTEN_ADDR=f"127.0.0.1:{PORT}", DATA_DIR=tempfile.mkdtemp(),
               REGISTRATION="open", MAX_CONNECTIONS_PER_IP="100000", LOG_LEVEL="warn")
    server = subprocess.Popen([BIN], env=env)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        body = json.dumps({"username": "measure", "password": "a-long-password-1"}).encode()
        s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
        s.sendall(b"POST /api/register HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                  b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        resp = b""
        while chunk := s.recv(65536):
            resp += chunk
        token = json.loads(resp.split(b"\r\n\r\n", 1)[1])["token"]
        time.sleep(1)
        t0, s0, n0 = smaps(server.pid)
        sockets = []
        for _ in range(N):
            c = socket.create_connection(("127.0.0.1", PORT), timeout=10)
            key = base64.b64encode(os.urandom(16)).decode()
            c.sendall((f"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n"
                       f"Authorization: Bearer {token}\r\n\r\n").encode())
            got = b""
            while b'"ready"' not in got:
                got += c.recv(65536)
            sockets.append(c)
        time.sleep(2)
        t1, s1, n1 = smaps(server.pid)
        print(json.dumps({
            "sockets": N,
            "rss_kib_per_socket": round((t1 - t0) / N, 2),
            # A few stacks share a mapping with a neighbour and are not counted.
            "stack_mappings_counted": n1 - n0,
            "resident_stack_kib_per_socket": round((s1 - s0) / max(1, n1 - n0), 2),
        }))
    finally:
        server.kill()
        server.wait()

main()
