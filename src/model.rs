//! The shared data types: what a user, a channel and a message are, as the store reads them
//! and as the wire carries them (API.md). Plain values, no I/O, owned by no thread: they are
//! cloned into events and store answers. Serde renders each exactly as the contract writes
//! it, so moving a type here never changes the JSON.

use std::collections::BTreeMap;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::Serialize;

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
        }
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
    fn channel_kind_order_matches_the_sql_string_order() {
        let mut kinds = [ChannelKind::Voice, ChannelKind::Text, ChannelKind::Dm];
        kinds.sort();
        let names: Vec<_> = kinds.iter().map(|k| k.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }
}
