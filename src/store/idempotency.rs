//! Stored replies of POSTs sent with an `Idempotency-Key`, kept for 24 hours.

use crate::domain::clock;
use crate::http::response::Reply;
use crate::store::error::StoreError;
use rusqlite::{params, Connection, OptionalExtension};

pub const KEEP_SECS: i64 = 24 * 3600;

/// A client's key and the hash of the request it was first sent with.
#[derive(Clone, Debug)]
pub struct Key {
    pub client_id: String,
    pub key: String,
    pub request_hash: [u8; 32],
}

pub struct Stored {
    pub request_hash: Vec<u8>,
    pub reply: Reply,
}

/// Headers a kept reply may carry, so a replay sends them again (a 201's `Location`).
const KEPT_HEADERS: &[&str] = &["Location", "Content-Disposition", "Retry-After", "Allow"];

/// The `content_type` column: the content type, then one `Name: value` line per header (rows
/// written before headers were kept hold the content type alone).
fn encode_meta(reply: &Reply) -> String {
    let mut meta = reply.content_type.to_string();
    for (name, value) in &reply.headers {
        if KEPT_HEADERS.contains(name) && !value.contains(['\r', '\n']) {
            meta.push_str(&format!("\n{name}: {value}"));
        }
    }
    meta
}

/// Reads the `content_type` column back into a reply around `body`.
fn decode_meta(meta: &str, status: u16, body: Vec<u8>) -> Reply {
    let mut lines = meta.split('\n');
    let content_type = match lines.next().unwrap_or("") {
        "application/problem+json" => "application/problem+json",
        "text/csv" => "text/csv",
        _ => "application/json",
    };
    let mut reply = Reply::bytes(status, content_type, body);
    for line in lines {
        let Some((name, value)) = line.split_once(": ") else {
            continue;
        };
        if let Some(kept) = KEPT_HEADERS.iter().find(|k| **k == name) {
            reply.headers.push((kept, value.to_string()));
        }
    }
    reply
}

/// The stored reply for `key`, if one was saved in the last 24 hours.
pub fn find(conn: &Connection, key: &Key) -> Result<Option<Stored>, StoreError> {
    let stored = conn
        .prepare_cached(
            "SELECT request_hash, status, content_type, body FROM idempotency
             WHERE client_id = ?1 AND key = ?2 AND created_at > ?3",
        )?
        .query_row(
            params![key.client_id, key.key, clock::now() - KEEP_SECS],
            |row| {
                let meta: String = row.get(2)?;
                Ok(Stored {
                    request_hash: row.get(0)?,
                    reply: decode_meta(&meta, row.get(1)?, row.get(3)?),
                })
            },
        )
        .optional()?;
    Ok(stored)
}

/// Saves the reply for `key`, replacing one older than 24 hours; fails on a live duplicate so
/// that an effect whose reply cannot be kept is rolled back with it.
pub fn save(conn: &Connection, key: &Key, reply: &Reply) -> Result<(), StoreError> {
    let body = reply
        .body_bytes()
        .ok_or(StoreError::Bug("a streamed reply cannot be kept"))?;
    let now = clock::now();
    conn.prepare_cached(
        "DELETE FROM idempotency WHERE client_id = ?1 AND key = ?2 AND created_at <= ?3",
    )?
    .execute(params![key.client_id, key.key, now - KEEP_SECS])?;
    conn.prepare_cached(
        "INSERT INTO idempotency (client_id, key, request_hash, status, content_type, body, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![key.client_id, key.key, &key.request_hash[..], reply.status, encode_meta(reply), body, now])?;
    // Expired keys go a few at a time, so the table stays at about a day of keys.
    conn.prepare_cached(
        "DELETE FROM idempotency WHERE (client_id, key) IN
         (SELECT client_id, key FROM idempotency WHERE created_at <= ?1 LIMIT 16)",
    )?
    .execute([now - KEEP_SECS])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_headers_round_trip_through_the_content_type_column() {
        let reply = Reply::bytes(201, "application/json", b"{}".to_vec())
            .with_header("Location", "/v1/vouchers/ABC")
            .with_header("Cache-Control", "no-store");
        let meta = encode_meta(&reply);
        assert_eq!(meta, "application/json\nLocation: /v1/vouchers/ABC");
        let back = decode_meta(&meta, 201, b"{}".to_vec());
        assert_eq!(back.content_type, "application/json");
        assert_eq!(
            back.headers,
            vec![("Location", "/v1/vouchers/ABC".to_string())]
        );
        let old = decode_meta("application/problem+json", 409, Vec::new());
        assert_eq!(old.content_type, "application/problem+json");
        assert!(old.headers.is_empty());
    }
}
