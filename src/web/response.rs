//! A rendered reply: status, content type, extra headers and body.
//!
//! Handlers and the idempotency store speak in `Reply`s; only the server's writer
//! (`http::write`) puts them on the wire, so a stored reply replays byte for byte. A body is
//! either bytes held in memory, sent with `Content-Length`, or a stream read while it is sent
//! (an export too large to hold), sent chunked to HTTP/1.1 clients and up to the close to
//! HTTP/1.0 ones, because its length is not known in advance.

use serde::Serialize;
use std::fmt;
use std::io::Read;

pub enum Body {
    Bytes(Vec<u8>),
    Stream(Box<dyn Read + Send>),
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Bytes(bytes) => write!(f, "Bytes({} bytes)", bytes.len()),
            Body::Stream(_) => f.write_str("Stream"),
        }
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
}

impl Reply {
    pub fn json(status: u16, value: &impl Serialize) -> Reply {
        Reply::json_with_type(status, value, "application/json")
    }

    pub fn json_with_type(
        status: u16,
        value: &impl Serialize,
        content_type: &'static str,
    ) -> Reply {
        // Serialising a serde_json value or a plain view struct cannot fail. Most bodies fit
        // the first allocation (a page of one voucher with its links is about 1.5 KiB), so
        // they are not copied over and over while they grow.
        let mut body = Vec::with_capacity(2048);
        if serde_json::to_writer(&mut body, value).is_err() {
            body = b"{}".to_vec();
        }
        Reply::bytes(status, content_type, body)
    }

    pub fn bytes(status: u16, content_type: &'static str, body: Vec<u8>) -> Reply {
        Reply {
            status,
            content_type,
            headers: Vec::new(),
            body: Body::Bytes(body),
        }
    }

    /// A reply whose body is read from `reader` while it is sent.
    pub fn stream(
        status: u16,
        content_type: &'static str,
        reader: impl Read + Send + 'static,
    ) -> Reply {
        Reply {
            status,
            content_type,
            headers: Vec::new(),
            body: Body::Stream(Box::new(reader)),
        }
    }

    pub fn no_content() -> Reply {
        Reply::bytes(204, "text/plain", Vec::new())
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    /// The body when it is held in memory; `None` for a stream.
    pub fn body_bytes(&self) -> Option<&[u8]> {
        match &self.body {
            Body::Bytes(bytes) => Some(bytes),
            Body::Stream(_) => None,
        }
    }

    /// A copy of a reply held in memory (to keep it for replays); `None` for a stream.
    pub fn try_clone(&self) -> Option<Reply> {
        Some(Reply {
            status: self.status,
            content_type: self.content_type,
            headers: self.headers.clone(),
            body: Body::Bytes(self.body_bytes()?.to_vec()),
        })
    }
}
