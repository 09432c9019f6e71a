//! The WebSocket wire protocol of API.md in one place: what clients send on `/ws` and
//! `/ws/voice`, and every event the server sends. Serde types only; no I/O, no state.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{Channel, Message, User};

/// A frame a client sends on `/ws`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientText {
    Send {
        channel: String,
        content: String,
        #[serde(default)]
        nonce: Option<String>,
        #[serde(default)]
        reply_to: Option<i64>,
        /// Ids of the sender's own uploads (`POST /api/attachments`), at most 10.
        #[serde(default)]
        attachments: Vec<String>,
    },
    Edit {
        id: i64,
        content: String,
    },
    Delete {
        id: i64,
    },
    React {
        id: i64,
        emoji: String,
    },
    Typing {
        channel: String,
    },
    /// Issue 14: marks `channel` read up to `id` (`social/ops.rs`).
    Read {
        channel: String,
        id: i64,
    },
    /// Issue 14: `online`, `idle`, `dnd` or `invisible` (`social/ops.rs`).
    Status {
        status: String,
    },
    Ping,
}

/// A frame a client sends on `/ws/voice`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientVoice {
    Offer {
        to: String,
        sdp: String,
    },
    Answer {
        to: String,
        sdp: String,
    },
    Candidate {
        to: String,
        candidate: Value,
    },
    State {
        muted: bool,
        deafened: bool,
        /// Camera and screen share (API.md v2); absent in a v1 client's frame means off.
        #[serde(default)]
        video: bool,
        #[serde(default)]
        screen: bool,
    },
    Speaking {
        speaking: bool,
    },
    /// Ask peer `id` to start or stop sending its screen share to us.
    Watch {
        id: String,
        on: bool,
    },
    Ping,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Presence {
    pub user: String,
    pub status: &'static str,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VoiceMember {
    pub channel: String,
    pub user: String,
    pub muted: bool,
    pub deafened: bool,
    pub video: bool,
    pub screen: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Peer {
    pub id: String,
    pub user: String,
    pub muted: bool,
    pub deafened: bool,
    pub video: bool,
    pub screen: bool,
}

/// An event the server sends.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerEvent {
    Ready {
        user: User,
        channels: Vec<Channel>,
        presence: Vec<Presence>,
        voice: Vec<VoiceMember>,
        last_ids: std::collections::BTreeMap<String, i64>,
        /// Issue 14: per text channel, the read marker and the unread mentions.
        unread: std::collections::BTreeMap<String, crate::store::Unread>,
        /// Issue 14: the status this user chose (`online`, `idle`, `dnd`, `invisible`).
        status: &'static str,
    },
    /// Issue 14: a user's profile changed (`PATCH /api/me`, an avatar).
    UserUpdate {
        user: User,
    },
    /// Issue 14: this user read `channel` up to `id` on another connection; `mentions` is
    /// what is still unread after it.
    Read {
        channel: String,
        id: i64,
        mentions: i64,
    },
    Message {
        message: Message,
        #[serde(skip_serializing_if = "Option::is_none")]
        nonce: Option<String>,
    },
    MessageUpdate {
        message: Message,
    },
    MessageDelete {
        id: i64,
        channel: String,
    },
    Reaction {
        id: i64,
        channel: String,
        emoji: String,
        user: String,
        on: bool,
    },
    Typing {
        channel: String,
        user: String,
    },
    Presence(Presence),
    VoiceState {
        channel: String,
        user: String,
        joined: bool,
        muted: bool,
        deafened: bool,
        video: bool,
        screen: bool,
    },
    ChannelCreate {
        channel: Channel,
    },
    ChannelDelete {
        name: String,
    },
    Error {
        code: &'static str,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        nonce: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    Pong,
    // Voice signaling (`/ws/voice`).
    Welcome {
        id: String,
        peers: Vec<Peer>,
    },
    PeerJoined {
        peer: Peer,
    },
    PeerLeft {
        id: String,
    },
    PeerState {
        id: String,
        muted: bool,
        deafened: bool,
        video: bool,
        screen: bool,
    },
    Speaking {
        id: String,
        speaking: bool,
    },
}

impl ServerEvent {
    pub fn error(e: &crate::error::ApiError, nonce: Option<String>) -> ServerEvent {
        ServerEvent::Error {
            code: e.code.as_str(),
            message: e.message.clone(),
            nonce,
            retry_after_ms: e.retry_after_ms,
        }
    }
}

/// The most nesting a client frame may have. serde_json itself stops at 128 levels; we stop
/// far earlier, before parsing, so a frame of 60,000 `[` costs one linear scan and never
/// the recursion (a stack overflow aborts the whole process, not just one thread).
pub const MAX_JSON_DEPTH: usize = 16;

/// `true` when `text`'s brackets nest deeper than `MAX_JSON_DEPTH` (strings are skipped).
pub fn too_deep(text: &str) -> bool {
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    for b in text.bytes() {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_parse() {
        let f: ClientText = serde_json::from_str(
            r#"{"type":"send","channel":"general","content":"hi","nonce":"n1"}"#,
        )
        .unwrap();
        assert!(matches!(
            f,
            ClientText::Send {
                nonce: Some(_),
                reply_to: None,
                ..
            }
        ));
        assert!(serde_json::from_str::<ClientText>(r#"{"type":"nope"}"#).is_err());
        assert!(
            serde_json::from_str::<ClientText>(r#"{"type":"edit","id":"x","content":"a"}"#)
                .is_err()
        );
        let v: ClientVoice =
            serde_json::from_str(r#"{"type":"candidate","to":"3","candidate":{"candidate":"x"}}"#)
                .unwrap();
        assert!(matches!(v, ClientVoice::Candidate { .. }));
    }

    #[test]
    fn events_serialize_as_in_the_contract() {
        let e = ServerEvent::MessageDelete {
            id: 4,
            channel: "general".into(),
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"type":"message_delete","id":4,"channel":"general"}"#
        );
        let e = ServerEvent::Presence(Presence {
            user: "a".into(),
            status: "online",
        });
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"type":"presence","user":"a","status":"online"}"#
        );
        assert_eq!(
            serde_json::to_string(&ServerEvent::Pong).unwrap(),
            r#"{"type":"pong"}"#
        );
    }

    #[test]
    fn depth_guard() {
        assert!(!too_deep(r#"{"a":[1,{"b":"[[[[[[[[[[[[[[[[[[[[[[[["}]}"#));
        assert!(too_deep(&"[".repeat(100_000)));
        assert!(!too_deep(&"[".repeat(MAX_JSON_DEPTH)));
    }
}
