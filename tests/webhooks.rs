//! Webhooks (issue 18): every event type arrives once, signed so that Python's own `hmac`
//! verifies it; a receiver that answers nothing gets the same event id again until it is up,
//! in order; a SIGKILL with events queued loses none and invents none; one group's events
//! never reach another's endpoint. Receivers are small HTTP listeners on 127.0.0.1 started
//! here.

use crate::common::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SCOPES: &[&str] = &[
    "vouchers:read",
    "vouchers:write",
    "charges:read",
    "charges:write",
    "webhooks",
];

/// Retries quickly so the tests do not wait for the default 5 s.
const FAST: &[&str] = &["--webhook-first-retry", "200ms"];

/// One request a receiver read, answered or not.
#[derive(Clone, Debug)]
struct Hit {
    headers: Vec<(String, String)>,
    body: String,
    json: Value,
    answered: bool,
}

impl Hit {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn event_id(&self) -> String {
        self.json["id"].as_str().unwrap_or_default().to_string()
    }
}

/// How a receiver behaves: requests to leave unanswered first, whether it is down (answers
/// nothing), the status it answers with.
struct Mode {
    unanswered: AtomicUsize,
    down: AtomicBool,
    /// Reads each request and then never answers (the connection stays open 30 s).
    hang: AtomicBool,
    status: AtomicU16,
}

/// An HTTP receiver on 127.0.0.1 that records every request it reads.
struct Receiver {
    url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    mode: Arc<Mode>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a receiver");
        let addr = listener.local_addr().expect("receiver address");
        let hits = Arc::new(Mutex::new(Vec::new()));
        let mode = Arc::new(Mode {
            unanswered: AtomicUsize::new(0),
            down: AtomicBool::new(false),
            hang: AtomicBool::new(false),
            status: AtomicU16::new(200),
        });
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (hits, mode, stop) = (Arc::clone(&hits), Arc::clone(&mode), Arc::clone(&stop));
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (hits, mode) = (Arc::clone(&hits), Arc::clone(&mode));
                    std::thread::spawn(move || serve_one(stream, &hits, &mode));
                }
            });
        }
        Receiver {
            url: format!("http://{addr}/hook"),
            hits,
            mode,
            stop,
        }
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().expect("hits").clone()
    }

    fn answered(&self) -> Vec<Hit> {
        self.hits().into_iter().filter(|h| h.answered).collect()
    }

    /// Waits (bounded) until `done` holds for the answered hits; returns them.
    fn wait_for(&self, limit: Duration, done: impl Fn(&[Hit]) -> bool) -> Vec<Hit> {
        let started = Instant::now();
        loop {
            let answered = self.answered();
            if done(&answered) {
                return answered;
            }
            assert!(
                started.elapsed() < limit,
                "the receiver did not get what was expected within {limit:?}; it got {} \
                 answered and {} requests in all: {:?}",
                answered.len(),
                self.hits().len(),
                answered
                    .iter()
                    .map(|h| h.json["type"].clone())
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(addr) = self
            .url
            .strip_prefix("http://")
            .and_then(|r| r.split('/').next())
        {
            let _ = TcpStream::connect(addr);
        }
    }
}

/// Reads one request; answers it unless the mode says to leave it unanswered.
fn serve_one(stream: TcpStream, hits: &Mutex<Vec<Hit>>, mode: &Mode) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    let hang = mode.hang.load(Ordering::SeqCst);
    let skip = hang
        || mode.down.load(Ordering::SeqCst)
        || mode
            .unanswered
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
    let status = mode.status.load(Ordering::SeqCst);
    hits.lock().expect("hits").push(Hit {
        json: serde_json::from_str(&body).unwrap_or(Value::Null),
        headers,
        body,
        answered: !skip && (200..300).contains(&status),
    });
    if hang {
        std::thread::sleep(Duration::from_secs(30));
    }
    if skip {
        // No answer at all: the connection is closed under the sender.
        return;
    }
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nLocation: http://127.0.0.1:9/elsewhere\r\nConnection: close\r\n\r\n"
    );
}

