#!/usr/bin/env bash
# The whole test suite, as the README gives it: `bash tests/run.sh`.
#
# Installs what is missing (Debian packages when run as root: chromium, coturn, iproute2,
# docker-compose for parsing the compose file;
# npm packages for the browser tests), builds, and runs, in order:
#   1. every Rust test (unit + integration against the real server): cargo test
#   2. the deployment checks: coturn with deploy/turnserver.conf, the compose file
#   2b. the type check of the browser app: tsc over assets/ with jsconfig.json
#   3. the browser tests: real headless Chromium (Debian's) driven by playwright-core,
#      inside a loopback-only network namespace when we can make one
# and ends with one line `total: N passed, M failed`. Exit status 0 only if all passed.
#
# Options (environment): MD_SKIP_BROWSER=1 skips step 3, MD_SKIP_DEPLOY=1 skips step 2,
# MD_STAGE_LIMIT (default 40m) bounds each stage; a stage that hangs fails with its name.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
LOG_DIR=$(mktemp -d /tmp/md-run.XXXXXX)
passed=0
failed=0

say() { printf '\n=== %s\n' "$*"; }

# Every stage has a bound well inside CI's 90 minutes (the whole suite takes about 25), so a
# hang ends as a failure that says where, not as a run that never reports. `timeout` signals
# the stage's whole process group; the stage's time is printed as it ends.
STAGE_LIMIT=${MD_STAGE_LIMIT:-40m}
START=$SECONDS
bounded() {
  local t0=$SECONDS status
  timeout --kill-after=30s "$STAGE_LIMIT" "$@"
  status=$?
  if [ "$status" = 124 ] || [ "$status" = 137 ]; then echo "STAGE TIMED OUT after $STAGE_LIMIT: $*"; fi
  echo "(stage took $((SECONDS - t0)) s; $((SECONDS - START)) s so far)"
  return "$status"
}

# --- 0. Install what is missing -------------------------------------------------------
missing=()
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing+=(chromium)
command -v turnserver >/dev/null 2>&1 || missing+=(coturn)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -c 'import yaml' 2>/dev/null || missing+=(python3-yaml)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >"$LOG_DIR/apt.log" 2>&1 \
      || { echo "apt-get install failed; see $LOG_DIR/apt.log"; tail -20 "$LOG_DIR/apt.log"; }
  else
    echo "missing: ${missing[*]} (not root, so not installing; the tests that need them will fail)"
  fi
fi
if [ -f tests/browser/package.json ] && { [ ! -d tests/browser/node_modules/playwright-core ] \
  || [ ! -d tests/browser/node_modules/typescript ]; }; then
  say "installing npm packages for the browser tests"
  (cd tests/browser && if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi) \
    >"$LOG_DIR/npm.log" 2>&1 || { echo "npm install failed"; tail -20 "$LOG_DIR/npm.log"; }
fi

# --- 1. Rust ------------------------------------------------------------------------------
say "cargo test"
bounded cargo test --no-fail-fast 2>&1 | tee "$LOG_DIR/cargo.log"
cargo_status=${PIPESTATUS[0]}
sum_word() { grep -E '^test result:' "$LOG_DIR/cargo.log" | awk -v w="$1" '{for (i = 1; i < NF; i++) if ($(i + 1) ~ "^" w) s += $i} END {print s + 0}'; }
p=$(sum_word passed)
f=$(sum_word failed)
if [ "$cargo_status" != 0 ] && [ "$f" = 0 ]; then f=1; echo "cargo test failed before reporting (build error?)"; fi
passed=$((passed + p)); failed=$((failed + f))

# Runs a command inside a network namespace that has only loopback, when we can make one
# (root, or unprivileged user namespaces). Nothing inside can reach beyond 127.0.0.1.
in_loopback_ns() {
  if [ "$(grep -cv -E '^\s*(Inter|face|lo:)' /proc/net/dev)" = 0 ]; then
    "$@"   # already inside a loopback-only namespace
  elif [ "$(id -u)" = 0 ] && unshare --net true 2>/dev/null; then
    unshare --net -- bash -c 'ip link set lo up && exec "$@"' _ "$@"
  elif unshare -rn true 2>/dev/null; then
    unshare -rn -- bash -c 'ip link set lo up && exec "$@"' _ "$@"
  else
    echo "(no network namespace available; running on the host's loopback)"
    "$@"
  fi
}

export -f in_loopback_ns   # `bounded` runs it in a fresh bash under `timeout`

# A script that ends with 'NAME: N passed, M failed'.
count_script() {
  local log=$1 line
  line=$(grep -E '^[A-Za-z_-]+: [0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
  if [ -z "$line" ]; then failed=$((failed + 1)); return; fi
  passed=$((passed + $(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')))
  failed=$((failed + $(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')))
}

# --- 2. Deployment checks -------------------------------------------------------------------
if [ "${MD_SKIP_DEPLOY:-0}" != 1 ]; then
  for t in tests/deploy/turn_denied.sh tests/deploy/compose_check.sh; do
    [ -f "$t" ] || continue
    say "$t"
    bounded bash "$t" 2>&1 | tee "$LOG_DIR/$(basename "$t").log"
    count_script "$LOG_DIR/$(basename "$t").log"
  done
fi

# --- 2b. Type check of the browser app ------------------------------------------------------
# TypeScript's checker over the `// @ts-check` JavaScript in assets/ (settings: jsconfig.json).
# Nothing is emitted; the app still ships as plain ES modules. Counted as one test.
say "type check: tsc -p jsconfig.json"
tests/browser/node_modules/.bin/tsc -p jsconfig.json 2>&1 | tee "$LOG_DIR/tsc.log"
if [ "${PIPESTATUS[0]}" = 0 ]; then passed=$((passed + 1)); echo "type check passed"
else failed=$((failed + 1)); echo "type check FAILED"; fi

# --- 3. Browser ------------------------------------------------------------------------------
if [ "${MD_SKIP_BROWSER:-0}" != 1 ] && [ -d tests/browser ]; then
  say "browser tests (real Chromium)"
  export MD_BIN="$ROOT/target/debug/mini-discord"
  # --test-force-exit: a file whose tests are done ends, even if something it started leaked
  # (a leaked server once kept one alive until CI's time ran out); --test-timeout bounds a
  # test that set no timeout of its own.
  (cd tests/browser && bounded bash -c 'in_loopback_ns "$@"' _ node --test --test-concurrency=1 --test-force-exit \
    --test-timeout=300000 --test-reporter=tap ./*.test.mjs) 2>&1 \
    | tee "$LOG_DIR/browser.log"
  bp=$(grep -E '^# pass ' "$LOG_DIR/browser.log" | tail -1 | awk '{print $3}')
  bf=$(grep -E '^# fail ' "$LOG_DIR/browser.log" | tail -1 | awk '{print $3}')
  if [ -z "$bp" ]; then bf=1; bp=0; echo "browser tests did not report"; fi
  passed=$((passed + bp)); failed=$((failed + ${bf:-0}))
fi

echo
echo "logs: $LOG_DIR"
echo "took $((SECONDS - START)) s"
echo "total: $passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
