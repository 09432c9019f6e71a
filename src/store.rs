//! The store thread: the one owner of the one SQLite connection (`DATA_DIR/chat.db`).
//!
//! Other threads never touch SQLite. They hand the store a job — a closure that runs on the
//! store thread against the connection — through a bounded crossbeam channel, and wait on
//! their own `bounded(1)` reply channel. The store thread takes every job that is queued
//! (group commit), runs each inside its own SAVEPOINT (one job's error never undoes
//! another's work) within a single transaction, COMMITs once, and only then answers each
//! job. An answer is therefore a promise that the write is durable: with
//! `synchronous=FULL` (the default) even a power cut cannot lose it.
//!
//! Jobs may also carry an after-commit hook (`call_then`); the store runs the hooks in
//! commit order, which is how new messages reach the router in id order.
//!
//! The schema and every SQL statement live here, next to the migrations keyed on
//! `PRAGMA user_version`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

use crossbeam_channel::{bounded, Receiver, Sender};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::error::{ApiError, ApiResult};
use crate::metrics::METRICS;

/// At most this many jobs share one transaction by default (`STORE_BATCH`): big enough to
/// amortise the fsync of COMMIT under load, small enough that one batch never holds the
/// answers back for long. `STORE_BATCH=1` is one transaction per job, the baseline that
/// `bench/` compares group commit against.
pub const DEFAULT_BATCH: usize = 512;
/// Callers block (their own thread only) when this many jobs are waiting.
const QUEUE_BOUND: usize = 8192;

type Done = Box<dyn FnOnce(bool) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> Done + Send>;

/// A handle to the store thread; cheap to clone.
#[derive(Clone)]
pub struct Store {
    jobs: Sender<Job>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub admin: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Channel {
    pub name: String,
    pub kind: String,
    pub topic: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Message {
    pub id: i64,
    pub channel: String,
    pub author: String,
    pub content: String,
    pub ts: i64,
    pub edited_ts: Option<i64>,
    pub reply_to: Option<i64>,
    pub reactions: BTreeMap<String, Vec<String>>,
}

/// Which page of history to read.
#[derive(Debug, Clone, Copy)]
pub enum Page {
    Latest,
    Before(i64),
    After(i64),
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Store {
    /// Opens (creating and migrating) the database and starts the store thread.
    pub fn open(data_dir: &Path, synchronous: &str, max_batch: usize) -> Result<Store, String> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| format!("cannot create DATA_DIR {}: {e}", data_dir.display()))?;
        let path = data_dir.join("chat.db");
        let conn =
            Connection::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        configure(&conn, synchronous)
            .map_err(|e| format!("cannot configure {}: {e}", path.display()))?;
        migrate(&conn).map_err(|e| format!("cannot migrate {}: {e}", path.display()))?;
        let (tx, rx) = bounded::<Job>(QUEUE_BOUND);
        std::thread::Builder::new()
            .name("store".into())
            .spawn(move || run(conn, rx, max_batch.max(1)))
            .map_err(|e| format!("cannot start the store thread: {e}"))?;
        Ok(Store { jobs: tx })
    }

    /// Runs `f` on the store thread inside the next transaction; answers after COMMIT.
    pub fn call<R, F>(&self, f: F) -> ApiResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> ApiResult<R> + Send + 'static,
    {
        self.call_then(f, |_| {})
    }

    /// Like `call`, and runs `after_commit` on the store thread right after a successful
    /// COMMIT, in commit order, before the caller gets its answer.
    pub fn call_then<R, F, H>(&self, f: F, after_commit: H) -> ApiResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> ApiResult<R> + Send + 'static,
        H: FnOnce(&R) + Send + 'static,
    {
        let (reply_tx, reply_rx) = bounded::<ApiResult<R>>(1);
        self.submit(f, move |result| {
            if let Ok(r) = &result {
                after_commit(r);
            }
            let _ = reply_tx.send(result);
        })?;
        reply_rx.recv().map_err(|_| ApiError::internal())?
    }

    /// Queues `f` for the next transaction and returns at once (blocking only while the
    /// queue is full). `done` runs on the store thread after the COMMIT, in commit order,
    /// with the job's result; it must not block. A WebSocket reader uses this so that it can
    /// go on reading while its writes wait for their group commit: a reader that waited for
    /// each commit would cap a batch at one job per connection.
    pub fn submit<R, F, D>(&self, f: F, done: D) -> ApiResult<()>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> ApiResult<R> + Send + 'static,
        D: FnOnce(ApiResult<R>) + Send + 'static,
    {
        let job: Job = Box::new(move |conn: &Connection| {
            let result = in_savepoint(conn, f);
            Box::new(move |committed: bool| {
                done(match result {
                    Ok(r) if committed => Ok(r),
                    Ok(_) => Err(ApiError::internal()),
                    Err(e) => Err(e),
                })
            })
        });
        self.jobs.send(job).map_err(|_| ApiError::internal())
    }
}

fn in_savepoint<R>(conn: &Connection, f: impl FnOnce(&Connection) -> ApiResult<R>) -> ApiResult<R> {
    // Cached statements: these run twice per job, so they are parsed once, not every time.
    conn.prepare_cached("SAVEPOINT job")?.execute([])?;
    // A panic inside a job must not kill the store thread (and with it every write).
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn))).unwrap_or_else(|_| {
            log::error!("a store job panicked");
            Err(ApiError::internal())
        });
    if result.is_err() {
        conn.prepare_cached("ROLLBACK TO job")?.execute([])?;
    }
    conn.prepare_cached("RELEASE job")?.execute([])?;
    result
}

