//! Voucher routes and the error rules of docs/api.md: create (every field, codes, money,
//! validation), the validity pair and date-only `valid_until` at `--utc-offset`, PATCH,
//! DELETE, batches up to 100 000, and the HTTP-level refusals (405, 413, 415, bad JSON).
//! Issue 2 acceptance items 4, 6 and 7.

use crate::common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

fn server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(TestServer::start)
}

/// A server at `--utc-offset +02:00 --currency USD`.
fn offset_server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| TestServer::start_with(&["--utc-offset", "+02:00", "--currency", "USD"]))
}

/// One read-write client for tests that only need somewhere to create vouchers.
fn writer(s: &'static TestServer) -> &'static Tenant {
    static DEFAULT: OnceLock<Tenant> = OnceLock::new();
    static OFFSET: OnceLock<Tenant> = OnceLock::new();
    let cell = if std::ptr::eq(s, server()) {
        &DEFAULT
    } else {
        &OFFSET
    };
    cell.get_or_init(|| s.tenant(RW))
}

fn post_raw(s: &TestServer, token: &str, content_type: &str, body: &[u8]) -> Resp {
    let auth = format!("Bearer {token}");
    s.send(
        "POST",
        "/v1/vouchers",
        &[("Authorization", auth.as_str())],
        Some((content_type, body)),
    )
}

fn now_epoch() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn assert_voucher_id(id: &Value) {
    let id = id
        .as_str()
        .unwrap_or_else(|| panic!("id should be a string: {id}"));
    assert_eq!(id.len(), 16, "id {id:?} should be 16 chars");
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
        "id {id:?} should be [A-Z0-9]"
    );
}

fn assert_generated_code(code: &str, len: usize) {
    assert_eq!(code.len(), len, "code {code:?} should be {len} chars");
    assert!(
        code.chars().all(|c| CODE_ALPHABET.contains(c)),
        "code {code:?} uses a character outside {CODE_ALPHABET}"
    );
}

const SPEC_FIELDS: &[&str] = &[
    "id",
    "code",
    "client_id",
    "sku",
    "batch",
    "label",
    "note",
    "amount",
    "remaining_amount",
    "currency",
    "discount",
    "max_uses",
    "uses",
    "used_at",
    "valid_from",
    "valid_until",
    "validity_value",
    "validity_interval",
    "status",
    "type",
    "taxable",
    "tax_rate",
    "order_number",
    "customer_id",
    "product_id",
    "store_id",
    "purchase_id",
    "reward_id",
    "data",
    "created_at",
    "updated_at",
    "deletable",
];

// ---- create ---------------------------------------------------------------------------------

#[test]
fn create_round_trips_every_field_of_the_spec_voucher_object() {
    let s = server();
    let t = writer(s);
    let stem = code_stem();
    let input = json!({
        "code": format!("{}-{} ", stem[..3].to_lowercase(), stem[3..].to_lowercase()),
        "sku": "SKU-1",
        "batch": "Winter Campaign",
        "label": "Gift card 10.53",
        "note": "bought at the counter",
        "amount": "10.53",
        "currency": "EUR",
        "valid_from": "2025-01-01T00:00:00+00:00",
        "valid_until": "2031-07-21T17:32:28+00:00",
        "validity_value": 24,
        "validity_interval": "months",
        "status": "active",
        "type": "print",
        "taxable": true,
        "tax_rate": "19",
        "order_number": "Order 66",
        "customer_id": "cust-1",
        "product_id": "prod-1",
        "store_id": "store-1",
        "purchase_id": "pur-1",
        "reward_id": "rew-1",
        "data": "{\"foo\": \"bar\"}"
    });
    let before = now_epoch();
    let r = s.post("/v1/vouchers", &t.token, &input);
    assert_eq!(r.status, 201, "{}", r.body);
    let v = &r.json;
    for field in SPEC_FIELDS {
        assert!(v.get(*field).is_some(), "field {field} missing from {v}");
    }
    for (k, want) in input.as_object().expect("object") {
        if k != "code" {
            assert_eq!(&v[k], want, "field {k} in {v}");
        }
    }
    assert_eq!(v["code"], json!(stem), "code normalised");
    assert_voucher_id(&v["id"]);
    assert_eq!(v["client_id"], json!(t.client_id));
    assert_eq!(v["remaining_amount"], "10.53");
    assert_eq!(v["discount"], Value::Null);
    assert_eq!(v["max_uses"], Value::Null);
    assert_eq!(v["uses"], 0);
    assert_eq!(v["used_at"], Value::Null);
    assert_eq!(v["deletable"], true);
    let created = parse_ts(v["created_at"].as_str().expect("created_at"));
    let updated = parse_ts(v["updated_at"].as_str().expect("updated_at"));
    assert_eq!(created.off, "+00:00");
    assert!(
        (created.epoch() - before).abs() <= 60,
        "created_at {} is not now",
        v["created_at"]
    );
    assert!(updated.epoch() >= created.epoch());

    let id = id_of(&v["id"]);
    let got = s.get(&format!("/v1/vouchers/{id}"), &t.token);
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(&got.json, v, "GET equals the create answer");
    assert!(got.content_type().starts_with("application/json"));

    let listed = s.list(&t.token, &format!("filter[id]={id}"));
    assert_eq!(listed.json["data"], json!([v]), "list item equals GET");
}

