//! The router thread: the one owner of all realtime state — open `/ws` and `/ws/voice`
//! connections and the session each was opened with, presence, typing throttles, voice
//! rooms, the channel list and the newest message id of each channel — and the fan-out of
//! every event. The rules of that state are
//! plain structs it owns: `Online` and `Typing` (`presence.rs`) and `VoiceRooms`
//! (`voice/rooms.rs`); this file turns their answers into events.
//!
//! It never blocks and does no I/O. Readers and the store thread send it `Cmd`s over an
//! unbounded channel (their number is bounded by the connection ceiling); it answers by
//! appending encoded frames to connection outboxes (`writer.rs`), which never blocks either.
//! A broadcast is serialized and framed once; every recipient gets the same bytes.
//!
//! Ordering: committed changes arrive from the store thread in commit order (`Cmd::Publish`
//! is sent only from inside the store's answer, by `chat::commit_then_publish`), and the
//! router handles commands in the order they arrive, so every client sees each channel in
//! id order.
//!
//! Presence and voice membership are broadcast as state, not as a log of changes (issue 19,
//! finding 2): per user, the first change goes out at once and the changes of the next
//! `STATE_EVENT_INTERVAL` are folded into one (`coalesce.rs`), which tells every `/ws` what
//! the state is then. So a member flapping `/ws` or looping voice joins and `state` frames
//! costs everyone else at most about two events a second. The router waits for its next
//! command only until the next folded change is due.
//!
//! Voice rooms in `sfu` mode (issue 16): the router still owns who is in the room and every
//! event about it; their media and its signaling belong to the media thread (`media/`). The
//! router hands it joins, leaves, answers, candidates, `watch` and flags (`MediaCmd`, a
//! bounded `try_send`), and pushes what it reports (`Cmd::Media`: offers, `speaking`, a peer
//! it dropped) to the room.
//!
//! Sessions: every connection knows the session it was opened with, so revoking a session
//! (logout), its expiry, or removing a user (kick, ban) closes exactly those sockets at once
//! with the code API.md gives (`Cmd::EndSessions`, `RouterHandle::end_sessions`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Receiver, RecvTimeoutError, Sender};
use serde_json::{Map, Value};

use super::coalesce::Coalescer;
use super::presence::{Online, Typing};
use crate::community::visibility::Visibility;
use crate::community::{ChannelChange, Perms, Snapshot, Update};
use crate::error::{ApiError, ApiResult, Code};
use crate::media::{MediaCmd, MediaEvent, MediaFlags, MediaHandle};
use crate::model::{Channel, ChannelKind, User, VoiceMode};
use crate::realtime::frame::{self, Frame};
use crate::realtime::protocol::{Presence, ServerEvent};
use crate::realtime::trace::{Stage, Trace};
use crate::realtime::writer::{Outbox, Writer};
use crate::social::Status;
use crate::store::Unread;
use crate::voice::{Flags, RoomLimits, VoicePeer, VoiceRooms};

/// Per user, presence and voice-state events go out at most once per this interval: issue
/// 19 asks for "at most about 2 broadcasts a second per user", and half a second is also as
/// long as a mute or a join may take to show without looking slow.
pub const STATE_EVENT_INTERVAL: Duration = Duration::from_millis(500);
/// How often open sockets are checked for sessions that expired while they were open. A
/// session lives 30 days; a minute late is well inside that, and the sweep is one pass over
/// the connections.
const EXPIRY_SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// How long `end_sessions` waits for the router's answer (the router never blocks, so this
/// only bounds a shutdown).
const END_SESSIONS_WAIT: Duration = Duration::from_secs(5);

/// The session a socket was opened with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRef {
    /// SHA-256 of the token (`auth::token_hash`), as the store keeps it.
    pub token_hash: Vec<u8>,
    /// When the session expires, Unix milliseconds.
    pub expires_ms: i64,
}

/// Which sockets `Cmd::EndSessions` closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sessions {
    /// Those of one session (logout), by its token hash.
    One(Vec<u8>),
    /// Those of every session of a user (kick, ban).
    OfUser(i64),
}

