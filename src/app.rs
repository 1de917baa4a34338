//! What every worker shares: the store, the server's settings, the token cache, the throttles,
//! the idempotency keys in flight, the metrics and the access log.

use crate::auth::rate::RateLimiter;
use crate::auth::throttle::Throttle;
use crate::auth::token::TokenCache;
use crate::domain::money::Currency;
use crate::ops::log::AccessLog;
use crate::ops::metrics::{Histogram, Metrics};
use crate::store::{GroupObserver, Store};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::UtcOffset;

pub struct App {
    pub store: Store,
    /// Where the shop's days end: date-only values and rendered timestamps use it.
    pub offset: UtcOffset,
    /// The currency of vouchers and tickets that name none.
    pub currency: Currency,
    pub tokens: Arc<TokenCache>,
    /// Login attempts, keyed `addr:IP` and `client:ID@IP`.
    pub logins: Throttle,
    /// Missed code look-ups, keyed by client id.
    pub guesses: Throttle,
    /// Authorised API requests per client (`--rate-limit`).
    pub rate: RateLimiter,
    /// `(client_id, Idempotency-Key)` pairs whose first request is still running.
    pub in_flight: Mutex<HashSet<(String, String)>>,
    pub metrics: Metrics,
    pub access_log: AccessLog,
    /// `--public-url`, checked and without a trailing `/`: the base of links when given.
    pub public_url: Option<String>,
}

impl App {
    /// `rate_limit`: API requests a second per client (0: no limit).
    /// `batch_sizes`: the histogram the store was opened with ([`GroupSizes`]).
    pub fn new(
        store: Store,
        batch_sizes: Arc<Histogram>,
        offset: UtcOffset,
        currency: Currency,
        rate_limit: u32,
    ) -> App {
        App {
            metrics: Metrics::new(batch_sizes, store.wal_syncs()),
            store,
            offset,
            currency,
            tokens: Arc::new(TokenCache::default()),
            logins: Throttle::new(10, Duration::from_secs(60)),
            guesses: Throttle::new(30, Duration::from_secs(60)),
            rate: RateLimiter::new(rate_limit),
            in_flight: Mutex::new(HashSet::new()),
            access_log: AccessLog::default(),
            public_url: None,
        }
    }
}

/// The writer's group sizes into the metrics' histogram.
pub struct GroupSizes(pub Arc<Histogram>);

impl GroupObserver for GroupSizes {
    fn group_committed(&self, operations: u64) {
        self.0.observe(operations);
    }
}
