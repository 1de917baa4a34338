//! Where a request says it was sent (`Host`) and where the server says it lives
//! (`--public-url`): both end up in the absolute links of list replies, so both are checked.
//!
//! A `Host` must be an authority, a host name or IP literal with an optional port (RFC 9110
//! §7.2, RFC 3986 §3.2); anything else (`evil.example:666/x?`) is a 400 for the request
//! rather than text copied into a link. `--public-url` names the scheme, host and optional
//! path prefix a reverse proxy serves vouchd under, and then links use it instead of `Host`.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Whether `text` is `host` or `host:port`: a DNS name (letters, digits, `-`, `_`, dots), an
/// IPv4 address, or an IPv6 address in brackets, and a port of 1–5 digits up to 65535.
pub fn is_authority(text: &str) -> bool {
    let (host, port) = match text.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((ip, after)) => {
                if ip.parse::<Ipv6Addr>().is_err() {
                    return false;
                }
                match after {
                    "" => return true,
                    _ => match after.strip_prefix(':') {
                        Some(port) => return is_port(port),
                        None => return false,
                    },
                }
            }
            None => return false,
        },
        None => match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        },
    };
    is_host_name(host) && port.is_none_or(is_port)
}

fn is_port(text: &str) -> bool {
    (1..=5).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_digit())
        && text.parse::<u32>().is_ok_and(|p| p <= 65_535)
}

/// A DNS name of labels of letters, digits, `-` and `_` (a trailing dot allowed), or an IPv4
/// address: what can stand in an HTTP link's host without escaping.
fn is_host_name(host: &str) -> bool {
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let labels_ok = name.split('.').all(|label| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    // All-digit labels are an IPv4 address, and then they must be one.
    let numeric = name.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    labels_ok && (!numeric || name.parse::<Ipv4Addr>().is_ok())
}

/// Checks a `--public-url`: `http://` or `https://`, an authority, and an optional path
/// prefix; no user info, query or fragment. Returns it without a trailing `/`, ready to have
/// a request's path appended.
pub fn parse_public_url(text: &str) -> Result<String, String> {
    let wrong = |why: &str| Err(format!("--public-url {text:?}: {why}"));
    let Some((scheme, rest)) = text.split_once("://") else {
        return wrong("must start with http:// or https://");
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return wrong("the scheme must be http or https");
    }
    if rest.contains(['?', '#']) {
        return wrong("must not have a query or a fragment");
    }
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return wrong("must not hold a user name or password");
    }
    if !is_authority(authority) {
        return wrong("must name a host (a DNS name or an IP address) and an optional port");
    }
    let path_ok = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%".contains(&b));
    if !path_ok {
        return wrong(
            "the path may hold only URL characters (spaces and the like percent-encoded)",
        );
    }
    let scheme = scheme.to_ascii_lowercase();
    Ok(format!(
        "{scheme}://{authority}{}",
        path.trim_end_matches('/')
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_are_a_host_or_ip_literal_and_an_optional_port() {
        for good in [
            "localhost",
            "127.0.0.1:8080",
            "shop.example",
            "shop.example.",
            "SHOP.Example:443",
            "my_host-1.local:1",
            "[::1]",
            "[::1]:8080",
            "[2001:db8::7]:65535",
            "10.0.0.1",
        ] {
            assert!(is_authority(good), "{good:?} should pass");
        }
        for bad in [
            "",
            "evil.example:666/x?",
            "evil.example/x",
            "a b",
            "host:",
            "host:0x50",
            "host:65536",
            "host:123456",
            "host:80:80",
            "user@host",
            "[::1",
            "[::1]x",
            "[nonsense]:80",
            "::1",
            "300.1.1.1",
            "1.2.3",
            ".example",
            "a..b",
            "exa\u{e9}mple",
            "evil.example\r\nX: y",
            "host%2fx",
            "\"quoted\"",
        ] {
            assert!(!is_authority(bad), "{bad:?} should fail");
        }
        assert!(!is_authority(&"a".repeat(64)));
        assert!(is_authority(&"a".repeat(63)));
    }

    #[test]
    fn public_urls_are_http_or_https_with_a_host_and_no_query_or_fragment() {
        for (text, want) in [
            (
                "https://vouchers.shop.example",
                "https://vouchers.shop.example",
            ),
            (
                "https://vouchers.shop.example/",
                "https://vouchers.shop.example",
            ),
            ("HTTP://127.0.0.1:8080/", "http://127.0.0.1:8080"),
            (
                "https://shop.example/vouchd/",
                "https://shop.example/vouchd",
            ),
            ("https://[::1]:8443/a/b", "https://[::1]:8443/a/b"),
        ] {
            assert_eq!(parse_public_url(text), Ok(want.to_string()), "{text}");
        }
        for bad in [
            "shop.example",
            "ftp://shop.example",
            "https://",
            "https:///path",
            "https://shop.example?x=1",
            "https://shop.example/#top",
            "https://user:pw@shop.example",
            "https://shop example",
            "https://shop.example:99999",
            "https://shop.example/a b",
            "https://shop.example/\"><script>",
        ] {
            assert!(parse_public_url(bad).is_err(), "{bad:?} should fail");
        }
    }
}
