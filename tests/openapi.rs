//! `GET /openapi.json` kept true: the document describes exactly the router's routes, and the
//! schemathesis fuzzer, run against the real server with a token, finds every answer documented
//! (status, content type, headers, schema) and every error a problem whose `status` is the HTTP
//! status. Also the regression tests for what the fuzzer found.

use crate::common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The fuzzer's seed: a run replays exactly with it.
const FUZZ_SEED: &str = "20261123";
/// Cases per operation in schemathesis's fuzzing phase (its coverage phase adds its own, about
/// as many again for the list routes); `VOUCHD_FUZZ_EXAMPLES` overrides it.
const FUZZ_EXAMPLES: &str = "100";
/// A run that takes longer than this is stopped and fails.
const FUZZ_DEADLINE: Duration = Duration::from_secs(15 * 60);

fn served_document(server: &TestServer) -> Value {
    let r = server.call("GET", "/openapi.json", None, None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.content_type(), "application/json");
    assert!(
        r.json.is_object(),
        "not JSON: {}",
        &r.body[..r.body.len().min(200)]
    );
    r.json
}

/// Follows a local `$ref` (`#/components/...`), or returns the value itself.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("non-local $ref {reference}"));
            doc.pointer(pointer)
                .unwrap_or_else(|| panic!("$ref {reference} points nowhere"))
        }
        None => value,
    }
}

fn every_ref(value: &Value, refs: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                refs.insert(r.clone());
            }
            map.values().for_each(|v| every_ref(v, refs));
        }
        Value::Array(items) => items.iter().for_each(|v| every_ref(v, refs)),
        _ => {}
    }
}

#[test]
fn openapi_document_is_3_1_and_describes_exactly_the_routes_of_the_router() {
    let server = TestServer::start();
    let doc = served_document(&server);
    let version = doc["openapi"].as_str().unwrap_or("");
    assert!(version.starts_with("3.1."), "openapi is {version:?}");
    let methods = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if !methods.contains(&method.as_str()) {
                continue;
            }
            documented.insert((method.to_ascii_uppercase(), path.clone()));
            let responses = op["responses"].as_object().expect("responses");
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path} documents no success"
            );
            let bearer = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|req| req.get("bearer").is_some()));
            if bearer {
                for status in ["400", "401", "403", "413", "429", "503"] {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path} lacks {status}"
                    );
                }
            }
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    let content = &resolve(&doc, response)["content"];
                    assert!(
                        content.get("application/problem+json").is_some() || path == "/oauth/token",
                        "{method} {path} {status} is not a problem"
                    );
                }
            }
        }
    }
    let routed: BTreeSet<(String, String)> = vouchd::http::router::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty(),
        "routes without an operation: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "operations without a route: {unrouted:?}"
    );
    let mut refs = BTreeSet::new();
    every_ref(&doc, &mut refs);
    for r in refs {
        resolve(&doc, &json!({ "$ref": r }));
    }
}

/// The venv `tests/fuzz/install.sh` fills (test.sh runs it before the tests).
pub(crate) fn schemathesis() -> PathBuf {
    let exe = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz/venv/bin/schemathesis");
    assert!(
        exe.exists(),
        "{} is missing: run tests/fuzz/install.sh (./test.sh does)",
        exe.display()
    );
    exe
}

/// The vouchers, codes and holds the fuzzer's hooks swap in for drawn ids, so the ledger and
/// POS routes reach real vouchers.
struct Seeds {
    voucher_ids: Vec<String>,
    tenant_codes: Vec<String>,
    pos_codes: Vec<String>,
    holds: Vec<String>,
}

