//! The money path: charges, discount uses, refunds and reservations, plus the ledger list.
//!
//! Every function here runs on the writer's connection inside the group transaction. Each asks
//! the domain whether the redemption may happen (for the right refusal code), then applies it
//! with conditional statements checked by affected rows, so no balance can go below zero and
//! no refund can exceed its charge even if a rule were wrong.

use super::outbox::{self, Event};
use super::vouchers;
use crate::domain::code::new_id;
use crate::domain::ledger::{
    capture_amount, not_live, refund_amount, Entry, EntryKind, HoldStatus, Redemption, Reservation,
};
use crate::domain::query::{Filter, ListQuery, SortField};
use crate::domain::voucher::{
    check_charge, check_recharge, check_usable, check_use, Context, Refusal, Tenant, Voucher,
};
use crate::store::error::{Conflict, Invalid, StoreError};
use crate::store::sql::{args, DbError, Row, Value};
use crate::store::Db;

/// Live holds of a voucher `?1`, as an SQL expression.
macro_rules! live_holds {
    () => {
        "(SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM reservations \
         WHERE voucher_id = ?1 AND status = 'held' AND expires_at > unixepoch())"
    };
}

fn insert_entry(
    conn: &Db,
    v: &Voucher,
    r: &Redemption,
    kind: EntryKind,
    amount: i64,
    refers_to: Option<&str>,
    ticket_total: Option<i64>,
) -> Result<Entry, StoreError> {
    let entry = Entry {
        id: new_id(),
        voucher_id: v.id.clone(),
        client_id: r.client_id.to_string(),
        kind,
        amount,
        order_number: r.order_number.map(str::to_string),
        refers_to: refers_to.map(str::to_string),
        created_at: r.now,
        currency: v.currency.as_str().to_string(),
    };
    conn.execute(
        "INSERT INTO ledger (id, voucher_id, client_id, type, amount, order_number, refers_to, ticket_total, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        &[
            &entry.id,
            &entry.voucher_id,
            &entry.client_id,
            &entry.kind.as_str(),
            &entry.amount,
            &entry.order_number,
            &entry.refers_to,
            &ticket_total,
            &entry.created_at,
        ],
    )?;
    outbox::record(conn, &v.group_id, Event::Entry(&entry))?;
    Ok(entry)
}

/// `order_number` of the opening charge an import writes.
pub const IMPORT_ORDER: &str = "import";

/// Writes the opening charge of an imported value voucher whose balance is below its amount,
/// so that amount − Σcharges + Σrefunds = remaining holds without the ledger it came from.
pub fn insert_opening_charge(conn: &Db, v: &Voucher, now: i64) -> Result<(), StoreError> {
    let (Some(amount), Some(remaining)) = (v.amount, v.remaining) else {
        return Ok(());
    };
    if remaining >= amount {
        return Ok(());
    }
    let opening = Redemption {
        client_id: &v.client_id,
        tenant: &Tenant::All,
        order_number: Some(IMPORT_ORDER),
        context: &Context::default(),
        now,
    };
    insert_entry(
        conn,
        v,
        &opening,
        EntryKind::Charge,
        amount - remaining,
        None,
        None,
    )?;
    conn.execute(
        "UPDATE vouchers SET entries = entries + 1 WHERE id = ?1",
        &[&v.id],
    )?;
    Ok(())
}

/// Takes `amount` off a value voucher's balance, only if remaining minus live holds covers it.
fn debit(conn: &Db, voucher_id: &str, amount: i64, now: i64) -> Result<(), StoreError> {
    const SQL: &str = concat!(
        "UPDATE vouchers SET remaining = remaining - ?2, entries = entries + 1, updated_at = ?3
         WHERE id = ?1 AND remaining IS NOT NULL AND remaining - ",
        live_holds!(),
        " >= ?2"
    );
    let changed = conn.execute(SQL, &[&voucher_id, &amount, &now])?;
    if changed == 0 {
        return Err(Refusal::InsufficientFunds.into());
    }
    Ok(())
}

/// Charges `amount` on a value voucher.
pub fn charge(
    conn: &Db,
    voucher_id: &str,
    amount: i64,
    r: &Redemption,
) -> Result<Entry, StoreError> {
    let v = vouchers::get(conn, voucher_id, r.tenant)?;
    charge_on(conn, &v, amount, r)
}

