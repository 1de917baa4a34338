//! The portable SQL layer: one statement text for both engines, arguments and columns read
//! the same way on SQLite and on PostgreSQL.
//!
//! Statements are written with SQLite's placeholders (`?1 … ?N`, or bare `?` in order); on
//! PostgreSQL they are rewritten to `$1 … $N` once per connection and kept prepared with it
//! (see `pg`). On SQLite every statement goes through the connection's prepared-statement
//! cache, as the store's hot paths always did. The SQL itself keeps to what both engines
//! read alike: `ON CONFLICT … DO NOTHING/UPDATE`, `RETURNING`, `COALESCE`, `CAST(SUM(x) AS
//! BIGINT)` (PostgreSQL's `SUM` of a bigint is a numeric), `unixepoch()` (a function of the
//! PostgreSQL schema's own), no `rowid`, no `INSERT OR IGNORE`.

use super::pg::PgDb;
use postgres::types::{FromSql, IsNull, ToSql, Type};
use rusqlite::types::{ToSqlOutput, ValueRef};
use std::fmt;

/// An argument of a statement, borrowed from the caller.
#[derive(Clone, Copy, Debug)]
pub enum Arg<'a> {
    Null,
    Int(i64),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// An argument owned (lists whose filters are built at run time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
}

/// What can be bound to a placeholder.
pub trait ToArg {
    fn arg(&self) -> Arg<'_>;
}

macro_rules! int_arg {
    ($($t:ty),*) => {$(
        impl ToArg for $t {
            fn arg(&self) -> Arg<'_> {
                Arg::Int(i64::from(*self))
            }
        }
    )*};
}
int_arg!(i64, i32, i16, u8, u16, u32, bool);

impl ToArg for u64 {
    fn arg(&self) -> Arg<'_> {
        Arg::Int(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}

impl ToArg for usize {
    fn arg(&self) -> Arg<'_> {
        Arg::Int(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}

impl ToArg for str {
    fn arg(&self) -> Arg<'_> {
        Arg::Text(self)
    }
}

impl ToArg for String {
    fn arg(&self) -> Arg<'_> {
        Arg::Text(self)
    }
}

impl ToArg for [u8] {
    fn arg(&self) -> Arg<'_> {
        Arg::Blob(self)
    }
}

impl ToArg for Vec<u8> {
    fn arg(&self) -> Arg<'_> {
        Arg::Blob(self)
    }
}

impl<const N: usize> ToArg for [u8; N] {
    fn arg(&self) -> Arg<'_> {
        Arg::Blob(self)
    }
}

impl<T: ToArg> ToArg for Option<T> {
    fn arg(&self) -> Arg<'_> {
        self.as_ref().map_or(Arg::Null, ToArg::arg)
    }
}

impl<T: ToArg + ?Sized> ToArg for &T {
    fn arg(&self) -> Arg<'_> {
        (**self).arg()
    }
}

impl ToArg for Value {
    fn arg(&self) -> Arg<'_> {
        match self {
            Value::Null => Arg::Null,
            Value::Int(i) => Arg::Int(*i),
            Value::Text(s) => Arg::Text(s),
        }
    }
}

/// `&[&dyn ToArg]` for a list of owned arguments.
pub fn args(values: &[Value]) -> Vec<&dyn ToArg> {
    values.iter().map(|v| v as &dyn ToArg).collect()
}

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            Arg::Null => ValueRef::Null,
            Arg::Int(i) => ValueRef::Integer(i),
            Arg::Text(s) => ValueRef::Text(s.as_bytes()),
            Arg::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

type BoxError = Box<dyn std::error::Error + Sync + Send>;

