#!/usr/bin/env bash
# Video benchmark (issue 15), run by hand: `bash bench/video.sh` (numbers in docs/PERFORMANCE.md).
#
# Three headless Chromium contexts in `lounge` on loopback (bench/video.mjs says what is
# measured): camera on → first decoded frame, "Share screen" → first decoded frame at a
# watcher, and the sharer's video upload with one and with two watchers, with the app's
# bitrate caps and with Chromium's own defaults, for Chromium's fake screen and for a noise
# source that only caps can hold back.
# Runs inside a loopback-only network namespace when it can make one (as tests/run.sh does).
# MD_BIN picks the server binary (default target/debug/mini-discord: the server only relays
# signaling here, media goes browser to browser). ROUNDS (5), WARMUP_MS (8000), WINDOW_MS
# (8000) tune the run. Needs chromium and tests/browser's npm packages (tests/run.sh
# installs both). Takes about 4 minutes; run it on a machine that is otherwise quiet.
set -euo pipefail
cd "$(dirname "$0")/.."
export MD_BIN=${MD_BIN:-$PWD/target/debug/mini-discord}
[ -x "$MD_BIN" ] || cargo build
[ -d tests/browser/node_modules/playwright-core ] || (cd tests/browser && npm ci --no-audit --no-fund)
if [ "$(id -u)" = 0 ] && unshare --net true 2>/dev/null; then
  exec unshare --net -- bash -c 'ip link set lo up && exec node bench/video.mjs'
elif unshare -rn true 2>/dev/null; then
  exec unshare -rn -- bash -c 'ip link set lo up && exec node bench/video.mjs'
else
  exec node bench/video.mjs
fi
