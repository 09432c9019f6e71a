//! `fanout`: N sockets (sharing U users like browser tabs), S of them (distinct users) send at a
//! fixed total rate R for D seconds; every socket checks what it receives.
//!
//! content = "<seq>:<send_ts_micros>", seq = local_seq * S + sender_index. A sender's own copy of
//! its message is its acknowledgement (the `message` event follows the commit). Expected
//! deliveries = acked × sockets; loss = acked messages some socket never saw.
//!
//! `--half-visible 1` ("Run a community", issue 13): the senders write to a private channel
//! `half` that only the first half of the users may see (via a role); the other half of the
//! sockets must receive none of it (`leaked`). Expected deliveries = acked × visible sockets.
//! Needs a fresh server: the `{prefix}owner` account, registered first, is the owner.

use crate::util::*;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::json;
use std::collections::HashMap;
use std::net::SocketAddr;
use crate::rawread;
use crate::stamp::Stamped;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub struct Shared {
    pub delivered: AtomicU64,
    pub acked: AtomicU64,
    /// Sends written to the server, by all senders.
    pub sent: AtomicU64,
    /// `error` frames the senders got back (a send that is refused is never acked).
    pub sender_errors: AtomicU64,
    /// Senders that have sent their last message.
    pub senders_done: AtomicU64,
}

#[derive(Default)]
pub struct SockStats {
    pub seen: Vec<u64>,
    pub deliveries: u64,
    pub dups: u64,
    pub reorders: u64,
    pub id_regress: u64,
    pub hist: Option<Histogram<u64>>,
    /// The same latencies to the kernel's receive timestamp of the read that brought the
    /// frame (`stamp`): what the reader's own delay does not touch.
    pub khist: Option<Histogram<u64>>,
    /// Per read: the reader's clock minus the kernel's receive timestamp (`--reader epoll`).
    pub lag: Option<Histogram<u64>>,
    pub errors: HashMap<String, u64>,
    pub closed: Option<String>,
    pub acked: Vec<u64>,
    pub last_deliv: u64,
}

fn set_bit(v: &mut Vec<u64>, i: u64) -> bool {
    let w = (i / 64) as usize;
    if w >= v.len() {
        v.resize(w + 1 + v.len() / 2, 0);
    }
    let m = 1u64 << (i % 64);
    let was = v[w] & m != 0;
    v[w] |= m;
    was
}

fn parse_u64(b: &[u8]) -> (u64, usize) {
    let mut n = 0u64;
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        n = n * 10 + (b[i] - b'0') as u64;
        i += 1;
    }
    (n, i)
}

