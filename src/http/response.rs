//! A rendered reply: status, content type, extra headers and body bytes.
//!
//! Handlers and the idempotency store speak in `Reply`s; only the server turns them into
//! tiny_http responses, so a stored reply replays byte for byte.

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
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
        // Serialising a serde_json value or a plain view struct cannot fail.
        let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
        Reply {
            status,
            content_type,
            headers: Vec::new(),
            body,
        }
    }

    pub fn no_content() -> Reply {
        Reply {
            status: 204,
            content_type: "text/plain",
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}
