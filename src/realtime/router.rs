//! The router thread: the one owner of all realtime state — open `/ws` and `/ws/voice`
//! connections, presence, typing throttles, voice rooms, the channel list and the newest
//! message id of each channel — and the fan-out of every event. The rules of that state are
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

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{unbounded, Receiver, Sender};
use serde_json::{Map, Value};

use super::presence::{Online, Typing};
use crate::error::{ApiError, ApiResult};
use crate::model::{Channel, ChannelKind, User};
use crate::realtime::frame::{self, Frame};
use crate::realtime::protocol::{Presence, ServerEvent};
use crate::realtime::writer::{Outbox, Writer};
use crate::voice::{VoicePeer, VoiceRooms};

/// What the router is asked to do.
pub enum Cmd {
    /// A `/ws` connection is open: send it `ready`, then answer `done`.
    Join {
        conn: u64,
        user: User,
        outbox: Arc<Outbox>,
        done: Sender<()>,
    },
    /// A `/ws` connection closed.
    Leave {
        conn: u64,
    },
    /// A committed change for every `/ws` connection.
    Publish(ServerEvent),
    /// A user is typing in a channel.
    Typing {
        conn: u64,
        channel: String,
    },
    /// A `/ws/voice` connection wants to join `room`; `done` gets the peer id or `room_full`.
    VoiceJoin {
        conn: u64,
        user: User,
        room: String,
        outbox: Arc<Outbox>,
        done: Sender<ApiResult<String>>,
    },
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
        muted: bool,
        deafened: bool,
    },
    VoiceSpeaking {
        conn: u64,
        speaking: bool,
    },
}

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
}

struct TextConn {
    user: User,
    outbox: Arc<Outbox>,
}

pub struct Router {
    text: HashMap<u64, TextConn>,
    voice: HashMap<u64, Arc<Outbox>>,
    online: Online,
    channels: Vec<Channel>,
    last_ids: BTreeMap<String, i64>,
    rooms: VoiceRooms,
    typing: Typing,
    voice_max_peers: usize,
    writer: Writer,
}

/// Starts the router thread with the channel list and newest ids read at start.
pub fn start(
    channels: Vec<Channel>,
    last_ids: HashMap<String, i64>,
    voice_max_peers: usize,
    writer: Writer,
) -> std::io::Result<RouterHandle> {
    let (tx, rx) = unbounded();
    let router = Router {
        text: HashMap::new(),
        voice: HashMap::new(),
        online: Online::default(),
        channels,
        last_ids: last_ids.into_iter().collect(),
        rooms: VoiceRooms::default(),
        typing: Typing::default(),
        voice_max_peers,
        writer,
    };
    std::thread::Builder::new()
        .name("router".into())
        .spawn(move || router.run(rx))?;
    Ok(RouterHandle { tx })
}

impl Router {
    fn run(mut self, rx: Receiver<Cmd>) {
        while let Ok(cmd) = rx.recv() {
            self.handle(cmd);
        }
    }

