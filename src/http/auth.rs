//! Accounts and sessions: Argon2id password hashes, random session tokens kept only as
//! SHA-256 hashes, cookie/Bearer extraction, the login throttle, and the Origin check that
//! every cookie-trusting path calls (state-changing routes and the WebSocket handshake).
//!
//! Hashing runs on the calling connection thread (it is deliberately slow), never on the
//! store thread. Nothing here logs a password or token.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::http::proxy::ClientNet;
use crate::http::Request;
use crate::model::User;
use crate::realtime::router::SessionRef;
use crate::store::{self, Store};

/// The session cookie's name (API.md).
pub const COOKIE: &str = "md_session";
/// Sessions last 30 days; logging out revokes one at once.
pub const SESSION_TTL_MS: i64 = 30 * 24 * 3600 * 1000;
/// Invites are valid for 7 days.
pub const INVITE_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the OS random source failed");
    b
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new session token: 256 random bits, hex.
pub fn new_token() -> String {
    hex(&random_bytes::<32>())
}

/// A new invite code: 96 random bits, hex (short enough to paste, long enough not to guess).
pub fn new_invite_code() -> String {
    hex(&random_bytes::<12>())
}

pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Argon2id with its default parameters needs 19 MiB per hash, on the calling thread. Without
/// a bound, a crowd of anonymous logins could make the process allocate gigabytes at once
/// (measured: 60 concurrent logins, 1.1 GiB). At most `hash_permits()` hashes run at once;
/// the rest wait up to `HASH_WAIT` and are then told to retry (503).
fn hash_permits() -> usize {
    2 * std::thread::available_parallelism().map_or(2, |n| n.get())
}
const HASH_WAIT: Duration = Duration::from_secs(5);

struct Gate {
    used: Mutex<usize>,
    freed: Condvar,
}

static HASH_GATE: Gate = Gate {
    used: Mutex::new(0),
    freed: Condvar::new(),
};

struct Permit;

impl Drop for Permit {
    fn drop(&mut self) {
        *HASH_GATE.used.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        HASH_GATE.freed.notify_one();
    }
}

fn hash_permit() -> ApiResult<Permit> {
    let max = hash_permits();
    let deadline = Instant::now() + HASH_WAIT;
    let mut used = HASH_GATE.used.lock().unwrap_or_else(|e| e.into_inner());
    while *used >= max {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let mut e = ApiError::new(
                crate::error::Code::Unavailable,
                "the server is busy; try again",
            );
            e.retry_after_ms = Some(1000);
            return Err(e);
        }
        used = HASH_GATE
            .freed
            .wait_timeout(used, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    *used += 1;
    Ok(Permit)
}

pub fn hash_password(password: &str) -> ApiResult<String> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()).map_err(|_| ApiError::internal())?;
    let _permit = hash_permit()?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| ApiError::internal())
}

/// `Ok(true)` when `password` matches `hash`; `Err` only when the server is too busy to check.
pub fn verify_password(password: &str, hash: &str) -> ApiResult<bool> {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return Ok(false);
    };
    let _permit = hash_permit()?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

/// Compares a secret a client sent with ours in time that does not depend on where they
/// first differ: both are hashed first, then every byte is compared.
pub fn same_secret(given: &str, want: &str) -> bool {
    let (a, b) = (
        Sha256::digest(given.as_bytes()),
        Sha256::digest(want.as_bytes()),
    );
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Where a request's session came from: the Origin rule applies only to cookies, since a
/// browser attaches cookies to cross-site requests by itself but never a Bearer header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Cookie,
    Bearer,
}

/// The raw token of a request: `Authorization: Bearer` first, then the cookie.
pub fn request_token(req: &Request) -> Option<(String, Source)> {
    if let Some(v) = req.header("authorization") {
        if let Some(t) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
        {
            return Some((t.trim().to_string(), Source::Bearer));
        }
    }
    req.cookie(COOKIE)
        .filter(|t| !t.is_empty())
        .map(|t| (t, Source::Cookie))
}

