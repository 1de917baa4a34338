//! The client's address behind a trusted reverse proxy (`--trusted-proxy`).
//!
//! Behind a proxy every connection comes from the proxy, so the login throttles and the access
//! log would see one address for every client. For a connection from a trusted proxy the
//! client is the last `X-Forwarded-For` entry: the one that proxy appended. Entries before it
//! are whatever the client sent and are never believed. From any other peer the header is
//! ignored, so a client cannot pick its own address.

use std::net::{IpAddr, SocketAddr};

/// The address a request is from: the last `X-Forwarded-For` entry when `peer` is one of
/// `trusted` and that entry is an IP address, else `peer`.
pub fn client_address(peer: IpAddr, headers: &[(String, String)], trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer.to_canonical()) {
        return peer;
    }
    headers
        .iter()
        .rev()
        .find(|(name, _)| name.eq_ignore_ascii_case("x-forwarded-for"))
        .and_then(|(_, value)| value.rsplit(',').next())
        .and_then(|entry| parse_entry(entry.trim()))
        .map_or(peer, |ip| ip.to_canonical())
}

/// An entry as proxies write it: an IP address, an IPv6 one in brackets, either with a port.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|ip| ip.parse().ok())
        })
}

/// The addresses `--trusted-proxy` names, comma-separated.
pub fn parse_trusted(text: &str) -> Result<Vec<IpAddr>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry
                .parse::<IpAddr>()
                .map(|ip| ip.to_canonical())
                .map_err(|_| format!("--trusted-proxy {entry:?}: must be an IP address"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> Vec<(String, String)> {
        values
            .iter()
            .map(|v| ("X-Forwarded-For".to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_a_trusted_peer_names_the_client_and_only_by_the_last_entry() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let trusted = [proxy];
        let from_proxy = |values: &[&str]| client_address(proxy, &headers(values), &trusted);
        assert_eq!(
            from_proxy(&["203.0.113.7"]),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            from_proxy(&["1.1.1.1, 203.0.113.7"]),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            from_proxy(&["1.1.1.1", "2.2.2.2,203.0.113.8"]),
            "203.0.113.8".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            from_proxy(&["[2001:db8::1]:4711"]),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            from_proxy(&["203.0.113.7:80"]),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        // Missing or not an address: the proxy itself.
        assert_eq!(from_proxy(&[]), proxy);
        assert_eq!(from_proxy(&["1.1.1.1, unknown"]), proxy);
        // Any other peer's header is ignored.
        let stranger: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(
            client_address(stranger, &headers(&["1.1.1.1"]), &trusted),
            stranger
        );
        // A proxy reached over IPv6-mapped IPv4 is the same proxy.
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(
            client_address(mapped, &headers(&["1.1.1.1"]), &trusted),
            "1.1.1.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn trusted_proxies_are_ip_addresses() {
        assert_eq!(
            parse_trusted("127.0.0.1, ::1").unwrap(),
            vec![
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse::<IpAddr>().unwrap()
            ]
        );
        assert!(parse_trusted("proxy.example").is_err());
        assert!(parse_trusted("10.0.0.0/8").is_err());
    }
}
