//! Revocation wins every race with a login, tokens of revoked clients and expired tokens leave
//! the database, and a client's live tokens are bounded (issue 19, item 1).

use crate::common::*;
use serde_json::json;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const ROUNDS: u8 = 16;
/// The rounds stop early past this, so a slow machine bounds the test in time.
const TIME_LIMIT: Duration = Duration::from_secs(90);
/// Threads logging in while the revocation runs.
const LOGINS: usize = 3;

/// Rows of the tokens table that belong to revoked clients.
fn tokens_of_revoked_clients(s: &TestServer) -> i64 {
    s.sql().query_i64(
        "SELECT COUNT(*) FROM tokens t JOIN clients c ON c.id = t.client_id
         WHERE c.revoked_at IS NOT NULL",
        &[],
    )
}

#[test]
fn no_token_issued_before_or_during_a_revocation_works_after_it_returns() {
    let s = TestServer::start();
    let admin = s.admin_token();
    let group = unique("g");
    s.create_group(&group, CASHIER);
    let started = Instant::now();
    let (mut rounds, mut raced, mut alive) = (0, 0, Vec::new());
    for round in 0..ROUNDS {
        if started.elapsed() > TIME_LIMIT {
            break;
        }
        // Each round logs in from its own address, so the failed logins after a revocation
        // never add up to the address's lock-out.
        let source = Ipv4Addr::new(127, 0, 19, round + 1);
        let (id, secret) = s.create_client(&unique("till"), &group, None);
        let by_cli = round % 2 == 1;
        let stop = AtomicBool::new(false);
        let tokens = Mutex::new(Vec::new());
        let late = std::thread::scope(|scope| {
            for _ in 0..LOGINS {
                scope.spawn(|| {
                    while !stop.load(Ordering::SeqCst) {
                        let r = s.token_request_from(source, &id, &secret);
                        if r.status == 200 {
                            let token = r.json["access_token"].as_str().expect("token");
                            tokens.lock().expect("tokens").push(token.to_string());
                        }
                    }
                });
            }
            // Let the logins get going, then revoke at a different point of their work.
            std::thread::sleep(Duration::from_millis(40 + u64::from(round) * 7 % 60));
            if by_cli {
                let out = s.cli(&["client", "revoke", &id]);
                assert!(out.status.success(), "client revoke: {out:?}");
            } else {
                let r = s.delete(&format!("/v1/clients/{id}"), &admin);
                assert_eq!(r.status, 204, "{}", r.body);
            }
            let returned = tokens.lock().expect("tokens").len();
            stop.store(true, Ordering::SeqCst);
            returned
        });
        let tokens = tokens.into_inner().expect("tokens");
        if by_cli {
            // Another process on the file: the server's cache notices within a second (its
            // watcher looks four times a second), or later on a busy machine: waited for on the
            // last token handed out, up to 10 s, before every token is tried.
            let waited = Instant::now();
            if let Some(last) = tokens.last() {
                while s.get("/v1/vouchers", last).status != 401
                    && waited.elapsed() < Duration::from_secs(10)
                {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        rounds += 1;
        raced += usize::from(tokens.len() > late);
        for token in tokens {
            let read = s.get("/v1/vouchers", &token);
            let write = s.post("/v1/vouchers", &token, &json!({"amount": "1.00"}));
            if read.status != 401 || write.status != 401 {
                alive.push(format!(
                    "round {round} ({}): GET {} POST {}",
                    if by_cli { "CLI" } else { "API" },
                    read.status,
                    write.status
                ));
            }
        }
    }
    assert!(rounds >= 6, "only {rounds} rounds within {TIME_LIMIT:?}");
    assert!(
        alive.is_empty(),
        "tokens still work after their client was revoked ({raced} of {rounds} rounds had \
         logins answered after the revocation):\n{}",
        alive.join("\n")
    );
    assert_eq!(tokens_of_revoked_clients(&s), 0);
}

#[test]
fn a_clients_live_tokens_are_bounded_and_the_oldest_ends_first() {
    let s = TestServer::start();
    let group = unique("g");
    s.create_group(&group, CASHIER);
    let (id, secret) = s.create_client(&unique("till"), &group, None);
    let login = || {
        let r = s.token_request(
            &[("grant_type", "client_credentials")],
            Some((&id, &secret)),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.json["access_token"].as_str().expect("token").to_string()
    };
    let first = login();
    assert_eq!(s.get("/v1/vouchers", &first).status, 200, "cached now");
    // Token times are seconds: the first is strictly the oldest one second later.
    std::thread::sleep(Duration::from_millis(1100));
    let mut last = first.clone();
    for _ in 0..100 {
        last = login();
    }
    let live = s.sql().query_i64(
        "SELECT COUNT(*) FROM tokens WHERE client_id = ?1",
        &[id.as_str().into()],
    );
    assert_eq!(live, 100, "live tokens of one client");
    assert_problem(&s.get("/v1/vouchers", &first), 401, "invalid_token");
    assert_eq!(s.get("/v1/vouchers", &last).status, 200);
}

#[test]
fn expired_tokens_are_deleted_by_the_next_login() {
    let s = TestServer::start();
    let group = unique("g");
    s.create_group(&group, CASHIER);
    let (id, secret) = s.create_client(&unique("till"), &group, None);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let mut db = s.sql();
    let hash: Vec<u8> = (0..32).map(|_| rand::random::<u8>()).collect();
    db.execute(
        "INSERT INTO tokens (hash, client_id, scopes, expires_at, created_at)
         VALUES (?1, ?2, 'vouchers:read', CAST(?3 AS BIGINT), CAST(?4 AS BIGINT))",
        &[
            hash.into(),
            id.as_str().into(),
            (now - 60).into(),
            (now - 3660).into(),
        ],
    );
    assert_eq!(
        db.query_i64(
            "SELECT COUNT(*) FROM tokens WHERE expires_at <= CAST(?1 AS BIGINT)",
            &[now.into()]
        ),
        1,
        "the expired token is in"
    );
    s.token(&id, &secret, None);
    let expired = db.query_i64(
        "SELECT COUNT(*) FROM tokens WHERE expires_at <= CAST(?1 AS BIGINT)",
        &[now.into()],
    );
    assert_eq!(expired, 0);
}
