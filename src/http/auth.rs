//! Accounts and sessions: Argon2id password hashes, random session tokens kept only as
//! SHA-256 hashes, cookie/Bearer extraction, the login throttle, and the Origin check that
//! every cookie-trusting path calls (state-changing routes and the WebSocket handshake).
//!
//! Hashing runs on the calling connection thread (it is deliberately slow), never on the
//! store thread. Nothing here logs a password or token.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::error::{ApiError, ApiResult};
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

/// Per-key failure counting over a fixed window, for login and registration attempts.
pub struct Throttle {
    window: Duration,
    limit: u32,
    entries: Mutex<HashMap<String, (Instant, u32)>>,
}

/// Entries are pruned once the map grows past this, so a flood of distinct keys cannot grow
/// memory without bound.
const THROTTLE_MAX_KEYS: usize = 50_000;

impl Throttle {
    pub fn new(limit: u32, window: Duration) -> Throttle {
        Throttle {
            window,
            limit,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one attempt for `key`, or `Err(rate_limited)` when its attempts in the current
    /// window are used up. Checking and counting happen under one lock, so concurrent
    /// attempts cannot all pass the check before any is counted; a successful login gives its
    /// attempt back with `refund` (or `clear`).
    pub fn take(&self, key: &str) -> ApiResult<()> {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= THROTTLE_MAX_KEYS {
            let window = self.window;
            map.retain(|_, (start, _)| start.elapsed() < window);
        }
        let e = map.entry(key.to_string()).or_insert((Instant::now(), 0));
        let elapsed = e.0.elapsed();
        if elapsed >= self.window {
            *e = (Instant::now(), 0);
        } else if e.1 >= self.limit {
            return Err(ApiError::rate_limited(
                (self.window - elapsed).as_millis() as u64
            ));
        }
        e.1 += 1;
        Ok(())
    }

    /// Gives back one attempt taken with `take`.
    pub fn refund(&self, key: &str) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = map.get_mut(key) {
            e.1 = e.1.saturating_sub(1);
        }
    }

    pub fn clear(&self, key: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

/// The throttles of the account endpoints.
pub struct Throttles {
    /// Failed logins per username: 10 per 15 minutes.
    pub login_user: Throttle,
    /// Failed logins per client IP: 30 per 15 minutes.
    pub login_ip: Throttle,
    /// Registrations (each costs an Argon2 hash) per client IP: 20 per hour.
    pub register_ip: Throttle,
}

impl Default for Throttles {
    fn default() -> Self {
        Throttles {
            login_user: Throttle::new(10, Duration::from_secs(15 * 60)),
            login_ip: Throttle::new(30, Duration::from_secs(15 * 60)),
            register_ip: Throttle::new(20, Duration::from_secs(3600)),
        }
    }
}

/// The key of per-address throttles: an IPv4 address, or an IPv6 address's /64. One IPv6
/// host usually holds a whole /64, so keying on the full address would let it step around
/// the limits by changing addresses.
pub fn ip_key(ip: IpAddr) -> String {
    match crate::http::proxy::canonical(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let net = u128::from(v6) & !(u64::MAX as u128);
            format!("{}/64", std::net::Ipv6Addr::from(net))
        }
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
    fn ip_key_groups_an_ipv6_slash_64() {
        let k = |s: &str| ip_key(s.parse().unwrap());
        assert_eq!(k("203.0.113.9"), "203.0.113.9");
        assert_eq!(k("::ffff:203.0.113.9"), "203.0.113.9");
        assert_eq!(k("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(k("2001:db8:1:2:bbbb::2"), k("2001:db8:1:2:aaaa::1"));
        assert_ne!(k("2001:db8:1:3::1"), k("2001:db8:1:2::1"));
    }

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

    #[test]
    fn throttle_blocks_after_limit_and_clears() {
        let t = Throttle::new(2, Duration::from_secs(60));
        assert!(t.take("k").is_ok());
        assert!(t.take("k").is_ok());
        let e = t.take("k").unwrap_err();
        assert_eq!(e.code, crate::error::Code::RateLimited);
        assert!(e.retry_after_ms.unwrap() > 0);
        assert!(t.take("other").is_ok());
        t.refund("k");
        assert!(t.take("k").is_ok());
        assert!(t.take("k").is_err());
        t.clear("k");
        assert!(t.take("k").is_ok());
    }
}
