//! Messages: sending (idempotent per nonce), editing, deleting, reactions, history pages
//! and full-text search. Runs on the store thread, inside the batch transaction.
//!
//! Pages are read in two steps: their ids (`history_ids`, `search_ids`: cheap, and the only
//! place the order and the page's bounds are decided), then their messages a piece at a
//! time (`messages_by_id`), so that no one job copies a whole 3 MB page (issue 19).

use std::collections::{BTreeMap, HashSet};

use rusqlite::{params, Connection, OptionalExtension};

use super::attachments;
use super::{now_ms, text_channel_id, Page};
use crate::error::{ApiError, ApiResult};
use crate::files::BlobStore;
use crate::model::{Message, User};

const MESSAGE_COLUMNS: &str = "m.id, c.name, u.username, m.content, m.ts, m.edited_ts, m.reply_to,
     EXISTS (SELECT 1 FROM pins p WHERE p.message_id = m.id), m.mention_everyone, m.mention_roles";

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
        pinned: r.get(7)?,
        mention_everyone: r.get(8)?,
        mention_roles: r
            .get::<_, String>(9)?
            .split(',')
            .filter_map(|id| id.parse().ok())
            .collect(),
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
    super::social::record_mentions(conn, author.id, channel_id, id, content)?;
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
            pinned: false,
            mention_everyone: false,
            mention_roles: Vec::new(),
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
    super::social::rerecord_mentions(conn, id, content)?;
    message(conn, id)?.ok_or_else(|| ApiError::not_found("no such message"))
}

