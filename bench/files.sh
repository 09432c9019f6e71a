#!/usr/bin/env bash
# Files benchmark (issue 12), run by hand: `bash bench/files.sh` (numbers in docs/PERFORMANCE.md).
#
# Side by side in one run, on loopback and the same disk:
#   - a 100 MB upload to our server (streamed, hashed, fsynced, renamed) against the machine's
#     own limit for the same work: `cp` of the file plus `sync`, on the same disk;
#   - a 100 MB download from our server against `curl` from `python3 -m http.server` serving
#     the same bytes;
#   - the server's peak RSS during 20 concurrent 25 MB uploads by 10 users;
#   - the extra time a 12-megapixel JPEG takes over a non-image of the same size (decode,
#     orientation, 400 px thumbnail).
# ROUNDS alternating rounds (default 5); medians and per-round ratios are printed.
# Needs: curl, python3 (Pillow for the JPEG: `pip install pillow`). MD_BIN picks the binary
# (default: target/release/mini-discord, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
BIN=${MD_BIN:-target/release/mini-discord}
[ -x "$BIN" ] || cargo build --release
WORK=$(mktemp -d /tmp/md-files-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
mkdir -p "$WORK/data" "$WORK/static" "$WORK/copy"
DATA_DIR="$WORK/data" LISTEN_ADDR="127.0.0.1:$PORT" REGISTRATION=open LOG_LEVEL=warn \
  MAX_UPLOAD_MB=200 UPLOAD_QUOTA_MB=1000000 "$BIN" >"$WORK/server.log" 2>&1 &
SERVER=$!; PIDS+=("$SERVER")
SPORT=$(free_port)
(cd "$WORK/static" && exec python3 -m http.server --bind 127.0.0.1 "$SPORT" >/dev/null 2>&1) &
PIDS+=("$!")
URL="http://127.0.0.1:$PORT"
for _ in $(seq 100); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.1; done

token() {
  curl -sf -H 'Content-Type: application/json' -d "{\"username\":\"$1\",\"password\":\"benchmark-pass\"}" \
    "$URL/api/register" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}
T=$(token bench0)
upload() { # file name token -> prints "seconds url" on one line
  local t
  t=$(curl -sf -H "Authorization: Bearer $3" -H 'Content-Type: application/octet-stream' \
    --data-binary @"$1" "$URL/api/attachments?filename=$2" -w '%{time_total}' -o "$WORK/up.json")
  echo "$t $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["attachment"]["url"])' "$WORK/up.json")"
}
median() { python3 -c 'import sys,statistics; print("%.3f" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

echo "preparing files in $WORK"
for i in $(seq "$ROUNDS"); do head -c 100000000 /dev/urandom >"$WORK/big$i.bin"; done
cp "$WORK/big1.bin" "$WORK/static/big.bin"
python3 - "$WORK/photo.jpg" <<'PY'
import sys, random
from PIL import Image
img = Image.effect_noise((4000, 3000), 64).convert("RGB")   # 12 megapixels
img.save(sys.argv[1], quality=90)
PY
head -c "$(stat -c %s "$WORK/photo.jpg")" /dev/urandom >"$WORK/photo-sized.bin"

up=(); cpt=(); down=(); ref=(); jpg=(); raw=()
for i in $(seq "$ROUNDS"); do
  # Upload vs cp + sync of the same 100 MB (different bytes every round: no dedup).
  read -r u url < <(upload "$WORK/big$i.bin" "big$i.bin" "$T")
  s=$(date +%s.%N); cp "$WORK/big$i.bin" "$WORK/copy/big$i.bin"; sync "$WORK/copy/big$i.bin"; e=$(date +%s.%N)
  c=$(python3 -c "print($e-$s)")
  d=$(curl -sf -H "Authorization: Bearer $T" -o /dev/null -w '%{time_total}' "$URL$url")
  r=$(curl -sf -o /dev/null -w '%{time_total}' "http://127.0.0.1:$SPORT/big.bin")
  read -r j _ < <(upload "$WORK/photo.jpg" "photo$i.jpg" "$T")
  read -r b _ < <(upload "$WORK/photo-sized.bin" "raw$i.bin" "$T")
  rm -f "$WORK/copy/big$i.bin"
  up+=("$u"); cpt+=("$c"); down+=("$d"); ref+=("$r"); jpg+=("$j"); raw+=("$b")
  printf 'round %d: upload %.3f s vs cp+sync %.3f s (%.2f x) | download %.3f s vs http.server %.3f s (%.2f x) | 12 MP JPEG %.3f s vs same-size bytes %.3f s\n' \
    "$i" "$u" "$c" "$(python3 -c "print($c/$u)")" "$d" "$r" "$(python3 -c "print($r/$d)")" "$j" "$b"
done
mu=$(median "${up[@]}"); mc=$(median "${cpt[@]}"); md=$(median "${down[@]}"); mr=$(median "${ref[@]}")
mj=$(median "${jpg[@]}"); mb=$(median "${raw[@]}")
echo "median upload 100 MB: $mu s ($(python3 -c "print(round(100/$mu))") MB/s); cp+sync: $mc s; ours/limit throughput: $(python3 -c "print('%.2f' % ($mc/$mu))")"
echo "median download 100 MB: $md s ($(python3 -c "print(round(100/$md))") MB/s); http.server: $mr s; ours/reference throughput: $(python3 -c "print('%.2f' % ($mr/$md))")"
echo "median 12 MP JPEG upload: $mj s; same-size non-image: $mb s; decode + thumbnail ≈ $(python3 -c "print('%.3f' % ($mj-$mb))") s"

# RSS during 20 concurrent 25 MB uploads by 10 users.
head -c 25000000 /dev/urandom >"$WORK/mid.bin"
toks=(); for u in $(seq 10); do toks+=("$(token "user$u")"); done
base=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER/status")
peak=$base
cpids=()
for n in $(seq 20); do
  curl -sf -H "Authorization: Bearer ${toks[$((n % 10))]}" -H 'Content-Type: application/octet-stream' \
    --data-binary @"$WORK/mid.bin" "$URL/api/attachments?filename=mid$n.bin" -o /dev/null -w '%{http_code} ' &
  cpids+=("$!")
done
while kill -0 "${cpids[@]}" 2>/dev/null; do
  r=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER/status"); [ "$r" -gt "$peak" ] && peak=$r; sleep 0.02
done
wait "${cpids[@]}" || true
echo
echo "RSS during 20 concurrent 25 MB uploads: $((base / 1024)) MiB before, peak $((peak / 1024)) MiB (+$(((peak - base) / 1024)) MiB)"
echo "(the 4th concurrent upload of one user gets 429, so some of the 20 may be refused: see the codes above)"
