//! `import-discord EXPORT... [--media DIR]`: DiscordChatExporter JSON exports into a stopped
//! server's `DATA_DIR`.
//!
//! Order of work, and why:
//! 1. Take the `DATA_DIR` lock (`lock.rs`): a running server is the database's one writer
//!    and holds its state in memory, so we refuse while it runs (and it refuses to start
//!    while we import).
//! 2. Validate every file whole, streaming (`dce.rs`), before writing anything: a bad file
//!    is refused with its name and the place, and nothing is imported. This pass also learns
//!    whether a file's messages are already in timestamp order (they are, as
//!    DiscordChatExporter writes them).
//! 3. Write each file in batches of [`BATCH`] messages per transaction, in timestamp order
//!    (a file that is not in order is first staged in a temporary table and read back
//!    sorted). Every Discord id we turned into a row is kept in the migration-6 mapping
//!    tables in the same transaction as the row, so an import cut off midway (kill -9)
//!    resumes where it stopped, and a second run or an overlapping export adds nothing twice.
//!
//! Message ids: ours, from SQLite's AUTOINCREMENT, never the snowflakes. The server relies
//! on "ids increase with time in a channel" (history pages, unread markers, the router's
//! last ids); inserting in timestamp order into a channel the import made keeps that true.
//! An import into a channel that already has newer messages (an older export imported
//! after a newer one) appends: ids then follow import order, not timestamps. Import the
//! oldest export first.
//!
//! Authors become accounts without a password (`password_hash` empty, which no password
//! verifies): Discord names made valid and unique, the nickname kept in `discord_users` and
//! as `display_name` where the schema has one. `POST /api/admin/merge-account` hands such
//! an account's history to a real one.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension};

use crate::files::blob::BlobStore;
use crate::files::sniff::Kind;
use crate::store::attachments::{self, NewAttachment};

pub mod dce;

/// Messages per transaction: large enough that commits are not the cost, small enough that
/// a killed import loses little and a batch's undo log stays small.
const BATCH: usize = 5_000;
/// How often the progress line is redrawn on a terminal.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);
/// The longest a stored name may be (validate::username's rule).
const MAX_NAME: usize = 32;
/// Staged rows read back per page when a file is not in timestamp order.
const STAGE_PAGE: usize = 1_000;

/// What an import did, for its last line.
#[derive(Debug, Default)]
struct Totals {
    imported: u64,
    already: u64,
    accounts: u64,
    files: u64,
    missing: u64,
}

/// One file after validation.
struct Checked {
    path: PathBuf,
    head: dce::Head,
    in_order: bool,
}

