//! Stored replies of POSTs sent with an `Idempotency-Key`, kept for 24 hours.

use crate::domain::clock;
use crate::store::error::StoreError;
use crate::store::Db;

pub const KEEP_SECS: i64 = 24 * 3600;

/// A client's key and the hash of the request it was first sent with.
#[derive(Clone, Debug)]
pub struct Key {
    pub client_id: String,
    pub key: String,
    pub request_hash: [u8; 32],
}

/// A kept reply as stored: its status, its `meta` (the content type, then one `Name: value`
/// line per kept header; older rows hold the content type alone) and its body.
pub struct Stored {
    pub request_hash: Vec<u8>,
    pub status: u16,
    pub meta: String,
    pub body: Vec<u8>,
}

/// The stored reply for `key`, if one was saved in the last 24 hours.
pub fn find(conn: &Db, key: &Key) -> Result<Option<Stored>, StoreError> {
    Ok(conn.query_opt(
        "SELECT request_hash, status, content_type, body FROM idempotency
         WHERE client_id = ?1 AND key = ?2 AND created_at > ?3",
        &[&key.client_id, &key.key, &(clock::now() - KEEP_SECS)],
        |row| {
            Ok(Stored {
                request_hash: row.get(0)?,
                status: row.get(1)?,
                meta: row.get(2)?,
                body: row.get(3)?,
            })
        },
    )?)
}

/// Inside a write: the reply stored for `key` by a write that committed meanwhile, if any.
/// On PostgreSQL another vouchd on the same database may run the same key at the same time
/// (the in-memory claim is each instance's own): this waits for a transaction-long lock on
/// the key, so of two writes with one key the second sees the first's reply and replays it
/// instead of making a second effect. Under SQLite's one writer nothing can have come between.
pub fn claim(conn: &Db, key: &Key) -> Result<Option<Stored>, StoreError> {
    if !conn.locks_rows() {
        return Ok(None);
    }
    conn.query_opt(
        "SELECT pg_advisory_xact_lock(hashtextextended(?1 || ' ' || ?2, 0))",
        &[&key.client_id, &key.key],
        |_| Ok(()),
    )?;
    find(conn, key)
}

/// Saves the reply for `key` (see [`Stored`]), replacing one older than 24 hours; fails on a
/// live duplicate so that an effect whose reply cannot be kept is rolled back with it.
pub fn save(conn: &Db, key: &Key, status: u16, meta: &str, body: &[u8]) -> Result<(), StoreError> {
    let now = clock::now();
    conn.execute(
        "DELETE FROM idempotency WHERE client_id = ?1 AND key = ?2 AND created_at <= ?3",
        &[&key.client_id, &key.key, &(now - KEEP_SECS)],
    )?;
    conn.execute(
        "INSERT INTO idempotency (client_id, key, request_hash, status, content_type, body, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        &[&key.client_id, &key.key, &key.request_hash, &status, &meta, &body, &now],
    )?;
    // Expired keys go a few at a time, so the table stays at about a day of keys.
    conn.execute(
        "DELETE FROM idempotency WHERE (client_id, key) IN
         (SELECT client_id, key FROM idempotency WHERE created_at <= ?1 LIMIT 16)",
        &[&(now - KEEP_SECS)],
    )?;
    Ok(())
}
