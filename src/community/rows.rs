//! The SQL of the community tables (migration 5): roles, member roles, channel overwrites,
//! bans, timeouts, the audit log, pins, and the channel settings of `PATCH
//! /api/channels/{name}`. Runs on the store thread inside the batch transaction; the
//! permission checks happen before, in `routes.rs` / `chat.rs`, against a snapshot loaded in
//! the same job.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::perms::Perms;
use super::snapshot::{Role, EVERYONE};
use crate::error::{ApiError, ApiResult};
use crate::model::{Channel, User};
use crate::store::{self, now_ms};

/// One audit-log entry as `GET /api/audit-log` shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub ts: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub reason: String,
}

/// A ban as `GET /api/bans` shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Ban {
    pub user: User,
    pub reason: String,
    pub ts: i64,
}

pub fn audit(
    conn: &Connection,
    actor: i64,
    action: &str,
    target: &str,
    reason: &str,
) -> ApiResult<()> {
    conn.prepare_cached(
        "INSERT INTO audit_log (ts, actor_id, action, target, reason) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![now_ms(), actor, action, target, reason])?;
    Ok(())
}

pub fn audit_page(
    conn: &Connection,
    limit: u32,
    before: Option<i64>,
) -> ApiResult<Vec<AuditEntry>> {
    let mut st = conn.prepare_cached(
        "SELECT a.id, a.ts, u.username, a.action, a.target, a.reason FROM audit_log a
         JOIN users u ON u.id = a.actor_id WHERE (?1 IS NULL OR a.id < ?1) ORDER BY a.id DESC LIMIT ?2",
    )?;
    let rows = st.query_map(params![before, limit], |r| {
        Ok(AuditEntry {
            id: r.get(0)?,
            ts: r.get(1)?,
            actor: r.get(2)?,
            action: r.get(3)?,
            target: r.get(4)?,
            reason: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn user_by_name(conn: &Connection, name: &str) -> ApiResult<User> {
    store::list_users(conn)?
        .into_iter()
        .find(|u| u.username.eq_ignore_ascii_case(name))
        .ok_or_else(|| ApiError::not_found(format!("no member named {name:?}")))
}

/// Renumbers the roles other than `everyone` 1..n in `order` (lowest first).
fn renumber(conn: &Connection, order: &[i64]) -> ApiResult<()> {
    let mut st = conn.prepare_cached("UPDATE roles SET position = ?1 WHERE id = ?2")?;
    for (i, id) in order.iter().enumerate() {
        st.execute(params![i as i64 + 1, id])?;
    }
    Ok(())
}

/// The ids of the roles other than `everyone`, lowest first.
fn role_order(conn: &Connection) -> ApiResult<Vec<i64>> {
    let mut st =
        conn.prepare_cached("SELECT id FROM roles WHERE id != ?1 ORDER BY position, id")?;
    let ids = st
        .query_map(params![EVERYONE], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}

/// A new role, placed just above `everyone` (as Discord does): below everybody's roles, so
/// whoever made it can manage it.
pub fn insert_role(
    conn: &Connection,
    name: &str,
    color: Option<&str>,
    hoist: bool,
    permissions: Perms,
) -> ApiResult<i64> {
    conn.prepare_cached(
        "INSERT INTO roles (name, color, position, hoist, permissions, created_ts) VALUES (?1, ?2, 0, ?3, ?4, ?5)",
    )?
    .execute(params![name, color, hoist, permissions.bits(), now_ms()])?;
    let id = conn.last_insert_rowid();
    let mut order = role_order(conn)?;
    order.retain(|&r| r != id);
    order.insert(0, id);
    renumber(conn, &order)?;
    Ok(id)
}

/// What `PATCH /api/roles/{id}` may change.
#[derive(Debug, Default, Clone)]
pub struct RolePatch {
    pub name: Option<String>,
    pub color: Option<Option<String>>,
    pub hoist: Option<bool>,
    pub permissions: Option<Perms>,
    pub position: Option<i64>,
}

pub fn update_role(conn: &Connection, id: i64, p: &RolePatch) -> ApiResult<()> {
    if let Some(name) = &p.name {
        conn.prepare_cached("UPDATE roles SET name = ?1 WHERE id = ?2")?
            .execute(params![name, id])?;
    }
    if let Some(color) = &p.color {
        conn.prepare_cached("UPDATE roles SET color = ?1 WHERE id = ?2")?
            .execute(params![color, id])?;
    }
    if let Some(hoist) = p.hoist {
        conn.prepare_cached("UPDATE roles SET hoist = ?1 WHERE id = ?2")?
            .execute(params![hoist, id])?;
    }
    if let Some(perms) = p.permissions {
        conn.prepare_cached("UPDATE roles SET permissions = ?1 WHERE id = ?2")?
            .execute(params![perms.bits(), id])?;
    }
    if let Some(pos) = p.position {
        let mut order = role_order(conn)?;
        order.retain(|&r| r != id);
        let at = (pos.max(1) as usize - 1).min(order.len());
        order.insert(at, id);
        renumber(conn, &order)?;
    }
    Ok(())
}

pub fn delete_role(conn: &Connection, id: i64) -> ApiResult<()> {
    conn.prepare_cached("DELETE FROM roles WHERE id = ?1")?
        .execute(params![id])?;
    renumber(conn, &role_order(conn)?)
}

pub fn set_member_role(conn: &Connection, user_id: i64, role: &Role, on: bool) -> ApiResult<()> {
    let sql = if on {
        "INSERT OR IGNORE INTO member_roles (user_id, role_id) VALUES (?1, ?2)"
    } else {
        "DELETE FROM member_roles WHERE user_id = ?1 AND role_id = ?2"
    };
    conn.prepare_cached(sql)?
        .execute(params![user_id, role.id])?;
    Ok(())
}

pub fn set_overwrite(
    conn: &Connection,
    channel_id: i64,
    role_id: i64,
    allow: Perms,
    deny: Perms,
) -> ApiResult<()> {
    conn.prepare_cached(
        "INSERT INTO overwrites (channel_id, role_id, allow, deny) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (channel_id, role_id) DO UPDATE SET allow = excluded.allow, deny = excluded.deny",
    )?
    .execute(params![channel_id, role_id, allow.bits(), deny.bits()])?;
    Ok(())
}

pub fn delete_overwrite(conn: &Connection, channel_id: i64, role_id: i64) -> ApiResult<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM overwrites WHERE channel_id = ?1 AND role_id = ?2")?
        .execute(params![channel_id, role_id])?
        == 1)
}

/// Ends every session of `user_id` (kick, ban), in the caller's transaction.
pub fn revoke_sessions(conn: &Connection, user_id: i64) -> ApiResult<()> {
    conn.prepare_cached("DELETE FROM sessions WHERE user_id = ?1")?
        .execute(params![user_id])?;
    Ok(())
}

pub fn insert_ban(conn: &Connection, user: &User, by: i64, reason: &str) -> ApiResult<()> {
    conn.prepare_cached(
        "INSERT INTO bans (user_id, username_lc, reason, by_id, ts) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (user_id) DO UPDATE SET reason = excluded.reason, by_id = excluded.by_id, ts = excluded.ts",
    )?
    .execute(params![
        user.id,
        user.username.to_ascii_lowercase(),
        reason,
        by,
        now_ms()
    ])?;
    Ok(())
}

pub fn delete_ban(conn: &Connection, user_id: i64) -> ApiResult<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM bans WHERE user_id = ?1")?
        .execute(params![user_id])?
        == 1)
}

/// Whether the name (ignoring case) is banned: registration and login under it are refused.
pub fn name_banned(conn: &Connection, username: &str) -> ApiResult<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM bans WHERE username_lc = ?1")?
        .exists(params![username.to_ascii_lowercase()])?)
}

pub fn list_bans(conn: &Connection) -> ApiResult<Vec<Ban>> {
    let users = store::list_users(conn)?;
    let mut st = conn.prepare_cached("SELECT user_id, reason, ts FROM bans ORDER BY ts DESC")?;
    let rows = st
        .query_map([], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get(2)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, reason, ts)| {
            let user = users.iter().find(|u| u.id == id)?.clone();
            Some(Ban { user, reason, ts })
        })
        .collect())
}

