#!/usr/bin/env python3
"""Print the side-by-side table (markdown) from a bench/run.sh results.jsonl.
usage: report.py results.jsonl [server_bin ref_bin]
       report.py --stages LABEL METRICS_FILE   one JSON line: the md_delivery_stage_seconds
                                               histograms of a saved /metrics page
       report.py --threads LABEL PID           one JSON line: context switches and CPU of
                                               the process's threads, grouped by name"""
import json, os, sys

STAGES = ["commit", "router", "push", "sendmsg_first", "sendmsg_last"]


def parse_stages(text):
    """{stage: {"buckets": [[le_seconds, cumulative], ...], "sum": s, "count": n}}"""
    out = {}
    for line in text.splitlines():
        if not line.startswith("md_delivery_stage_seconds_"):
            continue
        head, value = line.rsplit(" ", 1)
        kind, labels = head[len("md_delivery_stage_seconds_"):].split("{", 1)
        lab = dict(kv.split("=", 1) for kv in labels.rstrip("}").split(","))
        st = out.setdefault(lab["stage"].strip('"'), {"buckets": [], "sum": 0.0, "count": 0})
        if kind == "bucket":
            le = lab["le"].strip('"')
            st["buckets"].append([float("inf") if le == "+Inf" else float(le), int(value)])
        elif kind == "sum":
            st["sum"] = float(value)
        elif kind == "count":
            st["count"] = int(value)
    return out


def quantile(st, q):
    """The q-quantile of a stage histogram, in ms, interpolated within its bucket."""
    n = st["count"]
    if not n:
        return None
    want, lo, below = q * n, 0.0, 0
    for le, cum in st["buckets"]:
        if cum >= want:
            if le == float("inf"):
                return lo * 1e3
            inside = cum - below
            frac = (want - below) / inside if inside else 1.0
            return (lo + (le - lo) * frac) * 1e3
        lo, below = le, cum
    return lo * 1e3


