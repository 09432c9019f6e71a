//! "Own your data": the `backup` and `restore` subcommands (`backup.rs`), `export`
//! (`export.rs`), `import-discord` (`import/`), the `DATA_DIR` lock that keeps an import
//! and a server apart (`lock.rs`), `merge-account`'s store job (`merge.rs`), scheduled backups
//! (`schedule.rs`, a thread of the server) and the hold file through which a running backup
//! keeps the server from deleting bytes its snapshot names.

use std::path::Path;
use std::time::{Duration, SystemTime};

mod backup;
mod export;
pub mod import;
pub mod lock;
mod merge;
pub mod schedule;

pub use backup::{backup, restore};
pub use export::export;
pub use import::import_discord;
pub use merge::{merge_account, Merged};

/// Under `DATA_DIR`: each running backup keeps its own `backup.hold.<pid>.<ms>` (so two
/// backups at once, scheduled and by hand, never release each other's hold).
/// `BlobStore::remove` honours any of them.
pub const HOLD_FILE: &str = "backup.hold";
/// A hold older than this is one a killed backup left behind: it no longer stops deletions,
/// so a crashed backup cannot keep deleted files on disk forever.
pub const HOLD_MAX_AGE: Duration = Duration::from_secs(6 * 3600);

/// True while a (live) backup holds `data_dir`. A hold whose backup process is gone (killed
/// -9, so it could not remove it) is ignored at once, not only after [`HOLD_MAX_AGE`].
pub fn backup_holds(data_dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(data_dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        name.starts_with(HOLD_FILE)
            && !hold_is_dead(&name)
            && e.metadata().and_then(|m| m.modified()).is_ok_and(|t| {
                SystemTime::now()
                    .duration_since(t)
                    .map_or(true, |age| age < HOLD_MAX_AGE)
            })
    })
}

/// True when the hold `backup.hold.<pid>.<ms>` names a process that no longer exists. A
/// hold without a pid in its name counts as live (age alone decides).
fn hold_is_dead(name: &str) -> bool {
    let pid = name
        .strip_prefix(HOLD_FILE)
        .and_then(|r| r.strip_prefix('.'))
        .and_then(|r| r.split('.').next())
        .and_then(|p| p.parse::<libc::pid_t>().ok())
        .filter(|p| *p > 0);
    let Some(pid) = pid else {
        return false;
    };
    // Signal 0 only asks whether the process exists; EPERM means it does (not ours).
    // SAFETY: kill(2) with signal 0 sends nothing and touches no memory of ours.
    let r = unsafe { libc::kill(pid, 0) };
    r != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// `s` with every character that is not an ASCII letter, digit or one of `keep` replaced by
/// `_`: the one rule behind export's file names and import's usernames.
pub(crate) fn ascii_only(s: &str, keep: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || keep.contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Runs a subcommand's body: exit 0, or one clear line on stderr and exit 1.
pub fn exit_code(name: &str, r: Result<String, String>) -> i32 {
    match r {
        Ok(msg) => {
            println!("{msg}");
            0
        }
        Err(e) => {
            eprintln!("mini-discord {name}: {e}");
            1
        }
    }
}
