//! The JTL Voucher Cloud 1.8 dialect, spoken to by a client written from JTL's documentation:
//! configured with nothing but vouchd's base URL (`…/jtl/v1`) and its credentials, building its
//! requests as JTL's clients do (form-encoded token request with the credentials in the body,
//! JSON bodies, `filter[…]` query parameters), and reading every field it expects with the
//! type JTL documents.

use crate::common::*;
use serde_json::{json, Value};

/// A JTL client: a base URL and a bearer token, nothing vouchd-specific.
struct Jtl<'a> {
    server: &'a TestServer,
    base: String,
    token: String,
}

impl<'a> Jtl<'a> {
    /// Connects like a JTL client: `POST {host}/oauth/token` beside the `/v1` base URL.
    fn connect(
        server: &'a TestServer,
        client_id: &str,
        secret: &str,
        scope: Option<&str>,
    ) -> Jtl<'a> {
        let r = token_request(server, client_id, secret, scope);
        assert_eq!(r.status, 200, "token: {}", r.body);
        assert_eq!(r.json["token_type"], "Bearer");
        assert!(r.json["expires_in"].is_i64(), "{}", r.body);
        Jtl {
            server,
            base: server.url("/jtl/v1"),
            token: string(&r.json["access_token"]).to_string(),
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Resp {
        self.server.call(
            method,
            &format!("{}{path}", self.base),
            Some(&self.token),
            body,
        )
    }

    fn get(&self, path: &str) -> Resp {
        self.call("GET", path, None)
    }

    fn post(&self, path: &str, body: &Value) -> Resp {
        self.call("POST", path, Some(body))
    }

    fn patch(&self, path: &str, body: &Value) -> Resp {
        self.call("PATCH", path, Some(body))
    }
}

fn token_request(server: &TestServer, id: &str, secret: &str, scope: Option<&str>) -> Resp {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_id", id),
        ("client_secret", secret),
        ("client_type", "pos"),
    ];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    let body = form
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&");
    server.send(
        "POST",
        "/jtl/oauth/token",
        &[],
        Some(("application/x-www-form-urlencoded", body.as_bytes())),
    )
}

/// A client of a new group with these vouchd scopes, connected with JTL `scope`.
fn jtl_client<'a>(
    server: &'a TestServer,
    scopes: &[&str],
    scope: Option<&str>,
) -> (Jtl<'a>, Tenant) {
    let tenant = server.tenant(scopes);
    let client = Jtl::connect(server, &tenant.client_id, &tenant.secret, scope);
    (client, tenant)
}

// ---- JTL's documented types ---------------------------------------------------------------

fn string(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

/// JTL money: `^\d+\.\d{2}$`, 4 to 9 characters.
fn assert_money(v: &Value) -> i64 {
    let s = string(v);
    let (major, minor) = s.split_once('.').unwrap_or_else(|| panic!("money {s}"));
    assert!(
        (4..=9).contains(&s.len())
            && !major.is_empty()
            && major.bytes().all(|b| b.is_ascii_digit())
            && minor.len() == 2
            && minor.bytes().all(|b| b.is_ascii_digit()),
        "not JTL money: {s}"
    );
    major.parse::<i64>().expect("digits") * 100 + minor.parse::<i64>().expect("digits")
}

/// RFC 3339 with an offset, seconds precision: `2017-07-21T17:32:28+00:00`.
fn assert_time(v: &Value) {
    let s = string(v);
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.clone().all(|i| b[i].is_ascii_digit());
    assert!(
        b.len() == 25
            && digits(0..4)
            && b[4] == b'-'
            && digits(5..7)
            && b[7] == b'-'
            && digits(8..10)
            && b[10] == b'T'
            && digits(11..13)
            && b[13] == b':'
            && digits(14..16)
            && b[16] == b':'
            && digits(17..19)
            && (b[19] == b'+' || b[19] == b'-')
            && digits(20..22)
            && b[22] == b':'
            && digits(23..25),
        "not RFC 3339: {s}"
    );
}

fn assert_nullable_string(v: &Value) {
    assert!(v.is_null() || v.is_string(), "not a string or null: {v}");
}

fn assert_keys(v: &Value, keys: &[&str]) {
    let mut have: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    let mut want = keys.to_vec();
    have.sort_unstable();
    want.sort_unstable();
    assert_eq!(have, want, "fields of {v}");
}

const VOUCHER_KEYS: &[&str] = &[
    "id",
    "client_id",
    "sku",
    "batch",
    "amount",
    "currency",
    "valid_until",
    "validity_value",
    "validity_interval",
    "status",
    "type",
    "taxable",
    "tax_rate",
    "order_number",
    "data",
    "created_at",
    "updated_at",
];

/// A JTL voucher and what it carries beyond the base (`remaining_amount`, `code`, …).
fn assert_voucher(v: &Value, extra: &[&str]) {
    let keys: Vec<&str> = VOUCHER_KEYS.iter().chain(extra).copied().collect();
    assert_keys(v, &keys);
    string(&v["id"]);
    string(&v["client_id"]);
    assert_nullable_string(&v["sku"]);
    assert_nullable_string(&v["batch"]);
    assert_money(&v["amount"]);
    assert_eq!(string(&v["currency"]).len(), 3);
    if !v["valid_until"].is_null() {
        assert_time(&v["valid_until"]);
    }
    assert!(v["validity_value"].is_i64(), "{v}");
    assert!(
        ["days", "weeks", "months", "years"].contains(&string(&v["validity_interval"])),
        "{v}"
    );
    assert!(
        ["active", "inactive"].contains(&string(&v["status"])),
        "{v}"
    );
    assert!(["digital", "print"].contains(&string(&v["type"])), "{v}");
    assert!(v["taxable"].is_boolean(), "{v}");
    assert_nullable_string(&v["tax_rate"]);
    assert_nullable_string(&v["order_number"]);
    assert_nullable_string(&v["data"]);
    assert_time(&v["created_at"]);
    assert_time(&v["updated_at"]);
    if extra.contains(&"remaining_amount") {
        assert_money(&v["remaining_amount"]);
        assert!(v["deletable"].is_boolean(), "{v}");
    }
    if extra.contains(&"code") {
        string(&v["code"]);
        assert_nullable_string(&v["pin"]);
    }
}

fn assert_charge(c: &Value, kind: &str) -> i64 {
    assert_keys(
        c,
        &[
            "id",
            "voucher_id",
            "client_id",
            "type",
            "amount",
            "order_number",
            "created_at",
            "updated_at",
        ],
    );
    string(&c["id"]);
    string(&c["voucher_id"]);
    string(&c["client_id"]);
    assert_eq!(c["type"], kind, "{c}");
    assert_nullable_string(&c["order_number"]);
    assert_time(&c["created_at"]);
    assert_time(&c["updated_at"]);
    assert_money(&c["amount"])
}

fn assert_reservation(r: &Value) {
    assert_keys(
        r,
        &[
            "id",
            "voucher_id",
            "voucher_taxable",
            "voucher_tax_rate",
            "client_id",
            "amount",
            "valid_until",
            "created_at",
            "updated_at",
        ],
    );
    string(&r["id"]);
    string(&r["voucher_id"]);
    assert!(r["voucher_taxable"].is_boolean());
    assert_nullable_string(&r["voucher_tax_rate"]);
    string(&r["client_id"]);
    assert_money(&r["amount"]);
    for t in ["valid_until", "created_at", "updated_at"] {
        assert_time(&r[t]);
    }
}

/// A Laravel page: `data`, `links` (absolute URLs or null), `meta`.
fn assert_page(r: &Resp) -> Vec<Value> {
    assert_eq!(r.status, 200, "{}", r.body);
    assert_keys(&r.json, &["data", "links", "meta"]);
    assert_keys(&r.json["links"], &["first", "last", "prev", "next"]);
    for link in ["first", "last"] {
        assert!(string(&r.json["links"][link]).starts_with("http://"));
    }
    let meta = &r.json["meta"];
    for n in ["current_page", "per_page", "last_page", "total"] {
        assert!(meta[n].is_u64(), "meta.{n}: {meta}");
    }
    string(&meta["path"]);
    r.json["data"].as_array().expect("data").clone()
}

/// JTL's error body: `{status, code, message}` (and `errors` on a 422).
fn assert_jtl_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert!(r.content_type().starts_with("application/json"), "{r:?}");
    assert_eq!(r.json["status"], status, "{}", r.body);
    assert_eq!(r.json["code"], code, "{}", r.body);
    string(&r.json["message"]);
    if let Some(errors) = r.json.get("errors") {
        for e in errors.as_array().expect("errors is a list") {
            assert_keys(e, &["code", "property", "rule", "message"]);
        }
    }
}

