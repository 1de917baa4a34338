//! What every worker shares: the store, the server's settings, the token cache, the throttles
//! and the idempotency keys in flight.

use crate::auth::rate::RateLimiter;
use crate::auth::throttle::Throttle;
use crate::auth::token::TokenCache;
use crate::domain::money::Currency;
use crate::store::Store;
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
    /// Failed logins, keyed `client:ID` and `addr:IP`.
    pub logins: Throttle,
    /// Missed code look-ups, keyed by client id.
    pub guesses: Throttle,
    /// Authorised API requests per client (`--rate-limit`).
    pub rate: RateLimiter,
    /// `(client_id, Idempotency-Key)` pairs whose first request is still running.
    pub in_flight: Mutex<HashSet<(String, String)>>,
}

impl App {
    /// `rate_limit`: API requests a second per client (0: no limit).
    pub fn new(store: Store, offset: UtcOffset, currency: Currency, rate_limit: u32) -> App {
        App {
            store,
            offset,
            currency,
            tokens: Arc::new(TokenCache::default()),
            logins: Throttle::new(10, Duration::from_secs(60)),
            guesses: Throttle::new(30, Duration::from_secs(60)),
            rate: RateLimiter::new(rate_limit),
            in_flight: Mutex::new(HashSet::new()),
        }
    }
}
