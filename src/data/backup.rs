//! `backup FILE` and `restore FILE`.
//!
//! A backup is one plain tar: `chat.db` (a consistent snapshot taken with `VACUUM INTO` from
//! its own connection, so a live server keeps running), every file under `files/blobs` and
//! `files/thumbs`, and last `MANIFEST.sha256` (`<sha256>  <path>` per entry). It is written
//! to `FILE.partial`, fsynced, read back and checked against the manifest, and only then
//! renamed to `FILE`: a killed backup leaves only a `.partial`, never a file that looks whole.
//!
//! While it runs, `DATA_DIR/backup.hold.<pid>.<ms>` stops the server unlinking blobs (see `mod.rs`), so
//! every blob the snapshot names is still there when it is copied.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::HOLD_FILE;

const MANIFEST: &str = "MANIFEST.sha256";
const DB: &str = "chat.db";
/// After taking the hold, wait this long before the snapshot: a store job that checked for
/// the hold just before it appeared has finished its unlink and commit by then (a batch
/// takes milliseconds).
const HOLD_SETTLE: Duration = Duration::from_millis(500);

/// Writes a backup of `data_dir` to `out`.
pub fn backup(data_dir: &Path, out: &Path) -> Result<String, String> {
    if !data_dir.join(DB).is_file() {
        return Err(format!("no database at {}", data_dir.join(DB).display()));
    }
    let partial = with_suffix(out, ".partial");
    let snap = with_suffix(out, ".partial.db");
    let hold = data_dir.join(format!(
        "{HOLD_FILE}.{}.{}",
        std::process::id(),
        crate::store::now_ms()
    ));
    fs::write(&hold, std::process::id().to_string())
        .map_err(|e| format!("cannot write {}: {e}", hold.display()))?;
    std::thread::sleep(HOLD_SETTLE);
    let r = write_archive(data_dir, &partial, &snap);
    let _ = fs::remove_file(&snap);
    let _ = fs::remove_file(&hold);
    let entries = match r.and_then(|()| verify(&partial, None)) {
        Ok(n) => n,
        Err(e) => {
            let _ = fs::remove_file(&partial);
            return Err(e);
        }
    };
    fs::rename(&partial, out).map_err(|e| format!("cannot rename to {}: {e}", out.display()))?;
    sync_dir(out);
    Ok(format!(
        "backup: {} ({entries} entries, verified)",
        out.display()
    ))
}

fn write_archive(data_dir: &Path, partial: &Path, snap: &Path) -> Result<(), String> {
    let _ = fs::remove_file(snap);
    let conn = rusqlite::Connection::open(data_dir.join(DB)).map_err(|e| e.to_string())?;
    conn.busy_timeout(Duration::from_secs(30))
        .map_err(|e| e.to_string())?;
    conn.execute("VACUUM INTO ?1", [snap.to_string_lossy()])
        .map_err(|e| format!("database snapshot failed: {e}"))?;
    drop(conn);
    let file =
        File::create(partial).map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
    let mut tar = tar::Builder::new(BufWriter::new(file));
    let mut manifest = String::new();
    let mut add =
        |tar: &mut tar::Builder<BufWriter<File>>, src: &Path, name: &str| -> Result<(), String> {
            let hash = hash_file(src).map_err(|e| format!("cannot read {}: {e}", src.display()))?;
            manifest.push_str(&format!("{hash}  {name}\n"));
            tar.append_path_with_name(src, name)
                .map_err(|e| format!("cannot write {name}: {e}"))
        };
    add(&mut tar, snap, DB)?;
    let mut written = 1;
    for dir in ["files/blobs", "files/thumbs"] {
        for (name, path) in walk(&data_dir.join(dir), dir) {
            match add(&mut tar, &path, &name) {
                Ok(()) => {}
                // A thumbnail may be replaced under us; blobs are held.
                Err(e) if dir == "files/thumbs" && !path.exists() => log::warn!("{e}"),
                Err(e) => return Err(e),
            }
            written += 1;
            progress("written", written);
        }
    }
    let mut header = tar::Header::new_gnu();
    header.set_size(manifest.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, MANIFEST, manifest.as_bytes())
        .map_err(|e| e.to_string())?;
    let file = tar
        .into_inner()
        .map_err(|e| e.to_string())?
        .into_inner()
        .map_err(|e| e.to_string())?;
    file.sync_all().map_err(|e| format!("fsync failed: {e}"))
}

/// `files/blobs/ab/<hash>` style names of every regular file two levels under `root`.
fn walk(root: &Path, prefix: &str) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let Ok(dirs) = fs::read_dir(root) else {
        return out;
    };
    for d in dirs.flatten() {
        let Ok(files) = fs::read_dir(d.path()) else {
            continue;
        };
        for f in files.flatten() {
            if f.file_type().is_ok_and(|t| t.is_file()) {
                let name = format!(
                    "{prefix}/{}/{}",
                    d.file_name().to_string_lossy(),
                    f.file_name().to_string_lossy()
                );
                out.push((name, f.path()));
            }
        }
    }
    out.sort();
    out
}

