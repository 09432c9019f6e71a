//! Token buckets: the per-user budgets (sends, `SEND_RATE` / `SEND_BURST`; voice signaling,
//! voice state changes, voice joins and `/ws` churn, issue 19) and the per-connection budget
//! for bad frames. Pure logic plus one small shared map.

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
        self.check_at(now)?;
        self.tokens -= 1.0;
        Ok(())
    }

    pub fn take(&mut self) -> Result<(), u64> {
        self.take_at(Instant::now())
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
    }

    /// Whether a token is available at `now`, without taking it; `Err(ms)` as in `take_at`.
    pub fn check_at(&mut self, now: Instant) -> Result<(), u64> {
        self.refill(now);
        if self.tokens >= 1.0 {
            Ok(())
        } else {
            Err((((1.0 - self.tokens) / self.rate) * 1000.0).ceil().max(1.0) as u64)
        }
    }

    /// Takes one token at `now` even when none is left: the bucket goes into debt, down to
    /// one whole burst, and refills from there. For costs known only afterwards (a
    /// connection that turned out to be brief).
    pub fn charge_at(&mut self, now: Instant) {
        self.refill(now);
        self.tokens = (self.tokens - 1.0).max(-self.burst);
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

    fn with<T>(&self, user_id: i64, f: impl FnOnce(&mut Bucket) -> T) -> T {
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        f(map
            .entry(user_id)
            .or_insert_with(|| Bucket::new(self.rate, self.burst)))
    }

    pub fn take(&self, user_id: i64) -> Result<(), u64> {
        self.with(user_id, |b| b.take())
    }

    /// See `Bucket::check_at`.
    pub fn check(&self, user_id: i64) -> Result<(), u64> {
        self.with(user_id, |b| b.check_at(Instant::now()))
    }

    /// See `Bucket::charge_at`.
    pub fn charge(&self, user_id: i64) {
        self.with(user_id, |b| b.charge_at(Instant::now()))
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
    fn check_takes_nothing_and_charge_goes_into_debt() {
        let t0 = Instant::now();
        let mut b = Bucket::new(1.0, 2.0);
        assert!(b.check_at(t0).is_ok());
        assert!(b.check_at(t0).is_ok(), "check takes no token");
        for _ in 0..10 {
            b.charge_at(t0);
        }
        // Two tokens, ten charges: the debt stops at one burst (-2), so it takes 3 s to
        // have a whole token again.
        let wait = b.check_at(t0).unwrap_err();
        assert_eq!(wait, 3000);
        assert!(b.check_at(t0 + Duration::from_millis(2999)).is_err());
        assert!(b.check_at(t0 + Duration::from_millis(3000)).is_ok());
    }

    #[test]
    fn per_user_buckets_are_separate() {
        let l = PerUser::new(1.0, 1.0);
        assert!(l.take(1).is_ok());
        assert!(l.take(1).is_err());
        assert!(l.take(2).is_ok());
    }
}
