//! One upload, start to finish, on the uploader's connection thread: the checks that refuse
//! before a byte is read (name, length, size, in-flight slots, quota), the streamed store, the
//! image pool, and the row's commit. A refused upload stores nothing.

use std::io::Read;
use std::time::Duration;

use super::blob::BlobStore;
use super::images::{ImagePool, DEFAULT_QUEUE, DEFAULT_WORKERS};
use super::inflight::InFlight;
use super::{sanitize_filename, FileError, Kind};
use crate::error::{ApiError, ApiResult, Code};
use crate::realtime::chat::commit_then_publish;
use crate::realtime::protocol::ServerEvent;
use crate::store::attachments::{self as rows, Attachment, NewAttachment};
use crate::store::{now_ms, Store};
use crate::App;

/// How long an upload waits for the image pool before it is stored without a thumbnail. A
/// 12-megapixel JPEG takes well under a second; this is for a pool that is backed up.
const IMAGE_WAIT: Duration = Duration::from_secs(20);
/// The daily quota is a rolling 24 hours.
const QUOTA_WINDOW_MS: i64 = 24 * 3600 * 1000;
/// What a refused-for-quota client is told to wait: the window moves on slowly.
const QUOTA_RETRY_MS: u64 = 3600 * 1000;
/// What a client over its in-flight uploads is told to wait: one of them will finish soon.
const IN_FLIGHT_RETRY_MS: u64 = 1000;
/// What a client is told to wait when every image worker is busy.
const BUSY_RETRY_MS: u64 = 2000;

/// Everything the file paths share: the bytes, the decoders, the per-user counters, limits.
pub struct Files {
    pub blobs: BlobStore,
    pub pool: ImagePool,
    pub in_flight: InFlight,
    /// `MAX_UPLOAD_MB` in bytes.
    pub max_upload: u64,
    /// `UPLOAD_QUOTA_MB` in bytes.
    pub quota: u64,
}

impl Files {
    /// Opens the blob store under `data_dir` (sweeping crash leftovers) and starts the pool.
    pub fn open(data_dir: &std::path::Path, max_upload: u64, quota: u64) -> Result<Files, String> {
        let blobs = BlobStore::open(data_dir)
            .map_err(|e| format!("cannot open {}/files: {e}", data_dir.display()))?;
        Ok(Files {
            blobs,
            pool: ImagePool::start(DEFAULT_WORKERS, DEFAULT_QUEUE),
            in_flight: InFlight::default(),
            max_upload,
            quota,
        })
    }
}

/// What is being uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A file for a message (`POST /api/attachments`).
    Message,
    /// The uploader's avatar (`PUT /api/me/avatar`): must be an image.
    Avatar,
}

/// The checks that need no body: run them before reading it, and answer (then close the
/// connection) if they fail. Returns the clean name and the slot the upload holds.
pub fn admit(
    files: &Files,
    store: &Store,
    user_id: i64,
    raw_name: Option<&str>,
    content_length: Option<u64>,
    purpose: Purpose,
) -> ApiResult<(String, u64, super::inflight::Slot)> {
    let name = match purpose {
        Purpose::Avatar => "avatar".to_string(),
        Purpose::Message => raw_name
            .and_then(sanitize_filename)
            .ok_or_else(|| ApiError::bad_request("filename is missing or has nothing usable"))?,
    };
    let len = content_length.ok_or_else(|| ApiError::bad_request("content-length is required"))?;
    if len == 0 {
        return Err(ApiError::bad_request("empty body"));
    }
    if len > files.max_upload {
        return Err(too_large(files.max_upload));
    }
    let slot = files.in_flight.try_acquire(user_id).ok_or_else(|| {
        with_retry(
            ApiError::new(Code::RateLimited, "three uploads are already in flight"),
            IN_FLIGHT_RETRY_MS,
        )
    })?;
    let since = now_ms() - QUOTA_WINDOW_MS;
    let used = store.call(move |c| rows::bytes_uploaded_since(c, user_id, since))?;
    if used.saturating_add(len) > files.quota {
        return Err(with_retry(
            ApiError::new(Code::RateLimited, "daily upload quota used up"),
            QUOTA_RETRY_MS,
        ));
    }
    Ok((name, len, slot))
}

