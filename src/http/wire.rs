//! Request framing: the head parsed by `httparse` within vouchd's limits, and the body's length
//! decided as RFC 9112 §6.3 says, refusing every message a proxy in front could frame
//! differently (§11.2, request smuggling): such a request never reaches a handler.

use super::request::MAX_BODY;
use crate::web::request::Method;
use serde_json::json;

/// The request line, at most.
pub const MAX_REQUEST_LINE: usize = 8 * 1024;
/// One header line, at most.
pub const MAX_HEADER_LINE: usize = 8 * 1024;
/// Header fields in one request, at most.
pub const MAX_HEADERS: usize = 100;
/// The whole head, at most.
pub const MAX_HEAD: usize = 64 * 1024;

/// A request refused at the protocol level: answered with a problem+json body, then the
/// connection is closed (what follows on it cannot be trusted to start a new request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub status: u16,
    pub code: &'static str,
    pub detail: &'static str,
}

impl Fault {
    const fn new(status: u16, code: &'static str, detail: &'static str) -> Fault {
        Fault {
            status,
            code,
            detail,
        }
    }

    pub(crate) fn malformed(detail: &'static str) -> Fault {
        Fault::new(400, "malformed_request", detail)
    }

    pub const TOO_LARGE: Fault = Fault::new(
        413,
        "payload_too_large",
        "The body is larger than 1 MiB; it was not read.",
    );
    pub const TIMEOUT: Fault = Fault::new(
        408,
        "request_timeout",
        "The request's head did not arrive in time.",
    );
    pub const BODY_TIMEOUT: Fault = Fault::new(
        408,
        "request_timeout",
        "The request's body did not arrive in time.",
    );
    pub const TOO_MANY_CONNECTIONS: Fault = Fault::new(
        503,
        "too_many_connections",
        "Too many open connections; try again shortly.",
    );

    pub fn title(&self) -> &'static str {
        reason(self.status)
    }

    /// The problem+json body.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "type": "about:blank",
            "title": self.title(),
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }))
        .unwrap_or_default()
    }
}

/// How the body of a request is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Length(u64),
    Chunked,
}

/// A complete, accepted request head.
#[derive(Debug)]
pub struct Head {
    pub method: Method,
    /// The request target in origin form (`/path?query`).
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    pub headers: Vec<(String, String)>,
    pub framing: Option<Framing>,
    /// Whether the client keeps the connection open after the reply.
    pub keep_alive: bool,
    /// `Expect: 100-continue`: the client waits for a 100 before it sends the body.
    pub expect_continue: bool,
}

pub enum Parsed {
    /// More bytes are needed.
    Partial,
    /// A head, and how many bytes of the buffer it took.
    Complete(Head, usize),
}

/// Parses the request head at the start of `buf`, enforcing the limits first so a head that
/// can never be accepted is refused as soon as the bytes that break a limit are in.
pub fn parse_head(buf: &[u8]) -> Result<Parsed, Fault> {
    parse_head_from(&mut HeadScan::default(), buf)
}

