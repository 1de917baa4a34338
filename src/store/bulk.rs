//! Vouchers in bulk: a cursor that reads a filtered voucher list page by page inside one
//! snapshot (the export), and an all-or-nothing insert of many rows (the import).
//!
//! The cursor owns its connection and keeps one read transaction open from its first page to
//! its last, so an export shows the database as it was when it started however long sending
//! takes, while writers go on (WAL). Pages are keyed on `seq` (storage order), so each page
//! costs the same however deep into the table it lies, and at most one page is in memory.

use super::ledger;
use super::vouchers::{
    clash, count_in, insert_row, stored_columns, voucher_from_row, where_clause, Scan,
};
use crate::domain::code::CodeShape;
use crate::domain::field::FieldError;
use crate::domain::query::Filter;
use crate::domain::voucher::{Status, Tenant, Voucher};
use crate::store::error::StoreError;
use crate::store::sql::{args, Value};
use crate::store::Db;
use std::collections::HashMap;

/// Vouchers read per page of an export.
pub const PAGE: usize = 1000;
/// An import stops reading after this many row errors: nothing is written anyway, and the
/// report stays readable.
pub const MAX_ROW_ERRORS: usize = 100;
/// Draws of a fresh code for a row without one, before the row fails.
const CODE_ATTEMPTS: usize = 64;

/// Pages through the vouchers a tenant may see, narrowed by filters, in storage order.
pub struct VoucherCursor {
    conn: Db,
    sql: String,
    args: Vec<Value>,
    after: i64,
    done: bool,
}

impl VoucherCursor {
    /// Starts a read transaction on `conn` (a connection of the cursor's own); the snapshot
    /// is taken by the first page.
    pub fn open(
        conn: Db,
        tenant: &Tenant,
        filters: &[Filter],
    ) -> Result<VoucherCursor, StoreError> {
        let (sql, args) = page_sql(tenant, filters, !conn.is_postgres());
        conn.begin_read()?;
        Ok(VoucherCursor {
            conn,
            sql,
            args,
            after: 0,
            done: false,
        })
    }

    /// The next page; empty once every voucher was read.
    pub fn next_page(&mut self) -> Result<Vec<Voucher>, StoreError> {
        if self.done {
            return Ok(Vec::new());
        }
        let mut values = self.args.clone();
        values.push(Value::Int(self.after));
        values.push(Value::Int(PAGE as i64));
        let rows = self.conn.query_map(&self.sql, &args(&values), |row| {
            Ok((voucher_from_row(row)?, row.get::<i64>(35)?))
        })?;
        if let Some((_, seq)) = rows.last() {
            self.after = *seq;
        }
        if rows.len() < PAGE {
            self.done = true;
            self.conn.end_read()?;
        }
        Ok(rows.into_iter().map(|(v, _)| v).collect())
    }
}

/// The statement of one page after `seq` `?`, `?` vouchers long, and its filter arguments
/// (`hints`: SQLite's planner hints, see [`where_clause`]).
fn page_sql(tenant: &Tenant, filters: &[Filter], hints: bool) -> (String, Vec<Value>) {
    let (where_sql, args) = where_clause(tenant, filters, Scan::InSeqOrder, hints);
    // Live holds are not exported: 0 stands in for `held`, and `seq` follows.
    let sql = format!(
        "SELECT {}, CAST(0 AS BIGINT), v.seq FROM vouchers v {where_sql} AND v.seq > ? ORDER BY v.seq LIMIT ?",
        stored_columns!()
    );
    (sql, args)
}

/// One row of an import: its number in the file, and its voucher or what is wrong with it.
pub struct ImportRow {
    pub row: u64,
    pub voucher: Result<Voucher, Vec<FieldError>>,
    /// The row gave no code: a clash draws another instead of failing the row.
    pub code_generated: bool,
}