/// Fast path for `{"type":"message",...,"content":"<a>:<b>",...}`; returns (a, b, id).
pub fn parse_message(b: &[u8]) -> Option<(u64, u64, u64)> {
    // The searchers are built once: `memmem::find` builds one per call, and that was 2 % of
    // the load generator's time at 200,000 frames a second.
    use memchr::memmem::Finder;
    static FIND: std::sync::OnceLock<[Finder<'static>; 3]> = std::sync::OnceLock::new();
    let [ty, content, idf] = FIND.get_or_init(|| [Finder::new(br#""type":"message""#), Finder::new(br#""content":""#), Finder::new(br#""id":"#)]);
    ty.find(b)?;
    let p = content.find(b)? + 11;
    let (a, la) = parse_u64(&b[p..]);
    if la == 0 || b.get(p + la) != Some(&b':') {
        return None;
    }
    let (t, lt) = parse_u64(&b[p + la + 1..]);
    if lt == 0 {
        return None;
    }
    let id = idf.find(b).map(|q| parse_u64(&b[q + 5..]).0).unwrap_or(0);
    Some((a, t, id))
}

pub fn error_code(b: &[u8]) -> Option<String> {
    memchr::memmem::find(b, br#""type":"error""#)?;
    let v: serde_json::Value = serde_json::from_slice(b).ok()?;
    Some(v["code"].as_str().unwrap_or("?").to_string())
}

/// Read frames until `ready`. Returns the number of frames skipped or an error text.
pub async fn wait_ready<S>(ws: &mut WebSocketStream<S>, timeout: Duration) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let dl = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(dl, ws.next()).await {
            Err(_) => return Err("ready timeout".into()),
            Ok(None) => return Err("closed before ready".into()),
            Ok(Some(Err(e))) => return Err(format!("error before ready: {e}")),
            Ok(Some(Ok(Message::Text(t)))) => {
                if memchr::memmem::find(t.as_bytes(), br#""type":"ready""#).is_some() {
                    return Ok(());
                }
            }
            Ok(Some(Ok(Message::Close(c)))) => return Err(format!("close before ready: {:?}", c.map(|c| u16::from(c.code)))),
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Runs `connect(i)` for every socket i of `range`, at most `conc` at a time: the sockets
/// that came up, in order, and the failures counted by cause. Both readers open their
/// sockets through this.
pub async fn open_each<T, F, Fut>(range: std::ops::Range<usize>, conc: usize, connect: F) -> (Vec<(usize, T)>, HashMap<String, u64>)
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<T, String>> + Send + 'static,
{
    let sem = Arc::new(tokio::sync::Semaphore::new(conc));
    let mut hs = Vec::new();
    for i in range {
        let sem = sem.clone();
        let fut = connect(i);
        hs.push((i, tokio::spawn(async move {
            let _p = sem.acquire_owned().await.unwrap();
            fut.await
        })));
    }
    let mut ok = Vec::new();
    let mut fails: HashMap<String, u64> = HashMap::new();
    for (i, h) in hs {
        match h.await.unwrap() {
            Ok(s) => ok.push((i, s)),
            Err(e) => *fails.entry(e).or_default() += 1,
        }
    }
    (ok, fails)
}

/// Open `n` sockets (user i % tokens.len(), source address i % src_ips), each waiting for `ready`.
/// Each socket's reads take the kernel's receive timestamps (`stamp::Stamped`).
pub async fn open_all(addr: SocketAddr, tokens: &[String], n: usize, src_ips: usize, conc: usize) -> (Vec<(usize, WebSocketStream<Stamped>)>, HashMap<String, u64>) {
    open_each(0..n, conc, |i| {
        let tok = tokens[i % tokens.len()].clone();
        async move {
            let st = tcp_connect(addr, src_ip(i, src_ips)).await.map_err(|e| format!("{:?}", WsErr::Connect(e.to_string())))?;
            let st = Stamped::new(st).map_err(|e| format!("SO_TIMESTAMPING: {e}"))?;
            let mut ws = match ws_upgrade(addr, st, &tok).await {
                Ok(ws) => ws,
                Err(WsErr::Status(s)) => return Err(format!("http {s}")),
                Err(e) => return Err(format!("{e:?}")),
            };
            wait_ready(&mut ws, Duration::from_secs(30)).await?;
            Ok(ws)
        }
    })
    .await
}

/// One receiving socket's view of the run: what a frame of it means for the counts. Both
/// readers (`reader`, tokio; `rawread`, one epoll thread) feed their text frames through
/// here, so the two count alike.
pub struct Tally {
    pub st: SockStats,
    me: Option<u64>,
    senders: u64,
    last_local: Vec<i64>,
    last_id: u64,
}

impl Tally {
    pub fn new(me: Option<u64>, senders: u64) -> Tally {
        Tally { st: SockStats { hist: Some(hist()), ..Default::default() }, me, senders, last_local: vec![-1i64; senders as usize], last_id: 0 }
    }

    /// A text frame; returns whether it was a (first) delivery. The caller adds deliveries
    /// to `shared.delivered` (the epoll reader once per read, not per frame). `kernel` is the
    /// kernel's receive timestamp of the read that completed the frame (µs since the epoch,
    /// the clock of the senders' `now_micros`), when there is one (`stamp`).
    pub fn text(&mut self, b: &[u8], shared: &Shared, kernel: Option<u64>) -> bool {
        let st = &mut self.st;
        if let Some((seq, ts, id)) = parse_message(b) {
            let now = now_micros();
            if set_bit(&mut st.seen, seq) {
                st.dups += 1;
                return false;
            }
            st.deliveries += 1;
            let _ = st.hist.as_mut().unwrap().record(now.saturating_sub(ts).max(1));
            if let Some(k) = kernel {
                let _ = st.khist.get_or_insert_with(hist).record(k.saturating_sub(ts).max(1));
            }
            let (sender, local) = (seq % self.senders, (seq / self.senders) as i64);
            if local < self.last_local[sender as usize] {
                st.reorders += 1;
            } else {
                self.last_local[sender as usize] = local;
            }
            if id != 0 {
                if id <= self.last_id {
                    st.id_regress += 1;
                }
                self.last_id = self.last_id.max(id);
            }
            st.last_deliv = now;
            if self.me == Some(sender) {
                st.acked.push(seq);
                shared.acked.fetch_add(1, Ordering::Relaxed);
            }
            return true;
        } else if let Some(code) = error_code(b) {
            *st.errors.entry(code).or_default() += 1;
            if self.me.is_some() {
                shared.sender_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        false
    }
}

/// `stamp`: the newest read's kernel timestamp on this socket (`Stamped`).
async fn reader<S>(mut stream: S, stamp: Arc<AtomicU64>, mut stop: watch::Receiver<bool>, shared: Arc<Shared>, me: Option<u64>, senders: u64) -> SockStats
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let mut t = Tally::new(me, senders);
    loop {
        let m = tokio::select! {
            biased;
            _ = stop.changed() => break,
            m = stream.next() => m,
        };
        let txt = match m {
            Some(Ok(Message::Text(txt))) => txt,
            Some(Ok(Message::Close(c))) => {
                t.st.closed = Some(format!("close {:?}", c.map(|c| u16::from(c.code))));
                break;
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                t.st.closed = Some(format!("error: {e}"));
                break;
            }
            None => {
                t.st.closed = Some("eof".into());
                break;
            }
        };
        let k = stamp.load(Ordering::Relaxed);
        if t.text(txt.as_bytes(), &shared, (k != 0).then_some(k)) {
            shared.delivered.fetch_add(1, Ordering::Relaxed);
        }
    }
    t.st
}

pub async fn run(args: Args) {
    let addr = args.addr();
    let pid = args.pid();
    let users: usize = args.num("users", 100);
    let n: usize = args.num("sockets", 1000);
    let senders: usize = args.num("senders", 10);
    let rate: f64 = args.num("rate", 200.0);
    let dur: f64 = args.num("duration", 20.0);
    let drain: f64 = args.num("drain", 10.0);
    let src_ips: usize = args.num("src-ips", n.div_ceil(200).clamp(8, 240));
    let prefix = args.str("prefix", "lg");
    let label = args.str("label", "");
    assert!(senders >= 1 && senders <= users && users <= n, "need 1 <= senders <= users <= sockets");
    raise_nofile(n as u64 + 4096);

    let half = args.num("half-visible", 0u8) == 1;
    let channel = if half {
        assert!(senders <= users / 2, "--half-visible needs senders <= users / 2");
        let owner = account(addr, &format!("{prefix}owner"), Some(account_src(&prefix, users)))
            .await
            .unwrap_or_else(|e| panic!("owner account: {e}"));
        let tokens = accounts(addr, &prefix, users, 4).await;
        half_visible(addr, &owner, &prefix, users / 2).await;
        (tokens, "half")
    } else {
        (accounts(addr, &prefix, users, 4).await, "general")
    };
    let (tokens, channel) = channel;
    // Socket i is user i % users; the first half of the users see the channel.
    let visible_of = |i: usize| !half || i % users < users / 2;
    let t_conn = Instant::now();
    // `--reader epoll` (the default): the receiving sockets are read by `rawread`'s one epoll
    // thread, the senders by tokio; `--reader tokio`: every socket by tokio + tungstenite,
    // the reader of the runs before 2026-12-03.
    let raw_reader = match args.str("reader", "epoll").as_str() {
        "epoll" => true,
        "tokio" => false,
        r => panic!("--reader {r}: epoll or tokio"),
    };
    let conc = args.num("conc", 200);
    let (socks, mut fails) = open_all(addr, &tokens, if raw_reader { senders } else { n }, src_ips, conc).await;
    let raws = if raw_reader {
        let (raws, raw_fails) = rawread::open_all(addr, &tokens, senders..n, src_ips, conc).await;
        for (k, v) in raw_fails {
            *fails.entry(k).or_default() += v;
        }
        raws
    } else {
        Vec::new()
    };
    let ready = socks.len() + raws.len();
    let connect_s = t_conn.elapsed().as_secs_f64();
    eprintln!("# {ready}/{n} sockets ready in {connect_s:.2} s; failures: {fails:?}");
    tokio::time::sleep(Duration::from_millis(500)).await; // let presence traffic settle

    let shared = Arc::new(Shared {
        delivered: AtomicU64::new(0),
        acked: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        sender_errors: AtomicU64::new(0),
        senders_done: AtomicU64::new(0),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let run_id = now_micros() % 1_000_000_000;
    let start = tokio::time::Instant::now() + Duration::from_millis(300);
    let end = start + Duration::from_secs_f64(dur);
    let period = Duration::from_secs_f64(senders as f64 / rate);
    let mut readers = Vec::new();
    let mut visible = Vec::new();
    let mut writers = Vec::new();
    for (i, ws) in socks {
        visible.push(visible_of(i));
        let sender_idx = if i < senders { Some(i as u64) } else { None };
        let stamp = ws.get_ref().stamp.clone();
        let (mut sink, stream) = ws.split();
        readers.push(tokio::spawn(reader(stream, stamp, stop_rx.clone(), shared.clone(), sender_idx, senders as u64)));
        if let Some(si) = sender_idx {
            let s = senders as u64;
            let mut stop = stop_rx.clone();
            let shared = shared.clone();
            writers.push(tokio::spawn(async move {
                let mut sent = 0u64;
                let first = start + period.mul_f64(si as f64 / s as f64);
                for k in 0u64.. {
                    let at = first + period * k as u32;
                    if at >= end {
                        break;
                    }
                    tokio::time::sleep_until(at).await;
                    let seq = k * s + si;
                    let txt = format!(r#"{{"type":"send","channel":"{channel}","content":"{}:{}","nonce":"{run_id}-{seq}"}}"#, seq, now_micros());
                    if sink.send(Message::text(txt)).await.is_err() {
                        break;
                    }
                    sent += 1;
                    shared.sent.fetch_add(1, Ordering::Relaxed);
                }
                shared.senders_done.fetch_add(1, Ordering::Relaxed);
                let _ = stop.changed().await;
                let _ = sink.close().await;
                sent
            }));
        } else {
            // keep the sink alive (dropping half of a split stream is fine, but be explicit)
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                let _ = stop.changed().await;
                drop(sink);
            });
        }
    }
    let raw_stop = Arc::new(AtomicBool::new(false));
    let raw_socks = raws.into_iter().map(|(i, s)| {
        visible.push(visible_of(i));
        s
    });
    let raw_thread = rawread::spawn(raw_socks.collect(), raw_stop.clone(), shared.clone(), senders as u64, args.num("raw-threads", 1));
    let viewers = visible.iter().filter(|v| **v).count();
    let n_writers = writers.len() as u64;
    tokio::time::sleep_until(start).await;
    let cpu0 = pid.and_then(cpu_secs);
    let self0 = self_cpu_secs();
    let mach0 = machine_busy_secs();
    let t0 = now_micros();
    tokio::time::sleep_until(end).await;
    // Drain: wait until nothing is in flight, or `drain` seconds. Nothing is in flight once
    // every sender has sent its last message, every send was answered (acked, or refused
    // with an error), and every visible socket has every acked message. `delivered` also
    // counts copies of messages whose ack has not arrived yet, so comparing it with the
    // acks alone (as this loop once did) could stop while acked messages were still on
    // their way to some sockets, and count them lost.
    let dl = Instant::now() + Duration::from_secs_f64(drain);
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let done = shared.senders_done.load(Ordering::Relaxed) == n_writers;
        let sent = shared.sent.load(Ordering::Relaxed);
        let a = shared.acked.load(Ordering::Relaxed);
        let answered = a + shared.sender_errors.load(Ordering::Relaxed);
        let d = shared.delivered.load(Ordering::Relaxed);
        if (done && answered >= sent && d >= a * viewers as u64) || Instant::now() >= dl {
            if Instant::now() >= dl {
                eprintln!("# drain: stopped after {drain} s with {sent} sent, {answered} answered, {d} of {} delivered", a * viewers as u64);
            }
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await; // late duplicates
    let cpu1 = pid.and_then(cpu_secs);
    let self1 = self_cpu_secs();
    let mach1 = machine_busy_secs();
    let wall = (now_micros() - t0) as f64 / 1e6;
    let rss = pid.and_then(|p| status_field(p, "VmRSS"));
    let hwm = pid.and_then(|p| status_field(p, "VmHWM"));
    let threads = pid.and_then(|p| status_field(p, "Threads"));
    let _ = stop_tx.send(true);
    raw_stop.store(true, Ordering::Relaxed);
    let mut sent = 0;
    for w in writers {
        sent += w.await.unwrap_or(0);
    }
    let mut stats = Vec::new();
    for r in readers {
        stats.push(r.await.unwrap());
    }
    // In the order of `visible`: the tokio readers' sockets first, then the raw ones.
    stats.extend(raw_thread.join());
    // tally
    let mut acked_bits = Vec::new();
    let mut acked = 0u64;
    for s in &stats {
        for &q in &s.acked {
            if !set_bit(&mut acked_bits, q) {
                acked += 1;
            }
        }
    }
    let (mut missing, mut unacked_deliv, mut dups, mut reorders, mut idr, mut deliveries, mut last) = (0u64, 0u64, 0, 0, 0, 0, 0);
    let mut errors: HashMap<String, u64> = HashMap::new();
    let mut closed: HashMap<String, u64> = HashMap::new();
    let mut h = hist();
    let (mut kh, mut lag) = (hist(), hist());
    let mut leaked = 0u64;
    for (s, vis) in stats.iter().zip(&visible) {
        if !vis {
            // A socket that may not see the channel must get nothing of it.
            leaked += s.deliveries;
            continue;
        }
        for w in 0..acked_bits.len().max(s.seen.len()) {
            let a = acked_bits.get(w).copied().unwrap_or(0);
            let v = s.seen.get(w).copied().unwrap_or(0);
            missing += (a & !v).count_ones() as u64;
            unacked_deliv += (v & !a).count_ones() as u64;
        }
        dups += s.dups;
        reorders += s.reorders;
        idr += s.id_regress;
        deliveries += s.deliveries;
        last = last.max(s.last_deliv);
        for (k, v) in &s.errors {
            *errors.entry(k.clone()).or_default() += v;
        }
        if let Some(c) = &s.closed {
            *closed.entry(c.clone()).or_default() += 1;
        }
        h.add(s.hist.as_ref().unwrap()).unwrap();
        if let Some(k) = &s.khist {
            kh.add(k).unwrap();
        }
        if let Some(l) = &s.lag {
            lag.add(l).unwrap();
        }
    }
    // Kernel-stamped figures: null when no read had a stamp (`SO_TIMESTAMPING` refused).
    let kms = |h: &Histogram<u64>, q: f64| (!h.is_empty()).then(|| r2(ms(h, q)));
    let expected = acked * viewers as u64;
    let span = (last.saturating_sub(t0)) as f64 / 1e6;
    let cpu = match (cpu0, cpu1) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let v = json!({
        "mode": "fanout", "label": label, "reader": if raw_reader { "epoll" } else { "tokio" }, "sockets": n, "ready": ready, "not_ready": fails,
        "users": users, "senders": senders, "rate": rate, "duration_s": dur, "connect_s": r2(connect_s),
        "sent": sent, "acked": acked, "expected": expected, "delivered": deliveries,
        "lost": missing, "loss_pct": r2(if expected > 0 { missing as f64 * 100.0 / expected as f64 } else { 0.0 }),
        "delivered_unacked": unacked_deliv, "dups": dups, "reorders": reorders, "id_regress": idr,
        "errors": errors, "closed": closed, "channel": channel, "visible": viewers, "leaked": leaked,
        "send_rate_achieved": r2(acked as f64 / dur),
        "deliveries_per_s": r2(deliveries as f64 / span.max(dur)),
        "p50_ms": r2(ms(&h, 0.5)), "p99_ms": r2(ms(&h, 0.99)), "p999_ms": r2(ms(&h, 0.999)), "max_ms": r2(max_ms(&h)),
        "server_cpu_s": cpu.map(r2), "server_cpu_s_per_M": cpu.map(|c| r2(c / (deliveries as f64 / 1e6))),
        "server_cores": cpu.map(|c| r2(c / span.max(dur))),
        "server_rss_kb": rss, "server_hwm_kb": hwm, "server_threads": threads,
        "loadgen_cpu_s": r2(self1 - self0),
        // CPU used by everything else on the machine during the window (should be ~0: a busy
        // machine makes every number here worse)
        "other_cores": r2(((mach1 - mach0) - (self1 - self0) - cpu.unwrap_or(0.0)).max(0.0) / wall),
    });
    // Added after `json!`, which reaches its macro recursion limit with these in it.
    let mut v = v;
    let o = v.as_object_mut().unwrap();
    o.insert("kernel_p50_ms".into(), json!(kms(&kh, 0.5)));
    o.insert("kernel_p99_ms".into(), json!(kms(&kh, 0.99)));
    o.insert("kernel_p999_ms".into(), json!(kms(&kh, 0.999)));
    o.insert("read_lag_p50_ms".into(), json!(kms(&lag, 0.5)));
    o.insert("read_lag_p99_ms".into(), json!(kms(&lag, 0.99)));
    o.insert("read_lag_max_ms".into(), json!((!lag.is_empty()).then(|| r2(max_ms(&lag)))));
    eprintln!(
        "# fanout {label}: sent {sent} acked {acked} expected {expected} delivered {deliveries} lost {missing} dups {dups} reorders {reorders} | {:.0} deliveries/s | p50 {:.2} p99 {:.2} max {:.2} ms (kernel-stamped p50 {:.2} p99 {:.2}) | server cpu {:?} s, rss {:?} kB",
        deliveries as f64 / span.max(dur), ms(&h, 0.5), ms(&h, 0.99), max_ms(&h), ms(&kh, 0.5), ms(&kh, 0.99), cpu, rss
    );
    emit(&args, v);
}

/// One request of the owner's; its status and JSON body.
async fn owner_call(h: &mut Http, owner: &str, method: &str, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let body = body.to_string();
    let r = h.req(method, path, Some(owner), Some(&body)).await.unwrap_or_else(|e| panic!("{path}: {e}"));
    (r.status, serde_json::from_slice(&r.body).unwrap_or_default())
}

/// `--half-visible`: as the owner, a text channel `half` that the `everyone` role may not see,
/// a role `half` that may, given to users `{prefix}0` .. `{prefix}{n-1}`.
async fn half_visible(addr: SocketAddr, owner: &str, prefix: &str, n: usize) {
    let mut h = Http::new(addr, None);
    let (st, _) = owner_call(&mut h, owner, "POST", "/api/channels", json!({"name": "half", "kind": "text"})).await;
    assert!(st == 201 || st == 409, "create channel half: HTTP {st}");
    let hide = json!({"allow": [], "deny": ["view_channel"]});
    let (st, _) = owner_call(&mut h, owner, "PUT", "/api/channels/half/overwrites/1", hide).await;
    assert_eq!(st, 200, "hide half from everyone (is {prefix}owner the owner? use a fresh server)");
    let (st, role) = owner_call(&mut h, owner, "POST", "/api/roles", json!({"name": "half"})).await;
    assert_eq!(st, 201, "create role half");
    let id = role["id"].as_i64().unwrap();
    let show = json!({"allow": ["view_channel"], "deny": []});
    let (st, _) = owner_call(&mut h, owner, "PUT", &format!("/api/channels/half/overwrites/{id}"), show).await;
    assert_eq!(st, 200, "let role half see it");
    for u in 0..n {
        let (st, _) = owner_call(&mut h, owner, "PUT", &format!("/api/members/{prefix}{u}/roles/{id}"), json!({})).await;
        assert_eq!(st, 204, "give role half to {prefix}{u}");
    }
    eprintln!("# channel half visible to {n} users via role {id}");
}
