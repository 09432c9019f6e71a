//! The rows of profiles, status, read state, mentions, notification levels, Web Push
//! subscriptions and the server's VAPID key ("Direct messages, profiles and notifications",
//! migration 7). Runs on the store thread, inside the batch transaction. The rules (what a
//! mention is, which levels exist, who is pushed) live in `social/` and `push/`; this file
//! only reads and writes them.

use std::collections::{BTreeMap, HashSet};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::accounts::{user_row, USER_COLUMNS};
use super::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::model::{Message, User};
use crate::social::{mentions, NotifyLevel, Status};

/// A user by id, with the columns every user object carries.
pub fn user_by_id(conn: &Connection, id: i64) -> ApiResult<User> {
    conn.prepare_cached(&format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?1"
    ))?
    .query_row(params![id], user_row)
    .optional()?
    .ok_or_else(|| ApiError::not_found("no such user"))
}

/// `PATCH /api/me`: each `Some` field is set (`Some(None)` clears it); answers the new user.
pub fn set_profile(
    conn: &Connection,
    user_id: i64,
    display_name: Option<Option<String>>,
    status_text: Option<Option<String>>,
) -> ApiResult<User> {
    if let Some(v) = display_name {
        conn.prepare_cached("UPDATE users SET display_name = ?1 WHERE id = ?2")?
            .execute(params![v, user_id])?;
    }
    if let Some(v) = status_text {
        conn.prepare_cached("UPDATE users SET status_text = ?1 WHERE id = ?2")?
            .execute(params![v, user_id])?;
    }
    user_by_id(conn, user_id)
}

/// The status a user last chose (it outlives their sockets: `dnd` silences pushes too).
pub fn chosen_status(conn: &Connection, user_id: i64) -> ApiResult<Status> {
    let s: Option<String> = conn
        .prepare_cached("SELECT status FROM users WHERE id = ?1")?
        .query_row(params![user_id], |r| r.get(0))
        .optional()?;
    Ok(s.as_deref()
        .and_then(Status::parse)
        .unwrap_or(Status::Online))
}

pub fn set_status(conn: &Connection, user_id: i64, status: Status) -> ApiResult<()> {
    conn.prepare_cached("UPDATE users SET status = ?1 WHERE id = ?2")?
        .execute(params![status.as_str(), user_id])?;
    Ok(())
}

/// Writes one row per user that `content` mentions (never the author) for a new message,
/// called by `messages.rs` inside the message's job, so a message and its mentions commit
/// together. Sending also marks the channel read for the author up to their own message,
/// as Discord does.
pub fn record_mentions(
    conn: &Connection,
    author_id: i64,
    channel_id: i64,
    message_id: i64,
    content: &str,
) -> ApiResult<()> {
    write_mentions(conn, author_id, channel_id, message_id, content)?;
    upsert_read(conn, author_id, channel_id, message_id)
}

/// The same for an edited message (its old rows go first); channel and author from its row.
pub fn rerecord_mentions(conn: &Connection, message_id: i64, content: &str) -> ApiResult<()> {
    let (author, channel): (i64, i64) = conn
        .prepare_cached("SELECT author_id, channel_id FROM messages WHERE id = ?1")?
        .query_row(params![message_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    conn.prepare_cached("DELETE FROM mentions WHERE message_id = ?1")?
        .execute(params![message_id])?;
    write_mentions(conn, author, channel, message_id, content)
}

/// The mention rows of a message that has none yet: a new one, or an edited one whose old
/// rows `rerecord_mentions` has just deleted.
fn write_mentions(
    conn: &Connection,
    author_id: i64,
    channel_id: i64,
    message_id: i64,
    content: &str,
) -> ApiResult<()> {
    let mut find = conn.prepare_cached("SELECT id FROM users WHERE username_lc = ?1")?;
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO mentions (user_id, channel_id, message_id) VALUES (?1, ?2, ?3)",
    )?;
    for name in mentions::usernames(content) {
        // Who may see the channel is the permission snapshot's to say, which the store does
        // not hold: `community/chat.rs` `settle_mentions` drops the rows of those who cannot,
        // in the same job.
        let id: Option<i64> = find.query_row(params![name], |r| r.get(0)).optional()?;
        if let Some(id) = id.filter(|id| *id != author_id) {
            insert.execute(params![id, channel_id, message_id])?;
        }
    }
    // A DM message counts as a mention of every other member (docs/DMS.md: DMs notify).
    super::dms::mention_members(conn, author_id, channel_id, message_id)?;
    // `@everyone` / `@here` / `@role` rows come after these, from `community/chat.rs`
    // `settle_mentions`, in the same job (it needs the permission snapshot).
    Ok(())
}

/// Moves a read marker forward (never back).
fn upsert_read(conn: &Connection, user_id: i64, channel_id: i64, id: i64) -> ApiResult<()> {
    conn.prepare_cached(
        "INSERT INTO read_state (user_id, channel_id, last_read_id) VALUES (?1, ?2, ?3)
         ON CONFLICT (user_id, channel_id) DO UPDATE SET last_read_id = MAX(last_read_id, excluded.last_read_id)",
    )?
    .execute(params![user_id, channel_id, id])?;
    Ok(())
}

/// One channel's read state, as `ready.unread` and the `read` event carry it.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Unread {
    pub last_read_id: i64,
    /// Messages after `last_read_id` that mention this user, counted by the server.
    pub mentions: i64,
}

