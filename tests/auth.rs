//! OAuth 2.0 client credentials (docs/api.md), Bearer checks on every `/v1` route, tenancy by
//! group, the admin API for groups and clients, and the CLI's `group`/`client` commands.
//! Issue 2 acceptance items 2 and 3.

use crate::common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// One server for the tests here that cannot disturb each other (each makes its own groups).
/// Tests that send bad secrets get their own server, so the brute-force throttle of one
/// address never reaches the others.
fn server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(TestServer::start)
}

fn scope_set(scope: &Value) -> BTreeSet<String> {
    scope
        .as_str()
        .unwrap_or_else(|| panic!("scope should be a space-separated string, got {scope}"))
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn json_set(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, got {v}"))
        .iter()
        .map(|s| s.as_str().expect("string item").to_string())
        .collect()
}

/// A group with `scopes` and a client of it (no token yet): (group name, id, secret).
fn client_in_new_group(s: &TestServer, scopes: &[&str]) -> (String, String, String) {
    let group = unique("g");
    s.create_group(&group, scopes);
    let (id, secret) = s.create_client(&unique("c"), &group, None);
    (group, id, secret)
}

fn a_voucher(s: &TestServer, token: &str) -> Value {
    s.create_voucher(token, &json!({"amount": "10.00", "label": "auth test"}))
}

// ---- token endpoint -------------------------------------------------------------------------

#[test]
fn token_by_basic_auth_is_a_bearer_for_3600_s_with_all_client_scopes_and_no_store() {
    let s = server();
    let (_, id, secret) = client_in_new_group(s, RW);
    let r = s.token_request(
        &[("grant_type", "client_credentials")],
        Some((&id, &secret)),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.content_type().starts_with("application/json"),
        "content type {:?}",
        r.content_type()
    );
    let cache = r.header("cache-control").unwrap_or("");
    assert!(cache.contains("no-store"), "Cache-Control: {cache:?}");
    assert_eq!(r.json["token_type"], "Bearer", "{}", r.body);
    assert_eq!(r.json["expires_in"], 3600, "{}", r.body);
    assert_eq!(scope_set(&r.json["scope"]), set(RW), "{}", r.body);
    assert!(
        r.json.get("refresh_token").is_none(),
        "no refresh token: {}",
        r.body
    );
    let token = r.json["access_token"]
        .as_str()
        .expect("access_token string");
    assert!(token.len() >= 22, "token too short for 128 bits: {token:?}");

    let list = s.get("/v1/vouchers", token);
    assert_eq!(list.status, 200, "the issued token works: {}", list.body);
}

#[test]
fn token_by_form_fields_is_issued_and_each_token_is_new() {
    let s = server();
    let (_, id, secret) = client_in_new_group(s, RW);
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", secret.as_str()),
    ];
    let first = s.token_request(&form, None);
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(first
        .header("cache-control")
        .unwrap_or("")
        .contains("no-store"));
    assert_eq!(first.json["token_type"], "Bearer");
    assert_eq!(first.json["expires_in"], 3600);
    let second = s.token_request(&form, None);
    assert_eq!(second.status, 200, "{}", second.body);
    assert_ne!(
        first.json["access_token"], second.json["access_token"],
        "tokens are random"
    );
    for t in [&first, &second] {
        let token = t.json["access_token"].as_str().expect("token");
        assert_eq!(s.get("/v1/vouchers", token).status, 200);
    }
}

#[test]
fn credentials_in_both_basic_header_and_form_are_invalid_request() {
    let s = server();
    let (_, id, secret) = client_in_new_group(s, RW);
    let r = s.token_request(
        &[
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
        ],
        Some((&id, &secret)),
    );
    assert_oauth_error(&r, 400, "invalid_request");
}

