//! The API's per-client rate limit: a token bucket per client id that refills at `rate` a second
//! up to `burst`. Each authorised request takes one token; an empty bucket is a 429 with the
//! seconds until the next token.
//!
//! Memory stays bounded: at most [`MAX_KEYS`] buckets are kept; when full, buckets that have
//! refilled completely (indistinguishable from new ones) are dropped first, then the stalest.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

const MAX_KEYS: usize = 10_000;

/// What a request saw of its bucket, for the `RateLimit-*` headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset: u64,
}

pub struct RateLimiter {
    /// Tokens a second; 0 turns the limit off.
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// `rate` requests a second per client, bursts of up to twice that (at least 10).
    pub fn new(rate: u32) -> RateLimiter {
        RateLimiter {
            rate: f64::from(rate),
            burst: f64::from(rate.saturating_mul(2).max(10)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn is_off(&self) -> bool {
        self.rate == 0.0
    }

    /// Takes one token of `key`'s bucket at `now`: the quota left, or the seconds to wait.
    pub fn take(&self, key: &str, now: Instant) -> Result<Quota, u64> {
        let mut buckets = match self.buckets.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !buckets.contains_key(key) {
            if buckets.len() >= MAX_KEYS {
                self.evict(&mut buckets, now);
            }
            // A client's first request: its key is copied once, not on every request.
            buckets.insert(key.to_string(), (self.burst, now));
        }
        let Some((tokens, at)) = buckets.get_mut(key) else {
            return Err(1);
        };
        *tokens = (*tokens + now.saturating_duration_since(*at).as_secs_f64() * self.rate)
            .min(self.burst);
        *at = now;
        if *tokens < 1.0 {
            return Err(((1.0 - *tokens) / self.rate).ceil().max(1.0) as u64);
        }
        *tokens -= 1.0;
        Ok(Quota {
            limit: self.burst as u32,
            remaining: *tokens as u32,
            reset: ((self.burst - *tokens) / self.rate).ceil() as u64,
        })
    }

    fn evict(&self, buckets: &mut HashMap<String, (f64, Instant)>, now: Instant) {
        let full_after = self.burst / self.rate;
        buckets.retain(|_, (tokens, at)| {
            *tokens + now.saturating_duration_since(*at).as_secs_f64() * self.rate < self.burst
                && now.saturating_duration_since(*at).as_secs_f64() < full_after
        });
        if buckets.len() >= MAX_KEYS {
            if let Some(stalest) = buckets
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone())
            {
                buckets.remove(&stalest);
            }
        }
    }

    #[cfg(test)]
    fn keys(&self) -> usize {
        self.buckets.lock().map(|b| b.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_the_rate() {
        let r = RateLimiter::new(5); // burst 10
        let t = Instant::now();
        for i in 0..10 {
            let q = r.take("a", t).expect("within the burst");
            assert_eq!((q.limit, q.remaining), (10, 9 - i));
        }
        assert_eq!(r.take("a", t), Err(1));
        // 0.2 s later one token is back, and only one.
        let later = t + Duration::from_millis(200);
        assert!(r.take("a", later).is_ok());
        assert!(r.take("a", later).is_err());
        // Another client has its own bucket.
        assert!(r.take("b", later).is_ok());
    }

    #[test]
    fn reset_counts_the_seconds_to_full() {
        let r = RateLimiter::new(1); // burst 10
        let t = Instant::now();
        let q = r.take("a", t).unwrap();
        assert_eq!((q.remaining, q.reset), (9, 1));
        for _ in 0..4 {
            r.take("a", t).unwrap();
        }
        assert_eq!(r.take("a", t).unwrap().reset, 6);
    }

    #[test]
    fn buckets_stay_bounded() {
        let r = RateLimiter::new(1000);
        let t = Instant::now();
        for i in 0..(MAX_KEYS + 500) {
            let _ = r.take(&format!("client-{i}"), t);
        }
        assert!(r.keys() <= MAX_KEYS);
    }
}
