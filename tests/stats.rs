//! `GET /v1/stats` (issue 7, the dashboard's figures): vouchers issued, the outstanding balance
//! per currency and the ledger per day over 90 days, with exact numbers, per tenant.
//!
//! Live requests can only write ledger entries "now"; the day-boundary test writes entries
//! with chosen past times straight into the database file (append-only inserts, which the
//! ledger's triggers allow), the way a long-running shop's history would look.

use crate::common::*;
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

/// The day entries of a stats body: (date, charges, uses, refunds, amounts).
fn day<'a>(stats: &'a Value, date: &str) -> &'a Value {
    stats["charges_per_day"]
        .as_array()
        .expect("charges_per_day")
        .iter()
        .find(|d| d["date"] == json!(date))
        .unwrap_or_else(|| panic!("no day {date} in {stats}"))
}

fn stats(s: &TestServer, token: &str) -> Value {
    let r = s.get("/v1/stats", token);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.content_type().starts_with("application/json"));
    r.json
}

/// The shop's today, as the server says (`as_of`, at its `--utc-offset`).
fn today(stats: &Value) -> Ts {
    parse_ts(stats["as_of"].as_str().expect("as_of"))
}

fn date(t: &Ts) -> String {
    format!("{:04}-{:02}-{:02}", t.y, t.mo, t.d)
}

/// Asserts 90 consecutive days ending today, and that every day but `busy` is all zeros.
fn assert_window(stats: &Value, busy: &[String]) {
    let days = stats["charges_per_day"].as_array().expect("days");
    assert_eq!(days.len(), 90, "{stats}");
    let last = today(stats);
    for (i, d) in days.iter().enumerate() {
        let want = date(&last.plus_days(i as i64 - 89));
        assert_eq!(d["date"], json!(want), "day {i}");
        if !busy.contains(&want) {
            assert_eq!(
                (&d["charges"], &d["uses"], &d["refunds"], &d["amounts"]),
                (&json!(0), &json!(0), &json!(0), &json!([])),
                "{want} should be quiet: {d}"
            );
        }
    }
}

fn charge(s: &TestServer, token: &str, id: &str, body: Value) -> Value {
    let r = s.post(&format!("/v1/vouchers/{id}/charges"), token, &body);
    assert_eq!(r.status, 201, "{}", r.body);
    r.json
}

#[test]
fn stats_count_issued_vouchers_liability_and_todays_ledger_per_group() {
    let s = TestServer::start();
    let a = s.tenant(CASHIER);
    let b = s.tenant(CASHIER);
    let make = |t: &Tenant, body: Value| id_of(&s.create_voucher(&t.token, &body)["id"]);
    let eur = make(&a, json!({"amount": "25.00", "currency": "EUR"}));
    let chf = make(&a, json!({"amount": "10.00", "currency": "CHF"}));
    let off = make(&a, json!({"discount": {"type": "money", "value": "5.00"}}));
    make(&a, json!({"amount": "7.00", "status": "inactive"}));
    make(&a, json!({"amount": "50.00", "status": "cancelled"}));
    make(&a, json!({"amount": "8.00", "valid_until": "2020-01-01"}));
    let other = make(&b, json!({"amount": "100.00"}));

    let first = charge(
        &s,
        &a.token,
        &eur,
        json!({"type": "charge", "amount": "5.00"}),
    );
    charge(
        &s,
        &a.token,
        &eur,
        json!({"type": "charge", "amount": "2.50"}),
    );
    charge(
        &s,
        &a.token,
        &eur,
        json!({"type": "refund", "refers_to": first["id"], "amount": "1.00"}),
    );
    charge(
        &s,
        &a.token,
        &off,
        json!({"type": "use", "ticket_total": "30.00"}),
    );
    charge(
        &s,
        &b.token,
        &other,
        json!({"type": "charge", "amount": "30.00"}),
    );
    // A hold keeps the money owed: it is still on the card until captured.
    let hold = s.post(
        &format!("/v1/vouchers/{chf}/reservations"),
        &a.token,
        &json!({"amount": "4.00"}),
    );
    assert_eq!(hold.status, 201, "{}", hold.body);

    let sa = stats(&s, &a.token);
    assert_eq!(
        sa["issued"],
        json!({"total": 6, "value": 5, "discount": 1, "active": 4, "inactive": 1,
               "cancelled": 1, "last_90_days": 6})
    );
    // Cancelled and expired cards owe nothing; the inactive one still does.
    assert_eq!(
        sa["liability"],
        json!([{"currency": "CHF", "amount": "10.00", "vouchers": 1},
               {"currency": "EUR", "amount": "25.50", "vouchers": 2}])
    );
    let now = date(&today(&sa));
    assert_eq!(
        day(&sa, &now),
        &json!({"date": now, "charges": 2, "uses": 1, "refunds": 1, "amounts": [
            {"currency": "EUR", "charged": "7.50", "discounted": "5.00", "refunded": "1.00"}]})
    );
    assert_window(&sa, std::slice::from_ref(&now));

    let sb = stats(&s, &b.token);
    assert_eq!(sb["issued"]["total"], json!(1));
    assert_eq!(
        sb["liability"],
        json!([{"currency": "EUR", "amount": "70.00", "vouchers": 1}])
    );
    assert_eq!(
        day(&sb, &now),
        &json!({"date": now, "charges": 1, "uses": 0, "refunds": 0, "amounts": [
            {"currency": "EUR", "charged": "30.00", "discounted": "0.00", "refunded": "0.00"}]})
    );

    let all = stats(&s, &s.admin_token());
    assert_eq!(all["issued"]["total"], json!(7));
    assert_eq!(all["issued"]["value"], json!(6));
    assert_eq!(
        all["liability"],
        json!([{"currency": "CHF", "amount": "10.00", "vouchers": 1},
               {"currency": "EUR", "amount": "95.50", "vouchers": 3}])
    );
    let d = day(&all, &now);
    assert_eq!(
        (&d["charges"], &d["uses"], &d["refunds"]),
        (&json!(3), &json!(1), &json!(1))
    );
    assert_eq!(d["amounts"][0]["charged"], json!("37.50"));
}

