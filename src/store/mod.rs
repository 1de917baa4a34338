//! The store: one SQLite file, one writer thread, a reader connection per worker; or a
//! PostgreSQL database and a pool of connections (`pg`, docs/design.md).
//!
//! Every write is an operation sent to the writer thread, which runs the operations it finds
//! queued in one `BEGIN IMMEDIATE` transaction, each inside its own SAVEPOINT so one failing
//! operation is rolled back alone, and answers every caller only after the COMMIT. With
//! `synchronous=FULL` an answer therefore means "on disk". Readers use their own connections in
//! WAL mode and never wait on the writer.
//!
//! The face the rest of vouchd sees: [`Store`] (open, [`Store::write`], readers, close), the
//! operations in `vouchers`, `ledger`, `holds`, `clients`, `pins`, `idempotency`, `stats`,
//! `bulk`, `webhooks` and `outbox`, which take a [`Db`] and domain types and return domain
//! types or a [`StoreError`], and nothing else: no caller names the engine or runs a
//! statement (the `layers` test checks). A caller holds a `Db` (a worker's reader, the
//! writer's transaction handed to its closure, the CLI's own) only to hand it back to these
//! operations.
//!
//! Two engines: an enum over engines, not a trait. `Db` wraps `enum Engine { Sqlite(..),
//! Postgres(..) }` (`sql`), and the operations run one SQL text on either through its
//! methods, keeping the one set of free functions whose names callers use; a trait object
//! would put a dynamic call and a boxed error on every look-up and charge, and generic
//! handlers would be compiled twice for no caller that needs both engines at once. The
//! writer's group commit and the WAL's durability and checkpoints are SQLite's own and stay
//! beside its variant; on PostgreSQL each write is a transaction of its own (`pg`).

pub(crate) mod backup;
pub(crate) mod bulk;
mod checkpoint;
pub mod clients;
mod connect;
pub mod copy;
mod durable;
pub mod error;
pub(crate) mod holds;
pub(crate) mod idempotency;
pub mod ledger;
pub mod migrate;
pub(crate) mod outbox;
mod paging;
mod pg;
pub(crate) mod pins;
mod readers;
mod sql;
pub(crate) mod stats;
#[cfg(test)]
mod tests;
mod voucher_list;
pub mod vouchers;
pub(crate) mod webhooks;
mod writer;

pub use connect::{
    connect, open_direct, pg_url, shown, shown_url, write_direct, Db, SyncMode,
    READER_CACHE_BUDGET_KIB,
};
pub(crate) use paging::{fetch_page, order_by};
pub use pg::POOL_SIZE;
pub use readers::Readers;
pub use writer::in_savepoint;

use checkpoint::run_checkpointer;
use durable::{open_wal, run_answerer, Answers, Durable};
pub use error::StoreError;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
pub use writer::GroupObserver;
use writer::{run_writer, Helpers, Job, JobSender};

/// How long a caller waits for its write before answering 503.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handle to the database: cheap to clone, shared by every worker.
#[derive(Clone)]
pub struct Store {
    path: Arc<PathBuf>,
    sync: SyncMode,
    jobs: Arc<Mutex<Option<JobSender>>>,
    writer: Arc<Mutex<Option<JoinHandle<()>>>>,
    /// Syncs of the WAL by the answering thread, for the metrics.
    wal_syncs: Arc<AtomicU64>,
    /// Set once a sync of the WAL failed (or the answering thread is gone): no writes since.
    broken: Arc<AtomicBool>,
    /// How long a write may wait for the writer to take it ([`WRITE_TIMEOUT`]).
    write_timeout: Duration,
    /// On PostgreSQL, the pool every reader and write takes its connections from (and no
    /// writer thread: each write is a transaction of its own on the caller's thread, a group
    /// of one for the observer).
    pg: Option<(Arc<pg::Pool>, Arc<dyn GroupObserver>)>,
}

impl Store {
    /// Opens the database, applies the schema or pending migrations, and starts the writer.
    pub fn open(path: &Path, sync: SyncMode) -> Result<Store, String> {
        Store::open_with(path, sync, None, Arc::new(()))
    }

    /// [`Store::open`], telling `groups` the size of every group the writer commits (the
    /// metrics' histogram; the store knows nothing of metrics).
    pub fn open_observed(
        path: &Path,
        sync: SyncMode,
        groups: Arc<dyn GroupObserver>,
    ) -> Result<Store, String> {
        Store::open_with(path, sync, None, groups)
    }