fn seed(server: &TestServer, admin: &str, tenant: &Tenant) -> Seeds {
    let mut voucher_ids = Vec::new();
    for body in [
        json!({"amount": "50.00", "label": "fuzz gift card"}),
        json!({"amount": "1500", "currency": "JPY"}),
        json!({"discount": {"type": "money", "value": "5"}, "max_uses": 3}),
        json!({"discount": {"type": "percentage", "value": "12.5"}, "customer_id": "C1"}),
        json!({"amount": "20", "valid_until": "2001-01-01"}),
        json!({"amount": "30.00", "store_id": "S1", "status": "inactive"}),
    ] {
        voucher_ids.push(id_of(&server.create_voucher(admin, &body)["id"]));
    }
    let charged = id_of(&server.create_voucher(admin, &json!({"amount": "40.00"}))["id"]);
    let r = server.post(
        &format!("/v1/vouchers/{charged}/charges"),
        admin,
        &json!({"type": "charge", "amount": "10.00", "order_number": "O-1"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    voucher_ids.push(charged);
    let mut holds = Vec::new();
    for _ in 0..3 {
        let id = &voucher_ids[0];
        let r = server.post(
            &format!("/v1/vouchers/{id}/reservations"),
            admin,
            &json!({"amount": "1.00"}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        holds.push(format!("{id}:{}", id_of(&r.json["id"])));
    }
    let mut tenant_codes = Vec::new();
    for body in [
        json!({"amount": "20.00"}),
        json!({"discount": {"type": "percentage", "value": "10"}}),
    ] {
        let v = server.create_voucher(&tenant.token, &body);
        tenant_codes.push(id_of(&v["code"]));
    }
    let mut pos_codes = Vec::new();
    for value in [10, 3] {
        let r = server.post(
            "/pos/v1/vouchers",
            &tenant.token,
            &json!({"customer_id": null, "product_id": null, "label": "pos", "valid_until": "2099-12-31",
                    "discount": {"type": "percentage", "value": value}}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        pos_codes.push(id_of(&r.json["code"]));
    }
    tenant_codes.extend(pos_codes.iter().cloned());
    Seeds {
        voucher_ids,
        tenant_codes,
        pos_codes,
        holds,
    }
}

/// Runs `command` to its end or the deadline, returning its exit success and all it printed.
pub(crate) fn run_bounded(mut command: Command, deadline: Duration) -> (bool, String) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start schemathesis: {e}"));
    let mut pipes = Vec::new();
    for mut pipe in [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ] {
        pipes.push(std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        }));
    }
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for schemathesis") {
            break Some(status);
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output: Vec<String> = pipes
        .into_iter()
        .map(|p| p.join().unwrap_or_default())
        .collect();
    let output = output.join("\n");
    match status {
        Some(status) => (status.success(), output),
        None => (false, format!("stopped after {deadline:?}\n{output}")),
    }
}

#[test]
fn schemathesis_finds_every_answer_documented_and_every_error_a_matching_problem() {
    let exe = schemathesis();
    let server = TestServer::start();
    let admin = server.admin_token();
    let tenant = server.tenant(CASHIER);
    let seeds = seed(&server, &admin, &tenant);
    let spares: Vec<String> = (0..2)
        .map(|_| {
            server
                .create_client(&unique("spare"), &tenant.group_name, None)
                .0
        })
        .collect();
    let fuzz_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz");
    let examples = std::env::var("VOUCHD_FUZZ_EXAMPLES").unwrap_or(FUZZ_EXAMPLES.into());
    let extra = std::env::var("VOUCHD_FUZZ_ARGS").unwrap_or_default();
    let mut command = Command::new(&exe);
    command
        .arg("--config-file")
        .arg(fuzz_dir.join("schemathesis.toml"))
        .arg("run")
        .arg(server.url("/openapi.json"))
        .args([
            "--seed",
            FUZZ_SEED,
            "--max-examples",
            &examples,
            "--no-color",
        ])
        // More flags for a look inside, e.g. `--report har --report-dir /tmp/fuzz`.
        .args(extra.split_whitespace())
        .current_dir(server.dir().path())
        .env("SCHEMATHESIS_HOOKS", fuzz_dir.join("hooks.py"))
        .env("VOUCHD_FUZZ_TOKEN", &admin)
        .env("VOUCHD_FUZZ_TENANT_TOKEN", &tenant.token)
        .env("VOUCHD_FUZZ_CLIENT_ID", &server.admin_id)
        .env("VOUCHD_FUZZ_CLIENT_SECRET", &server.admin_secret)
        .env("VOUCHD_FUZZ_VOUCHER_IDS", seeds.voucher_ids.join(","))
        .env("VOUCHD_FUZZ_CODES", seeds.tenant_codes.join(","))
        .env("VOUCHD_FUZZ_POS_CODES", seeds.pos_codes.join(","))
        .env("VOUCHD_FUZZ_HOLDS", seeds.holds.join(","))
        .env(
            "VOUCHD_FUZZ_PROTECTED_CLIENTS",
            format!("{},{}", server.admin_id, tenant.client_id),
        )
        .env("VOUCHD_FUZZ_SPARE_CLIENTS", spares.join(","))
        .env("COLUMNS", "120");
    let started = Instant::now();
    let (passed, output) = run_bounded(command, FUZZ_DEADLINE);
    let took = started.elapsed();
    assert!(
        passed,
        "schemathesis failed after {took:?}:\n{output}\n--- server log ---\n{}",
        server.output()
    );
    let log = server.output();
    assert!(
        !log.contains("panicked"),
        "the server logged a panic during the fuzz run:\n{log}"
    );
    let summary = output
        .find("=== WARNINGS")
        .map_or(output.as_str(), |at| &output[at..]);
    eprintln!("schemathesis passed in {took:?}:\n{summary}");
    let after = server.call("GET", "/healthz", None, None);
    assert_eq!(after.status, 200, "server gone after the fuzz run");
}

#[test]
fn server_still_accepts_connections_after_a_quiet_spell_longer_than_the_io_timeout() {
    // A listener's SO_RCVTIMEO also times out its accept(); the server vouchd used before ended
    // its accept loop on that error and stopped listening after ten quiet seconds (a
    // keep-alive client saw "connection refused" next). No error may end the accept loop.
    let server = TestServer::start();
    assert_eq!(server.call("GET", "/healthz", None, None).status, 200);
    std::thread::sleep(Duration::from_secs(13));
    let r = server.call("GET", "/healthz", None, None);
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn a_replayed_create_sends_its_location_again() {
    let server = TestServer::start();
    let token = server.admin_token();
    let body = serde_json::to_vec(&serde_json::json!({"amount": "5.00"})).expect("json");
    for (path, body) in [
        ("/v1/vouchers", body),
        (
            "/pos/v1/vouchers",
            br#"{"customer_id":null,"product_id":null,"label":"l","valid_until":"2099-01-01","discount":{"type":"money","value":2}}"#.to_vec(),
        ),
    ] {
        let auth = format!("Bearer {token}");
        let key = format!("replay-location{path}");
        let headers = [("Authorization", auth.as_str()), ("Idempotency-Key", key.as_str())];
        let first = server.send("POST", path, &headers, Some(("application/json", &body)));
        assert_eq!(first.status, 201, "{}", first.body);
        let again = server.send("POST", path, &headers, Some(("application/json", &body)));
        assert_eq!(again.status, 201, "{}", again.body);
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert_eq!(again.body, first.body);
        let location = first.header("location").expect("Location on the first reply");
        assert_eq!(again.header("location"), Some(location), "{path}");
    }
}

#[test]
fn validate_refuses_a_malformed_field_with_422_before_looking_the_code_up() {
    let server = TestServer::start();
    let tenant = server.tenant(CASHIER);
    let card = server.create_voucher(&tenant.token, &json!({"amount": "10.00"}));
    let known = card["code"].as_str().expect("code").to_string();
    for code in ["ZZZZ9999", known.as_str()] {
        for (field, value) in [
            ("ticket_total", json!("AAA")),
            ("ticket_total", json!("-1")),
            ("ticket_total", json!({"value": 1})),
            ("amount", json!("1e3")),
            ("amount", json!(true)),
            ("amount", json!("99999999999")),
            ("currency", json!("XXX")),
            ("product_ids", json!("P1")),
        ] {
            let mut body = json!({"code": code});
            body[field] = value.clone();
            let r = server.post("/v1/validate", &tenant.token, &body);
            assert_invalid_field(&r, field);
            assert_eq!(
                r.json["errors"].as_array().map(Vec::len),
                Some(1),
                "{}",
                r.body
            );
        }
    }
    // Decimals beyond the voucher's currency are known only once it is found.
    let r = server.post(
        "/v1/validate",
        &tenant.token,
        &json!({"code": known, "amount": "1.001"}),
    );
    assert_invalid_field(&r, "amount");
    let r = server.post(
        "/v1/validate",
        &tenant.token,
        &json!({"code": known, "amount": 2.5, "ticket_total": "4"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["applicable_amount"], json!("2.50"), "{}", r.body);
}

/// Runs a generator or compiler to its end; panics with all it printed when it fails.
fn run_tool(what: &str, command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{text}",
        out.status
    );
    text
}

#[test]
fn python_and_typescript_clients_generate_from_the_served_document_cleanly_and_work() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = root.join("target/fuzz/venv/bin");
    let node_bin = root.join("tests/clients/node_modules/.bin");
    for (tool, install) in [
        (venv.join("openapi-python-client"), "tests/fuzz/install.sh"),
        (
            node_bin.join("openapi-typescript"),
            "tests/clients/install.sh",
        ),
        (node_bin.join("tsc"), "tests/clients/install.sh"),
    ] {
        assert!(
            tool.exists(),
            "{} is missing: run {install} (./test.sh does)",
            tool.display()
        );
    }
    let server = TestServer::start();
    let served = server.call("GET", "/openapi.json", None, None);
    assert_eq!(served.status, 200);
    let work = TempDir::new();
    let doc = work.path().join("openapi.json");
    std::fs::write(&doc, &served.body).expect("write the document");

    // Python: every operation and response generated (no warning at all), then used.
    let search_path = format!(
        "{}:{}",
        venv.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let printed = run_tool(
        "openapi-python-client",
        Command::new(venv.join("openapi-python-client"))
            .args(["generate", "--meta", "none", "--path"])
            .arg(&doc)
            .arg("--output-path")
            .arg(work.path().join("vouchd_client"))
            .arg("--config")
            .arg(root.join("tests/clients/openapi-python-client.yaml"))
            // Its post-generation hook runs ruff, which the venv holds.
            .env("PATH", &search_path),
    );
    let lowered = printed.to_lowercase();
    assert!(
        !lowered.contains("warning") && !lowered.contains("error") && !lowered.contains("skip"),
        "openapi-python-client warned:\n{printed}"
    );
    let used = run_tool(
        "the generated Python client (tests/clients/smoke.py)",
        Command::new(venv.join("python"))
            .arg(root.join("tests/clients/smoke.py"))
            .env("PYTHONPATH", work.path())
            .env("VOUCHD_URL", &server.base)
            .env("VOUCHD_TOKEN", server.admin_token()),
    );
    assert!(used.contains("the generated Python client works"), "{used}");

    // TypeScript: the types generated without a warning, and compiled strictly with a use.
    let printed = run_tool(
        "openapi-typescript",
        Command::new(node_bin.join("openapi-typescript"))
            .arg(&doc)
            .arg("-o")
            .arg(work.path().join("vouchd.ts")),
    );
    let lowered = printed.to_lowercase();
    assert!(
        !lowered.contains("warn") && !lowered.contains("error") && !printed.contains('⚠'),
        "openapi-typescript warned:\n{printed}"
    );
    std::fs::copy(
        root.join("tests/clients/check.ts"),
        work.path().join("check.ts"),
    )
    .expect("copy check.ts");
    run_tool(
        "tsc on the generated types (tests/clients/check.ts)",
        Command::new(node_bin.join("tsc"))
            .args([
                "--strict", "--noEmit", "--target", "es2022", "--module", "es2022",
            ])
            .args(["--moduleResolution", "bundler", "check.ts"])
            .current_dir(work.path()),
    );
}
