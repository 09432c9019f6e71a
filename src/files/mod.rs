//! Files and images: the bytes side of attachments and avatars (API.md "Files and images").
//!
//! Who owns what in here:
//! - **the uploader's connection thread** streams a request body through [`blob::BlobStore`]:
//!   into a temporary file in fixed-size chunks, metadata stripped ([`strip`]) into a second
//!   temporary, hashed on the way, fsynced and renamed into a content-addressed path. Disk I/O
//!   stays on the thread that asked for it; no other thread ever sees a half-written file.
//! - **the image pool's worker threads** ([`images::ImagePool`]) alone decode images, under
//!   explicit size and allocation limits, to measure them and make thumbnails. The pool and its
//!   queue are bounded: a full queue is "busy" (503), never an unbounded pile of decodes.
//! - **the downloader's connection thread** serves a stored file with [`range`] (one `Range`,
//!   206/416) and a bounded buffer, never the whole file in memory.
//!
//! Nothing here touches SQLite: the store thread keeps the attachment rows, and decides who may
//! see which file. The pure rules — what type a file is ([`sniff`]), whether it may be shown
//! inline, what a filename becomes ([`names`]) — are plain functions tested beside their code.

pub mod blob;
pub mod images;
pub mod names;
pub mod range;
pub mod sniff;
pub mod strip;

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
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
