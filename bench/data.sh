#!/usr/bin/env bash
# "Own your data" benchmark (issue 17), run by hand: `bash bench/data.sh` (numbers in
# docs/PERFORMANCE.md, section "Your data").
#
# One run, on loopback and one disk:
#   1. import-discord of a generated DiscordChatExporter export of N messages (default
#      100,000; 200 authors, replies, reactions, edits, pins), in timestamp order, and the
#      same export shuffled (the staged path): wall time, messages/s, peak RSS
#      (/usr/bin/time's maximum resident set size);
#   2. the imported database plus FILES_MB of uploaded files (default 100, through the real
#      upload API), then `backup` while the server runs: time, MB/s, peak RSS, against `cp -r`
#      + `sync` of the same DATA_DIR on the same disk; and the server's latency for a small
#      history request (p50/p99) before and during the backup;
#   3. `restore` of that archive into an empty DATA_DIR: time, MB/s; then `check-db`.
# Needs: curl, python3, /usr/bin/time. MD_BIN picks the binary (default
# target/release/mini-discord, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}
FILES_MB=${FILES_MB:-100}
BIN=${MD_BIN:-target/release/mini-discord}
[ -x "$BIN" ] || cargo build --release
BIN=$(realpath "$BIN")
WORK=$(mktemp -d /tmp/md-data-bench.XXXXXX)
SERVER=""
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
URL="http://127.0.0.1:$PORT"
start_server() {
  DATA_DIR="$WORK/data" LISTEN_ADDR="127.0.0.1:$PORT" REGISTRATION=open LOG_LEVEL=warn \
    MAX_UPLOAD_MB=200 UPLOAD_QUOTA_MB=1000000 "$BIN" >>"$WORK/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 100); do curl -sf "$URL/healthz" >/dev/null && return; sleep 0.1; done
  echo "server did not start"; cat "$WORK/server.log"; exit 1
}
stop_server() { kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""; }
mb() { python3 -c "import os,sys; t=0
for root,_,fs in os.walk(sys.argv[1]):
    t+=sum(os.path.getsize(os.path.join(root,f)) for f in fs)
print('%.1f' % (t/1e6))" "$1"; }

echo "generating a $N-message export in $WORK"
python3 - "$WORK" "$N" <<'PY'
import json, random, sys, datetime
out, n = sys.argv[1], int(sys.argv[2])
random.seed(17)
authors = [{"id": str(10**17 + i), "name": f"member{i}", "discriminator": "0000",
            "nickname": f"Member {i}", "color": None, "isBot": False, "roles": [],
            "avatarUrl": "https://cdn.discordapp.com/embed/avatars/0.png"} for i in range(200)]
words = "the quick brown fox jumps over a lazy dog while we talk about rust sqlite and voice".split()
t0 = datetime.datetime(2019, 1, 1, tzinfo=datetime.timezone.utc)
msgs = []
for i in range(n):
    ts = t0 + datetime.timedelta(seconds=i * 37)
    m = {"id": str(2 * 10**17 + i), "type": "Default", "timestamp": ts.isoformat(timespec="milliseconds"),
         "timestampEdited": None, "callEndedTimestamp": None, "isPinned": i % 500 == 0,
         "content": " ".join(random.choices(words, k=random.randint(3, 20))),
         "author": random.choice(authors), "attachments": [], "embeds": [], "stickers": [],
         "reactions": [], "mentions": []}
    if i % 10 == 3 and i > 0:
        m["type"] = "Reply"
        m["reference"] = {"messageId": str(2 * 10**17 + random.randrange(i)), "channelId": "1", "guildId": "1"}
    if i % 20 == 7:
        m["reactions"] = [{"emoji": {"id": None, "name": "👍", "code": "thumbsup", "isAnimated": False, "imageUrl": ""},
                           "count": 3, "users": random.sample(authors, 3)}]
    if i % 100 == 1:
        m["timestampEdited"] = (ts + datetime.timedelta(minutes=5)).isoformat(timespec="milliseconds")
    msgs.append(m)
def doc(ms, cid, name):
    return {"guild": {"id": "1", "name": "Bench Guild", "iconUrl": ""},
            "channel": {"id": cid, "type": "GuildTextChat", "categoryId": None, "category": None, "name": name, "topic": None},
            "dateRange": {"after": None, "before": None}, "exportedAt": "2024-01-01T00:00:00+00:00",
            "messages": ms, "messageCount": len(ms)}
with open(f"{out}/sorted.json", "w") as f:
    json.dump(doc(msgs, "900", "bench-sorted"), f, indent=2, ensure_ascii=False)
random.shuffle(msgs)
for m in msgs:  # other Discord ids, so that the shuffled file is imported too, not skipped
    m["id"] = str(int(m["id"]) + 10**16)
    if "reference" in m:
        m["reference"]["messageId"] = str(int(m["reference"]["messageId"]) + 10**16)
with open(f"{out}/shuffled.json", "w") as f:
    json.dump(doc(msgs, "901", "bench-shuffled"), f, indent=2, ensure_ascii=False)
PY
EXPORT_MB=$(python3 -c "import os; print('%.1f' % (os.path.getsize('$WORK/sorted.json')/1e6))")

mkdir -p "$WORK/data"
start_server
TOKEN=$(curl -sf -H 'Content-Type: application/json' -d '{"username":"admin","password":"benchmark-pass"}' \
  "$URL/api/register" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
stop_server

for f in sorted shuffled; do
  /usr/bin/time -f "%e %M" -o "$WORK/time.$f" env DATA_DIR="$WORK/data" "$BIN" import-discord "$WORK/$f.json" >"$WORK/import.$f.log"
  read -r secs rss <"$WORK/time.$f"
  echo "import $f: $N messages ($EXPORT_MB MB of JSON) in $secs s = $(python3 -c "print(round($N/$secs))") msgs/s, peak RSS $(python3 -c "print('%.1f' % ($rss/1024))") MiB"
  tail -1 "$WORK/import.$f.log"
done

start_server
echo "uploading $FILES_MB MB of files"
for i in $(seq $((FILES_MB / 2))); do
  head -c 2000000 /dev/urandom >"$WORK/up.bin"
  curl -sf -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/octet-stream' \
    --data-binary @"$WORK/up.bin" "$URL/api/attachments?filename=f$i.bin" >/dev/null
done
rm -f "$WORK/up.bin"
DATA_MB=$(mb "$WORK/data")

probe() { # seconds -> "p50 p99 n" of GET /api/history latencies (ms), new connection each
  python3 - "$PORT" "$TOKEN" "$1" <<'PY'
import http.client, sys, time, statistics
port, token, secs = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
lat = []
end = time.time() + secs
while time.time() < end:
    t = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/api/history?channel=bench-sorted&limit=20", headers={"Authorization": "Bearer " + token})
    r = c.getresponse(); r.read(); c.close()
    lat.append((time.perf_counter() - t) * 1000)
    time.sleep(0.01)
lat.sort()
print("%.1f %.1f %d" % (statistics.median(lat), lat[int(len(lat) * 0.99) - 1], len(lat)))
PY
}
read -r b50 b99 bn < <(probe 3)
# First backup alone, for its time; then a second one with the probe running for as long.
/usr/bin/time -f "%e %M" -o "$WORK/time.backup" env DATA_DIR="$WORK/data" "$BIN" backup "$WORK/b.tar" >/dev/null
read -r bsecs brss <"$WORK/time.backup"
probe "$bsecs" >"$WORK/probe.during" &
PROBE=$!
/usr/bin/time -f "%e %M" -o "$WORK/time.backup2" env DATA_DIR="$WORK/data" "$BIN" backup "$WORK/b2.tar" >/dev/null
wait "$PROBE"
read -r d50 d99 dn <"$WORK/probe.during"
read -r bsecs2 _ <"$WORK/time.backup2"
ARCH_MB=$(python3 -c "import os; print('%.1f' % (os.path.getsize('$WORK/b.tar')/1e6))")
stop_server

s=$(date +%s.%N); cp -r "$WORK/data" "$WORK/copy"; sync; e=$(date +%s.%N)
CP=$(python3 -c "print('%.2f' % ($e-$s))")
rm -rf "$WORK/copy" "$WORK/b2.tar"
/usr/bin/time -f "%e %M" -o "$WORK/time.restore" env DATA_DIR="$WORK/restored" "$BIN" restore "$WORK/b.tar" >/dev/null
read -r rsecs rrss <"$WORK/time.restore"
CHECK=$("$BIN" check-db "$WORK/restored/chat.db" | head -1)

echo "DATA_DIR: $DATA_MB MB ($((2 * N)) imported messages + $FILES_MB MB of files); archive $ARCH_MB MB"
echo "backup (server running): $bsecs s and $bsecs2 s = $(python3 -c "print(round($ARCH_MB/$bsecs))") MB/s, peak RSS $(python3 -c "print('%.1f' % ($brss/1024))") MiB; cp -r + sync of DATA_DIR: $CP s"
echo "server GET /api/history latency: before p50 $b50 ms p99 $b99 ms ($bn requests); during backup p50 $d50 ms p99 $d99 ms ($dn requests)"
echo "restore: $rsecs s = $(python3 -c "print(round($ARCH_MB/$rsecs))") MB/s, peak RSS $(python3 -c "print('%.1f' % ($rrss/1024))") MiB; check-db: $CHECK"
