//! Shared helpers: argument parsing, /proc sampling, a tiny keep-alive HTTP/1.1 client,
//! WebSocket connect, account set-up, histograms.

use hdrhistogram::Histogram;
use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, protocol::WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

// ---------------------------------------------------------------- arguments
pub struct Args {
    pub map: HashMap<String, String>,
    pub envs: Vec<(String, String)>,
}

impl Args {
    pub fn parse(v: &[String]) -> Args {
        let mut map = HashMap::new();
        let mut envs = Vec::new();
        let mut i = 0;
        while i < v.len() {
            let k = v[i].trim_start_matches("--").to_string();
            let val = if i + 1 < v.len() && !v[i + 1].starts_with("--") {
                i += 1;
                v[i].clone()
            } else {
                "1".to_string()
            };
            if k == "env" {
                if let Some((a, b)) = val.split_once('=') {
                    envs.push((a.to_string(), b.to_string()));
                }
            } else {
                map.insert(k, val);
            }
            i += 1;
        }
        Args { map, envs }
    }
    pub fn str(&self, k: &str, d: &str) -> String {
        self.map.get(k).cloned().unwrap_or_else(|| d.to_string())
    }
    pub fn opt(&self, k: &str) -> Option<String> {
        self.map.get(k).cloned()
    }
    pub fn num<T: std::str::FromStr>(&self, k: &str, d: T) -> T {
        match self.map.get(k) {
            Some(s) => s.parse().unwrap_or_else(|_| panic!("--{k}: not a number: {s}")),
            None => d,
        }
    }
    pub fn addr(&self) -> SocketAddr {
        let a = self.str("addr", "127.0.0.1:8000");
        a.parse().unwrap_or_else(|_| panic!("--addr must be IP:PORT, got {a}"))
    }
    pub fn pid(&self) -> Option<i32> {
        self.opt("server-pid").and_then(|p| p.parse().ok())
    }
}

// ---------------------------------------------------------------- /proc
pub fn clk_tck() -> f64 {
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as f64 }
}

/// utime+stime of a process in seconds.
pub fn cpu_secs(pid: i32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // fields after ')' start at field 3 (state); utime is field 14, stime 15
    let ut: u64 = f.get(11)?.parse().ok()?;
    let st: u64 = f.get(12)?.parse().ok()?;
    Some((ut + st) as f64 / clk_tck())
}

pub fn self_cpu_secs() -> f64 {
    cpu_secs(std::process::id() as i32).unwrap_or(0.0)
}

/// A `/proc/<pid>/status` field in kB (VmRSS, VmHWM) or count (Threads).
pub fn status_field(pid: i32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    for l in s.lines() {
        if let Some(r) = l.strip_prefix(key) {
            return r.trim_start_matches(':').split_whitespace().next()?.parse().ok();
        }
    }
    None
}

pub fn alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true)
}

pub fn raise_nofile(want: u64) -> u64 {
    unsafe {
        let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        if r.rlim_cur >= want {
            return r.rlim_cur;
        }
        let nr = libc::rlimit { rlim_cur: want, rlim_max: want.max(r.rlim_max) };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &nr) != 0 {
            let nr = libc::rlimit { rlim_cur: r.rlim_max, rlim_max: r.rlim_max };
            libc::setrlimit(libc::RLIMIT_NOFILE, &nr);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        r.rlim_cur
    }
}

pub fn now_micros() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as u64
}

// ---------------------------------------------------------------- histograms
pub fn hist() -> Histogram<u64> {
    // microseconds, 1 µs .. 10 min, 2 significant digits (≤ 1 % error; small enough to keep one per socket)
    Histogram::new_with_bounds(1, 600_000_000, 2).unwrap()
}

pub fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        return f64::NAN;
    }
    h.value_at_quantile(q) as f64 / 1000.0
}

pub fn max_ms(h: &Histogram<u64>) -> f64 {
    if h.is_empty() {
        return f64::NAN;
    }
    h.max() as f64 / 1000.0
}

// ---------------------------------------------------------------- TCP
/// Source addresses 127.0.0.1 .. 127.0.0.k, so that many sockets do not run out of
/// ephemeral ports (and a per-IP cap sees several peers).
pub fn src_ip(i: usize, k: usize) -> Option<Ipv4Addr> {
    if k <= 1 {
        return None;
    }
    Some(Ipv4Addr::new(127, 0, 0, 1 + (i % k) as u8))
}

pub async fn tcp_connect(addr: SocketAddr, src: Option<Ipv4Addr>) -> io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    if let Some(ip) = src {
        s.bind(SocketAddr::V4(SocketAddrV4::new(ip, 0)))?;
    }
    let st = s.connect(addr).await?;
    st.set_nodelay(true)?;
    Ok(st)
}

