//! Configuration: the environment (plus an optional `.env` file) read once at start into a
//! validated `Config`. Nothing else in the program reads an environment variable (`main.rs`
//! and `memory.rs` use `std::env` only for the program's own arguments and path), and
//! `glibc_tunables_set` is the one variable read before `Config` exists.
//!
//! Rules: a `.env` in the working directory is read first and real environment variables
//! override it; an empty value means "unset" (so `.env.example` can list every key); a bad
//! value stops the server with one clear line such as `TURN_PORT must be 1-65535, got "abc"`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use crate::http::proxy::TrustedProxies;

/// Who may create an account once the first (admin) account exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// A valid, unused invite code is needed (default).
    Invite,
    Open,
    Closed,
}

/// Every setting of the server, each with its documented default (see README "Configuration").
#[derive(Debug, Clone)]
pub struct Config {
    /// `LISTEN_ADDR`, default `0.0.0.0:8000`.
    pub listen_addr: SocketAddr,
    /// `DATA_DIR`, default `data`; the database is `DATA_DIR/chat.db`.
    pub data_dir: PathBuf,
    /// `BACKUP_DIR`: where scheduled backups go; unset, there are none.
    pub backup_dir: Option<PathBuf>,
    /// `BACKUP_EVERY_H`, default 24; fractional hours allowed (tests use a few seconds).
    pub backup_every_h: f64,
    /// `BACKUP_KEEP`, default 7: the newest this many scheduled backups are kept.
    pub backup_keep: usize,
    /// `STUN_URLS`, comma-separated; default `stun:stun.l.google.com:19302`.
    pub stun_urls: Vec<String>,
    /// `TURN_HOST`; no TURN entry is handed out without it.
    pub turn_host: Option<String>,
    /// `TURN_PORT`, default 3478.
    pub turn_port: u16,
    pub turn_username: Option<String>,
    pub turn_password: Option<String>,
    /// `TURN_SECRET`: coturn's `static-auth-secret`; when set, credentials are minted per user.
    pub turn_secret: Option<String>,
    /// `TURN_TTL` seconds, default 86400.
    pub turn_ttl: u64,
    /// `REGISTRATION`: `invite` (default), `open` or `closed`.
    pub registration: Registration,
    /// `ALLOWED_ORIGINS`: extra origins (besides our own) allowed to use cookie sessions.
    pub allowed_origins: Vec<String>,
    /// `VOICE_MAX_PEERS`, default 10: people per voice room in `mesh` mode.
    pub voice_max_peers: usize,
    /// `SFU_UDP_PORT`: the media server's UDP port (issue 16). Unset: no media server, and
    /// every voice channel runs as a mesh. `0` binds a free port at start (tests).
    pub sfu_udp_port: Option<u16>,
    /// `SFU_PUBLIC_IP`: the address the media server advertises to browsers (its ICE
    /// candidate) when the one it binds is not the one they reach (NAT, Docker). Unset: the
    /// media server advertises the addresses it binds.
    pub sfu_public_ip: Option<IpAddr>,
    /// `SFU_MAX_PEERS`, default 50: people per voice room in `sfu` mode.
    pub sfu_max_peers: usize,
    /// `SEND_RATE` messages per second per user, default 5.
    pub send_rate: f64,
    /// `SEND_BURST`, default 10.
    pub send_burst: f64,
    /// `SEARCH_RATE` searches per second per user, default 2 (each search is a store read;
    /// a loop of them is an attack on the store thread, issue 19).
    pub search_rate: f64,
    /// `SEARCH_BURST`, default 10.
    pub search_burst: f64,
    /// `MAX_CONNECTIONS`; `None` means derived from the machine's limits at start.
    pub max_connections: Option<usize>,
    /// `MAX_CONNECTIONS_PER_IP`, default 256 (a small community behind one NAT fits easily).
    /// Trusted proxies are not held to it.
    pub max_connections_per_ip: usize,
    /// `TRUSTED_PROXIES`: reverse proxies whose `X-Forwarded-For` names the client (default:
    /// none; the header is ignored).
    pub trusted_proxies: TrustedProxies,
    /// `LOG_LEVEL`: error, warn, info (default), debug, trace.
    pub log_level: log::LevelFilter,
    /// `DB_SYNCHRONOUS`: `FULL` (default: an acknowledged message survives a power cut) or
    /// `NORMAL` (faster commits; survives a process crash but not a power cut).
    pub db_synchronous: String,
    /// `METRICS_TOKEN`: when set, `GET /metrics` needs `Authorization: Bearer <token>`; unset
    /// (the default) keeps v1's open endpoint, for a scraper on a private network.
    pub metrics_token: Option<String>,
    /// `STORE_BATCH`: most jobs per group-commit transaction, default 512; 1 turns group
    /// commit off (a benchmark baseline, not a production setting).
    pub store_batch: usize,
    /// `MAX_UPLOAD_MB`: largest file one upload may be, in MiB (default 25).
    pub max_upload_mb: u64,
    /// `UPLOAD_QUOTA_MB`: most MiB one user may upload in 24 hours (default 1024).
    pub upload_quota_mb: u64,
    /// `PUSH_SUBJECT`: the contact a push service may reach the operator at (RFC 8292 `sub`),
    /// a `mailto:` or `https:` URL; default `mailto:admin@localhost`.
    pub push_subject: String,
    /// `PUSH_ALLOW_LOOPBACK=1`: tests only. Lets a Web Push endpoint be `http://` on a
    /// loopback address; by default only `https://` endpoints on public addresses are used.
    pub push_allow_loopback: bool,
}

