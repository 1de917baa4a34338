//! The engine the integration tests run on, and a test's own look into its database.
//!
//! `VOUCHD_TEST_ENGINE=postgres` runs every server on PostgreSQL: each test home
//! ([`super::TempDir`]) gets a fresh database on the cluster `VOUCHD_TEST_PG` names (an admin
//! URL, `postgres://user:password@host:port/postgres`), created at first use and dropped with
//! the home. Unset (or `sqlite`), a server's database is the file `v.db` in its home, as
//! always. `./test.sh` runs the suite both ways on a throwaway cluster of its own
//! (`tests/pg/cluster.sh`).
//!
//! [`TestDb`] is for the few tests that write a state no request can make (an older database's
//! rows, entries dated in the past) or check what is stored (a secret kept nowhere): one SQL
//! text for both engines where it can be, `?1…?N` placeholders.

use std::io::Read;

/// Whether the servers of this test run are on PostgreSQL (`VOUCHD_TEST_ENGINE=postgres`).
pub fn engine_is_postgres() -> bool {
    match std::env::var("VOUCHD_TEST_ENGINE").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Ok("") | Err(_) => false,
        Ok(other) => panic!("VOUCHD_TEST_ENGINE={other:?}: expected `sqlite` or `postgres`"),
    }
}

/// The admin URL of the test cluster (`VOUCHD_TEST_PG`); a clear failure when there is none.
pub fn pg_admin_url() -> String {
    match std::env::var("VOUCHD_TEST_PG") {
        Ok(url) if !url.trim().is_empty() => url.trim().to_string(),
        _ => panic!(
            "VOUCHD_TEST_PG is not set: this test needs a PostgreSQL cluster. Run ./test.sh, or \
             tests/pg/cluster.sh start (`eval \"$(tests/pg/cluster.sh start)\"` sets it; \
             `tests/pg/cluster.sh stop \"$VOUCHD_TEST_PG_DIR\"` removes it afterwards)"
        ),
    }
}

