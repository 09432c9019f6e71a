//! The SQL of direct messages (docs/DMS.md): a DM is a row of `channels` with kind `dm`,
//! its members in `dm_members`, and a two-person DM's `pair_key` in `dm_channels`. Runs on
//! the store thread, inside the job of `social/dms.rs` (which commits through
//! `community::routes::commit_update`, so the snapshot that decides visibility is rebuilt in
//! the same job).

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};

use super::{channel, insert_channel, now_ms};
use crate::error::{ApiError, ApiResult};
use crate::model::{Channel, ChannelKind};

/// The name of the DM between users `a` and `b`: a `.` cannot be in a channel an admin
/// creates (`validate::channel_name`), so a DM name never collides with one.
fn pair_name(a: i64, b: i64) -> String {
    format!("dm.{}.{}", a.min(b), a.max(b))
}

/// Whether `name` is a DM's: only DMs have a `.` in their name (see `pair_name`).
pub fn is_dm_name(name: &str) -> bool {
    name.contains('.')
}

fn pair_key(a: i64, b: i64) -> String {
    format!("{}:{}", a.min(b), a.max(b))
}

/// The ids of `names` (usernames, any case); `NotFound` for one that is nobody.
pub fn user_ids(conn: &Connection, names: &[String]) -> ApiResult<Vec<i64>> {
    let mut st = conn.prepare_cached("SELECT id FROM users WHERE username_lc = ?1")?;
    names
        .iter()
        .map(|n| {
            st.query_row(params![n.to_ascii_lowercase()], |r| r.get(0))
                .optional()?
                .ok_or_else(|| ApiError::not_found(format!("no user named {n:?}")))
        })
        .collect()
}

/// The DM of exactly these members (the creator included, no duplicates): the pair's
/// existing one for two people, else a new channel. Returns it and whether it is new.
pub fn open_dm(conn: &Connection, members: &[i64]) -> ApiResult<(Channel, bool)> {
    let key = match members {
        [a, b] => Some(pair_key(*a, *b)),
        _ => None,
    };
    if let Some(key) = &key {
        let found: Option<String> = conn
            .prepare_cached(
                "SELECT c.name FROM dm_channels d JOIN channels c ON c.id = d.channel_id
                 WHERE d.pair_key = ?1",
            )?
            .query_row(params![key], |r| r.get(0))
            .optional()?;
        if let Some(name) = found {
            let (_, c) = channel(conn, &name)?.ok_or_else(ApiError::internal)?;
            return Ok((c, false));
        }
    }
    let name = match members {
        [a, b] => pair_name(*a, *b),
        _ => {
            // The id AUTOINCREMENT gives next: unique, and never reused.
            let next: i64 = conn
                .prepare_cached(
                    "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'channels'), 0) + 1",
                )?
                .query_row([], |r| r.get(0))?;
            format!("dm.g{next}")
        }
    };
    let c = Channel::new(name, ChannelKind::Dm, String::new());
    insert_channel(conn, &c)?;
    let (id, _) = channel(conn, &c.name)?.ok_or_else(ApiError::internal)?;
    conn.prepare_cached("INSERT INTO dm_channels (channel_id, pair_key) VALUES (?1, ?2)")?
        .execute(params![id, key])?;
    for m in members {
        add_member(conn, id, *m)?;
    }
    Ok((c, true))
}

pub fn add_member(conn: &Connection, channel_id: i64, user_id: i64) -> ApiResult<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO dm_members (channel_id, user_id, joined_ts) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![channel_id, user_id, now_ms()])?;
    Ok(())
}

/// Takes `user_id` out of DM `channel_id` (leaving a group DM); whether they were in it.
/// The channel and its messages stay, for the others (and when the last one leaves, for
/// nobody: `all_dm_members` still lists it, so no rule but the DM's applies to it).
pub fn remove_member(conn: &Connection, channel_id: i64, user_id: i64) -> ApiResult<bool> {
    let n = conn
        .prepare_cached("DELETE FROM dm_members WHERE channel_id = ?1 AND user_id = ?2")?
        .execute(params![channel_id, user_id])?;
    Ok(n > 0)
}

/// Whether DM `channel_id` is a two-person DM (it has a `pair_key`), not a group DM.
pub fn is_pair(conn: &Connection, channel_id: i64) -> ApiResult<bool> {
    let key: Option<Option<String>> = conn
        .prepare_cached("SELECT pair_key FROM dm_channels WHERE channel_id = ?1")?
        .query_row(params![channel_id], |r| r.get(0))
        .optional()?;
    Ok(key.flatten().is_some())
}

