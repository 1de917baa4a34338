//! Vouchers: insert one or a batch, read by id or code, change, delete (lists: `voucher_list`).

use super::outbox::{self, Event};
use crate::domain::clock::{self, Interval};
use crate::domain::code::{fits_in_space, Code, CodeShape};
use crate::domain::ledger::discount_change;
use crate::domain::money::Currency;
use crate::domain::voucher::{
    Changes, Discount, DiscountKind, Medium, Restrictions, Status, Tenant, Voucher,
};
use crate::domain::webhook::EventType;
use crate::store::error::{Conflict, Invalid, StoreError};
use crate::store::sql::{args, DbError, Row, ToArg, Value};
pub(crate) use crate::store::voucher_list::where_clause;
pub use crate::store::voucher_list::{begin_snapshot, end_snapshot, list, Scan};
use crate::store::Db;
use std::collections::HashSet;

/// The stored columns of a [`Voucher`], in [`voucher_from_row`]'s order up to `entries`.
/// Macros so statements can be built with `concat!` at compile time.
macro_rules! stored_columns {
    () => {
        "v.id, v.code, v.client_id, v.group_id, v.sku, v.batch, v.label, v.note, v.currency, \
    v.amount, v.remaining, v.discount_type, v.discount_value, v.max_uses, v.uses, v.used_at, v.valid_from, \
    v.valid_until, v.validity_value, v.validity_interval, v.status, v.type, v.taxable, v.tax_rate, \
    v.order_number, v.customer_id, v.product_id, v.store_id, v.purchase_id, v.reward_id, v.data, \
    v.created_at, v.updated_at, v.entries"
    };
}
pub(super) use stored_columns;

/// Columns read into a [`Voucher`], in [`voucher_from_row`]'s order; `held` sums live holds.
macro_rules! columns {
    () => {
        concat!(
            stored_columns!(),
            ", (SELECT CAST(COALESCE(SUM(r.amount), 0) AS BIGINT) FROM reservations r \
     WHERE r.voucher_id = v.id AND r.status = 'held' AND r.expires_at > unixepoch())"
        )
    };
}

pub const COLUMNS: &str = columns!();

fn bad_column(idx: usize, what: &str) -> DbError {
    DbError::column(idx, what)
}

pub(crate) fn voucher_from_row(row: &Row) -> Result<Voucher, DbError> {
    let currency: String = row.get(8)?;
    let currency = Currency::parse(&currency).ok_or_else(|| bad_column(8, "unknown currency"))?;
    let discount = match (row.get::<Option<String>>(11)?, row.get::<Option<i64>>(12)?) {
        (Some(kind), Some(value)) => Some(Discount {
            kind: DiscountKind::parse(&kind)
                .ok_or_else(|| bad_column(11, "unknown discount type"))?,
            value,
        }),
        _ => None,
    };
    let validity = match (row.get::<Option<i64>>(18)?, row.get::<Option<String>>(19)?) {
        (Some(n), Some(unit)) => Some((
            n,
            Interval::parse(&unit).ok_or_else(|| bad_column(19, "unknown interval"))?,
        )),
        _ => None,
    };
    let status: String = row.get(20)?;
    let medium: String = row.get(21)?;
    Ok(Voucher {
        id: row.get(0)?,
        code: Code::from_stored(row.get(1)?),
        client_id: row.get(2)?,
        group_id: row.get(3)?,
        sku: row.get(4)?,
        batch: row.get(5)?,
        label: row.get(6)?,
        note: row.get(7)?,
        currency,
        amount: row.get(9)?,
        remaining: row.get(10)?,
        discount,
        max_uses: row.get(13)?,
        uses: row.get(14)?,
        used_at: row.get(15)?,
        valid_from: row.get(16)?,
        valid_until: row.get(17)?,
        validity,
        status: Status::parse(&status).ok_or_else(|| bad_column(20, "unknown status"))?,
        medium: Medium::parse(&medium).ok_or_else(|| bad_column(21, "unknown type"))?,
        taxable: row.get(22)?,
        tax_rate: row.get(23)?,
        order_number: row.get(24)?,
        restrictions: Restrictions {
            customer_id: row.get(25)?,
            product_id: row.get(26)?,
            store_id: row.get(27)?,
        },
        purchase_id: row.get(28)?,
        reward_id: row.get(29)?,
        data: row.get(30)?,
        created_at: row.get(31)?,
        updated_at: row.get(32)?,
        entries: row.get(33)?,
        held: row.get(34)?,
    })
}

