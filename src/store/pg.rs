//! PostgreSQL: a bounded pool of connections, each with its prepared statements, the `Db`
//! of a pooled connection, and the schema of a new database.
//!
//! The pool is a small one of vouchd's own (a mutex, a condition variable, at most
//! [`POOL_SIZE`] connections): what it needs is a bound, a wait with a deadline, and a broken
//! connection dropped instead of reused, and each connection keeps the statements prepared on
//! it, keyed by their SQLite text (the rewrite to `$N` placeholders happens once per
//! connection).
//!
//! A worker's reader holds no connection: each of its statements takes one from the pool and
//! gives it back, as SQLite's readers run each statement in a snapshot of its own. A write
//! ([`super::Store::write`]) and a read snapshot (`Db::begin_read`) hold one connection
//! until their transaction ends.

use super::sql::{pg_placeholders, Arg, DbError, Engine, ToArg};
use super::{Db, StoreError};
use postgres::types::ToSql;
use postgres::{Client, Config, NoTls, Statement};
use std::cell::RefCell;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Connections one vouchd keeps to the database at most.
pub const POOL_SIZE: usize = 16;
/// How long a statement or a write waits for a free connection before it is answered 503.
const POOL_WAIT: Duration = Duration::from_secs(10);
/// Statements prepared per connection at most (list statements vary with their filters).
const STATEMENTS_KEPT: usize = 512;
/// Settings of every connection: no statement runs (or waits for a lock) without end, and a
/// lock waits as long as SQLite's writer waits for its database (`connect::BUSY_TIMEOUT`):
/// a write another transaction holds up gives up with 503 well before its caller's
/// deadline. `synchronous_commit` stays as the server has it (on by default: a COMMIT is
/// durable).
fn session() -> String {
    format!(
        "SET statement_timeout = '60s'; SET lock_timeout = '{}ms'",
        super::connect::BUSY_TIMEOUT.as_millis()
    )
}

const SCHEMA: &str = include_str!("../../schema-postgres.sql");
/// The advisory lock held while a database's schema is checked or laid out.
const SCHEMA_LOCK: i64 = 0x766f_7563_6864;

/// True when `db` names a PostgreSQL database rather than a SQLite file.
pub fn is_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// A connection and the statements prepared on it.
pub(super) struct PgConn {
    client: Client,
    statements: HashMap<String, Statement>,
}

impl PgConn {
    fn statement(&mut self, sql: &str) -> Result<Statement, DbError> {
        if let Some(stmt) = self.statements.get(sql) {
            return Ok(stmt.clone());
        }
        let stmt = self.client.prepare(&pg_placeholders(sql))?;
        if self.statements.len() >= STATEMENTS_KEPT {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), stmt.clone());
        Ok(stmt)
    }

    fn execute(&mut self, sql: &str, params: &[&dyn ToArg]) -> Result<usize, DbError> {
        let stmt = self.statement(sql)?;
        let args: Vec<Arg> = params.iter().map(|p| p.arg()).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a as _).collect();
        Ok(self.client.execute(&stmt, &refs)? as usize)
    }

    fn query(&mut self, sql: &str, params: &[&dyn ToArg]) -> Result<Vec<postgres::Row>, DbError> {
        let stmt = self.statement(sql)?;
        let args: Vec<Arg> = params.iter().map(|p| p.arg()).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a as _).collect();
        Ok(self.client.query(&stmt, &refs)?)
    }
}

/// The bounded pool.
pub struct Pool {
    config: Config,
    state: Mutex<PoolState>,
    freed: Condvar,
    /// When a failure to connect was last logged.
    failure_logged: Mutex<Option<Instant>>,
}

struct PoolState {
    idle: Vec<PgConn>,
    open: usize,
}

impl Pool {
    /// Connects once (so a wrong URL fails at start), lays out or checks the schema, and
    /// keeps that connection.
    pub fn open(url: &str) -> Result<Arc<Pool>, String> {
        let mut config: Config = url
            .parse()
            .map_err(|e| format!("cannot read the database URL: {e}"))?;
        config.application_name("vouchd");
        config.connect_timeout(Duration::from_secs(10));
        let pool = Arc::new(Pool {
            config,
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
            failure_logged: Mutex::new(None),
        });
        let mut first = pool
            .connect_now()
            .map_err(|e| format!("cannot connect: {e}"))?;
        prepare_schema(&mut first.client)
            .map_err(|e| format!("cannot prepare the database: {e}"))?;
        let mut state = pool.state.lock().map_err(|_| "the pool is poisoned")?;
        state.open += 1;
        state.idle.push(first);
        drop(state);
        Ok(pool)
    }

