//! Paging: the `LIMIT … OFFSET …` and `ORDER BY` every list shares.

use super::StoreError;
use crate::domain::query::{ListQuery, SortField, SortKey};
use crate::store::Db;

/// Runs a list's `… LIMIT ? OFFSET ?` statement for the query's page; `args` are the filter
/// arguments before the two paging ones.
pub fn fetch_page<T>(
    conn: &Db,
    sql: &str,
    mut args: Vec<rusqlite::types::Value>,
    query: &ListQuery,
    row: impl FnMut(&rusqlite::Row) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    use rusqlite::types::Value;
    args.push(Value::Integer(query.per_page as i64));
    args.push(Value::Integer(
        i64::try_from(query.offset).unwrap_or(i64::MAX),
    ));
    let rows = conn
        .prepare_cached(sql)?
        .query_map(rusqlite::params_from_iter(args.iter()), row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// `ORDER BY` for a list: the requested keys (or `default`), then `tie` in the direction of the
/// last key so equal values keep a stable order that an index can serve.
pub fn order_by(
    sort: &[SortKey],
    column: impl Fn(SortField) -> &'static str,
    default: &str,
    tie: &str,
) -> String {
    let direction = |descending: bool| if descending { "DESC" } else { "ASC" };
    let mut order: Vec<String> = sort
        .iter()
        .map(|k| format!("{} {}", column(k.field), direction(k.descending)))
        .collect();
    if order.is_empty() {
        order.push(default.to_string());
    }
    order.push(format!(
        "{tie} {}",
        direction(sort.last().is_none_or(|k| k.descending))
    ));
    order.join(", ")
}
