//! The writer, durability and checkpoints, tried on real database files.

use super::durable::wal_path;
use super::*;
use rusqlite::{Connection, OpenFlags};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
        .query_value("SELECT COUNT(*) FROM settings", &[])
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
            .write::<_, StoreError, _>(|conn| Ok(conn.query_value("PRAGMA synchronous", &[])?))
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
                                &[&format!("k{i}")],
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
            conn.execute("INSERT INTO settings (key, value) VALUES ('k', 'v')", &[])?;
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
    let store = Store::open_with(&path, SyncMode::Full, Some(unsyncable), Arc::new(())).unwrap();
    let insert = |key: &'static str| {
        store.write::<_, StoreError, _>(move |conn| {
            conn.execute(
                "INSERT INTO settings (key, value) VALUES (?1, 'x')",
                &[&key],
            )?;
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
        conn.execute(
            "INSERT INTO settings (key, value) VALUES ('late', 'x')",
            &[],
        )?;
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
        conn.execute(
            "INSERT INTO settings (key, value) VALUES ('slow', 'x')",
            &[],
        )?;
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
            conn.batch("CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB)")?;
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
                                &[&w, &blob],
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
            conn.execute("INSERT INTO settings (key, value) VALUES ('k', 'v')", &[])?;
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
