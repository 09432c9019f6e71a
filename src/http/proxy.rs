//! Client addresses behind a reverse proxy: which peers are trusted proxies
//! (`TRUSTED_PROXIES`), and the client address such a peer forwards in `X-Forwarded-For`.
//!
//! Behind a proxy every connection comes from the proxy's address, so the limits kept per
//! client address (the login and registration throttles) would count all users together:
//! thirty wrong passwords from anyone would lock everyone out. With the proxy listed in
//! `TRUSTED_PROXIES`, a request from it is treated as coming from the address it forwards.
//!
//! Only the proxy's own entry can be believed: a client can send any `X-Forwarded-For` it
//! likes, and the proxy appends the address it saw. So the list is read from the right, over
//! trusted proxies, and the first address that is not one of them is the client. A header
//! from a peer that is not trusted is ignored, and so is one whose rightmost entry is not an
//! address (the peer's own address is kept).

use std::net::{IpAddr, Ipv6Addr};

/// One address or network (`10.0.0.0/8`, `fd00::/8`, `127.0.0.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    fn parse(s: &str) -> Option<Net> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max)?,
        };
        Some(Net { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4 address that arrived as IPv4-mapped IPv6 (`::ffff:1.2.3.4`) is that IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// A client's network, the unit of every per-address limit: an IPv4 address, or an IPv6 /64
/// (one IPv6 host usually holds a whole /64, so counting full addresses would let it step
/// around a limit by changing address). Fixed-size, so a map of them has bounded bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientNet(u128);

impl ClientNet {
    pub fn of(ip: IpAddr) -> ClientNet {
        match ip {
            IpAddr::V4(v4) => ClientNet(u128::from(v4.to_ipv6_mapped())),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientNet(u128::from(v4.to_ipv6_mapped())),
                None => ClientNet(u128::from(v6) & !(u64::MAX as u128)),
            },
        }
    }
}

impl std::fmt::Display for ClientNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v6 = Ipv6Addr::from(self.0);
        match v6.to_ipv4_mapped() {
            Some(v4) => write!(f, "{v4}"),
            None => write!(f, "{v6}/64"),
        }
    }
}

/// The `TRUSTED_PROXIES` setting: empty (the default) trusts nobody.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Net>);

impl TrustedProxies {
    /// Parses a comma-separated list of addresses and networks; the error names the bad entry.
    pub fn parse(list: &str) -> Result<TrustedProxies, String> {
        let mut nets = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            nets.push(Net::parse(item).ok_or_else(|| {
                format!(
                    "TRUSTED_PROXIES entries must be addresses or networks such as 127.0.0.1 or 172.16.0.0/12, got {item:?}"
                )
            })?);
        }
        Ok(TrustedProxies(nets))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// Entries wider than a /8 (warned about at start): more than any
    /// set of proxies needs, and likely to take in clients too.
    pub fn wide_entries(&self) -> Vec<String> {
        self.0
            .iter()
            .filter(|n| n.prefix < 8)
            .map(|n| format!("{}/{}", n.addr, n.prefix))
            .collect()
    }

