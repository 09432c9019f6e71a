//! `export DIR [--channel NAME]...`: one JSON file per text channel in DiscordChatExporter's
//! JSON layout (`guild`, `channel`, `dateRange`, `exportedAt`, `messages`, `messageCount`),
//! attachments copied alongside into `<channel>.json_Files/` and named by relative URL.
//!
//! It reads `chat.db` from its own connection inside one read transaction, so the export is
//! one consistent moment even beside a live server.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use rusqlite::Connection;
use serde_json::{json, Value};

/// Exports `data_dir`'s text channels (all, or those named) into `out`.
pub fn export(data_dir: &Path, out: &Path, only: &[String]) -> Result<String, String> {
    let db = data_dir.join("chat.db");
    if !db.is_file() {
        return Err(format!("no database at {}", db.display()));
    }
    let conn = Connection::open(&db).map_err(|e| e.to_string())?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(|e| e.to_string())?;
    conn.execute_batch("BEGIN").map_err(|e| e.to_string())?;
    let sql = |e: rusqlite::Error| format!("database read failed: {e}");
    let mut channels: Vec<(i64, String, String)> = conn
        .prepare("SELECT id, name, topic FROM channels WHERE kind = 'text' ORDER BY id")
        .map_err(sql)?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(sql)?
        .collect::<Result<_, _>>()
        .map_err(sql)?;
    for name in only {
        if !channels.iter().any(|c| &c.1 == name) {
            return Err(format!("no text channel named {name:?}"));
        }
    }
    if !only.is_empty() {
        channels.retain(|c| only.contains(&c.1));
    }
    fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let blobs = crate::files::blob::BlobStore::at(data_dir);
    let mut total = 0;
    for (cid, name, topic) in &channels {
        let file_name = format!("{}.json", safe(name));
        let files_dir = format!("{file_name}_Files");
        let mut reactions: BTreeMap<i64, BTreeMap<String, Vec<Value>>> = BTreeMap::new();
        let mut stmt = conn
            .prepare(
                "SELECT r.message_id, r.emoji, u.id, u.username FROM reactions r
                 JOIN messages m ON m.id = r.message_id JOIN users u ON u.id = r.user_id
                 WHERE m.channel_id = ?1 ORDER BY r.ts",
            )
            .map_err(sql)?;
        let rows = stmt
            .query_map([cid], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(sql)?;
        for row in rows {
            let (mid, emoji, uid, uname) = row.map_err(sql)?;
            reactions
                .entry(mid)
                .or_default()
                .entry(emoji)
                .or_default()
                .push(user(uid, &uname));
        }
        let mut atts: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
        let mut stmt = conn
            .prepare(
                "SELECT a.message_id, a.id, a.hash, a.filename, a.size FROM attachments a
                 JOIN messages m ON m.id = a.message_id WHERE m.channel_id = ?1 ORDER BY a.seq",
            )
            .map_err(sql)?;
        let rows = stmt
            .query_map([cid], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .map_err(sql)?;
        for row in rows {
            let (mid, aid, hash, fname, size) = row.map_err(sql)?;
            let rel = format!("{files_dir}/{}-{}", safe(&aid), safe(&fname));
            let dest = out.join(&rel);
            fs::create_dir_all(out.join(&files_dir)).map_err(|e| e.to_string())?;
            fs::copy(blobs.blob_path(&hash), &dest)
                .map_err(|e| format!("cannot copy file {aid} ({fname}): {e}"))?;
            atts.entry(mid).or_default().push(json!({
                "id": aid, "url": rel, "fileName": fname, "fileSizeBytes": size,
            }));
        }
        let mut messages = Vec::new();
        let mut stmt = conn
            .prepare(
                "SELECT m.id, m.content, m.ts, m.edited_ts, m.reply_to, u.id, u.username
                 FROM messages m JOIN users u ON u.id = m.author_id
                 WHERE m.channel_id = ?1 ORDER BY m.id",
            )
            .map_err(sql)?;
        let rows = stmt
            .query_map([cid], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, String>(6)?,
                ))
            })
            .map_err(sql)?;
        for row in rows {
            let (id, content, ts, edited, reply_to, uid, uname) = row.map_err(sql)?;
            let reacts: Vec<Value> = reactions
                .remove(&id)
                .unwrap_or_default()
                .into_iter()
                .map(|(emoji, users)| {
                    json!({
                        "emoji": {"id": "", "name": emoji, "code": emoji, "isAnimated": false, "imageUrl": ""},
                        "count": users.len(),
                        "users": users,
                    })
                })
                .collect();
            let mut m = json!({
                "id": id.to_string(),
                "type": if reply_to.is_some() { "Reply" } else { "Default" },
                "timestamp": iso8601(ts),
                "timestampEdited": edited.map(iso8601),
                "callEndedTimestamp": null,
                "isPinned": false,
                "content": content,
                "author": user(uid, &uname),
                "attachments": atts.remove(&id).unwrap_or_default(),
                "embeds": [],
                "stickers": [],
                "reactions": reacts,
                "mentions": [],
            });
            if let Some(r) = reply_to {
                m["reference"] = json!({"messageId": r.to_string(), "channelId": cid.to_string(), "guildId": "0"});
            }
            messages.push(m);
        }
        let doc = json!({
            "guild": {"id": "0", "name": "mini-discord", "iconUrl": ""},
            "channel": {"id": cid.to_string(), "type": "GuildTextChat", "categoryId": "", "category": "", "name": name, "topic": topic},
            "dateRange": {"after": null, "before": null},
            "exportedAt": iso8601(crate::store::now_ms()),
            "messageCount": messages.len(),
            "messages": messages,
        });
        total += doc["messageCount"].as_u64().unwrap_or(0);
        let bytes = serde_json::to_vec_pretty(&doc).map_err(|e| e.to_string())?;
        fs::write(out.join(&file_name), bytes)
            .map_err(|e| format!("cannot write {file_name}: {e}"))?;
    }
    let _ = conn.execute_batch("COMMIT");
    Ok(format!(
        "export: {} channels, {total} messages into {}",
        channels.len(),
        out.display()
    ))
}

fn user(id: i64, name: &str) -> Value {
    json!({
        "id": id.to_string(), "name": name, "discriminator": "0000", "nickname": name,
        "color": null, "isBot": false, "roles": [], "avatarUrl": "",
    })
}

/// A name safe as one path component: anything but `[A-Za-z0-9._-]` becomes `_`, and a
/// leading dot too (no hidden files, no `..`).
fn safe(s: &str) -> String {
    let mut out = super::ascii_only(s, "._-");
    if out.starts_with('.') || out.is_empty() {
        out.insert(0, '_');
    }
    out
}

/// Unix milliseconds as `2026-12-01T22:33:45.123+00:00` (DiscordChatExporter's form).
fn iso8601(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}