pub(super) const INSERT: &str = "INSERT INTO vouchers (id, code, client_id, group_id, sku, batch, label, note, currency, \
    exponent, amount, remaining, discount_type, discount_value, max_uses, uses, used_at, valid_from, valid_until, \
    validity_value, validity_interval, status, type, taxable, tax_rate, order_number, customer_id, product_id, \
    store_id, purchase_id, reward_id, data, entries, created_at, updated_at) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, \
    ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, 0, ?33, ?34) ON CONFLICT DO NOTHING";

/// Inserts `v`; false when its code (in its group) or its id is taken: the insert changes
/// nothing then ([`clash`] says which), on PostgreSQL too without aborting the transaction.
pub(super) fn insert_row(conn: &Db, v: &Voucher) -> Result<bool, DbError> {
    let r = &v.restrictions;
    let inserted = conn.execute(
        INSERT,
        &[
            &v.id,
            &v.code.as_str(),
            &v.client_id,
            &v.group_id,
            &v.sku,
            &v.batch,
            &v.label,
            &v.note,
            &v.currency.as_str(),
            &v.currency.exponent(),
            &v.amount,
            &v.remaining,
            &v.discount.map(|d| d.kind.as_str()),
            &v.discount.map(|d| d.value),
            &v.max_uses,
            &v.uses,
            &v.used_at,
            &v.valid_from,
            &v.valid_until,
            &v.validity.map(|(n, _)| n),
            &v.validity.map(|(_, u)| u.as_str()),
            &v.status.as_str(),
            &v.medium.as_str(),
            &v.taxable,
            &v.tax_rate,
            &v.order_number,
            &r.customer_id,
            &r.product_id,
            &r.store_id,
            &v.purchase_id,
            &v.reward_id,
            &v.data,
            &v.created_at,
            &v.updated_at,
        ],
    )?;
    Ok(inserted > 0)
}

/// Which unique column of `vouchers` an insert of `v` that changed nothing clashed on: `code`
/// (unique in its group) or `id`.
pub(super) fn clash(conn: &Db, v: &Voucher) -> Result<&'static str, DbError> {
    let code_taken = conn
        .query_opt(
            "SELECT 1 FROM vouchers WHERE code = ?1 AND group_id = ?2",
            &[&v.code.as_str(), &v.group_id],
            |_| Ok(()),
        )?
        .is_some();
    Ok(if code_taken { "code" } else { "id" })
}

/// Adds `delta` to the number of `group_id`'s vouchers in `status` (`voucher_counts`, which the
/// broadest lists take their totals from). Every insert, status change and delete of a voucher
/// calls it in the same transaction.
pub(super) fn count_in(
    conn: &Db,
    group_id: &str,
    status: Status,
    delta: i64,
) -> Result<(), DbError> {
    if delta != 0 {
        conn.execute(
            "INSERT INTO voucher_counts (group_id, status, n) VALUES (?1, ?2, ?3)
             ON CONFLICT (group_id, status) DO UPDATE SET n = voucher_counts.n + excluded.n",
            &[&group_id, &status.as_str(), &delta],
        )?;
    }
    Ok(())
}

pub fn insert(conn: &Db, v: &Voucher) -> Result<(), StoreError> {
    if !insert_row(conn, v)? {
        return match clash(conn, v)? {
            "code" => Err(StoreError::Conflict(Conflict::DuplicateCode(
                v.code.as_str().to_string(),
            ))),
            _ => Err(StoreError::Bug("a fresh voucher id was taken")),
        };
    }
    outbox::record(conn, &v.group_id, Event::VoucherCreated(v))?;
    Ok(count_in(conn, &v.group_id, v.status, 1)?)
}

