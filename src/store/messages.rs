//! Messages: sending (idempotent per nonce), editing, deleting, reactions, history pages
//! and full-text search. Runs on the store thread, inside the batch transaction.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};

use super::attachments;
use super::{now_ms, text_channel_id, Page};
use crate::error::{ApiError, ApiResult};
use crate::files::BlobStore;
use crate::model::{Message, User};

const MESSAGE_COLUMNS: &str = "m.id, c.name, u.username, m.content, m.ts, m.edited_ts, m.reply_to";

fn message_row(r: &rusqlite::Row) -> rusqlite::Result<Message> {
    Ok(Message {
        id: r.get(0)?,
        channel: r.get(1)?,
        author: r.get(2)?,
        content: r.get(3)?,
        ts: r.get(4)?,
        edited_ts: r.get(5)?,
        reply_to: r.get(6)?,
        reactions: BTreeMap::new(),
        attachments: Vec::new(),
    })
}

/// Fills in what a message object carries besides its row: reactions and attachments.
fn fill_reactions(conn: &Connection, messages: &mut [Message]) -> ApiResult<()> {
    let mut st = conn.prepare_cached(
        "SELECT r.emoji, u.username FROM reactions r JOIN users u ON u.id = r.user_id
         WHERE r.message_id = ?1 ORDER BY r.ts, u.username_lc",
    )?;
    for m in messages.iter_mut() {
        let rows = st.query_map(params![m.id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        for row in rows {
            let (emoji, user) = row?;
            m.reactions.entry(emoji).or_default().push(user);
        }
        m.attachments = attachments::of_message(conn, m.id)?;
    }
    Ok(())
}

pub fn message(conn: &Connection, id: i64) -> ApiResult<Option<Message>> {
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN channels c ON c.id = m.channel_id
         JOIN users u ON u.id = m.author_id WHERE m.id = ?1"
    );
    let Some(m) = conn
        .prepare_cached(&sql)?
        .query_row(params![id], message_row)
        .optional()?
    else {
        return Ok(None);
    };
    let mut one = [m];
    fill_reactions(conn, &mut one)?;
    let [m] = one;
    Ok(Some(m))
}

/// Stores a new message with its `files` (the author's own uploads, attached in this same
/// transaction), or — when this author already used `nonce` — returns the stored one with
/// `true` (a retry: nothing new is stored).
pub fn insert_message(
    conn: &Connection,
    author: &User,
    channel: &str,
    content: &str,
    reply_to: Option<i64>,
    nonce: Option<&str>,
    files: &[String],
) -> ApiResult<(Message, bool)> {
    if let Some(nonce) = nonce {
        let existing: Option<i64> = conn
            .prepare_cached("SELECT id FROM messages WHERE author_id = ?1 AND nonce = ?2")?
            .query_row(params![author.id, nonce], |r| r.get(0))
            .optional()?;
        if let Some(id) = existing {
            if let Some(m) = message(conn, id)? {
                return Ok((m, true));
            }
        }
    }
    let channel_id = text_channel_id(conn, channel)?;
    if let Some(r) = reply_to {
        let ok = conn
            .prepare_cached("SELECT 1 FROM messages WHERE id = ?1 AND channel_id = ?2")?
            .exists(params![r, channel_id])?;
        if !ok {
            return Err(ApiError::bad_request(
                "reply_to is not a message in this channel",
            ));
        }
    }
    let ts = now_ms();
    conn.prepare_cached(
        "INSERT INTO messages (channel_id, author_id, content, ts, reply_to, nonce) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![channel_id, author.id, content, ts, reply_to, nonce])?;
    let id = conn.last_insert_rowid();
    attachments::attach(conn, author.id, files, id)?;
    Ok((
        Message {
            id,
            channel: channel.to_string(),
            author: author.username.clone(),
            content: content.to_string(),
            ts,
            edited_ts: None,
            reply_to,
            reactions: BTreeMap::new(),
            attachments: attachments::of_message(conn, id)?,
        },
        false,
    ))
}

fn message_owner(conn: &Connection, id: i64) -> ApiResult<i64> {
    conn.prepare_cached("SELECT author_id FROM messages WHERE id = ?1")?
        .query_row(params![id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| ApiError::not_found("no such message"))
}

pub fn edit_message(conn: &Connection, user: &User, id: i64, content: &str) -> ApiResult<Message> {
    if message_owner(conn, id)? != user.id {
        return Err(ApiError::forbidden("only the author can edit a message"));
    }
    conn.prepare_cached("UPDATE messages SET content = ?1, edited_ts = ?2 WHERE id = ?3")?
        .execute(params![content, now_ms(), id])?;
    message(conn, id)?.ok_or_else(|| ApiError::not_found("no such message"))
}

/// Deletes a message (author or admin) and its files' bytes when no other message has them;
/// returns its channel.
pub fn delete_message(
    conn: &Connection,
    blobs: &BlobStore,
    user: &User,
    id: i64,
) -> ApiResult<String> {
    if message_owner(conn, id)? != user.id && !user.admin {
        return Err(ApiError::forbidden(
            "only the author or an admin can delete a message",
        ));
    }
    let channel: String = conn
        .prepare_cached(
            "SELECT c.name FROM messages m JOIN channels c ON c.id = m.channel_id WHERE m.id = ?1",
        )?
        .query_row(params![id], |r| r.get(0))?;
    attachments::delete_for_message(conn, blobs, id)?;
    conn.prepare_cached("DELETE FROM messages WHERE id = ?1")?
        .execute(params![id])?;
    Ok(channel)
}

/// Toggles `user`'s `emoji` on message `id`; returns the channel and whether it is now on.
pub fn toggle_reaction(
    conn: &Connection,
    user: &User,
    id: i64,
    emoji: &str,
) -> ApiResult<(String, bool)> {
    let channel: String = conn
        .prepare_cached(
            "SELECT c.name FROM messages m JOIN channels c ON c.id = m.channel_id WHERE m.id = ?1",
        )?
        .query_row(params![id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| ApiError::not_found("no such message"))?;
    let removed = conn
        .prepare_cached(
            "DELETE FROM reactions WHERE message_id = ?1 AND emoji = ?2 AND user_id = ?3",
        )?
        .execute(params![id, emoji, user.id])?;
    if removed == 1 {
        return Ok((channel, false));
    }
    let distinct: i64 = conn
        .prepare_cached("SELECT COUNT(DISTINCT emoji) FROM reactions WHERE message_id = ?1")?
        .query_row(params![id], |r| r.get(0))?;
    if distinct >= MAX_DISTINCT_REACTIONS {
        return Err(ApiError::bad_request(
            "this message has as many different reactions as it can hold",
        ));
    }
    conn.prepare_cached(
        "INSERT INTO reactions (message_id, emoji, user_id, ts) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![id, emoji, user.id, now_ms()])?;
    Ok((channel, true))
}

/// Twenty different emoji on one message is plenty for a small community and bounds the
/// size of a message object.
pub const MAX_DISTINCT_REACTIONS: i64 = 20;

/// A page of a text channel's history, oldest first.
pub fn history(
    conn: &Connection,
    channel: &str,
    limit: u32,
    page: Page,
) -> ApiResult<Vec<Message>> {
    let channel_id = text_channel_id(conn, channel)?;
    let base = format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN channels c ON c.id = m.channel_id
         JOIN users u ON u.id = m.author_id WHERE m.channel_id = ?1"
    );
    let mut rows = match page {
        Page::Latest => conn
            .prepare_cached(&format!("{base} ORDER BY m.id DESC LIMIT ?2"))?
            .query_map(params![channel_id, limit], message_row)?
            .collect::<Result<Vec<_>, _>>()?,
        Page::Before(id) => conn
            .prepare_cached(&format!("{base} AND m.id < ?3 ORDER BY m.id DESC LIMIT ?2"))?
            .query_map(params![channel_id, limit, id], message_row)?
            .collect::<Result<Vec<_>, _>>()?,
        Page::After(id) => conn
            .prepare_cached(&format!("{base} AND m.id > ?3 ORDER BY m.id ASC LIMIT ?2"))?
            .query_map(params![channel_id, limit, id], message_row)?
            .collect::<Result<Vec<_>, _>>()?,
    };
    if !matches!(page, Page::After(_)) {
        rows.reverse();
    }
    fill_reactions(conn, &mut rows)?;
    Ok(rows)
}

/// Full-text search, newest first. Every word of `q` must match, in the text or in one
/// attachment's filename (each word is quoted, so FTS5 query syntax in user input is taken
/// literally).
pub fn search(
    conn: &Connection,
    q: &str,
    channel: Option<&str>,
    limit: u32,
) -> ApiResult<Vec<Message>> {
    let query: Vec<String> = q
        .split_whitespace()
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect();
    if query.is_empty() {
        return Err(ApiError::bad_request("q needs at least one word"));
    }
    let query = query.join(" ");
    let channel_id = match channel {
        Some(name) => Some(text_channel_id(conn, name)?),
        None => None,
    };
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m
         JOIN channels c ON c.id = m.channel_id JOIN users u ON u.id = m.author_id
         WHERE m.id IN (
             SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?1
             UNION SELECT a.message_id FROM attachments_fts f JOIN attachments a ON a.seq = f.rowid
                   WHERE attachments_fts MATCH ?1 AND a.message_id IS NOT NULL)
         AND (?2 IS NULL OR m.channel_id = ?2)
         ORDER BY m.id DESC LIMIT ?3"
    );
    let mut rows = conn
        .prepare_cached(&sql)?
        .query_map(params![query, channel_id, limit], message_row)?
        .collect::<Result<Vec<_>, _>>()?;
    fill_reactions(conn, &mut rows)?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::super::insert_user;
    use super::super::schema::test_db as db;
    use super::*;

    /// A blob store in a scratch directory (these messages carry no files).
    fn blobs() -> BlobStore {
        let dir = std::env::temp_dir().join(format!("md-store-{}", std::process::id()));
        BlobStore::open(&dir).unwrap()
    }

    #[test]
    fn nonce_makes_send_idempotent() {
        let c = db();
        let u = insert_user(&c, "alice", "h", true).unwrap();
        let (a, dup_a) = insert_message(&c, &u, "general", "hi", None, Some("n1"), &[]).unwrap();
        let (b, dup_b) =
            insert_message(&c, &u, "general", "hi again", None, Some("n1"), &[]).unwrap();
        assert!(!dup_a && dup_b);
        assert_eq!(a.id, b.id);
        assert_eq!(b.content, "hi");
    }

    #[test]
    fn history_pages_and_search_follow_edits_and_deletes() {
        let c = db();
        let u = insert_user(&c, "alice", "h", true).unwrap();
        let ids: Vec<i64> = (0..10)
            .map(|i| {
                insert_message(
                    &c,
                    &u,
                    "general",
                    &format!("word{i} apple"),
                    None,
                    None,
                    &[],
                )
                .unwrap()
                .0
                .id
            })
            .collect();
        let latest = history(&c, "general", 3, Page::Latest).unwrap();
        assert_eq!(
            latest.iter().map(|m| m.id).collect::<Vec<_>>(),
            ids[7..].to_vec()
        );
        let before = history(&c, "general", 3, Page::Before(ids[7])).unwrap();
        assert_eq!(
            before.iter().map(|m| m.id).collect::<Vec<_>>(),
            ids[4..7].to_vec()
        );
        let after = history(&c, "general", 3, Page::After(ids[1])).unwrap();
        assert_eq!(
            after.iter().map(|m| m.id).collect::<Vec<_>>(),
            ids[2..5].to_vec()
        );
        assert_eq!(search(&c, "apple", None, 100).unwrap().len(), 10);
        edit_message(&c, &u, ids[0], "banana").unwrap();
        assert_eq!(search(&c, "apple", None, 100).unwrap().len(), 9);
        assert_eq!(search(&c, "banana", None, 100).unwrap()[0].id, ids[0]);
        delete_message(&c, &blobs(), &u, ids[0]).unwrap();
        assert!(search(&c, "banana", None, 100).unwrap().is_empty());
        assert!(
            search(&c, "\"unbalanced OR", None, 10).is_ok(),
            "FTS syntax is taken literally"
        );
    }

    #[test]
    fn reactions_toggle() {
        let c = db();
        let u = insert_user(&c, "alice", "h", true).unwrap();
        let (m, _) = insert_message(&c, &u, "general", "x", None, None, &[]).unwrap();
        assert!(toggle_reaction(&c, &u, m.id, "👍").unwrap().1);
        assert_eq!(
            message(&c, m.id).unwrap().unwrap().reactions["👍"],
            vec!["alice".to_string()]
        );
        assert!(!toggle_reaction(&c, &u, m.id, "👍").unwrap().1);
        assert!(message(&c, m.id).unwrap().unwrap().reactions.is_empty());
    }

    #[test]
    fn voice_channel_has_no_history() {
        let c = db();
        assert_eq!(
            history(&c, "lounge", 10, Page::Latest).unwrap_err().code,
            crate::error::Code::BadRequest
        );
        assert_eq!(
            history(&c, "nope", 10, Page::Latest).unwrap_err().code,
            crate::error::Code::NotFound
        );
    }
}