/// The signed-in user of a request, or 401.
pub fn authenticate(req: &Request, store: &Store) -> ApiResult<(User, Source, String)> {
    let (token, source) = request_token(req).ok_or_else(ApiError::unauthorized)?;
    let (user, _) = session_of(&token, store)?;
    Ok((user, source, token))
}

/// As `authenticate`, with the session itself (token hash and expiry): a socket keeps it, so
/// that ending the session closes the socket (`realtime/router.rs`).
pub fn authenticate_session(req: &Request, store: &Store) -> ApiResult<(User, Source, SessionRef)> {
    let (token, source) = request_token(req).ok_or_else(ApiError::unauthorized)?;
    let (user, expires_ms) = session_of(&token, store)?;
    let session = SessionRef {
        token_hash: token_hash(&token),
        expires_ms,
    };
    Ok((user, source, session))
}

fn session_of(token: &str, store: &Store) -> ApiResult<(User, i64)> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::unauthorized());
    }
    let hash = token_hash(token);
    store
        .read(move |c| store::session(c, &hash))?
        .ok_or_else(ApiError::unauthorized)
}

/// How a throttle counts.
#[derive(Debug, Clone, Copy)]
pub enum Policy {
    /// `limit` attempts per `window` (counted from the first); past it, refused until the
    /// window ends.
    Window { limit: u32, window: Duration },
    /// `free` attempts, then each further one waits `base`, doubled for every attempt past
    /// `free`, up to `max`: a slowdown, never a lock. Forgotten `forget` after the last.
    Progressive {
        free: u32,
        base: Duration,
        max: Duration,
        forget: Duration,
    },
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    count: u32,
    first: Instant,
    last: Instant,
    wait_until: Instant,
}

/// Attempts counted per key, in a map that cannot grow past `max_entries` (keys are small
/// fixed-size values, so that bounds its bytes too). Expired entries are dropped by `sweep`
/// (on the server's timer) and whenever the map is full; if it is still full, the entry
/// closest to expiring makes room.
pub struct Throttle<K> {
    policy: Policy,
    max_entries: usize,
    entries: Mutex<HashMap<K, Entry>>,
}

impl<K: Hash + Eq + Copy> Throttle<K> {
    pub fn new(policy: Policy, max_entries: usize) -> Throttle<K> {
        Throttle {
            policy,
            max_entries,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// When `e` stops mattering: past it, the key is as good as new.
    fn expires(&self, e: &Entry) -> Instant {
        match self.policy {
            Policy::Window { window, .. } => e.first + window,
            Policy::Progressive { forget, .. } => (e.last + forget).max(e.wait_until),
        }
    }

    /// Takes one attempt for `key`, or `Err(ms to wait)`. Checking and counting happen under
    /// one lock, so concurrent attempts cannot all pass the check before any is counted.
    pub fn take(&self, key: K) -> Result<(), u64> {
        self.take_at(key, Instant::now())
    }

    fn take_at(&self, key: K, now: Instant) -> Result<(), u64> {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if map.get(&key).is_some_and(|e| self.expires(e) <= now) {
            map.remove(&key);
        }
        if !map.contains_key(&key) && map.len() >= self.max_entries {
            map.retain(|_, e| self.expires(e) > now);
            if map.len() >= self.max_entries {
                let soonest = map
                    .iter()
                    .min_by_key(|(_, e)| self.expires(e))
                    .map(|(k, _)| *k);
                if let Some(k) = soonest {
                    map.remove(&k);
                }
            }
        }
        let e = map.entry(key).or_insert(Entry {
            count: 0,
            first: now,
            last: now,
            wait_until: now,
        });
        let wait = |until: Instant| until.saturating_duration_since(now).as_millis().max(1) as u64;
        match self.policy {
            Policy::Window { limit, window } => {
                if e.count >= limit {
                    return Err(wait(e.first + window));
                }
            }
            Policy::Progressive {
                free, base, max, ..
            } => {
                if now < e.wait_until {
                    return Err(wait(e.wait_until));
                }
                if e.count + 1 >= free {
                    let doublings = (e.count + 1 - free).min(20);
                    e.wait_until = now + base.saturating_mul(1 << doublings).min(max);
                }
            }
        }
        e.count += 1;
        e.last = now;
        Ok(())
    }

    /// Gives back one attempt taken with `take` (a `Window` throttle's success refund).
    pub fn refund(&self, key: K) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = map.get_mut(&key) {
            e.count = e.count.saturating_sub(1);
        }
    }

    pub fn clear(&self, key: K) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
    }

