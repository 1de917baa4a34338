//! Several `vouchd serve` instances on one PostgreSQL database (the PostgreSQL issue's
//! acceptance items 2 and 3): one card sold from three instances at once sells exactly its
//! balance, one Idempotency-Key sent to all three has one effect, a client revoked with the CLI
//! is refused by every instance within a second, SIGKILL of one instance during charges loses
//! no acknowledged charge, and two instances starting at once on an empty database both come
//! up with the database set up once. A database that refuses connections gets 503s that change
//! nothing, then 200s again.
//!
//! These tests need a PostgreSQL cluster whatever the engine of the run: `VOUCHD_TEST_PG`, an
//! admin URL (`./test.sh` starts a throwaway cluster; `tests/pg/cluster.sh start` starts one by
//! hand). Without it they fail saying so; they never skip.

use crate::common::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

/// `n` instances on one fresh PostgreSQL database; the first one set it up.
fn instances(n: usize) -> (Arc<TempDir>, Vec<TestServer>) {
    pg_admin_url(); // the clear failure first, when there is no cluster
    let home = Arc::new(TempDir::new_postgres());
    let first = TestServer::start_in(Arc::clone(&home), &[], None);
    let admin = (first.admin_id.clone(), first.admin_secret.clone());
    let mut all = vec![first];
    for _ in 1..n {
        let s = TestServer::start_in(Arc::clone(&home), &[], Some(admin.clone()));
        assert!(
            !s.printed_admin,
            "a second instance made another admin client"
        );
        all.push(s);
    }
    (home, all)
}

/// A client agent of a test thread's own (no pooled connections, bounded waits).
fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .max_idle_connections(0)
        .timeout_connect(Duration::from_secs(5))
        .timeout(Duration::from_secs(60))
        .build()
}

/// One `POST /v1/vouchers/{id}/charges` of `amount`: (status, body, whether replayed), or
/// `None` when the instance is gone (a transport error).
fn charge(
    agent: &ureq::Agent,
    base: &str,
    token: &str,
    voucher: &str,
    amount: &str,
    key: Option<&str>,
) -> Option<(u16, Value, bool)> {
    let mut req = agent
        .post(&format!("{base}/v1/vouchers/{voucher}/charges"))
        .set("Authorization", &format!("Bearer {token}"));
    if let Some(k) = key {
        req = req.set("Idempotency-Key", k);
    }
    let resp = match req.send_json(json!({"type": "charge", "amount": amount})) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(ureq::Error::Transport(_)) => return None,
    };
    let status = resp.status();
    let replayed = resp.header("idempotent-replayed") == Some("true");
    let body = resp.into_string().unwrap_or_default();
    let json = serde_json::from_str(&body).unwrap_or(Value::Null);
    Some((status, json, replayed))
}

/// Every ledger entry of `voucher`, through the pages.
fn ledger(s: &TestServer, token: &str, voucher: &str) -> Vec<Value> {
    let mut entries = Vec::new();
    for page in 1.. {
        let r = s.get(
            &format!("/v1/vouchers/{voucher}/charges?per_page=1000&page={page}"),
            token,
        );
        assert_eq!(r.status, 200, "ledger of {voucher}: {}", r.body);
        entries.extend(r.json["data"].as_array().expect("data").iter().cloned());
        if r.json["links"]["next"].is_null() {
            break;
        }
    }
    entries
}

/// The voucher as `s` shows it, asserting 200.
fn voucher(s: &TestServer, token: &str, id: &str) -> Value {
    let r = s.get(&format!("/v1/vouchers/{id}"), token);
    assert_eq!(r.status, 200, "GET {id} on {}: {}", s.base, r.body);
    r.json
}

/// The voucher's amount − Σ charges = remaining ≥ 0, its ledger holding only charges (nothing
/// else writes to these cards); returns its entry ids.
fn assert_balance_is_ledger(s: &TestServer, token: &str, id: &str) -> BTreeSet<String> {
    let v = voucher(s, token, id);
    let entries = ledger(s, token, id);
    for e in &entries {
        assert_eq!(e["type"], "charge", "only charges were made on {id}: {e}");
    }
    let charged: i64 = entries.iter().map(|e| cents(&e["amount"])).sum();
    let remaining = cents(&v["remaining_amount"]);
    assert_eq!(
        cents(&v["amount"]) - charged,
        remaining,
        "balance of {id} disagrees with its ledger: {v}"
    );
    assert!(remaining >= 0, "{v}");
    entries.iter().map(|e| id_of(&e["id"])).collect()
}