/// Runs the whole import; `Ok` is the summary line.
pub fn import_discord(
    data_dir: &Path,
    inputs: &[PathBuf],
    media: Option<&Path>,
    max_file: u64,
) -> Result<String, String> {
    if !data_dir.join("chat.db").is_file() {
        return Err(format!(
            "no database at {}: start the server once and create the admin account first",
            data_dir.join("chat.db").display()
        ));
    }
    let _lock = super::lock::take(data_dir, "import-discord")?;
    let files = expand(inputs)?;
    if files.is_empty() {
        return Err("no .json files to import".into());
    }
    let mut progress = Progress::new();
    let mut checked = Vec::new();
    for path in files {
        let mut last = None;
        let mut in_order = true;
        let label = path.display().to_string();
        let head = dce::scan(&path, |i, m| {
            let key = m.validate()?;
            if last.is_some_and(|l| key < l) {
                in_order = false;
            }
            last = Some(key);
            progress.tick("checking", &label, i as u64 + 1, None);
            Ok(())
        })?;
        progress.clear();
        checked.push(Checked {
            path,
            head,
            in_order,
        });
    }

    let conn = crate::store::open_offline(data_dir)?;
    // The staging table of a file that is not in timestamp order is as big as the file:
    // on disk, not in memory (the server's connection keeps temporaries in memory).
    conn.pragma_update(None, "temp_store", "FILE")
        .map_err(sql)?;
    let admins: i64 = conn
        .query_row("SELECT COUNT(*) FROM users WHERE admin = 1", [], |r| {
            r.get(0)
        })
        .map_err(sql)?;
    if admins == 0 {
        // Otherwise the first imported author would take the place of the first account,
        // and nobody could register as the admin.
        return Err(
            "this DATA_DIR has no admin account yet: start the server, create the first account, then import"
                .into(),
        );
    }
    let blobs =
        BlobStore::open(data_dir).map_err(|e| format!("cannot open the file store: {e}"))?;
    let has_display_name = conn
        .prepare("SELECT 1 FROM pragma_table_info('users') WHERE name = 'display_name'")
        .and_then(|mut s| s.exists([]))
        .map_err(sql)?;
    let mut w = Writer {
        conn: &conn,
        blobs,
        media: PathBuf::new(),
        max_file,
        channel_id: 0,
        users: HashMap::new(),
        has_display_name,
        in_batch: 0,
        totals: Totals::default(),
    };
    let n_files = checked.len();
    for c in checked {
        let before = (w.totals.imported, w.totals.already);
        w.media = match media {
            Some(m) => m.to_path_buf(),
            None => c.path.parent().unwrap_or(Path::new(".")).to_path_buf(),
        };
        import_file(&mut w, &c, &mut progress)?;
        progress.clear();
        println!(
            "{}: {} messages imported, {} already there",
            c.path.display(),
            w.totals.imported - before.0,
            w.totals.already - before.1
        );
    }
    let t = &w.totals;
    Ok(format!(
        "import-discord: {n_files} files, {} messages imported ({} already there), {} accounts created, {} files stored, {} files missing",
        t.imported, t.already, t.accounts, t.files, t.missing
    ))
}

/// The `.json` files named, a directory standing for the `.json` files directly in it (in
/// name order, so a run is repeatable).
fn expand(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|f| f.is_file() && f.extension().is_some_and(|x| x == "json"))
                .collect();
            found.sort();
            out.extend(found);
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(format!("{}: no such file or directory", p.display()));
        }
    }
    Ok(out)
}

