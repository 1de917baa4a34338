//! Counters that lock a key out for a while: login attempts per address and per client at an
//! address, missed code look-ups per client.
//!
//! Memory stays bounded: at most [`MAX_KEYS`] keys are tracked; when full, expired windows are
//! dropped, and if that is not enough the oldest windows go first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MAX_KEYS: usize = 10_000;

pub struct Throttle {
    limit: u32,
    window: Duration,
    keys: Mutex<HashMap<String, (Instant, u32)>>,
}

impl Throttle {
    /// Allows `limit` failures per key within `window`; past that the key waits out the window.
    pub fn new(limit: u32, window: Duration) -> Throttle {
        Throttle {
            limit,
            window,
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(seconds to wait)` while `key` is locked out.
    pub fn blocked(&self, key: &str) -> Option<u64> {
        let keys = self.keys.lock().ok()?;
        let (start, failures) = keys.get(key)?;
        let elapsed = start.elapsed();
        (*failures >= self.limit && elapsed < self.window)
            .then(|| (self.window - elapsed).as_secs().max(1))
    }

    pub fn fail(&self, key: &str) {
        let _ = self.count(key, false);
    }

    /// Counts an attempt of `key` before it is made: `Err(seconds to wait)` instead when `key`
    /// has used up its window. Counting and checking are one step, so parallel attempts never
    /// get past the limit together. [`Throttle::refund`] takes back one that proved right.
    pub fn attempt(&self, key: &str) -> Result<(), u64> {
        self.count(key, true)
    }

    /// Takes back one attempt of `key`.
    pub fn refund(&self, key: &str) {
        if let Ok(mut keys) = self.keys.lock() {
            if let Some(entry) = keys.get_mut(key) {
                entry.1 = entry.1.saturating_sub(1);
            }
        }
    }

    /// Adds one to `key`'s count; with `check`, not past the limit (then the wait is returned).
    fn count(&self, key: &str, check: bool) -> Result<(), u64> {
        // The counts stay meaningful after a panic elsewhere: keep using them.
        let mut keys = self
            .keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        if keys.len() >= MAX_KEYS && !keys.contains_key(key) {
            keys.retain(|_, (start, _)| now.duration_since(*start) < self.window);
            if keys.len() >= MAX_KEYS {
                let mut starts: Vec<Instant> = keys.values().map(|(s, _)| *s).collect();
                starts.sort_unstable();
                let cutoff = starts[starts.len() / 2];
                keys.retain(|_, (start, _)| *start > cutoff);
            }
        }
        let entry = keys.entry(key.to_string()).or_insert((now, 0));
        let elapsed = now.duration_since(entry.0);
        if elapsed >= self.window {
            *entry = (now, 0);
        } else if check && entry.1 >= self.limit {
            return Err((self.window - elapsed).as_secs().max(1));
        }
        entry.1 += 1;
        Ok(())
    }

    pub fn succeed(&self, key: &str) {
        if let Ok(mut keys) = self.keys.lock() {
            keys.remove(key);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.keys.lock().map(|k| k.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_out_after_the_limit_and_forgets_on_success() {
        let t = Throttle::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert_eq!(t.blocked("a"), None);
            t.fail("a");
        }
        assert!(t.blocked("a").is_some_and(|s| (1..=60).contains(&s)));
        assert_eq!(t.blocked("b"), None);
        t.succeed("a");
        assert_eq!(t.blocked("a"), None);
    }

    #[test]
    fn attempts_count_before_they_are_made_and_refunds_give_them_back() {
        let t = Throttle::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert_eq!(t.attempt("a"), Ok(()));
        }
        assert!(t.attempt("a").is_err_and(|s| (1..=60).contains(&s)));
        t.refund("a");
        assert_eq!(t.attempt("a"), Ok(()));
        assert!(t.attempt("a").is_err());
        assert_eq!(t.attempt("b"), Ok(()));
    }

    #[test]
    fn lockouts_end_with_the_window() {
        let t = Throttle::new(1, Duration::from_millis(50));
        t.fail("a");
        assert!(t.blocked("a").is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(t.blocked("a"), None);
    }

    #[test]
    fn memory_is_bounded_under_a_spray_of_keys() {
        let t = Throttle::new(1, Duration::from_secs(60));
        for i in 0..(MAX_KEYS * 3) {
            t.fail(&format!("addr-{i}"));
        }
        assert!(t.len() <= MAX_KEYS);
    }
}
