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

/// True while a (live) backup holds `data_dir`.
pub fn backup_holds(data_dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(data_dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        e.file_name().to_string_lossy().starts_with(HOLD_FILE)
            && e.metadata().and_then(|m| m.modified()).is_ok_and(|t| {
                SystemTime::now()
                    .duration_since(t)
                    .map_or(true, |age| age < HOLD_MAX_AGE)
            })
    })
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