/// Inserts `count` copies of `template`, each with a fresh id and a fresh code of `shape`.
/// Refuses (422 on `count`) a count that does not fit comfortably in what the shape has left.
pub fn insert_batch(
    conn: &Db,
    template: &Voucher,
    shape: &CodeShape,
    count: u64,
) -> Result<Vec<(String, String)>, StoreError> {
    // Codes are unique per group, so only the group's own vouchers take room: what it has
    // (kept in voucher_counts) bounds the codes of this shape already taken; only when that
    // bound leaves too little room is the exact number counted, a scan of the code index.
    let group = &template.group_id;
    let all: u64 = conn.query_value(
        "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM voucher_counts WHERE group_id = ?1",
        &[group],
    )?;
    let taken: u64 = if fits_in_space(count, shape.space(), all) {
        all
    } else {
        conn.query_value(
            "SELECT COUNT(*) FROM vouchers WHERE code >= ?1 AND code < ?1 || '~' AND length(code) = ?2 AND group_id = ?3",
            &[&shape.prefix, &(shape.length as i64), group],
        )?
    };
    if !fits_in_space(count, shape.space(), taken) {
        let room = shape.space().saturating_sub(taken) / 2;
        return Err(StoreError::Invalid(Invalid::NoRoomForCodes {
            room,
            length: shape.length,
            prefix: shape.prefix.clone(),
        }));
    }
    let mut rng = rand::thread_rng();
    // The codes are made first and inserted in order: random codes inserted as they come
    // touch a random leaf of the code index each, which on a large table spilled the writer's
    // cache to the WAL and read it back; in order, each leaf is filled once.
    let mut codes: Vec<Code> = (0..count).map(|_| shape.generate(&mut rng)).collect();
    codes.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
    let mut made = Vec::with_capacity(count as usize);
    let mut v = template.clone();
    // Asked once: the batch's events are all of one type and one group.
    let wanted = outbox::wanted(conn, group, EventType::VoucherCreated)?;
    // PostgreSQL: a statement per chunk of vouchers rather than a round trip per voucher;
    // a voucher the chunk could not insert (its code taken) is retried alone with a fresh one.
    let chunk = if conn.is_postgres() {
        ROWS_PER_INSERT
    } else {
        1
    };
    for codes in codes.chunks(chunk) {
        let ids: Vec<String> = codes
            .iter()
            .map(|_| crate::domain::code::new_id())
            .collect();
        let inserted = if codes.len() > 1 {
            insert_rows(conn, template, &ids, codes)?
        } else {
            HashSet::new()
        };
        for (id, code) in ids.into_iter().zip(codes) {
            if inserted.contains(&id) {
                v.id = id;
                v.code = code.clone();
            } else {
                let first = (codes.len() == 1).then(|| code.clone());
                insert_retrying(conn, &mut v, shape, first, &mut rng)?;
            }
            made.push((v.id.clone(), v.code.as_str().to_string()));
            if wanted {
                outbox::record_wanted(conn, &v.group_id, Event::VoucherCreated(&v))?;
            }
        }
    }
    count_in(conn, &template.group_id, template.status, made.len() as i64)?;
    Ok(made)
}

/// Vouchers one multi-row INSERT of a batch writes at most on PostgreSQL (two parameters a
/// row plus the template's 32, well within its 65535).
const ROWS_PER_INSERT: usize = 1000;

/// Inserts `template` once per `(id, code)` in one statement, skipping those whose code (or
/// id) is taken; returns the ids inserted.
fn insert_rows(
    conn: &Db,
    template: &Voucher,
    ids: &[String],
    codes: &[Code],
) -> Result<HashSet<String>, DbError> {
    let v = template;
    let r = &v.restrictions;
    let (currency, exponent) = (v.currency.as_str(), v.currency.exponent());
    let discount_type = v.discount.map(|d| d.kind.as_str());
    let discount_value = v.discount.map(|d| d.value);
    let validity_value = v.validity.map(|(n, _)| n);
    let validity_interval = v.validity.map(|(_, u)| u.as_str());
    let (status, medium) = (v.status.as_str(), v.medium.as_str());
    let mut params: Vec<&dyn ToArg> = vec![
        &v.client_id,
        &v.group_id,
        &v.sku,
        &v.batch,
        &v.label,
        &v.note,
        &currency,
        &exponent,
        &v.amount,
        &v.remaining,
        &discount_type,
        &discount_value,
        &v.max_uses,
        &v.uses,
        &v.used_at,
        &v.valid_from,
        &v.valid_until,
        &validity_value,
        &validity_interval,
        &status,
        &medium,
        &v.taxable,
        &v.tax_rate,
        &v.order_number,
        &r.customer_id,
        &r.product_id,
        &r.store_id,
        &v.purchase_id,
        &v.reward_id,
        &v.data,
        &v.created_at,
        &v.updated_at,
    ];
    let shared = params.len();
    let code_texts: Vec<&str> = codes.iter().map(Code::as_str).collect();
    let mut sql = String::from(&INSERT[..INSERT.find("VALUES").unwrap_or(0)]);
    sql.push_str("VALUES ");
    for (i, (id, code)) in ids.iter().zip(&code_texts).enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        let at = shared + 2 * i + 1;
        sql.push_str(&format!("(?{at}, ?{}", at + 1));
        // The shared values in INSERT's column order: all but the two times, `entries` = 0,
        // then the two times.
        for n in 1..=shared - 2 {
            sql.push_str(&format!(", ?{n}"));
        }
        sql.push_str(&format!(", 0, ?{}, ?{shared})", shared - 1));
        params.push(id);
        params.push(code);
    }
    sql.push_str(" ON CONFLICT DO NOTHING RETURNING id");
    let inserted = conn.query_map(&sql, &params, |row| row.get::<String>(0))?;
    Ok(inserted.into_iter().collect())
}

