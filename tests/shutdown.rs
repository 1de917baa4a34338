//! SIGTERM and SIGINT: the server stops accepting, answers every request it took in full,
//! flushes the writer and exits 0 (issue 5, acceptance item 5, the graceful half; the SIGKILL
//! half is tests/crash.rs).

use crate::common::*;
use crate::crash::integrity_check;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const VOUCHERS: usize = 8;
const THREADS: usize = 8;

/// What one charging thread saw.
#[derive(Default)]
struct Seen {
    /// Charges answered 201 with a whole entry: order number → entry id.
    acked: BTreeMap<String, String>,
    /// Requests answered 503 (queued behind the stop): order numbers.
    refused: Vec<String>,
}

/// Charges from one thread until the server is gone. Every answer must be complete: a 201 with
/// the whole entry, or a whole 503 problem. A transport error ends the thread: the server
/// stopped, and a request it never took may fail only that way.
fn charge_until_stopped(
    base: &str,
    token: &str,
    vouchers: &[String],
    thread: usize,
    acked_count: &AtomicUsize,
) -> Seen {
    let agent = ureq::AgentBuilder::new()
        .max_idle_connections(0)
        .timeout(Duration::from_secs(20))
        .build();
    let mut seen = Seen::default();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut n = 0;
    while Instant::now() < deadline {
        n += 1;
        let order = format!("t{thread}-{n}");
        let id = &vouchers[(thread + n) % vouchers.len()];
        let result = agent
            .post(&format!("{base}/v1/vouchers/{id}/charges"))
            .set("Authorization", &format!("Bearer {token}"))
            .send_json(json!({"type": "charge", "amount": "0.01", "order_number": order}));
        match result {
            Ok(r) => {
                assert_eq!(r.status(), 201);
                // A cut body fails here: ureq checks it against Content-Length.
                let body: Value = r.into_json().expect("a complete entry");
                assert_eq!(body["order_number"], json!(order));
                seen.acked.insert(order, id_of(&body["id"]));
                acked_count.fetch_add(1, Ordering::SeqCst);
            }
            Err(ureq::Error::Status(503, r)) => {
                let body: Value = r.into_json().expect("a complete problem");
                assert_eq!(body["status"], 503);
                seen.refused.push(order);
            }
            Err(ureq::Error::Status(code, r)) => {
                panic!(
                    "charge answered {code}: {}",
                    r.into_string().unwrap_or_default()
                )
            }
            Err(ureq::Error::Transport(_)) => break,
        }
    }
    seen
}

/// Every ledger entry of the voucher: order number → entry id.
fn ledger(s: &TestServer, token: &str, id: &str) -> BTreeMap<String, String> {
    let mut entries = BTreeMap::new();
    for page in 1.. {
        let r = s.get(
            &format!("/v1/vouchers/{id}/charges?per_page=1000&page={page}"),
            token,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        for e in r.json["data"].as_array().expect("data") {
            let order = e["order_number"]
                .as_str()
                .expect("order number")
                .to_string();
            assert!(entries.insert(order, id_of(&e["id"])).is_none());
        }
        if r.json["links"]["next"].is_null() {
            break;
        }
    }
    entries
}

#[test]
fn sigterm_under_concurrent_charges_answers_every_request_in_full_and_exits_0() {
    let dir = Arc::new(TempDir::new());
    let mut s = TestServer::start_in(Arc::clone(&dir), &[], None);
    let admin = (s.admin_id.clone(), s.admin_secret.clone());
    let t = s.tenant(CASHIER);
    let vouchers: Vec<String> = (0..VOUCHERS)
        .map(|_| id_of(&s.create_voucher(&t.token, &json!({"amount": "100000.00"}))["id"]))
        .collect();
    let acked_count = AtomicUsize::new(0);
    let (base, token) = (s.base.clone(), t.token.clone());
    let (seen, status) = std::thread::scope(|scope| {
        let load: Vec<_> = (0..THREADS)
            .map(|thread| {
                let (base, token, vouchers, acked) = (&base, &token, &vouchers, &acked_count);
                scope.spawn(move || charge_until_stopped(base, token, vouchers, thread, acked))
            })
            .collect();
        // Stop once the load is well under way: charges queued, in the writer and answered.
        let until = Instant::now() + Duration::from_secs(30);
        while acked_count.load(Ordering::SeqCst) < 200 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        s.signal("TERM");
        let status = s.wait_exit(Duration::from_secs(30));
        let seen: Vec<Seen> = load
            .into_iter()
            .map(|h| h.join().expect("charging thread"))
            .collect();
        (seen, status)
    });
    assert_eq!(
        status.code(),
        Some(0),
        "exit status; output:\n{}",
        s.output()
    );
    // The last lines may still be on their way through the pipe.
    assert!(
        s.wait_for_line(|l| l == "vouchd: stopped").is_some(),
        "{}",
        s.output()
    );
    assert!(s.output().contains("vouchd: SIGTERM: stopping"));
    let acked: BTreeMap<String, String> = seen.iter().flat_map(|s| s.acked.clone()).collect();
    assert!(
        acked.len() >= 200,
        "only {} charges were acknowledged before the stop",
        acked.len()
    );
    // After the exit nothing listens any more.
    assert!(std::net::TcpStream::connect(s.host()).is_err());

    // Restart on the same file: the ledger holds exactly the acknowledged charges. Nothing
    // committed went unanswered (no entry beyond them), nothing answered was lost.
    let s = TestServer::start_in(Arc::clone(&dir), &[], Some(admin));
    let token = s.token(&t.client_id, &t.secret, None);
    let mut listed = BTreeMap::new();
    for id in &vouchers {
        let entries = ledger(&s, &token, id);
        let v = s.get(&format!("/v1/vouchers/{id}"), &token);
        assert_eq!(v.status, 200, "{}", v.body);
        assert_eq!(
            cents(&v.json["amount"]) - entries.len() as i64,
            cents(&v.json["remaining_amount"]),
            "balance of {id} disagrees with its ledger"
        );
        listed.extend(entries);
    }
    assert_eq!(
        listed, acked,
        "the ledger differs from the acknowledged charges"
    );
    for refused in seen.iter().flat_map(|s| &s.refused) {
        assert!(!listed.contains_key(refused), "a 503 charge was written");
    }
    integrity_check(&s.db);
}

#[test]
fn sigint_stops_an_idle_server_with_exit_code_0() {
    let mut s = TestServer::start();
    assert_eq!(s.send("GET", "/healthz", &[], None).status, 200);
    s.signal("INT");
    let status = s.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{}", s.output());
    assert!(s.wait_for_line(|l| l == "vouchd: stopped").is_some());
    assert!(s.output().contains("vouchd: SIGINT: stopping"));
    assert!(std::net::TcpStream::connect(s.host()).is_err());
}