/// The member ids of DM `channel_id`, in the order they joined.
pub fn dm_member_ids(conn: &Connection, channel_id: i64) -> ApiResult<Vec<i64>> {
    let mut st = conn.prepare_cached(
        "SELECT user_id FROM dm_members WHERE channel_id = ?1 ORDER BY joined_ts, user_id",
    )?;
    let rows = st
        .query_map(params![channel_id], |r| r.get(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Every DM's members (id, username) by channel name, in the order they joined: what
/// `community::Snapshot` keeps to decide who sees a DM. Every DM is in it, one that
/// everybody left too (with no members): a DM missing here would fall under the text
/// channels' rule, which lets everyone in.
pub fn all_dm_members(conn: &Connection) -> ApiResult<HashMap<String, Vec<(i64, String)>>> {
    let mut st = conn.prepare_cached(
        "SELECT c.name, u.id, u.username FROM channels c
         LEFT JOIN dm_members d ON d.channel_id = c.id LEFT JOIN users u ON u.id = d.user_id
         WHERE c.kind = 'dm'
         ORDER BY d.joined_ts, d.user_id",
    )?;
    let mut out: HashMap<String, Vec<(i64, String)>> = HashMap::new();
    for row in st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<i64>>(1)?,
            r.get::<_, Option<String>>(2)?,
        ))
    })? {
        let (name, id, username) = row?;
        let members = out.entry(name).or_default();
        if let (Some(id), Some(username)) = (id, username) {
            members.push((id, username));
        }
    }
    Ok(out)
}

/// A message in a DM is a mention of every other member (DMs notify: badges, desktop
/// notifications and pushes all follow the mention rows). Nothing for another channel.
pub fn mention_members(
    conn: &Connection,
    author_id: i64,
    channel_id: i64,
    message_id: i64,
) -> ApiResult<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO mentions (user_id, channel_id, message_id)
         SELECT user_id, channel_id, ?2 FROM dm_members WHERE channel_id = ?1 AND user_id != ?3",
    )?
    .execute(params![channel_id, message_id, author_id])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::schema::test_db as db;
    use super::*;

    #[test]
    fn a_pair_keeps_its_dm_and_groups_get_new_ones() {
        let c = db();
        let a = crate::store::insert_user(&c, "alice", "h", true)
            .unwrap()
            .id;
        let b = crate::store::insert_user(&c, "bob", "h", false).unwrap().id;
        let e = crate::store::insert_user(&c, "eve", "h", false).unwrap().id;
        let (one, new) = open_dm(&c, &[a, b]).unwrap();
        assert!(new && one.kind == ChannelKind::Dm);
        let (again, new) = open_dm(&c, &[b, a]).unwrap();
        assert!(!new);
        assert_eq!(again.name, one.name);
        let (g1, _) = open_dm(&c, &[a, b, e]).unwrap();
        let (g2, _) = open_dm(&c, &[a, b, e]).unwrap();
        assert_ne!(g1.name, g2.name);
        assert_eq!(all_dm_members(&c).unwrap()[&g1.name].len(), 3);
    }

    #[test]
    fn a_dm_everyone_left_is_still_a_dm() {
        let c = db();
        let a = crate::store::insert_user(&c, "alice", "h", true)
            .unwrap()
            .id;
        let b = crate::store::insert_user(&c, "bob", "h", false).unwrap().id;
        let e = crate::store::insert_user(&c, "eve", "h", false).unwrap().id;
        let (g, _) = open_dm(&c, &[a, b, e]).unwrap();
        let (id, _) = channel(&c, &g.name).unwrap().unwrap();
        assert!(!is_pair(&c, id).unwrap());
        for u in [a, b, e] {
            assert!(remove_member(&c, id, u).unwrap());
        }
        assert!(!remove_member(&c, id, a).unwrap());
        assert!(all_dm_members(&c).unwrap()[&g.name].is_empty());
        let snap = crate::community::Snapshot::load(&c).unwrap();
        assert!(!snap.can_view(a, &g.name), "not even the owner");
        let (pair, _) = open_dm(&c, &[a, b]).unwrap();
        let (id, _) = channel(&c, &pair.name).unwrap().unwrap();
        assert!(is_pair(&c, id).unwrap());
    }
}