/// `{"type":"read","channel","id"}`: marks `channel` read up to `id` (never past its newest
/// message, never back) and answers the marker and the mentions still unread after it.
pub fn mark_read(conn: &Connection, user_id: i64, channel: &str, id: i64) -> ApiResult<Unread> {
    let channel_id = super::text_channel_id(conn, channel)?;
    let newest: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM messages WHERE channel_id = ?1")?
        .query_row(params![channel_id], |r| r.get(0))?;
    upsert_read(conn, user_id, channel_id, id.clamp(0, newest))?;
    let last_read_id: i64 = conn
        .prepare_cached(
            "SELECT last_read_id FROM read_state WHERE user_id = ?1 AND channel_id = ?2",
        )?
        .query_row(params![user_id, channel_id], |r| r.get(0))?;
    Ok(Unread {
        last_read_id,
        mentions: mentions_after(conn, user_id, channel_id, last_read_id)?,
    })
}

fn mentions_after(conn: &Connection, user_id: i64, channel_id: i64, after: i64) -> ApiResult<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT COUNT(*) FROM mentions WHERE user_id = ?1 AND channel_id = ?2 AND message_id > ?3",
        )?
        .query_row(params![user_id, channel_id, after], |r| r.get(0))?)
}

/// `ready.unread`: every text channel's read marker (0 when never read) and unread mentions.
pub fn unread(conn: &Connection, user_id: i64) -> ApiResult<BTreeMap<String, Unread>> {
    let mut st = conn.prepare_cached(
        "SELECT c.name, COALESCE(r.last_read_id, 0),
                (SELECT COUNT(*) FROM mentions m WHERE m.user_id = ?1 AND m.channel_id = c.id
                   AND m.message_id > COALESCE(r.last_read_id, 0))
         FROM channels c LEFT JOIN read_state r ON r.channel_id = c.id AND r.user_id = ?1
         WHERE c.kind IN ('text', 'dm')",
    )?;
    let rows = st
        .query_map(params![user_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Unread {
                    last_read_id: r.get(1)?,
                    mentions: r.get(2)?,
                },
            ))
        })?
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    Ok(rows)
}

/// A user's notification levels: the server-wide default and the per-channel choices.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NotifySettings {
    pub default: NotifyLevel,
    pub channels: BTreeMap<String, NotifyLevel>,
}

