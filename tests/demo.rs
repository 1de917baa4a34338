//! `vouchd demo` (issue 4): the real binary fills a temporary database, the test reads the
//! credentials and the example it printed, starts `vouchd serve` on that database and checks
//! through the API that the sample shop is varied, that its ledger explains every balance, and
//! that tenancy holds; then that `demo` refuses a database that has vouchers.

use crate::common::*;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::process::{Command, Output};
use std::sync::{Arc, OnceLock};

/// What one `vouchd demo` printed.
struct Printed {
    stdout: String,
    /// `TILL_1_ID` → its value, and so on.
    vars: HashMap<String, String>,
    example_code: String,
    example_id: String,
}

impl Printed {
    fn parse(stdout: &str) -> Printed {
        let vars = stdout
            .split_whitespace()
            .filter_map(|word| word.split_once('='))
            .filter(|(k, _)| k.ends_with("_ID") || k.ends_with("_SECRET"))
            .filter(|(k, _)| {
                k.bytes()
                    .all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit())
            })
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let after = |marker: &str, end: char| -> String {
            let start = stdout
                .find(marker)
                .unwrap_or_else(|| panic!("no {marker:?} in the demo output:\n{stdout}"))
                + marker.len();
            stdout[start..].chars().take_while(|c| *c != end).collect()
        };
        Printed {
            stdout: stdout.to_string(),
            vars,
            example_code: after("filter[code]=", '\''),
            example_id: after("/v1/vouchers/", '/'),
        }
    }

    fn var(&self, name: &str) -> String {
        self.vars
            .get(name)
            .unwrap_or_else(|| panic!("no {name}=… in the demo output:\n{}", self.stdout))
            .clone()
    }

    /// (client_id, secret) of a printed client, by its variable stem (`TILL_1`).
    fn client(&self, stem: &str) -> (String, String) {
        (
            self.var(&format!("{stem}_ID")),
            self.var(&format!("{stem}_SECRET")),
        )
    }
}

fn run_demo(db: &str) -> Output {
    Command::new(BIN)
        .arg("demo")
        .arg("--db")
        .arg(db)
        .env_remove("VOUCHD_LISTEN")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN} demo: {e}"))
}

struct Shop {
    server: TestServer,
    printed: Printed,
}

impl Shop {
    fn token(&self, stem: &str) -> String {
        let (id, secret) = self.printed.client(stem);
        self.server.token(&id, &secret, None)
    }

    /// Every voucher `token` may see, through the list's pages.
    fn all_vouchers(&self, token: &str) -> Vec<Value> {
        let mut all = Vec::new();
        for page in 1.. {
            let r = self
                .server
                .list(token, &format!("per_page=200&page={page}"));
            assert_eq!(r.status, 200, "list page {page}: {}", r.body);
            let data = r.json["data"].as_array().cloned().unwrap_or_default();
            all.extend(data);
            if r.json["links"]["next"].is_null() {
                break;
            }
        }
        all
    }

    fn ledger(&self, token: &str, id: &str) -> Vec<Value> {
        let r = self
            .server
            .get(&format!("/v1/vouchers/{id}/charges?per_page=1000"), token);
        assert_eq!(r.status, 200, "charges of {id}: {}", r.body);
        assert!(
            r.json["links"]["next"].is_null(),
            "more than 1000 entries on {id}"
        );
        r.json["data"].as_array().cloned().unwrap_or_default()
    }
}

/// One demo database, served, shared by the tests below.
fn shop() -> &'static Shop {
    static SHOP: OnceLock<Shop> = OnceLock::new();
    SHOP.get_or_init(|| {
        let dir = Arc::new(TempDir::new());
        let out = run_demo(&dir.db());
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "vouchd demo failed: {}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        let printed = Printed::parse(&stdout);
        let server = TestServer::start_in(dir, &[], Some(printed.client("ADMIN")));
        Shop { server, printed }
    })
}

fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field].as_str().unwrap_or("")
}

#[test]
fn demo_prints_each_secret_once_and_serve_prints_no_second_admin() {
    let shop = shop();
    let p = &shop.printed;
    for stem in [
        "ADMIN",
        "TILL_1",
        "TILL_2",
        "BOOKKEEPING",
        "CHECKOUT",
        "SUPPORT",
    ] {
        let (id, secret) = p.client(stem);
        assert_eq!(p.stdout.matches(&secret).count(), 1, "{stem}'s secret");
        assert_eq!(id.len(), 16, "{stem}_ID={id}");
    }
    assert!(
        !shop.server.printed_admin,
        "serve after demo created another admin:\n{}",
        shop.server.output()
    );
    assert!(p.stdout.contains("vouchd serve --db "), "{}", p.stdout);
    assert!(
        p.stdout.contains("http://127.0.0.1:8080/oauth/token"),
        "{}",
        p.stdout
    );
    // The admin printed by demo is a working admin.
    let r = shop.server.get("/v1/clients", &shop.server.admin_token());
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["meta"]["total"], 6, "{}", r.body);
}

