//! Real clients end to end against vouchd's own HTTP layer (issue 14 acceptance 3): curl,
//! Python's http.client and requests, Node's fetch and wrk each get a token, create, read a
//! list answer over 100 KB, charge and stream the CSV export. (Chromium is the page tests'.)
//! tests/fuzz/install.sh installs requests and wrk; a missing tool fails, never skips.

use crate::common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

/// A server whose tenant holds enough vouchers for a list page over 100 KB.
fn stocked() -> (TestServer, Tenant) {
    let s = TestServer::start();
    let t = s.tenant(CASHIER);
    let r = s.post(
        "/v1/vouchers/batch",
        &t.token,
        &json!({"count": 400, "amount": "25.00"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    (s, t)
}

/// Runs a client program and parses the JSON summary it prints.
fn run(program: &str, args: &[&str]) -> Value {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} (tests/fuzz/install.sh installs it): {e}")
        });
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim().lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{program}: no summary ({e}): {text}"))
}

/// What every client must have seen: 401 vouchers in a list page (400 + the one it created),
/// 40.00 left after a 10.00 charge, every voucher in the export, streamed chunked.
fn assert_walked(summary: &Value) {
    assert!(
        summary["list_bytes"].as_u64().unwrap_or(0) > 100_000,
        "{summary}"
    );
    assert_eq!(summary["list_items"], json!(401), "{summary}");
    assert_eq!(summary["remaining"], json!("40.00"), "{summary}");
    assert_eq!(summary["export_rows"], json!(401), "{summary}");
    assert_eq!(summary["export_chunked"], json!(true), "{summary}");
}

fn script(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn python_http_client_walks_token_create_list_charge_export() {
    let (s, t) = stocked();
    assert_walked(&run(
        "python3",
        &[&script("http_client.py"), s.host(), &t.client_id, &t.secret],
    ));
}

#[test]
fn python_requests_walks_token_create_list_charge_export() {
    let (s, t) = stocked();
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz/venv/bin/python");
    assert_walked(&run(
        &python.display().to_string(),
        &[
            &script("requests_client.py"),
            &s.base,
            &t.client_id,
            &t.secret,
        ],
    ));
}

#[test]
fn node_fetch_walks_token_create_list_charge_export() {
    let (s, t) = stocked();
    assert_walked(&run(
        "node",
        &[
            &script("fetch_client.mjs"),
            &s.base,
            &t.client_id,
            &t.secret,
        ],
    ));
}

/// curl's status, headers and body for one call (`-i`), with extra arguments.
fn curl(args: &[&str]) -> (u16, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "30"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run curl: {e}"));
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status from curl: {text}"));
    (status, head.to_ascii_lowercase(), body.to_string())
}

#[test]
fn curl_walks_token_create_list_charge_export_over_http_1_1_and_1_0() {
    let (s, t) = stocked();
    let (status, _, body) = curl(&[
        "-u",
        &format!("{}:{}", t.client_id, t.secret),
        "-d",
        "grant_type=client_credentials",
        &format!("{}/oauth/token", s.base),
    ]);
    assert_eq!(status, 200, "{body}");
    let token: Value = serde_json::from_str(&body).expect("token json");
    let auth = format!(
        "Authorization: Bearer {}",
        token["access_token"].as_str().expect("token")
    );
    for version in ["--http1.1", "--http1.0"] {
        let (status, _, body) = curl(&[
            version,
            "-H",
            &auth,
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"amount":"50.00"}"#,
            &format!("{}/v1/vouchers", s.base),
        ]);
        assert_eq!(status, 201, "{version}: {body}");
        let id = id_of(&serde_json::from_str::<Value>(&body).expect("json")["id"]);
        let (status, _, listed) = curl(&[
            version,
            "-H",
            &auth,
            &format!("{}/v1/vouchers?per_page=500", s.base),
        ]);
        assert_eq!(status, 200);
        assert!(listed.len() > 100_000, "{version}: {} bytes", listed.len());
        let (status, _, body) = curl(&[
            version,
            "-H",
            &auth,
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"type":"charge","amount":"10.00"}"#,
            &format!("{}/v1/vouchers/{id}/charges", s.base),
        ]);
        assert_eq!(status, 201, "{version}: {body}");
        let (_, _, body) = curl(&[
            version,
            "-H",
            &auth,
            &format!("{}/v1/vouchers/{id}", s.base),
        ]);
        let v: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["remaining_amount"], json!("40.00"));
        let (status, head, csv) = curl(&[
            version,
            "-H",
            &auth,
            &format!("{}/v1/vouchers/export.csv", s.base),
        ]);
        assert_eq!(status, 200, "{version}: {csv}");
        // HTTP/1.1 gets it chunked; HTTP/1.0 up to the close.
        assert_eq!(
            head.contains("transfer-encoding: chunked"),
            version == "--http1.1",
            "{version}: {head}"
        );
        assert!(
            csv.lines().count() > 400,
            "{version}: {} lines",
            csv.lines().count()
        );
    }
}

/// wrk's request count, non-2xx count and socket errors for a short run.
fn wrk(url: &str, header: Option<&str>) -> (u64, u64, u64) {
    let mut command = Command::new("wrk");
    command.args(["-t2", "-c16", "-d2s", "--timeout", "5s"]);
    if let Some(header) = header {
        command.args(["-H", header]);
    }
    let out = command
        .arg(url)
        .output()
        .unwrap_or_else(|e| panic!("cannot run wrk (tests/fuzz/install.sh installs it): {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "wrk: {text}");
    // "Non-2xx or 3xx responses: 5", "Socket errors: connect 0, read 0, write 0, timeout 0".
    let number = |prefix: &str| -> u64 {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .and_then(|l| l.split_once(':'))
            .map_or(0, |(_, counts)| {
                counts
                    .split(|c: char| !c.is_ascii_digit())
                    .filter_map(|p| p.parse::<u64>().ok())
                    .sum()
            })
    };
    let requests = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count from wrk: {text}"));
    (requests, number("Non-2xx"), number("Socket errors"))
}

#[test]
fn wrk_load_on_health_and_an_authorised_list_gets_only_2xx() {
    let (s, t) = stocked();
    let (requests, non_2xx, errors) = wrk(&format!("{}/healthz", s.base), None);
    assert!(requests > 100, "{requests} requests");
    assert_eq!((non_2xx, errors), (0, 0));
    let header = format!("Authorization: Bearer {}", t.token);
    let (requests, non_2xx, errors) =
        wrk(&format!("{}/v1/vouchers?per_page=5", s.base), Some(&header));
    assert!(requests > 50, "{requests} requests");
    assert_eq!((non_2xx, errors), (0, 0));
    assert!(!s.output().contains("panicked"), "{}", s.output());
}