#[test]
fn stats_of_an_empty_shop_are_zeros_and_ninety_quiet_days() {
    let s = TestServer::start();
    let t = s.tenant(&[READ]);
    let st = stats(&s, &t.token);
    assert_eq!(
        st["issued"],
        json!({"total": 0, "value": 0, "discount": 0, "active": 0, "inactive": 0,
               "cancelled": 0, "last_90_days": 0})
    );
    assert_eq!(st["liability"], json!([]));
    assert_window(&st, &[]);
}

/// Writes a ledger entry with a chosen time straight into the database.
fn insert_entry(s: &TestServer, n: u32, voucher: &str, kind: &str, cents: i64, at: i64) {
    let written = s.sql().execute(
        "INSERT INTO ledger (id, voucher_id, client_id, type, amount, created_at)
         SELECT CAST(?1 AS TEXT), id, client_id, CAST(?2 AS TEXT), CAST(?3 AS BIGINT),
                CAST(?4 AS BIGINT)
         FROM vouchers WHERE id = ?5",
        &[
            format!("TESTENTRY{n:07}").into(),
            kind.into(),
            cents.into(),
            at.into(),
            voucher.into(),
        ],
    );
    assert_eq!(written, 1, "a ledger entry for {voucher}");
}

#[test]
fn stats_days_are_the_shops_days_and_the_window_is_ninety_of_them() {
    let s = TestServer::start_with(&["--utc-offset", "+05:30"]);
    let t = s.tenant(CASHIER);
    let card = id_of(&s.create_voucher(&t.token, &json!({"amount": "900.00"}))["id"]);
    let jpy =
        id_of(&s.create_voucher(&t.token, &json!({"amount": "5000", "currency": "JPY"}))["id"]);
    let before = stats(&s, &t.token);
    let now = today(&before);
    assert_eq!(now.off, "+05:30");
    // The first second of the shop's today, and of the window's first day.
    let midnight = Ts {
        h: 0,
        mi: 0,
        s: 0,
        ..now.clone()
    };
    let today_start = midnight.epoch();
    let first_start = midnight.plus_days(-89).epoch();
    insert_entry(&s, 1, &card, "charge", 100, today_start);
    insert_entry(&s, 2, &card, "charge", 200, today_start - 1);
    insert_entry(&s, 3, &card, "refund", 50, today_start - 1);
    insert_entry(&s, 4, &card, "charge", 300, first_start);
    insert_entry(&s, 5, &card, "charge", 400, first_start - 1);
    insert_entry(&s, 6, &jpy, "charge", 1500, first_start + 3600);
    insert_entry(&s, 7, &card, "charge", 500, today_start + 86_400);

    let after = stats(&s, &t.token);
    assert_eq!(
        date(&today(&after)),
        date(&now),
        "the day turned during the test"
    );
    let (d0, d1, d89) = (
        date(&now),
        date(&now.plus_days(-1)),
        date(&now.plus_days(-89)),
    );
    assert_eq!(
        day(&after, &d0),
        &json!({"date": d0, "charges": 1, "uses": 0, "refunds": 0, "amounts": [
            {"currency": "EUR", "charged": "1.00", "discounted": "0.00", "refunded": "0.00"}]}),
        "today starts at the shop's midnight; tomorrow's entry is left out"
    );
    assert_eq!(
        day(&after, &d1),
        &json!({"date": d1, "charges": 1, "uses": 0, "refunds": 1, "amounts": [
            {"currency": "EUR", "charged": "2.00", "discounted": "0.00", "refunded": "0.50"}]})
    );
    assert_eq!(
        day(&after, &d89),
        &json!({"date": d89, "charges": 2, "uses": 0, "refunds": 0, "amounts": [
            {"currency": "EUR", "charged": "3.00", "discounted": "0.00", "refunded": "0.00"},
            {"currency": "JPY", "charged": "1500", "discounted": "0", "refunded": "0"}]}),
        "the window's first day counts whole; the second before it does not"
    );
    assert_window(&after, &[d0, d1, d89]);

    // Vouchers created before the window do not count as issued in it.
    let csv = format!(
        "amount,created_at\n5,{}\n5,{}\n",
        midnight.plus_days(-90).render(),
        midnight.plus_days(-89).render()
    );
    let auth = format!("Bearer {}", t.token);
    let r = s.send(
        "POST",
        "/v1/vouchers/import",
        &[("Authorization", auth.as_str())],
        Some(("text/csv", csv.as_bytes())),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let issued = &stats(&s, &t.token)["issued"];
    assert_eq!(
        (&issued["total"], &issued["last_90_days"]),
        (&json!(4), &json!(3))
    );
}

#[test]
fn stats_refuse_parameters_and_need_vouchers_read() {
    let s = TestServer::start();
    let reader = s.tenant(&[READ]);
    let r = s.get("/v1/stats?days=30", &reader.token);
    assert_invalid_param(&r, "days");
    let r = s.send("GET", "/v1/stats", &[], None);
    assert_problem(&r, 401, "unauthorized");
    let ledger_only = s.tenant(&["charges:read"]);
    let r = s.get("/v1/stats", &ledger_only.token);
    assert_problem(&r, 403, "insufficient_scope");
    let r = s.post("/v1/stats", &reader.token, &json!({}));
    assert_problem(&r, 405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
}

/// The liability entry of `currency` in a stats body.
fn liability<'a>(stats: &'a Value, currency: &str) -> &'a Value {
    stats["liability"]
        .as_array()
        .expect("liability")
        .iter()
        .find(|l| l["currency"] == json!(currency))
        .unwrap_or_else(|| panic!("no {currency} liability in {}", stats["liability"]))
}

