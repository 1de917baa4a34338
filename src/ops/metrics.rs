//! The counters behind `GET /metrics`, rendered in the Prometheus text exposition format 0.0.4.
//!
//! Every update is lock-light: the per-route counters sit behind one `Mutex` taken once per
//! request for a few map operations, the rest are atomics. Labels come only from fixed sets
//! (route templates, the method enum, status codes, currencies the domain accepted, entry
//! types), so no request can grow the number of series: a raw path never becomes a label.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `Content-Type` of the exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Latency bucket bounds in microseconds (0.5 ms to 10 s): a cached read takes well under a
/// millisecond, a group-committed write a few, an argon2 login tens, an export seconds.
const LATENCY_BOUNDS_US: &[u64] = &[
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];

/// Writer group sizes: 1 up to the writer's cap of 256 operations per transaction.
const BATCH_BOUNDS: &[u64] = &[1, 2, 4, 8, 16, 32, 64, 128, 256];

/// A histogram over integer observations with fixed upper bounds; `divisor` turns the integer
/// unit into the rendered one (microseconds into seconds). Dividing, not multiplying by 1e-6,
/// renders 500 µs as exactly `0.0005`.
pub struct Histogram {
    bounds: &'static [u64],
    divisor: f64,
    /// One count per bound plus one for `+Inf`, not cumulative (summed when rendered).
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [u64], divisor: f64) -> Histogram {
        Histogram {
            bounds,
            divisor,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    /// The histogram of the writer's group sizes (operations per transaction).
    pub fn batch_sizes() -> Histogram {
        Histogram::new(BATCH_BOUNDS, 1.0)
    }

    fn latency() -> Histogram {
        Histogram::new(LATENCY_BOUNDS_US, 1e6)
    }

    pub fn observe(&self, value: u64) {
        let slot = self
            .bounds
            .iter()
            .position(|&bound| value <= bound)
            .unwrap_or(self.bounds.len());
        if let Some(count) = self.counts.get(slot) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// `_bucket`, `_sum` and `_count` lines; `labels` is empty or `a="b",` (with the comma).
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let le = match self.bounds.get(i) {
                Some(&bound) => number(bound as f64 / self.divisor),
                None => "+Inf".to_string(),
            };
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum.load(Ordering::Relaxed) as f64 / self.divisor;
        let labels = match labels.trim_end_matches(',') {
            "" => String::new(),
            some => format!("{{{some}}}"),
        };
        let _ = writeln!(out, "{name}_sum{labels} {}", number(sum));
        // The count is the buckets' total, so `+Inf` and `_count` always agree.
        let _ = writeln!(out, "{name}_count{labels} {cumulative}");
    }
}

/// A value that goes up and down, such as open connections.
#[derive(Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    /// Raises the gauge until the guard is dropped, also when a panic unwinds past it.
    pub fn hold(&self) -> GaugeGuard<'_> {
        self.inc();
        GaugeGuard(self)
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }

    /// For a value read from elsewhere (the connection layer's own count).
    pub fn set(&self, value: i64) {
        self.0.store(value, Ordering::Relaxed);
    }
}

pub struct GaugeGuard<'a>(&'a Gauge);

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// What a ledger write did, for the charge counters: the operation, not the entry's type, so a
/// capture (which writes a `charge` entry) is counted as a capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChargeKind {
    Charge,
    Use,
    Refund,
    Capture,
    Recharge,
}

impl ChargeKind {
    fn as_str(self) -> &'static str {
        match self {
            ChargeKind::Charge => "charge",
            ChargeKind::Use => "use",
            ChargeKind::Refund => "refund",
            ChargeKind::Capture => "capture",
            ChargeKind::Recharge => "recharge",
        }
    }
}

/// Requests and latency of one (method, route template).
struct RouteStats {
    statuses: BTreeMap<u16, u64>,
    latency: Histogram,
}

#[derive(Default)]
struct ChargeStats {
    count: u64,
    /// Wide enough that no run of the largest amounts can wrap it.
    minor: u128,
}

pub struct Metrics {
    routes: Mutex<BTreeMap<(&'static str, &'static str), RouteStats>>,
    charges: Mutex<BTreeMap<(String, ChargeKind), ChargeStats>>,
    /// Operations per writer transaction, observed by the store's writer thread.
    batch_sizes: Arc<Histogram>,
    /// Syncs of the WAL by the store's answering thread (`--sync full`).
    wal_syncs: Arc<AtomicU64>,
    /// Requests a worker is handling right now.
    pub in_flight: Gauge,
    /// Open client connections, counted by the connection layer.
    pub connections: Gauge,
    /// Webhook delivery attempts by outcome, counted by the delivery threads.
    pub webhooks: Arc<WebhookOutcomes>,
}

