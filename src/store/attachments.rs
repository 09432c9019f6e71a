//! Attachments: the rows of uploaded files and avatars (schema migration 2 in `schema.rs`),
//! and every SQL statement about files. Runs on the store thread, inside the batch
//! transaction; the bytes themselves are `files/`'s.
//!
//! The rule of who may fetch a file lives here, once: [`readable`]. Every path that hands
//! out bytes (the file, its thumbnail, an avatar) calls it.
//!
//! Bytes and rows are kept in step on the store thread: a row is inserted only once its blob
//! is linked in place, and a blob is unlinked only when the last row naming its hash goes,
//! both inside store jobs, so the two can never interleave (see `files/blob.rs`).

use std::collections::HashSet;
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use super::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::files::blob::link_into_place;
use crate::files::{BlobStore, Kind};
pub use crate::model::Attachment;

/// API.md: "`send` takes `attachments` (at most 10)". Ten is Discord's number too.
pub const MAX_ATTACHMENTS_PER_MESSAGE: usize = 10;
/// API.md: uploads never attached are removed after 24 h.
pub const UNATTACHED_TTL_MS: i64 = 24 * 3600 * 1000;

/// What an upload adds.
#[derive(Debug, Clone)]
pub struct NewAttachment {
    pub id: String,
    pub uploader_id: i64,
    pub hash: String,
    pub filename: String,
    pub kind: Kind,
    pub size: u64,
    /// Width, height, and whether a thumbnail was stored (images that decoded).
    pub image: Option<(u32, u32)>,
    pub avatar: bool,
}

/// A file someone may fetch: what serving needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Servable {
    pub hash: String,
    pub filename: String,
    pub kind: Kind,
    pub size: u64,
    pub has_thumb: bool,
}

/// The URL of an attachment's bytes.
pub fn url(id: &str) -> String {
    format!("/api/attachments/{id}")
}

/// The URL of an attachment's thumbnail (also what an avatar shows).
pub fn thumb_url(id: &str) -> String {
    format!("/api/attachments/{id}/thumb")
}

/// A new opaque id: 128 random bits, hex.
pub fn new_id() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the OS random source failed");
    crate::files::hex(&b)
}

const COLUMNS: &str = "id, filename, size, content_type, width, height, has_thumb";

fn attachment_row(r: &rusqlite::Row) -> rusqlite::Result<Attachment> {
    let id: String = r.get(0)?;
    let has_thumb: bool = r.get::<_, i64>(6)? != 0;
    Ok(Attachment {
        url: url(&id),
        thumb_url: has_thumb.then(|| thumb_url(&id)),
        filename: r.get(1)?,
        size: r.get::<_, i64>(2)? as u64,
        content_type: r.get(3)?,
        width: r.get(4)?,
        height: r.get(5)?,
        id,
    })
}

/// Inserts an upload's row. `tmp` is the upload's temporary: if a deletion on this thread
/// removed the blob since it was linked, it is linked again first, so a committed row
/// always names bytes on disk.
pub fn insert(
    conn: &Connection,
    blobs: &BlobStore,
    tmp: &Path,
    new: &NewAttachment,
) -> ApiResult<Attachment> {
    link_into_place(tmp, &blobs.blob_path(&new.hash)).map_err(|e| {
        log::error!("files: cannot link an upload into place: {e}");
        ApiError::internal()
    })?;
    let (width, height) = new.image.map_or((None, None), |(w, h)| (Some(w), Some(h)));
    conn.prepare_cached(
        "INSERT INTO attachments (id, uploader_id, hash, filename, content_type, size, width,
         height, has_thumb, purpose, created_ts) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        new.id,
        new.uploader_id,
        new.hash,
        new.filename,
        new.kind.content_type(),
        new.size as i64,
        width,
        height,
        new.image.is_some() as i64,
        if new.avatar { "avatar" } else { "message" },
        now_ms(),
    ])?;
    Ok(Attachment {
        url: url(&new.id),
        thumb_url: new.image.map(|_| thumb_url(&new.id)),
        id: new.id.clone(),
        filename: new.filename.clone(),
        size: new.size,
        content_type: new.kind.content_type().to_string(),
        width,
        height,
    })
}

