//! `idle`: open up to N sockets that then stay idle, hold them, report how many got `ready`,
//! how many were refused, server RSS per socket, and whether the server still answers /healthz.

use crate::fanout::wait_ready;
use crate::util::*;
use futures_util::StreamExt;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

async fn healthz(addr: std::net::SocketAddr) -> String {
    let mut h = Http::new(addr, Some(std::net::Ipv4Addr::new(127, 0, 0, 250)));
    match tokio::time::timeout(Duration::from_secs(5), h.req("GET", "/healthz", None, None)).await {
        Ok(Ok(r)) => format!("{}", r.status),
        Ok(Err(e)) => format!("error: {e}"),
        Err(_) => "timeout".into(),
    }
}

pub async fn run(args: Args) {
    let addr = args.addr();
    let pid = args.pid();
    let n: usize = args.num("count", 1000);
    let users: usize = args.num("users", 20);
    let conc: usize = args.num("conc", 256);
    let hold: f64 = args.num("hold", 5.0);
    // spread over 127.0.0.x so that no source address holds more than ~200 sockets (the
    // server's per-IP cap defaults to 256) and no address runs out of ephemeral ports
    let src_ips: usize = args.num("src-ips", n.div_ceil(200).clamp(16, 240));
    let label = args.str("label", "");
    let prefix = args.str("prefix", "idle");
    let lim = raise_nofile(n as u64 + 4096);
    eprintln!("# RLIMIT_NOFILE now {lim}");
    let tokens = Arc::new(accounts(addr, &prefix, users, 4).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss0 = pid.and_then(|p| status_field(p, "VmRSS"));
    let thr0 = pid.and_then(|p| status_field(p, "Threads"));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (res_tx, mut res_rx) = tokio::sync::mpsc::unbounded_channel::<Result<(), String>>();
    let sem = Arc::new(tokio::sync::Semaphore::new(conc));
    let t0 = Instant::now();
    for i in 0..n {
        let (sem, tokens, res_tx, mut stop) = (sem.clone(), tokens.clone(), res_tx.clone(), stop_rx.clone());
        tokio::spawn(async move {
            let p = sem.acquire_owned().await.unwrap();
            let tok = &tokens[i % tokens.len()];
            let mut ws = match ws_connect(addr, src_ip(i + 1, src_ips), tok).await {
                Ok(ws) => ws,
                Err(WsErr::Status(s)) => {
                    let _ = res_tx.send(Err(format!("http {s}")));
                    return;
                }
                Err(WsErr::Connect(e)) => {
                    let _ = res_tx.send(Err(format!("connect: {e}")));
                    return;
                }
                Err(WsErr::Handshake(e)) => {
                    let _ = res_tx.send(Err(format!("handshake: {}", e.chars().take(60).collect::<String>())));
                    return;
                }
            };
            if let Err(e) = wait_ready(&mut ws, Duration::from_secs(60)).await {
                let _ = res_tx.send(Err(e));
                return;
            }
            drop(p);
            let _ = res_tx.send(Ok(()));
            // hold: keep reading (answers server pings), count an unexpected close
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    m = ws.next() => match m {
                        Some(Ok(_)) => {}
                        _ => { let _ = res_tx.send(Err("closed while held".into())); break; }
                    }
                }
            }
        });
    }
    drop(res_tx);
    let mut ready = 0usize;
    let mut fails: HashMap<String, u64> = HashMap::new();
    let mut got = 0;
    while got < n {
        match tokio::time::timeout(Duration::from_secs(120), res_rx.recv()).await {
            Ok(Some(Ok(()))) => ready += 1,
            Ok(Some(Err(e))) => *fails.entry(e).or_default() += 1,
            _ => break,
        }
        got += 1;
        if got % 2000 == 0 {
            eprintln!("# {got}/{n} attempts done, {ready} ready, {:.1} s", t0.elapsed().as_secs_f64());
        }
    }
    let open_s = t0.elapsed().as_secs_f64();
    eprintln!("# {ready}/{n} ready in {open_s:.1} s; failures {fails:?}");
    tokio::time::sleep(Duration::from_secs_f64(hold)).await;
    let rss1 = pid.and_then(|p| status_field(p, "VmRSS"));
    let thr1 = pid.and_then(|p| status_field(p, "Threads"));
    let health_full = healthz(addr).await;
    let alive_full = pid.map(alive);
    // late closes while holding
    while let Ok(Some(r)) = tokio::time::timeout(Duration::from_millis(10), res_rx.recv()).await {
        if let Err(e) = r {
            *fails.entry(e).or_default() += 1;
        }
    }
    let _ = stop_tx.send(true);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let health_after = healthz(addr).await;
    let alive_after = pid.map(alive);
    let rss_after = pid.and_then(|p| status_field(p, "VmRSS"));
    let per = match (rss0, rss1) {
        (Some(a), Some(b)) if ready > 0 => Some(r2((b as f64 - a as f64) / ready as f64)),
        _ => None,
    };
    eprintln!("# idle {label}: ready {ready} of {n}; rss {rss0:?} -> {rss1:?} kB ({per:?} kB/socket); healthz held {health_full} after {health_after}; alive {alive_after:?}");
    emit(&args, json!({
        "mode": "idle", "label": label, "tried": n, "ceiling": args.opt("ceiling").and_then(|c| c.parse::<u64>().ok()), "ready": ready, "failures": fails,
        "open_s": r2(open_s), "server_rss0_kb": rss0, "server_rss_kb": rss1, "rss_per_socket_kb": per,
        "server_threads0": thr0, "server_threads": thr1, "rss_after_close_kb": rss_after,
        "healthz_while_held": health_full, "healthz_after": health_after,
        "alive_while_held": alive_full, "alive_after": alive_after,
    }));
}