fn import_file(w: &mut Writer, c: &Checked, progress: &mut Progress) -> Result<(), String> {
    let label = c.path.display().to_string();
    let total = c.head.messages;
    w.conn.execute_batch("BEGIN IMMEDIATE").map_err(sql)?;
    let r = (|| {
        let channel = c.head.channel.as_ref().expect("validated");
        w.channel_id = w.channel_for(channel)?;
        let mut done = 0;
        if c.in_order {
            dce::scan(&c.path, |_, m| {
                w.message(m)?;
                done += 1;
                progress.tick("importing", &label, done, Some(total));
                Ok(())
            })?;
        } else {
            w.conn
                .execute_batch(
                    "CREATE TEMP TABLE IF NOT EXISTS import_stage (ts INTEGER, sf INTEGER, body TEXT);
                     DELETE FROM import_stage;
                     CREATE INDEX IF NOT EXISTS import_stage_order ON import_stage(ts, sf);",
                )
                .map_err(sql)?;
            dce::scan(&c.path, |_, m| {
                let (ts, sf) = m.validate()?;
                let body = serde_json::to_string(&m).map_err(|e| e.to_string())?;
                w.conn
                    .prepare_cached("INSERT INTO import_stage (ts, sf, body) VALUES (?1, ?2, ?3)")
                    .and_then(|mut s| s.execute(params![ts, sf as i64, body]))
                    .map_err(sql)?;
                Ok(())
            })?;
            let mut after = (i64::MIN, i64::MIN);
            loop {
                let page: Vec<(i64, i64, String)> = w
                    .conn
                    .prepare_cached(
                        "SELECT ts, sf, body FROM import_stage WHERE (ts, sf) > (?1, ?2)
                         ORDER BY ts, sf LIMIT ?3",
                    )
                    .and_then(|mut s| {
                        s.query_map(params![after.0, after.1, STAGE_PAGE as i64], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                        })?
                        .collect()
                    })
                    .map_err(sql)?;
                let Some(last) = page.last() else { break };
                after = (last.0, last.1);
                for (_, _, body) in page {
                    let m: dce::Message = serde_json::from_str(&body).map_err(|e| e.to_string())?;
                    w.message(m)?;
                    done += 1;
                    progress.tick("importing", &label, done, Some(total));
                }
            }
            w.conn
                .execute_batch("DELETE FROM import_stage")
                .map_err(sql)?;
        }
        Ok::<(), String>(())
    })();
    match r {
        Ok(()) => w.conn.execute_batch("COMMIT").map_err(sql),
        Err(e) => {
            let _ = w.conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

struct Writer<'a> {
    conn: &'a Connection,
    blobs: BlobStore,
    /// Where this file's relative attachment URLs are resolved.
    media: PathBuf,
    max_file: u64,
    channel_id: i64,
    /// Discord user id → our user id, for the authors seen so far (one entry per person).
    users: HashMap<String, i64>,
    has_display_name: bool,
    in_batch: usize,
    totals: Totals,
}

impl Writer<'_> {
    /// The channel an earlier import of this Discord channel made, or a new text channel.
    fn channel_for(&mut self, c: &dce::Channel) -> Result<i64, String> {
        if let Some(id) = self
            .conn
            .query_row(
                "SELECT channel_id FROM discord_channels WHERE discord_id = ?1",
                [&c.id],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql)?
        {
            return Ok(id);
        }
        let base = channel_name(c.name.as_deref().unwrap_or(""));
        let name = self.unique("channels", "name", &base.to_ascii_lowercase())?;
        let topic = clean_topic(c.topic.as_deref().unwrap_or(""));
        self.conn
            .execute(
                "INSERT INTO channels (name, kind, topic, created_ts) VALUES (?1, 'text', ?2, ?3)",
                params![name, topic, crate::store::now_ms()],
            )
            .map_err(sql)?;
        let id = self.conn.last_insert_rowid();
        self.conn
            .execute(
                "INSERT INTO discord_channels (discord_id, channel_id) VALUES (?1, ?2)",
                params![c.id, id],
            )
            .map_err(sql)?;
        Ok(id)
    }

    /// `base`, or `base-2`, `base-3`… (cut to fit), whichever `table.column` (compared in
    /// lower case) does not have yet.
    fn unique(&self, table: &str, column: &str, base: &str) -> Result<String, String> {
        let mut st = self
            .conn
            .prepare_cached(&format!("SELECT 1 FROM {table} WHERE {column} = ?1"))
            .map_err(sql)?;
        for n in 1.. {
            let candidate = if n == 1 {
                base.to_string()
            } else {
                let suffix = format!("-{n}");
                format!("{}{suffix}", cut(base, MAX_NAME - suffix.len()))
            };
            if !st.exists([candidate.to_ascii_lowercase()]).map_err(sql)? {
                return Ok(candidate);
            }
        }
        unreachable!("some suffix is free")
    }

    /// Our account for a Discord user: from the mapping, or a new one without a password.
    fn user_for(&mut self, a: &dce::Author) -> Result<i64, String> {
        if let Some(id) = self.users.get(&a.id) {
            return Ok(*id);
        }
        let found: Option<i64> = self
            .conn
            .prepare_cached("SELECT user_id FROM discord_users WHERE discord_id = ?1")
            .and_then(|mut s| s.query_row([&a.id], |r| r.get(0)).optional())
            .map_err(sql)?;
        let id = match found {
            Some(id) => id,
            None => self.new_user(a)?,
        };
        self.users.insert(a.id.clone(), id);
        Ok(id)
    }

    fn new_user(&mut self, a: &dce::Author) -> Result<i64, String> {
        let name = a.name.as_deref().unwrap_or("");
        let username = self.unique("users", "username_lc", &username(name))?;
        self.conn
            .prepare_cached(
                "INSERT INTO users (username, username_lc, password_hash, admin, created_ts)
                 VALUES (?1, ?2, '', 0, ?3)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    username,
                    username.to_ascii_lowercase(),
                    crate::store::now_ms()
                ])
            })
            .map_err(sql)?;
        let id = self.conn.last_insert_rowid();
        let nickname = a
            .nickname
            .as_deref()
            .filter(|n| !n.is_empty() && *n != name);
        self.conn
            .prepare_cached(
                "INSERT INTO discord_users (discord_id, user_id, name, nickname) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![a.id, id, name, nickname]))
            .map_err(sql)?;
        if self.has_display_name {
            let shown = nickname.unwrap_or(name);
            if !shown.is_empty() && shown != username {
                self.conn
                    .execute(
                        "UPDATE users SET display_name = ?1 WHERE id = ?2",
                        params![cut(shown, MAX_NAME), id],
                    )
                    .map_err(sql)?;
            }
        }
        if let Some(path) = a
            .avatar_url
            .as_deref()
            .and_then(|u| local_file(&self.media, u))
        {
            if let Some(att) = self.store_file(&path, "avatar", id, true)? {
                attachments::set_avatar(self.conn, &self.blobs, id, &att).map_err(api)?;
            }
        }
        self.totals.accounts += 1;
        Ok(id)
    }

    /// Stores a local file through the blob store as an upload would (metadata stripped,
    /// hashed, images measured and thumbnailed) and inserts its attachment row. `None` when
    /// it cannot be stored (too large; for an avatar, not an image).
    fn store_file(
        &mut self,
        path: &Path,
        filename: &str,
        uploader: i64,
        avatar: bool,
    ) -> Result<Option<String>, String> {
        let Ok(mut file) = std::fs::File::open(path) else {
            return Ok(None);
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let upload = match self.blobs.store(&mut file, len, self.max_file) {
            Ok(u) => u,
            Err(crate::files::FileError::TooLarge { .. } | crate::files::FileError::Empty) => {
                return Ok(None)
            }
            Err(e) => return Err(format!("{}: cannot store: {e}", path.display())),
        };
        let mut kind = upload.stored.kind;
        let mut image = None;
        if kind.is_image() {
            match crate::files::images::analyze(upload.path()) {
                Some(info) => {
                    self.blobs
                        .put_thumb(&upload.stored.hash, &info.thumb)
                        .map_err(|e| format!("cannot store a thumbnail: {e}"))?;
                    image = Some((info.width, info.height));
                }
                None => kind = Kind::Other,
            }
        }
        if avatar && image.is_none() {
            return Ok(None);
        }
        let name =
            crate::files::names::sanitize_filename(filename).unwrap_or_else(|| "file".into());
        let new = NewAttachment {
            id: attachments::new_id(),
            uploader_id: uploader,
            hash: upload.stored.hash.clone(),
            filename: name,
            kind,
            size: upload.stored.size,
            image,
            avatar,
        };
        attachments::insert(self.conn, &self.blobs, upload.path(), &new).map_err(api)?;
        self.totals.files += 1;
        Ok(Some(new.id))
    }

    /// Imports one (validated) message unless an earlier run did.
    fn message(&mut self, m: dce::Message) -> Result<(), String> {
        let known = self
            .conn
            .prepare_cached("SELECT 1 FROM discord_messages WHERE discord_id = ?1")
            .and_then(|mut s| s.exists([&m.id]))
            .map_err(sql)?;
        if known {
            self.totals.already += 1;
            return Ok(());
        }
        let (ts, _) = m.validate()?;
        let author = self.user_for(&m.author)?;
        let mut stored = Vec::new();
        let mut notes = Vec::new();
        for a in &m.attachments {
            let name = a.file_name.clone().unwrap_or_else(|| "file".into());
            let local = a.url.as_deref().and_then(|u| local_file(&self.media, u));
            match local {
                Some(path) => match self.store_file(&path, &name, author, false)? {
                    Some(id) => stored.push(id),
                    None => notes.push(format!("[file not imported (too large): {name}]")),
                },
                None => {
                    self.totals.missing += 1;
                    notes.push(format!("[file not imported (not in the export): {name}]"));
                }
            }
        }
        let mut content = m.content.clone().unwrap_or_default().trim().to_string();
        for s in &m.stickers {
            notes.push(format!("[sticker: {}]", s.name.as_deref().unwrap_or("?")));
        }
        for n in notes {
            if !content.is_empty() {
                content.push('\n');
            }
            content.push_str(&n);
        }
        if content.is_empty() && stored.is_empty() {
            content = "[no text]".into();
        }
        let reply_to: Option<i64> = match (&m.kind, &m.reference) {
            (Some(k), Some(r)) if k == "Reply" => match &r.message_id {
                Some(target) => self
                    .conn
                    .prepare_cached("SELECT message_id FROM discord_messages WHERE discord_id = ?1")
                    .and_then(|mut s| s.query_row([target], |r| r.get(0)).optional())
                    .map_err(sql)?,
                None => None,
            },
            _ => None,
        };
        self.conn
            .prepare_cached(
                "INSERT INTO messages (channel_id, author_id, content, ts, edited_ts, reply_to)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    self.channel_id,
                    author,
                    content,
                    ts,
                    m.edited_ms(),
                    reply_to
                ])
            })
            .map_err(sql)?;
        let id = self.conn.last_insert_rowid();
        self.conn
            .prepare_cached(
                "INSERT INTO discord_messages (discord_id, message_id, discord_pinned) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut s| s.execute(params![m.id, id, m.is_pinned as i64]))
            .map_err(sql)?;
        if m.is_pinned {
            // Discord's export does not say who pinned it: the author stands in, and the
            // message's own time is the pin's.
            self.conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO pins (message_id, channel_id, by_id, ts) VALUES (?1, ?2, ?3, ?4)",
                )
                .and_then(|mut s| s.execute(params![id, self.channel_id, author, ts]))
                .map_err(sql)?;
        }
        for att in stored {
            self.conn
                .prepare_cached("UPDATE attachments SET message_id = ?1 WHERE id = ?2")
                .and_then(|mut s| s.execute(params![id, att]))
                .map_err(sql)?;
        }
        for r in &m.reactions {
            let emoji = reaction_emoji(&r.emoji);
            for u in &r.users {
                let uid = self.user_for(u)?;
                self.conn
                    .prepare_cached(
                        "INSERT OR IGNORE INTO reactions (message_id, emoji, user_id, ts) VALUES (?1, ?2, ?3, ?4)",
                    )
                    .and_then(|mut s| s.execute(params![id, emoji, uid, ts]))
                    .map_err(sql)?;
            }
        }
        self.totals.imported += 1;
        self.in_batch += 1;
        if self.in_batch >= BATCH {
            self.conn
                .execute_batch("COMMIT; BEGIN IMMEDIATE")
                .map_err(sql)?;
            self.in_batch = 0;
        }
        Ok(())
    }
}

