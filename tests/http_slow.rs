//! Clients slower than the server: a slow reader must not hold a worker for its whole reply
//! (its reply waits in epoll for room, review finding 4), a body must be whole within a
//! deadline fixed when its head is accepted (finding 14), and behind a trusted reverse proxy
//! the client's address comes from `X-Forwarded-For` (finding 15).

use crate::common::*;
use crate::http::Wire;
use serde_json::json;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A connection with a small receive buffer and small segments, as over a slow link: the
/// server's send buffer stays small (on loopback it would hold megabytes), so a reply larger
/// than it waits for the client to read.
fn narrow_connection(to: &str) -> TcpStream {
    let to: SocketAddr = to.parse().expect("address");
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("a socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let mss: libc::c_int = 536;
    // SAFETY: sets an int option from a live int on a live socket.
    let set = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&socket),
            libc::IPPROTO_TCP,
            libc::TCP_MAXSEG,
            std::ptr::addr_of!(mss).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(set, 0, "TCP_MAXSEG");
    socket
        .connect_timeout(&to.into(), Duration::from_secs(5))
        .expect("connect");
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream
}

/// Reads everything until the server closes, `piece` bytes every `pause`.
fn read_slowly(mut stream: TcpStream, piece: usize, pause: Duration) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = vec![0u8; piece];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return all,
            Err(e) => panic!("the reply stalled after {} bytes: {e}", all.len()),
        }
        std::thread::sleep(pause);
    }
}

#[test]
fn slow_readers_on_every_worker_leave_healthz_prompt_and_still_get_their_replies_whole() {
    const WORKERS: usize = 2;
    let s = TestServer::start_with(&["--threads", "2"]);
    let t = s.tenant(CASHIER);
    let batch = s.post(
        "/v1/vouchers/batch",
        &t.token,
        &json!({"count": 3000, "amount": "5.00", "batch": "slow-readers"}),
    );
    assert_eq!(batch.status, 201, "{}", batch.body);
    let export = s.get("/v1/vouchers/export.csv", &t.token);
    assert_eq!(export.status, 200);
    let document = s.get("/openapi.json", &t.token);
    assert_eq!(document.status, 200);
    assert!(export.body.len() + document.body.len() > 512 * 1024);

    // A streamed export and the 100 KB document eight times behind it, on as many
    // connections as there are workers, each read a few KiB at a time: several seconds each.
    const DOCUMENTS: usize = 8;
    let mut request = format!(
        "GET /v1/vouchers/export.csv HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        t.token
    );
    for i in 1..=DOCUMENTS {
        let close = if i == DOCUMENTS {
            "Connection: close\r\n"
        } else {
            ""
        };
        request.push_str(&format!(
            "GET /openapi.json HTTP/1.1\r\nHost: x\r\n{close}\r\n"
        ));
    }
    let started = Instant::now();
    let readers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let mut stream = narrow_connection(s.host());
            stream.write_all(request.as_bytes()).expect("write");
            std::thread::spawn(move || {
                let bytes = read_slowly(stream, 4096, Duration::from_millis(25));
                (bytes, started.elapsed())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));

    // Meanwhile another client is answered at once, again and again.
    for _ in 0..5 {
        let asked = Instant::now();
        let r = s.raw("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert_eq!(r.status, 200);
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "/healthz waited {:?} behind the slow readers",
            asked.elapsed()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    for reader in readers {
        let (bytes, took) = reader.join().expect("reader");
        assert!(
            took > Duration::from_secs(3),
            "the slow reader was not slow: {took:?}"
        );
        let mut wire = Wire {
            stream: narrow_connection(s.host()),
            pending: bytes,
        };
        let csv = wire.answer(false).expect("the export");
        assert_eq!(csv.status, 200);
        assert_eq!(csv.header("transfer-encoding"), Some("chunked"));
        assert!(
            csv.body == export.body.as_bytes(),
            "the export arrived cut or changed"
        );
        for _ in 0..DOCUMENTS {
            let doc = wire.answer(false).expect("the document");
            assert_eq!(doc.status, 200);
            assert!(
                doc.body == document.body.as_bytes(),
                "the document arrived cut or changed"
            );
        }
        assert!(wire.pending.is_empty(), "more than the replies asked for");
    }
}

#[test]
fn a_streamed_reply_the_client_stops_reading_is_cut_off_at_its_deadline() {
    let s = TestServer::start_with(&["--threads", "2"]);
    let t = s.tenant(CASHIER);
    let batch = s.post(
        "/v1/vouchers/batch",
        &t.token,
        &json!({"count": 3000, "amount": "5.00", "batch": "never-read"}),
    );
    assert_eq!(batch.status, 201, "{}", batch.body);
    let whole = s.get("/v1/vouchers/export.csv", &t.token).body.len();
    let mut stream = narrow_connection(s.host());
    stream
        .write_all(
            format!(
                "GET /v1/vouchers/export.csv HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
                t.token
            )
            .as_bytes(),
        )
        .expect("write");
    let asked = Instant::now();
    // Not a byte is read: past 10 s and what was sent at the minimum rate, the server gives up
    // the reply (and the read snapshot behind it) and resets the connection. Its deadline
    // counts from when it began the reply, which a busy machine delays: so the test waits
    // for the reset (seen without reading) rather than a fixed time.
    let cut = wait_for_hangup(&stream, Duration::from_secs(40));
    assert!(
        cut,
        "no reset {:?} after the request: the reply was not cut off",
        asked.elapsed()
    );
    assert!(
        asked.elapsed() >= Duration::from_secs(10),
        "cut off after {:?}, before its deadline",
        asked.elapsed()
    );
    let got = read_slowly(stream, 64 * 1024, Duration::ZERO);
    assert!(
        got.len() < whole / 2,
        "{} of {whole} bytes: the reply was not cut off",
        got.len()
    );
}

/// Waits up to `limit` for the peer to reset or close `stream`, reading nothing; whether it
/// did.
fn wait_for_hangup(stream: &TcpStream, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let mut fd = libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(stream),
            events: libc::POLLRDHUP,
            revents: 0,
        };
        // SAFETY: one live pollfd.
        let n = unsafe { libc::poll(&mut fd, 1, left.as_millis().min(1000) as libc::c_int) };
        if n > 0 && fd.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0 {
            return true;
        }
    }
}

