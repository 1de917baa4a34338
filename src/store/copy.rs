//! `vouchd copy FROM TO`: a whole database moved between engines (a SQLite file ↔ a
//! PostgreSQL database), table by table in the order their references need, then checked.
//!
//! The source is read in one snapshot (SQLite: one read transaction; PostgreSQL: REPEATABLE
//! READ), a thousand rows at a time in key order, so a server may keep running on it. The
//! target is written in one transaction: its own rows are cleared first (a database without
//! vouchers holds at most clients, groups and settings of its own), every row goes in with its
//! keys and `seq` numbers as they were (a hold's `seq` is its `rowid` on SQLite), PostgreSQL's identity sequences are moved past the
//! largest `seq`, and the check runs before the COMMIT — a copy that fails it leaves the
//! target as it was. The ledger's append-only guards stop updates and deletes, not inserts.
//!
//! The check: every table holds as many rows as the source's, and per voucher the amount,
//! remaining, uses and ledger sums are the source's and keep the ledger's rule — amount −
//! Σcharges + Σrefunds = remaining for a value voucher (a recharge adds to amount and
//! remaining alike), uses = its `use` entries for a discount, `entries` = its ledger rows.
//! A voucher that breaks the rule on the source already (a balance changed outside vouchd)
//! is copied as it is and counted as carried over, not as a failure of the copy.

use super::sql::{Arg, DbError, FromCol, ToArg};
use super::{write_direct, Db};
use postgres::types::{FromSql, Type};
use rusqlite::types::{FromSqlError, FromSqlResult, ValueRef};
use std::collections::HashMap;

/// A table: its columns, the first `key` of which are its primary key (the order it is read
/// in), and the rows of it that are copied.
struct Table {
    name: &'static str,
    /// Comma-separated.
    columns: &'static str,
    key: usize,
    /// A condition on the rows copied (settings: not the PostgreSQL schema's version stamp).
    only: Option<&'static str>,
    /// PostgreSQL: an identity column `seq` whose sequence is moved past the copied rows.
    identity: bool,
    /// Its `seq` is SQLite's `rowid` (reservations: the order holds were taken).
    rowid_seq: bool,
}

const fn table(name: &'static str, key: usize, columns: &'static str) -> Table {
    Table {
        name,
        columns,
        key,
        only: None,
        identity: false,
        rowid_seq: false,
    }
}

impl Table {
    /// The columns as `db` names them.
    fn columns_on(&self, db: &Db) -> Vec<&'static str> {
        self.columns
            .split(", ")
            .map(|c| match c {
                "seq" if self.rowid_seq && !db.is_postgres() => "rowid",
                c => c,
            })
            .collect()
    }

    fn width(&self) -> usize {
        self.columns.split(", ").count()
    }
}

/// Every table of the schema, each after the tables it refers to.
const TABLES: &[Table] = &[
    table("client_groups", 1, "id, name, scopes, created_at"),
    table(
        "clients",
        1,
        "id, name, group_id, scopes, secret_hash, revoked_at, created_at",
    ),
    table(
        "tokens",
        1,
        "hash, client_id, scopes, client_type, expires_at, created_at, dialect_scopes",
    ),
    Table {
        only: Some("key <> 'schema_version'"),
        ..table("settings", 1, "key, value")
    },
    Table {
        identity: true,
        ..table(
            "vouchers",
            1,
            "seq, id, code, client_id, group_id, sku, batch, label, note, currency, exponent, \
             amount, remaining, discount_type, discount_value, max_uses, uses, used_at, \
             valid_from, valid_until, validity_value, validity_interval, status, type, taxable, \
             tax_rate, order_number, customer_id, product_id, store_id, purchase_id, reward_id, \
             data, entries, created_at, updated_at, pin_hash",
        )
    },
    table("voucher_counts", 2, "group_id, status, n"),
    Table {
        identity: true,
        ..table(
            "ledger",
            1,
            "seq, id, voucher_id, client_id, type, amount, order_number, refers_to, \
             ticket_total, created_at",
        )
    },
    Table {
        identity: true,
        rowid_seq: true,
        ..table(
            "reservations",
            1,
            "id, voucher_id, client_id, amount, order_number, status, expires_at, created_at, \
             updated_at, dialect, seq",
        )
    },
    table(
        "idempotency",
        2,
        "client_id, key, request_hash, status, content_type, body, created_at",
    ),
    table(
        "connect_pins",
        1,
        "hash, group_id, name, expires_at, used_at, created_at",
    ),
    Table {
        identity: true,
        ..table(
            "voucher_comments",
            1,
            "seq, voucher_id, client_id, action, comment, created_at",
        )
    },
    table(
        "webhook_endpoints",
        1,
        "id, group_id, url, events, secret, created_at, disabled_at, disabled_reason, fanned_upto",
    ),
    Table {
        identity: true,
        ..table(
            "webhook_events",
            1,
            "seq, id, group_id, type, created_at, body, entry_id",
        )
    },
    table(
        "webhook_deliveries",
        2,
        "endpoint_id, event_seq, state, attempts, first_failed_at, last_status, last_error, \
         next_try_at, delivered_at",
    ),
];