#[test]
fn demo_printed_example_works_for_the_printed_till() {
    let shop = shop();
    let p = &shop.printed;
    let token = shop.token("TILL_1");
    let r = shop.server.list(&token, "per_page=5");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json["data"].as_array().map(Vec::len),
        Some(5),
        "{}",
        r.body
    );

    let r = shop
        .server
        .list(&token, &format!("filter[code]={}", p.example_code));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["meta"]["total"], 1, "{}", r.body);
    let card = &r.json["data"][0];
    assert_eq!(card["id"], p.example_id.as_str(), "{}", r.body);
    assert_eq!(card["status"], "active");
    let (amount, left) = (cents(&card["amount"]), cents(&card["remaining_amount"]));
    assert!(0 < left && left < amount, "partly spent: {card}");

    let entries = shop.ledger(&token, &p.example_id);
    assert!(
        entries.iter().any(|e| e["type"] == "charge"),
        "charges of the example: {entries:?}"
    );
}

#[test]
fn demo_ledger_explains_every_balance_and_use() {
    let shop = shop();
    let admin = shop.server.admin_token();
    let vouchers = shop.all_vouchers(&admin);
    assert!(
        vouchers.len() >= 200,
        "a few hundred vouchers: {}",
        vouchers.len()
    );
    let mut value_vouchers = 0;
    for v in &vouchers {
        let id = text(v, "id");
        let entries = shop.ledger(&admin, id);
        assert_eq!(v["deletable"], entries.is_empty(), "deletable of {v}");
        let sum = |kind: &str| -> i64 {
            entries
                .iter()
                .filter(|e| e["type"] == kind)
                .map(|e| cents(&e["amount"]))
                .sum()
        };
        for e in &entries {
            assert!(
                parse_ts(text(e, "created_at")).epoch() >= parse_ts(text(v, "created_at")).epoch(),
                "entry before its voucher: {e} on {v}"
            );
        }
        if v["discount"].is_null() {
            value_vouchers += 1;
            let remaining = cents(&v["remaining_amount"]);
            assert_eq!(
                cents(&v["amount"]) - sum("charge") + sum("refund"),
                remaining,
                "amount − charges + refunds on {v}"
            );
            assert!(remaining >= 0, "{v}");
            assert_eq!(sum("use"), 0, "uses on a value voucher {v}");
        } else {
            let uses = entries.iter().filter(|e| e["type"] == "use").count();
            assert_eq!(v["uses"], uses, "uses of {v}");
            assert_eq!(entries.len(), uses, "only uses on a discount voucher {v}");
            let spent = v["uses"] == v["max_uses"];
            assert_eq!(!v["used_at"].is_null(), spent, "used_at of {v}");
        }
    }
    assert!(value_vouchers > 100, "{value_vouchers} value vouchers");
}

