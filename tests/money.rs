//! The money path (docs/api.md): charges, uses, refunds, reservations, `Idempotency-Key`,
//! validate and the charges list. Issue 3 acceptance items 1, 2, 4 and 5 (the crash test is
//! in `crash.rs`).

use crate::common::*;
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Barrier, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(TestServer::start)
}

fn cashier() -> &'static Tenant {
    static TENANT: OnceLock<Tenant> = OnceLock::new();
    TENANT.get_or_init(|| server().tenant(CASHIER))
}

/// A value voucher of `amount` (a decimal string) with `extra` fields merged in.
fn gift(t: &Tenant, amount: &str, extra: Value) -> String {
    let mut body = json!({"amount": amount});
    if let Value::Object(map) = extra {
        for (k, v) in map {
            body[k] = v;
        }
    }
    id_of(&server().create_voucher(&t.token, &body)["id"])
}

/// A discount voucher; `discount` is `{"type", "value"}`.
fn discount(t: &Tenant, discount: Value, extra: Value) -> String {
    let mut body = json!({ "discount": discount });
    if let Value::Object(map) = extra {
        for (k, v) in map {
            body[k] = v;
        }
    }
    id_of(&server().create_voucher(&t.token, &body)["id"])
}

fn post_charge(t: &Tenant, id: &str, body: Value) -> Resp {
    server().post(&format!("/v1/vouchers/{id}/charges"), &t.token, &body)
}

fn charge(t: &Tenant, id: &str, amount: &str) -> Resp {
    post_charge(
        t,
        id,
        json!({"type": "charge", "amount": amount, "order_number": "T-1"}),
    )
}

fn charged(t: &Tenant, id: &str, amount: &str) -> Value {
    let r = charge(t, id, amount);
    assert_eq!(r.status, 201, "charge {amount} on {id}: {}", r.body);
    r.json
}

fn voucher(t: &Tenant, id: &str) -> Value {
    let r = server().get(&format!("/v1/vouchers/{id}"), &t.token);
    assert_eq!(r.status, 200, "get {id}: {}", r.body);
    r.json
}

fn remaining(t: &Tenant, id: &str) -> String {
    voucher(t, id)["remaining_amount"]
        .as_str()
        .unwrap_or_else(|| panic!("no remaining_amount on {id}"))
        .to_string()
}

/// Every ledger entry of a voucher, oldest first.
fn ledger(t: &Tenant, id: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut page = 1;
    loop {
        let r = server().get(
            &format!("/v1/vouchers/{id}/charges?per_page=1000&sort=created_at&page={page}"),
            &t.token,
        );
        assert_eq!(r.status, 200, "ledger of {id}: {}", r.body);
        let data = r.json["data"].as_array().expect("data array").clone();
        out.extend(data);
        if r.json["links"]["next"].is_null() {
            return out;
        }
        page += 1;
    }
}

fn reserve(t: &Tenant, id: &str, body: Value) -> Resp {
    server().post(&format!("/v1/vouchers/{id}/reservations"), &t.token, &body)
}

fn capture(t: &Tenant, id: &str, hold: &str, body: Value) -> Resp {
    server().post(
        &format!("/v1/vouchers/{id}/reservations/{hold}/capture"),
        &t.token,
        &body,
    )
}

fn release(t: &Tenant, id: &str, hold: &str) -> Resp {
    server().delete(&format!("/v1/vouchers/{id}/reservations/{hold}"), &t.token)
}

fn with_key(t: &Tenant, path: &str, key: &str, body: &Value) -> Resp {
    let auth = format!("Bearer {}", t.token);
    let bytes = serde_json::to_vec(body).expect("json");
    server().send(
        "POST",
        path,
        &[("Authorization", auth.as_str()), ("Idempotency-Key", key)],
        Some(("application/json", &bytes)),
    )
}

fn validate(t: &Tenant, body: Value) -> Value {
    let r = server().post("/v1/validate", &t.token, &body);
    assert_eq!(r.status, 200, "validate {body}: {}", r.body);
    r.json
}

fn code_of(t: &Tenant, id: &str) -> String {
    voucher(t, id)["code"].as_str().expect("code").to_string()
}

/// Checks amount − Σcharges + Σrefunds = remaining ≥ 0 against the ledger; returns the entries.
fn assert_balanced(t: &Tenant, id: &str) -> Vec<Value> {
    let v = voucher(t, id);
    let entries = ledger(t, id);
    let sum = |kind: &str| -> i64 {
        entries
            .iter()
            .filter(|e| e["type"] == json!(kind))
            .map(|e| cents(&e["amount"]))
            .sum()
    };
    let left = cents(&v["remaining_amount"]);
    assert_eq!(
        cents(&v["amount"]) - sum("charge") + sum("refund"),
        left,
        "voucher {id} disagrees with its ledger: {v}"
    );
    assert!(left >= 0, "negative balance on {id}: {v}");
    entries
}

// ---- concurrency ----------------------------------------------------------------------------

