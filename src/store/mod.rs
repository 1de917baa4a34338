//! The store: one SQLite file, one writer thread, a reader connection per worker.
//!
//! Every write is an operation sent to the writer thread, which runs the operations it finds
//! queued in one `BEGIN IMMEDIATE` transaction, each inside its own SAVEPOINT so one failing
//! operation is rolled back alone, and answers every caller only after the COMMIT. With
//! `synchronous=FULL` an answer therefore means "on disk". Readers use their own connections in
//! WAL mode and never wait on the writer.

pub mod backup;
pub mod bulk;
pub mod clients;
pub mod error;
pub mod holds;
pub mod idempotency;
pub mod ledger;
pub mod migrate;
pub mod pins;
pub mod stats;
pub mod vouchers;

use crate::domain::query::{SortField, SortKey};
use crate::ops::metrics::Histogram;
pub use error::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How many queued operations one transaction takes at most.
const MAX_GROUP: usize = 256;
/// How long a caller waits for its write before answering 503.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection waits on a lock held by another process (the CLI, a backup).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the checkpointing thread copies newly committed WAL pages into the database file,
/// at most. A page written again and again between two checkpoints is copied once: under the
/// charge load on 1 000 000 vouchers, 250 ms gave ~9 % more charges a second than 100 ms
/// (means of 6 and 3 runs; 500 ms was no better).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// WAL frames (pages) past which the checkpointing thread asks the writer to copy the rest
/// itself, so that the WAL starts over: 32 MiB of 4 KiB pages.
const WAL_FRAMES_LIMIT: i64 = 8192;

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

    fn pragma(self) -> &'static str {
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
        // Many workers each hold a reader, and every commit empties their caches anyway;
        // `Store::worker_reader` gives each its share of a budget instead.
        conn.pragma_update(None, "cache_size", -1024)?;
        conn.pragma_update(None, "query_only", "ON")?;
    }
    Ok(conn)
}

/// Opens (creating and migrating if needed) a database for direct use by the CLI.
pub fn open_direct(path: &Path) -> Result<Connection, String> {
    let mut conn = connect(path, SyncMode::Full, false)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    migrate::migrate(&mut conn).map_err(|e| format!("cannot prepare {}: {e}", path.display()))?;
    Ok(conn)
}

/// Runs `op` in one `BEGIN IMMEDIATE` transaction on a direct (CLI) connection: committed when
/// it returns `Ok`, rolled back otherwise. IMMEDIATE takes the write lock first, so a running
/// server's writer waits (up to its busy timeout) instead of interleaving with `op`.
pub fn write_direct<T>(
    conn: &mut Connection,
    op: impl FnOnce(&Connection) -> Result<T, String>,
) -> Result<T, String> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| format!("cannot begin a write transaction: {e}"))?;
    let value = op(&tx)?;
    tx.commit().map_err(|e| format!("cannot commit: {e}"))?;
    Ok(value)
}

/// A queued write: run inside the group's transaction, then told how the COMMIT went.
trait Job: Send {
    fn run(self: Box<Self>, conn: &Connection) -> Box<dyn Finish>;
    fn refuse(self: Box<Self>, err: StoreError);
}

trait Finish: Send {
    fn finish(self: Box<Self>, committed: Result<(), StoreError>);
}

struct WriteJob<T, E, F> {
    op: F,
    reply: SyncSender<Result<T, E>>,
    /// QUEUED until the writer takes the job (TAKEN) or its caller gives up on it (ABANDONED):
    /// whichever comes first wins, so an abandoned job never runs.
    state: Arc<AtomicU8>,
}

const QUEUED: u8 = 0;
const TAKEN: u8 = 1;
const ABANDONED: u8 = 2;

/// What is left to do for a job its caller abandoned before it ran: nothing.
struct Skipped;

impl Finish for Skipped {
    fn finish(self: Box<Self>, _committed: Result<(), StoreError>) {}
}

