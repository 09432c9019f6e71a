//! Token buckets: the per-user send limit (`SEND_RATE`, `SEND_BURST`), and the per-connection
//! budgets for signaling and for bad frames. Pure logic plus one small shared map.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// A token bucket: `burst` tokens, refilled at `rate` per second.
#[derive(Debug, Clone)]
pub struct Bucket {
    tokens: f64,
    last: Instant,
    rate: f64,
    burst: f64,
}

impl Bucket {
    pub fn new(rate: f64, burst: f64) -> Bucket {
        Bucket {
            tokens: burst,
            last: Instant::now(),
            rate,
            burst,
        }
    }

    /// Takes one token at `now`; `Err(ms)` says how long until one is available.
    pub fn take_at(&mut self, now: Instant) -> Result<(), u64> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err((((1.0 - self.tokens) / self.rate) * 1000.0).ceil().max(1.0) as u64)
        }
    }

    pub fn take(&mut self) -> Result<(), u64> {
        self.take_at(Instant::now())
    }
}

/// One bucket per user, shared by all of that user's connections (tabs).
pub struct PerUser {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<i64, Bucket>>,
}

impl PerUser {
    pub fn new(rate: f64, burst: f64) -> PerUser {
        PerUser {
            rate,
            burst,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn take(&self, user_id: i64) -> Result<(), u64> {
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(user_id)
            .or_insert_with(|| Bucket::new(self.rate, self.burst))
            .take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(5.0, 10.0);
        for _ in 0..10 {
            assert!(b.take_at(t0).is_ok());
        }
        let wait = b.take_at(t0).unwrap_err();
        assert!((150..=200).contains(&wait), "{wait}");
        assert!(b.take_at(t0 + Duration::from_millis(200)).is_ok());
        assert!(b.take_at(t0 + Duration::from_millis(200)).is_err());
    }

    #[test]
    fn per_user_buckets_are_separate() {
        let l = PerUser::new(1.0, 1.0);
        assert!(l.take(1).is_ok());
        assert!(l.take(1).is_err());
        assert!(l.take(2).is_ok());
    }
}
