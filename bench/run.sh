#!/usr/bin/env bash
# mini-discord benchmarks, side by side with the reference peer (bench/reference: axum + tokio
# broadcast), in one run, on 127.0.0.1 only. Every load step is bounded in time and count.
#
#   bench/run.sh            full run (~8 min on the 2-core box, plus up to 3 min waiting for a quiet machine per fan-out)
#   bench/run.sh --quick    smoke run (~1-2 min; small numbers, not for quoting)
#   bench/run.sh --only roles   one section only: startup, fanout, roles, idle, acks, history
#                           (may be given more than once)
#
# Env knobs: SERVER_BIN (skip building the server, use this binary; default: `cargo build
# --release` of the work tree into bench/target/server), BUILD_WAIT (seconds to keep
# retrying `cargo build --release` while the server does not compile yet; default 0 = no retry),
# SEED_COUNT (messages seeded for the history benchmark; default 1000000), ROLES_ROUNDS (rounds
# of the half-visible fan-out against the all-visible one; default 5), OUT (results folder).
# Fan-out (issue 20): FANOUT_ROUNDS (alternating rounds of ours against the reference with
# TCP_NODELAY, each on a fresh server; default 5, --quick 1), FANOUT_DUR (seconds per run;
# default 15, --quick 5), FANOUT_RATES (default "200 1000"), FANOUT_PIN_RATES (rates run
# pinned, server on core 1 and load generator on core 0; default "200"; "" = none),
# FANOUT_NAGLE (1, the default: one extra run per rate of the reference with Nagle on),
# FANOUT_OURS_ENV (extra settings for ours), FANOUT_B_ENV (when set, an A/B: each round also
# runs "oursb", ours with these settings added, e.g. FANOUT_B_ENV="SCHED_SLICE_US=0"; the
# report gives oursb / ours per round), FANOUT_READER (the load generator's reader of the
# receiving sockets: epoll, the default, or tokio, the reader before 2026-12-03).
# QUIET_WAIT (seconds to wait for an idle machine before each fan-out; default 180, 0 = do not wait).
# Results: $OUT/results.jsonl (one JSON line per measurement), $OUT/table.md, server logs.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
QUICK=0
ONLY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --only) shift; case "${1:-}" in startup|fanout|roles|idle|acks|history) ONLY="$ONLY $1" ;;
              *) echo "--only needs one of: startup fanout roles idle acks history" >&2; exit 2 ;; esac ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
want() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; } # is section $1 to run?
SUFFIX=""; [ $QUICK = 1 ] && SUFFIX=-quick
OUT=${OUT:-$BENCH/results/$(date -u +%Y%m%dT%H%M%SZ)$SUFFIX}
mkdir -p "$OUT"
JSON=$OUT/results.jsonl
: > "$JSON"
LG=$BENCH/target/release/loadgen
REF=$BENCH/target/release/reference

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

# ------------------------------------------------------------------ build
log "building bench/ (loadgen, reference) in release"
(cd "$BENCH" && cargo build --release --quiet)
if [ -z "${SERVER_BIN:-}" ]; then
  # the server's own release build, in a target dir of its own (bench/target/server) so that
  # it neither waits for nor disturbs a developer's build in target/
  export CARGO_TARGET_DIR=$BENCH/target/server
  SERVER_BIN=$CARGO_TARGET_DIR/release/mini-discord
  deadline=$(( $(date +%s) + ${BUILD_WAIT:-0} ))
  until (cd "$ROOT" && cargo build --release --quiet 2> "$OUT/server-build.log"); do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      log "the server does not build (see $OUT/server-build.log)"; tail -20 "$OUT/server-build.log" >&2; exit 1
    fi
    log "server build failed; retrying in 60 s"; sleep 60
  done
fi
[ -x "$SERVER_BIN" ] || { log "no server binary at $SERVER_BIN"; exit 1; }
log "server binary: $SERVER_BIN ($(stat -c %s "$SERVER_BIN") bytes)"