/// [`parse_head`] for a head arriving in pieces: `scan` remembers how far `buf` (which starts
/// with the head and grows) was checked, so each byte is looked at once, and the head is parsed
/// once it is whole.
pub fn parse_head_from(scan: &mut HeadScan, buf: &[u8]) -> Result<Parsed, Fault> {
    let Some(end) = scan.scan(buf)? else {
        return Ok(Parsed::Partial);
    };
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut fields);
    let used = match parsed.parse(&buf[..end]) {
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) => {
            return Err(Fault::malformed("The request head is malformed."))
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Fault::new(
                431,
                "header_fields_too_large",
                "More than 100 header fields.",
            ))
        }
        Err(httparse::Error::Version) => {
            return Err(Fault::new(
                505,
                "http_version_not_supported",
                "This server only supports HTTP versions 1.0 and 1.1.",
            ))
        }
        Err(httparse::Error::Token) => {
            return Err(Fault::malformed("The request line is malformed."))
        }
        Err(httparse::Error::HeaderName | httparse::Error::HeaderValue) => {
            return Err(Fault::malformed(
                "A header field is malformed (a bare CR, a folded line or a bad name).",
            ))
        }
        Err(_) => return Err(Fault::malformed("The request head is malformed.")),
    };
    let minor = parsed.version.unwrap_or(1);
    let method = Method::parse(parsed.method.unwrap_or(""));
    let target = origin_form(parsed.path.unwrap_or(""))?;
    let mut headers = Vec::with_capacity(parsed.headers.len());
    for field in parsed.headers.iter() {
        let value = std::str::from_utf8(field.value)
            .map_err(|_| Fault::malformed("A header value is not valid UTF-8."))?;
        headers.push((field.name.to_string(), value.trim().to_string()));
    }
    let (framing, keep_alive, expect_continue) = frame(minor, &headers)?;
    Ok(Parsed::Complete(
        Head {
            method,
            target: target.to_string(),
            minor,
            headers,
            framing,
            keep_alive,
            expect_continue,
        },
        used,
    ))
}

/// How far a head has been checked against the limits (the request line, every header line
/// and the whole head), also while it is still arriving.
#[derive(Debug, Default)]
pub struct HeadScan {
    /// Where the first line not yet complete starts.
    line_start: usize,
    /// Where the search for that line's end goes on.
    searched: usize,
    /// Whether the request line is behind.
    past_first: bool,
    /// Bytes looked at so far, for the tests that hold the work linear.
    #[cfg(test)]
    examined: usize,
}

impl HeadScan {
    /// Checks what `buf` holds beyond what was checked; the head's length once it is whole.
    fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, Fault> {
        loop {
            let from = self.searched.min(buf.len());
            let found = buf[from..].iter().position(|&b| b == b'\n');
            #[cfg(test)]
            {
                self.examined += found.map_or(buf.len() - from, |at| at + 1);
            }
            let end = found.map_or(buf.len(), |at| from + at);
            let line = end - self.line_start;
            if !self.past_first && line > MAX_REQUEST_LINE {
                return Err(Fault::new(
                    414,
                    "uri_too_long",
                    "The request line is longer than 8 KiB.",
                ));
            }
            if self.past_first && line > MAX_HEADER_LINE {
                return Err(Fault::new(
                    431,
                    "header_fields_too_large",
                    "A header line is longer than 8 KiB.",
                ));
            }
            let next = found.map_or(buf.len(), |_| end + 1);
            if next > MAX_HEAD {
                return Err(Fault::new(
                    431,
                    "header_fields_too_large",
                    "The request head is larger than 64 KiB.",
                ));
            }
            if found.is_none() {
                self.searched = buf.len();
                return Ok(None);
            }
            // An empty line ends the head; before the request line it is skipped (RFC 9112
            // §2.2), as httparse does.
            let empty = line == 0 || (line == 1 && buf[self.line_start] == b'\r');
            if empty && self.past_first {
                return Ok(Some(next));
            }
            self.past_first |= !empty;
            self.line_start = next;
            self.searched = next;
        }
    }
}

/// The path and query of an origin-form or absolute-form target.
fn origin_form(target: &str) -> Result<&str, Fault> {
    if target.starts_with('/') {
        return Ok(target);
    }
    for scheme in ["http://", "https://"] {
        if let Some(rest) = target
            .get(..scheme.len())
            .filter(|s| s.eq_ignore_ascii_case(scheme))
            .map(|_| &target[scheme.len()..])
        {
            return Ok(rest.find('/').map_or("/", |i| &rest[i..]));
        }
    }
    if target == "*" {
        return Ok(target);
    }
    Err(Fault::malformed("The request target is not a path."))
}