/// What the router is asked to do.
pub enum Cmd {
    /// A `/ws` connection is open: send it `ready`, then answer `done`. `status` and
    /// `unread` are what the store holds for the user (issue 14, read before joining).
    Join {
        conn: u64,
        user: User,
        session: SessionRef,
        outbox: Arc<Outbox>,
        status: Status,
        unread: BTreeMap<String, Unread>,
        /// Every account, for `ready.members` (read by the reader before it joins).
        members: Vec<User>,
        done: Sender<()>,
    },
    /// Issue 14: a user chose a status; everyone is told what it shows (invisible: offline).
    Status {
        user_id: i64,
        status: Status,
    },
    /// Issue 14: an event for one user's `/ws` connections only, except `except_conn`.
    ToUser {
        user_id: i64,
        except_conn: Option<u64>,
        event: ServerEvent,
    },
    /// Issue 14: the ids of every user with a `/ws` open (the push worker asks).
    Connected {
        done: Sender<HashSet<i64>>,
    },
    /// A `/ws` connection closed.
    Leave {
        conn: u64,
    },
    /// A committed change for every `/ws` connection (a channel's events: for those who
    /// may see that channel). A new message carries the `Trace` of its path (`trace.rs`).
    Publish(ServerEvent, Option<Trace>),
    /// A committed community change: a new permission snapshot, a channel list change,
    /// and their events (`community/`).
    Community(Box<Update>),
    /// A user is typing in a channel.
    Typing {
        conn: u64,
        channel: String,
    },
    /// A `/ws/voice` connection wants to join `room`; `done` gets its peer id and mode, or
    /// `room_full`.
    VoiceJoin {
        conn: u64,
        user: User,
        session: SessionRef,
        room: String,
        outbox: Arc<Outbox>,
        done: Sender<ApiResult<Joined>>,
    },
    /// What the media thread reports (`media/`): offers to send, speaking, peers it dropped.
    Media(MediaEvent),
    /// A `/ws/voice` connection closed.
    VoiceLeave {
        conn: u64,
    },
    /// Relay an offer/answer/candidate (`frame` has its `type` and payload, not `to`).
    VoiceSignal {
        conn: u64,
        to: String,
        frame: Map<String, Value>,
    },
    VoiceState {
        conn: u64,
        /// (muted, deafened, video, screen)
        flags: Flags,
    },
    VoiceSpeaking {
        conn: u64,
        speaking: bool,
    },
    /// Close every `/ws` and `/ws/voice` socket of `which` with close code `code` (4001
    /// session ended, 4003 removed), as if each had left; then answer `done`.
    EndSessions {
        which: Sessions,
        code: u16,
        reason: String,
        done: Sender<()>,
    },
}

/// A voice join's answer: the peer id, and whether the room runs through the media server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    pub id: String,
    pub sfu: bool,
}

/// The peer id the media server signals as (`from` of its offers, `to` of answers).
pub const SFU_PEER_ID: &str = "sfu";

/// A handle for sending commands to the router.
#[derive(Clone)]
pub struct RouterHandle {
    tx: Sender<Cmd>,
}

impl RouterHandle {
    pub fn send(&self, cmd: Cmd) {
        // Only fails once the router thread is gone, i.e. during shutdown.
        let _ = self.tx.send(cmd);
    }

    /// Closes every socket of `which` with `code` and returns once they are closed: no frame
    /// read from them after this returns is acted on (`ws.rs` checks the outbox after each
    /// read). The one mechanism behind logout and expiry (4001) and kick and ban (4003).
    pub fn end_sessions(&self, which: Sessions, code: u16, reason: impl Into<String>) {
        let (done, answered) = bounded(1);
        self.send(Cmd::EndSessions {
            which,
            code,
            reason: reason.into(),
            done,
        });
        let _ = answered.recv_timeout(END_SESSIONS_WAIT);
    }
}

struct TextConn {
    user: User,
    session: SessionRef,
    outbox: Arc<Outbox>,
}

struct VoiceConn {
    user_id: i64,
    session: SessionRef,
    outbox: Arc<Outbox>,
    /// The (muted, deafened, video, screen) the room was last told for this peer
    /// (`peer_joined` or `peer_state`).
    room_told: Flags,
    /// Its media goes through the media thread (an `sfu` room).
    sfu: bool,
}

/// What every `/ws` was last told of a user in voice.
#[derive(Debug, Clone, PartialEq, Eq)]
struct VoiceTold {
    user: String,
    channel: String,
    muted: bool,
    deafened: bool,
    video: bool,
    screen: bool,
}

fn matches(which: &Sessions, user_id: i64, session: &SessionRef) -> bool {
    match which {
        Sessions::One(hash) => session.token_hash == *hash,
        Sessions::OfUser(id) => user_id == *id,
    }
}