#[test]
fn hundred_concurrent_charges_of_1_against_50_give_exactly_50_successes() {
    let t = cashier();
    let id = gift(t, "50.00", json!({}));
    let barrier = Barrier::new(100);
    let statuses: Vec<Resp> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..100)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    charge(t, &id, "1.00")
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("charging thread"))
            .collect()
    });
    let ok = statuses.iter().filter(|r| r.status == 201).count();
    for r in statuses.iter().filter(|r| r.status != 201) {
        assert_problem(r, 409, "insufficient_funds");
    }
    assert_eq!(ok, 50, "exactly 50 charges of 1.00 fit in 50.00");
    assert_eq!(remaining(t, &id), "0.00");
    let entries = assert_balanced(t, &id);
    assert_eq!(entries.len(), 50);
    let total: i64 = entries.iter().map(|e| cents(&e["amount"])).sum();
    assert_eq!(total, 5000, "ledger sum is 50.00");
    let acked: BTreeSet<String> = statuses
        .iter()
        .filter(|r| r.status == 201)
        .map(|r| id_of(&r.json["id"]))
        .collect();
    let listed: BTreeSet<String> = entries.iter().map(|e| id_of(&e["id"])).collect();
    assert_eq!(acked, listed, "every 201 is in the ledger and nothing else");
}

#[test]
fn thousands_of_random_charges_and_refunds_keep_every_balance_equal_to_its_ledger() {
    let t = cashier();
    let mut rng = StdRng::seed_from_u64(7);
    let vouchers: Vec<String> = (0..25)
        .map(|_| gift(t, &money(rng.gen_range(1_000..20_000)), json!({})))
        .collect();
    const THREADS: u64 = 16;
    const OPS: usize = 150;
    let results: Vec<(HashMap<String, Vec<Value>>, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|n| {
                let vouchers = &vouchers;
                scope.spawn(move || {
                    let mut rng = StdRng::seed_from_u64(100 + n);
                    let mut acked: HashMap<String, Vec<Value>> = HashMap::new();
                    let mut refused = 0;
                    let mut my_charges: Vec<(String, String)> = Vec::new();
                    for _ in 0..OPS {
                        let id = &vouchers[rng.gen_range(0..vouchers.len())];
                        let refund = !my_charges.is_empty() && rng.gen_bool(0.3);
                        let r = if refund {
                            let (vid, cid) = my_charges[rng.gen_range(0..my_charges.len())].clone();
                            let mut body = json!({"type": "refund", "refers_to": cid});
                            if rng.gen_bool(0.5) {
                                body["amount"] = json!(money(rng.gen_range(1..800)));
                            }
                            let r = post_charge(t, &vid, body);
                            (vid, r)
                        } else {
                            let r = charge(t, id, &money(rng.gen_range(1..1_500)));
                            (id.clone(), r)
                        };
                        let (vid, r) = r;
                        match r.status {
                            201 => {
                                if r.json["type"] == json!("charge") {
                                    my_charges.push((vid.clone(), id_of(&r.json["id"])));
                                }
                                acked.entry(vid).or_default().push(r.json);
                            }
                            409 => {
                                let code = r.json["code"].as_str().unwrap_or("");
                                assert!(
                                    code == "insufficient_funds" || code == "refund_exceeds_charge",
                                    "unexpected refusal: {}",
                                    r.body
                                );
                                refused += 1;
                            }
                            other => panic!("unexpected status {other}: {}", r.body),
                        }
                    }
                    (acked, refused)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker"))
            .collect()
    });
    let mut acked: HashMap<String, BTreeSet<String>> = HashMap::new();
    let mut total_ok = 0;
    for (per_voucher, _) in &results {
        for (vid, entries) in per_voucher {
            total_ok += entries.len();
            acked
                .entry(vid.clone())
                .or_default()
                .extend(entries.iter().map(|e| id_of(&e["id"])));
        }
    }
    let refused: usize = results.iter().map(|(_, r)| r).sum();
    assert!(
        total_ok > 500,
        "a good part of the operations succeed: {total_ok}"
    );
    assert!(refused > 0, "the load drives some vouchers dry: {refused}");
    for id in &vouchers {
        let entries = assert_balanced(t, id);
        let listed: BTreeSet<String> = entries.iter().map(|e| id_of(&e["id"])).collect();
        let expected = acked.remove(id).unwrap_or_default();
        assert_eq!(listed, expected, "ledger of {id} holds exactly the 201s");
        // Each charge's refunds never exceed it.
        for c in entries.iter().filter(|e| e["type"] == json!("charge")) {
            let refunded: i64 = entries
                .iter()
                .filter(|e| e["type"] == json!("refund") && e["refers_to"] == c["id"])
                .map(|e| cents(&e["amount"]))
                .sum();
            assert!(refunded <= cents(&c["amount"]), "over-refunded {c}");
        }
    }
}

// ---- idempotency ----------------------------------------------------------------------------

#[test]
fn ten_concurrent_requests_with_one_key_make_one_entry_and_identical_replays() {
    let t = cashier();
    let id = gift(t, "50.00", json!({}));
    let path = format!("/v1/vouchers/{id}/charges");
    let body = json!({"type": "charge", "amount": "1.00", "order_number": "K-1"});
    let key = unique("key");
    let barrier = Barrier::new(10);
    let answers: Vec<Resp> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..10)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    with_key(t, &path, &key, &body)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("t")).collect()
    });
    let created: Vec<&Resp> = answers.iter().filter(|r| r.status == 201).collect();
    assert!(!created.is_empty(), "at least the first request succeeds");
    for r in answers.iter().filter(|r| r.status != 201) {
        assert_problem(r, 409, "idempotency_conflict");
    }
    for r in &created {
        assert_eq!(r.body, created[0].body, "replays are byte-identical");
    }
    let again = with_key(t, &path, &key, &body);
    assert_eq!(again.status, 201);
    assert_eq!(
        again.body, created[0].body,
        "a later replay is byte-identical"
    );
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(ledger(t, &id).len(), 1, "one ledger entry for one key");
    assert_eq!(remaining(t, &id), "49.00");
}

