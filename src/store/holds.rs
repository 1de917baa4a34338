//! Reservations looked up by their own id, and the rule of one live hold per voucher that the
//! JTL dialect keeps (a newer reservation replaces the older one).

use super::ledger::hold_from_row;
use crate::domain::ledger::Reservation;
use crate::store::error::StoreError;
use crate::store::Db;
use rusqlite::{params, OptionalExtension};

/// A hold found by its own id.
#[derive(Clone, Debug)]
pub struct HoldRecord {
    pub hold: Reservation,
}

/// A hold by its id alone, whatever its voucher (the caller checks that voucher's tenancy).
pub fn find(conn: &Db, hold_id: &str) -> Result<Option<HoldRecord>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, voucher_id, amount, order_number, status, expires_at, created_at
             FROM reservations WHERE id = ?1",
        )?
        .query_row([hold_id], |row| {
            Ok(HoldRecord {
                hold: hold_from_row(row)?,
            })
        })
        .optional()?)
}

/// Releases every hold of the voucher still live at `now`; returns how many there were.
pub fn release_live(conn: &Db, voucher_id: &str, now: i64) -> Result<usize, StoreError> {
    super::outbox::record_live_releases(conn, voucher_id, now)?;
    Ok(conn
        .prepare_cached(
            "UPDATE reservations SET status = 'released', updated_at = ?2
             WHERE voucher_id = ?1 AND status = 'held' AND expires_at > ?2",
        )?
        .execute(params![voucher_id, now])?)
}