/// Charges `amount` on `v`, read in this same write transaction (so by the writer, whose
/// reads no other write can come between).
pub fn charge_on(conn: &Db, v: &Voucher, amount: i64, r: &Redemption) -> Result<Entry, StoreError> {
    check_charge(v, amount, r.now, r.context)?;
    debit(conn, &v.id, amount, r.now)?;
    insert_entry(conn, v, r, EntryKind::Charge, amount, None, None)
}

/// Uses a discount voucher on a ticket of `ticket_total`; the entry's amount is the discount.
pub fn use_discount(
    conn: &Db,
    voucher_id: &str,
    ticket_total: i64,
    r: &Redemption,
) -> Result<Entry, StoreError> {
    let v = vouchers::get(conn, voucher_id, r.tenant)?;
    use_discount_on(conn, &v, ticket_total, r)
}

/// [`use_discount`] on `v`, read in this same write transaction.
pub fn use_discount_on(
    conn: &Db,
    v: &Voucher,
    ticket_total: i64,
    r: &Redemption,
) -> Result<Entry, StoreError> {
    let granted = check_use(v, ticket_total, r.now, r.context)?;
    let changed = conn.execute(
        "UPDATE vouchers SET uses = uses + 1, entries = entries + 1, updated_at = ?2,
             used_at = CASE WHEN uses + 1 >= max_uses THEN ?2 ELSE used_at END
         WHERE id = ?1 AND discount_type IS NOT NULL AND uses < max_uses",
        &[&v.id, &r.now],
    )?;
    if changed == 0 {
        return Err(Refusal::Used.into());
    }
    insert_entry(
        conn,
        v,
        r,
        EntryKind::Use,
        granted,
        None,
        Some(ticket_total),
    )
}

/// Gives back `amount` (or all that is left to refund) of an earlier charge on this voucher.
pub fn refund(
    conn: &Db,
    voucher_id: &str,
    refers_to: &str,
    amount: Option<i64>,
    r: &Redemption,
) -> Result<Entry, StoreError> {
    let v = vouchers::get(conn, voucher_id, r.tenant)?;
    refund_on(conn, &v, refers_to, amount, r)
}

/// [`refund`] on `v`, read in this same write transaction.
pub fn refund_on(
    conn: &Db,
    v: &Voucher,
    refers_to: &str,
    amount: Option<i64>,
    r: &Redemption,
) -> Result<Entry, StoreError> {
    if r.context.currency.is_some_and(|c| c != v.currency) {
        return Err(Refusal::CurrencyMismatch.into());
    }
    let refundable: Option<i64> = conn.query_opt(
        "SELECT c.amount - (SELECT CAST(COALESCE(SUM(f.amount), 0) AS BIGINT) FROM ledger f WHERE f.refers_to = c.id AND f.type = 'refund')
         FROM ledger c WHERE c.id = ?1 AND c.voucher_id = ?2 AND c.type = 'charge'",
        &[&refers_to, &v.id],
        |row| row.get(0),
    )?;
    let Some(refundable) = refundable else {
        return Err(StoreError::Invalid(Invalid::NotAChargeOfThisVoucher));
    };
    let amount = refund_amount(refundable, amount)?;
    let changed = conn.execute(
        "UPDATE vouchers SET remaining = remaining + ?2, entries = entries + 1, updated_at = ?3
         WHERE id = ?1 AND remaining IS NOT NULL AND remaining + ?2 <= amount",
        &[&v.id, &amount, &r.now],
    )?;
    if changed == 0 {
        return Err(StoreError::Conflict(Conflict::RefundExceedsAmount));
    }
    insert_entry(conn, v, r, EntryKind::Refund, amount, Some(refers_to), None)
}

/// Adds `amount` to the credit of `v` (read in this same write): its amount and remaining grow
/// together, so amount − Σcharges + Σrefunds = remaining still holds, and the amount stays at
/// most `max`.
pub fn recharge_on(
    conn: &Db,
    v: &Voucher,
    amount: i64,
    max: i64,
    r: &Redemption,
) -> Result<Entry, StoreError> {
    check_recharge(v, amount, r.now, r.context, max)?;
    let changed = conn.execute(
        "UPDATE vouchers SET amount = amount + ?2, remaining = remaining + ?2,
             entries = entries + 1, updated_at = ?3
         WHERE id = ?1 AND remaining IS NOT NULL AND amount + ?2 <= ?4",
        &[&v.id, &amount, &r.now, &max],
    )?;
    if changed == 0 {
        return Err(Refusal::CreditLimit.into());
    }
    insert_entry(conn, v, r, EntryKind::Recharge, amount, None, None)
}

