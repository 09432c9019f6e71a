//! Where a chat message's time goes on its way to its recipients (issue 20): a timestamp
//! taken when the sender's frame is read travels with the message, and each stage of the
//! path records the time since then in a histogram, exported by `GET /metrics` as
//! `md_delivery_stage_seconds{stage="…"}`.
//!
//! The stages, in path order (docs/ARCHITECTURE.md "A message's life"), each measured from
//! the moment the reader got the `send` frame, so each is at least the one before it:
//! - `commit`: the store committed the message and its answer runs (store thread);
//! - `router`: the router took the `Publish` off its queue (router thread);
//! - `push`: the router queued the frame in every recipient's outbox and woke the writer;
//! - `sendmsg_first` and `sendmsg_last`: the writer finished the first, and the last, of
//!   the outboxes that fan-out woke it for (writer thread). The last is what the slowest
//!   recipient waits for on the server.
//!
//! Cheap enough to stay on: one monotonic clock read and three relaxed atomic adds per
//! stage per message (not per delivery: the writer records its pass once per fan-out).
//! The stage histograms are process-wide statics; nothing here owns a thread.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

/// One stage of a message's path; `NAMES` gives their `stage` labels in the same order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Commit = 0,
    Router = 1,
    Push = 2,
    SendmsgFirst = 3,
    SendmsgLast = 4,
}

/// The `stage` label of each `Stage`, in path order.
pub const NAMES: [&str; 5] = ["commit", "router", "push", "sendmsg_first", "sendmsg_last"];

/// Upper bounds of the histogram buckets, in microseconds: fine where a quiet server's
/// stages fall (tens of µs to a few ms), coarse out to a second.
const BOUNDS_US: [u64; 24] = [
    25, 50, 100, 200, 300, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 7_500, 10_000, 15_000,
    20_000, 30_000, 50_000, 75_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
];

/// The time since the sender's frame was read; `Copy`, so it rides along with the message.
#[derive(Debug, Clone, Copy)]
pub struct Trace {
    read: Instant,
}

impl Trace {
    /// Stamps the moment a frame was read.
    pub fn start() -> Trace {
        Trace {
            read: Instant::now(),
        }
    }

    /// Records that this message reached `stage` now.
    pub fn stage(&self, stage: Stage) {
        HISTOGRAMS[stage as usize].record(self.read.elapsed().as_nanos() as u64);
    }
}

struct Histogram {
    /// Per bucket (not cumulative); the last one is `+Inf`.
    buckets: [AtomicU64; BOUNDS_US.len() + 1],
    sum_ns: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    const fn new() -> Histogram {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; BOUNDS_US.len() + 1],
            sum_ns: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    fn record(&self, ns: u64) {
        let i = BOUNDS_US.partition_point(|&b| b * 1_000 < ns);
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(ns, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }
}

static HISTOGRAMS: [Histogram; NAMES.len()] = [const { Histogram::new() }; NAMES.len()];

/// How many messages reached `stage` so far (for tests of this module).
pub fn count(stage: Stage) -> u64 {
    HISTOGRAMS[stage as usize].count.load(Relaxed)
}

/// Appends the stage histograms in the Prometheus text format.
pub fn render(out: &mut String) {
    use std::fmt::Write;
    let name = "md_delivery_stage_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Time from reading a chat message's send frame to the end of each stage of its path (commit, router, push, sendmsg_first, sendmsg_last)."
    );
    let _ = writeln!(out, "# TYPE {name} histogram");
    for (stage, h) in NAMES.iter().zip(HISTOGRAMS.iter()) {
        let mut cumulative = 0u64;
        for (i, b) in h.buckets.iter().enumerate() {
            cumulative += b.load(Relaxed);
            let le = match BOUNDS_US.get(i) {
                Some(us) => format!("{}", *us as f64 / 1e6),
                None => "+Inf".to_string(),
            };
            let _ = writeln!(
                out,
                "{name}_bucket{{stage=\"{stage}\",le=\"{le}\"}} {cumulative}"
            );
        }
        let sum = h.sum_ns.load(Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{{stage=\"{stage}\"}} {sum:.9}");
        let _ = writeln!(
            out,
            "{name}_count{{stage=\"{stage}\"}} {}",
            h.count.load(Relaxed)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_take_values_up_to_their_bound() {
        let h = Histogram::new();
        for us in [0, 25, 26, 1_000, 3_000_000] {
            h.record(us * 1_000);
        }
        let at = |i: usize| h.buckets[i].load(Relaxed);
        assert_eq!(at(0), 2, "0 and 25 µs are ≤ 25 µs");
        assert_eq!(at(1), 1, "26 µs falls in (25, 50]");
        assert_eq!(at(BOUNDS_US.iter().position(|&b| b == 1_000).unwrap()), 1);
        assert_eq!(at(BOUNDS_US.len()), 1, "past the last bound: +Inf");
        assert_eq!(h.count.load(Relaxed), 5);
    }
}