/// Inserts `v` with a fresh id and `first` as its code (a fresh one when `None`), replacing a
/// code already taken by a fresh one, up to 64 times.
fn insert_retrying(
    conn: &Db,
    v: &mut Voucher,
    shape: &CodeShape,
    first: Option<Code>,
    rng: &mut impl rand::Rng,
) -> Result<(), StoreError> {
    let mut attempts = 0;
    let mut code = first;
    loop {
        v.id = crate::domain::code::new_id();
        v.code = code.take().unwrap_or_else(|| shape.generate(rng));
        if insert_row(conn, v)? {
            return Ok(());
        }
        if clash(conn, v)? != "code" {
            return Err(StoreError::Bug("a fresh voucher id was taken"));
        }
        if attempts >= 64 {
            return Err(StoreError::Conflict(Conflict::CodeSpaceExhausted));
        }
        attempts += 1;
    }
}

/// A voucher by id, if the tenant may see it.
///
/// In a write on PostgreSQL the voucher's row stays locked until the write ends, so that what
/// the write decides from it holds as under SQLite's single writer.
pub fn get(conn: &Db, id: &str, tenant: &Tenant) -> Result<Voucher, StoreError> {
    const SQL: &str = concat!("SELECT ", columns!(), " FROM vouchers v WHERE v.id = ?1");
    const LOCKING: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM vouchers v WHERE v.id = ?1 FOR UPDATE OF v"
    );
    let sql = if conn.locks_rows() { LOCKING } else { SQL };
    let v = conn.query_opt(sql, &[&id], voucher_from_row)?;
    v.filter(|v| tenant.may_see(v)).ok_or(StoreError::NotFound)
}

/// In a write on PostgreSQL, locks the voucher's row until the write ends (as [`get`] does),
/// before the write touches its holds or entries; nothing to do under SQLite's one writer.
pub(super) fn lock(conn: &Db, id: &str) -> Result<(), StoreError> {
    if conn.locks_rows() {
        conn.query_opt(
            "SELECT 1 FROM vouchers WHERE id = ?1 FOR UPDATE",
            &[&id],
            |_| Ok(()),
        )?;
    }
    Ok(())
}

/// A voucher by normalised code, if the tenant may see it. Codes are unique per group: a
/// group looks among its own only, and `admin` (every group) gets 409 `ambiguous_code` when
/// several groups hold the code. Locked as [`get`] locks in a write on PostgreSQL.
pub fn find_by_code(conn: &Db, code: &str, tenant: &Tenant) -> Result<Option<Voucher>, StoreError> {
    let mut found = match tenant {
        Tenant::Group(group) => {
            const SQL: &str = concat!(
                "SELECT ",
                columns!(),
                " FROM vouchers v WHERE v.code = ?1 AND v.group_id = ?2"
            );
            const LOCKING: &str = concat!(
                "SELECT ",
                columns!(),
                " FROM vouchers v WHERE v.code = ?1 AND v.group_id = ?2 FOR UPDATE OF v"
            );
            let sql = if conn.locks_rows() { LOCKING } else { SQL };
            conn.query_map(sql, &[&code, group], voucher_from_row)?
        }
        Tenant::All => {
            const SQL: &str = concat!(
                "SELECT ",
                columns!(),
                " FROM vouchers v WHERE v.code = ?1 LIMIT 2"
            );
            const LOCKING: &str = concat!(
                "SELECT ",
                columns!(),
                " FROM vouchers v WHERE v.code = ?1 LIMIT 2 FOR UPDATE OF v"
            );
            let sql = if conn.locks_rows() { LOCKING } else { SQL };
            conn.query_map(sql, &[&code], voucher_from_row)?
        }
    };
    if found.len() > 1 {
        return Err(StoreError::Conflict(Conflict::AmbiguousCode(
            code.to_string(),
        )));
    }
    Ok(found.pop())
}

