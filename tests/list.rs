//! The list query (docs/api.md) on `GET /v1/vouchers`: every filter narrowing to an exact id set,
//! both spellings of `filter[status]`, sorting by several fields, `meta`/`links` on first,
//! middle, last and past-the-end pages, and a 400 naming each malformed or unknown parameter.
//! Issue 2 acceptance item 5 (tenancy filters live in `auth.rs`).

use crate::common::*;
use serde_json::{json, Value};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::Duration;

fn server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(TestServer::start)
}

/// A client whose tests keep apart by a unique `batch` each.
fn scratch() -> &'static Tenant {
    static T: OnceLock<Tenant> = OnceLock::new();
    T.get_or_init(|| server().tenant(RW))
}

/// A group holding exactly four vouchers that differ in every filtered attribute.
struct Fixture {
    t: Tenant,
    a: Value,
    b: Value,
    c: Value,
    d: Value,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let s = server();
        let t = s.tenant(RW);
        let stem = code_stem();
        let a = s.create_voucher(
            &t.token,
            &json!({"code": format!("{stem}A"), "sku": "S1", "type": "digital", "amount": "10.00",
                    "status": "active", "taxable": true, "tax_rate": "19", "customer_id": "c1",
                    "purchase_id": "p1", "store_id": "s1", "reward_id": "r1",
                    "valid_until": "2031-01-01T00:00:00+00:00", "batch": "fx-1"}),
        );
        let b = s.create_voucher(
            &t.token,
            &json!({"code": format!("{stem}B"), "sku": "S2", "type": "print", "amount": "20.00",
                    "status": "inactive", "taxable": false, "tax_rate": "7", "customer_id": "c2",
                    "purchase_id": "p2", "store_id": "s2", "reward_id": "r2",
                    "valid_until": "2032-01-01T00:00:00+00:00", "batch": "fx-1"}),
        );
        let c = s.create_voucher(
            &t.token,
            &json!({"code": format!("{stem}C"), "sku": "S1", "type": "print",
                    "discount": {"type": "money", "value": "5.00"},
                    "status": "cancelled", "taxable": true, "tax_rate": "7", "customer_id": "c1",
                    "purchase_id": "p2", "store_id": "s1", "reward_id": "r2",
                    "valid_until": "2033-01-01T00:00:00+00:00", "batch": "fx-2"}),
        );
        let d = s.create_voucher(
            &t.token,
            &json!({"code": format!("{stem}D"), "type": "digital", "amount": "10.00",
                    "status": "active", "taxable": false, "tax_rate": "19"}),
        );
        Fixture { t, a, b, c, d }
    })
}

impl Fixture {
    fn check(&self, query: &str, expected: &[&Value]) {
        let got = server().list_set(&self.t.token, query);
        let want = ids(expected);
        let name = |id: &String| {
            [
                ("A", &self.a),
                ("B", &self.b),
                ("C", &self.c),
                ("D", &self.d),
            ]
            .iter()
            .find(|(_, v)| v["id"] == json!(id))
            .map(|(n, _)| n.to_string())
            .unwrap_or_else(|| id.clone())
        };
        assert_eq!(
            got.iter().map(name).collect::<Vec<_>>(),
            want.iter().map(name).collect::<Vec<_>>(),
            "GET /v1/vouchers?{query}"
        );
    }
}

