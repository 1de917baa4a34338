//! vouchd's own HTTP/1.1 layer, spoken to byte by byte: the request-smuggling and framing
//! refusals (issue 14 acceptance 2, issue 19 item 5), HTTP/1.0, pipelining, `Expect:
//! 100-continue`, HEAD on every GET route and `Cache-Control: no-store` (issue 19 item 13),
//! 405 with the path's `Allow` everywhere (item 15), the per-address cap (item 4) and route
//! templates in the error log (item 16).

use crate::common::*;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// One reply as it came off the wire.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A raw connection with what was read of it but not used yet.
pub struct Wire {
    pub stream: TcpStream,
    pub pending: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Wire {
    pub fn connect(addr: &str) -> Wire {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Wire {
            stream,
            pending: Vec::new(),
        }
    }

    /// `n` keep-alive connections, each answered one `GET /healthz` (so the server holds
    /// them open, idle).
    pub fn idle_ones(addr: &str, n: usize) -> Vec<Wire> {
        (0..n)
            .map(|_| {
                let mut wire = Wire::connect(addr);
                wire.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
                assert_eq!(wire.answer(false).expect("a reply").status, 200);
                wire
            })
            .collect()
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Reads more; false once the server closed.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                self.pending.extend_from_slice(&chunk[..n]);
                true
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => false,
            Err(e) => panic!(
                "no answer within the timeout ({e}); so far: {:?}",
                String::from_utf8_lossy(&self.pending)
            ),
        }
    }

    /// The next whole reply (a `100 Continue` too); `None` if the server closed before one
    /// began. A reply cut short fails the test.
    pub fn answer(&mut self, head_only: bool) -> Option<Answer> {
        let end = loop {
            if let Some(end) = find(&self.pending, b"\r\n\r\n") {
                break end;
            }
            if !self.fill() {
                assert!(
                    self.pending.is_empty(),
                    "closed inside a reply head: {:?}",
                    String::from_utf8_lossy(&self.pending)
                );
                return None;
            }
        };
        let head = String::from_utf8_lossy(&self.pending[..end]).into_owned();
        self.pending.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        assert!(status_line.starts_with("HTTP/1.1 "), "{status_line:?}");
        let status: u16 = status_line[9..12].parse().expect("status code");
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut answer = Answer {
            status,
            headers,
            body: Vec::new(),
        };
        if head_only || status < 200 || status == 204 || status == 304 {
            return Some(answer);
        }
        if let Some(length) = answer.header("content-length") {
            let length: usize = length.parse().expect("numeric Content-Length");
            while self.pending.len() < length {
                assert!(self.fill(), "closed inside a body of {length} bytes");
            }
            answer.body = self.pending.drain(..length).collect();
        } else if answer.header("transfer-encoding") == Some("chunked") {
            loop {
                let line_end = loop {
                    if let Some(p) = find(&self.pending, b"\r\n") {
                        break p;
                    }
                    assert!(self.fill(), "closed inside a chunked body");
                };
                let size_text = String::from_utf8_lossy(&self.pending[..line_end]).into_owned();
                let size = usize::from_str_radix(size_text.trim(), 16).expect("chunk size");
                while self.pending.len() < line_end + 2 + size + 2 {
                    assert!(self.fill(), "closed inside a chunk");
                }
                answer
                    .body
                    .extend_from_slice(&self.pending[line_end + 2..line_end + 2 + size]);
                self.pending.drain(..line_end + 2 + size + 2);
                if size == 0 {
                    break;
                }
            }
        } else {
            while self.fill() {}
            answer.body = std::mem::take(&mut self.pending);
        }
        Some(answer)
    }

    /// Whether the server closed the connection (within the read timeout) with nothing more.
    pub fn closed(&mut self) -> bool {
        !self.fill() && self.pending.is_empty()
    }
}

