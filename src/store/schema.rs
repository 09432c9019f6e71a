//! The schema: connection pragmas, the append-only list of migrations keyed on
//! `PRAGMA user_version`, and the `check-db` integrity check. Runs on the store thread (and,
//! for `check-db`, in the CLI process before any server starts).

use std::path::Path;

use rusqlite::Connection;

pub(super) fn configure(conn: &Connection, synchronous: &str) -> rusqlite::Result<()> {
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
    // 2: files and avatars ("Files and images in chat"; `attachments.rs`). `seq` is the rowid
    // the filename index needs; `id` is the opaque id clients see. Attachment rows go with
    // their message (CASCADE covers a deleted channel; the sweeper then removes the bytes).
    r#"
    CREATE TABLE attachments (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        uploader_id INTEGER NOT NULL REFERENCES users(id),
        hash TEXT NOT NULL,
        filename TEXT NOT NULL,
        content_type TEXT NOT NULL,
        size INTEGER NOT NULL,
        width INTEGER,
        height INTEGER,
        has_thumb INTEGER NOT NULL DEFAULT 0,
        message_id INTEGER REFERENCES messages(id) ON DELETE CASCADE,
        purpose TEXT NOT NULL DEFAULT 'message' CHECK (purpose IN ('message', 'avatar')),
        created_ts INTEGER NOT NULL
    );
    CREATE INDEX attachments_by_message ON attachments(message_id) WHERE message_id IS NOT NULL;
    CREATE INDEX attachments_by_hash ON attachments(hash);
    CREATE INDEX attachments_by_uploader ON attachments(uploader_id, created_ts);
    CREATE VIRTUAL TABLE attachments_fts USING fts5(filename, content='attachments', content_rowid='seq');
    CREATE TRIGGER attachments_ai AFTER INSERT ON attachments BEGIN
        INSERT INTO attachments_fts(rowid, filename) VALUES (new.seq, new.filename);
    END;
    CREATE TRIGGER attachments_ad AFTER DELETE ON attachments BEGIN
        INSERT INTO attachments_fts(attachments_fts, rowid, filename) VALUES ('delete', old.seq, old.filename);
    END;
    ALTER TABLE users ADD COLUMN avatar_id TEXT;
"#,
    // 3: a user's sessions by age, for the per-user session cap (issue 19).
    r#"
    CREATE INDEX sessions_by_user ON sessions(user_id, created_ts);
    "#,
    // 4: invites v2 ("The text client as a newcomer finds it"): several uses and revocation.
    // Existing rows keep v1 meaning: one use, used when `used_by` is set.
    r#"
    ALTER TABLE invites ADD COLUMN max_uses INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE invites ADD COLUMN uses INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE invites ADD COLUMN revoked INTEGER NOT NULL DEFAULT 0;
    UPDATE invites SET uses = 1 WHERE used_by IS NOT NULL;
"#,
    // 5: roles, permissions and moderation ("Run a community"; `community/`). Permission
    // sets are the bit numbers of `community::perms` (57359 = the v1 defaults of the
    // `everyone` role, id 1, position 0), so an upgraded v1 database behaves as v1.
    // Positions: a higher number is a higher role. Mentions allowed at send time are kept
    // on the message (`mention_roles`: comma-separated role ids).
    r#"
    CREATE TABLE roles (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        color TEXT,
        position INTEGER NOT NULL,
        hoist INTEGER NOT NULL DEFAULT 0,
        permissions INTEGER NOT NULL DEFAULT 0,
        created_ts INTEGER NOT NULL
    );
    INSERT INTO roles (id, name, color, position, hoist, permissions, created_ts)
        VALUES (1, 'everyone', NULL, 0, 0, 57359, 0);
    CREATE TABLE member_roles (
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        role_id INTEGER NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
        PRIMARY KEY (user_id, role_id)
    ) WITHOUT ROWID;
    CREATE TABLE overwrites (
        channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
        role_id INTEGER NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
        allow INTEGER NOT NULL DEFAULT 0,
        deny INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (channel_id, role_id)
    ) WITHOUT ROWID;
    CREATE TABLE bans (
        user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        username_lc TEXT NOT NULL UNIQUE,
        reason TEXT NOT NULL DEFAULT '',
        by_id INTEGER REFERENCES users(id),
        ts INTEGER NOT NULL
    );
    CREATE TABLE timeouts (
        user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        until_ts INTEGER NOT NULL
    );
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts INTEGER NOT NULL,
        actor_id INTEGER NOT NULL REFERENCES users(id),
        action TEXT NOT NULL,
        target TEXT NOT NULL DEFAULT '',
        reason TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE pins (
        message_id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
        channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
        by_id INTEGER NOT NULL REFERENCES users(id),
        ts INTEGER NOT NULL
    );
    CREATE INDEX pins_by_channel ON pins(channel_id, ts);
    ALTER TABLE channels ADD COLUMN slowmode_s INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE channels ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE channels ADD COLUMN category TEXT;
    ALTER TABLE messages ADD COLUMN mention_everyone INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE messages ADD COLUMN mention_roles TEXT NOT NULL DEFAULT '';
    CREATE INDEX messages_by_author ON messages(author_id, ts);
"#,
    // 6: imports from Discord (`data/import.rs`): which of our rows a Discord id became, so
    // that a second import (or an overlapping export) adds nothing twice and replies find
    // their target. Discord ids are snowflakes kept as text (they pass 2^53). A row deleted
    // here takes its mapping with it, so importing again brings it back. `discord_pinned`
    // keeps the export's `isPinned` until pins exist (issue 13), which can then take them.
    r#"
    CREATE TABLE discord_channels (
        discord_id TEXT PRIMARY KEY,
        channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE
    ) WITHOUT ROWID;
    CREATE TABLE discord_users (
        discord_id TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        nickname TEXT
    ) WITHOUT ROWID;
    CREATE INDEX discord_users_by_user ON discord_users(user_id);
    CREATE TABLE discord_messages (
        discord_id TEXT PRIMARY KEY,
        message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        discord_pinned INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    CREATE INDEX discord_messages_by_message ON discord_messages(message_id);
"#,
    // 7: profiles, read state, notifications and Web Push ("Direct messages, profiles and
    // notifications", `store/social.rs`). `status` is the status a user chose (`online`,
    // `idle`, `dnd`, `invisible`); it outlives their sockets, because "do not disturb" must
    // also silence pushes while no tab is open. `mentions` is one row per user a message
    // mentions, written with the message, so an unread mention count is an index range.
    // `notify_levels.channel_id` 0 is the user's server-wide default.
    r#"
    ALTER TABLE users ADD COLUMN display_name TEXT;
    ALTER TABLE users ADD COLUMN status_text TEXT;
    ALTER TABLE users ADD COLUMN status TEXT NOT NULL DEFAULT 'online';
    CREATE TABLE read_state (
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
        last_read_id INTEGER NOT NULL,
        PRIMARY KEY (user_id, channel_id)
    ) WITHOUT ROWID;
    CREATE TABLE mentions (
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
        message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        PRIMARY KEY (user_id, channel_id, message_id)
    ) WITHOUT ROWID;
    CREATE INDEX mentions_by_message ON mentions(message_id);
    CREATE TABLE notify_levels (
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        channel_id INTEGER NOT NULL,
        level TEXT NOT NULL CHECK (level IN ('all', 'mentions', 'nothing')),
        PRIMARY KEY (user_id, channel_id)
    ) WITHOUT ROWID;
    CREATE TABLE push_subscriptions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        endpoint TEXT NOT NULL UNIQUE,
        p256dh BLOB NOT NULL,
        auth BLOB NOT NULL,
        created_ts INTEGER NOT NULL
    );
    CREATE INDEX push_subscriptions_by_user ON push_subscriptions(user_id);
    CREATE TABLE server_keys (
        name TEXT PRIMARY KEY,
        value BLOB NOT NULL
    ) WITHOUT ROWID;
"#,
    // 8: a voice channel's media mode (issue 16, the media server; branch `sfu`): 'mesh' or
    // 'sfu'; NULL means the server's default. Landed ahead of the code that reads it so that
    // migration 9 keeps its number and carries the column through its rebuild.
    r#"
    ALTER TABLE channels ADD COLUMN voice_mode TEXT;
"#,
    // 9: direct messages (docs/DMS.md). A DM is a channel of kind `dm`, so the channels
    // table is rebuilt to let its CHECK allow `dm` (SQLite cannot alter a CHECK; `migrate`
    // turns foreign keys off around migrations so the DROP cascades nothing, and checks
    // them before the COMMIT). `dm_members` is who may see it; `pair_key` ("<low id>:<high
    // id>") makes "the same pair always gets the same channel" one unique index lookup
    // (NULL for group DMs, which are never reused).
    r#"
    CREATE TABLE channels_v9 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL CHECK (kind IN ('text', 'voice', 'dm')),
        topic TEXT NOT NULL DEFAULT '',
        created_ts INTEGER NOT NULL,
        slowmode_s INTEGER NOT NULL DEFAULT 0,
        position INTEGER NOT NULL DEFAULT 0,
        category TEXT,
        voice_mode TEXT
    );
    INSERT INTO channels_v9 (id, name, kind, topic, created_ts, slowmode_s, position, category, voice_mode)
        SELECT id, name, kind, topic, created_ts, slowmode_s, position, category, voice_mode FROM channels;
    DROP TABLE channels;
    ALTER TABLE channels_v9 RENAME TO channels;
    CREATE TABLE dm_channels (
        channel_id INTEGER PRIMARY KEY REFERENCES channels(id) ON DELETE CASCADE,
        pair_key TEXT UNIQUE
    );
    CREATE TABLE dm_members (
        channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        joined_ts INTEGER NOT NULL,
        PRIMARY KEY (channel_id, user_id)
    ) WITHOUT ROWID;
    CREATE INDEX dm_members_by_user ON dm_members(user_id);