/// Streams the body into the store, measures and thumbnails images, and commits the row
/// (for an avatar, and makes it the user's avatar in the same transaction, and — through
/// `commit_then_publish`, so in commit order — tells every `/ws` of it as `user_update`, so
/// open pages show the new picture without a reload).
pub fn receive(
    app: &App,
    user_id: i64,
    filename: String,
    len: u64,
    body: &mut impl Read,
    purpose: Purpose,
) -> ApiResult<Attachment> {
    let files = &app.files;
    let upload = files
        .blobs
        .store(body, len, files.max_upload)
        .map_err(|e| file_error(e, files.max_upload))?;
    let stored = upload.stored.clone();
    let mut kind = stored.kind;
    let mut image = None;
    if kind.is_image() {
        match files.pool.analyze(upload.path(), IMAGE_WAIT) {
            Ok(Some(info)) => {
                files
                    .blobs
                    .put_thumb(&stored.hash, &info.thumb)
                    .map_err(|e| file_error(e, files.max_upload))?;
                image = Some((info.width, info.height));
            }
            // Not decodable within the limits: kept, but as a plain file, never inline.
            Ok(None) => kind = Kind::Other,
            Err(e) => return Err(file_error(e, files.max_upload)),
        }
    }
    if purpose == Purpose::Avatar && image.is_none() {
        return Err(ApiError::bad_request(
            "an avatar must be a PNG, JPEG, GIF or WebP image",
        ));
    }
    let new = NewAttachment {
        id: rows::new_id(),
        uploader_id: user_id,
        hash: stored.hash,
        filename,
        kind,
        size: stored.size,
        image,
        avatar: purpose == Purpose::Avatar,
    };
    let blobs = files.blobs.clone();
    let tmp = upload.path().to_path_buf();
    let attachment = if new.avatar {
        let (reply, answer) = crossbeam_channel::bounded(1);
        commit_then_publish(
            app,
            move |c| {
                let a = rows::insert(c, &blobs, &tmp, &new)?;
                rows::set_avatar(c, &blobs, user_id, &new.id)?;
                Ok((a, crate::store::user_by_id(c, user_id)?))
            },
            move |result, publisher| {
                if let Ok((_, user)) = &result {
                    publisher.publish(ServerEvent::UserUpdate { user: user.clone() });
                }
                let _ = reply.send(result.map(|(a, _)| a));
            },
        )?;
        answer.recv().map_err(|_| ApiError::internal())??
    } else {
        app.store
            .call(move |c| rows::insert(c, &blobs, &tmp, &new))?
    };
    // Committed: the row now keeps the blob, and the temporary can go.
    drop(upload);
    Ok(attachment)
}

/// `e` with a `Retry-After` hint (HTTP) / `retry_after_ms` (WebSocket).
fn with_retry(mut e: ApiError, ms: u64) -> ApiError {
    e.retry_after_ms = Some(ms);
    e
}

fn too_large(max: u64) -> ApiError {
    ApiError::new(
        Code::TooLarge,
        format!("file is over the {} MiB upload limit", max / (1024 * 1024)),
    )
}

/// The API.md error for a file error.
pub fn file_error(e: FileError, max: u64) -> ApiError {
    match e {
        FileError::Empty => ApiError::bad_request("empty body"),
        FileError::TooLarge { .. } => too_large(max),
        FileError::Truncated => ApiError::bad_request("the body ended before its content-length"),
        FileError::Malformed(what) => ApiError::bad_request(format!("malformed image: {what}")),
        FileError::Busy => with_retry(
            ApiError::new(Code::Unavailable, "image workers are busy"),
            BUSY_RETRY_MS,
        ),
        FileError::Io(e) => {
            log::error!("files: {e}");
            ApiError::internal()
        }
    }
}