/// Requests that reached the router, by `METHOD route` (every status summed), from the
/// `vouchd_http_requests_total` series of one `/metrics` scrape.
fn handled_by_route(s: &TestServer, token: &str) -> BTreeMap<String, u64> {
    let r = s.get("/metrics", token);
    assert_eq!(r.status, 200, "{}", r.body);
    let label = |line: &str, name: &str| -> String {
        let start = line
            .find(&format!("{name}=\""))
            .unwrap_or_else(|| panic!("no {name} in {line}"))
            + name.len()
            + 2;
        let len = line[start..].find('"').expect("a closing quote");
        line[start..start + len].to_string()
    };
    let mut by_route = BTreeMap::new();
    for line in r.body.lines() {
        if !line.starts_with("vouchd_http_requests_total{") {
            continue;
        }
        let count: u64 = line
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not a count: {line}"));
        let key = format!("{} {}", label(line, "method"), label(line, "route"));
        *by_route.entry(key).or_insert(0) += count;
    }
    by_route
}

/// Scrapes until the requests counted by route are exactly `sent` (with this test's own
/// earlier scrapes, `scrapes` of them, added as `GET /metrics`) and returns the scrapes made
/// in all. A request is counted once its reply has gone out, which can be just after the client
/// read it, so a count may lag behind for a while, but it never runs ahead: a route not in
/// `sent`, or more requests on one than were sent, fails at once.
fn handled_exactly(s: &TestServer, token: &str, sent: &[(&str, u64)], mut scrapes: u64) -> u64 {
    for _ in 0..250 {
        let counted = handled_by_route(s, token);
        let mut expected: BTreeMap<String, u64> =
            sent.iter().map(|(k, n)| (k.to_string(), *n)).collect();
        *expected.entry("GET /metrics".to_string()).or_insert(0) += scrapes;
        for (route, n) in &counted {
            let limit = expected.get(route).copied().unwrap_or(0);
            assert!(
                *n <= limit,
                "requests reached a handler: {n} on {route}, {limit} sent; counted {counted:?}"
            );
        }
        scrapes += 1;
        expected.retain(|_, n| *n > 0);
        if counted == expected {
            return scrapes;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("the request counts never reached {sent:?} with {scrapes} scrapes");
}

const HIDDEN: &str = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

#[test]
fn smuggling_and_ambiguous_framing_are_refused_closed_and_never_reach_a_handler() {
    let s = TestServer::start();
    let post = "POST /v1/vouchers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n";
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("CL then TE", format!("{post}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{HIDDEN}").into_bytes(), 400),
        ("TE then CL", format!("{post}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n{HIDDEN}").into_bytes(), 400),
        ("equal duplicate CL", format!("{post}Content-Length: 2\r\nContent-Length: 2\r\n\r\n{{}}{HIDDEN}").into_bytes(), 400),
        ("different duplicate CL", format!("{post}Content-Length: 2\r\nContent-Length: 40\r\n\r\n{{}}{HIDDEN}").into_bytes(), 400),
        ("TE chunked, identity", format!("{post}Transfer-Encoding: chunked, identity\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n{HIDDEN}").into_bytes(), 400),
        // An unknown transfer coding is 501 (RFC 9112 §6.1), still refused and closed.
        ("TE xchunked", format!("{post}Transfer-Encoding: xchunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n{HIDDEN}").into_bytes(), 501),
        ("TE gzip next to a CL", format!("{post}Transfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{{}}{HIDDEN}").into_bytes(), 400),
        ("TE identity next to a CL", format!("{post}Transfer-Encoding: identity\r\nContent-Length: 2\r\n\r\n{{}}{HIDDEN}").into_bytes(), 400),
        ("Connection: keep-alive, Upgrade with a CL", format!("{post}Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nContent-Length: 2\r\n\r\n{{}}{HIDDEN}").into_bytes(), 400),
        ("obs-fold", format!("{post}X-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\n{{}}{HIDDEN}").into_bytes(), 400),
        ("bare CR in a header", format!("{post}X-Cr: a\rb\r\nContent-Length: 2\r\n\r\n{{}}{HIDDEN}").into_bytes(), 400),
        ("non-UTF-8 header bytes", [format!("{post}X-Latin: caf").as_bytes(), &[0xE9], format!("\r\nContent-Length: 2\r\n\r\n{{}}{HIDDEN}").as_bytes()].concat(), 400),
        ("bad chunk size, then more bytes", format!("{post}Transfer-Encoding: chunked\r\n\r\nzz\r\n{HIDDEN}").into_bytes(), 400),
        ("chunk size past u64", format!("{post}Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF\r\n{HIDDEN}").into_bytes(), 400),
        ("CL -1", format!("{post}Content-Length: -1\r\n\r\n{HIDDEN}").into_bytes(), 400),
        ("CL +5", format!("{post}Content-Length: +5\r\n\r\n{{}}   {HIDDEN}").into_bytes(), 400),
        ("CL 1e2", format!("{post}Content-Length: 1e2\r\n\r\n{HIDDEN}").into_bytes(), 400),
        ("CL one past u64", format!("{post}Content-Length: 18446744073709551616\r\n\r\n{HIDDEN}").into_bytes(), 400),
    ];
    // The only request routed so far: this token's.
    let token = s.admin_token();
    for (name, bytes, status) in &cases {
        let mut wire = Wire::connect(s.host());
        wire.send(bytes);
        let answer = wire
            .answer(false)
            .unwrap_or_else(|| panic!("{name}: closed without a reply"));
        assert_eq!(answer.status, *status, "{name}: {}", answer.text());
        assert_eq!(
            answer.header("content-type"),
            Some("application/problem+json"),
            "{name}"
        );
        assert_eq!(answer.header("connection"), Some("close"), "{name}");
        let problem: serde_json::Value = serde_json::from_slice(&answer.body).expect("problem");
        assert_eq!(problem["status"], json!(status), "{name}");
        // Closed, and the request hidden behind it never answered.
        assert!(wire.closed(), "{name}: the connection stayed open");
    }
    // A request handled on one of those connections is counted before the server closes it,
    // so it is in the counts already; the token request and the scrapes may still be on their
    // way. Nothing else reached a handler: not one refused request, nor a hidden one.
    handled_exactly(&s, &token, &[("POST /oauth/token", 1)], 0);
    assert_eq!(s.get("/healthz", "x").status, 200);
}

#[test]
fn http_1_0_closes_after_the_reply_unless_keep_alive_is_asked() {
    let s = TestServer::start();
    let mut wire = Wire::connect(s.host());
    wire.send(b"GET /healthz HTTP/1.0\r\n\r\n");
    let answer = wire.answer(false).expect("a reply");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("connection"), Some("close"));
    assert!(wire.closed(), "an HTTP/1.0 connection stays open");

    let mut wire = Wire::connect(s.host());
    for _ in 0..3 {
        wire.send(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let answer = wire.answer(false).expect("a reply");
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.header("connection"), Some("keep-alive"));
        assert_eq!(answer.text(), r#"{"status":"ok"}"#);
    }
}

#[test]
fn connection_close_is_honoured_and_a_missing_host_is_400() {
    let s = TestServer::start();
    let mut wire = Wire::connect(s.host());
    wire.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let answer = wire.answer(false).expect("a reply");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("connection"), Some("close"));
    assert!(wire.closed());

    let mut wire = Wire::connect(s.host());
    wire.send(b"GET /healthz HTTP/1.1\r\n\r\n");
    let answer = wire.answer(false).expect("a reply");
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(wire.closed());
}