pub struct Router {
    text: HashMap<u64, TextConn>,
    voice: HashMap<u64, VoiceConn>,
    online: Online,
    /// user id → (username, status), for the users every `/ws` was last told are not
    /// offline.
    presence_told: HashMap<i64, (String, &'static str)>,
    presence_events: Coalescer<i64>,
    /// user id → what every `/ws` was last told of their voice membership.
    voice_told: HashMap<i64, VoiceTold>,
    voice_events: Coalescer<i64>,
    next_expiry_sweep: Instant,
    channels: Vec<Channel>,
    last_ids: BTreeMap<String, i64>,
    rooms: VoiceRooms,
    typing: Typing,
    /// Which mode a voice room runs in (with each channel's stored `voice_mode` in
    /// `channels`) and how many people it holds.
    limits: RoomLimits,
    writer: Writer,
    /// Who may see which channel (`community/visibility.rs`).
    visibility: Visibility,
    /// The media thread, when `SFU_UDP_PORT` is set (`sfu` rooms exist only then).
    media: Option<MediaHandle>,
}

/// Starts the router thread with the channel list, newest ids and permission snapshot read
/// at start.
pub fn start(
    channels: Vec<Channel>,
    last_ids: HashMap<String, i64>,
    snapshot: Arc<Snapshot>,
    limits: RoomLimits,
    writer: Writer,
    media: Option<MediaHandle>,
) -> std::io::Result<RouterHandle> {
    let (tx, rx) = unbounded();
    let router = Router {
        text: HashMap::new(),
        voice: HashMap::new(),
        online: Online::default(),
        presence_told: HashMap::new(),
        presence_events: Coalescer::new(STATE_EVENT_INTERVAL),
        voice_told: HashMap::new(),
        voice_events: Coalescer::new(STATE_EVENT_INTERVAL),
        next_expiry_sweep: Instant::now() + EXPIRY_SWEEP_INTERVAL,
        channels,
        last_ids: last_ids.into_iter().collect(),
        rooms: VoiceRooms::default(),
        typing: Typing::default(),
        limits,
        writer,
        visibility: Visibility::new(snapshot, limits.media_port),
        media,
    };
    std::thread::Builder::new()
        .name("router".into())
        .spawn(move || {
            crate::sched::hop_thread(Some("router"));
            router.run(rx)
        })?;
    Ok(RouterHandle { tx })
}

impl Router {
    fn run(mut self, rx: Receiver<Cmd>) {
        loop {
            let wake_at = [
                self.presence_events.next_due(),
                self.voice_events.next_due(),
                Some(self.next_expiry_sweep),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.next_expiry_sweep);
            match rx.recv_deadline(wake_at) {
                Ok(cmd) => self.handle(cmd),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            self.run_timers(Instant::now());
        }
    }

    /// Sends the folded changes that are due, and closes sockets whose session expired.
    fn run_timers(&mut self, now: Instant) {
        for uid in self.presence_events.take_due(now) {
            self.flush_presence(uid);
        }
        for uid in self.voice_events.take_due(now) {
            self.flush_voice(uid);
        }
        if now >= self.next_expiry_sweep {
            self.next_expiry_sweep = now + EXPIRY_SWEEP_INTERVAL;
            self.end_expired(crate::store::now_ms());
        }
    }

    fn handle(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Join {
                conn,
                user,
                session,
                outbox,
                status,
                unread,
                members,
                done,
            } => self.join(conn, user, session, outbox, (status, unread, members), done),
            Cmd::Status { user_id, status } => {
                self.online.set_status(user_id, status);
                self.presence_changed(user_id);
            }
            Cmd::ToUser {
                user_id,
                except_conn,
                event,
            } => {
                let f = frame::json(&event);
                self.fan_out_where(&f, |id, c| c.user.id == user_id && Some(id) != except_conn);
            }
            Cmd::Connected { done } => {
                let _ = done.try_send(self.online.connected());
            }
            Cmd::Leave { conn } => self.leave(conn),
            Cmd::Publish(event, trace) => {
                if let Some(t) = &trace {
                    t.stage(Stage::Router);
                }
                self.publish(event, trace)
            }
            Cmd::Community(update) => self.community(*update),
            Cmd::Typing { conn, channel } => self.typing(conn, channel),
            Cmd::VoiceJoin {
                conn,
                user,
                session,
                room,
                outbox,
                done,
            } => {
                let _ = done.send(self.voice_join(conn, user, session, room, outbox));
            }
            Cmd::VoiceLeave { conn } => self.voice_leave(conn),
            Cmd::VoiceSignal { conn, to, frame } => self.voice_signal(conn, to, frame),
            Cmd::VoiceState { conn, flags } => {
                if let Some((_, peer)) = self.rooms.set_state(conn, flags) {
                    if self.voice.get(&conn).is_some_and(|c| c.sfu) {
                        self.to_media(MediaCmd::State {
                            peer: conn,
                            flags: media_flags(flags),
                        });
                    }
                    self.voice_changed(peer.user_id);
                }
            }
            Cmd::Media(ev) => self.media_event(ev),
            Cmd::VoiceSpeaking { conn, speaking } => {
                if let Some((room, peer)) = self.rooms.find(conn) {
                    let (room, id) = (room.to_string(), peer.id.clone());
                    self.to_room(
                        &room,
                        Some(conn),
                        &frame::json(&ServerEvent::Speaking { id, speaking }),
                    );
                }
            }
            Cmd::EndSessions {
                which,
                code,
                reason,
                done,
            } => {
                self.end_sessions(&which, code, &reason);
                let _ = done.send(());
            }
        }
    }

