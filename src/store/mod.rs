//! The store thread: the one owner of the one SQLite connection (`DATA_DIR/chat.db`).
//!
//! Other threads never touch SQLite. They hand the store a job — a closure that runs on the
//! store thread against the connection — through a bounded crossbeam channel. The store
//! thread takes every job that is queued (group commit), runs each inside its own SAVEPOINT
//! (one job's error never undoes another's work) within a single transaction, COMMITs once,
//! and only then answers each job, in commit order. An answer is therefore a promise that
//! the write is durable: with `synchronous=FULL` (the default) even a power cut cannot
//! lose it.
//!
//! Two ways to hand in a job: `submit` queues it and returns at once, its answer a closure
//! that runs on the store thread after COMMIT (WebSocket readers use it, through
//! `realtime::chat::commit_then_publish`, which is how committed changes reach the router
//! in id order); `call` queues it and waits on its own `bounded(1)` reply (HTTP handlers).
//! A job that only reads goes through `read`, which is `call` under a time budget
//! (`budget.rs`): a read past it is abandoned and answered 503 `unavailable`, so that no read
//! holds the commits queued behind it for more than a few milliseconds (issue 19).
//!
//! Everything in this folder runs on the **store thread**, the one owner of SQLite: this
//! file is the thread and its job queue; `budget.rs` is the read budget; the SQL is split
//! by domain — `schema.rs` (pragmas
//! and the append-only migrations keyed on `PRAGMA user_version`), `accounts.rs` (users,
//! sessions, invites), `channels.rs`, `messages.rs` (messages, reactions, history,
//! search) and `attachments.rs` (file rows, the one rule of who may fetch a file). The query functions are re-exported here, so callers write `store::history`.

use std::path::Path;
use std::time::Instant;

use crossbeam_channel::{bounded, Receiver, Sender};
use rusqlite::Connection;

use crate::error::{ApiError, ApiResult};
use crate::metrics::METRICS;

mod accounts;
pub mod attachments;
mod budget;
mod channels;
/// Direct messages' members and pair lookup (docs/DMS.md).
pub mod dms;
mod messages;
mod schema;
/// Profiles, read state, mentions, notification levels, push subscriptions (issue 14).
mod social;

pub use accounts::*;
pub use budget::{over_budget, READ_BUDGET_CPU, READ_BUDGET_WALL};
pub use channels::*;
pub use messages::*;
#[cfg(test)]
pub(crate) use schema::test_db;
pub use schema::{check_db, open_offline};
use schema::{configure, migrate};
pub use social::*;

/// At most this many jobs share one transaction by default (`STORE_BATCH`): big enough to
/// amortise the fsync of COMMIT under load, small enough that one batch never holds the
/// answers back for long. `STORE_BATCH=1` is one transaction per job, the baseline that
/// `bench/` compares group commit against.
pub const DEFAULT_BATCH: usize = 512;
/// Callers block (their own thread only) when this many jobs are waiting.
const QUEUE_BOUND: usize = 8192;

type Done = Box<dyn FnOnce(bool) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> Done + Send>;

/// A handle to the store thread; cheap to clone.
#[derive(Clone)]
pub struct Store {
    jobs: Sender<Job>,
}

