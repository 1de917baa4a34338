//! Input read strictly at the edge, the same on every route: codes (ASCII only after the
//! documented normalisation), JSON bodies (a key given twice is refused) and the `Host` header
//! (a valid authority, or the configured `--public-url`, is all that reaches `links`).
//! Issue 19 items 8, 9 and 12.

use crate::common::*;
use crate::dialects::{assert_care_invalid, CARE};
use serde_json::json;
use std::sync::OnceLock;

fn server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(TestServer::start)
}

/// A discount voucher with a known code (also visible to the POS dialect and to carecloud
/// under `customer`), and a value voucher whose code reads `FIRST` + a digit.
struct Codes {
    t: Tenant,
    pos_code: String,
    first_code: String,
    customer: String,
}

fn codes() -> Codes {
    let s = server();
    let t = s.tenant(CASHIER);
    let customer = unique("cust");
    let stem = code_stem();
    let pos_code = format!("{stem}S");
    s.create_voucher(
        &t.token,
        &json!({"code": pos_code, "discount": {"type": "money", "value": "5"},
                "customer_id": customer}),
    );
    // FIRST + a digit no other test takes: `ﬁrst…` upper-cases to it under Unicode rules.
    let first_code = (0..10)
        .map(|d| format!("FIRST{d}{}", &stem[4..6]))
        .find(|code| {
            s.post(
                "/v1/vouchers",
                &t.token,
                &json!({"code": code, "amount": "1.00"}),
            )
            .status
                == 201
        })
        .expect("a free FIRST code");
    Codes {
        t,
        pos_code,
        first_code,
        customer,
    }
}

#[test]
fn codes_take_no_unicode_case_mapping_and_no_trailing_nbsp_or_newline_on_any_route() {
    let s = server();
    let c = codes();
    let token = &c.t.token;
    let ligature = c.first_code.replacen("FI", "\u{fb01}", 1).to_lowercase();
    let nbsp = format!("{}\u{a0}", c.pos_code);
    let newline = format!("{}\n", c.pos_code);

    // The same codes as plain ASCII (lower case, a dash) are found: the check is not blunt.
    let plain = c.pos_code.to_lowercase();
    let dashed = format!("{}-{}", &plain[..3], &plain[3..]);
    assert_eq!(
        s.list_ids(token, &format!("filter[code]={dashed}")).len(),
        1
    );

    // Create: `straße` would have become STRASSE.
    for code in ["straße", "ab\u{a0}cd", "abcd\u{2003}"] {
        let r = s.post(
            "/v1/vouchers",
            token,
            &json!({"code": code, "amount": "1.00"}),
        );
        assert_invalid_field(&r, "code");
    }
    // Validate: the ligature, the NBSP and the newline are refused before any look-up.
    for code in [&ligature, &nbsp, &newline] {
        let r = s.post("/v1/validate", token, &json!({"code": code}));
        assert_invalid_field(&r, "code");
    }
    let r = s.post("/v1/validate", token, &json!({"code": dashed}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["voucher"]["code"], json!(c.pos_code), "{}", r.body);
    // The native list's and the export's code filter.
    for code in [&ligature, &nbsp, &newline] {
        let r = s.list(token, &format!("filter[code]={}", enc(code)));
        assert_invalid_param(&r, "filter[code]");
        let r = s.get(
            &format!("/v1/vouchers/export.csv?filter[code]={}", enc(code)),
            token,
        );
        assert_invalid_param(&r, "filter[code]");
    }
    // Carecloud's code parameter.
    for code in [&nbsp, &newline] {
        let r = s.get(
            &format!(
                "{CARE}/customers/{}/vouchers?code={}",
                c.customer,
                enc(code)
            ),
            token,
        );
        assert_care_invalid(&r, "code");
    }
    let r = s.get(
        &format!("{CARE}/customers/{}/vouchers?code={dashed}", c.customer),
        token,
    );
    assert_eq!(r.json["data"]["total_items"], json!(1), "{}", r.body);
    // The POS dialect's path: such a code names no voucher.
    for code in [&nbsp, &newline] {
        let r = s.get(&format!("/pos/v1/vouchers/{}", enc(code)), token);
        assert_problem(&r, 404, "not_found");
    }
    let r = s.get(&format!("/pos/v1/vouchers/{dashed}"), token);
    assert_eq!(r.status, 200, "{}", r.body);
    // A POS create with such a code.
    let r = s.post(
        "/pos/v1/vouchers",
        token,
        &json!({"code": "straße", "customer_id": null, "product_id": null, "label": "l",
                "valid_until": "2099-01-01", "discount": {"type": "money", "value": 1}}),
    );
    assert_invalid_field(&r, "code");
    // An import row.
    let r = s.send(
        "POST",
        "/v1/vouchers/import",
        &[("Authorization", &format!("Bearer {token}"))],
        Some(("text/csv", "code,amount\nstraße,1\n".as_bytes())),
    );
    assert_invalid_field(&r, "code");
    assert_eq!(r.json["errors"][0]["row"], json!(1), "{}", r.body);
}

/// Sends `body` as JSON text exactly as written (a client library would merge the keys).
fn send_text(s: &TestServer, method: &str, path: &str, token: &str, body: &str) -> Resp {
    s.send(
        method,
        path,
        &[("Authorization", &format!("Bearer {token}"))],
        Some(("application/json", body.as_bytes())),
    )
}

/// Asserts 400 `malformed_request` whose detail names `key` in quotes.
fn assert_key_twice(r: &Resp, key: &str, what: &str) {
    assert_problem(r, 400, "malformed_request");
    let detail = r.json["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&format!("\"{key}\"")),
        "{what}: the detail should name {key:?}: {}",
        r.body
    );
}

