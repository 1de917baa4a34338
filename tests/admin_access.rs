//! Group and client names that cannot mislead, group look-ups that cannot pick the wrong group,
//! and `Idempotency-Key` on the admin POSTs (issue 19, items 10 and 14).

use crate::common::*;
use serde_json::{json, Value};
use std::sync::OnceLock;

fn server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(TestServer::start)
}

/// Names no group or client may have: shaped like an id (groups only), or holding a control
/// or a bidirectional-text character.
const BIDI_AND_CONTROL: &[&str] = &[
    "invoice\u{202E}fdp.exe",
    "a\u{202A}b",
    "shop\u{2066}x\u{2069}",
    "left\u{200F}",
    "tab\there",
    "bell\u{7}",
];

#[test]
fn group_names_shaped_like_ids_or_with_bidi_or_control_characters_are_refused_by_the_api() {
    let s = server();
    let admin = s.admin_token();
    let existing = s.create_group(&unique("g"), RW);
    for name in [existing.as_str(), "ABCDEFGH23456789"]
        .into_iter()
        .chain(BIDI_AND_CONTROL.iter().copied())
    {
        let r = s.post(
            "/v1/client-groups",
            &admin,
            &json!({"name": name, "scopes": RW}),
        );
        assert_invalid_field(&r, "name");
    }
    // Names that merely contain letters and digits are fine.
    for name in ["ABCDEFGH2345678", "abcdefgh23456789", "Café 2"] {
        s.create_group(name, RW);
    }
    for name in BIDI_AND_CONTROL {
        let r = s.post(
            "/v1/clients",
            &admin,
            &json!({"name": name, "group": existing}),
        );
        assert_invalid_field(&r, "name");
    }
}

#[test]
fn group_names_shaped_like_ids_or_with_bidi_characters_are_refused_by_the_cli() {
    let s = TestServer::start();
    let id = s.create_group(&unique("g"), RW);
    for name in [id.as_str(), "ABCDEFGH23456789", "invoice\u{202E}fdp.exe"] {
        let out = s.cli(&["group", "create", name, "--scopes", "vouchers:read"]);
        assert!(!out.status.success(), "group {name:?} was created: {out:?}");
    }
    let out = s.cli(&["client", "create", "till\u{202E}", "--group", &id]);
    assert!(!out.status.success(), "client created: {out:?}");
    let out = s.cli(&["client", "create", "till", "--group", &id]);
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn a_group_is_named_by_its_id_even_where_an_older_group_has_that_id_as_its_name() {
    let s = TestServer::start();
    let target_name = unique("target");
    let target = s.create_group(&target_name, RW);
    // An older database could hold a group named like another group's id.
    let written = s.sql().execute(
        "INSERT INTO client_groups (id, name, scopes, created_at)
         VALUES ('ZZZZZZZZZZZZZZZZ', ?1, 'vouchers:read', 0)",
        &[target.as_str().into()],
    );
    assert_eq!(written, 1, "a group named like an id");
    for _ in 0..3 {
        let r = s.post(
            "/v1/clients",
            &s.admin_token(),
            &json!({"name": unique("c"), "group": target}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.json["group"], json!(target_name), "{}", r.body);
    }
    let out = s.cli(&["client", "create", "till", "--group", &target]);
    let made: Value = serde_json::from_slice(&out.stdout).expect("client create prints JSON");
    assert_eq!(made["group"], json!(target_name), "{made}");
}

fn post_with_key(s: &TestServer, path: &str, key: &str, body: &Value) -> Resp {
    let auth = format!("Bearer {}", s.admin_token());
    let bytes = serde_json::to_vec(body).expect("body");
    s.send(
        "POST",
        path,
        &[("Authorization", &auth), ("Idempotency-Key", key)],
        Some(("application/json", &bytes)),
    )
}

#[test]
fn a_group_posted_twice_with_one_idempotency_key_is_created_once_and_replayed() {
    let s = server();
    let body = json!({"name": unique("g"), "scopes": RW});
    let key = unique("key");
    let first = post_with_key(s, "/v1/client-groups", &key, &body);
    assert_eq!(first.status, 201, "{}", first.body);
    let again = post_with_key(s, "/v1/client-groups", &key, &body);
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(again.json, first.json);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    // The same key with another body is refused; without a key the name is taken.
    let other = json!({"name": unique("g"), "scopes": RW});
    assert_problem(
        &post_with_key(s, "/v1/client-groups", &key, &other),
        422,
        "idempotency_key_reused",
    );
    let plain = s.post("/v1/client-groups", &s.admin_token(), &body);
    assert_problem(&plain, 409, "duplicate_name");
}

#[test]
fn a_client_posted_twice_with_one_idempotency_key_is_created_once_and_its_secret_never_stored() {
    let s = server();
    let group = unique("g");
    s.create_group(&group, RW);
    let name = unique("till");
    let body = json!({"name": name, "group": group});
    let key = unique("key");
    let first = post_with_key(s, "/v1/clients", &key, &body);
    assert_eq!(first.status, 201, "{}", first.body);
    let secret = first.json["client_secret"]
        .as_str()
        .expect("a secret")
        .to_string();
    let again = post_with_key(s, "/v1/clients", &key, &body);
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json["client_id"], first.json["client_id"]);
    assert_eq!(again.json["group"], first.json["group"]);
    assert_eq!(again.json["client_secret"], Value::Null, "{}", again.body);

    let clients = s.get("/v1/clients", &s.admin_token());
    let named = clients.json["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter(|c| c["name"] == json!(name))
        .count();
    assert_eq!(named, 1, "{}", clients.body);
    assert!(!s.stored_anywhere(&secret), "the secret was stored");
    let id = id_of(&first.json["client_id"]);
    let r = s.token_request(
        &[("grant_type", "client_credentials")],
        Some((&id, &secret)),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn validate_and_the_token_endpoint_ignore_an_idempotency_key() {
    let s = server();
    let t = s.tenant(RW);
    let key = [("Idempotency-Key", "same-key")];
    let token = |form: &str| {
        let mut headers = key.to_vec();
        let basic = format!(
            "Basic {}",
            base64(format!("{}:{}", t.client_id, t.secret).as_bytes())
        );
        headers.push(("Authorization", &basic));
        s.send(
            "POST",
            "/oauth/token",
            &headers,
            Some(("application/x-www-form-urlencoded", form.as_bytes())),
        )
    };
    let (a, b) = (
        token("grant_type=client_credentials"),
        token("grant_type=client_credentials&scope=vouchers:read"),
    );
    assert_eq!((a.status, b.status), (200, 200), "{} {}", a.body, b.body);
    assert_ne!(a.json["access_token"], b.json["access_token"]);
    assert_eq!(b.json["scope"], "vouchers:read");

    let auth = format!("Bearer {}", t.token);
    let validate = |code: &str| {
        let body = serde_json::to_vec(&json!({"code": code})).expect("body");
        s.send(
            "POST",
            "/v1/validate",
            &[("Authorization", &auth), key[0]],
            Some(("application/json", &body)),
        )
    };
    let code = code_stem();
    let before = validate(&code);
    assert_eq!(before.json["reason"], "not_found", "{}", before.body);
    s.create_voucher(&t.token, &json!({"amount": "1.00", "code": code}));
    let after = validate(&code);
    assert_eq!(after.json["valid"], true, "{}", after.body);
    assert!(after.header("idempotent-replayed").is_none());
}