struct Pending<T, E> {
    result: Result<T, E>,
    reply: SyncSender<Result<T, E>>,
}

impl<T, E, F> Job for WriteJob<T, E, F>
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
    F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection) -> Box<dyn Finish> {
        if self
            .state
            .compare_exchange(QUEUED, TAKEN, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Box::new(Skipped);
        }
        let result = in_savepoint(conn, self.op);
        Box::new(Pending {
            result,
            reply: self.reply,
        })
    }

    fn refuse(self: Box<Self>, err: StoreError) {
        let _ = self.reply.send(Err(E::from(err)));
    }
}

impl<T: Send + 'static, E: From<StoreError> + Send + 'static> Finish for Pending<T, E> {
    fn finish(self: Box<Self>, committed: Result<(), StoreError>) {
        let _ = self.reply.send(committed.map_err(E::from).and(self.result));
    }
}

/// Runs `op` inside a SAVEPOINT: released on success, rolled back on error or panic.
pub fn in_savepoint<T, E: From<StoreError>>(
    conn: &Connection,
    op: impl FnOnce(&Connection) -> Result<T, E>,
) -> Result<T, E> {
    // Cached statements: these run several times per request on the writer's hot path.
    let run = |sql: &str| {
        conn.prepare_cached(sql)
            .and_then(|mut stmt| stmt.execute([]).map(drop))
            .map_err(|err| E::from(StoreError::from(err)))
    };
    run("SAVEPOINT op")?;
    let result = catch_unwind(AssertUnwindSafe(|| op(conn)))
        .unwrap_or_else(|_| Err(E::from(StoreError::Bug("a write operation panicked"))));
    if result.is_err() {
        if let Err(err) = run("ROLLBACK TO op") {
            // The op's writes cannot be undone alone: end the whole transaction so none of
            // them is committed. The writer sees the autocommit state and fails the group.
            let _ = conn.execute_batch("ROLLBACK");
            return Err(err);
        }
    }
    run("RELEASE op")?;
    result
}

type JobSender = SyncSender<Box<dyn Job>>;