#[test]
fn a_json_key_given_twice_is_400_naming_it_on_every_route_and_writes_nothing() {
    let s = server();
    let admin = s.admin_token();
    let t = s.tenant(CASHIER);
    let token = &t.token;
    let card = s.create_voucher(token, &json!({"amount": "10.00"}));
    let id = card["id"].as_str().expect("id").to_string();
    let hold = s.post(
        &format!("/v1/vouchers/{id}/reservations"),
        token,
        &json!({"amount": "1.00"}),
    );
    assert_eq!(hold.status, 201, "{}", hold.body);
    let rid = hold.json["id"].as_str().expect("hold id").to_string();
    let pos = s.post(
        "/pos/v1/vouchers",
        token,
        &json!({"customer_id": null, "product_id": null, "label": "l",
                "valid_until": "2099-01-01", "discount": {"type": "money", "value": 1}}),
    );
    assert_eq!(pos.status, 201, "{}", pos.body);
    let pos_code = pos.json["code"].as_str().expect("code").to_string();
    let group = unique("dup");

    let amount_twice = r#"{"amount":"1.00","amount":"999.00"}"#;
    let cases: Vec<(&str, String, &str, String, &str)> = vec![
        (
            "POST",
            "/v1/vouchers".into(),
            token,
            amount_twice.into(),
            "amount",
        ),
        (
            "POST",
            "/v1/vouchers/batch".into(),
            token,
            r#"{"count":1,"amount":"1.00","count":50000}"#.into(),
            "count",
        ),
        (
            "PATCH",
            format!("/v1/vouchers/{id}"),
            token,
            r#"{"label":"a","note":"n","label":"b"}"#.into(),
            "label",
        ),
        (
            "POST",
            format!("/v1/vouchers/{id}/charges"),
            token,
            r#"{"type":"charge","amount":"1.00","amount":"9.00"}"#.into(),
            "amount",
        ),
        (
            "POST",
            format!("/v1/vouchers/{id}/reservations"),
            token,
            amount_twice.into(),
            "amount",
        ),
        (
            "POST",
            format!("/v1/vouchers/{id}/reservations/{rid}/capture"),
            token,
            r#"{"amount":"0.50","amount":"1.00"}"#.into(),
            "amount",
        ),
        (
            "POST",
            "/v1/validate".into(),
            token,
            format!(r#"{{"code":"{pos_code}","ticket_total":"5","ticket_total":"50"}}"#),
            "ticket_total",
        ),
        (
            "POST",
            "/pos/v1/vouchers".into(),
            token,
            r#"{"customer_id":null,"product_id":null,"label":"l","valid_until":"2099-01-01",
                "discount":{"type":"money","value":1,"value":900}}"#
                .into(),
            "discount.value",
        ),
        (
            "PUT",
            format!("/pos/v1/vouchers/{pos_code}"),
            token,
            r#"{"customer_id":null,"product_id":null,"label":"l","valid_until":"2099-01-01",
                "enabled":true,"enabled":false,"discount":{"type":"money","value":1}}"#
                .into(),
            "enabled",
        ),
        (
            "POST",
            "/v1/client-groups".into(),
            &admin,
            format!(r#"{{"name":"{group}","scopes":["vouchers:read"],"scopes":["admin"]}}"#),
            "scopes",
        ),
        (
            "POST",
            "/v1/clients".into(),
            &admin,
            format!(
                r#"{{"name":"{group}","group":"{}","group":"admin"}}"#,
                t.group_name
            ),
            "group",
        ),
    ];
    for (method, path, token, body, key) in &cases {
        let r = send_text(s, method, path, token, body);
        assert_key_twice(&r, key, &format!("{method} {path}"));
    }
    // Nothing was written: the balance, the hold and the POS voucher are as they were.
    let after = s.get(&format!("/v1/vouchers/{id}"), token);
    assert_eq!(
        after.json["remaining_amount"],
        json!("10.00"),
        "{}",
        after.body
    );
    assert_eq!(after.json["held_amount"], json!("1.00"), "{}", after.body);
    assert_eq!(after.json["label"], json!(null), "{}", after.body);
    let pos_after = s.get(&format!("/pos/v1/vouchers/{pos_code}"), token);
    assert_eq!(pos_after.json["enabled"], json!(true), "{}", pos_after.body);
    let groups = s.get("/v1/client-groups?per_page=1000", &admin);
    assert_eq!(groups.status, 200, "{}", groups.body);
    assert!(!groups.body.contains(&group), "{}", groups.body);
    // The same bodies with each key once are taken.
    let r = send_text(s, "POST", "/v1/vouchers", token, r#"{"amount":"1.00"}"#);
    assert_eq!(r.status, 201, "{}", r.body);
}

/// `GET path` with the `Host` lines given, written by hand (clients set `Host` themselves).
fn get_with_hosts(s: &TestServer, path: &str, token: &str, hosts: &[&str]) -> Resp {
    let host_lines: String = hosts.iter().map(|h| format!("Host: {h}\r\n")).collect();
    s.raw(&format!(
        "GET {path} HTTP/1.1\r\n{host_lines}Authorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    ))
}

/// Every link of a list reply.
fn links(r: &Resp) -> Vec<String> {
    let mut all = vec![r.json["meta"]["path"]
        .as_str()
        .unwrap_or_default()
        .to_string()];
    for name in ["first", "last", "prev", "next"] {
        if let Some(link) = r.json["links"][name].as_str() {
            all.push(link.to_string());
        }
    }
    all
}

#[test]
fn a_host_that_is_not_an_authority_is_400_and_never_reaches_the_links() {
    let s = server();
    let token = s.admin_token();
    for host in [
        "evil.example:666/x?",
        "evil.example/path",
        "evil.example:666#frag",
        "user@evil.example",
        "evil.example:99999",
        "\"><script>",
        "[::1",
    ] {
        for path in ["/v1/vouchers?per_page=1", "/healthz"] {
            let r = get_with_hosts(s, path, &token, &[host]);
            assert_problem(&r, 400, "malformed_request");
            assert!(
                r.json["detail"].as_str().unwrap_or("").contains("Host"),
                "{}",
                r.body
            );
        }
    }
    let r = get_with_hosts(
        s,
        "/v1/vouchers?per_page=1",
        &token,
        &["shop.example", "evil.example"],
    );
    assert_problem(&r, 400, "malformed_request");
    // Authorities are taken, and the links are built on them.
    for host in [
        "shop.example:8443",
        "127.0.0.1",
        "[::1]:8080",
        "till-7.local",
    ] {
        let r = get_with_hosts(s, "/v1/vouchers?per_page=1&page=2", &token, &[host]);
        assert_eq!(r.status, 200, "{host}: {}", r.body);
        for link in links(&r) {
            assert!(
                link.starts_with(&format!("http://{host}/v1/vouchers")),
                "{host}: {link}"
            );
        }
    }
}

#[test]
fn with_a_public_url_links_use_it_instead_of_the_host() {
    let s = TestServer::start_with(&["--public-url", "https://vouchers.shop.example/till/"]);
    let token = s.admin_token();
    s.create_voucher(&token, &json!({"amount": "1.00"}));
    for host in ["shop.example:8443", "evil.example"] {
        let r = get_with_hosts(&s, "/v1/vouchers?per_page=1", &token, &[host]);
        assert_eq!(r.status, 200, "{}", r.body);
        for link in links(&r) {
            assert!(
                link.starts_with("https://vouchers.shop.example/till/v1/vouchers"),
                "{link}"
            );
        }
    }
    let groups = s.get("/v1/client-groups", &token);
    assert_eq!(
        groups.json["meta"]["path"],
        json!("https://vouchers.shop.example/till/v1/client-groups"),
        "{}",
        groups.body
    );
}

#[test]
fn serve_refuses_a_public_url_without_http_scheme_host_or_with_a_query() {
    let dir = TempDir::new();
    for url in [
        "vouchers.shop.example",
        "ftp://vouchers.shop.example",
        "https://",
        "https://vouchers.shop.example/?next=evil",
        "https://vouchers.shop.example/#x",
        "https://user:pw@vouchers.shop.example",
        "https://evil.example:666/x y",
    ] {
        let mut child = std::process::Command::new(BIN)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--public-url",
                url,
                "--db",
            ])
            .arg(dir.path().join("v.db"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run vouchd serve");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while child.try_wait().expect("wait").is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{url} was accepted: the server kept running");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let out = child.wait_with_output().expect("output");
        assert!(!out.status.success(), "{url} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--public-url"), "{url}: {err}");
        assert!(!err.contains("listening"), "{url}: {err}");
    }
}

#[test]
fn a_nul_in_a_path_query_or_credentials_is_refused_or_names_nothing_never_a_500() {
    let s = server();
    let t = s.tenant(ALL_SCOPES);
    let card = s.create_voucher(&t.token, &json!({"amount": "10.00"}));
    let id = id_of(&card["id"]);
    // Query values: 400 naming the parameter (PostgreSQL's text cannot hold a NUL; it must not
    // get there, and SQLite must answer alike).
    for (path, field) in [
        (
            "/v1/vouchers?filter[code]=A%00B".to_string(),
            "filter[code]",
        ),
        (
            "/v1/vouchers?filter[customer_id]=A%00B".into(),
            "filter[customer_id]",
        ),
        (
            "/v1/vouchers?filter[purchase_id]=A%00B".into(),
            "filter[purchase_id]",
        ),
        ("/v1/vouchers?sort=%00".into(), "sort"),
        (
            "/v1/vouchers/export.csv?filter[customer_id]=%00".into(),
            "filter[customer_id]",
        ),
        (
            format!("/v1/vouchers/{id}/charges?filter[note]=A%00"),
            "filter[note]",
        ),
        ("/jtl/v1/vouchers?filter[sku]=A%00B".into(), "filter[sku]"),
    ] {
        let r = s.get(&path, &t.token);
        // JTL's dialect answers its invalid lists with 422 in its own shape.
        let status = if path.starts_with("/jtl/") { 422 } else { 400 };
        assert_eq!(r.status, status, "{path}: {}", r.body);
        assert!(
            r.body.contains(field) && r.body.contains("NUL"),
            "{path}: {}",
            r.body
        );
    }
    // Path segments: no id or code holds a NUL, so such a path names nothing: each route's
    // own 404 (or an empty list of what belongs to it).
    for (method, path) in [
        ("GET", "/v1/vouchers/A%00B"),
        ("PATCH", "/v1/vouchers/A%00B"),
        ("DELETE", "/v1/vouchers/A%00B"),
        ("GET", "/v1/vouchers/A%00B/charges"),
        ("POST", "/v1/vouchers/A%00B/charges"),
        ("GET", "/v1/vouchers/A%00B/qr.svg"),
        ("GET", "/pos/v1/vouchers/A%00B"),
        ("DELETE", "/pos/v1/vouchers/A%00B"),
        ("GET", "/v1/webhooks/A%00B"),
        ("GET", "/v1/webhooks/A%00B/deliveries"),
        ("POST", "/v1/webhook-events/A%00B/redeliver"),
        ("DELETE", "/v1/clients/A%00B"),
        ("GET", "/jtl/v1/vouchers/A%00B"),
    ] {
        let body = match method {
            "PATCH" => Some(json!({"status": "inactive"})),
            "POST" => Some(json!({"type": "charge", "amount": "1.00"})),
            _ => None,
        };
        let r = s.call(method, path, Some(&t.token), body.as_ref());
        assert_eq!(r.status, 404, "{method} {path}: {}", r.body);
    }
    for path in [
        "/v1/customers/A%00B/vouchers",
        "/v1/purchases/A%00B/vouchers",
    ] {
        let r = s.get(path, &t.token);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_eq!(r.json["data"], json!([]), "{path}");
    }
    // A CSV import's cells: 422 naming the row and column, nothing imported.
    let batch = unique("nul");
    let text = format!(
        "code,amount,batch,customer_id\n{c}A,10.00,{batch},\n{c}B,10.00,{batch},a\u{0}b\n",
        c = code_stem()
    );
    let r = s.send(
        "POST",
        "/v1/vouchers/import",
        &[("Authorization", &format!("Bearer {}", t.token))],
        Some(("text/csv", text.as_bytes())),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json["errors"][0]["field"], "customer_id", "{}", r.body);
    assert_eq!(r.json["errors"][0]["row"], 2, "{}", r.body);
    let r = s.get(&format!("/v1/vouchers?filter[batch]={batch}"), &t.token);
    assert_eq!(r.json["data"], json!([]), "{}", r.body);
    // Credentials: a client id with a NUL is no client.
    let basic = base64(b"A\0B:secret");
    let r = s.raw(&format!(
        "POST /oauth/token HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {basic}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 29\r\n\
         Connection: close\r\n\r\ngrant_type=client_credentials"
    ));
    assert_eq!(r.status, 401, "{}", r.body);
    let form = "grant_type=client_credentials&client_id=A%00B&client_secret=x";
    let r = s.raw(&format!(
        "POST /oauth/token HTTP/1.1\r\nHost: x\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{form}",
        form.len()
    ));
    assert!(matches!(r.status, 400 | 401), "{}", r.body);
    // With good credentials, a client_type with one is refused, naming it.
    let r = s.token_request(
        &[
            ("grant_type", "client_credentials"),
            ("client_type", "a\0b"),
        ],
        Some((&t.client_id, &t.secret)),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json["error"], "invalid_request", "{}", r.body);
    assert!(r.body.contains("client_type"), "{}", r.body);
    assert!(!s.output().contains("22021"), "{}", s.output());
}

#[test]
fn a_query_that_does_not_decode_or_a_bad_host_is_refused_in_each_dialects_shape() {
    let s = server();
    let token = s.admin_token();
    let care = format!("{CARE}/customers/someone/vouchers");
    for (path, host) in [
        ("/v1/vouchers?filter%5Bcode%5D=%ZZ", "x"),
        ("/jtl/v1/vouchers?filter[sku]=%FF", "x"),
        (care.as_str(), "x"),
        (&*format!("{care}?sort_field=%C3%28"), "x"),
        ("/v1/vouchers", "evil.example/path"),
        ("/jtl/v1/vouchers", "evil.example/path"),
    ] {
        // The CareCloud path without a bad query gets the bad host instead.
        let host = if path == care {
            "evil.example/path"
        } else {
            host
        };
        let r = get_with_hosts(s, path, &token, &[host]);
        assert_eq!(r.status, 400, "{path} {host}: {}", r.body);
        if path.starts_with("/jtl/") {
            assert_eq!(r.json["status"], 400, "{path}: {}", r.body);
            assert!(
                r.json["code"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("REQUEST."),
                "{path}: {}",
                r.body
            );
            assert!(r.json["message"].is_string(), "{path}: {}", r.body);
        } else if path.starts_with(CARE) {
            assert_eq!(
                r.json["error"]["exception"], "bad_request_exception",
                "{path}: {}",
                r.body
            );
        } else {
            assert_problem(&r, 400, "malformed_request");
        }
    }
}
