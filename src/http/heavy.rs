//! How many heavy responses (history and search pages) each user and each client address
//! may have in flight at once.
//!
//! A history page can be 3.2 MB (200 messages of 4,000 emoji). Streaming it keeps the
//! memory of one response small, but each one in flight still holds a connection thread,
//! store round trips and a piece of the page until the client takes it. Issue 19: 250
//! connections from one address that asked for that page and never read raised RSS by
//! 1.85 GB. So a user gets `MAX_PER_USER` at once and an address `MAX_PER_ADDRESS`; past
//! either, a request waits up to `WAIT` for a place (ordinary pages take milliseconds, so a
//! crowd catching up after a restart from behind one NAT just queues), then gets 429
//! `rate_limited` with `Retry-After`, before anything is read from the store.
//! A `Permit` is held by the response body and dropped when the response is written or
//! abandoned. Counts live in one small map each, and an entry goes when its count is 0.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::error::{ApiError, ApiResult};
use crate::metrics::METRICS;

/// The browser app has at most a history page and a search in flight per tab; four covers a
/// few tabs of one person.
pub const MAX_PER_USER: usize = 4;
/// Several members behind one NAT (a household, an office) share an address. Normal pages
/// are written in milliseconds, so 16 at once is a lot of people scrolling.
pub const MAX_PER_ADDRESS: usize = 16;
/// How long a request waits for a place before it is refused. Long enough for a burst of
/// ordinary pages ahead of it (a few ms each), short against the 30 s a stalled one holds.
const WAIT: Duration = Duration::from_secs(5);
/// What a refused request is told to wait.
const RETRY_MS: u64 = 1000;

#[derive(Default)]
struct Counts {
    users: HashMap<i64, usize>,
    addresses: HashMap<String, usize>,
}

/// The counts of heavy responses in flight; shared by every connection thread.
#[derive(Default)]
pub struct HeavyGate {
    counts: Mutex<Counts>,
    freed: Condvar,
}

/// One heavy response's place; frees it when dropped.
pub struct Permit {
    gate: Arc<HeavyGate>,
    user: i64,
    address: String,
}

impl HeavyGate {
    /// A place for one more heavy response of `user` from `peer`, waiting up to `WAIT`
    /// for one, or 429.
    pub fn admit(self: &Arc<Self>, user: i64, peer: IpAddr) -> ApiResult<Permit> {
        self.admit_within(user, peer, WAIT)
    }

    fn admit_within(
        self: &Arc<Self>,
        user: i64,
        peer: IpAddr,
        wait: Duration,
    ) -> ApiResult<Permit> {
        let address = crate::http::proxy::ClientNet::of(peer).to_string();
        let deadline = Instant::now() + wait;
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let by_user = c.users.get(&user).copied().unwrap_or(0);
            let by_address = c.addresses.get(&address).copied().unwrap_or(0);
            if by_user < MAX_PER_USER && by_address < MAX_PER_ADDRESS {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if !left.is_zero() {
                c = self
                    .freed
                    .wait_timeout(c, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
                continue;
            }
            METRICS.heavy_refused.fetch_add(1, Relaxed);
            let mut e = ApiError::rate_limited(RETRY_MS);
            e.message = "too many history or search requests at once; try again".into();
            return Err(e);
        }
        *c.users.entry(user).or_default() += 1;
        *c.addresses.entry(address.clone()).or_default() += 1;
        Ok(Permit {
            gate: self.clone(),
            user,
            address,
        })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut c = self.gate.counts.lock().unwrap_or_else(|e| e.into_inner());
        fn release<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
            if let Some(n) = map.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    map.remove(key);
                }
            }
        }
        release(&mut c.users, &self.user);
        release(&mut c.addresses, &self.address);
        // Any waiter may be the one this place was for (another user of the same address).
        self.gate.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_user_and_per_address_and_frees_on_drop() {
        let gate = Arc::new(HeavyGate::default());
        let home: IpAddr = "192.0.2.1".parse().unwrap();
        let mine: Vec<Permit> = (0..MAX_PER_USER)
            .map(|_| gate.admit(1, home).unwrap())
            .collect();
        let none = Duration::ZERO;
        let refused = gate
            .admit_within(1, "192.0.2.9".parse().unwrap(), none)
            .err()
            .unwrap();
        assert_eq!(refused.code, crate::error::Code::RateLimited);
        assert!(refused.retry_after_ms.is_some());
        let others: Vec<Permit> = (0..MAX_PER_ADDRESS - MAX_PER_USER)
            .map(|i| gate.admit(100 + i as i64, home).unwrap())
            .collect();
        assert!(
            gate.admit_within(999, home, none).is_err(),
            "the address is full"
        );
        assert!(gate.admit(999, "192.0.2.9".parse().unwrap()).is_ok());
        drop(mine);
        drop(others);
        assert!(gate.admit(1, home).is_ok());
        let c = gate.counts.lock().unwrap();
        assert!(
            c.users.is_empty() && c.addresses.is_empty(),
            "nothing left behind"
        );
    }

    #[test]
    fn a_request_waits_for_a_place_freed_meanwhile() {
        let gate = Arc::new(HeavyGate::default());
        let home: IpAddr = "192.0.2.1".parse().unwrap();
        let mine: Vec<Permit> = (0..MAX_PER_USER)
            .map(|_| gate.admit(1, home).unwrap())
            .collect();
        let waiter = {
            let gate = gate.clone();
            std::thread::spawn(move || gate.admit_within(1, home, Duration::from_secs(5)).is_ok())
        };
        std::thread::sleep(Duration::from_millis(50));
        drop(mine);
        assert!(waiter.join().unwrap(), "the waiter got the freed place");
    }
}
