//! The writer and its group commit: queued writes run in one `BEGIN IMMEDIATE` transaction,
//! each in its own SAVEPOINT, and their callers hear of them once the group is committed.

use super::checkpoint::checkpoint;
use super::durable::Answers;
use super::{Db, Store, StoreError};
use rusqlite::Connection;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// How many queued operations one transaction takes at most.
pub(super) const MAX_GROUP: usize = 256;

/// A queued write: run inside the group's transaction, then told how the COMMIT went.
/// Told the number of operations in each group the writer runs (for the metrics).
pub trait GroupObserver: Send + Sync {
    fn group_committed(&self, operations: u64);
}

/// No one listens.
impl GroupObserver for () {
    fn group_committed(&self, _operations: u64) {}
}

pub(super) trait Job: Send {
    fn run(self: Box<Self>, conn: &Db) -> Box<dyn Finish>;
    fn refuse(self: Box<Self>, err: StoreError);
}

pub(super) trait Finish: Send {
    fn finish(self: Box<Self>, committed: Result<(), StoreError>);
}

pub(super) struct WriteJob<T, E, F> {
    op: F,
    reply: SyncSender<Result<T, E>>,
    /// QUEUED until the writer takes the job (TAKEN) or its caller gives up on it (ABANDONED):
    /// whichever comes first wins, so an abandoned job never runs.
    state: Arc<AtomicU8>,
}

pub(super) const QUEUED: u8 = 0;

pub(super) const TAKEN: u8 = 1;

pub(super) const ABANDONED: u8 = 2;

/// What is left to do for a job its caller abandoned before it ran: nothing.
pub(super) struct Skipped;

impl Finish for Skipped {
    fn finish(self: Box<Self>, _committed: Result<(), StoreError>) {}
}

pub(super) struct Pending<T, E> {
    result: Result<T, E>,
    reply: SyncSender<Result<T, E>>,
}

impl<T, E, F> Job for WriteJob<T, E, F>
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
    F: FnOnce(&Db) -> Result<T, E> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &Db) -> Box<dyn Finish> {
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
    conn: &Db,
    op: impl FnOnce(&Db) -> Result<T, E>,
) -> Result<T, E> {
    // Cached statements: these run several times per request on the writer's hot path.
    let run = |sql: &str| {
        conn.execute(sql, &[])
            .map(drop)
            .map_err(|err| E::from(StoreError::from(err)))
    };
    run("SAVEPOINT op")?;
    let result = catch_unwind(AssertUnwindSafe(|| op(conn)))
        .unwrap_or_else(|_| Err(E::from(StoreError::Bug("a write operation panicked"))));
    if result.is_err() {
        if let Err(err) = run("ROLLBACK TO op") {
            // The op's writes cannot be undone alone: end the whole transaction so none of
            // them is committed. The writer sees the autocommit state and fails the group.
            let _ = conn.batch("ROLLBACK");
            return Err(err);
        }
    }
    run("RELEASE op")?;
    result
}

pub(super) type JobSender = SyncSender<Box<dyn Job>>;

/// The threads around the writer, and what it shares with them.
pub(super) struct Helpers {
    pub(super) answers: SyncSender<Answers>,
    pub(super) answerer: JoinHandle<()>,
    /// Set by the answering thread when a sync failed, or by the writer when that thread is
    /// gone: no writes are taken any more.
    pub(super) broken: Arc<AtomicBool>,
    /// A signal to the checkpointing thread that something was committed.
    pub(super) commits: SyncSender<()>,
    pub(super) checkpointer: JoinHandle<()>,
    /// Set by the checkpointing thread when the WAL is long: the writer copies the rest.
    pub(super) tail_wanted: Arc<AtomicBool>,
}

/// The writer thread: runs queued writes in groups; at the end waits for the helpers to finish
/// and copies what is left in the WAL.
pub(super) fn run_writer(
    conn: Connection,
    jobs: Receiver<Box<dyn Job>>,
    groups: &dyn GroupObserver,
    h: Helpers,
) {
    let db = Db::new(conn);
    write_groups(&db, &jobs, groups, &h);
    drop(h.answers);
    let _ = h.answerer.join();
    drop(h.commits);
    let _ = h.checkpointer.join();
    if let Some(conn) = db.sqlite() {
        let _ = checkpoint(conn);
    }
}

pub(super) fn write_groups(
    conn: &Db,
    jobs: &Receiver<Box<dyn Job>>,
    groups: &dyn GroupObserver,
    h: &Helpers,
) {
    let Some(raw) = conn.sqlite() else {
        return;
    };
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        groups.group_committed(group.len() as u64);
        if h.broken.load(Ordering::Acquire) {
            for job in group {
                job.refuse(StoreError::Stopped(
                    "vouchd takes no writes since the WAL could not be synced; restart it".into(),
                ));
            }
            continue;
        }
        if let Err(err) = raw.execute_batch("BEGIN IMMEDIATE") {
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
            if raw.is_autocommit() {
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
            raw.execute_batch("COMMIT")
        };
        if let Err(err) = &committed {
            eprintln!("vouchd: commit failed: {err}");
            let _ = raw.execute_batch("ROLLBACK");
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
            let busy = checkpoint(raw).is_err_and(|err| {
                err.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
            });
            if !busy {
                h.tail_wanted.store(false, Ordering::Release);
            }
        }
    }
}

pub(super) fn commit_error(err: &rusqlite::Error) -> StoreError {
    match err.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            StoreError::Busy
        }
        // The engine's error is not Clone: each caller of the group gets its own copy.
        _ => StoreError::Stopped(format!("commit: {err}")),
    }
}

impl Store {
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
        F: FnOnce(&Db) -> Result<T, E> + Send + 'static,
    {
        // The writer's commit (or PostgreSQL) is waited for: a request's turn goes meanwhile.
        crate::pace::waiting(|| self.write_now(op))
    }

    fn write_now<T, E, F>(&self, op: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Db) -> Result<T, E> + Send + 'static,
    {
        if let Some((pool, observer)) = &self.pg {
            let result = super::pg::transaction(pool, op);
            observer.group_committed(1);
            // The server's COMMIT waited for its WAL to reach the disk (synchronous_commit):
            // the sync that made this write durable before its answer.
            if result.is_ok() {
                self.wal_syncs.fetch_add(1, Ordering::Relaxed);
            }
            return result;
        }
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
}