pub fn notify_settings(conn: &Connection, user_id: i64) -> ApiResult<NotifySettings> {
    let default: Option<String> = conn
        .prepare_cached("SELECT level FROM notify_levels WHERE user_id = ?1 AND channel_id = 0")?
        .query_row(params![user_id], |r| r.get(0))
        .optional()?;
    let mut st = conn.prepare_cached(
        "SELECT c.name, n.level FROM notify_levels n JOIN channels c ON c.id = n.channel_id
         WHERE n.user_id = ?1",
    )?;
    let channels = st
        .query_map(params![user_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?
        .filter_map(|r| match r {
            Ok((name, level)) => NotifyLevel::parse(&level).map(|l| Ok((name, l))),
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    Ok(NotifySettings {
        default: default
            .as_deref()
            .and_then(NotifyLevel::parse)
            .unwrap_or(NotifyLevel::DEFAULT),
        channels,
    })
}

/// Sets the level of one channel, or (`channel` None) the server-wide default. `level` None
/// removes a channel's own choice, so it follows the default again.
pub fn set_notify(
    conn: &Connection,
    user_id: i64,
    channel: Option<&str>,
    level: Option<NotifyLevel>,
) -> ApiResult<NotifySettings> {
    let channel_id = match channel {
        Some(name) => super::text_channel_id(conn, name)?,
        None => 0,
    };
    match level {
        Some(l) => conn
            .prepare_cached(
                "INSERT INTO notify_levels (user_id, channel_id, level) VALUES (?1, ?2, ?3)
                 ON CONFLICT (user_id, channel_id) DO UPDATE SET level = excluded.level",
            )?
            .execute(params![user_id, channel_id, l.as_str()])?,
        None => conn
            .prepare_cached("DELETE FROM notify_levels WHERE user_id = ?1 AND channel_id = ?2")?
            .execute(params![user_id, channel_id])?,
    };
    notify_settings(conn, user_id)
}

/// One Web Push subscription (the browser's `PushSubscription`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: i64,
    pub user_id: i64,
    pub endpoint: String,
    /// The browser's P-256 public key, uncompressed (65 bytes).
    pub p256dh: Vec<u8>,
    /// The browser's 16-byte auth secret.
    pub auth: Vec<u8>,
}

/// A user may keep at most this many push subscriptions (one per browser or device): enough
/// for anyone's phones and computers, few enough that one message costs a bounded number of
/// sends. The oldest goes when a new one comes past it.
pub const MAX_SUBSCRIPTIONS_PER_USER: i64 = 10;

/// Adds (or, for an endpoint already known, replaces) a subscription of `user_id`.
pub fn add_subscription(
    conn: &Connection,
    user_id: i64,
    endpoint: &str,
    p256dh: &[u8],
    auth: &[u8],
) -> ApiResult<()> {
    conn.prepare_cached("DELETE FROM push_subscriptions WHERE endpoint = ?1")?
        .execute(params![endpoint])?;
    conn.prepare_cached(
        "INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth, created_ts) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![user_id, endpoint, p256dh, auth, now_ms()])?;
    conn.prepare_cached(
        "DELETE FROM push_subscriptions WHERE user_id = ?1 AND id NOT IN (
           SELECT id FROM push_subscriptions WHERE user_id = ?1 ORDER BY id DESC LIMIT ?2)",
    )?
    .execute(params![user_id, MAX_SUBSCRIPTIONS_PER_USER])?;
    Ok(())
}

/// `DELETE /api/push/subscriptions`: `false` when the user had no such endpoint.
pub fn remove_subscription(conn: &Connection, user_id: i64, endpoint: &str) -> ApiResult<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM push_subscriptions WHERE user_id = ?1 AND endpoint = ?2")?
        .execute(params![user_id, endpoint])?
        > 0)
}

/// Whether anyone has a push subscription at all (the push worker skips every message
/// while nobody does).
pub fn any_subscription(conn: &Connection) -> ApiResult<bool> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM push_subscriptions)")?
        .query_row([], |r| r.get(0))?)
}

/// A push service answered 404 or 410: the subscription is gone for good (RFC 8030 §7.3).
pub fn drop_subscription(conn: &Connection, id: i64) -> ApiResult<()> {
    conn.prepare_cached("DELETE FROM push_subscriptions WHERE id = ?1")?
        .execute(params![id])?;
    Ok(())
}