# ------------------------------------------------------------------ servers
PID=""; ADDR=""; DATA=""; SLOG=""; CEILING=""
# Server settings for benchmarks: the per-user send rate limit is lifted (the senders are few
# users sending far above 5/s on purpose); everything else is the default.
OURS_ENV=(REGISTRATION=open SEND_RATE=1000000 SEND_BURST=1000000 LOG_LEVEL=info)

wait_listening() {
  local i
  for i in $(seq 1 400); do
    ADDR=$(grep -ao 'listening on [0-9.]*:[0-9]*' "$SLOG" | head -1 | awk '{print $3}' || true)
    [ -n "$ADDR" ] && return 0
    kill -0 "$PID" 2>/dev/null || { log "server died at start:"; tail -20 "$SLOG" >&2; return 1; }
    sleep 0.05
  done
  log "no 'listening on' line in 20 s"; tail -20 "$SLOG" >&2; return 1
}

# SERVER_WRAP / LG_WRAP: a command prefix for the server / the load generator (the fan-out
# sets them to `taskset -c N` to pin each to its own core); empty by default.
SERVER_WRAP=(); LG_WRAP=()

start_ours() { # $1 = tag
  DATA=$(mktemp -d /tmp/md-bench-XXXXXX); SLOG=$OUT/ours-$1.log
  # run in the temp dir so that no .env of the work tree is read
  (cd "$DATA" && exec "${SERVER_WRAP[@]}" env "${OURS_ENV[@]}" ${EXTRA_ENV:-} LISTEN_ADDR=127.0.0.1:0 DATA_DIR="$DATA/data" "$SERVER_BIN") > "$SLOG" 2>&1 &
  PID=$!
  wait_listening
  # the derived connection ceiling, as logged at start
  CEILING=$(grep -aiE 'max(imum)?[ _-]?connections|ceiling' "$SLOG" | head -1 \
            | grep -aoiE '(max(imum)?[ _-]?connections|ceiling)[^0-9]{0,24}[0-9]+' | grep -aoE '[0-9]+$' | head -1 || true)
  log "ours started: pid $PID on $ADDR (derived ceiling: ${CEILING:-not found in log})"
}

start_refnd() { # $1 = tag: the reference with TCP_NODELAY, as mini-discord sets it
  DATA=""; SLOG=$OUT/refnd-$1.log
  REF_NODELAY=1 "${SERVER_WRAP[@]}" "$REF" 127.0.0.1:0 > "$SLOG" 2>&1 &
  PID=$!
  wait_listening
  log "reference (TCP_NODELAY) started: pid $PID on $ADDR"
}

start_ref() { # $1 = tag
  DATA=""; SLOG=$OUT/ref-$1.log
  REF_NODELAY=0 "${SERVER_WRAP[@]}" "$REF" 127.0.0.1:0 > "$SLOG" 2>&1 &
  PID=$!
  wait_listening
  log "reference started: pid $PID on $ADDR"
}

stop_server() {
  [ -n "$PID" ] || return 0
  kill "$PID" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.05; done
  kill -9 "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  [ -n "$DATA" ] && rm -rf "$DATA"
  PID=""; DATA=""
}
trap stop_server EXIT

busy_cores() { # CPU busy on the whole machine over $1 seconds, in cores
  local a b
  a=$(head -1 /proc/stat); sleep "$1"; b=$(head -1 /proc/stat)
  echo "$a" "$b" | awk -v n="$(nproc)" '{ for (i = 2; i <= 9; i++) { x[i] = $i; y[i] = $(i + 11) }
    t = 0; for (i = 2; i <= 9; i++) t += y[i] - x[i]; idle = (y[5] - x[5]) + (y[6] - x[6]);
    printf "%.2f", (t - idle) / t * n }'
}

