//! Test harness shared by the integration tests: starts the real `mini-discord` binary on
//! `127.0.0.1:0` with a fresh data directory, speaks raw HTTP/1.1 to it over a real socket,
//! and opens real WebSocket connections with tungstenite. Every wait is bounded.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

/// A fresh, empty directory for one server's data, removed when the server is dropped.
pub fn temp_dir(tag: &str) -> PathBuf {
    let n = NEXT_DIR.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("md-test-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs a `mini-discord` subcommand (`backup`, `import-discord`, …) on `data_dir` with an
/// otherwise empty environment, to the end.
pub fn subcommand(data_dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mini-discord"))
        .args(args)
        .env_clear()
        .env("DATA_DIR", data_dir)
        .output()
        .expect("run mini-discord")
}

/// Asserts that `mini-discord check-db` finds the database at `db` sound.
pub fn assert_check_db(db: &Path) {
    let check = Command::new(env!("CARGO_BIN_EXE_mini-discord"))
        .args(["check-db", db.to_str().unwrap()])
        .output()
        .expect("run check-db");
    assert!(
        check.status.success(),
        "check-db {}: {}",
        db.display(),
        String::from_utf8_lossy(&check.stdout)
    );
}

/// A running server process (ours, by PID) and its log.
pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub log: Arc<Mutex<String>>,
    env: Vec<(String, String)>,
    keep_dir: bool,
}

impl Server {
    /// Starts a server with `REGISTRATION=open` plus `env`, on a fresh data dir.
    pub fn start(env: &[(&str, &str)]) -> Server {
        let dir = temp_dir("srv");
        Server::start_in(&dir, "127.0.0.1:0", env, false)
    }

    /// Starts a server on `data_dir` and `listen` (use a fixed port to restart in place).
    pub fn start_in(data_dir: &Path, listen: &str, env: &[(&str, &str)], keep_dir: bool) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mini-discord"));
        cmd.current_dir(data_dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LISTEN_ADDR", listen)
            .env("DATA_DIR", data_dir)
            .env("REGISTRATION", "open")
            .env("LOG_LEVEL", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start mini-discord");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel::<SocketAddr>();
        for out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let (log, tx) = (log.clone(), tx.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Some(rest) = line.split("listening on ").nth(1) {
                        if let Some(addr) =
                            rest.split_whitespace().next().and_then(|a| a.parse().ok())
                        {
                            let _ = tx.send(addr);
                        }
                    }
                    log.lock().unwrap().push_str(&line);
                    log.lock().unwrap().push('\n');
                }
            });
        }
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!("server did not start; log:\n{}", log.lock().unwrap());
            }
        };
        Server {
            child: Some(child),
            addr,
            data_dir: data_dir.to_path_buf(),
            log,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            keep_dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// SIGKILL: the process gets no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait (bounded) for the process to end.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe_kill(c.id(), 15);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the process and starts it again on the same port and data.
    pub fn restart(&mut self, hard: bool) {
        if hard {
            self.kill9()
        } else {
            self.stop()
        }
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let listen = self.addr.to_string();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // The port may be held for a moment by the dying process.
            let result =
                std::panic::catch_unwind(|| Server::start_in(&self.data_dir, &listen, &env, true));
            match result {
                Ok(mut s) => {
                    self.child = s.child.take();
                    self.log = s.log.clone();
                    return;
                }
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200))
                }
                Err(e) => std::panic::resume_unwind(e),
            }
        }
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// Registers `name` (password `password123`) and returns its token.
    pub fn register(&self, name: &str) -> String {
        let r = self.request(
            "POST",
            "/api/register",
            &[],
            Some(&json!({"username": name, "password": "password123"})),
        );
        assert_eq!(r.status, 201, "register {name}: {}", r.text());
        r.json()["token"].as_str().unwrap().to_string()
    }

    /// One HTTP request with `Connection: close`; `headers` are extra lines.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> HttpResponse {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        let mut raw = head.into_bytes();
        raw.extend_from_slice(body.as_bytes());
        self.raw(&raw)
    }

    /// A request with a Bearer token.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> HttpResponse {
        let auth = format!("Bearer {token}");
        self.request(method, path, &[("Authorization", &auth)], body)
    }

    /// Sends raw bytes and reads the whole answer (the server closes after it).
    pub fn raw(&self, bytes: &[u8]) -> HttpResponse {
        let mut s =
            TcpStream::connect_timeout(&self.addr, Duration::from_secs(5)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(15))).unwrap();
        let _ = s.write_all(bytes);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        HttpResponse::parse(&out)
    }

    /// Opens `/ws` with a Bearer token and reads the `ready` frame.
    pub fn ws(&self, token: &str) -> (WsClient, Value) {
        let mut c = self
            .ws_at("/ws", &[("Authorization", &format!("Bearer {token}"))])
            .expect("ws handshake");
        let ready = c.recv_type("ready");
        (c, ready)
    }

    /// Opens a WebSocket at `path` with extra headers; `Err(status)` when refused.
    pub fn ws_at(&self, path: &str, headers: &[(&str, &str)]) -> Result<WsClient, u16> {
        let mut req = self.ws_url(path).into_client_request().unwrap();
        for (k, v) in headers {
            req.headers_mut().insert(
                tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        match tungstenite::client(req, stream) {
            Ok((ws, _)) => Ok(WsClient { ws }),
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
                Err(r.status().as_u16())
            }
            Err(e) => panic!("handshake failed: {e}"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
        if !self.keep_dir {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

fn unsafe_kill(pid: u32, sig: i32) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn parse(raw: &[u8]) -> HttpResponse {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(raw.len());
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let body = raw.get(split + 4..).unwrap_or(&[]).to_vec();
        HttpResponse {
            status,
            headers,
            body,
        }
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    /// The contract's error code, e.g. `bad_request`.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

/// A real WebSocket client.
pub struct WsClient {
    pub ws: WebSocket<TcpStream>,
}

impl WsClient {
    pub fn send(&mut self, v: Value) {
        self.ws.send(Message::text(v.to_string())).expect("ws send");
    }

    pub fn send_text(&mut self, s: &str) {
        self.ws.send(Message::text(s.to_string())).expect("ws send");
    }

    /// The next JSON frame, or `None` when the connection ends or 10 s pass.
    pub fn recv(&mut self) -> Option<Value> {
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    return Some(serde_json::from_str(t.as_str()).expect("server sent JSON"))
                }
                Ok(Message::Close(_)) => return None,
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }

    /// Skips frames until one of type `t` (panics after 10 s or on close).
    pub fn recv_type(&mut self, t: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match self.recv() {
                Some(v) if v["type"] == t => return v,
                Some(_) => continue,
                None => panic!("connection ended while waiting for {t}"),
            }
        }
        panic!("no {t} frame within 10 s");
    }

    /// Reads frames for `d` and returns them all.
    pub fn drain_for(&mut self, d: Duration) -> Vec<Value> {
        let _ = self.ws.get_ref().set_read_timeout(Some(d));
        let mut out = Vec::new();
        let deadline = Instant::now() + d;
        while Instant::now() < deadline {
            match self.ws.read() {
                Ok(Message::Text(t)) => out.push(serde_json::from_str(t.as_str()).unwrap()),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let _ = self
            .ws
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(10)));
        out
    }

    /// The close code the server sent, reading (bounded) until the connection ends.
    pub fn close_code(&mut self) -> Option<u16> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match self.ws.read() {
                Ok(Message::Close(Some(f))) => return Some(u16::from(f.code)),
                Ok(Message::Close(None)) => return Some(1005),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    }
}