    /// Closes the sockets of `which` and takes them out of presence and voice at once, so
    /// the others hear of it without waiting for each reader to notice.
    fn end_sessions(&mut self, which: &Sessions, code: u16, reason: &str) {
        let text: Vec<u64> = self
            .text
            .iter()
            .filter(|(_, c)| matches(which, c.user.id, &c.session))
            .map(|(id, _)| *id)
            .collect();
        for conn in text {
            if let Some(c) = self.text.get(&conn) {
                c.outbox.close(code, reason);
            }
            self.leave(conn);
        }
        let voice: Vec<u64> = self
            .voice
            .iter()
            .filter(|(_, c)| matches(which, c.user_id, &c.session))
            .map(|(id, _)| *id)
            .collect();
        for conn in voice {
            if let Some(c) = self.voice.get(&conn) {
                c.outbox.close(code, reason);
            }
            self.voice_leave(conn);
        }
    }

    /// Ends the sockets of sessions that expired while they were open (API.md: expiry
    /// closes them with 4001, like a logout).
    fn end_expired(&mut self, now_ms: i64) {
        let mut expired: Vec<Vec<u8>> = self
            .text
            .values()
            .map(|c| &c.session)
            .chain(self.voice.values().map(|c| &c.session))
            .filter(|s| s.expires_ms <= now_ms)
            .map(|s| s.token_hash.clone())
            .collect();
        expired.sort();
        expired.dedup();
        for hash in expired {
            self.end_sessions(
                &Sessions::One(hash),
                frame::code::SESSION_ENDED,
                "session expired",
            );
        }
    }

    /// A user's presence may have changed: tell everyone now, or fold it into the next
    /// change if one went out less than `STATE_EVENT_INTERVAL` ago.
    fn presence_changed(&mut self, user_id: i64) {
        if self.presence_events.change(user_id, Instant::now()) {
            self.flush_presence(user_id);
        }
    }

    /// Tells every `/ws` a user's presence, if it differs from what they were last told.
    fn flush_presence(&mut self, user_id: i64) {
        let now = self
            .online
            .shown(user_id)
            .map(|(name, status)| (name.to_string(), status));
        let status = match (self.presence_told.get(&user_id), now) {
            (told, Some(now)) if told != Some(&now) => {
                self.presence_told.insert(user_id, now.clone());
                Some(now)
            }
            (Some(_), None) => self
                .presence_told
                .remove(&user_id)
                .map(|(name, _)| (name, "offline")),
            _ => None,
        };
        if let Some((user, status)) = status {
            self.broadcast(&ServerEvent::Presence(Presence { user, status }));
        }
    }

    /// A user's voice membership or state may have changed (see `presence_changed`).
    fn voice_changed(&mut self, user_id: i64) {
        if self.voice_events.change(user_id, Instant::now()) {
            self.flush_voice(user_id);
        }
    }

    /// Tells the room (`peer_state`) and every `/ws` (`voice_state`) where a user is in voice
    /// and with which flags, where that differs from what they were last told.
    fn flush_voice(&mut self, user_id: i64) {
        let now = self
            .rooms
            .find_user(user_id)
            .map(|(room, p)| (room.to_string(), p.clone()));
        if let Some((room, p)) = &now {
            let flags = p.flags();
            let changed = self
                .voice
                .get_mut(&p.conn)
                .filter(|c| c.room_told != flags)
                .map(|c| c.room_told = flags)
                .is_some();
            if changed {
                let ev = ServerEvent::PeerState {
                    id: p.id.clone(),
                    muted: p.muted,
                    deafened: p.deafened,
                    video: p.video,
                    screen: p.screen,
                };
                self.to_room(room, Some(p.conn), &frame::json(&ev));
            }
        }
        let now = now.map(|(channel, p)| VoiceTold {
            user: p.user,
            channel,
            muted: p.muted,
            deafened: p.deafened,
            video: p.video,
            screen: p.screen,
        });
        let told = self.voice_told.get(&user_id).cloned();
        if told == now {
            return;
        }
        if let Some(t) = told.filter(|t| now.as_ref().is_none_or(|n| n.channel != t.channel)) {
            self.to_viewers(&ServerEvent::VoiceState {
                channel: t.channel,
                user: t.user,
                joined: false,
                muted: t.muted,
                deafened: t.deafened,
                video: t.video,
                screen: t.screen,
            });
        }
        match now {
            Some(n) => {
                self.to_viewers(&ServerEvent::VoiceState {
                    channel: n.channel.clone(),
                    user: n.user.clone(),
                    joined: true,
                    muted: n.muted,
                    deafened: n.deafened,
                    video: n.video,
                    screen: n.screen,
                });
                self.voice_told.insert(user_id, n);
            }
            None => {
                self.voice_told.remove(&user_id);
            }
        }
    }

