#!/usr/bin/env bash
# tests/deploy/compose_check.sh — static checks of the deployment files (no Docker engine
# needed): docker-compose.yml, deploy/turnserver.conf, Dockerfile, .dockerignore and
# .env.example agree with each other and with the contract in the API ("Configuration",
# "ICE servers").
#
#  1. `docker compose config` (or docker-compose v1) validates the compose file, when such
#     a client is installed (it works without an engine); otherwise that one check is
#     skipped and the PyYAML checks below still run.
#  2. PyYAML checks: services, container names, ports, image pin >= 4.10.0, volumes,
#     healthcheck, env_file; relay range == min-port/max-port of turnserver.conf.
#  3. turnserver.conf: no allow-loopback-peers, use-auth-secret, every required denied range.
#  4. The `turn` service's start script, run under /bin/sh with stub turnserver and
#     detect-external-ip: writes the secret/external IP into a private config, refuses
#     an empty or placeholder TURN_SECRET.
#  5. Dockerfile / .dockerignore / .env.example contents.
#  6. The media server (issue 16): the app publishes exactly one UDP port, equal to its
#     SFU_UDP_PORT setting (and to .env.example's), clear of coturn's ports; coturn's one
#     allowed-peer-ip is the app's fixed address on the network both share, inside its
#     subnet and inside a denied range (so the exception is needed and nothing else opens).
#  7. Mutations: a copy of the files with ONE of those changed alone (the published port,
#     the setting, the allowed peer, the app's address) must make these checks fail.
#
# Usage: bash tests/deploy/compose_check.sh        Final line: compose_check: N passed, M failed
# COMPOSE_CHECK_ROOT=<dir> checks the files in <dir> instead (used by step 7).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=${COMPOSE_CHECK_ROOT:-$(cd "$HERE/../.." && pwd)}
WORK=$(mktemp -d /tmp/compose_check.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

PASS=0; FAIL=0; SKIP=0

# --- 1. compose CLI validation ------------------------------------------------------------
# Validate in a scratch copy, with .env taken from .env.example (env_file: .env must exist).
mkdir -p "$WORK/proj/deploy"
cp "$ROOT/docker-compose.yml" "$WORK/proj/" 2>/dev/null
cp "$ROOT/.env.example" "$WORK/proj/.env" 2>/dev/null
cp "$ROOT/deploy/turnserver.conf" "$WORK/proj/deploy/" 2>/dev/null
compose_cli=""
if timeout 10 docker compose version >/dev/null 2>&1; then
  compose_cli="docker compose"
elif command -v docker-compose >/dev/null 2>&1 && timeout 20 docker-compose version >/dev/null 2>&1; then
  compose_cli="docker-compose"
fi
if [ -n "$compose_cli" ]; then
  if (cd "$WORK/proj" && timeout 30 $compose_cli -f docker-compose.yml config >"$WORK/config.out" 2>&1); then
    PASS=$((PASS + 1)); echo "ok   - '$compose_cli config' accepts docker-compose.yml"
  else
    FAIL=$((FAIL + 1)); echo "FAIL - '$compose_cli config' rejects docker-compose.yml:"; sed 's/^/    /' "$WORK/config.out"
  fi
else
  SKIP=$((SKIP + 1)); echo "skip - no docker compose / docker-compose client installed (PyYAML checks still run)"
fi

# --- 2..5. PyYAML checks ------------------------------------------------------------------
PY=python3
if ! $PY -c 'import yaml' 2>/dev/null; then
  timeout 120 $PY -m pip install -q pyyaml >/dev/null 2>&1 \
    || timeout 120 $PY -m pip install -q --break-system-packages pyyaml >/dev/null 2>&1
fi
if ! $PY -c 'import yaml' 2>/dev/null; then
  echo "FAIL - PyYAML is not available and could not be installed"
  echo "compose_check: $PASS passed, $((FAIL + 1)) failed"; exit 1
fi

ROOT="$ROOT" WORK="$WORK" timeout 60 $PY - <<'PYEOF' >"$WORK/py.out" 2>&1
import os, re, stat, subprocess, sys
import yaml

ROOT = os.environ["ROOT"]; WORK = os.environ["WORK"]
results = []
def check(name, cond, detail=""):
    results.append(bool(cond))
    print(("ok   - " if cond else "FAIL - ") + name + ("" if cond or not detail else f"  [{detail}]"))

def read(p):
    try:
        with open(os.path.join(ROOT, p), encoding="utf-8") as f: return f.read()
    except OSError: return None

compose_raw = read("docker-compose.yml") or ""
conf_raw = read("deploy/turnserver.conf") or ""
docker_raw = read("Dockerfile") or ""
ignore_raw = read(".dockerignore") or ""
env_raw = read(".env.example") or ""
for p, s in [("docker-compose.yml", compose_raw), ("deploy/turnserver.conf", conf_raw),
             ("Dockerfile", docker_raw), (".dockerignore", ignore_raw), (".env.example", env_raw)]:
    check(f"{p} exists and is not empty", s.strip())

try:
    doc = yaml.safe_load(compose_raw) or {}
    check("docker-compose.yml is valid YAML", isinstance(doc, dict))
except yaml.YAMLError as e:
    doc = {}; check("docker-compose.yml is valid YAML", False, str(e))
services = doc.get("services") or {}
app = services.get("app") or {}
turn = services.get("turn") or {}
check("services `app` and `turn` exist", app and turn, f"services={list(services)}")

def as_list(v):
    if v is None: return []
    return v if isinstance(v, list) else [v]
def env_map(v):
    if isinstance(v, dict): return {k: ("" if x is None else str(x)) for k, x in v.items()}
    out = {}
    for item in as_list(v):
        k, _, x = str(item).partition("="); out[k] = x
    return out
def env_files(svc):
    out = []
    for e in as_list(svc.get("env_file")):
        out.append(e.get("path") if isinstance(e, dict) else e)
    return out
def ports(svc):
    out = []
    for p in as_list(svc.get("ports")):
        if isinstance(p, dict):
            proto = p.get("protocol", "tcp")
            out.append(f"{p.get('published')}:{p.get('target')}/{proto}")
        else:
            s = str(p)
            out.append(s if "/" in s else s + "/tcp")
    return out

# app
check("app: container_name mini-discord-app", app.get("container_name") == "mini-discord-app")
b = app.get("build")
ctx = b.get("context") if isinstance(b, dict) else b
check("app: built from this directory (build: .)", ctx in (".", "./"), f"build={b!r}")
check("app: publishes 8000:8000 (optionally bound to one host IP)",
      any(re.fullmatch(r"(?:\[?[0-9a-fA-F.:]+\]?:)?8000:8000/tcp", p) for p in ports(app)), f"ports={ports(app)}")
check("app: env_file .env", ".env" in env_files(app), f"env_file={env_files(app)}")
env = env_map(app.get("environment"))
check("app: DATA_DIR=/data and LISTEN_ADDR=0.0.0.0:8000",
      env.get("DATA_DIR") == "/data" and env.get("LISTEN_ADDR") == "0.0.0.0:8000", f"environment={env}")
check("app: named volume chat-data mounted at /data",
      any(str(v).split(":")[:2] == ["chat-data", "/data"] if not isinstance(v, dict)
          else (v.get("source"), v.get("target")) == ("chat-data", "/data") for v in as_list(app.get("volumes"))),
      f"volumes={app.get('volumes')}")
hc = app.get("healthcheck") or {}
check('app: healthcheck ["CMD","/mini-discord","healthcheck"]',
      hc.get("test") == ["CMD", "/mini-discord", "healthcheck"], f"healthcheck={hc}")
check("top-level volume chat-data declared", "chat-data" in (doc.get("volumes") or {}))

# turn
check("turn: container_name mini-discord-turn", turn.get("container_name") == "mini-discord-turn")
image = str(turn.get("image", ""))
m = re.fullmatch(r"coturn/coturn:(\d+)\.(\d+)\.(\d+)(?:\.\d+)?(?:-r\d+)?(?:-(?:debian|alpine)\w*)?(?:@sha256:[0-9a-f]{64})?", image)
ver = tuple(int(x) for x in m.groups()) if m else None
check("turn: image coturn/coturn pinned to a version >= 4.10.0", ver is not None and ver >= (4, 10, 0), f"image={image!r}")
check("turn: env_file .env", ".env" in env_files(turn), f"env_file={env_files(turn)}")
check("turn: deploy/turnserver.conf mounted read-only at /etc/coturn/turnserver.conf",
      any(str(v) in ("./deploy/turnserver.conf:/etc/coturn/turnserver.conf:ro",
                     "deploy/turnserver.conf:/etc/coturn/turnserver.conf:ro") for v in as_list(turn.get("volumes"))),
      f"volumes={turn.get('volumes')}")
tports = ports(turn)
check("turn: publishes 3478/tcp and 3478/udp", "3478:3478/tcp" in tports and "3478:3478/udp" in tports, f"ports={tports}")

def conf_values(key):
    return [l.split("=", 1)[1].strip() if "=" in l else ""
            for l in (x.strip() for x in conf_raw.splitlines())
            if re.match(rf"^-*{re.escape(key)}(\s*=|\s*$)", l)]
def conf_has(key): return bool(conf_values(key))
minp, maxp = conf_values("min-port"), conf_values("max-port")
relay = [p for p in tports if re.fullmatch(r"\d+-\d+:\d+-\d+/udp", p)]
if minp and maxp:
    want = f"{minp[-1]}-{maxp[-1]}:{minp[-1]}-{maxp[-1]}/udp"
    check(f"turn: UDP relay range {want} matches min-port/max-port of turnserver.conf", relay == [want], f"relay={relay}")
    check("turnserver.conf: relay range is small (<= 1000 ports)", 0 < int(maxp[-1]) - int(minp[-1]) + 1 <= 1000)
else:
    check("turnserver.conf: min-port and max-port set", False)
lp = conf_values("listening-port")
check("turnserver.conf: listening-port=3478 (matches published port and TURN_PORT default)", lp and lp[-1] == "3478", f"{lp}")

cmd = turn.get("command"); ep = turn.get("entrypoint")
cmd_text = "\n".join(str(x) for x in as_list(ep) + as_list(cmd))
check("turn: command gives the secret from the container env, escaped from compose ($${TURN_SECRET})",
      "$${TURN_SECRET}" in cmd_text and "${TURN_SECRET}" not in cmd_text.replace("$${TURN_SECRET}", ""))
check("turn: command uses /etc/coturn/turnserver.conf", "/etc/coturn/turnserver.conf" in cmd_text)
check("turn: command never adds allow-loopback-peers / allowed-peer-ip",
      "allow-loopback-peers" not in cmd_text and "allowed-peer-ip" not in cmd_text)

# turnserver.conf
active = [l.strip() for l in conf_raw.splitlines() if l.strip() and not l.strip().startswith("#")]
check("turnserver.conf: no active allow-loopback-peers", not any("allow-loopback-peers" in l for l in active))
for key in ["use-auth-secret", "realm", "fingerprint", "no-cli", "no-multicast-peers", "no-tcp-relay",
            "user-quota", "total-quota", "max-bps", "stale-nonce"]:
    check(f"turnserver.conf: {key}", conf_has(key))
check("turnserver.conf: no secret committed (no active static-auth-secret)", not conf_has("static-auth-secret"))
check("turnserver.conf: no lt-cred-mech/user= lines mixed with use-auth-secret",
      not conf_has("lt-cred-mech") and not conf_has("user"))
denied = set(conf_values("denied-peer-ip"))
required = [
    "0.0.0.0-0.255.255.255", "10.0.0.0-10.255.255.255", "100.64.0.0-100.127.255.255",
    "127.0.0.0-127.255.255.255", "169.254.0.0-169.254.255.255", "172.16.0.0-172.31.255.255",
    "192.0.0.0-192.0.0.255", "192.0.2.0-192.0.2.255", "192.168.0.0-192.168.255.255",
    "198.18.0.0-198.19.255.255", "198.51.100.0-198.51.100.255", "203.0.113.0-203.0.113.255",
    "224.0.0.0-239.255.255.255", "240.0.0.0-255.255.255.255",
    "::1", "::ffff:0:0-::ffff:ffff:ffff", "64:ff9b::-64:ff9b::ffff:ffff",
    "fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "ff00::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db8::-2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
]
missing = [r for r in required if r not in denied]
check(f"turnserver.conf: all {len(required)} required denied-peer-ip ranges present", not missing, f"missing={missing}")
check("turnserver.conf: no denied range starts at :: (coturn would then deny every IPv4 peer)",
      not any(re.match(r"^(::|0:0:0:0:0:0:0:0)(-|$)", d) for d in denied))

# --- 4. the turn start script, under /bin/sh with stubs -------------------------------------
script = "\n".join(str(x) for x in as_list(cmd))
if as_list(ep)[:2] == ["/bin/sh", "-c"] and script:
    sh_src = script.replace("$$", "$")          # what compose hands to the container
    d = os.path.join(WORK, "sh"); os.makedirs(os.path.join(d, "bin"), exist_ok=True)
    with open(os.path.join(d, "src.conf"), "w") as f: f.write(conf_raw)
    sh_src = sh_src.replace("/etc/coturn/turnserver.conf", os.path.join(d, "src.conf")) \
                   .replace("/tmp/turnserver.conf", os.path.join(d, "out.conf"))
    stubs = {"turnserver": '#!/bin/sh\necho "turnserver-args: $*"\ncat "$2"\n',
             "detect-external-ip": '#!/bin/sh\necho detect-called >&2\necho 198.51.100.20\n'}
    for n, body in stubs.items():
        p = os.path.join(d, "bin", n)
        with open(p, "w") as f: f.write(body)
        os.chmod(p, 0o755)
    def run(extra):
        e = {"PATH": os.path.join(d, "bin") + ":/usr/bin:/bin"}; e.update(extra)
        out = os.path.join(d, "out.conf")
        if os.path.exists(out): os.unlink(out)
        r = subprocess.run(["/bin/sh", "-c", sh_src], env=e, capture_output=True, text=True, timeout=20)
        return r
    tricky = "a$b\\c'd\"e f"
    r = run({"TURN_SECRET": tricky, "TURN_EXTERNAL_IP": "203.0.113.7"})
    mode = stat.S_IMODE(os.stat(os.path.join(d, "out.conf")).st_mode) if os.path.exists(os.path.join(d, "out.conf")) else None
    check("turn script: execs turnserver -c <private copy> with the secret appended verbatim",
          r.returncode == 0 and f"static-auth-secret={tricky}\n" in r.stdout
          and "turnserver-args: -c " in r.stdout and "denied-peer-ip=10.0.0.0-10.255.255.255" in r.stdout,
          f"rc={r.returncode} err={r.stderr.strip()[:200]}")
    check("turn script: private config is mode 0600", mode == 0o600, f"mode={oct(mode) if mode is not None else None}")
    check("turn script: TURN_EXTERNAL_IP becomes external-ip (no lookup)",
          "external-ip=203.0.113.7\n" in r.stdout and "detect-called" not in r.stderr)
    r = run({"TURN_SECRET": "0123abcd", "TURN_EXTERNAL_IP": ""})
    check("turn script: empty TURN_EXTERNAL_IP falls back to detect-external-ip",
          r.returncode == 0 and "external-ip=198.51.100.20\n" in r.stdout, f"rc={r.returncode}")
    r = run({"TURN_SECRET": "change-me-to-a-long-random-secret"})
    check("turn script: refuses the placeholder TURN_SECRET", r.returncode != 0 and "turnserver-args" not in r.stdout)
    r = run({"TURN_SECRET": ""})
    check("turn script: refuses an empty TURN_SECRET", r.returncode != 0 and "turnserver-args" not in r.stdout)
    r = run({})
    check("turn script: refuses an unset TURN_SECRET", r.returncode != 0 and "turnserver-args" not in r.stdout)
else:
    check("turn: entrypoint is [/bin/sh, -c] with a start script", False, f"entrypoint={ep!r}")

# --- 5. Dockerfile, .dockerignore, .env.example -------------------------------------------------
lines = [l.strip() for l in docker_raw.splitlines() if l.strip() and not l.strip().startswith("#")]
froms = [l for l in lines if l.upper().startswith("FROM ")]
check("Dockerfile: multi-stage, Rust builder then scratch/distroless runtime",
      len(froms) >= 2 and froms[0].split()[1].startswith("rust:")
      and (froms[-1].split()[1] == "scratch" or "distroless/static" in froms[-1]), f"FROM={froms}")
check("Dockerfile: musl target built (x86_64-unknown-linux-musl, musl-tools)",
      "x86_64-unknown-linux-musl" in docker_raw and "musl-tools" in docker_raw and "cargo build --release" in docker_raw)
final = docker_raw[docker_raw.rfind("\nFROM "):]
check("Dockerfile: runtime runs as uid 65532", re.search(r"^USER\s+65532(:65532)?\s*$", final, re.M))
check("Dockerfile: /data owned by 65532 in the runtime image",
      re.search(r"COPY\s+--from=\S+\s+--chown=65532(:65532)?\s+\S+\s+/data\b", final) or "distroless" in froms[-1])
check("Dockerfile: VOLUME /data, EXPOSE 8000", re.search(r"^VOLUME\s+\[?\"?/data", final, re.M) and re.search(r"^EXPOSE\s+8000", final, re.M))
check("Dockerfile: ENV DATA_DIR=/data and LISTEN_ADDR=0.0.0.0:8000",
      "DATA_DIR=/data" in final and "LISTEN_ADDR=0.0.0.0:8000" in final)
check('Dockerfile: HEALTHCHECK CMD ["/mini-discord", "healthcheck"]',
      re.search(r'HEALTHCHECK[^\n]*(\\\n[^\n]*)*CMD \["/mini-discord",\s*"healthcheck"\]', final))
check('Dockerfile: ENTRYPOINT ["/mini-discord"]', re.search(r'^ENTRYPOINT \["/mini-discord"\]', final, re.M))
ign = {l.strip() for l in ignore_raw.splitlines() if l.strip() and not l.startswith("#")}
check(".dockerignore: excludes target/, data/, node_modules, .env, .git",
      {"target/", "data/", ".env", ".git"} <= ign and any("node_modules" in x for x in ign), f"{sorted(ign)}")
check(".dockerignore: keeps src/, assets/, Cargo.toml, Cargo.lock in the context",
      not any(x.rstrip("/") in ("src", "assets", "Cargo.toml", "Cargo.lock", "*", "**") for x in ign))

env_lines = [l for l in env_raw.splitlines() if l.strip() and not l.lstrip().startswith("#")]
keys = {}
for l in env_lines:
    k, eq, v = l.partition("=")
    keys[k.strip()] = v if eq else None
api_keys = ["LISTEN_ADDR", "DATA_DIR", "STUN_URLS", "TURN_HOST", "TURN_PORT", "TURN_USERNAME", "TURN_PASSWORD",
            "TURN_SECRET", "TURN_TTL", "REGISTRATION", "ALLOWED_ORIGINS", "VOICE_MAX_PEERS", "SEND_RATE",
            "SEND_BURST", "MAX_CONNECTIONS", "MAX_CONNECTIONS_PER_IP", "LOG_LEVEL", "DB_SYNCHRONOUS",
            "SFU_UDP_PORT", "SFU_PUBLIC_IP", "SFU_MAX_PEERS"]
missing = [k for k in api_keys if k not in keys]
check(f".env.example: all {len(api_keys)} configuration keys present", not missing, f"missing={missing}")
check(".env.example: every line is KEY=value or a comment",
      all(re.fullmatch(r"[A-Z][A-Z0-9_]*=[^#\"']*", l) for l in env_lines),
      f"{[l for l in env_lines if not re.fullmatch(r'[A-Z][A-Z0-9_]*=[^#]*', l)]}")
check(".env.example: TURN_SECRET is the placeholder change-me-to-a-long-random-secret",
      keys.get("TURN_SECRET") == "change-me-to-a-long-random-secret")
check(".env.example: explains `openssl rand -hex 32`", "openssl rand -hex 32" in env_raw)
check(".env.example: TURN_PORT matches coturn listening-port",
      lp and keys.get("TURN_PORT") == lp[-1], f"TURN_PORT={keys.get('TURN_PORT')}")
check(".env.example: DB_SYNCHRONOUS=FULL (NORMAL documented)",
      keys.get("DB_SYNCHRONOUS") == "FULL" and "NORMAL" in env_raw)
check(".env.example: defaults REGISTRATION=invite, SEND_RATE=5, SEND_BURST=10, VOICE_MAX_PEERS=10, TURN_TTL=86400",
      (keys.get("REGISTRATION"), keys.get("SEND_RATE"), keys.get("SEND_BURST"), keys.get("VOICE_MAX_PEERS"),
       keys.get("TURN_TTL")) == ("invite", "5", "10", "10", "86400"))

# --- 6. the media server: port, setting, coturn permission ----------------------------------
import ipaddress
udp = [p for p in ports(app) if p.endswith("/udp")]
m = re.fullmatch(r"(?:\[?[0-9a-fA-F.:]+\]?:)?(\d+):(\d+)/udp", udp[0]) if len(udp) == 1 else None
check("media: app publishes exactly one UDP port, the same number outside and inside",
      m and m.group(1) == m.group(2), f"udp ports={udp}")
pub = m.group(2) if m else None
sfu = env.get("SFU_UDP_PORT")
check("media: app's SFU_UDP_PORT equals its published UDP port", sfu is not None and sfu == pub,
      f"SFU_UDP_PORT={sfu!r} published={pub!r}")
check("media: .env.example's SFU_UDP_PORT equals it too", keys.get("SFU_UDP_PORT") == pub,
      f".env.example SFU_UDP_PORT={keys.get('SFU_UDP_PORT')!r} published={pub!r}")
check("media: app passes SFU_PUBLIC_IP (from .env)", "SFU_PUBLIC_IP" in env and "SFU_PUBLIC_IP" in keys,
      f"environment={sorted(env)}")
turn_ports = set()
for p in tports:
    a = re.fullmatch(r"(\d+)(?:-(\d+))?:.*", p)
    if a: turn_ports.update(range(int(a.group(1)), int(a.group(2) or a.group(1)) + 1))
check("media: the media port is none of coturn's (listener, relay range)",
      pub is not None and int(pub) not in turn_ports and (not lp or pub != lp[-1]), f"port={pub}")

nets = doc.get("networks") or {}
app_nets = app.get("networks") or {}
app_addr = None
app_net = None
if isinstance(app_nets, dict):
    for name, cfg in app_nets.items():
        if isinstance(cfg, dict) and cfg.get("ipv4_address"):
            app_net, app_addr = name, str(cfg["ipv4_address"])
check("media: app has a fixed ipv4_address on a network", app_addr, f"networks={app_nets}")
turn_nets = turn.get("networks") or []
turn_on = list(turn_nets) if isinstance(turn_nets, (list, dict)) else []
check("media: coturn is on the app's network", app_net is not None and app_net in turn_on, f"turn networks={turn_nets}")
subnets = []
for c in as_list(((nets.get(app_net) or {}).get("ipam") or {}).get("config") if app_net else None):
    try: subnets.append(ipaddress.ip_network(str(c.get("subnet")), strict=True))
    except (ValueError, AttributeError): pass
try: addr = ipaddress.ip_address(app_addr) if app_addr else None
except ValueError: addr = None
check("media: the app's address lies in that network's fixed subnet",
      addr is not None and any(addr in n for n in subnets), f"address={app_addr} subnets={subnets}")
allowed = conf_values("allowed-peer-ip")
check("turnserver.conf: exactly one allowed-peer-ip, one address (no range)",
      len(allowed) == 1 and "-" not in allowed[0] and "/" not in allowed[0], f"allowed-peer-ip={allowed}")
check("media: coturn's allowed-peer-ip is the app's address", allowed == [app_addr] and app_addr is not None,
      f"allowed-peer-ip={allowed} app={app_addr}")
def in_denied(a):
    for d in denied:
        lo, _, hi = d.partition("-")
        try:
            lo_a = ipaddress.ip_address(lo); hi_a = ipaddress.ip_address(hi or lo)
        except ValueError: continue
        if lo_a.version == a.version and lo_a <= a <= hi_a: return True
    return False
check("media: the app's address is an internal one that the deny list covers (the exception is needed)",
      addr is not None and addr.is_private and in_denied(addr), f"address={app_addr}")

print(f"PYRESULT {sum(results)} {len(results) - sum(results)}")
PYEOF
PYRC=$?
grep -v '^PYRESULT' "$WORK/py.out"
read -r _ P F < <(grep '^PYRESULT' "$WORK/py.out" || echo "PYRESULT 0 1")
if [ "$PYRC" -ne 0 ] && [ "${F:-1}" -eq 0 ]; then F=1; echo "FAIL - python checks exited $PYRC"; fi
PASS=$((PASS + P)); FAIL=$((FAIL + F))

# --- 7. mutations: each part of the media-server triple changed alone must fail -----------
# A copy of the deployment files with one edit each; the checks above must then fail, on
# the media check that names the mismatch. Proves the checks can fail (not only pass).
mutate() { # mutate NAME FILE FROM TO EXPECTED-FAIL-SUBSTRING
  MUT=$((MUT + 1))
  local name=$1 file=$2 from=$3 to=$4 want=$5 dir="$WORK/mut-$MUT"
  mkdir -p "$dir/deploy"
  for f in docker-compose.yml .env.example Dockerfile .dockerignore deploy/turnserver.conf; do
    cp "$ROOT/$f" "$dir/$f" 2>/dev/null
  done
  if ! grep -qF -- "$from" "$dir/$file"; then
    FAIL=$((FAIL + 1)); echo "FAIL - mutation '$name': '$from' not found in $file"; return
  fi
  FROM=$from TO=$to F="$dir/$file" $PY -c \
    "import os; p=os.environ['F']; s=open(p).read(); open(p,'w').write(s.replace(os.environ['FROM'], os.environ['TO']))"
  COMPOSE_CHECK_ROOT="$dir" COMPOSE_CHECK_NESTED=1 bash "$HERE/compose_check.sh" >"$dir.out" 2>&1
  local rc=$?
  if [ "$rc" -ne 0 ] && grep -qF -- "$want" <(grep '^FAIL - ' "$dir.out"); then
    PASS=$((PASS + 1)); echo "ok   - changing only $name fails the check ($want)"
  else
    FAIL=$((FAIL + 1)); echo "FAIL - changing only $name was not caught (rc=$rc):"
    grep -E '^(FAIL|compose_check)' "$dir.out" | sed 's/^/    /'
  fi
}
MUT=0
if [ "${COMPOSE_CHECK_NESTED:-0}" != 1 ]; then
  mutate "the published media port" docker-compose.yml \
    '"3479:3479/udp"' '"3480:3480/udp"' "SFU_UDP_PORT equals its published UDP port"
  mutate "the SFU_UDP_PORT setting" docker-compose.yml \
    'SFU_UDP_PORT: "3479"' 'SFU_UDP_PORT: "3480"' "SFU_UDP_PORT equals its published UDP port"
  mutate ".env.example's SFU_UDP_PORT" .env.example \
    'SFU_UDP_PORT=3479' 'SFU_UDP_PORT=3480' ".env.example's SFU_UDP_PORT"
  mutate "coturn's allowed-peer-ip" deploy/turnserver.conf \
    'allowed-peer-ip=10.213.77.10' 'allowed-peer-ip=10.213.77.11' "allowed-peer-ip is the app's address"
  mutate "the app's address" docker-compose.yml \
    'ipv4_address: 10.213.77.10' 'ipv4_address: 10.213.77.12' "allowed-peer-ip is the app's address"
  mutate "allowed-peer-ip into a range" deploy/turnserver.conf \
    'allowed-peer-ip=10.213.77.10' 'allowed-peer-ip=10.213.77.0-10.213.77.255' "exactly one allowed-peer-ip"
fi

if [ "$SKIP" -gt 0 ]; then
  echo "compose_check: $PASS passed, $FAIL failed, $SKIP skipped"
else
  echo "compose_check: $PASS passed, $FAIL failed"
fi
[ "$FAIL" -eq 0 ]