/// The ids and channels of `user_id`'s messages sent at or after `since_ts`, newest first.
pub fn messages_since(conn: &Connection, user_id: i64, since_ts: i64) -> ApiResult<Vec<i64>> {
    let mut st = conn.prepare_cached(
        "SELECT id FROM messages WHERE author_id = ?1 AND ts >= ?2 ORDER BY id DESC",
    )?;
    let ids = st
        .query_map(params![user_id, since_ts], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}

pub fn set_timeout(conn: &Connection, user_id: i64, until_ts: Option<i64>) -> ApiResult<()> {
    match until_ts {
        Some(t) => conn
            .prepare_cached(
                "INSERT INTO timeouts (user_id, until_ts) VALUES (?1, ?2)
                 ON CONFLICT (user_id) DO UPDATE SET until_ts = excluded.until_ts",
            )?
            .execute(params![user_id, t])?,
        None => conn
            .prepare_cached("DELETE FROM timeouts WHERE user_id = ?1")?
            .execute(params![user_id])?,
    };
    Ok(())
}

/// The channel name and author of message `id`.
pub fn message_place(conn: &Connection, id: i64) -> ApiResult<(String, i64)> {
    conn.prepare_cached(
        "SELECT c.name, m.author_id FROM messages m JOIN channels c ON c.id = m.channel_id WHERE m.id = ?1",
    )?
    .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))
    .optional()?
    .ok_or_else(|| ApiError::not_found("no such message"))
}

