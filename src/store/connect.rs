//! Connections: vouchd's settings on every SQLite connection, the readers' page-cache budget,
//! and direct (CLI) use of the file without the writer thread.

use super::migrate;
use super::pg::{PgDb, Pool};
use super::sql::Engine;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// `PRAGMA synchronous`: FULL makes a commit durable before it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    Full,
    Normal,
}

impl SyncMode {
    pub fn parse(text: &str) -> Option<SyncMode> {
        match text {
            "full" => Some(SyncMode::Full),
            "normal" => Some(SyncMode::Normal),
            _ => None,
        }
    }

    pub(super) fn pragma(self) -> &'static str {
        match self {
            SyncMode::Full => "FULL",
            SyncMode::Normal => "NORMAL",
        }
    }
}

/// Opens a connection with vouchd's settings. Readers are opened query-only.
pub fn connect(path: &Path, sync: SyncMode, read_only: bool) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", sync.pragma())?;
    conn.set_prepared_statement_cache_capacity(64);
    if read_only {
        // A small cache by default: the workers' readers get theirs from `store::Readers`.
        conn.pragma_update(None, "cache_size", -1024)?;
        conn.pragma_update(None, "query_only", "ON")?;
    }
    Ok(conn)
}

/// A connection to the database as the store's operations take it: a worker's reader, the
/// writer's transaction, or the CLI's own. Callers hold it and hand it to the operations; only
/// the store runs statements on it (through `sql`'s methods, on either engine).
pub struct Db {
    pub(super) engine: Engine,
}

impl Db {
    /// Wraps a SQLite connection opened with [`connect`] (and migrated) for the operations.
    pub fn new(conn: Connection) -> Db {
        Db {
            engine: Engine::Sqlite(conn),
        }
    }

    /// A PostgreSQL `Db` that takes a pooled connection for each statement.
    pub(super) fn pooled(pool: Arc<Pool>) -> Db {
        Db {
            engine: Engine::Postgres(Box::new(PgDb::pooled(pool))),
        }
    }
}

/// Opens (creating and migrating if needed) a database for direct use by the CLI: a SQLite
/// file, or a PostgreSQL database named by a `postgres://` URL.
pub fn open_direct(path: &Path) -> Result<Db, String> {
    if let Some(url) = pg_url(path) {
        return Ok(Db::pooled(Pool::open(url)?));
    }
    let mut conn = connect(path, SyncMode::Full, false)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    migrate::migrate(&mut conn).map_err(|e| format!("cannot prepare {}: {e}", path.display()))?;
    Ok(Db::new(conn))
}

/// The URL, when `path` names a PostgreSQL database.
pub fn pg_url(path: &Path) -> Option<&str> {
    path.to_str().filter(|p| super::pg::is_url(p))
}

/// How a database is named in output: a file's path, or a PostgreSQL URL as
/// `postgres://user@host:port/dbname`, never with its password (wherever the URL holds it).
pub fn shown(path: &Path) -> String {
    match pg_url(path) {
        Some(url) => shown_url(url),
        None => path.display().to_string(),
    }
}

/// A PostgreSQL URL as `postgres://user@host:port/dbname`: read with `postgres::Config`, so
/// a password in the user info or in a query parameter is left out alike.
pub fn shown_url(url: &str) -> String {
    let Ok(config) = url.parse::<postgres::Config>() else {
        return "a postgres:// URL that cannot be read".to_string();
    };
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match host {
                // An unescaped `@` in a password ends the user info early for the parser: no
                // host name holds one, so what comes before it is the password's rest.
                postgres::config::Host::Tcp(name) if name.contains('@') => {
                    let name = name.rsplit('@').next().unwrap_or_default();
                    format!("{name}:{port}")
                }
                postgres::config::Host::Tcp(name) if name.contains(':') => {
                    format!("[{name}]:{port}")
                }
                postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
                #[cfg(unix)]
                postgres::config::Host::Unix(dir) => format!("{}:{port}", dir.display()),
            }
        })
        .collect();
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let db = config.get_dbname().unwrap_or_default();
    format!("postgres://{user}{}/{db}", hosts.join(","))
}

/// Runs `op` in one transaction on a direct (CLI) connection: committed when it returns
/// `Ok`, rolled back otherwise. On SQLite `BEGIN IMMEDIATE` takes the write lock first, so a
/// running server's writer waits (up to its busy timeout) instead of interleaving with `op`;
/// on PostgreSQL it is a transaction like a server's writes.
pub fn write_direct<T>(
    db: &mut Db,
    op: impl FnOnce(&Db) -> Result<T, String>,
) -> Result<T, String> {
    if let Engine::Postgres(pg) = &db.engine {
        return super::pg::transaction(pg.pool(), |tx| op(tx).map_err(Failed::Op))
            .map_err(|e| e.into_text());
    }
    db.batch("BEGIN IMMEDIATE")
        .map_err(|e| format!("cannot begin a write transaction: {e}"))?;
    let value = match op(db) {
        Ok(value) => value,
        Err(err) => {
            let _ = db.batch("ROLLBACK");
            return Err(err);
        }
    };
    if let Err(e) = db.batch("COMMIT") {
        let _ = db.batch("ROLLBACK");
        return Err(format!("cannot commit: {e}"));
    }
    Ok(value)
}

/// What failed in a CLI write on PostgreSQL: the operation, or the transaction around it.
enum Failed {
    Op(String),
    Store(super::StoreError),
}

impl From<super::StoreError> for Failed {
    fn from(err: super::StoreError) -> Failed {
        Failed::Store(err)
    }
}

impl Failed {
    fn into_text(self) -> String {
        match self {
            Failed::Op(text) => text,
            Failed::Store(err) => format!("the write failed: {err}"),
        }
    }
}

/// How long a connection waits on a lock held by another process (the CLI, a backup).
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The page cache all worker readers share out between them, in KiB (`store::Readers`):
/// look-ups on a large database are faster with more cache a reader, and each reader fills
/// its share, so the budget is part of the RSS under load.
pub const READER_CACHE_BUDGET_KIB: usize = 24 * 1024;

#[cfg(test)]
mod tests {
    use super::{shown, shown_url};
    use std::path::Path;

    #[test]
    fn a_shown_database_never_has_its_password() {
        for (url, want) in [
            (
                "postgres://vouchd:s3cret@db.example:5433/shop",
                "postgres://vouchd@db.example:5433/shop",
            ),
            (
                "postgresql://vouchd@db.example/shop?password=s3cret&sslmode=disable",
                "postgres://vouchd@db.example:5432/shop",
            ),
            (
                "postgres://vouchd:p%40ss@w0rd@127.0.0.1:25250/postgres",
                "postgres://vouchd@127.0.0.1:25250/postgres",
            ),
            (
                "postgres://a:s3cret@h1:1,h2:2/shop",
                "postgres://a@h1:1,h2:2/shop",
            ),
        ] {
            assert_eq!(shown_url(url), want, "{url}");
            assert_eq!(shown(Path::new(url)), want, "{url}");
        }
        assert!(!shown_url("postgres://u:s3cret@[::1:5432/db").contains("s3cret"));
        assert_eq!(
            shown(Path::new("/var/lib/vouchd/v.db")),
            "/var/lib/vouchd/v.db"
        );
    }
}
