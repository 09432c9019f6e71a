//! The sweeper thread: every [`SWEEP_EVERY`] it removes uploads never attached after 24 h,
//! and bytes on disk that no row names (left by a crash between linking a blob and
//! committing its row, or by a deleted channel's messages).
//!
//! It owns nothing but its timer. Every unlink happens inside a store job, on the store
//! thread, so it is ordered with the inserts that might name the same bytes (see `blob.rs`).

use std::fs;
use std::time::{Duration, SystemTime};

use super::blob::BlobStore;
use crate::store::attachments as rows;
use crate::store::{now_ms, Store};

/// Often enough that an abandoned upload goes soon after its 24 h, rarely enough to cost
/// nothing.
pub const SWEEP_EVERY: Duration = Duration::from_secs(600);
/// A blob without a row is only an orphan once it is this old: a fresh one may belong to an
/// upload whose row is about to commit.
pub const ORPHAN_GRACE: Duration = Duration::from_secs(3600);
/// Hashes checked per store job, so one sweep never holds a batch for long.
const HASHES_PER_JOB: usize = 256;

/// Starts the sweeper thread.
pub fn start(store: Store, blobs: BlobStore) {
    let spawned = std::thread::Builder::new()
        .name("files-sweep".into())
        .spawn(move || loop {
            sweep_once(&store, &blobs);
            std::thread::sleep(SWEEP_EVERY);
        });
    if let Err(e) = spawned {
        log::error!("files: cannot start the sweeper: {e}");
    }
}

/// One pass: stale unattached uploads, then orphaned bytes.
pub fn sweep_once(store: &Store, blobs: &BlobStore) {
    let before = now_ms() - rows::UNATTACHED_TTL_MS;
    let b = blobs.clone();
    match store.call(move |c| rows::sweep_unattached(c, &b, before)) {
        Ok(0) => {}
        Ok(n) => log::info!("files: removed {n} uploads never attached"),
        Err(e) => log::warn!("files: sweep failed: {e}"),
    }
    let old = old_blobs(blobs);
    for chunk in old.chunks(HASHES_PER_JOB) {
        let (b, hashes) = (blobs.clone(), chunk.to_vec());
        if let Err(e) = store.call(move |c| rows::unlink_unreferenced(c, &b, hashes)) {
            log::warn!("files: orphan sweep failed: {e}");
        }
    }
}

/// The hashes of blobs on disk older than [`ORPHAN_GRACE`].
fn old_blobs(blobs: &BlobStore) -> Vec<String> {
    let cutoff = SystemTime::now() - ORPHAN_GRACE;
    let mut out = Vec::new();
    let Ok(dirs) = fs::read_dir(blobs.blobs_dir()) else {
        return out;
    };
    for dir in dirs.flatten() {
        let Ok(files) = fs::read_dir(dir.path()) else {
            continue;
        };
        for f in files.flatten() {
            let old = f
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < cutoff);
            if old {
                if let Some(name) = f.file_name().to_str() {
                    out.push(name.to_string());
                }
            }
        }
    }
    out
}
