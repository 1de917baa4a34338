//! Operations: what an operator sees of a running server and how it is stopped. `GET /metrics`
//! ([`metrics`]), the access log ([`log`]) and SIGTERM/SIGINT ([`signals`]).
//!
//! The HTTP server calls in here around each request through a [`Trace`]; the store's writer
//! reports its group sizes to a [`metrics::Histogram`] it was handed. Nothing here knows SQL or
//! a JSON shape of the API.

pub mod log;
pub mod metrics;
pub mod signals;

use crate::app::App;
use crate::http::request::Method;
use crate::http::router;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

/// What the metrics and the access log learn about one request while it is handled.
#[derive(Debug)]
pub struct Trace {
    pub method: Method,
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
    pub fn new(method: Method, target: &str, remote: IpAddr) -> Trace {
        Trace {
            method,
            route: router::template(target),
            remote: Some(remote),
            client_id: None,
        }
    }
}

/// A request whose reply is on its way: its metrics and access-log line are written when this
/// is dropped, which is when the last byte of the reply went out, or the reply was cut off
/// (a reply may wait for a slow client long after its handler returned).
pub struct Answered {
    pub app: Arc<App>,
    pub trace: Trace,
    pub status: u16,
    /// When a worker took the request.
    pub started: Instant,
}

impl Drop for Answered {
    fn drop(&mut self) {
        let elapsed = self.started.elapsed();
        let method = self.trace.method.as_str();
        self.app
            .metrics
            .observe(method, self.trace.route, self.status, elapsed);
        self.app.access_log.write(&self.trace, self.status, elapsed);
    }
}