/// Binds to whatever type PostgreSQL inferred for the placeholder: every integer column is a
/// BIGINT, but a placeholder compared with a smaller integer or a boolean takes that type.
impl ToSql for Arg<'_> {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
        match *self {
            Arg::Null => Ok(IsNull::Yes),
            Arg::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
                Type::BOOL => (i != 0).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR | Type::UNKNOWN => {
                    i.to_string().as_str().to_sql(ty, out)
                }
                _ => Err(format!("an integer cannot be bound to a {ty} placeholder").into()),
            },
            Arg::Text(s) => match *ty {
                Type::INT8 => s.parse::<i64>()?.to_sql(ty, out),
                _ => s.to_sql(ty, out),
            },
            Arg::Blob(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// An error of the engine, or a column that does not read as its type.
#[derive(Debug)]
pub enum DbError {
    Sqlite(rusqlite::Error),
    Postgres(postgres::Error),
    /// No connection could be had from the pool in time.
    PoolTimeout,
    /// A new connection could not be opened: the server refused or could not be reached, or
    /// this process is out of descriptors. Nothing ran: worth a retry shortly.
    Connect(String),
    /// A statement expected one row and found none.
    NoRow,
    /// A column's value that does not read as what it should be, at its index.
    Column(usize, String),
    /// A database whose schema this vouchd does not know.
    Schema(String),
}

impl DbError {
    /// A column that holds something its reader does not know (an unknown status, …).
    pub fn column(idx: usize, what: &str) -> DbError {
        DbError::Column(idx, what.to_string())
    }

    /// The SQLSTATE of a PostgreSQL error.
    pub fn pg_code(&self) -> Option<&str> {
        match self {
            DbError::Postgres(e) => e.code().map(|c| c.code()),
            _ => None,
        }
    }

    /// Another writer holds what this one needs (SQLite: busy/locked; PostgreSQL: a deadlock,
    /// a serialization failure, a lock or statement timeout): worth a retry shortly.
    pub fn is_busy(&self) -> bool {
        match self {
            DbError::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            DbError::PoolTimeout | DbError::Connect(_) => true,
            // The connection broke or the server ended it (a restart, an administrator):
            // the statement, and the transaction around it, did not commit. (A COMMIT's own
            // errors are judged apart: there the outcome is unknown.)
            DbError::Postgres(e) if e.is_closed() || connection_lost(e) => true,
            _ => {
                matches!(
                    self.pg_code(),
                    Some("40001" | "40P01" | "55P03" | "57014" | "57P01" | "57P02" | "57P03")
                ) || self.pg_code().is_some_and(|code| code.starts_with("08"))
            }
        }
    }
}

/// Whether `e` is the socket's failure (a reset, a broken pipe) rather than the server's
/// answer; not an encoding or parsing error that also carries an `io::Error` (those would
/// fail again, so a retry would not help).
fn connection_lost(e: &postgres::Error) -> bool {
    use std::io::ErrorKind::*;
    e.as_db_error().is_none()
        && std::error::Error::source(e)
            .and_then(|source| source.downcast_ref::<std::io::Error>())
            .is_some_and(|io| {
                matches!(
                    io.kind(),
                    ConnectionReset | ConnectionAborted | BrokenPipe | NotConnected | UnexpectedEof
                )
            })
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Sqlite(e) => write!(f, "{e}"),
            DbError::Postgres(e) => match e.as_db_error() {
                Some(db) => write!(f, "{}: {}", db.code().code(), db.message()),
                None => write!(f, "{e}"),
            },
            DbError::PoolTimeout => f.write_str("no database connection was free in time"),
            DbError::Connect(what) => f.write_str(what),
            DbError::NoRow => f.write_str("the statement returned no row"),
            DbError::Column(idx, what) => write!(f, "column {idx}: {what}"),
            DbError::Schema(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for DbError {}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> DbError {
        match e {
            rusqlite::Error::QueryReturnedNoRows => DbError::NoRow,
            e => DbError::Sqlite(e),
        }
    }
}

impl From<postgres::Error> for DbError {
    fn from(e: postgres::Error) -> DbError {
        DbError::Postgres(e)
    }
}

/// One row of a result, on either engine.
pub enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Postgres(&'a postgres::Row),
}

impl Row<'_> {
    /// Column `idx` as `T`.
    pub fn get<T: FromCol>(&self, idx: usize) -> Result<T, DbError> {
        match self {
            Row::Sqlite(row) => Ok(row.get(idx)?),
            Row::Postgres(row) => {
                let raw: Raw = row.try_get(idx)?;
                T::from_pg(&raw.ty, raw.bytes).map_err(|e| DbError::Column(idx, e.to_string()))
            }
        }
    }
}

/// A PostgreSQL column as it came, decoded by [`FromCol`].
struct Raw<'a> {
    ty: Type,
    bytes: Option<&'a [u8]>,
}

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(Raw {
            ty: ty.clone(),
            bytes: Some(raw),
        })
    }

    fn from_sql_null(ty: &Type) -> Result<Self, BoxError> {
        Ok(Raw {
            ty: ty.clone(),
            bytes: None,
        })
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }
}