/// The endpoints of a user's subscriptions, oldest first.
pub fn subscription_endpoints(conn: &Connection, user_id: i64) -> ApiResult<Vec<String>> {
    let mut st = conn
        .prepare_cached("SELECT endpoint FROM push_subscriptions WHERE user_id = ?1 ORDER BY id")?;
    let rows = st
        .query_map(params![user_id], |r| r.get(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Whom a new message should reach by Web Push: the subscriptions of every user other than
/// the author who has no open socket (`connected`), is not in do not disturb, and whose
/// level for the channel asks for it (`all`, or `mentions` and this message mentions them).
pub fn push_targets(
    conn: &Connection,
    message: &Message,
    author_id: i64,
    connected: &HashSet<i64>,
) -> ApiResult<Vec<Subscription>> {
    let channel_id = super::text_channel_id(conn, &message.channel)?;
    let mut st = conn.prepare_cached(
        "SELECT s.id, s.user_id, s.endpoint, s.p256dh, s.auth,
                COALESCE((SELECT level FROM notify_levels WHERE user_id = s.user_id AND channel_id = ?1),
                         (SELECT level FROM notify_levels WHERE user_id = s.user_id AND channel_id = 0)),
                EXISTS (SELECT 1 FROM mentions WHERE user_id = s.user_id AND channel_id = ?1 AND message_id = ?2)
         FROM push_subscriptions s JOIN users u ON u.id = s.user_id
         WHERE s.user_id != ?3 AND u.status != 'dnd'
         ORDER BY s.id",
    )?;
    let rows = st.query_map(params![channel_id, message.id, author_id], |r| {
        Ok((
            Subscription {
                id: r.get(0)?,
                user_id: r.get(1)?,
                endpoint: r.get(2)?,
                p256dh: r.get(3)?,
                auth: r.get(4)?,
            },
            r.get::<_, Option<String>>(5)?,
            r.get::<_, bool>(6)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (sub, level, mentioned) = row?;
        if connected.contains(&sub.user_id) {
            continue;
        }
        // Issue 13 adds "who can see the channel" here, and DMs (always notify) their kind.
        let level = level
            .as_deref()
            .and_then(NotifyLevel::parse)
            .unwrap_or(NotifyLevel::DEFAULT);
        if level.notifies(mentioned) {
            out.push(sub);
        }
    }
    Ok(out)
}

/// The server's VAPID private key (a P-256 scalar, 32 bytes), made at first start by `make`
/// and kept in the database so that subscriptions stay valid across restarts.
pub fn vapid_key(conn: &Connection, make: impl FnOnce() -> Vec<u8>) -> ApiResult<Vec<u8>> {
    let found: Option<Vec<u8>> = conn
        .prepare_cached("SELECT value FROM server_keys WHERE name = 'vapid_p256'")?
        .query_row([], |r| r.get(0))
        .optional()?;
    if let Some(k) = found {
        return Ok(k);
    }
    let k = make();
    conn.prepare_cached("INSERT INTO server_keys (name, value) VALUES ('vapid_p256', ?1)")?
        .execute(params![k])?;
    Ok(k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{insert_message, insert_user};

    #[test]
    fn mentions_are_counted_after_the_read_marker_and_sending_marks_read() {
        let c = super::super::schema::test_db();
        let alice = insert_user(&c, "alice", "x", true).unwrap();
        let bob = insert_user(&c, "Bob", "x", false).unwrap();
        let (m1, _) = insert_message(&c, &alice, "general", "hi @bob", None, None, &[]).unwrap();
        insert_message(&c, &alice, "general", "@nobody @alice", None, None, &[]).unwrap();
        let (m3, _) =
            insert_message(&c, &alice, "general", "again @BOB!", None, None, &[]).unwrap();
        let u = unread(&c, bob.id).unwrap();
        assert_eq!(
            u["general"],
            Unread {
                last_read_id: 0,
                mentions: 2
            }
        );
        // The author's own message is read, and mentioning oneself counts nothing.
        assert_eq!(unread(&c, alice.id).unwrap()["general"].last_read_id, m3.id);
        assert_eq!(unread(&c, alice.id).unwrap()["general"].mentions, 0);
        let r = mark_read(&c, bob.id, "general", m1.id).unwrap();
        assert_eq!(
            r,
            Unread {
                last_read_id: m1.id,
                mentions: 1
            }
        );
        // Never back, never past the newest message.
        assert_eq!(
            mark_read(&c, bob.id, "general", 0).unwrap().last_read_id,
            m1.id
        );
        assert_eq!(
            mark_read(&c, bob.id, "general", 1 << 40)
                .unwrap()
                .last_read_id,
            m3.id
        );
    }
}
