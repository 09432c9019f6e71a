#!/usr/bin/env bash
# bench/sfu.sh — the media server under load, side by side with Janus's VideoRoom (issue 16,
# docs/PERFORMANCE.md "Media server").
#
# For each N (default 10 25 50) and each target (mini-discord in `sfu` mode, Janus
# VideoRoom), starts the server alone on core 1 (`taskset -c 1`), runs bench/sfuload on
# core 0 with N participants (50 Opus-sized packets/s each, participant 0 also 2.5 Mbit/s
# of video), and prints one RESULT line per run: server CPU per forwarded packet, forwarded
# packets/s, audio latency p50/p99 (send → receive through the server, one clock) and loss,
# and the load tool's own CPU (when it nears 1 core, the tool is the limit: stop there).
# Then the ratios mini-discord / Janus per N.
#
#   bash bench/sfu.sh                  # N = 10 25 50, 20 s windows (quiet machine only)
#   SMOKE=1 bash bench/sfu.sh          # N = 10, 5 s: proves the tools work; not quotable
#   NS="10 25" DURATION=10 TARGETS=janus bash bench/sfu.sh
#
# Needs: root for `apt-get install janus` the first time (Debian's janus 1.1.x), taskset
# (util-linux), and 2 cores. Everything stays on this machine (the host's own address, BIND). Results: bench/results/sfu-<time>/.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
if [ "${SMOKE:-0}" = 1 ]; then NS=${NS:-10}; DURATION=${DURATION:-5}; fi
NS=${NS:-"10 25 50"}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-3}
TARGETS=${TARGETS:-"ours janus"}
# Janus (libnice) gathers no loopback candidates, so every side uses the host's own IPv4
# address: packets to it never leave the machine (the kernel delivers them locally, as lo).
BIND=${BIND:-$(ip -4 -o addr show scope global 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | head -1)}
BIND=${BIND:-127.0.0.1}
OUT="$HERE/results/sfu-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
JSON="$OUT/results.jsonl"
PIDS=()
DIRS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  for d in "${DIRS[@]}"; do rm -rf "$d"; done
}
trap cleanup EXIT

cores=$(nproc)
[ "$cores" -ge 2 ] || { echo "sfu.sh: needs 2 cores (server on core 1, load on core 0)"; exit 1; }

echo "== building bench/sfuload (release)"
cargo build --release --manifest-path "$HERE/Cargo.toml" -p sfuload >"$OUT/build.log" 2>&1 \
  || { tail -30 "$OUT/build.log"; exit 1; }
LOAD="$HERE/target/release/sfuload"

# --- Janus ------------------------------------------------------------------------------
janus_conf() { # a private config folder: only the VideoRoom plugin and the WebSocket transport
  local d=$1 port=$2
  mkdir -p "$d"
  local libdir
  libdir=$(dirname "$(dpkg -L janus 2>/dev/null | grep -m1 'plugins/libjanus_videoroom.so')")
  local trdir
  trdir=$(dirname "$(dpkg -L janus 2>/dev/null | grep -m1 'transports/libjanus_websockets.so')")
  cat >"$d/janus.jcfg" <<EOF
general: {
	configs_folder = "$d"
	plugins_folder = "$libdir"
	transports_folder = "$trdir"
	log_to_stdout = true
	debug_level = 3
	admin_secret = "bench-only"
}
media: {
	rtp_port_range = "40000-45000"
}
nat: {
	# Host candidates on the one local address the load tool uses (libnice skips loopback).
	ice_enforce_list = "$BIND"
	ignore_mdns = true
}
plugins: {
	disable = "libjanus_audiobridge.so,libjanus_echotest.so,libjanus_recordplay.so,libjanus_sip.so,libjanus_nosip.so,libjanus_streaming.so,libjanus_textroom.so,libjanus_videocall.so,libjanus_voicemail.so,libjanus_duktape.so,libjanus_lua.so"
}
transports: {
	disable = "libjanus_http.so,libjanus_pfunix.so,libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_rabbitmq.so"
}
events: {
	broadcast = false
}
EOF
  cat >"$d/janus.transport.websockets.jcfg" <<EOF
general: {
	ws = true
	ws_port = $port
	ws_ip = "127.0.0.1"
	wss = false
}
admin: {
	admin_ws = false
}
EOF
  cat >"$d/janus.plugin.videoroom.jcfg" <<EOF
general: {
}
EOF
}