#[test]
fn demo_shop_is_varied() {
    let shop = shop();
    let vouchers = shop.all_vouchers(&shop.server.admin_token());
    let distinct = |field: &str| -> BTreeSet<String> {
        vouchers
            .iter()
            .filter_map(|v| v[field].as_str())
            .map(str::to_string)
            .collect()
    };
    let statuses = distinct("status");
    assert_eq!(statuses, set(&["active", "inactive", "cancelled"]));
    assert!(
        distinct("currency").len() >= 3,
        "{:?}",
        distinct("currency")
    );
    assert!(distinct("batch").len() >= 3, "{:?}", distinct("batch"));
    for field in [
        "store_id",
        "reward_id",
        "purchase_id",
        "order_number",
        "customer_id",
    ] {
        assert!(!distinct(field).is_empty(), "no {field} in the demo");
    }
    let kinds: BTreeSet<&str> = vouchers
        .iter()
        .filter_map(|v| v["discount"]["type"].as_str())
        .collect();
    assert_eq!(kinds, ["money", "percentage"].into_iter().collect());
    let count = |pred: &dyn Fn(&Value) -> bool| vouchers.iter().filter(|v| pred(v)).count();
    let value = |v: &Value| v["discount"].is_null();
    assert!(
        count(&|v| value(v) && cents(&v["remaining_amount"]) == 0) > 5,
        "spent cards"
    );
    assert!(
        count(&|v| value(v) && {
            let left = cents(&v["remaining_amount"]);
            0 < left && left < cents(&v["amount"])
        }) > 5,
        "partly spent cards"
    );
    assert!(
        count(&|v| !value(v) && v["max_uses"].as_i64() > Some(1)) >= 2,
        "multi-use codes"
    );
    assert!(
        count(&|v| !value(v) && !v["used_at"].is_null()) > 5,
        "used discounts"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let expired = count(&|v| {
        v["valid_until"]
            .as_str()
            .is_some_and(|t| parse_ts(t).epoch() < now)
    });
    assert!(expired > 5, "expired vouchers: {expired}");
    let mut customers: HashMap<&str, usize> = HashMap::new();
    for c in vouchers.iter().filter_map(|v| v["customer_id"].as_str()) {
        *customers.entry(c).or_default() += 1;
    }
    assert!(
        customers.values().any(|n| *n >= 3),
        "customers reused: {customers:?}"
    );
}

#[test]
fn demo_groups_see_only_their_own_vouchers() {
    let shop = shop();
    let p = &shop.printed;
    let ids = |stems: &[&str]| -> BTreeSet<String> {
        stems.iter().map(|s| p.var(&format!("{s}_ID"))).collect()
    };
    let till_clients = ids(&["TILL_1", "TILL_2", "BOOKKEEPING"]);
    let web_clients = ids(&["CHECKOUT", "SUPPORT"]);
    let till = shop.token("TILL_1");
    let seen = shop.all_vouchers(&till);
    assert!(!seen.is_empty());
    for v in &seen {
        assert!(
            till_clients.contains(text(v, "client_id")),
            "the till sees {v}"
        );
    }
    let all = shop.all_vouchers(&shop.server.admin_token());
    let web: Vec<&Value> = all
        .iter()
        .filter(|v| web_clients.contains(text(v, "client_id")))
        .collect();
    assert!(!web.is_empty() && seen.len() + web.len() == all.len());
    let hidden = text(web[0], "id");
    let r = shop.server.get(&format!("/v1/vouchers/{hidden}"), &till);
    assert_problem(&r, 404, "not_found");
    let r = shop
        .server
        .list(&till, &format!("filter[code]={}", text(web[0], "code")));
    assert_eq!(r.json["meta"]["total"], 0, "{}", r.body);
    let r = shop.server.list(
        &shop.token("CHECKOUT"),
        &format!("filter[code]={}", p.example_code),
    );
    assert_eq!(
        r.json["meta"]["total"], 0,
        "the webshop sees the shop's card: {}",
        r.body
    );

    // Bookkeeping reads the shop's vouchers but cannot charge them.
    let books = shop.token("BOOKKEEPING");
    assert_eq!(shop.all_vouchers(&books).len(), seen.len());
    let r = shop.server.post(
        &format!("/v1/vouchers/{}/charges", p.example_id),
        &books,
        &serde_json::json!({"type": "charge", "amount": "0.10"}),
    );
    assert_problem(&r, 403, "insufficient_scope");
}

#[test]
fn second_demo_on_the_same_database_is_refused_and_changes_nothing() {
    let shop = shop();
    let admin = shop.server.admin_token();
    let before = shop.server.list(&admin, "per_page=1").json["meta"]["total"].clone();
    let out = run_demo(&shop.server.db);
    assert!(!out.status.success(), "a second demo succeeded");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("holds") && stderr.contains("vouchers already"),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let after = shop.server.list(&admin, "per_page=1").json["meta"]["total"].clone();
    assert_eq!(before, after);
    let r = shop.server.get("/v1/clients", &admin);
    assert_eq!(r.json["meta"]["total"], 6, "{}", r.body);
}

#[test]
fn demo_on_a_served_database_keeps_its_admin() {
    let server = TestServer::start();
    let out = run_demo(&server.db);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = Printed::parse(&stdout);
    assert!(!printed.vars.contains_key("ADMIN_ID"), "{stdout}");
    let (id, secret) = printed.client("CHECKOUT");
    let token = server.token(&id, &secret, None);
    let r = server.list(&token, "per_page=1");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json["meta"]["total"].as_u64() > Some(50), "{}", r.body);
    // The server's own admin still works and sees the demo.
    let r = server.list(&server.admin_token(), "per_page=1");
    assert!(r.json["meta"]["total"].as_u64() > Some(200), "{}", r.body);
}
