//! Durability: the answering thread syncs the WAL once for the groups committed meanwhile and
//! only then tells their callers, so an answer means "on disk" under `--sync full`.

use super::writer::{commit_error, Finish};
use super::StoreError;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;

/// A committed (or failed) group's callers, for the answering thread to tell.
pub(super) type Answers = (Result<(), rusqlite::Error>, Vec<Box<dyn Finish>>);

/// The answering thread: makes committed groups durable and then tells their callers.
///
/// With `--sync full` the writer's connection runs `synchronous=NORMAL`, so its COMMIT only
/// writes the group's frames to the WAL, and this thread syncs the WAL once for all the groups
/// waiting before it answers any of them: a 2xx still means on disk, and the writer
/// goes on with the next group during the sync instead of waiting for it. Waking the callers
/// is here too (a futex call each, which often hands the woken thread the CPU: on the writer,
/// the wakes took a good share of its time).
///
/// If a sync fails, what it covered may not be on disk, and a later sync could succeed
/// without it (Linux reports a lost write-back once): those groups are answered 500,
/// `durable.broken` is set, and the writer takes no more writes until vouchd is restarted.
pub(super) fn run_answerer(groups: Receiver<Answers>, durable: &Durable) {
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
pub(super) struct Durable {
    /// The WAL to sync before answering (`--sync full`), or none (`--sync normal`).
    pub(super) wal: Option<std::fs::File>,
    /// Syncs done, for the metrics.
    pub(super) syncs: Arc<AtomicU64>,
    /// Set when a sync failed: the writer then takes no more writes.
    pub(super) broken: Arc<AtomicBool>,
}

/// Opens the WAL of `conn`'s database, which `conn` has open (it is in WAL mode and has
/// read): the name SQLite itself uses, its resolved database file name with `-wal` appended
/// (the path as given may be a symbolic link). Opened once, before any write: a handle
/// opened later could miss a failed write-back another handle had already been told of.
/// The writer's connection keeps the WAL open all along, so SQLite never removes it.
pub(super) fn open_wal(conn: &Connection) -> Result<std::fs::File, String> {
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

pub(super) fn not_synced(err: &str) -> StoreError {
    StoreError::Stopped(format!(
        "the write may not be on disk: the WAL could not be synced; restart vouchd: {err}"
    ))
}

/// The WAL's path: SQLite's, the database's name with `-wal` appended.
pub(super) fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}