    /// The client's address: `peer` itself, unless `peer` is a trusted proxy that forwarded
    /// one (`forwarded_for`: every `X-Forwarded-For` value of the request, in order).
    pub fn client_ip<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl DoubleEndedIterator<Item = &'a str>,
    ) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let mut client = peer;
        for entry in forwarded_for.rev().flat_map(|v| v.rsplit(',')) {
            let Some(ip) = parse_entry(entry) else {
                // Not an address: nothing left of it can be trusted either.
                break;
            };
            client = ip;
            if !self.contains(ip) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, possibly `[v6]` or with a `:port`.
fn parse_entry(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        return rest[..end].parse().ok().map(canonical);
    }
    let (host, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn client(t: &TrustedProxies, peer: &str, xff: &[&str]) -> IpAddr {
        t.client_ip(ip(peer), xff.iter().copied())
    }

    #[test]
    fn parses_addresses_and_networks_and_names_a_bad_entry() {
        let t = TrustedProxies::parse(" 127.0.0.1, 172.16.0.0/12 ,fd00::/8,").unwrap();
        assert!(t.contains(ip("127.0.0.1")));
        assert!(!t.contains(ip("127.0.0.2")));
        assert!(t.contains(ip("172.31.255.1")));
        assert!(!t.contains(ip("172.32.0.1")));
        assert!(t.contains(ip("fd12::1")));
        assert!(t.contains(ip("::ffff:127.0.0.1")), "IPv4-mapped IPv6");
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        for bad in ["10.0.0.0/33", "localhost", "1.2.3.4/x", "::/129"] {
            let e = TrustedProxies::parse(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
        assert!(TrustedProxies::parse("0.0.0.0/0")
            .unwrap()
            .contains(ip("8.8.8.8")));
        assert_eq!(
            TrustedProxies::parse("0.0.0.0/0, 10.0.0.0/8, ::/0, fd00::/8")
                .unwrap()
                .wide_entries(),
            vec!["0.0.0.0/0", "::/0"]
        );
        assert!(t.wide_entries().is_empty());
    }

    #[test]
    fn the_client_is_the_first_untrusted_address_from_the_right() {
        let t = TrustedProxies::parse("127.0.0.1,10.0.0.0/8").unwrap();
        // Caddy or nginx on the same host, one hop.
        assert_eq!(client(&t, "127.0.0.1", &["203.0.113.7"]), ip("203.0.113.7"));
        // A client that forges the header: the proxy appended the address it saw.
        assert_eq!(
            client(&t, "127.0.0.1", &["6.6.6.6, 203.0.113.7"]),
            ip("203.0.113.7")
        );
        // Two trusted hops (a load balancer at 10.1.2.3, then the local proxy).
        assert_eq!(
            client(&t, "127.0.0.1", &["6.6.6.6, 203.0.113.7, 10.1.2.3"]),
            ip("203.0.113.7")
        );
        // The same, as two header lines.
        assert_eq!(
            client(&t, "127.0.0.1", &["6.6.6.6, 203.0.113.7", "10.1.2.3"]),
            ip("203.0.113.7")
        );
        // Ports and brackets as some proxies write them.
        assert_eq!(
            client(&t, "127.0.0.1", &["203.0.113.7:51000"]),
            ip("203.0.113.7")
        );
        assert_eq!(
            client(&t, "127.0.0.1", &["[2001:db8::5]:443"]),
            ip("2001:db8::5")
        );
        // Every entry trusted: the leftmost.
        assert_eq!(client(&t, "127.0.0.1", &["10.9.9.9"]), ip("10.9.9.9"));
    }

    #[test]
    fn untrusted_peers_and_garbage_keep_the_peer_address() {
        let t = TrustedProxies::parse("127.0.0.1").unwrap();
        assert_eq!(client(&t, "198.51.100.1", &["1.2.3.4"]), ip("198.51.100.1"));
        assert_eq!(client(&t, "127.0.0.1", &[]), ip("127.0.0.1"));
        assert_eq!(client(&t, "127.0.0.1", &["unknown"]), ip("127.0.0.1"));
        assert_eq!(client(&t, "127.0.0.1", &[""]), ip("127.0.0.1"));
        // Garbage left of a good entry does not matter.
        assert_eq!(
            client(&t, "127.0.0.1", &["junk, 203.0.113.7"]),
            ip("203.0.113.7")
        );
        let nobody = TrustedProxies::default();
        assert_eq!(client(&nobody, "127.0.0.1", &["1.2.3.4"]), ip("127.0.0.1"));
    }

    #[test]
    fn a_client_net_is_an_ipv4_address_or_an_ipv6_slash_64() {
        let k = |s: &str| ClientNet::of(s.parse().unwrap()).to_string();
        assert_eq!(k("203.0.113.9"), "203.0.113.9");
        assert_eq!(k("::ffff:203.0.113.9"), "203.0.113.9");
        assert_eq!(k("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(
            ClientNet::of("2001:db8:1:2:bbbb::2".parse().unwrap()),
            ClientNet::of("2001:db8:1:2::1".parse().unwrap())
        );
        assert_ne!(k("2001:db8:1:3::1"), k("2001:db8:1:2::1"));
    }
}