fn run(conn: Connection, jobs: Receiver<Job>, max_batch: usize) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match jobs.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let began = conn.execute_batch("BEGIN IMMEDIATE").is_ok();
        let dones: Vec<Done> = batch.into_iter().map(|job| job(&conn)).collect();
        let committed = began && conn.execute_batch("COMMIT").is_ok();
        if !committed {
            log::error!("store commit failed; answering the batch with errors");
            let _ = conn.execute_batch("ROLLBACK");
        }
        METRICS.observe_batch(dones.len(), started.elapsed());
        for done in dones {
            done(committed);
        }
    }
    log::info!("store thread stopped");
}

fn configure(conn: &Connection, synchronous: &str) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// Each entry moves the schema from version `i` to `i + 1`; never edit a released entry.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    r#"
    CREATE TABLE users (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        username TEXT NOT NULL,
        username_lc TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        admin INTEGER NOT NULL DEFAULT 0,
        created_ts INTEGER NOT NULL
    );
    CREATE TABLE sessions (
        token_hash BLOB PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        created_ts INTEGER NOT NULL,
        expires_ts INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE invites (
        code TEXT PRIMARY KEY,
        created_by INTEGER NOT NULL REFERENCES users(id),
        created_ts INTEGER NOT NULL,
        expires_ts INTEGER NOT NULL,
        used_by INTEGER REFERENCES users(id)
    ) WITHOUT ROWID;
    CREATE TABLE channels (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL CHECK (kind IN ('text', 'voice')),
        topic TEXT NOT NULL DEFAULT '',
        created_ts INTEGER NOT NULL
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
        author_id INTEGER NOT NULL REFERENCES users(id),
        content TEXT NOT NULL,
        ts INTEGER NOT NULL,
        edited_ts INTEGER,
        reply_to INTEGER,
        nonce TEXT
    );
    CREATE INDEX messages_by_channel ON messages(channel_id, id);
    CREATE UNIQUE INDEX messages_by_nonce ON messages(author_id, nonce) WHERE nonce IS NOT NULL;
    CREATE TABLE reactions (
        message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        emoji TEXT NOT NULL,
        user_id INTEGER NOT NULL REFERENCES users(id),
        ts INTEGER NOT NULL,
        PRIMARY KEY (message_id, emoji, user_id)
    ) WITHOUT ROWID;
    CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages', content_rowid='id');
    CREATE TRIGGER messages_ai AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
    END;
    CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
    END;
    CREATE TRIGGER messages_au AFTER UPDATE OF content ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
        INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
    END;
    INSERT INTO channels (name, kind, topic, created_ts) VALUES ('general', 'text', '', 0);
    INSERT INTO channels (name, kind, topic, created_ts) VALUES ('lounge', 'voice', '', 0);
    "#,
];

fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        log::info!("database migrated to schema version {}", i + 1);
    }
    Ok(())
}

/// `mini-discord check-db PATH`: prints SQLite's `PRAGMA integrity_check` answer (`ok` when
/// the file is sound) and returns the exit code (0 only for `ok`).
pub fn check_db(path: &Path) -> i32 {
    let result = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
        .and_then(|c| c.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0)));
    match result {
        Ok(s) => {
            println!("{s}");
            i32::from(s != "ok")
        }
        Err(e) => {
            println!("cannot check {}: {e}", path.display());
            1
        }
    }
}

// ---------------------------------------------------------------------------------------
// Queries. Each runs on the store thread, inside the batch transaction.
// ---------------------------------------------------------------------------------------

fn user_row(r: &rusqlite::Row) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        admin: r.get::<_, i64>(2)? != 0,
    })
}

pub fn health(conn: &Connection) -> ApiResult<()> {
    conn.query_row("SELECT 1", [], |_| Ok(()))?;
    Ok(())
}

pub fn user_count(conn: &Connection) -> ApiResult<i64> {
    Ok(conn.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?)
}

pub fn list_users(conn: &Connection) -> ApiResult<Vec<User>> {
    let mut st =
        conn.prepare_cached("SELECT id, username, admin FROM users ORDER BY username_lc")?;
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
    })
}

/// Marks an invite used by `user_id`; `Forbidden` when it is unknown, used or expired.
pub fn use_invite(conn: &Connection, code: &str, user_id: i64) -> ApiResult<()> {
    let n = conn
        .prepare_cached("UPDATE invites SET used_by = ?1 WHERE code = ?2 AND used_by IS NULL AND expires_ts > ?3")?
        .execute(params![user_id, code, now_ms()])?;
    if n == 1 {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "that invite is not valid (unknown, used or expired)",
        ))
    }
}

