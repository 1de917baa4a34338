//! `GET /metrics`: Prometheus text that parses line by line, and counters that move by exactly
//! what was asked of the server (issue 5, acceptance item 7).

use crate::common::*;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// One scrape: every sample by its series (`name{labels}` as written), and the raw text.
struct Scrape {
    samples: BTreeMap<String, f64>,
    text: String,
}

impl Scrape {
    fn value(&self, series: &str) -> f64 {
        self.samples.get(series).copied().unwrap_or(0.0)
    }
}

/// A scrape taken once nothing but the scrape itself is in flight: every request the test made
/// before it has been counted (a request is counted just after its reply is sent).
fn quiet_scrape(s: &TestServer) -> Scrape {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let got = scrape(s);
        if got.value("vouchd_http_requests_in_flight") == 1.0
            || std::time::Instant::now() >= deadline
        {
            return got;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn scrape(s: &TestServer) -> Scrape {
    // Group `admin` holds every scope, `metrics` included.
    let auth = format!("Bearer {}", s.admin_token());
    let r = s.send("GET", "/metrics", &[("Authorization", &auth)], None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.content_type(), "text/plain; version=0.0.4; charset=utf-8");
    Scrape {
        samples: parse_exposition(&r.body),
        text: r.body,
    }
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `a="x",b="y\"z"` → its pairs, asserting the syntax (escapes `\\`, `\"`, `\n` only).
fn parse_labels(text: &str, line: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("label without =\"…\" in {line:?}"));
        assert!(is_name(name), "bad label name {name:?} in {line:?}");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => panic!("bad escape {other:?} in {line:?}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value in {line:?}"),
            }
        };
        pairs.push((name.to_string(), value));
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    pairs
}

/// Parses the text exposition format 0.0.4 strictly enough to catch a malformed line: every
/// line is `# HELP name text`, `# TYPE name kind` or `name{labels} value`; every sample's
/// family was typed before it; a histogram's buckets rise and end at `+Inf` = `_count`.
fn parse_exposition(text: &str) -> BTreeMap<String, f64> {
    assert!(text.ends_with('\n'), "the exposition ends with a line feed");
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helped: BTreeSet<String> = BTreeSet::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(is_name(name) && !help.is_empty(), "{line}");
            assert!(helped.insert(name.to_string()), "HELP twice: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(is_name(name), "{line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(
                types.insert(name.to_string(), kind.to_string()).is_none(),
                "TYPE twice: {line}"
            );
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment {line:?}");
        let (series, value) = line.rsplit_once(' ').expect("a sample is `series value`");
        let number: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let inner = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels in {line:?}"));
                (name, parse_labels(inner, line))
            }
            None => (series, Vec::new()),
        };
        assert!(is_name(name), "bad metric name in {line:?}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|f| types.get(*f).map(String::as_str) == Some("histogram"))
            })
            .unwrap_or(name);
        assert!(
            types.contains_key(family),
            "sample before its # TYPE: {line:?}"
        );
        if name.ends_with("_bucket") && family != name {
            assert!(
                labels.iter().any(|(k, _)| k == "le"),
                "bucket without le: {line}"
            );
        }
        assert!(
            samples.insert(series.to_string(), number).is_none(),
            "series twice: {line}"
        );
    }
    // Buckets rise with `le`, and `+Inf` equals `_count`.
    for (series, count) in samples.iter().filter(|(k, _)| k.contains("_count")) {
        let Some((name, labels)) = series.split_once("_count") else {
            continue;
        };
        let inner = labels.trim_start_matches('{').trim_end_matches('}');
        let prefix = if inner.is_empty() {
            format!("{name}_bucket{{")
        } else {
            format!("{name}_bucket{{{inner},")
        };
        let buckets: Vec<f64> = samples
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, v)| *v)
            .collect();
        let inf = samples
            .get(&format!("{prefix}le=\"+Inf\"}}"))
            .unwrap_or_else(|| panic!("no +Inf bucket for {series}"));
        assert_eq!(inf, count, "{series}: +Inf bucket and _count differ");
        assert!(
            buckets.iter().all(|b| b <= inf),
            "{series}: a bucket above +Inf"
        );
    }
    samples
}

