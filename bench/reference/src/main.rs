//! Reference peer for the mini-discord benchmarks: the server a Rust user would write
//! instead — axum + tokio + `tokio::sync::broadcast`, defaults everywhere.
//!
//! It speaks just enough of the mini-discord protocol for the `fanout` and `idle` modes of
//! `loadgen`: `POST /api/register` / `POST /api/login` (accept anything), `GET /healthz`,
//! `GET /ws` (Bearer ignored) with a `ready` frame, `send` → `message` broadcast to every
//! socket (serialized once, shared bytes), `ping` → `pong`.
//!
//! It does LESS work than mini-discord: no SQLite, no commit before the broadcast, no
//! accounts, no rate limit, no admission control, no slow-consumer policy beyond the
//! broadcast channel's lag (a lagging socket silently skips messages; counted and logged).
//!
//! Address: first argument, else `LISTEN_ADDR`, else 127.0.0.1:8001. Prints `listening on ADDR`.
//! Env: `REF_BROADCAST_CAP` (default 4096), `REF_BATCH` (default 1: write every frame that is
//! already waiting, then flush once; 0: one `send` (write+flush) per frame, as axum's chat example),
//! `REF_NODELAY` (default 0: axum's default, Nagle's algorithm on; 1: TCP_NODELAY on every
//! accepted socket, as mini-discord does).

use axum::{
    extract::{ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade}, State},
    http::StatusCode,
    response::IntoResponse,
    routing::{get, post},
    Json, Router,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};

struct AppState {
    tx: broadcast::Sender<Utf8Bytes>,
    next_id: AtomicU64,
    next_user: AtomicU64,
    lagged: AtomicU64,
    batch: bool,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

fn raise_nofile() {
    unsafe {
        let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 {
            let want = 200_000.max(r.rlim_max);
            let nr = libc::rlimit { rlim_cur: want, rlim_max: want };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &nr) != 0 {
                let nr = libc::rlimit { rlim_cur: r.rlim_max, rlim_max: r.rlim_max };
                libc::setrlimit(libc::RLIMIT_NOFILE, &nr);
            }
        }
    }
}

async fn account(state: &AppState, body: &Value, status: StatusCode) -> impl IntoResponse {
    let name = body.get("username").and_then(|v| v.as_str()).unwrap_or("user").to_string();
    let id = state.next_user.fetch_add(1, Ordering::Relaxed) + 1;
    (status, Json(json!({"token": "x", "user": {"id": id, "username": name, "admin": id == 1}})))
}

async fn register(State(s): State<Arc<AppState>>, Json(body): Json<Value>) -> impl IntoResponse {
    account(&s, &body, StatusCode::CREATED).await
}

async fn login(State(s): State<Arc<AppState>>, Json(body): Json<Value>) -> impl IntoResponse {
    account(&s, &body, StatusCode::OK).await
}

async fn ws_handler(ws: WebSocketUpgrade, State(s): State<Arc<AppState>>) -> impl IntoResponse {
    ws.on_upgrade(move |socket| handle(socket, s))
}

async fn handle(socket: WebSocket, s: Arc<AppState>) {
    let (mut sink, mut stream) = socket.split();
    let last = s.next_id.load(Ordering::Relaxed);
    let ready = json!({"type":"ready","user":{"id":0,"username":"user","admin":false},
        "channels":[{"name":"general","kind":"text","topic":""},{"name":"lounge","kind":"voice","topic":""}],
        "presence":[],"voice":[],"last_ids":{"general": last}});
    let mut rx = s.tx.subscribe();
    if sink.send(Message::Text(ready.to_string().into())).await.is_err() {
        return;
    }
    // Direct replies (pong) for this socket only.
    let (dtx, mut drx) = mpsc::channel::<Utf8Bytes>(64);
    let s2 = s.clone();
    let mut writer = tokio::spawn(async move {
        loop {
            let first = tokio::select! {
                r = rx.recv() => match r {
                    Ok(m) => m,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        s2.lagged.fetch_add(n, Ordering::Relaxed);
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                d = drx.recv() => match d { Some(m) => m, None => break },
            };
            if s2.batch {
                if sink.feed(Message::Text(first)).await.is_err() {
                    break;
                }
                loop {
                    match rx.try_recv() {
                        Ok(m) => {
                            if sink.feed(Message::Text(m)).await.is_err() {
                                return;
                            }
                        }
                        Err(broadcast::error::TryRecvError::Lagged(n)) => {
                            s2.lagged.fetch_add(n, Ordering::Relaxed);
                        }
                        Err(_) => break,
                    }
                }
                if sink.flush().await.is_err() {
                    break;
                }
            } else if sink.send(Message::Text(first)).await.is_err() {
                break;
            }
        }
    });
    loop {
        tokio::select! {
            m = stream.next() => {
                let m = match m { Some(Ok(m)) => m, _ => break };
                let Message::Text(t) = m else { continue };
                let Ok(v) = serde_json::from_str::<Value>(t.as_str()) else { continue };
                match v.get("type").and_then(|t| t.as_str()) {
                    Some("send") => {
                        let id = s.next_id.fetch_add(1, Ordering::Relaxed) + 1;
                        let out = json!({"type":"message","message":{
                            "id": id,
                            "channel": v.get("channel").cloned().unwrap_or(Value::Null),
                            "author": "user",
                            "content": v.get("content").cloned().unwrap_or(Value::Null),
                            "ts": now_ms(), "edited_ts": null, "reply_to": null, "reactions": {}},
                            "nonce": v.get("nonce").cloned().unwrap_or(Value::Null)});
                        // Serialized once; every subscriber gets the same bytes.
                        let _ = s.tx.send(Utf8Bytes::from(out.to_string()));
                    }
                    Some("ping") => { let _ = dtx.try_send(Utf8Bytes::from_static("{\"type\":\"pong\"}")); }
                    _ => {}
                }
            }
            _ = &mut writer => break,
        }
    }
    writer.abort();
}

#[tokio::main]
async fn main() {
    raise_nofile();
    let addr = std::env::args().nth(1)
        .or_else(|| std::env::var("LISTEN_ADDR").ok())
        .unwrap_or_else(|| "127.0.0.1:8001".to_string());
    let cap: usize = std::env::var("REF_BROADCAST_CAP").ok().and_then(|v| v.parse().ok()).unwrap_or(4096);
    let batch = std::env::var("REF_BATCH").map(|v| v != "0").unwrap_or(true);
    let (tx, _) = broadcast::channel(cap);
    let state = Arc::new(AppState {
        tx, next_id: AtomicU64::new(0), next_user: AtomicU64::new(0), lagged: AtomicU64::new(0), batch,
    });
    let s3 = state.clone();
    tokio::spawn(async move {
        let mut seen = 0;
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            let l = s3.lagged.load(Ordering::Relaxed);
            if l != seen {
                eprintln!("reference: {} frames skipped by lagging receivers so far", l);
                seen = l;
            }
        }
    });
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/register", post(register))
        .route("/api/login", post(login))
        .route("/ws", get(ws_handler))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    println!("listening on {}", listener.local_addr().unwrap());
    if std::env::var("REF_NODELAY").is_ok_and(|v| v == "1") {
        // Like-for-like with mini-discord, which sets TCP_NODELAY on every socket.
        use axum::serve::ListenerExt;
        let listener = listener.tap_io(|s| {
            let _ = s.set_nodelay(true);
        });
        axum::serve(listener, app).await.unwrap();
    } else {
        axum::serve(listener, app).await.unwrap();
    }
}
