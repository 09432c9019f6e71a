//! `/ws` and `/ws/voice`: the WebSocket transport. The whole handshake (upgrade headers,
//! session, the Origin of a cookie session, the voice channel's kind, the user's handshake
//! budgets), then the reader loop
//! that is each connection's one thread from then on. What a frame *means* lives elsewhere:
//! chat ops in `chat.rs`, signaling rules in `voice/signaling.rs`.
//!
//! tungstenite reads and validates client frames (masking, UTF-8, sizes) on a stream whose
//! write half is a sink: it answers pings and closes by itself while reading, and may split
//! a frame over several writes, so after the handshake everything we send — events, pongs,
//! pings, close frames — goes as whole frames through the connection's `Outbox` (see
//! `writer.rs`), the one place that writes to the socket.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Error as WsError, Message as WsMessage, WebSocket};

use super::chat;
use crate::community::Perms;
use crate::error::{ApiError, ApiResult};
use crate::http::{self, assets, auth, Request, Response};
use crate::metrics::METRICS;
use crate::model::ChannelKind;
use crate::model::User;
use crate::ratelimit::{Bucket, PerUser};
use crate::realtime::frame::{self, code};
use crate::realtime::protocol::{self, ClientText, ClientVoice, ServerEvent};
use crate::realtime::router::{Cmd, SessionRef};
use crate::realtime::trace::Trace;
use crate::realtime::writer::Outbox;
use crate::store;
use crate::voice::signaling::{self, Signal};

use crate::App;

/// API.md: frames and messages over 64 KiB are closed with 1009, on every socket. An `sfu`
/// room's answer can be bigger (`signaling::MAX_SFU_SDP_BYTES`): it comes in parts, each
/// its own frame under this cap (`signaling::Parts`).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// tungstenite's default read buffer is 128 KiB, zero-filled on first read (measured: 135 KiB
/// RSS per idle connection). Nearly every client frame is a few hundred bytes; a larger one
/// (up to the 64 KiB cap) is simply read in more chunks. 1 KiB instead of 4 KiB saved 2.9 KiB
/// per idle socket when it was made (2,000 idle sockets, /proc/PID/smaps); what an idle
/// socket costs today is in `memory.rs`.
pub const READ_BUFFER_BYTES: usize = 1024;
/// API.md: the server pings every 30 s…
pub const PING_INTERVAL: Duration = Duration::from_secs(30);
/// …and drops a connection it has heard nothing from for 75 s.
pub const IDLE_LIMIT: Duration = Duration::from_secs(75);
/// Bad frames (malformed JSON, unknown type) a connection may send: a burst of 20, then one
/// every 2 s. Past that it is abusive and closed with 1008.
const BAD_FRAME_BURST: f64 = 20.0;
const BAD_FRAME_RATE: f64 = 0.5;
/// `/ws` churn per user. A user may hold as many `/ws` as the connection caps allow (tabs,
/// devices, a reconnect storm after a restart): only churn costs. A `/ws` that ends within
/// `BRIEF_CONNECTION` takes one token (the bucket may go into debt); with no token left a
/// handshake gets 429 before the upgrade. 30 brief connections (reloads, a flaky network),
/// then one a second: flapping presence and re-sending `ready` is not worth it (issue 19,
/// finding 2).
const WS_CHURN_BURST: f64 = 30.0;
const WS_CHURN_RATE: f64 = 1.0;
const BRIEF_CONNECTION: Duration = Duration::from_secs(10);
/// After the server closes a connection (a frame over the cap, a kick, silence), what the
/// client still sends is read and dropped until it has been quiet for `LINGER_QUIET`, up to
/// `LINGER_LIMIT` and `LINGER_BYTES`. Closing a socket with bytes unread makes the kernel
/// send a reset, and a client that reads after the reset never sees our close frame (it
/// reports 1006 instead of, say, 1009).
const LINGER_QUIET: Duration = Duration::from_millis(200);
const LINGER_LIMIT: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1024 * 1024;

/// The per-user budgets of the realtime sockets, shared by all of a user's connections.
pub struct Budgets {
    ws_churn: PerUser,
    voice: signaling::Budgets,
}

impl Default for Budgets {
    fn default() -> Budgets {
        Budgets {
            ws_churn: PerUser::new(WS_CHURN_RATE, WS_CHURN_BURST),
            voice: signaling::Budgets::default(),
        }
    }
}