    /// Queues `f` to every `/ws` connection for which `keep` holds, then wakes the writer
    /// once for all of them.
    fn fan_out(&self, f: &Frame, keep: impl Fn(&TextConn) -> bool) {
        self.fan_out_where(f, |_, c| keep(c));
    }

    /// `fan_out` that also sees each connection's id (for events to some connections of
    /// one user).
    fn fan_out_where(&self, f: &Frame, keep: impl Fn(u64, &TextConn) -> bool) {
        let mut wake = Vec::new();
        let mut queued = 0;
        for (_, c) in self.text.iter().filter(|(id, c)| keep(**id, c)) {
            // A full outbox closes that connection (4008); its reader then sends `Leave`.
            queued += c.outbox.push_deferred(f.clone(), &mut wake).is_ok() as u64;
        }
        Outbox::count_deliveries(queued);
        if !wake.is_empty() {
            self.writer.wake_all(wake);
        }
    }

    fn broadcast(&self, ev: &ServerEvent) {
        self.fan_out(&frame::json(ev), |_| true);
    }

    /// Sends `ev` to the connections that may see its channel (encoded once), except
    /// those of `except_user`; an event of no channel goes to everyone. With a `trace`
    /// (a new message), the end of the pushes is its `push` stage, and the writer is handed
    /// the trace to time its pass over these outboxes.
    fn to_viewers_except(&self, ev: &ServerEvent, except_user: Option<i64>, trace: Option<Trace>) {
        let Some(channel) = ev.channel() else {
            return self.broadcast(ev);
        };
        let f = frame::json(ev);
        let mut wake = Vec::new();
        let mut queued = 0;
        for (uid, outbox) in self.visibility.viewers(channel) {
            if Some(*uid) != except_user {
                // A full outbox closes that connection (4008); its reader then sends `Leave`.
                queued += outbox.push_deferred(f.clone(), &mut wake).is_ok() as u64;
            }
        }
        Outbox::count_deliveries(queued);
        match trace {
            Some(t) => {
                t.stage(Stage::Push);
                self.writer.wake_traced(wake, t);
            }
            None if !wake.is_empty() => self.writer.wake_all(wake),
            None => {}
        }
    }

    fn to_viewers(&self, ev: &ServerEvent) {
        self.to_viewers_except(ev, None, None);
    }

    fn to_room(&self, room: &str, except_conn: Option<u64>, f: &Frame) {
        for p in self.rooms.peers(room) {
            if Some(p.conn) != except_conn {
                if let Some(c) = self.voice.get(&p.conn) {
                    let _ = c.outbox.push(f.clone());
                }
            }
        }
    }

    fn join(
        &mut self,
        conn: u64,
        user: User,
        session: SessionRef,
        outbox: Arc<Outbox>,
        // What the reader read from the store for `ready`: the chosen status and read state
        // (issue 14) and every account (issue 13).
        (status, unread, members): (Status, BTreeMap<String, Unread>, Vec<User>),
        done: Sender<()>,
    ) {
        let first = self.online.connect(user.id, &user.username);
        if first {
            self.online.set_status(user.id, status.on_connect());
        }
        let presence = self.online.snapshot();
        let channels = self
            .visibility
            .join(conn, user.id, outbox.clone(), &self.channels);
        let seen = |name: &str| channels.iter().any(|c| c.channel.name == name);
        let snapshot = self.visibility.snapshot();
        let unread = unread.into_iter().filter(|(name, _)| seen(name)).collect();
        let ready = ServerEvent::Ready {
            user: user.clone(),
            voice: self
                .rooms
                .members()
                .into_iter()
                .filter(|m| seen(&m.channel))
                .collect(),
            last_ids: self
                .last_ids
                .iter()
                .filter(|(name, _)| seen(name))
                .map(|(n, id)| (n.clone(), *id))
                .collect(),
            roles: snapshot.roles.clone(),
            members: members.iter().map(|u| snapshot.member(u)).collect(),
            permissions: snapshot.server(user.id),
            channels,
            presence,
            unread,
            status: self.online.status(user.id).unwrap_or(status).as_str(),
            media_server: self.limits.media_port,
        };
        let _ = outbox.push(frame::json(&ready));
        if first {
            // Before this connection is in `text`: its `ready` already says it.
            self.presence_changed(user.id);
        }
        self.text.insert(
            conn,
            TextConn {
                user,
                session,
                outbox,
            },
        );
        let _ = done.send(());
    }