    /// A new connection. A failure is logged (once a second at most: every request may try)
    /// and comes back as [`DbError::Connect`], a 503 to retry.
    fn connect(&self) -> Result<PgConn, DbError> {
        self.connect_now().inspect_err(|err| {
            let now = Instant::now();
            let mut logged = self
                .failure_logged
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if logged.is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1)) {
                *logged = Some(now);
                eprintln!("vouchd: cannot open a PostgreSQL connection: {err}");
            }
        })
    }

    fn connect_now(&self) -> Result<PgConn, DbError> {
        // The client's runtime needs descriptors of its own, and `postgres` unwraps its build:
        // out of descriptors, it would panic (and kill the thread asking, or leak the pool's
        // count). Checked first; a panic all the same (another thread took the last ones in
        // between) is caught.
        descriptors_free(CONNECT_DESCRIPTORS)
            .map_err(|e| DbError::Connect(format!("no free descriptors ({e})")))?;
        let mut client = catch_unwind(AssertUnwindSafe(|| self.config.connect(NoTls)))
            .map_err(|_| DbError::Connect("the client's runtime could not start".into()))?
            .map_err(|e| DbError::Connect(DbError::from(e).to_string()))?;
        client
            .batch_execute(&session())
            .map_err(|e| DbError::Connect(DbError::from(e).to_string()))?;
        Ok(PgConn {
            client,
            statements: HashMap::new(),
        })
    }

    /// A connection, waiting up to [`POOL_WAIT`] for one to be free.
    pub(super) fn get(self: &Arc<Pool>) -> Result<Pooled, DbError> {
        let deadline = Instant::now() + POOL_WAIT;
        let mut state = self.state.lock().map_err(|_| DbError::PoolTimeout)?;
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(Pooled::new(self, conn));
            }
            if state.open < POOL_SIZE {
                state.open += 1;
                drop(state);
                return match self.connect() {
                    Ok(conn) => Ok(Pooled::new(self, conn)),
                    Err(err) => {
                        self.forget();
                        Err(err)
                    }
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(DbError::PoolTimeout);
            }
            state = self
                .freed
                .wait_timeout(state, left)
                .map_err(|_| DbError::PoolTimeout)?
                .0;
        }
    }

    /// A connection that was closed or broken: room for a new one.
    fn forget(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.open -= 1;
        }
        self.freed.notify_one();
    }

    fn give_back(&self, conn: PgConn) {
        if let Ok(mut state) = self.state.lock() {
            state.idle.push(conn);
        }
        self.freed.notify_one();
    }
}

/// Descriptors a new connection takes: the socket and its runtime's (an epoll instance and
/// its waker), with one to spare.
const CONNECT_DESCRIPTORS: usize = 4;

/// Whether the process can open `n` more descriptors now (opened and closed again).
fn descriptors_free(n: usize) -> std::io::Result<()> {
    let mut opened = Vec::with_capacity(n);
    let mut result = Ok(());
    for _ in 0..n {
        // SAFETY: eventfd takes no pointers; each descriptor it returns is closed below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            result = Err(std::io::Error::last_os_error());
            break;
        }
        opened.push(fd);
    }
    for fd in opened {
        // SAFETY: a descriptor opened above and used by nothing else.
        unsafe { libc::close(fd) };
    }
    result
}

/// A connection taken from the pool; given back when dropped (closed if it broke, or if a
/// transaction on it was left open and cannot be rolled back).
pub(super) struct Pooled {
    pool: Arc<Pool>,
    conn: Option<PgConn>,
    in_transaction: bool,
}

impl Pooled {
    fn new(pool: &Arc<Pool>, conn: PgConn) -> Pooled {
        Pooled {
            pool: Arc::clone(pool),
            conn: Some(conn),
            in_transaction: false,
        }
    }

    fn conn(&mut self) -> &mut PgConn {
        self.conn
            .as_mut()
            .expect("a pooled connection until dropped")
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        if self.in_transaction
            && crate::pace::waiting(|| conn.client.batch_execute("ROLLBACK")).is_err()
        {
            self.pool.forget();
            return;
        }
        if conn.client.is_closed() {
            self.pool.forget();
        } else {
            self.pool.give_back(conn);
        }
    }
}

/// A `Db` on PostgreSQL: a statement at a time from the pool, or a connection held for a
/// transaction.
pub(super) struct PgDb {
    pool: Arc<Pool>,
    held: RefCell<Option<Pooled>>,
    /// A write transaction's (see [`super::Db::locks_rows`]).
    writes: bool,
}