/// Reads the archive, hashing every entry, and checks them against the manifest. With
/// `into`, each entry is also written under that directory. Returns the number of entries.
fn verify(archive: &Path, into: Option<&Path>) -> Result<usize, String> {
    let file =
        File::open(archive).map_err(|e| format!("cannot open {}: {e}", archive.display()))?;
    let mut tar = tar::Archive::new(BufReader::new(file));
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut manifest: Option<String> = None;
    for entry in tar.entries().map_err(|e| format!("not a backup: {e}"))? {
        let mut entry = entry.map_err(|e| format!("damaged archive: {e}"))?;
        let name = entry
            .path()
            .map_err(|e| format!("damaged archive: {e}"))?
            .to_string_lossy()
            .into_owned();
        if name == MANIFEST {
            let mut s = String::new();
            entry
                .read_to_string(&mut s)
                .map_err(|e| format!("damaged manifest: {e}"))?;
            manifest = Some(s);
            continue;
        }
        if !valid_name(&name) {
            return Err(format!("unexpected entry {name:?} in archive"));
        }
        let hash = match into {
            Some(dir) => {
                let dest = dir.join(&name);
                if let Some(p) = dest.parent() {
                    fs::create_dir_all(p)
                        .map_err(|e| format!("cannot create {}: {e}", p.display()))?;
                }
                let mut out = File::create(&dest)
                    .map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
                let hash = hash_copy(&mut entry, &mut out)
                    .map_err(|e| format!("damaged entry {name}: {e}"))?;
                // A restored DATA_DIR must survive a power cut like the original did.
                out.sync_all().map_err(|e| format!("fsync failed: {e}"))?;
                hash
            }
            None => hash_copy(&mut entry, &mut io::sink())
                .map_err(|e| format!("damaged entry {name}: {e}"))?,
        };
        if name.starts_with("files/blobs/") && !name.ends_with(&hash) {
            return Err(format!("{name}: content does not match its hash"));
        }
        seen.insert(name, hash);
        progress("checked", seen.len());
    }
    let manifest = manifest.ok_or("not a backup: no manifest (an unfinished or damaged file?)")?;
    let mut listed = 0;
    for line in manifest.lines() {
        let (hash, name) = line.split_once("  ").ok_or("damaged manifest")?;
        match seen.get(name) {
            Some(h) if h == hash => listed += 1,
            Some(_) => return Err(format!("{name}: hash does not match the manifest")),
            None => return Err(format!("{name}: in the manifest but not in the archive")),
        }
    }
    if listed != seen.len() || !seen.contains_key(DB) {
        return Err("archive and manifest disagree".into());
    }
    Ok(listed)
}

/// Only what `backup` writes: no absolute paths, no `..`, nothing outside the data layout.
fn valid_name(name: &str) -> bool {
    if name == DB {
        return true;
    }
    let parts: Vec<&str> = name.split('/').collect();
    let hexish = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    parts.len() == 4
        && parts[0] == "files"
        && (parts[1] == "blobs" || parts[1] == "thumbs")
        && parts[2].len() == 2
        && hexish(parts[2])
        && hexish(parts[3])
}

/// Fills an empty (or missing) `data_dir` from `archive`, verifying every hash; on any
/// failure removes what it wrote.
pub fn restore(data_dir: &Path, archive: &Path) -> Result<String, String> {
    if let Ok(mut entries) = fs::read_dir(data_dir) {
        if entries.next().is_some() {
            return Err(format!(
                "{} is not empty; restore only fills an empty DATA_DIR",
                data_dir.display()
            ));
        }
    }
    fs::create_dir_all(data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    match verify(archive, Some(data_dir)) {
        Ok(n) => {
            for sub in ["files/tmp", "files/blobs", "files/thumbs"] {
                let _ = fs::create_dir_all(data_dir.join(sub));
            }
            sync_dir(&data_dir.join(DB));
            Ok(format!(
                "restore: {n} entries into {}, verified",
                data_dir.display()
            ))
        }
        Err(e) => {
            if let Ok(entries) = fs::read_dir(data_dir) {
                for e in entries.flatten() {
                    let _ = fs::remove_dir_all(e.path()).or_else(|_| fs::remove_file(e.path()));
                }
            }
            Err(e)
        }
    }
}

/// On a terminal, a progress line on stderr every 100 entries (never in logs or pipes, so a
/// failure stays one clear line there).
fn progress(what: &str, n: usize) {
    use std::io::IsTerminal;
    if n.is_multiple_of(100) && io::stderr().is_terminal() {
        eprint!("\r{n} entries {what}…");
    }
}

fn hash_file(path: &Path) -> io::Result<String> {
    hash_copy(&mut File::open(path)?, &mut io::sink())
}

fn hash_copy(from: &mut impl Read, to: &mut impl Write) -> io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        to.write_all(&buf[..n])?;
    }
    Ok(crate::files::hex(&h.finalize()))
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Fsyncs the directory holding `path`, so a rename into it is durable.
fn sync_dir(path: &Path) {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}