/// Scrapes until every series in `want` has moved by exactly its delta since `before`, for up
/// to 5 s, and asserts that it did. A request is counted just after its reply is sent, so the
/// counters may trail the answers the test has already read by a moment.
fn settle(s: &TestServer, before: &Scrape, want: &[(String, f64)]) -> Scrape {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let after = scrape(s);
        let off: Vec<String> = want
            .iter()
            .filter(|(series, delta)| after.value(series) - before.value(series) != *delta)
            .map(|(series, delta)| {
                format!(
                    "{series}: moved by {}, expected {delta}",
                    after.value(series) - before.value(series)
                )
            })
            .collect();
        if off.is_empty() {
            return after;
        }
        if std::time::Instant::now() >= deadline {
            panic!("{}\n\nscrape:\n{}", off.join("\n"), after.text);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn requests(method: &str, route: &str, status: u16) -> String {
    format!(
        "vouchd_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}}"
    )
}

fn latency_count(method: &str, route: &str) -> String {
    format!("vouchd_http_request_duration_seconds_count{{method=\"{method}\",route=\"{route}\"}}")
}

fn charges(currency: &str, kind: &str) -> String {
    format!("vouchd_charges_total{{currency=\"{currency}\",type=\"{kind}\"}}")
}

fn amount(currency: &str, kind: &str) -> String {
    format!("vouchd_charges_amount_minor_total{{currency=\"{currency}\",type=\"{kind}\"}}")
}

#[test]
fn metrics_count_requests_by_route_template_and_status() {
    let s = TestServer::start();
    let t = s.tenant(CASHIER);
    let voucher = s.create_voucher(&t.token, &json!({"amount": "10.00"}));
    let id = id_of(&voucher["id"]);
    let code = voucher["code"].as_str().expect("code").to_string();
    let before = quiet_scrape(&s);

    for _ in 0..3 {
        assert_eq!(s.get(&format!("/v1/vouchers/{id}"), &t.token).status, 200);
    }
    for _ in 0..2 {
        assert_eq!(s.get("/v1/vouchers/ZZZZZZZZZZZZZZZZ", &t.token).status, 404);
    }
    assert_eq!(
        s.call("GET", &format!("/v1/vouchers/{id}"), None, None)
            .status,
        401
    );
    assert_eq!(
        s.call("PUT", &format!("/v1/vouchers/{id}"), Some(&t.token), None)
            .status,
        405
    );
    assert_eq!(s.get(&format!("/nowhere/{code}"), &t.token).status, 404);
    let created = s.post("/v1/vouchers", &t.token, &json!({"amount": "5.00"}));
    assert_eq!(created.status, 201);

    let route = "/v1/vouchers/{id}";
    let after = settle(
        &s,
        &before,
        &[
            (requests("GET", route, 200), 3.0),
            (requests("GET", route, 404), 2.0),
            (requests("GET", route, 401), 1.0),
            (requests("PUT", route, 405), 1.0),
            (requests("GET", "unmatched", 404), 1.0),
            (requests("POST", "/v1/vouchers", 201), 1.0),
            (latency_count("GET", route), 6.0),
            // While it renders, the scrape itself is the one request in flight.
            ("vouchd_http_requests_in_flight".into(), 0.0),
        ],
    );
    let delta = |series: &str| after.value(series) - before.value(series);
    // Each scrape is counted once it has been answered, so a later one shows it.
    assert!(delta(&requests("GET", "/metrics", 200)) >= 1.0);
    // A write went through the writer: one more group at least.
    assert!(delta("vouchd_writer_batch_size_count") >= 1.0);
    assert!(after.value("vouchd_writer_batch_size_sum") >= 2.0);
    // The test server runs `--sync full`: that write was answered after a sync of the WAL.
    assert!(delta("vouchd_wal_syncs_total") >= 1.0);
    assert_eq!(after.value("vouchd_http_requests_in_flight"), 1.0);
    // Open connections are the server's own count: five idle keep-alive connections (each
    // answered once, so surely accepted) count five, and are five fewer once closed. Compared
    // that way round, since connections of earlier requests may still be closing meanwhile.
    let open = after.value("vouchd_http_connections_open");
    assert!(open >= 1.0, "{open}");
    let held = crate::http::Wire::idle_ones(s.host(), 5);
    let with_held = scrape(&s).value("vouchd_http_connections_open");
    assert!(with_held >= 6.0, "{with_held}");
    drop(held);
    // Closed a moment later (longer while the rest of the suite loads the machine).
    let waited = std::time::Instant::now();
    let mut without = scrape(&s).value("vouchd_http_connections_open");
    while with_held - without < 5.0 && waited.elapsed() < std::time::Duration::from_secs(5) {
        std::thread::sleep(std::time::Duration::from_millis(50));
        without = scrape(&s).value("vouchd_http_connections_open");
    }
    assert!(
        with_held - without >= 5.0,
        "{with_held} with five idle connections, then {without}"
    );
    // Templates only: no id, code or unknown path ever becomes a label.
    for raw in [id.as_str(), code.as_str(), "ZZZZZZZZZZZZZZZZ", "nowhere"] {
        assert!(!after.text.contains(raw), "{raw} leaked into the metrics");
    }
}

#[test]
fn metrics_count_charges_and_amounts_by_currency_and_type() {
    let s = TestServer::start();
    let t = s.tenant(CASHIER);
    let eur = id_of(&s.create_voucher(&t.token, &json!({"amount": "50.00"}))["id"]);
    let jpy =
        id_of(&s.create_voucher(&t.token, &json!({"amount": "5000", "currency": "JPY"}))["id"]);
    let discount = id_of(
        &s.create_voucher(
            &t.token,
            &json!({"discount": {"type": "percentage", "value": "10"}}),
        )["id"],
    );
    let before = quiet_scrape(&s);

    let charge = |voucher: &str, body: serde_json::Value| {
        let r = s.post(&format!("/v1/vouchers/{voucher}/charges"), &t.token, &body);
        assert_eq!(r.status, 201, "{}", r.body);
        r.json
    };
    let first = charge(&eur, json!({"type": "charge", "amount": "2.50"}));
    charge(&eur, json!({"type": "charge", "amount": "0.75"}));
    charge(
        &eur,
        json!({"type": "refund", "refers_to": first["id"], "amount": "1.00"}),
    );
    charge(&jpy, json!({"type": "charge", "amount": "1500"}));
    charge(&discount, json!({"type": "use", "ticket_total": "40.00"}));
    let hold = s.post(
        &format!("/v1/vouchers/{eur}/reservations"),
        &t.token,
        &json!({"amount": "3.00"}),
    );
    assert_eq!(hold.status, 201, "{}", hold.body);
    let hold_id = id_of(&hold.json["id"]);
    let captured = s.post(
        &format!("/v1/vouchers/{eur}/reservations/{hold_id}/capture"),
        &t.token,
        &json!({"amount": "2.00"}),
    );
    assert_eq!(captured.status, 201, "{}", captured.body);
    // Refused and replayed requests move no money, so they count for nothing.
    let refused = s.post(
        &format!("/v1/vouchers/{jpy}/charges"),
        &t.token,
        &json!({"type": "charge", "amount": "999999"}),
    );
    assert_eq!(refused.status, 409, "{}", refused.body);
    let headers = [
        ("Authorization", format!("Bearer {}", t.token)),
        ("Idempotency-Key", "metrics-replay".to_string()),
    ];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let body = br#"{"type":"charge","amount":"0.10"}"#;
    for _ in 0..2 {
        let r = s.send(
            "POST",
            &format!("/v1/vouchers/{eur}/charges"),
            &headers,
            Some(("application/json", body)),
        );
        assert_eq!(r.status, 201, "{}", r.body);
    }

    // Charges are counted when they commit, before their reply: no waiting needed here.
    let after = scrape(&s);
    let delta = |series: &str| after.value(series) - before.value(series);
    for (series, want) in [
        (charges("EUR", "charge"), 3.0),
        (amount("EUR", "charge"), 335.0),
        (charges("EUR", "refund"), 1.0),
        (amount("EUR", "refund"), 100.0),
        (charges("EUR", "use"), 1.0),
        (amount("EUR", "use"), 400.0),
        (charges("EUR", "capture"), 1.0),
        (amount("EUR", "capture"), 200.0),
        (charges("JPY", "charge"), 1.0),
        (amount("JPY", "charge"), 1500.0),
        (charges("JPY", "refund"), 0.0),
    ] {
        assert_eq!(delta(&series), want, "{series}:\n{}", after.text);
    }
    settle(
        &s,
        &before,
        &[(requests("POST", "/v1/vouchers/{id}/charges", 409), 1.0)],
    );
}

#[test]
fn metrics_text_parses_as_prometheus_exposition() {
    let s = TestServer::start();
    let t = s.tenant(CASHIER);
    let id = id_of(&s.create_voucher(&t.token, &json!({"amount": "1.00"}))["id"]);
    let before = scrape(&s);
    s.post(
        &format!("/v1/vouchers/{id}/charges"),
        &t.token,
        &json!({"type": "charge", "amount": "0.01"}),
    );
    // A request is counted after its last byte went out: the scrape may come first.
    let m = settle(
        &s,
        &before,
        &[(requests("POST", "/v1/vouchers/{id}/charges", 201), 1.0)],
    );
    for family in [
        "vouchd_http_requests_total",
        "vouchd_http_request_duration_seconds",
        "vouchd_http_requests_in_flight",
        "vouchd_http_connections_open",
        "vouchd_charges_total",
        "vouchd_charges_amount_minor_total",
        "vouchd_writer_batch_size",
        "vouchd_wal_syncs_total",
    ] {
        assert!(
            m.text.contains(&format!("# TYPE {family} ")),
            "{family} missing:\n{}",
            m.text
        );
    }
    // Latency buckets are in seconds and end at +Inf.
    let route = "method=\"POST\",route=\"/v1/vouchers/{id}/charges\"";
    assert!(m.samples.contains_key(&format!(
        "vouchd_http_request_duration_seconds_bucket{{{route},le=\"0.005\"}}"
    )));
    assert_eq!(
        m.value(&format!(
            "vouchd_http_request_duration_seconds_bucket{{{route},le=\"+Inf\"}}"
        )),
        1.0
    );
    assert_eq!(
        m.value("vouchd_writer_batch_size_bucket{le=\"256.0\"}"),
        m.value("vouchd_writer_batch_size_count")
    );
}

#[test]
fn metrics_need_a_token_with_the_metrics_scope() {
    let s = TestServer::start();
    let bare = s.send("GET", "/metrics", &[], None);
    assert_problem(&bare, 401, "unauthorized");
    assert!(!bare.body.contains("vouchd_"), "{}", bare.body);
    let till = s.tenant(CASHIER);
    let r = s.get("/metrics", &till.token);
    assert_problem(&r, 403, "insufficient_scope");
    assert!(!r.body.contains("vouchd_"), "{}", r.body);

    // What Prometheus uses: a client whose group holds `metrics` alone.
    let group = unique("prometheus");
    s.create_group(&group, &["metrics"]);
    let (id, secret) = s.create_client("prometheus", &group, None);
    let token = s.token(&id, &secret, Some("metrics"));
    let r = s.get("/metrics", &token);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("vouchd_http_requests_total"), "{}", r.body);
    // … and nothing else.
    assert_problem(&s.get("/v1/vouchers", &token), 403, "insufficient_scope");
    assert_eq!(s.get("/metrics", &s.admin_token()).status, 200);
}