// ---------------------------------------------------------------- HTTP/1.1 keep-alive client
pub struct Resp {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub body: Vec<u8>,
}

pub struct Http {
    addr: SocketAddr,
    src: Option<Ipv4Addr>,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    memchr::memmem::find(h, n)
}

impl Http {
    pub fn new(addr: SocketAddr, src: Option<Ipv4Addr>) -> Http {
        Http { addr, src, stream: None, buf: Vec::with_capacity(16384) }
    }

    pub async fn req(&mut self, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> io::Result<Resp> {
        let reused = self.stream.is_some();
        match self.req_once(method, path, token, body).await {
            Ok(r) => Ok(r),
            Err(_) if reused => {
                self.stream = None;
                self.req_once(method, path, token, body).await
            }
            Err(e) => Err(e),
        }
    }

    async fn req_once(&mut self, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> io::Result<Resp> {
        if self.stream.is_none() {
            self.stream = Some(tcp_connect(self.addr, self.src).await?);
            self.buf.clear();
        }
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: keep-alive\r\n", self.addr);
        if let Some(t) = token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        if let Some(b) = body {
            head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}", b.len()));
        } else {
            head.push_str("\r\n");
        }
        let res = self.exchange(head.as_bytes()).await;
        if res.is_err() {
            self.stream = None;
        }
        res
    }

    async fn exchange(&mut self, out: &[u8]) -> io::Result<Resp> {
        let st = self.stream.as_mut().unwrap();
        st.write_all(out).await?;
        // head
        let he = loop {
            if let Some(p) = find(&self.buf, b"\r\n\r\n") {
                break p;
            }
            if read_more(st, &mut self.buf).await? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "eof in head"));
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..he]).to_string();
        let mut lines = head.split("\r\n");
        let status: u16 = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad status line"))?;
        let (mut clen, mut chunked, mut close, mut retry_after) = (None, false, false, None);
        for l in lines {
            if let Some((k, v)) = l.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
                match k.as_str() {
                    "content-length" => clen = v.parse::<usize>().ok(),
                    "transfer-encoding" => chunked = v.to_ascii_lowercase().contains("chunked"),
                    "connection" => close = v.eq_ignore_ascii_case("close"),
                    "retry-after" => retry_after = v.parse().ok(),
                    _ => {}
                }
            }
        }
        self.buf.drain(..he + 4);
        let body = if let Some(n) = clen {
            while self.buf.len() < n {
                if read_more(st, &mut self.buf).await? == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "eof in body"));
                }
            }
            self.buf.drain(..n).collect()
        } else if chunked {
            let mut body = Vec::new();
            loop {
                let le = loop {
                    if let Some(p) = find(&self.buf, b"\r\n") {
                        break p;
                    }
                    if read_more(st, &mut self.buf).await? == 0 {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "eof in chunk"));
                    }
                };
                let sz = usize::from_str_radix(String::from_utf8_lossy(&self.buf[..le]).split(';').next().unwrap().trim(), 16)
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk"))?;
                while self.buf.len() < le + 2 + sz + 2 {
                    if read_more(st, &mut self.buf).await? == 0 {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "eof in chunk"));
                    }
                }
                body.extend_from_slice(&self.buf[le + 2..le + 2 + sz]);
                self.buf.drain(..le + 2 + sz + 2);
                if sz == 0 {
                    break;
                }
            }
            body
        } else if status == 204 || status == 304 {
            Vec::new()
        } else {
            // until EOF
            while read_more(st, &mut self.buf).await? > 0 {}
            close = true;
            std::mem::take(&mut self.buf)
        };
        if close {
            self.stream = None;
            self.buf.clear();
        }
        Ok(Resp { status, retry_after, body })
    }
}

async fn read_more(st: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut tmp = [0u8; 16384];
    let n = st.read(&mut tmp).await?;
    buf.extend_from_slice(&tmp[..n]);
    Ok(n)
}

// ---------------------------------------------------------------- accounts
pub const PASSWORD: &str = "bench-password-1";

/// Source address for account set-up request `i` of a run with this `prefix`. mini-discord
/// throttles registrations per client IP (20 attempts per hour, counted before the 409 check),
/// so set-up spreads over 127.x.y.z: 15 accounts per address, a different /16 per prefix.
pub fn account_src(prefix: &str, i: usize) -> Ipv4Addr {
    let h = prefix.bytes().fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619));
    let block = i / 15;
    Ipv4Addr::new(127, 100 + (h % 150) as u8, (block / 250) as u8, (block % 250 + 1) as u8)
}