/// Body framing, persistence and `Expect` from the header fields (RFC 9112 §6.3, §9.3).
fn frame(minor: u8, headers: &[(String, String)]) -> Result<(Option<Framing>, bool, bool), Fault> {
    let mut length: Option<u64> = None;
    let mut codings: Vec<String> = Vec::new();
    let mut hosts = 0;
    let mut close = false;
    let mut keep_alive = false;
    let mut expect_continue = false;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("content-length") {
            if length.is_some() {
                return Err(Fault::malformed("Content-Length is given more than once."));
            }
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Fault::malformed("Content-Length is not a decimal number."));
            }
            length = Some(
                value
                    .parse()
                    .map_err(|_| Fault::malformed("Content-Length is too large a number."))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            codings.extend(
                value
                    .split(',')
                    .map(|c| c.trim().to_ascii_lowercase())
                    .filter(|c| !c.is_empty()),
            );
            if codings.is_empty() {
                return Err(Fault::malformed("Transfer-Encoding is empty."));
            }
        } else if name.eq_ignore_ascii_case("host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case("connection") {
            for option in value.split(',').map(str::trim) {
                if option.eq_ignore_ascii_case("close") {
                    close = true;
                } else if option.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                } else if option.eq_ignore_ascii_case("upgrade") {
                    return Err(Fault::malformed(
                        "This server does not switch protocols (Connection: upgrade).",
                    ));
                }
            }
        } else if name.eq_ignore_ascii_case("expect") {
            if value.eq_ignore_ascii_case("100-continue") {
                expect_continue = minor >= 1;
            } else {
                return Err(Fault::new(
                    417,
                    "expectation_failed",
                    "The only expectation this server meets is 100-continue.",
                ));
            }
        }
    }
    if hosts > 1 || (minor >= 1 && hosts == 0) {
        return Err(Fault::malformed(
            "An HTTP/1.1 request needs exactly one Host header.",
        ));
    }
    let framing = if codings.is_empty() {
        match length {
            Some(length) if length > MAX_BODY as u64 => return Err(Fault::TOO_LARGE),
            Some(0) | None => None,
            Some(length) => Some(Framing::Length(length)),
        }
    } else {
        if length.is_some() {
            return Err(Fault::malformed(
                "Transfer-Encoding and Content-Length together.",
            ));
        }
        if minor == 0 {
            return Err(Fault::malformed(
                "Transfer-Encoding in an HTTP/1.0 request.",
            ));
        }
        const KNOWN: &[&str] = &[
            "chunked", "identity", "gzip", "x-gzip", "deflate", "compress",
        ];
        if codings.iter().any(|c| !KNOWN.contains(&c.as_str())) {
            return Err(Fault::new(
                501,
                "not_implemented",
                "Unknown transfer coding; only chunked is accepted.",
            ));
        }
        if codings != ["chunked"] {
            return Err(Fault::malformed(
                "The only transfer coding accepted is chunked, alone.",
            ));
        }
        Some(Framing::Chunked)
    };
    let persistent = !close && (minor >= 1 || keep_alive);
    Ok((framing, persistent, expect_continue))
}