def threads(pid):
    """Per thread name: threads, voluntary / involuntary context switches, CPU seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    base = f"/proc/{pid}/task"
    for tid in os.listdir(base):
        try:
            comm = open(f"{base}/{tid}/comm").read().strip()
            status = dict(l.split(":", 1) for l in open(f"{base}/{tid}/status") if ":" in l)
            stat = open(f"{base}/{tid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # connection threads (the readers) are all "conn"
        name = comm if comm in ("router", "writer", "store", "push", "conn") else "other"
        t = out.setdefault(name, {"threads": 0, "voluntary": 0, "nonvoluntary": 0, "cpu_s": 0.0})
        t["threads"] += 1
        t["voluntary"] += int(status["voluntary_ctxt_switches"])
        t["nonvoluntary"] += int(status["nonvoluntary_ctxt_switches"])
        t["cpu_s"] = round(t["cpu_s"] + (int(stat[11]) + int(stat[12])) / tick, 2)
    return out


if len(sys.argv) == 4 and sys.argv[1] == "--stages":
    st = parse_stages(open(sys.argv[3]).read())
    print(json.dumps({"mode": "stages", "label": sys.argv[2] + "-stages", "stages": st}))
    sys.exit(0)
if len(sys.argv) == 4 and sys.argv[1] == "--threads":
    print(json.dumps({"mode": "threads", "label": sys.argv[2] + "-threads", "threads": threads(sys.argv[3])}))
    sys.exit(0)

rows = {}
for line in open(sys.argv[1]):
    line = line.strip()
    if line:
        d = json.loads(line)
        rows[d.get("label", "")] = d

def g(label, key):
    return rows.get(label, {}).get(key)

def fmt(v, unit=""):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        v = f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"
    elif isinstance(v, int):
        v = f"{v:,}"
    return f"{v}{unit}"

def ratio(a, b):
    try:
        return f"{a / b:.2f}" if a is not None and b not in (None, 0) else "n/a"
    except TypeError:
        return "n/a"

out = []
def row(name, a, b=None, r=None, target=""):
    out.append(f"| {name} | {a} | {b if b is not None else '–'} | {r if r is not None else '–'} | {target} |")

out.append("| measurement | mini-discord | reference (axum) | ours/ref | target |")
out.append("|---|---|---|---|---|")
so, sr = g("startup/ours", "startup_ms"), g("startup/ref", "startup_ms")
row("start-up, exec → /healthz 200 (median)", fmt(so, " ms"), fmt(sr, " ms"), ratio(so, sr), "≤ 100 ms")
io_, ir = g("startup/ours", "idle_rss_kb"), g("startup/ref", "idle_rss_kb")
row("idle RSS after start", fmt(io_ and io_ / 1024, " MiB"), fmt(ir and ir / 1024, " MiB"), ratio(io_, ir), "≤ 15 MiB")
bo, br = g("startup/ours", "binary_bytes"), g("startup/ref", "binary_bytes")
row("release binary size", fmt(bo and bo / 2**20, " MiB"), fmt(br and br / 2**20, " MiB"), ratio(bo, br), "≤ 10 MiB")

def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2


# Fan-out (issue 20): alternating rounds of ours against the reference with TCP_NODELAY
# ("refnd"), each on a fresh server; labels fanout{rate}/{who}/r{n}.
fanout = []
for rate in (200, 1000):
    rounds = sorted({int(l.rsplit("/r", 1)[1]) for l in rows
                     if l.startswith(f"fanout{rate}/") and l.count("/") == 2 and l.rsplit("/r", 1)[1].isdigit()})
    if not rounds:
        continue
    pin = rows.get(f"fanout{rate}/ours/r{rounds[0]}-pin", {})
    how = ("pinned: server on core 1 (`taskset -c 1`), load generator on core 0 (`taskset -c 0`)"
           if pin.get("pinned") else "unpinned: server and load generator share both cores")
    n = g(f"fanout{rate}/ours/r{rounds[0]}", "ready")
    fanout.append(f"\n### Fan-out {rate} msg/s × {fmt(n)} sockets (100 users, 10 senders), {len(rounds)} alternating rounds, {how}\n")
    fanout.append("ours: mini-discord with `DB_SYNCHRONOUS=FULL`; refnd: the axum reference with `TCP_NODELAY`. "
                  "Each run on a fresh server. Ratios are ours / refnd within the round.\n")
    fanout.append("| round | ours p50 / p99 ms | refnd p50 / p99 ms | p50 ratio | p99 ratio | ours CPU s per M | refnd CPU s per M | CPU ratio | lost ours / refnd | dups+reorders ours | other_cores ours / refnd |")
    fanout.append("|---|---|---|---|---|---|---|---|---|---|---|")
    cols = {k: [] for k in ("op50", "op99", "rp50", "rp99", "ocpu", "rcpu", "r50", "r99", "rcpu_ratio")}
    for rn in rounds:
        o, r = f"fanout{rate}/ours/r{rn}", f"fanout{rate}/refnd/r{rn}"
        op50, op99, ocpu = g(o, "p50_ms"), g(o, "p99_ms"), g(o, "server_cpu_s_per_M")
        rp50, rp99, rcpu = g(r, "p50_ms"), g(r, "p99_ms"), g(r, "server_cpu_s_per_M")
        for k, v in (("op50", op50), ("op99", op99), ("rp50", rp50), ("rp99", rp99), ("ocpu", ocpu), ("rcpu", rcpu)):
            cols[k].append(v)
        q = lambda a, b: a / b if a is not None and b else None
        cols["r50"].append(q(op50, rp50)); cols["r99"].append(q(op99, rp99)); cols["rcpu_ratio"].append(q(ocpu, rcpu))
        dr = (g(o, "dups") or 0) + (g(o, "reorders") or 0) + (g(o, "id_regress") or 0)
        fanout.append(f"| {rn} | {fmt(op50)} / {fmt(op99)} | {fmt(rp50)} / {fmt(rp99)} | {ratio(op50, rp50)} | {ratio(op99, rp99)} | "
                      f"{fmt(ocpu)} | {fmt(rcpu)} | {ratio(ocpu, rcpu)} | {fmt(g(o, 'lost'))} of {fmt(g(o, 'expected'))} / "
                      f"{fmt(g(r, 'lost'))} of {fmt(g(r, 'expected'))} | {dr} | {fmt(g(o, 'other_cores'))} / {fmt(g(r, 'other_cores'))} |")
    m = {k: median(v) for k, v in cols.items()}
    f2 = lambda v: f"{v:.2f}" if v is not None else "n/a"
    fanout.append(f"| **median** | **{fmt(m['op50'])} / {fmt(m['op99'])}** | **{fmt(m['rp50'])} / {fmt(m['rp99'])}** | "
                  f"{f2(m['r50'])} (of ratios) | {f2(m['r99'])} (of ratios) | {fmt(m['ocpu'])} | {fmt(m['rcpu'])} | {f2(m['rcpu_ratio'])} | | | |")
    fanout.append(f"\nRatio of the medians (ours / refnd): p50 {ratio(m['op50'], m['rp50'])}, p99 {ratio(m['op99'], m['rp99'])}, "
                  f"CPU per delivery {ratio(m['ocpu'], m['rcpu'])}.\n")
    if any(g(f"fanout{rate}/ours/r{rn}", "kernel_p99_ms") is not None for rn in rounds):
        # The same runs counted to the kernel's receive timestamp of each read (loadgen stamp.rs):
        # the load generator's own delay in getting to a socket is not in these.
        fanout.append("\nThe same runs, each frame's latency counted to the kernel's receive timestamp of the read "
                      "that brought it (`SO_TIMESTAMPING`; the reader's own delay is not in these); read lag (epoll reader only) = "
                      "the reader's clock minus that stamp, per read:\n")
        fanout.append("| round | ours kernel p50 / p99 ms | refnd kernel p50 / p99 ms | p50 ratio | p99 ratio | read lag p50 / p99 ms, ours / refnd |")
        fanout.append("|---|---|---|---|---|---|")
        kc = {k: [] for k in ("o50", "o99", "r50", "r99", "q50", "q99")}
        for rn in rounds:
            o, r = f"fanout{rate}/ours/r{rn}", f"fanout{rate}/refnd/r{rn}"
            o50, o99, r50, r99 = g(o, "kernel_p50_ms"), g(o, "kernel_p99_ms"), g(r, "kernel_p50_ms"), g(r, "kernel_p99_ms")
            q = lambda a, b: a / b if a is not None and b else None
            for k, v in (("o50", o50), ("o99", o99), ("r50", r50), ("r99", r99), ("q50", q(o50, r50)), ("q99", q(o99, r99))):
                kc[k].append(v)
            fanout.append(f"| {rn} | {fmt(o50)} / {fmt(o99)} | {fmt(r50)} / {fmt(r99)} | {ratio(o50, r50)} | {ratio(o99, r99)} | "
                          f"{fmt(g(o, 'read_lag_p50_ms'))} / {fmt(g(o, 'read_lag_p99_ms'))}, {fmt(g(r, 'read_lag_p50_ms'))} / {fmt(g(r, 'read_lag_p99_ms'))} |")
        km = {k: median([x for x in v if x is not None]) for k, v in kc.items()}
        fanout.append(f"| **median** | **{fmt(km['o50'])} / {fmt(km['o99'])}** | **{fmt(km['r50'])} / {fmt(km['r99'])}** | "
                      f"{f2(km['q50'])} (of ratios) | {f2(km['q99'])} (of ratios) | |")
        fanout.append(f"\nKernel-stamped, ratio of the medians (ours / refnd): p50 {ratio(km['o50'], km['r50'])}, "
                      f"p99 {ratio(km['o99'], km['r99'])}.\n")
    if any(f"fanout{rate}/oursb/r{rn}" in rows for rn in rounds):
        # FANOUT_B_ENV: an A/B of one setting, ours with it ("oursb") against ours without.
        fanout.append("\n| round | ours p50 / p99 ms | oursb p50 / p99 ms | oursb/ours p50 | oursb/ours p99 | oursb/ours CPU |")
        fanout.append("|---|---|---|---|---|---|")
        ab = {"r50": [], "r99": [], "rcpu": [], "b50": [], "b99": []}
        for rn in rounds:
            o, b = f"fanout{rate}/ours/r{rn}", f"fanout{rate}/oursb/r{rn}"
            q = lambda x, y: x / y if x is not None and y else None
            ab["r50"].append(q(g(b, "p50_ms"), g(o, "p50_ms"))); ab["r99"].append(q(g(b, "p99_ms"), g(o, "p99_ms")))
            ab["rcpu"].append(q(g(b, "server_cpu_s_per_M"), g(o, "server_cpu_s_per_M")))
            ab["b50"].append(g(b, "p50_ms")); ab["b99"].append(g(b, "p99_ms"))
            fanout.append(f"| {rn} | {fmt(g(o, 'p50_ms'))} / {fmt(g(o, 'p99_ms'))} | {fmt(g(b, 'p50_ms'))} / {fmt(g(b, 'p99_ms'))} | "
                          f"{ratio(g(b, 'p50_ms'), g(o, 'p50_ms'))} | {ratio(g(b, 'p99_ms'), g(o, 'p99_ms'))} | "
                          f"{ratio(g(b, 'server_cpu_s_per_M'), g(o, 'server_cpu_s_per_M'))} |")
        mb = {k: median(v) for k, v in ab.items()}
        fanout.append(f"| **median** | **{fmt(m['op50'])} / {fmt(m['op99'])}** | **{fmt(mb['b50'])} / {fmt(mb['b99'])}** | "
                      f"{f2(mb['r50'])} | {f2(mb['r99'])} | {f2(mb['rcpu'])} |")
        fanout.append(f"\noursb against refnd, ratio of the medians: p50 {ratio(mb['b50'], m['rp50'])}, p99 {ratio(mb['b99'], m['rp99'])}.\n")
    nagle = f"fanout{rate}/ref/r1"
    if nagle in rows:
        fanout.append("| run | | p50 / p99 ms | | | | CPU s per M | | lost | | other_cores |")
        fanout.append("|---|---|---|---|---|---|---|---|---|---|---|")
        fanout.append(f"| ref (Nagle on, axum's default), one run | | {fmt(g(nagle, 'p50_ms'))} / {fmt(g(nagle, 'p99_ms'))} | | | | "
                      f"{fmt(g(nagle, 'server_cpu_s_per_M'))} | | – / {fmt(g(nagle, 'lost'))} of {fmt(g(nagle, 'expected'))} | | – / {fmt(g(nagle, 'other_cores'))} |")
    for rn in rounds:
        for who in ("ours", "refnd"):
            lab = f"fanout{rate}/{who}/r{rn}"
            for k in ("errors", "closed", "not_ready"):
                if rows.get(lab, {}).get(k):
                    fanout.append(f"\n{lab}: {k} {json.dumps(rows[lab][k])}")
    # Where ours spends the time, stage by stage, from /metrics after each round.
    st_rounds = [(rn, rows.get(f"fanout{rate}/ours/r{rn}-stages", {}).get("stages")) for rn in rounds]
    st_rounds = [(rn, s) for rn, s in st_rounds if s]
    if st_rounds:
        fanout.append(f"\nStages of ours at {rate} msg/s (`md_delivery_stage_seconds`, time since the reader read the "
                      "`send` frame; p50/p99 interpolated within the histogram's buckets; Δ mean = mean time in that stage alone):\n")
        fanout.append("| round | " + " | ".join(f"{s} p50 / p99 / mean (Δ mean) ms" for s in STAGES) + " | frames per sendmsg |")
        fanout.append("|---|" + "---|" * (len(STAGES) + 1))
        means = {name: [] for name in STAGES}
        for rn, s in st_rounds:
            cells, prev = [], 0.0
            for name in STAGES:
                h = s.get(name, {"count": 0})
                mean = h["sum"] / h["count"] * 1e3 if h.get("count") else None
                means[name].append(mean)
                cells.append(f"{f2(quantile(h, 0.5))} / {f2(quantile(h, 0.99))} / {f2(mean)} ({f2(mean - prev if mean is not None else None)})")
                prev = mean or prev
            mt = rows.get(f"fanout{rate}/ours/r{rn}-metrics")
            fps = f"{mt['deliveries'] / mt['sends']:.2f}" if mt and mt.get("sends") else "n/a"
            fanout.append(f"| {rn} | " + " | ".join(cells) + f" | {fps} |")
        cells, prev = [], 0.0
        for name in STAGES:
            m_ = median(means[name])
            cells.append(f"mean {f2(m_)} (Δ {f2(m_ - prev if m_ is not None else None)})")
            prev = m_ or prev
        fanout.append("| **median of the rounds** | " + " | ".join(cells) + " | |")
    th = [(rn, rows.get(f"fanout{rate}/ours/r{rn}-threads", {}).get("threads")) for rn in rounds]
    th = [(rn, t) for rn, t in th if t]
    if th:
        fanout.append(f"\nThreads of ours at {rate} msg/s, whole run including set-up (voluntary / involuntary context switches, CPU s; "
                      "read after the load generator closed its sockets, so the readers, `conn`, have mostly ended):\n")
        names = ["store", "router", "writer", "push", "conn", "other"]
        fanout.append("| round | " + " | ".join(names) + " |")
        fanout.append("|---|" + "---|" * len(names))
        for rn, t in th:
            fanout.append(f"| {rn} | " + " | ".join(
                f"{t[n]['voluntary']:,} / {t[n]['nonvoluntary']:,} / {t[n]['cpu_s']}" if n in t else "–" for n in names) + " |")

o, r = "idle/ours", "idle/ref"
if o in rows or r in rows:
    row("idle: sockets tried (ceiling logged by ours)", f"{fmt(g(o,'tried'))} (ceiling {fmt(g(o,'ceiling'))})", fmt(g(r, "tried")))
    row("idle: sockets held (got ready)", fmt(g(o, "ready")), fmt(g(r, "ready")), ratio(g(o, "ready"), g(r, "ready")), "≥ 15,000 (= ceiling)")
    row("idle: refused / failed", json.dumps(g(o, "failures")), json.dumps(g(r, "failures")), None, "clean 503 past ceiling")
    row("idle: RSS per held socket", fmt(g(o, "rss_per_socket_kb"), " KiB"), fmt(g(r, "rss_per_socket_kb"), " KiB"),
        ratio(g(o, "rss_per_socket_kb"), g(r, "rss_per_socket_kb")), "≤ 16 KiB")
    a, b = g(o, "server_rss_kb"), g(r, "server_rss_kb")
    row("idle: server RSS while held", fmt(a and a / 1024, " MiB"), fmt(b and b / 1024, " MiB"), ratio(a, b))
    row("idle: server threads while held", fmt(g(o, "server_threads")), fmt(g(r, "server_threads")))
    row("idle: /healthz while held / after release", f"{g(o,'healthz_while_held')} / {g(o,'healthz_after')}",
        f"{g(r,'healthz_while_held')} / {g(r,'healthz_after')}", None, "live server")
    row("idle: process alive after", str(g(o, "alive_after")), str(g(r, "alive_after")), None, "never an abort")

for lab, name in (("acks-group/ours", "acked inserts/s, 10 senders × window 32 (group commit)"),
                  ("acks-batch1/ours", "acked inserts/s, same load, STORE_BATCH=1 (1 transaction per message)"),
                  ("acks-single/ours", "acked inserts/s, 1 sender × window 1 (one message in flight)")):
    if lab in rows:
        row(name + (f" [store batch avg {g(lab, 'batch_avg')}]" if g(lab, 'batch_avg') else ""), f"{fmt(g(lab,'acked_per_s'))}/s (ack p50 {fmt(g(lab,'ack_p50_ms'))} ms, p99 {fmt(g(lab,'ack_p99_ms'))} ms, {g(lab,'errors')} errors)",
            "n/a (no store)", None, "≥ 20,000/s" if "group" in lab else "")
if "seed/ours" in rows:
    row("seeding through /ws, 8 senders × window 64", f"{fmt(g('seed/ours','acked'))} msgs at {fmt(g('seed/ours','acked_per_s'))}/s in {fmt(g('seed/ours','span_s'))} s", "n/a")
h = "history/ours"
if h in rows:
    n = g(h, "max_id")
    row(f"history limit=50 at {fmt(n)} messages: p50 / p99 / max",
        f"{fmt(g(h,'latest_p50_ms'))} / {fmt(g(h,'latest_p99_ms'))} / {fmt(g(h,'latest_max_ms'))} ms ({fmt(g(h,'latest_rps'))} req/s)", "n/a", None, "p99 ≤ 5 ms")
    row(f"history limit=50&before=random: p50 / p99 / max",
        f"{fmt(g(h,'before_p50_ms'))} / {fmt(g(h,'before_p99_ms'))} / {fmt(g(h,'before_max_ms'))} ms ({fmt(g(h,'before_rps'))} req/s)", "n/a", None, "p99 ≤ 5 ms")
    bad = (g(h, "latest_bad") or 0) + (g(h, "before_bad") or 0)
    if bad:
        row("history: failed requests", str(bad), None)
if "db/ours" in rows:
    row("database size after seeding", fmt(g("db/ours", "bytes") / 2**20, " MiB"), "n/a")

# "Run a community" (issue 13): the half-visible fan-out against the all-visible one, in
# alternating pinned rounds (labels roles-{all,half,half2x}/rN): medians and per-round ratios.
# half2x sends at twice the rate, so it makes as many deliveries per second as all.
import statistics
rounds = sorted({int(l.split("/r")[1]) for l in rows
                 if l.startswith("roles-") and "/r" in l and not l.endswith("-metrics")})
if rounds:
    vis_all = [v for v in ("all", "half", "half2x") if f"roles-{v}/r{rounds[0]}" in rows]
    def cell(d):
        fps = ""
        if d.get("_m") and d["_m"].get("sends"):
            fps = f", {d['_m']['deliveries'] / d['_m']['sends']:.2f} frames/sendmsg"
        return (f"{fmt(d.get('p50_ms'))} / {fmt(d.get('p99_ms'))} ms, {fmt(d.get('server_cpu_s_per_M'))} s/M"
                f"{fps}, leaked {fmt(d.get('leaked'))}")
    out.append("")
    out.append("| round | " + " | ".join(f"{v}: p50 / p99, CPU per M deliveries" for v in vis_all)
               + " | " + " | ".join(f"{v}/all p99, CPU" for v in vis_all[1:]) + " |")
    out.append("|---" * (1 + len(vis_all) + len(vis_all) - 1) + "|")
    med = {v: {} for v in vis_all}
    for n in rounds:
        ds = {}
        for v in vis_all:
            d = dict(rows.get(f"roles-{v}/r{n}", {}))
            d["_m"] = rows.get(f"roles-{v}/r{n}-metrics")
            ds[v] = d
            for k in ("p50_ms", "p99_ms", "server_cpu_s_per_M"):
                if d.get(k) is not None:
                    med[v].setdefault(k, []).append(d[k])
        a = ds["all"]
        out.append(f"| {n} | " + " | ".join(cell(ds[v]) for v in vis_all) + " | "
                   + " | ".join(f"{ratio(ds[v].get('p99_ms'), a.get('p99_ms'))}, {ratio(ds[v].get('server_cpu_s_per_M'), a.get('server_cpu_s_per_M'))}"
                                for v in vis_all[1:]) + " |")
    m = {v: {k: statistics.median(x) for k, x in d.items()} for v, d in med.items()}
    out.append("| median | " + " | ".join(f"{fmt(m[v].get('p50_ms'))} / {fmt(m[v].get('p99_ms'))} ms, {fmt(m[v].get('server_cpu_s_per_M'))} s/M" for v in vis_all)
               + " | " + " | ".join(f"{ratio(m[v].get('p99_ms'), m['all'].get('p99_ms'))}, {ratio(m[v].get('server_cpu_s_per_M'), m['all'].get('server_cpu_s_per_M'))}" for v in vis_all[1:]) + " |")
print("\n".join(out))
if fanout:
    print("\n".join(fanout))
