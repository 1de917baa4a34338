//! The scoped lists and the two vendor dialects over the same vouchers: every carecloud
//! parameter narrowing, sorting and paging with the vendor's names and types, the POS routes by
//! code with their required-but-nullable fields, tenancy in both, and a voucher made in one
//! shape read back consistently in the other two. Issue 4 acceptance items 1–3; issue 17 moved
//! the carecloud routes below the vendor's base and renamed its members (the vendor's client
//! itself is in vendor_clients.rs).

use crate::common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::OnceLock;

fn server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(TestServer::start)
}

fn is_plain_time(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let b = s.as_bytes();
    s.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}

pub(crate) const CARE: &str = "/carecloud/rest-api/enterprise-interface/v1.0";

fn care(s: &TestServer, token: &str, path: &str) -> Resp {
    s.get(&format!("{CARE}/{path}"), token)
}

/// Asserts a carecloud 400 that lists exactly `param` among its `invalid_params`.
pub(crate) fn assert_care_invalid(r: &Resp, param: &str) {
    assert_eq!(r.status, 400, "{param}: {}", r.body);
    assert_eq!(r.content_type(), "application/json", "{param}");
    let listed: Vec<&str> = r.json["error"]["error_data"]["invalid_params"]
        .as_array()
        .unwrap_or_else(|| panic!("no invalid_params in {}", r.body))
        .iter()
        .map(|p| p["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(listed, vec![param], "{}", r.body);
}

/// The voucher ids of a carecloud answer, in order (asserting 200).
fn care_ids(s: &TestServer, token: &str, path: &str) -> Vec<String> {
    let r = care(s, token, path);
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    let list = r.json["data"]["vouchers"]
        .as_array()
        .unwrap_or_else(|| panic!("no data.vouchers in {}", r.body));
    assert!(
        r.json["data"]["total_items"].as_u64().is_some(),
        "{}",
        r.body
    );
    list.iter().map(|v| id_of(&v["voucher_id"])).collect()
}

fn set_of(ids: &[&Value]) -> BTreeSet<String> {
    ids.iter().map(|v| id_of(&v["id"])).collect()
}

/// One customer with five vouchers that differ in value, validity, state, store, reward and
/// whether they have been applied; plus a voucher of another customer and one of a purchase.
struct Shop {
    t: Tenant,
    customer: String,
    purchase: String,
    /// 30.00 gift card, store S1, reward R1, charged once.
    a: Value,
    /// 5.00 money discount, store S2, reward R2, expired.
    b: Value,
    /// 12.5 % discount, no store, reward R3, not valid before next year, inactive.
    c: Value,
    /// 80.00 gift card, store S1, cancelled, holding a live reservation.
    d: Value,
    /// 1.00 gift card, no store, no reward, untouched.
    e: Value,
}

fn shop() -> &'static Shop {
    static SHOP: OnceLock<Shop> = OnceLock::new();
    SHOP.get_or_init(|| {
        let s = server();
        let t = s.tenant(CASHIER);
        let customer = unique("cust");
        let purchase = unique("purch");
        let stem = code_stem();
        let make = |suffix: &str, extra: Value| {
            let mut body = json!({"code": format!("{stem}{suffix}"), "customer_id": customer});
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            s.create_voucher(&t.token, &body)
        };
        let a = make(
            "A",
            json!({"amount": "30.00", "store_id": "S1", "reward_id": "R1", "note": "alpha"}),
        );
        let b = make(
            "B",
            json!({"discount": {"type": "money", "value": "5.00"}, "store_id": "S2",
                   "reward_id": "R2", "valid_until": "2020-01-31", "note": "bravo"}),
        );
        let c = make(
            "C",
            json!({"discount": {"type": "percentage", "value": "12.5"}, "reward_id": "R3",
                   "valid_from": "2099-01-01", "status": "inactive"}),
        );
        let d = make(
            "D",
            json!({"amount": "80.00", "store_id": "S1", "purchase_id": purchase}),
        );
        let e = make("E", json!({"amount": "1.00"}));
        let id = |v: &Value| id_of(&v["id"]);
        let r = s.post(
            &format!("/v1/vouchers/{}/charges", id(&a)),
            &t.token,
            &json!({"type": "charge", "amount": "2.00"}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        let r = s.post(
            &format!("/v1/vouchers/{}/reservations", id(&d)),
            &t.token,
            &json!({"amount": "10.00", "expires_in": 3600}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        let r = s.patch(
            &format!("/v1/vouchers/{}", id(&d)),
            &t.token,
            &json!({"status": "cancelled"}),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        // Someone else's customer, and the same customer id in another group.
        s.create_voucher(
            &t.token,
            &json!({"amount": "9.00", "customer_id": unique("other")}),
        );
        let other = s.tenant(CASHIER);
        s.create_voucher(
            &other.token,
            &json!({"amount": "9.00", "customer_id": customer, "purchase_id": purchase}),
        );
        Shop {
            t,
            customer,
            purchase,
            a,
            b,
            c,
            d,
            e,
        }
    })
}

fn ids_of(vs: &[&Value]) -> Vec<String> {
    vs.iter().map(|v| id_of(&v["id"])).collect()
}

#[test]
fn native_customer_and_purchase_lists_are_the_list_scoped() {
    let s = server();
    let f = shop();
    let r = s.get(
        &format!("/v1/customers/{}/vouchers?sort=code&per_page=2", f.customer),
        &f.t.token,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let page: Vec<String> = r.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| id_of(&v["id"]))
        .collect();
    assert_eq!(page, ids_of(&[&f.a, &f.b]));
    assert_eq!(r.json["meta"]["total"], json!(5), "{}", r.body);
    let next = r.json["links"]["next"].as_str().unwrap();
    assert!(
        next.contains(&format!("/v1/customers/{}/vouchers?", f.customer)),
        "{next}"
    );
    // Native filters still narrow inside the scope.
    let r = s.get(
        &format!("/v1/customers/{}/vouchers?filter[store_id]=S1", f.customer),
        &f.t.token,
    );
    let got: Vec<&Value> = r.json["data"].as_array().unwrap().iter().collect();
    assert_eq!(set_of(&got), set_of(&[&f.a, &f.d]));
    let r = s.get(
        &format!("/v1/purchases/{}/vouchers", f.purchase),
        &f.t.token,
    );
    let got: Vec<&Value> = r.json["data"].as_array().unwrap().iter().collect();
    assert_eq!(set_of(&got), set_of(&[&f.d]), "{}", r.body);
    let r = s.get(
        &format!("/v1/customers/{}/vouchers?filter[nope]=1", f.customer),
        &f.t.token,
    );
    assert_invalid_param(&r, "filter[nope]");
    let r = s.call("GET", "/v1/customers/x/vouchers", None, None);
    assert_eq!(r.status, 401);
}

#[test]
fn carecloud_shape_types_and_states() {
    let s = server();
    let f = shop();
    let r = care(
        s,
        &f.t.token,
        &format!("customers/{}/vouchers?sort_field=code", f.customer),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.content_type(), "application/json");
    assert_eq!(r.json["data"]["total_items"], json!(5));
    let list = r.json["data"]["vouchers"].as_array().unwrap();
    let by_id = |v: &Value| {
        list.iter()
            .find(|x| x["voucher_id"] == v["id"])
            .unwrap_or_else(|| panic!("{} missing from {}", v["id"], r.body))
            .clone()
    };
    let a = by_id(&f.a);
    let keys: BTreeSet<&str> = a.as_object().unwrap().keys().map(String::as_str).collect();
    let want: BTreeSet<&str> = [
        "voucher_id",
        "customer_id",
        "store_id",
        "code",
        "value",
        "reward_group",
        "note",
        "reward",
        "created_at",
        "last_change",
        "state",
    ]
    .into_iter()
    .collect();
    assert_eq!(
        keys, want,
        "no applied_date, valid_from, valid_to: a has none (left out, never null): {a}"
    );
    assert_eq!(a["value"].to_string(), "30");
    assert!(a["value"].is_number());
    assert_eq!(a["customer_id"], json!(f.customer));
    assert_eq!(a["store_id"], json!("S1"));
    assert_eq!(a["code"], f.a["code"]);
    assert_eq!(a["note"], json!("alpha"));
    assert_eq!(
        a["reward_group"],
        json!("5"),
        "a gift card is in the gift group"
    );
    assert_eq!(
        a["reward"],
        json!({"reward_id": "R1", "code": "R1", "name": "R1", "reward_group": 5,
               "store_list": []})
    );
    assert_eq!(a["state"], json!(1));
    assert!(is_plain_time(&a["created_at"]), "{a}");
    assert!(is_plain_time(&a["last_change"]), "{a}");
    let b = by_id(&f.b);
    assert_eq!(b["value"].to_string(), "5");
    assert_eq!(
        b["reward_group"],
        json!("4"),
        "a discount is in the simple group"
    );
    assert!(is_plain_time(&b["valid_to"]), "{b}");
    assert!(b["valid_to"]
        .as_str()
        .unwrap()
        .starts_with("2020-01-31 23:59:59"));
    let c = by_id(&f.c);
    assert_eq!(c["value"].to_string(), "12.5");
    assert_eq!(c["state"], json!(2));
    assert!(c["valid_from"]
        .as_str()
        .unwrap()
        .starts_with("2099-01-01 00:00:00"));
    assert!(c.get("store_id").is_none(), "{c}");
    assert!(c.get("note").is_none(), "{c}");
    assert_eq!(by_id(&f.d)["state"], json!(0));
    let e = by_id(&f.e);
    assert!(e.get("reward").is_none(), "{e}");
    for v in list {
        for (k, member) in v.as_object().unwrap() {
            assert!(!member.is_null(), "{k} is null in {v}");
        }
    }
    // Accept-Language is accepted; the answer does not change.
    let lang = s.send(
        "GET",
        &format!("{CARE}/customers/{}/vouchers?sort_field=code", f.customer),
        &[
            ("Authorization", &format!("Bearer {}", f.t.token)),
            ("Accept-Language", "cs, en-gb;q=0.8"),
        ],
        None,
    );
    assert_eq!(lang.status, 200);
    assert_eq!(lang.json, r.json);
}

#[test]
fn carecloud_filters_narrow_exactly() {
    let s = server();
    let f = shop();
    let base = format!("customers/{}/vouchers", f.customer);
    let set = |q: &str| -> BTreeSet<String> {
        care_ids(s, &f.t.token, &format!("{base}?{q}"))
            .into_iter()
            .collect()
    };
    let want = |vs: &[&Value]| set_of(vs);
    assert_eq!(set(""), want(&[&f.a, &f.b, &f.c, &f.d, &f.e]));
    let code = f.b["code"].as_str().unwrap().to_lowercase();
    let dashed = format!("{}-{}", &code[..3], &code[3..]);
    assert_eq!(set(&format!("code={dashed}")), want(&[&f.b]));
    assert_eq!(set("code=ZZZZ9999"), want(&[]));
    assert_eq!(set("store_id=S1"), want(&[&f.a, &f.d]));
    assert_eq!(set("is_valid=true"), want(&[&f.a, &f.d, &f.e]));
    assert_eq!(set("is_valid=false"), want(&[&f.b, &f.c]));
    assert_eq!(set("is_applied=true"), want(&[&f.a, &f.d]));
    assert_eq!(set("is_applied=false"), want(&[&f.b, &f.c, &f.e]));
    // Reward ids: comma-joined as the vendor's client sends an array, or the `[]` syntax.
    assert_eq!(set("reward_id=R1%2CR3"), want(&[&f.a, &f.c]));
    assert_eq!(set("reward_id=R1,R3"), want(&[&f.a, &f.c]));
    assert_eq!(set("reward_id[]=R1&reward_id[]=R3"), want(&[&f.a, &f.c]));
    assert_eq!(set("reward_id=R2"), want(&[&f.b]));
    assert_eq!(
        set("store_id=S1&is_applied=true&is_valid=true"),
        want(&[&f.a, &f.d])
    );
    // without_stores=false fills each reward's store list; true or absent leaves it empty.
    let r = care(
        s,
        &f.t.token,
        &format!("{base}?without_stores=false&reward_id=R1"),
    );
    assert_eq!(
        r.json["data"]["vouchers"][0]["reward"]["store_list"],
        json!([{"store_id": "S1", "store_code": "S1", "name": "S1", "partner_id": "",
                "system_id": ""}]),
        "{}",
        r.body
    );
    for q in ["without_stores=true&reward_id=R1", "reward_id=R1"] {
        let r = care(s, &f.t.token, &format!("{base}?{q}"));
        assert_eq!(
            r.json["data"]["vouchers"][0]["reward"]["store_list"],
            json!([]),
            "{q}"
        );
    }
    // The purchase route; its customer_id is the voucher's.
    let r = care(s, &f.t.token, &format!("purchases/{}/vouchers", f.purchase));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["data"]["total_items"], json!(1));
    let d = &r.json["data"]["vouchers"][0];
    assert_eq!(d["voucher_id"], f.d["id"]);
    assert_eq!(d["customer_id"], json!(f.customer));
}

#[test]
fn carecloud_sorts_and_pages() {
    let s = server();
    let f = shop();
    let base = format!("customers/{}/vouchers", f.customer);
    let ids = |q: &str| care_ids(s, &f.t.token, &format!("{base}?{q}"));
    let all = [&f.a, &f.b, &f.c, &f.d, &f.e];
    assert_eq!(ids("sort_field=code"), ids_of(&all));
    assert_eq!(
        ids("sort_field=code&sort_direction=DESC"),
        ids_of(&[&f.e, &f.d, &f.c, &f.b, &f.a])
    );
    // Values: 1.00, 5.00, 12.5, 30.00, 80.00 (a percentage sorts by its number).
    assert_eq!(
        ids("sort_field=value&sort_direction=ASC"),
        ids_of(&[&f.e, &f.b, &f.c, &f.a, &f.d])
    );
    // States: 0 cancelled (d), 1 active (a, b, e by code), 2 inactive (c).
    assert_eq!(ids("sort_field=state")[0], id_of(&f.d["id"]));
    assert_eq!(
        ids("sort_field=state&sort_direction=DESC")[0],
        id_of(&f.c["id"])
    );
    assert_eq!(
        ids("sort_field=note&sort_direction=DESC")[..2],
        ids_of(&[&f.b, &f.a])
    );
    // Reward groups: the discounts (4: b, c) before the gift cards (5).
    let by_group: BTreeSet<String> = ids("sort_field=reward_group")[..2]
        .iter()
        .cloned()
        .collect();
    assert_eq!(by_group, set_of(&[&f.b, &f.c]));
    // Newest first by default; created_at ascending is the reverse.
    let newest = ids("");
    let mut oldest = ids("sort_field=created_at");
    oldest.reverse();
    assert_eq!(newest, oldest);
    for field in [
        "voucher_id",
        "customer_id",
        "store_id",
        "applied_date",
        "valid_from",
        "valid_to",
        "reward",
        "last_change",
    ] {
        assert_eq!(ids(&format!("sort_field={field}")).len(), 5, "{field}");
    }
    // count and offset page through the same order; count has no maximum.
    assert_eq!(ids("sort_field=code&count=2"), ids_of(&[&f.a, &f.b]));
    assert_eq!(
        ids("sort_field=code&count=2&offset=3"),
        ids_of(&[&f.d, &f.e])
    );
    assert_eq!(ids("sort_field=code&count=100000"), ids_of(&all));
    let r = care(
        s,
        &f.t.token,
        &format!("{base}?sort_field=code&count=2&offset=10"),
    );
    assert_eq!(r.json["data"]["vouchers"], json!([]));
    assert_eq!(r.json["data"]["total_items"], json!(5));
}

#[test]
fn carecloud_bad_parameters_are_400_in_the_vendor_error_body() {
    let s = server();
    let f = shop();
    for (q, param) in [
        ("sort_field=amount", "sort_field"),
        ("sort_field=created_date", "sort_field"),
        ("sort_direction=desc", "sort_direction"),
        ("count=0", "count"),
        ("count=abc", "count"),
        ("offset=-3", "offset"),
        ("is_valid=maybe", "is_valid"),
        ("is_applied=2", "is_applied"),
        ("without_stores=no", "without_stores"),
        ("validity=true", "validity"),
        ("skip_stores=false", "skip_stores"),
        ("colour=red", "colour"),
        ("count=1&count=2", "count"),
    ] {
        let r = care(
            s,
            &f.t.token,
            &format!("customers/{}/vouchers?{q}", f.customer),
        );
        assert_care_invalid(&r, param);
    }
    let r = care(
        s,
        &f.t.token,
        &format!("customers/{}/vouchers?count=0&is_valid=x", f.customer),
    );
    let error = &r.json["error"];
    assert_eq!(error["type"], json!("about:blank"), "{}", r.body);
    for member in ["exception", "title", "detail"] {
        assert!(error[member].is_string(), "{member}: {}", r.body);
    }
    assert_eq!(
        error["error_data"]["invalid_params"],
        json!([
            {"name": "count", "reason": "not_allowed_value", "value": "0",
             "message": "must be at least 1"},
            {"name": "is_valid", "reason": "invalid_value_format", "value": "x",
             "message": "must be true or false"},
        ])
    );
    // The purchase operation takes only paging and sorting.
    for q in [
        "code=ABCD",
        "store_id=S1",
        "is_valid=true",
        "is_applied=false",
        "without_stores=false",
        "reward_id=R1",
    ] {
        let r = care(
            s,
            &f.t.token,
            &format!("purchases/{}/vouchers?{q}", f.purchase),
        );
        assert_care_invalid(&r, q.split('=').next().unwrap());
    }
    let path = format!("{CARE}/customers/x/vouchers");
    let r = s.call("GET", &path, None, None);
    assert_eq!(r.status, 401);
    assert_eq!(r.content_type(), "application/json");
    assert!(r.json["error"]["detail"].is_string(), "{}", r.body);
    let r = s.call("POST", &path, Some(&f.t.token), Some(&json!({})));
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    assert_eq!(r.json["error"]["error_data"]["http_method"], json!("POST"));
    let r = s.get(&format!("{CARE}/customers/x/rewards"), &f.t.token);
    assert_eq!(r.status, 404);
    assert!(r.json["error"]["title"].is_string(), "{}", r.body);
    let reader = s.tenant(&["charges:read"]);
    let r = s.get(&path, &reader.token);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.json["error"]["exception"].is_string(), "{}", r.body);
}

#[test]
fn the_old_carecloud_v1_routes_are_gone() {
    let s = server();
    let f = shop();
    for path in [
        format!("/carecloud/v1/customers/{}/vouchers", f.customer),
        format!("/carecloud/v1/purchases/{}/vouchers", f.purchase),
    ] {
        assert_problem(&s.get(&path, &f.t.token), 404, "not_found");
    }
}

#[test]
fn tenancy_holds_in_both_dialects() {
    let s = server();
    let f = shop();
    let stranger = s.tenant(CASHIER);
    // Another group holds a voucher for the same customer id (made in shop()); neither sees it.
    let theirs = care_ids(
        s,
        &stranger.token,
        &format!("customers/{}/vouchers", f.customer),
    );
    assert_eq!(theirs.len(), 0, "a fresh group sees nothing");
    let code = f.b["code"].as_str().unwrap();
    let r = s.get(&format!("/pos/v1/vouchers/{code}"), &stranger.token);
    assert_problem(&r, 404, "not_found");
    let r = s.call(
        "PUT",
        &format!("/pos/v1/vouchers/{code}"),
        Some(&stranger.token),
        Some(&pos_seed("x", true)),
    );
    assert_problem(&r, 404, "not_found");
    let r = s.delete(&format!("/pos/v1/vouchers/{code}"), &stranger.token);
    assert_problem(&r, 404, "not_found");
    let r = s.get("/pos/v1/vouchers", &stranger.token);
    assert_eq!(r.json["total"], json!(0), "{}", r.body);
    assert_eq!(r.json["result"], json!([]));
    // The owner sees its own.
    let r = s.get(&format!("/pos/v1/vouchers/{code}"), &f.t.token);
    assert_eq!(r.status, 200, "{}", r.body);
}

fn pos_seed(label: &str, enabled: bool) -> Value {
    json!({
        "customer_id": null,
        "discount": {"type": "percentage", "value": 12.5},
        "enabled": enabled,
        "label": label,
        "product_id": null,
        "valid_until": "2031-08-24",
    })
}

#[test]
fn pos_create_get_put_delete() {
    let s = server();
    let t = s.tenant(CASHIER);
    let r = s.post(
        "/pos/v1/vouchers",
        &t.token,
        &json!({
            "customer_id": "160c0c4b-9966-4dc1-a916-8407eb10d74e",
            "discount": {"type": "money", "value": 12.5},
            "label": "Winter discount voucher",
            "product_id": null,
            "valid_until": "2031-08-24",
        }),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let v = &r.json;
    let keys: BTreeSet<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let want: BTreeSet<&str> = [
        "code",
        "created_at",
        "customer_id",
        "discount",
        "enabled",
        "label",
        "product_id",
        "updated_at",
        "used_at",
        "valid_until",
    ]
    .into_iter()
    .collect();
    assert_eq!(keys, want, "{v}");
    assert_eq!(
        v["discount"].to_string(),
        r#"{"type":"money","value":12.5}"#
    );
    assert!(v["discount"]["value"].is_number());
    assert_eq!(v["enabled"], json!(true));
    assert_eq!(v["valid_until"], json!("2031-08-24"));
    assert_eq!(v["used_at"], Value::Null);
    assert_eq!(v["product_id"], Value::Null);
    let code = v["code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 8);
    assert!(code.chars().all(|c| CODE_ALPHABET.contains(c)), "{code}");
    assert_eq!(
        r.header("location"),
        Some(format!("/pos/v1/vouchers/{code}").as_str())
    );

    // GET by code, written the way a cashier might type it.
    let typed = format!("{}-{}", code[..4].to_lowercase(), &code[4..]);
    let got = s.get(&format!("/pos/v1/vouchers/{typed}"), &t.token);
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.json, r.json);

    // PUT replaces every field; enabled=false disables.
    let mut seed = pos_seed("Spring", false);
    seed["customer_id"] = json!("0d012afa-f885-4e65-aeca-37e27701e2d1");
    seed["code"] = json!(code.clone());
    seed["created_at"] = v["created_at"].clone();
    let put = s.call(
        "PUT",
        &format!("/pos/v1/vouchers/{code}"),
        Some(&t.token),
        Some(&seed),
    );
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.json["label"], json!("Spring"));
    assert_eq!(put.json["enabled"], json!(false));
    assert_eq!(
        put.json["customer_id"],
        json!("0d012afa-f885-4e65-aeca-37e27701e2d1")
    );
    assert_eq!(
        put.json["discount"].to_string(),
        r#"{"type":"percentage","value":12.5}"#
    );
    assert_eq!(put.json["created_at"], v["created_at"]);

    // PUT needs enabled; a different code in the body is refused.
    let mut partial = pos_seed("x", true);
    partial.as_object_mut().unwrap().remove("enabled");
    let r = s.call(
        "PUT",
        &format!("/pos/v1/vouchers/{code}"),
        Some(&t.token),
        Some(&partial),
    );
    assert_invalid_field(&r, "enabled");
    let mut other = pos_seed("x", true);
    other["code"] = json!("ZZZZ2222");
    let r = s.call(
        "PUT",
        &format!("/pos/v1/vouchers/{code}"),
        Some(&t.token),
        Some(&other),
    );
    assert_invalid_field(&r, "code");

    // DELETE, then it is gone.
    let r = s.delete(&format!("/pos/v1/vouchers/{code}"), &t.token);
    assert_eq!(r.status, 204, "{}", r.body);
    let r = s.get(&format!("/pos/v1/vouchers/{code}"), &t.token);
    assert_problem(&r, 404, "not_found");
}

#[test]
fn pos_required_nullable_fields_must_be_present() {
    let s = server();
    let t = s.tenant(CASHIER);
    let full = pos_seed("x", true);
    for field in [
        "customer_id",
        "product_id",
        "label",
        "valid_until",
        "discount",
    ] {
        let mut body = full.clone();
        body.as_object_mut().unwrap().remove(field);
        let r = s.post("/pos/v1/vouchers", &t.token, &body);
        assert_invalid_field(&r, field);
    }
    let mut body = full.clone();
    body["discount"]["value"] = json!("12.5");
    assert_invalid_field(
        &s.post("/pos/v1/vouchers", &t.token, &body),
        "discount.value",
    );
    let mut body = full.clone();
    body["discount"] = json!({"type": "percentage", "value": 120});
    assert_invalid_field(
        &s.post("/pos/v1/vouchers", &t.token, &body),
        "discount.value",
    );
    let mut body = full.clone();
    body["valid_until"] = Value::Null;
    assert_invalid_field(&s.post("/pos/v1/vouchers", &t.token, &body), "valid_until");
    let mut body = full.clone();
    body["enabled"] = json!("yes");
    assert_invalid_field(&s.post("/pos/v1/vouchers", &t.token, &body), "enabled");
    let mut body = full.clone();
    body["colour"] = json!("red");
    assert_invalid_field(&s.post("/pos/v1/vouchers", &t.token, &body), "colour");
    // The POS system takes no code on create (issue 17): one sent is an unknown field.
    for code in [json!("ab"), json!(format!("{}P", code_stem()))] {
        let mut body = full.clone();
        body["code"] = code;
        assert_invalid_field(&s.post("/pos/v1/vouchers", &t.token, &body), "code");
    }
    // Customer and product are uuids (either case) or null.
    for (field, id) in [("customer_id", "C-1"), ("product_id", "P-1")] {
        let mut body = full.clone();
        body[field] = json!(id);
        assert_invalid_field(&s.post("/pos/v1/vouchers", &t.token, &body), field);
    }
    let mut body = full.clone();
    body["product_id"] = json!("0D012AFA-F885-4E65-AECA-37E27701E2D1");
    let r = s.post("/pos/v1/vouchers", &t.token, &body);
    assert_eq!(r.status, 201, "{}", r.body);
    // A discount of 0 is allowed, a percentage over 100 is not.
    for (kind, value, ok) in [
        ("money", json!(0), true),
        ("percentage", json!(0), true),
        ("percentage", json!(100), true),
        ("percentage", json!(100.01), false),
        ("money", json!(-1), false),
    ] {
        let mut body = full.clone();
        body["discount"] = json!({"type": kind, "value": value});
        let r = s.post("/pos/v1/vouchers", &t.token, &body);
        if ok {
            assert_eq!(r.status, 201, "{kind} {value}: {}", r.body);
            assert_eq!(r.json["discount"]["value"].as_f64(), value.as_f64());
        } else {
            assert_invalid_field(&r, "discount.value");
        }
    }
    // Nothing but problem+json for a body that is not JSON.
    let r = s.send(
        "POST",
        "/pos/v1/vouchers",
        &[("Authorization", &format!("Bearer {}", t.token))],
        Some(("application/json", b"{nope")),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.content_type(), "application/problem+json");
}

#[test]
fn pos_list_pages_discount_vouchers_only() {
    let s = server();
    let t = s.tenant(CASHIER);
    s.create_voucher(&t.token, &json!({"amount": "25.00"}));
    let mut made = Vec::new();
    for i in 0..3 {
        let r = s.post(
            "/pos/v1/vouchers",
            &t.token,
            &pos_seed(&format!("L{i}"), true),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        made.push(r.json["code"].as_str().unwrap().to_string());
    }
    let r = s.get("/pos/v1/vouchers", &t.token);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["query"], json!({"limit": 25, "offset": 0}));
    assert_eq!(
        r.json["total"],
        json!(3),
        "the gift card is not a POS voucher"
    );
    let codes: Vec<&str> = r.json["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["code"].as_str().unwrap())
        .collect();
    let newest_first: Vec<&str> = made.iter().rev().map(String::as_str).collect();
    assert_eq!(codes, newest_first);
    let r = s.get("/pos/v1/vouchers?limit=1&offset=1", &t.token);
    assert_eq!(r.json["query"], json!({"limit": 1, "offset": 1}));
    assert_eq!(r.json["result"][0]["code"], json!(made[1]));
    assert_eq!(r.json["total"], json!(3));
    // limit 0 is a count without vouchers.
    let r = s.get("/pos/v1/vouchers?limit=0", &t.token);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["query"], json!({"limit": 0, "offset": 0}));
    assert_eq!(r.json["result"], json!([]));
    assert_eq!(r.json["total"], json!(3));
    for (q, param) in [
        ("limit=-1", "limit"),
        ("limit=1001", "limit"),
        ("offset=x", "offset"),
        ("page=2", "page"),
        ("customer_id=C-1", "customer_id"),
        ("used=maybe", "used"),
    ] {
        assert_invalid_param(&s.get(&format!("/pos/v1/vouchers?{q}"), &t.token), param);
    }
    // A gift card is not found by code in the POS dialect.
    let card = s.create_voucher(&t.token, &json!({"amount": "5.00"}));
    let r = s.get(
        &format!("/pos/v1/vouchers/{}", card["code"].as_str().unwrap()),
        &t.token,
    );
    assert_problem(&r, 404, "not_found");
}

#[test]
fn a_used_pos_voucher_keeps_its_discount_and_cannot_be_deleted() {
    let s = server();
    let t = s.tenant(CASHIER);
    let r = s.post("/pos/v1/vouchers", &t.token, &pos_seed("once", true));
    let code = r.json["code"].as_str().unwrap().to_string();
    let native = s.list(&t.token, &format!("filter[code]={code}"));
    let id = id_of(&native.json["data"][0]["id"]);
    // Unused: the discount may change, and it may be nothing.
    let mut seed = pos_seed("once", true);
    seed["discount"] = json!({"type": "money", "value": 0});
    let r = s.call(
        "PUT",
        &format!("/pos/v1/vouchers/{code}"),
        Some(&t.token),
        Some(&seed),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    seed["discount"] = json!({"type": "money", "value": 3});
    let r = s.call(
        "PUT",
        &format!("/pos/v1/vouchers/{code}"),
        Some(&t.token),
        Some(&seed),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json["discount"].to_string(),
        r#"{"type":"money","value":3}"#
    );
    let r = s.post(
        &format!("/v1/vouchers/{id}/charges"),
        &t.token,
        &json!({"type": "use", "ticket_total": "10.00"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json["amount"], json!("3.00"));
    let got = s.get(&format!("/pos/v1/vouchers/{code}"), &t.token);
    assert!(got.json["used_at"].is_string(), "{}", got.body);
    // Used: the POS system forbids (403, issue 17) any change, the same discount included,
    // and the removal; nothing changes.
    for (discount, label) in [(4, "once"), (3, "spent")] {
        seed["discount"] = json!({"type": "money", "value": discount});
        seed["label"] = json!(label);
        let r = s.call(
            "PUT",
            &format!("/pos/v1/vouchers/{code}"),
            Some(&t.token),
            Some(&seed),
        );
        assert_problem(&r, 403, "voucher_used");
    }
    let r = s.delete(&format!("/pos/v1/vouchers/{code}"), &t.token);
    assert_problem(&r, 403, "not_deletable");
    let after = s.get(&format!("/pos/v1/vouchers/{code}"), &t.token);
    assert_eq!(after.json, got.json);
}

#[test]
fn a_partly_used_native_discount_is_forbidden_to_change_or_remove_in_the_pos_dialect() {
    let s = server();
    let t = s.tenant(CASHIER);
    let v = s.create_voucher(
        &t.token,
        &json!({"discount": {"type": "money", "value": "2.00"}, "max_uses": 3,
                "valid_until": "2099-01-01"}),
    );
    let r = s.post(
        &format!("/v1/vouchers/{}/charges", id_of(&v["id"])),
        &t.token,
        &json!({"type": "use", "ticket_total": "10.00"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let code = v["code"].as_str().unwrap();
    let got = s.get(&format!("/pos/v1/vouchers/{code}"), &t.token);
    assert_eq!(
        got.json["used_at"],
        Value::Null,
        "uses are left: {}",
        got.body
    );
    let mut seed = pos_seed("more", true);
    seed["discount"] = json!({"type": "money", "value": 5});
    let r = s.call(
        "PUT",
        &format!("/pos/v1/vouchers/{code}"),
        Some(&t.token),
        Some(&seed),
    );
    assert_problem(&r, 403, "voucher_used");
    let r = s.delete(&format!("/pos/v1/vouchers/{code}"), &t.token);
    assert_problem(&r, 403, "not_deletable");
}

#[test]
fn pos_lists_filter_by_customer_and_use_and_never_null_valid_until() {
    let s = server();
    let t = s.tenant(CASHIER);
    let customer = "160c0c4b-9966-4dc1-a916-8407eb10d74e";
    let mut seed = pos_seed("mine", true);
    seed["customer_id"] = json!(customer);
    let mine: Vec<String> = (0..2)
        .map(|_| {
            let r = s.post("/pos/v1/vouchers", &t.token, &seed);
            assert_eq!(r.status, 201, "{}", r.body);
            id_of(&r.json["code"])
        })
        .collect();
    let other = s.post("/pos/v1/vouchers", &t.token, &pos_seed("theirs", true));
    let other = id_of(&other.json["code"]);
    let native = s.list(&t.token, &format!("filter[code]={}", mine[0]));
    let r = s.post(
        &format!(
            "/v1/vouchers/{}/charges",
            id_of(&native.json["data"][0]["id"])
        ),
        &t.token,
        &json!({"type": "use", "ticket_total": "10.00"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    // Made natively without an end date: the POS shape still has one.
    let endless = s.create_voucher(
        &t.token,
        &json!({"discount": {"type": "percentage", "value": "5"}}),
    );
    let codes = |q: &str| -> BTreeSet<String> {
        let r = s.get(&format!("/pos/v1/vouchers?{q}"), &t.token);
        assert_eq!(r.status, 200, "{q}: {}", r.body);
        let result = r.json["result"].as_array().unwrap();
        assert_eq!(r.json["total"].as_u64(), Some(result.len() as u64), "{q}");
        for v in result {
            assert!(v["valid_until"].is_string(), "{v}");
        }
        result.iter().map(|v| id_of(&v["code"])).collect()
    };
    let endless_code = id_of(&endless["code"]);
    let set_of_codes =
        |cs: &[&String]| -> BTreeSet<String> { cs.iter().map(|c| c.to_string()).collect() };
    assert_eq!(
        codes(&format!("customer_id={customer}")),
        set_of_codes(&[&mine[0], &mine[1]])
    );
    assert_eq!(
        codes(&format!("customer_id={}", customer.to_uppercase())),
        BTreeSet::new(),
        "ids are compared as stored"
    );
    assert_eq!(codes("used=true"), set_of_codes(&[&mine[0]]));
    assert_eq!(
        codes("used=false"),
        set_of_codes(&[&mine[1], &other, &endless_code])
    );
    assert_eq!(
        codes(&format!("customer_id={customer}&used=false")),
        set_of_codes(&[&mine[1]])
    );
    let r = s.get(&format!("/pos/v1/vouchers/{endless_code}"), &t.token);
    assert_eq!(r.json["valid_until"], json!("9999-12-31"), "{}", r.body);
}

#[test]
fn a_voucher_made_in_one_dialect_reads_the_same_in_the_others() {
    let s = server();
    let t = s.tenant(CASHIER);
    let customer = "2f1e5c2a-0b6d-4e8a-9c11-3d5e7f9a1b2c";
    let product = "0d012afa-f885-4e65-aeca-37e27701e2d1";
    // Made in the POS shape …
    let r = s.post(
        "/pos/v1/vouchers",
        &t.token,
        &json!({"customer_id": customer, "discount": {"type": "money", "value": 7.5},
                "label": "Till", "product_id": product, "valid_until": "2030-12-31"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let code = r.json["code"].as_str().unwrap().to_string();
    // … read natively …
    let native = s.list(&t.token, &format!("filter[code]={code}"));
    let n = &native.json["data"][0];
    assert_eq!(
        n["discount"],
        json!({"type": "money", "value": "7.50"}),
        "{n}"
    );
    assert_eq!(n["label"], json!("Till"));
    assert_eq!(n["customer_id"], json!(customer));
    assert_eq!(n["product_id"], json!(product));
    assert_eq!(n["status"], json!("active"));
    assert_eq!(n["max_uses"], json!(1));
    assert!(n["valid_until"]
        .as_str()
        .unwrap()
        .starts_with("2030-12-31T23:59:59"));
    // … and in the loyalty shape.
    let c = care(s, &t.token, &format!("customers/{customer}/vouchers"));
    let cv = &c.json["data"]["vouchers"][0];
    assert_eq!(cv["voucher_id"], n["id"]);
    assert_eq!(cv["code"], json!(code));
    assert_eq!(cv["value"].to_string(), "7.5");
    assert_eq!(cv["state"], json!(1));
    assert!(cv["valid_to"]
        .as_str()
        .unwrap()
        .starts_with("2030-12-31 23:59:59"));

    // Made natively: the POS shape shows the same voucher; a native change shows in both.
    let made = s.create_voucher(
        &t.token,
        &json!({"discount": {"type": "percentage", "value": "15"}, "customer_id": customer,
                "label": "Native", "valid_until": "2031-01-15"}),
    );
    let ncode = made["code"].as_str().unwrap();
    let p = s.get(&format!("/pos/v1/vouchers/{ncode}"), &t.token);
    assert_eq!(p.status, 200, "{}", p.body);
    assert_eq!(
        p.json["discount"].to_string(),
        r#"{"type":"percentage","value":15}"#
    );
    assert_eq!(p.json["label"], json!("Native"));
    assert_eq!(p.json["valid_until"], json!("2031-01-15"));
    assert_eq!(p.json["customer_id"], json!(customer));
    let r = s.patch(
        &format!("/v1/vouchers/{}", id_of(&made["id"])),
        &t.token,
        &json!({"status": "inactive"}),
    );
    assert_eq!(r.status, 200);
    let p = s.get(&format!("/pos/v1/vouchers/{ncode}"), &t.token);
    assert_eq!(p.json["enabled"], json!(false));
    let c = care_ids(
        s,
        &t.token,
        &format!("customers/{customer}/vouchers?sort_field=state&sort_direction=DESC"),
    );
    assert_eq!(
        c[0],
        id_of(&made["id"]),
        "inactive (2) sorts last ascending"
    );
    // A POS PUT that enables shows natively as active.
    let put = s.call(
        "PUT",
        &format!("/pos/v1/vouchers/{ncode}"),
        Some(&t.token),
        Some(
            &json!({"customer_id": customer, "discount": {"type": "percentage", "value": 15},
                     "label": "Native", "product_id": null, "valid_until": "2031-01-15",
                     "enabled": true}),
        ),
    );
    assert_eq!(put.status, 200, "{}", put.body);
    let n = s.get(&format!("/v1/vouchers/{}", id_of(&made["id"])), &t.token);
    assert_eq!(n.json["status"], json!("active"));
}

#[test]
fn a_carecloud_count_past_one_page_is_streamed_page_by_page_in_the_same_order() {
    let s = TestServer::start();
    let tenant = s.tenant(RW);
    let n = 1234;
    let mut csv = String::from("amount,customer_id\r\n");
    for i in 0..n {
        csv.push_str(&format!("{}.00,big-customer\r\n", i % 50 + 1));
    }
    let r = s.send(
        "POST",
        "/v1/vouchers/import",
        &[("Authorization", &format!("Bearer {}", tenant.token))],
        Some(("text/csv", csv.as_bytes())),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let path = "customers/big-customer/vouchers?sort_field=value&sort_direction=DESC";
    let mut paged = Vec::new();
    for offset in (0..n).step_by(500) {
        paged.extend(care_ids(
            &s,
            &tenant.token,
            &format!("{path}&count=500&offset={offset}"),
        ));
    }
    assert_eq!(paged.len(), n);
    assert_eq!(paged.iter().collect::<BTreeSet<_>>().len(), n, "ids repeat");

    let all = care(&s, &tenant.token, &format!("{path}&count=99999999"));
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(all.header("transfer-encoding"), Some("chunked"));
    assert_eq!(all.header("content-length"), None);
    assert_eq!(all.content_type(), "application/json");
    assert_eq!(all.json["data"]["total_items"], n, "{}", &all.body[..200]);
    let ids: Vec<String> = all.json["data"]["vouchers"]
        .as_array()
        .expect("data.vouchers")
        .iter()
        .map(|v| id_of(&v["voucher_id"]))
        .collect();
    assert_eq!(ids, paged, "the streamed list is the paged one, in order");

    let middle = care_ids(&s, &tenant.token, &format!("{path}&count=600&offset=700"));
    assert_eq!(middle, paged[700..1234]);
    let exact = care_ids(&s, &tenant.token, &format!("{path}&count=1000&offset=100"));
    assert_eq!(exact, paged[100..1100]);
    let past = care(&s, &tenant.token, &format!("{path}&count=501&offset=5000"));
    assert_eq!(past.status, 200, "{}", past.body);
    assert_eq!(past.json["data"]["vouchers"], json!([]));
    assert_eq!(past.json["data"]["total_items"], n);
}
