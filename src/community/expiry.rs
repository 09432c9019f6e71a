//! The timeout clock: when a member's timeout runs out, the server says so, so that every
//! open page learns it at that moment — the member list drops the countdown, and the
//! member's own channels get `send_messages` back (`channel_update`), which unlocks the
//! composer — without a reload and without each client polling.
//!
//! Owned by its own thread (`timeouts`), which owns nothing but its timer. It reads the
//! published `Snapshot` for the earliest timeout end and sleeps until then, or until a new
//! snapshot is published (`Community::publish` wakes it: a timeout set, changed or lifted).
//! When one is due it commits one store job through `routes::commit_update`, the path of
//! every community change: the expired rows are deleted, the snapshot after is published,
//! and the router tells everyone `member_update` and each affected connection what it may
//! now do, in commit order. So the end of a timeout is a committed change like its start.

use std::sync::Arc;
use std::time::Duration;

use super::routes::{commit_update, After};
use super::rows;
use crate::store::now_ms;
use crate::App;

/// After a failed expiry job (the store refusing, say at shutdown), wait this long before
/// trying again, so a persistent failure costs a line a second, not a busy loop.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// The longest the clock sleeps without looking at the snapshot again: a belt for the
/// wake-up channel, cheap (one map scan a minute).
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Starts the timeout clock thread.
pub fn start(app: Arc<App>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("timeouts".into())
        .spawn(move || run(&app))
        .map(drop)
}

fn run(app: &App) {
    let wake = app.community.changes();
    loop {
        let now = now_ms();
        let next = app.community.snapshot().timeouts.values().copied().min();
        match next {
            Some(end) if end <= now => {
                if let Err(e) = expire(app) {
                    log::warn!("timeouts: could not end the timeouts that ran out: {e}");
                    std::thread::sleep(RETRY_AFTER_FAILURE);
                }
            }
            // A millisecond past the end, so the job finds it over (`timeout_until` is `> now`).
            Some(end) => {
                let wait = Duration::from_millis((end - now) as u64 + 1).min(MAX_SLEEP);
                let _ = wake.recv_timeout(wait);
            }
            None => {
                let _ = wake.recv_timeout(MAX_SLEEP);
            }
        }
    }
}

/// One job: every timeout over by now is deleted and announced as that member's
/// `member_update` (with `timeout_until_ts` null).
fn expire(app: &App) -> crate::error::ApiResult<()> {
    commit_update(app, |c, s| {
        let now = now_ms();
        let mut after = Vec::new();
        for (&user_id, &until) in &s.timeouts {
            if until > now {
                continue;
            }
            rows::set_timeout(c, user_id, None)?;
            // A row of an account that is gone (merged away) just goes.
            if let Ok(user) = crate::store::user_by_id(c, user_id) {
                after.push(After::Member(user));
            }
        }
        Ok(((), None, after))
    })
}