/// Whether the operator set `GLIBC_TUNABLES` in the real environment (not `.env`: glibc only
/// reads the environment a process starts with). Read before `Config` exists, because the
/// server may re-execute itself to set it (`memory::reexec_without_thread_caches`).
pub fn glibc_tunables_set() -> bool {
    std::env::var_os("GLIBC_TUNABLES").is_some()
}

/// `SFU_MAX_PEERS` when unset (API.md).
pub const SFU_MAX_PEERS_DEFAULT: usize = 50;

/// The placeholder secret of `.env.example`; running with it on a public address is warned about.
pub const PLACEHOLDER_TURN_SECRET: &str = "change-me-to-a-long-random-secret";

impl Config {
    /// Whether this server has a media server (`SFU_UDP_PORT` is set): then voice channels
    /// may run in `sfu` mode, and it is their default (`model::VoiceMode::effective`).
    pub fn media_port(&self) -> bool {
        self.sfu_udp_port.is_some()
    }

    /// Reads `.env` (if present) and then the real environment.
    pub fn from_env() -> Result<Config, String> {
        let mut vars: HashMap<String, String> = HashMap::new();
        if let Ok(text) = std::fs::read_to_string(".env") {
            vars.extend(parse_dotenv(&text));
        }
        vars.extend(std::env::vars());
        Config::from_map(&vars)
    }