pub fn update(
    conn: &Db,
    id: &str,
    tenant: &Tenant,
    changes: &Changes,
) -> Result<Voucher, StoreError> {
    update_at(conn, id, tenant, changes, clock::now())
}

/// [`update`] with the time of the change given (the demo data's history lies in the past).
pub fn update_at(
    conn: &Db,
    id: &str,
    tenant: &Tenant,
    changes: &Changes,
    now: i64,
) -> Result<Voucher, StoreError> {
    let current = get(conn, id, tenant)?;
    let mut sets: Vec<&str> = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    let mut set = |column: &'static str, value: Value| {
        sets.push(column);
        values.push(value);
    };
    let text = |v: &Option<String>| v.clone().map_or(Value::Null, Value::Text);
    let int = |v: i64| Value::Int(v);
    if let Some(v) = &changes.label {
        set("label", text(v))
    }
    if let Some(v) = &changes.note {
        set("note", text(v))
    }
    if let Some(v) = changes.status {
        set("status", Value::Text(v.as_str().into()))
    }
    if let Some(v) = changes.valid_until {
        set("valid_until", v.map_or(Value::Null, int))
    }
    if let Some(v) = &changes.sku {
        set("sku", text(v))
    }
    if let Some(v) = &changes.batch {
        set("batch", text(v))
    }
    if let Some(v) = &changes.customer_id {
        set("customer_id", text(v))
    }
    if let Some(v) = &changes.product_id {
        set("product_id", text(v))
    }
    if let Some(v) = &changes.store_id {
        set("store_id", text(v))
    }
    if let Some(v) = &changes.data {
        set("data", text(v))
    }
    if let Some(d) = discount_change(&current, changes.discount)? {
        set("discount_type", Value::Text(d.kind.as_str().into()));
        set("discount_value", int(d.value));
    }
    set("updated_at", int(now));
    let assignments: Vec<String> = sets.iter().map(|c| format!("{c} = ?")).collect();
    let sql = format!(
        "UPDATE vouchers SET {} WHERE id = ?",
        assignments.join(", ")
    );
    values.push(Value::Text(id.to_string()));
    conn.execute_once(&sql, &args(&values))?;
    let v = get(conn, id, tenant)?;
    // The event before the counts, as every write records them (on PostgreSQL an event takes
    // the outbox's lock, and no write waits for it while holding a count).
    outbox::record(conn, &v.group_id, Event::VoucherUpdated(&v))?;
    if let Some(status) = changes.status.filter(|s| *s != current.status) {
        // Both counts in one order (by status) whatever the change, so that two writes moving
        // vouchers opposite ways never wait for each other's count (PostgreSQL's row locks).
        let mut moves = [(current.status, -1), (status, 1)];
        moves.sort_by_key(|(s, _)| s.as_str());
        for (s, delta) in moves {
            count_in(conn, &current.group_id, s, delta)?;
        }
    }
    Ok(v)
}

/// How many vouchers the database holds, every group's.
pub fn count_all(conn: &Db) -> Result<i64, StoreError> {
    Ok(conn.query_value("SELECT COUNT(*) FROM vouchers", &[])?)
}

/// Deletes a voucher without ledger entries (and its released or expired holds).
pub fn delete(conn: &Db, id: &str, tenant: &Tenant) -> Result<(), StoreError> {
    let v = get(conn, id, tenant)?;
    if !v.deletable() {
        return Err(StoreError::Conflict(Conflict::NotDeletable));
    }
    conn.execute("DELETE FROM reservations WHERE voucher_id = ?1", &[&id])?;
    let deleted = conn.execute("DELETE FROM vouchers WHERE id = ?1 AND entries = 0", &[&id])?;
    if deleted == 0 {
        return Err(StoreError::Conflict(Conflict::NotDeletable));
    }
    outbox::record(conn, &v.group_id, Event::VoucherDeleted(&v))?;
    count_in(conn, &v.group_id, v.status, -1)?;
    Ok(())
}