/// Rows read from the source at a time.
const READ_ROWS: usize = 1000;
/// Placeholders in one INSERT at most (both engines take far more; statements stay small).
const MAX_ARGS: usize = 8000;

/// One value of a row, as either engine gives it.
#[derive(Clone, Debug, PartialEq)]
enum Cell {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

impl ToArg for Cell {
    fn arg(&self) -> Arg<'_> {
        match self {
            Cell::Null => Arg::Null,
            Cell::Int(i) => Arg::Int(*i),
            Cell::Text(s) => Arg::Text(s),
            Cell::Blob(b) => Arg::Blob(b),
        }
    }
}

impl rusqlite::types::FromSql for Cell {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Cell> {
        Ok(match value {
            ValueRef::Null => Cell::Null,
            ValueRef::Integer(i) => Cell::Int(i),
            ValueRef::Text(t) => Cell::Text(
                std::str::from_utf8(t)
                    .map_err(|e| FromSqlError::Other(Box::new(e)))?
                    .to_string(),
            ),
            ValueRef::Blob(b) => Cell::Blob(b.to_vec()),
            ValueRef::Real(_) => return Err(FromSqlError::InvalidType),
        })
    }
}

type BoxError = Box<dyn std::error::Error + Sync + Send>;

impl FromCol for Cell {
    fn from_pg(ty: &Type, raw: Option<&[u8]>) -> Result<Cell, BoxError> {
        let Some(raw) = raw else {
            return Ok(Cell::Null);
        };
        Ok(match *ty {
            Type::INT8 => Cell::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Cell::Int(i64::from(i32::from_sql(ty, raw)?)),
            Type::BYTEA => Cell::Blob(<&[u8]>::from_sql(ty, raw)?.to_vec()),
            _ => Cell::Text(<&str>::from_sql(ty, raw)?.to_string()),
        })
    }
}

/// A step of the copy, for the caller's progress display.
pub enum Step<'a> {
    /// `done` of `total` rows of `table` are in the target.
    Rows {
        table: &'a str,
        done: u64,
        total: u64,
    },
    /// Every row is in; the check runs.
    Checking,
}