/// A Unicode emoji as it is; a custom Discord emoji (which we cannot show) as `:name:`.
fn reaction_emoji(e: &dce::Emoji) -> String {
    let name = e.name.as_deref().unwrap_or("?");
    let custom = e.id.as_deref().is_some_and(|id| !id.is_empty());
    if !custom && crate::validate::emoji(name).is_ok() {
        return name.to_string();
    }
    let shortcode: String = name
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '_')
        .take(crate::validate::MAX_EMOJI_BYTES / 4 - 2)
        .collect();
    format!(":{shortcode}:")
}

/// Where a relative attachment URL of the export is on disk, if it is: tried as written, with
/// percent-escapes decoded, and with Windows separators. Remote URLs are never fetched.
fn local_file(media: &Path, url: &str) -> Option<PathBuf> {
    if url.is_empty() || url.contains("://") {
        return None;
    }
    let mut candidates = vec![url.to_string(), url.replace('\\', "/")];
    if let Some(d) = crate::http::percent_decode(url) {
        candidates.push(d);
    }
    candidates
        .into_iter()
        .map(|c| media.join(c))
        .find(|p| p.is_file())
}

/// A Discord name as one of ours: `[A-Za-z0-9_.-]`, 2–32 characters (others become `_`).
fn username(discord: &str) -> String {
    let mut s = super::ascii_only(discord, "_.-");
    if s.trim_matches('_').is_empty() {
        s = "user".into();
    }
    while s.len() < 2 {
        s.push('_');
    }
    cut(&s, MAX_NAME).to_string()
}

