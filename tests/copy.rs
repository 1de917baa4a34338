//! `vouchd copy FROM TO` through the real binary: the demo shop (with holds, an idempotency
//! record, tokens, a webhook endpoint and its events, a connect PIN and a revoked client added
//! over HTTP and the CLI) and a 100 000-voucher shop go SQLite → PostgreSQL → SQLite; every
//! table, the CSV exports and the ledgers are the same on all three, and servers on the copies
//! let the original's clients in, replay the stored reply, and take new vouchers and charges.
//! Then the refusals: a target holding vouchers, a bad URL or path, the same database twice,
//! and a target whose check fails (a trigger of the test's own changes what is inserted).
//!
//! These tests need a PostgreSQL cluster whatever the engine of the run (`VOUCHD_TEST_PG`);
//! without it they fail saying so.

use crate::common::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

/// Every table of the schema, each with the columns that order its rows.
const TABLES: &[(&str, &str)] = &[
    ("client_groups", "id"),
    ("clients", "id"),
    ("tokens", "hash"),
    ("settings", "key"),
    ("vouchers", "seq"),
    ("voucher_counts", "group_id, status"),
    ("ledger", "seq"),
    ("reservations", "id"),
    ("idempotency", "client_id, key"),
    ("connect_pins", "hash"),
    ("voucher_comments", "seq"),
    ("webhook_endpoints", "id"),
    ("webhook_events", "seq"),
    ("webhook_deliveries", "endpoint_id, event_seq"),
];

fn vouchd(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN} {args:?}: {e}"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `vouchd copy FROM TO`, asserting success.
fn copy(from: &str, to: &str) -> String {
    let out = vouchd(&["copy", from, to]);
    let text = stderr(&out);
    assert!(
        out.status.success(),
        "copy {} → {} failed: {text}",
        redact(from),
        redact(to)
    );
    assert!(text.contains("vouchd: copied "), "{text}");
    text
}

/// The word that follows `before` in `text` (an id a message names).
fn word_after(text: &str, before: &str) -> String {
    text.split_once(before)
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("nothing named after {before:?}: {text}"))
        .to_string()
}

/// `vouchd copy FROM TO`, asserting that it fails; its stderr.
fn copy_refused(from: &str, to: &str) -> String {
    let out = vouchd(&["copy", from, to]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "copy did not fail: {text}");
    assert!(text.starts_with("vouchd: "), "{text}");
    assert!(
        !text.contains("Error(") && !text.contains("{ "),
        "not a sentence: {text}"
    );
    text
}

fn export(db: &str) -> Vec<u8> {
    let out = vouchd(&["export", "--db", db]);
    assert!(out.status.success(), "export: {}", stderr(&out));
    out.stdout
}

/// Every row of `table` in key order, each value written out the same way on both engines.
fn dump(db: &str, table: &str, order: &str) -> Vec<String> {
    let filter = if table == "settings" {
        " WHERE key <> 'schema_version'"
    } else {
        ""
    };
    let db_is_pg = is_pg_location(db);
    // A hold's order is SQLite's rowid, PostgreSQL's seq.
    let rowid = if table == "reservations" && !db_is_pg {
        ", rowid AS seq"
    } else {
        ""
    };
    let sql = format!("SELECT *{rowid} FROM {table}{filter} ORDER BY {order}");
    match TestDb::open(db) {
        TestDb::Sqlite(conn) => {
            let mut stmt = conn.prepare(&sql).expect("prepare");
            let n = stmt.column_count();
            let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
            let rows = stmt
                .query_map([], |row| {
                    let mut cells = Vec::new();
                    for i in 0..n {
                        use rusqlite::types::ValueRef;
                        cells.push(match row.get_ref(i)? {
                            ValueRef::Null => "NULL".to_string(),
                            ValueRef::Integer(v) => v.to_string(),
                            ValueRef::Real(v) => format!("real {v}"),
                            ValueRef::Text(t) => format!("{:?}", String::from_utf8_lossy(t)),
                            ValueRef::Blob(b) => format!("x{}", hex(b)),
                        });
                    }
                    Ok(line(&names, &cells))
                })
                .expect("query");
            rows.map(|r| r.expect("row")).collect()
        }
        TestDb::Postgres(mut client) => client
            .query(sql.as_str(), &[])
            .expect("query")
            .iter()
            .map(|row| {
                let names: Vec<String> =
                    row.columns().iter().map(|c| c.name().to_string()).collect();
                let cells: Vec<String> = (0..row.len())
                    .map(|i| {
                        if let Ok(v) = row.try_get::<_, Option<i64>>(i) {
                            v.map_or("NULL".into(), |v| v.to_string())
                        } else if let Ok(v) = row.try_get::<_, Option<String>>(i) {
                            v.map_or("NULL".into(), |v| format!("{v:?}"))
                        } else {
                            let v: Option<Vec<u8>> = row.try_get(i).expect("bytes");
                            v.map_or("NULL".into(), |b| format!("x{}", hex(&b)))
                        }
                    })
                    .collect();
                line(&names, &cells)
            })
            .collect(),
    }
}