fn codes(s: &TestServer, token: &str, query: &str) -> Vec<String> {
    let r = s.list(token, query);
    assert_eq!(r.status, 200, "{query}: {}", r.body);
    r.json["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|v| v["code"].as_str().expect("code").to_string())
        .collect()
}

fn with_suffixes(stem: &str, suffixes: &str) -> Vec<String> {
    suffixes.chars().map(|c| format!("{stem}{c}")).collect()
}

fn render_epoch(t: i64) -> String {
    let (y, mo, d) = civil_from_days(t.div_euclid(86_400));
    let rem = t.rem_euclid(86_400);
    Ts {
        y,
        mo,
        d,
        h: (rem / 3600) as u32,
        mi: (rem % 3600 / 60) as u32,
        s: (rem % 60) as u32,
        off: "+00:00".into(),
    }
    .render()
}

// ---- filters --------------------------------------------------------------------------------

#[test]
fn without_filters_the_group_lists_every_voucher_of_every_status() {
    let f = fixture();
    f.check("", &[&f.a, &f.b, &f.c, &f.d]);
    let r = server().list(&f.t.token, "");
    assert_eq!(r.json["meta"]["total"], 4);
}

#[test]
fn filter_sku_type_and_amount_narrow_exactly() {
    let f = fixture();
    f.check("filter[sku]=S1", &[&f.a, &f.c]);
    f.check("filter[sku]=S2", &[&f.b]);
    f.check("filter[sku]=S9", &[]);
    f.check("filter[type]=print", &[&f.b, &f.c]);
    f.check("filter[type]=digital", &[&f.a, &f.d]);
    f.check("filter[amount]=10.00", &[&f.a, &f.d]);
    f.check("filter[amount]=10", &[&f.a, &f.d]);
    f.check("filter[amount]=20.00", &[&f.b]);
    f.check("filter[amount]=5.00", &[]);
}

#[test]
fn filter_taxable_tax_rate_and_remaining_amount_narrow_exactly() {
    let f = fixture();
    f.check("filter[taxable]=true", &[&f.a, &f.c]);
    f.check("filter[taxable]=false", &[&f.b, &f.d]);
    f.check("filter[tax_rate]=19", &[&f.a, &f.d]);
    f.check("filter[tax_rate]=7", &[&f.b, &f.c]);
    f.check("filter[remaining_amount]=true", &[&f.a, &f.b, &f.d]);
    f.check("filter[remaining_amount]=false", &[&f.c]);
}

#[test]
fn filter_customer_purchase_store_and_reward_ids_narrow_exactly() {
    let f = fixture();
    f.check("filter[customer_id]=c1", &[&f.a, &f.c]);
    f.check("filter[customer_id]=c2", &[&f.b]);
    f.check("filter[purchase_id]=p1", &[&f.a]);
    f.check("filter[purchase_id]=p2", &[&f.b, &f.c]);
    f.check("filter[store_id]=s1", &[&f.a, &f.c]);
    f.check("filter[store_id]=s2", &[&f.b]);
    f.check("filter[reward_id]=r1", &[&f.a]);
    f.check("filter[reward_id]=r2", &[&f.b, &f.c]);
    f.check("filter[customer_id]=nobody", &[]);
}

#[test]
fn filter_status_takes_repeated_brackets_or_a_comma_list() {
    let f = fixture();
    f.check("filter[status]=active", &[&f.a, &f.d]);
    f.check("filter[status]=cancelled", &[&f.c]);
    f.check("filter[status][]=inactive", &[&f.b]);
    f.check(
        "filter[status][]=active&filter[status][]=cancelled",
        &[&f.a, &f.c, &f.d],
    );
    f.check("filter[status]=inactive,cancelled", &[&f.b, &f.c]);
    f.check("filter[status]=inactive%2Ccancelled", &[&f.b, &f.c]);
    f.check(
        "filter[status]=active,inactive,cancelled",
        &[&f.a, &f.b, &f.c, &f.d],
    );
}

#[test]
fn filter_valid_until_range_is_inclusive_and_skips_vouchers_without_one() {
    let f = fixture();
    let at = |s: &str| enc(s);
    f.check(
        &format!(
            "filter[valid_until_from]={}",
            at("2032-01-01T00:00:00+00:00")
        ),
        &[&f.b, &f.c],
    );
    f.check(
        &format!("filter[valid_until_to]={}", at("2032-01-01T00:00:00+00:00")),
        &[&f.a, &f.b],
    );
    f.check(
        &format!(
            "filter[valid_until_from]={}&filter[valid_until_to]={}",
            at("2031-06-01T00:00:00Z"),
            at("2032-06-01T00:00:00Z")
        ),
        &[&f.b],
    );
    // The same instant written at another offset.
    f.check(
        &format!(
            "filter[valid_until_from]={}",
            at("2032-01-01T02:00:00+02:00")
        ),
        &[&f.b, &f.c],
    );
    f.check(
        &format!(
            "filter[valid_until_from]={}",
            at("2032-01-01T00:00:01+00:00")
        ),
        &[&f.c],
    );
}

#[test]
fn filter_code_is_normalised_and_filter_id_is_exact() {
    let f = fixture();
    let code = f.a["code"].as_str().expect("code");
    f.check(&format!("filter[code]={code}"), &[&f.a]);
    let messy = format!(
        "{}-{}%20",
        code[..3].to_lowercase(),
        code[3..].to_lowercase()
    );
    f.check(&format!("filter[code]={messy}"), &[&f.a]);
    f.check(&format!("filter[id]={}", id_of(&f.b["id"])), &[&f.b]);
    f.check("filter[id]=ZZZZZZZZZZZZZZZZ", &[]);
}

#[test]
fn filter_batch_narrows_exactly() {
    let f = fixture();
    f.check("filter[batch]=fx-1", &[&f.a, &f.b]);
    f.check("filter[batch]=fx-2", &[&f.c]);
    f.check("filter[batch]=fx-3", &[]);
}

#[test]
fn filters_combine_as_and() {
    let f = fixture();
    f.check("filter[type]=print&filter[status]=cancelled", &[&f.c]);
    f.check(
        "filter[sku]=S1&filter[taxable]=true&filter[amount]=10.00",
        &[&f.a],
    );
    f.check("filter[batch]=fx-1&filter[tax_rate]=19", &[&f.a]);
    f.check(
        "filter[store_id]=s1&filter[status][]=active&filter[status][]=inactive",
        &[&f.a],
    );
}

#[test]
fn percent_encoded_parameter_names_work_like_plain_ones() {
    let f = fixture();
    f.check("filter%5Bsku%5D=S1", &[&f.a, &f.c]);
    f.check(
        "filter%5Bstatus%5D%5B%5D=active&filter%5Bstatus%5D%5B%5D=cancelled",
        &[&f.a, &f.c, &f.d],
    );
    f.check("filter%5Bbatch%5D=fx%2D1", &[&f.a, &f.b]);
}

#[test]
fn filter_created_range_and_sort_by_created_at_and_updated_at() {
    let s = server();
    let t = scratch();
    let batch = unique("created");
    let by_batch = format!("filter[batch]={}", enc(&batch));
    let first = s.create_voucher(&t.token, &json!({"amount": "1.00", "batch": batch}));
    sleep(Duration::from_millis(1100));
    let second = s.create_voucher(&t.token, &json!({"amount": "1.00", "batch": batch}));
    let (a_at, b_at) = (
        first["created_at"]
            .as_str()
            .expect("created_at")
            .to_string(),
        second["created_at"]
            .as_str()
            .expect("created_at")
            .to_string(),
    );
    assert!(
        parse_ts(&a_at).epoch() < parse_ts(&b_at).epoch(),
        "{a_at} < {b_at}"
    );
    sleep(Duration::from_millis(1100));
    let one = format!("/v1/vouchers/{}", id_of(&first["id"]));
    let patched = s.patch(&one, &t.token, &json!({"label": "touched"}));
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(
        patched.json["created_at"],
        json!(a_at),
        "PATCH keeps created_at"
    );
    let touched = patched.json["updated_at"].as_str().expect("updated_at");
    assert!(
        parse_ts(touched).epoch() > parse_ts(&b_at).epoch(),
        "PATCH moves updated_at: {touched}"
    );

    let (a, b) = (id_of(&first["id"]), id_of(&second["id"]));
    let q = |extra: &str| s.list_ids(&t.token, &format!("{by_batch}&{extra}"));
    assert_eq!(
        q(&format!("filter[created_from]={}", enc(&b_at))),
        vec![b.clone()]
    );
    assert_eq!(
        q(&format!("filter[created_to]={}", enc(&a_at))),
        vec![a.clone()]
    );
    assert_eq!(
        q(&format!(
            "filter[created_from]={}&filter[created_to]={}&sort=created_at",
            enc(&a_at),
            enc(&b_at)
        )),
        vec![a.clone(), b.clone()]
    );
    let later = render_epoch(parse_ts(&b_at).epoch() + 1);
    assert!(q(&format!("filter[created_from]={}", enc(&later))).is_empty());

    assert_eq!(q("sort=created_at"), vec![a.clone(), b.clone()]);
    assert_eq!(q("sort=-created_at"), vec![b.clone(), a.clone()]);
    assert_eq!(
        s.list_ids(&t.token, &by_batch),
        vec![b.clone(), a.clone()],
        "default -created_at"
    );
    assert_eq!(q("sort=updated_at"), vec![b.clone(), a.clone()]);
    assert_eq!(q("sort=-updated_at"), vec![a, b]);
}

// ---- sort -----------------------------------------------------------------------------------

#[test]
fn sort_by_several_fields_with_minus_for_descending() {
    let s = server();
    let t = scratch();
    let batch = unique("sort");
    let stem = code_stem();
    for (suffix, amount, until) in [
        ("A", "20.00", "2031-01-04T00:00:00+00:00"),
        ("B", "10.00", "2031-01-02T00:00:00+00:00"),
        ("C", "10.00", "2031-01-03T00:00:00+00:00"),
        ("D", "30.00", "2031-01-01T00:00:00+00:00"),
    ] {
        s.create_voucher(
            &t.token,
            &json!({"code": format!("{stem}{suffix}"), "amount": amount,
                    "valid_until": until, "batch": batch}),
        );
    }
    let by_batch = format!("filter[batch]={}", enc(&batch));
    let order = |sort: &str| codes(s, &t.token, &format!("{by_batch}&{sort}"));
    assert_eq!(order("sort=code"), with_suffixes(&stem, "ABCD"));
    assert_eq!(order("sort=-code"), with_suffixes(&stem, "DCBA"));
    assert_eq!(order("sort=amount,-code"), with_suffixes(&stem, "CBAD"));
    assert_eq!(
        order("sort=amount&sort=-code"),
        with_suffixes(&stem, "CBAD"),
        "repeated sort"
    );
    assert_eq!(order("sort=-amount,code"), with_suffixes(&stem, "DABC"));
    assert_eq!(
        order("sort=remaining_amount,code"),
        with_suffixes(&stem, "BCAD")
    );
    assert_eq!(
        order("sort=-remaining_amount,-code"),
        with_suffixes(&stem, "DACB")
    );
    assert_eq!(order("sort=valid_until"), with_suffixes(&stem, "DBCA"));
    assert_eq!(order("sort=-valid_until"), with_suffixes(&stem, "ACBD"));
    assert_eq!(
        order("sort=amount,valid_until"),
        with_suffixes(&stem, "BCAD")
    );
    assert_eq!(
        order("sort=amount,-valid_until"),
        with_suffixes(&stem, "CBAD")
    );
}

// ---- pagination -----------------------------------------------------------------------------

#[test]
fn meta_and_links_are_right_on_first_middle_last_and_past_the_end_pages() {
    let s = server();
    let t = scratch();
    let batch = unique("pages");
    let stem = code_stem();
    for i in 1..=7 {
        s.create_voucher(
            &t.token,
            &json!({"code": format!("{stem}{i}"), "amount": "1.00", "batch": batch}),
        );
    }
    let base_query = format!("filter[batch]={}&sort=code&per_page=3", enc(&batch));
    let path = format!("{}/v1/vouchers", s.base);
    let link_for = |page: u64| {
        pairs(&[
            ("filter[batch]", batch.as_str()),
            ("sort", "code"),
            ("per_page", "3"),
            ("page", &page.to_string()),
        ])
    };
    let check_link = |r: &Resp, name: &str, page: Option<u64>| {
        let link = &r.json["links"][name];
        match page {
            None => assert_eq!(link, &Value::Null, "links.{name}: {}", r.body),
            Some(p) => {
                let url = link
                    .as_str()
                    .unwrap_or_else(|| panic!("links.{name} should be a URL: {}", r.body));
                let (before, params) = split_link(url);
                assert_eq!(before, path, "links.{name} is absolute: {url}");
                assert_eq!(params, link_for(p), "links.{name} keeps the query: {url}");
            }
        }
    };
    let page =
        |n: u64, want: &str, from: Value, to: Value, prev: Option<u64>, next: Option<u64>| {
            let r = s.list(&t.token, &format!("{base_query}&page={n}"));
            assert_eq!(r.status, 200, "{}", r.body);
            let got: Vec<String> = r.json["data"]
                .as_array()
                .expect("data")
                .iter()
                .map(|v| v["code"].as_str().expect("code").to_string())
                .collect();
            assert_eq!(got, with_suffixes(&stem, want), "page {n}");
            let meta = &r.json["meta"];
            assert_eq!(meta["current_page"], n, "page {n}: {}", r.body);
            assert_eq!(meta["per_page"], 3, "page {n}");
            assert_eq!(meta["from"], from, "page {n} from");
            assert_eq!(meta["to"], to, "page {n} to");
            assert_eq!(meta["last_page"], 3, "page {n}");
            assert_eq!(meta["total"], 7, "page {n}");
            assert_eq!(meta["path"], json!(path), "page {n}");
            check_link(&r, "first", Some(1));
            check_link(&r, "last", Some(3));
            check_link(&r, "prev", prev);
            check_link(&r, "next", next);
        };
    page(1, "123", json!(1), json!(3), None, Some(2));
    page(2, "456", json!(4), json!(6), Some(1), Some(3));
    page(3, "7", json!(7), json!(7), Some(2), None);
    page(4, "", Value::Null, Value::Null, Some(3), None);
}

#[test]
fn links_keep_repeated_status_filters_and_lead_to_the_right_pages() {
    let s = server();
    let t = scratch();
    let batch = unique("links");
    let stem = code_stem();
    for (suffix, status) in [
        ("A", "active"),
        ("B", "inactive"),
        ("C", "cancelled"),
        ("D", "active"),
        ("E", "inactive"),
    ] {
        s.create_voucher(
            &t.token,
            &json!({"code": format!("{stem}{suffix}"), "amount": "1.00",
                    "status": status, "batch": batch}),
        );
    }
    for statuses in [
        "filter[status][]=active&filter[status][]=inactive",
        "filter[status]=active,inactive",
    ] {
        let query = format!(
            "filter[batch]={}&{statuses}&sort=-code&per_page=2",
            enc(&batch)
        );
        let first = s.list(&t.token, &query);
        assert_eq!(first.status, 200, "{}", first.body);
        assert_eq!(first.json["meta"]["total"], 4, "{}", first.body);
        assert_eq!(first.json["meta"]["last_page"], 2);
        let got = |r: &Resp| -> Vec<String> {
            r.json["data"]
                .as_array()
                .expect("data")
                .iter()
                .map(|v| v["code"].as_str().expect("code").to_string())
                .collect()
        };
        assert_eq!(got(&first), with_suffixes(&stem, "ED"));
        let next = first.json["links"]["next"]
            .as_str()
            .expect("next link")
            .to_string();
        let second = s.get(&next, &t.token);
        assert_eq!(second.status, 200, "following {next}: {}", second.body);
        assert_eq!(got(&second), with_suffixes(&stem, "BA"), "via {next}");
        assert_eq!(second.json["meta"]["current_page"], 2);
        assert_eq!(second.json["links"]["next"], Value::Null);
        let prev = second.json["links"]["prev"]
            .as_str()
            .expect("prev link")
            .to_string();
        assert_eq!(
            got(&s.get(&prev, &t.token)),
            with_suffixes(&stem, "ED"),
            "via {prev}"
        );
        let last = first.json["links"]["last"]
            .as_str()
            .expect("last link")
            .to_string();
        assert_eq!(
            got(&s.get(&last, &t.token)),
            with_suffixes(&stem, "BA"),
            "via {last}"
        );
    }
}

#[test]
fn per_page_defaults_to_25_and_accepts_1_to_1000() {
    let f = fixture();
    let s = server();
    let r = s.list(&f.t.token, "");
    assert_eq!(r.json["meta"]["per_page"], 25, "{}", r.body);
    assert_eq!(r.json["meta"]["current_page"], 1);
    let r = s.list(&f.t.token, "per_page=1000");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["meta"]["per_page"], 1000);
    let r = s.list(&f.t.token, "per_page=1&sort=code");
    assert_eq!(r.json["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(r.json["data"][0]["id"], f.a["id"]);
    assert_eq!(r.json["meta"]["last_page"], 4);
    assert_eq!(r.json["meta"]["total"], 4);
}

#[test]
fn an_empty_result_has_null_from_to_and_no_prev_or_next() {
    let s = server();
    let t = scratch();
    let r = s.list(&t.token, &format!("filter[batch]={}", enc(&unique("none"))));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["data"], json!([]));
    let meta = &r.json["meta"];
    assert_eq!(meta["total"], 0);
    assert_eq!(meta["current_page"], 1);
    assert_eq!(meta["from"], Value::Null);
    assert_eq!(meta["to"], Value::Null);
    assert_eq!(r.json["links"]["prev"], Value::Null);
    assert_eq!(r.json["links"]["next"], Value::Null);
    assert!(r.json["links"]["first"].is_string(), "{}", r.body);
}

// ---- refusals -------------------------------------------------------------------------------

#[test]
fn every_malformed_or_unknown_list_parameter_is_400_naming_it() {
    let s = server();
    let t = scratch();
    for (query, param) in [
        ("filter[bogus]=1", "filter[bogus]"),
        ("filter[label]=x", "filter[label]"),
        ("filter[client][id]=x", "filter[client][id]"),
        ("sort=bogus", "sort"),
        ("sort=-bogus", "sort"),
        ("sort=code,label", "sort"),
        ("sort=--code", "sort"),
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=abc", "page"),
        ("page=1.5", "page"),
        ("per_page=0", "per_page"),
        ("per_page=1001", "per_page"),
        ("per_page=x", "per_page"),
        ("filter[created_from]=yesterday", "filter[created_from]"),
        (
            "filter[created_to]=2024-02-30T00:00:00Z",
            "filter[created_to]",
        ),
        (
            "filter[valid_until_from]=2024-01-01T25:00:00%2B00:00",
            "filter[valid_until_from]",
        ),
        (
            "filter[valid_until_to]=2024-13-01T00:00:00Z",
            "filter[valid_until_to]",
        ),
        ("filter[taxable]=maybe", "filter[taxable]"),
        ("filter[remaining_amount]=tru", "filter[remaining_amount]"),
        ("filter[status]=active,bogus", "filter[status]"),
        ("filter[type]=plastic", "filter[type]"),
        ("filter[amount]=ten", "filter[amount]"),
    ] {
        let r = s.list(&t.token, query);
        assert_eq!(r.status, 400, "{query} should be 400: {}", r.body);
        assert_invalid_param(&r, param);
    }
}

/// `meta.total` of the broadest lists comes from counts kept per group and status; it must
/// equal what a COUNT(*) says (`filter[created_from]` in the past matches every voucher but
/// takes the counting path) after creates, a batch, status changes, a POS voucher and deletes.
#[test]
fn kept_counts_equal_counting() {
    let s = TestServer::start();
    let t = s.tenant(CASHIER);
    let other = s.tenant(CASHIER);
    let admin = s.admin_token();
    let check = |token: &str| {
        for status in [
            "",
            "&filter[status]=active",
            "&filter[status]=inactive,cancelled",
        ] {
            let kept = s.list(token, &format!("per_page=1{status}"));
            let counted = s.list(
                token,
                &format!("per_page=1&filter[created_from]=2000-01-01{status}"),
            );
            assert_eq!(kept.status, 200, "{}", kept.body);
            assert_eq!(
                kept.json["meta"]["total"], counted.json["meta"]["total"],
                "status filter {status:?}"
            );
        }
    };
    let a = s.create_voucher(&t.token, &json!({"amount": "5.00"}));
    s.create_voucher(&t.token, &json!({"amount": "5.00", "status": "inactive"}));
    s.create_voucher(&other.token, &json!({"amount": "7.00"}));
    let r = s.post(
        "/v1/vouchers/batch",
        &t.token,
        &json!({"count": 40, "amount": "1.00", "status": "cancelled"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = s.post(
        "/pos/v1/vouchers",
        &t.token,
        &json!({"customer_id": null, "discount": {"type": "money", "value": 1},
                "label": "x", "product_id": null, "valid_until": "2030-01-01"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = s.send(
        "POST",
        "/v1/vouchers/import",
        &[("Authorization", &format!("Bearer {}", t.token))],
        Some((
            "text/csv",
            b"amount,status\r\n3.00,active\r\n4.00,inactive\r\n5.00,cancelled\r\n",
        )),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    for token in [&t.token, &other.token, &admin] {
        check(token);
    }
    let id = id_of(&a["id"]);
    let r = s.patch(
        &format!("/v1/vouchers/{id}"),
        &t.token,
        &json!({"status": "cancelled"}),
    );
    assert_eq!(r.status, 200);
    let r = s.patch(
        &format!("/v1/vouchers/{id}"),
        &t.token,
        &json!({"label": "same status"}),
    );
    assert_eq!(r.status, 200);
    let r = s.delete(&format!("/v1/vouchers/{id}"), &t.token);
    assert_eq!(r.status, 204);
    for token in [&t.token, &other.token, &admin] {
        check(token);
    }
    let kept = s.list(&t.token, "per_page=1");
    assert_eq!(kept.json["meta"]["total"], json!(45), "{}", kept.body);
}
