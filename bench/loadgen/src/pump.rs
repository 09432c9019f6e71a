//! `acks` and `seed`: K sender sockets (distinct users), each keeping up to W sends in flight and
//! sending again as acknowledgements (its own `message` event) come back.
//! `acks` runs for --duration seconds and reports acknowledged inserts/s; `seed` stops after
//! --count messages (used to fill the database for the history benchmark).

use crate::fanout::{error_code, open_all, parse_message};
use crate::util::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

const WORDS: [&str; 32] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima",
    "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango", "uniform", "victor", "whiskey",
    "xray", "yankee", "zulu", "rust", "sqlite", "socket", "thread", "voice", "channel",
];

struct Totals {
    issued: AtomicU64,
    acked: AtomicU64,
    errors: AtomicU64,
    last_ack: AtomicU64,
    closed: AtomicU64,
    stop: AtomicBool,
}

pub async fn run(args: Args, seed: bool) {
    let addr = args.addr();
    let pid = args.pid();
    let k: usize = args.num("senders", if seed { 8 } else { 10 });
    let w: usize = args.num("window", 32);
    let dur: f64 = args.num("duration", if seed { 3600.0 } else { 10.0 });
    let count: u64 = args.num("count", if seed { 1_000_000 } else { u64::MAX });
    let label = args.str("label", "");
    let prefix = args.str("prefix", if seed { "seed" } else { "ack" });
    let channel = args.str("channel", "general");
    let tokens = accounts(addr, &prefix, k, 4).await;
    let (socks, fails) = open_all(addr, &tokens, k, 1, k).await;
    assert!(fails.is_empty(), "sender sockets failed: {fails:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let tot = Arc::new(Totals { issued: AtomicU64::new(0), acked: AtomicU64::new(0), errors: AtomicU64::new(0), last_ack: AtomicU64::new(0), closed: AtomicU64::new(0), stop: AtomicBool::new(false) });
    let run_id = now_micros() % 1_000_000_000;
    let m0 = store_counters(addr).await;
    let cpu0 = pid.and_then(cpu_secs);
    let t0 = Instant::now();
    let t0u = now_micros();
    let end = t0 + Duration::from_secs_f64(dur);
    let mut hs = Vec::new();
    for (i, ws) in socks {
        let (mut sink, mut stream) = ws.split();
        let sem = Arc::new(Semaphore::new(w));
        let (tot_w, sem_w, ch) = (tot.clone(), sem.clone(), channel.clone());
        let kk = k as u64;
        let writer = tokio::spawn(async move {
            let mut local = 0u64;
            let mut sent = 0u64;
            'outer: loop {
                let p = tokio::select! {
                    p = sem_w.acquire() => p.unwrap(),
                    _ = tokio::time::sleep_until(end.into()) => break,
                };
                p.forget();
                let mut batch = 1;
                loop {
                    if Instant::now() >= end || tot_w.stop.load(Ordering::Relaxed) || tot_w.issued.fetch_add(1, Ordering::Relaxed) >= count {
                        break 'outer;
                    }
                    let seq = local * kk + i as u64;
                    local += 1;
                    let mut content = format!("{}:{} msg", seq, now_micros());
                    for j in 0..6 {
                        content.push(' ');
                        content.push_str(WORDS[((seq.wrapping_mul(2654435761) >> (j * 5)) % 32) as usize]);
                    }
                    let txt = format!(r#"{{"type":"send","channel":"{ch}","content":"{content}","nonce":"{run_id}-{seq}"}}"#);
                    if sink.feed(Message::text(txt)).await.is_err() {
                        break 'outer;
                    }
                    sent += 1;
                    match sem_w.try_acquire() {
                        Ok(p) if batch < 64 => {
                            p.forget();
                            batch += 1;
                        }
                        Ok(p) => {
                            drop(p);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                if sink.flush().await.is_err() {
                    break;
                }
            }
            let _ = sink.flush().await;
            (sink, sent)
        });
        let tot_r = tot.clone();
        let reader = tokio::spawn(async move {
            let mut h = hist();
            loop {
                let m = tokio::select! {
                    m = stream.next() => m,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {
                        if tot_r.stop.load(Ordering::Relaxed) { break; } else { continue; }
                    }
                };
                let t = match m {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(c))) => {
                        if !tot_r.stop.load(Ordering::Relaxed) {
                            eprintln!("# sender {i}: closed by the server: {:?}", c.map(|c| (u16::from(c.code), c.reason.to_string())));
                            tot_r.closed.fetch_add(1, Ordering::Relaxed);
                        }
                        break;
                    }
                    Some(Ok(_)) => continue,
                    other => {
                        if !tot_r.stop.load(Ordering::Relaxed) {
                            eprintln!("# sender {i}: connection ended: {:?}", other.map(|r| r.err().map(|e| e.to_string())));
                            tot_r.closed.fetch_add(1, Ordering::Relaxed);
                        }
                        break;
                    }
                };
                let b = t.as_bytes();
                if let Some((seq, ts, _)) = parse_message(b) {
                    if seq % kk == i as u64 {
                        let now = now_micros();
                        let _ = h.record(now.saturating_sub(ts).max(1));
                        tot_r.acked.fetch_add(1, Ordering::Relaxed);
                        tot_r.last_ack.fetch_max(now, Ordering::Relaxed);
                        sem.add_permits(1);
                    }
                } else if error_code(b).is_some() {
                    tot_r.errors.fetch_add(1, Ordering::Relaxed);
                    sem.add_permits(1);
                }
            }
            h
        });
        hs.push((writer, reader));
    }
    // progress + wait for the end
    let mut next_report = Instant::now() + Duration::from_secs(5);
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let issued = tot.issued.load(Ordering::Relaxed);
        if Instant::now() >= next_report {
            eprintln!("# {:.0} s: {} acked, {} errors", t0.elapsed().as_secs_f64(), tot.acked.load(Ordering::Relaxed), tot.errors.load(Ordering::Relaxed));
            next_report += Duration::from_secs(5);
        }
        if Instant::now() >= end || issued >= count {
            break;
        }
    }
    let mut sent = 0;
    let mut sinks = Vec::new();
    let mut readers = Vec::new();
    for (wr, rd) in hs {
        if let Ok((s, n)) = wr.await {
            sent += n;
            sinks.push(s);
        }
        readers.push(rd);
    }
    // wait for outstanding acks (at most 15 s)
    let writers_done = Instant::now();
    while tot.acked.load(Ordering::Relaxed) + tot.errors.load(Ordering::Relaxed) < sent && writers_done.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu1 = pid.and_then(cpu_secs);
    let m1 = store_counters(addr).await;
    let batch_avg = match (m0, m1) {
        (Some((j0, b0)), Some((j1, b1))) if b1 > b0 => Some(r2((j1 - j0) as f64 / (b1 - b0) as f64)),
        _ => None,
    };
    tot.stop.store(true, Ordering::Relaxed);
    let mut h = hist();
    for r in readers {
        if let Ok(x) = r.await {
            h.add(&x).unwrap();
        }
    }
    drop(sinks);
    let acked = tot.acked.load(Ordering::Relaxed);
    let span = (tot.last_ack.load(Ordering::Relaxed).saturating_sub(t0u)) as f64 / 1e6;
    let cpu = match (cpu0, cpu1) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let rate = acked as f64 / span.max(1e-6);
    eprintln!("# {} {label}: {sent} sent, {acked} acked in {span:.1} s = {rate:.0}/s, ack p50 {:.2} p99 {:.2} ms, errors {}",
        if seed { "seed" } else { "acks" }, ms(&h, 0.5), ms(&h, 0.99), tot.errors.load(Ordering::Relaxed));
    emit(&args, json!({
        "mode": if seed { "seed" } else { "acks" }, "label": label, "senders": k, "window": w,
        "sent": sent, "acked": acked, "errors": tot.errors.load(Ordering::Relaxed), "closed": tot.closed.load(Ordering::Relaxed), "span_s": r2(span),
        "acked_per_s": r2(rate), "batch_avg": batch_avg, "ack_p50_ms": r2(ms(&h, 0.5)), "ack_p99_ms": r2(ms(&h, 0.99)), "ack_max_ms": r2(max_ms(&h)),
        "server_cpu_s": cpu.map(r2), "server_rss_kb": pid.and_then(|p| status_field(p, "VmRSS")),
    }));
}

/// (store jobs, store batches) from mini-discord's /metrics, when it has them.
async fn store_counters(addr: std::net::SocketAddr) -> Option<(u64, u64)> {
    let mut h = Http::new(addr, None);
    let r = h.req("GET", "/metrics", None, None).await.ok()?;
    let t = String::from_utf8_lossy(&r.body).to_string();
    let get = |k: &str| t.lines().find(|l| l.starts_with(k)).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()).map(|v| v as u64);
    Some((get("md_store_jobs_total ")?, get("md_store_batches_total ")?))
}
