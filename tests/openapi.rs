//! `GET /openapi.json` kept true: the document describes exactly the router's routes, and the
//! schemathesis fuzzer, run against the real server with a token, finds every answer documented
//! (status, content type, headers, schema) and every error a problem whose `status` is the HTTP
//! status. Also the regression tests for what the fuzzer found.

use crate::common::*;
use std::time::Duration;

#[test]
fn server_still_accepts_connections_after_a_quiet_spell_longer_than_the_io_timeout() {
    // The listener's SO_RCVTIMEO (10 s, inherited by every connection) also times out its
    // accept(); tiny_http ends its accept thread on that error, and the server stopped
    // listening after ten quiet seconds (a keep-alive client saw "connection refused" next).
    let server = TestServer::start();
    assert_eq!(server.call("GET", "/healthz", None, None).status, 200);
    std::thread::sleep(Duration::from_secs(13));
    let r = server.call("GET", "/healthz", None, None);
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn a_replayed_create_sends_its_location_again() {
    let server = TestServer::start();
    let token = server.admin_token();
    let body = serde_json::to_vec(&serde_json::json!({"amount": "5.00"})).expect("json");
    for (path, body) in [
        ("/v1/vouchers", body),
        (
            "/pos/v1/vouchers",
            br#"{"customer_id":null,"product_id":null,"label":"l","valid_until":"2099-01-01","discount":{"type":"money","value":2}}"#.to_vec(),
        ),
    ] {
        let auth = format!("Bearer {token}");
        let key = format!("replay-location{path}");
        let headers = [("Authorization", auth.as_str()), ("Idempotency-Key", key.as_str())];
        let first = server.send("POST", path, &headers, Some(("application/json", &body)));
        assert_eq!(first.status, 201, "{}", first.body);
        let again = server.send("POST", path, &headers, Some(("application/json", &body)));
        assert_eq!(again.status, 201, "{}", again.body);
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert_eq!(again.body, first.body);
        let location = first.header("location").expect("Location on the first reply");
        assert_eq!(again.header("location"), Some(location), "{path}");
    }
}