/// Bytes `user_id` uploaded since `since_ms` (the daily quota counts what is still stored).
pub fn bytes_uploaded_since(conn: &Connection, user_id: i64, since_ms: i64) -> ApiResult<u64> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT COALESCE(SUM(size), 0) FROM attachments WHERE uploader_id = ?1 AND created_ts >= ?2",
        )?
        .query_row(params![user_id, since_ms], |r| r.get(0))?;
    Ok(n as u64)
}

/// Attaches `ids` to the new message `message_id`: each must be `user_id`'s own message
/// upload, not attached to anything yet, and named once. Any other id is `bad_request`, and
/// the store's savepoint then undoes the message too.
pub fn attach(conn: &Connection, user_id: i64, ids: &[String], message_id: i64) -> ApiResult<()> {
    if ids.len() > MAX_ATTACHMENTS_PER_MESSAGE {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_ATTACHMENTS_PER_MESSAGE} attachments per message"
        )));
    }
    let mut seen = HashSet::new();
    if !ids.iter().all(|id| seen.insert(id.as_str())) {
        return Err(ApiError::bad_request("the same attachment twice"));
    }
    for id in ids {
        let n = conn
            .prepare_cached(
                "UPDATE attachments SET message_id = ?1 WHERE id = ?2 AND uploader_id = ?3
                 AND message_id IS NULL AND purpose = 'message'",
            )?
            .execute(params![message_id, id, user_id])?;
        if n != 1 {
            return Err(ApiError::bad_request(
                "an attachment must be your own upload, not yet attached to a message",
            ));
        }
    }
    Ok(())
}