"#,
];

pub(super) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    // Off while migrating (it cannot change inside a transaction): a migration that rebuilds
    // a table (9) must not cascade its DROP into the tables that refer to it. Each one is
    // checked before its COMMIT instead, so a broken reference fails the migration.
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let result = (|| {
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(sql)?;
            let broken = tx.prepare("PRAGMA foreign_key_check")?.exists([])?;
            if broken {
                return Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY),
                    Some(format!("migration {} leaves broken foreign keys", i + 1)),
                ));
            }
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
            log::info!("database migrated to schema version {}", i + 1);
        }
        Ok(())
    })();
    conn.pragma_update(None, "foreign_keys", "ON")?;
    result
}

/// Opens (creating and migrating) `DATA_DIR/chat.db` for a subcommand that writes it while
/// no server runs (`import-discord`, which holds the `DATA_DIR` lock). `NORMAL` sync: a
/// crash loses at most the last batch, and the import resumes where it stopped.
pub fn open_offline(data_dir: &Path) -> Result<Connection, String> {
    let path = data_dir.join("chat.db");
    let conn =
        Connection::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    configure(&conn, "NORMAL").map_err(|e| format!("cannot configure {}: {e}", path.display()))?;
    migrate(&conn).map_err(|e| format!("cannot migrate {}: {e}", path.display()))?;
    Ok(conn)
}