/// One ledger entry by its id, with its voucher's currency.
pub fn find_entry(conn: &Db, entry_id: &str) -> Result<Option<Entry>, StoreError> {
    Ok(conn.query_opt(
        "SELECT l.id, l.voucher_id, l.client_id, l.type, l.amount, l.order_number, l.refers_to, l.created_at, v.currency
         FROM ledger l JOIN vouchers v ON v.id = l.voucher_id WHERE l.id = ?1",
        &[&entry_id],
        entry_from_row,
    )?)
}

/// Holds `amount` of a value voucher's balance for `expires_in` seconds.
pub fn reserve(
    conn: &Db,
    voucher_id: &str,
    amount: i64,
    expires_in: i64,
    r: &Redemption,
) -> Result<Reservation, StoreError> {
    let v = vouchers::get(conn, voucher_id, r.tenant)?;
    check_charge(&v, amount, r.now, r.context)?;
    let hold = Reservation {
        id: new_id(),
        voucher_id: v.id.clone(),
        amount,
        order_number: r.order_number.map(str::to_string),
        status: HoldStatus::Held,
        expires_at: r.now + expires_in,
        created_at: r.now,
    };
    const SQL: &str = concat!(
        "INSERT INTO reservations (id, voucher_id, client_id, amount, order_number, status, expires_at, created_at, updated_at)
         SELECT ?2, ?1, ?3, CAST(?4 AS BIGINT), ?5, 'held', CAST(?6 AS BIGINT), CAST(?7 AS BIGINT), CAST(?7 AS BIGINT) FROM vouchers
         WHERE id = ?1 AND remaining IS NOT NULL AND remaining - ",
        live_holds!(),
        " >= ?4"
    );
    let inserted = conn.execute(
        SQL,
        &[
            &v.id,
            &hold.id,
            &r.client_id,
            &amount,
            &hold.order_number,
            &hold.expires_at,
            &r.now,
        ],
    )?;
    if inserted == 0 {
        return Err(Refusal::InsufficientFunds.into());
    }
    outbox::record(
        conn,
        &v.group_id,
        Event::ReservationCreated(&hold, v.currency),
    )?;
    Ok(hold)
}

pub(super) fn hold_from_row(row: &Row) -> Result<Reservation, DbError> {
    let status: String = row.get(4)?;
    Ok(Reservation {
        id: row.get(0)?,
        voucher_id: row.get(1)?,
        amount: row.get(2)?,
        order_number: row.get(3)?,
        status: HoldStatus::parse(&status)
            .ok_or_else(|| DbError::column(4, "unknown reservation status"))?,
        expires_at: row.get(5)?,
        created_at: row.get(6)?,
    })
}

fn find_hold(conn: &Db, voucher_id: &str, hold_id: &str) -> Result<Reservation, StoreError> {
    conn.query_opt(
        "SELECT id, voucher_id, amount, order_number, status, expires_at, created_at FROM reservations
         WHERE id = ?1 AND voucher_id = ?2",
        &[&hold_id, &voucher_id],
        hold_from_row,
    )?
    .ok_or(StoreError::NotFound)
}

/// One page of a voucher's live holds at `now` (held, not expired), newest first, and how
/// many there are in all.
pub fn list_holds(
    conn: &Db,
    voucher_id: &str,
    now: i64,
    query: &ListQuery,
) -> Result<(Vec<Reservation>, u64), StoreError> {
    const LIVE: &str =
        "FROM reservations WHERE voucher_id = ? AND status = 'held' AND expires_at > ?";
    let values = vec![Value::Text(voucher_id.to_string()), Value::Int(now)];
    let total: i64 = conn.query_value(&format!("SELECT COUNT(*) {LIVE}"), &args(&values))?;
    // Ties in the order they were taken: SQLite's rowid, a `seq` column on PostgreSQL.
    let tie = if conn.is_postgres() { "seq" } else { "rowid" };
    let sql = format!(
        "SELECT id, voucher_id, amount, order_number, status, expires_at, created_at {LIVE}
         ORDER BY created_at DESC, {tie} DESC LIMIT ? OFFSET ?"
    );
    let holds = super::fetch_page(conn, &sql, values, query, hold_from_row)?;
    Ok((holds, total as u64))
}