/// The attachments of one message, in upload order.
pub fn of_message(conn: &Connection, message_id: i64) -> ApiResult<Vec<Attachment>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM attachments WHERE message_id = ?1 ORDER BY seq"
    ))?;
    let rows = st
        .query_map(params![message_id], attachment_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The one access rule for file bytes (API.md "Who may fetch"): an avatar, any signed-in user;
/// an upload not yet attached, only its uploader; an attached file, whoever can read its
/// message's channel. `None` for everything else, which callers answer with 404 whether
/// the file exists or not (no probing of ids).
/// `can_view(channel_id)` is the user's `view_channel` there, from the permission snapshot
/// (`community::Snapshot::can_view_id`): a file of a channel they cannot see is unknown.
pub fn readable(
    conn: &Connection,
    user_id: i64,
    id: &str,
    can_view: &dyn Fn(i64) -> bool,
) -> ApiResult<Option<Servable>> {
    let row = conn
        .prepare_cached(
            "SELECT a.hash, a.filename, a.content_type, a.size, a.has_thumb, a.uploader_id,
                    a.purpose, a.message_id, m.channel_id
             FROM attachments a LEFT JOIN messages m ON m.id = a.message_id WHERE a.id = ?1",
        )?
        .query_row(params![id], |r| {
            Ok((
                Servable {
                    hash: r.get(0)?,
                    filename: r.get(1)?,
                    kind: Kind::from_content_type(&r.get::<_, String>(2)?),
                    size: r.get::<_, i64>(3)? as u64,
                    has_thumb: r.get::<_, i64>(4)? != 0,
                },
                r.get::<_, i64>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, Option<i64>>(7)?,
                r.get::<_, Option<i64>>(8)?,
            ))
        })
        .optional()?;
    let Some((file, uploader, purpose, message, channel)) = row else {
        return Ok(None);
    };
    let allowed = match (purpose.as_str(), message, channel) {
        ("avatar", _, _) => true,
        (_, None, _) => uploader == user_id,
        (_, Some(_), Some(channel_id)) => can_read_channel(can_view, channel_id),
        (_, Some(_), None) => false,
    };
    Ok(allowed.then_some(file))
}

/// Whether the user may read channel `channel_id`: exactly their `view_channel` there
/// ("Run a community"), so every file path follows the channel's permissions.
fn can_read_channel(can_view: &dyn Fn(i64) -> bool, channel_id: i64) -> bool {
    can_view(channel_id)
}

/// Deletes the attachment rows of `message_id` and the bytes no row refers to any more.
/// Call it inside the job that deletes the message, before the message row goes.
pub fn delete_for_message(conn: &Connection, blobs: &BlobStore, message_id: i64) -> ApiResult<()> {
    let hashes: Vec<String> = conn
        .prepare_cached("SELECT hash FROM attachments WHERE message_id = ?1")?
        .query_map(params![message_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    conn.prepare_cached("DELETE FROM attachments WHERE message_id = ?1")?
        .execute(params![message_id])?;
    unlink_unreferenced(conn, blobs, hashes)
}

/// Unlinks each blob in `hashes` that no attachment row names. On the store thread, so no
/// upload's row can be inserted between the check and the unlink.
pub fn unlink_unreferenced(
    conn: &Connection,
    blobs: &BlobStore,
    hashes: impl IntoIterator<Item = String>,
) -> ApiResult<()> {
    let mut st = conn.prepare_cached("SELECT 1 FROM attachments WHERE hash = ?1")?;
    for hash in hashes {
        if !st.exists(params![hash])? {
            if let Err(e) = blobs.remove(&hash) {
                log::warn!("files: cannot remove an unreferenced blob: {e}");
            }
        }
    }
    Ok(())
}

/// Removes message uploads never attached that are older than `before_ms`, and their bytes
/// when nothing else names them. Returns how many went.
pub fn sweep_unattached(conn: &Connection, blobs: &BlobStore, before_ms: i64) -> ApiResult<usize> {
    let hashes: Vec<String> = conn
        .prepare_cached(
            "SELECT hash FROM attachments WHERE message_id IS NULL AND purpose = 'message' AND created_ts < ?1",
        )?
        .query_map(params![before_ms], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    conn.prepare_cached(
        "DELETE FROM attachments WHERE message_id IS NULL AND purpose = 'message' AND created_ts < ?1",
    )?
    .execute(params![before_ms])?;
    let n = hashes.len();
    unlink_unreferenced(conn, blobs, hashes)?;
    Ok(n)
}

/// Makes the avatar upload `attachment_id` the user's avatar; the previous one is removed.
pub fn set_avatar(
    conn: &Connection,
    blobs: &BlobStore,
    user_id: i64,
    attachment_id: &str,
) -> ApiResult<()> {
    let old: Option<String> = conn
        .prepare_cached("SELECT avatar_id FROM users WHERE id = ?1")?
        .query_row(params![user_id], |r| r.get(0))?;
    conn.prepare_cached("UPDATE users SET avatar_id = ?1 WHERE id = ?2")?
        .execute(params![attachment_id, user_id])?;
    if let Some(old) = old {
        let hashes: Vec<String> = conn
            .prepare_cached("SELECT hash FROM attachments WHERE id = ?1 AND purpose = 'avatar'")?
            .query_map(params![old], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        conn.prepare_cached("DELETE FROM attachments WHERE id = ?1 AND purpose = 'avatar'")?
            .execute(params![old])?;
        unlink_unreferenced(conn, blobs, hashes)?;
    }
    Ok(())
}

/// The avatar URL of a user row's `avatar_id`.
pub fn avatar_url(avatar_id: Option<String>) -> Option<String> {
    avatar_id.map(|id| thumb_url(&id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// The newest schema with users 1 (alice) and 2 (bob) and messages 1 and 2 in general.
    fn db() -> Connection {
        let c = super::super::schema::test_db();
        c.execute_batch(
            "INSERT INTO users (id, username, username_lc, password_hash, created_ts)
                 VALUES (1, 'alice', 'alice', 'h', 0), (2, 'bob', 'bob', 'h', 0);
             INSERT INTO messages (channel_id, author_id, content, ts)
                 VALUES (1, 1, 'one', 0), (1, 1, 'two', 0);",
        )
        .unwrap();
        c
    }

    struct Env {
        dir: std::path::PathBuf,
        blobs: BlobStore,
    }
    impl Env {
        fn new(name: &str) -> Env {
            let dir = std::env::temp_dir().join(format!("md-rows-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            let blobs = BlobStore::open(&dir).unwrap();
            Env { dir, blobs }
        }
        /// Stores `bytes` and inserts a row for `uploader`.
        fn upload(&self, c: &Connection, uploader: i64, bytes: &[u8], name: &str) -> Attachment {
            let up = self
                .blobs
                .store(&mut &bytes[..], bytes.len() as u64, 1 << 20)
                .unwrap();
            let new = NewAttachment {
                id: new_id(),
                uploader_id: uploader,
                hash: up.stored.hash.clone(),
                filename: name.into(),
                kind: up.stored.kind,
                size: up.stored.size,
                image: None,
                avatar: false,
            };
            insert(c, &self.blobs, up.path(), &new).unwrap()
        }
        fn hash_of(&self, c: &Connection, id: &str) -> String {
            c.query_row("SELECT hash FROM attachments WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .unwrap()
        }
    }
    impl Drop for Env {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn only_own_unattached_uploads_can_be_attached_once() {
        let env = Env::new("attach");
        let c = db();
        let mine = env.upload(&c, 1, b"mine", "a.txt");
        let theirs = env.upload(&c, 2, b"theirs", "b.txt");
        let bad = |ids: &[String]| attach(&c, 1, ids, 1).unwrap_err().code;
        use crate::error::Code::BadRequest;
        assert_eq!(bad(std::slice::from_ref(&theirs.id)), BadRequest);
        assert_eq!(bad(&["nope".into()]), BadRequest);
        assert_eq!(bad(&[mine.id.clone(), mine.id.clone()]), BadRequest);
        assert_eq!(bad(&vec![mine.id.clone(); 11]), BadRequest);
        attach(&c, 1, std::slice::from_ref(&mine.id), 1).unwrap();
        assert_eq!(
            bad(std::slice::from_ref(&mine.id)),
            BadRequest,
            "already attached"
        );
        assert_eq!(of_message(&c, 1).unwrap(), vec![mine]);
    }

    #[test]
    fn who_may_read_what() {
        let env = Env::new("read");
        let c = db();
        let a = env.upload(&c, 1, b"file", "a.txt");
        assert!(
            readable(&c, 1, &a.id, &|_| true).unwrap().is_some(),
            "uploader"
        );
        assert!(
            readable(&c, 2, &a.id, &|_| true).unwrap().is_none(),
            "not attached: others see nothing"
        );
        attach(&c, 1, std::slice::from_ref(&a.id), 1).unwrap();
        assert!(
            readable(&c, 2, &a.id, &|_| true).unwrap().is_some(),
            "readers of the channel"
        );
        assert!(
            readable(&c, 2, &a.id, &|_| false).unwrap().is_none(),
            "not for those who cannot see the channel"
        );
        assert!(readable(&c, 2, "unknown", &|_| true).unwrap().is_none());
    }

    #[test]
    fn deleting_a_message_removes_bytes_no_other_row_names() {
        let env = Env::new("delete");
        let c = db();
        let a = env.upload(&c, 1, b"shared bytes", "a.txt");
        let b = env.upload(&c, 1, b"shared bytes", "b.txt");
        let only = env.upload(&c, 1, b"only here", "c.txt");
        attach(&c, 1, &[a.id.clone(), only.id.clone()], 1).unwrap();
        attach(&c, 1, std::slice::from_ref(&b.id), 2).unwrap();
        let (shared, single) = (env.hash_of(&c, &a.id), env.hash_of(&c, &only.id));
        delete_for_message(&c, &env.blobs, 1).unwrap();
        assert!(
            env.blobs.blob_path(&shared).exists(),
            "message 2 still has it"
        );
        assert!(!env.blobs.blob_path(&single).exists());
        delete_for_message(&c, &env.blobs, 2).unwrap();
        assert!(!env.blobs.blob_path(&shared).exists());
    }

    #[test]
    fn old_unattached_uploads_are_swept_and_quota_counts_bytes() {
        let env = Env::new("sweep");
        let c = db();
        let a = env.upload(&c, 1, b"never attached", "a.txt");
        let hash = env.hash_of(&c, &a.id);
        assert_eq!(bytes_uploaded_since(&c, 1, 0).unwrap(), 14);
        assert_eq!(
            sweep_unattached(&c, &env.blobs, 0).unwrap(),
            0,
            "young: kept"
        );
        let later = now_ms() + UNATTACHED_TTL_MS;
        assert_eq!(sweep_unattached(&c, &env.blobs, later).unwrap(), 1);
        assert!(!env.blobs.blob_path(&hash).exists());
        assert_eq!(bytes_uploaded_since(&c, 1, 0).unwrap(), 0);
    }

    #[test]
    fn attachment_filenames_are_searchable() {
        let env = Env::new("fts");
        let c = db();
        let a = env.upload(&c, 1, b"x", "holiday-photo.png");
        attach(&c, 1, &[a.id], 2).unwrap();
        let found: i64 = c
            .query_row(
                "SELECT a.message_id FROM attachments_fts f JOIN attachments a ON a.seq = f.rowid
                 WHERE attachments_fts MATCH '\"holiday\"'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(found, 2);
    }
}