#[test]
fn discount_voucher_has_no_amount_and_max_uses_defaults_to_one() {
    let s = server();
    let t = writer(s);
    let r = s.post(
        "/v1/vouchers",
        &t.token,
        &json!({"discount": {"type": "money", "value": "5"}, "label": "5 off"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let v = &r.json;
    assert_eq!(
        v["discount"],
        json!({"type": "money", "value": "5.00"}),
        "{v}"
    );
    assert_eq!(v["amount"], Value::Null);
    assert_eq!(v["remaining_amount"], Value::Null);
    assert_eq!(v["max_uses"], 1);
    assert_eq!(v["uses"], 0);
    assert_eq!(v["used_at"], Value::Null);
    assert_eq!(v["currency"], "EUR", "server default currency");
    assert_eq!(v["status"], "active", "default status");
    assert_eq!(v["deletable"], true);

    let r = s.post(
        "/v1/vouchers",
        &t.token,
        &json!({"discount": {"type": "percentage", "value": "12.5"}, "max_uses": 3,
                "status": "inactive", "type": "digital", "taxable": false}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let v = &r.json;
    assert_eq!(v["discount"]["type"], "percentage");
    let value: f64 = v["discount"]["value"]
        .as_str()
        .unwrap_or_else(|| panic!("discount value is a decimal string: {v}"))
        .parse()
        .expect("decimal");
    assert_eq!(value, 12.5, "{v}");
    assert_eq!(v["max_uses"], 3);
    assert_eq!(v["status"], "inactive");
    assert_eq!(v["type"], "digital");
    assert_eq!(v["taxable"], false);
    let got = s.get(&format!("/v1/vouchers/{}", id_of(&v["id"])), &t.token);
    assert_eq!(&got.json, v);
}

#[test]
fn generated_codes_are_8_distinct_chars_of_the_lookalike_free_alphabet() {
    let s = server();
    let t = writer(s);
    let mut codes = BTreeSet::new();
    for _ in 0..20 {
        let v = s.create_voucher(&t.token, &json!({"amount": "1.00"}));
        let code = v["code"].as_str().expect("code").to_string();
        assert_generated_code(&code, 8);
        codes.insert(code);
    }
    assert_eq!(codes.len(), 20, "codes repeat: {codes:?}");
}

#[test]
fn custom_code_is_upper_cased_and_stripped_of_spaces_and_dashes() {
    let s = server();
    let t = writer(s);
    let stem = code_stem();
    let messy = format!(
        " {}-{} {}-",
        stem[..2].to_lowercase(),
        &stem[2..4],
        stem[4..].to_lowercase()
    );
    let v = s.create_voucher(&t.token, &json!({"amount": "2.00", "code": messy}));
    assert_eq!(v["code"], json!(stem));
    let got = s.get(&format!("/v1/vouchers/{}", id_of(&v["id"])), &t.token);
    assert_eq!(got.json["code"], json!(stem));

    // 4 and 8 characters are both fine; `0 O 1 I L` are allowed in custom codes.
    let four = &code_stem()[2..];
    let v4 = s.create_voucher(&t.token, &json!({"amount": "1.00", "code": four}));
    assert_eq!(v4["code"], json!(four));
    let eight = format!("{}OL", code_stem());
    let v8 = s.create_voucher(&t.token, &json!({"amount": "1.00", "code": eight}));
    assert_eq!(v8["code"], json!(eight));
}

#[test]
fn duplicate_code_even_written_differently_is_409_duplicate_code_in_its_group() {
    let s = server();
    let t = writer(s);
    let stem = code_stem();
    s.create_voucher(&t.token, &json!({"amount": "1.00", "code": stem}));
    let again = format!("{}-{}", stem[..3].to_lowercase(), &stem[3..]);
    let r = s.post(
        "/v1/vouchers",
        &t.token,
        &json!({"amount": "1.00", "code": again}),
    );
    assert_problem(&r, 409, "duplicate_code");
    // Codes are unique per group: another group's voucher may have it (issue 19, item 2).
    let other = s.tenant(RW);
    let r = s.post(
        "/v1/vouchers",
        &other.token,
        &json!({"amount": "1.00", "code": stem}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        s.list_ids(&t.token, &format!("filter[code]={stem}")).len(),
        1,
        "nothing written by the refused creates"
    );
}

#[test]
fn bad_custom_codes_are_422_naming_code() {
    let s = server();
    let t = writer(s);
    for code in [
        json!("ABC"),
        json!("AB-C "),
        json!("ABCDEFGH9"),
        json!("AB_CD"),
        json!("AB.CD"),
        json!("ÄBCDE"),
        json!(""),
        json!(" - - "),
        json!(12345),
    ] {
        let r = s.post(
            "/v1/vouchers",
            &t.token,
            &json!({"amount": "1.00", "code": code}),
        );
        assert_invalid_field(&r, "code");
    }
}

#[test]
fn amounts_with_more_decimals_than_the_currency_are_422_naming_amount() {
    let s = server();
    let t = writer(s);
    for (amount, currency) in [
        (json!("10.555"), "EUR"),
        (json!(10.555), "EUR"),
        (json!("500.5"), "JPY"),
        (json!("1.2345"), "KWD"),
    ] {
        let r = s.post(
            "/v1/vouchers",
            &t.token,
            &json!({"amount": amount, "currency": currency}),
        );
        assert_invalid_field(&r, "amount");
    }
    for (amount, currency, shown) in [
        (json!("500"), "JPY", "500"),
        (json!("1.234"), "KWD", "1.234"),
        (json!("1.2"), "BHD", "1.200"),
        (json!("10.5"), "EUR", "10.50"),
        (json!("7"), "USD", "7.00"),
    ] {
        let v = s.create_voucher(&t.token, &json!({"amount": amount, "currency": currency}));
        assert_eq!(v["amount"], shown, "{amount} {currency}: {v}");
        assert_eq!(v["remaining_amount"], shown);
        assert_eq!(v["currency"], currency);
    }
}

#[test]
fn negative_zero_and_absurd_amounts_are_422_naming_amount() {
    let s = server();
    let t = writer(s);
    for amount in [
        json!("-1.00"),
        json!(-5),
        json!("0"),
        json!("0.00"),
        json!(0),
        json!("1000000000.01"),
        json!("1000000001"),
        json!(1e12),
        json!(1e300),
        json!("99999999999999999999999999"),
        json!("abc"),
        json!("1,50"),
        json!("1.2.3"),
        json!(""),
        json!(true),
        json!({}),
        json!([]),
    ] {
        let r = s.post("/v1/vouchers", &t.token, &json!({"amount": amount}));
        assert_invalid_field(&r, "amount");
    }
    let v = s.create_voucher(&t.token, &json!({"amount": "1000000000"}));
    assert_eq!(v["amount"], "1000000000.00", "the limit itself is allowed");
}

#[test]
fn json_number_amounts_are_exact_not_floats() {
    let s = server();
    let t = writer(s);
    for (amount, shown) in [
        (json!(19.99), "19.99"),
        (json!(0.29), "0.29"),
        (json!(1.15), "1.15"),
        (json!(10), "10.00"),
        (json!(10.5), "10.50"),
        (json!(999999999.99), "999999999.99"),
    ] {
        let v = s.create_voucher(&t.token, &json!({"amount": amount}));
        assert_eq!(v["amount"], shown, "from {amount}");
    }
}

#[test]
fn numbers_too_big_for_any_integer_are_422_not_500() {
    let s = server();
    let t = writer(s);
    for (body, field) in [
        (r#"{"amount": 123456789012345678901234567890}"#, "amount"),
        (
            r#"{"amount": "5.00", "max_uses": 99999999999999999999}"#,
            "max_uses",
        ),
        (
            r#"{"amount": "5.00", "validity_value": 1e20, "validity_interval": "days"}"#,
            "validity_value",
        ),
        (
            r#"{"amount": "5.00", "validity_value": 99999999, "validity_interval": "years"}"#,
            "validity_value",
        ),
    ] {
        let r = post_raw(s, &t.token, "application/json", body.as_bytes());
        assert_invalid_field(&r, field);
    }
    // Beyond even f64: a JSON parser may call this malformed (400) or invalid (422).
    let r = post_raw(s, &t.token, "application/json", br#"{"amount": -1e400}"#);
    assert!(
        r.status == 400 || r.status == 422,
        "{}: {}",
        r.status,
        r.body
    );
    let code = r.json["code"].as_str().unwrap_or("").to_string();
    assert_problem(&r, r.status, &code);
}

#[test]
fn unknown_currency_is_422_naming_currency() {
    let s = server();
    let t = writer(s);
    for currency in [
        json!("XYZ"),
        json!("EURO"),
        json!("EU"),
        json!(978),
        json!(null),
    ] {
        let r = s.post(
            "/v1/vouchers",
            &t.token,
            &json!({"amount": "1.00", "currency": currency}),
        );
        assert_invalid_field(&r, "currency");
    }
}

#[test]
fn label_of_255_chars_is_accepted_and_256_is_422_naming_label() {
    let s = server();
    let t = writer(s);
    let ok = "x".repeat(255);
    let v = s.create_voucher(&t.token, &json!({"amount": "1.00", "label": ok}));
    assert_eq!(v["label"], json!(ok));
    let wide = "é".repeat(255);
    let v = s.create_voucher(&t.token, &json!({"amount": "1.00", "label": wide}));
    assert_eq!(v["label"], json!(wide), "255 characters, 510 bytes");
    let r = s.post(
        "/v1/vouchers",
        &t.token,
        &json!({"amount": "1.00", "label": "x".repeat(256)}),
    );
    assert_invalid_field(&r, "label");
}

#[test]
fn unicode_in_label_note_and_data_round_trips() {
    let s = server();
    let t = writer(s);
    let label = "Gutschein für Café ☕ — 日本語 🎁 \u{200d}\"quoted\" \\ back";
    let note = "Ελληνικά\nzweite Zeile\t🙂";
    let v = s.create_voucher(
        &t.token,
        &json!({"amount": "1.00", "label": label, "note": note, "data": "ünïcödé"}),
    );
    assert_eq!(v["label"], label);
    assert_eq!(v["note"], note);
    assert_eq!(v["data"], "ünïcödé");
    let got = s.get(&format!("/v1/vouchers/{}", id_of(&v["id"])), &t.token);
    assert_eq!(got.json["label"], label);
    assert_eq!(got.json["note"], note);
}

#[test]
fn data_given_as_an_object_is_stored_as_its_json_text() {
    let s = server();
    let t = writer(s);
    let obj = json!({"foo": "bar", "n": 1, "nested": {"ok": true}});
    let v = s.create_voucher(&t.token, &json!({"amount": "1.00", "data": obj}));
    let text = v["data"]
        .as_str()
        .unwrap_or_else(|| panic!("data should be a string: {v}"));
    let back: Value = serde_json::from_str(text).expect("data text is JSON");
    assert_eq!(back, obj);
}

#[test]
fn read_only_fields_in_a_create_body_are_ignored() {
    let s = server();
    let t = writer(s);
    let v = s.create_voucher(
        &t.token,
        &json!({
            "amount": "10.00",
            "id": "AAAAAAAAAAAAAAAA",
            "client_id": "someone-else",
            "remaining_amount": "999.00",
            "uses": 7,
            "used_at": "2020-01-01T00:00:00+00:00",
            "created_at": "2000-01-01T00:00:00+00:00",
            "updated_at": "2000-01-01T00:00:00+00:00",
            "deletable": false
        }),
    );
    assert_voucher_id(&v["id"]);
    assert_ne!(v["id"], "AAAAAAAAAAAAAAAA");
    assert_eq!(v["client_id"], json!(t.client_id));
    assert_eq!(v["remaining_amount"], "10.00");
    assert_eq!(v["uses"], 0);
    assert_eq!(v["used_at"], Value::Null);
    assert_ne!(v["created_at"], "2000-01-01T00:00:00+00:00");
    assert_ne!(v["updated_at"], "2000-01-01T00:00:00+00:00");
    assert_eq!(v["deletable"], true);
    let fake = s.get("/v1/vouchers/AAAAAAAAAAAAAAAA", &t.token);
    assert_problem(&fake, 404, "not_found");
}

#[test]
fn unknown_field_in_a_create_body_is_422_naming_it() {
    let s = server();
    let t = writer(s);
    let r = s.post(
        "/v1/vouchers",
        &t.token,
        &json!({"amount": "1.00", "colour": "red"}),
    );
    assert_invalid_field(&r, "colour");
    let r = s.post(
        "/v1/vouchers",
        &t.token,
        &json!({"amount": "1.00", "Label": "case matters"}),
    );
    assert_invalid_field(&r, "Label");
}

#[test]
fn amount_and_discount_together_or_neither_is_422() {
    let s = server();
    let t = writer(s);
    for body in [
        json!({"amount": "1.00", "discount": {"type": "money", "value": "1.00"}}),
        json!({"label": "neither"}),
        json!({}),
    ] {
        let r = s.post("/v1/vouchers", &t.token, &body);
        let p = assert_problem(&r, 422, "validation_failed");
        let fields: Vec<&str> = p["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("errors array: {}", r.body))
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert!(
            fields.iter().any(|f| *f == "amount" || *f == "discount"),
            "errors should name amount or discount for {body}: {}",
            r.body
        );
    }
}

#[test]
fn percentage_discount_must_be_above_0_and_at_most_100() {
    let s = server();
    let t = writer(s);
    for value in ["0", "-5", "100.01", "250"] {
        let r = s.post(
            "/v1/vouchers",
            &t.token,
            &json!({"discount": {"type": "percentage", "value": value}}),
        );
        assert_eq!(r.status, 422, "percentage {value}: {}", r.body);
        assert_problem(&r, 422, "validation_failed");
        let first = r.json["errors"][0]["field"].as_str().unwrap_or("");
        assert!(
            first.starts_with("discount"),
            "field for {value}: {}",
            r.body
        );
    }
    for value in ["100", "0.5", "12.5"] {
        let v = s.create_voucher(
            &t.token,
            &json!({"discount": {"type": "percentage", "value": value}}),
        );
        assert_eq!(v["discount"]["type"], "percentage");
    }
}

#[test]
fn wrong_json_types_and_bad_enum_values_are_422_naming_the_field() {
    let s = server();
    let t = writer(s);
    let value = |extra: Value| {
        let mut b = json!({"amount": "5.00"});
        for (k, v) in extra.as_object().expect("object") {
            b[k] = v.clone();
        }
        b
    };
    let discount = |extra: Value| {
        let mut b = json!({"discount": {"type": "money", "value": "1.00"}});
        for (k, v) in extra.as_object().expect("object") {
            b[k] = v.clone();
        }
        b
    };
    let cases = [
        (value(json!({"label": 5})), "label"),
        (value(json!({"note": []})), "note"),
        (value(json!({"sku": {}})), "sku"),
        (value(json!({"batch": 7})), "batch"),
        (value(json!({"status": "frozen"})), "status"),
        (value(json!({"status": 1})), "status"),
        (value(json!({"type": "plastic"})), "type"),
        (value(json!({"taxable": "yes"})), "taxable"),
        (value(json!({"tax_rate": "abc"})), "tax_rate"),
        (value(json!({"customer_id": ["a"]})), "customer_id"),
        (value(json!({"order_number": {"n": 1}})), "order_number"),
        (value(json!({"valid_until": "not a date"})), "valid_until"),
        (value(json!({"valid_until": "2030-02-30"})), "valid_until"),
        (
            value(json!({"valid_until": "2030-01-01T25:00:00+00:00"})),
            "valid_until",
        ),
        (value(json!({"valid_from": 12345})), "valid_from"),
        (
            value(json!({"validity_value": 3, "validity_interval": "fortnights"})),
            "validity_interval",
        ),
        (
            value(json!({"validity_value": -1, "validity_interval": "days"})),
            "validity_value",
        ),
        (
            value(json!({"validity_value": "x", "validity_interval": "days"})),
            "validity_value",
        ),
        (discount(json!({"max_uses": -1})), "max_uses"),
        (discount(json!({"max_uses": 0})), "max_uses"),
        (discount(json!({"max_uses": 1.5})), "max_uses"),
        (discount(json!({"max_uses": "many"})), "max_uses"),
    ];
    for (body, field) in cases {
        let r = s.post("/v1/vouchers", &t.token, &body);
        assert_eq!(
            r.status, 422,
            "{body} should be 422 naming {field}: {}",
            r.body
        );
        assert_invalid_field(&r, field);
    }
    for bad_discount in [
        json!("10%"),
        json!({"type": "bogus", "value": "1.00"}),
        json!({"type": "money", "value": "-1"}),
        json!({"type": "money", "value": "1.005"}),
        json!({"type": "money"}),
        json!({"value": "1.00"}),
    ] {
        let r = s.post("/v1/vouchers", &t.token, &json!({"discount": bad_discount}));
        assert_problem(&r, 422, "validation_failed");
        let first = r.json["errors"][0]["field"].as_str().unwrap_or("");
        assert!(
            first.starts_with("discount"),
            "discount {bad_discount} should name discount…: {}",
            r.body
        );
    }
}

#[test]
fn malformed_json_is_400_and_empty_or_non_object_bodies_are_400_or_422_problems() {
    let s = server();
    let t = writer(s);
    for body in [
        &b"{\"amount\": "[..],
        b"{amount: 1}",
        b"\xff\xfe{}",
        b"{\"amount\":\"1.00\"} trailing",
    ] {
        let r = post_raw(s, &t.token, "application/json", body);
        assert_eq!(
            r.status,
            400,
            "{:?}: {}",
            String::from_utf8_lossy(body),
            r.body
        );
        let code = r.json["code"].as_str().unwrap_or("").to_string();
        assert!(!code.is_empty(), "problem code: {}", r.body);
        assert_problem(&r, 400, &code);
    }
    for body in [
        &b""[..],
        b"[]",
        b"null",
        b"\"x\"",
        b"5",
        b"[{\"amount\":\"1.00\"}]",
    ] {
        let r = post_raw(s, &t.token, "application/json", body);
        assert!(
            r.status == 400 || r.status == 422,
            "{:?} should be 400 or 422, got {}: {}",
            String::from_utf8_lossy(body),
            r.status,
            r.body
        );
        let code = r.json["code"].as_str().unwrap_or("").to_string();
        assert!(!code.is_empty(), "problem code: {}", r.body);
        assert_problem(&r, r.status, &code);
    }
}

// ---- validity -------------------------------------------------------------------------------

#[test]
fn validity_pair_without_valid_until_counts_from_created_at_in_calendar_units() {
    let s = server();
    let t = writer(s);
    for (n, unit) in [
        (10, "days"),
        (2, "weeks"),
        (1, "months"),
        (13, "months"),
        (1, "years"),
    ] {
        let v = s.create_voucher(
            &t.token,
            &json!({"amount": "1.00", "validity_value": n, "validity_interval": unit}),
        );
        assert_eq!(v["validity_value"], n);
        assert_eq!(v["validity_interval"], unit);
        let created = parse_ts(v["created_at"].as_str().expect("created_at"));
        let expected = match unit {
            "days" => created.plus_days(n),
            "weeks" => created.plus_days(7 * n),
            "months" => created.plus_months(n),
            _ => created.plus_months(12 * n),
        };
        assert_eq!(
            v["valid_until"],
            json!(expected.render()),
            "{n} {unit} from {}",
            v["created_at"]
        );
    }
    // A given valid_until wins over the pair.
    let v = s.create_voucher(
        &t.token,
        &json!({"amount": "1.00", "validity_value": 1, "validity_interval": "days",
                "valid_until": "2035-05-05T05:05:05+00:00"}),
    );
    assert_eq!(v["valid_until"], "2035-05-05T05:05:05+00:00");
}

#[test]
fn date_only_valid_until_means_the_end_of_that_day_in_utc_by_default() {
    let s = server();
    let t = writer(s);
    let v = s.create_voucher(
        &t.token,
        &json!({"amount": "1.00", "valid_until": "2030-07-21"}),
    );
    assert_eq!(v["valid_until"], "2030-07-21T23:59:59+00:00");
}

#[test]
fn timestamps_in_other_offsets_render_at_the_server_offset() {
    let s = server();
    let t = writer(s);
    let v = s.create_voucher(
        &t.token,
        &json!({"amount": "1.00", "valid_from": "2031-01-02T03:04:05+02:00",
                "valid_until": "2031-01-02T03:04:05Z"}),
    );
    assert_eq!(v["valid_from"], "2031-01-02T01:04:05+00:00");
    assert_eq!(v["valid_until"], "2031-01-02T03:04:05+00:00");
}

#[test]
fn server_utc_offset_and_currency_flags_shape_dates_and_defaults() {
    let s = offset_server();
    let t = writer(s);
    let v = s.create_voucher(
        &t.token,
        &json!({"amount": "1.00", "valid_until": "2030-07-21"}),
    );
    assert_eq!(v["valid_until"], "2030-07-21T23:59:59+02:00");
    assert_eq!(v["currency"], "USD", "--currency is the default");
    let created = parse_ts(v["created_at"].as_str().expect("created_at"));
    assert_eq!(created.off, "+02:00", "created_at at --utc-offset");
    assert_eq!(
        parse_ts(v["updated_at"].as_str().expect("updated_at")).off,
        "+02:00"
    );
    assert!(
        (created.epoch() - now_epoch()).abs() <= 60,
        "created_at is now"
    );

    let v = s.create_voucher(
        &t.token,
        &json!({"amount": "1.00", "valid_until": "2030-07-21T10:00:00+00:00"}),
    );
    assert_eq!(v["valid_until"], "2030-07-21T12:00:00+02:00");

    let v = s.create_voucher(
        &t.token,
        &json!({"discount": {"type": "percentage", "value": "10"}}),
    );
    assert_eq!(
        v["currency"], "USD",
        "percentage vouchers take the default too"
    );

    let v = s.create_voucher(&t.token, &json!({"amount": "1.00", "currency": "EUR"}));
    assert_eq!(v["currency"], "EUR");

    let v = s.create_voucher(
        &t.token,
        &json!({"amount": "1.00", "validity_value": 3, "validity_interval": "days"}),
    );
    let created = parse_ts(v["created_at"].as_str().expect("created_at"));
    assert_eq!(v["valid_until"], json!(created.plus_days(3).render()));
}

// ---- PATCH / DELETE -------------------------------------------------------------------------

fn full_voucher(s: &TestServer, token: &str) -> Value {
    s.create_voucher(
        token,
        &json!({
            "amount": "25.00", "sku": "SKU-P", "batch": "patch-batch", "label": "before",
            "note": "note before", "valid_until": "2031-01-01T00:00:00+00:00",
            "status": "active", "type": "digital", "taxable": true, "tax_rate": "7",
            "order_number": "O-1", "customer_id": "c-before", "product_id": "p-before",
            "store_id": "s-before", "purchase_id": "pu-1", "reward_id": "r-1",
            "data": "before"
        }),
    )
}

#[test]
fn patch_changes_each_allowed_field_and_nothing_else() {
    let s = server();
    let t = writer(s);
    let before = full_voucher(s, &t.token);
    let one = format!("/v1/vouchers/{}", id_of(&before["id"]));
    let change = json!({
        "label": "after", "note": "note after", "status": "inactive",
        "valid_until": "2033-03-03T03:03:03+00:00", "sku": "SKU-Q", "batch": "other-batch",
        "customer_id": "c-after", "product_id": "p-after", "store_id": "s-after",
        "data": "after"
    });
    let r = s.patch(&one, &t.token, &change);
    assert_eq!(r.status, 200, "{}", r.body);
    let after = r.json.clone();
    for (k, v) in change.as_object().expect("object") {
        assert_eq!(&after[k], v, "{k} changed");
    }
    for (k, v) in before.as_object().expect("object") {
        if change.get(k).is_none() && k != "updated_at" {
            assert_eq!(&after[k], v, "{k} must not change");
        }
    }
    let updated = parse_ts(after["updated_at"].as_str().expect("updated_at"));
    let created = parse_ts(after["created_at"].as_str().expect("created_at"));
    assert!(updated.epoch() >= created.epoch());
    assert_eq!(s.get(&one, &t.token).json, after, "GET shows the patch");

    // One field at a time leaves the others as they are.
    let r = s.patch(&one, &t.token, &json!({"status": "cancelled"}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["status"], "cancelled");
    assert_eq!(r.json["label"], "after");
    let r = s.patch(&one, &t.token, &json!({"status": "active", "note": null}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["status"], "active");
    assert_eq!(r.json["note"], Value::Null);
    let r = s.patch(&one, &t.token, &json!({"valid_until": "2034-04-04"}));
    assert_eq!(
        r.json["valid_until"], "2034-04-04T23:59:59+00:00",
        "{}",
        r.body
    );
    let r = s.patch(&one, &t.token, &json!({"data": {"k": [1, 2]}}));
    assert_eq!(r.status, 200, "{}", r.body);
    let text = r.json["data"].as_str().expect("data string");
    assert_eq!(
        serde_json::from_str::<Value>(text).expect("JSON"),
        json!({"k": [1, 2]})
    );
    assert_eq!(r.json["amount"], "25.00");
    assert_eq!(r.json["remaining_amount"], "25.00");
}

#[test]
fn patch_of_a_field_outside_the_allowed_list_is_422_naming_it_and_changes_nothing() {
    let s = server();
    let t = writer(s);
    let before = full_voucher(s, &t.token);
    let one = format!("/v1/vouchers/{}", id_of(&before["id"]));
    for (field, value) in [
        ("amount", json!("99.00")),
        ("remaining_amount", json!("99.00")),
        ("currency", json!("USD")),
        ("code", json!(code_stem())),
        ("id", json!("BBBBBBBBBBBBBBBB")),
        ("client_id", json!("someone")),
        ("discount", json!({"type": "money", "value": "1.00"})),
        ("max_uses", json!(5)),
        ("uses", json!(1)),
        ("used_at", json!("2030-01-01T00:00:00+00:00")),
        ("type", json!("print")),
        ("taxable", json!(false)),
        ("tax_rate", json!("19")),
        ("order_number", json!("O-2")),
        ("purchase_id", json!("pu-2")),
        ("reward_id", json!("r-2")),
        ("valid_from", json!("2030-01-01T00:00:00+00:00")),
        ("validity_value", json!(1)),
        ("validity_interval", json!("days")),
        ("created_at", json!("2000-01-01T00:00:00+00:00")),
        ("deletable", json!(false)),
        ("colour", json!("red")),
    ] {
        let r = s.patch(&one, &t.token, &json!({"label": "sneaky", field: value}));
        assert_eq!(r.status, 422, "PATCH {field}: {}", r.body);
        assert_invalid_field(&r, field);
    }
    for (field, value) in [
        ("status", json!("frozen")),
        ("label", json!("x".repeat(256))),
        ("valid_until", json!("soon")),
        ("sku", json!(5)),
    ] {
        let r = s.patch(&one, &t.token, &json!({field: value}));
        assert_invalid_field(&r, field);
    }
    assert_eq!(s.get(&one, &t.token).json, before, "nothing changed");
}

#[test]
fn patch_and_get_of_an_unknown_voucher_are_404_not_found() {
    let s = server();
    let t = writer(s);
    let missing = "/v1/vouchers/ZZZZZZZZZZZZZZZZ";
    assert_problem(&s.get(missing, &t.token), 404, "not_found");
    assert_problem(
        &s.patch(missing, &t.token, &json!({"label": "x"})),
        404,
        "not_found",
    );
    assert_problem(&s.delete(missing, &t.token), 404, "not_found");
}

#[test]
fn delete_of_a_deletable_voucher_is_204_then_it_is_gone() {
    let s = server();
    let t = writer(s);
    let v = s.create_voucher(&t.token, &json!({"amount": "3.00"}));
    assert_eq!(v["deletable"], true);
    let id = id_of(&v["id"]);
    let one = format!("/v1/vouchers/{id}");
    let r = s.delete(&one, &t.token);
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(r.body, "", "204 has no body");
    assert_problem(&s.get(&one, &t.token), 404, "not_found");
    assert_problem(&s.delete(&one, &t.token), 404, "not_found");
    assert!(s.list_ids(&t.token, &format!("filter[id]={id}")).is_empty());
    // Its code is free again.
    let code = v["code"].as_str().expect("code");
    let again = s.create_voucher(&t.token, &json!({"amount": "3.00", "code": code}));
    assert_eq!(again["code"], json!(code));
}

// ---- batch ----------------------------------------------------------------------------------

#[test]
fn batch_of_100000_has_unique_codes_and_all_are_listed_by_filter_batch() {
    let s = TestServer::start();
    let t = s.tenant(RW);
    let r = s.post(
        "/v1/vouchers/batch",
        &t.token,
        &json!({"count": 100_000, "batch": "big one", "amount": "5.00", "label": "bulk"}),
    );
    assert_eq!(r.status, 201, "{}", &r.body[..r.body.len().min(2000)]);
    assert_eq!(r.json["batch"], "big one");
    assert_eq!(r.json["count"], 100_000);
    let data = r.json["data"].as_array().expect("data array");
    assert_eq!(data.len(), 100_000);
    let mut codes = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for item in data {
        let code = item["code"].as_str().expect("code");
        assert_generated_code(code, 8);
        codes.insert(code.to_string());
        assert_voucher_id(&item["id"]);
        ids.insert(id_of(&item["id"]));
    }
    assert_eq!(codes.len(), 100_000, "codes are unique");
    assert_eq!(ids.len(), 100_000, "ids are unique");

    let list = s.list(&t.token, "filter[batch]=big%20one&per_page=1");
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.json["meta"]["total"], 100_000);
    assert_eq!(list.json["meta"]["last_page"], 100_000);
    let last = s.list(&t.token, "filter[batch]=big%20one&per_page=1000&page=100");
    assert_eq!(last.json["data"].as_array().map(Vec::len), Some(1000));
    assert_eq!(last.json["meta"]["from"], 99_001);
    assert_eq!(last.json["meta"]["to"], 100_000);

    let first = &data[0];
    let got = s.get(&format!("/v1/vouchers/{}", id_of(&first["id"])), &t.token);
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.json["code"], first["code"]);
    assert_eq!(got.json["batch"], "big one");
    assert_eq!(got.json["amount"], "5.00");
    assert_eq!(got.json["label"], "bulk");
    assert_eq!(got.json["client_id"], json!(t.client_id));
}

#[test]
fn batch_with_prefix_and_length_makes_codes_of_that_shape_with_the_shared_fields() {
    let s = server();
    let t = writer(s);
    let batch = unique("prefixed");
    let r = s.post(
        "/v1/vouchers/batch",
        &t.token,
        &json!({"count": 50, "batch": batch, "code_prefix": "XM", "code_length": 6,
                "discount": {"type": "percentage", "value": "10"}, "label": "ten off",
                "valid_until": "2032-12-31"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json["count"], 50);
    assert_eq!(r.json["batch"], json!(batch));
    let data = r.json["data"].as_array().expect("data");
    assert_eq!(data.len(), 50);
    let codes: BTreeSet<&str> = data
        .iter()
        .map(|d| d["code"].as_str().expect("code"))
        .collect();
    assert_eq!(codes.len(), 50);
    for code in &codes {
        assert!(code.starts_with("XM"), "{code}");
        assert_generated_code(&code[2..], 4);
    }
    let listed = s.list(
        &t.token,
        &format!("filter[batch]={}&per_page=100", enc(&batch)),
    );
    assert_eq!(listed.json["meta"]["total"], 50, "{}", listed.body);
    for v in listed.json["data"].as_array().expect("data") {
        assert_eq!(v["discount"]["type"], "percentage");
        assert_eq!(v["label"], "ten off");
        assert_eq!(v["max_uses"], 1);
        assert_eq!(v["valid_until"], "2032-12-31T23:59:59+00:00");
        assert!(codes.contains(v["code"].as_str().expect("code")));
    }

    // Default shape: 8 characters.
    let r = s.post(
        "/v1/vouchers/batch",
        &t.token,
        &json!({"count": 3, "batch": unique("plain"), "amount": "1.00"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    for d in r.json["data"].as_array().expect("data") {
        assert_generated_code(d["code"].as_str().expect("code"), 8);
    }
}

#[test]
fn batch_count_over_the_limit_or_beyond_the_code_space_is_422_naming_count() {
    let s = server();
    let t = writer(s);
    let batch = unique("refused");
    for body in [
        json!({"count": 100_001, "batch": batch, "amount": "1.00"}),
        json!({"count": 0, "batch": batch, "amount": "1.00"}),
        json!({"count": -1, "batch": batch, "amount": "1.00"}),
        json!({"count": "ten", "batch": batch, "amount": "1.00"}),
        json!({"count": 100, "batch": batch, "amount": "1.00", "code_length": 4, "code_prefix": "ABC"}),
    ] {
        let r = s.post("/v1/vouchers/batch", &t.token, &body);
        assert_invalid_field(&r, "count");
    }
    for length in [3, 9] {
        let r = s.post(
            "/v1/vouchers/batch",
            &t.token,
            &json!({"count": 2, "batch": batch, "amount": "1.00", "code_length": length}),
        );
        assert_invalid_field(&r, "code_length");
    }
    let r = s.post(
        "/v1/vouchers/batch",
        &t.token,
        &json!({"count": 2, "batch": batch, "amount": "1.005"}),
    );
    assert_invalid_field(&r, "amount");
    assert!(
        s.list_ids(&t.token, &format!("filter[batch]={}", enc(&batch)))
            .is_empty(),
        "refused batches write nothing"
    );
}

// ---- HTTP-level refusals --------------------------------------------------------------------

fn allow_set(r: &Resp) -> BTreeSet<String> {
    r.header("allow")
        .unwrap_or_else(|| panic!("405 without Allow: {:?}", r.headers))
        .split(',')
        .map(|m| m.trim().to_ascii_uppercase())
        .filter(|m| !m.is_empty())
        .collect()
}

#[test]
fn unsupported_methods_are_405_with_allow() {
    let s = server();
    let t = writer(s);
    let v = s.create_voucher(&t.token, &json!({"amount": "1.00"}));
    let one = format!("/v1/vouchers/{}", id_of(&v["id"]));

    let r = s.call(
        "PUT",
        "/v1/vouchers",
        Some(&t.token),
        Some(&json!({"amount": "1.00"})),
    );
    assert_problem(&r, 405, "method_not_allowed");
    let allow = allow_set(&r);
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow:?}");
    assert!(
        !allow.contains("PUT") && !allow.contains("DELETE"),
        "{allow:?}"
    );

    let r = s.call("DELETE", "/v1/vouchers", Some(&t.token), None);
    assert_problem(&r, 405, "method_not_allowed");

    let r = s.call("PUT", &one, Some(&t.token), Some(&json!({"label": "x"})));
    assert_problem(&r, 405, "method_not_allowed");
    let allow = allow_set(&r);
    for m in ["GET", "PATCH", "DELETE"] {
        assert!(allow.contains(m), "{m} missing from {allow:?}");
    }
    assert!(
        !allow.contains("PUT") && !allow.contains("POST"),
        "{allow:?}"
    );

    let r = s.call("GET", "/v1/vouchers/batch", Some(&t.token), None);
    if r.status == 405 {
        assert!(allow_set(&r).contains("POST"));
    }
    assert_eq!(s.get(&one, &t.token).status, 200, "voucher untouched");
}

#[test]
fn non_json_content_type_is_415() {
    let s = server();
    let t = writer(s);
    let body = br#"{"amount": "1.00", "label": "typed"}"#;
    for ctype in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "text/csv",
    ] {
        let r = post_raw(s, &t.token, ctype, body);
        assert_problem(&r, 415, "unsupported_media_type");
    }
    let v = s.create_voucher(&t.token, &json!({"amount": "1.00"}));
    let auth = format!("Bearer {}", t.token);
    let r = s.send(
        "PATCH",
        &format!("/v1/vouchers/{}", id_of(&v["id"])),
        &[("Authorization", auth.as_str())],
        Some(("text/plain", br#"{"label": "x"}"#)),
    );
    assert_problem(&r, 415, "unsupported_media_type");

    let ok = post_raw(s, &t.token, "application/json; charset=utf-8", body);
    assert_eq!(ok.status, 201, "charset parameter is fine: {}", ok.body);
    assert_eq!(ok.json["label"], "typed");
}

#[test]
fn content_length_over_1_mib_is_413_before_the_body_is_sent() {
    let s = server();
    let t = writer(s);
    for length in [(1 << 20) + 1, 50 << 20] {
        let req = format!(
            "POST /v1/vouchers HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n{{\"amount\":",
            s.host(),
            t.token
        );
        let r = s.raw(&req);
        assert_problem(&r, 413, "payload_too_large");
    }
    // Just under the cap is read and judged on its content.
    let mut padded = String::from(r#"{"amount": "1.00", "label": "pad", "note": ""#);
    padded.push_str(&"n".repeat((1 << 20) - 200));
    padded.push_str("\"}");
    let r = post_raw(s, &t.token, "application/json", padded.as_bytes());
    assert_ne!(r.status, 413, "a body under 1 MiB is not too large");
    assert!(r.status < 500, "{}", r.status);
}

#[test]
fn healthz_is_200_ok_without_auth() {
    let s = server();
    let r = s.call("GET", "/healthz", None, None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json, json!({"status": "ok"}));
}

#[test]
fn unknown_route_is_a_404_problem() {
    let s = server();
    let t = writer(s);
    let r = s.get("/v1/no-such-thing", &t.token);
    assert_problem(&r, 404, "not_found");
    let r = s.get("/v1/vouchers/ABC/nothing/here", &t.token);
    assert_problem(&r, 404, "not_found");
}
