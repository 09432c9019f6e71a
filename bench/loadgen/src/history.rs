//! `history`: GET /api/history latency over one keep-alive connection (per client), with and
//! without `before=<random id>`.

use crate::util::*;
use serde_json::json;
use std::time::{Duration, Instant};

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

pub async fn run(args: Args) {
    let addr = args.addr();
    let pid = args.pid();
    let n: usize = args.num("requests", 2000);
    let limit: u64 = args.num("limit", 50);
    let channel = args.str("channel", "general");
    let label = args.str("label", "");
    let user = args.str("user", "histuser");
    let tok = account(addr, &user, Some(account_src(&user, 0))).await.expect("account");
    let mut h = Http::new(addr, None);
    let r = h.req("GET", &format!("/api/history?channel={channel}&limit=1"), Some(&tok), None).await.expect("history");
    assert_eq!(r.status, 200, "history: HTTP {} {}", r.status, String::from_utf8_lossy(&r.body));
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    let max_id = v.as_array().and_then(|a| a.last()).and_then(|m| m["id"].as_u64()).unwrap_or(0);
    let first = h.req("GET", &format!("/api/history?channel={channel}&limit={limit}"), Some(&tok), None).await.expect("history");
    let items = serde_json::from_slice::<serde_json::Value>(&first.body).ok().and_then(|v| v.as_array().map(|a| a.len())).unwrap_or(0);
    eprintln!("# newest id {max_id}; limit={limit} returned {items} messages, {} bytes", first.body.len());
    let mut out = json!({"mode": "history", "label": label, "max_id": max_id, "limit": limit, "items": items, "bytes": first.body.len(), "requests": n});
    let mut seed = 0x9E3779B97F4A7C15u64 ^ now_micros();
    for variant in ["latest", "before"] {
        let mut hist = hist();
        let mut bad = 0u64;
        // warm-up
        for _ in 0..(n / 10).max(10) {
            let _ = h.req("GET", &format!("/api/history?channel={channel}&limit={limit}"), Some(&tok), None).await;
        }
        let t0 = Instant::now();
        for _ in 0..n {
            let path = if variant == "latest" {
                format!("/api/history?channel={channel}&limit={limit}")
            } else {
                let b = limit + 1 + xorshift(&mut seed) % max_id.saturating_sub(limit).max(1);
                format!("/api/history?channel={channel}&limit={limit}&before={b}")
            };
            let t = Instant::now();
            match h.req("GET", &path, Some(&tok), None).await {
                Ok(r) if r.status == 200 && r.body.first() == Some(&b'[') => {
                    let _ = hist.record((t.elapsed().as_nanos() as u64 / 1000).max(1));
                }
                _ => bad += 1,
            }
        }
        let el = t0.elapsed().as_secs_f64();
        eprintln!("# history {variant}: p50 {:.3} p99 {:.3} max {:.3} ms, {:.0} req/s, {bad} bad", ms(&hist, 0.5), ms(&hist, 0.99), max_ms(&hist), n as f64 / el);
        out[format!("{variant}_p50_ms")] = json!((ms(&hist, 0.5) * 1000.0).round() / 1000.0);
        out[format!("{variant}_p99_ms")] = json!((ms(&hist, 0.99) * 1000.0).round() / 1000.0);
        out[format!("{variant}_max_ms")] = json!((max_ms(&hist) * 1000.0).round() / 1000.0);
        out[format!("{variant}_rps")] = r2(n as f64 / el);
        out[format!("{variant}_bad")] = json!(bad);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    out["server_rss_kb"] = json!(pid.and_then(|p| status_field(p, "VmRSS")));
    emit(&args, out);
}