/// Register `name` (or log in when it exists). Returns the session token.
pub async fn account(addr: SocketAddr, name: &str, src: Option<Ipv4Addr>) -> Result<String, String> {
    let mut h = Http::new(addr, src);
    let body = serde_json::json!({"username": name, "password": PASSWORD}).to_string();
    let mut path = "/api/register";
    for attempt in 0..30u64 {
        let r = h.req("POST", path, None, Some(&body)).await.map_err(|e| format!("{path}: {e}"))?;
        match r.status {
            200 | 201 => {
                let v: serde_json::Value = serde_json::from_slice(&r.body).map_err(|e| format!("{path}: bad json {e}"))?;
                return v["token"].as_str().map(|s| s.to_string()).ok_or_else(|| format!("{path}: no token"));
            }
            // taken, closed, or registration throttled: the account may exist already
            409 | 403 | 429 if path == "/api/register" => path = "/api/login",
            429 | 503 if r.retry_after.unwrap_or(1) <= 5 => {
                let wait = r.retry_after.unwrap_or(1).max(1);
                tokio::time::sleep(Duration::from_millis(wait * 1000 + attempt * 10)).await;
            }
            s => return Err(format!("{path} {name}: HTTP {s} (Retry-After {:?}): {}", r.retry_after, String::from_utf8_lossy(&r.body))),
        }
    }
    Err(format!("{name}: gave up"))
}

/// Set up `n` accounts named `{prefix}{i}` with `par` requests in flight.
pub async fn accounts(addr: SocketAddr, prefix: &str, n: usize, par: usize) -> Vec<String> {
    let t0 = std::time::Instant::now();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(par.max(1)));
    let mut hs = Vec::new();
    for i in 0..n {
        let name = format!("{prefix}{i}");
        let src = account_src(prefix, i);
        let sem = sem.clone();
        hs.push(tokio::spawn(async move {
            let _p = sem.acquire_owned().await.unwrap();
            account(addr, &name, Some(src)).await
        }));
    }
    let mut out = Vec::new();
    for h in hs {
        match h.await.unwrap() {
            Ok(t) => out.push(t),
            Err(e) => {
                eprintln!("account set-up failed: {e}");
                std::process::exit(1);
            }
        }
    }
    eprintln!("# {} accounts ready in {:.1} s", n, t0.elapsed().as_secs_f64());
    out
}

// ---------------------------------------------------------------- WebSocket
pub type Ws = WebSocketStream<TcpStream>;

#[derive(Debug)]
pub enum WsErr {
    Status(u16),
    Connect(String),
    Handshake(String),
}

pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(8192).write_buffer_size(0).max_message_size(Some(1 << 20)).max_frame_size(Some(1 << 20))
}

pub async fn ws_connect(addr: SocketAddr, src: Option<Ipv4Addr>, token: &str) -> Result<Ws, WsErr> {
    let st = tcp_connect(addr, src).await.map_err(|e| WsErr::Connect(e.to_string()))?;
    ws_upgrade(addr, st, token).await
}

/// The WebSocket upgrade of `/ws` on a connected stream `st` (to `addr`), with the token.
pub async fn ws_upgrade<S>(addr: SocketAddr, st: S, token: &str) -> Result<WebSocketStream<S>, WsErr>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
    req.headers_mut().insert("Authorization", format!("Bearer {token}").parse().unwrap());
    match tokio_tungstenite::client_async_with_config(req, st, Some(ws_config())).await {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::Error::Http(r)) => Err(WsErr::Status(r.status().as_u16())),
        Err(e) => Err(WsErr::Handshake(e.to_string())),
    }
}

/// Append one JSON result line to the file named by --json (and print it).
pub fn emit(args: &Args, v: serde_json::Value) {
    let line = v.to_string();
    println!("RESULT {line}");
    if let Some(p) = args.opt("json") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(p).expect("open --json file");
        writeln!(f, "{line}").unwrap();
    }
}

pub fn r2(x: f64) -> serde_json::Value {
    if x.is_finite() {
        serde_json::json!((x * 100.0).round() / 100.0)
    } else {
        serde_json::Value::Null
    }
}

/// Busy CPU seconds of the whole machine (all cores) from /proc/stat.
pub fn machine_busy_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let l = s.lines().next().unwrap_or("");
    let v: Vec<u64> = l.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    if v.len() < 5 {
        return 0.0;
    }
    let total: u64 = v.iter().take(8).sum();
    (total - v[3] - v[4]) as f64 / clk_tck()
}