#[test]
fn three_instances_sell_exactly_a_cards_balance_from_300_concurrent_charges() {
    let (_home, servers) = instances(3);
    let t = servers[0].tenant(CASHIER);
    // A token is the database's: the one the first instance issued works on all three.
    for s in &servers {
        assert_eq!(s.get("/v1/vouchers", &t.token).status, 200, "{}", s.base);
    }
    let card = id_of(&servers[1].create_voucher(&t.token, &json!({"amount": "150.00"}))["id"]);

    const CHARGES: usize = 300;
    let start = Barrier::new(CHARGES);
    let answers: Vec<(usize, u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CHARGES)
            .map(|n| {
                let (start, token, card) = (&start, &t.token, &card);
                let base = servers[n % servers.len()].base.clone();
                scope.spawn(move || {
                    let agent = agent();
                    start.wait();
                    let (status, body, _) = charge(&agent, &base, token, card, "1.00", None)
                        .unwrap_or_else(|| panic!("{base} is gone"));
                    (n % 3, status, body)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("charging thread"))
            .collect()
    });

    let mut sold = BTreeSet::new();
    let mut per_instance = [0; 3];
    for (instance, status, body) in &answers {
        match status {
            201 => {
                assert_eq!(body["amount"], "1.00", "{body}");
                assert!(
                    sold.insert(id_of(&body["id"])),
                    "one entry id twice: {body}"
                );
                per_instance[*instance] += 1;
            }
            409 => assert_eq!(
                body["code"], "insufficient_funds",
                "the only refusal is an empty card: {body}"
            ),
            other => panic!("charge answered {other}: {body}"),
        }
    }
    assert_eq!(sold.len(), 150, "201s of 300 charges of 1.00 on 150.00");
    for s in &servers {
        let v = voucher(s, &t.token, &card);
        assert_eq!(v["remaining_amount"], "0.00", "on {}: {v}", s.base);
    }
    let entries = assert_balance_is_ledger(&servers[2], &t.token, &card);
    assert_eq!(
        entries, sold,
        "the ledger holds exactly the acknowledged charges"
    );
    // Each instance took part (a spread the test made, checked so it stays made).
    assert!(
        per_instance.iter().all(|&n| n > 0),
        "sales per instance: {per_instance:?}"
    );
}

#[test]
fn one_idempotency_key_sent_to_three_instances_at_once_has_one_effect_and_identical_replays() {
    let (_home, servers) = instances(3);
    let t = servers[0].tenant(CASHIER);
    let card = id_of(&servers[0].create_voucher(&t.token, &json!({"amount": "100.00"}))["id"]);
    const ROUNDS: usize = 10;
    let mut entries = BTreeSet::new();
    for round in 0..ROUNDS {
        let key = unique("race-key");
        let start = Barrier::new(servers.len());
        let answers: Vec<(u16, Value, bool)> = std::thread::scope(|scope| {
            let handles: Vec<_> = servers
                .iter()
                .map(|s| {
                    let (start, key, token, card) = (&start, &key, &t.token, &card);
                    let base = s.base.clone();
                    scope.spawn(move || {
                        let agent = agent();
                        start.wait();
                        charge(&agent, &base, token, card, "1.00", Some(key))
                            .unwrap_or_else(|| panic!("{base} is gone"))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        for (status, body, _) in &answers {
            assert_eq!(*status, 201, "round {round}: {body}");
            assert_eq!(body, &answers[0].1, "round {round}: the replays differ");
        }
        let first = answers.iter().filter(|(_, _, replayed)| !replayed).count();
        assert_eq!(first, 1, "round {round}: answers not replayed: {answers:?}");
        // Later retries on each instance replay the same answer.
        for s in &servers {
            let agent = agent();
            let (status, body, replayed) =
                charge(&agent, &s.base, &t.token, &card, "1.00", Some(&key)).expect("up");
            assert_eq!((status, replayed), (201, true), "{body}");
            assert_eq!(body, answers[0].1);
        }
        entries.insert(id_of(&answers[0].1["id"]));
    }
    let listed = assert_balance_is_ledger(&servers[1], &t.token, &card);
    assert_eq!(listed, entries, "one ledger entry per key");
    let v = voucher(&servers[2], &t.token, &card);
    assert_eq!(cents(&v["remaining_amount"]), 10_000 - ROUNDS as i64 * 100);
}

#[test]
fn a_client_revoked_with_the_cli_is_refused_by_every_instance_within_a_second() {
    let (_home, servers) = instances(3);
    let t = servers[0].tenant(CASHIER);
    // Every instance has checked (and may have cached) the token.
    for s in &servers {
        assert_eq!(s.get("/v1/vouchers", &t.token).status, 200, "{}", s.base);
    }
    let out = servers[1].cli(&["client", "revoke", &t.client_id]);
    let revoked = Instant::now();
    assert!(
        out.status.success(),
        "vouchd client revoke: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut refused_after = Vec::new();
    // A request sent more than a second after the revocation is refused (the time is taken
    // when it is sent: how long a busy machine takes to answer does not count).
    for s in &servers {
        loop {
            let sent = revoked.elapsed();
            let r = s.get("/v1/vouchers", &t.token);
            if r.status == 401 {
                assert_problem(&r, 401, "invalid_token");
                refused_after.push(sent);
                break;
            }
            assert_eq!(r.status, 200, "{}", r.body);
            assert!(
                sent <= Duration::from_secs(1),
                "{} still takes the revoked client's token {sent:?} after the revocation",
                s.base,
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // Nor can the client sign in again anywhere.
    for s in &servers {
        let r = s.token_request(
            &[("grant_type", "client_credentials")],
            Some((&t.client_id, &t.secret)),
        );
        assert_eq!(
            r.status, 401,
            "sign-in on {} after revoke: {}",
            s.base, r.body
        );
    }
    assert_eq!(refused_after.len(), 3);
}

#[test]
fn sigkill_of_one_instance_during_charges_through_three_loses_no_acknowledged_charge() {
    const VOUCHERS: usize = 12;
    const THREADS: usize = 12;
    /// Acknowledged charges before the kill, and after it on the two that live on.
    const BEFORE: usize = 200;
    const AFTER: usize = 100;
    let (home, mut servers) = instances(3);
    let admin = (servers[0].admin_id.clone(), servers[0].admin_secret.clone());
    let t = servers[0].tenant(CASHIER);
    let cards: Vec<String> = (0..VOUCHERS)
        .map(|n| {
            let s = &servers[n % 3];
            id_of(&s.create_voucher(&t.token, &json!({"amount": "1000.00"}))["id"])
        })
        .collect();
    let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
    let acked: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
    let count = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let killed_at = std::thread::scope(|scope| {
        for n in 0..THREADS {
            let (bases, cards, acked, count, stop, token) =
                (&bases, &cards, &acked, &count, &stop, &t.token);
            scope.spawn(move || {
                let agent = agent();
                let mut gone = [false; 3];
                let deadline = Instant::now() + Duration::from_secs(120);
                let mut i = n;
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    i += 1;
                    let instance = i % 3;
                    if gone[instance] {
                        continue;
                    }
                    let card = &cards[(i * 7 + n) % cards.len()];
                    let amount = money(1 + (i % 97) as i64);
                    match charge(&agent, &bases[instance], token, card, &amount, None) {
                        Some((201, body, _)) => {
                            assert_eq!(body["amount"], json!(amount), "{body}");
                            acked
                                .lock()
                                .expect("acked")
                                .push((card.clone(), id_of(&body["id"])));
                            count.fetch_add(1, Ordering::SeqCst);
                        }
                        Some((status, body, _)) => {
                            panic!("charge on {} answered {status}: {body}", bases[instance])
                        }
                        // That instance died: a lost answer says nothing either way.
                        None => gone[instance] = true,
                    }
                }
            });
        }
        let until = Instant::now() + Duration::from_secs(60);
        while count.load(Ordering::SeqCst) < BEFORE && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        servers[1].kill();
        let killed_at = count.load(Ordering::SeqCst);
        // The two left keep taking charges: the dead one's open work holds nothing up.
        while count.load(Ordering::SeqCst) < killed_at + AFTER && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        stop.store(true, Ordering::SeqCst);
        killed_at
    });
    let acked = acked.into_inner().expect("acked");
    assert!(
        killed_at >= BEFORE,
        "only {killed_at} charges were acknowledged before the kill"
    );
    assert!(
        acked.len() >= killed_at + AFTER,
        "only {} charges were acknowledged after the kill",
        acked.len() - killed_at
    );
    // Every acknowledged charge is in the ledger and every balance agrees with its ledger,
    // as a survivor and the restarted instance both tell.
    servers[1] = TestServer::start_in(home, &[], Some(admin));
    let mut want: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (card, entry) in &acked {
        want.entry(card).or_default().insert(entry.clone());
    }
    for s in [&servers[2], &servers[1]] {
        for card in &cards {
            let listed = assert_balance_is_ledger(s, &t.token, card);
            for entry in want.get(card.as_str()).into_iter().flatten() {
                assert!(
                    listed.contains(entry),
                    "acknowledged charge {entry} on {card} is missing (asked {})",
                    s.base
                );
            }
        }
    }
}

#[test]
fn two_instances_started_at_once_on_an_empty_database_both_come_up_and_set_it_up_once() {
    pg_admin_url();
    for round in 0..3 {
        let home = Arc::new(TempDir::new_postgres());
        let start = Barrier::new(2);
        let mut both: Vec<TestServer> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    let (start, home) = (&start, Arc::clone(&home));
                    scope.spawn(move || {
                        start.wait();
                        TestServer::start_instance(home, &[])
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a start"))
                .collect()
        });
        let printed: Vec<bool> = both.iter().map(|s| s.printed_admin).collect();
        assert_eq!(
            printed.iter().filter(|p| **p).count(),
            1,
            "round {round}: exactly one instance creates the admin client: {printed:?}\n{}\n{}",
            both[0].output(),
            both[1].output()
        );
        if !both[0].printed_admin {
            both.swap(0, 1);
        }
        // The admin works on both, and what one writes the other reads.
        let admin = both[0].admin_token();
        let other = both[1].token(&both[0].admin_id, &both[0].admin_secret, None);
        let v = both[0].create_voucher(&admin, &json!({"amount": "5.00"}));
        let seen = voucher(&both[1], &other, &id_of(&v["id"]));
        assert_eq!(seen["amount"], "5.00");
        let clients = both[1].get("/v1/clients", &other);
        assert_eq!(clients.json["meta"]["total"], 1, "{}", clients.body);
    }
}

#[test]
fn backup_of_a_postgres_database_says_to_use_postgresqls_tools_and_writes_nothing() {
    let (home, servers) = instances(1);
    let dest = home.path().join("copy.db");
    let out = servers[0].cli(&["backup", dest.to_str().expect("UTF-8 path")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "backup succeeded: {stderr}");
    assert!(stderr.contains("pg_dump"), "{stderr}");
    assert!(
        !stderr.contains(&password_of(&servers[0].db)),
        "the refusal printed the password: {stderr}"
    );
    assert!(!dest.exists(), "backup wrote {}", dest.display());
}

/// The password in a `postgres://user:password@…` URL (the test cluster has one).
fn password_of(url: &str) -> String {
    url.split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, pw)| pw.to_string())
        .filter(|pw| !pw.is_empty())
        .unwrap_or_else(|| panic!("the URL has no password: {}", redact(url)))
}

#[test]
fn the_database_password_appears_in_no_output() {
    let admin = pg_admin_url();
    let password = password_of(&admin);
    let (_home, servers) = instances(1);
    let s = &servers[0];
    let t = s.tenant(CASHIER);
    // A bad request, a CLI command and a CLI failure: nothing prints the URL's password.
    assert_eq!(s.get("/v1/vouchers/NOSUCHVOUCHER123", &t.token).status, 404);
    let listed = s.cli(&["client", "list"]);
    assert!(listed.status.success(), "{listed:?}");
    let failed = s.cli(&["client", "revoke", "NOSUCHCLIENT0000"]);
    assert!(!failed.status.success());
    let wrong = pg_url_with_db(&admin, "vouchd_no_such_database");
    let refused = std::process::Command::new(BIN)
        .args(["client", "list", "--db", &wrong])
        .output()
        .expect("run vouchd");
    assert!(!refused.status.success(), "{refused:?}");
    let run = |args: &[&str]| {
        std::process::Command::new(BIN)
            .args(args)
            .output()
            .expect("run vouchd")
    };
    let db = s.db.clone();
    // The demo's report names the database it filled; a wrong copy names what it was given.
    let demo = run(&["demo", "--db", &db]);
    assert!(
        demo.status.success(),
        "{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    let copy = run(&["copy", &db, &wrong, "extra"]);
    assert!(!copy.status.success(), "{copy:?}");
    for (what, text) in [
        ("demo", format!("{demo:?}")),
        ("copy with three arguments", format!("{copy:?}")),
        ("serve", s.output()),
        ("client list", format!("{listed:?}")),
        ("a failed revoke", format!("{failed:?}")),
        ("a missing database", format!("{refused:?}")),
    ] {
        assert!(!text.contains(&password), "{what} printed the password");
    }
}

#[test]
fn concurrent_logins_on_two_instances_keep_a_clients_live_tokens_bounded() {
    let (_home, servers) = instances(2);
    let group = unique("g");
    servers[0].create_group(&group, &["vouchers:read"]);
    let (id, secret) = servers[0].create_client(&unique("till"), &group, None);
    let login = |s: &TestServer| {
        let r = s.token_request(
            &[("grant_type", "client_credentials")],
            Some((&id, &secret)),
        );
        assert_eq!(r.status, 200, "{}", r.body);
    };
    for n in 0..100 {
        login(&servers[n % 2]);
    }
    std::thread::scope(|scope| {
        for t in 0..8 {
            let (s, login) = (&servers[t % 2], &login);
            scope.spawn(move || {
                for _ in 0..6 {
                    login(s);
                }
            });
        }
    });
    let live = servers[0].sql().query_i64(
        "SELECT COUNT(*) FROM tokens WHERE client_id = ?1",
        &[id.as_str().into()],
    );
    assert_eq!(live, 100, "live tokens of one client");
}

#[test]
fn a_database_refusing_connections_gets_503s_that_change_nothing_then_200s_again() {
    let (home, servers) = instances(1);
    let s = &servers[0];
    let t = s.tenant(CASHIER);
    let card = s.create_voucher(&t.token, &json!({"amount": "10.00"}));
    let id = id_of(&card["id"]);
    let path = format!("/v1/vouchers/{id}/charges");
    let r = s.post(
        &path,
        &t.token,
        &json!({"type": "charge", "amount": "1.00"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    // The database stops taking connections and the instance's own are ended: its pooled
    // connections break and new ones are refused.
    let mut own = postgres::Client::connect(&home.db(), postgres::NoTls).expect("connect");
    let name: String = own
        .query_one("SELECT current_database()", &[])
        .expect("name")
        .get(0);
    drop(own);
    let mut admin = postgres::Client::connect(&pg_admin_url(), postgres::NoTls).expect("admin");
    admin
        .batch_execute(&format!(
            "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ))
        .expect("refuse connections");
    // pg_terminate_backend only signals: the backends end when next scheduled. Waited for, so
    // that no request here meets one still alive (a COMMIT it ends would have an unknown
    // outcome, a 500 by design).
    let deadline = Instant::now() + Duration::from_secs(20);
    while admin
        .query_one(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1",
            &[&name],
        )
        .expect("backends")
        .get::<_, i64>(0)
        > 0
    {
        assert!(Instant::now() < deadline, "the backends did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
    for _ in 0..3 {
        let r = s.get("/v1/vouchers", &t.token);
        assert_eq!(r.status, 503, "{}\n{}", r.body, s.output());
        assert_problem(&r, 503, "unavailable");
        assert!(r.header("retry-after").is_some(), "{:?}", r.headers);
        let r = s.post(
            &path,
            &t.token,
            &json!({"type": "charge", "amount": "1.00"}),
        );
        assert_eq!(r.status, 503, "{}\n{}", r.body, s.output());
        assert_problem(&r, 503, "unavailable");
    }
    // The webhook dispatcher, failing ten times a second meanwhile, says so once every 10 s
    // (twice if a slow machine took that long to get here).
    std::thread::sleep(Duration::from_millis(1500));
    let output = s.output();
    let lines = output.matches("vouchd: webhooks:").count();
    assert!(lines <= 2, "{lines} lines from the dispatcher:\n{output}");
    admin
        .batch_execute(&format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true"))
        .expect("take connections again");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = s.get("/v1/vouchers", &t.token);
        if r.status == 200 {
            break;
        }
        assert_problem(&r, 503, "unavailable");
        assert!(
            Instant::now() < deadline,
            "still 503 after the database came back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Only the charge acknowledged before happened.
    assert_eq!(cents(&voucher(s, &t.token, &id)["remaining_amount"]), 900);
    assert_eq!(assert_balance_is_ledger(s, &t.token, &id).len(), 1);
    let output = s.output();
    assert!(
        output.contains("cannot open a PostgreSQL connection"),
        "{output}"
    );
    assert!(!output.contains("panicked"), "{output}");
    assert!(!output.contains(&password_of(&home.db())), "{output}");
}
