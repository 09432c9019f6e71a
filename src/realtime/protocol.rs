//! The WebSocket wire protocol of API.md in one place: what clients send on `/ws` and
//! `/ws/voice`, and every event the server sends. Serde types only; no I/O, no state.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::community::{ChannelView, MemberView, Perms, Role};
use crate::model::{Message, User};

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
    /// Pin or unpin a message (`manage_messages`; "Run a community").
    Pin {
        id: i64,
        on: bool,
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
    /// In an `sfu` room an answer may come in parts, each frame under the 64 KiB cap
    /// (`voice::signaling::Parts`): `part` counts from 0, and every part but the last has
    /// `more: true`. A whole answer has neither.
    Answer {
        to: String,
        sdp: String,
        #[serde(default)]
        part: Option<u32>,
        #[serde(default)]
        more: bool,
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
        /// Only the channels this user may see, each with their permissions there.
        channels: Vec<ChannelView>,
        presence: Vec<Presence>,
        voice: Vec<VoiceMember>,
        last_ids: std::collections::BTreeMap<String, i64>,
        roles: Vec<Role>,
        members: Vec<MemberView>,
        /// This user's server-wide permissions.
        permissions: Perms,
        /// Issue 14: per text channel, the read marker and the unread mentions.
        unread: std::collections::BTreeMap<String, crate::store::Unread>,
        /// Issue 14: the status this user chose (`online`, `idle`, `dnd`, `invisible`).
        status: &'static str,
        /// Issue 16: whether this server has a media server (`SFU_UDP_PORT` set), i.e.
        /// whether a voice channel may be set to `"voice_mode":"sfu"`.
        media_server: bool,
    },
    /// Issue 14: a user's profile changed (`PATCH /api/me`, an avatar).
    UserUpdate {
        user: User,
    },
    /// Issue 17: the owner merged the imported account `from` into `into`
    /// (`POST /api/admin/merge-account`, docs/DATA.md): every message, reaction and file of
    /// `from` is now `into`'s, and `from` is gone. One event for any amount of history, so
    /// an open page re-labels what it holds instead of being sent every moved message.
    UserMerge {
        from: String,
        into: User,
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
    /// Per user: a channel they may now see (new, or access granted).
    ChannelCreate {
        channel: ChannelView,
    },
    /// Per user: a channel they may no longer see, or that was deleted.
    ChannelDelete {
        name: String,
    },
    /// Per user: a channel's settings, or their permissions in it, changed.
    ChannelUpdate {
        channel: ChannelView,
        #[serde(skip_serializing_if = "Option::is_none")]
        renamed_from: Option<String>,
    },
    /// The full role list, after any role was created, changed, reordered or deleted.
    Roles {
        roles: Vec<Role>,
    },
    /// A member's roles or timeout changed.
    MemberUpdate {
        member: MemberView,
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
        /// Issue 16: the room's mode: `mesh` (offer to every peer) or `sfu` (negotiate one
        /// connection with the server).
        voice_mode: crate::model::VoiceMode,
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
    /// The channel an event belongs to, for the events only that channel's viewers may get
    /// (API.md: without `view_channel` no event of it arrives).
    pub fn channel(&self) -> Option<&str> {
        match self {
            ServerEvent::Message { message, .. } | ServerEvent::MessageUpdate { message } => {
                Some(&message.channel)
            }
            ServerEvent::MessageDelete { channel, .. }
            | ServerEvent::Reaction { channel, .. }
            | ServerEvent::Typing { channel, .. }
            | ServerEvent::Read { channel, .. }
            | ServerEvent::VoiceState { channel, .. } => Some(channel),
            _ => None,
        }
    }

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
