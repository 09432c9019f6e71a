//! `POST /api/admin/merge-account`'s work, on the store thread: hands everything an imported
//! (passwordless) account holds — messages, reactions, files, its Discord identity — to a
//! real account, then removes the imported one. One store job, so it is all or nothing.

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{ApiError, ApiResult};
use crate::files::blob::BlobStore;
use crate::store::attachments;

/// What a merge moved, for the answer and the audit log.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct Merged {
    pub from: String,
    pub into: String,
    pub from_id: i64,
    pub into_id: i64,
    pub messages: usize,
    pub reactions: usize,
}

/// Moves `from`'s history to `into` (names, any case). Refuses a `from` that has a password:
/// only an account an import made may be taken over, never a person's.
pub fn merge_account(
    conn: &Connection,
    blobs: &BlobStore,
    from: &str,
    into: &str,
) -> ApiResult<Merged> {
    let find = |name: &str| -> ApiResult<(i64, String, String, Option<String>)> {
        conn.prepare_cached(
            "SELECT id, username, password_hash, avatar_id FROM users WHERE username_lc = ?1",
        )?
        .query_row([name.to_ascii_lowercase()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?
        .ok_or_else(|| ApiError::not_found(format!("no account named {name:?}")))
    };
    let (from_id, from_name, from_hash, from_avatar) = find(from)?;
    let (into_id, into_name, _, into_avatar) = find(into)?;
    if !from_hash.is_empty() {
        return Err(ApiError::conflict(format!(
            "{from_name:?} has a password: only an imported account (without one) can be merged"
        )));
    }
    if from_id == into_id {
        return Err(ApiError::bad_request("from and into are the same account"));
    }
    let messages = conn.execute(
        "UPDATE messages SET author_id = ?2 WHERE author_id = ?1",
        params![from_id, into_id],
    )?;
    // Where both reacted with the same emoji, `into`'s own reaction stays (one per person).
    let reactions = conn.execute(
        "UPDATE OR IGNORE reactions SET user_id = ?2 WHERE user_id = ?1",
        params![from_id, into_id],
    )?;
    conn.execute("DELETE FROM reactions WHERE user_id = ?1", [from_id])?;
    conn.execute(
        "UPDATE discord_users SET user_id = ?2 WHERE user_id = ?1",
        params![from_id, into_id],
    )?;
    // The imported avatar becomes `into`'s only if it has none; otherwise it goes.
    if let Some(avatar) = from_avatar {
        if into_avatar.is_none() {
            conn.execute(
                "UPDATE users SET avatar_id = ?2 WHERE id = ?1",
                params![into_id, avatar],
            )?;
        } else {
            let hashes: Vec<String> = conn
                .prepare("SELECT hash FROM attachments WHERE id = ?1")?
                .query_map([&avatar], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            conn.execute("DELETE FROM attachments WHERE id = ?1", [&avatar])?;
            attachments::unlink_unreferenced(conn, blobs, hashes)?;
        }
    }
    conn.execute(
        "UPDATE attachments SET uploader_id = ?2 WHERE uploader_id = ?1",
        params![from_id, into_id],
    )?;
    // Pins an import made in the author's name ("Run a community": `pins.by_id`), and
    // whatever else of the community tables names them without a cascade.
    for sql in [
        "UPDATE pins SET by_id = ?2 WHERE by_id = ?1",
        "UPDATE audit_log SET actor_id = ?2 WHERE actor_id = ?1",
        "UPDATE bans SET by_id = ?2 WHERE by_id = ?1",
    ] {
        conn.execute(sql, params![from_id, into_id])?;
    }
    conn.execute("DELETE FROM users WHERE id = ?1", [from_id])?;
    Ok(Merged {
        from: from_name,
        into: into_name,
        from_id,
        into_id,
        messages,
        reactions,
    })
}
