//! `Idempotency-Key` on POSTs: the first reply is kept and replayed, never a second effect.
//!
//! A write handler receives the key and saves its reply inside the same transaction as its
//! effect (see [`finish_write`]), so an effect and its stored reply commit or vanish together.
//! Replies the handler made without writing (a 404, a 422) are saved here afterwards. Server
//! errors (5xx) are not kept: the client's retry runs again. While a first request runs, its
//! key is held in memory and a second one gets 409.

use super::Ctx;
use crate::auth::token::TokenInfo;
use crate::error::ApiError;
use crate::store::idempotency::{self, Key};
use crate::store::in_savepoint;
use crate::store::Db;
use crate::web::response::Reply;
use blake2::{Blake2s256, Digest};

const MAX_KEY: usize = 255;

/// Runs `handler` once per (client, key): replays a stored reply, refuses a key reused with
/// another request (422) or still running (409).
pub fn run(
    ctx: &Ctx,
    token: &TokenInfo,
    handler: impl FnOnce(Option<Key>) -> Result<Reply, ApiError>,
) -> Result<Reply, ApiError> {
    let Some(value) = ctx.req.header("idempotency-key") else {
        return handler(None);
    };
    if value.is_empty() || value.len() > MAX_KEY {
        return Err(ApiError::Malformed(format!(
            "Idempotency-Key must be 1 to {MAX_KEY} characters."
        )));
    }
    let mut hasher = Blake2s256::new();
    hasher.update(ctx.req.path.as_bytes());
    hasher.update([0]);
    hasher.update(&ctx.req.body);
    let key = Key {
        client_id: token.client_id.clone(),
        key: value.to_string(),
        request_hash: hasher.finalize().into(),
    };
    // A reply found while its first request still holds the key is committed but may not be
    // on disk yet (that request is answered only once it is): it is replayed only after the
    // key is released, which this check, made after the read, proves. Once a sync of the WAL
    // has failed, a released key proves nothing (its request was answered 500): no replays.
    if ctx.app.store.writes_stopped() {
        return Err(ApiError::Internal(
            "vouchd takes no writes since the WAL could not be synced; restart it".into(),
        ));
    }
    let found = replay(ctx, &key);
    if !matches!(found, Ok(None)) {
        Claim::check(ctx, &key)?;
        if let Some(reply) = found? {
            return Ok(reply);
        }
    }
    let _claim = Claim::take(ctx, &key)?;
    // The first request may have finished between the look-up and the claim.
    if let Some(reply) = replay(ctx, &key)? {
        return Ok(reply);
    }
    let reply = handler(Some(key.clone())).unwrap_or_else(|err| err.to_reply());
    // A streamed reply is not kept (no POST streams today); it cannot be replayed byte for byte.
    let saved = reply.try_clone().filter(|r| r.status < 500);
    if let Some(saved_reply) = saved {
        // The handler's effect, if any, is committed: its reply goes out even if it cannot be
        // kept now (a retry with the key then runs again, and finds what committed).
        if let Err(err) = keep(ctx, key, saved_reply) {
            eprintln!(
                "vouchd: a reply could not be kept for its Idempotency-Key: {}",
                err.log_message().unwrap_or(err.code())
            );
        }
    }
    Ok(reply)
}

/// Saves a reply the handler made without saving it itself (one that wrote nothing).
fn keep(ctx: &Ctx, key: Key, reply: Reply) -> Result<(), ApiError> {
    if idempotency::find(ctx.conn, &key)?.is_some() {
        return Ok(());
    }
    ctx.app.store.write(move |conn| {
        // Kept already by another vouchd on the same database: that one stands.
        if idempotency::claim(conn, &key)?.is_some() {
            return Ok(());
        }
        save(conn, &key, &reply)
    })
}

fn replay(ctx: &Ctx, key: &Key) -> Result<Option<Reply>, ApiError> {
    idempotency::find(ctx.conn, key)?
        .map(|stored| replayed(stored, key))
        .transpose()
}

