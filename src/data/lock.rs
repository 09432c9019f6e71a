//! The `DATA_DIR` lock: `DATA_DIR/server.lock`, held with an exclusive OS file lock
//! (`flock`) by whoever writes the database as its only writer — the server for as long as it
//! runs, `import-discord` while it imports. The other one is then refused with a clear line
//! instead of two writers breaking the one-writer rule (and the server's in-memory state,
//! which it reads once at start).
//!
//! The OS drops the lock when the process ends, however it ends (kill -9 included), so a
//! crash never leaves a stale lock behind; the file itself stays and means nothing alone.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::Path;

/// The lock file's name under `DATA_DIR`.
pub const LOCK_FILE: &str = "server.lock";

/// Held for as long as it lives; dropping it (or the process ending) releases the lock.
#[derive(Debug)]
pub struct DataLock {
    _file: File,
}

/// Takes the lock on `data_dir` for `who` ("the server", "import-discord"), or says who has
/// it. Writes our pid into the file, for an operator who wonders which process holds it.
pub fn take(data_dir: &Path, who: &str) -> Result<DataLock, String> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| format!("cannot create DATA_DIR {}: {e}", data_dir.display()))?;
    let path = data_dir.join(LOCK_FILE);
    // No truncate on open: the pid inside is the holder's until we hold the lock.
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            let holder = holder.trim();
            let holder = if holder.is_empty() { "it" } else { holder };
            return Err(format!(
                "DATA_DIR {} is in use by another mini-discord process ({holder}, holds \
                 {LOCK_FILE}); stop it before running {who}",
                data_dir.display(),
            ));
        }
        Err(TryLockError::Error(e)) => {
            return Err(format!("cannot lock {}: {e}", path.display()));
        }
    }
    let _ = file.set_len(0);
    let _ = write!(file, "{who}, pid {}", std::process::id());
    Ok(DataLock { _file: file })
}

/// True while some process holds the lock on `data_dir` (a running server or import).
pub fn held(data_dir: &Path) -> bool {
    let Ok(file) = File::open(data_dir.join(LOCK_FILE)) else {
        return false;
    };
    matches!(file.try_lock(), Err(TryLockError::WouldBlock))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = std::env::temp_dir().join(format!("md-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = take(&dir, "the server").unwrap();
        assert!(held(&dir));
        let e = take(&dir, "import-discord").unwrap_err();
        assert!(e.contains("in use") && e.contains("the server, pid"), "{e}");
        drop(first);
        assert!(!held(&dir));
        take(&dir, "import-discord").unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