#[test]
fn ten_pipelined_requests_in_one_write_are_answered_in_order() {
    let s = TestServer::start();
    let token = s.admin_token();
    let ids: Vec<String> = (0..9)
        .map(|i| {
            let amount = format!("{}.00", i + 1);
            id_of(&s.create_voucher(&token, &json!({ "amount": amount }))["id"])
        })
        .collect();
    let mut batch = String::new();
    for (i, id) in ids.iter().enumerate() {
        batch.push_str(&format!(
            "GET /v1/vouchers/{id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
        ));
        if i == 4 {
            // A request with a body in the middle: its framing must not eat the next one.
            let body = r#"{"amount":"77.00"}"#;
            batch.push_str(&format!(
                "POST /v1/vouchers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
        }
    }
    let mut wire = Wire::connect(s.host());
    wire.send(batch.as_bytes());
    let mut seen = Vec::new();
    for _ in 0..10 {
        let answer = wire.answer(false).expect("a reply for every request");
        let v: serde_json::Value = serde_json::from_slice(&answer.body).expect("json");
        seen.push((
            answer.status,
            v["amount"].as_str().unwrap_or("").to_string(),
        ));
    }
    let mut want: Vec<(u16, String)> = (1..=9).map(|i| (200, format!("{i}.00"))).collect();
    want.insert(5, (201, "77.00".into()));
    assert_eq!(seen, want);
}

#[test]
fn expect_100_continue_gets_100_only_when_the_body_will_be_read() {
    let s = TestServer::start();
    let token = s.admin_token();
    let body = r#"{"amount":"5.00"}"#;
    let mut wire = Wire::connect(s.host());
    wire.send(
        format!(
            "POST /v1/vouchers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    let interim = wire.answer(false).expect("100 Continue");
    assert_eq!(interim.status, 100);
    wire.send(body.as_bytes());
    let answer = wire.answer(false).expect("the reply");
    assert_eq!(answer.status, 201, "{}", answer.text());

    // Over the limit: 413 at once instead of a 100, and no body is waited for.
    let mut wire = Wire::connect(s.host());
    wire.send(
        b"POST /v1/vouchers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Expect: 100-continue\r\nContent-Length: 5000000\r\n\r\n",
    );
    let answer = wire.answer(false).expect("the refusal");
    assert_eq!(answer.status, 413, "{}", answer.text());
    assert!(wire.closed());
}

/// Every GET route of the table with its parameters filled in from real data.
fn get_paths(s: &TestServer, token: &str) -> Vec<(String, String)> {
    let v = s.create_voucher(token, &json!({"amount": "9.00"}));
    let id = id_of(&v["id"]);
    // A POS look-up finds discount vouchers only.
    let pos = s.post(
        "/pos/v1/vouchers",
        token,
        &json!({"customer_id": null, "product_id": null, "label": "l",
                "valid_until": "2099-01-01", "discount": {"type": "money", "value": 2}}),
    );
    assert_eq!(pos.status, 201, "{}", pos.body);
    let code = pos.json["code"].as_str().expect("code").to_string();
    let hook = s.post(
        "/v1/webhooks",
        token,
        &json!({"url": "http://127.0.0.1:9/", "events": ["import.completed"]}),
    );
    assert_eq!(hook.status, 201, "{}", hook.body);
    let hook = id_of(&hook.json["id"]);
    use vouchd::http::router::{CARECLOUD_ROUTES, POS_ROUTES, ROUTES};
    [ROUTES, CARECLOUD_ROUTES, POS_ROUTES]
        .concat()
        .iter()
        .filter(|(method, _)| *method == "GET")
        .map(|(_, template)| {
            let path = template
                .replace("/ui/{file}", "/ui/app.js")
                .replace(
                    "/pos/v1/vouchers/{code}",
                    &format!("/pos/v1/vouchers/{code}"),
                )
                .replace("/v1/vouchers/{id}", &format!("/v1/vouchers/{id}"))
                .replace("/v1/webhooks/{id}", &format!("/v1/webhooks/{hook}"))
                .replace("{id}", "C1")
                .replace("{customer_id}", "C1")
                .replace("{purchase_id}", "P1");
            (template.to_string(), path)
        })
        .collect()
}

#[test]
fn head_answers_every_get_route_with_its_headers_and_no_body() {
    let s = TestServer::start();
    let token = s.admin_token();
    for (template, path) in get_paths(&s, &token) {
        let request = |method: &str| {
            format!("{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n")
        };
        let mut wire = Wire::connect(s.host());
        wire.send(request("GET").as_bytes());
        let get = wire.answer(false).expect("GET reply");
        assert!(
            get.status < 300,
            "{template} {path}: GET {}: {}",
            get.status,
            get.text()
        );
        // HEAD, then a GET pipelined behind it: a HEAD reply that carried a body would
        // be read as the start of the second reply.
        wire.send(format!("{}{}", request("HEAD"), request("GET")).as_bytes());
        let head = wire.answer(true).expect("HEAD reply");
        assert_eq!(head.status, get.status, "{template}");
        assert_eq!(
            head.header("content-type"),
            get.header("content-type"),
            "{template}"
        );
        match get.header("content-length") {
            // The metrics change from one scrape to the next; their length with them.
            Some(_) if template == "/metrics" => assert!(head.header("content-length").is_some()),
            Some(length) => assert_eq!(head.header("content-length"), Some(length), "{template}"),
            None => assert_eq!(
                head.header("transfer-encoding"),
                Some("chunked"),
                "{template}"
            ),
        }
        let again = wire.answer(false).expect("the GET behind the HEAD");
        assert_eq!(again.status, get.status, "{template}: {}", again.text());
    }
}

#[test]
fn authenticated_replies_carry_cache_control_no_store() {
    let s = TestServer::start();
    let token = s.admin_token();
    let created = s.post("/v1/vouchers", &token, &json!({"amount": "3.00"}));
    assert_eq!(created.status, 201);
    let id = id_of(&created.json["id"]);
    for r in [
        created,
        s.get("/v1/vouchers", &token),
        s.get(&format!("/v1/vouchers/{id}"), &token),
        s.get("/v1/vouchers/NOSUCHVOUCHER", &token),
        s.get("/v1/stats", &token),
        s.get("/pos/v1/vouchers", &token),
        s.call("GET", "/v1/vouchers", Some("not-a-token"), None),
    ] {
        assert_eq!(
            r.header("cache-control"),
            Some("no-store"),
            "{} {}",
            r.status,
            r.body
        );
    }
    assert_eq!(
        s.call("GET", "/healthz", None, None)
            .header("cache-control"),
        None
    );
}

#[test]
fn a_wrong_method_on_any_path_is_405_with_the_allow_of_the_route_table() {
    let s = TestServer::start();
    let token = s.admin_token();
    let mut templates: Vec<&str> = vouchd::http::router::ROUTES
        .iter()
        .map(|(_, t)| *t)
        .collect();
    templates.dedup();
    for template in templates {
        let routed: BTreeSet<&str> = vouchd::http::router::ROUTES
            .iter()
            .filter(|(_, t)| *t == template)
            .map(|(m, _)| *m)
            .collect();
        let mut allowed = routed.clone();
        if routed.contains("GET") {
            allowed.insert("HEAD");
        }
        let path = template
            .replace("{file}", "app.js")
            .replace("{id}", "ABCDEFGH23456789")
            .replace("{rid}", "R1")
            .replace("{code}", "ABCDEFGH");
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
            if allowed.contains(method) {
                continue;
            }
            let r = s.send(
                method,
                &path,
                &[("Authorization", &format!("Bearer {token}"))],
                Some(("application/json", b"{}")),
            );
            assert_problem(&r, 405, "method_not_allowed");
            let allow: BTreeSet<&str> = r
                .header("allow")
                .unwrap_or_else(|| panic!("{method} {path}: 405 without Allow"))
                .split(", ")
                .collect();
            assert_eq!(allow, allowed, "{method} {path}");
        }
    }
}

/// A connection from `source` (any 127.0.0.0/8 address) to the server.
pub fn connect_from(source: [u8; 4], to: &str) -> std::io::Result<TcpStream> {
    let to: SocketAddr = to.parse().expect("address");
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    let from = SocketAddr::from((source, 0));
    socket.bind(&from.into())?;
    socket.connect_timeout(&to.into(), Duration::from_secs(5))?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    Ok(stream)
}

#[test]
fn one_address_cannot_fill_the_server_past_its_own_cap() {
    let s = TestServer::start_with(&["--max-connections-per-ip", "20"]);
    let held: Vec<TcpStream> = (0..20)
        .map(|_| connect_from([127, 0, 0, 1], s.host()).expect("connect"))
        .collect();
    // Each is accepted and counted (the gauge), then the twenty-first is refused.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut wire = Wire {
            stream: connect_from([127, 0, 0, 1], s.host()).expect("connect"),
            pending: Vec::new(),
        };
        wire.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        let answer = wire.answer(false).expect("a reply");
        if answer.status == 503 {
            assert_eq!(answer.header("retry-after"), Some("1"));
            assert_eq!(
                answer.header("content-type"),
                Some("application/problem+json")
            );
            assert!(answer.text().contains(r#""code":"too_many_connections""#));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never refused: {}",
            answer.status
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Another address is served meanwhile.
    let mut other = Wire {
        stream: connect_from([127, 0, 0, 2], s.host()).expect("connect from 127.0.0.2"),
        pending: Vec::new(),
    };
    other.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(other.answer(false).expect("a reply").status, 200);
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    while s
        .raw("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .status
        != 200
    {
        assert!(
            Instant::now() < deadline,
            "the address was not let in again"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_internal_error_is_logged_with_the_route_template_not_the_path() {
    let s = TestServer::start();
    let token = s.admin_token();
    let v = s.create_voucher(&token, &json!({"amount": "4.00"}));
    let id = id_of(&v["id"]);
    // A JTL client and a CareCloud customer of another group, set up before the breakage.
    let tenant = s.tenant(&["vouchers:read", "vouchers:write", "charges:read"]);
    let theirs = s.create_voucher(
        &tenant.token,
        &json!({"amount": "4.00", "customer_id": "cust-secret-7"}),
    );
    let jtl_id = id_of(&theirs["id"]);
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        tenant.client_id,
        enc(&tenant.secret)
    );
    let jtl = s.send(
        "POST",
        "/jtl/oauth/token",
        &[],
        Some(("application/x-www-form-urlencoded", form.as_bytes())),
    );
    assert_eq!(jtl.status, 200, "{}", jtl.body);
    let jtl_token = jtl.json["access_token"]
        .as_str()
        .expect("a token")
        .to_string();
    // Another connection takes the ledger table away: every read of it fails inside the server.
    s.sql().batch("ALTER TABLE ledger RENAME TO ledger_gone");
    let r = s.get(&format!("/v1/vouchers/{id}/charges"), &token);
    assert_problem(&r, 500, "internal_error");
    let r = s.get(&format!("/jtl/v1/vouchers/{jtl_id}/charges"), &jtl_token);
    assert_eq!(r.status, 500, "{}", r.body);
    s.wait_for_line(|l| l.starts_with("vouchd: GET /jtl/"))
        .unwrap_or_else(|| panic!("no JTL error line:\n{}", s.output()));
    let line = s
        .wait_for_line(|l| l.starts_with("vouchd: GET /v1/vouchers/"))
        .unwrap_or_else(|| panic!("no error line:\n{}", s.output()));
    assert!(
        line.starts_with("vouchd: GET /v1/vouchers/{id}/charges: "),
        "{line}"
    );
    assert!(
        !s.output().contains(&format!("GET /v1/vouchers/{id}")),
        "{}",
        s.output()
    );
    // The vouchers table goes too: CareCloud's list fails inside the server.
    s.sql()
        .batch("ALTER TABLE vouchers RENAME TO vouchers_gone");
    let r = s.get(
        "/carecloud/rest-api/enterprise-interface/v1.0/customers/cust-secret-7/vouchers",
        &tenant.token,
    );
    assert_eq!(r.status, 500, "{}", r.body);
    s.wait_for_line(|l| l.starts_with("vouchd: GET /carecloud/"))
        .unwrap_or_else(|| panic!("no CareCloud error line:\n{}", s.output()));
    let out = s.output();
    assert!(
        out.contains("vouchd: GET /jtl/v1/vouchers/{id}/charges: "),
        "{out}"
    );
    assert!(
        out.contains(
            "vouchd: GET /carecloud/rest-api/enterprise-interface/v1.0/customers/{customer_id}/vouchers: "
        ),
        "{out}"
    );
    assert!(
        !out.contains(&jtl_id) && !out.contains("cust-secret-7"),
        "{out}"
    );
}

#[test]
fn the_server_depends_on_no_tiny_http_and_the_repository_vendors_nothing() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(!root.join("vendor").exists(), "vendor/ is back");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["tree", "--offline", "-e", "normal", "--prefix", "none"])
        .current_dir(root)
        .output()
        .expect("cargo tree runs");
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(tree.contains("httparse"), "{tree}");
    assert!(!tree.contains("tiny_http"), "{tree}");
}

#[test]
fn sigterm_closes_idle_keep_alive_connections_and_exits_0() {
    let mut s = TestServer::start();
    let mut idle = Wire::idle_ones(s.host(), 5);
    s.signal("TERM");
    // Idle connections do not hold the stop up: well inside the idle timeout.
    let status = s.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "{}", s.output());
    for wire in &mut idle {
        assert!(wire.closed(), "an idle connection outlived the server");
    }
}
