//! The front door: our own `TcpListener`, admission control, one thread per accepted
//! connection, HTTP/1.1 keep-alive, and the in-place upgrade of `/ws` and `/ws/voice`.
//!
//! The accept loop never dies: accept errors (including running out of descriptors) are
//! logged and retried, a connection past the caps gets a 503 written without blocking and
//! no thread, and a failed thread spawn closes that one socket. A panic while handling a
//! request becomes a 500 for that request only.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Socket, Type};

use super::{api, assets, files, host};
use crate::error::ApiError;
use crate::http::limits::{Ticket, CONNECTION_STACK_BYTES};
use crate::http::{self, ReadError, Request, Response};
use crate::metrics::METRICS;
use crate::realtime::ws::{self, Upgraded};
use crate::App;

/// std's listen backlog is 128: under a burst of connects the kernel drops SYNs and clients
/// wait a 1 s retry (measured here: p99 connect 1.6 s). 4096 removes that.
const LISTEN_BACKLOG: i32 = 4096;

/// Binds `addr` with `SO_REUSEADDR` (a restart can take the port back at once) and our backlog.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// Accepts connections forever.
pub fn accept_loop(listener: TcpListener, app: Arc<App>) {
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(x) => x,
            Err(e) => {
                // EMFILE/ENFILE and friends: wait a moment and go on; never give up.
                log::warn!("accept failed: {e}");
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        let Some(ticket) = app.admission.try_admit(peer.ip()) else {
            refuse(stream);
            continue;
        };
        let app2 = app.clone();
        let spawned = std::thread::Builder::new()
            .name("conn".into())
            .stack_size(CONNECTION_STACK_BYTES)
            .spawn(move || connection(stream, peer, ticket, app2));
        if let Err(e) = spawned {
            // The stream and ticket were moved into the closure and are dropped with it.
            METRICS.connections_refused.fetch_add(1, Relaxed);
            log::warn!("could not start a connection thread: {e}");
        }
    }
}

/// Answers 503 without blocking the accept loop, and closes.
fn refuse(mut stream: TcpStream) {
    METRICS.connections_refused.fetch_add(1, Relaxed);
    let _ = stream.set_nonblocking(true);
    let e = ApiError::new(
        crate::error::Code::Unavailable,
        "the server is at its connection limit",
    );
    let r = Response::error(&e).with_header("Retry-After", "5");
    let _ = stream.write(&r.to_bytes(false, false));
}

/// A connection thread's body. The HTTP phase runs in its own (never inlined) call, so its
/// deep frames are gone before the WebSocket reader starts; the reader then runs from a
/// shallow stack whose unused pages are handed back (`release_unused_stack`), which is what
/// keeps an idle socket's resident stack small (the figure is in `memory.rs`).
fn connection(stream: TcpStream, peer: SocketAddr, ticket: Ticket, app: Arc<App>) {
    METRICS.http_connections_open.fetch_add(1, Relaxed);
    if let Some(up) = http_phase(stream, peer, &app) {
        crate::memory::release_unused_stack();
        websocket_phase(&app, up);
    }
    drop(ticket);
    METRICS.http_connections_open.fetch_sub(1, Relaxed);
}

#[inline(never)]
fn websocket_phase(app: &Arc<App>, up: Upgraded) {
    ws::serve(app, up);
}

/// Answers HTTP requests until the connection closes, or returns it upgraded.
#[inline(never)]
fn http_phase(mut stream: TcpStream, peer: SocketAddr, app: &Arc<App>) -> Option<Upgraded> {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::new();
    loop {
        let mut req = match http::read_request(&mut stream, &mut buf, peer.ip()) {
            Ok(r) => r,
            Err(ReadError::Closed) => return None,
            Err(ReadError::Reply(e)) => {
                let _ = assets::security_headers(Response::error(&e)).write_to(
                    &mut stream,
                    false,
                    false,
                );
                return None;
            }
        };
        METRICS.http_requests.fetch_add(1, Relaxed);
        let from_proxy = app.config.trusted_proxies.contains(req.peer);
        if !from_proxy && !host::host_allowed(req.header("host"), &app.config.allowed_origins) {
            let e = ApiError::new(
                crate::error::Code::Misdirected,
                "this server does not answer for that host name",
            );
            let _ =
                assets::security_headers(Response::error(&e)).write_to(&mut stream, false, false);
            return None;
        }
        if from_proxy {
            // From here on, per-client limits and logs see the client behind the proxy.
            let forwarded = req
                .headers
                .iter()
                .filter(|(k, _)| k == "x-forwarded-for")
                .map(|(_, v)| v.as_str());
            req.peer = app.config.trusted_proxies.client_ip(req.peer, forwarded);
        }
        if req.method == "GET" && (req.path == "/ws" || req.path == "/ws/voice") {
            return ws::handshake(app, &req, stream, std::mem::take(&mut buf));
        }
        if req.streamed || is_file_download(&req) {
            // Files read and write the socket themselves: an upload streams its body to
            // disk, a download streams the file from it (`http/files.rs`).
            let keep = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                if req.streamed {
                    let (response, body_read) = files::upload(app, &req, &mut stream, &mut buf);
                    let keep = req.keep_alive && body_read;
                    let response = assets::security_headers(response);
                    response.write_to(&mut stream, keep, false).is_ok() && keep
                } else {
                    files::download(app, &req, &mut stream)
                }
            }))
            .unwrap_or_else(|_| {
                METRICS.handler_panics.fetch_add(1, Relaxed);
                log::error!("a file handler panicked on {} {}", req.method, req.path);
                false
            });
            if !keep {
                return None;
            }
            continue;
        }
        let head = req.method == "HEAD";
        let response =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| api::handle(&req, app)))
                .unwrap_or_else(|_| {
                    METRICS.handler_panics.fetch_add(1, Relaxed);
                    log::error!("a handler panicked on {} {}", req.method, req.path);
                    Response::error(&ApiError::internal())
                });
        let response = assets::security_headers(response);
        let keep = req.keep_alive;
        if response.write_to(&mut stream, keep, head).is_err() || !keep {
            return None;
        }
    }
}

fn is_file_download(req: &Request) -> bool {
    matches!(req.method.as_str(), "GET" | "HEAD") && req.path.starts_with("/api/attachments/")
}