impl PgDb {
    /// Takes a connection per statement.
    pub(super) fn pooled(pool: Arc<Pool>) -> PgDb {
        PgDb {
            pool,
            held: RefCell::new(None),
            writes: false,
        }
    }

    /// Holds `conn` for a write transaction until dropped.
    fn writing(pool: Arc<Pool>, conn: Pooled) -> PgDb {
        PgDb {
            pool,
            held: RefCell::new(Some(conn)),
            writes: true,
        }
    }

    pub(super) fn writes(&self) -> bool {
        self.writes
    }

    pub(super) fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// Runs `f` on the held connection, else on one from the pool; the thread waits on the
    /// server meanwhile.
    fn with<T>(&self, f: impl FnOnce(&mut PgConn) -> Result<T, DbError>) -> Result<T, DbError> {
        crate::pace::waiting(|| {
            let mut held = self.held.borrow_mut();
            if let Some(pooled) = held.as_mut() {
                return f(pooled.conn());
            }
            drop(held);
            let mut pooled = self.pool.get()?;
            f(pooled.conn())
        })
    }

    pub(super) fn execute(&self, sql: &str, params: &[&dyn ToArg]) -> Result<usize, DbError> {
        self.with(|c| c.execute(sql, params))
    }

    pub(super) fn query(
        &self,
        sql: &str,
        params: &[&dyn ToArg],
    ) -> Result<Vec<postgres::Row>, DbError> {
        self.with(|c| c.query(sql, params))
    }

    /// Transaction control and other statements without arguments, on the held connection
    /// (`BEGIN` takes one and holds it; `COMMIT`/`ROLLBACK` give it back unless it was held
    /// from the start).
    pub(super) fn batch(&self, sql: &str) -> Result<(), DbError> {
        crate::pace::waiting(|| self.batch_now(sql))
    }

    fn batch_now(&self, sql: &str) -> Result<(), DbError> {
        let mut held = self.held.borrow_mut();
        match held.as_mut() {
            Some(pooled) => {
                let result = pooled.conn().client.batch_execute(sql);
                match sql {
                    "BEGIN" => pooled.in_transaction = result.is_ok(),
                    "COMMIT" | "ROLLBACK" => pooled.in_transaction = false,
                    _ => {}
                }
                Ok(result?)
            }
            None => {
                drop(held);
                let mut pooled = self.pool.get()?;
                Ok(pooled.conn().client.batch_execute(sql)?)
            }
        }
    }

    /// A REPEATABLE READ snapshot on a connection held until [`PgDb::end_read`].
    pub(super) fn begin_read(&self) -> Result<(), DbError> {
        crate::pace::waiting(|| self.begin_read_now())
    }

    fn begin_read_now(&self) -> Result<(), DbError> {
        let mut pooled = self.pool.get()?;
        pooled
            .conn()
            .client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
        pooled.in_transaction = true;
        *self.held.borrow_mut() = Some(pooled);
        Ok(())
    }

    pub(super) fn end_read(&self) -> Result<(), DbError> {
        crate::pace::waiting(|| self.end_read_now())
    }

    fn end_read_now(&self) -> Result<(), DbError> {
        let Some(mut pooled) = self.held.borrow_mut().take() else {
            return Ok(());
        };
        pooled.conn().client.batch_execute("COMMIT")?;
        pooled.in_transaction = false;
        Ok(())
    }
}

/// Lays out the schema of an empty database, or checks that a vouchd database is at the
/// version this vouchd knows, under an advisory lock: instances starting together on one
/// database lay it out once.
fn prepare_schema(client: &mut Client) -> Result<(), DbError> {
    client.execute("SELECT pg_advisory_lock($1)", &[&SCHEMA_LOCK])?;
    let result = lay_out(client);
    let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&SCHEMA_LOCK]);
    result?;
    unlocked?;
    Ok(())
}

fn lay_out(client: &mut Client) -> Result<(), DbError> {
    let latest = super::migrate::LATEST;
    let exists: bool = client
        .query_one("SELECT to_regclass('settings') IS NOT NULL", &[])?
        .get(0);
    if exists {
        let version: Option<String> = client
            .query_opt(
                "SELECT value FROM settings WHERE key = 'schema_version'",
                &[],
            )?
            .map(|r| r.get(0));
        let version: i64 = version.and_then(|v| v.parse().ok()).unwrap_or(0);
        if version == latest {
            return Ok(());
        }
        return Err(DbError::Schema(format!(
            "the database's schema is version {version}; this vouchd knows version {latest}"
        )));
    }
    let mut tx = client.transaction()?;
    tx.batch_execute(SCHEMA)?;
    tx.execute(
        "INSERT INTO client_groups (id, name, scopes, created_at) VALUES ($1, 'admin', $2, $3)",
        &[
            &crate::domain::code::new_id(),
            &crate::domain::scope::ALL_SCOPES.join(" "),
            &crate::domain::clock::now(),
        ],
    )?;
    tx.execute(
        "INSERT INTO settings (key, value) VALUES ('schema_version', $1)",
        &[&latest.to_string()],
    )?;
    tx.commit()?;
    Ok(())
}

