//! Profiles, status, read state and notification levels ("Direct messages, profiles and
//! notifications", issue 14): the rules as plain code, no I/O. `routes.rs` holds the HTTP
//! endpoints (`PATCH /api/me`, `/api/me/notify`, `/api/push/*`), `ops.rs` the `/ws` ops
//! (`read`, `status`) and `mentions.rs` what counts as a mention. The rows are
//! `store/social.rs`'s; presence itself is the router's (`realtime/presence.rs`); sending
//! pushes is `push/`'s.

/// Direct messages' endpoints (docs/DMS.md).
pub mod dms;
pub mod mentions;
pub mod ops;
pub mod routes;

use serde::Serialize;

use crate::error::{ApiError, ApiResult};
use crate::validate;

/// The status a user chooses (API.md: `{"type":"status","status":…}`). Others see
/// `Invisible` as `offline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Online,
    Idle,
    Dnd,
    Invisible,
}

impl Status {
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "online" => Some(Status::Online),
            "idle" => Some(Status::Idle),
            "dnd" => Some(Status::Dnd),
            "invisible" => Some(Status::Invisible),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Online => "online",
            Status::Idle => "idle",
            Status::Dnd => "dnd",
            Status::Invisible => "invisible",
        }
    }

    /// What others are told in `presence` while the user has a socket open.
    pub fn shown(self) -> &'static str {
        match self {
            Status::Invisible => "offline",
            s => s.as_str(),
        }
    }

    /// The status a new connection starts with. Idle is the client's guess that nobody is at
    /// the keyboard; a user who just connected is there, so it does not outlive its socket.
    pub fn on_connect(self) -> Status {
        match self {
            Status::Idle => Status::Online,
            s => s,
        }
    }
}

/// Which messages of a channel notify a user (Discord's "all messages / only mentions /
/// nothing").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyLevel {
    All,
    Mentions,
    Nothing,
}

impl NotifyLevel {
    /// A user who never chose: only mentions notify, as on a Discord server of any size.
    pub const DEFAULT: NotifyLevel = NotifyLevel::Mentions;

    pub fn parse(s: &str) -> Option<NotifyLevel> {
        match s {
            "all" => Some(NotifyLevel::All),
            "mentions" => Some(NotifyLevel::Mentions),
            "nothing" => Some(NotifyLevel::Nothing),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NotifyLevel::All => "all",
            NotifyLevel::Mentions => "mentions",
            NotifyLevel::Nothing => "nothing",
        }
    }

    /// Whether a message notifies at this level.
    pub fn notifies(self, mentioned: bool) -> bool {
        match self {
            NotifyLevel::All => true,
            NotifyLevel::Mentions => mentioned,
            NotifyLevel::Nothing => false,
        }
    }
}

/// A display name is shown instead of the username in every list, so it is short like one:
/// Discord's limit is 32 as well.
pub const MAX_DISPLAY_NAME_CHARS: usize = 32;
/// A custom status is one line under a name; Discord allows 128.
pub const MAX_STATUS_TEXT_CHARS: usize = 128;

/// Trims a profile field; empty means "clear it" (`None`). Over `max` characters, or with
/// control characters, it is refused, never cut.
pub fn profile_text(raw: &str, what: &str, max: usize) -> ApiResult<Option<String>> {
    let t = raw.trim();
    if t.is_empty() {
        return Ok(None);
    }
    if t.chars().count() > max {
        return Err(ApiError::bad_request(format!(
            "{what} is over {max} characters"
        )));
    }
    validate::no_controls(t, what, false)?;
    Ok(Some(t.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_is_shown_as_offline_and_idle_ends_with_its_socket() {
        assert_eq!(Status::Invisible.shown(), "offline");
        assert_eq!(Status::Dnd.shown(), "dnd");
        assert_eq!(Status::Idle.on_connect(), Status::Online);
        assert_eq!(Status::Invisible.on_connect(), Status::Invisible);
        for s in ["online", "idle", "dnd", "invisible"] {
            assert_eq!(Status::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(Status::parse("offline"), None);
    }

    #[test]
    fn levels_and_profile_text() {
        assert!(NotifyLevel::All.notifies(false));
        assert!(!NotifyLevel::Mentions.notifies(false));
        assert!(NotifyLevel::Mentions.notifies(true));
        assert!(!NotifyLevel::Nothing.notifies(true));
        assert_eq!(
            profile_text("  Al  ", "x", 32).unwrap().as_deref(),
            Some("Al")
        );
        assert_eq!(profile_text("   ", "x", 32).unwrap(), None);
        assert!(profile_text(&"a".repeat(33), "x", 32).is_err());
        assert!(profile_text("a\u{7}b", "x", 32).is_err());
    }
}
