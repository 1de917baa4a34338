//! The vendor dialects' own OpenAPI documents kept true (issue 17): each describes exactly its
//! dialect's routes below its server URL, and schemathesis, run against the real server with
//! each document, finds no 5xx, every answer documented (status, content type, headers, schema)
//! and every error in the dialect's own shape (tests/fuzz/dialect_hooks.py).

use crate::common::*;
use crate::openapi::{run_bounded, schemathesis};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The fuzzer's seed: a run replays exactly with it.
const FUZZ_SEED: &str = "20261206";
/// Cases per operation in the fuzzing phase (the coverage phase adds its own); bounded so a run
/// stays at a few hundred requests. `VOUCHD_DIALECT_FUZZ_EXAMPLES` overrides it.
const FUZZ_EXAMPLES: &str = "60";
const FUZZ_DEADLINE: Duration = Duration::from_secs(10 * 60);

/// The document served at `path`, checked to be OpenAPI 3.1 with one relative server URL.
fn document(server: &TestServer, path: &str) -> (Value, String) {
    let r = server.call("GET", path, None, None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.content_type(), "application/json");
    let doc = r.json;
    assert_eq!(doc["openapi"], json!("3.1.0"));
    let servers = doc["servers"].as_array().expect("servers");
    assert_eq!(servers.len(), 1, "one server URL");
    let base = servers[0]["url"].as_str().expect("server url").to_string();
    assert!(base.starts_with('/'), "{base}");
    (doc, base)
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

/// Checks that `doc` has one operation per route of `routes` (full paths) and no other, that
/// each lists `statuses`, that every error is `error_media`, and that every `$ref` resolves.
fn assert_describes_exactly(
    doc: &Value,
    base: &str,
    routes: &[(&str, &str)],
    statuses: &[&str],
    error_media: &str,
) {
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if method == "parameters" {
                continue;
            }
            documented.insert((method.to_ascii_uppercase(), format!("{base}{path}")));
            let responses = op["responses"].as_object().expect("responses");
            for status in statuses {
                assert!(
                    responses.contains_key(*status),
                    "{method} {path} lacks {status}"
                );
            }
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    let pointer = response["$ref"]
                        .as_str()
                        .and_then(|r| r.strip_prefix('#'))
                        .unwrap_or_else(|| panic!("{method} {path} {status}: not a $ref"));
                    let content = &doc.pointer(pointer).expect("response")["content"];
                    assert!(
                        content.get(error_media).is_some(),
                        "{method} {path} {status} is not {error_media}"
                    );
                }
            }
        }
    }
    let routed: BTreeSet<(String, String)> = routes
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, routed);
    let mut refs = BTreeSet::new();
    every_ref(doc, &mut refs);
    for r in refs {
        let pointer = r.strip_prefix('#').expect("local $ref");
        assert!(doc.pointer(pointer).is_some(), "$ref {r} points nowhere");
    }
}

#[test]
fn the_carecloud_document_describes_exactly_the_carecloud_routes() {
    let server = TestServer::start();
    let (doc, base) = document(&server, "/carecloud/openapi.json");
    assert_eq!(base, "/carecloud/rest-api/enterprise-interface/v1.0");
    assert_describes_exactly(
        &doc,
        &base,
        vouchd::http::router::CARECLOUD_ROUTES,
        &[
            "200", "400", "401", "403", "404", "405", "429", "500", "503",
        ],
        "application/json",
    );
    let sorts: Vec<&str> = doc["components"]["parameters"]["sort_field"]["schema"]["enum"]
        .as_array()
        .expect("sort_field enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(sorts, vouchd::api::carecloud::SORT_FIELDS);
    let voucher = &doc["components"]["schemas"]["Voucher"];
    assert_eq!(voucher["required"], json!(["customer_id"]), "as the vendor");
    assert_eq!(voucher["properties"]["value"]["type"], json!("number"));
    let reward = &doc["components"]["schemas"]["Reward"]["required"];
    assert_eq!(
        reward,
        &json!(["code", "name", "reward_group", "store_list"])
    );
}

#[test]
fn the_pos_document_describes_exactly_the_pos_routes() {
    let server = TestServer::start();
    let (doc, base) = document(&server, "/pos/openapi.json");
    assert_eq!(base, "/pos/v1");
    assert_describes_exactly(
        &doc,
        &base,
        vouchd::http::router::POS_ROUTES,
        &["400", "401", "403", "429", "503"],
        "application/problem+json",
    );
    let create = &doc["components"]["schemas"]["VoucherCreate"];
    assert!(create["properties"].get("code").is_none(), "no code input");
    let list = &doc["paths"]["/vouchers"]["get"]["parameters"];
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["customer_id", "limit", "offset", "used"]);
}