/// Checks a signature with Python's own `hmac` module: true when it verifies.
fn python_verifies(secret: &str, header: &str, body: &str) -> bool {
    const SCRIPT: &str = r#"
import hashlib, hmac, sys
secret, header = sys.argv[1], sys.argv[2]
body = sys.stdin.buffer.read()
parts = dict(p.split("=", 1) for p in header.split(","))
signed = parts["t"].encode() + b"." + body
expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
sys.exit(0 if hmac.compare_digest(expected, parts["v1"]) else 1)
"#;
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/target/fuzz/venv/bin/python3");
    let python = if std::path::Path::new(venv).exists() {
        venv
    } else {
        "python3"
    };
    let mut child = Command::new(python)
        .args(["-c", SCRIPT, secret, header])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("write the body");
    child.wait().expect("python").success()
}

/// Adds an endpoint for `events` at `url`; returns its JSON (with the secret).
fn add_endpoint(s: &TestServer, token: &str, url: &str, events: &[&str]) -> Value {
    let r = s.post(
        "/v1/webhooks",
        token,
        &json!({"url": url, "events": events}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    r.json
}

fn gift_card(s: &TestServer, token: &str, amount: &str) -> String {
    id_of(&s.create_voucher(token, &json!({"amount": amount}))["id"])
}

fn charge(s: &TestServer, token: &str, voucher: &str, amount: &str) -> Resp {
    s.post(
        &format!("/v1/vouchers/{voucher}/charges"),
        token,
        &json!({"type": "charge", "amount": amount}),
    )
}

#[test]
fn each_event_type_arrives_once_with_its_body_and_a_signature_python_verifies() {
    let s = TestServer::start_with(FAST);
    let t = s.tenant(SCOPES);
    let receiver = Receiver::start();
    let endpoint = add_endpoint(&s, &t.token, &receiver.url, &["*"]);
    let secret = endpoint["secret"]
        .as_str()
        .expect("secret shown once")
        .to_string();
    assert!(s
        .get(
            &format!("/v1/webhooks/{}", id_of(&endpoint["id"])),
            &t.token
        )
        .json
        .get("secret")
        .is_none());

    let card = gift_card(&s, &t.token, "50.00");
    let patched = s.patch(
        &format!("/v1/vouchers/{card}"),
        &t.token,
        &json!({"label": "till 2"}),
    );
    assert_eq!(patched.status, 200, "{}", patched.body);
    let charged = charge(&s, &t.token, &card, "10.00");
    assert_eq!(charged.status, 201, "{}", charged.body);
    let refund = s.post(
        &format!("/v1/vouchers/{card}/charges"),
        &t.token,
        &json!({"type": "refund", "refers_to": charged.json["id"], "amount": "4.00"}),
    );
    assert_eq!(refund.status, 201, "{}", refund.body);
    let holds = format!("/v1/vouchers/{card}/reservations");
    let held = s.post(
        &holds,
        &t.token,
        &json!({"amount": "5.00", "expires_in": 600}),
    );
    assert_eq!(held.status, 201, "{}", held.body);
    let released = s.delete(&format!("{holds}/{}", id_of(&held.json["id"])), &t.token);
    assert_eq!(released.status, 204, "{}", released.body);
    let short = s.post(
        &holds,
        &t.token,
        &json!({"amount": "1.00", "expires_in": 1}),
    );
    assert_eq!(short.status, 201, "{}", short.body);
    let doomed = gift_card(&s, &t.token, "5.00");
    assert_eq!(
        s.delete(&format!("/v1/vouchers/{doomed}"), &t.token).status,
        204
    );
    let imported = s.send(
        "POST",
        "/v1/vouchers/import",
        &[("Authorization", &format!("Bearer {}", t.token))],
        Some(("text/csv", b"amount\n7.00\n8.00\n")),
    );
    assert_eq!(imported.status, 201, "{}", imported.body);

    // Two voucher.created (the card and the deleted one) and one of every other type.
    receiver.wait_for(Duration::from_secs(30), |h| h.len() >= 11);
    std::thread::sleep(Duration::from_millis(500));
    let hits = receiver.answered();
    let mut by_type: BTreeMap<String, Vec<&Hit>> = BTreeMap::new();
    for h in &hits {
        by_type
            .entry(h.json["type"].as_str().unwrap_or("?").to_string())
            .or_default()
            .push(h);
    }
    let counts: BTreeMap<&str, usize> =
        by_type.iter().map(|(k, v)| (k.as_str(), v.len())).collect();
    assert_eq!(
        counts,
        BTreeMap::from([
            ("charge.created", 1),
            ("import.completed", 1),
            ("refund.created", 1),
            ("reservation.created", 2),
            ("reservation.expired", 1),
            ("reservation.released", 1),
            ("voucher.created", 2),
            ("voucher.deleted", 1),
            ("voucher.updated", 1),
        ]),
        "{:#?}",
        hits.iter().map(|h| &h.json).collect::<Vec<_>>()
    );
    let one = |kind: &str| by_type[kind][0].json["data"].clone();
    assert_eq!(
        one("charge.created"),
        charged.json,
        "data is the charge as the API renders it"
    );
    assert_eq!(one("refund.created"), refund.json);
    assert_eq!(by_type["reservation.created"][0].json["data"], held.json);
    assert_eq!(one("reservation.released")["id"], held.json["id"]);
    assert_eq!(one("reservation.released")["status"], json!("released"));
    assert_eq!(one("reservation.expired")["id"], short.json["id"]);
    assert_eq!(one("voucher.updated")["label"], json!("till 2"));
    assert_eq!(one("voucher.deleted")["id"], json!(doomed));
    assert_eq!(one("import.completed"), json!({"count": 2}));
    let created: BTreeSet<String> = by_type["voucher.created"]
        .iter()
        .map(|h| id_of(&h.json["data"]["id"]))
        .collect();
    assert_eq!(created, BTreeSet::from([card.clone(), doomed.clone()]));

    let mut ids = BTreeSet::new();
    for h in &hits {
        let keys: BTreeSet<&str> = h
            .json
            .as_object()
            .expect("object")
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from(["created_at", "data", "id", "type"]),
            "{}",
            h.body
        );
        assert!(ids.insert(h.event_id()), "event ids are unique");
        assert_eq!(h.header("vouchd-event-id"), Some(h.event_id().as_str()));
        assert_eq!(h.header("content-type"), Some("application/json"));
        let signature = h.header("vouchd-signature").expect("signed");
        assert!(
            python_verifies(&secret, signature, &h.body),
            "Python's hmac rejects {signature} for {}",
            h.body
        );
        // The check can fail: another body or another secret does not verify.
        assert!(!python_verifies(
            &secret,
            signature,
            &format!("{} ", h.body)
        ));
        assert!(!python_verifies("whsec_other", signature, &h.body));
        let t: i64 = signature
            .split(',')
            .find_map(|p| p.strip_prefix("t="))
            .and_then(|t| t.parse().ok())
            .expect("t=");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64;
        assert!((now - t).abs() < 300, "t is the time of sending");
    }
}

#[test]
fn a_receiver_down_for_three_attempts_gets_every_event_in_order_with_stable_ids() {
    let s = TestServer::start_with(FAST);
    let t = s.tenant(SCOPES);
    let receiver = Receiver::start();
    receiver.mode.unanswered.store(3, Ordering::SeqCst);
    add_endpoint(&s, &t.token, &receiver.url, &["charge.created"]);
    let card = gift_card(&s, &t.token, "100.00");
    let charges: Vec<Value> = (1..=6)
        .map(|n| {
            let r = charge(&s, &t.token, &card, &format!("{n}.00"));
            assert_eq!(r.status, 201, "{}", r.body);
            r.json["id"].clone()
        })
        .collect();
    let answered = receiver.wait_for(Duration::from_secs(30), |h| h.len() >= 6);
    let delivered: Vec<Value> = answered
        .iter()
        .map(|h| h.json["data"]["id"].clone())
        .collect();
    assert_eq!(delivered, charges, "every charge once, in order");
    let hits = receiver.hits();
    // The first event was tried four times (three unanswered), always as the same event.
    let first = answered[0].event_id();
    assert_eq!(hits.len(), 6 + 3, "{hits:#?}");
    for h in &hits[..4] {
        assert_eq!(h.event_id(), first);
        assert_eq!(
            h.body, answered[0].body,
            "the body is the same on every attempt"
        );
    }
    // And nothing after it was sent before it got through.
    assert!(hits[..3].iter().all(|h| !h.answered));
}

#[test]
fn after_sigkill_with_200_events_queued_every_committed_charge_arrives_under_one_event_id() {
    let dir = Arc::new(TempDir::new());
    let mut s = TestServer::start_in(Arc::clone(&dir), FAST, None);
    let (admin_id, admin_secret) = (s.admin_id.clone(), s.admin_secret.clone());
    let t = s.tenant(SCOPES);
    let receiver = Receiver::start();
    receiver.mode.down.store(true, Ordering::SeqCst);
    add_endpoint(&s, &t.token, &receiver.url, &["charge.created"]);
    let cards: Vec<String> = (0..20).map(|_| gift_card(&s, &t.token, "500.00")).collect();

    let acked = AtomicUsize::new(0);
    let refused = AtomicUsize::new(0);
    let base = s.base.clone();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for n in 0..4usize {
            let (cards, base, token, acked, refused) = (&cards, &base, &t.token, &acked, &refused);
            scope.spawn(move || {
                let agent = ureq::AgentBuilder::new()
                    .max_idle_connections(0)
                    .timeout(Duration::from_secs(20))
                    .build();
                let mut i = n;
                while started.elapsed() < Duration::from_secs(60) {
                    i += 4;
                    // Every seventh charge asks for more than any card holds: refused.
                    let amount = if i % 7 == 0 { "9999.00" } else { "1.00" };
                    let card = &cards[i % cards.len()];
                    let sent = agent
                        .post(&format!("{base}/v1/vouchers/{card}/charges"))
                        .set("Authorization", &format!("Bearer {token}"))
                        .send_json(json!({"type": "charge", "amount": amount}));
                    match sent {
                        Ok(_) => {
                            acked.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(ureq::Error::Status(409, _)) => {
                            refused.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(ureq::Error::Status(code, r)) => {
                            panic!(
                                "charge answered {code}: {}",
                                r.into_string().unwrap_or_default()
                            )
                        }
                        // The server is gone: this charge may or may not have committed.
                        Err(ureq::Error::Transport(_)) => break,
                    }
                }
            });
        }
        // SIGKILL once 200 charges were acknowledged, with the charging still going on.
        while acked.load(Ordering::SeqCst) < 200 && started.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(5));
        }
        s.kill();
    });
    assert!(
        acked.load(Ordering::SeqCst) >= 200,
        "only {} charges acknowledged",
        acked.load(Ordering::SeqCst)
    );
    assert!(
        refused.load(Ordering::SeqCst) > 0,
        "some charges were refused"
    );
    assert!(receiver.answered().is_empty(), "the receiver was down");

    let s = TestServer::start_in(dir, FAST, Some((admin_id, admin_secret)));
    receiver.mode.down.store(false, Ordering::SeqCst);
    // What committed: the ledger after the restart.
    let mut committed = BTreeSet::new();
    for card in &cards {
        let r = s.get(
            &format!("/v1/vouchers/{card}/charges?per_page=100"),
            &t.token,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        for e in r.json["data"].as_array().expect("entries") {
            committed.insert(e["id"].as_str().expect("id").to_string());
        }
    }
    assert!(
        committed.len() >= 200,
        "{} charges committed",
        committed.len()
    );
    receiver.wait_for(Duration::from_secs(60), |hits| {
        hits.iter()
            .map(|h| {
                h.json["data"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect::<BTreeSet<_>>()
            .len()
            >= committed.len()
    });
    // Anything sent twice would come right away: give it a moment.
    std::thread::sleep(Duration::from_secs(1));
    let mut ids_per_charge: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for h in receiver.answered() {
        let charge = h.json["data"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        ids_per_charge
            .entry(charge)
            .or_default()
            .insert(h.event_id());
    }
    let delivered: BTreeSet<String> = ids_per_charge.keys().cloned().collect();
    assert_eq!(
        delivered, committed,
        "an event for every committed charge and for nothing else"
    );
    for (charge, ids) in &ids_per_charge {
        assert_eq!(
            ids.len(),
            1,
            "charge {charge} came under several event ids: {ids:?}"
        );
    }
}

#[test]
fn another_groups_endpoint_gets_nothing_and_webhooks_need_their_scope() {
    let s = TestServer::start_with(FAST);
    let (a, b) = (s.tenant(SCOPES), s.tenant(SCOPES));
    let (ra, rb) = (Receiver::start(), Receiver::start());
    let ea = add_endpoint(&s, &a.token, &ra.url, &["*"]);
    add_endpoint(&s, &b.token, &rb.url, &["*"]);
    let card = gift_card(&s, &a.token, "20.00");
    assert_eq!(charge(&s, &a.token, &card, "2.00").status, 201);
    let got = ra.wait_for(Duration::from_secs(30), |h| h.len() >= 2);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        rb.hits().is_empty(),
        "group b's receiver got {:?}",
        rb.hits()
    );

    // B sees only its own endpoint and cannot reach A's, its deliveries or its events.
    let listed = s.get("/v1/webhooks", &b.token);
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.json["data"].as_array().expect("list").len(), 1);
    assert_ne!(listed.json["data"][0]["id"], ea["id"]);
    let a_id = id_of(&ea["id"]);
    assert_problem(
        &s.get(&format!("/v1/webhooks/{a_id}"), &b.token),
        404,
        "not_found",
    );
    assert_problem(
        &s.get(&format!("/v1/webhooks/{a_id}/deliveries"), &b.token),
        404,
        "not_found",
    );
    assert_problem(
        &s.delete(&format!("/v1/webhooks/{a_id}"), &b.token),
        404,
        "not_found",
    );
    let event = got[0].event_id();
    let redeliver = format!("/v1/webhook-events/{event}/redeliver");
    assert_problem(&s.post(&redeliver, &b.token, &json!({})), 404, "not_found");
    assert_eq!(s.post(&redeliver, &a.token, &json!({})).status, 202);

    // A client without `webhooks` can neither list nor add endpoints.
    let till = s.tenant(CASHIER);
    assert_problem(
        &s.get("/v1/webhooks", &till.token),
        403,
        "insufficient_scope",
    );
    let add = s.post(
        "/v1/webhooks",
        &till.token,
        &json!({"url": ra.url, "events": ["*"]}),
    );
    assert_problem(&add, 403, "insufficient_scope");
    // The admin group holds every scope, `webhooks` too.
    assert_eq!(s.get("/v1/webhooks", &s.admin_token()).status, 200);
}

#[test]
fn only_http_urls_and_known_event_types_are_accepted() {
    let s = TestServer::start_with(FAST);
    let t = s.tenant(SCOPES);
    for url in [
        "ftp://127.0.0.1/x",
        "file:///etc/passwd",
        "127.0.0.1:8080",
        "http://u:p@h/",
    ] {
        let r = s.post(
            "/v1/webhooks",
            &t.token,
            &json!({"url": url, "events": ["*"]}),
        );
        assert_invalid_field(&r, "url");
    }
    let r = s.post(
        "/v1/webhooks",
        &t.token,
        &json!({"url": "http://127.0.0.1/", "events": ["charge.made"]}),
    );
    assert_invalid_field(&r, "events");
    let r = s.post(
        "/v1/webhooks",
        &t.token,
        &json!({"url": "http://127.0.0.1/"}),
    );
    assert_invalid_field(&r, "events");
    assert!(s.get("/v1/webhooks", &t.token).json["data"]
        .as_array()
        .expect("list")
        .is_empty());
}

#[test]
fn a_failing_endpoint_is_retried_then_disabled_redirects_are_not_followed_and_redeliver_revives_it()
{
    let s = TestServer::start_with(&[
        "--webhook-first-retry",
        "200ms",
        "--webhook-retry-for",
        "1s",
    ]);
    let t = s.tenant(SCOPES);
    let receiver = Receiver::start();
    receiver.mode.status.store(302, Ordering::SeqCst);
    let endpoint = add_endpoint(&s, &t.token, &receiver.url, &["voucher.created"]);
    let path = format!("/v1/webhooks/{}", id_of(&endpoint["id"]));
    gift_card(&s, &t.token, "1.00");
    let started = Instant::now();
    let shown = loop {
        let r = s.get(&path, &t.token);
        if r.json["disabled"] == json!(true) {
            break r.json;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never disabled: {}",
            r.body
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        shown["disabled_reason"]
            .as_str()
            .expect("reason")
            .contains("302"),
        "{shown}"
    );
    let deliveries = s.get(&format!("{path}/deliveries"), &t.token);
    let d = &deliveries.json["data"][0];
    assert!(d["attempts"].as_i64().expect("attempts") >= 2, "{d}");
    assert_eq!(
        d["last_status"],
        json!(302),
        "the redirect was not followed: {d}"
    );
    assert_eq!(d["state"], json!("pending"));
    let metrics = s.get("/metrics", &s.admin_token()).body;
    assert!(
        metrics.contains("vouchd_webhook_deliveries_total{outcome=\"disabled\"} 1"),
        "{metrics}"
    );

    // Once the receiver is fixed, a redelivery enables the endpoint and gets through.
    receiver.mode.status.store(200, Ordering::SeqCst);
    let event = id_of(&d["event_id"]);
    let r = s.post(
        &format!("/v1/webhook-events/{event}/redeliver"),
        &t.token,
        &json!({}),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let got = receiver.wait_for(Duration::from_secs(30), |h| !h.is_empty());
    assert_eq!(got[0].event_id(), event);
    assert_eq!(s.get(&path, &t.token).json["disabled"], json!(false));
    // The receiver has answered; the server notes the delivery once it has read that answer.
    let started = Instant::now();
    loop {
        let deliveries = s.get(&format!("{path}/deliveries"), &t.token);
        let state = &deliveries.json["data"][0]["state"];
        if *state == json!("delivered") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never noted as delivered: {}",
            deliveries.body
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_cli_adds_lists_and_removes_endpoints() {
    let s = TestServer::start_with(FAST);
    let t = s.tenant(SCOPES);
    let receiver = Receiver::start();
    let out = s.cli(&[
        "webhook",
        "add",
        &receiver.url,
        "--group",
        &t.group_name,
        "--events",
        "charge.created,import.completed",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let added: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(added["secret"]
        .as_str()
        .expect("secret")
        .starts_with("whsec_"));
    let listed = s.get("/v1/webhooks", &t.token);
    assert_eq!(listed.json["data"][0]["id"], added["id"]);
    let out = s.cli(&["webhook", "list"]);
    let all: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(all
        .as_array()
        .expect("list")
        .iter()
        .any(|e| e["id"] == added["id"] && e.get("secret").is_none()));
    // The running server delivers to an endpoint the CLI added.
    let card = gift_card(&s, &t.token, "5.00");
    assert_eq!(charge(&s, &t.token, &card, "1.00").status, 201);
    receiver.wait_for(Duration::from_secs(30), |h| !h.is_empty());
    // So does an import by the CLI on the same file, its event written by the CLI.
    let csv = s.dir().path().join("import.csv");
    std::fs::write(&csv, "amount\n3.00\n").expect("write the CSV");
    let csv = csv.to_str().expect("path").to_string();
    let imported = s.cli(&["import", &csv, "--client", &t.client_id]);
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let got = receiver.wait_for(Duration::from_secs(30), |h| h.len() >= 2);
    assert_eq!(got[1].json["type"], json!("import.completed"));
    assert_eq!(got[1].json["data"], json!({"count": 1}));
    let bad = s.cli(&["webhook", "add", "gopher://x", "--group", &t.group_name]);
    assert!(!bad.status.success());
    let id = id_of(&added["id"]);
    assert!(s.cli(&["webhook", "remove", &id]).status.success());
    assert!(!s.cli(&["webhook", "remove", &id]).status.success());
    assert!(s.get("/v1/webhooks", &t.token).json["data"]
        .as_array()
        .expect("list")
        .is_empty());
}

#[test]
fn a_hanging_receiver_is_given_up_after_the_attempt_timeout_and_charges_go_on_meanwhile() {
    let s = TestServer::start_with(FAST);
    let t = s.tenant(SCOPES);
    let receiver = Receiver::start();
    receiver.mode.hang.store(true, Ordering::SeqCst);
    let endpoint = add_endpoint(&s, &t.token, &receiver.url, &["charge.created"]);
    let card = gift_card(&s, &t.token, "100.00");
    assert_eq!(charge(&s, &t.token, &card, "1.00").status, 201);
    let started = Instant::now();
    while receiver.hits().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(10), "never sent");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The delivery now waits on the receiver; charges are answered as before, each well within
    // a second, while it does.
    let waiting = Instant::now();
    for _ in 0..20 {
        let sent = Instant::now();
        assert_eq!(charge(&s, &t.token, &card, "0.01").status, 201);
        assert!(
            sent.elapsed() < Duration::from_secs(1),
            "a charge took {:?}",
            sent.elapsed()
        );
    }
    assert!(
        waiting.elapsed() < Duration::from_secs(8),
        "the attempt was still hanging"
    );
    // The attempt is given up after 10 s and noted as a failure with no answer.
    let path = format!("/v1/webhooks/{}/deliveries", id_of(&endpoint["id"]));
    let oldest = loop {
        let r = s.get(&path, &t.token);
        let list = r.json["data"].as_array().expect("deliveries").clone();
        let oldest = list.last().cloned().unwrap_or(Value::Null);
        if oldest["attempts"].as_i64().unwrap_or(0) >= 1 {
            break oldest;
        }
        assert!(
            started.elapsed() < Duration::from_secs(25),
            "no attempt ended: {}",
            r.body
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let given_up = started.elapsed();
    assert!(
        given_up >= Duration::from_secs(9),
        "given up after {given_up:?}"
    );
    assert_eq!(oldest["last_status"], Value::Null, "{oldest}");
    assert_eq!(oldest["state"], json!("pending"));
    assert!(
        oldest["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{oldest}"
    );
}

#[test]
fn an_event_that_cannot_be_rendered_holds_up_its_own_endpoint_only() {
    let s = TestServer::start_with(FAST);
    let broken = s.tenant(SCOPES);
    let fine = s.tenant(SCOPES);
    let broken_receiver = Receiver::start();
    let fine_receiver = Receiver::start();
    add_endpoint(&s, &broken.token, &broken_receiver.url, &["*"]);
    add_endpoint(&s, &fine.token, &fine_receiver.url, &["charge.created"]);
    // A ledger event whose entry is not there: its body cannot be rendered.
    let written = s.sql().execute(
        "INSERT INTO webhook_events (id, group_id, type, created_at, body, entry_id)
         VALUES ('evt_unrenderable', ?1, 'charge.created', 0, NULL, 'no-such-entry')",
        &[broken.group_id.as_str().into()],
    );
    assert_eq!(written, 1);
    std::thread::sleep(Duration::from_millis(500));
    let card = gift_card(&s, &fine.token, "20.00");
    let charged = charge(&s, &fine.token, &card, "2.00");
    assert_eq!(charged.status, 201, "{}", charged.body);
    let got = fine_receiver.wait_for(Duration::from_secs(20), |h| !h.is_empty());
    assert_eq!(got[0].json["data"]["id"], charged.json["id"]);
    assert!(
        broken_receiver.hits().is_empty(),
        "nothing after the broken event is sent"
    );
}

#[test]
fn two_instances_on_one_postgresql_database_send_each_event_once() {
    if !engine_is_postgres() {
        return;
    }
    let home = Arc::new(TempDir::new_postgres());
    let a = TestServer::start_in(Arc::clone(&home), FAST, None);
    let b = TestServer::start_in(
        Arc::clone(&home),
        FAST,
        Some((a.admin_id.clone(), a.admin_secret.clone())),
    );
    let t = a.tenant(SCOPES);
    let receiver = Receiver::start();
    add_endpoint(&a, &t.token, &receiver.url, &["charge.created"]);
    let card = gift_card(&a, &t.token, "100.00");
    let charges: Vec<Value> = (1..=30)
        .map(|n| {
            let on = if n % 2 == 0 { &a } else { &b };
            let r = charge(on, &t.token, &card, "1.00");
            assert_eq!(r.status, 201, "{}", r.body);
            r.json["id"].clone()
        })
        .collect();
    let answered = receiver.wait_for(Duration::from_secs(30), |h| h.len() >= charges.len());
    // Give a second sender the time to show up.
    std::thread::sleep(Duration::from_secs(1));
    let hits = receiver.hits();
    let sent: Vec<Value> = hits.iter().map(|h| h.json["data"]["id"].clone()).collect();
    assert_eq!(
        sent,
        charges,
        "each charge once, in order ({} answered)",
        answered.len()
    );
}

#[test]
fn a_receivers_answer_with_a_nul_is_recorded_as_a_failed_attempt_with_it_escaped() {
    let s = TestServer::start_with(FAST);
    let t = s.tenant(SCOPES);
    // A receiver whose status line holds a NUL: the sender's error quotes it.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        for stream in listener.incoming().take(20) {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 2\x000 OK\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let endpoint = add_endpoint(&s, &t.token, &url, &["voucher.created"]);
    let path = format!("/v1/webhooks/{}/deliveries", id_of(&endpoint["id"]));
    gift_card(&s, &t.token, "1.00");
    let started = Instant::now();
    let delivery = loop {
        let r = s.get(&path, &t.token);
        let d = r.json["data"][0].clone();
        if d["attempts"].as_i64().unwrap_or(0) >= 1 {
            break d;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no attempt recorded: {}\n{}",
            r.body,
            s.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(delivery["state"], json!("pending"), "{delivery}");
    let error = delivery["last_error"].as_str().expect("last_error");
    assert!(!error.contains('\0') && error.contains("\\u{0}"), "{error}");
}