/// A channel holds at most this many pins (as Discord): a pins list is for the few
/// messages that matter, and it bounds `GET /api/pins`.
pub const MAX_PINS: i64 = 50;

/// Pins or unpins message `id`; `false` when it already was in that state.
pub fn set_pin(conn: &Connection, id: i64, by: i64, on: bool) -> ApiResult<bool> {
    if !on {
        return Ok(conn
            .prepare_cached("DELETE FROM pins WHERE message_id = ?1")?
            .execute(params![id])?
            == 1);
    }
    let channel_id: i64 = conn
        .prepare_cached("SELECT channel_id FROM messages WHERE id = ?1")?
        .query_row(params![id], |r| r.get(0))?;
    let count: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM pins WHERE channel_id = ?1")?
        .query_row(params![channel_id], |r| r.get(0))?;
    if count >= MAX_PINS {
        return Err(ApiError::bad_request(format!(
            "a channel holds at most {MAX_PINS} pins"
        )));
    }
    Ok(conn
        .prepare_cached(
            "INSERT OR IGNORE INTO pins (message_id, channel_id, by_id, ts) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![id, channel_id, by, now_ms()])?
        == 1)
}

/// The pinned message ids of a text channel, newest pin first.
pub fn pin_ids(conn: &Connection, channel: &str) -> ApiResult<Vec<i64>> {
    let channel_id = store::text_channel_id(conn, channel)?;
    let mut st = conn.prepare_cached(
        "SELECT message_id FROM pins WHERE channel_id = ?1 ORDER BY ts DESC, message_id DESC",
    )?;
    let ids = st
        .query_map(params![channel_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}

/// Writes the settings of `PATCH /api/channels/{name}` (already checked) of channel `id`.
pub fn update_channel(conn: &Connection, id: i64, c: &Channel) -> ApiResult<()> {
    conn.prepare_cached(
        "UPDATE channels SET name = ?1, topic = ?2, slowmode_s = ?3, position = ?4, category = ?5, voice_mode = ?6 WHERE id = ?7",
    )?
    .execute(params![
        c.name,
        c.topic,
        c.slowmode_s,
        c.position,
        c.category,
        c.voice_mode,
        id
    ])?;
    Ok(())
}

/// Records the mentions a message was allowed to make.
pub fn set_mentions(conn: &Connection, id: i64, everyone: bool, roles: &[i64]) -> ApiResult<()> {
    let roles: Vec<String> = roles.iter().map(i64::to_string).collect();
    conn.prepare_cached(
        "UPDATE messages SET mention_everyone = ?1, mention_roles = ?2 WHERE id = ?3",
    )?
    .execute(params![everyone, roles.join(","), id])?;
    Ok(())
}