/// A Discord channel name as one of ours: `[a-z0-9_-]`, 1–32 characters.
fn channel_name(discord: &str) -> String {
    let mut s = String::new();
    for c in discord.to_lowercase().chars() {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
            c
        } else {
            '-'
        };
        if !(c == '-' && s.ends_with('-')) {
            s.push(c);
        }
    }
    let s = s.trim_matches('-');
    if s.is_empty() {
        "imported".into()
    } else {
        cut(s, MAX_NAME).to_string()
    }
}

fn clean_topic(t: &str) -> String {
    t.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(crate::validate::MAX_TOPIC_CHARS)
        .collect::<String>()
        .trim()
        .to_string()
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn sql(e: rusqlite::Error) -> String {
    format!("database write failed: {e}")
}

fn api(e: crate::error::ApiError) -> String {
    format!("database write failed: {}", e.message)
}

/// A progress line with messages/s on a terminal (stderr, redrawn in place); nothing when
/// not a terminal, where each file gets one plain line when it is done instead.
struct Progress {
    tty: bool,
    started: Instant,
    /// When the line was last drawn; `None`: draw at the next tick (each phase shows at once).
    last: Option<Instant>,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
            started: Instant::now(),
            last: None,
        }
    }

    fn tick(&mut self, what: &str, file: &str, done: u64, total: Option<u64>) {
        if !self.tty || self.last.is_some_and(|l| l.elapsed() < PROGRESS_EVERY) {
            return;
        }
        self.last = Some(Instant::now());
        let rate = done as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        let bar = match total {
            Some(t) if t > 0 => {
                let filled = (done * 20 / t).min(20) as usize;
                format!(
                    " [{}{}] {done}/{t}",
                    "#".repeat(filled),
                    ".".repeat(20 - filled)
                )
            }
            _ => format!(" {done}"),
        };
        eprint!("\r\x1b[K{what} {file}:{bar} messages, {rate:.0}/s");
    }

    fn clear(&mut self) {
        if self.tty {
            eprint!("\r\x1b[K");
        }
        self.started = Instant::now();
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discord_names_become_valid_ones() {
        assert_eq!(username("alice"), "alice");
        assert_eq!(username("Jöhn Doe"), "J_hn_Doe");
        assert_eq!(username("x"), "x_");
        assert_eq!(username("日本"), "user");
        assert_eq!(username(&"a".repeat(40)).len(), 32);
        for n in ["alice", "Jöhn Doe", "x", "日本", "", "a-b.c_d"] {
            assert!(crate::validate::username(&username(n)).is_ok(), "{n}");
        }
        assert_eq!(channel_name("💬 General Chat!"), "general-chat");
        assert_eq!(channel_name("🎉"), "imported");
        for n in ["General", "a b", "💬", &"x".repeat(50)] {
            assert!(
                crate::validate::channel_name(&channel_name(n)).is_ok(),
                "{n}"
            );
        }
    }

    #[test]
    fn custom_emoji_become_shortcodes() {
        let e = |id: Option<&str>, name: &str| dce::Emoji {
            id: id.map(String::from),
            name: Some(name.into()),
        };
        assert_eq!(reaction_emoji(&e(None, "👍")), "👍");
        assert_eq!(reaction_emoji(&e(Some(""), "🎉")), "🎉");
        assert_eq!(
            reaction_emoji(&e(Some("123"), "pepe_hands")),
            ":pepe_hands:"
        );
        assert_eq!(reaction_emoji(&e(None, "not an emoji")), ":notanemoji:");
    }
}
