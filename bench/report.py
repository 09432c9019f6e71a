#!/usr/bin/env python3
"""Print the side-by-side table (markdown) from a bench/run.sh results.jsonl.
usage: report.py results.jsonl [server_bin ref_bin]"""
import json, sys

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

for rate in (200, 1000):
    o, r = f"fanout{rate}/ours", f"fanout{rate}/ref"
    if o not in rows and r not in rows:
        continue
    n = g(o, "ready") or g(r, "ready")
    t = f"{rate} msg/s × {n} sockets"
    def both(key, unit="", tgt="", ratio_=True):
        a, b = g(o, key), g(r, key)
        row(f"{t}: {key}", fmt(a, unit), fmt(b, unit), ratio(a, b) if ratio_ else None, tgt)
    row(f"{t}: sent / acked", f"{fmt(g(o,'sent'))} / {fmt(g(o,'acked'))}", f"{fmt(g(r,'sent'))} / {fmt(g(r,'acked'))}")
    both("deliveries_per_s", "/s")
    row(f"{t}: lost (of expected)", f"{fmt(g(o,'lost'))} of {fmt(g(o,'expected'))}", f"{fmt(g(r,'lost'))} of {fmt(g(r,'expected'))}", None, "0")
    row(f"{t}: dups / reorders", f"{fmt(g(o,'dups'))} / {fmt(g(o,'reorders'))}", f"{fmt(g(r,'dups'))} / {fmt(g(r,'reorders'))}", None, "0 / 0")
    row(f"{t}: message id out of order (per socket)", fmt(g(o, "id_regress")), fmt(g(r, "id_regress")), None, "0 (ids follow commit order)")
    both("p50_ms", " ms")
    both("p99_ms", " ms", "≤ 0.5 × ref" if rate == 200 else "< 100 ms")
    both("max_ms", " ms")
    both("server_cpu_s_per_M", " s", "≤ 0.8 × ref" if rate == 200 else "")
    both("server_cores", "")
    a, b = g(o, "server_rss_kb"), g(r, "server_rss_kb")
    row(f"{t}: server RSS", fmt(a and a / 1024, " MiB"), fmt(b and b / 1024, " MiB"), ratio(a, b))
    both("loadgen_cpu_s", " s", "", False)
    both("other_cores", "", "~0 (quiet machine)", False)
    m = rows.get(f"fanout{rate}/ours-metrics")
    if m and m.get("sends"):
        row(f"{t}: frames per sendmsg (ours, whole run)", f"{m['deliveries'] / m['sends']:.2f}", None)
    nd = f"fanout{rate}/refnd"
    if nd in rows:
        for key, unit in (("p50_ms", " ms"), ("p99_ms", " ms"), ("server_cpu_s_per_M", " s")):
            a, b = g(o, key), g(nd, key)
            row(f"{t}: {key} vs reference with TCP_NODELAY", fmt(a, unit), fmt(b, unit), ratio(a, b))
        row(f"{t}: lost, reference with TCP_NODELAY", "–", f"{fmt(g(nd,'lost'))} of {fmt(g(nd,'expected'))}")
    for lab in (o, r):
        for k in ("errors", "closed", "not_ready"):
            if rows.get(lab, {}).get(k):
                row(f"{t}: {k} ({lab.split('/')[1]})", json.dumps(rows[lab][k]), None)

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