/// Inserts every row's voucher, with an opening charge where a balance is below its amount
/// (see [`ledger::insert_opening_charge`]), and calls `imported` for each. Rows that are bad or
/// clash with a code or id (in the database or earlier in the file) are collected with their
/// row numbers; if there is any, the result is a 422 naming them all, and the caller, which
/// runs this inside one savepoint or transaction, rolls every insert back. Reading stops at
/// [`MAX_ROW_ERRORS`].
pub fn import(
    conn: &Db,
    rows: impl IntoIterator<Item = ImportRow>,
    now: i64,
    mut imported: impl FnMut(&Voucher),
) -> Result<u64, StoreError> {
    // Rows this import inserts get a `seq` above this, which tells a clash with an earlier row
    // from a clash with what was there before.
    let before: i64 = conn.query_value("SELECT COALESCE(MAX(seq), 0) FROM vouchers", &[])?;
    let mut errors: Vec<FieldError> = Vec::new();
    let mut count = 0;
    let mut counted: HashMap<(String, Status), i64> = HashMap::new();
    let mut rng = rand::thread_rng();
    for item in rows {
        let mut v = match item.voucher {
            Ok(v) => v,
            Err(row_errors) => {
                errors.extend(row_errors.into_iter().map(|e| e.at_row(item.row)));
                if errors.len() >= MAX_ROW_ERRORS {
                    break;
                }
                continue;
            }
        };
        let mut attempts = 0;
        let clash = loop {
            if insert_row(conn, &v)? {
                break None;
            }
            match clash(conn, &v)? {
                "code" if item.code_generated => {
                    attempts += 1;
                    if attempts >= CODE_ATTEMPTS {
                        break Some(FieldError::new("code", "no free code was found"));
                    }
                    v.code = CodeShape::new(None, None)
                        .map(|s| s.generate(&mut rng))
                        .unwrap_or(v.code);
                }
                column => break Some(clash_error(conn, column, &v, before)?),
            }
        };
        match clash {
            Some(error) => {
                errors.push(error.at_row(item.row));
                if errors.len() >= MAX_ROW_ERRORS {
                    break;
                }
            }
            None => {
                ledger::insert_opening_charge(conn, &v, now)?;
                *counted.entry((v.group_id.clone(), v.status)).or_default() += 1;
                count += 1;
                imported(&v);
            }
        }
    }
    if errors.is_empty() {
        super::outbox::record_import(conn, &counted)?;
        for ((group_id, status), n) in counted {
            count_in(conn, &group_id, status, n)?;
        }
        Ok(count)
    } else {
        Err(StoreError::Rows(errors))
    }
}

/// Says whether the clashing code or id came earlier in this file or was there before.
fn clash_error(
    conn: &Db,
    column: &'static str,
    v: &Voucher,
    before: i64,
) -> Result<FieldError, StoreError> {
    // A code clashes only within the row's own group (codes are unique per group).
    let (seq, value): (i64, &str) = match column {
        "code" => (
            conn.query_value(
                "SELECT seq FROM vouchers WHERE code = ?1 AND group_id = ?2",
                &[&v.code.as_str(), &v.group_id],
            )?,
            v.code.as_str(),
        ),
        _ => (
            conn.query_value("SELECT seq FROM vouchers WHERE id = ?1", &[&v.id])?,
            v.id.as_str(),
        ),
    };
    let message = if seq > before {
        format!("{value} appears on an earlier row of this file")
    } else {
        format!("{value} is taken")
    };
    Ok(FieldError::new(column, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each page must walk `seq` (or an index whose ties are in `seq` order), never sort what
    /// is left of the result: that would make an export quadratic. (A code filter sorts what
    /// it finds: one voucher per group at most.)
    #[test]
    fn export_pages_never_sort() {
        let mut conn = rusqlite::Connection::open_in_memory().expect("in-memory database");
        super::super::migrate::migrate(&mut conn).expect("schema");
        let conn = Db::new(conn);
        let group = Tenant::Group("G".into());
        let cases: Vec<(Tenant, Vec<Filter>)> = vec![
            (Tenant::All, vec![]),
            (group.clone(), vec![]),
            (
                group.clone(),
                vec![Filter::CreatedFrom(0), Filter::CreatedTo(9)],
            ),
            (group.clone(), vec![Filter::GroupId("G".into())]),
            (group.clone(), vec![Filter::Batch("b".into())]),
            (group.clone(), vec![Filter::ClientId("c".into())]),
            (Tenant::All, vec![Filter::CustomerId("c".into())]),
        ];
        for (tenant, filters) in cases {
            let (sql, mut values) = page_sql(&tenant, &filters, true);
            values.extend([Value::Int(0), Value::Int(PAGE as i64)]);
            let plan: Vec<String> = conn
                .query_map(&format!("EXPLAIN QUERY PLAN {sql}"), &args(&values), |r| {
                    r.get::<String>(3)
                })
                .expect("plan rows");
            assert!(
                plan.iter().all(|step| !step.contains("TEMP B-TREE")),
                "{tenant:?} {filters:?}: {plan:?}"
            );
        }
    }
}
