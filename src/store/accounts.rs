//! Accounts: users, sessions (only the SHA-256 of a token is stored) and invites. Runs on
//! the store thread, inside the batch transaction.

use rusqlite::{params, Connection, OptionalExtension};

use super::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::model::User;

/// Columns a [`User`] is read from, in `user_row`'s order (`u` is the users table).
pub(super) const USER_COLUMNS: &str =
    "u.id, u.username, u.admin, u.avatar_id, u.display_name, u.status_text";
/// How many columns `USER_COLUMNS` has: a query that selects more after them reads the
/// first extra one at this index.
const AFTER_USER: usize = 6;

pub(super) fn user_row(r: &rusqlite::Row) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        admin: r.get::<_, i64>(2)? != 0,
        avatar_url: super::attachments::avatar_url(r.get(3)?),
        display_name: r.get(4)?,
        status_text: r.get(5)?,
    })
}

pub fn user_count(conn: &Connection) -> ApiResult<i64> {
    Ok(conn.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?)
}

pub fn list_users(conn: &Connection) -> ApiResult<Vec<User>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {USER_COLUMNS} FROM users u ORDER BY username_lc"
    ))?;
    let rows = st.query_map([], user_row)?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Inserts a user; `admin` only for the first account. `Conflict` when the name is taken.
pub fn insert_user(
    conn: &Connection,
    username: &str,
    password_hash: &str,
    admin: bool,
) -> ApiResult<User> {
    let lc = username.to_ascii_lowercase();
    let taken: bool = conn
        .prepare_cached("SELECT 1 FROM users WHERE username_lc = ?1")?
        .exists(params![lc])?;
    if taken {
        return Err(ApiError::conflict("that username is taken"));
    }
    conn.prepare_cached(
        "INSERT INTO users (username, username_lc, password_hash, admin, created_ts) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![username, lc, password_hash, admin as i64, now_ms()])?;
    Ok(User {
        id: conn.last_insert_rowid(),
        username: username.to_string(),
        admin,
        avatar_url: None,
        display_name: None,
        status_text: None,
    })
}

/// An invite as `POST`/`GET /api/invites` show it.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct Invite {
    pub code: String,
    pub expires_ts: i64,
    pub max_uses: i64,
    pub uses: i64,
    pub created_ts: i64,
}

/// The SQL condition for a code that can still be used (the contract's "valid": not expired,
/// not revoked, uses left); `?1` is now.
const LIVE: &str = "revoked = 0 AND uses < max_uses AND expires_ts > ?1";

/// Counts one use of an invite by `user_id`; `Forbidden` when it is unknown, used up,
/// revoked or expired. One UPDATE, so two sign-ups racing for the last use cannot both win.
pub fn use_invite(conn: &Connection, code: &str, user_id: i64) -> ApiResult<()> {
    let n = conn
        .prepare_cached(&format!(
            "UPDATE invites SET uses = uses + 1, used_by = ?2 WHERE code = ?3 AND {LIVE}"
        ))?
        .execute(params![now_ms(), user_id, code])?;
    if n == 1 {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "that invite is not valid (unknown, used up, revoked or expired)",
        ))
    }
}

