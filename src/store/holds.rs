//! Reservations looked up by their own id, and the rule of one live hold per voucher that the
//! JTL dialect keeps among its own holds (a newer reservation replaces the older one).

use super::ledger::Reservation;
use crate::error::ApiError;
use rusqlite::{params, Connection, OptionalExtension};

/// A hold with who took it and when it last changed.
#[derive(Clone, Debug)]
pub struct HoldRecord {
    pub hold: Reservation,
    pub client_id: String,
    pub updated_at: i64,
}

/// A hold by its id alone, whatever its voucher (the caller checks that voucher's tenancy).
pub fn find(conn: &Connection, hold_id: &str) -> Result<Option<HoldRecord>, ApiError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, voucher_id, amount, order_number, status, expires_at, created_at,
                    client_id, updated_at
             FROM reservations WHERE id = ?1",
        )?
        .query_row([hold_id], |row| {
            Ok(HoldRecord {
                hold: Reservation {
                    id: row.get(0)?,
                    voucher_id: row.get(1)?,
                    amount: row.get(2)?,
                    order_number: row.get(3)?,
                    status: row.get(4)?,
                    expires_at: row.get(5)?,
                    created_at: row.get(6)?,
                },
                client_id: row.get(7)?,
                updated_at: row.get(8)?,
            })
        })
        .optional()?)
}

/// Releases the voucher's JTL holds still live at `now` (never another dialect's); returns
/// how many there were.
pub fn release_live(conn: &Connection, voucher_id: &str, now: i64) -> Result<usize, ApiError> {
    Ok(conn
        .prepare_cached(
            "UPDATE reservations SET status = 'released', updated_at = ?2
             WHERE voucher_id = ?1 AND status = 'held' AND expires_at > ?2 AND dialect = 'jtl'",
        )?
        .execute(params![voucher_id, now])?)
}

/// Marks a hold as JTL's, so that [`release_live`] may replace it.
pub fn mark_jtl(conn: &Connection, hold_id: &str) -> Result<(), ApiError> {
    conn.prepare_cached("UPDATE reservations SET dialect = 'jtl' WHERE id = ?1")?
        .execute([hold_id])?;
    Ok(())
}
