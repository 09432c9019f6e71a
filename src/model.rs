//! The shared data types: what a user, a channel and a message are, as the store reads them
//! and as the wire carries them (API.md). Plain values, no I/O, owned by no thread: they are
//! cloned into events and store answers. Serde renders each exactly as the contract writes
//! it, so moving a type here never changes the JSON.

use std::collections::BTreeMap;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub admin: bool,
    /// API.md v2: the avatar's URL, null when none.
    pub avatar_url: Option<String>,
    /// API.md v2: shown instead of the username where set (`PATCH /api/me`); null when none.
    pub display_name: Option<String>,
    /// API.md v2: the custom status text (`PATCH /api/me`); null when none.
    pub status_text: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Channel {
    pub name: String,
    pub kind: ChannelKind,
    pub topic: String,
    /// API.md v2 ("Run a community"): a member without `manage_messages` sends at most
    /// once per this many seconds here (0: off).
    pub slowmode_s: u32,
    /// Order within its kind (lower first; ties by creation).
    pub position: i64,
    /// The heading it is listed under, if any.
    pub category: Option<String>,
    /// A voice channel's media mode as stored (`channels.voice_mode`); `None` is the
    /// server's default. Never on the wire as it is: channel objects carry the *effective*
    /// mode (`effective_voice_mode`, in `community::ChannelView`).
    #[serde(skip)]
    pub voice_mode: Option<VoiceMode>,
}

impl Channel {
    /// A channel with the v1 fields only (no slow mode, position 0, no category).
    pub fn new(name: String, kind: ChannelKind, topic: String) -> Channel {
        Channel {
            name,
            kind,
            topic,
            slowmode_s: 0,
            position: 0,
            category: None,
            voice_mode: None,
        }
    }

    /// The mode this channel's voice room runs in (`VoiceMode::effective`); `None` for text
    /// and DM channels, which have none. `media_port`: whether `SFU_UDP_PORT` is set.
    pub fn effective_voice_mode(&self, media_port: bool) -> Option<VoiceMode> {
        (self.kind == ChannelKind::Voice).then(|| VoiceMode::effective(self.voice_mode, media_port))
    }
}

/// How a voice channel carries media (API.md "Voice, video and screen share", issue 16):
/// `mesh`, peer to peer as in v1 (the server only relays signaling), or `sfu`, through the
/// server's own media server on `SFU_UDP_PORT`. Lowercase on the wire and in SQLite.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum VoiceMode {
    Mesh,
    Sfu,
}

impl VoiceMode {
    pub fn as_str(self) -> &'static str {
        match self {
            VoiceMode::Mesh => "mesh",
            VoiceMode::Sfu => "sfu",
        }
    }

    /// The mode named `s` exactly as the wire writes it, if there is one.
    pub fn parse(s: &str) -> Option<VoiceMode> {
        match s {
            "mesh" => Some(VoiceMode::Mesh),
            "sfu" => Some(VoiceMode::Sfu),
            _ => None,
        }
    }

    /// THE rule for the mode a voice room runs in: the stored choice, else `sfu` when the
    /// server has a media port (`SFU_UDP_PORT` set), else `mesh`. A stored `sfu` on a server
    /// whose media port was since unset runs as `mesh` (and is `sfu` again once the port is
    /// back): the choice is kept, it just cannot be honoured.
    pub fn effective(stored: Option<VoiceMode>, media_port: bool) -> VoiceMode {
        match stored {
            Some(VoiceMode::Mesh) => VoiceMode::Mesh,
            Some(VoiceMode::Sfu) | None if media_port => VoiceMode::Sfu,
            Some(VoiceMode::Sfu) | None => VoiceMode::Mesh,
        }
    }
}