pub fn insert_invite(
    conn: &Connection,
    code: &str,
    by: i64,
    expires_ts: i64,
    max_uses: i64,
) -> ApiResult<Invite> {
    let now = now_ms();
    conn.prepare_cached(
        "INSERT INTO invites (code, created_by, created_ts, expires_ts, max_uses) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![code, by, now, expires_ts, max_uses])?;
    Ok(Invite {
        code: code.to_string(),
        expires_ts,
        max_uses,
        uses: 0,
        created_ts: now,
    })
}

/// The invites that can still be used, newest first.
pub fn live_invites(conn: &Connection) -> ApiResult<Vec<Invite>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT code, expires_ts, max_uses, uses, created_ts FROM invites WHERE {LIVE} ORDER BY created_ts DESC, code"
    ))?;
    let rows = st.query_map(params![now_ms()], |r| {
        Ok(Invite {
            code: r.get(0)?,
            expires_ts: r.get(1)?,
            max_uses: r.get(2)?,
            uses: r.get(3)?,
            created_ts: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Revokes a live invite; `NotFound` when there is none by that code (or it is already dead).
pub fn revoke_invite(conn: &Connection, code: &str) -> ApiResult<()> {
    let n = conn
        .prepare_cached(&format!(
            "UPDATE invites SET revoked = 1 WHERE code = ?2 AND {LIVE}"
        ))?
        .execute(params![now_ms(), code])?;
    if n == 1 {
        Ok(())
    } else {
        Err(ApiError::not_found("no live invite with that code"))
    }
}

/// The user and their password hash, by name ignoring case.
pub fn user_for_login(conn: &Connection, username: &str) -> ApiResult<Option<(User, String)>> {
    let lc = username.to_ascii_lowercase();
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE username_lc = ?1"
        ))?
        .query_row(params![lc], |r| {
            Ok((user_row(r)?, r.get::<_, String>(AFTER_USER)?))
        })
        .optional()?)
}

/// Live sessions one user may hold. A new one past it ends the oldest, so one client with a
/// password cannot grow the table without bound (issue 19: 566 sessions in 10 s), while 50
/// devices and scripts is more than a person uses.
pub const SESSIONS_PER_USER: i64 = 50;

/// Stores a new session and ends the user's oldest ones past `SESSIONS_PER_USER`; returns the
/// token hashes of the sessions it ended.
pub fn insert_session(
    conn: &Connection,
    token_hash: &[u8],
    user_id: i64,
    expires_ts: i64,
) -> ApiResult<Vec<Vec<u8>>> {
    conn.prepare_cached("INSERT INTO sessions (token_hash, user_id, created_ts, expires_ts) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![token_hash, user_id, now_ms(), expires_ts])?;
    let ended = conn
        .prepare_cached(
            "DELETE FROM sessions WHERE user_id = ?1 AND token_hash IN (
                 SELECT token_hash FROM sessions WHERE user_id = ?1
                 ORDER BY created_ts DESC LIMIT -1 OFFSET ?2)
             RETURNING token_hash",
        )?
        .query_map(params![user_id, SESSIONS_PER_USER], |r| r.get(0))?
        .collect::<Result<Vec<Vec<u8>>, _>>()?;
    Ok(ended)
}

/// Deletes every expired session; the sweeper runs it on its timer, so sessions nobody logs
/// out of do not stay in the table for ever.
pub fn delete_expired_sessions(conn: &Connection) -> ApiResult<usize> {
    Ok(conn
        .prepare_cached("DELETE FROM sessions WHERE expires_ts <= ?1")?
        .execute(params![now_ms()])?)
}

/// The user of a live session, and when the session expires (Unix ms).
pub fn session(conn: &Connection, token_hash: &[u8]) -> ApiResult<Option<(User, i64)>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS}, s.expires_ts FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = ?1 AND s.expires_ts > ?2"
        ))?
        .query_row(params![token_hash, now_ms()], |r| {
            Ok((user_row(r)?, r.get(AFTER_USER)?))
        })
        .optional()?)
}

pub fn session_user(conn: &Connection, token_hash: &[u8]) -> ApiResult<Option<User>> {
    Ok(session(conn, token_hash)?.map(|(user, _)| user))
}

pub fn delete_session(conn: &Connection, token_hash: &[u8]) -> ApiResult<bool> {
    let n = conn
        .prepare_cached("DELETE FROM sessions WHERE token_hash = ?1")?
        .execute(params![token_hash])?;
    Ok(n == 1)
}

/// A session as its owner sees it in the sessions list: never the token or its hash, only
/// an id derived from the hash that cannot be turned back into either.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: String,
    pub created_ts: i64,
    pub expires_ts: i64,
    /// The session the request came with ("this device").
    pub current: bool,
}