    fn handle(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Join {
                conn,
                user,
                outbox,
                done,
            } => self.join(conn, user, outbox, done),
            Cmd::Leave { conn } => self.leave(conn),
            Cmd::Publish(event) => self.publish(event),
            Cmd::Typing { conn, channel } => self.typing(conn, channel),
            Cmd::VoiceJoin {
                conn,
                user,
                room,
                outbox,
                done,
            } => {
                let _ = done.send(self.voice_join(conn, user, room, outbox));
            }
            Cmd::VoiceLeave { conn } => self.voice_leave(conn),
            Cmd::VoiceSignal { conn, to, frame } => self.voice_signal(conn, to, frame),
            Cmd::VoiceState {
                conn,
                muted,
                deafened,
            } => {
                if let Some((room, peer)) = self.rooms.set_state(conn, muted, deafened) {
                    let ev = ServerEvent::PeerState {
                        id: peer.id.clone(),
                        muted,
                        deafened,
                    };
                    self.to_room(&room, Some(conn), &frame::json(&ev));
                    self.broadcast(&ServerEvent::VoiceState {
                        channel: room,
                        user: peer.user,
                        joined: true,
                        muted,
                        deafened,
                    });
                }
            }
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
        }
    }

    /// Queues `f` to every `/ws` connection for which `keep` holds, then wakes the writer
    /// once for all of them.
    fn fan_out(&self, f: &Frame, keep: impl Fn(&TextConn) -> bool) {
        let mut wake = Vec::new();
        for c in self.text.values().filter(|c| keep(c)) {
            // A full outbox closes that connection (4008); its reader then sends `Leave`.
            let _ = c.outbox.push_deferred(f.clone(), &mut wake);
        }
        if !wake.is_empty() {
            self.writer.wake_all(wake);
        }
    }

    fn broadcast(&self, ev: &ServerEvent) {
        self.fan_out(&frame::json(ev), |_| true);
    }

    fn to_room(&self, room: &str, except_conn: Option<u64>, f: &Frame) {
        for p in self.rooms.peers(room) {
            if Some(p.conn) != except_conn {
                if let Some(ob) = self.voice.get(&p.conn) {
                    let _ = ob.push(f.clone());
                }
            }
        }
    }

    fn join(&mut self, conn: u64, user: User, outbox: Arc<Outbox>, done: Sender<()>) {
        let first = self.online.connect(user.id, &user.username);
        let presence = self.online.snapshot();
        let ready = ServerEvent::Ready {
            user: user.clone(),
            channels: self.channels.clone(),
            presence,
            voice: self.rooms.members(),
            last_ids: self.last_ids.clone(),
        };
        let _ = outbox.push(frame::json(&ready));
        if first {
            let f = frame::json(&ServerEvent::Presence(Presence {
                user: user.username.clone(),
                status: "online",
            }));
            self.fan_out(&f, |_| true);
        }
        self.text.insert(conn, TextConn { user, outbox });
        let _ = done.send(());
    }

    fn leave(&mut self, conn: u64) {
        let Some(c) = self.text.remove(&conn) else {
            return;
        };
        if self.online.disconnect(c.user.id) {
            self.typing.forget(&c.user.username);
            self.broadcast(&ServerEvent::Presence(Presence {
                user: c.user.username,
                status: "offline",
            }));
        }
    }

    fn publish(&mut self, ev: ServerEvent) {
        match &ev {
            ServerEvent::Message { message, .. } => {
                let id = self.last_ids.entry(message.channel.clone()).or_insert(0);
                *id = (*id).max(message.id);
                self.typing.message_sent(&message.author, &message.channel);
            }
            ServerEvent::ChannelCreate { channel } => {
                self.channels.push(channel.clone());
                self.channels.sort_by_key(|c| c.kind);
            }
            ServerEvent::ChannelDelete { name } => {
                self.channels.retain(|c| &c.name != name);
                self.last_ids.remove(name);
                for p in self.rooms.close_room(name) {
                    if let Some(ob) = self.voice.remove(&p.conn) {
                        let e = ApiError::not_found("this voice channel was deleted");
                        let _ = ob.push(frame::json(&ServerEvent::error(&e, None)));
                        ob.close(frame::code::NORMAL, "channel deleted");
                    }
                    self.broadcast(&ServerEvent::VoiceState {
                        channel: name.clone(),
                        user: p.user,
                        joined: false,
                        muted: p.muted,
                        deafened: p.deafened,
                    });
                }
            }
            _ => {}
        }
        self.broadcast(&ev);
    }

    fn typing(&mut self, conn: u64, channel: String) {
        let Some(c) = self.text.get(&conn) else {
            return;
        };
        if !self
            .channels
            .iter()
            .any(|ch| ch.name == channel && ch.kind == ChannelKind::Text)
        {
            return;
        }
        let (uid, name) = (c.user.id, c.user.username.clone());
        if !self.typing.announce(&name, &channel, Instant::now()) {
            return;
        }
        let f = frame::json(&ServerEvent::Typing {
            channel,
            user: name,
        });
        self.fan_out(&f, |c| c.user.id != uid);
    }

    fn voice_join(
        &mut self,
        conn: u64,
        user: User,
        room: String,
        outbox: Arc<Outbox>,
    ) -> ApiResult<String> {
        // The handshake checked that `room` is a voice channel (`ws::voice_channel`); it may
        // have been deleted since, and then there is no room to join.
        if !self.channels.iter().any(|c| c.name == room) {
            return Err(ApiError::not_found("no such voice channel"));
        }
        let peer = VoicePeer {
            id: conn.to_string(),
            conn,
            user_id: user.id,
            user: user.username.clone(),
            muted: false,
            deafened: false,
        };
        let displaced = self.rooms.join(&room, peer.clone(), self.voice_max_peers)?;
        for (old_room, old) in displaced {
            self.to_room(
                &old_room,
                None,
                &frame::json(&ServerEvent::PeerLeft { id: old.id.clone() }),
            );
            if let Some(ob) = self.voice.remove(&old.conn) {
                let e = ApiError::conflict("you joined voice somewhere else");
                let _ = ob.push(frame::json(&ServerEvent::error(&e, None)));
                ob.close(frame::code::NORMAL, "joined elsewhere");
            }
            self.broadcast(&ServerEvent::VoiceState {
                channel: old_room,
                user: old.user,
                joined: false,
                muted: old.muted,
                deafened: old.deafened,
            });
        }
        let peers = self
            .rooms
            .peers(&room)
            .iter()
            .filter(|p| p.conn != conn)
            .map(VoicePeer::wire)
            .collect();
        let _ = outbox.push(frame::json(&ServerEvent::Welcome {
            id: peer.id.clone(),
            peers,
        }));
        self.voice.insert(conn, outbox);
        self.to_room(
            &room,
            Some(conn),
            &frame::json(&ServerEvent::PeerJoined { peer: peer.wire() }),
        );
        self.broadcast(&ServerEvent::VoiceState {
            channel: room,
            user: user.username,
            joined: true,
            muted: false,
            deafened: false,
        });
        Ok(peer.id)
    }

    fn voice_leave(&mut self, conn: u64) {
        self.voice.remove(&conn);
        if let Some((room, p)) = self.rooms.leave(conn) {
            self.to_room(
                &room,
                None,
                &frame::json(&ServerEvent::PeerLeft { id: p.id.clone() }),
            );
            self.broadcast(&ServerEvent::VoiceState {
                channel: room,
                user: p.user,
                joined: false,
                muted: p.muted,
                deafened: p.deafened,
            });
        }
    }

    fn voice_signal(&mut self, conn: u64, to: String, mut frame: Map<String, Value>) {
        let Some(sender_ob) = self.voice.get(&conn) else {
            return;
        };
        let Some((room, me)) = self.rooms.find(conn) else {
            return;
        };
        let target = self
            .rooms
            .peer_in(room, &to)
            .filter(|p| p.conn != conn)
            .and_then(|p| self.voice.get(&p.conn));
        match target {
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