/// `mini-discord check-db PATH`: prints SQLite's `PRAGMA integrity_check` answer (`ok` when
/// the file is sound), then checks that every file an attachment row names is in the
/// `files/` folder beside the database with the bytes its hash says. Returns the exit code
/// (0 only when all of it is sound).
pub fn check_db(path: &Path) -> i32 {
    let result = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
        .and_then(|c| {
            let integrity = c.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))?;
            Ok((integrity, bad_files(&c, path)?))
        });
    match result {
        Ok((s, bad)) => {
            println!("{s}");
            for line in &bad {
                println!("{line}");
            }
            i32::from(s != "ok" || !bad.is_empty())
        }
        Err(e) => {
            println!("cannot check {}: {e}", path.display());
            1
        }
    }
}

/// One line per attachment whose bytes are missing or do not match their hash. A database
/// from before files (no `attachments` table) has none.
fn bad_files(conn: &Connection, db_path: &Path) -> rusqlite::Result<Vec<String>> {
    use sha2::{Digest, Sha256};
    let has_table = conn
        .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'attachments'")?
        .exists([])?;
    if !has_table {
        return Ok(Vec::new());
    }
    let data_dir = db_path.parent().unwrap_or(Path::new("."));
    let blobs = crate::files::BlobStore::at(data_dir);
    let hashes: Vec<String> = conn
        .prepare("SELECT DISTINCT hash FROM attachments")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut bad = Vec::new();
    for hash in hashes {
        let path = blobs.blob_path(&hash);
        let ok = std::fs::File::open(&path).and_then(|mut f| {
            let mut h = Sha256::new();
            std::io::copy(&mut f, &mut h)?;
            Ok(crate::files::hex(&h.finalize()) == hash)
        });
        match ok {
            Ok(true) => {}
            Ok(false) => bad.push(format!("file {hash}: bytes do not match the hash")),
            Err(e) => bad.push(format!("file {hash}: {e}")),
        }
    }
    Ok(bad)
}

/// A fresh in-memory database at the newest schema, for the unit tests of each domain.
#[cfg(test)]
pub(crate) fn test_db() -> Connection {
    let c = Connection::open_in_memory().unwrap();
    migrate(&c).unwrap();
    c
}