/// The public id of a session: a SHA-256 of its token hash under a fixed label, 128 bits of
/// it. No column is needed (no migration), it is stable for the session's life, and knowing
/// it gives nothing that authenticates.
pub fn session_public_id(token_hash: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::new()
        .chain_update(b"mini-discord session id\0")
        .chain_update(token_hash)
        .finalize();
    d[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// The live sessions of a user (at most `SESSIONS_PER_USER`), newest first, with their token
/// hashes for the caller on the store side only.
fn user_sessions(conn: &Connection, user_id: i64) -> ApiResult<Vec<(Vec<u8>, i64, i64)>> {
    Ok(conn
        .prepare_cached(
            "SELECT token_hash, created_ts, expires_ts FROM sessions
             WHERE user_id = ?1 AND expires_ts > ?2 ORDER BY created_ts DESC, token_hash",
        )?
        .query_map(params![user_id, now_ms()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?)
}

/// `GET /api/me/sessions`: the user's live sessions, `current` marking `current_hash`'s.
pub fn list_sessions(
    conn: &Connection,
    user_id: i64,
    current_hash: &[u8],
) -> ApiResult<Vec<SessionInfo>> {
    Ok(user_sessions(conn, user_id)?
        .into_iter()
        .map(|(hash, created_ts, expires_ts)| SessionInfo {
            id: session_public_id(&hash),
            created_ts,
            expires_ts,
            current: hash == current_hash,
        })
        .collect())
}

/// Ends the user's session whose public id is `id`; returns its token hash (so its sockets
/// can be closed), `NotFound` when the user has no such session. Scoped to the user, so one
/// user can never end another's session by guessing ids.
pub fn delete_session_by_id(conn: &Connection, user_id: i64, id: &str) -> ApiResult<Vec<u8>> {
    let hash = user_sessions(conn, user_id)?
        .into_iter()
        .map(|(hash, _, _)| hash)
        .find(|hash| session_public_id(hash) == id)
        .ok_or_else(|| ApiError::not_found("no such session"))?;
    delete_session(conn, &hash)?;
    Ok(hash)
}

/// Ends every session of the user except `keep`; returns the token hashes it ended.
pub fn delete_other_sessions(
    conn: &Connection,
    user_id: i64,
    keep: &[u8],
) -> ApiResult<Vec<Vec<u8>>> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM sessions WHERE user_id = ?1 AND token_hash <> ?2 RETURNING token_hash",
        )?
        .query_map(params![user_id, keep], |r| r.get(0))?
        .collect::<Result<Vec<Vec<u8>>, _>>()?)
}

/// The password hash of a user (for checking the current password before a change).
pub fn password_hash(conn: &Connection, user_id: i64) -> ApiResult<String> {
    Ok(conn
        .prepare_cached("SELECT password_hash FROM users WHERE id = ?1")?
        .query_row(params![user_id], |r| r.get(0))?)
}

/// Sets a new password hash, only if the stored one is still `old_hash` (two changes racing
/// cannot both win with the same current password), and ends every other session of the
/// user in the same job. Returns the ended sessions' token hashes; `Forbidden` when the
/// password changed meanwhile.
pub fn change_password(
    conn: &Connection,
    user_id: i64,
    old_hash: &str,
    new_hash: &str,
    keep: &[u8],
) -> ApiResult<Vec<Vec<u8>>> {
    let n = conn
        .prepare_cached("UPDATE users SET password_hash = ?1 WHERE id = ?2 AND password_hash = ?3")?
        .execute(params![new_hash, user_id, old_hash])?;
    if n != 1 {
        return Err(ApiError::forbidden("the current password is wrong"));
    }
    delete_other_sessions(conn, user_id, keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_capped_per_user_oldest_first_and_expired_ones_swept() {
        let c = super::super::schema::test_db();
        let alice = insert_user(&c, "alice", "h", true).unwrap().id;
        let bob = insert_user(&c, "bob", "h", false).unwrap().id;
        let far = now_ms() + 60_000;
        insert_session(&c, b"bob-1", bob, far).unwrap();
        for i in 0..SESSIONS_PER_USER {
            // Distinct creation times, oldest first.
            c.execute(
                "INSERT INTO sessions (token_hash, user_id, created_ts, expires_ts) VALUES (?1, ?2, ?3, ?4)",
                params![format!("a{i}").into_bytes(), alice, i, far],
            )
            .unwrap();
        }
        let ended = insert_session(&c, b"a-new", alice, far).unwrap();
        assert_eq!(ended, vec![b"a0".to_vec()], "the oldest ends");
        assert!(session_user(&c, b"a0").unwrap().is_none());
        assert!(session_user(&c, b"a-new").unwrap().is_some());
        assert!(
            session_user(&c, b"bob-1").unwrap().is_some(),
            "others keep theirs"
        );
        c.execute(
            "UPDATE sessions SET expires_ts = 0 WHERE token_hash = ?1",
            params![b"bob-1".to_vec()],
        )
        .unwrap();
        assert_eq!(delete_expired_sessions(&c).unwrap(), 1);
        let left: i64 = c
            .query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, SESSIONS_PER_USER);
    }
    #[test]
    fn session_ids_hide_the_hash_and_only_the_owner_can_end_one() {
        let c = super::super::schema::test_db();
        let alice = insert_user(&c, "alice", "h", true).unwrap().id;
        let bob = insert_user(&c, "bob", "h", false).unwrap().id;
        let far = now_ms() + 60_000;
        insert_session(&c, b"alice-1", alice, far).unwrap();
        insert_session(&c, b"alice-2", alice, far).unwrap();
        insert_session(&c, b"bob-1", bob, far).unwrap();
        let list = list_sessions(&c, alice, b"alice-2").unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list.iter().filter(|s| s.current).count(), 1);
        for s in &list {
            assert_eq!(s.id.len(), 32);
            assert!(!s.id.contains(&auth_hex(b"alice-1")) && !s.id.contains(&auth_hex(b"alice-2")));
        }
        let bobs = session_public_id(b"bob-1");
        assert!(
            delete_session_by_id(&c, alice, &bobs).is_err(),
            "not alice's"
        );
        assert!(session_user(&c, b"bob-1").unwrap().is_some());
        let other = list.iter().find(|s| !s.current).unwrap();
        assert_eq!(
            delete_session_by_id(&c, alice, &other.id).unwrap(),
            b"alice-1".to_vec()
        );
        assert!(session_user(&c, b"alice-1").unwrap().is_none());
        insert_session(&c, b"alice-3", alice, far).unwrap();
        assert!(change_password(&c, alice, "wrong", "h2", b"alice-2").is_err());
        let ended = change_password(&c, alice, "h", "h2", b"alice-2").unwrap();
        assert_eq!(ended, vec![b"alice-3".to_vec()]);
        assert_eq!(password_hash(&c, alice).unwrap(), "h2");
        assert!(
            session_user(&c, b"alice-2").unwrap().is_some(),
            "this one is kept"
        );
        assert!(
            session_user(&c, b"bob-1").unwrap().is_some(),
            "others keep theirs"
        );
    }

    fn auth_hex(b: &[u8]) -> String {
        b.iter().map(|b| format!("{b:02x}")).collect()
    }
}