/// A stored reply sent again, or 422 when it was stored for another request.
fn replayed(stored: idempotency::Stored, key: &Key) -> Result<Reply, ApiError> {
    if stored.request_hash != key.request_hash {
        return Err(ApiError::Unprocessable(
            "idempotency_key_reused",
            "This Idempotency-Key was used with another request.".into(),
        ));
    }
    Ok(decode_meta(&stored.meta, stored.status, stored.body)
        .with_header("Idempotent-Replayed", "true"))
}

/// The in-memory mark of a key whose first request is running.
struct Claim<'a> {
    ctx: &'a Ctx<'a>,
    id: (String, String),
}

impl<'a> Claim<'a> {
    fn take(ctx: &'a Ctx<'a>, key: &Key) -> Result<Claim<'a>, ApiError> {
        let id = (key.client_id.clone(), key.key.clone());
        let mut in_flight = ctx
            .app
            .in_flight
            .lock()
            .map_err(|_| ApiError::Unavailable(1))?;
        if !in_flight.insert(id.clone()) {
            return Err(still_running());
        }
        Ok(Claim { ctx, id })
    }

    /// 409 while another request holds `key`.
    fn check(ctx: &Ctx, key: &Key) -> Result<(), ApiError> {
        let id = (key.client_id.clone(), key.key.clone());
        let in_flight = ctx
            .app
            .in_flight
            .lock()
            .map_err(|_| ApiError::Unavailable(1))?;
        if in_flight.contains(&id) {
            return Err(still_running());
        }
        Ok(())
    }
}

fn still_running() -> ApiError {
    ApiError::Conflict(
        "idempotency_conflict",
        "A request with this Idempotency-Key is still being processed.".into(),
    )
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if let Ok(mut in_flight) = self.ctx.app.in_flight.lock() {
            in_flight.remove(&self.id);
        }
    }
}

/// Inside a write operation: runs `effect` in its own savepoint, renders its outcome with
/// `render` (a refused effect is rolled back and rendered as its problem), and saves the reply
/// under `key` in the same transaction. Server errors are returned, not kept.
pub fn finish_write<T>(
    conn: &Db,
    key: Option<&Key>,
    effect: impl FnOnce(&Db) -> Result<T, ApiError>,
    render: impl FnOnce(T) -> Reply,
) -> Result<Reply, ApiError> {
    finish_write_keeping(conn, key, effect, |value| (render(value), None))
}

/// [`finish_write`] whose `render` may give, beside the reply, another one to keep for
/// replays: a secret shown once must never be stored.
pub fn finish_write_keeping<T>(
    conn: &Db,
    key: Option<&Key>,
    effect: impl FnOnce(&Db) -> Result<T, ApiError>,
    render: impl FnOnce(T) -> (Reply, Option<Reply>),
) -> Result<Reply, ApiError> {
    // Another vouchd on the same database may have run this key meanwhile.
    if let Some(key) = key {
        if let Some(stored) = idempotency::claim(conn, key)? {
            return replayed(stored, key);
        }
    }
    let (reply, kept) = match in_savepoint(conn, effect) {
        Ok(value) => render(value),
        Err(err) if err.status() < 500 => (err.to_reply(), None),
        Err(err) => return Err(err),
    };
    if let Some(key) = key {
        save(conn, key, kept.as_ref().unwrap_or(&reply))?;
    }
    Ok(reply)
}

/// Keeps `reply` for `key` in the write transaction.
fn save(conn: &Db, key: &Key, reply: &Reply) -> Result<(), ApiError> {
    let body = reply
        .body_bytes()
        .ok_or_else(|| ApiError::Internal("a streamed reply cannot be kept".into()))?;
    Ok(idempotency::save(
        conn,
        key,
        reply.status,
        &encode_meta(reply),
        body,
    )?)
}

/// Headers a kept reply may carry, so a replay sends them again (a 201's `Location`).
const KEPT_HEADERS: &[&str] = &["Location", "Content-Disposition", "Retry-After", "Allow"];

/// The stored `meta`: the content type, then one `Name: value` line per kept header.
fn encode_meta(reply: &Reply) -> String {
    let mut meta = reply.content_type.to_string();
    for (name, value) in &reply.headers {
        if KEPT_HEADERS.contains(name) && !value.contains(['\r', '\n']) {
            meta.push_str(&format!("\n{name}: {value}"));
        }
    }
    meta
}

/// Reads a stored `meta` back into a reply around `body`.
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