#[test]
fn a_body_trickling_in_gets_408_at_its_whole_body_deadline_however_often_bytes_come() {
    let s = TestServer::start();
    let mut stream = TcpStream::connect(s.host()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(40)))
        .expect("timeout");
    stream
        .write_all(
            b"POST /v1/validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 1000\r\n\r\n{",
        )
        .expect("write the head");
    let head_sent = Instant::now();
    // A byte a second: every pause is far below the deadline, the whole body far beyond it.
    // The bytes keep coming for 35 s, so a deadline that each byte pushed back would answer
    // only after 45 s; the server's own deadline is 10 s from when it took the head, which a
    // busy machine may do late: 30 s tell the two apart.
    let mut writer = stream.try_clone().expect("clone");
    let trickle = std::thread::spawn(move || {
        while head_sent.elapsed() < Duration::from_secs(35) {
            std::thread::sleep(Duration::from_secs(1));
            if writer.write_all(b" ").is_err() {
                return;
            }
        }
    });
    let mut wire = Wire {
        stream,
        pending: Vec::new(),
    };
    let answer = wire.answer(false).expect("a 408 before the close");
    let took = head_sent.elapsed();
    assert_eq!(answer.status, 408, "{}", answer.text());
    assert!(answer.text().contains("request_timeout"));
    assert!(
        took < Duration::from_secs(30),
        "the body was allowed {took:?} for 1000 bytes"
    );
    assert!(wire.closed());
    trickle.join().expect("trickle");
}

/// `POST /oauth/token` with Basic credentials from `source`, as a proxy would forward it.
fn token_via(s: &TestServer, source: Ipv4Addr, forwarded: &str, id: &str, secret: &str) -> Resp {
    let body = "grant_type=client_credentials";
    let basic = base64(format!("{id}:{secret}").as_bytes());
    s.raw_from(
        source,
        &format!(
            "POST /oauth/token HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {basic}\r\n\
             X-Forwarded-For: {forwarded}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            s.host(),
            body.len()
        ),
    )
}

