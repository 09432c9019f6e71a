//! How many uploads each user has in flight (API.md: at most 3; the 4th gets 429).
//!
//! Shared by every connection thread behind one mutex held only to count; a slot is a guard,
//! so an upload that fails, panics or loses its client gives its slot back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// API.md: "at most 3 uploads in flight per user". Enough for a few files dropped at once (the
/// browser sends the rest as these finish), and it caps the threads and disk bandwidth one
/// account can hold.
pub const MAX_IN_FLIGHT_PER_USER: u32 = 3;

/// The per-user counters.
#[derive(Default, Clone)]
pub struct InFlight {
    counts: Arc<Mutex<HashMap<i64, u32>>>,
}

/// One upload's slot; dropping it frees the slot.
pub struct Slot {
    counts: Arc<Mutex<HashMap<i64, u32>>>,
    user: i64,
}

impl InFlight {
    /// A slot for `user`, or `None` when they already have [`MAX_IN_FLIGHT_PER_USER`].
    pub fn try_acquire(&self, user: i64) -> Option<Slot> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(user).or_insert(0);
        if *n >= MAX_IN_FLIGHT_PER_USER {
            return None;
        }
        *n += 1;
        Some(Slot {
            counts: self.counts.clone(),
            user,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_per_user_and_slots_come_back() {
        let f = InFlight::default();
        let slots: Vec<_> = (0..3).map(|_| f.try_acquire(1).unwrap()).collect();
        assert!(f.try_acquire(1).is_none());
        assert!(f.try_acquire(2).is_some(), "another user is not affected");
        drop(slots);
        assert!(f.try_acquire(1).is_some());
        assert!(f.counts.lock().unwrap().is_empty());
    }
}
