//! Fuzz target: arbitrary bytes, split into a `SITE_ROOT` prefix, a request path and a query,
//! through the ping router, and into `TRUSTED_PROXIES` and `X-Forwarded-For` parsing.
//! None of them may panic, whatever a client or a configuration file sends.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hchk_ping::proxies::TrustedProxies;
use hchk_ping::routes::{Route, route};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Fields are separated by NUL bytes, which never occur in a request target: prefix, path,
    // query (absent when missing), trusted proxies, X-Forwarded-For (raw bytes).
    let mut fields = data.split(|&b| b == 0);
    let prefix = String::from_utf8_lossy(fields.next().unwrap_or_default());
    let path = String::from_utf8_lossy(fields.next().unwrap_or_default());
    let query = fields.next().map(String::from_utf8_lossy);
    let proxies = String::from_utf8_lossy(fields.next().unwrap_or_default());
    let forwarded_for = fields.next();

    let routed = route(&prefix, &path, query.as_deref());
    if let Route::Ping(ping) = &routed {
        // A routed ping never carries `create` for a UUID URL.
        if matches!(ping.target, hchk_ping::routes::Target::Code(_)) {
            assert!(!ping.create);
        }
    }
    // The same target without the prefix and as the raw path: still no panic.
    let _ = route("", &path, query.as_deref());

    let trusted = TrustedProxies::parse(&proxies).unwrap_or_else(|_| {
        TrustedProxies::parse(hchk_ping::proxies::DEFAULT_TRUSTED_PROXIES)
            .expect("the default parses")
    });
    for peer in [
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
        IpAddr::V6(Ipv4Addr::new(127, 0, 0, 1).to_ipv6_mapped()),
    ] {
        let _ = trusted.client_addr(peer, forwarded_for);
        let _ = trusted.scheme(peer, forwarded_for);
        let _ = trusted.contains(peer);
    }
});