/// Runs a list's `… LIMIT ? OFFSET ?` statement for the query's page; `args` are the filter
/// arguments before the two paging ones.
pub fn fetch_page<T>(
    conn: &Connection,
    sql: &str,
    mut args: Vec<rusqlite::types::Value>,
    query: &crate::domain::query::ListQuery,
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

/// The page cache all worker readers share out between them, in KiB. (Random look-ups on
/// 1 000 000 vouchers with 64 workers: ~9 300/s with 256 KiB a reader, ~12 500/s with 384 or
/// 512 KiB; each reader fills its share, so the budget is part of the RSS under load.)
pub const READER_CACHE_BUDGET_KIB: usize = 24 * 1024;

/// Handle to the database: cheap to clone, shared by every worker.
#[derive(Clone)]
pub struct Store {
    path: Arc<PathBuf>,
    sync: SyncMode,
    jobs: Arc<Mutex<Option<JobSender>>>,
    writer: Arc<Mutex<Option<JoinHandle<()>>>>,
    /// Operations per writer transaction, for the metrics.
    batch_sizes: Arc<Histogram>,
    /// Syncs of the WAL by the answering thread, for the metrics.
    wal_syncs: Arc<AtomicU64>,
    /// Set once a sync of the WAL failed (or the answering thread is gone): no writes since.
    broken: Arc<AtomicBool>,
    /// How long a write may wait for the writer to take it ([`WRITE_TIMEOUT`]).
    write_timeout: Duration,
}

impl Store {
    /// Opens the database, applies the schema or pending migrations, and starts the writer.
    pub fn open(path: &Path, sync: SyncMode) -> Result<Store, String> {
        Store::open_with(path, sync, None)
    }

    /// [`Store::open`], with `--sync full` syncing `wal_file` instead of the WAL (tests give
    /// a file whose sync fails).
    fn open_with(
        path: &Path,
        sync: SyncMode,
        wal_file: Option<std::fs::File>,
    ) -> Result<Store, String> {
        let mut conn = connect(path, sync, false)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        migrate::migrate(&mut conn)
            .map_err(|e| format!("cannot prepare {}: {e}", path.display()))?;
        // Checkpoints are the checkpointing thread's (`run_checkpointer`), never inside the
        // commit that crosses SQLite's threshold: that commit's callers waited for the copy of
        // every page (a 100 000 voucher batch: ~0.2 s more).
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
        let batch_sizes = Arc::new(Histogram::batch_sizes());
        let observed = Arc::clone(&batch_sizes);
        let writer = std::thread::Builder::new()
            .name("vouchd-writer".into())
            .spawn(move || run_writer(conn, rx, &observed, helpers))
            .map_err(|e| format!("cannot start the writer thread: {e}"))?;
        Ok(Store {
            path: Arc::new(path.to_path_buf()),
            sync,
            jobs: Arc::new(Mutex::new(Some(tx))),
            writer: Arc::new(Mutex::new(Some(writer))),
            batch_sizes,
            wal_syncs,
            broken: writes_stopped,
            write_timeout: WRITE_TIMEOUT,
        })
    }

    /// The histogram of operations per writer transaction.
    pub fn batch_sizes(&self) -> Arc<Histogram> {
        Arc::clone(&self.batch_sizes)
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
    pub fn reader(&self) -> rusqlite::Result<Connection> {
        connect(&self.path, self.sync, true)
    }

    /// A reader for one of `workers` worker threads, its page cache a share of
    /// [`READER_CACHE_BUDGET_KIB`] (between 256 KiB and 4 MiB): 8 workers get 3 MiB each, 64
    /// get 384 KiB, so the readers together stay within the budget however many there are.
    pub fn worker_reader(&self, workers: usize) -> rusqlite::Result<Connection> {
        let conn = self.reader()?;
        let kib = (READER_CACHE_BUDGET_KIB / workers.max(1)).clamp(256, 4096);
        conn.pragma_update(None, "cache_size", -(kib as i64))?;
        Ok(conn)
    }

    /// Runs `op` on the writer thread inside the next group transaction and returns its result
    /// once that transaction has committed (or failed). If the writer has not taken `op` within
    /// [`WRITE_TIMEOUT`], `op` is withdrawn and never runs: the 503 then means "not done". Once
    /// taken, its outcome is always waited for, so no answer hides a write that happened.
    ///
    /// `op` may fail with an error of its caller's (`E`): the store's own failures to run or
    /// commit it come as `E::from(StoreError)`.
    pub fn write<T, E, F>(&self, op: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let (reply, answer) = mpsc::sync_channel(1);
        let state = Arc::new(AtomicU8::new(QUEUED));
        let sender = self
            .jobs
            .lock()
            .map_err(|_| StoreError::Unavailable)?
            .clone();
        let sender = sender.ok_or(StoreError::Unavailable)?;
        sender
            .send(Box::new(WriteJob {
                op,
                reply,
                state: Arc::clone(&state),
            }))
            .map_err(|_| StoreError::Unavailable)?;
        match answer.recv_timeout(self.write_timeout) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => {
                let withdrawn = state
                    .compare_exchange(QUEUED, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok();
                if withdrawn {
                    Err(StoreError::Unavailable.into())
                } else {
                    answer.recv().unwrap_or(Err(StoreError::Unavailable.into()))
                }
            }
            Err(RecvTimeoutError::Disconnected) => Err(StoreError::Unavailable.into()),
        }
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

/// A committed (or failed) group's callers, for the answering thread to tell.
type Answers = (Result<(), rusqlite::Error>, Vec<Box<dyn Finish>>);

/// The answering thread: makes committed groups durable and then tells their callers.
///
/// With `--sync full` the writer's connection runs `synchronous=NORMAL`, so its COMMIT only
/// writes the group's frames to the WAL, and this thread syncs the WAL once for all the groups
/// waiting before it answers any of them: a 2xx still means on disk, and the writer
/// goes on with the next group during the sync instead of waiting for it. Waking the callers
/// is here too (a futex call each, which often hands the woken thread the CPU: on the writer,
/// the wakes of a group of 40 took a fifth of its time).
///
/// If a sync fails, what it covered may not be on disk, and a later sync could succeed
/// without it (Linux reports a lost write-back once): those groups are answered 500,
/// `durable.broken` is set, and the writer takes no more writes until vouchd is restarted.
fn run_answerer(groups: Receiver<Answers>, durable: &Durable) {
    // The first failed sync, which fails every later group too: their frames follow the
    // lost ones in the WAL, so a crash would take them as well.
    let mut failed: Option<String> = None;
    while let Ok(first) = groups.recv() {
        let mut waiting = vec![first];
        waiting.extend(groups.try_iter());
        let needs_sync = waiting.iter().any(|(committed, _)| committed.is_ok());
        match &durable.wal {
            Some(wal) if needs_sync && failed.is_none() => {
                if let Err(err) = wal.sync_all() {
                    eprintln!(
                        "vouchd: cannot sync the WAL to disk ({err}); no more writes are \
                         taken until vouchd is restarted"
                    );
                    failed = Some(err.to_string());
                    durable.broken.store(true, Ordering::Release);
                }
                durable.syncs.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        for (committed, pending) in waiting {
            for finish in pending {
                let outcome = match (&committed, &failed) {
                    (Err(err), _) => Err(commit_error(err)),
                    (Ok(()), None) => Ok(()),
                    (Ok(()), Some(err)) => Err(not_synced(err)),
                };
                finish.finish(outcome);
            }
        }
    }
}

/// What the answering thread needs to make groups durable.
struct Durable {
    /// The WAL to sync before answering (`--sync full`), or none (`--sync normal`).
    wal: Option<std::fs::File>,
    /// Syncs done, for the metrics.
    syncs: Arc<AtomicU64>,
    /// Set when a sync failed: the writer then takes no more writes.
    broken: Arc<AtomicBool>,
}

/// Opens the WAL of `conn`'s database, which `conn` has open (it is in WAL mode and has
/// read): the name SQLite itself uses, its resolved database file name with `-wal` appended
/// (the path as given may be a symbolic link). Opened once, before any write: a handle
/// opened later could miss a failed write-back another handle had already been told of.
/// The writer's connection keeps the WAL open all along, so SQLite never removes it.
fn open_wal(conn: &Connection) -> Result<std::fs::File, String> {
    let db = conn
        .path()
        .filter(|p| !p.is_empty())
        .ok_or("the database has no file name")?;
    let wal = wal_path(Path::new(db));
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&wal)
        .map_err(|e| format!("cannot open the WAL {}: {e}", wal.display()))
}

fn not_synced(err: &str) -> StoreError {
    StoreError::Stopped(format!(
        "the write may not be on disk: the WAL could not be synced; restart vouchd: {err}"
    ))
}

/// The WAL's path: SQLite's, the database's name with `-wal` appended.
fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// The threads around the writer, and what it shares with them.
struct Helpers {
    answers: SyncSender<Answers>,
    answerer: JoinHandle<()>,
    /// Set by the answering thread when a sync failed, or by the writer when that thread is
    /// gone: no writes are taken any more.
    broken: Arc<AtomicBool>,
    /// A signal to the checkpointing thread that something was committed.
    commits: SyncSender<()>,
    checkpointer: JoinHandle<()>,
    /// Set by the checkpointing thread when the WAL is long: the writer copies the rest.
    tail_wanted: Arc<AtomicBool>,
}

/// The writer thread: runs queued writes in groups; at the end waits for the helpers to finish
/// and copies what is left in the WAL.
fn run_writer(conn: Connection, jobs: Receiver<Box<dyn Job>>, batch_sizes: &Histogram, h: Helpers) {
    write_groups(&conn, &jobs, batch_sizes, &h);
    drop(h.answers);
    let _ = h.answerer.join();
    drop(h.commits);
    let _ = h.checkpointer.join();
    let _ = checkpoint(&conn);
}

/// The checkpointing thread: [`CHECKPOINT_EVERY`] after its last checkpoint, if something was
/// committed since, copies the WAL into the database file on its own connection. PASSIVE
/// never blocks the writer, which goes on appending meanwhile, so under a steady load the WAL
/// is never all copied and would grow without end (an earlier try: 470 MB in 10 s). Past
/// [`WAL_FRAMES_LIMIT`] frames this thread catches up (checkpoints right after each other,
/// each copying what came during the last, until one is quick), then asks the writer to copy
/// the few frames appended since (`tail_wanted`), after which the writer's next commit starts
/// the WAL over; and it stays idle until the writer has, since its own copying would dirty the
/// file under the writer's sync of it.
///
/// SQLite syncs the database file only after a checkpoint that copied the whole WAL (until
/// then every frame is still in the WAL, which a recovery replays), so under a steady load the
/// copied pages piled up unsynced and the writer's tail checkpoint synced them all: 50-70 ms
/// during which no write ran. This thread syncs the file after each of its checkpoints instead.
fn run_checkpointer(
    conn: Connection,
    db: std::fs::File,
    commits: Receiver<()>,
    tail_wanted: &AtomicBool,
) {
    let mut last = Instant::now();
    // A migration may have left frames: copy them as soon as there is a quiet moment.
    let mut uncopied = true;
    loop {
        if !uncopied || last.elapsed() < CHECKPOINT_EVERY {
            let wait = if uncopied {
                CHECKPOINT_EVERY.saturating_sub(last.elapsed())
            } else {
                Duration::MAX
            };
            match commits.recv_timeout(wait) {
                Ok(()) => uncopied = true,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            continue;
        }
        // The commits signalled so far are all in what this checkpoint copies.
        while commits.try_recv().is_ok() {}
        match copy_and_sync(&conn, &db) {
            Ok(Some((log, copied))) => {
                uncopied = copied < log;
                if log >= WAL_FRAMES_LIMIT {
                    catch_up(&conn, &db);
                    tail_wanted.store(true, Ordering::Release);
                    let asked = Instant::now();
                    while tail_wanted.load(Ordering::Acquire)
                        && asked.elapsed() < Duration::from_secs(1)
                    {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
            Ok(None) => {}
            Err(err) => eprintln!("vouchd: checkpoint failed (tried again later): {err}"),
        }
        last = Instant::now();
    }
}

/// Checkpoints again and again (four times at most) until one takes under 10 ms: each copies
/// what was appended during the one before, so what the writer is left to copy is small.
fn catch_up(conn: &Connection, db: &std::fs::File) {
    for _ in 0..4 {
        let started = Instant::now();
        if !matches!(copy_and_sync(conn, db), Ok(Some(_)))
            || started.elapsed() < Duration::from_millis(10)
        {
            return;
        }
    }
}

/// A checkpoint, then a sync of the database file (`db`) unless the WAL held no copied frame
/// (a sync with nothing new to write is cheap): (frames in the WAL, frames copied so far), or
/// none when another checkpoint was under way.
fn copy_and_sync(conn: &Connection, db: &std::fs::File) -> Result<Option<(i64, i64)>, String> {
    let (log, copied) = match checkpoint(conn) {
        Ok(done) => done,
        Err(err) if err.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {
            return Ok(None)
        }
        Err(err) => return Err(err.to_string()),
    };
    if copied > 0 {
        db.sync_all()
            .map_err(|e| format!("cannot sync the database file: {e}"))?;
    }
    Ok(Some((log, copied)))
}

fn write_groups(
    conn: &Connection,
    jobs: &Receiver<Box<dyn Job>>,
    batch_sizes: &Histogram,
    h: &Helpers,
) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        batch_sizes.observe(group.len() as u64);
        if h.broken.load(Ordering::Acquire) {
            for job in group {
                job.refuse(StoreError::Stopped(
                    "vouchd takes no writes since the WAL could not be synced; restart it".into(),
                ));
            }
            continue;
        }
        if let Err(err) = conn.execute_batch("BEGIN IMMEDIATE") {
            eprintln!("vouchd: cannot begin a write transaction: {err}");
            for job in group {
                job.refuse(StoreError::Unavailable);
            }
            continue;
        }
        let mut pending: Vec<Box<dyn Finish>> = Vec::with_capacity(group.len());
        let mut jobs_left = group.into_iter();
        let mut lost = false;
        for job in jobs_left.by_ref() {
            pending.push(job.run(conn));
            // SQLite rolls the whole transaction back on some errors (disk full, I/O): what
            // ran so far is gone, and what follows must not run outside a transaction.
            if conn.is_autocommit() {
                lost = true;
                break;
            }
        }
        for job in jobs_left {
            job.refuse(StoreError::Unavailable);
        }
        let committed = if lost {
            eprintln!(
                "vouchd: a write transaction was rolled back by SQLite; its group is refused"
            );
            Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
                Some("transaction rolled back".into()),
            ))
        } else {
            conn.execute_batch("COMMIT")
        };
        if let Err(err) = &committed {
            eprintln!("vouchd: commit failed: {err}");
            let _ = conn.execute_batch("ROLLBACK");
        }
        if committed.is_ok() {
            let _ = h.commits.try_send(());
        }
        if h.answers.send((committed, pending)).is_err() {
            eprintln!("vouchd: the answering thread is gone; the writer stops");
            h.broken.store(true, Ordering::Release);
            break;
        }
        // The WAL is long: copy what the checkpointing thread has not, so that the next
        // commit starts the WAL over. The flag is cleared once done (that thread waits for it);
        // busy (a checkpoint under way): tried again after the next group.
        if h.tail_wanted.load(Ordering::Acquire) {
            let busy = checkpoint(conn).is_err_and(|err| {
                err.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
            });
            if !busy {
                h.tail_wanted.store(false, Ordering::Release);
            }
        }
    }
}

/// Copies committed pages from the WAL into the database file: (frames in the WAL, frames
/// copied). When all were, with nothing appended meanwhile, the next write starts the WAL
/// over. PASSIVE never waits: pages a reader's older snapshot still needs are left for the
/// next try, and another connection's checkpoint under way makes it busy (an error).
fn checkpoint(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        let busy: i64 = r.get(0)?;
        if busy != 0 {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                None,
            ));
        }
        Ok((r.get(1)?, r.get(2)?))
    })
}

fn commit_error(err: &rusqlite::Error) -> StoreError {
    match err.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            StoreError::Busy
        }
        // The engine's error is not Clone: each caller of the group gets its own copy.
        _ => StoreError::Stopped(format!("commit: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory of this test process's own under the system's temporary one.
    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vouchd-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn count(store: &Store) -> i64 {
        store
            .reader()
            .unwrap()
            .query_row("SELECT COUNT(*) FROM settings", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn with_sync_full_every_answered_write_was_synced_and_with_normal_none() {
        let dir = temp_dir("sync");
        for (sync, name) in [(SyncMode::Full, "full.db"), (SyncMode::Normal, "normal.db")] {
            let path = dir.join(name);
            let store = Store::open(&path, sync).unwrap();
            let syncs = store.wal_syncs();
            // The writer's own connection leaves the syncing to the answering thread.
            let level: i64 = store
                .write::<_, StoreError, _>(|conn| {
                    Ok(conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?)
                })
                .unwrap();
            assert_eq!(level, 1, "NORMAL on the writer's connection");
            let writers: Vec<_> = (0..20)
                .map(|i| {
                    let store = store.clone();
                    let syncs = Arc::clone(&syncs);
                    std::thread::spawn(move || {
                        let before = syncs.load(Ordering::SeqCst);
                        store
                            .write::<_, StoreError, _>(move |conn| {
                                conn.execute(
                                    "INSERT INTO settings (key, value) VALUES (?1, 'x')",
                                    [format!("k{i}")],
                                )?;
                                Ok(())
                            })
                            .unwrap();
                        // Answered only after a sync that began after the write was queued.
                        (before, syncs.load(Ordering::SeqCst))
                    })
                })
                .collect();
            for w in writers {
                let (before, after) = w.join().unwrap();
                match sync {
                    SyncMode::Full => assert!(after > before, "{before} → {after}"),
                    SyncMode::Normal => assert_eq!(after, 0),
                }
            }
            assert_eq!(count(&store), 21);
            store.close();
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn through_a_symbolic_link_the_wal_synced_is_the_one_sqlite_writes() {
        let dir = temp_dir("link");
        let (real, link) = (dir.join("real.db"), dir.join("link.db"));
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let store = Store::open(&link, SyncMode::Full).unwrap();
        store
            .write::<_, StoreError, _>(|conn| {
                conn.execute("INSERT INTO settings (key, value) VALUES ('k', 'v')", [])?;
                Ok(())
            })
            .unwrap();
        assert!(store.wal_syncs().load(Ordering::SeqCst) >= 1);
        // SQLite writes the WAL beside the file the link names, and no other WAL exists.
        assert!(wal_path(&real).exists());
        assert!(!wal_path(&link).exists());
        store.close();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_failed_sync_fails_its_writes_and_every_write_after_it() {
        let dir = temp_dir("nosync");
        let path = dir.join("n.db");
        // The answering thread syncs this instead of the WAL: syncing a character device fails.
        let unsyncable = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .unwrap();
        let store = Store::open_with(&path, SyncMode::Full, Some(unsyncable)).unwrap();
        let insert = |key: &'static str| {
            store.write::<_, StoreError, _>(move |conn| {
                conn.execute("INSERT INTO settings (key, value) VALUES (?1, 'x')", [key])?;
                Ok(())
            })
        };
        assert!(!store.writes_stopped());
        let lost = insert("first");
        assert!(
            matches!(&lost, Err(StoreError::Stopped(m)) if m.contains("may not be on disk")),
            "{lost:?}"
        );
        assert!(store.writes_stopped());
        // No write is taken any more.
        for key in ["second", "third"] {
            let refused = insert(key);
            assert!(
                matches!(&refused, Err(StoreError::Stopped(m)) if m.contains("restart")),
                "{refused:?}"
            );
        }
        store.close();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_write_the_writer_did_not_take_in_time_is_503_and_never_runs() {
        let dir = temp_dir("store");
        let path = dir.join("w.db");
        let _ = std::fs::remove_file(&path);
        let mut store = Store::open(&path, SyncMode::Normal).unwrap();
        store.write_timeout = Duration::from_millis(200);
        let before = count(&store);
        // The writer is busy for 600 ms with another request's work.
        let busy = store.clone();
        let slow = std::thread::spawn(move || {
            busy.write::<_, StoreError, _>(|_| {
                std::thread::sleep(Duration::from_millis(600));
                Ok(())
            })
        });
        std::thread::sleep(Duration::from_millis(50));
        let waited = store.write::<_, StoreError, _>(|conn| {
            conn.execute("INSERT INTO settings (key, value) VALUES ('late', 'x')", [])?;
            Ok(())
        });
        assert!(matches!(waited, Err(StoreError::Unavailable)), "{waited:?}");
        assert!(slow.join().unwrap().is_ok());
        // Once the writer is free again the withdrawn write has still not happened …
        store.write::<_, StoreError, _>(|_| Ok(())).unwrap();
        assert_eq!(count(&store), before);
        // … while a write the writer took is waited for, however long it takes.
        let taken = store.write::<_, StoreError, _>(|conn| {
            std::thread::sleep(Duration::from_millis(400));
            conn.execute("INSERT INTO settings (key, value) VALUES ('slow', 'x')", [])?;
            Ok(())
        });
        assert!(taken.is_ok(), "{taken:?}");
        assert_eq!(count(&store), before + 1);
        store.close();
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The rows the database file itself holds, ignoring the WAL (`None`: not even the table).
    #[test]
    fn under_a_steady_load_the_wal_starts_over_instead_of_growing() {
        let dir = temp_dir("walcap");
        let path = dir.join("g.db");
        let store = Store::open(&path, SyncMode::Full).unwrap();
        store
            .write::<_, StoreError, _>(|conn| {
                conn.execute_batch("CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB)")?;
                Ok(())
            })
            .unwrap();
        // Four writers rewrite their own 64 KiB row without pause (16 WAL frames a commit), so
        // the checkpointing thread is never done before the next commit. Left to PASSIVE
        // checkpoints alone the WAL would never start over and would hold every frame. The
        // property is asserted by what happens, not by how fast: the WAL must start over (a
        // new salt in its header) three times while the load goes on. The caps on rounds and
        // time only bound a failing run.
        const ROUNDS: u32 = 4096;
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..4)
            .map(|w: i64| {
                let store = store.clone();
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    for round in 0..ROUNDS {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        let blob = vec![round as u8; 64 * 1024];
                        store
                            .write::<_, StoreError, _>(move |conn| {
                                conn.execute(
                                    "INSERT OR REPLACE INTO blobs (id, b) VALUES (?1, ?2)",
                                    rusqlite::params![w, blob],
                                )?;
                                Ok(())
                            })
                            .unwrap();
                    }
                })
            })
            .collect();
        let wal = wal_path(&path);
        let started = Instant::now();
        let mut header = wal_salt(&wal);
        let mut restarts = 0;
        let mut largest = 0;
        while restarts < 3
            && writers.iter().any(|w| !w.is_finished())
            && started.elapsed() < Duration::from_secs(300)
        {
            largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
            let now = wal_salt(&wal);
            if now.is_some() && header.is_some() && now != header {
                restarts += 1;
            }
            if now.is_some() {
                header = now;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().unwrap();
        }
        assert!(
            restarts >= 3,
            "under a steady load the WAL started over {restarts} times, not 3; it grew to \
             {largest} bytes"
        );
        store.close();
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The WAL header's checkpoint sequence number and salts (bytes 12..24): SQLite changes
    /// them each time the WAL starts over from its first frame.
    fn wal_salt(wal: &Path) -> Option<[u8; 12]> {
        use std::io::Read;
        let mut head = [0u8; 24];
        std::fs::File::open(wal).ok()?.read_exact(&mut head).ok()?;
        let mut salt = [0u8; 12];
        salt.copy_from_slice(&head[12..24]);
        Some(salt)
    }

    fn count_in_file(path: &Path) -> Option<i64> {
        let uri = format!("file:{}?immutable=1", path.display());
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI;
        Connection::open_with_flags(uri, flags)
            .unwrap()
            .query_row("SELECT COUNT(*) FROM settings", [], |r| r.get(0))
            .ok()
    }

    #[test]
    fn the_wal_is_copied_into_the_file_once_idle() {
        let dir = temp_dir("ckpt");
        let path = dir.join("c.db");
        let store = Store::open(&path, SyncMode::Full).unwrap();
        let before = count(&store);
        store
            .write::<_, StoreError, _>(|conn| {
                conn.execute("INSERT INTO settings (key, value) VALUES ('k', 'v')", [])?;
                Ok(())
            })
            .unwrap();
        // Committed: in the WAL at once, in the file after the idle checkpoint.
        assert_eq!(count(&store), before + 1);
        let waited = std::time::Instant::now();
        while count_in_file(&path) != Some(before + 1) {
            assert!(waited.elapsed() < Duration::from_secs(5), "never copied");
            std::thread::sleep(Duration::from_millis(20));
        }
        store.close();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