/// Today's amounts of `currency` in a stats body.
fn charged_today(stats: &Value, currency: &str) -> Value {
    let last = &stats["charges_per_day"][89];
    last["amounts"]
        .as_array()
        .expect("amounts")
        .iter()
        .find(|a| a["currency"] == json!(currency))
        .map_or(Value::Null, |a| a["charged"].clone())
}

#[test]
fn stats_sum_exactly_past_i64_and_one_groups_sums_break_no_ones_answer() {
    // A million vouchers of the largest CLF amount hold 10^19 minor units, past i64's 9.2·10^18,
    // where SQLite's SUM fails and a float would round.
    let s = TestServer::start();
    let big = s.tenant(CASHIER);
    let small = s.tenant(CASHIER);
    let batch = json!({"count": 100_000, "amount": "1000000000", "currency": "CLF"});
    let mut first = String::new();
    for i in 0..10 {
        let r = s.post("/v1/vouchers/batch", &big.token, &batch);
        assert_eq!(
            r.status,
            201,
            "batch {i}: {}",
            &r.body[..r.body.len().min(300)]
        );
        if i == 0 {
            first = id_of(&r.json["data"][0]["id"]);
        }
    }
    s.create_voucher(
        &small.token,
        &json!({"amount": "0.0001", "currency": "CLF"}),
    );
    s.create_voucher(&small.token, &json!({"amount": "1.00", "currency": "EUR"}));
    // A million charges of the largest amount today, written straight into the ledger.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let written = s.sql().execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000)
         INSERT INTO ledger (id, voucher_id, client_id, type, amount, created_at)
         SELECT 'BIGCHARGE' || CAST(i AS TEXT), v.id, v.client_id, 'charge', 10000000000000,
                CAST(?2 AS BIGINT)
         FROM n, vouchers v WHERE v.id = ?1",
        &[first.as_str().into(), now.into()],
    );
    assert_eq!(written, 1_000_000);

    let mine = stats(&s, &big.token);
    let clf = liability(&mine, "CLF");
    assert_eq!(clf["amount"], json!("1000000000000000.0000"), "{clf}");
    assert_eq!(clf["vouchers"], json!(1_000_000));
    assert_eq!(mine["issued"]["total"], json!(1_000_000));
    assert_eq!(charged_today(&mine, "CLF"), json!("1000000000000000.0000"));
    assert_eq!(mine["charges_per_day"][89]["charges"], json!(1_000_000));

    // The other group's answer is its own, and the admin's adds both up to the last unit.
    let theirs = stats(&s, &small.token);
    assert_eq!(liability(&theirs, "CLF")["amount"], json!("0.0001"));
    assert_eq!(liability(&theirs, "EUR")["amount"], json!("1.00"));
    assert_eq!(charged_today(&theirs, "CLF"), Value::Null);
    let all = stats(&s, &s.admin_token());
    let clf = liability(&all, "CLF");
    assert_eq!(clf["amount"], json!("1000000000000000.0001"), "{clf}");
    assert_eq!(clf["vouchers"], json!(1_000_001));
    assert_eq!(charged_today(&all, "CLF"), json!("1000000000000000.0000"));
}