#[test]
fn behind_a_trusted_proxy_a_stranger_locks_out_only_its_own_forwarded_address() {
    const LIMIT: usize = 10;
    let proxy = Ipv4Addr::new(127, 0, 7, 1);
    let s = TestServer::start_with(&["--trusted-proxy", "127.0.7.1,::1"]);
    let group = unique("g");
    s.create_group(&group, CASHIER);
    let (id, secret) = s.create_client(&unique("till"), &group, None);

    // A stranger behind the proxy guesses until it is locked out…
    for i in 0..LIMIT {
        let r = token_via(
            &s,
            proxy,
            "198.51.100.1, 203.0.113.66",
            &id,
            &format!("guess-{i}"),
        );
        assert_oauth_error(&r, 401, "invalid_client");
    }
    let locked = token_via(&s, proxy, "203.0.113.66", &id, "one more");
    assert_oauth_error(&locked, 429, "slow_down");
    // …and the till behind the same proxy still logs in: the proxy's address is not the key.
    let right = token_via(&s, proxy, "203.0.113.10", &id, &secret);
    assert_eq!(right.status, 200, "{}", right.body);
    assert!(
        s.wait_for_line(|l| l.contains("route=/oauth/token") && l.contains(" remote=203.0.113.10 "))
            .is_some(),
        "the access log names the forwarded client"
    );

    // A peer that is not a trusted proxy cannot pick its address: its header is ignored.
    let stranger = Ipv4Addr::new(127, 0, 7, 2);
    for i in 0..LIMIT {
        let r = token_via(&s, stranger, "203.0.113.10", &id, &format!("spoof-{i}"));
        assert_oauth_error(&r, 401, "invalid_client");
    }
    assert_eq!(
        token_via(&s, stranger, "203.0.113.11", &id, &secret).status,
        429
    );
    let right = token_via(&s, proxy, "203.0.113.10", &id, &secret);
    assert_eq!(right.status, 200, "{}", right.body);
}

#[test]
fn a_trusted_proxy_is_not_held_to_the_per_address_connection_cap() {
    let s = TestServer::start_with(&[
        "--max-connections-per-ip",
        "3",
        "--trusted-proxy",
        "127.0.7.3",
    ]);
    let held: Vec<TcpStream> = (0..6)
        .map(|_| crate::http::connect_from([127, 0, 7, 3], s.host()).expect("connect"))
        .collect();
    let r = s.raw_from(
        Ipv4Addr::new(127, 0, 7, 3),
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    drop(held);
}

#[test]
fn sigterm_still_sends_a_streamed_reply_waiting_for_a_slow_reader_in_full_then_exits_0() {
    let mut s = TestServer::start_with(&["--threads", "2"]);
    let t = s.tenant(CASHIER);
    let batch = s.post(
        "/v1/vouchers/batch",
        &t.token,
        &json!({"count": 3000, "amount": "5.00", "batch": "stop-midway"}),
    );
    assert_eq!(batch.status, 201, "{}", batch.body);
    let export = s.get("/v1/vouchers/export.csv", &t.token).body;
    let mut stream = narrow_connection(s.host());
    stream
        .write_all(
            format!(
                "GET /v1/vouchers/export.csv HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
                t.token
            )
            .as_bytes(),
        )
        .expect("write");
    let reader = std::thread::spawn(move || read_slowly(stream, 4096, Duration::from_millis(20)));
    // Most of the export is still to come when the stop arrives.
    std::thread::sleep(Duration::from_millis(300));
    s.signal("TERM");
    let status = s.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{}", s.output());
    let bytes = reader.join().expect("reader");
    // The bytes are all here; the socket only fills the parser's slot.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut wire = Wire {
        stream: TcpStream::connect(listener.local_addr().expect("address")).expect("connect"),
        pending: bytes,
    };
    let answer = wire.answer(false).expect("the reply");
    assert_eq!(answer.status, 200);
    assert!(
        answer.body == export.as_bytes(),
        "the export was cut short at the stop"
    );
}