static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// The read half given to tungstenite: reads go to the socket, writes are dropped (we send
/// our own pongs and closes through the outbox).
struct ReadHalf(Arc<TcpStream>);

impl Read for ReadHalf {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        (&*self.0).read(buf)
    }
}

impl Write for ReadHalf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES))
}

/// A connection that passed the WebSocket handshake, ready to become a reader.
pub struct Upgraded {
    stream: Arc<TcpStream>,
    leftover: Vec<u8>,
    user: User,
    /// The session it was opened with: ending it closes the socket (`router.rs`).
    session: SessionRef,
    /// `Some(voice channel)` for `/ws/voice`.
    room: Option<String>,
}

/// The whole WebSocket handshake of `/ws` and `/ws/voice` (API.md "Handshake"): the upgrade
/// headers, the session, the Origin of a cookie session, and for `/ws/voice` the channel's
/// kind, and the user's budget of joins (`/ws/voice`) or churn (`/ws`). If all is good it
/// answers 101 and hands the connection back for its reader; else
/// it answers the error and the connection closes.
pub fn handshake(
    app: &App,
    req: &Request,
    mut stream: TcpStream,
    leftover: Vec<u8>,
) -> Option<Upgraded> {
    let checked = (|| {
        let accept = accept_key(req)?;
        let (user, source, session) = auth::authenticate_session(req, &app.store)?;
        // Browsers attach cookies to cross-site WebSocket handshakes by themselves
        // (cross-site WebSocket hijacking); a Bearer token must be added by the page.
        if source == auth::Source::Cookie {
            auth::check_origin(req, &app.config, true)?;
        }
        let room = if req.path == "/ws/voice" {
            let name = req.query_param("channel").unwrap_or_default();
            Some(voice_channel(app, &user, name)?)
        } else {
            None
        };
        // Per user, before the 101 (issue 19, finding 2).
        let b = &app.ws_budgets;
        match room {
            Some(_) => b.voice.join(user.id),
            None => b.ws_churn.check(user.id),
        }
        .map_err(ApiError::rate_limited)?;
        Ok((accept, user, session, room))
    })();
    let (accept, user, session, room) = match checked {
        Ok(x) => x,
        Err(e) => {
            let _ =
                assets::security_headers(Response::error(&e)).write_to(&mut stream, false, false);
            return None;
        }
    };
    let _ = stream.set_write_timeout(Some(http::WRITE_TIMEOUT));
    stream.write_all(&switching_protocols(&accept)).ok()?;
    let _ = stream.set_write_timeout(None);
    Some(Upgraded {
        stream: Arc::new(stream),
        leftover,
        user,
        session,
        room,
    })
}

/// The one check of a voice room's channel kind and of the right to join it: API.md
/// answers 404 before the upgrade for anything but a voice channel the user may see, and
/// 403 without `connect` (or during a timeout). (The router later only checks that the
/// channel still exists, for one deleted between this check and the join.)
fn voice_channel(app: &App, user: &User, name: String) -> ApiResult<String> {
    let found = app.store.read({
        let name = name.clone();
        move |c| store::channel(c, &name)
    })?;
    let perms = app.community.snapshot().in_channel(user.id, &name);
    match (found, perms) {
        (Some((_, c)), Some(p)) if c.kind == ChannelKind::Voice && p.has(Perms::VIEW_CHANNEL) => {
            if !p.has(Perms::CONNECT) {
                return Err(ApiError::forbidden("you may not join this voice channel"));
            }
            Ok(name)
        }
        _ => Err(ApiError::not_found("no such voice channel")),
    }
}

/// Runs an upgraded connection to its end on the current thread.
pub fn serve(app: &Arc<App>, up: Upgraded) {
    match up.room {
        None => serve_text(app, up.stream, up.leftover, up.user, up.session),
        Some(room) => serve_voice(app, up.stream, up.leftover, up.user, up.session, room),
    }
}

/// Checks the upgrade headers of RFC 6455 §4.2.1; returns the `Sec-WebSocket-Accept` value.
fn accept_key(req: &Request) -> ApiResult<String> {
    let has_token = |name: &str, token: &str| {
        req.header(name)
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    if req.method != "GET"
        || !has_token("upgrade", "websocket")
        || !has_token("connection", "upgrade")
    {
        return Err(ApiError::bad_request(
            "this endpoint needs a WebSocket upgrade",
        ));
    }
    if req.header("sec-websocket-version") != Some("13") {
        return Err(ApiError::bad_request(
            "only WebSocket version 13 is supported",
        ));
    }
    let key = req
        .header("sec-websocket-key")
        .ok_or_else(|| ApiError::bad_request("missing Sec-WebSocket-Key"))?;
    Ok(tungstenite::handshake::derive_accept_key(key.as_bytes()))
}

fn switching_protocols(accept: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    )
    .into_bytes()
}