    /// [`Store::open`], with `--sync full` syncing `wal_file` instead of the WAL (tests give
    /// a file whose sync fails).
    fn open_with(
        path: &Path,
        sync: SyncMode,
        wal_file: Option<std::fs::File>,
        observer: Arc<dyn GroupObserver>,
    ) -> Result<Store, String> {
        if let Some(url) = pg_url(path) {
            return Store::open_pg(path, sync, url, observer);
        }
        let mut conn = connect(path, sync, false)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        migrate::migrate(&mut conn)
            .map_err(|e| format!("cannot prepare {}: {e}", path.display()))?;
        // Checkpoints are the checkpointing thread's (`run_checkpointer`), never inside the
        // commit that crosses SQLite's threshold: that commit's callers waited for the copy of
        // every page.
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(|e| format!("cannot prepare {}: {e}", path.display()))?;
        // `--sync full`: the answering thread syncs the WAL before any caller hears of its
        // write (`run_answerer`), so the writer's COMMIT need not wait for the disk.
        let wal = match (sync, wal_file) {
            (SyncMode::Normal, _) => None,
            (SyncMode::Full, Some(file)) => Some(file),
            (SyncMode::Full, None) => Some(open_wal(&conn)?),
        };
        if wal.is_some() {
            conn.pragma_update(None, "synchronous", SyncMode::Normal.pragma())
                .map_err(|e| format!("cannot prepare {}: {e}", path.display()))?;
        }
        let (tx, rx) = mpsc::sync_channel::<Box<dyn Job>>(4096);
        let (answers, groups) = mpsc::sync_channel::<Answers>(64);
        let broken = Arc::new(AtomicBool::new(false));
        let wal_syncs = Arc::new(AtomicU64::new(0));
        let durable = Durable {
            wal,
            syncs: Arc::clone(&wal_syncs),
            broken: Arc::clone(&broken),
        };
        let writes_stopped = Arc::clone(&broken);
        let answerer = std::thread::Builder::new()
            .name("vouchd-answers".into())
            .spawn(move || run_answerer(groups, &durable))
            .map_err(|e| format!("cannot start the answering thread: {e}"))?;
        let checkpoints = connect(path, SyncMode::Normal, false)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let db_file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let (commits, committed) = mpsc::sync_channel::<()>(1);
        let tail_wanted = Arc::new(AtomicBool::new(false));
        let asked = Arc::clone(&tail_wanted);
        let checkpointer = std::thread::Builder::new()
            .name("vouchd-checkpoint".into())
            .spawn(move || run_checkpointer(checkpoints, db_file, committed, &asked))
            .map_err(|e| format!("cannot start the checkpointing thread: {e}"))?;
        let helpers = Helpers {
            answers,
            answerer,
            broken,
            commits,
            checkpointer,
            tail_wanted,
        };
        let writer = std::thread::Builder::new()
            .name("vouchd-writer".into())
            .spawn(move || run_writer(conn, rx, &*observer, helpers))
            .map_err(|e| format!("cannot start the writer thread: {e}"))?;
        Ok(Store {
            path: Arc::new(path.to_path_buf()),
            sync,
            jobs: Arc::new(Mutex::new(Some(tx))),
            writer: Arc::new(Mutex::new(Some(writer))),
            wal_syncs,
            broken: writes_stopped,
            write_timeout: WRITE_TIMEOUT,
            pg: None,
        })
    }

    /// Opens a PostgreSQL database (laying out its schema if it is empty).
    fn open_pg(
        path: &Path,
        sync: SyncMode,
        url: &str,
        observer: Arc<dyn GroupObserver>,
    ) -> Result<Store, String> {
        let pool =
            pg::Pool::open(url).map_err(|e| format!("cannot open the PostgreSQL database: {e}"))?;
        Ok(Store {
            path: Arc::new(path.to_path_buf()),
            sync,
            jobs: Arc::new(Mutex::new(None)),
            writer: Arc::new(Mutex::new(None)),
            wal_syncs: Arc::new(AtomicU64::new(0)),
            broken: Arc::new(AtomicBool::new(false)),
            write_timeout: WRITE_TIMEOUT,
            pg: Some((pool, observer)),
        })
    }

    /// True when the database is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }

    /// True once a sync of the WAL failed: committed writes may then not be on disk, so no
    /// write is taken and no stored reply replayed until vouchd is restarted.
    pub fn writes_stopped(&self) -> bool {
        self.broken.load(Ordering::Acquire)
    }

    /// How many times the WAL was synced to make committed groups durable (`--sync full`).
    pub fn wal_syncs(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.wal_syncs)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A new query-only connection for one worker thread.
    pub fn reader(&self) -> Result<Db, StoreError> {
        if let Some((pool, _)) = &self.pg {
            return Ok(Db::pooled(Arc::clone(pool)));
        }
        Ok(Db::new(connect(&self.path, self.sync, true)?))
    }

    /// Stops taking writes, lets the writer finish what is queued, and waits for it.
    pub fn close(&self) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
        if let Some(handle) = self.writer.lock().ok().and_then(|mut w| w.take()) {
            let _ = handle.join();
        }
    }
}
