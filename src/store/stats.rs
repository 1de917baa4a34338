//! The dashboard's figures: vouchers issued, outstanding balances, and ledger activity per day.
//!
//! Plain aggregates over what a tenant may see (its group's vouchers, or all of them for
//! `admin`), read inside one transaction by the caller so the three agree with each other.
//! Money stays in integer minor units here, with the currency's exponent for rendering, and
//! its sums are exact: [`exact_sum`] adds in two halves and gives an `i128`, because one
//! group's vouchers can hold more than an i64 of minor units (a million vouchers of the
//! largest CLF amount), where SQLite's `SUM` fails with "integer overflow" and `TOTAL` rounds.

use crate::domain::voucher::Tenant;
use crate::store::error::StoreError;
use crate::store::sql::{args, DbError, Row, Value};
use crate::store::Db;

/// How many vouchers exist, by kind and status, and how many were created since a moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Issued {
    pub total: i64,
    pub value: i64,
    pub discount: i64,
    pub active: i64,
    pub inactive: i64,
    pub cancelled: i64,
    pub since: i64,
}

/// What is still owed on value vouchers of one currency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Liability {
    pub currency: String,
    pub exponent: u8,
    /// Σ remaining, minor units.
    pub amount: i128,
    /// How many vouchers hold some of it.
    pub vouchers: i64,
}

/// Ledger entries of one type on one local day, in one currency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayActivity {
    /// Days since 1970-01-01 at the shop's offset.
    pub day: i64,
    /// `charge`, `use` or `refund`.
    pub kind: String,
    pub currency: String,
    pub exponent: u8,
    pub count: i64,
    /// Σ amount, minor units.
    pub amount: i128,
}

/// The split point of [`exact_sum`]'s halves.
const HALF: i64 = 1 << 32;

/// Two SQL aggregates whose results [`join_halves`] adds up to `SUM(expr)` exactly: the sums
/// of `expr / 2^32` and of `expr % 2^32` each stay inside an i64 for fewer than 2^31 rows.
fn exact_sum(expr: &str) -> String {
    format!("CAST(SUM(({expr}) / {HALF}) AS BIGINT), CAST(SUM(({expr}) % {HALF}) AS BIGINT)")
}

/// How many rows meet `condition`, as an SQL aggregate (0 when none).
fn count_if(condition: &str) -> String {
    format!("CAST(COALESCE(SUM(CASE WHEN {condition} THEN 1 ELSE 0 END), 0) AS BIGINT)")
}

/// The sum that [`exact_sum`]'s two columns, starting at `first`, stand for.
fn join_halves(row: &Row, first: usize) -> Result<i128, DbError> {
    let high: i64 = row.get(first)?;
    let low: i64 = row.get(first + 1)?;
    Ok(i128::from(high) * i128::from(HALF) + i128::from(low))
}

/// ` AND +v.group_id = ?` for a group's tenant, and its argument.
///
/// The `+` keeps SQLite off the `(group_id, created_at)` index: every query here reads all of
/// a group's vouchers, and a large group read through that index costs a random table
/// lookup per voucher, many times slower than one sequential scan of the table. A scan bounds
/// the cost by the table's size. (PostgreSQL has no `+` on text, and plans on its own.)
fn tenancy(conn: &Db, tenant: &Tenant) -> (&'static str, Vec<Value>) {
    match tenant {
        Tenant::All => ("", Vec::new()),
        Tenant::Group(group) if conn.is_postgres() => {
            (" AND v.group_id = ?", vec![Value::Text(group.clone())])
        }
        Tenant::Group(group) => (" AND +v.group_id = ?", vec![Value::Text(group.clone())]),
    }
}

/// Counts the tenant's vouchers; `since` counts those created at or after `created_since`.
pub fn issued(conn: &Db, tenant: &Tenant, created_since: i64) -> Result<Issued, StoreError> {
    let (clause, mut values) = tenancy(conn, tenant);
    values.insert(0, Value::Int(created_since));
    let sql = format!(
        "SELECT COUNT(*), {}, {}, {}, {}, {}, {} FROM vouchers v WHERE 1 = 1{clause}",
        count_if("v.amount IS NOT NULL"),
        count_if("v.discount_type IS NOT NULL"),
        count_if("v.status = 'active'"),
        count_if("v.status = 'inactive'"),
        count_if("v.status = 'cancelled'"),
        count_if("v.created_at >= ?"),
    );
    let issued = conn.query_row(&sql, &args(&values), |row| {
        Ok(Issued {
            total: row.get(0)?,
            value: row.get(1)?,
            discount: row.get(2)?,
            active: row.get(3)?,
            inactive: row.get(4)?,
            cancelled: row.get(5)?,
            since: row.get(6)?,
        })
    })?;
    Ok(issued)
}

