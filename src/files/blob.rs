//! The content-addressed blob store under `DATA_DIR/files`.
//!
//! Layout: `tmp/` holds uploads being written, `blobs/ab/<sha256>` the stored files,
//! `thumbs/ab/<sha256>` their thumbnails. A file is visible under `blobs/` only once it is
//! whole: it is written to `tmp/`, fsynced, hard-linked into place (atomic, like a rename)
//! and its directory fsynced. A crash at any moment leaves either no file or a whole one, plus
//! maybe a temporary, and temporaries are swept when the store opens. The same bytes are
//! stored once.
//!
//! Why a link and not a rename: the temporary must outlive the link until the attachment's
//! row is committed. Deleting a message unlinks bytes no row refers to, on the store thread;
//! an upload of the same bytes that linked just before would then point at nothing. Its
//! row's insert (also on the store thread, so the two are ordered) checks the blob is there
//! and, if not, [`Upload::link`] puts it back from the temporary.
//!
//! Uploads are streamed: memory per upload is one [`CHUNK`] buffer plus the small buffers of
//! metadata stripping, whatever the file's size.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::sniff::{sniff, Kind, SNIFF_LEN};
use super::strip::{strip_jpeg, strip_png};
use super::{hex, FileError};

/// Bytes read from the request body per step, and the buffer size of every copy here. Large
/// enough that syscalls are not the cost, small enough that 1,000 uploads fit in 64 MiB.
pub const CHUNK: usize = 64 * 1024;

/// A stored file: its hash (also its name), final size and sniffed kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub hash: String,
    pub size: u64,
    pub kind: Kind,
}

