//! The parts of a request handlers read: method, path segments, query pairs, headers, body,
//! and the percent-coding they are decoded with.
//!
//! The server builds a `Request` once (`crate::web::request::decode`) from a head and body
//! its connection layer has already framed and bounded: the body is whole and at most 1 MiB by
//! the time a handler runs.

use std::borrow::Cow;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    /// Answered as GET, without the body.
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Other,
}

impl Method {
    pub fn parse(name: &str) -> Method {
        match name {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            _ => Method::Other,
        }
    }

    /// The method's name; any method vouchd does not serve is `OTHER`, so a client cannot
    /// invent names (a metrics label, a log field).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Other => "OTHER",
        }
    }
}

pub struct Request {
    pub method: Method,
    /// The raw path, without the query.
    pub path: String,
    pub raw_query: String,
    /// The query, decoded; empty when it does not decode (see `query_malformed`).
    pub query: Vec<(String, String)>,
    /// The query string is not UTF-8 percent-encoding: the router refuses the request in its
    /// dialect's shape.
    pub query_malformed: bool,
    pub headers: Vec<(String, String)>,
    pub remote: String,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path split on `/`, empty segments dropped, each percent-decoded.
    pub fn segments(&self) -> Vec<Cow<'_, str>> {
        path_segments(&self.path)
    }

    /// The media type of the body, lower-cased, without parameters.
    pub fn media_type(&self) -> String {
        self.header("content-type")
            .and_then(|v| v.split(';').next())
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }

    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `path` split on `/`, empty segments dropped, each percent-decoded (borrowed when it holds
/// no escape, as nearly every segment does); an undecodable segment is empty, and so is one
/// holding a NUL: no id or code has one (PostgreSQL's text cannot), so it names nothing.
pub fn path_segments(path: &str) -> Vec<Cow<'_, str>> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            if s.contains('%') {
                Cow::Owned(
                    percent_decode(s, false)
                        .filter(|d| !d.contains('\0'))
                        .unwrap_or_default(),
                )
            } else {
                Cow::Borrowed(s)
            }
        })
        .collect()
}

/// Decodes `%XX` escapes (and `+` as space where `plus_is_space`), refusing invalid UTF-8.
pub fn percent_decode(text: &str, plus_is_space: bool) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Decodes `a=1&b=2` (query strings and form bodies) into pairs, in order.
pub fn decode_pairs(text: &str) -> Option<Vec<(String, String)>> {
    text.split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            Some((percent_decode(k, true)?, percent_decode(v, true)?))
        })
        .collect()
}

/// Encodes a query component.
pub fn percent_encode(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len() + 8);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_decode_escapes_and_plus() {
        let pairs = decode_pairs("filter%5Bstatus%5D%5B%5D=active&q=a+b%20c&flag&&x=%E2%82%AC")
            .expect("valid");
        assert_eq!(
            pairs,
            vec![
                ("filter[status][]".to_string(), "active".to_string()),
                ("q".into(), "a b c".into()),
                ("flag".into(), "".into()),
                ("x".into(), "€".into()),
            ]
        );
        assert_eq!(decode_pairs("a=%ZZ"), None);
        assert_eq!(decode_pairs("a=%FF"), None);
        assert_eq!(decode_pairs("a=%4"), None);
    }

    #[test]
    fn a_path_segment_that_does_not_decode_or_holds_a_nul_is_empty() {
        let segments = path_segments("/v1//vouchers/A%20B/%ZZ/A%00B/plain");
        let segments: Vec<&str> = segments.iter().map(|s| s.as_ref()).collect();
        assert_eq!(segments, ["v1", "vouchers", "A B", "", "", "plain"]);
    }

    #[test]
    fn encoding_round_trips() {
        for text in ["filter[code]", "a b&c=d", "€uro", "-_.~"] {
            assert_eq!(
                percent_decode(&percent_encode(text), true).as_deref(),
                Some(text)
            );
        }
    }
}
