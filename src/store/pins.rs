//! PINs: a printed voucher's PIN (kept as an argon2id hash, never as text), the one-time
//! connection PINs a client swaps for its credentials (kept as BLAKE2s hashes: they are long
//! and random), and the reasons given for deleting a voucher or changing its status.

use crate::store::error::StoreError;
use crate::store::Db;

/// Sets the hash of a voucher's PIN (`None` removes the PIN).
pub fn set_voucher_pin(conn: &Db, voucher_id: &str, hash: Option<&str>) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE vouchers SET pin_hash = ?2 WHERE id = ?1",
        &[&voucher_id, &hash],
    )?;
    Ok(())
}

/// The hash of a voucher's PIN, if it has one.
pub fn voucher_pin(conn: &Db, voucher_id: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_opt(
            "SELECT pin_hash FROM vouchers WHERE id = ?1",
            &[&voucher_id],
            |r| r.get::<Option<String>>(0),
        )?
        .flatten())
}

/// Whether a connection PIN with this hash could be redeemed at `now` (unused, not expired).
pub fn connect_pin_live(conn: &Db, hash: &[u8; 32], now: i64) -> Result<bool, StoreError> {
    Ok(conn
        .query_opt(
            "SELECT 1 FROM connect_pins WHERE hash = ?1 AND used_at IS NULL AND expires_at > ?2",
            &[hash, &now],
            |_| Ok(()),
        )?
        .is_some())
}

/// Stores a new connection PIN's hash: redeemed once before `expires_at`, it makes a client
/// named `name` in the group.
pub fn insert_connect_pin(
    conn: &Db,
    hash: &[u8; 32],
    group_id: &str,
    name: &str,
    expires_at: i64,
    now: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO connect_pins (hash, group_id, name, expires_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        &[hash, &group_id, &name, &expires_at, &now],
    )?;
    Ok(())
}

/// Marks a live, unused connection PIN used and returns its group id and client name; `None`
/// when it is unknown, used or expired.
pub fn redeem_connect_pin(
    conn: &Db,
    hash: &[u8; 32],
    now: i64,
) -> Result<Option<(String, String)>, StoreError> {
    Ok(conn.query_opt(
        "UPDATE connect_pins SET used_at = ?2
         WHERE hash = ?1 AND used_at IS NULL AND expires_at > ?2
         RETURNING group_id, name",
        &[hash, &now],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

/// Keeps the reason a client gave for `action` (`delete`, `status:active`, …) on a voucher.
pub fn record_comment(
    conn: &Db,
    voucher_id: &str,
    client_id: &str,
    action: &str,
    comment: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO voucher_comments (voucher_id, client_id, action, comment, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        &[&voucher_id, &client_id, &action, &comment, &now],
    )?;
    Ok(())
}