    /// Builds and validates a config from key/value pairs (unit-testable).
    pub fn from_map(vars: &HashMap<String, String>) -> Result<Config, String> {
        let get = |k: &str| vars.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let listen_addr = match get("LISTEN_ADDR") {
            None => "0.0.0.0:8000".parse().unwrap(),
            Some(v) => v.parse().map_err(|_| {
                format!("LISTEN_ADDR must be an IP:port such as 0.0.0.0:8000, got {v:?}")
            })?,
        };
        let turn_port = match get("TURN_PORT") {
            None => 3478,
            Some(v) => match v.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => return Err(format!("TURN_PORT must be 1-65535, got {v:?}")),
            },
        };
        let registration = match get("REGISTRATION").map(str::to_ascii_lowercase).as_deref() {
            None | Some("invite") => Registration::Invite,
            Some("open") => Registration::Open,
            Some("closed") => Registration::Closed,
            Some(_) => {
                return Err(format!(
                    "REGISTRATION must be invite, open or closed, got {:?}",
                    get("REGISTRATION").unwrap()
                ))
            }
        };
        let log_level = match get("LOG_LEVEL") {
            None => log::LevelFilter::Info,
            Some(v) => v.parse().map_err(|_| {
                format!("LOG_LEVEL must be error, warn, info, debug or trace, got {v:?}")
            })?,
        };
        let db_synchronous = match get("DB_SYNCHRONOUS")
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            None | Some("FULL") => "FULL".to_string(),
            Some("NORMAL") => "NORMAL".to_string(),
            Some(_) => {
                return Err(format!(
                    "DB_SYNCHRONOUS must be FULL or NORMAL, got {:?}",
                    get("DB_SYNCHRONOUS").unwrap()
                ))
            }
        };
        let turn_secret = get("TURN_SECRET").map(String::from);
        let turn_username = get("TURN_USERNAME").map(String::from);
        let turn_password = get("TURN_PASSWORD").map(String::from);
        if turn_secret.is_none() && (turn_username.is_some() != turn_password.is_some()) {
            return Err("TURN_USERNAME and TURN_PASSWORD must be set together".into());
        }
        let stun_urls = match get("STUN_URLS") {
            None => vec!["stun:stun.l.google.com:19302".to_string()],
            Some(v) => split_list(v),
        };
        for u in &stun_urls {
            if !(u.starts_with("stun:") || u.starts_with("stuns:")) {
                return Err(format!(
                    "STUN_URLS entries must start with stun: or stuns:, got {u:?}"
                ));
            }
        }
        let allowed_origins = get("ALLOWED_ORIGINS").map(split_list).unwrap_or_default();
        for o in &allowed_origins {
            if !(o.starts_with("http://") || o.starts_with("https://")) || o.ends_with('/') {
                return Err(format!(
                    "ALLOWED_ORIGINS entries must look like https://chat.example.com (no path), got {o:?}"
                ));
            }
        }
        let metrics_token = get("METRICS_TOKEN").map(String::from);
        if let Some(t) = &metrics_token {
            // It travels in an HTTP header: printable ASCII, no spaces.
            if !t.bytes().all(|b| b.is_ascii_graphic()) {
                return Err("METRICS_TOKEN must be printable ASCII without spaces".into());
            }
        }
        let push_subject = get("PUSH_SUBJECT")
            .unwrap_or("mailto:admin@localhost")
            .to_string();
        if !(push_subject.starts_with("mailto:") || push_subject.starts_with("https://"))
            || !push_subject.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(format!(
                "PUSH_SUBJECT must be a mailto: or https: URL, got {push_subject:?}"
            ));
        }
        let sfu_udp_port = match get("SFU_UDP_PORT") {
            None => None,
            Some(v) => Some(v.parse::<u16>().map_err(|_| {
                format!("SFU_UDP_PORT must be a UDP port 0-65535 (0: any free port), got {v:?}")
            })?),
        };
        let sfu_public_ip = match get("SFU_PUBLIC_IP") {
            None => None,
            Some(v) => match v.parse::<IpAddr>() {
                Ok(ip) if !ip.is_unspecified() && !ip.is_multicast() => Some(ip),
                Ok(_) => {
                    return Err(format!(
                        "SFU_PUBLIC_IP must be the address browsers reach the media server at, not {v:?}"
                    ))
                }
                Err(_) => {
                    return Err(format!(
                        "SFU_PUBLIC_IP must be an IP address such as 203.0.113.7, got {v:?}"
                    ))
                }
            },
        };
        if sfu_public_ip.is_some() && sfu_udp_port.is_none() {
            return Err(
                "SFU_PUBLIC_IP is set but SFU_UDP_PORT is not: set the media port too, or unset SFU_PUBLIC_IP"
                    .into(),
            );
        }
        let push_allow_loopback = match get("PUSH_ALLOW_LOOPBACK") {
            None | Some("0") => false,
            Some("1") => true,
            Some(v) => return Err(format!("PUSH_ALLOW_LOOPBACK must be 0 or 1, got {v:?}")),
        };
        Ok(Config {
            push_subject,
            push_allow_loopback,
            listen_addr,
            data_dir: PathBuf::from(get("DATA_DIR").unwrap_or("data")),
            backup_dir: get("BACKUP_DIR").map(PathBuf::from),
            backup_every_h: number(
                get("BACKUP_EVERY_H"),
                "BACKUP_EVERY_H",
                24.0f64,
                0.0001,
                8760.0,
            )?,
            backup_keep: number(get("BACKUP_KEEP"), "BACKUP_KEEP", 7usize, 1, 10_000)?,
            stun_urls,
            turn_host: get("TURN_HOST").map(String::from),
            turn_port,
            turn_username,
            turn_password,
            turn_secret,
            turn_ttl: number(get("TURN_TTL"), "TURN_TTL", 86400u64, 60, 7 * 86400)?,
            registration,
            allowed_origins,
            voice_max_peers: number(get("VOICE_MAX_PEERS"), "VOICE_MAX_PEERS", 10usize, 2, 50)?,
            sfu_udp_port,
            sfu_public_ip,
            // Audio alone is forwarded to everyone else: N people cost N×(N−1) streams of 50
            // packets/s. At 100 that is ~500,000 packets/s, past what one media thread
            // should be asked to carry; 50 (the default) is a quarter of it.
            sfu_max_peers: number(
                get("SFU_MAX_PEERS"),
                "SFU_MAX_PEERS",
                SFU_MAX_PEERS_DEFAULT,
                2,
                100,
            )?,
            send_rate: number(get("SEND_RATE"), "SEND_RATE", 5.0f64, 0.1, 1_000_000.0)?,
            send_burst: number(get("SEND_BURST"), "SEND_BURST", 10.0f64, 1.0, 1_000_000.0)?,
            search_rate: number(get("SEARCH_RATE"), "SEARCH_RATE", 2.0f64, 0.1, 1_000_000.0)?,
            search_burst: number(
                get("SEARCH_BURST"),
                "SEARCH_BURST",
                10.0f64,
                1.0,
                1_000_000.0,
            )?,
            max_connections: match get("MAX_CONNECTIONS") {
                None => None,
                Some(v) => Some(number(Some(v), "MAX_CONNECTIONS", 0usize, 1, 1_000_000)?),
            },
            max_connections_per_ip: number(
                get("MAX_CONNECTIONS_PER_IP"),
                "MAX_CONNECTIONS_PER_IP",
                256usize,
                1,
                1_000_000,
            )?,
            trusted_proxies: TrustedProxies::parse(get("TRUSTED_PROXIES").unwrap_or(""))?,
            log_level,
            db_synchronous,
            metrics_token,
            store_batch: number(
                get("STORE_BATCH"),
                "STORE_BATCH",
                crate::store::DEFAULT_BATCH,
                1,
                4096,
            )?,
            // API.md defaults. 4 GiB is past what a chat upload should ever be (and what a
            // browser sends comfortably in one request).
            max_upload_mb: number(get("MAX_UPLOAD_MB"), "MAX_UPLOAD_MB", 25u64, 1, 4096)?,
            upload_quota_mb: number(
                get("UPLOAD_QUOTA_MB"),
                "UPLOAD_QUOTA_MB",
                1024u64,
                1,
                1 << 30,
            )?,
        })
    }
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Parses a number in `min..=max`, or returns the default when unset.
fn number<T>(v: Option<&str>, key: &str, default: T, min: T, max: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    match v {
        None => Ok(default),
        Some(s) => match s.parse::<T>() {
            Ok(n) if n >= min && n <= max => Ok(n),
            _ => Err(format!(
                "{key} must be a number from {min} to {max}, got {s:?}"
            )),
        },
    }
}