/// Runs `op` in a transaction of its own on a pooled connection (READ COMMITTED) and returns
/// its result once the COMMIT is done: committed when `op` returns `Ok`, rolled back otherwise
/// (or if it panics).
pub(super) fn transaction<T, E: From<StoreError>>(
    pool: &Arc<Pool>,
    op: impl FnOnce(&Db) -> Result<T, E>,
) -> Result<T, E> {
    let conn = pool.get().map_err(|e| E::from(StoreError::from(e)))?;
    let db = Db {
        engine: Engine::Postgres(Box::new(PgDb::writing(Arc::clone(pool), conn))),
    };
    db.batch("BEGIN")
        .map_err(|e| E::from(StoreError::from(e)))?;
    let result = catch_unwind(AssertUnwindSafe(|| op(&db)))
        .unwrap_or_else(|_| Err(E::from(StoreError::Bug("a write operation panicked"))));
    match result {
        Ok(value) => match db.batch("COMMIT") {
            Ok(()) => Ok(value),
            // A serialization failure or deadlock at the COMMIT: not done, worth a retry (503).
            Err(err) if err.pg_code().is_some_and(commit_not_done) => {
                Err(E::from(StoreError::Busy))
            }
            // Anything else (the connection lost during the COMMIT): the outcome is unknown,
            // so never "not done".
            Err(err) => Err(E::from(StoreError::Stopped(format!("commit: {err}")))),
        },
        Err(err) => {
            let _ = db.batch("ROLLBACK");
            Err(err)
        }
    }
}

/// Whether a COMMIT that failed with SQLSTATE `code` certainly did not take effect: a
/// serialization failure (40001) or a deadlock (40P01). Not the rest of class 40: 40003
/// (statement completion unknown) means the outcome is unknown.
fn commit_not_done(code: &str) -> bool {
    matches!(code, "40001" | "40P01")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    #[test]
    fn only_serialization_failures_and_deadlocks_at_commit_are_not_done() {
        assert!(super::commit_not_done("40001"));
        assert!(super::commit_not_done("40P01"));
        for unknown in ["40003", "40002", "40000", "08006", "57P01", "XX000"] {
            assert!(!super::commit_not_done(unknown), "{unknown}");
        }
    }

    /// Each table's columns and each index's name, as a schema file declares them.
    fn declared(schema: &str) -> (BTreeMap<String, Vec<String>>, Vec<String>) {
        let mut tables = BTreeMap::new();
        let mut indexes = Vec::new();
        let mut current: Option<(String, Vec<String>)> = None;
        for line in schema.lines() {
            let line = line.split("--").next().unwrap_or("").trim();
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["CREATE", "TABLE", name, ..] => current = Some((name.to_string(), Vec::new())),
                ["CREATE", "INDEX" | "UNIQUE", ..] => {
                    let at = if words[1] == "UNIQUE" { 3 } else { 2 };
                    indexes.push(words[at].to_string());
                }
                [")" | ");", ..] => {
                    if let Some((name, columns)) = current.take() {
                        tables.insert(name, columns);
                    }
                }
                [first, ..] if !["CHECK", "PRIMARY", "UNIQUE"].contains(first) => {
                    if let Some((_, columns)) = current.as_mut() {
                        columns.push(first.to_string());
                    }
                }
                _ => {}
            }
        }
        indexes.sort();
        (tables, indexes)
    }

    #[test]
    fn the_postgres_schema_has_sqlites_tables_columns_and_indexes() {
        let (sqlite_tables, sqlite_indexes) = declared(include_str!("../../schema.sql"));
        let (mut pg_tables, pg_indexes) = declared(super::SCHEMA);
        // The order holds were taken in: SQLite's rowid, a column on PostgreSQL.
        let seq = pg_tables
            .get_mut("reservations")
            .and_then(|c| c.pop())
            .expect("reservations");
        assert_eq!(seq, "seq");
        assert!(sqlite_tables.len() > 10, "{sqlite_tables:?}");
        assert_eq!(sqlite_tables, pg_tables);
        assert_eq!(sqlite_indexes, pg_indexes);
    }
}