    fn leave(&mut self, conn: u64) {
        let Some(c) = self.text.remove(&conn) else {
            return;
        };
        self.visibility.leave(conn);
        if self.online.disconnect(c.user.id) {
            self.typing.forget(&c.user.username);
            self.presence_changed(c.user.id);
        }
    }

    fn publish(&mut self, ev: ServerEvent, trace: Option<Trace>) {
        if let ServerEvent::Message { message, .. } = &ev {
            // The channel's name is copied only the first time (`entry` would copy it for
            // every message).
            match self.last_ids.get_mut(&message.channel) {
                Some(id) => *id = (*id).max(message.id),
                None => {
                    self.last_ids.insert(message.channel.clone(), message.id);
                }
            }
            self.typing.message_sent(&message.author, &message.channel);
        }
        self.to_viewers_except(&ev, None, trace);
    }

    /// Closes voice room `name`: its peers are disconnected, and every `/ws` hears they left
    /// at once (not folded: `voice_state` for the channel must come before a
    /// `channel_delete`). `why`: the `not_found` its peers are told when the channel was
    /// deleted or renamed (their clients then stop). `None` when its mode changed
    /// (`PATCH … voice_mode`): a mesh call cannot become a media-server call in place, so
    /// the peers are dropped without an error, their clients reconnect as after any drop
    /// (`assets/voice/signaling.js`), and the new `welcome` says the new mode.
    fn close_room(&mut self, name: &str, why: Option<&str>) {
        let now = Instant::now();
        for p in self.rooms.close_room(name) {
            if let Some(c) = self.take_voice(p.conn) {
                if let Some(why) = why {
                    let e = ApiError::not_found(why);
                    let _ = c.outbox.push(frame::json(&ServerEvent::error(&e, None)));
                }
                c.outbox.close(frame::code::NORMAL, "channel changed");
            }
            self.voice_events.sent(p.user_id, now);
            self.flush_voice(p.user_id);
        }
    }

    /// The effective mode of voice room `room` (`VoiceMode::effective` on the channel list's
    /// stored value); `None` when no voice channel has that name.
    pub fn voice_mode(&self, room: &str) -> Option<VoiceMode> {
        self.channels
            .iter()
            .find(|c| c.name == room)
            .and_then(|c| self.mode_of(c))
    }

    fn mode_of(&self, c: &Channel) -> Option<VoiceMode> {
        c.effective_voice_mode(self.limits.media_port)
    }

    /// A committed community change: apply the channel change, take the new permission
    /// snapshot, tell each connection what it now sees (and sees no more), drop voice
    /// peers who may no longer be in their room, then send the change's events.
    fn community(&mut self, u: Update) {
        match &u.channel {
            Some(ChannelChange::Created(c)) => self.channels.push(c.clone()),
            Some(ChannelChange::Updated {
                channel,
                renamed_from,
            }) => {
                let old = renamed_from.as_deref().unwrap_or(&channel.name).to_string();
                if renamed_from.is_some() {
                    self.close_room(&old, Some("this voice channel was renamed"));
                    if let Some(id) = self.last_ids.remove(&old) {
                        self.last_ids.insert(channel.name.clone(), id);
                    }
                }
                let mode_changed = self.voice_mode(&old) != self.mode_of(channel);
                for c in self.channels.iter_mut().filter(|c| c.name == old) {
                    *c = channel.clone();
                }
                if mode_changed && renamed_from.is_none() {
                    self.close_room(&channel.name, None);
                }
            }
            Some(ChannelChange::Deleted(name)) => {
                self.channels.retain(|c| &c.name != name);
                self.last_ids.remove(name);
                self.close_room(name, Some("this voice channel was deleted"));
            }
            None => {}
        }
        self.channels.sort_by_key(|c| (c.kind, c.position));
        let changed = self
            .visibility
            .update(u.snapshot, &self.channels, u.channel.as_ref());
        let mut wake = Vec::new();
        let mut queued = 0;
        for (outbox, f) in changed.frames {
            queued += outbox.push_deferred(f, &mut wake).is_ok() as u64;
        }
        // A voice channel that just came into sight: who is in it (after its channel_create).
        for (outbox, name) in changed.gained {
            for t in self.voice_told.values().filter(|t| t.channel == name) {
                let ev = ServerEvent::VoiceState {
                    channel: t.channel.clone(),
                    user: t.user.clone(),
                    joined: true,
                    muted: t.muted,
                    deafened: t.deafened,
                    video: t.video,
                    screen: t.screen,
                };
                queued += outbox.push_deferred(frame::json(&ev), &mut wake).is_ok() as u64;
            }
        }
        Outbox::count_deliveries(queued);
        if !wake.is_empty() {
            self.writer.wake_all(wake);
        }
        let snapshot = self.visibility.snapshot().clone();
        let unwelcome: Vec<u64> = self
            .voice
            .iter()
            .filter(|(conn, c)| {
                self.rooms.find(**conn).is_some_and(|(room, _)| {
                    !snapshot
                        .in_channel(c.user_id, room)
                        .is_some_and(|p| p.has(Perms::VIEW_CHANNEL | Perms::CONNECT))
                })
            })
            .map(|(conn, _)| *conn)
            .collect();
        for conn in unwelcome {
            if let Some(c) = self.voice.get(&conn) {
                let e = ApiError::forbidden("you may no longer be in this voice channel");
                let _ = c.outbox.push(frame::json(&ServerEvent::error(&e, None)));
                c.outbox.close(frame::code::NORMAL, "forbidden");
            }
            self.voice_leave(conn);
        }
        for ev in u.events {
            self.publish(ev, None);
        }
    }