fn violation_codes(r: &Resp) -> Vec<String> {
    r.json["errors"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|e| string(&e["code"]).to_string())
                .collect()
        })
        .unwrap_or_default()
}

// ---- the tests ----------------------------------------------------------------------------

#[test]
fn jtl_main_flow_create_activate_reserve_charge_refund_recharge_list_reads_every_field_typed() {
    let server = TestServer::start();
    let (jtl, _) = jtl_client(&server, CASHIER, None);
    let created = jtl.post(
        "/vouchers",
        &json!({"amount": "50.00", "currency": "EUR", "sku": "GIFT-50", "batch": "Winter Campaign",
                "validity_value": 24, "validity_interval": "months", "type": "digital",
                "taxable": true, "tax_rate": "19", "order_number": "Order 66",
                "data": "{\"foo\": \"bar\"}"}),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    assert_voucher(&created.json, &["code", "pin"]);
    let v = &created.json;
    assert_eq!(v["status"], "inactive");
    assert!(
        v["valid_until"].is_null(),
        "no end of validity while inactive"
    );
    assert_eq!(
        (v["sku"].clone(), v["tax_rate"].clone()),
        (json!("GIFT-50"), json!("19"))
    );
    let (id, code) = (string(&v["id"]).to_string(), string(&v["code"]).to_string());

    let active = jtl.patch(
        &format!("/vouchers/{id}/status"),
        &json!({"status": "active", "comment": "paid"}),
    );
    assert_eq!(active.status, 200, "{}", active.body);
    assert_voucher(&active.json, &[]);
    assert_eq!(active.json["status"], "active");
    assert_time(&active.json["valid_until"]);

    let held = jtl.post(
        "/reservations",
        &json!({"amount": "20.00", "currency": "EUR", "code": code}),
    );
    assert_eq!(held.status, 200, "{}", held.body);
    assert_reservation(&held.json);
    assert_eq!(held.json["voucher_id"], id.as_str());
    assert_eq!(held.json["voucher_taxable"], true);

    let charged = jtl.post(
        &format!("/reservations/{}/charge", string(&held.json["id"])),
        &json!({"order_number": "ORDER-1"}),
    );
    assert_eq!(charged.status, 200, "{}", charged.body);
    assert_eq!(assert_charge(&charged.json, "charge"), 2000);
    assert_eq!(charged.json["order_number"], "ORDER-1");

    let refunded = jtl.post(
        &format!("/charges/{}/refund", string(&charged.json["id"])),
        &json!({"amount": "5.00", "currency": "EUR"}),
    );
    assert_eq!(refunded.status, 200, "{}", refunded.body);
    assert_eq!(assert_charge(&refunded.json, "refund"), 500);
    assert_eq!(refunded.json["order_number"], "ORDER-1");

    let recharged = jtl.post(
        "/vouchers/recharge",
        &json!({"amount": "10.00", "currency": "EUR", "order_number": "TOPUP-1", "code": code}),
    );
    assert_eq!(recharged.status, 200, "{}", recharged.body);
    assert_eq!(assert_charge(&recharged.json, "recharge"), 1000);

    let one = jtl.get(&format!("/vouchers/{id}"));
    assert_eq!(one.status, 200, "{}", one.body);
    assert_voucher(&one.json, &["remaining_amount", "deletable"]);
    assert_eq!(
        assert_money(&one.json["remaining_amount"]),
        5000 - 2000 + 500 + 1000
    );
    assert_eq!(one.json["deletable"], false);

    let list = jtl.get(&format!(
        "/vouchers?page=1&per_page=10&filter%5Bstatus%5D%5B%5D=active&filter%5Bbatch%5D={}&filter%5Bcode%5D={code}&filter%5Bremaining_amount%5D=true&filter%5Btaxable%5D=true&sort=-created_at",
        enc("Winter Campaign")
    ));
    let data = assert_page(&list);
    assert_eq!(data.len(), 1, "{}", list.body);
    assert_voucher(&data[0], &["remaining_amount", "deletable"]);
    assert_eq!(data[0]["id"], id.as_str());
    let none = jtl.get("/vouchers?filter%5Bstatus%5D%5B%5D=inactive&filter%5Bbatch%5D=Winter");
    assert!(assert_page(&none).is_empty(), "{}", none.body);

    let charges = jtl.get(&format!("/vouchers/{id}/charges?page=1&per_page=25"));
    let entries = assert_page(&charges);
    let kinds: Vec<&str> = entries.iter().map(|e| string(&e["type"])).collect();
    assert_eq!(kinds, ["recharge", "refund", "charge"], "{}", charges.body);
    for e in &entries {
        assert_charge(e, string(&e["type"]));
    }
    let by_order = jtl.get(&format!(
        "/vouchers/{id}/charges?filter%5Border_number%5D=ORDER-1"
    ));
    assert_eq!(assert_page(&by_order).len(), 2, "{}", by_order.body);
    let single = jtl.get(&format!(
        "/vouchers/{id}/charges/{}",
        string(&charged.json["id"])
    ));
    assert_eq!(single.status, 200, "{}", single.body);
    assert_charge(&single.json, "charge");
}

#[test]
fn the_native_api_sees_the_jtl_vouchers_balance_and_ledger() {
    let server = TestServer::start();
    let (jtl, tenant) = jtl_client(&server, CASHIER, None);
    let v = jtl.post("/vouchers", &json!({"amount": "30.00", "currency": "EUR"}));
    let id = string(&v.json["id"]).to_string();
    jtl.patch(
        &format!("/vouchers/{id}/status"),
        &json!({"status": "active"}),
    );
    let held = jtl.post(
        "/reservations",
        &json!({"amount": "12.50", "currency": "EUR", "code": v.json["code"]}),
    );
    jtl.post(
        &format!("/reservations/{}/charge", string(&held.json["id"])),
        &json!({"order_number": "O"}),
    );
    jtl.post(
        "/vouchers/recharge",
        &json!({"amount": "1.00", "currency": "EUR", "order_number": "R", "id": id}),
    );
    let native = server.get(&format!("/v1/vouchers/{id}"), &tenant.token);
    assert_eq!(native.status, 200, "{}", native.body);
    assert_eq!(native.json["remaining_amount"], "18.50");
    assert_eq!(
        native.json["amount"], "31.00",
        "a recharge adds to the amount too"
    );
    let ledger = server.get(&format!("/v1/vouchers/{id}/charges"), &tenant.token);
    let kinds: Vec<&str> = ledger.json["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|e| string(&e["type"]))
        .collect();
    assert_eq!(kinds, ["recharge", "charge"], "{}", ledger.body);
    // And the other way: a native charge shows in JTL's list of charges.
    let r = server.post(
        &format!("/v1/vouchers/{id}/charges"),
        &tenant.token,
        &json!({"type": "charge", "amount": "3.00"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let one = jtl.get(&format!("/vouchers/{id}"));
    assert_eq!(one.json["remaining_amount"], "15.50");
}

#[test]
fn vouchers_start_inactive_and_cannot_be_reserved_until_activated() {
    let server = TestServer::start();
    let (jtl, _) = jtl_client(&server, CASHIER, None);
    let v = jtl.post("/vouchers", &json!({"amount": "10.00", "currency": "EUR"}));
    assert_eq!(v.json["status"], "inactive");
    let r = jtl.post(
        "/reservations",
        &json!({"amount": "1.00", "currency": "EUR", "code": v.json["code"]}),
    );
    assert_jtl_error(&r, 422, "VOUCHER.INACTIVE");
    let id = string(&v.json["id"]);
    jtl.patch(
        &format!("/vouchers/{id}/status"),
        &json!({"status": "active"}),
    );
    let r = jtl.post(
        "/reservations",
        &json!({"amount": "1.00", "currency": "EUR", "code": v.json["code"]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let off = jtl.patch(
        &format!("/vouchers/{id}/status"),
        &json!({"status": "inactive"}),
    );
    assert_eq!(off.json["status"], "inactive");
    let bad = jtl.patch(
        &format!("/vouchers/{id}/status"),
        &json!({"status": "cancelled"}),
    );
    assert_jtl_error(&bad, 422, "VOUCHER.STATUS.UNPROCESSABLE_ENTITY");
    assert_eq!(violation_codes(&bad), ["VOUCHER.STATUS.STATUS.IN"]);
}

#[test]
fn a_newer_reservation_replaces_the_live_one_and_the_old_cannot_be_charged() {
    let server = TestServer::start();
    let (jtl, _) = jtl_client(&server, CASHIER, None);
    let v = jtl.post("/vouchers", &json!({"amount": "50.00", "currency": "EUR"}));
    let id = string(&v.json["id"]).to_string();
    jtl.patch(
        &format!("/vouchers/{id}/status"),
        &json!({"status": "active"}),
    );
    let code = v.json["code"].clone();
    let first = jtl.post(
        "/reservations",
        &json!({"amount": "30.00", "currency": "EUR", "code": code}),
    );
    assert_eq!(first.status, 200, "{}", first.body);
    // 30 + 40 exceed 50: only possible because the newer one replaces the first.
    let second = jtl.post(
        "/reservations",
        &json!({"amount": "40.00", "currency": "EUR", "code": code}),
    );
    assert_eq!(second.status, 200, "{}", second.body);
    let old = jtl.post(
        &format!("/reservations/{}/charge", string(&first.json["id"])),
        &json!({"order_number": "A"}),
    );
    assert_jtl_error(&old, 422, "RESERVATION.NOT_ACTIVE");
    let too_much = jtl.post(
        "/reservations",
        &json!({"amount": "50.01", "currency": "EUR", "code": code}),
    );
    assert_jtl_error(&too_much, 422, "VOUCHER.INSUFFICIENT_BALANCE");
    // The refused one replaced nothing: the second still charges.
    let new = jtl.post(
        &format!("/reservations/{}/charge", string(&second.json["id"])),
        &json!({"order_number": "B"}),
    );
    assert_eq!(new.status, 200, "{}", new.body);
    let again = jtl.post(
        &format!("/reservations/{}/charge", string(&second.json["id"])),
        &json!({"order_number": "B"}),
    );
    assert_jtl_error(&again, 422, "RESERVATION.NOT_ACTIVE");
    assert_eq!(
        jtl.get(&format!("/vouchers/{id}")).json["remaining_amount"],
        "10.00"
    );
    // A reservation lasts 30 minutes.
    let held = jtl.post(
        "/reservations",
        &json!({"amount": "1.00", "currency": "EUR", "code": code}),
    );
    let (created, until) = (
        parse_ts(string(&held.json["created_at"])),
        parse_ts(string(&held.json["valid_until"])),
    );
    assert_eq!(until.epoch() - created.epoch(), 1800);
    let wrong = jtl.post(
        "/reservations",
        &json!({"amount": "1.00", "currency": "USD", "code": code}),
    );
    assert_jtl_error(&wrong, 422, "VOUCHER.CURRENCY_MISMATCH");
}

#[test]
fn printed_vouchers_get_a_pin_needed_to_reserve_and_never_shown_again_or_stored() {
    let server = TestServer::start();
    let (jtl, _) = jtl_client(&server, CASHIER, None);
    let v = jtl.post(
        "/vouchers",
        &json!({"amount": "20.00", "currency": "EUR", "type": "print"}),
    );
    assert_eq!(v.status, 201, "{}", v.body);
    let pin = string(&v.json["pin"]).to_string();
    assert!(
        pin.len() == 8 && pin.bytes().all(|b| b.is_ascii_digit()),
        "{pin}"
    );
    let id = string(&v.json["id"]).to_string();
    jtl.patch(
        &format!("/vouchers/{id}/status"),
        &json!({"status": "active"}),
    );
    let code = v.json["code"].clone();
    let none = jtl.post(
        "/reservations",
        &json!({"amount": "1.00", "currency": "EUR", "code": code}),
    );
    assert_jtl_error(&none, 422, "VOUCHER.PIN.REQUIRED");
    let wrong_pin = if pin == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    let wrong = jtl.post(
        "/reservations",
        &json!({"amount": "1.00", "currency": "EUR", "code": code, "pin": wrong_pin}),
    );
    assert_jtl_error(&wrong, 422, "VOUCHER.PIN.INVALID");
    let right = jtl.post(
        "/reservations",
        &json!({"amount": "1.00", "currency": "EUR", "code": code, "pin": pin}),
    );
    assert_eq!(right.status, 200, "{}", right.body);
    let complete = jtl.get(&format!("/vouchers/{id}/complete"));
    assert_eq!(complete.status, 200, "{}", complete.body);
    assert_voucher(&complete.json, &["code", "pin"]);
    assert_eq!(complete.json["code"], code);
    assert!(
        complete.json["pin"].is_null(),
        "kept only as a hash: {}",
        complete.body
    );
    for body in [
        jtl.get("/vouchers").body,
        jtl.get(&format!("/vouchers/{id}")).body,
        complete.body,
    ] {
        assert!(!body.contains(&pin), "{body}");
    }
    assert!(
        !server.stored_anywhere(&pin),
        "the PIN is stored in the database as text"
    );
    assert!(!server.output().contains(&pin), "the PIN is in the log");
}

#[test]
fn scopes_are_jtls_seven_granted_as_the_group_allows_and_recharge_is_not_use() {
    let server = TestServer::start();
    let till = server.tenant(&["vouchers:read", "charges:read", "charges:write"]);
    let r = token_request(&server, &till.client_id, &till.secret, None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["scope"], "read read-lists use");
    let refused = token_request(&server, &till.client_id, &till.secret, Some("read manage"));
    assert_oauth_error(&refused, 400, "invalid_scope");
    let unknown = token_request(
        &server,
        &till.client_id,
        &till.secret,
        Some("vouchers:read"),
    );
    assert_oauth_error(&unknown, 400, "invalid_scope");
    let wrong = token_request(&server, &till.client_id, "nope", None);
    assert_oauth_error(&wrong, 401, "invalid_client");

    let (issuer, _) = jtl_client(&server, CASHIER, None);
    let v = issuer.post("/vouchers", &json!({"amount": "5.00", "currency": "EUR"}));
    let id = string(&v.json["id"]).to_string();
    let use_only = Jtl::connect(&server, &till.client_id, &till.secret, Some("use"));
    assert_jtl_error(&use_only.get("/vouchers"), 403, "AUTH.SCOPE_MISSING");
    // Another group's voucher does not exist for the till; its own group's does.
    let (shop, shop_tenant) = jtl_client(&server, CASHIER, Some("read use"));
    assert_jtl_error(
        &shop.get(&format!("/vouchers/{id}")),
        404,
        "VOUCHER.NOT_FOUND",
    );
    let mine = server.create_voucher(&shop_tenant.token, &json!({"amount": "5.00"}));
    let mine_id = string(&mine["id"]);
    assert_eq!(shop.get(&format!("/vouchers/{mine_id}")).status, 200);
    let r = shop.post(
        "/vouchers/recharge",
        &json!({"amount": "1.00", "currency": "EUR", "order_number": "R", "id": mine_id}),
    );
    assert_jtl_error(&r, 403, "AUTH.SCOPE_MISSING");
    assert_jtl_error(&shop.get("/vouchers"), 403, "AUTH.SCOPE_MISSING");
    assert_jtl_error(
        &shop.post("/vouchers", &json!({"amount": "1.00"})),
        403,
        "AUTH.SCOPE_MISSING",
    );
    let anonymous = server.call("GET", "/jtl/v1/vouchers", None, None);
    assert_jtl_error(&anonymous, 401, "AUTH.UNAUTHENTICATED");
    // A JTL token works on /jtl only.
    assert_eq!(
        server
            .get(&format!("/v1/vouchers/{mine_id}/charges"), &shop.token)
            .status,
        403
    );
}

#[test]
fn create_validates_fields_with_jtl_codes_and_names_every_one() {
    let server = TestServer::start();
    let (jtl, _) = jtl_client(&server, CASHIER, None);
    let r = jtl.post(
        "/vouchers",
        &json!({"id": 7, "code": "x", "sku": "s".repeat(256), "batch": "b".repeat(31),
                "currency": "EURO", "validity_value": 0, "bogus": true}),
    );
    assert_jtl_error(&r, 422, "VOUCHER.CREATE.UNPROCESSABLE_ENTITY");
    assert_eq!(r.json["message"], "The given data was invalid.");
    let mut codes = violation_codes(&r);
    codes.sort();
    assert_eq!(
        codes,
        [
            "VOUCHER.CREATE.AMOUNT.REQUIRED",
            "VOUCHER.CREATE.BATCH.MAX:30",
            "VOUCHER.CREATE.BOGUS.PROHIBITED",
            "VOUCHER.CREATE.CODE.REGEX",
            "VOUCHER.CREATE.CURRENCY.VALID_CURRENCY",
            "VOUCHER.CREATE.CUSTOM_ID.STRING",
            "VOUCHER.CREATE.SKU.MAX:255",
            "VOUCHER.CREATE.VALIDITY_VALUE.MIN:1",
        ],
        "{}",
        r.body
    );
    for amount in [
        json!("10"),
        json!("10.5"),
        json!(10.5),
        json!("1000000.00"),
        json!("-1.00"),
    ] {
        let r = jtl.post("/vouchers", &json!({"amount": amount, "currency": "EUR"}));
        assert_jtl_error(&r, 422, "VOUCHER.CREATE.UNPROCESSABLE_ENTITY");
    }
    for (amount, code) in [
        ("abc", "VOUCHER.CREATE.AMOUNT.NUMERIC"),
        ("-1.00", "VOUCHER.CREATE.AMOUNT.MIN:0"),
        ("10.5", "VOUCHER.CREATE.AMOUNT.REGEX"),
    ] {
        let r = jtl.post("/vouchers", &json!({"amount": amount, "currency": "EUR"}));
        assert_eq!(violation_codes(&r), [code], "{amount}");
    }
    let number = jtl.post("/vouchers", &json!({"amount": 10, "currency": "EUR"}));
    assert_eq!(violation_codes(&number), ["VOUCHER.CREATE.AMOUNT.STRING"]);
    let jpy = jtl.post("/vouchers", &json!({"amount": "10.00", "currency": "JPY"}));
    assert_eq!(
        violation_codes(&jpy),
        ["VOUCHER.CREATE.CURRENCY.VALID_CURRENCY"]
    );
    let first = jtl.post(
        "/vouchers",
        &json!({"code": "ABCD2345", "amount": "0.00", "currency": "EUR"}),
    );
    assert_eq!(first.status, 201, "{}", first.body);
    let custom = jtl.post(
        "/vouchers",
        &json!({"id": "SKU-4711", "amount": "1.00", "currency": "EUR"}),
    );
    assert_eq!(
        violation_codes(&custom),
        ["VOUCHER.CREATE.CUSTOM_ID.PROHIBITED"]
    );
    let code_twice = jtl.post(
        "/vouchers",
        &json!({"code": "abcd-2345", "amount": "1.00", "currency": "EUR"}),
    );
    assert_eq!(violation_codes(&code_twice), ["VOUCHER.CREATE.CODE.UNIQUE"]);
    let not_json = server.send(
        "POST",
        "/jtl/v1/vouchers",
        &[("Authorization", &format!("Bearer {}", jtl.token))],
        Some(("application/json", b"{")),
    );
    assert_jtl_error(&not_json, 400, "REQUEST.MALFORMED");
    let no_route = jtl.get("/nowhere");
    assert_jtl_error(&no_route, 404, "ROUTE.NOT_FOUND");
    let method = jtl.call("PUT", "/vouchers", None);
    assert_jtl_error(&method, 405, "REQUEST.METHOD_NOT_ALLOWED");
    assert_eq!(method.header("allow"), Some("GET, HEAD, POST"));
}

#[test]
fn update_changes_sku_and_batch_only_and_delete_needs_a_reason_and_no_charges() {
    let server = TestServer::start();
    let (jtl, _) = jtl_client(&server, CASHIER, None);
    let v = jtl.post(
        "/vouchers",
        &json!({"amount": "10.00", "currency": "EUR", "sku": "A"}),
    );
    let id = string(&v.json["id"]).to_string();
    let r = jtl.patch(
        &format!("/vouchers/{id}"),
        &json!({"sku": "B", "batch": null}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_voucher(&r.json, &[]);
    assert_eq!(r.json["sku"], "B");
    let r = jtl.patch(&format!("/vouchers/{id}"), &json!({"amount": "99.00"}));
    assert_eq!(violation_codes(&r), ["VOUCHER.UPDATE.AMOUNT.PROHIBITED"]);
    let r = jtl.call("DELETE", &format!("/vouchers/{id}"), Some(&json!({})));
    assert_eq!(violation_codes(&r), ["VOUCHER.DELETE.COMMENT.REQUIRED"]);
    let used = jtl.post("/vouchers", &json!({"amount": "10.00", "currency": "EUR"}));
    let used_id = string(&used.json["id"]).to_string();
    jtl.patch(
        &format!("/vouchers/{used_id}/status"),
        &json!({"status": "active"}),
    );
    jtl.post(
        "/vouchers/recharge",
        &json!({"amount": "1.00", "currency": "EUR", "order_number": "R", "id": used_id}),
    );
    let r = jtl.call(
        "DELETE",
        &format!("/vouchers/{used_id}"),
        Some(&json!({"comment": "mistake"})),
    );
    assert_jtl_error(&r, 422, "VOUCHER.DELETE.NOT_DELETABLE");
    let r = jtl.call(
        "DELETE",
        &format!("/vouchers/{id}"),
        Some(&json!({"comment": "printed twice"})),
    );
    assert_eq!(r.status, 204, "{}", r.body);
    assert_jtl_error(
        &jtl.get(&format!("/vouchers/{id}")),
        404,
        "VOUCHER.NOT_FOUND",
    );
}

#[test]
fn refunds_give_back_at_most_the_charge_and_only_of_charges() {
    let server = TestServer::start();
    let (jtl, _) = jtl_client(&server, CASHIER, None);
    let v = jtl.post("/vouchers", &json!({"amount": "10.00", "currency": "EUR"}));
    let id = string(&v.json["id"]).to_string();
    jtl.patch(
        &format!("/vouchers/{id}/status"),
        &json!({"status": "active"}),
    );
    let held = jtl.post(
        "/reservations",
        &json!({"amount": "4.00", "currency": "EUR", "code": v.json["code"]}),
    );
    let charge = jtl.post(
        &format!("/reservations/{}/charge", string(&held.json["id"])),
        &json!({"order_number": "O"}),
    );
    let cid = string(&charge.json["id"]).to_string();
    let r = jtl.post(
        &format!("/charges/{cid}/refund"),
        &json!({"amount": "3.00", "currency": "EUR"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let more = jtl.post(
        &format!("/charges/{cid}/refund"),
        &json!({"amount": "1.01", "currency": "EUR"}),
    );
    assert_jtl_error(&more, 422, "CHARGE.REFUND.AMOUNT_EXCEEDED");
    let rest = jtl.post(
        &format!("/charges/{cid}/refund"),
        &json!({"amount": "1.00", "currency": "EUR"}),
    );
    assert_eq!(rest.status, 200, "{}", rest.body);
    let of_refund = jtl.post(
        &format!("/charges/{}/refund", string(&rest.json["id"])),
        &json!({"amount": "0.01", "currency": "EUR"}),
    );
    assert_jtl_error(&of_refund, 422, "CHARGE.REFUND.NOT_A_CHARGE");
    let zero = jtl.post(
        &format!("/charges/{cid}/refund"),
        &json!({"amount": "0.00", "currency": "EUR"}),
    );
    assert_eq!(violation_codes(&zero), ["CHARGE.REFUND.AMOUNT.MIN:0.01"]);
    let gone = jtl.post(
        "/charges/NOPE/refund",
        &json!({"amount": "1.00", "currency": "EUR"}),
    );
    assert_jtl_error(&gone, 404, "CHARGE.NOT_FOUND");
    assert_eq!(
        jtl.get(&format!("/vouchers/{id}")).json["remaining_amount"],
        "10.00"
    );
}

#[test]
fn a_connection_pin_from_the_cli_is_swapped_once_for_credentials_that_get_a_token() {
    let server = TestServer::start();
    let tenant = server.tenant(CASHIER);
    let out = server.cli(&[
        "client",
        "connect-pin",
        "--group",
        &tenant.group_name,
        "--name",
        "Till 3",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let pin = string(&printed["pin"]).to_string();
    assert_eq!(pin.len(), 10);
    assert!(
        !server.stored_anywhere(&pin),
        "the PIN is stored in the database as text"
    );
    let connect = |pin: &str| {
        server.call(
            "POST",
            "/jtl/v1/clients/connect",
            None,
            Some(&json!({"pin": pin})),
        )
    };
    let r = connect(&pin.to_lowercase());
    assert_eq!(r.status, 200, "{}", r.body);
    assert_keys(
        &r.json,
        &[
            "id",
            "client_group_id",
            "name",
            "secret",
            "scopes",
            "created_at",
            "updated_at",
            "connected_at",
            "type",
        ],
    );
    assert_eq!(r.json["client_group_id"], tenant.group_id.as_str());
    assert_eq!(r.json["name"], "Till 3");
    assert_eq!(r.json["scopes"], json!(["can_use", "can_manage"]));
    for t in ["created_at", "updated_at", "connected_at"] {
        assert_time(&r.json[t]);
    }
    let jtl = Jtl::connect(
        &server,
        string(&r.json["id"]),
        string(&r.json["secret"]),
        Some("read-lists"),
    );
    assert_eq!(jtl.get("/vouchers").status, 200);
    let again = connect(&pin);
    assert_jtl_error(&again, 422, "CLIENT.CONNECT.PIN.INVALID");
    let missing = server.call("POST", "/jtl/v1/clients/connect", None, Some(&json!({})));
    assert_eq!(violation_codes(&missing), ["CLIENT.CONNECT.PIN.REQUIRED"]);
    let number = server.call(
        "POST",
        "/jtl/v1/clients/connect",
        None,
        Some(&json!({"pin": 1234})),
    );
    assert_eq!(violation_codes(&number), ["CLIENT.CONNECT.PIN.STRING"]);
}

#[test]
fn discount_vouchers_and_other_currencies_do_not_exist_in_jtl() {
    let server = TestServer::start();
    let (jtl, tenant) = jtl_client(&server, CASHIER, None);
    let discount = server.create_voucher(
        &tenant.token,
        &json!({"discount": {"type": "money", "value": "5"}}),
    );
    let yen = server.create_voucher(&tenant.token, &json!({"amount": "1500", "currency": "JPY"}));
    let euro = server.create_voucher(&tenant.token, &json!({"amount": "15.00"}));
    for v in [&discount, &yen] {
        assert_jtl_error(
            &jtl.get(&format!("/vouchers/{}", string(&v["id"]))),
            404,
            "VOUCHER.NOT_FOUND",
        );
    }
    let data = assert_page(&jtl.get("/vouchers"));
    let ids: Vec<&str> = data.iter().map(|v| string(&v["id"])).collect();
    assert_eq!(ids, [string(&euro["id"])]);
}

// ---- the dialect's OpenAPI document, and the fuzzer against it --------------------------------

#[test]
fn the_jtl_openapi_document_describes_exactly_the_jtl_v1_routes() {
    let server = TestServer::start();
    let r = server.call("GET", "/jtl/openapi.json", None, None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(string(&r.json["openapi"]).starts_with("3.0."));
    assert_eq!(r.json["info"]["version"], "1.8");
    assert_eq!(r.json["servers"][0]["url"], "/jtl/v1");
    let mut documented = Vec::new();
    for (path, item) in r.json["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("item").keys() {
            documented.push((method.to_ascii_uppercase(), format!("/v1{path}")));
        }
    }
    let mut routed: Vec<(String, String)> = vouchd::api::jtl::ROUTES
        .iter()
        .filter(|(_, p)| p.starts_with("/v1/"))
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    documented.sort();
    routed.sort();
    assert_eq!(documented, routed);
    let scopes = &r.json["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"];
    assert_eq!(scopes["tokenUrl"], "/jtl/oauth/token");
    let mut names: Vec<&str> = scopes["scopes"]
        .as_object()
        .expect("scopes")
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "manage",
            "read",
            "read-lists",
            "read-secrets",
            "recharge",
            "update",
            "use"
        ]
    );
}

/// Cases per operation in schemathesis's fuzzing phase; `VOUCHD_JTL_FUZZ_EXAMPLES` overrides.
const FUZZ_EXAMPLES: &str = "25";

#[test]
fn schemathesis_against_the_jtl_document_finds_no_5xx_and_every_answer_in_jtls_schemas() {
    let exe = crate::openapi::schemathesis();
    let server = TestServer::start();
    let (jtl, _) = jtl_client(&server, CASHIER, None);
    let (mut ids, mut codes, mut reservations, mut charges) = (vec![], vec![], vec![], vec![]);
    let mut pins = Vec::new();
    for (amount, kind) in [
        ("80.00", "digital"),
        ("25.00", "digital"),
        ("40.00", "print"),
        ("999999.99", "digital"),
    ] {
        let v = jtl.post(
            "/vouchers",
            &json!({"amount": amount, "currency": "EUR", "type": kind, "batch": "fuzz"}),
        );
        assert_eq!(v.status, 201, "{}", v.body);
        let id = string(&v.json["id"]).to_string();
        jtl.patch(
            &format!("/vouchers/{id}/status"),
            &json!({"status": "active"}),
        );
        let pin = v.json["pin"].clone();
        let code = v.json["code"].clone();
        for _ in 0..2 {
            let held = jtl.post(
                "/reservations",
                &json!({"amount": "1.00", "currency": "EUR", "code": code, "pin": pin}),
            );
            assert_eq!(held.status, 200, "{}", held.body);
            let charged = jtl.post(
                &format!("/reservations/{}/charge", string(&held.json["id"])),
                &json!({"order_number": "F"}),
            );
            assert_eq!(charged.status, 200, "{}", charged.body);
            charges.push(format!("{id}:{}", string(&charged.json["id"])));
        }
        let held = jtl.post(
            "/reservations",
            &json!({"amount": "2.00", "currency": "EUR", "code": code, "pin": pin}),
        );
        reservations.push(string(&held.json["id"]).to_string());
        if let Some(pin) = pin.as_str() {
            pins.push(format!("{}:{pin}", string(&code)));
        }
        ids.push(id);
        codes.push(string(&code).to_string());
    }
    let fuzz_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz");
    let examples = std::env::var("VOUCHD_JTL_FUZZ_EXAMPLES").unwrap_or(FUZZ_EXAMPLES.into());
    let mut command = std::process::Command::new(&exe);
    command
        .arg("--config-file")
        .arg(fuzz_dir.join("jtl.toml"))
        .arg("run")
        .arg(server.url("/jtl/openapi.json"))
        .args([
            "--seed",
            "20261206",
            "--max-examples",
            &examples,
            "--no-color",
        ])
        .args(["--header", &format!("Authorization: Bearer {}", jtl.token)])
        .current_dir(server.dir().path())
        .env("SCHEMATHESIS_HOOKS", fuzz_dir.join("jtl_hooks.py"))
        .env("VOUCHD_JTL_VOUCHER_IDS", ids.join(","))
        .env("VOUCHD_JTL_CODES", codes.join(","))
        .env("VOUCHD_JTL_RESERVATIONS", reservations.join(","))
        .env("VOUCHD_JTL_CHARGES", charges.join(","))
        .env("VOUCHD_JTL_PINS", pins.join(","))
        .env("COLUMNS", "120");
    let started = std::time::Instant::now();
    let (passed, output) =
        crate::openapi::run_bounded(command, std::time::Duration::from_secs(15 * 60));
    assert!(
        passed,
        "schemathesis failed after {:?}:\n{output}\n--- server log ---\n{}",
        started.elapsed(),
        server.output()
    );
    assert!(!server.output().contains("panicked"), "{}", server.output());
    let summary = output
        .find("=== SUMMARY")
        .map_or(output.as_str(), |at| &output[at..]);
    eprintln!(
        "schemathesis (JTL) passed in {:?}:\n{summary}",
        started.elapsed()
    );
    assert_eq!(server.call("GET", "/healthz", None, None).status, 200);
}

#[test]
fn concurrent_tills_never_lose_or_double_a_charge_and_the_balance_never_goes_below_zero() {
    let server = TestServer::start();
    let (jtl, _) = jtl_client(&server, CASHIER, None);
    let v = jtl.post("/vouchers", &json!({"amount": "50.00", "currency": "EUR"}));
    let id = string(&v.json["id"]).to_string();
    jtl.patch(
        &format!("/vouchers/{id}/status"),
        &json!({"status": "active"}),
    );
    let code = v.json["code"].clone();
    // Eight tills each reserve 7.00 and charge it, ten times: reservations replace each other
    // and the balance runs out, so many fail; every success must be in the ledger once.
    let charged: Vec<i64> = std::thread::scope(|s| {
        let tills: Vec<_> = (0..8)
            .map(|till| {
                let (jtl, code) = (&jtl, code.clone());
                s.spawn(move || {
                    let mut mine = Vec::new();
                    for round in 0..10 {
                        let held = jtl.post(
                            "/reservations",
                            &json!({"amount": "7.00", "currency": "EUR", "code": code}),
                        );
                        if held.status != 200 {
                            assert_jtl_error(&held, 422, "VOUCHER.INSUFFICIENT_BALANCE");
                            continue;
                        }
                        let order = format!("T{till}-{round}");
                        let r = jtl.post(
                            &format!("/reservations/{}/charge", string(&held.json["id"])),
                            &json!({"order_number": order}),
                        );
                        match r.status {
                            200 => mine.push(assert_charge(&r.json, "charge")),
                            _ => assert_jtl_error(&r, 422, "RESERVATION.NOT_ACTIVE"),
                        }
                    }
                    mine
                })
            })
            .collect();
        tills
            .into_iter()
            .flat_map(|t| t.join().expect("till"))
            .collect()
    });
    let total: i64 = charged.iter().sum();
    let remaining = assert_money(&jtl.get(&format!("/vouchers/{id}")).json["remaining_amount"]);
    assert!(remaining >= 0);
    assert_eq!(total, 5000 - remaining, "charges answered 200: {charged:?}");
    let ledger = assert_page(&jtl.get(&format!("/vouchers/{id}/charges?per_page=1000")));
    assert_eq!(
        ledger.len(),
        charged.len(),
        "one ledger entry per answered charge"
    );
    assert!(!charged.is_empty() && total <= 5000, "{charged:?}");
}

// ---- what a JTL credential may do, and what the dialect must not give away ---------------

/// A JTL voucher of `amount` in the client's group, activated: `(id, code, pin)`.
fn active_voucher(jtl: &Jtl, amount: &str, kind: &str) -> (String, String, Option<String>) {
    let v = jtl.post(
        "/vouchers",
        &json!({"amount": amount, "currency": "EUR", "type": kind}),
    );
    assert_eq!(v.status, 201, "{}", v.body);
    let id = string(&v.json["id"]).to_string();
    let on = jtl.patch(
        &format!("/vouchers/{id}/status"),
        &json!({"status": "active"}),
    );
    assert_eq!(on.status, 200, "{}", on.body);
    let pin = v.json["pin"].as_str().map(str::to_string);
    (id, string(&v.json["code"]).to_string(), pin)
}

#[test]
fn a_jtl_token_is_refused_on_the_native_pos_and_carecloud_routes_whatever_its_jtl_scopes() {
    let server = TestServer::start();
    let tenant = server.tenant(CASHIER);
    let mine = server.create_voucher(
        &tenant.token,
        &json!({"amount": "5.00", "customer_id": "cust-1"}),
    );
    let (id, code) = (string(&mine["id"]), string(&mine["code"]));
    let carecloud = "/carecloud/rest-api/enterprise-interface/v1.0/customers/cust-1/vouchers";
    let jtl = |scope: &str| Jtl::connect(&server, &tenant.client_id, &tenant.secret, Some(scope));
    let read = jtl("read");
    assert_eq!(read.get(&format!("/vouchers/{id}")).status, 200);
    for path in [
        format!("/v1/vouchers/{id}"),
        "/v1/vouchers".to_string(),
        "/v1/vouchers/export.csv".to_string(),
        "/pos/v1/vouchers".to_string(),
        carecloud.to_string(),
    ] {
        let r = server.get(&path, &read.token);
        assert_eq!(r.status, 403, "{path}: {}", r.body);
        assert!(!r.body.contains(code), "{path}: {}", r.body);
        // The same route answers the client's native token.
        assert_eq!(server.get(&path, &tenant.token).status, 200, "{path}");
    }
    let validate = server.post("/v1/validate", &read.token, &json!({"code": code}));
    assert_problem(&validate, 403, "insufficient_scope");
    for scope in ["use", "recharge", "read use recharge"] {
        let t = jtl(scope);
        let charge = server.post(
            &format!("/v1/vouchers/{id}/charges"),
            &t.token,
            &json!({"type": "charge", "amount": "1.00"}),
        );
        assert_problem(&charge, 403, "insufficient_scope");
    }
    let left = server.get(&format!("/v1/vouchers/{id}"), &tenant.token);
    assert_eq!(left.json["remaining_amount"], "5.00", "{}", left.body);
}

#[test]
fn a_native_till_credential_gains_no_recharge_or_status_power_on_jtl() {
    let server = TestServer::start();
    let shop = server.tenant(CASHIER);
    let till_scopes = ["vouchers:read", "charges:read", "charges:write"];
    let (till_id, till_secret) = server.create_client("till", &shop.group_name, Some(&till_scopes));
    let till = server.token(&till_id, &till_secret, None);
    let issuer = Jtl::connect(&server, &shop.client_id, &shop.secret, None);
    let (id, code, _) = active_voucher(&issuer, "20.00", "digital");
    let recharge =
        json!({"amount": "100.00", "currency": "EUR", "order_number": "R", "code": code});
    let status = json!({"status": "inactive"});
    let call = |token: &str, method: &str, path: &str, body: &Value| {
        server.call(
            method,
            &server.url(&format!("/jtl/v1{path}")),
            Some(token),
            Some(body),
        )
    };
    assert_jtl_error(
        &call(&till, "POST", "/vouchers/recharge", &recharge),
        403,
        "AUTH.SCOPE_MISSING",
    );
    assert_jtl_error(
        &call(&till, "PATCH", &format!("/vouchers/{id}/status"), &status),
        403,
        "AUTH.SCOPE_MISSING",
    );
    // A JTL token of the till gets neither either.
    let r = token_request(&server, &till_id, &till_secret, Some("recharge"));
    assert_oauth_error(&r, 400, "invalid_scope");
    let till_jtl = Jtl::connect(&server, &till_id, &till_secret, None);
    assert_jtl_error(
        &till_jtl.patch(&format!("/vouchers/{id}/status"), &status),
        403,
        "AUTH.SCOPE_MISSING",
    );
    let one = issuer.get(&format!("/vouchers/{id}"));
    assert_eq!(one.json["status"], "active", "{}", one.body);
    assert_eq!(assert_money(&one.json["remaining_amount"]), 2000);
    // With vouchers:write, as on the native API, both work.
    let recharged = call(&shop.token, "POST", "/vouchers/recharge", &recharge);
    assert_eq!(recharged.status, 200, "{}", recharged.body);
    let off = call(
        &shop.token,
        "PATCH",
        &format!("/vouchers/{id}/status"),
        &status,
    );
    assert_eq!(off.status, 200, "{}", off.body);
}

#[test]
fn a_pin_voucher_is_never_charged_or_reserved_on_the_native_routes_with_its_code_alone() {
    let server = TestServer::start();
    let (jtl, tenant) = jtl_client(&server, CASHIER, None);
    let (_, code, pin) = active_voucher(&jtl, "20.00", "print");
    let pin = pin.expect("a printed voucher has a PIN");
    let found = server.post("/v1/validate", &tenant.token, &json!({"code": code}));
    assert_eq!(found.status, 200, "{}", found.body);
    let id = string(&found.json["voucher"]["id"]).to_string();
    let charge = server.post(
        &format!("/v1/vouchers/{id}/charges"),
        &tenant.token,
        &json!({"type": "charge", "amount": "20.00"}),
    );
    assert_problem(&charge, 409, "pin_required");
    let hold = server.post(
        &format!("/v1/vouchers/{id}/reservations"),
        &tenant.token,
        &json!({"amount": "20.00"}),
    );
    assert_problem(&hold, 409, "pin_required");
    let left = server.get(&format!("/v1/vouchers/{id}"), &tenant.token);
    assert_eq!(left.json["remaining_amount"], "20.00", "{}", left.body);
    // With its PIN, through JTL, it is spent.
    let held = jtl.post(
        "/reservations",
        &json!({"amount": "20.00", "currency": "EUR", "code": code, "pin": pin}),
    );
    assert_eq!(held.status, 200, "{}", held.body);
    let charged = jtl.post(
        &format!("/reservations/{}/charge", string(&held.json["id"])),
        &json!({"order_number": "O-1"}),
    );
    assert_eq!(charged.status, 200, "{}", charged.body);
}

#[test]
fn a_jtl_body_with_a_key_given_twice_is_refused_in_jtls_shape_naming_the_key() {
    let server = TestServer::start();
    let (jtl, _) = jtl_client(&server, CASHIER, None);
    let (id, code, _) = active_voucher(&jtl, "20.00", "digital");
    let auth = format!("Bearer {}", jtl.token);
    let send = |path: &str, body: String| {
        server.send(
            "POST",
            &format!("/jtl/v1{path}"),
            &[("Authorization", &auth)],
            Some(("application/json", body.as_bytes())),
        )
    };
    for (path, body) in [
        (
            "/reservations",
            format!(r#"{{"amount":"1.00","amount":"19.00","currency":"EUR","code":"{code}"}}"#),
        ),
        (
            "/vouchers/recharge",
            format!(
                r#"{{"amount":"1.00","currency":"EUR","order_number":"R","id":"{id}","amount":"999.00"}}"#
            ),
        ),
    ] {
        let r = send(path, body);
        assert_jtl_error(&r, 400, "REQUEST.MALFORMED");
        assert!(
            string(&r.json["message"]).contains("\"amount\""),
            "{}",
            r.body
        );
    }
    let one = jtl.get(&format!("/vouchers/{id}"));
    assert_eq!(
        assert_money(&one.json["remaining_amount"]),
        2000,
        "{}",
        one.body
    );
}

#[test]
fn a_custom_voucher_id_is_refused_so_no_group_learns_another_groups_ids() {
    let server = TestServer::start();
    let (a, a_tenant) = jtl_client(&server, CASHIER, None);
    let (b, _) = jtl_client(&server, CASHIER, None);
    let theirs = server.create_voucher(&a_tenant.token, &json!({"amount": "5.00"}));
    let taken = string(&theirs["id"]);
    for id in [taken, "order-1001", "..", "."] {
        let r = b.post(
            "/vouchers",
            &json!({"id": id, "amount": "1.00", "currency": "EUR"}),
        );
        assert_jtl_error(&r, 422, "VOUCHER.CREATE.UNPROCESSABLE_ENTITY");
        assert_eq!(
            violation_codes(&r),
            ["VOUCHER.CREATE.CUSTOM_ID.PROHIBITED"],
            "{id}"
        );
    }
    let own = a.post(
        "/vouchers",
        &json!({"id": "order-1", "amount": "1.00", "currency": "EUR"}),
    );
    assert_eq!(
        violation_codes(&own),
        ["VOUCHER.CREATE.CUSTOM_ID.PROHIBITED"]
    );
}

#[test]
fn a_jtl_reservation_leaves_a_native_hold_in_place_and_must_fit_beside_it() {
    let server = TestServer::start();
    let (jtl, tenant) = jtl_client(&server, CASHIER, None);
    let (id, code, _) = active_voucher(&jtl, "20.00", "digital");
    let native = server.post(
        &format!("/v1/vouchers/{id}/reservations"),
        &tenant.token,
        &json!({"amount": "15.00"}),
    );
    assert_eq!(native.status, 201, "{}", native.body);
    let reserve = |amount: &str| {
        jtl.post(
            "/reservations",
            &json!({"amount": amount, "currency": "EUR", "code": code}),
        )
    };
    assert_jtl_error(&reserve("10.00"), 422, "VOUCHER.INSUFFICIENT_BALANCE");
    let first = reserve("3.00");
    assert_eq!(first.status, 200, "{}", first.body);
    // A newer JTL reservation still replaces the older JTL one.
    let second = reserve("5.00");
    assert_eq!(second.status, 200, "{}", second.body);
    let old = jtl.post(
        &format!("/reservations/{}/charge", string(&first.json["id"])),
        &json!({"order_number": "O-1"}),
    );
    assert_jtl_error(&old, 422, "RESERVATION.NOT_ACTIVE");
    let captured = server.post(
        &format!(
            "/v1/vouchers/{id}/reservations/{}/capture",
            string(&native.json["id"])
        ),
        &tenant.token,
        &json!({}),
    );
    assert!(captured.status / 100 == 2, "{}", captured.body);
    let charged = jtl.post(
        &format!("/reservations/{}/charge", string(&second.json["id"])),
        &json!({"order_number": "O-2"}),
    );
    assert_eq!(charged.status, 200, "{}", charged.body);
    let one = jtl.get(&format!("/vouchers/{id}"));
    assert_eq!(
        assert_money(&one.json["remaining_amount"]),
        0,
        "{}",
        one.body
    );
}

#[test]
fn connect_counts_each_attempt_before_its_work_so_parallel_bad_pins_get_no_more_than_the_limit() {
    let server = TestServer::start();
    let answers: Vec<u16> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..24)
            .map(|i| {
                let server = &server;
                s.spawn(move || {
                    server
                        .call(
                            "POST",
                            &server.url("/jtl/v1/clients/connect"),
                            None,
                            Some(&json!({"pin": format!("WRONG{i:05}")})),
                        )
                        .status
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("thread"))
            .collect()
    });
    let checked = answers.iter().filter(|s| **s == 422).count();
    let refused = answers.iter().filter(|s| **s == 429).count();
    assert_eq!(checked + refused, answers.len(), "{answers:?}");
    assert!(checked <= 10, "{checked} PINs checked: {answers:?}");
}

/// The cells of column `name` in a CSV export, one per row.
fn csv_column(text: &str, name: &str) -> Vec<String> {
    let mut reader = ::csv::Reader::from_reader(text.as_bytes());
    let at = reader
        .headers()
        .expect("a header row")
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name}"));
    reader
        .records()
        .map(|r| r.expect("a CSV row")[at].to_string())
        .collect()
}

#[test]
fn a_printed_voucher_keeps_its_pin_through_export_and_import() {
    let source = TestServer::start();
    let (jtl, tenant) = jtl_client(&source, CASHIER, None);
    let (id, code, pin) = active_voucher(&jtl, "20.00", "print");
    let pin = pin.expect("a printed voucher has a PIN");
    let export = |token: &str| {
        let r = source.get(&format!("/v1/vouchers/export.csv?filter[id]={id}"), token);
        assert_eq!(r.status, 200, "{}", r.body);
        r.body
    };
    let text = export(&tenant.token);
    let hashes = csv_column(&text, "pin_hash");
    assert!(hashes[0].starts_with("$argon2id$"), "{text}");
    assert!(!text.contains(&pin), "the PIN itself is never exported");
    // A client that may only read gets no PIN hash.
    let (reader_id, reader_secret) =
        source.create_client("reader", &tenant.group_name, Some(&["vouchers:read"]));
    let reader = source.token(&reader_id, &reader_secret, None);
    assert_eq!(csv_column(&export(&reader), "pin_hash"), [""]);

    let fresh = TestServer::start();
    let (jtl2, tenant2) = jtl_client(&fresh, CASHIER, None);
    let import = |csv: &str| {
        fresh.send(
            "POST",
            "/v1/vouchers/import",
            &[("Authorization", &format!("Bearer {}", tenant2.token))],
            Some(("text/csv", csv.as_bytes())),
        )
    };
    let bad = import(&text.replace(&hashes[0], "not-a-hash"));
    assert_invalid_field(&bad, "pin_hash");
    let r = import(&text);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json["data"][0]["id"], id.as_str());
    let charge = fresh.post(
        &format!("/v1/vouchers/{id}/charges"),
        &tenant2.token,
        &json!({"type": "charge", "amount": "1.00"}),
    );
    assert_problem(&charge, 409, "pin_required");
    let reserve = |pin: Option<&str>| {
        jtl2.post(
            "/reservations",
            &json!({"amount": "1.00", "currency": "EUR", "code": code, "pin": pin}),
        )
    };
    assert_jtl_error(&reserve(None), 422, "VOUCHER.PIN.REQUIRED");
    assert_eq!(reserve(Some(&pin)).status, 200);
}