/// What a column can be read as, on both engines (SQLite's through its own `FromSql`).
pub trait FromCol: rusqlite::types::FromSql + Sized {
    fn from_pg(ty: &Type, raw: Option<&[u8]>) -> Result<Self, BoxError>;
}

fn not_null(raw: Option<&[u8]>) -> Result<&[u8], BoxError> {
    raw.ok_or_else(|| "unexpected NULL".into())
}

/// An integer of any width PostgreSQL may give (a COUNT, a boolean expression, a column).
fn pg_int(ty: &Type, raw: &[u8]) -> Result<i64, BoxError> {
    Ok(match *ty {
        Type::INT8 => i64::from_sql(ty, raw)?,
        Type::INT4 => i64::from(i32::from_sql(ty, raw)?),
        Type::INT2 => i64::from(i16::from_sql(ty, raw)?),
        Type::BOOL => i64::from(bool::from_sql(ty, raw)?),
        _ => return Err(format!("a {ty} where an integer was expected").into()),
    })
}

impl FromCol for i64 {
    fn from_pg(ty: &Type, raw: Option<&[u8]>) -> Result<i64, BoxError> {
        pg_int(ty, not_null(raw)?)
    }
}

macro_rules! narrow_col {
    ($($t:ty),*) => {$(
        impl FromCol for $t {
            fn from_pg(ty: &Type, raw: Option<&[u8]>) -> Result<$t, BoxError> {
                Ok(<$t>::try_from(pg_int(ty, not_null(raw)?)?)?)
            }
        }
    )*};
}
narrow_col!(i32, u8, u16, u32, u64);

impl FromCol for bool {
    fn from_pg(ty: &Type, raw: Option<&[u8]>) -> Result<bool, BoxError> {
        Ok(pg_int(ty, not_null(raw)?)? != 0)
    }
}

impl FromCol for String {
    fn from_pg(ty: &Type, raw: Option<&[u8]>) -> Result<String, BoxError> {
        Ok(<&str>::from_sql(ty, not_null(raw)?)?.to_string())
    }
}

impl FromCol for Vec<u8> {
    fn from_pg(ty: &Type, raw: Option<&[u8]>) -> Result<Vec<u8>, BoxError> {
        Ok(<&[u8]>::from_sql(ty, not_null(raw)?)?.to_vec())
    }
}

impl<T: FromCol> FromCol for Option<T> {
    fn from_pg(ty: &Type, raw: Option<&[u8]>) -> Result<Option<T>, BoxError> {
        match raw {
            None => Ok(None),
            some => T::from_pg(ty, some).map(Some),
        }
    }
}

