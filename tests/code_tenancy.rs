//! Codes are unique per group: no request of one group can tell whether a code exists in
//! another, not by status, message, count or list (issue 19, item 2).

use crate::common::*;
use serde_json::json;
use std::sync::OnceLock;

fn server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(TestServer::start)
}

fn import(s: &TestServer, token: &str, csv: &str) -> Resp {
    s.send(
        "POST",
        "/v1/vouchers/import",
        &[("Authorization", &format!("Bearer {token}"))],
        Some(("text/csv", csv.as_bytes())),
    )
}

#[test]
fn another_groups_code_is_free_and_the_own_is_duplicate_code() {
    // The POS dialect takes no code on create (the vendor's form), so `/v1/vouchers` is the one
    // route where a client names a new code.
    let s = server();
    let (a, b) = (s.tenant(CASHIER), s.tenant(CASHIER));
    let on_v1 = code_stem();
    s.create_voucher(&a.token, &json!({"amount": "5.00", "code": on_v1}));

    let r = s.post(
        "/v1/vouchers",
        &b.token,
        &json!({"amount": "7.00", "code": on_v1}),
    );
    assert_eq!(r.status, 201, "{}", r.body);

    // Within one group a code stays unique.
    let again = s.post(
        "/v1/vouchers",
        &b.token,
        &json!({"amount": "7.00", "code": on_v1}),
    );
    assert_problem(&again, 409, "duplicate_code");
}

#[test]
fn an_import_lists_no_code_of_another_group() {
    let s = server();
    let (a, b) = (s.tenant(RW), s.tenant(RW));
    let theirs: Vec<String> = (0..5).map(|_| code_stem()).collect();
    for code in &theirs {
        s.create_voucher(&a.token, &json!({"amount": "1.00", "code": code}));
    }
    let mut csv = String::from("code,amount\n");
    for code in &theirs {
        csv.push_str(&format!("{code},2.00\n"));
    }
    // One bad last row: the report may name it, and nothing else.
    let bad = import(s, &b.token, &format!("{csv}{},not money\n", code_stem()));
    assert_problem(&bad, 422, "validation_failed");
    let errors = bad.json["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{}", bad.body);
    assert_eq!(errors[0]["field"], "amount", "{}", bad.body);
    for code in &theirs {
        assert!(!bad.body.contains(code.as_str()), "{code}: {}", bad.body);
    }

    let good = import(s, &b.token, &csv);
    assert_eq!(good.status, 201, "{}", good.body);
    assert_eq!(good.json["imported"], json!(theirs.len()));
    // The group's own codes are still reported taken.
    let own = import(s, &b.token, &format!("code,amount\n{},3.00\n", theirs[0]));
    assert_problem(&own, 422, "validation_failed");
    assert!(own.body.contains("is taken"), "{}", own.body);
}

#[test]
fn a_batchs_room_counts_only_the_groups_own_codes() {
    let s = server();
    let (a, b) = (s.tenant(RW), s.tenant(RW));
    // A prefix of three leaves 31 codes of length 4; a batch may take half of what is free.
    let prefix = &code_stem()[..3];
    let batch = |t: &Tenant, count: u64| {
        s.post(
            "/v1/vouchers/batch",
            &t.token,
            &json!({"count": count, "amount": "1.00", "code_length": 4, "code_prefix": prefix}),
        )
    };
    let refused_before = batch(&b, 16);
    assert_invalid_field(&refused_before, "count");
    let filled = batch(&a, 15);
    assert_eq!(filled.status, 201, "{}", filled.body);
    let refused_after = batch(&b, 16);
    assert_eq!(refused_after.status, refused_before.status);
    assert_eq!(
        refused_after.json["errors"], refused_before.json["errors"],
        "the room another group left shows"
    );
    let made = batch(&b, 15);
    assert_eq!(made.status, 201, "{}", made.body);
    // The group's own codes do count: half of the 16 left.
    assert_invalid_field(&batch(&b, 9), "count");
    assert_eq!(batch(&b, 8).status, 201);
}

#[test]
fn look_ups_by_code_find_the_own_groups_voucher_and_admin_is_told_when_ambiguous() {
    let s = server();
    let (a, b) = (s.tenant(CASHIER), s.tenant(CASHIER));
    let code = code_stem();
    let discount = |label: &str| json!({"discount": {"type": "money", "value": "2.00"}, "code": code, "label": label});
    let va = s.create_voucher(&a.token, &discount("of A"));
    let vb = s.create_voucher(&b.token, &discount("of B"));

    for (t, v) in [(&a, &va), (&b, &vb)] {
        let r = s.post("/v1/validate", &t.token, &json!({"code": code}));
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json["voucher"]["id"], v["id"], "{}", r.body);
        let r = s.get(&format!("/pos/v1/vouchers/{code}"), &t.token);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json["label"], v["label"], "{}", r.body);
    }
    let found = s.list_set(&a.token, &format!("filter[code]={code}"));
    assert_eq!(found, set(&[&id_of(&va["id"])]));

    // `admin` sees every group: a code two groups hold cannot name one voucher.
    let admin = s.admin_token();
    assert_eq!(
        s.list_set(&admin, &format!("filter[code]={code}")),
        set(&[&id_of(&va["id"]), &id_of(&vb["id"])])
    );
    assert_problem(
        &s.get(&format!("/pos/v1/vouchers/{code}"), &admin),
        409,
        "ambiguous_code",
    );
    assert_problem(
        &s.post("/v1/validate", &admin, &json!({"code": code})),
        409,
        "ambiguous_code",
    );
    // A code one group holds is found as before.
    let single = code_stem();
    let only = s.create_voucher(&a.token, &json!({"amount": "1.00", "code": single}));
    let r = s.post("/v1/validate", &admin, &json!({"code": single}));
    assert_eq!(r.json["voucher"]["id"], only["id"], "{}", r.body);
}
