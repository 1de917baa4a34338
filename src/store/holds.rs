//! Reservations looked up by their own id, and the rule of one live hold per voucher that the
//! JTL dialect keeps among its own holds (a newer reservation replaces the older one).

use super::ledger::hold_from_row;
use crate::domain::ledger::Reservation;
use crate::store::error::StoreError;
use crate::store::Db;

/// A hold by its id alone, whatever its voucher (the caller checks that voucher's tenancy).
pub fn find(conn: &Db, hold_id: &str) -> Result<Option<Reservation>, StoreError> {
    Ok(conn.query_opt(
        "SELECT id, voucher_id, amount, order_number, status, expires_at, created_at
         FROM reservations WHERE id = ?1",
        &[&hold_id],
        hold_from_row,
    )?)
}

/// Releases the voucher's JTL holds still live at `now` (never another dialect's); returns
/// how many there were.
pub fn release_live(conn: &Db, voucher_id: &str, now: i64) -> Result<usize, StoreError> {
    // The voucher before its holds, as every write takes them (no two writes wait for each
    // other's rows on PostgreSQL).
    super::vouchers::lock(conn, voucher_id)?;
    super::outbox::record_live_releases(conn, voucher_id, now)?;
    Ok(conn.execute(
        "UPDATE reservations SET status = 'released', updated_at = ?2
         WHERE voucher_id = ?1 AND status = 'held' AND expires_at > ?2 AND dialect = 'jtl'",
        &[&voucher_id, &now],
    )?)
}

/// Marks a hold as JTL's, so that [`release_live`] may replace it.
pub fn mark_jtl(conn: &Db, hold_id: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE reservations SET dialect = 'jtl' WHERE id = ?1",
        &[&hold_id],
    )?;
    Ok(())
}