wait_quiet() { # the fan-out numbers need the two cores: wait (at most QUIET_WAIT s, default 180) until the machine is idle
  local i b
  [ "${QUIET_WAIT:-180}" -ge 5 ] || return 0
  for i in $(seq 1 $(( ${QUIET_WAIT:-180} / 5 ))); do
    b=$(busy_cores 5)
    awk -v b="$b" 'BEGIN { exit !(b < 0.3) }' && return 0
    [ "$i" = 1 ] && log "machine busy ($b cores used by others); waiting up to ${QUIET_WAIT:-180} s for quiet"
  done
  log "machine still busy ($b cores); measuring anyway (see other_cores)"
}

metrics_line() { # $1 = label: the writer's counters from /metrics, as one JSON line
  curl -s --max-time 5 "http://$ADDR/metrics" | awk -v l="$1" '
    $1 == "md_deliveries_total" { d = $2 } $1 == "md_writer_sends_total" { s = $2 }
    END { if (s > 0) printf "{\"mode\":\"metrics\",\"label\":\"%s\",\"deliveries\":%d,\"sends\":%d}\n", l, d, s }' >> "$JSON" || true
}

stages_line() { # $1 = label: ours' per-stage histograms (md_delivery_stage_seconds) and its
  # threads' context switches and CPU, kept raw in $OUT and summarised as JSON lines
  curl -s --max-time 5 "http://$ADDR/metrics" > "$OUT/metrics-${1//\//_}.txt" || true
  python3 "$BENCH/report.py" --stages "$1" "$OUT/metrics-${1//\//_}.txt" >> "$JSON" || true
  python3 "$BENCH/report.py" --threads "$1" "$PID" >> "$JSON" || true
}

lg() { # loadgen with the common arguments; bounded by timeout in any case
  local limit=$1; shift
  timeout --signal=INT --kill-after=10 "$limit" "${LG_WRAP[@]}" "$LG" "$@" --json "$JSON" 2>> "$OUT/loadgen.log" | grep -a '^RESULT' || {
    log "loadgen $1 failed or timed out (see $OUT/loadgen.log)"; tail -5 "$OUT/loadgen.log" >&2; }
}

if [ $QUICK = 1 ]; then
  SOCKETS=1000; DUR=5; STARTS=2; IDLE_EXTRA=200; IDLE_MAX=2000; HOLD=2; ACK_DUR=3; SEED=${SEED_COUNT:-20000}; HREQ=300
else
  SOCKETS=1000; DUR=20; STARTS=5; IDLE_EXTRA=500; IDLE_MAX=100000; HOLD=10; ACK_DUR=10; SEED=${SEED_COUNT:-1000000}; HREQ=2000
fi
log "load: $(uptime)"

# ------------------------------------------------------------------ start-up, idle RSS, size
if want startup; then
log "start-up time (exec -> /healthz 200) and idle RSS, $STARTS starts each"
lg 120 startup --bin "$SERVER_BIN" --runs $STARTS --label startup/ours --env REGISTRATION=open
lg 120 startup --bin "$REF" --runs $STARTS --label startup/ref

