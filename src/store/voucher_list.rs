//! Voucher lists: the `WHERE` of filters and tenancy, the sort, the page and its total.

use super::vouchers::{voucher_from_row, COLUMNS};
use crate::domain::query::{Filter, ListQuery, SortField};
use crate::domain::voucher::{Status, Tenant, Voucher};
use crate::store::error::StoreError;
use crate::store::sql::{args, Value};
use crate::store::Db;

/// How the rows of a `WHERE` will be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scan {
    /// A page of a list: SQLite may pick any index.
    Any,
    /// Keyset pages in `seq` order (an export): the indexes on `(group_id, created_at)` and
    /// `created_at` return rows out of `seq` order, and SQLite would use one and then sort
    /// every remaining match for each page (quadratic over an export); their columns are
    /// written `+v.column` so it walks `seq`, or an equality index whose ties are in `seq`
    /// order, instead.
    InSeqOrder,
}

/// `v.column`, or `+v.column` where `scan` must keep SQLite off that column's index.
fn column(name: &str, scan: Scan) -> String {
    match (scan, name) {
        (Scan::InSeqOrder, "group_id" | "created_at") => format!("+v.{name}"),
        _ => format!("v.{name}"),
    }
}

/// ` AND v.group_id = ?` for a group's tenant; `+v.group_id` (no index) when `unindexed`.
fn tenant_clause(tenant: &Tenant, unindexed: bool, sql: &mut String, args: &mut Vec<Value>) {
    if let Tenant::Group(group) = tenant {
        sql.push_str(if unindexed {
            " AND +v.group_id = ?"
        } else {
            " AND v.group_id = ?"
        });
        args.push(Value::Text(group.clone()));
    }
}

/// Appends the SQL condition of one filter.
fn filter_clause(filter: &Filter, scan: Scan, sql: &mut String, args: &mut Vec<Value>) {
    let mut eq = |name: &str, value: Value| {
        sql.push_str(&format!(" AND {} = ?", column(name, scan)));
        args.push(value);
    };
    match filter {
        Filter::CreatedFrom(t) => {
            sql.push_str(&format!(" AND {} >= ?", column("created_at", scan)));
            args.push(Value::Int(*t));
        }
        Filter::CreatedTo(t) => {
            sql.push_str(&format!(" AND {} <= ?", column("created_at", scan)));
            args.push(Value::Int(*t));
        }
        Filter::ValidUntilFrom(t) => {
            sql.push_str(" AND v.valid_until >= ?");
            args.push(Value::Int(*t));
        }
        Filter::ValidUntilTo(t) => {
            sql.push_str(" AND v.valid_until <= ?");
            args.push(Value::Int(*t));
        }
        Filter::ClientId(s) => eq("client_id", Value::Text(s.clone())),
        Filter::GroupId(s) => eq("group_id", Value::Text(s.clone())),
        Filter::Code(s) => eq("code", Value::Text(s.clone())),
        Filter::Id(s) => eq("id", Value::Text(s.clone())),
        Filter::Sku(s) => eq("sku", Value::Text(s.clone())),
        Filter::Medium(m) => eq("type", Value::Text(m.as_str().into())),
        Filter::Batch(s) => eq("batch", Value::Text(s.clone())),
        Filter::CustomerId(s) => eq("customer_id", Value::Text(s.clone())),
        Filter::PurchaseId(s) => eq("purchase_id", Value::Text(s.clone())),
        Filter::StoreId(s) => eq("store_id", Value::Text(s.clone())),
        Filter::RewardId(s) => eq("reward_id", Value::Text(s.clone())),
        Filter::OrderNumber(s) => eq("order_number", Value::Text(s.clone())),
        Filter::Taxable(b) => eq("taxable", Value::Int(i64::from(*b))),
        Filter::TaxRate(r) => eq("tax_rate", Value::Int(*r)),
        Filter::HasRemaining(true) => sql.push_str(" AND v.remaining > 0"),
        Filter::HasRemaining(false) => {
            sql.push_str(" AND (v.remaining IS NULL OR v.remaining = 0)")
        }
        Filter::Status(statuses) => {
            let marks = vec!["?"; statuses.len()].join(", ");
            sql.push_str(&format!(" AND v.status IN ({marks})"));
            args.extend(statuses.iter().map(|s| Value::Text(s.as_str().into())));
        }
        Filter::ValidAt(at, inside) => {
            let not = if *inside { "" } else { "NOT " };
            sql.push_str(&format!(
                " AND {not}((v.valid_from IS NULL OR v.valid_from <= ?) \
                 AND (v.valid_until IS NULL OR v.valid_until >= ?))"
            ));
            args.extend([Value::Int(*at), Value::Int(*at)]);
        }
        Filter::AppliedAt(at, applied) => {
            let not = if *applied { "" } else { "NOT " };
            sql.push_str(&format!(
                " AND {not}(v.entries > 0 OR EXISTS (SELECT 1 FROM reservations r \
                 WHERE r.voucher_id = v.id AND r.status = 'held' AND r.expires_at > ?))"
            ));
            args.push(Value::Int(*at));
        }
        Filter::RewardIn(ids) => {
            let marks = vec!["?"; ids.len()].join(", ");
            sql.push_str(&format!(" AND v.reward_id IN ({marks})"));
            args.extend(ids.iter().map(|s| Value::Text(s.clone())));
        }
        Filter::DiscountOnly => sql.push_str(" AND v.discount_type IS NOT NULL"),
        Filter::Used(true) => sql.push_str(" AND v.used_at IS NOT NULL"),
        Filter::Used(false) => sql.push_str(" AND v.used_at IS NULL"),
        Filter::ValueWithExponent(exp) => {
            sql.push_str(" AND v.discount_type IS NULL AND v.exponent = ?");
            args.push(Value::Int(i64::from(*exp)));
        }
        Filter::Amount(candidates) => {
            let alternatives =
                vec!["(v.exponent = ? AND v.amount = ?)"; candidates.len()].join(" OR ");
            sql.push_str(&format!(" AND ({alternatives})"));
            for (exp, minor) in candidates {
                args.push(Value::Int(i64::from(*exp)));
                args.push(Value::Int(*minor));
            }
        }
    }
}