    fn typing(&mut self, conn: u64, channel: String) {
        let Some(c) = self.text.get(&conn) else {
            return;
        };
        if !self
            .channels
            .iter()
            .any(|ch| ch.name == channel && ch.kind.has_messages())
        {
            return;
        }
        // Only someone who may write there is typing there.
        let may = self
            .visibility
            .snapshot()
            .in_channel(c.user.id, &channel)
            .is_some_and(|p| p.has(Perms::VIEW_CHANNEL | Perms::SEND_MESSAGES));
        if !may {
            return;
        }
        let (uid, name) = (c.user.id, c.user.username.clone());
        if !self.typing.announce(&name, &channel, Instant::now()) {
            return;
        }
        self.to_viewers_except(
            &ServerEvent::Typing {
                channel,
                user: name,
            },
            Some(uid),
            None,
        );
    }

    fn voice_join(
        &mut self,
        conn: u64,
        user: User,
        session: SessionRef,
        room: String,
        outbox: Arc<Outbox>,
    ) -> ApiResult<Joined> {
        // The handshake checked that `room` is a voice channel (`ws::voice_channel`); it may
        // have been deleted since, and then there is no room to join.
        let Some(mode) = self
            .channels
            .iter()
            .find(|c| c.name == room && c.kind == ChannelKind::Voice)
            .and_then(|c| self.mode_of(c))
        else {
            return Err(ApiError::not_found("no such voice channel"));
        };
        let sfu = mode == VoiceMode::Sfu;
        let peer = VoicePeer {
            id: conn.to_string(),
            conn,
            user_id: user.id,
            user: user.username.clone(),
            muted: false,
            deafened: false,
            video: false,
            screen: false,
        };
        let displaced = self
            .rooms
            .join(&room, peer.clone(), self.limits.max_peers(mode))?;
        for (old_room, old) in displaced {
            self.to_room(
                &old_room,
                None,
                &frame::json(&ServerEvent::PeerLeft { id: old.id.clone() }),
            );
            if let Some(c) = self.take_voice(old.conn) {
                let e = ApiError::conflict("you joined voice somewhere else");
                let _ = c.outbox.push(frame::json(&ServerEvent::error(&e, None)));
                c.outbox.close(frame::code::NORMAL, "joined elsewhere");
            }
        }
        let peers = self
            .rooms
            .peers(&room)
            .iter()
            .filter(|p| p.conn != conn)
            .map(VoicePeer::wire)
            .collect();
        if sfu {
            let join = MediaCmd::Join {
                peer: conn,
                room: room.clone(),
                flags: media_flags(peer.flags()),
            };
            if !self.media.as_ref().is_some_and(|m| m.send(join)) {
                self.rooms.leave(conn);
                self.voice_changed(user.id);
                return Err(ApiError::new(
                    Code::Unavailable,
                    "the media server is busy; try again",
                ));
            }
        }
        let _ = outbox.push(frame::json(&ServerEvent::Welcome {
            id: peer.id.clone(),
            peers,
            voice_mode: mode,
        }));
        self.voice.insert(
            conn,
            VoiceConn {
                user_id: user.id,
                session,
                outbox,
                room_told: peer.flags(),
                sfu,
            },
        );
        self.to_room(
            &room,
            Some(conn),
            &frame::json(&ServerEvent::PeerJoined { peer: peer.wire() }),
        );
        // One fold for leaving the old room and joining this one.
        self.voice_changed(user.id);
        Ok(Joined { id: peer.id, sfu })
    }