/// Turns a live hold into a charge of `amount` (at most the held amount; all of it by default)
/// and ends the hold. The voucher must still be active; its validity window was checked when
/// the hold was taken.
pub fn capture(
    conn: &Db,
    voucher_id: &str,
    hold_id: &str,
    amount: Option<i64>,
    r: &Redemption,
) -> Result<Entry, StoreError> {
    let v = vouchers::get(conn, voucher_id, r.tenant)?;
    let hold = find_hold(conn, &v.id, hold_id)?;
    let amount = capture_amount(&hold, amount, r.now)?;
    check_usable(
        &Voucher {
            valid_from: None,
            valid_until: None,
            ..v.clone()
        },
        r.now,
        r.context,
    )?;
    let ended = conn.execute(
        "UPDATE reservations SET status = 'captured', updated_at = ?2
         WHERE id = ?1 AND status = 'held' AND expires_at > unixepoch()",
        &[&hold.id, &r.now],
    )?;
    if ended == 0 {
        return Err(not_live(&hold, r.now).into());
    }
    debit(conn, &v.id, amount, r.now)?;
    insert_entry(conn, &v, r, EntryKind::Charge, amount, Some(&hold.id), None)
}

/// Ends a hold without charging.
pub fn release(
    conn: &Db,
    voucher_id: &str,
    hold_id: &str,
    tenant: &Tenant,
    now: i64,
) -> Result<(), StoreError> {
    let v = vouchers::get(conn, voucher_id, tenant)?;
    let hold = find_hold(conn, &v.id, hold_id)?;
    let ended = conn.execute(
        "UPDATE reservations SET status = 'released', updated_at = ?2 WHERE id = ?1 AND status = 'held'",
        &[&hold.id, &now],
    )?;
    if ended == 0 {
        return Err(not_live(&hold, now).into());
    }
    outbox::record(
        conn,
        &v.group_id,
        Event::ReservationReleased(&hold, v.currency),
    )?;
    Ok(())
}

fn entry_from_row(row: &Row) -> Result<Entry, DbError> {
    let kind: String = row.get(3)?;
    Ok(Entry {
        id: row.get(0)?,
        voucher_id: row.get(1)?,
        client_id: row.get(2)?,
        kind: EntryKind::parse(&kind).ok_or_else(|| DbError::column(3, "unknown entry type"))?,
        amount: row.get(4)?,
        order_number: row.get(5)?,
        refers_to: row.get(6)?,
        created_at: row.get(7)?,
        currency: row.get(8)?,
    })
}

/// One page of a voucher's ledger, and how many entries match in all.
pub fn list(
    conn: &Db,
    voucher: &Voucher,
    query: &ListQuery,
) -> Result<(Vec<Entry>, u64), StoreError> {
    let mut where_sql = String::from("WHERE l.voucher_id = ?");
    let mut values: Vec<Value> = vec![Value::Text(voucher.id.clone())];
    for filter in &query.filters {
        match filter {
            Filter::CreatedFrom(t) => where_sql.push_str(&format!(" AND l.created_at >= {t}")),
            Filter::CreatedTo(t) => where_sql.push_str(&format!(" AND l.created_at <= {t}")),
            Filter::OrderNumber(o) => {
                where_sql.push_str(" AND l.order_number = ?");
                values.push(Value::Text(o.clone()));
            }
            Filter::Amount(candidates) => {
                let exp = voucher.currency.exponent();
                let minor = candidates
                    .iter()
                    .find(|(e, _)| *e == exp)
                    .map_or(-1, |(_, m)| *m);
                where_sql.push_str(&format!(" AND l.amount = {minor}"));
            }
            _ => return Err(StoreError::Bug("a voucher filter reached the ledger list")),
        }
    }
    let total: i64 = conn.query_value(
        &format!("SELECT COUNT(*) FROM ledger l {where_sql}"),
        &args(&values),
    )?;
    let column = |field| match field {
        SortField::Amount => "l.amount",
        _ => "l.created_at",
    };
    let order = super::order_by(
        &query.sort,
        column,
        "l.created_at DESC",
        "l.seq",
        conn.is_postgres(),
    );
    let sql = format!(
        "SELECT l.id, l.voucher_id, l.client_id, l.type, l.amount, l.order_number, l.refers_to, l.created_at, v.currency
         FROM ledger l JOIN vouchers v ON v.id = l.voucher_id {where_sql} ORDER BY {order} LIMIT ? OFFSET ?"
    );
    let entries = super::fetch_page(conn, &sql, values, query, entry_from_row)?;
    Ok((entries, total as u64))
}
