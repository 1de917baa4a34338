//! Checkpoints: a thread of its own copies committed WAL pages into the database file, and
//! asks the writer to copy the rest when the WAL grows long, so that the WAL starts over.

use rusqlite::Connection;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How often the checkpointing thread copies newly committed WAL pages into the database file,
/// at most. A page written again and again between two checkpoints is copied once (the
/// interval's measurements are in bench/RESULTS.md).
pub(super) const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// WAL frames (pages) past which the checkpointing thread asks the writer to copy the rest
/// itself, so that the WAL starts over: 32 MiB of 4 KiB pages.
pub(super) const WAL_FRAMES_LIMIT: i64 = 8192;

/// The checkpointing thread: [`CHECKPOINT_EVERY`] after its last checkpoint, if something was
/// committed since, copies the WAL into the database file on its own connection. PASSIVE
/// never blocks the writer, which goes on appending meanwhile, so under a steady load the WAL
/// is never all copied and would grow without end. Past
/// [`WAL_FRAMES_LIMIT`] frames this thread catches up (checkpoints right after each other,
/// each copying what came during the last, until one is quick), then asks the writer to copy
/// the few frames appended since (`tail_wanted`), after which the writer's next commit starts
/// the WAL over; and it stays idle until the writer has, since its own copying would dirty the
/// file under the writer's sync of it.
///
/// SQLite syncs the database file only after a checkpoint that copied the whole WAL (until
/// then every frame is still in the WAL, which a recovery replays), so under a steady load the
/// copied pages piled up unsynced and the writer's tail checkpoint synced them all, while no
/// write ran. This thread syncs the file after each of its checkpoints instead.
pub(super) fn run_checkpointer(
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
pub(super) fn catch_up(conn: &Connection, db: &std::fs::File) {
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
pub(super) fn copy_and_sync(
    conn: &Connection,
    db: &std::fs::File,
) -> Result<Option<(i64, i64)>, String> {
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

/// Copies committed pages from the WAL into the database file: (frames in the WAL, frames
/// copied). When all were, with nothing appended meanwhile, the next write starts the WAL
/// over. PASSIVE never waits: pages a reader's older snapshot still needs are left for the
/// next try, and another connection's checkpoint under way makes it busy (an error).
pub(super) fn checkpoint(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
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