/// Customers and purchases with vouchers of every kind and state, for the CareCloud run.
fn seed_carecloud(server: &TestServer, tenant: &Tenant) -> (Vec<String>, Vec<String>) {
    let customers: Vec<String> = (0..2).map(|_| unique("fuzz-cust")).collect();
    let purchases: Vec<String> = (0..2).map(|_| unique("fuzz-purch")).collect();
    for (i, body) in [
        json!({"amount": "30.00", "store_id": "S1", "reward_id": "R1", "note": "n"}),
        json!({"discount": {"type": "percentage", "value": "12.5"}, "reward_id": "R2",
               "valid_from": "2020-01-01", "valid_until": "2099-12-31"}),
        json!({"discount": {"type": "money", "value": "5"}, "valid_until": "2001-01-01"}),
        json!({"amount": "1500", "currency": "JPY", "status": "inactive"}),
        json!({"amount": "20.00", "store_id": "S2", "status": "cancelled"}),
    ]
    .into_iter()
    .enumerate()
    {
        let mut body = body;
        body["customer_id"] = json!(customers[i % 2]);
        body["purchase_id"] = json!(purchases[i % 2]);
        let v = server.create_voucher(&tenant.token, &body);
        if i == 0 {
            let r = server.post(
                &format!("/v1/vouchers/{}/charges", id_of(&v["id"])),
                &tenant.token,
                &json!({"type": "charge", "amount": "30.00"}),
            );
            assert_eq!(r.status, 201, "{}", r.body);
        }
    }
    // A purchase voucher without a customer.
    server.create_voucher(
        &tenant.token,
        &json!({"amount": "3.00", "purchase_id": purchases[0]}),
    );
    (customers, purchases)
}

/// POS vouchers, one of them used, for the POS run.
fn seed_pos(server: &TestServer, tenant: &Tenant) -> Vec<String> {
    let mut codes = Vec::new();
    for (value, customer) in [
        (10, json!(null)),
        (0, json!("160c0c4b-9966-4dc1-a916-8407eb10d74e")),
    ] {
        let r = server.post(
            "/pos/v1/vouchers",
            &tenant.token,
            &json!({"customer_id": customer, "product_id": null, "label": "fuzz",
                    "valid_until": "2099-12-31", "discount": {"type": "percentage", "value": value}}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        codes.push(id_of(&r.json["code"]));
    }
    let used = server.create_voucher(
        &tenant.token,
        &json!({"discount": {"type": "money", "value": "2"}, "valid_until": "2099-12-31"}),
    );
    let r = server.post(
        &format!("/v1/vouchers/{}/charges", id_of(&used["id"])),
        &tenant.token,
        &json!({"type": "use", "ticket_total": "10.00"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    codes.push(id_of(&used["code"]));
    codes
}

/// Runs schemathesis over `dialect`'s document with a tenant's token; asserts it passed.
fn fuzz(server: &TestServer, dialect: &str, token: &str, seeds: &[(&str, Vec<String>)]) {
    let exe = schemathesis();
    let fuzz_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz");
    let (_, base) = document(server, &format!("/{dialect}/openapi.json"));
    let examples = std::env::var("VOUCHD_DIALECT_FUZZ_EXAMPLES").unwrap_or(FUZZ_EXAMPLES.into());
    let mut command = Command::new(&exe);
    command
        .arg("--config-file")
        .arg(fuzz_dir.join("dialects.toml"))
        .arg("run")
        .arg(server.url(&format!("/{dialect}/openapi.json")))
        .args(["--url", &server.url(&base)])
        .args([
            "--seed",
            FUZZ_SEED,
            "--max-examples",
            &examples,
            "--no-color",
        ])
        .current_dir(server.dir().path())
        .env("SCHEMATHESIS_HOOKS", fuzz_dir.join("dialect_hooks.py"))
        .env("VOUCHD_FUZZ_DIALECT", dialect)
        .env("VOUCHD_FUZZ_TOKEN", token)
        .env("COLUMNS", "120");
    for (name, values) in seeds {
        command.env(name, values.join(","));
    }
    let started = Instant::now();
    let (passed, output) = run_bounded(command, FUZZ_DEADLINE);
    let took = started.elapsed();
    assert!(
        passed,
        "schemathesis failed on {dialect} after {took:?}:\n{output}\n--- server log ---\n{}",
        server.output()
    );
    let log = server.output();
    assert!(!log.contains("panicked"), "the server panicked:\n{log}");
    let summary = output
        .find("=== ")
        .map_or(output.as_str(), |at| &output[at..]);
    eprintln!("schemathesis passed on {dialect} in {took:?}:\n{summary}");
    assert_eq!(server.call("GET", "/healthz", None, None).status, 200);
}

#[test]
fn schemathesis_finds_the_carecloud_dialect_as_its_document_says() {
    let server = TestServer::start();
    let tenant = server.tenant(CASHIER);
    let (customers, purchases) = seed_carecloud(&server, &tenant);
    fuzz(
        &server,
        "carecloud",
        &tenant.token,
        &[
            ("VOUCHD_FUZZ_CUSTOMERS", customers),
            ("VOUCHD_FUZZ_PURCHASES", purchases),
        ],
    );
}

#[test]
fn schemathesis_finds_the_pos_dialect_as_its_document_says() {
    let server = TestServer::start();
    let tenant = server.tenant(CASHIER);
    let codes = seed_pos(&server, &tenant);
    let seeded = codes.len();
    fuzz(
        &server,
        "pos",
        &tenant.token,
        &[("VOUCHD_FUZZ_POS_CODES", codes)],
    );
    // The run got past validation: it made vouchers of its own.
    let r = server.get("/pos/v1/vouchers?limit=0", &tenant.token);
    let total = r.json["total"].as_u64().unwrap_or(0);
    assert!(
        total > seeded as u64,
        "no voucher made by the run: {}",
        r.body
    );
    eprintln!("the POS run left {total} vouchers ({seeded} seeded)");
}
