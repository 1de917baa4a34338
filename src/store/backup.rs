//! `vouchd backup`: a consistent copy of a database that a server may be writing to, with
//! SQLite's online backup API.
//!
//! The source connection holds one read transaction for the whole copy, so every step reads
//! the same WAL snapshot: the copy is the database as of the moment the backup began, and the
//! server's writes meanwhile neither restart the backup (as they would between steps without
//! that transaction) nor wait for it (WAL readers do not block the writer). Pages are copied a
//! few hundred at a time with a short pause between steps, so the backup leaves the disk to
//! the server now and then. The copy is written to a temporary file beside the destination and
//! put in place only when complete, so a destination path never names half a database.

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use std::fs::File;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Pages per step (1 MiB at SQLite's default 4 KiB pages).
const PAGES_PER_STEP: i32 = 256;
/// The pause between two steps.
const PAUSE: Duration = Duration::from_millis(5);
/// How long a step may keep finding the database busy before the backup gives up.
const BUSY_LIMIT: Duration = Duration::from_secs(30);
/// How long opening the source waits on a lock held by a writer.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What a finished backup copied.
#[derive(Debug)]
pub struct Copied {
    pub pages: i32,
    pub bytes: u64,
    pub steps: u32,
}

/// Copies the database at `source` to `dest`, which must not exist.
pub fn backup(source: &Path, dest: &Path) -> Result<Copied, String> {
    if super::pg_url(source).is_some() {
        return Err(
            "vouchd backup copies SQLite database files; a PostgreSQL database is backed \
                    up with PostgreSQL's own tools (pg_dump, or base backups with WAL \
                    archiving for point-in-time recovery)"
                .into(),
        );
    }
    if dest.exists() {
        return Err(format!("{} exists already", dest.display()));
    }
    let temp = temp_path(dest)?;
    let result = copy_to(source, &temp, || std::thread::sleep(PAUSE)).and_then(|copied| {
        place(&temp, dest)?;
        Ok(copied)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
        let mut journal = temp.into_os_string();
        journal.push("-journal");
        let _ = std::fs::remove_file(journal);
    }
    result
}

/// `DIR/.NAME.backup-PID` beside `dest`: the same file system, so the final rename is atomic.
fn temp_path(dest: &Path) -> Result<PathBuf, String> {
    let name = dest
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{} does not name a file", dest.display()))?;
    Ok(dest.with_file_name(format!(".{name}.backup-{}", std::process::id())))
}

/// Copies `source` into the new file `temp`, calling `pause` between two steps.
fn copy_to(source: &Path, temp: &Path, pause: impl FnMut()) -> Result<Copied, String> {
    if !source.is_file() {
        return Err(format!("{} is not a database file", source.display()));
    }
    // Read-write without CREATE: a mistyped path must not leave an empty database behind,
    // and a WAL database needs write access to its shared-memory index even to read.
    let src = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("cannot open {}: {e}", source.display()))?;
    let failed = |e: rusqlite::Error| format!("backup of {} failed: {e}", source.display());
    src.busy_timeout(BUSY_TIMEOUT).map_err(failed)?;
    src.pragma_update(None, "query_only", "ON")
        .map_err(failed)?;
    // The snapshot every step reads: a read transaction starts at its first read.
    src.execute_batch("BEGIN").map_err(failed)?;
    src.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(failed)?;
    let mut dst =
        Connection::open(temp).map_err(|e| format!("cannot create {}: {e}", temp.display()))?;
    let copied = run_steps(&src, &mut dst, pause).map_err(failed)?;
    let _ = src.execute_batch("COMMIT");
    dst.close()
        .map_err(|(_, e)| format!("cannot close {}: {e}", temp.display()))?;
    // SQLite synced its commit; sync once more so the rename below publishes a file whose
    // contents are on disk.
    File::open(temp)
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("cannot sync {}: {e}", temp.display()))?;
    Ok(Copied {
        bytes: std::fs::metadata(temp).map(|m| m.len()).unwrap_or(0),
        ..copied
    })
}