/// Webhook delivery attempts: answered 2xx, failed (to be tried again), and failed for the
/// last time (the endpoint was disabled).
#[derive(Default)]
pub struct WebhookOutcomes {
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    pub disabled: AtomicU64,
}

impl Metrics {
    pub fn new(batch_sizes: Arc<Histogram>, wal_syncs: Arc<AtomicU64>) -> Metrics {
        Metrics {
            routes: Mutex::new(BTreeMap::new()),
            charges: Mutex::new(BTreeMap::new()),
            batch_sizes,
            wal_syncs,
            in_flight: Gauge::default(),
            connections: Gauge::default(),
            webhooks: Arc::default(),
        }
    }

    /// Counts one answered request under its method, route template and status.
    pub fn observe(
        &self,
        method: &'static str,
        route: &'static str,
        status: u16,
        elapsed: Duration,
    ) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        // A poisoned lock only means another request panicked mid-update: the counts are
        // still plain numbers, so keep counting.
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let stats = routes.entry((method, route)).or_insert_with(|| RouteStats {
            statuses: BTreeMap::new(),
            latency: Histogram::latency(),
        });
        *stats.statuses.entry(status).or_insert(0) += 1;
        stats.latency.observe(micros);
    }

    /// Counts one committed ledger write of `minor` units of `currency`.
    pub fn charged(&self, kind: ChargeKind, currency: &str, minor: i64) {
        let mut charges = self.charges.lock().unwrap_or_else(|e| e.into_inner());
        let stats = charges.entry((currency.to_string(), kind)).or_default();
        stats.count += 1;
        stats.minor += u128::from(minor.unsigned_abs());
    }

    /// The whole exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8 << 10);
        self.render_requests(&mut out);
        header(
            &mut out,
            "vouchd_http_requests_in_flight",
            "gauge",
            "Requests being handled by a worker.",
        );
        let _ = writeln!(
            out,
            "vouchd_http_requests_in_flight {}",
            self.in_flight.get()
        );
        header(
            &mut out,
            "vouchd_http_connections_open",
            "gauge",
            "Open client connections.",
        );
        let _ = writeln!(
            out,
            "vouchd_http_connections_open {}",
            self.connections.get()
        );
        self.render_charges(&mut out);
        header(
            &mut out,
            "vouchd_writer_batch_size",
            "histogram",
            "Write operations committed together in one writer transaction.",
        );
        self.batch_sizes
            .render(&mut out, "vouchd_writer_batch_size", "");
        header(
            &mut out,
            "vouchd_wal_syncs_total",
            "counter",
            "Syncs of the write-ahead log, each making every group committed before it durable (--sync full).",
        );
        let _ = writeln!(
            out,
            "vouchd_wal_syncs_total {}",
            self.wal_syncs.load(Ordering::Relaxed)
        );
        header(
            &mut out,
            "vouchd_webhook_deliveries_total",
            "counter",
            "Webhook delivery attempts, by outcome: delivered (2xx), failed (tried again), disabled (failed for the whole retry window).",
        );
        let w = &self.webhooks;
        for (outcome, n) in [
            ("delivered", &w.delivered),
            ("failed", &w.failed),
            ("disabled", &w.disabled),
        ] {
            let _ = writeln!(
                out,
                "vouchd_webhook_deliveries_total{{outcome=\"{outcome}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        out
    }

    fn render_requests(&self, out: &mut String) {
        let routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        header(
            out,
            "vouchd_http_requests_total",
            "counter",
            "HTTP requests answered, by method, route template and status.",
        );
        for ((method, route), stats) in routes.iter() {
            for (status, count) in &stats.statuses {
                let _ = writeln!(
                    out,
                    "vouchd_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {count}",
                    escape(route)
                );
            }
        }
        header(
            out,
            "vouchd_http_request_duration_seconds",
            "histogram",
            "Time from a worker taking a request to the last byte of its reply, by route.",
        );
        for ((method, route), stats) in routes.iter() {
            let labels = format!("method=\"{method}\",route=\"{}\",", escape(route));
            stats
                .latency
                .render(out, "vouchd_http_request_duration_seconds", &labels);
        }
    }

    fn render_charges(&self, out: &mut String) {
        let charges = self.charges.lock().unwrap_or_else(|e| e.into_inner());
        header(
            out,
            "vouchd_charges_total",
            "counter",
            "Committed ledger writes, by currency and type (charge, use, refund, capture).",
        );
        for ((currency, kind), stats) in charges.iter() {
            let _ = writeln!(
                out,
                "vouchd_charges_total{{currency=\"{}\",type=\"{}\"}} {}",
                escape(currency),
                kind.as_str(),
                stats.count
            );
        }
        header(
            out,
            "vouchd_charges_amount_minor_total",
            "counter",
            "Amounts of committed ledger writes in minor units of the currency (cents for EUR).",
        );
        for ((currency, kind), stats) in charges.iter() {
            let _ = writeln!(
                out,
                "vouchd_charges_amount_minor_total{{currency=\"{}\",type=\"{}\"}} {}",
                escape(currency),
                kind.as_str(),
                stats.minor
            );
        }
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value with `\`, `"` and line feeds escaped as the format asks.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A float as Prometheus reads it: no exponent for the bucket bounds used here.
fn number(value: f64) -> String {
    let text = format!("{value}");
    if text.contains('.') || text.contains('e') || text.contains("inf") || text == "NaN" {
        text
    } else {
        format!("{text}.0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> Metrics {
        Metrics::new(Arc::new(Histogram::batch_sizes()), Arc::default())
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_agree_with_the_count() {
        let h = Histogram::new(&[1, 10, 100], 1.0);
        for v in [0, 1, 2, 10, 11, 1000] {
            h.observe(v);
        }
        let mut out = String::new();
        h.render(&mut out, "x", "");
        assert_eq!(
            out,
            "x_bucket{le=\"1.0\"} 2\nx_bucket{le=\"10.0\"} 4\nx_bucket{le=\"100.0\"} 5\n\
             x_bucket{le=\"+Inf\"} 6\nx_sum 1024.0\nx_count 6\n"
        );
    }

    #[test]
    fn charge_amounts_add_up_past_u64_without_wrapping() {
        let m = metrics();
        for _ in 0..3 {
            m.charged(ChargeKind::Charge, "CLF", i64::MAX);
        }
        let want = (u128::from(i64::MAX.unsigned_abs()) * 3).to_string();
        let line = format!(
            "vouchd_charges_amount_minor_total{{currency=\"CLF\",type=\"charge\"}} {want}\n"
        );
        assert!(m.render().contains(&line), "{}", m.render());
    }

    #[test]
    fn latency_renders_in_seconds() {
        let m = metrics();
        m.observe("GET", "/v1/vouchers/{id}", 200, Duration::from_micros(700));
        m.observe("GET", "/v1/vouchers/{id}", 404, Duration::from_secs(20));
        let text = m.render();
        for line in [
            "vouchd_http_requests_total{method=\"GET\",route=\"/v1/vouchers/{id}\",status=\"200\"} 1",
            "vouchd_http_requests_total{method=\"GET\",route=\"/v1/vouchers/{id}\",status=\"404\"} 1",
            "vouchd_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/vouchers/{id}\",le=\"0.0005\"} 0",
            "vouchd_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/vouchers/{id}\",le=\"0.001\"} 1",
            "vouchd_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/vouchers/{id}\",le=\"10.0\"} 1",
            "vouchd_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/vouchers/{id}\",le=\"+Inf\"} 2",
            "vouchd_http_request_duration_seconds_sum{method=\"GET\",route=\"/v1/vouchers/{id}\"} 20.0007",
            "vouchd_http_request_duration_seconds_count{method=\"GET\",route=\"/v1/vouchers/{id}\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }

    #[test]
    fn charges_add_up_per_currency_and_kind() {
        let m = metrics();
        m.charged(ChargeKind::Charge, "EUR", 250);
        m.charged(ChargeKind::Charge, "EUR", 100);
        m.charged(ChargeKind::Capture, "EUR", 5);
        m.charged(ChargeKind::Refund, "JPY", 1500);
        let text = m.render();
        for line in [
            "vouchd_charges_total{currency=\"EUR\",type=\"charge\"} 2",
            "vouchd_charges_amount_minor_total{currency=\"EUR\",type=\"charge\"} 350",
            "vouchd_charges_total{currency=\"EUR\",type=\"capture\"} 1",
            "vouchd_charges_amount_minor_total{currency=\"JPY\",type=\"refund\"} 1500",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }

    #[test]
    fn gauge_guard_lowers_on_drop() {
        let m = metrics();
        {
            let _a = m.in_flight.hold();
            let _b = m.in_flight.hold();
            assert_eq!(m.in_flight.get(), 2);
        }
        assert_eq!(m.in_flight.get(), 0);
    }

    #[test]
    fn every_line_is_a_comment_or_a_sample() {
        let m = metrics();
        m.observe("POST", "/oauth/token", 401, Duration::from_millis(3));
        m.charged(ChargeKind::Use, "EUR", 1);
        m.batch_sizes.observe(3);
        for line in m.render().lines() {
            if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("a value");
            assert!(value.parse::<f64>().is_ok(), "{line}");
            assert!(series.starts_with("vouchd_"), "{line}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