/// The outstanding balance per currency: what remains on value vouchers that can still be
/// spent or switched back on, i.e. not cancelled and not expired at `now`. Currencies with
/// nothing outstanding are left out; the rest come in currency order.
pub fn liability(conn: &Db, tenant: &Tenant, now: i64) -> Result<Vec<Liability>, StoreError> {
    let (clause, mut values) = tenancy(conn, tenant);
    values.insert(0, Value::Int(now));
    let sql = format!(
        "SELECT v.currency, MAX(v.exponent), COUNT(*), {}
         FROM vouchers v
         WHERE v.remaining > 0 AND v.status <> 'cancelled'
           AND (v.valid_until IS NULL OR v.valid_until >= ?){clause}
         GROUP BY v.currency ORDER BY v.currency",
        exact_sum("v.remaining")
    );
    Ok(conn.query_map(&sql, &args(&values), |row| {
        Ok(Liability {
            currency: row.get(0)?,
            exponent: row.get(1)?,
            vouchers: row.get(2)?,
            amount: join_halves(row, 3)?,
        })
    })?)
}

/// Ledger entries on the tenant's vouchers from `from` (inclusive) to `until` (exclusive),
/// grouped by local day (at `offset_secs` east of UTC), type and currency, in day order.
pub fn activity_per_day(
    conn: &Db,
    tenant: &Tenant,
    from: i64,
    until: i64,
    offset_secs: i64,
) -> Result<Vec<DayActivity>, StoreError> {
    let (clause, tenant_args) = tenancy(conn, tenant);
    let mut values = vec![Value::Int(offset_secs), Value::Int(from), Value::Int(until)];
    values.extend(tenant_args);
    // `created_at + offset` is positive for any time the API accepts, so `/` floors.
    // CROSS JOIN reads the ledger first, in one scan (it has no index on created_at), and
    // each entry's voucher by its unique id, rather than each of a group's vouchers' ledger
    // through an index: bounded by the ledger's size, whatever the group's. (SQLite's CROSS
    // JOIN fixes the order; PostgreSQL has no CROSS JOIN with ON, and plans on its own.)
    let join = if conn.is_postgres() {
        "JOIN"
    } else {
        "CROSS JOIN"
    };
    let sql = format!(
        "SELECT (l.created_at + ?1) / 86400 AS day, l.type, v.currency, MAX(v.exponent),
                COUNT(*), {}
         FROM ledger l {join} vouchers v ON v.id = l.voucher_id
         WHERE l.created_at >= ?2 AND l.created_at < ?3{clause}
         GROUP BY day, l.type, v.currency ORDER BY day, l.type, v.currency",
        exact_sum("l.amount")
    );
    Ok(conn.query_map(&sql, &args(&values), |row| {
        Ok(DayActivity {
            day: row.get(0)?,
            kind: row.get(1)?,
            currency: row.get(2)?,
            exponent: row.get(3)?,
            count: row.get(4)?,
            amount: join_halves(row, 5)?,
        })
    })?)
}

/// [`issued`] since `from`, [`liability`] at `now` and [`activity_per_day`] from one snapshot
/// (one read transaction), so the three agree.
pub fn summary(
    conn: &Db,
    tenant: &Tenant,
    from: i64,
    until: i64,
    now: i64,
    offset_secs: i64,
) -> Result<(Issued, Vec<Liability>, Vec<DayActivity>), StoreError> {
    conn.begin_read()?;
    let read = (|| {
        Ok((
            issued(conn, tenant, from)?,
            liability(conn, tenant, now)?,
            activity_per_day(conn, tenant, from, until, offset_secs)?,
        ))
    })();
    // Only read: ending it either way lets the next request see newer commits.
    let _ = conn.end_read();
    read
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_sums_stay_exact_past_i64() {
        let conn = rusqlite::Connection::open_in_memory().expect("memory database");
        conn.execute_batch("CREATE TABLE t (x INTEGER NOT NULL)")
            .expect("table");
        let big = i64::MAX / 3 + 7;
        let values = [big, big, big, big, 1, 0, HALF - 1, HALF, HALF + 1];
        for x in values {
            conn.execute("INSERT INTO t (x) VALUES (?1)", [x])
                .expect("row");
        }
        let plain: rusqlite::Result<i64> = conn.query_row("SELECT SUM(x) FROM t", [], |r| r.get(0));
        assert!(
            plain.is_err(),
            "SQLite's SUM should overflow here: {plain:?}"
        );
        let sql = format!("SELECT {} FROM t", exact_sum("x"));
        let db = Db::new(conn);
        let sum = db
            .query_row(&sql, &[], |row| join_halves(row, 0))
            .expect("exact sum");
        assert_eq!(sum, values.iter().map(|&x| i128::from(x)).sum::<i128>());
    }
}