/// The blob store. Cheap to share: it is a path, and every operation is a filesystem call on
/// the calling thread.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// The store under `data_dir/files` as it is, for reading only (`check-db` may run beside
    /// a live server, whose temporaries must stay).
    pub fn at(data_dir: &Path) -> BlobStore {
        BlobStore {
            root: data_dir.join("files"),
        }
    }

    /// Opens (creating) `data_dir/files` and deletes temporaries left by a crash. Call once at
    /// start, before any upload can begin.
    pub fn open(data_dir: &Path) -> io::Result<BlobStore> {
        let store = BlobStore {
            root: data_dir.join("files"),
        };
        for dir in ["tmp", "blobs", "thumbs"] {
            fs::create_dir_all(store.root.join(dir))?;
        }
        let mut swept = 0;
        for entry in fs::read_dir(store.root.join("tmp"))? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                fs::remove_file(entry.path())?;
                swept += 1;
            }
        }
        if swept > 0 {
            log::info!("files: removed {swept} unfinished uploads");
        }
        Ok(store)
    }

    /// Streams exactly `len` bytes of `body` into a temporary, cleaned of personal metadata
    /// (JPEG and PNG) and hashed, and links it into place. The hash and size are those of the
    /// stored bytes. Over `max` bytes is refused before anything is read or written. The
    /// returned [`Upload`] keeps the temporary until it is dropped (see the module docs).
    pub fn store(&self, body: &mut impl Read, len: u64, max: u64) -> Result<Upload, FileError> {
        if len == 0 {
            return Err(FileError::Empty);
        }
        if len > max {
            return Err(FileError::TooLarge { max });
        }
        let raw = TempFile::create(&self.root)?;
        let mut head = Vec::with_capacity(SNIFF_LEN);
        let (raw_hash, _) = {
            let mut w = HashingWriter::new(raw.file()?);
            let mut buf = vec![0u8; CHUNK];
            let mut left = len;
            while left > 0 {
                let want = buf.len().min(left as usize);
                let n = match body.read(&mut buf[..want]) {
                    Ok(0) => return Err(FileError::Truncated),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    // A timeout or a reset: the client is gone or too slow, not our disk.
                    Err(_) => return Err(FileError::Truncated),
                };
                if head.len() < SNIFF_LEN {
                    let take = (SNIFF_LEN - head.len()).min(n);
                    head.extend_from_slice(&buf[..take]);
                }
                w.write_all(&buf[..n])?;
                left -= n as u64;
            }
            w.finish()?
        };
        let kind = sniff(&head);
        let (final_tmp, hash, size) = match kind {
            Kind::Jpeg | Kind::Png => {
                let clean = TempFile::create(&self.root)?;
                let mut r = BufReader::with_capacity(CHUNK, File::open(&raw.path)?);
                let mut w = HashingWriter::new(clean.file()?);
                match kind {
                    Kind::Jpeg => strip_jpeg(&mut r, &mut w)?,
                    _ => strip_png(&mut r, &mut w)?,
                }
                let (hash, size) = w.finish()?;
                drop(raw);
                (clean, hash, size)
            }
            _ => (raw, raw_hash, len),
        };
        let upload = Upload {
            tmp: final_tmp,
            dest: self.blob_path(&hash),
            stored: Stored { hash, size, kind },
        };
        upload.link()?;
        Ok(upload)
    }

    /// Stores a thumbnail for the blob `hash` (whole or not at all, like a blob).
    pub fn put_thumb(&self, hash: &str, bytes: &[u8]) -> Result<(), FileError> {
        let tmp = TempFile::create(&self.root)?;
        let mut f = tmp.file()?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        link_into_place(&tmp.path, &self.thumb_path(hash))
    }

    /// Where the blob `hash` lives. `hash` must be one this store produced (64 hex digits);
    /// anything else names a path that does not exist, never one outside the store.
    pub fn blob_path(&self, hash: &str) -> PathBuf {
        self.hashed_path("blobs", hash)
    }

    /// The directory of every blob (`blobs/ab/<hash>`), for the sweeper's walk.
    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs")
    }

    /// Where the thumbnail of blob `hash` lives.
    pub fn thumb_path(&self, hash: &str) -> PathBuf {
        self.hashed_path("thumbs", hash)
    }

    /// Deletes a blob and its thumbnail (the store decided no row refers to it any more).
    /// While a backup holds a `DATA_DIR/backup.hold.*` file the bytes stay: the backup's database
    /// snapshot may still name them. They are then an orphan, which the sweeper removes once
    /// the hold is gone.
    pub fn remove(&self, hash: &str) -> io::Result<()> {
        if let Some(dir) = self.root.parent() {
            if crate::data::backup_holds(dir) {
                return Ok(());
            }
        }
        for path in [self.blob_path(hash), self.thumb_path(hash)] {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn hashed_path(&self, dir: &str, hash: &str) -> PathBuf {
        let valid =
            hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let hash = if valid { hash } else { "invalid" };
        self.root.join(dir).join(&hash[..2]).join(hash)
    }
}

/// An upload in the store, still backed by its temporary until dropped.
#[derive(Debug)]
pub struct Upload {
    tmp: TempFile,
    dest: PathBuf,
    pub stored: Stored,
}

impl Upload {
    /// Makes sure the blob is in place, linking it again from the temporary if a deletion
    /// removed it since. Idempotent.
    pub fn link(&self) -> Result<(), FileError> {
        link_into_place(&self.tmp.path, &self.dest)
    }

    /// The temporary's path: the same bytes as the blob, readable while the upload lives.
    pub fn path(&self) -> &Path {
        &self.tmp.path
    }
}

/// Hard-links an fsynced temporary to `dest` unless it is there already (same hash, same
/// bytes), then fsyncs the directory: the name is then durable and names a whole file.
pub(crate) fn link_into_place(tmp: &Path, dest: &Path) -> Result<(), FileError> {
    let dir = dest.parent().expect("hashed paths have a parent");
    fs::create_dir_all(dir)?;
    match fs::hard_link(tmp, dest) {
        Ok(()) => File::open(dir)?.sync_all()?,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// A file under `tmp/` that deletes itself when dropped.
#[derive(Debug)]
struct TempFile {
    path: PathBuf,
}

impl TempFile {
    fn create(root: &Path) -> io::Result<TempFile> {
        let mut name = [0u8; 16];
        getrandom::fill(&mut name).map_err(|e| io::Error::other(e.to_string()))?;
        let path = root.join("tmp").join(hex(&name));
        File::options().write(true).create_new(true).open(&path)?;
        Ok(TempFile { path })
    }

    fn file(&self) -> io::Result<File> {
        File::options().write(true).open(&self.path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Buffers writes to a file while hashing them; `finish` flushes and fsyncs.
struct HashingWriter {
    inner: BufWriter<File>,
    hasher: Sha256,
    written: u64,
}

impl HashingWriter {
    fn new(file: File) -> Self {
        HashingWriter {
            inner: BufWriter::with_capacity(CHUNK, file),
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// The hex SHA-256 and length of everything written, once it is on disk.
    fn finish(self) -> io::Result<(String, u64)> {
        let file = self.inner.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok((hex(&self.hasher.finalize()), self.written))
    }
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh data directory under the system's temp dir, removed at the end of the test.
    struct Dir(PathBuf);
    impl Dir {
        fn new(name: &str) -> Dir {
            let p = std::env::temp_dir().join(format!("md-blob-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn files_in(dir: &Path) -> usize {
        fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
    }

    /// A reader that hands out at most 1000 bytes per call, like a socket.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(1000).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_body_is_stored_whole_under_its_hash_and_once() {
        let dir = Dir::new("store");
        let store = BlobStore::open(&dir.0).unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let a = store
            .store(&mut Trickle(&data), data.len() as u64, 1 << 20)
            .unwrap()
            .stored;
        assert_eq!(a.size, data.len() as u64);
        assert_eq!(a.kind, Kind::Other);
        assert_eq!(a.hash, hex(&Sha256::digest(&data)));
        assert_eq!(fs::read(store.blob_path(&a.hash)).unwrap(), data);
        let b = store
            .store(&mut &data[..], data.len() as u64, 1 << 20)
            .unwrap()
            .stored;
        assert_eq!(a, b);
        assert_eq!(
            files_in(&dir.0.join("files/tmp")),
            0,
            "temporaries go with their Upload"
        );
        assert_eq!(files_in(&dir.0.join("files/blobs").join(&a.hash[..2])), 1);
    }

    #[test]
    fn too_large_short_and_empty_bodies_keep_nothing() {
        let dir = Dir::new("refuse");
        let store = BlobStore::open(&dir.0).unwrap();
        let data = vec![7u8; 5000];
        assert!(matches!(
            store.store(&mut &data[..], 5000, 4999),
            Err(FileError::TooLarge { max: 4999 })
        ));
        assert!(matches!(
            store.store(&mut &data[..], 6000, 10_000),
            Err(FileError::Truncated)
        ));
        assert!(matches!(
            store.store(&mut &data[..0], 0, 10),
            Err(FileError::Empty)
        ));
        assert_eq!(files_in(&dir.0.join("files/tmp")), 0);
        assert_eq!(files_in(&dir.0.join("files/blobs")), 0);
    }

    #[test]
    fn only_the_declared_length_is_read() {
        let dir = Dir::new("exact");
        let store = BlobStore::open(&dir.0).unwrap();
        let data = b"hello world, and then the next request".to_vec();
        let mut r = &data[..];
        let s = store.store(&mut r, 11, 100).unwrap().stored;
        assert_eq!(fs::read(store.blob_path(&s.hash)).unwrap(), b"hello world");
        assert_eq!(r, b", and then the next request");
    }

    #[test]
    fn an_upload_relinks_its_blob_after_a_concurrent_delete() {
        let dir = Dir::new("relink");
        let store = BlobStore::open(&dir.0).unwrap();
        let up = store.store(&mut &b"same bytes"[..], 10, 100).unwrap();
        store.remove(&up.stored.hash).unwrap();
        assert!(!store.blob_path(&up.stored.hash).exists());
        up.link().unwrap();
        assert_eq!(
            fs::read(store.blob_path(&up.stored.hash)).unwrap(),
            b"same bytes"
        );
        drop(up);
        assert_eq!(files_in(&dir.0.join("files/tmp")), 0);
    }

    #[test]
    fn temporaries_left_by_a_crash_are_swept_at_open() {
        let dir = Dir::new("sweep");
        drop(BlobStore::open(&dir.0).unwrap());
        fs::write(dir.0.join("files/tmp/deadbeef"), b"half an upload").unwrap();
        BlobStore::open(&dir.0).unwrap();
        assert_eq!(files_in(&dir.0.join("files/tmp")), 0);
    }

    #[test]
    fn a_jpeg_is_hashed_after_its_metadata_is_stripped() {
        let dir = Dir::new("strip");
        let store = BlobStore::open(&dir.0).unwrap();
        let mut exif = b"Exif\0\0".to_vec();
        exif.extend(crate::files::strip::tests::phone_exif(1));
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE1];
        jpeg.extend((exif.len() as u16 + 2).to_be_bytes());
        jpeg.extend(&exif);
        jpeg.extend([0xFF, 0xDA, 0, 3, 0, 1, 2, 0xFF, 0xD9]);
        let s = store
            .store(&mut &jpeg[..], jpeg.len() as u64, 1 << 20)
            .unwrap()
            .stored;
        let stored = fs::read(store.blob_path(&s.hash)).unwrap();
        assert_eq!(stored, [0xFF, 0xD8, 0xFF, 0xDA, 0, 3, 0, 1, 2, 0xFF, 0xD9]);
        assert_eq!(s.size, stored.len() as u64);
        assert_eq!(s.hash, hex(&Sha256::digest(&stored)));
        assert_eq!(s.kind, Kind::Jpeg);
    }

    #[test]
    fn a_broken_jpeg_is_refused_and_leaves_nothing() {
        let dir = Dir::new("broken");
        let store = BlobStore::open(&dir.0).unwrap();
        let bad = b"\xFF\xD8\xFF\xE1\x40\x00Exif\0\0GPS";
        assert!(matches!(
            store.store(&mut &bad[..], bad.len() as u64, 100),
            Err(FileError::Malformed(_))
        ));
        assert_eq!(files_in(&dir.0.join("files/tmp")), 0);
    }

    #[test]
    fn foreign_hashes_never_leave_the_store() {
        let dir = Dir::new("paths");
        let store = BlobStore::open(&dir.0).unwrap();
        let p = store.blob_path("../../../etc/passwd");
        assert!(p.starts_with(dir.0.join("files/blobs")));
        assert!(!p.to_string_lossy().contains(".."));
    }

    #[test]
    fn remove_deletes_blob_and_thumbnail() {
        let dir = Dir::new("remove");
        let store = BlobStore::open(&dir.0).unwrap();
        let s = store.store(&mut &b"bytes"[..], 5, 10).unwrap().stored;
        store.put_thumb(&s.hash, b"thumb").unwrap();
        assert!(store.thumb_path(&s.hash).exists());
        store.remove(&s.hash).unwrap();
        assert!(!store.blob_path(&s.hash).exists());
        assert!(!store.thumb_path(&s.hash).exists());
        store.remove(&s.hash).unwrap();
    }
}
