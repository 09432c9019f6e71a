//! Accounts and sessions: Argon2id password hashes, random session tokens kept only as
//! SHA-256 hashes, cookie/Bearer extraction, and the login throttle.
//!
//! Hashing runs on the calling connection thread (it is deliberately slow), never on the
//! store thread. Nothing here logs a password or token.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult};
use crate::http::Request;
use crate::store::{self, Store, User};

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

pub fn hash_password(password: &str) -> ApiResult<String> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()).map_err(|_| ApiError::internal())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| ApiError::internal())
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
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
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::unauthorized());
    }
    let hash = token_hash(&token);
    let user = store
        .call(move |c| store::session_user(c, &hash))?
        .ok_or_else(ApiError::unauthorized)?;
    Ok((user, source, token))
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

    /// `Err(rate_limited)` when `key` has used up its attempts in the current window.
    pub fn check(&self, key: &str) -> ApiResult<()> {
        let map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((start, n)) = map.get(key) {
            let elapsed = start.elapsed();
            if elapsed < self.window && *n >= self.limit {
                return Err(ApiError::rate_limited(
                    (self.window - elapsed).as_millis() as u64
                ));
            }
        }
        Ok(())
    }

    /// Counts one attempt (a failure, for logins).
    pub fn record(&self, key: &str) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= THROTTLE_MAX_KEYS {
            let window = self.window;
            map.retain(|_, (start, _)| start.elapsed() < window);
        }
        let e = map.entry(key.to_string()).or_insert((Instant::now(), 0));
        if e.0.elapsed() >= self.window {
            *e = (Instant::now(), 0);
        }
        e.1 += 1;
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

pub fn ip_key(ip: IpAddr) -> String {
    ip.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("x", "not a hash"));
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
        assert!(t.check("k").is_ok());
        t.record("k");
        t.record("k");
        let e = t.check("k").unwrap_err();
        assert_eq!(e.code, crate::error::Code::RateLimited);
        assert!(e.retry_after_ms.unwrap() > 0);
        assert!(t.check("other").is_ok());
        t.clear("k");
        assert!(t.check("k").is_ok());
    }
}