/// `sql` with SQLite's placeholders written as PostgreSQL's `$N`: `?N` as `$N`, a bare `?`
/// as SQLite numbers it (one more than the largest number so far); quoted text and comments
/// are left as they are.
pub fn pg_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut largest: u32 = 0;
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                out.push(c);
                for q in chars.by_ref() {
                    out.push(q);
                    if q == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                out.push(c);
                for q in chars.by_ref() {
                    out.push(q);
                    if q == '\n' {
                        break;
                    }
                }
            }
            '?' => {
                out.push('$');
                let mut digits = String::new();
                while let Some(d) = chars.next_if(char::is_ascii_digit) {
                    digits.push(d);
                }
                let n = match digits.parse::<u32>() {
                    Ok(n) => n,
                    Err(_) => largest + 1,
                };
                largest = largest.max(n);
                out.push_str(&n.to_string());
            }
            c => out.push(c),
        }
    }
    out
}

/// The engine under a [`super::Db`].
pub(super) enum Engine {
    Sqlite(rusqlite::Connection),
    Postgres(Box<PgDb>),
}

/// Runs the statements of the store's operations on either engine.
impl super::Db {
    /// Runs a statement; the number of rows it changed.
    pub(super) fn execute(&self, sql: &str, params: &[&dyn ToArg]) -> Result<usize, DbError> {
        match &self.engine {
            Engine::Sqlite(conn) => Ok(conn
                .prepare_cached(sql)?
                .execute(rusqlite::params_from_iter(params.iter().map(|p| p.arg())))?),
            Engine::Postgres(pg) => pg.execute(sql, params),
        }
    }

    /// A statement built for this one call (SQLite keeps it out of its statement cache, where
    /// it would push out the hot paths' statements).
    pub(super) fn execute_once(&self, sql: &str, params: &[&dyn ToArg]) -> Result<usize, DbError> {
        match &self.engine {
            Engine::Sqlite(conn) => Ok(conn
                .prepare(sql)?
                .execute(rusqlite::params_from_iter(params.iter().map(|p| p.arg())))?),
            Engine::Postgres(pg) => pg.execute(sql, params),
        }
    }

    /// True in a write on PostgreSQL, whose reads of a row it will change lock that row
    /// (`FOR UPDATE`) so that no other write comes between (SQLite's one writer needs none).
    pub(super) fn locks_rows(&self) -> bool {
        match &self.engine {
            Engine::Sqlite(_) => false,
            Engine::Postgres(pg) => pg.writes(),
        }
    }