fi
# ------------------------------------------------------------------ fan-out
if want fanout; then
# Issue 20: FANOUT_ROUNDS alternating rounds (default 5) of ours (DB_SYNCHRONOUS=FULL)
# against "refnd", the reference with TCP_NODELAY as mini-discord sets it (like for like),
# each run on a fresh server; odd rounds run ours first, even rounds the reference first.
# The rates in FANOUT_PIN_RATES (default 200) run pinned: the server on core 1, the load
# generator on core 0 (`taskset`), so they do not fight; 1,000 msg/s runs unpinned, since
# there the load generator needs more than one core. After each of ours, /metrics gives the
# frames per sendmsg and the per-stage histograms. "ref" (axum's defaults, Nagle on) gets
# one extra run per rate (FANOUT_NAGLE=0 skips it).
FANOUT_ROUNDS=${FANOUT_ROUNDS:-$([ $QUICK = 1 ] && echo 1 || echo 5)}
FANOUT_DUR=${FANOUT_DUR:-$([ $QUICK = 1 ] && echo 5 || echo 15)}
FANOUT_RATES=${FANOUT_RATES:-200 1000}
FANOUT_PIN_RATES=${FANOUT_PIN_RATES-200}
CAN_PIN=0
if command -v taskset > /dev/null && [ "$(nproc)" -ge 2 ]; then CAN_PIN=1; fi
fanout_run() { # $1 = who (ours, refnd, ref), $2 = rate, $3 = label
  local who=$1 rate=$2 label=$3 pinned=0
  SERVER_WRAP=(); LG_WRAP=()
  if [[ " $FANOUT_PIN_RATES " == *" $rate "* ]]; then
    if [ $CAN_PIN = 1 ]; then pinned=1; SERVER_WRAP=(taskset -c 1); LG_WRAP=(taskset -c 0)
    else log "cannot pin (no taskset or fewer than 2 cores): $label runs unpinned"; fi
  fi
  local start=$who extra=""
  if [ "$who" = oursb ]; then start=ours; extra=${FANOUT_B_ENV:-}; fi
  EXTRA_ENV="DB_SYNCHRONOUS=FULL ${FANOUT_OURS_ENV:-} $extra" start_$start "${label//\//-}"
  wait_quiet
  if [ $pinned = 1 ]; then log "fanout $label: pinned, server on core 1 (taskset -c 1), load generator on core 0 (taskset -c 0)"
  else log "fanout $label: unpinned (server and load generator share both cores)"; fi
  log "fanout $label: $SOCKETS sockets (100 users), 10 senders, $rate msg/s for $FANOUT_DUR s"
  # the epoll reader: one thread on the load generator's one core when pinned, two otherwise
  # (as the tokio reader's two workers)
  lg $((FANOUT_DUR + 180)) fanout --addr "$ADDR" --server-pid "$PID" --sockets $SOCKETS --users 100 --senders 10 --reader "${FANOUT_READER:-epoll}" --raw-threads $((2 - pinned)) \
    --rate "$rate" --duration "$FANOUT_DUR" --label "$label"
  echo "{\"mode\":\"pinning\",\"label\":\"$label-pin\",\"pinned\":$pinned,\"server_cpus\":\"${SERVER_WRAP[*]:-all}\",\"loadgen_cpus\":\"${LG_WRAP[*]:-all}\"}" >> "$JSON"
  if [ "$who" = ours ] || [ "$who" = oursb ]; then
    metrics_line "$label-metrics"
    stages_line "$label"
  fi
  stop_server
  SERVER_WRAP=(); LG_WRAP=()
  sleep 2
}
for rate in $FANOUT_RATES; do
  for round in $(seq 1 "$FANOUT_ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then order="ours refnd"; else order="refnd ours"; fi
    if [ -n "${FANOUT_B_ENV:-}" ]; then
      if [ $((round % 2)) = 1 ]; then order="ours oursb refnd"; else order="refnd oursb ours"; fi
    fi
    for who in $order; do
      fanout_run "$who" "$rate" "fanout$rate/$who/r$round"
    done
  done
  if [ "${FANOUT_NAGLE:-1}" = 1 ]; then
    fanout_run ref "$rate" "fanout$rate/ref/r1"
  fi
done

fi
# ------------------------------------------------------------------ fan-out, channel visible to half
if want roles; then
# "Run a community" (issue 13): the same fan-out into a private channel that only half of the
# users see through a role (`--half-visible 1`; `leaked` must be 0), against the all-visible
# run, in ROLES_ROUNDS alternating rounds (default 5), each on a fresh server. Compare the
# median server_cpu_s_per_M and p99_ms of roles-all vs roles-half. Pinned as the fan-out
# comparisons are (server on core 1, load generator on core 0), at ROLES_RATE msg/s (200: one
# core of load generator keeps up there; at 1,000 msg/s it does not).
ROLES_RATE=${ROLES_RATE:-200}
SERVER_WRAP=(taskset -c 1); LG_WRAP=(taskset -c 0)
log "roles: server pinned to core 1, load generator to core 0"
ROLES_ROUNDS=${ROLES_ROUNDS:-$([ $QUICK = 1 ] && echo 1 || echo 5)}
for round in $(seq 1 "$ROLES_ROUNDS"); do
  # half2x: the half-visible channel at twice the message rate, so the same deliveries per
  # second as "all": CPU per delivery depends on how many frames each sendmsg carries, which
  # grows with load, so only equal delivery rates compare the cost of the visibility filter.
  for vis in all half half2x; do
    start_ours fanout
    wait_quiet
    extra=(); rate=$ROLES_RATE
    [ $vis != all ] && extra=(--half-visible 1)
    [ $vis = half2x ] && rate=$((ROLES_RATE * 2))
    log "fanout roles-$vis round $round: $SOCKETS sockets, 10 senders, $rate msg/s for $DUR s"
    lg $((DUR + 180)) fanout --addr "$ADDR" --server-pid "$PID" --sockets $SOCKETS --users 100 --senders 10 --reader "${FANOUT_READER:-epoll}" \
      --rate $rate --duration $DUR "${extra[@]}" --label "roles-$vis/r$round"
    metrics_line "roles-$vis/r$round-metrics"
    stop_server
    sleep 2
  done
done
SERVER_WRAP=(); LG_WRAP=()

fi
# ------------------------------------------------------------------ idle hold up to the ceiling
if want idle; then
start_ours idle
if [ -n "$CEILING" ]; then IDLE_N=$((CEILING + IDLE_EXTRA)); else IDLE_N=15500; fi
[ "$IDLE_N" -gt "$IDLE_MAX" ] && IDLE_N=$IDLE_MAX
log "idle ours: up to $IDLE_N sockets (ceiling ${CEILING:-?} + $IDLE_EXTRA), hold $HOLD s"
lg 600 idle --addr "$ADDR" --server-pid "$PID" --count $IDLE_N --hold $HOLD --label "idle/ours" --ceiling "${CEILING:-0}"
stop_server
sleep 3
start_ref idle
log "idle reference: up to $IDLE_N sockets, hold $HOLD s"
lg 600 idle --addr "$ADDR" --server-pid "$PID" --count $IDLE_N --hold $HOLD --label "idle/ref"
stop_server
sleep 3

fi
# ------------------------------------------------------------------ acknowledged inserts/s (ours)
if want acks; then
start_ours acks
log "acks ours: 10 senders x window 32 (group commit), $ACK_DUR s"
lg $((ACK_DUR + 60)) acks --addr "$ADDR" --server-pid "$PID" --senders 10 --window 32 --duration $ACK_DUR --label "acks-group/ours"
log "acks ours: 1 sender x window 1 (one message in flight), $ACK_DUR s"
lg $((ACK_DUR + 60)) acks --addr "$ADDR" --server-pid "$PID" --senders 1 --window 1 --duration $ACK_DUR --label "acks-single/ours" --prefix ack1x
stop_server
EXTRA_ENV="STORE_BATCH=1" start_ours acks-batch1
log "acks ours with STORE_BATCH=1 (one transaction per message): 10 senders x window 32, $ACK_DUR s"
lg $((ACK_DUR + 60)) acks --addr "$ADDR" --server-pid "$PID" --senders 10 --window 32 --duration $ACK_DUR --label "acks-batch1/ours"
stop_server

fi
# ------------------------------------------------------------------ history at SEED messages (ours)
if want history; then
start_ours history
log "seeding $SEED messages through the WebSocket API (8 senders x window 64)"
lg 1800 seed --addr "$ADDR" --server-pid "$PID" --count "$SEED" --senders 8 --window 64 --label "seed/ours"
log "history: $HREQ requests per variant"
lg 300 history --addr "$ADDR" --server-pid "$PID" --requests $HREQ --label "history/ours"
du -b "$DATA/data" 2>/dev/null | tail -1 | awk '{print "{\"mode\":\"db\",\"label\":\"db/ours\",\"bytes\":"$1"}"}' >> "$JSON"
stop_server

fi
log "done; results in $OUT"
python3 "$BENCH/report.py" "$JSON" "$SERVER_BIN" "$REF" | tee "$OUT/table.md"
