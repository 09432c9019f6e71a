//! Files and images: the bytes side of attachments and avatars (API.md "Files and images").
//!
//! Who owns what in here:
//! - **the uploader's connection thread** runs [`upload`]: the checks that need no body, then
//!   the body streamed through [`blob::BlobStore`] into a temporary file in fixed-size chunks,
//!   metadata stripped ([`strip`]) into a second temporary, hashed on the way, fsynced and
//!   linked into a content-addressed path. Disk I/O stays on the thread that asked for it; no
//!   other thread ever sees a half-written file.
//! - **the image pool's worker threads** ([`images::ImagePool`]) alone decode images, under
//!   explicit size and allocation limits, to measure them and make thumbnails. The pool and its
//!   queue are bounded: a full queue is "busy" (503), never an unbounded pile of decodes.
//! - **the store thread** keeps the attachment rows (`store/attachments.rs`, with the one
//!   access rule `readable`) and does every unlink of bytes, so that deleting and inserting
//!   the same bytes are ordered. The upload and download routes are `http/files.rs`.
//! - **the downloader's connection thread** serves a file with [`serve`] and [`range`] (one
//!   `Range`, 206/416) through a bounded buffer, never the whole file in memory.
//! - **the sweeper thread** ([`sweep`]) only keeps time: every ten minutes it asks the store
//!   to drop uploads never attached after 24 h and bytes no row names.
//!
//! The pure rules — what type a file is ([`sniff`]), whether it may be shown inline, what a
//! filename becomes ([`names`]), how many uploads one user may run ([`inflight`]) — are plain
//! functions tested beside their code.

pub mod blob;
pub mod images;
pub mod inflight;
pub mod names;
pub mod range;
pub mod serve;
pub mod sniff;
pub mod strip;
pub mod sweep;
pub mod upload;

use std::fmt;
use std::io;

pub use blob::{BlobStore, Stored};
pub use images::{ImageInfo, ImagePool};
pub use names::sanitize_filename;
pub use range::{parse_range, ByteRange};
pub use sniff::{sniff, Kind};

/// Why an upload or a file operation failed. Each maps onto one API.md error code.
#[derive(Debug)]
pub enum FileError {
    /// The body was empty (400 `bad_request`).
    Empty,
    /// The declared length is over the limit (413 `too_large`); nothing was kept.
    TooLarge { max: u64 },
    /// The body ended before its Content-Length (the client went away); nothing was kept.
    Truncated,
    /// A JPEG or PNG whose structure is too broken to clean of metadata (400 `bad_request`).
    /// It is refused rather than stored, so personal data never slips through a parse error.
    Malformed(&'static str),
    /// The image pool's queue is full (503 `unavailable`).
    Busy,
    /// The disk said no (500 `internal`).
    Io(io::Error),
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::Empty => f.write_str("empty body"),
            FileError::TooLarge { max } => write!(f, "file larger than {max} bytes"),
            FileError::Truncated => f.write_str("body ended before its content-length"),
            FileError::Malformed(what) => write!(f, "malformed file: {what}"),
            FileError::Busy => f.write_str("image workers busy"),
            FileError::Io(e) => write!(f, "file i/o: {e}"),
        }
    }
}

impl std::error::Error for FileError {}

impl From<io::Error> for FileError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            FileError::Truncated
        } else {
            FileError::Io(e)
        }
    }
}

/// Lowercase hex of `bytes` (hashes and random names).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