    /// Drops every expired entry (the server's sweeper calls this on a timer).
    pub fn sweep(&self) {
        self.sweep_at(Instant::now())
    }

    fn sweep_at(&self, now: Instant) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, e| self.expires(e) > now);
        map.shrink_to_fit();
    }

    /// How many keys are kept (for tests and figures).
    pub fn entries(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Most keys one throttle keeps. A key is a `ClientNet` or a (user id, `ClientNet`) pair and
/// an entry is under 80 bytes with the map's own overhead, so a full throttle is a few MiB
/// however many addresses an attacker has; the issue measured 1.29 GB for 1,200 junk keys when
/// keys were unvalidated names. 65,536 is more distinct addresses failing within one window
/// than a community server sees.
pub const THROTTLE_MAX_ENTRIES: usize = 65_536;

/// The throttles of the account endpoints. None of them is ever keyed on text a client sent:
/// a name that is not a valid username, or names no account, touches only the per-address
/// counter, so an unknown name costs no memory (issue 19, finding 3).
pub struct Throttles {
    /// Failed logins per client network (an IPv4 address or IPv6 /64), any names: 30 per
    /// 15 minutes, then 429 until the window ends. It bounds how many guesses one address
    /// makes in all.
    pub login_ip: Throttle<ClientNet>,
    /// Failed logins per account *and* client network: 10 free, then a delay from 5 s that
    /// doubles with each further failure, up to 15 minutes, forgotten 15 minutes after the
    /// last one. Keyed on the address too, so failures from elsewhere never slow the owner
    /// down (issue 19, finding 5: 10 addresses could lock any account, the admin's included).
    pub login_account: Throttle<(i64, ClientNet)>,
    /// Successful logins per account and client network: 20 per 15 minutes. Each costs an
    /// Argon2 hash and a session row; unlimited, one client made 566 sessions in 10 s.
    pub login_success: Throttle<(i64, ClientNet)>,
    /// Registrations (each costs an Argon2 hash) per client network: 20 per hour.
    pub register_ip: Throttle<ClientNet>,
}

const MINUTE: Duration = Duration::from_secs(60);

impl Default for Throttles {
    fn default() -> Self {
        fn window<K: Hash + Eq + Copy>(limit: u32, window: Duration) -> Throttle<K> {
            Throttle::new(Policy::Window { limit, window }, THROTTLE_MAX_ENTRIES)
        }
        Throttles {
            login_ip: window(30, 15 * MINUTE),
            login_account: Throttle::new(
                Policy::Progressive {
                    free: 10,
                    base: Duration::from_secs(5),
                    max: 15 * MINUTE,
                    forget: 15 * MINUTE,
                },
                THROTTLE_MAX_ENTRIES,
            ),
            login_success: window(20, 15 * MINUTE),
            register_ip: window(20, 60 * MINUTE),
        }
    }
}

impl Throttles {
    /// Drops every expired entry; the sweeper thread calls it every `SWEEP_EVERY`.
    pub fn sweep(&self) {
        self.login_ip.sweep();
        self.login_account.sweep();
        self.login_success.sweep();
        self.register_ip.sweep();
    }
}

/// `Origin` must be this server's own origin or in `ALLOWED_ORIGINS`. When `required`, a
/// missing Origin is refused too (browsers always send one on WebSocket handshakes). Every
/// path that trusts a cookie calls this: state-changing routes (CSRF) and the WebSocket
/// handshake (cross-site WebSocket hijacking).
pub fn check_origin(req: &Request, config: &Config, required: bool) -> ApiResult<()> {
    let Some(origin) = req.header("origin") else {
        return if required {
            Err(ApiError::forbidden("origin not allowed"))
        } else {
            Ok(())
        };
    };
    let host = req.header("host").unwrap_or("");
    let own = !host.is_empty()
        && (origin == format!("http://{host}") || origin == format!("https://{host}"));
    if own || config.allowed_origins.iter().any(|o| o == origin) {
        Ok(())
    } else {
        Err(ApiError::forbidden("origin not allowed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h).unwrap());
        assert!(!verify_password("wrong horse", &h).unwrap());
        assert!(!verify_password("x", "not a hash").unwrap());
    }

    #[test]
    fn tokens_are_long_and_distinct() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(token_hash(&a).len(), 32);
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn window() {
        let t = Throttle::new(
            Policy::Window {
                limit: 2,
                window: 60 * S,
            },
            100,
        );
        let t0 = Instant::now();
        assert!(t.take_at(1, t0).is_ok());
        assert!(t.take_at(1, t0).is_ok());
        assert_eq!(t.take_at(1, t0 + 10 * S), Err(50_000));
        assert!(t.take_at(2, t0).is_ok());
        t.refund(1);
        assert!(t.take_at(1, t0).is_ok());
        assert!(t.take_at(1, t0 + 60 * S).is_ok(), "a new window");
    }

    #[test]
    fn progressive() {
        let t = Throttle::new(
            Policy::Progressive {
                free: 3,
                base: 5 * S,
                max: 60 * S,
                forget: 900 * S,
            },
            100,
        );
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(t.take_at(1, t0).is_ok());
        }
        assert_eq!(t.take_at(1, t0), Err(5_000));
        assert!(t.take_at(1, t0 + 5 * S).is_ok());
        assert_eq!(t.take_at(1, t0 + 5 * S), Err(10_000));
        assert!(t.take_at(1, t0 + 15 * S).is_ok());
        assert_eq!(t.take_at(1, t0 + 15 * S), Err(20_000));
        let mut now = t0 + 35 * S;
        for _ in 0..10 {
            assert!(t.take_at(1, now).is_ok());
            now += 60 * S;
        }
        assert_eq!(t.take_at(1, now - 60 * S), Err(60_000), "capped");
        assert!(t.take_at(1, now + 900 * S).is_ok(), "forgotten");
        assert!(t.take_at(1, now + 900 * S).is_ok());
        t.clear(1);
        assert_eq!(t.entries(), 0);
    }

    #[test]
    fn bounded_and_swept() {
        let t = Throttle::new(
            Policy::Window {
                limit: 1,
                window: 60 * S,
            },
            10,
        );
        let t0 = Instant::now();
        for k in 0..1000u32 {
            let _ = t.take_at(k, t0 + S * (k / 100));
        }
        assert_eq!(t.entries(), 10);
        t.sweep_at(t0 + 200 * S);
        assert_eq!(t.entries(), 0);
        // The soonest-to-expire made room: the newest are kept.
        for k in 0..20u32 {
            let _ = t.take_at(k, t0 + S * k);
        }
        assert!(
            t.take_at(19, t0 + 20 * S).is_err(),
            "the newest is still counted"
        );
    }

    #[test]
    fn entries_are_small_fixed_size_values() {
        // What bounds a full throttle's bytes: no key holds client text.
        assert!(std::mem::size_of::<((i64, ClientNet), Entry)>() <= 96);
    }
}
