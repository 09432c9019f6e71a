//! Coalescing of repeated changes, per key (a user): the first change goes out at once;
//! further changes within `interval` of the last one that went out are folded into a single
//! one that goes out when the interval ends, with whatever the state is then (the latest
//! wins). So each key costs at most one broadcast per interval, however fast it changes.
//!
//! Pure bookkeeping with no I/O and no clock of its own: the router (its one owner) says
//! what time it is, asks when the next deferred change is due, and does the sending.
//! Issue 19, finding 2: a member looping voice joins and `state` frames made every `/ws`
//! client receive tens of thousands of `voice_state` events a second.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// `last` is pruned of entries older than `interval` (they mean the same as no entry) once
/// it holds this many more keys than at the last pruning, so it stays the size of the set
/// of recently active keys.
const PRUNE_SLACK: usize = 1024;

#[derive(Debug)]
pub struct Coalescer<K> {
    interval: Duration,
    /// When the last change of each key went out.
    last: HashMap<K, Instant>,
    /// Deferred changes, by when they are due.
    due: BTreeSet<(Instant, K)>,
    /// The keys in `due`, with their due time.
    pending: HashMap<K, Instant>,
    pruned_at_len: usize,
}

impl<K: Ord + Hash + Clone> Coalescer<K> {
    pub fn new(interval: Duration) -> Coalescer<K> {
        Coalescer {
            interval,
            last: HashMap::new(),
            due: BTreeSet::new(),
            pending: HashMap::new(),
            pruned_at_len: 0,
        }
    }

    /// `key` changed at `now`. `true`: send it now (it counts as sent). `false`: it is
    /// deferred (or already was); `take_due` hands it back when its time comes.
    pub fn change(&mut self, key: K, now: Instant) -> bool {
        if self.pending.contains_key(&key) {
            return false;
        }
        if let Some(&t) = self.last.get(&key) {
            let due = t + self.interval;
            if now < due {
                self.pending.insert(key.clone(), due);
                self.due.insert((due, key));
                return false;
            }
        }
        self.sent(key, now);
        true
    }

    /// `key` went out at `now` by other means (a change that cannot wait): a deferred one of
    /// it is dropped, and the next waits a whole interval.
    pub fn sent(&mut self, key: K, now: Instant) {
        if let Some(due) = self.pending.remove(&key) {
            self.due.remove(&(due, key.clone()));
        }
        self.last.insert(key, now);
        if self.last.len() > self.pruned_at_len + PRUNE_SLACK {
            let interval = self.interval;
            self.last
                .retain(|_, t| now.saturating_duration_since(*t) < interval);
            self.pruned_at_len = self.last.len();
        }
    }

    /// When the earliest deferred change is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.due.first().map(|(t, _)| *t)
    }

    /// The keys whose deferred change is due at `now`; each counts as sent at `now`.
    pub fn take_due(&mut self, now: Instant) -> Vec<K> {
        let mut out = Vec::new();
        while let Some((t, _)) = self.due.first() {
            if *t > now {
                break;
            }
            let (_, key) = self.due.pop_first().expect("just looked");
            self.pending.remove(&key);
            self.last.insert(key.clone(), now);
            out.push(key);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const I: Duration = Duration::from_millis(500);

    #[test]
    fn first_change_goes_at_once_then_one_per_interval() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(I);
        assert!(c.change(1, t0));
        // A hundred more changes within the interval fold into one deferred change.
        for i in 1..=100 {
            assert!(!c.change(1, t0 + Duration::from_millis(i)));
        }
        assert_eq!(c.next_due(), Some(t0 + I));
        assert!(c.take_due(t0 + I - Duration::from_millis(1)).is_empty());
        assert_eq!(c.take_due(t0 + I), vec![1]);
        assert_eq!(c.next_due(), None);
        // Right after that flush, the next change waits again.
        assert!(!c.change(1, t0 + I + Duration::from_millis(10)));
        assert_eq!(c.next_due(), Some(t0 + I + I));
    }

    #[test]
    fn keys_are_independent_and_quiet_keys_go_at_once() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(I);
        assert!(c.change("a", t0));
        assert!(c.change("b", t0));
        assert!(!c.change("a", t0 + Duration::from_millis(100)));
        assert!(c.change("b", t0 + I));
        assert_eq!(c.take_due(t0 + I), vec!["a"]);
        assert!(c.change("a", t0 + I * 3));
    }

    #[test]
    fn sent_drops_a_deferred_change() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(I);
        assert!(c.change(7, t0));
        assert!(!c.change(7, t0 + Duration::from_millis(1)));
        c.sent(7, t0 + Duration::from_millis(2));
        assert_eq!(c.next_due(), None);
        assert!(c.take_due(t0 + I * 2).is_empty());
        assert!(!c.change(7, t0 + Duration::from_millis(3)));
    }

    #[test]
    fn old_entries_are_pruned() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(I);
        for k in 0..(PRUNE_SLACK as u64 * 3) {
            assert!(c.change(k, t0 + Duration::from_secs(k)));
        }
        assert!(c.last.len() <= PRUNE_SLACK + 1, "{}", c.last.len());
    }
}
