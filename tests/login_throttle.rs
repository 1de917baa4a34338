//! The login throttle counts an attempt before checking it, and a lock-out that strangers
//! cause stays at their address (issue 19, item 6).

use crate::common::*;
use std::net::Ipv4Addr;

/// Failed logins one address (or one client at one address) may make in a minute.
const LIMIT: usize = 10;

#[test]
fn parallel_wrong_secrets_get_no_more_checks_than_the_limit() {
    let s = TestServer::start();
    let group = unique("g");
    s.create_group(&group, CASHIER);
    let (id, _) = s.create_client(&unique("till"), &group, None);
    let source = Ipv4Addr::new(127, 0, 6, 1);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2 * LIMIT)
            .map(|i| {
                let id = &id;
                let s = &s;
                scope.spawn(move || {
                    s.token_request_from(source, id, &format!("wrong-{i}"))
                        .status
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("login thread"))
            .collect()
    });
    let checked = statuses.iter().filter(|&&st| st == 401).count();
    let refused = statuses.iter().filter(|&&st| st == 429).count();
    assert_eq!(checked + refused, statuses.len(), "{statuses:?}");
    assert_eq!(checked, LIMIT, "secrets checked: {statuses:?}");
}

#[test]
fn strangers_locking_a_client_out_do_not_stop_its_right_secret() {
    let s = TestServer::start();
    let group = unique("g");
    s.create_group(&group, CASHIER);
    let (id, secret) = s.create_client(&unique("till"), &group, None);
    let stranger = Ipv4Addr::new(127, 0, 6, 2);
    for i in 0..LIMIT {
        let r = s.token_request_from(stranger, &id, &format!("guess-{i}"));
        assert_oauth_error(&r, 401, "invalid_client");
    }
    let locked = s.token_request_from(stranger, &id, "one more guess");
    assert_oauth_error(&locked, 429, "slow_down");
    assert!(locked.header("retry-after").is_some());
    // At the stranger's address even the right secret waits: the lock-out holds there.
    assert_eq!(s.token_request_from(stranger, &id, &secret).status, 429);

    // The till at its own address logs in, and may still mistype now and then.
    let till = Ipv4Addr::new(127, 0, 6, 3);
    let wrong = s.token_request_from(till, &id, "typo");
    assert_oauth_error(&wrong, 401, "invalid_client");
    let right = s.token_request_from(till, &id, &secret);
    assert_eq!(right.status, 200, "{}", right.body);
}

#[test]
fn successful_logins_never_lock_an_address_out() {
    let s = TestServer::start();
    let group = unique("g");
    s.create_group(&group, CASHIER);
    let (id, secret) = s.create_client(&unique("till"), &group, None);
    let till = Ipv4Addr::new(127, 0, 6, 4);
    for _ in 0..=LIMIT + 2 {
        let r = s.token_request_from(till, &id, &secret);
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

#[test]
fn an_overlong_client_id_is_refused_before_it_is_counted_or_kept() {
    let s = TestServer::start();
    let group = unique("g");
    s.create_group(&group, CASHIER);
    let (id, secret) = s.create_client(&unique("till"), &group, None);
    let source = Ipv4Addr::new(127, 0, 6, 9);
    let long = "X".repeat(4000);
    for i in 0..2 * LIMIT {
        let r = s.token_request_from(source, &format!("{long}{i}"), "wrong");
        assert_oauth_error(&r, 401, "invalid_client");
    }
    let right = s.token_request_from(source, &id, &secret);
    assert_eq!(right.status, 200, "{}", right.body);
}
