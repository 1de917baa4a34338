//! Paging: the `LIMIT … OFFSET …` and `ORDER BY` every list shares.

use super::StoreError;
use crate::domain::query::{ListQuery, SortField, SortKey};
use crate::store::sql::{args, DbError, Row, Value};
use crate::store::Db;

/// Runs a list's `… LIMIT ? OFFSET ?` statement for the query's page; `args` are the filter
/// arguments before the two paging ones.
pub fn fetch_page<T>(
    conn: &Db,
    sql: &str,
    mut values: Vec<Value>,
    query: &ListQuery,
    row: impl FnMut(&Row) -> Result<T, DbError>,
) -> Result<Vec<T>, StoreError> {
    values.push(Value::Int(query.per_page as i64));
    values.push(Value::Int(i64::try_from(query.offset).unwrap_or(i64::MAX)));
    Ok(conn.query_map(sql, &args(&values), row)?)
}

/// `ORDER BY` for a list: the requested keys (or `default`), then `tie` in the direction of the
/// last key so equal values keep a stable order that an index can serve. NULL sorts first
/// ascending as in SQLite: `nulls_first` says so on PostgreSQL, where NULL is the largest.
pub fn order_by(
    sort: &[SortKey],
    column: impl Fn(SortField) -> &'static str,
    default: &str,
    tie: &str,
    nulls_first: bool,
) -> String {
    let direction = |descending: bool| match (descending, nulls_first) {
        (false, false) => "ASC",
        (true, false) => "DESC",
        (false, true) => "ASC NULLS FIRST",
        (true, true) => "DESC NULLS LAST",
    };
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