fn sort_column(field: SortField) -> &'static str {
    match field {
        SortField::CreatedAt => "v.created_at",
        SortField::UpdatedAt => "v.updated_at",
        SortField::ValidUntil => "v.valid_until",
        SortField::Amount => "v.amount",
        SortField::RemainingAmount => "v.remaining",
        SortField::Code => "v.code",
        SortField::Id => "v.id",
        SortField::CustomerId => "v.customer_id",
        SortField::StoreId => "v.store_id",
        SortField::Value => "COALESCE(v.amount, v.discount_value)",
        SortField::UsedAt => "v.used_at",
        SortField::ValidFrom => "v.valid_from",
        SortField::RewardId => "v.reward_id",
        SortField::Note => "v.note",
        SortField::Status => {
            "CASE v.status WHEN 'cancelled' THEN 0 WHEN 'active' THEN 1 ELSE 2 END"
        }
        SortField::Kind => "v.amount IS NOT NULL",
    }
}

/// `WHERE …` over `vouchers v` for what `tenant` may see narrowed by `filters`, and its
/// arguments, for rows read as `scan` says. `hints`: SQLite's, `+column` where its planner
/// must keep off an index (PostgreSQL has no unary plus on text, and plans on its own).
pub(crate) fn where_clause(
    tenant: &Tenant,
    filters: &[Filter],
    scan: Scan,
    hints: bool,
) -> (String, Vec<Value>) {
    let scan = if hints { scan } else { Scan::Any };
    let mut sql = String::from("WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    // With an equality on a column with its own index, SQLite preferred walking the group's
    // whole `(group_id, created_at)` index (no sort needed) over that index's few rows, slow
    // on a large table. `+v.group_id` takes the group index
    // out of the choice, so the selective index is used and its few rows are sorted.
    let unindexed = hints && (scan == Scan::InSeqOrder || filters.iter().any(is_selective));
    tenant_clause(tenant, unindexed, &mut sql, &mut args);
    for filter in filters {
        filter_clause(filter, scan, &mut sql, &mut args);
    }
    (sql, args)
}

/// Filters on a column with its own index that few vouchers share.
fn is_selective(filter: &Filter) -> bool {
    matches!(
        filter,
        Filter::Code(_)
            | Filter::Id(_)
            | Filter::Batch(_)
            | Filter::CustomerId(_)
            | Filter::PurchaseId(_)
            | Filter::OrderNumber(_)
    )
}

/// The number of vouchers the tenant may see with these filters, from `voucher_counts`, when
/// the filters are at most a status list (the broadest lists); `None` otherwise.
fn counted_total(
    conn: &Db,
    tenant: &Tenant,
    filters: &[Filter],
) -> Result<Option<i64>, StoreError> {
    let statuses: Vec<Value> = match filters {
        [] => Status::ALL
            .iter()
            .map(|s| Value::Text(s.as_str().into()))
            .collect(),
        [Filter::Status(list)] => list
            .iter()
            .map(|s| Value::Text(s.as_str().into()))
            .collect(),
        _ => return Ok(None),
    };
    let marks = vec!["?"; statuses.len()].join(", ");
    let mut sql = format!(
        "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM voucher_counts WHERE status IN ({marks})"
    );
    let mut values = statuses;
    if let Tenant::Group(group) = tenant {
        sql.push_str(" AND group_id = ?");
        values.push(Value::Text(group.clone()));
    }
    let total = conn.query_value(&sql, &args(&values))?;
    Ok(Some(total))
}

/// The statement for one page of a list: `where_sql`'s arguments, then LIMIT and OFFSET.
///
/// A page that may need sorting or skipping picks its rows by key first and reads only
/// those rows whole: otherwise SQLite builds every matching row (35 columns and the held
/// amount's subquery) before sorting or skipping it. A look-up by code or id (a few rows at
/// most) is asked directly, and without `ORDER BY` where it matches one row at most (an id, or
/// a code within one group): SQLite sorts even a single row through a temporary B-tree.
/// `pg`: PostgreSQL's, whose NULLs sort last ascending unless told.
fn page_sql(where_sql: &str, query: &ListQuery, tenant: &Tenant, pg: bool) -> String {
    let one_row = query.filters.iter().any(|f| match f {
        Filter::Id(_) => true,
        Filter::Code(_) => matches!(tenant, Tenant::Group(_)),
        _ => false,
    });
    if one_row {
        return format!("SELECT {COLUMNS} FROM vouchers v {where_sql} LIMIT ? OFFSET ?");
    }
    let order = super::order_by(&query.sort, sort_column, "v.created_at DESC", "v.id", pg);
    let unique = query
        .filters
        .iter()
        .any(|f| matches!(f, Filter::Code(_) | Filter::Id(_)));
    if unique {
        format!("SELECT {COLUMNS} FROM vouchers v {where_sql} ORDER BY {order} LIMIT ? OFFSET ?")
    } else {
        format!(
            "SELECT {COLUMNS} FROM vouchers v WHERE v.seq IN \
             (SELECT v.seq FROM vouchers v {where_sql} ORDER BY {order} LIMIT ? OFFSET ?) \
             ORDER BY {order}"
        )
    }
}

/// One page of vouchers matching the query, and how many match in all.
pub fn list(
    conn: &Db,
    tenant: &Tenant,
    query: &ListQuery,
) -> Result<(Vec<Voucher>, u64), StoreError> {
    let (where_sql, values) = where_clause(tenant, &query.filters, Scan::Any, !conn.is_postgres());
    let sql = page_sql(&where_sql, query, tenant, conn.is_postgres());
    let vouchers = super::fetch_page(conn, &sql, values.clone(), query, voucher_from_row)?;
    if let Some(total) = query.total_from_page(vouchers.len()) {
        return Ok((vouchers, total));
    }
    let total: i64 = match counted_total(conn, tenant, &query.filters)? {
        Some(total) => total,
        None => conn.query_value(
            &format!("SELECT COUNT(*) FROM vouchers v {where_sql}"),
            &args(&values),
        )?,
    };
    Ok((vouchers, total as u64))
}

/// Starts a read transaction on a connection of the caller's own, so that the pages of
/// [`list`] read on it one after another see one snapshot; [`end_snapshot`] ends it.
pub fn begin_snapshot(conn: &Db) -> Result<(), StoreError> {
    conn.begin_read()?;
    Ok(())
}

pub fn end_snapshot(conn: &Db) -> Result<(), StoreError> {
    conn.end_read()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{connect, migrate, SyncMode};

    /// SQLite's plan for the first page of a group's list with these filters.
    fn plan(conn: &Db, filters: Vec<Filter>) -> String {
        let tenant = Tenant::Group("G1".into());
        let query = ListQuery {
            filters,
            ..ListQuery::first(20)
        };
        let (where_sql, mut values) = where_clause(&tenant, &query.filters, Scan::Any, true);
        values.extend([Value::Int(20), Value::Int(0)]);
        let sql = format!(
            "EXPLAIN QUERY PLAN {}",
            page_sql(&where_sql, &query, &tenant, false)
        );
        let rows = conn
            .query_map(&sql, &args(&values), |r| r.get::<String>(3))
            .expect("plan");
        rows.join("; ")
    }

    #[test]
    fn every_filter_a_till_uses_searches_its_own_index() {
        let dir = std::env::temp_dir().join(format!("vouchd-plans-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let mut conn = connect(&dir.join("plans.db"), SyncMode::Normal, false).expect("open");
        migrate::migrate(&mut conn).expect("migrate");
        let conn = Db::new(conn);
        let text = |s: &str| s.to_string();
        let cases = [
            (Filter::Code(text("ABCD1234")), "vouchers_code"),
            (Filter::Id(text("X")), "sqlite_autoindex_vouchers_1"),
            (Filter::Batch(text("B1")), "vouchers_batch"),
            (Filter::CustomerId(text("C1")), "vouchers_customer"),
            (Filter::PurchaseId(text("P1")), "vouchers_purchase"),
            (Filter::OrderNumber(text("O1")), "vouchers_order"),
        ];
        for (filter, index) in cases {
            let plan = plan(
                &conn,
                vec![filter.clone(), Filter::Status(vec![Status::Active])],
            );
            assert!(
                plan.contains(&format!("INDEX {index} (")) && !plan.contains("SCAN"),
                "{filter:?}: {plan}"
            );
        }
        // The broad lists pick the page's keys walking the group's index in the default
        // order: no scan, and no sort of what matches (only of the page's own rows).
        for filters in [vec![], vec![Filter::Status(vec![Status::Active])]] {
            let plan = plan(&conn, filters.clone());
            let keys = plan.split("LIST SUBQUERY").nth(1).unwrap_or_default();
            let keys = keys.split("CORRELATED").next().unwrap_or_default();
            assert!(
                keys.contains("INDEX vouchers_group_created (group_id=?)")
                    && !keys.contains("TEMP B-TREE")
                    && !plan.contains("SCAN"),
                "{filters:?}: {plan}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