#[test]
fn wrong_secret_by_basic_or_form_is_401_invalid_client_with_basic_challenge() {
    // Own server: bad secrets feed the brute-force throttle of this address.
    let s = TestServer::start();
    let (_, id, secret) = client_in_new_group(&s, RW);
    let wrong = format!("{secret}x");

    let r = s.token_request(&[("grant_type", "client_credentials")], Some((&id, &wrong)));
    assert_oauth_error(&r, 401, "invalid_client");
    let challenge = r.header("www-authenticate").unwrap_or("");
    assert!(
        challenge.starts_with("Basic"),
        "WWW-Authenticate should be Basic, got {challenge:?}"
    );
    assert!(r.json["access_token"].is_null(), "{}", r.body);

    let r = s.token_request(
        &[
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
            ("client_secret", wrong.as_str()),
        ],
        None,
    );
    assert_oauth_error(&r, 401, "invalid_client");
    assert!(r
        .header("www-authenticate")
        .unwrap_or("")
        .starts_with("Basic"));

    // The right secret still works afterwards (two misses are not yet a brute force).
    let ok = s.token_request(
        &[("grant_type", "client_credentials")],
        Some((&id, &secret)),
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
}

#[test]
fn unknown_client_and_missing_credentials_are_401_invalid_client() {
    let s = server();
    let r = s.token_request(
        &[("grant_type", "client_credentials")],
        Some(("no-such-client", "whatever-secret")),
    );
    assert_oauth_error(&r, 401, "invalid_client");
    assert!(r
        .header("www-authenticate")
        .unwrap_or("")
        .starts_with("Basic"));

    let r = s.token_request(&[("grant_type", "client_credentials")], None);
    assert_oauth_error(&r, 401, "invalid_client");
    assert!(r
        .header("www-authenticate")
        .unwrap_or("")
        .starts_with("Basic"));
}

#[test]
fn other_grant_type_is_unsupported_grant_type_and_a_missing_one_is_invalid_request() {
    let s = server();
    let (_, id, secret) = client_in_new_group(s, RW);
    for grant in [
        "password",
        "authorization_code",
        "refresh_token",
        "client-credentials",
    ] {
        let r = s.token_request(&[("grant_type", grant)], Some((&id, &secret)));
        assert_oauth_error(&r, 400, "unsupported_grant_type");
    }
    let r = s.token_request(&[], Some((&id, &secret)));
    assert_oauth_error(&r, 400, "invalid_request");
}

#[test]
fn scope_subset_is_granted_alone_and_superset_or_unknown_scope_is_invalid_scope() {
    let s = server();
    let (_, id, secret) = client_in_new_group(s, RW);
    let basic = Some((id.as_str(), secret.as_str()));

    let r = s.token_request(
        &[
            ("grant_type", "client_credentials"),
            ("scope", "vouchers:read"),
        ],
        basic,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["scope"], "vouchers:read", "{}", r.body);
    let read_only = r.json["access_token"].as_str().expect("token").to_string();
    assert_eq!(s.get("/v1/vouchers", &read_only).status, 200);
    let denied = s.post("/v1/vouchers", &read_only, &json!({"amount": "5.00"}));
    assert_problem(&denied, 403, "insufficient_scope");

    let r = s.token_request(
        &[
            ("grant_type", "client_credentials"),
            ("scope", "vouchers:write vouchers:read"),
        ],
        basic,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(scope_set(&r.json["scope"]), set(RW));

    for scope in ["vouchers:read admin", "charges:write", "bogus:scope"] {
        let r = s.token_request(
            &[("grant_type", "client_credentials"), ("scope", scope)],
            basic,
        );
        assert_oauth_error(&r, 400, "invalid_scope");
    }
}

#[test]
fn client_type_of_32_chars_is_accepted_and_33_is_invalid_request() {
    let s = server();
    let (_, id, secret) = client_in_new_group(s, RW);
    let basic = Some((id.as_str(), secret.as_str()));
    let ok = "p".repeat(32);
    let r = s.token_request(
        &[("grant_type", "client_credentials"), ("client_type", &ok)],
        basic,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json["access_token"].is_string());

    let too_long = "p".repeat(33);
    let r = s.token_request(
        &[
            ("grant_type", "client_credentials"),
            ("client_type", &too_long),
        ],
        basic,
    );
    assert_oauth_error(&r, 400, "invalid_request");
}

// ---- Bearer checks --------------------------------------------------------------------------

/// Every `/v1` route of issue 2, with real ids and valid bodies so only auth can refuse.
fn v1_routes(voucher_id: &str, client_id: &str) -> Vec<(&'static str, String, Option<Value>)> {
    vec![
        ("GET", "/v1/vouchers".into(), None),
        (
            "POST",
            "/v1/vouchers".into(),
            Some(json!({"amount": "1.00"})),
        ),
        (
            "POST",
            "/v1/vouchers/batch".into(),
            Some(json!({"count": 2, "batch": "b", "amount": "1.00"})),
        ),
        ("GET", format!("/v1/vouchers/{voucher_id}"), None),
        (
            "PATCH",
            format!("/v1/vouchers/{voucher_id}"),
            Some(json!({"label": "changed"})),
        ),
        ("DELETE", format!("/v1/vouchers/{voucher_id}"), None),
        ("GET", "/v1/client-groups".into(), None),
        (
            "POST",
            "/v1/client-groups".into(),
            Some(json!({"name": "x", "scopes": ["vouchers:read"]})),
        ),
        ("GET", "/v1/clients".into(), None),
        (
            "POST",
            "/v1/clients".into(),
            Some(json!({"name": "x", "group": "admin"})),
        ),
        ("DELETE", format!("/v1/clients/{client_id}"), None),
    ]
}

#[test]
fn every_v1_route_without_token_is_401_with_a_bare_bearer_challenge_and_does_nothing() {
    let s = server();
    let t = s.tenant(RW);
    let v = a_voucher(s, &t.token);
    let vid = id_of(&v["id"]);
    for (method, path, body) in v1_routes(&vid, &t.client_id) {
        let r = s.call(method, &path, None, body.as_ref());
        assert_problem(&r, 401, "unauthorized");
        assert_eq!(
            r.header("www-authenticate"),
            Some(r#"Bearer realm="vouchd""#),
            "{method} {path}"
        );
    }
    let after = s.get(&format!("/v1/vouchers/{vid}"), &t.token);
    assert_eq!(after.status, 200, "voucher survived: {}", after.body);
    assert_eq!(after.json["label"], "auth test");
    assert_eq!(
        s.get("/v1/vouchers", &t.token).status,
        200,
        "client survived"
    );
}

#[test]
fn every_v1_route_with_an_unknown_token_is_401_invalid_token() {
    let s = server();
    let t = s.tenant(RW);
    let v = a_voucher(s, &t.token);
    let vid = id_of(&v["id"]);
    let forged = "A".repeat(43);
    for (method, path, body) in v1_routes(&vid, &t.client_id) {
        let r = s.call(method, &path, Some(&forged), body.as_ref());
        assert_problem(&r, 401, "invalid_token");
        let challenge = r.header("www-authenticate").unwrap_or("");
        assert!(
            challenge.starts_with("Bearer") && challenge.contains(r#"error="invalid_token""#),
            "{method} {path}: WWW-Authenticate {challenge:?}"
        );
    }
    // A real token with one character changed is unknown too.
    let mut tampered = t.token.clone();
    let last = tampered.pop().expect("non-empty token");
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let r = s.get("/v1/vouchers", &tampered);
    assert_problem(&r, 401, "invalid_token");
    let after = s.get(&format!("/v1/vouchers/{vid}"), &t.token);
    assert_eq!(after.status, 200, "voucher survived: {}", after.body);
    assert_eq!(after.json["label"], "auth test");
}

fn assert_insufficient_scope(r: &Resp, what: &str) {
    assert_eq!(r.status, 403, "{what}: {}", r.body);
    assert_problem(r, 403, "insufficient_scope");
    let challenge = r.header("www-authenticate").unwrap_or("");
    assert!(
        challenge.starts_with("Bearer") && challenge.contains(r#"error="insufficient_scope""#),
        "{what}: WWW-Authenticate {challenge:?}"
    );
}

#[test]
fn missing_scope_is_403_insufficient_scope_on_each_voucher_route() {
    let s = server();
    let group = unique("g");
    s.create_group(&group, RW);
    let (rid, rsecret) = s.create_client(&unique("reader"), &group, Some(&[READ][..]));
    let (wid, wsecret) = s.create_client(&unique("writer"), &group, Some(&[WRITE][..]));
    let reader = s.token(&rid, &rsecret, None);
    let writer = s.token(&wid, &wsecret, None);

    let v = s.create_voucher(&writer, &json!({"amount": "3.00", "label": "scoped"}));
    let vid = id_of(&v["id"]);
    let one = format!("/v1/vouchers/{vid}");

    // Read-only client: reads pass, writes are refused.
    assert_eq!(s.get("/v1/vouchers", &reader).status, 200);
    assert_eq!(s.get(&one, &reader).status, 200);
    assert_insufficient_scope(
        &s.post("/v1/vouchers", &reader, &json!({"amount": "1.00"})),
        "reader POST",
    );
    assert_insufficient_scope(
        &s.post(
            "/v1/vouchers/batch",
            &reader,
            &json!({"count": 2, "batch": "x", "amount": "1.00"}),
        ),
        "reader batch",
    );
    assert_insufficient_scope(
        &s.patch(&one, &reader, &json!({"label": "no"})),
        "reader PATCH",
    );
    assert_insufficient_scope(&s.delete(&one, &reader), "reader DELETE");

    // Write-only client: reads are refused.
    assert_insufficient_scope(&s.get("/v1/vouchers", &writer), "writer list");
    assert_insufficient_scope(&s.get(&one, &writer), "writer GET");

    // Nothing changed.
    let after = s.get(&one, &reader);
    assert_eq!(after.json["label"], "scoped", "{}", after.body);
}

#[test]
fn non_admin_token_is_403_on_client_management_routes() {
    let s = server();
    let t = s.tenant(RW);
    let checks = [
        s.get("/v1/client-groups", &t.token),
        s.post(
            "/v1/client-groups",
            &t.token,
            &json!({"name": unique("g"), "scopes": ["admin"]}),
        ),
        s.get("/v1/clients", &t.token),
        s.post(
            "/v1/clients",
            &t.token,
            &json!({"name": "sneaky", "group": "admin"}),
        ),
        s.delete(&format!("/v1/clients/{}", s.admin_id), &t.token),
    ];
    for r in &checks {
        assert_insufficient_scope(r, "client management without admin");
    }
    assert_eq!(
        s.get("/v1/clients", &s.admin_token()).status,
        200,
        "admin intact"
    );
}

// ---- tenancy --------------------------------------------------------------------------------

#[test]
fn another_group_gets_404_on_get_patch_delete_and_an_empty_list() {
    let s = server();
    let a = s.tenant(RW);
    let b = s.tenant(RW);
    let batch = unique("tenancy");
    let v = s.create_voucher(
        &a.token,
        &json!({"amount": "10.00", "label": "A's", "batch": batch}),
    );
    let vid = id_of(&v["id"]);
    let one = format!("/v1/vouchers/{vid}");

    assert_problem(&s.get(&one, &b.token), 404, "not_found");
    assert_problem(
        &s.patch(&one, &b.token, &json!({"label": "stolen"})),
        404,
        "not_found",
    );
    assert_problem(&s.delete(&one, &b.token), 404, "not_found");

    let list = s.list(&b.token, "");
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.json["data"], json!([]), "{}", list.body);
    assert_eq!(list.json["meta"]["total"], 0, "{}", list.body);
    assert!(s
        .list_ids(&b.token, &format!("filter[id]={vid}"))
        .is_empty());
    assert!(s
        .list_ids(&b.token, &format!("filter[batch]={}", enc(&batch)))
        .is_empty());
    assert!(s
        .list_ids(
            &b.token,
            &format!("filter[client.client_group_id]={}", enc(&a.group_id))
        )
        .is_empty());
    assert!(s
        .list_ids(
            &b.token,
            &format!("filter[client_id]={}", enc(&a.client_id))
        )
        .is_empty());

    let after = s.get(&one, &a.token);
    assert_eq!(after.status, 200, "{}", after.body);
    assert_eq!(after.json["label"], "A's", "untouched by B: {}", after.body);
    assert_eq!(s.list_ids(&a.token, ""), vec![vid]);
}

#[test]
fn clients_of_one_group_share_its_vouchers_and_filter_client_id_narrows() {
    let s = server();
    let a = s.tenant(RW);
    let (a2_id, a2_secret) = s.create_client(&unique("c2"), &a.group_name, None);
    let a2 = s.token(&a2_id, &a2_secret, None);
    let v1 = s.create_voucher(&a.token, &json!({"amount": "1.00"}));
    let v2 = s.create_voucher(&a2, &json!({"amount": "2.00"}));
    assert_eq!(v1["client_id"], json!(a.client_id));
    assert_eq!(v2["client_id"], json!(a2_id));

    let one = format!("/v1/vouchers/{}", id_of(&v1["id"]));
    assert_eq!(s.get(&one, &a2).status, 200);
    let r = s.patch(&one, &a2, &json!({"label": "by a colleague"}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["label"], "by a colleague");

    assert_eq!(s.list_set(&a2, ""), ids(&[&v1, &v2]));
    assert_eq!(
        s.list_set(&a2, &format!("filter[client_id]={}", enc(&a.client_id))),
        ids(&[&v1])
    );
    assert_eq!(
        s.list_set(&a.token, &format!("filter[client_id]={}", enc(&a2_id))),
        ids(&[&v2])
    );
}

#[test]
fn admin_sees_every_group_and_filter_client_group_id_narrows() {
    let s = server();
    let admin = s.admin_token();
    let a = s.tenant(RW);
    let b = s.tenant(RW);
    let batch = unique("shared-batch");
    let va = s.create_voucher(&a.token, &json!({"amount": "1.00", "batch": batch}));
    let vb = s.create_voucher(&b.token, &json!({"amount": "2.00", "batch": batch}));
    let by_batch = format!("filter[batch]={}", enc(&batch));

    assert_eq!(s.list_set(&admin, &by_batch), ids(&[&va, &vb]));
    assert_eq!(s.list_set(&a.token, &by_batch), ids(&[&va]));
    assert_eq!(s.list_set(&b.token, &by_batch), ids(&[&vb]));
    assert_eq!(
        s.list_set(
            &admin,
            &format!("filter[client.client_group_id]={}", enc(&a.group_id))
        ),
        ids(&[&va])
    );
    assert_eq!(
        s.list_set(
            &admin,
            &format!(
                "{by_batch}&filter[client.client_group_id]={}",
                enc(&b.group_id)
            )
        ),
        ids(&[&vb])
    );
    assert_eq!(
        s.list_set(
            &a.token,
            &format!("filter[client.client_group_id]={}", enc(&a.group_id))
        ),
        ids(&[&va]),
        "a group may name itself"
    );

    let one_a = format!("/v1/vouchers/{}", id_of(&va["id"]));
    let got = s.get(&one_a, &admin);
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.json["client_id"], json!(a.client_id));
    let patched = s.patch(&one_a, &admin, &json!({"note": "seen by admin"}));
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(s.get(&one_a, &a.token).json["note"], "seen by admin");
    let one_b = format!("/v1/vouchers/{}", id_of(&vb["id"]));
    assert_eq!(s.delete(&one_b, &admin).status, 204);
    assert_problem(&s.get(&one_b, &b.token), 404, "not_found");
}

// ---- client management ----------------------------------------------------------------------

#[test]
fn admin_api_creates_groups_and_clients_with_scope_subsets_and_delete_kills_tokens() {
    let s = server();
    let admin = s.admin_token();
    let name = unique("g");
    let scopes = ["vouchers:read", "vouchers:write", "charges:read"];
    let g = s.post(
        "/v1/client-groups",
        &admin,
        &json!({"name": name, "scopes": scopes}),
    );
    assert_eq!(g.status, 201, "{}", g.body);
    assert_eq!(g.json["name"], json!(name));
    assert_eq!(json_set(&g.json["scopes"]), set(&scopes));
    let gid = id_of(&g.json["id"]);

    // By name, a subset of the group's scopes.
    let c = s.post(
        "/v1/clients",
        &admin,
        &json!({"name": unique("c"), "group": name, "scopes": ["vouchers:read"]}),
    );
    assert_eq!(c.status, 201, "{}", c.body);
    assert_eq!(c.json["scopes"], json!(["vouchers:read"]), "{}", c.body);
    let cid = id_of(&c.json["client_id"]);
    let secret = c.json["client_secret"]
        .as_str()
        .expect("secret")
        .to_string();
    let tr = s.token_request(
        &[("grant_type", "client_credentials")],
        Some((&cid, &secret)),
    );
    assert_eq!(tr.status, 200, "{}", tr.body);
    assert_eq!(tr.json["scope"], "vouchers:read");

    // By id, inheriting all of the group's scopes.
    let c2 = s.post(
        "/v1/clients",
        &admin,
        &json!({"name": unique("c"), "group": gid}),
    );
    assert_eq!(c2.status, 201, "{}", c2.body);
    assert_eq!(json_set(&c2.json["scopes"]), set(&scopes), "{}", c2.body);

    // More than the group holds is refused.
    let over = s.post(
        "/v1/clients",
        &admin,
        &json!({"name": unique("c"), "group": name, "scopes": ["admin"]}),
    );
    assert_invalid_field(&over, "scopes");

    // Lists: the shape docs/api.md gives, secrets never shown again.
    let groups = s.get("/v1/client-groups", &admin);
    assert_eq!(groups.status, 200, "{}", groups.body);
    let gdata = groups.json["data"].as_array().expect("data array");
    assert!(
        gdata.iter().any(|x| x["name"] == json!(name)),
        "{}",
        groups.body
    );
    assert!(
        gdata.iter().any(|x| x["name"] == "admin"),
        "{}",
        groups.body
    );
    let clients = s.get("/v1/clients?per_page=1000", &admin);
    assert_eq!(clients.status, 200, "{}", clients.body);
    assert!(clients.json["meta"]["total"].is_u64(), "{}", clients.body);
    let cdata = clients.json["data"].as_array().expect("data array");
    assert!(
        cdata.iter().any(|x| x["client_id"] == json!(cid)),
        "{}",
        clients.body
    );
    assert!(!clients.body.contains(&secret), "secret shown again");
    assert!(!clients.body.contains("client_secret"), "{}", clients.body);

    // Deleting the client kills its live token.
    let token = tr.json["access_token"].as_str().expect("token").to_string();
    assert_eq!(s.get("/v1/vouchers", &token).status, 200);
    let del = s.delete(&format!("/v1/clients/{cid}"), &admin);
    assert_eq!(del.status, 204, "{}", del.body);
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut last = s.get("/v1/vouchers", &token);
    while last.status == 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        last = s.get("/v1/vouchers", &token);
    }
    assert_problem(&last, 401, "invalid_token");
}

#[test]
fn cli_group_and_client_commands_work_beside_the_server_and_revoke_kills_tokens_within_1_5_s() {
    let s = TestServer::start();
    let name = unique("shop");

    let out = s.cli(&[
        "group",
        "create",
        &name,
        "--scopes",
        "vouchers:read,vouchers:write",
    ]);
    assert!(out.status.success(), "group create: {out:?}");
    let g: Value = serde_json::from_slice(&out.stdout).expect("group create prints JSON");
    assert_eq!(g["name"], json!(name));
    assert_eq!(json_set(&g["scopes"]), set(RW));
    let gid = id_of(&g["id"]);

    let out = s.cli(&["client", "create", "till", "--group", &name]);
    assert!(out.status.success(), "client create: {out:?}");
    let till: Value = serde_json::from_slice(&out.stdout).expect("client create prints JSON");
    assert_eq!(json_set(&till["scopes"]), set(RW), "{till}");
    assert!(!till["group"].is_null(), "{till}");
    let till_id = id_of(&till["client_id"]);
    let till_secret = till["client_secret"].as_str().expect("secret").to_string();

    let out = s.cli(&[
        "client",
        "create",
        "reader",
        "--group",
        &gid,
        "--scopes",
        "vouchers:read",
    ]);
    assert!(out.status.success(), "client create by group id: {out:?}");
    let reader: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(reader["scopes"], json!(["vouchers:read"]), "{reader}");
    let reader_id = id_of(&reader["client_id"]);
    let reader_secret = reader["client_secret"]
        .as_str()
        .expect("secret")
        .to_string();

    let out = s.cli(&["client", "list"]);
    assert!(out.status.success(), "client list: {out:?}");
    let listed: Value = serde_json::from_slice(&out.stdout).expect("client list prints JSON");
    let listed_ids: BTreeSet<String> = listed
        .as_array()
        .expect("client list prints an array")
        .iter()
        .map(|c| id_of(&c["client_id"]))
        .collect();
    for id in [&till_id, &reader_id, &s.admin_id] {
        assert!(listed_ids.contains(id), "{id} missing from {listed}");
    }
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains(&till_secret) && !text.contains(&reader_secret),
        "client list shows no secrets"
    );

    // Clients made by the CLI work against the running server.
    let till_token = s.token(&till_id, &till_secret, None);
    let reader_token = s.token(&reader_id, &reader_secret, None);
    let v = s.create_voucher(&till_token, &json!({"amount": "4.00"}));
    assert_eq!(
        s.get(&format!("/v1/vouchers/{}", id_of(&v["id"])), &reader_token)
            .status,
        200
    );

    let out = s.cli(&["client", "revoke", &till_id]);
    assert!(out.status.success(), "client revoke: {out:?}");
    let revoked_at = Instant::now();
    // Refused once 1.5 s have passed: measured when each request is sent, so how long a busy
    // machine takes to answer it does not count.
    let (mut sent, mut last);
    loop {
        sent = revoked_at.elapsed();
        last = s.get("/v1/vouchers", &till_token);
        if last.status != 200 || sent > Duration::from_secs(10) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_problem(&last, 401, "invalid_token");
    assert!(
        sent <= Duration::from_millis(1500),
        "a request sent {sent:?} after the revocation was still taken"
    );

    let r = s.token_request(
        &[("grant_type", "client_credentials")],
        Some((&till_id, &till_secret)),
    );
    assert_oauth_error(&r, 401, "invalid_client");
    assert_eq!(
        s.get("/v1/vouchers", &reader_token).status,
        200,
        "other clients unaffected"
    );
}

#[test]
fn admin_client_is_created_and_printed_only_on_the_first_start() {
    let dir = std::sync::Arc::new(TempDir::new());
    let first = TestServer::start_in(dir.clone(), &[], None);
    assert!(first.printed_admin);
    let admin = (first.admin_id.clone(), first.admin_secret.clone());
    let groups = first.get("/v1/client-groups", &first.admin_token());
    assert_eq!(groups.status, 200, "{}", groups.body);
    let admin_group = groups.json["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|g| g["name"] == "admin")
        .cloned()
        .unwrap_or_else(|| panic!("no admin group in {}", groups.body));
    assert_eq!(json_set(&admin_group["scopes"]), set(ALL_SCOPES));
    drop(first);

    let second = TestServer::start_in(dir, &[], Some(admin.clone()));
    assert!(
        !second.printed_admin,
        "second start printed new admin credentials:\n{}",
        second.output()
    );
    let token = second.token(&admin.0, &admin.1, None);
    assert_eq!(second.get("/v1/clients", &token).status, 200);
}