/// One upgraded connection while its reader runs.
struct Conn {
    id: u64,
    ws: WebSocket<ReadHalf>,
    outbox: Arc<Outbox>,
    last_heard: Instant,
    last_ping: Instant,
    bad_frames: Bucket,
    /// The client sent its close frame (or ended the stream): nothing is left to drain.
    peer_done: bool,
}

enum Next {
    Text(String),
    End,
}

impl Conn {
    fn new(app: &App, stream: Arc<TcpStream>, leftover: Vec<u8>) -> Conn {
        let id = NEXT_CONN_ID.fetch_add(1, Relaxed);
        let outbox = Outbox::new(id, stream.clone(), app.writer.clone());
        let ws = WebSocket::from_partially_read(
            ReadHalf(stream),
            leftover,
            Role::Server,
            Some(ws_config()),
        );
        let now = Instant::now();
        Conn {
            id,
            ws,
            outbox,
            last_heard: now,
            last_ping: now,
            bad_frames: Bucket::new(BAD_FRAME_RATE, BAD_FRAME_BURST),
            peer_done: false,
        }
    }

    /// Once the reader is done: when the server ended the connection, drains what the
    /// client still sends (see `LINGER_QUIET`) so the socket closes without a reset.
    fn linger(&mut self) {
        if self.peer_done {
            return;
        }
        let sock = &self.ws.get_ref().0;
        let until = Instant::now() + LINGER_LIMIT;
        let mut buf = [0u8; 4096];
        let mut total = 0;
        while total < LINGER_BYTES {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || sock.set_read_timeout(Some(LINGER_QUIET.min(left))).is_err() {
                break;
            }
            match (&**sock).read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    }

    fn send(&self, ev: &ServerEvent) {
        let _ = self.outbox.push(frame::json(ev));
    }

    fn send_error(&self, e: &ApiError, nonce: Option<String>) {
        self.send(&ServerEvent::error(e, nonce));
    }

    /// A bad frame: answer `bad_request`; `false` once the connection has sent too many.
    #[inline(never)]
    fn bad_frame(&mut self, message: &str) -> bool {
        if self.bad_frames.take().is_err() {
            self.outbox.close(code::POLICY, "too many bad frames");
            return false;
        }
        self.send_error(&ApiError::bad_request(message), None);
        true
    }

    /// Waits for the next text message, answering pings, sending our own pings, and ending
    /// the connection on close, error, oversize or silence.
    fn next(&mut self) -> Next {
        loop {
            if self.outbox.is_closed() {
                return Next::End;
            }
            let now = Instant::now();
            if now.duration_since(self.last_heard) >= IDLE_LIMIT {
                log::debug!(
                    "connection {} silent for {IDLE_LIMIT:?}; dropping it",
                    self.id
                );
                self.outbox.close(code::GOING_AWAY, "idle");
                return Next::End;
            }
            if now.duration_since(self.last_ping) >= PING_INTERVAL {
                self.last_ping = now;
                let _ = self.outbox.push(frame::ping(b"md"));
            }
            let until_ping = PING_INTERVAL.saturating_sub(now.duration_since(self.last_ping));
            let until_idle = IDLE_LIMIT.saturating_sub(now.duration_since(self.last_heard));
            let wait = until_ping.min(until_idle).max(Duration::from_millis(10));
            let _ = self.ws.get_ref().0.set_read_timeout(Some(wait));
            match self.ws.read() {
                Ok(msg) => {
                    self.last_heard = Instant::now();
                    match msg {
                        // Once the router has closed this socket (logout, kick), nothing
                        // read from it is acted on, even what was already on the wire.
                        WsMessage::Text(_) if self.outbox.is_closed() => return Next::End,
                        WsMessage::Text(t) => return Next::Text(t.as_str().to_owned()),
                        WsMessage::Binary(_) => {
                            if !self.bad_frame("binary frames are not part of the protocol") {
                                return Next::End;
                            }
                        }
                        WsMessage::Ping(p) => {
                            let _ = self.outbox.push(frame::pong(&p));
                        }
                        WsMessage::Pong(_) | WsMessage::Frame(_) => {}
                        WsMessage::Close(f) => {
                            // RFC 6455 §5.5.1: the reply echoes the code. tungstenite has
                            // already put 1002 in place of a code no endpoint may send
                            // (999, 1005, 5000 …; §7.4.1, §7.4.2), failing the connection.
                            let c = f.map_or(code::NORMAL, |f| u16::from(f.code));
                            self.outbox.close(c, "");
                            self.peer_done = true;
                            return Next::End;
                        }
                    }
                }
                // EINTR: a signal (SIGSTOP/SIGCONT of the process) interrupted the blocked
                // read; the connection is fine.
                Err(WsError::Io(e))
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut
                        || e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(WsError::Capacity(_)) => {
                    self.outbox.close(code::TOO_BIG, "message over 64 KiB");
                    return Next::End;
                }
                Err(WsError::Utf8(_)) => {
                    self.outbox.close(code::INVALID_DATA, "text is not UTF-8");
                    return Next::End;
                }
                Err(WsError::Protocol(_)) => {
                    self.outbox.close(code::PROTOCOL, "protocol error");
                    return Next::End;
                }
                Err(_) => {
                    self.outbox.close(code::NORMAL, "");
                    return Next::End;
                }
            }
        }
    }
}

/// Runs a `/ws` connection to its end on the current thread.
fn serve_text(
    app: &Arc<App>,
    stream: Arc<TcpStream>,
    leftover: Vec<u8>,
    user: User,
    session: SessionRef,
) {
    let opened = Instant::now();
    let mut conn = Conn::new(app, stream, leftover);
    // `ready.members` ("Run a community"); the router then adds their roles.
    let Ok(members) = app.store.read(store::list_users) else {
        conn.outbox.close(code::GOING_AWAY, "busy");
        return;
    };
    let (done_tx, done_rx) = bounded(1);
    let (status, unread) = crate::social::ops::join_state(app, user.id);
    app.router.send(Cmd::Join {
        conn: conn.id,
        user: user.clone(),
        session,
        outbox: conn.outbox.clone(),
        status,
        unread,
        members,
        done: done_tx,
    });
    // Wait until `ready` is queued, so nothing we send can overtake it.
    if done_rx.recv().is_err() {
        return;
    }
    METRICS.ws_connections_open.fetch_add(1, Relaxed);
    // A `send` read here is the first hop of its message (`sched.rs`).
    crate::sched::hop_thread(None);
    while let Next::Text(text) = conn.next() {
        // Issue 20: the start of a chat message's path, timed stage by stage (`trace.rs`).
        let read = Trace::start();
        if protocol::too_deep(&text) {
            if !conn.bad_frame("JSON nests too deeply") {
                break;
            }
            continue;
        }
        match serde_json::from_str::<ClientText>(&text) {
            Ok(op) => handle_text_op(app, &conn, &user, op, read),
            Err(e) => {
                if !conn.bad_frame(&format!("bad frame: {e}")) {
                    break;
                }
            }
        }
    }
    app.router.send(Cmd::Leave { conn: conn.id });
    METRICS.ws_connections_open.fetch_sub(1, Relaxed);
    if opened.elapsed() < BRIEF_CONNECTION {
        app.ws_budgets.ws_churn.charge(user.id);
    }
    conn.linger();
}

/// Hands one `/ws` op to its chat rule (`chat.rs`). Kept out of the reader loop's frame so
/// that the loop's stack stays shallow (see `memory::release_unused_stack`).
#[inline(never)]
fn handle_text_op(app: &Arc<App>, conn: &Conn, user: &User, op: ClientText, read: Trace) {
    let from = chat::Client {
        conn: conn.id,
        user,
        outbox: &conn.outbox,
        read,
    };
    match op {
        ClientText::Ping => conn.send(&ServerEvent::Pong),
        ClientText::Typing { channel } => chat::typing(app, &from, channel),
        ClientText::Send {
            channel,
            content,
            nonce,
            reply_to,
            attachments,
        } => chat::send(app, &from, channel, content, nonce, reply_to, attachments),
        ClientText::Edit { id, content } => chat::edit(app, &from, id, content),
        ClientText::Delete { id } => chat::delete(app, &from, id),
        ClientText::React { id, emoji } => chat::react(app, &from, id, emoji),
        ClientText::Read { channel, id } => crate::social::ops::read(app, &from, channel, id),
        ClientText::Status { status } => crate::social::ops::status(app, &from, status),
        ClientText::Pin { id, on } => chat::pin(app, &from, id, on),
    }
}

/// Runs a `/ws/voice` connection in `room` to its end on the current thread.
fn serve_voice(
    app: &Arc<App>,
    stream: Arc<TcpStream>,
    leftover: Vec<u8>,
    user: User,
    session: SessionRef,
    room: String,
) {
    let mut conn = Conn::new(app, stream, leftover);
    let (done_tx, done_rx) = bounded(1);
    app.router.send(Cmd::VoiceJoin {
        conn: conn.id,
        user: user.clone(),
        session,
        room: room.clone(),
        outbox: conn.outbox.clone(),
        done: done_tx,
    });
    let sfu = match done_rx.recv() {
        Ok(Ok(joined)) => {
            // Without `speak`, a member is kept muted from the start (API.md).
            let snapshot = app.community.snapshot();
            if !snapshot
                .in_channel(user.id, &room)
                .is_some_and(|p| p.has(Perms::SPEAK))
            {
                app.router.send(Cmd::VoiceState {
                    conn: conn.id,
                    flags: (true, false, false, false),
                });
            }
            joined.sfu
        }
        Ok(Err(e)) => {
            conn.send_error(&e, None);
            conn.outbox.close(code::NORMAL, e.code.as_str());
            return;
        }
        Err(_) => return,
    };
    let max_sdp = if sfu {
        signaling::MAX_SFU_SDP_BYTES
    } else {
        signaling::MAX_SDP_BYTES
    };
    // An `sfu` room's answer may come in parts; each part is a frame of the signaling budget.
    let mut parts = signaling::Parts::default();
    METRICS.voice_connections_open.fetch_add(1, Relaxed);
    while let Next::Text(text) = conn.next() {
        if protocol::too_deep(&text) {
            if !conn.bad_frame("JSON nests too deeply") {
                break;
            }
            continue;
        }
        let op = match serde_json::from_str::<ClientVoice>(&text) {
            Ok(op) => op,
            Err(e) => {
                if !conn.bad_frame(&format!("bad frame: {e}")) {
                    break;
                }
                continue;
            }
        };
        if matches!(op, ClientVoice::Ping) {
            conn.send(&ServerEvent::Pong);
            continue;
        }
        // The later parts of an answer were paid for by its first (`MAX_ANSWER_PARTS`).
        let later_part = matches!(op, ClientVoice::Answer { part: Some(n), .. } if n > 0);
        if !later_part {
            if let Err(ms) = app.ws_budgets.voice.frame(user.id, &op) {
                conn.send_error(&ApiError::rate_limited(ms), None);
                continue;
            }
        }
        let op = match voice_parts(&mut parts, op, sfu, max_sdp) {
            Ok(Some(op)) => op,
            Ok(None) => continue,
            Err(e) => {
                conn.send_error(&e, None);
                continue;
            }
        };
        let perms = app
            .community
            .snapshot()
            .in_channel(user.id, &room)
            .unwrap_or_default();
        match signaling::check_in(op, max_sdp).and_then(|s| signaling::allowed_in(s, perms, sfu)) {
            Ok(signal) => app.router.send(voice_cmd(conn.id, signal)),
            Err(e) => conn.send_error(&e, None),
        }
    }
    app.router.send(Cmd::VoiceLeave { conn: conn.id });
    METRICS.voice_connections_open.fetch_sub(1, Relaxed);
    conn.linger();
}

/// An answer in parts through `parts` (sfu rooms only; a mesh answer is one frame of at
/// most `MAX_SDP_BYTES`, far under the frame cap); any other frame as it is.
fn voice_parts(
    parts: &mut signaling::Parts,
    op: ClientVoice,
    sfu: bool,
    max_sdp: usize,
) -> ApiResult<Option<ClientVoice>> {
    match op {
        ClientVoice::Answer { part, more, .. } if !sfu && (part.is_some() || more) => Err(
            ApiError::bad_request("answers come in parts only in media server rooms"),
        ),
        op => parts.feed(op, max_sdp),
    }
}

/// The router command that carries a checked signaling frame of connection `conn`.
fn voice_cmd(conn: u64, signal: Signal) -> Cmd {
    match signal {
        Signal::Relay { to, frame } => Cmd::VoiceSignal { conn, to, frame },
        Signal::State {
            muted,
            deafened,
            video,
            screen,
        } => Cmd::VoiceState {
            conn,
            flags: (muted, deafened, video, screen),
        },
        Signal::Speaking { speaking } => Cmd::VoiceSpeaking { conn, speaking },
    }
}
