//! Scheduled backups: a thread of the server that writes `BACKUP_DIR/backup-<unix ms>.tar`
//! every `BACKUP_EVERY_H` hours and keeps the newest `BACKUP_KEEP`; and what the admin sees
//! of it (`GET /api/admin/backups`, [`status`]). The thread owns the schedule; the little it
//! shares (next run, last failure) sits behind [`STATE`]'s lock.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

const PREFIX: &str = "backup-";
const SUFFIX: &str = ".tar";

/// Written by the backup thread, read by `GET /api/admin/backups`.
#[derive(Debug, Default)]
struct State {
    next_ts: Option<i64>,
    /// The last run's failure (unix ms, message); cleared by the next success.
    last_error: Option<(i64, String)>,
}

static STATE: Mutex<State> = Mutex::new(State {
    next_ts: None,
    last_error: None,
});

/// A finished backup file.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BackupFile {
    pub file: String,
    pub size: u64,
    /// When it was taken (unix ms, from its name).
    pub ts: i64,
}

/// What the admin settings show of scheduled backups.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Status {
    /// `BACKUP_DIR`, null when scheduled backups are off.
    pub dir: Option<String>,
    pub every_h: f64,
    pub keep: usize,
    /// The newest finished backup in `BACKUP_DIR` (also one from before a restart).
    pub last: Option<BackupFile>,
    /// How many finished backups `BACKUP_DIR` holds.
    pub count: usize,
    pub next_ts: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_ts: Option<i64>,
}

/// The schedule as it stands: read from `BACKUP_DIR` and the thread's state.
pub fn status(dir: Option<&Path>, every_h: f64, keep: usize) -> Status {
    let state = STATE.lock().unwrap_or_else(|p| p.into_inner());
    let mut files = dir.map(ours).unwrap_or_default();
    let count = files.len();
    let last = files.pop().map(|(ts, path)| BackupFile {
        file: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        size: std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
        ts: ts as i64,
    });
    Status {
        dir: dir.map(|d| d.display().to_string()),
        every_h,
        keep,
        last,
        count,
        next_ts: dir.and(state.next_ts),
        last_error: state.last_error.as_ref().map(|e| e.1.clone()),
        last_error_ts: state.last_error.as_ref().map(|e| e.0),
    }
}

fn set_next(every: Duration) {
    let next = crate::store::now_ms() + every.as_millis() as i64;
    STATE.lock().unwrap_or_else(|p| p.into_inner()).next_ts = Some(next);
}

fn set_error(e: Option<String>) {
    STATE.lock().unwrap_or_else(|p| p.into_inner()).last_error =
        e.map(|e| (crate::store::now_ms(), e));
}

/// Starts the backup thread.
pub fn start(data_dir: PathBuf, dir: PathBuf, every: Duration, keep: usize) {
    let spawned = std::thread::Builder::new()
        .name("backup".into())
        .spawn(move || loop {
            set_next(every);
            std::thread::sleep(every);
            if let Err(e) = std::fs::create_dir_all(&dir) {
                log::error!("backup: cannot create {}: {e}", dir.display());
                set_error(Some(format!("cannot create {}: {e}", dir.display())));
                continue;
            }
            let out = dir.join(format!("{PREFIX}{}{SUFFIX}", crate::store::now_ms()));
            match super::backup(&data_dir, &out) {
                Ok(msg) => {
                    log::info!("{msg}");
                    set_error(None);
                }
                Err(e) => {
                    log::error!("backup failed: {e}");
                    set_error(Some(e));
                }
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
    let ours = ours(dir);
    let n = ours.len().saturating_sub(keep);
    ours.into_iter().take(n).map(|(_, p)| p).collect()
}

/// The finished scheduled backups in `dir`, oldest first.
fn ours(dir: &Path) -> Vec<(u64, PathBuf)> {
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
    ours
}