/// The reason phrase of a status code vouchd sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Head, Fault> {
        match parse_head(text.as_bytes())? {
            Parsed::Complete(head, used) => {
                assert_eq!(used, text.len());
                Ok(head)
            }
            Parsed::Partial => panic!("partial: {text:?}"),
        }
    }

    fn status(text: &str) -> u16 {
        match head(text) {
            Ok(_) => 200,
            Err(fault) => fault.status,
        }
    }

    #[test]
    fn a_plain_request_parses_with_its_framing() {
        let h = head("POST /v1/x?a=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n").unwrap();
        assert_eq!(h.method, Method::Post);
        assert_eq!(h.target, "/v1/x?a=1");
        assert_eq!(h.framing, Some(Framing::Length(5)));
        assert!(h.keep_alive);
        let h = head("GET / HTTP/1.0\r\n\r\n").unwrap();
        assert!(!h.keep_alive);
        let h = head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").unwrap();
        assert!(h.keep_alive);
        let h = head("GET http://h:1/a/b?c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        let h = h.unwrap();
        assert_eq!(h.target, "/a/b?c");
        assert!(!h.keep_alive);
        assert!(matches!(
            parse_head(b"GET / HTTP/1.1\r\nHost: h\r\n"),
            Ok(Parsed::Partial)
        ));
    }

    #[test]
    fn ambiguous_framing_is_refused() {
        for (text, want) in [
            ("Content-Length: 3\r\nTransfer-Encoding: chunked", 400),
            ("Transfer-Encoding: chunked\r\nContent-Length: 3", 400),
            ("Content-Length: 3\r\nContent-Length: 3", 400),
            ("Content-Length: 3\r\nContent-Length: 4", 400),
            ("Content-Length: 3, 3", 400),
            ("Transfer-Encoding: chunked, identity", 400),
            (
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity",
                400,
            ),
            ("Transfer-Encoding: xchunked", 501),
            ("Transfer-Encoding: gzip", 400),
            ("Transfer-Encoding: gzip\r\nContent-Length: 3", 400),
            ("Transfer-Encoding: identity\r\nContent-Length: 3", 400),
            ("Connection: keep-alive, Upgrade\r\nContent-Length: 3", 400),
            ("Content-Length: -1", 400),
            ("Content-Length: +5", 400),
            ("Content-Length: 1e2", 400),
            ("Content-Length: 18446744073709551616", 400),
            ("Content-Length: 18446744073709551615", 413),
            ("Content-Length: 1048577", 413),
            ("X-A: a\r\n b", 400),
            ("X-A: a\rb", 400),
            ("X-A: \u{e9}", 200),
            ("Expect: something", 417),
        ] {
            let request = format!("POST / HTTP/1.1\r\nHost: h\r\n{text}\r\n\r\n");
            assert_eq!(status(&request), want, "{text:?}");
        }
        let mut latin1 = b"GET / HTTP/1.1\r\nHost: h\r\nX-A: ".to_vec();
        latin1.extend_from_slice(&[0xE9, b'\r', b'\n', b'\r', b'\n']);
        assert_eq!(parse_head(&latin1).err().map(|f| f.status), Some(400));
        assert_eq!(status("GET / HTTP/1.1\r\n\r\n"), 400, "no Host");
        assert_eq!(status("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505);
    }

    #[test]
    fn limits_refuse_before_the_head_is_complete() {
        let long = format!("GET /{} HTTP/1.1", "a".repeat(MAX_REQUEST_LINE));
        assert_eq!(
            parse_head(long.as_bytes()).err().map(|f| f.status),
            Some(414)
        );
        let long = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(MAX_HEADER_LINE));
        assert_eq!(
            parse_head(long.as_bytes()).err().map(|f| f.status),
            Some(431)
        );
        let mut many = String::from("GET / HTTP/1.1\r\n");
        while many.len() <= MAX_HEAD {
            many.push_str(&format!("X-{}: {}\r\n", many.len(), "v".repeat(4000)));
        }
        assert_eq!(
            parse_head(many.as_bytes()).err().map(|f| f.status),
            Some(431)
        );
    }

    #[test]
    fn a_head_arriving_a_byte_at_a_time_is_checked_once_not_from_its_start_each_time() {
        let mut text = String::from("GET / HTTP/1.1\r\nHost: h\r\n");
        while text.len() < 60 * 1024 {
            text.push_str(&format!("X-{}: {}\r\n", text.len(), "v".repeat(4000)));
        }
        text.push_str("\r\n");
        let bytes = text.as_bytes();
        let mut scan = HeadScan::default();
        for end in 1..bytes.len() {
            let parsed = parse_head_from(&mut scan, &bytes[..end]).expect("within the limits");
            assert!(matches!(parsed, Parsed::Partial), "whole at {end}");
        }
        let Ok(Parsed::Complete(head, used)) = parse_head_from(&mut scan, bytes) else {
            panic!("the head is whole");
        };
        assert_eq!(used, bytes.len());
        assert_eq!(head.headers.len(), text.matches("\r\n").count() - 2);
        assert!(
            scan.examined <= 2 * bytes.len(),
            "{} bytes looked at for a head of {}",
            scan.examined,
            bytes.len()
        );
    }
}
