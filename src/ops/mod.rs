//! Operations: what an operator sees of a running server and how it is stopped. `GET /metrics`
//! ([`metrics`]), the access log ([`log`]) and SIGTERM/SIGINT ([`signals`]).
//!
//! The HTTP server calls in here around each request through a [`Trace`]; the store's writer
//! reports its group sizes to a [`metrics::Histogram`] it was handed. Nothing here knows SQL or
//! a JSON shape of the API.

pub mod log;
pub mod metrics;
pub mod signals;
pub mod webhooks;

use std::net::IpAddr;

/// What the metrics and the access log learn about one request while it is handled.
#[derive(Debug)]
pub struct Trace {
    /// The method's name (any the server does not serve is `OTHER`).
    pub method: &'static str,
    /// The template of the route the path matched (`/v1/vouchers/{id}`), never the raw path:
    /// ids and voucher codes stay out of the log, and the metrics keep a fixed set of series.
    pub route: &'static str,
    /// The client's address: the peer's, or the one a trusted proxy forwards.
    pub remote: Option<IpAddr>,
    /// The client a valid bearer token (or a successful login) spoke for.
    pub client_id: Option<String>,
}

impl Trace {
    /// Method, route template and peer of a request as it arrives, before anything is read.
    pub fn new(method: &'static str, route: &'static str, remote: IpAddr) -> Trace {
        Trace {
            method,
            route,
            remote: Some(remote),
            client_id: None,
        }
    }
}
