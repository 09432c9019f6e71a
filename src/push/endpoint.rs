//! Which push endpoints the server will send to. A push endpoint is a URL a client hands
//! us, and the server then makes requests to it: a server-side request forgery vector
//! (issue 14). So an endpoint must be an `https://` URL whose host resolves only to public
//! addresses; loopback, private, CGNAT, link-local (cloud metadata), multicast and reserved
//! ranges are refused, IPv4 and IPv6. The check runs when a subscription is added and again
//! as the push worker's DNS resolver (`PublicResolver`), so that a name which later
//! resolves to a private address (DNS rebinding) is refused at the moment of connecting.
//!
//! `PUSH_ALLOW_LOOPBACK=1` (tests only) also allows `http://` on loopback addresses, so a
//! test can be the push service without a certificate or the internet.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

use crate::error::{ApiError, ApiResult};

/// RFC 8030 endpoints are short URLs on a push service; 2 KiB is past any of them and keeps
/// a row and a request line small.
pub const MAX_ENDPOINT_BYTES: usize = 2048;

/// A checked endpoint: where to connect and what the VAPID `aud` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `scheme://host[:port]`, the JWT audience (RFC 8292 §2).
    pub origin: String,
}

/// The policy of one server: whether loopback `http://` is allowed (tests).
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub allow_loopback: bool,
}

/// Parses `url` and checks its scheme and every address its host resolves to.
pub fn check(url: &str, policy: Policy) -> ApiResult<Endpoint> {
    let bad = |why: &str| ApiError::bad_request(format!("push endpoint refused: {why}"));
    if url.len() > MAX_ENDPOINT_BYTES || !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("not a plain URL of at most 2 KiB"));
    }
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("not a URL"))?;
    let default_port = match scheme {
        "https" => 443,
        "http" if policy.allow_loopback => 80,
        _ => return Err(bad("it must be https://")),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') || authority.is_empty() {
        return Err(bad("no host, or credentials in the URL"));
    }
    let (host, port) = split_host_port(authority, default_port).ok_or_else(|| bad("bad host"))?;
    let addrs = resolve(&host, port).map_err(|_| bad("its host does not resolve"))?;
    for a in &addrs {
        allowed(a.ip(), scheme == "https", policy).map_err(&bad)?;
    }
    Ok(Endpoint {
        origin: format!("{scheme}://{authority}"),
    })
}

fn split_host_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => Some((h.to_string(), p.parse().ok()?)),
        None => Some((authority.to_string(), default_port)),
    }
}

fn resolve(host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(std::io::Error::other("no addresses"));
    }
    Ok(addrs)
}

/// Whether the worker may connect to `ip`: public, or loopback over `http` when allowed.
fn allowed(ip: IpAddr, https: bool, policy: Policy) -> Result<(), &'static str> {
    if is_public(ip) {
        return if https {
            Ok(())
        } else {
            Err("http:// is allowed only on loopback, for tests")
        };
    }
    if policy.allow_loopback && ip.is_loopback() {
        return Ok(());
    }
    Err("its host is not a public address")
}

/// A globally routable unicast address: none of loopback, private (RFC 1918, ULA), CGNAT,
/// link-local, multicast, documentation, benchmarking or reserved ranges.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return public_v4(v4);
            }
            public_v6(v6)
        }
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // CGNAT, RFC 6598
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking, RFC 2544
        || a >= 240) // reserved
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64: maps onto IPv4, private ones included
        || (s[0] == 0x2002) // 6to4: likewise
        || s[0] == 0 // IPv4-compatible and other reserved
        || ((s[0] & 0xe000) != 0x2000)) // only 2000::/3 is global unicast
}

/// The push worker's resolver (`ureq::Resolver`): resolves, then keeps only the addresses
/// `check` would allow, so what it connects to is what was checked.
pub struct PublicResolver {
    pub policy: Policy,
}

impl ureq::Resolver for PublicResolver {
    fn resolve(&self, netloc: &str) -> std::io::Result<Vec<SocketAddr>> {
        let addrs: Vec<SocketAddr> = netloc.to_socket_addrs()?.collect();
        // The scheme is not known here; https is what `check` lets through to public
        // addresses, and loopback only with the test setting (where http is allowed).
        let kept: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| allowed(a.ip(), true, self.policy).is_ok())
            .collect();
        if kept.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "push endpoint host is not a public address",
            ));
        }
        Ok(kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: Policy = Policy {
        allow_loopback: false,
    };
    const TESTS: Policy = Policy {
        allow_loopback: true,
    };

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "142.250.1.1",
            "2a00:1450:4001::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn endpoints_must_be_https_on_public_hosts() {
        for url in [
            "http://8.8.8.8/push",
            "https://127.0.0.1/push",
            "https://[::1]:8443/x",
            "https://169.254.169.254/latest",
            "https://10.0.0.1/x",
            "ftp://8.8.8.8/x",
            "https://user@8.8.8.8/x",
            "https:///x",
            "http://127.0.0.1:9/x",
        ] {
            assert!(check(url, STRICT).is_err(), "{url}");
        }
        assert_eq!(
            check("https://8.8.8.8/push/abc", STRICT).unwrap().origin,
            "https://8.8.8.8"
        );
        // The test setting allows loopback http, and still nothing private.
        assert!(check("http://127.0.0.1:9/x", TESTS).is_ok());
        assert!(check("http://10.0.0.1/x", TESTS).is_err());
        assert!(check("http://8.8.8.8/x", TESTS).is_err());
    }
}