impl ToSql for VoiceMode {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

/// What a channel is for. On the wire and in SQLite it is the lowercase name (`"text"`,
/// `"voice"`). The kinds coming next (direct messages `Dm`, …) are added here, and the
/// compiler then shows every `match` that must decide what they allow.
///
/// The order of the variants is the order of their names as strings: `GET /api/channels`
/// sorts by kind in SQL (`ORDER BY kind`) and the router sorts its copy with `Ord`, and the
/// two lists must agree. A new variant goes where its name sorts.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// A direct message (API.md v2, docs/DMS.md): a text channel seen only by its members.
    Dm,
    Text,
    Voice,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Dm => "dm",
            ChannelKind::Text => "text",
            ChannelKind::Voice => "voice",
        }
    }

    /// Whether it holds messages (history, search, read state, typing): text and DM.
    pub fn has_messages(self) -> bool {
        matches!(self, ChannelKind::Text | ChannelKind::Dm)
    }

    /// The kind named `s` exactly as the wire writes it, if there is one.
    pub fn parse(s: &str) -> Option<ChannelKind> {
        match s {
            "dm" => Some(ChannelKind::Dm),
            "text" => Some(ChannelKind::Text),
            "voice" => Some(ChannelKind::Voice),
            _ => None,
        }
    }
}

impl ToSql for ChannelKind {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for ChannelKind {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        // The schema's CHECK constraint allows only the names `parse` knows.
        ChannelKind::parse(value.as_str()?).ok_or(FromSqlError::InvalidType)
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Message {
    pub id: i64,
    pub channel: String,
    pub author: String,
    pub content: String,
    pub ts: i64,
    pub edited_ts: Option<i64>,
    pub reply_to: Option<i64>,
    pub reactions: BTreeMap<String, Vec<String>>,
    /// API.md v2: the message's files, `[]` when none.
    pub attachments: Vec<Attachment>,
    /// API.md v2 ("Run a community"): pinned in its channel.
    pub pinned: bool,
    /// `@everyone` / `@here` in the content, and the author was allowed to notify with it
    /// (`mention_everyone`); without the permission they stay plain text and this is false.
    pub mention_everyone: bool,
    /// The roles `@role` in the content notifies (only with `mention_everyone`).
    pub mention_roles: Vec<i64>,
}

/// The attachment object of API.md ("Files and images"). `thumb_url`, `width` and `height`
/// are null for anything that is not an image that decoded.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Attachment {
    pub id: String,
    pub filename: String,
    pub size: u64,
    pub content_type: String,
    pub url: String,
    pub thumb_url: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_kind_is_the_same_lowercase_string_on_the_wire() {
        for kind in [ChannelKind::Dm, ChannelKind::Text, ChannelKind::Voice] {
            assert_eq!(
                serde_json::to_string(&kind).unwrap(),
                format!("\"{}\"", kind.as_str())
            );
            assert_eq!(ChannelKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ChannelKind::parse("Text"), None);
    }

    #[test]
    fn effective_voice_mode() {
        use VoiceMode::{Mesh, Sfu};
        assert_eq!(VoiceMode::effective(None, false), Mesh);
        assert_eq!(VoiceMode::effective(None, true), Sfu);
        assert_eq!(VoiceMode::effective(Some(Mesh), true), Mesh);
        assert_eq!(VoiceMode::effective(Some(Sfu), true), Sfu);
        assert_eq!(
            VoiceMode::effective(Some(Sfu), false),
            Mesh,
            "no media port: mesh"
        );
        let mut c = Channel::new("lounge".into(), ChannelKind::Voice, String::new());
        assert_eq!(c.effective_voice_mode(true), Some(Sfu));
        c.voice_mode = Some(Mesh);
        assert_eq!(c.effective_voice_mode(true), Some(Mesh));
        let t = Channel::new("general".into(), ChannelKind::Text, String::new());
        assert_eq!(
            t.effective_voice_mode(true),
            None,
            "text channels have no voice mode"
        );
        for m in [Mesh, Sfu] {
            assert_eq!(
                serde_json::to_string(&m).unwrap(),
                format!("\"{}\"", m.as_str())
            );
            assert_eq!(VoiceMode::parse(m.as_str()), Some(m));
        }
        assert_eq!(VoiceMode::parse("SFU"), None);
    }

    #[test]
    fn channel_kind_order_matches_the_sql_string_order() {
        let mut kinds = [ChannelKind::Voice, ChannelKind::Text, ChannelKind::Dm];
        kinds.sort();
        let names: Vec<_> = kinds.iter().map(|k| k.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }
}