/// Which page of history to read.
#[derive(Debug, Clone, Copy)]
pub enum Page {
    Latest,
    Before(i64),
    After(i64),
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Store {
    /// Opens (creating and migrating) the database and starts the store thread.
    pub fn open(data_dir: &Path, synchronous: &str, max_batch: usize) -> Result<Store, String> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| format!("cannot create DATA_DIR {}: {e}", data_dir.display()))?;
        let path = data_dir.join("chat.db");
        let conn =
            Connection::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        configure(&conn, synchronous)
            .map_err(|e| format!("cannot configure {}: {e}", path.display()))?;
        migrate(&conn).map_err(|e| format!("cannot migrate {}: {e}", path.display()))?;
        let (tx, rx) = bounded::<Job>(QUEUE_BOUND);
        std::thread::Builder::new()
            .name("store".into())
            .spawn(move || {
                crate::sched::hop_thread(Some("store"));
                run(conn, rx, max_batch.max(1))
            })
            .map_err(|e| format!("cannot start the store thread: {e}"))?;
        Ok(Store { jobs: tx })
    }

    /// Runs `f` on the store thread inside the next transaction and waits for its answer,
    /// which comes after COMMIT. For reads, and for writes no `/ws` client needs to hear of
    /// (a change they must hear of goes through `realtime::chat::commit_then_publish`).
    pub fn call<R, F>(&self, f: F) -> ApiResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> ApiResult<R> + Send + 'static,
    {
        let (reply_tx, reply_rx) = bounded::<ApiResult<R>>(1);
        self.submit(f, move |result| {
            let _ = reply_tx.send(result);
        })?;
        reply_rx.recv().map_err(|_| ApiError::internal())?
    }

    /// Runs the read-only `f` on the store thread under the read budget (`budget.rs`) and
    /// waits for its answer: a read that would take longer is abandoned and answered 503
    /// `unavailable` with `Retry-After`. Every job that only reads goes through here.
    pub fn read<R, F>(&self, f: F) -> ApiResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> ApiResult<R> + Send + 'static,
    {
        self.call(move |conn| budget::within_read_budget(conn, f))
    }

    /// Queues `f` for the next transaction and returns at once (blocking only while the
    /// queue is full). `done` runs on the store thread after the COMMIT, in commit order,
    /// with the job's result; it must not block. A WebSocket reader uses this so that it can
    /// go on reading while its writes wait for their group commit: a reader that waited for
    /// each commit would cap a batch at one job per connection.
    pub fn submit<R, F, D>(&self, f: F, done: D) -> ApiResult<()>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> ApiResult<R> + Send + 'static,
        D: FnOnce(ApiResult<R>) + Send + 'static,
    {
        let job: Job = Box::new(move |conn: &Connection| {
            let result = in_savepoint(conn, f);
            Box::new(move |committed: bool| {
                done(match result {
                    Ok(r) if committed => Ok(r),
                    Ok(_) => Err(ApiError::internal()),
                    Err(e) => Err(e),
                })
            })
        });
        self.jobs.send(job).map_err(|_| ApiError::internal())
    }
}

fn in_savepoint<R>(conn: &Connection, f: impl FnOnce(&Connection) -> ApiResult<R>) -> ApiResult<R> {
    // Cached statements: these run twice per job, so they are parsed once, not every time.
    conn.prepare_cached("SAVEPOINT job")?.execute([])?;
    // A panic inside a job must not kill the store thread (and with it every write).
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn))).unwrap_or_else(|_| {
            log::error!("a store job panicked");
            Err(ApiError::internal())
        });
    if result.is_err() {
        conn.prepare_cached("ROLLBACK TO job")?.execute([])?;
    }
    conn.prepare_cached("RELEASE job")?.execute([])?;
    result
}

fn run(conn: Connection, jobs: Receiver<Job>, max_batch: usize) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match jobs.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let began = conn.execute_batch("BEGIN IMMEDIATE").is_ok();
        let dones: Vec<Done> = batch.into_iter().map(|job| job(&conn)).collect();
        let committed = began && conn.execute_batch("COMMIT").is_ok();
        if !committed {
            log::error!("store commit failed; answering the batch with errors");
            let _ = conn.execute_batch("ROLLBACK");
        }
        METRICS.observe_batch(dones.len(), started.elapsed());
        for done in dones {
            done(committed);
        }
    }
    log::info!("store thread stopped");
}

/// A query that answers whether the store thread is alive and SQLite answers (`/healthz`).
pub fn health(conn: &Connection) -> ApiResult<()> {
    conn.query_row("SELECT 1", [], |_| Ok(()))?;
    Ok(())
}
