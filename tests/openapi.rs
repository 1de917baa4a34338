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
