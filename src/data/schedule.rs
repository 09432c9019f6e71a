//! Scheduled backups: a thread of the server that writes `BACKUP_DIR/backup-<unix ms>.tar`
//! every `BACKUP_EVERY_H` hours and keeps the newest `BACKUP_KEEP`.

use std::path::{Path, PathBuf};
use std::time::Duration;

const PREFIX: &str = "backup-";
const SUFFIX: &str = ".tar";

/// Starts the backup thread.
pub fn start(data_dir: PathBuf, dir: PathBuf, every: Duration, keep: usize) {
    let spawned = std::thread::Builder::new()
        .name("backup".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            if let Err(e) = std::fs::create_dir_all(&dir) {
                log::error!("backup: cannot create {}: {e}", dir.display());
                continue;
            }
            let out = dir.join(format!("{PREFIX}{}{SUFFIX}", crate::store::now_ms()));
            match super::backup(&data_dir, &out) {
                Ok(msg) => log::info!("{msg}"),
                Err(e) => log::error!("backup failed: {e}"),
            }
            for old in to_remove(&dir, keep) {
                if let Err(e) = std::fs::remove_file(&old) {
                    log::warn!("backup: cannot remove {}: {e}", old.display());
                }
            }
        });
    if let Err(e) = spawned {
        log::error!("backup: cannot start the backup thread: {e}");
    }
}

/// The scheduled backups in `dir` beyond the newest `keep` (names sort by time). Leaves
/// alone every file it did not name, `.partial` ones included.
pub fn to_remove(dir: &Path, keep: usize) -> Vec<PathBuf> {
    let mut ours: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let ms = name
                .strip_prefix(PREFIX)?
                .strip_suffix(SUFFIX)?
                .parse()
                .ok()?;
            Some((ms, e.path()))
        })
        .collect();
    ours.sort();
    let n = ours.len().saturating_sub(keep);
    ours.into_iter().take(n).map(|(_, p)| p).collect()
}