/// `url` naming database `name` instead of its own (the path after the host, before any `?`).
pub fn pg_url_with_db(url: &str, name: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let scheme_end = head
        .find("://")
        .unwrap_or_else(|| panic!("not a postgres:// URL: {url:?}"))
        + 3;
    let host_end = head[scheme_end..]
        .find('/')
        .map_or(head.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &head[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// True for a `--db` value that names a PostgreSQL database rather than a file.
pub fn is_pg_location(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

fn pg_connect(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL at {}: {e}", redact(url)))
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// A fresh, empty database on the test cluster, dropped (best effort, connections forced
/// off) when this value is.
pub struct PgDatabase {
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    pub fn create() -> PgDatabase {
        let admin = pg_admin_url();
        let name = format!(
            "vouchd_test_{}_{}_{}",
            std::process::id(),
            super::next_n(),
            super::nanos()
        );
        pg_connect(&admin)
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name} on {}: {e}", redact(&admin)));
        let url = pg_url_with_db(&admin, &name);
        PgDatabase { name, url }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&pg_admin_url(), postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A parameter of a [`TestDb`] statement.
#[derive(Debug, Clone)]
pub enum Param {
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

impl From<i64> for Param {
    fn from(v: i64) -> Param {
        Param::Int(v)
    }
}

impl From<&str> for Param {
    fn from(v: &str) -> Param {
        Param::Text(v.to_string())
    }
}

impl From<&String> for Param {
    fn from(v: &String) -> Param {
        Param::Text(v.clone())
    }
}

impl From<String> for Param {
    fn from(v: String) -> Param {
        Param::Text(v)
    }
}

impl From<Vec<u8>> for Param {
    fn from(v: Vec<u8>) -> Param {
        Param::Bytes(v)
    }
}

/// A connection of the test's own to a server's database, either engine.
pub enum TestDb {
    Sqlite(rusqlite::Connection),
    Postgres(postgres::Client),
}

/// `?N` placeholders as PostgreSQL writes them (`$N`).
fn pg_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

impl TestDb {
    /// Opens `db` as `--db` names it: a `postgres://` URL or an SQLite file.
    pub fn open(db: &str) -> TestDb {
        if is_pg_location(db) {
            TestDb::Postgres(pg_connect(db))
        } else {
            let conn = rusqlite::Connection::open(db)
                .unwrap_or_else(|e| panic!("open the database {db}: {e}"));
            conn.busy_timeout(std::time::Duration::from_secs(30))
                .expect("busy timeout");
            TestDb::Sqlite(conn)
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, TestDb::Postgres(_))
    }

    /// Runs statements without parameters, `;`-separated (`BEGIN`, DDL).
    pub fn batch(&mut self, sql: &str) {
        match self {
            TestDb::Sqlite(c) => c
                .execute_batch(sql)
                .unwrap_or_else(|e| panic!("SQLite: {sql}: {e}")),
            TestDb::Postgres(c) => c
                .batch_execute(sql)
                .unwrap_or_else(|e| panic!("PostgreSQL: {sql}: {e}")),
        }
    }

    /// Runs one statement; returns the rows it changed.
    pub fn execute(&mut self, sql: &str, params: &[Param]) -> u64 {
        match self {
            TestDb::Sqlite(c) => {
                let values: Vec<rusqlite::types::Value> = params.iter().map(sqlite_value).collect();
                c.execute(sql, rusqlite::params_from_iter(values))
                    .unwrap_or_else(|e| panic!("SQLite: {sql}: {e}")) as u64
            }
            TestDb::Postgres(c) => {
                let boxed = pg_values(params);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    boxed.iter().map(|b| b.as_ref()).collect();
                c.execute(pg_placeholders(sql).as_str(), &refs)
                    .unwrap_or_else(|e| panic!("PostgreSQL: {sql}: {e}"))
            }
        }
    }

    /// The one integer a query answers (`SELECT COUNT(*) …`).
    pub fn query_i64(&mut self, sql: &str, params: &[Param]) -> i64 {
        match self {
            TestDb::Sqlite(c) => {
                let values: Vec<rusqlite::types::Value> = params.iter().map(sqlite_value).collect();
                c.query_row(sql, rusqlite::params_from_iter(values), |r| r.get(0))
                    .unwrap_or_else(|e| panic!("SQLite: {sql}: {e}"))
            }
            TestDb::Postgres(c) => {
                let boxed = pg_values(params);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    boxed.iter().map(|b| b.as_ref()).collect();
                let row = c
                    .query_one(pg_placeholders(sql).as_str(), &refs)
                    .unwrap_or_else(|e| panic!("PostgreSQL: {sql}: {e}"));
                row.try_get::<_, i64>(0)
                    .or_else(|_| row.try_get::<_, i32>(0).map(i64::from))
                    .unwrap_or_else(|e| panic!("PostgreSQL: {sql}: not an integer: {e}"))
            }
        }
    }
}

fn sqlite_value(p: &Param) -> rusqlite::types::Value {
    match p {
        Param::Int(v) => rusqlite::types::Value::Integer(*v),
        Param::Text(v) => rusqlite::types::Value::Text(v.clone()),
        Param::Bytes(v) => rusqlite::types::Value::Blob(v.clone()),
    }
}

fn pg_values(params: &[Param]) -> Vec<Box<dyn postgres::types::ToSql + Sync>> {
    params
        .iter()
        .map(|p| -> Box<dyn postgres::types::ToSql + Sync> {
            match p {
                Param::Int(v) => Box::new(*v),
                Param::Text(v) => Box::new(v.clone()),
                Param::Bytes(v) => Box::new(v.clone()),
            }
        })
        .collect()
}

/// Whether `needle` is stored anywhere in database `db`, in any form a reader of the storage
/// would find it: on SQLite the bytes of the file and its WAL; on PostgreSQL every row of every
/// table of the database as text (a `bytea` column shows as hex, so its hex is looked for too).
pub fn stored_anywhere(db: &str, needle: &str) -> bool {
    if !is_pg_location(db) {
        let mut stored = Vec::new();
        std::fs::File::open(db)
            .and_then(|mut f| f.read_to_end(&mut stored))
            .unwrap_or_else(|e| panic!("read the database file {db}: {e}"));
        if let Ok(mut wal) = std::fs::File::open(format!("{db}-wal")) {
            wal.read_to_end(&mut stored).expect("read the WAL");
        }
        return stored.windows(needle.len()).any(|w| w == needle.as_bytes());
    }
    let mut c = pg_connect(db);
    let tables: Vec<String> = c
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
            &[],
        )
        .expect("list the tables")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!tables.is_empty(), "no tables in {}", redact(db));
    let hex: String = needle.bytes().map(|b| format!("{b:02x}")).collect();
    tables.iter().any(|table| {
        c.query(&format!("SELECT CAST(t AS TEXT) FROM \"{table}\" t"), &[])
            .unwrap_or_else(|e| panic!("read table {table}: {e}"))
            .iter()
            .any(|r| {
                let row: String = r.get(0);
                row.contains(needle) || row.contains(&hex)
            })
    })
}