/// Parses `KEY=value` lines; `#` comments, blank lines, optional `export ` and quotes.
pub fn parse_dotenv(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let mut v = v.trim();
        if v.len() >= 2
            && ((v.starts_with('"') && v.ends_with('"'))
                || (v.starts_with('\'') && v.ends_with('\'')))
        {
            v = &v[1..v.len() - 1];
        } else if let Some(i) = v.find(" #") {
            v = v[..i].trim_end();
        }
        out.push((k.trim().to_string(), v.to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, String> {
        let m = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_map(&m)
    }

    #[test]
    fn defaults_are_documented_values() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.listen_addr.to_string(), "0.0.0.0:8000");
        assert_eq!(c.turn_port, 3478);
        assert_eq!(c.turn_ttl, 86400);
        assert_eq!(c.registration, Registration::Invite);
        assert_eq!(c.stun_urls, vec!["stun:stun.l.google.com:19302"]);
        assert_eq!(c.voice_max_peers, 10);
        assert_eq!((c.send_rate, c.send_burst), (5.0, 10.0));
        assert_eq!((c.search_rate, c.search_burst), (2.0, 10.0));
        assert_eq!(c.max_connections, None);
        assert_eq!(c.db_synchronous, "FULL");
        assert!(c.trusted_proxies.is_empty());
        assert_eq!(c.metrics_token, None, "/metrics open by default, as in v1");
        assert_eq!((c.sfu_udp_port, c.sfu_public_ip), (None, None));
        assert!(!c.media_port());
        assert_eq!(c.sfu_max_peers, 50);
    }

    #[test]
    fn media_server_settings() {
        let c = cfg(&[
            ("SFU_UDP_PORT", "3479"),
            ("SFU_PUBLIC_IP", "203.0.113.7"),
            ("SFU_MAX_PEERS", "25"),
        ])
        .unwrap();
        assert_eq!(c.sfu_udp_port, Some(3479));
        assert!(c.media_port());
        assert_eq!(c.sfu_public_ip, Some("203.0.113.7".parse().unwrap()));
        assert_eq!(c.sfu_max_peers, 25);
        assert_eq!(cfg(&[("SFU_UDP_PORT", "0")]).unwrap().sfu_udp_port, Some(0));
        assert_eq!(
            cfg(&[("SFU_UDP_PORT", "udp")]).unwrap_err(),
            r#"SFU_UDP_PORT must be a UDP port 0-65535 (0: any free port), got "udp""#
        );
        assert!(cfg(&[("SFU_UDP_PORT", "70000")]).is_err());
        let e = cfg(&[("SFU_UDP_PORT", "3479"), ("SFU_PUBLIC_IP", "my-host")]).unwrap_err();
        assert!(e.starts_with("SFU_PUBLIC_IP must be an IP address"), "{e}");
        let e = cfg(&[("SFU_UDP_PORT", "3479"), ("SFU_PUBLIC_IP", "0.0.0.0")]).unwrap_err();
        assert!(e.contains("not \"0.0.0.0\""), "{e}");
        let e = cfg(&[("SFU_PUBLIC_IP", "203.0.113.7")]).unwrap_err();
        assert!(e.contains("SFU_UDP_PORT is not"), "{e}");
        assert_eq!(
            cfg(&[("SFU_MAX_PEERS", "500")]).unwrap_err(),
            r#"SFU_MAX_PEERS must be a number from 2 to 100, got "500""#
        );
        assert!(cfg(&[("SFU_MAX_PEERS", "1")]).is_err());
    }

    #[test]
    fn metrics_token_must_fit_in_a_header() {
        assert_eq!(
            cfg(&[("METRICS_TOKEN", "abc123")])
                .unwrap()
                .metrics_token
                .as_deref(),
            Some("abc123")
        );
        let e = cfg(&[("METRICS_TOKEN", "two words")]).unwrap_err();
        assert!(e.contains("METRICS_TOKEN"), "{e}");
    }

    #[test]
    fn bad_turn_port_names_key_and_value() {
        assert_eq!(
            cfg(&[("TURN_PORT", "abc")]).unwrap_err(),
            r#"TURN_PORT must be 1-65535, got "abc""#
        );
        assert!(cfg(&[("TURN_PORT", "0")]).is_err());
        assert!(cfg(&[("TURN_PORT", "70000")]).is_err());
    }

    #[test]
    fn empty_values_mean_unset() {
        let c = cfg(&[
            ("TURN_HOST", ""),
            ("MAX_CONNECTIONS", " "),
            ("REGISTRATION", ""),
        ])
        .unwrap();
        assert!(c.turn_host.is_none());
        assert!(c.max_connections.is_none());
        assert_eq!(c.registration, Registration::Invite);
    }

    #[test]
    fn rejects_bad_values() {
        assert!(cfg(&[("REGISTRATION", "maybe")]).is_err());
        assert!(cfg(&[("LISTEN_ADDR", "nowhere")]).is_err());
        assert!(cfg(&[("SEND_RATE", "-1")]).is_err());
        assert!(cfg(&[("STUN_URLS", "http://x")]).is_err());
        assert!(cfg(&[("ALLOWED_ORIGINS", "https://a.example/")]).is_err());
        assert!(cfg(&[("TURN_USERNAME", "u")]).is_err());
        assert!(cfg(&[("LOG_LEVEL", "loud")]).is_err());
        assert_eq!(
            cfg(&[("TRUSTED_PROXIES", "127.0.0.1, caddy")]).unwrap_err(),
            "TRUSTED_PROXIES entries must be addresses or networks such as 127.0.0.1 or \
             172.16.0.0/12, got \"caddy\""
        );
    }

    #[test]
    fn dotenv_parsing() {
        let v = parse_dotenv("# c\nA=1\nexport B=\"two words\"\nC=x # note\n\nbad line\nD=");
        assert_eq!(
            v,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "x".into()),
                ("D".into(), "".into())
            ]
        );
    }
}