fn line(names: &[String], cells: &[String]) -> String {
    let mut pairs: Vec<String> = names
        .iter()
        .zip(cells)
        .map(|(n, c)| format!("{n}={c}"))
        .collect();
    pairs.sort();
    pairs.join(" ")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `b`'s tables (those named) hold exactly `a`'s rows.
fn assert_same_tables(a: &str, b: &str, tables: &[(&str, &str)]) {
    for (table, order) in tables {
        let left = dump(a, table, order);
        let right = dump(b, table, order);
        assert_eq!(
            left.len(),
            right.len(),
            "{table}: {} rows in {}, {} in {}",
            left.len(),
            redact(a),
            right.len(),
            redact(b)
        );
        if let Some((l, r)) = left.iter().zip(&right).find(|(l, r)| l != r) {
            panic!(
                "{table} differs between {} and {}:\n{l}\n{r}",
                redact(a),
                redact(b)
            );
        }
    }
}

/// The `NAME_ID` / `NAME_SECRET` pairs `vouchd demo` printed.
fn demo_clients(stdout: &str) -> HashMap<String, String> {
    stdout
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .filter(|(k, _)| k.ends_with("_ID") || k.ends_with("_SECRET"))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A SQLite home filled by `vouchd demo`; its clients' ids and secrets.
fn demo_home() -> (Arc<TempDir>, HashMap<String, String>) {
    let home = Arc::new(TempDir::new_sqlite());
    let out = vouchd(&["demo", "--db", &home.db()]);
    assert!(out.status.success(), "demo: {}", stderr(&out));
    let clients = demo_clients(&String::from_utf8_lossy(&out.stdout));
    assert!(clients.contains_key("TILL_1_SECRET"), "{clients:?}");
    (home, clients)
}

fn pair(clients: &HashMap<String, String>, stem: &str) -> (String, String) {
    (
        clients[&format!("{stem}_ID")].clone(),
        clients[&format!("{stem}_SECRET")].clone(),
    )
}

#[test]
fn the_demo_shop_goes_to_postgresql_and_back_whole() {
    pg_admin_url();
    let (home_a, clients) = demo_home();
    let admin = pair(&clients, "ADMIN");
    let till = pair(&clients, "TILL_1");
    let bookkeeping = pair(&clients, "BOOKKEEPING");

    // What no demo has: a hold, a stored reply, tokens, a webhook endpoint with its events and
    // deliveries, a connect PIN, a revoked client (auth_epoch moves).
    let a = TestServer::start_in(Arc::clone(&home_a), &[], Some(admin.clone()));
    let token = a.token(&till.0, &till.1, None);
    let card = a.create_voucher(&token, &json!({"amount": "50.00", "currency": "EUR"}));
    let card_id = id_of(&card["id"]);
    let hook = a.cli(&[
        "webhook",
        "add",
        "http://127.0.0.1:9/hook",
        "--group",
        "Main Street Shop",
    ]);
    assert!(hook.status.success(), "{}", stderr(&hook));
    let charges = format!("/v1/vouchers/{card_id}/charges");
    let auth = format!("Bearer {token}");
    let keyed = |s: &TestServer| {
        s.send(
            "POST",
            &charges,
            &[
                ("Authorization", auth.as_str()),
                ("Idempotency-Key", "copy-test-1"),
            ],
            Some((
                "application/json",
                br#"{"type": "charge", "amount": "5.00"}"#,
            )),
        )
    };
    let first = keyed(&a);
    assert_eq!(first.status, 201, "{}", first.body);
    for amount in ["3.00", "2.00", "1.00"] {
        let hold = a.post(
            &format!("/v1/vouchers/{card_id}/reservations"),
            &token,
            &json!({"amount": amount}),
        );
        assert_eq!(hold.status, 201, "{}", hold.body);
    }
    let pin = a.cli(&["client", "connect-pin", "--group", "Webshop"]);
    assert!(pin.status.success(), "{}", stderr(&pin));
    let revoked = a.cli(&["client", "revoke", &bookkeeping.0]);
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    let card_before = a.get(&format!("/v1/vouchers/{card_id}"), &token).json;
    // The delivery thread makes the deliveries a moment after the events commit (later while
    // the rest of the suite loads the machine): the source must hold some before it is copied.
    let waited = std::time::Instant::now();
    while dump(&home_a.db(), "webhook_deliveries", "1").is_empty()
        && waited.elapsed() < std::time::Duration::from_secs(30)
    {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    drop(a);
    for (table, _) in TABLES {
        if *table != "voucher_comments" {
            assert!(
                !dump(&home_a.db(), table, "1").is_empty(),
                "the source's {table} is empty: the test would not show it copied"
            );
        }
    }

    let home_p = Arc::new(TempDir::new_postgres());
    let home_b = Arc::new(TempDir::new_sqlite());
    copy(&home_a.db(), &home_p.db());
    copy(&home_p.db(), &home_b.db());
    assert_same_tables(&home_a.db(), &home_p.db(), TABLES);
    assert_same_tables(&home_a.db(), &home_b.db(), TABLES);
    let csv = export(&home_a.db());
    assert!(csv.len() > 10_000, "the demo's export is small");
    assert!(
        export(&home_p.db()) == csv,
        "the PostgreSQL copy exports otherwise"
    );
    assert!(
        export(&home_b.db()) == csv,
        "the SQLite copy exports otherwise"
    );

    for home in [&home_p, &home_b] {
        let s = TestServer::start_in(Arc::clone(home), &[], Some(admin.clone()));
        // The original's token, and a new one from the original's secret.
        let card_now = s.get(&format!("/v1/vouchers/{card_id}"), &token);
        assert_eq!(card_now.status, 200, "{}", card_now.body);
        let fresh = s.token(&till.0, &till.1, None);
        assert_eq!(
            s.get(&format!("/v1/vouchers/{card_id}"), &fresh).json,
            card_before
        );
        let refused = s.token_request(
            &[("grant_type", "client_credentials")],
            Some((&bookkeeping.0, &bookkeeping.1)),
        );
        assert_eq!(refused.status, 401, "the revoked client: {}", refused.body);
        // The stored reply is replayed, not charged again.
        let again = keyed(&s);
        assert_eq!(again.status, 201, "{}", again.body);
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert_eq!(again.json["id"], first.json["id"]);
        // New rows get numbers past the copied ones.
        let more = s.post(
            &charges,
            &fresh,
            &json!({"type": "charge", "amount": "1.00"}),
        );
        assert_eq!(more.status, 201, "{}", more.body);
        let new = s.create_voucher(&fresh, &json!({"amount": "7.00", "currency": "EUR"}));
        assert_eq!(cents(&new["remaining_amount"]), 700, "{new}");
    }
}

/// `n` gift cards as an export's CSV, with unique codes; every thousandth with a balance a
/// unit below its amount (the import books an opening charge for it).
fn generated_csv(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut csv = String::from("code,amount,remaining_amount,currency,batch\n");
    for i in 0..n {
        let mut code = String::from("B");
        let mut rest = i;
        for _ in 0..6 {
            code.push(ALPHABET[rest % ALPHABET.len()] as char);
            rest /= ALPHABET.len();
        }
        let units = i % 90 + 10;
        let spent = usize::from(i % 1000 == 0);
        csv.push_str(&format!(
            "{code},{units}.{:02},{}.{:02},EUR,batch-{}\n",
            i % 100,
            units - spent,
            i % 100,
            i % 7
        ));
    }
    csv
}

#[test]
fn a_hundred_thousand_vouchers_go_to_postgresql_and_back() {
    pg_admin_url();
    let home_a = Arc::new(TempDir::new_sqlite());
    let file = home_a.path().join("cards.csv");
    std::fs::write(&file, generated_csv(100_000)).expect("write the CSV");
    let out = vouchd(&[
        "import",
        file.to_str().expect("utf-8"),
        "--db",
        &home_a.db(),
    ]);
    let text = stderr(&out);
    assert!(out.status.success(), "import: {text}");
    let created: Value = serde_json::from_str(
        text.lines()
            .find_map(|l| l.strip_prefix("vouchd: created admin client "))
            .unwrap_or_else(|| panic!("no admin client in: {text}")),
    )
    .expect("the admin client's JSON");
    let admin = (
        created["client_id"].as_str().expect("id").to_string(),
        created["client_secret"]
            .as_str()
            .expect("secret")
            .to_string(),
    );

    // A ledger: charges on 40 cards, refunds of ten of them.
    let a = TestServer::start_in(Arc::clone(&home_a), &[], Some(admin.clone()));
    let token = a.admin_token();
    let ids = a.list_ids(&token, "per_page=40");
    assert_eq!(ids.len(), 40);
    for (i, id) in ids.iter().enumerate() {
        let charge = a.post(
            &format!("/v1/vouchers/{id}/charges"),
            &token,
            &json!({"type": "charge", "amount": "4.00"}),
        );
        assert_eq!(charge.status, 201, "{}", charge.body);
        if i % 4 == 0 {
            let refund = a.post(
                &format!("/v1/vouchers/{id}/charges"),
                &token,
                &json!({"type": "refund", "refers_to": charge.json["id"], "amount": "1.50"}),
            );
            assert_eq!(refund.status, 201, "{}", refund.body);
        }
    }
    drop(a);
    // Three balances no ledger explains (no request can make them): copied as they are, and
    // said so, since the source breaks the rule already.
    let broken = TestDb::open(&home_a.db()).execute(
        "UPDATE vouchers SET remaining = remaining - 1 WHERE seq IN (7, 70, 700)",
        &[],
    );
    assert_eq!(broken, 3);

    let home_p = Arc::new(TempDir::new_postgres());
    let home_b = Arc::new(TempDir::new_sqlite());
    let said = copy(&home_a.db(), &home_p.db());
    assert!(
        said.contains("100000 vouchers, 150 ledger entries"),
        "{said}"
    );
    assert!(
        said.contains("3 vouchers carry a balance that disagrees with their ledger"),
        "{said}"
    );
    copy(&home_p.db(), &home_b.db());
    let csv = export(&home_a.db());
    assert_eq!(csv.iter().filter(|b| **b == b'\n').count(), 100_001);
    assert!(
        export(&home_p.db()) == csv,
        "the PostgreSQL copy exports otherwise"
    );
    assert!(
        export(&home_b.db()) == csv,
        "the SQLite copy exports otherwise"
    );
    let checked = [
        ("ledger", "seq"),
        ("clients", "id"),
        ("client_groups", "id"),
        ("voucher_counts", "group_id, status"),
    ];
    assert_same_tables(&home_a.db(), &home_p.db(), &checked);
    assert_same_tables(&home_a.db(), &home_b.db(), &checked);

    for home in [&home_p, &home_b] {
        let s = TestServer::start_in(Arc::clone(home), &[], Some(admin.clone()));
        let token = s.token(&admin.0, &admin.1, None);
        let v = s.get(&format!("/v1/vouchers/{}", ids[0]), &token);
        assert_eq!(v.status, 200, "{}", v.body);
        let ledger = s.get(&format!("/v1/vouchers/{}/charges", ids[0]), &token);
        assert_eq!(ledger.json["data"].as_array().map(Vec::len), Some(2));
    }
}

#[test]
fn a_target_with_vouchers_a_bad_url_or_path_and_the_same_database_are_refused() {
    pg_admin_url();
    let (home_a, _) = demo_home();
    let home_p = TempDir::new_postgres();
    copy(&home_a.db(), &home_p.db());
    let before = export(&home_p.db());
    let text = copy_refused(&home_a.db(), &home_p.db());
    assert!(
        text.contains("the target holds 427 vouchers already"),
        "{text}"
    );
    assert!(
        export(&home_p.db()) == before,
        "a refused copy changed the target"
    );

    // Nothing listens on port 1.
    let bad_url = "postgres://vouchd:hunter2secret@127.0.0.1:1/x";
    let text = copy_refused(&home_a.db(), bad_url);
    assert!(text.starts_with("vouchd: TO: cannot connect"), "{text}");
    assert!(
        !text.contains("hunter2secret"),
        "the password shown: {text}"
    );

    let missing = home_a.path().join("nothing-here.db");
    let text = copy_refused(missing.to_str().expect("utf-8"), &home_p.db());
    assert!(text.contains("FROM: there is no database file"), "{text}");
    assert!(!missing.exists(), "the missing source was created");
    let no_dir = home_a.path().join("no/such/dir/x.db");
    let text = copy_refused(&home_a.db(), no_dir.to_str().expect("utf-8"));
    assert!(text.starts_with("vouchd: TO: cannot open"), "{text}");
    let text = copy_refused(&home_a.db(), &home_a.db());
    assert!(text.contains("the same database"), "{text}");

    let usage = vouchd(&["copy", &home_a.db()]);
    assert_eq!(usage.status.code(), Some(2));
    assert!(stderr(&usage).contains("copy takes FROM and TO"));
}

#[test]
fn a_copy_whose_check_fails_names_the_voucher_and_leaves_the_target_empty() {
    let (home_a, _) = demo_home();
    let home_t = TempDir::new_sqlite();
    let target = home_t.db();
    let made = vouchd(&["client", "list", "--db", &target]);
    assert!(made.status.success(), "{}", stderr(&made));
    // A target that spends a cent of every card it is given.
    TestDb::open(&target).batch(
        "CREATE TRIGGER skim AFTER INSERT ON vouchers WHEN NEW.remaining > 0 BEGIN
             UPDATE vouchers SET remaining = remaining - 1 WHERE id = NEW.id;
         END;",
    );
    let text = copy_refused(&home_a.db(), &target);
    let named = word_after(&text, "check failed: voucher ");
    assert!(text.contains("but its remaining is"), "{text}");
    let mut source = TestDb::open(&home_a.db());
    assert_eq!(
        source.query_i64(
            "SELECT COUNT(*) FROM vouchers WHERE id = ?1 AND remaining > 0",
            &[Param::from(&named)]
        ),
        1,
        "{named} is not a card with a balance of the source"
    );
    let mut copy = TestDb::open(&target);
    assert_eq!(copy.query_i64("SELECT COUNT(*) FROM vouchers", &[]), 0);
    assert_eq!(copy.query_i64("SELECT COUNT(*) FROM ledger", &[]), 0);
    assert!(Path::new(&target).exists());
}

#[test]
fn a_nul_an_older_vouchd_stored_in_sqlite_is_named_and_leaves_the_postgresql_target_empty() {
    pg_admin_url();
    let (home_a, _) = demo_home();
    TestDb::open(&home_a.db()).batch(
        "UPDATE vouchers SET label = 'a' || char(0) || 'b'
         WHERE id = (SELECT id FROM vouchers ORDER BY id LIMIT 1 OFFSET 7)",
    );
    let home_p = TempDir::new_postgres();
    let text = copy_refused(&home_a.db(), &home_p.db());
    let named = word_after(&text, "vouchers: the row with id = ");
    assert!(text.contains("holds a NUL character in label"), "{text}");
    let mut source = TestDb::open(&home_a.db());
    assert_eq!(
        source.query_i64(
            "SELECT COUNT(*) FROM vouchers WHERE id = ?1 AND instr(label, char(0)) > 0",
            &[Param::from(&named)]
        ),
        1,
        "{named} is not the row with the NUL"
    );
    let mut copy = TestDb::open(&home_p.db());
    assert_eq!(copy.query_i64("SELECT COUNT(*) FROM vouchers", &[]), 0);
}