/// Deletes a message (its author, or anyone `moderator` says may delete others' messages:
/// `manage_messages` in its channel, decided by `community::perms`) and its files' bytes
/// when no other message has them; returns its channel.
pub fn delete_message(
    conn: &Connection,
    blobs: &BlobStore,
    user: &User,
    id: i64,
    moderator: bool,
) -> ApiResult<String> {
    if message_owner(conn, id)? != user.id && !moderator {
        return Err(ApiError::forbidden(
            "only the author or a member with manage_messages can delete a message",
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

/// The ids of a page of a text channel's history, oldest first. The page's messages are then
/// read in pieces with `messages_by_id`, so that no one job copies a whole 3 MB page.
pub fn history_ids(
    conn: &Connection,
    channel: &str,
    limit: u32,
    page: Page,
) -> ApiResult<Vec<i64>> {
    let channel_id = text_channel_id(conn, channel)?;
    let base = "SELECT id FROM messages WHERE channel_id = ?1";
    let id = |r: &rusqlite::Row| r.get::<_, i64>(0);
    let mut ids = match page {
        Page::Latest => conn
            .prepare_cached(&format!("{base} ORDER BY id DESC LIMIT ?2"))?
            .query_map(params![channel_id, limit], id)?
            .collect::<Result<Vec<_>, _>>()?,
        Page::Before(before) => conn
            .prepare_cached(&format!("{base} AND id < ?3 ORDER BY id DESC LIMIT ?2"))?
            .query_map(params![channel_id, limit, before], id)?
            .collect::<Result<Vec<_>, _>>()?,
        Page::After(after) => conn
            .prepare_cached(&format!("{base} AND id > ?3 ORDER BY id ASC LIMIT ?2"))?
            .query_map(params![channel_id, limit, after], id)?
            .collect::<Result<Vec<_>, _>>()?,
    };
    if !matches!(page, Page::After(_)) {
        ids.reverse();
    }
    Ok(ids)
}

/// The messages of `ids`, in that order, with their reactions; ids that no longer exist
/// (deleted since) are skipped. Stops after the message that brings the content read past
/// `max_bytes`, so a caller learns how far it got from the last id returned.
pub fn messages_by_id(conn: &Connection, ids: &[i64], max_bytes: usize) -> ApiResult<Vec<Message>> {
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN channels c ON c.id = m.channel_id
         JOIN users u ON u.id = m.author_id WHERE m.id = ?1"
    );
    let mut st = conn.prepare_cached(&sql)?;
    let mut out = Vec::new();
    let mut bytes = 0;
    for &id in ids {
        if let Some(m) = st.query_row(params![id], message_row).optional()? {
            bytes += m.content.len();
            out.push(m);
        }
        if bytes >= max_bytes {
            break;
        }
    }
    fill_reactions(conn, &mut out)?;
    Ok(out)
}

/// A page of a text channel's history, oldest first, in one job (for small pages and tests;
/// the HTTP API reads it in pieces).
pub fn history(
    conn: &Connection,
    channel: &str,
    limit: u32,
    page: Page,
) -> ApiResult<Vec<Message>> {
    let ids = history_ids(conn, channel, limit, page)?;
    messages_by_id(conn, &ids, usize::MAX)
}

/// A search matches at most this many distinct words. Each word is one more doclist for
/// FTS5 to walk for every candidate row; 128 copies of `a` (what fits in `q`'s 256 bytes)
/// took ~1 s over 300,000 messages (issue 19). Eight words is a long search.
pub const MAX_SEARCH_TERMS: usize = 8;

/// The FTS5 query for the words of `q`: split where FTS5's unicode61 tokenizer splits (any
/// character that is not a letter or digit), de-duplicated ignoring case, each quoted (so
/// FTS5 syntax in user input is taken literally) and all required. Splitting the words
/// ourselves also means a "word" such as `a.a.a.a…` cannot become a 128-token phrase.
/// `None` when `q` has no word at all (only punctuation or emoji, which FTS5 does not index):
/// nothing can match it.
pub fn search_query(q: &str) -> ApiResult<Option<String>> {
    let mut seen = HashSet::new();
    let words: Vec<&str> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && seen.insert(w.to_lowercase()))
        .collect();
    if words.is_empty() {
        return Ok(None);
    }
    if words.len() > MAX_SEARCH_TERMS {
        return Err(ApiError::bad_request(format!(
            "q has more than {MAX_SEARCH_TERMS} different words"
        )));
    }
    Ok(Some(
        words
            .iter()
            .map(|w| format!("\"{w}\""))
            .collect::<Vec<_>>()
            .join(" "),
    ))
}

/// The ids of the messages matching `q`, newest first. The plan walks the FTS index in rowid
/// order (descending) and stops at `limit`: it never collects and sorts all the matches,
/// which is what made one search hold the store thread for a second (issue 19). The rowid
/// of `messages_fts` is the message id, so this is id order.
/// `hidden`: channel ids whose messages are left out (those the user may not see).
pub fn search_ids(
    conn: &Connection,
    q: &str,
    channel: Option<&str>,
    hidden: &[i64],
    limit: u32,
) -> ApiResult<Vec<i64>> {
    let hidden = serde_json::to_string(hidden).unwrap_or_else(|_| "[]".into());
    let channel_id = match channel {
        Some(name) => Some(text_channel_id(conn, name)?),
        None => None,
    };
    let Some(query) = search_query(q)? else {
        return Ok(Vec::new());
    };
    let mut ids = conn
        .prepare_cached(
            "SELECT f.rowid FROM messages_fts f JOIN messages m ON m.id = f.rowid
             WHERE messages_fts MATCH ?1 AND (?2 IS NULL OR m.channel_id = ?2)
             AND m.channel_id NOT IN (SELECT value FROM json_each(?4))
             ORDER BY f.rowid DESC LIMIT ?3",
        )?
        .query_map(params![query, channel_id, limit, hidden], |r| {
            r.get::<_, i64>(0)
        })?
        .collect::<Result<Vec<_>, _>>()?;
    // Messages whose attachment's filename has every word (issue 12). Filenames are few next
    // to messages, so sorting these matches is cheap; the read budget bounds it regardless.
    let by_file = conn
        .prepare_cached(
            "SELECT DISTINCT a.message_id FROM attachments_fts f
             JOIN attachments a ON a.seq = f.rowid JOIN messages m ON m.id = a.message_id
             WHERE attachments_fts MATCH ?1 AND (?2 IS NULL OR m.channel_id = ?2)
             AND m.channel_id NOT IN (SELECT value FROM json_each(?4))
             ORDER BY a.message_id DESC LIMIT ?3",
        )?
        .query_map(params![query, channel_id, limit, hidden], |r| {
            r.get::<_, i64>(0)
        })?
        .collect::<Result<Vec<_>, _>>()?;
    if !by_file.is_empty() {
        ids.extend(by_file);
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids.dedup();
        ids.truncate(limit as usize);
    }
    Ok(ids)
}

/// Full-text search, newest first, in one job (for tests; the HTTP API reads it in pieces).
pub fn search(
    conn: &Connection,
    q: &str,
    channel: Option<&str>,
    limit: u32,
) -> ApiResult<Vec<Message>> {
    let ids = search_ids(conn, q, channel, &[], limit)?;
    messages_by_id(conn, &ids, usize::MAX)
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
    fn search_words_are_split_deduplicated_and_capped() {
        let query = |q: &str| search_query(q).unwrap().unwrap();
        assert_eq!(query("a a A a"), "\"a\"");
        assert_eq!(query("a.a.a-b \"c OR"), "\"a\" \"b\" \"c\" \"OR\"");
        assert_eq!(query(&vec!["a"; 128].join(" ")), "\"a\"");
        assert!(search_query("1 2 3 4 5 6 7 8").is_ok());
        assert_eq!(
            search_query("1 2 3 4 5 6 7 8 9").unwrap_err().code,
            crate::error::Code::BadRequest
        );
        assert_eq!(
            search_query(" .,; 👍").unwrap(),
            None,
            "no word: nothing matches"
        );
    }

    #[test]
    fn search_plan_never_sorts_the_matches() {
        let c = db();
        let plan: Vec<String> = c
            .prepare(
                "EXPLAIN QUERY PLAN SELECT f.rowid FROM messages_fts f JOIN messages m ON m.id = f.rowid
                 WHERE messages_fts MATCH ?1 AND (?2 IS NULL OR m.channel_id = ?2)
                 AND m.channel_id NOT IN (SELECT value FROM json_each(?4))
                 ORDER BY f.rowid DESC LIMIT ?3",
            )
            .unwrap()
            .query_map(params!["\"a\"", None::<i64>, 1, "[2]"], |r| {
                r.get::<_, String>(3)
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            !plan.iter().any(|step| step.contains("TEMP B-TREE")),
            "{plan:?}"
        );
    }

    #[test]
    fn messages_by_id_keeps_order_skips_gaps_and_stops_at_the_byte_bound() {
        let c = db();
        let u = insert_user(&c, "alice", "h", true).unwrap();
        let ids: Vec<i64> = (0..5)
            .map(|i| {
                insert_message(&c, &u, "general", &format!("m{i}"), None, None, &[])
                    .unwrap()
                    .0
                    .id
            })
            .collect();
        delete_message(&c, &blobs(), &u, ids[1], false).unwrap();
        let got = |want: &[i64], max| -> Vec<i64> {
            messages_by_id(&c, want, max)
                .unwrap()
                .iter()
                .map(|m| m.id)
                .collect()
        };
        assert_eq!(
            got(&[ids[4], ids[1], ids[0]], usize::MAX),
            vec![ids[4], ids[0]]
        );
        assert_eq!(
            got(&ids, 4),
            vec![ids[0], ids[2]],
            "2 bytes each: stops at 4"
        );
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
        delete_message(&c, &blobs(), &u, ids[0], false).unwrap();
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