fn run_steps(
    src: &Connection,
    dst: &mut Connection,
    mut pause: impl FnMut(),
) -> rusqlite::Result<Copied> {
    let backup = Backup::new(src, dst)?;
    let mut steps = 0;
    let mut busy_since: Option<Instant> = None;
    loop {
        let step = backup.step(PAGES_PER_STEP)?;
        steps += 1;
        match step {
            StepResult::Done => break,
            StepResult::More => busy_since = None,
            // Busy or locked: retry after the pause, for a while.
            _ => {
                let since = *busy_since.get_or_insert_with(Instant::now);
                if since.elapsed() > BUSY_LIMIT {
                    return Err(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                        Some("the database stayed locked".into()),
                    ));
                }
            }
        }
        pause();
    }
    Ok(Copied {
        pages: backup.progress().pagecount,
        bytes: 0,
        steps,
    })
}

/// Moves the finished copy to `dest` without replacing a file that appeared there meanwhile:
/// a hard link fails if `dest` exists, where a rename would overwrite it.
fn place(temp: &Path, dest: &Path) -> Result<(), String> {
    match std::fs::hard_link(temp, dest) {
        Ok(()) => {
            let _ = std::fs::remove_file(temp);
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            return Err(format!("{} exists already", dest.display()));
        }
        // A file system without hard links: rename, having looked once more.
        Err(_) => {
            if dest.exists() {
                return Err(format!("{} exists already", dest.display()));
            }
            std::fs::rename(temp, dest)
                .map_err(|e| format!("cannot move the copy to {}: {e}", dest.display()))?;
        }
    }
    // The directory entry too must reach the disk for the copy to survive a power cut.
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system's temp dir, removed on drop.
    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Dir {
            let path = std::env::temp_dir().join(format!(
                "vouchd-backup-{name}-{}-{:?}",
                std::process::id(),
                std::time::SystemTime::now()
            ));
            std::fs::create_dir_all(&path).expect("temp dir");
            Dir(path)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A WAL database of about 700 pages: `rows` rows of 1 KiB.
    fn filled(path: &Path, rows: i64) -> Connection {
        let conn = Connection::open(path).expect("open");
        conn.pragma_update(None, "journal_mode", "WAL")
            .expect("wal");
        conn.execute_batch(
            "CREATE TABLE t (n INTEGER PRIMARY KEY, data BLOB NOT NULL);
             BEGIN;",
        )
        .expect("schema");
        for n in 0..rows {
            conn.execute("INSERT INTO t (n, data) VALUES (?1, zeroblob(1024))", [n])
                .expect("insert");
        }
        conn.execute_batch("COMMIT").expect("commit");
        conn
    }

    fn count(path: &Path) -> i64 {
        let conn = Connection::open(path).expect("open the copy");
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("integrity_check");
        assert_eq!(check, "ok");
        conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .expect("count")
    }

    #[test]
    fn a_backup_copies_the_snapshot_it_began_with_while_writes_go_on() {
        let dir = Dir::new("snapshot");
        let source = dir.0.join("source.db");
        let writer = filled(&source, 2000);
        let mut written = 0;
        let copied = copy_to(&source, &dir.0.join("copy.db"), || {
            // Another connection commits between every two steps, as a server would. Without
            // the snapshot each of these commits would start the copy over, for ever.
            assert!(written < 500, "the backup keeps starting over");
            for _ in 0..5 {
                writer
                    .execute("INSERT INTO t (data) VALUES (zeroblob(1024))", [])
                    .expect("a write during the backup");
                written += 1;
            }
        })
        .expect("backup");
        // No step started over, though every pause committed writes ...
        let steps = (copied.pages + PAGES_PER_STEP - 1) / PAGES_PER_STEP;
        assert!(steps > 2, "{copied:?}");
        assert_eq!(copied.steps as i32, steps, "{copied:?}");
        assert_eq!(written, 5 * (steps - 1));
        // ... and the copy is the database as it was when the backup began.
        assert_eq!(count(&dir.0.join("copy.db")), 2000);
        assert_eq!(count(&source), 2000 + i64::from(written));
    }

    #[test]
    fn a_backup_refuses_an_existing_destination_and_leaves_no_temp_file() {
        let dir = Dir::new("exists");
        let source = dir.0.join("source.db");
        drop(filled(&source, 10));
        let dest = dir.0.join("copy.db");
        let copied = backup(&source, &dest).expect("first backup");
        assert!(copied.bytes > 0);
        assert_eq!(count(&dest), 10);
        let err = backup(&source, &dest).expect_err("a second backup to the same path");
        assert!(err.contains("exists already"), "{err}");
        let mut names: Vec<String> = std::fs::read_dir(&dir.0)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
            .filter(|n| !n.starts_with("source.db"))
            .collect();
        names.sort();
        assert_eq!(names, ["copy.db"]);
    }
}
