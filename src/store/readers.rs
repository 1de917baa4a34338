//! The readers the server's workers share. A worker borrows one for a request and gives it
//! back after; a reader is opened only when none is free, so there are never more readers
//! than workers. The few readers most in use get the large page caches: only about one
//! worker per core runs requests at a time (`crate::http::turns`), and SQLite's page cache is
//! per connection, so a look-up finds the b-trees' inner pages in memory only if the same
//! few connections serve the look-ups. Readers beyond those few (workers waiting on a commit
//! while holding one) get small caches, so that all of them together stay within
//! [`READER_CACHE_BUDGET_KIB`].

use super::{Db, Store, StoreError, READER_CACHE_BUDGET_KIB};
use std::ops::Deref;
use std::sync::{Mutex, MutexGuard};

/// Readers with the large caches.
const HOT: usize = 4;
/// The large cache, in KiB.
const HOT_KIB: usize = 4096;
/// The smallest cache a reader gets, in KiB.
const COLD_MIN_KIB: usize = 128;

pub struct Readers {
    /// Page cache of the readers past the first [`HOT`], in KiB.
    cold_kib: usize,
    state: Mutex<Idle>,
}

#[derive(Default)]
struct Idle {
    /// Free readers with a large cache, the last given back on top.
    hot: Vec<Db>,
    /// Free readers with a small cache, the last given back on top.
    cold: Vec<Db>,
    /// Large-cache readers opened so far.
    hot_opened: usize,
}

/// A reader lent for one request; given back when dropped.
pub struct Lent<'a> {
    readers: &'a Readers,
    db: Option<Db>,
    hot: bool,
}

impl Readers {
    /// Readers for `workers` workers (none opened yet).
    pub fn new(workers: usize) -> Readers {
        let cold = workers.saturating_sub(HOT).max(1);
        let left = READER_CACHE_BUDGET_KIB.saturating_sub(HOT * HOT_KIB);
        Readers {
            cold_kib: (left / cold).clamp(COLD_MIN_KIB, HOT_KIB),
            state: Mutex::new(Idle::default()),
        }
    }

    fn idle(&self) -> MutexGuard<'_, Idle> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A free reader, a large-cache one first; a new one when none is free (503 if it cannot
    /// be opened).
    pub fn lend<'a>(&'a self, store: &Store) -> Result<Lent<'a>, StoreError> {
        let mut idle = self.idle();
        if let Some(db) = idle.hot.pop() {
            return Ok(self.lent(db, true));
        }
        if let Some(db) = idle.cold.pop() {
            return Ok(self.lent(db, false));
        }
        let hot = idle.hot_opened < HOT;
        if hot {
            idle.hot_opened += 1;
        }
        drop(idle);
        match open(store, if hot { HOT_KIB } else { self.cold_kib }) {
            Ok(db) => Ok(self.lent(db, hot)),
            // Out of descriptors, say: this request gets a 503, the next may find one free.
            Err(err) => {
                if hot {
                    self.idle().hot_opened -= 1;
                }
                eprintln!("vouchd: cannot open a database reader: {err}");
                Err(StoreError::Unavailable)
            }
        }
    }

    fn lent(&self, db: Db, hot: bool) -> Lent<'_> {
        Lent {
            readers: self,
            db: Some(db),
            hot,
        }
    }

    /// How many readers are free, large-cache and small-cache.
    #[cfg(test)]
    fn free(&self) -> (usize, usize) {
        let idle = self.idle();
        (idle.hot.len(), idle.cold.len())
    }
}

/// A new reader with a page cache of `kib`.
fn open(store: &Store, kib: usize) -> Result<Db, StoreError> {
    let db = store.reader()?;
    if let Some(conn) = db.sqlite() {
        conn.pragma_update(None, "cache_size", -(kib as i64))?;
    }
    Ok(db)
}

impl Deref for Lent<'_> {
    type Target = Db;

    fn deref(&self) -> &Db {
        self.db.as_ref().expect("a lent reader until dropped")
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(db) = self.db.take() {
            let mut idle = self.readers.idle();
            if self.hot {
                idle.hot.push(db);
            } else {
                idle.cold.push(db);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SyncMode;

    #[test]
    fn the_large_cache_readers_are_lent_first_and_one_is_opened_only_when_none_is_free() {
        let dir = std::env::temp_dir().join(format!("vouchd-readers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let store = Store::open(&dir.join("r.db"), SyncMode::Normal).expect("store");
        let readers = Readers::new(64);
        assert_eq!(readers.cold_kib, (24 * 1024 - 4 * 4096) / 60);
        let cache = |db: &Db| -> i64 {
            db.sqlite()
                .expect("sqlite")
                .pragma_query_value(None, "cache_size", |r| r.get(0))
                .expect("cache_size")
        };
        {
            let held: Vec<Lent> = (0..6)
                .map(|_| readers.lend(&store).expect("lend"))
                .collect();
            let sizes: Vec<i64> = held.iter().map(|db| cache(db)).collect();
            assert_eq!(sizes[..4], [-4096; 4]);
            assert_eq!(sizes[4..], [-(readers.cold_kib as i64); 2]);
        }
        assert_eq!(readers.free(), (4, 2));
        // One at a time, always a large-cache one, and nothing new is opened.
        for _ in 0..10 {
            let db = readers.lend(&store).expect("lend");
            assert_eq!(cache(&db), -4096);
        }
        assert_eq!(readers.free(), (4, 2));
        store.close();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
