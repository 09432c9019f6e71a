//! The time budget of a read job. Runs on the store thread, around the read it guards.
//!
//! Reads run on the one store thread, between the batches of writes, so one slow read holds
//! up every commit queued behind it (issue 19: one member's searches pushed everyone's acks
//! to 13 s). `Store::read` runs each read through `within_read_budget`: SQLite's progress
//! handler looks at the clocks every `BUDGET_CHECK_STEPS` VM steps and interrupts the
//! statement past `READ_BUDGET_CPU` of this thread's CPU time or `READ_BUDGET_WALL`, and the
//! read is answered 503 `unavailable` with `Retry-After`.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::error::{ApiError, ApiResult, Code};
use crate::metrics::METRICS;

/// The most store-thread CPU time one read may use. Every commit queued behind a read waits
/// for it, so this is what one read can add to everyone's acknowledgement. The reads the app
/// makes take well under a millisecond (a 50-message piece of a page, a session lookup, a
/// search walked in index order); 10 ms leaves room for a cold cache without letting a
/// hostile query (a common word filtered to a channel that has none of its matches: ~100 ms
/// over 300,000 messages) hold the thread. CPU time, not wall time, so that a machine busy
/// with other work does not turn ordinary reads into refusals.
pub const READ_BUDGET_CPU: Duration = Duration::from_millis(10);
/// The most wall-clock time one read may take, for reads that wait on the disk rather than
/// the CPU. Generous: only a read that would stall everyone for a long time hits it.
pub const READ_BUDGET_WALL: Duration = Duration::from_millis(250);
/// SQLite VM steps between two looks at the clocks (a look is two vDSO calls, ~50 ns; 1,000
/// steps are ~20 µs of work).
const BUDGET_CHECK_STEPS: std::ffi::c_int = 1000;
/// What a read past its budget tells the client to wait before trying again.
const OVER_BUDGET_RETRY_MS: u64 = 1000;

/// This thread's CPU time (user + system): what a query costs the store thread, however busy
/// the rest of the machine is.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we own; this clock exists on every Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Removes the progress handler however the read ends (a panic included), so the budget of
/// one read never applies to the job after it.
struct BudgetGuard<'c>(&'c Connection);

impl Drop for BudgetGuard<'_> {
    fn drop(&mut self) {
        self.0
            .progress_handler(BUDGET_CHECK_STEPS, None::<fn() -> bool>);
    }
}

/// Runs `f` with SQLite's progress handler armed: past `READ_BUDGET_CPU` of this thread's
/// CPU time or `READ_BUDGET_WALL`, the running statement is interrupted (SQLITE_INTERRUPT)
/// and the answer is `over_budget()`. An interrupted SELECT leaves the enclosing
/// transaction, and the batch's writes in it, as they were (SQLite rolls back only
/// interrupted writes; `tests::an_interrupted_read_keeps_the_batch`). Only reads may run
/// here, for that reason.
pub(super) fn within_read_budget<R>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> ApiResult<R>,
) -> ApiResult<R> {
    let over = Arc::new(AtomicBool::new(false));
    let (cpu0, wall0, flag) = (thread_cpu_time(), Instant::now(), over.clone());
    conn.progress_handler(
        BUDGET_CHECK_STEPS,
        Some(move || {
            let past = thread_cpu_time().saturating_sub(cpu0) > READ_BUDGET_CPU
                || wall0.elapsed() > READ_BUDGET_WALL;
            if past {
                flag.store(true, Relaxed);
            }
            past
        }),
    );
    let guard = BudgetGuard(conn);
    let result = f(conn);
    drop(guard);
    if over.load(Relaxed) {
        METRICS.reads_over_budget.fetch_add(1, Relaxed);
        log::debug!(
            "a read was stopped at its budget after {} ms",
            wall0.elapsed().as_millis()
        );
        return Err(over_budget());
    }
    result
}

/// 503 `unavailable` with `Retry-After`: the answer to a read stopped at its budget.
pub fn over_budget() -> ApiError {
    let mut e = ApiError::new(
        Code::Unavailable,
        "that would take too long; try again, or narrow it down",
    );
    e.retry_after_ms = Some(OVER_BUDGET_RETRY_MS);
    e
}

#[cfg(test)]
mod tests {
    use super::super::schema::test_db as db;
    use super::super::{insert_message, insert_user, search};
    use super::*;

    #[test]
    fn an_interrupted_read_keeps_the_batch() {
        let c = db();
        let u = insert_user(&c, "alice", "h", true).unwrap();
        c.execute_batch("BEGIN IMMEDIATE").unwrap();
        insert_message(&c, &u, "general", "kept", None, None, &[]).unwrap();
        // A read that cannot finish within the budget: a recursive count to 10^9.
        let slow = within_read_budget(&c, |c| {
            Ok(c.query_row(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000)
                 SELECT count(*) FROM n",
                [],
                |r| r.get::<_, i64>(0),
            )?)
        });
        assert_eq!(slow.unwrap_err().code, Code::Unavailable);
        assert!(!c.is_autocommit(), "the batch's transaction is still open");
        // The next read has its own budget, and the handler of the first is gone.
        let n = within_read_budget(&c, |c| Ok(search(c, "kept", None, 10)?.len())).unwrap();
        assert_eq!(n, 1);
        c.execute_batch("COMMIT").unwrap();
        assert_eq!(search(&c, "kept", None, 10).unwrap().len(), 1);
    }
}