run_janus() { # run_janus N
  local n=$1 port=$((18188 + RANDOM % 1000)) d="$OUT/janus-conf"
  if ! command -v janus >/dev/null 2>&1; then
    echo "== installing Debian's janus (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq janus >"$OUT/apt.log" 2>&1 \
      || { tail -20 "$OUT/apt.log"; return 1; }
  fi
  janus_conf "$d" "$port"
  taskset -c 1 janus -F "$d" -C "$d/janus.jcfg" >"$OUT/janus-$n.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 100); do
    grep -q "WebSockets server started" "$OUT/janus-$n.log" 2>/dev/null && break
    sleep 0.1
  done
  taskset -c 0 "$LOAD" --target janus --url "ws://127.0.0.1:$port" --n "$n" \
    --duration "$DURATION" --warmup "$WARMUP" --server-pid "$pid" --json "$JSON" --bind "$BIND" \
    --label "janus/n$n" 2>&1 | tee -a "$OUT/sfuload.log"
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
}

# --- mini-discord ----------------------------------------------------------------------------
run_ours() { # run_ours N
  local n=$1
  local bin=${SERVER_BIN:-$ROOT/target/release/mini-discord}
  if [ ! -x "$bin" ]; then
    (cd "$ROOT" && cargo build --release >"$OUT/server-build.log" 2>&1) || { tail -20 "$OUT/server-build.log"; return 1; }
  fi
  local data; data=$(mktemp -d /tmp/sfu-bench.XXXXXX)
  DIRS+=("$data")
  # The media port binds the HTTP listen address (src/media/mod.rs `bind`), so the server
  # listens on BIND too: the load tool's UDP sockets are there. Its N registrations come
  # from BIND, each "through a proxy" with its own X-Forwarded-For (TRUSTED_PROXIES), past
  # the per-address registration limit. LOG_LEVEL=info: the "listening on" line is info.
  (cd "$data" && exec env -i PATH="$PATH" LISTEN_ADDR="$BIND:0" DATA_DIR="$data" REGISTRATION=open \
    TRUSTED_PROXIES="$BIND" SFU_UDP_PORT=0 SFU_PUBLIC_IP="$BIND" SFU_MAX_PEERS=100 LOG_LEVEL=info \
    taskset -c 1 "$bin") >"$OUT/server-$n.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  local addr=""
  for _ in $(seq 100); do
    addr=$(grep -oE 'listening on [0-9.:]+' "$OUT/server-$n.log" 2>/dev/null | head -1 | awk '{print $3}')
    [ -n "$addr" ] && break
    sleep 0.1
  done
  [ -n "$addr" ] || { echo "sfu.sh: mini-discord did not start:"; tail -20 "$OUT/server-$n.log"; kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$data"; return 1; }
  # Bounded: setup (30 s + 2 s per participant at most), warm-up, window, drain. In the
  # background and waited for, so an interrupted script's trap ends the tool too.
  timeout -k 5 $((60 + 2 * n + ${WARMUP%.*} + ${DURATION%.*})) taskset -c 0 "$LOAD" --target ours --url "http://$addr" --n "$n" \
    --duration "$DURATION" --warmup "$WARMUP" --server-pid "$pid" --json "$JSON" --bind "$BIND" \
    --label "ours/n$n" > >(tee -a "$OUT/sfuload.log") 2>&1 &
  local load=$!
  PIDS+=("$load")
  wait "$load"
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  rm -rf "$data"
}

for n in $NS; do
  for t in $TARGETS; do
    echo "== $t, N=$n, ${DURATION}s window"
    "run_$t" "$n"
  done
done

echo "== results ($JSON)"
python3 - "$JSON" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {(r["target"], r["n"]): r for r in rows}
print("| target | N | up | fwd pkt/s | server cores | µs CPU / fwd pkt | audio p50 / p99 (µs) | loss | load cores |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    la = r["audio_latency_us"]
    print(f"| {r['target']} | {r['n']} | {r['connections_up']}/{r['connections']} | {r['forwarded_pps']:.0f} | "
          f"{r['server_cores']:.2f} | {r['server_cpu_us_per_packet']:.2f} | {la['p50']} / {la['p99']} | "
          f"{r['audio_loss']:.4f} | {r['load_cores']:.2f} |")
for n in sorted({r["n"] for r in rows}):
    o, j = by.get(("ours", n)), by.get(("janus", n))
    if o and j and j["server_cpu_us_per_packet"] > 0:
        print(f"N={n}: CPU per forwarded packet ours/janus = "
              f"{o['server_cpu_us_per_packet'] / j['server_cpu_us_per_packet']:.2f}; "
              f"p99 ours/janus = {o['audio_latency_us']['p99'] / max(1, j['audio_latency_us']['p99']):.2f}")
PY