    /// Takes a voice connection out of `voice`, telling the media thread if it was there.
    fn take_voice(&mut self, conn: u64) -> Option<VoiceConn> {
        let c = self.voice.remove(&conn)?;
        if c.sfu {
            self.to_media(MediaCmd::Leave { peer: conn });
        }
        Some(c)
    }

    fn to_media(&self, cmd: MediaCmd) {
        if let Some(m) = &self.media {
            m.send(cmd);
        }
    }

    /// What the media thread reports.
    fn media_event(&mut self, ev: MediaEvent) {
        match ev {
            MediaEvent::Signal { peer, text } => {
                if let Some(c) = self.voice.get(&peer) {
                    let _ = c.outbox.push(frame::text(&text));
                }
            }
            MediaEvent::Speaking { peer, speaking } => {
                if let Some((room, p)) = self.rooms.find(peer) {
                    let (room, id) = (room.to_string(), p.id.clone());
                    self.to_room(
                        &room,
                        Some(peer),
                        &frame::json(&ServerEvent::Speaking { id, speaking }),
                    );
                }
            }
            MediaEvent::Gone { peer, why } => {
                if let Some(c) = self.voice.get(&peer) {
                    let e = ApiError::new(Code::Unavailable, why);
                    let _ = c.outbox.push(frame::json(&ServerEvent::error(&e, None)));
                    c.outbox.close(frame::code::GOING_AWAY, "media timeout");
                }
                self.voice_leave(peer);
            }
        }
    }

    /// A signaling frame of a peer in an `sfu` room: answers and candidates go to the media
    /// thread (`to` must be `"sfu"`), `watch` names a peer of the room; browsers do not offer.
    fn sfu_signal(&mut self, conn: u64, to: String, frame: Map<String, Value>) {
        let kind = frame.get("type").and_then(Value::as_str).unwrap_or("");
        let cmd = match kind {
            "watch" => {
                let source = self
                    .rooms
                    .find(conn)
                    .and_then(|(room, _)| self.rooms.peer_in(room, &to))
                    .map(|p| p.conn);
                let on = frame.get("on").and_then(Value::as_bool).unwrap_or(false);
                source.map(|source| MediaCmd::Watch {
                    peer: conn,
                    source,
                    on,
                })
            }
            _ if to != SFU_PEER_ID => None,
            "answer" => frame
                .get("sdp")
                .and_then(Value::as_str)
                .map(|sdp| MediaCmd::Answer {
                    peer: conn,
                    sdp: sdp.to_string(),
                }),
            "candidate" => {
                let c = frame
                    .get("candidate")
                    .and_then(|c| c.get("candidate"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                Some(MediaCmd::Candidate {
                    peer: conn,
                    candidate: c.to_string(),
                })
            }
            _ => Some(MediaCmd::Offer { peer: conn }),
        };
        match cmd {
            Some(cmd) => self.to_media(cmd),
            None => {
                if let Some(c) = self.voice.get(&conn) {
                    let e = ApiError::not_found("no such peer in this room");
                    let _ = c.outbox.push(frame::json(&ServerEvent::error(&e, None)));
                }
            }
        }
    }

    fn voice_leave(&mut self, conn: u64) {
        self.take_voice(conn);
        if let Some((room, p)) = self.rooms.leave(conn) {
            self.to_room(
                &room,
                None,
                &frame::json(&ServerEvent::PeerLeft { id: p.id.clone() }),
            );
            self.voice_changed(p.user_id);
        }
    }

    fn voice_signal(&mut self, conn: u64, to: String, mut frame: Map<String, Value>) {
        let Some(sender) = self.voice.get(&conn) else {
            return;
        };
        if sender.sfu {
            return self.sfu_signal(conn, to, frame);
        }
        let sender_ob = &sender.outbox;
        let Some((room, me)) = self.rooms.find(conn) else {
            return;
        };
        let target = self
            .rooms
            .peer_in(room, &to)
            .filter(|p| p.conn != conn)
            .and_then(|p| self.voice.get(&p.conn));
        match target.map(|c| &c.outbox) {
            Some(ob) => {
                frame.insert("from".into(), Value::String(me.id.clone()));
                let _ = ob.push(frame::text(&Value::Object(frame).to_string()));
            }
            None => {
                let e = ApiError::not_found("no such peer in this room");
                let _ = sender_ob.push(frame::json(&ServerEvent::error(&e, None)));
            }
        }
    }
}

/// The flags the media thread acts on, from a peer's (muted, deafened, video, screen).
fn media_flags((muted, deafened, video, screen): Flags) -> MediaFlags {
    MediaFlags {
        muted: muted || deafened,
        video,
        screen,
    }
}