#[test]
fn the_same_key_with_another_body_is_422_and_writes_nothing() {
    let t = cashier();
    let id = gift(t, "10.00", json!({}));
    let path = format!("/v1/vouchers/{id}/charges");
    let key = unique("key");
    let first = with_key(t, &path, &key, &json!({"type": "charge", "amount": "1.00"}));
    assert_eq!(first.status, 201, "{}", first.body);
    let other = with_key(t, &path, &key, &json!({"type": "charge", "amount": "2.00"}));
    assert_problem(&other, 422, "idempotency_key_reused");
    let elsewhere = gift(t, "10.00", json!({}));
    let moved = with_key(
        t,
        &format!("/v1/vouchers/{elsewhere}/charges"),
        &key,
        &json!({"type": "charge", "amount": "1.00"}),
    );
    assert_problem(&moved, 422, "idempotency_key_reused");
    assert_eq!(remaining(t, &id), "9.00");
    assert_eq!(remaining(t, &elsewhere), "10.00");
}

#[test]
fn a_failed_first_attempt_replays_its_failure() {
    let t = cashier();
    let id = gift(t, "10.00", json!({"status": "inactive"}));
    let path = format!("/v1/vouchers/{id}/charges");
    let key = unique("key");
    let body = json!({"type": "charge", "amount": "1.00"});
    let first = with_key(t, &path, &key, &body);
    assert_problem(&first, 409, "voucher_inactive");
    let r = server().patch(
        &format!("/v1/vouchers/{id}"),
        &t.token,
        &json!({"status": "active"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let replay = with_key(t, &path, &key, &body);
    assert_problem(&replay, 409, "voucher_inactive");
    assert_eq!(replay.body, first.body);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert!(ledger(t, &id).is_empty(), "the replay had no effect");
    let fresh = with_key(t, &path, &unique("key"), &body);
    assert_eq!(fresh.status, 201, "a new key runs again: {}", fresh.body);
}

#[test]
fn another_clients_same_key_is_independent() {
    let s = server();
    let t = cashier();
    let (other_id, other_secret) = s.create_client(&unique("till"), &t.group_name, None);
    let other = Tenant {
        client_id: other_id.clone(),
        token: s.token(&other_id, &other_secret, None),
        secret: other_secret,
        ..t.clone()
    };
    let id = gift(t, "10.00", json!({}));
    let path = format!("/v1/vouchers/{id}/charges");
    let key = unique("shared");
    let body = json!({"type": "charge", "amount": "1.00"});
    let a = with_key(t, &path, &key, &body);
    let b = with_key(&other, &path, &key, &body);
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(b.status, 201, "{}", b.body);
    assert_ne!(a.json["id"], b.json["id"], "two entries, not a replay");
    assert_eq!(b.header("idempotent-replayed"), None);
    assert_eq!(b.json["client_id"], json!(other_id));
    assert_eq!(ledger(t, &id).len(), 2);
}

#[test]
fn idempotency_keys_work_on_creates_and_reservations_and_reject_bad_keys() {
    let t = cashier();
    let key = unique("create");
    let body = json!({"amount": "5.00", "label": "once"});
    let a = with_key(t, "/v1/vouchers", &key, &body);
    let b = with_key(t, "/v1/vouchers", &key, &body);
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(b.body, a.body, "the create is replayed, not repeated");
    let id = id_of(&a.json["id"]);
    let hold_key = unique("hold");
    let path = format!("/v1/vouchers/{id}/reservations");
    let h1 = with_key(t, &path, &hold_key, &json!({"amount": "3.00"}));
    let h2 = with_key(t, &path, &hold_key, &json!({"amount": "3.00"}));
    assert_eq!(h1.status, 201, "{}", h1.body);
    assert_eq!(h1.body, h2.body);
    assert_eq!(voucher(t, &id)["held_amount"], json!("3.00"), "one hold");
    let long = "k".repeat(256);
    let r = with_key(t, &path, &long, &json!({"amount": "1.00"}));
    assert_eq!(r.status, 400, "a 256-char key is refused: {}", r.body);
    assert!(r.content_type().starts_with("application/problem+json"));
    let ok = with_key(t, &path, &"k".repeat(255), &json!({"amount": "1.00"}));
    assert_eq!(ok.status, 201, "255 chars is fine: {}", ok.body);
}

// ---- charge rules ---------------------------------------------------------------------------

#[test]
fn charges_take_exactly_what_is_left_and_no_more() {
    let t = cashier();
    let id = gift(t, "10.00", json!({}));
    let c = charged(t, &id, "2.50");
    assert_eq!(c["type"], json!("charge"));
    assert_eq!(c["amount"], json!("2.50"));
    assert_eq!(c["voucher_id"], json!(id));
    assert_eq!(c["client_id"], json!(cashier().client_id));
    assert_eq!(c["order_number"], json!("T-1"));
    assert!(c["refers_to"].is_null());
    for field in ["created_at", "updated_at"] {
        parse_ts(c[field].as_str().expect("timestamp"));
    }
    assert_problem(&charge(t, &id, "7.51"), 409, "insufficient_funds");
    assert_eq!(remaining(t, &id), "7.50", "a refusal writes nothing");
    charged(t, &id, "7.50");
    assert_eq!(remaining(t, &id), "0.00");
    assert_problem(&charge(t, &id, "0.01"), 409, "insufficient_funds");
    assert_eq!(ledger(t, &id).len(), 2);
    let gone = server().delete(&format!("/v1/vouchers/{id}"), &t.token);
    assert_problem(&gone, 409, "not_deletable");
}

#[test]
fn bad_charge_bodies_are_422_naming_the_field() {
    let t = cashier();
    let id = gift(t, "10.00", json!({}));
    for (body, field) in [
        (json!({"amount": "1.00"}), "type"),
        (json!({"type": "steal", "amount": "1.00"}), "type"),
        (json!({"type": "charge"}), "amount"),
        (json!({"type": "charge", "amount": "0.00"}), "amount"),
        (json!({"type": "charge", "amount": "-1.00"}), "amount"),
        (json!({"type": "charge", "amount": "1.001"}), "amount"),
        (json!({"type": "charge", "amount": 1e300}), "amount"),
        (json!({"type": "charge", "amount": "1.00", "tip": 1}), "tip"),
        (json!({"type": "refund"}), "refers_to"),
        (json!({"type": "use"}), "ticket_total"),
    ] {
        assert_invalid_field(&post_charge(t, &id, body), field);
    }
    assert_eq!(remaining(t, &id), "10.00");
    assert!(ledger(t, &id).is_empty());
}

#[test]
fn amounts_are_checked_against_the_vouchers_currency() {
    // The voucher is read in the write, so the decimals are checked there: by its currency.
    let t = cashier();
    let yen = gift(t, "500", json!({"currency": "JPY"}));
    let dinar = gift(t, "5.000", json!({"currency": "KWD"}));
    let euro = gift(t, "10.00", json!({}));
    let off = discount(t, json!({"type": "money", "value": "2.00"}), json!({}));
    for (id, body, field) in [
        (&yen, json!({"type": "charge", "amount": "1.5"}), "amount"),
        (&yen, json!({"type": "charge", "amount": 1.5}), "amount"),
        (
            &dinar,
            json!({"type": "charge", "amount": "0.0001"}),
            "amount",
        ),
        (
            &euro,
            json!({"type": "charge", "amount": "0.00001"}),
            "amount",
        ),
        (&euro, json!({"type": "charge", "amount": true}), "amount"),
        (&euro, json!({"type": "charge", "amount": ["1"]}), "amount"),
        (
            &euro,
            json!({"type": "refund", "refers_to": "X", "amount": "0.001"}),
            "amount",
        ),
        (
            &off,
            json!({"type": "use", "ticket_total": "9.999"}),
            "ticket_total",
        ),
    ] {
        assert_invalid_field(&post_charge(t, id, body), field);
    }
    assert_eq!(remaining(t, &yen), "500");
    assert_eq!(remaining(t, &dinar), "5.000");
    assert!(ledger(t, &yen).is_empty() && ledger(t, &dinar).is_empty());
    assert_eq!(charged(t, &yen, "7")["amount"], "7");
    assert_eq!(charged(t, &dinar, "0.125")["amount"], "0.125");
    assert_eq!(charged(t, &euro, "0.5")["amount"], "0.50");
    assert_eq!(remaining(t, &dinar), "4.875");
    // An unknown voucher is 404 whatever the amount's decimals.
    let r = charge(t, "NOSUCHVOUCHER000", "1.5");
    assert_eq!(r.status, 404, "{}", r.body);
}

#[test]
fn status_rules_refuse_inactive_and_cancelled_and_allow_active() {
    let t = cashier();
    let id = gift(t, "10.00", json!({"status": "inactive"}));
    assert_problem(&charge(t, &id, "1.00"), 409, "voucher_inactive");
    let patch = |status: &str| {
        let r = server().patch(
            &format!("/v1/vouchers/{id}"),
            &t.token,
            &json!({ "status": status }),
        );
        assert_eq!(r.status, 200, "{}", r.body);
    };
    patch("active");
    charged(t, &id, "1.00");
    patch("cancelled");
    assert_problem(&charge(t, &id, "1.00"), 409, "voucher_cancelled");
    assert_problem(
        &reserve(t, &id, json!({"amount": "1.00"})),
        409,
        "voucher_cancelled",
    );
    assert_eq!(remaining(t, &id), "9.00");
}

#[test]
fn not_yet_valid_is_refused_until_valid_from() {
    let t = cashier();
    let soon = now() + 86_400;
    let later = gift(t, "10.00", json!({"valid_from": rfc3339(soon)}));
    assert_problem(&charge(t, &later, "1.00"), 409, "voucher_not_yet_valid");
    let started = gift(t, "10.00", json!({"valid_from": rfc3339(now() - 60)}));
    charged(t, &started, "1.00");
}

#[test]
fn a_timestamp_valid_until_in_the_past_is_expired() {
    let t = cashier();
    let past = gift(t, "10.00", json!({"valid_until": rfc3339(now() - 5)}));
    assert_problem(&charge(t, &past, "1.00"), 409, "voucher_expired");
    let future = gift(t, "10.00", json!({"valid_until": rfc3339(now() + 3600)}));
    charged(t, &future, "1.00");
}

/// `valid_until` as a date means the end of that day at `--utc-offset`. The offset is chosen so
/// the server's local date differs from the UTC date, so a UTC reading would give the other
/// answer for `utc_today`.
#[test]
fn date_only_valid_until_expires_at_the_end_of_the_local_day() {
    // Stay clear of a local midnight during the test.
    while {
        let n = now();
        (n + 14 * 3600).rem_euclid(86_400) > 86_100 || (n - 12 * 3600).rem_euclid(86_400) > 86_100
    } {
        std::thread::sleep(Duration::from_secs(5));
    }
    let n = now();
    let utc_hour = n.rem_euclid(86_400) / 3600;
    // East of UTC the local day is already tomorrow after 10:00 UTC; west it is still
    // yesterday before 12:00 UTC.
    let (flag, offset) = if utc_hour >= 10 {
        ("+14:00", 14 * 3600)
    } else {
        ("-12:00", -12 * 3600)
    };
    let s = TestServer::start_with(&["--utc-offset", flag]);
    let t = s.tenant(CASHIER);
    let day = |secs: i64| -> String {
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        format!("{y:04}-{m:02}-{d:02}")
    };
    let local_today = day(n + offset);
    let local_yesterday = day(n + offset - 86_400);
    let utc_today = day(n);
    assert_ne!(local_today, utc_today, "the offset separates the two dates");
    let make = |date: &str| {
        let v = s.create_voucher(&t.token, &json!({"amount": "5.00", "valid_until": date}));
        let until = parse_ts(v["valid_until"].as_str().expect("valid_until"));
        assert_eq!(until.off, flag, "rendered at the server's offset");
        assert_eq!(
            (until.h, until.mi, until.s),
            (23, 59, 59),
            "end of the day: {v}"
        );
        id_of(&v["id"])
    };
    let try_charge = |id: &str| {
        s.post(
            &format!("/v1/vouchers/{id}/charges"),
            &t.token,
            &json!({"type": "charge", "amount": "1.00"}),
        )
    };
    let today = make(&local_today);
    let r = try_charge(&today);
    assert_eq!(r.status, 201, "valid all of the local day: {}", r.body);
    let yesterday = make(&local_yesterday);
    assert_problem(&try_charge(&yesterday), 409, "voucher_expired");
    let by_utc = make(&utc_today);
    let r = try_charge(&by_utc);
    if offset > 0 {
        // The UTC date is the local yesterday: over.
        assert_problem(&r, 409, "voucher_expired");
    } else {
        // The UTC date is the local tomorrow: still valid.
        assert_eq!(r.status, 201, "{}", r.body);
    }
}

#[test]
fn a_request_currency_must_match_the_vouchers() {
    let t = cashier();
    let id = gift(t, "10.00", json!({"currency": "EUR"}));
    let mut body = json!({"type": "charge", "amount": "1.00", "currency": "USD"});
    assert_problem(&post_charge(t, &id, body.clone()), 409, "currency_mismatch");
    body["currency"] = json!("EUR");
    assert_eq!(post_charge(t, &id, body).status, 201);
    let bad = post_charge(
        t,
        &id,
        json!({"type": "charge", "amount": "1.00", "currency": "EURO"}),
    );
    assert_invalid_field(&bad, "currency");
    let code = code_of(t, &id);
    let v = validate(
        t,
        json!({"code": code, "amount": "1.00", "currency": "JPY"}),
    );
    assert_eq!(v["valid"], json!(false));
    assert_eq!(v["reason"], json!("currency_mismatch"));
}

#[test]
fn customer_product_and_store_restrictions_apply_when_given_on_both_sides() {
    let t = cashier();
    let id = gift(
        t,
        "100.00",
        json!({"customer_id": "C1", "product_id": "P1", "store_id": "S1"}),
    );
    let attempt = |extra: Value| {
        let mut body = json!({"type": "charge", "amount": "1.00"});
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        post_charge(t, &id, body)
    };
    for no in [
        json!({"customer_id": "C2"}),
        json!({"store_id": "S2"}),
        json!({"product_id": "P2"}),
        json!({"product_ids": ["P2", "P3"]}),
        json!({"customer_id": "C1", "store_id": "S9"}),
    ] {
        let r = attempt(no.clone());
        assert_problem(&r, 409, "restriction_mismatch");
    }
    for yes in [
        json!({}),
        json!({"customer_id": "C1"}),
        json!({"store_id": "S1"}),
        json!({"product_id": "P1"}),
        json!({"product_ids": ["P2", "P1"]}),
        json!({"customer_id": "C1", "store_id": "S1", "product_ids": ["P1"]}),
    ] {
        let r = attempt(yes.clone());
        assert_eq!(r.status, 201, "{yes} should pass: {}", r.body);
    }
    // A voucher without restrictions takes any of them.
    let open = gift(t, "10.00", json!({}));
    let r = post_charge(
        t,
        &open,
        json!({"type": "charge", "amount": "1.00", "customer_id": "anyone", "store_id": "S7"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let v = validate(
        t,
        json!({"code": code_of(t, &id), "amount": "1.00", "store_id": "S2"}),
    );
    assert_eq!(v["reason"], json!("restriction_mismatch"));
}

// ---- discount vouchers ----------------------------------------------------------------------

fn use_it(t: &Tenant, id: &str, total: &str) -> Resp {
    post_charge(
        t,
        id,
        json!({"type": "use", "ticket_total": total, "order_number": "R-9"}),
    )
}

#[test]
fn a_money_discount_grants_the_smaller_of_value_and_ticket_and_is_used_once() {
    let t = cashier();
    let id = discount(t, json!({"type": "money", "value": "5.00"}), json!({}));
    let r = use_it(t, &id, "3.00");
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json["type"], json!("use"));
    assert_eq!(r.json["amount"], json!("3.00"), "no more than the ticket");
    let v = voucher(t, &id);
    assert_eq!(v["uses"], json!(1));
    assert_eq!(v["max_uses"], json!(1));
    assert!(v["used_at"].is_string(), "used_at set: {v}");
    assert_problem(&use_it(t, &id, "40.00"), 409, "voucher_used");
    let big = discount(t, json!({"type": "money", "value": "5.00"}), json!({}));
    let r = use_it(t, &big, "40.00");
    assert_eq!(r.json["amount"], json!("5.00"), "no more than the value");
}

#[test]
fn a_multi_use_discount_counts_its_uses_up_to_max_uses() {
    let t = cashier();
    let id = discount(
        t,
        json!({"type": "percentage", "value": "10"}),
        json!({"max_uses": 3}),
    );
    for n in 1..=3 {
        let r = use_it(t, &id, "20.00");
        assert_eq!(r.status, 201, "use {n}: {}", r.body);
        assert_eq!(r.json["amount"], json!("2.00"));
        assert_eq!(voucher(t, &id)["uses"], json!(n));
    }
    assert_problem(&use_it(t, &id, "20.00"), 409, "voucher_used");
    assert_eq!(voucher(t, &id)["uses"], json!(3));
    assert_eq!(ledger(t, &id).len(), 3);
}

#[test]
fn percentages_round_half_up_to_minor_units() {
    let t = cashier();
    for (percent, total, granted) in [
        ("33", "0.05", "0.02"),
        ("50", "0.05", "0.03"),
        ("33", "0.03", "0.01"),
        ("12.5", "10.00", "1.25"),
        ("100", "19.99", "19.99"),
        ("15", "0.10", "0.02"),
    ] {
        let id = discount(
            t,
            json!({"type": "percentage", "value": percent}),
            json!({}),
        );
        let r = use_it(t, &id, total);
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(
            r.json["amount"],
            json!(granted),
            "{percent}% of {total} rounds half up"
        );
    }
}

#[test]
fn charge_and_use_each_need_their_kind_of_voucher() {
    let t = cashier();
    let value = gift(t, "10.00", json!({}));
    let disc = discount(t, json!({"type": "money", "value": "5.00"}), json!({}));
    assert_problem(&use_it(t, &value, "10.00"), 409, "wrong_voucher_kind");
    assert_problem(&charge(t, &disc, "1.00"), 409, "wrong_voucher_kind");
    assert_problem(
        &reserve(t, &disc, json!({"amount": "1.00"})),
        409,
        "wrong_voucher_kind",
    );
}

// ---- refunds --------------------------------------------------------------------------------

#[test]
fn refunds_give_back_up_to_what_their_charge_took() {
    let t = cashier();
    let id = gift(t, "20.00", json!({}));
    let c = charged(t, &id, "10.00");
    let cid = id_of(&c["id"]);
    let refund = |amount: Option<&str>, to: &str| {
        let mut body = json!({"type": "refund", "refers_to": to});
        if let Some(a) = amount {
            body["amount"] = json!(a);
        }
        post_charge(t, &id, body)
    };
    let r = refund(Some("4.00"), &cid);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json["type"], json!("refund"));
    assert_eq!(r.json["refers_to"], json!(cid));
    assert_eq!(remaining(t, &id), "14.00");
    assert_problem(&refund(Some("6.01"), &cid), 409, "refund_exceeds_charge");
    assert_eq!(refund(Some("6.00"), &cid).status, 201);
    assert_problem(&refund(Some("0.01"), &cid), 409, "refund_exceeds_charge");
    assert_problem(&refund(None, &cid), 409, "refund_exceeds_charge");
    assert_eq!(remaining(t, &id), "20.00");
    // Without an amount a refund gives back all that is left of the charge.
    let c2 = id_of(&charged(t, &id, "3.00")["id"]);
    let r = refund(None, &c2);
    assert_eq!(r.json["amount"], json!("3.00"), "{}", r.body);
    // Only charges of this voucher can be refunded.
    let refund_id = id_of(&r.json["id"]);
    assert_invalid_field(&refund(Some("1.00"), &refund_id), "refers_to");
    assert_invalid_field(&refund(Some("1.00"), "nope"), "refers_to");
    let other = gift(t, "20.00", json!({}));
    let foreign = id_of(&charged(t, &other, "5.00")["id"]);
    assert_invalid_field(&refund(Some("1.00"), &foreign), "refers_to");
    assert_balanced(t, &id);
    assert_balanced(t, &other);
}

// ---- reservations ---------------------------------------------------------------------------

#[test]
fn a_hold_blocks_charges_and_capture_takes_at_most_the_hold() {
    let t = cashier();
    let id = gift(t, "10.00", json!({}));
    let r = reserve(t, &id, json!({"amount": "7.00", "order_number": "H-1"}));
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json["status"], json!("held"));
    assert_eq!(r.json["amount"], json!("7.00"));
    let expires = parse_ts(r.json["expires_at"].as_str().expect("expires_at")).epoch();
    assert!(
        (expires - now() - 900).abs() <= 5,
        "expires_in defaults to 900 s: {}",
        r.body
    );
    let hold = id_of(&r.json["id"]);
    assert_eq!(voucher(t, &id)["held_amount"], json!("7.00"));
    assert_problem(&charge(t, &id, "3.01"), 409, "insufficient_funds");
    assert_problem(
        &reserve(t, &id, json!({"amount": "3.01"})),
        409,
        "insufficient_funds",
    );
    charged(t, &id, "3.00");
    assert_problem(
        &capture(t, &id, &hold, json!({"amount": "7.01"})),
        409,
        "capture_exceeds_hold",
    );
    let c = capture(t, &id, &hold, json!({"amount": "5.00"}));
    assert_eq!(c.status, 201, "{}", c.body);
    assert_eq!(c.json["type"], json!("charge"));
    assert_eq!(c.json["amount"], json!("5.00"));
    assert_eq!(c.json["refers_to"], json!(hold));
    assert_problem(
        &capture(t, &id, &hold, json!({})),
        409,
        "reservation_not_held",
    );
    assert_problem(&release(t, &id, &hold), 409, "reservation_not_held");
    let v = voucher(t, &id);
    assert_eq!(
        v["remaining_amount"],
        json!("2.00"),
        "capture ended the hold: {v}"
    );
    assert_eq!(v["held_amount"], json!("0.00"));
    assert_balanced(t, &id);
}

#[test]
fn a_capture_without_amount_takes_the_whole_hold() {
    let t = cashier();
    let id = gift(t, "10.00", json!({}));
    let r = reserve(t, &id, json!({"amount": "4.00"}));
    let hold = id_of(&r.json["id"]);
    let c = capture(t, &id, &hold, json!({}));
    assert_eq!(c.status, 201, "{}", c.body);
    assert_eq!(c.json["amount"], json!("4.00"));
    assert_eq!(remaining(t, &id), "6.00");
}

#[test]
fn a_released_hold_frees_the_balance() {
    let t = cashier();
    let id = gift(t, "10.00", json!({}));
    let r = reserve(t, &id, json!({"amount": "10.00"}));
    let hold = id_of(&r.json["id"]);
    assert_problem(&charge(t, &id, "0.01"), 409, "insufficient_funds");
    let gone = release(t, &id, &hold);
    assert_eq!(gone.status, 204, "{}", gone.body);
    assert_problem(&release(t, &id, &hold), 409, "reservation_not_held");
    assert_problem(
        &capture(t, &id, &hold, json!({})),
        409,
        "reservation_not_held",
    );
    charged(t, &id, "10.00");
    assert_eq!(remaining(t, &id), "0.00");
    assert_problem(&release(t, &id, "no-such-hold"), 404, "not_found");
}

#[test]
fn an_expired_hold_stops_counting_without_any_job() {
    let t = cashier();
    let id = gift(t, "10.00", json!({}));
    let r = reserve(t, &id, json!({"amount": "10.00", "expires_in": 3}));
    assert_eq!(r.status, 201, "{}", r.body);
    let hold = id_of(&r.json["id"]);
    assert_problem(&charge(t, &id, "1.00"), 409, "insufficient_funds");
    std::thread::sleep(Duration::from_millis(4100));
    assert_eq!(voucher(t, &id)["held_amount"], json!("0.00"));
    assert_problem(
        &capture(t, &id, &hold, json!({})),
        409,
        "reservation_expired",
    );
    charged(t, &id, "10.00");
    assert_balanced(t, &id);
}

#[test]
fn reservation_bodies_are_checked() {
    let t = cashier();
    let id = gift(t, "10.00", json!({}));
    for (body, field) in [
        (json!({}), "amount"),
        (json!({"amount": "0"}), "amount"),
        (json!({"amount": "1.00", "expires_in": 0}), "expires_in"),
        (
            json!({"amount": "1.00", "expires_in": 86_401}),
            "expires_in",
        ),
        (json!({"amount": "1.00", "expires_in": "60"}), "expires_in"),
    ] {
        assert_invalid_field(&reserve(t, &id, body), field);
    }
    let r = reserve(t, &id, json!({"amount": "1.00", "expires_in": 86_400}));
    assert_eq!(r.status, 201, "{}", r.body);
}

// ---- validate -------------------------------------------------------------------------------

#[test]
fn validate_is_a_dry_run_that_says_how_much_and_why_not() {
    let t = cashier();
    let id = gift(t, "10.00", json!({}));
    let code = code_of(t, &id);
    let v = validate(t, json!({"code": code.to_lowercase(), "amount": "4.00"}));
    assert_eq!(v["valid"], json!(true), "{v}");
    assert!(v["reason"].is_null());
    assert_eq!(v["applicable_amount"], json!("4.00"));
    assert_eq!(v["voucher"]["id"], json!(id));
    let v = validate(t, json!({"code": code, "amount": "12.00"}));
    assert_eq!(v["valid"], json!(false));
    assert_eq!(v["reason"], json!("insufficient_funds"));
    assert_eq!(v["applicable_amount"], json!("10.00"));
    let v = validate(t, json!({"code": "ZZZZ-ZZZZ"}));
    assert_eq!(v["valid"], json!(false));
    assert_eq!(v["reason"], json!("not_found"));
    assert!(v["voucher"].is_null());
    let disc = discount(t, json!({"type": "percentage", "value": "33"}), json!({}));
    let v = validate(
        t,
        json!({"code": code_of(t, &disc), "ticket_total": "0.05"}),
    );
    assert_eq!(v["applicable_amount"], json!("0.02"));
    assert!(ledger(t, &id).is_empty(), "validate writes nothing");
    assert!(ledger(t, &disc).is_empty());
    assert_eq!(voucher(t, &disc)["uses"], json!(0));
    assert_invalid_field(&server().post("/v1/validate", &t.token, &json!({})), "code");
}

// ---- the charges list -----------------------------------------------------------------------

#[test]
fn the_charges_list_filters_sorts_and_pages() {
    let t = cashier();
    let id = gift(t, "100.00", json!({}));
    for (amount, order) in [("1.00", "A"), ("2.00", "B"), ("3.00", "A"), ("4.00", "C")] {
        let r = post_charge(
            t,
            &id,
            json!({"type": "charge", "amount": amount, "order_number": order}),
        );
        assert_eq!(r.status, 201);
    }
    let list = |query: &str| -> Resp {
        let r = server().get(&format!("/v1/vouchers/{id}/charges{query}"), &t.token);
        assert_eq!(r.status, 200, "{query}: {}", r.body);
        r
    };
    let amounts = |r: &Resp| -> Vec<String> {
        r.json["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|e| e["amount"].as_str().expect("amount").to_string())
            .collect()
    };
    let all = list("");
    assert_eq!(
        amounts(&all),
        ["4.00", "3.00", "2.00", "1.00"],
        "newest first"
    );
    assert_eq!(all.json["meta"]["total"], json!(4));
    assert_eq!(
        amounts(&list("?filter[order_number]=A&sort=amount")),
        ["1.00", "3.00"]
    );
    assert_eq!(amounts(&list("?filter[amount]=2.00")), ["2.00"]);
    assert_eq!(
        amounts(&list("?sort=-amount")),
        ["4.00", "3.00", "2.00", "1.00"]
    );
    let first = list("?sort=amount&per_page=3");
    assert_eq!(amounts(&first), ["1.00", "2.00", "3.00"]);
    let meta = &first.json["meta"];
    assert_eq!(
        (
            &meta["current_page"],
            &meta["last_page"],
            &meta["from"],
            &meta["to"]
        ),
        (&json!(1), &json!(2), &json!(1), &json!(3))
    );
    let next = first.json["links"]["next"].as_str().expect("next link");
    assert!(
        next.contains("sort=amount") && next.contains("page=2"),
        "{next}"
    );
    let second = server().get(next, &t.token);
    assert_eq!(amounts(&second), ["4.00"]);
    assert!(second.json["links"]["next"].is_null());
    let past = list("?page=9");
    assert!(past.json["data"].as_array().expect("data").is_empty());
    assert!(past.json["meta"]["from"].is_null());
    let in_window = list(&format!(
        "?filter[created_from]={}&filter[created_to]={}",
        enc(&rfc3339(now() - 3600)),
        enc(&rfc3339(now() + 3600))
    ));
    assert_eq!(in_window.json["meta"]["total"], json!(4));
    let later = list(&format!(
        "?filter[created_from]={}",
        enc(&rfc3339(now() + 3600))
    ));
    assert_eq!(later.json["meta"]["total"], json!(0));
    for bad in [
        "filter[status]=active",
        "filter[amount]=abc",
        "sort=code",
        "per_page=0",
    ] {
        let r = server().get(&format!("/v1/vouchers/{id}/charges?{bad}"), &t.token);
        let param = bad.split('=').next().unwrap_or("");
        assert_invalid_param(&r, param);
    }
}

#[test]
fn another_group_gets_404_on_every_ledger_route_and_admin_sees_all() {
    let s = server();
    let t = cashier();
    let other = s.tenant(CASHIER);
    let id = gift(t, "10.00", json!({}));
    let hold = id_of(&reserve(t, &id, json!({"amount": "1.00"})).json["id"]);
    let entry = id_of(&charged(t, &id, "1.00")["id"]);
    let base = format!("/v1/vouchers/{id}");
    let answers = [
        s.get(&format!("{base}/charges"), &other.token),
        s.post(
            &format!("{base}/charges"),
            &other.token,
            &json!({"type": "charge", "amount": "1.00"}),
        ),
        s.post(
            &format!("{base}/charges"),
            &other.token,
            &json!({"type": "refund", "refers_to": entry}),
        ),
        s.post(
            &format!("{base}/reservations"),
            &other.token,
            &json!({"amount": "1.00"}),
        ),
        s.post(
            &format!("{base}/reservations/{hold}/capture"),
            &other.token,
            &json!({}),
        ),
        s.delete(&format!("{base}/reservations/{hold}"), &other.token),
    ];
    for r in &answers {
        assert_problem(r, 404, "not_found");
    }
    let v = s.post(
        "/v1/validate",
        &other.token,
        &json!({"code": code_of(t, &id), "amount": "1.00"}),
    );
    assert_eq!(v.json["reason"], json!("not_found"), "{}", v.body);
    assert_eq!(remaining(t, &id), "9.00", "nothing moved");
    assert_eq!(voucher(t, &id)["held_amount"], json!("1.00"));
    let admin = s.admin_token();
    let r = s.get(&format!("{base}/charges"), &admin);
    assert_eq!(r.json["meta"]["total"], json!(1), "{}", r.body);
    // Scopes: reading vouchers is not reading or writing charges.
    let reader = s.tenant(&["vouchers:read"]);
    let mine = s.get(&format!("{base}/charges"), &reader.token);
    assert_eq!(mine.status, 403, "{}", mine.body);
}

// ---- helpers --------------------------------------------------------------------------------

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn rfc3339(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}
