//! The access log on stderr: a line per request with method, route template, status, duration
//! and client id, as text or JSON (`serve --log-format`), and never a token, a secret or an
//! Authorization header.

use crate::common::*;
use serde_json::{json, Value};

/// What a test did, and the strings that must never reach the log.
struct Exercised {
    client_id: String,
    voucher_id: String,
    code: String,
    secrets: Vec<String>,
}

/// Logs in (Basic and form body, a wrong secret too), then uses the token.
fn exercise(s: &TestServer) -> Exercised {
    let t = s.tenant(CASHIER);
    let voucher = s.create_voucher(&t.token, &json!({"amount": "20.00"}));
    let voucher_id = id_of(&voucher["id"]);
    let code = voucher["code"].as_str().expect("code").to_string();
    let r = s.get(&format!("/v1/vouchers/{voucher_id}"), &t.token);
    assert_eq!(r.status, 200);
    let r = s.post(
        &format!("/v1/vouchers/{voucher_id}/charges"),
        &t.token,
        &json!({"type": "charge", "amount": "1.00"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let by_form = s.token_request(
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &t.client_id),
            ("client_secret", &t.secret),
        ],
        None,
    );
    assert_eq!(by_form.status, 200, "{}", by_form.body);
    let form_token = by_form.json["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    let wrong_secret = format!("{}x", t.secret);
    let refused = s.token_request(
        &[("grant_type", "client_credentials")],
        Some((&t.client_id, &wrong_secret)),
    );
    assert_eq!(refused.status, 401);
    let bogus = "not-a-real-token-but-still-secret-looking";
    assert_eq!(s.get("/v1/vouchers", bogus).status, 401);
    assert_eq!(
        s.get(&format!("/pos/v1/vouchers/{code}"), &form_token)
            .status,
        404,
        "gift cards are not POS vouchers"
    );
    let basic = base64(format!("{}:{}", t.client_id, t.secret).as_bytes());
    Exercised {
        client_id: t.client_id,
        voucher_id,
        code,
        secrets: vec![
            t.secret,
            t.token,
            form_token,
            wrong_secret,
            bogus.to_string(),
            basic,
            s.admin_token(),
        ],
    }
}

/// No secret, token, Basic credential, raw path or header appears anywhere in the output.
/// The admin's secret is printed once at start-up by design (the README), and nowhere else.
fn assert_nothing_secret(s: &TestServer, done: &Exercised) {
    let output = s.output();
    for secret in &done.secrets {
        assert!(
            !output.contains(secret.as_str()),
            "{secret:?} appears in the server's output:\n{output}"
        );
    }
    assert_eq!(output.matches(s.admin_secret.as_str()).count(), 1);
    for raw in [&done.voucher_id, &done.code] {
        assert!(
            !output.contains(raw.as_str()),
            "{raw} (a raw path part) is logged"
        );
    }
    for word in ["Bearer", "Basic", "Authorization", "authorization"] {
        assert!(!output.contains(word), "{word} appears in the log");
    }
}

#[test]
fn text_access_log_has_a_line_per_request_and_no_secret() {
    let s = TestServer::start();
    let done = exercise(&s);
    let client = format!("client_id={}", done.client_id);
    let charge = s
        .wait_for_line(|l| {
            l.starts_with("access ")
                && l.contains(" method=POST route=/v1/vouchers/{id}/charges status=201 ")
        })
        .unwrap_or_else(|| panic!("no access line for the charge:\n{}", s.output()));
    assert!(charge.ends_with(&client), "{charge}");
    let fields: Vec<&str> = charge.split(' ').collect();
    assert_eq!(fields[0], "access");
    let keys: Vec<&str> = fields[1..]
        .iter()
        .map(|f| f.split_once('=').expect("key=value").0)
        .collect();
    assert_eq!(
        keys,
        [
            "time",
            "remote",
            "method",
            "route",
            "status",
            "duration_ms",
            "client_id"
        ]
    );
    assert!(charge.contains(" remote=127.0.0.1 "), "{charge}");
    let millis = fields[6].trim_start_matches("duration_ms=");
    assert!(millis.parse::<f64>().is_ok_and(|m| m >= 0.0), "{charge}");
    // A login names the client it proved; a refused one and a bad token name none.
    let login = s
        .wait_for_line(|l| l.contains(" route=/oauth/token status=200 ") && l.ends_with(&client))
        .is_some();
    assert!(login, "{}", s.output());
    assert!(s
        .wait_for_line(
            |l| l.contains(" route=/oauth/token status=401 ") && l.ends_with("client_id=-")
        )
        .is_some());
    assert!(s
        .wait_for_line(
            |l| l.contains(" route=/v1/vouchers status=401 ") && l.ends_with("client_id=-")
        )
        .is_some());
    assert!(s
        .wait_for_line(|l| l.contains(" method=GET route=/pos/v1/vouchers/{code} status=404 "))
        .is_some());
    assert_nothing_secret(&s, &done);
}

#[test]
fn json_access_log_lines_parse_and_hold_no_secret() {
    let s = TestServer::start_with(&["--log-format", "json"]);
    let done = exercise(&s);
    let charge = s
        .wait_for_line(|l| l.contains("\"route\":\"/v1/vouchers/{id}/charges\""))
        .unwrap_or_else(|| panic!("no access line for the charge:\n{}", s.output()));
    let v: Value = serde_json::from_str(&charge).expect("an access line is JSON");
    assert_eq!(v["method"], "POST");
    assert_eq!(v["status"], 201);
    assert_eq!(v["client_id"], json!(done.client_id));
    assert_eq!(v["remote"], "127.0.0.1");
    assert!(v["duration_ms"].as_f64().is_some_and(|m| m >= 0.0));
    assert!(v["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    let mut keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "client_id",
            "duration_ms",
            "method",
            "remote",
            "route",
            "status",
            "time"
        ]
    );
    // Lines are written as each worker finishes, not in request order: wait for the last
    // request's line and the refused login's, then every access line must parse.
    assert!(s
        .wait_for_line(|l| l.contains("\"route\":\"/pos/v1/vouchers/{code}\""))
        .is_some());
    assert!(s
        .wait_for_line(|l| l.contains("\"route\":\"/oauth/token\",\"status\":401"))
        .is_some());
    let output = s.output();
    let lines: Vec<&str> = output.lines().filter(|l| l.starts_with('{')).collect();
    assert!(lines.len() >= 10, "{output}");
    for line in &lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(v["route"].is_string() && v["status"].is_u64(), "{line}");
        assert!(
            v["client_id"].is_null() || v["client_id"].is_string(),
            "{line}"
        );
    }
    let bad_login = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["route"] == "/oauth/token" && v["status"] == 401)
        .unwrap_or_else(|| panic!("no line for the refused login:\n{output}"));
    assert!(bad_login["client_id"].is_null());
    assert_nothing_secret(&s, &done);
}