pub fn insert_invite(conn: &Connection, code: &str, by: i64, expires_ts: i64) -> ApiResult<()> {
    conn.prepare_cached(
        "INSERT INTO invites (code, created_by, created_ts, expires_ts) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![code, by, now_ms(), expires_ts])?;
    Ok(())
}

/// The user and their password hash, by name ignoring case.
pub fn user_for_login(conn: &Connection, username: &str) -> ApiResult<Option<(User, String)>> {
    let lc = username.to_ascii_lowercase();
    Ok(conn
        .prepare_cached(
            "SELECT id, username, admin, password_hash FROM users WHERE username_lc = ?1",
        )?
        .query_row(params![lc], |r| Ok((user_row(r)?, r.get::<_, String>(3)?)))
        .optional()?)
}

pub fn insert_session(
    conn: &Connection,
    token_hash: &[u8],
    user_id: i64,
    expires_ts: i64,
) -> ApiResult<()> {
    conn.prepare_cached("INSERT INTO sessions (token_hash, user_id, created_ts, expires_ts) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![token_hash, user_id, now_ms(), expires_ts])?;
    Ok(())
}

pub fn session_user(conn: &Connection, token_hash: &[u8]) -> ApiResult<Option<User>> {
    Ok(conn
        .prepare_cached(
            "SELECT u.id, u.username, u.admin FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = ?1 AND s.expires_ts > ?2",
        )?
        .query_row(params![token_hash, now_ms()], user_row)
        .optional()?)
}

pub fn delete_session(conn: &Connection, token_hash: &[u8]) -> ApiResult<bool> {
    let n = conn
        .prepare_cached("DELETE FROM sessions WHERE token_hash = ?1")?
        .execute(params![token_hash])?;
    conn.prepare_cached("DELETE FROM sessions WHERE expires_ts <= ?1")?
        .execute(params![now_ms()])?;
    Ok(n == 1)
}

pub fn list_channels(conn: &Connection) -> ApiResult<Vec<Channel>> {
    let mut st = conn.prepare_cached("SELECT name, kind, topic FROM channels ORDER BY kind, id")?;
    let rows = st
        .query_map([], |r| {
            Ok(Channel {
                name: r.get(0)?,
                kind: r.get(1)?,
                topic: r.get(2)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn channel(conn: &Connection, name: &str) -> ApiResult<Option<(i64, Channel)>> {
    Ok(conn
        .prepare_cached("SELECT id, name, kind, topic FROM channels WHERE name = ?1")?
        .query_row(params![name], |r| {
            Ok((
                r.get(0)?,
                Channel {
                    name: r.get(1)?,
                    kind: r.get(2)?,
                    topic: r.get(3)?,
                },
            ))
        })
        .optional()?)
}

/// The id of a text channel: `NotFound` if unknown, `BadRequest` if it is a voice channel.
pub fn text_channel_id(conn: &Connection, name: &str) -> ApiResult<i64> {
    match channel(conn, name)? {
        None => Err(ApiError::not_found(format!("no channel named {name:?}"))),
        Some((_, c)) if c.kind != "text" => Err(ApiError::bad_request(format!(
            "{name:?} is a voice channel"
        ))),
        Some((id, _)) => Ok(id),
    }
}

pub fn insert_channel(conn: &Connection, c: &Channel) -> ApiResult<()> {
    if channel(conn, &c.name)?.is_some() {
        return Err(ApiError::conflict(format!(
            "a channel named {:?} exists",
            c.name
        )));
    }
    conn.prepare_cached(
        "INSERT INTO channels (name, kind, topic, created_ts) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![c.name, c.kind, c.topic, now_ms()])?;
    Ok(())
}

pub fn delete_channel(conn: &Connection, name: &str) -> ApiResult<Channel> {
    let Some((id, c)) = channel(conn, name)? else {
        return Err(ApiError::not_found(format!("no channel named {name:?}")));
    };
    conn.prepare_cached("DELETE FROM channels WHERE id = ?1")?
        .execute(params![id])?;
    Ok(c)
}

/// The newest message id of every text channel that has messages.
pub fn last_ids(conn: &Connection) -> ApiResult<HashMap<String, i64>> {
    let mut st = conn.prepare_cached(
        "SELECT c.name, (SELECT MAX(m.id) FROM messages m WHERE m.channel_id = c.id) FROM channels c WHERE c.kind = 'text'",
    )?;
    let rows = st.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?))
    })?;
    let mut out = HashMap::new();
    for row in rows {
        let (name, id) = row?;
        if let Some(id) = id {
            out.insert(name, id);
        }
    }
    Ok(out)
}

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
    })
}

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

/// Stores a new message, or — when this author already used `nonce` — returns the stored one
/// with `true` (a retry: nothing new is stored).
pub fn insert_message(
    conn: &Connection,
    author: &User,
    channel: &str,
    content: &str,
    reply_to: Option<i64>,
    nonce: Option<&str>,
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

/// Deletes a message (author or admin); returns its channel.
pub fn delete_message(conn: &Connection, user: &User, id: i64) -> ApiResult<String> {
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

/// Full-text search, newest first. Every word of `q` must match (each is quoted, so FTS5
/// query syntax in user input is taken literally).
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
        "SELECT {MESSAGE_COLUMNS} FROM messages_fts f JOIN messages m ON m.id = f.rowid
         JOIN channels c ON c.id = m.channel_id JOIN users u ON u.id = m.author_id
         WHERE messages_fts MATCH ?1 AND (?2 IS NULL OR m.channel_id = ?2)
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
    use super::*;

    fn db() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        migrate(&c).unwrap();
        c
    }

    #[test]
    fn new_database_has_default_channels() {
        let c = db();
        let names: Vec<_> = list_channels(&c)
            .unwrap()
            .into_iter()
            .map(|c| (c.name, c.kind))
            .collect();
        assert_eq!(
            names,
            vec![
                ("general".into(), "text".into()),
                ("lounge".into(), "voice".into())
            ]
        );
    }

    #[test]
    fn nonce_makes_send_idempotent() {
        let c = db();
        let u = insert_user(&c, "alice", "h", true).unwrap();
        let (a, dup_a) = insert_message(&c, &u, "general", "hi", None, Some("n1")).unwrap();
        let (b, dup_b) = insert_message(&c, &u, "general", "hi again", None, Some("n1")).unwrap();
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
                insert_message(&c, &u, "general", &format!("word{i} apple"), None, None)
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
        delete_message(&c, &u, ids[0]).unwrap();
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
        let (m, _) = insert_message(&c, &u, "general", "x", None, None).unwrap();
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
