//! `TRUSTED_PROXIES` and the client address and scheme of a request: `X-Forwarded-For` and
//! `X-Forwarded-Proto` count only when the peer is a trusted proxy and the header parses.
//! Healthchecks trusts them blindly and answers 500 when the address does not parse.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A list of networks whose peers may set forwarding headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

/// The default: loopback only (a reverse proxy on the same host).
pub const DEFAULT_TRUSTED_PROXIES: &str = "127.0.0.0/8,::1/128";

impl TrustedProxies {
    /// Parses a comma-separated list of addresses and CIDR networks; empty trusts nobody.
    pub fn parse(text: &str) -> Result<TrustedProxies, String> {
        let mut networks = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (addr, len) = match item.split_once('/') {
                Some((addr, len)) => (addr, Some(len)),
                None => (item, None),
            };
            let addr: IpAddr = addr
                .parse()
                .map_err(|_| format!("\"{item}\" is not an IP address or network"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let len = match len {
                None => max,
                Some(len) => len
                    .parse::<u8>()
                    .ok()
                    .filter(|l| *l <= max)
                    .ok_or_else(|| format!("\"{item}\" has a bad prefix length"))?,
            };
            networks.push((addr, len));
        }
        Ok(TrustedProxies(networks))
    }

    /// Whether `ip` is in one of the networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|(net, len)| match (net, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(&net.octets(), &ip.octets(), *len),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_eq(&net.octets(), &ip.octets(), *len),
            _ => false,
        })
    }

    /// The client address: the first `X-Forwarded-For` entry when the peer is trusted and the
    /// entry parses (an `a.b.c.d:port` or `[v6]:port` form loses its port), else the peer.
    pub fn client_addr(&self, peer: IpAddr, forwarded_for: Option<&[u8]>) -> IpAddr {
        forwarded_for
            .filter(|_| self.contains(peer))
            .and_then(|value| std::str::from_utf8(value).ok())
            .and_then(parse_forwarded_for)
            .unwrap_or(peer)
    }

    /// The scheme: `X-Forwarded-Proto` when the peer is trusted and it says `http` or `https`.
    pub fn scheme(&self, peer: IpAddr, forwarded_proto: Option<&[u8]>) -> &'static str {
        match forwarded_proto.filter(|_| self.contains(peer)) {
            Some(value) if value.eq_ignore_ascii_case(b"https") => "https",
            _ => "http",
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

fn prefix_eq(a: &[u8], b: &[u8], len: u8) -> bool {
    let full = usize::from(len / 8);
    let rest = len % 8;
    if a[..full] != b[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    a[full] & mask == b[full] & mask
}

fn parse_forwarded_for(value: &str) -> Option<IpAddr> {
    let first = value.split(',').next()?.trim();
    if let Ok(ip) = first.parse() {
        return Some(ip);
    }
    if let Some(rest) = first.strip_prefix('[') {
        let (v6, _port) = rest.split_once(']')?;
        return v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    let (v4, port) = first.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    v4.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[track_caller]
    fn check(xff: &str, expected: &str) {
        let trusted = TrustedProxies::parse(DEFAULT_TRUSTED_PROXIES).unwrap();
        assert_eq!(
            trusted.client_addr(ip("127.0.0.1"), Some(xff.as_bytes())),
            ip(expected),
            "{xff}"
        );
    }

    #[test]
    fn forwarded_for_forms() {
        check("1.1.1.1", "1.1.1.1");
        check("1.1.1.1, 2.2.2.2", "1.1.1.1");
        check("1.1.1.1:1234", "1.1.1.1");
        check("2001::1", "2001::1");
        check("[2001::1]:443", "2001::1");
        check("::ffff:1.1.1.1", "::ffff:1.1.1.1");
        check("garbage", "127.0.0.1");
        check("", "127.0.0.1");
        check("1.1.1.1:x", "127.0.0.1");
    }

    #[test]
    fn untrusted_peers_cannot_forward() {
        let trusted = TrustedProxies::parse(DEFAULT_TRUSTED_PROXIES).unwrap();
        assert_eq!(
            trusted.client_addr(ip("10.0.0.1"), Some(b"1.1.1.1")),
            ip("10.0.0.1")
        );
        assert_eq!(trusted.scheme(ip("10.0.0.1"), Some(b"https")), "http");
        assert_eq!(trusted.scheme(ip("127.0.0.1"), Some(b"https")), "https");
        assert_eq!(trusted.scheme(ip("127.0.0.1"), Some(b"gopher")), "http");
        assert_eq!(
            trusted.client_addr(ip("::ffff:127.0.0.1"), Some(b"1.1.1.1")),
            ip("1.1.1.1")
        );
    }

    #[test]
    fn networks() {
        let trusted = TrustedProxies::parse("10.1.0.0/16, 2001:db8::/32 ,192.168.1.7").unwrap();
        assert!(trusted.contains(ip("10.1.200.3")));
        assert!(!trusted.contains(ip("10.2.0.1")));
        assert!(trusted.contains(ip("2001:db8::5")));
        assert!(trusted.contains(ip("192.168.1.7")));
        assert!(!trusted.contains(ip("192.168.1.8")));
        assert!(TrustedProxies::parse("").unwrap().0.is_empty());
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("example.com").is_err());
        let odd = TrustedProxies::parse("10.0.0.0/9").unwrap();
        assert!(odd.contains(ip("10.127.0.1")));
        assert!(!odd.contains(ip("10.128.0.1")));
    }
}