/// What a finished copy did.
#[derive(Debug, Default)]
pub struct Copied {
    /// Rows per table, in the order copied.
    pub tables: Vec<(&'static str, u64)>,
    /// Clients of the target's own that the source's replaced.
    pub replaced_clients: u64,
    /// Vouchers whose balance breaks the ledger's rule on the source already, copied as they
    /// were.
    pub carried: u64,
}

impl Copied {
    pub fn rows(&self, table: &str) -> u64 {
        self.tables
            .iter()
            .find(|(t, _)| *t == table)
            .map_or(0, |(_, n)| *n)
    }
}

fn failed(what: &str) -> impl Fn(DbError) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Copies every row of `source` into `target`, which holds no voucher, and checks the result
/// before committing it; `progress` hears of each step.
pub fn copy(
    source: &Db,
    target: &mut Db,
    progress: &mut dyn FnMut(Step),
) -> Result<Copied, String> {
    source
        .begin_read()
        .map_err(failed("cannot read the source"))?;
    let result = write_direct(target, |tx| copy_in(source, tx, progress));
    let _ = source.end_read();
    result
}

fn copy_in(source: &Db, target: &Db, progress: &mut dyn FnMut(Step)) -> Result<Copied, String> {
    let held: i64 = target
        .query_value("SELECT COUNT(*) FROM vouchers", &[])
        .map_err(failed("cannot read the target"))?;
    if held > 0 {
        return Err(format!(
            "the target holds {held} vouchers already; vouchd copy fills only a database \
             without vouchers"
        ));
    }
    let mut copied = Copied {
        replaced_clients: target
            .query_value::<i64>("SELECT COUNT(*) FROM clients", &[])
            .map_err(failed("cannot read the target"))? as u64,
        ..Copied::default()
    };
    clear(target)?;
    for table in TABLES {
        let total = count(source, table).map_err(failed("cannot read the source"))?;
        let done = copy_table(source, target, table, total, progress)?;
        copied.tables.push((table.name, done));
    }
    if target.is_postgres() {
        for table in TABLES.iter().filter(|t| t.identity) {
            let name = table.name;
            target
                .query_value::<i64>(
                    &format!(
                        "SELECT setval(pg_get_serial_sequence('{name}', 'seq'), \
                         COALESCE(MAX(seq), 0) + 1, false) FROM {name}"
                    ),
                    &[],
                )
                .map_err(failed("cannot move the target's sequences"))?;
        }
    }
    progress(Step::Checking);
    copied.carried = check(source, target)?;
    Ok(copied)
}

/// Empties the target's tables, last first (no voucher means no ledger entry or hold: the
/// ledger, whose guards forbid deletes, is empty already).
fn clear(target: &Db) -> Result<(), String> {
    for table in TABLES.iter().rev().filter(|t| t.name != "ledger") {
        let filter = table.only.map_or(String::new(), |c| format!(" WHERE {c}"));
        target
            .execute_once(&format!("DELETE FROM {}{filter}", table.name), &[])
            .map_err(failed("cannot clear the target"))?;
    }
    Ok(())
}

fn count(db: &Db, table: &Table) -> Result<u64, DbError> {
    let filter = table.only.map_or(String::new(), |c| format!(" WHERE {c}"));
    let n: i64 = db.query_value(&format!("SELECT COUNT(*) FROM {}{filter}", table.name), &[])?;
    Ok(n as u64)
}

/// Copies one table in key order, [`READ_ROWS`] at a time; the rows copied.
fn copy_table(
    source: &Db,
    target: &Db,
    table: &Table,
    total: u64,
    progress: &mut dyn FnMut(Step),
) -> Result<u64, String> {
    let columns = table.columns_on(source).join(", ");
    let key = table.columns_on(source)[..table.key].join(", ");
    let mut conditions: Vec<String> = table.only.iter().map(|c| c.to_string()).collect();
    let first = select(table, &columns, &key, &conditions);
    let placeholders = vec!["?"; table.key].join(", ");
    conditions.push(format!("({key}) > ({placeholders})"));
    let next = select(table, &columns, &key, &conditions);
    let width = table.width();
    let per_insert = (MAX_ARGS / width).max(1);
    let mut done = 0u64;
    let mut last: Vec<Cell> = Vec::new();
    progress(Step::Rows {
        table: table.name,
        done,
        total,
    });
    loop {
        let keys: Vec<&dyn ToArg> = last.iter().map(|c| c as &dyn ToArg).collect();
        let sql = if last.is_empty() { &first } else { &next };
        let rows = source
            .query_map(sql, &keys, |row| {
                (0..width)
                    .map(|i| row.get::<Cell>(i))
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(failed(&format!(
                "cannot read {} from the source",
                table.name
            )))?;
        if target.is_postgres() {
            refuse_nul(table, &rows)?;
        }
        for chunk in rows.chunks(per_insert) {
            insert(target, table, chunk)?;
        }
        if !rows.is_empty() {
            done += rows.len() as u64;
            progress(Step::Rows {
                table: table.name,
                done,
                total,
            });
        }
        match rows.last() {
            Some(row) if rows.len() == READ_ROWS => last = row[..table.key].to_vec(),
            _ => return Ok(done),
        }
    }
}

/// PostgreSQL's text cannot hold a NUL, which an older vouchd may have stored in SQLite (a
/// CSV cell, a receiver's error text): named, so that it can be mended on the source.
fn refuse_nul(table: &Table, rows: &[Vec<Cell>]) -> Result<(), String> {
    let columns: Vec<&str> = table.columns.split(", ").collect();
    for row in rows {
        let held = row
            .iter()
            .position(|cell| matches!(cell, Cell::Text(t) if t.contains('\0')));
        if let Some(at) = held {
            // Named by its id where it has one (a voucher's key is its sequence number).
            let named: Vec<usize> = match columns.iter().position(|c| *c == "id") {
                Some(id) => vec![id],
                None => (0..table.key).collect(),
            };
            let shown: Vec<String> = named
                .iter()
                .map(|&i| {
                    let value = match &row[i] {
                        Cell::Int(n) => n.to_string(),
                        Cell::Text(t) => t.escape_default().to_string(),
                        Cell::Null => "NULL".into(),
                        Cell::Blob(_) => "(bytes)".into(),
                    };
                    format!("{} = {value}", columns[i])
                })
                .collect();
            return Err(format!(
                "{}: the row with {} holds a NUL character in {}, which PostgreSQL's text \
                 cannot hold; mend it on the source (sqlite3's replace(…, char(0), '')) \
                 and copy again",
                table.name,
                shown.join(", "),
                columns.get(at).copied().unwrap_or("a column"),
            ));
        }
    }
    Ok(())
}

fn select(table: &Table, columns: &str, key: &str, conditions: &[String]) -> String {
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    format!(
        "SELECT {columns} FROM {}{filter} ORDER BY {key} LIMIT {READ_ROWS}",
        table.name
    )
}

fn insert(target: &Db, table: &Table, rows: &[Vec<Cell>]) -> Result<(), String> {
    let columns = table.columns_on(target).join(", ");
    let one = format!("({})", vec!["?"; table.width()].join(", "));
    let sql = format!(
        "INSERT INTO {} ({columns}) VALUES {}",
        table.name,
        vec![one.as_str(); rows.len()].join(", ")
    );
    let args: Vec<&dyn ToArg> = rows.iter().flatten().map(|c| c as &dyn ToArg).collect();
    target.execute(&sql, &args).map_err(failed(&format!(
        "cannot write {} to the target",
        table.name
    )))?;
    Ok(())
}

/// A voucher's figures and its ledger's sums.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct Figures {
    amount: Option<i64>,
    remaining: Option<i64>,
    uses: i64,
    entries: i64,
    charges: i64,
    refunds: i64,
    use_entries: i64,
    ledger_rows: i64,
}

impl Figures {
    /// Why these figures break the ledger's rule, if they do.
    fn breach(&self) -> Option<String> {
        if let (Some(amount), Some(remaining)) = (self.amount, self.remaining) {
            let expected = amount - self.charges + self.refunds;
            if expected != remaining {
                return Some(format!(
                    "amount {amount} − charges {} + refunds {} = {expected}, but its remaining \
                     is {remaining}",
                    self.charges, self.refunds
                ));
            }
        } else if self.uses != self.use_entries {
            return Some(format!(
                "it counts {} uses, but its ledger holds {} use entries",
                self.uses, self.use_entries
            ));
        }
        if self.entries != self.ledger_rows {
            return Some(format!(
                "it counts {} ledger entries, but the ledger holds {} of it",
                self.entries, self.ledger_rows
            ));
        }
        None
    }
}

const FIGURES: &str = "SELECT v.id, v.amount, v.remaining, v.uses, v.entries, \
     CAST(COALESCE(SUM(CASE WHEN l.type = 'charge' THEN l.amount ELSE 0 END), 0) AS BIGINT), \
     CAST(COALESCE(SUM(CASE WHEN l.type = 'refund' THEN l.amount ELSE 0 END), 0) AS BIGINT), \
     CAST(COALESCE(SUM(CASE WHEN l.type = 'use' THEN 1 ELSE 0 END), 0) AS BIGINT), \
     COUNT(l.id) \
     FROM vouchers v LEFT JOIN ledger l ON l.voucher_id = v.id \
     GROUP BY v.id, v.amount, v.remaining, v.uses, v.entries";

fn figures(db: &Db) -> Result<HashMap<String, Figures>, DbError> {
    let rows = db.query_map(FIGURES, &[], |r| {
        Ok((
            r.get::<String>(0)?,
            Figures {
                amount: r.get(1)?,
                remaining: r.get(2)?,
                uses: r.get(3)?,
                entries: r.get(4)?,
                charges: r.get(5)?,
                refunds: r.get(6)?,
                use_entries: r.get(7)?,
                ledger_rows: r.get(8)?,
            },
        ))
    })?;
    Ok(rows.into_iter().collect())
}

/// The check on the target, before its COMMIT: row counts, then every voucher's figures (see
/// the module's notes). The vouchers carried over with a breach of the source's own.
fn check(source: &Db, target: &Db) -> Result<u64, String> {
    for table in TABLES {
        let from = count(source, table).map_err(failed("cannot read the source"))?;
        let to = count(target, table).map_err(failed("cannot check the target"))?;
        if from != to {
            return Err(format!(
                "check failed: the target's {} holds {to} rows, the source's {from}",
                table.name
            ));
        }
    }
    let from = figures(source).map_err(failed("cannot read the source"))?;
    let to = figures(target).map_err(failed("cannot check the target"))?;
    let mut ids: Vec<&String> = to.keys().collect();
    ids.sort();
    let mut carried = 0;
    for id in ids {
        let copy = &to[id];
        let original = from.get(id);
        if let Some(breach) = copy.breach() {
            if original == Some(copy) {
                carried += 1;
                continue;
            }
            return Err(format!(
                "check failed: voucher {id} on the target: {breach}"
            ));
        }
        if original != Some(copy) {
            return Err(format!(
                "check failed: voucher {id} on the target has other figures or ledger \
                 entries than on the source"
            ));
        }
    }
    if let Some(id) = from.keys().find(|id| !to.contains_key(*id)) {
        return Err(format!(
            "check failed: voucher {id} is missing on the target"
        ));
    }
    Ok(carried)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// A column added to the schema and not here would be left behind by every copy.
    #[test]
    fn every_table_and_column_of_the_schema_is_copied() {
        let mut conn = rusqlite::Connection::open_in_memory().expect("memory");
        crate::store::migrate::migrate(&mut conn).expect("schema");
        let names = |sql: &str| -> BTreeSet<String> {
            let mut stmt = conn.prepare(sql).expect("prepare");
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .expect("query");
            rows.map(|r| r.expect("row")).collect()
        };
        let tables = names(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        );
        let copied: BTreeSet<String> = TABLES.iter().map(|t| t.name.to_string()).collect();
        assert_eq!(tables, copied);
        let db = Db::new(rusqlite::Connection::open_in_memory().expect("memory"));
        for table in TABLES {
            let schema = names(&format!(
                "SELECT name FROM pragma_table_info('{}')",
                table.name
            ));
            let ours: BTreeSet<String> = table
                .columns_on(&db)
                .into_iter()
                .filter(|c| *c != "rowid")
                .map(str::to_string)
                .collect();
            assert_eq!(schema, ours, "the columns of {}", table.name);
            assert!(table.key <= table.width());
        }
    }
}