    /// Every row of a query, each read by `f`.
    pub(super) fn query_map<T>(
        &self,
        sql: &str,
        params: &[&dyn ToArg],
        mut f: impl FnMut(&Row) -> Result<T, DbError>,
    ) -> Result<Vec<T>, DbError> {
        match &self.engine {
            Engine::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(sql)?;
                let mut rows =
                    stmt.query(rusqlite::params_from_iter(params.iter().map(|p| p.arg())))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    out.push(f(&Row::Sqlite(row))?);
                }
                Ok(out)
            }
            Engine::Postgres(pg) => pg
                .query(sql, params)?
                .iter()
                .map(|row| f(&Row::Postgres(row)))
                .collect(),
        }
    }

    /// The first row of a query read by `f`, if there is one.
    pub(super) fn query_opt<T>(
        &self,
        sql: &str,
        params: &[&dyn ToArg],
        f: impl FnOnce(&Row) -> Result<T, DbError>,
    ) -> Result<Option<T>, DbError> {
        match &self.engine {
            Engine::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(sql)?;
                let mut rows =
                    stmt.query(rusqlite::params_from_iter(params.iter().map(|p| p.arg())))?;
                match rows.next()? {
                    Some(row) => f(&Row::Sqlite(row)).map(Some),
                    None => Ok(None),
                }
            }
            Engine::Postgres(pg) => match pg.query(sql, params)?.first() {
                Some(row) => f(&Row::Postgres(row)).map(Some),
                None => Ok(None),
            },
        }
    }

    /// The first row of a query read by `f`; [`DbError::NoRow`] if there is none.
    pub(super) fn query_row<T>(
        &self,
        sql: &str,
        params: &[&dyn ToArg],
        f: impl FnOnce(&Row) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        self.query_opt(sql, params, f)?.ok_or(DbError::NoRow)
    }

    /// One value of the first row.
    pub(super) fn query_value<T: FromCol>(
        &self,
        sql: &str,
        params: &[&dyn ToArg],
    ) -> Result<T, DbError> {
        self.query_row(sql, params, |r| r.get(0))
    }

    /// Statements without arguments or results, run as one text (transaction control).
    pub(super) fn batch(&self, sql: &str) -> Result<(), DbError> {
        match &self.engine {
            Engine::Sqlite(conn) => Ok(conn.execute_batch(sql)?),
            Engine::Postgres(pg) => pg.batch(sql),
        }
    }

    /// True on PostgreSQL, where a few statements differ (row locks, advisory locks).
    pub(super) fn is_postgres(&self) -> bool {
        matches!(self.engine, Engine::Postgres(_))
    }

    /// The SQLite connection, for what only SQLite has (the writer, checkpoints, backups).
    pub(super) fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match &self.engine {
            Engine::Sqlite(conn) => Some(conn),
            Engine::Postgres(_) => None,
        }
    }

    /// Starts a read-only snapshot that the following statements share (on PostgreSQL on one
    /// connection held until [`Db::end_read`]).
    pub(super) fn begin_read(&self) -> Result<(), DbError> {
        match &self.engine {
            Engine::Sqlite(conn) => Ok(conn.execute_batch("BEGIN")?),
            Engine::Postgres(pg) => pg.begin_read(),
        }
    }

    /// Ends [`Db::begin_read`]'s snapshot.
    pub(super) fn end_read(&self) -> Result<(), DbError> {
        match &self.engine {
            Engine::Sqlite(conn) => Ok(conn.execute_batch("COMMIT")?),
            Engine::Postgres(pg) => pg.end_read(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_and_quotes_and_comments_left_alone() {
        assert_eq!(
            pg_placeholders("SELECT a FROM t WHERE b = ?1 AND c = ?12"),
            "SELECT a FROM t WHERE b = $1 AND c = $12"
        );
        assert_eq!(
            pg_placeholders("UPDATE t SET a = ?, b = ? WHERE c = ?"),
            "UPDATE t SET a = $1, b = $2 WHERE c = $3"
        );
        assert_eq!(
            pg_placeholders("SELECT '?', \"a?\" -- what?\n FROM t WHERE x = ?2"),
            "SELECT '?', \"a?\" -- what?\n FROM t WHERE x = $2"
        );
        assert_eq!(
            pg_placeholders("SELECT 'it''s ?' || ?1"),
            "SELECT 'it''s ?' || $1"
        );
        assert_eq!(
            pg_placeholders("SELECT ?2 + ?1 FROM t WHERE a >= ?3 AND g = ?"),
            "SELECT $2 + $1 FROM t WHERE a >= $3 AND g = $4"
        );
    }

    #[test]
    fn arguments_bind_as_their_kind_on_sqlite() {
        let conn = rusqlite::Connection::open_in_memory().expect("memory");
        let db = super::super::Db::new(conn);
        let n: Option<String> = None;
        let row = db
            .query_row(
                "SELECT ?1, ?2, ?3, ?4, ?5",
                &[&7i64, &"text", &true, &n, &[1u8, 2]],
                |r| {
                    Ok((
                        r.get::<i64>(0)?,
                        r.get::<String>(1)?,
                        r.get::<bool>(2)?,
                        r.get::<Option<String>>(3)?,
                        r.get::<Vec<u8>>(4)?,
                    ))
                },
            )
            .expect("row");
        assert_eq!(row, (7, "text".into(), true, None, vec![1, 2]));
        assert!(matches!(
            db.query_row("SELECT 1 WHERE 0", &[], |r| r.get::<i64>(0)),
            Err(DbError::NoRow)
        ));
    }
}
