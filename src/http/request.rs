//! The parts of a request handlers read: method, path segments, query pairs, headers, body.
//!
//! Decoding is done once here. The body is read only up to the 1 MiB cap; a `Content-Length`
//! over it is refused before anything is read.

use crate::error::ApiError;
use std::io::Read;

pub const MAX_BODY: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Other,
}

impl Method {
    pub fn of(method: &tiny_http::Method) -> Method {
        match method {
            tiny_http::Method::Get => Method::Get,
            tiny_http::Method::Post => Method::Post,
            tiny_http::Method::Put => Method::Put,
            tiny_http::Method::Patch => Method::Patch,
            tiny_http::Method::Delete => Method::Delete,
            _ => Method::Other,
        }
    }

    /// The method's name; any method vouchd does not serve is `OTHER`, so a client cannot
    /// invent names (a metrics label, a log field).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
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
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub remote: String,
    pub body: Vec<u8>,
    /// Whether a reply of unknown length can be streamed to this client: tiny_http sends such
    /// a reply chunked to HTTP/1.1, but reads it whole into memory for HTTP/1.0 or when the
    /// request's `TE` asks for identity.
    pub chunked: bool,
}

impl Request {
    /// Reads method, URL, headers and (capped) body from a tiny_http request.
    pub fn read(raw: &mut tiny_http::Request) -> Result<Request, ApiError> {
        let method = Method::of(raw.method());
        let url = raw.url().to_string();
        let (path, raw_query) = match url.split_once('?') {
            Some((p, q)) => (p.to_string(), q.to_string()),
            None => (url, String::new()),
        };
        let headers: Vec<(String, String)> = raw
            .headers()
            .iter()
            .map(|h| {
                (
                    h.field.as_str().as_str().to_string(),
                    h.value.as_str().to_string(),
                )
            })
            .collect();
        let te_identity = headers.iter().any(|(name, value)| {
            name.eq_ignore_ascii_case("te") && value.to_ascii_lowercase().contains("identity")
        });
        let chunked = *raw.http_version() >= (1, 1) && !te_identity;
        let remote = raw
            .remote_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        let mut request = Request {
            method,
            path,
            query: Vec::new(),
            raw_query,
            headers,
            remote,
            body: Vec::new(),
            chunked,
        };
        request.query = decode_pairs(&request.raw_query).ok_or_else(|| {
            ApiError::Malformed("The query string is not valid UTF-8 percent-encoding.".into())
        })?;
        if let Some(length) = request.header("content-length") {
            let length: u64 = length
                .trim()
                .parse()
                .map_err(|_| ApiError::Malformed("Content-Length is not a number.".into()))?;
            if length > MAX_BODY as u64 {
                return Err(ApiError::PayloadTooLarge);
            }
        }
        let mut body = Vec::new();
        raw.as_reader()
            .take(MAX_BODY as u64 + 1)
            .read_to_end(&mut body)
            .map_err(|_| ApiError::Malformed("The body could not be read.".into()))?;
        if body.len() > MAX_BODY {
            return Err(ApiError::PayloadTooLarge);
        }
        request.body = body;
        Ok(request)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path split on `/`, empty segments dropped, each percent-decoded.
    pub fn segments(&self) -> Vec<String> {
        self.path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| percent_decode(s, false).unwrap_or_default())
            .collect()
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
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
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
    fn encoding_round_trips() {
        for text in ["filter[code]", "a b&c=d", "€uro", "-_.~"] {
            assert_eq!(
                percent_decode(&percent_encode(text), true).as_deref(),
                Some(text)
            );
        }
    }
}
