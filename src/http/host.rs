//! The `Host` check of API.md v2 "Hardening", against DNS rebinding: a page on
//! `evil.example` whose name is re-pointed at this server would otherwise talk to it as a
//! same-origin page (its `Origin` and `Host` agree), and could, say, register the first, admin,
//! account of a fresh install (issue 19, finding 7). A request must name an IP literal,
//! `localhost`, or the host of an `ALLOWED_ORIGINS` entry; any other name gets 421
//! `misdirected`. Requests from a `TRUSTED_PROXIES` peer are exempt (the proxy forwards its
//! own domain), which `http/server.rs` decides before calling in here. Pure functions.

use std::net::IpAddr;

/// The name of a `Host` header without its port, lower-cased: `[::1]:8000` → `::1`,
/// `Chat.Example.com:443` → `chat.example.com`. `None` when it is not a host at all.
pub fn host_name(host: &str) -> Option<String> {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty()
            || after
                .strip_prefix(':')
                .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit())))
        {
            return None;
        }
        return Some(inside.to_ascii_lowercase());
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        Some(_) => return None,
        None => host,
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    (!name.is_empty()).then(|| name.to_ascii_lowercase())
}

/// The host of an origin such as `https://chat.example.com:8443`.
pub fn origin_host(origin: &str) -> Option<String> {
    let rest = origin.split_once("://").map_or(origin, |(_, r)| r);
    host_name(rest.split('/').next()?)
}

/// API.md v2 "Hardening": a `Host` this server answers for is an IP literal, `localhost`, or
/// the host of an `ALLOWED_ORIGINS` entry.
pub fn host_allowed(host: Option<&str>, allowed_origins: &[String]) -> bool {
    let Some(name) = host.and_then(host_name) else {
        return false;
    };
    name.parse::<IpAddr>().is_ok()
        || name == "localhost"
        || allowed_origins
            .iter()
            .any(|o| origin_host(o).as_deref() == Some(name.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn ip_literals_localhost_and_allowed_origins_hosts_only() {
        let allowed = vec![
            "https://Chat.example.com".to_string(),
            "http://10.0.0.5:8000".to_string(),
        ];
        assert_eq!(
            origin_host(&allowed[0]).as_deref(),
            Some("chat.example.com")
        );
        assert_eq!(origin_host(&allowed[1]).as_deref(), Some("10.0.0.5"));
        for ok in [
            "127.0.0.1",
            "127.0.0.1:8000",
            "[::1]:8000",
            "[::1]",
            "localhost",
            "LOCALHOST:80",
            "localhost.",
            "192.168.1.20:8000",
            "chat.example.com",
            "chat.example.com:443",
            "CHAT.example.com.",
        ] {
            assert!(host_allowed(Some(ok), &allowed), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8000",
            "chat.example.com.evil.example",
            "localhost.evil.example",
            "",
            ":80",
            "[::1",
            "[::1]x",
            "a:b",
            "127.0.0.1.nip.io",
            "0x7f000001",
        ] {
            assert!(!host_allowed(Some(bad), &allowed), "{bad}");
        }
        assert!(!host_allowed(None, &allowed));
    }
}
