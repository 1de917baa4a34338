//! vouchd's HTTP layer under many connections and under garbage: 2 000 idle keep-alive
//! connections hold no thread and little memory and are closed after the idle timeout (issue
//! 14 acceptance 4); random and mutated request bytes, split across writes at random points,
//! get whole replies or a close, never a panic or a hang (acceptance 6).

use crate::common::*;
use crate::http::{connect_from, Answer, Wire};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

fn proc_status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("proc task")
        .count()
}

fn open_connections(s: &TestServer, token: &str) -> f64 {
    let r = s.get("/metrics", token);
    r.body
        .lines()
        .find_map(|l| l.strip_prefix("vouchd_http_connections_open "))
        .and_then(|v| v.parse().ok())
        .expect("the open-connections gauge")
}

/// Lets this process hold a few thousand sockets.
fn raise_descriptor_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a live struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

const WORKERS: usize = 4;
const IDLE: usize = 2000;

#[test]
fn two_thousand_idle_keep_alive_connections_hold_no_thread_and_are_closed_after_the_idle_timeout() {
    raise_descriptor_limit();
    // Twenty seconds: room to open them all on a loaded machine before the first expires.
    let s = TestServer::start_with(&["--idle-timeout", "20"]);
    let pid = s.pid();
    assert_eq!(s.get("/healthz", "x").status, 200);
    // Before the baseline: a login's argon2 memory is not the idle connections' cost.
    let token = s.admin_token();
    let rss_before = proc_status(pid, "VmRSS:");
    // From eight addresses, 250 each: under the default cap of 256 per address.
    let mut held: Vec<Wire> = Vec::with_capacity(IDLE);
    for i in 0..IDLE {
        let source = [127, 0, 1, 1 + (i % 8) as u8];
        let mut wire = Wire {
            stream: connect_from(source, s.host()).expect("connect"),
            pending: Vec::new(),
        };
        wire.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        held.push(wire);
    }
    for wire in &mut held {
        let answer: Answer = wire.answer(false).expect("a reply");
        assert_eq!(answer.status, 200);
    }
    let idle_since = Instant::now();
    // All open and idle now: a new client is answered at once.
    let fastest = (0..3)
        .map(|_| {
            let t = Instant::now();
            let answer = s.raw("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            assert_eq!(answer.status, 200);
            t.elapsed()
        })
        .min()
        .unwrap_or_default();
    assert!(fastest < Duration::from_millis(100), "took {fastest:?}");
    let open = open_connections(&s, &token);
    assert!(open >= IDLE as f64, "gauge {open}");
    let threads = threads(pid);
    assert!(threads <= WORKERS + 8, "{threads} threads");
    let grown_kb = proc_status(pid, "VmRSS:").saturating_sub(rss_before);
    assert!(grown_kb < 50 * 1024, "RSS grew by {grown_kb} kB");
    eprintln!("{IDLE} idle: {threads} threads, RSS +{grown_kb} kB, a new client in {fastest:?}");
    // The idle timeout closes every one of them.
    for wire in &mut held {
        let left = Duration::from_secs(23).saturating_sub(idle_since.elapsed());
        wire.stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .expect("timeout");
        assert!(
            wire.closed(),
            "an idle connection outlived the idle timeout"
        );
    }
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    while open_connections(&s, &token) > 2.0 {
        assert!(Instant::now() < deadline, "the gauge did not fall");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Requests the server takes, as templates for the generator.
fn seeds(token: &str) -> Vec<Vec<u8>> {
    let body = r#"{"amount":"5.00"}"#;
    [
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".to_string(),
        "GET /healthz HTTP/1.0\r\n\r\n".to_string(),
        "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".to_string(),
        format!("GET /v1/vouchers?per_page=2 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"),
        format!(
            "POST /v1/vouchers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
        format!(
            "POST /v1/vouchers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
             5\r\n{{\"amo\r\n{:x};x=y\r\n{}\r\n0\r\nT: v\r\n\r\n",
            body.len() - 5,
            &body[5..]
        ),
        format!(
            "POST /v1/validate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Expect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n\
             {{\"code\":\"A\"}}"
        ),
        "GET /v1/vouchers/export.csv HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_string(),
        "POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: 29\r\n\r\ngrant_type=client_credentials"
            .to_string(),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect()
}

const INTERESTING: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r",
    b" ",
    b"\t",
    b":",
    b"0",
    b"-1",
    b"FFFFFFFFFFFFFFFFF",
    b"chunked",
    b"Transfer-Encoding: chunked\r\n",
    b"Content-Length: 7\r\n",
    b"Content-Length: 99999999\r\n",
    b"Expect: 100-continue\r\n",
    b"Connection: close\r\n",
    b"\xff\xfe",
    b"\x00",
    b"%",
    b"HTTP/1.1",
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
];

/// One case: a seed or two pipelined, mutated a few times, or plain random bytes.
fn generate(rng: &mut StdRng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let pick = |rng: &mut StdRng| seeds[rng.gen_range(0..seeds.len())].clone();
    let mut bytes = match rng.gen_range(0..10) {
        0 => (0..rng.gen_range(0..400)).map(|_| rng.gen()).collect(),
        1 | 2 => [pick(rng), pick(rng), pick(rng)].concat(),
        3 => pick(rng),
        _ => pick(rng),
    };
    for _ in 0..rng.gen_range(0..5) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.gen_range(0..bytes.len());
        match rng.gen_range(0..5) {
            0 => bytes[at] = rng.gen(),
            1 => {
                bytes.remove(at);
            }
            2 => {
                let piece = INTERESTING[rng.gen_range(0..INTERESTING.len())];
                bytes.splice(at..at, piece.iter().copied());
            }
            3 => bytes.truncate(at),
            _ => {
                let end = (at + rng.gen_range(1..20)).min(bytes.len());
                let copy = bytes[at..end].to_vec();
                bytes.splice(at..at, copy);
            }
        }
    }
    bytes
}

/// Sends `bytes` in random pieces, then ends the sending side; reads every reply up to the
/// close. Fails on a reply cut short, on bytes that are no reply, and on a hang.
fn exchange(s: &TestServer, rng: &mut StdRng, bytes: &[u8]) -> usize {
    let mut stream = TcpStream::connect(s.host()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut cuts: Vec<usize> = (0..rng.gen_range(0..6))
        .map(|_| rng.gen_range(0..=bytes.len()))
        .collect();
    cuts.sort_unstable();
    let mut from = 0;
    for cut in cuts.into_iter().chain([bytes.len()]) {
        if stream.write_all(&bytes[from..cut]).is_err() {
            break;
        }
        from = cut;
        if rng.gen_bool(0.3) {
            std::thread::sleep(Duration::from_millis(rng.gen_range(1..5)));
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
    let mut wire = Wire {
        stream,
        pending: Vec::new(),
    };
    let mut replies = 0;
    while let Some(answer) = wire.answer(false) {
        assert!((100..600).contains(&answer.status), "{answer:?}");
        replies += 1;
    }
    replies
}

#[test]
fn random_and_mutated_request_bytes_split_across_writes_get_whole_replies_or_a_close() {
    let s = TestServer::start();
    let token = s.admin_token();
    let seeds = seeds(&token);
    let seed: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut replies = 0;
    for case in 0..400 {
        let mut bytes = generate(&mut rng, &seeds);
        // A HEAD reply has no body to frame by: keep HEAD out of the byte soup.
        while let Some(at) = bytes.windows(4).position(|w| w == b"HEAD") {
            bytes[at] = b'X';
        }
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            exchange(&s, &mut rng, &bytes)
        }));
        match outcome {
            Ok(n) => replies += n,
            Err(_) => panic!(
                "case {case} of seed {seed}: {:?}",
                String::from_utf8_lossy(&bytes)
            ),
        }
    }
    assert!(replies > 100, "only {replies} replies in 400 cases");
    assert!(!s.output().contains("panicked"), "{}", s.output());
    // The server still answers, and every case's connection is closed.
    assert_eq!(s.get("/healthz", "x").status, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    while open_connections(&s, &token) > 1.0 {
        assert!(
            Instant::now() < deadline,
            "connections of the cases stay open"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn idle_keep_alive_connections_hold_no_worker_so_new_ones_are_answered_at_once() {
    // Two workers, eight idle keep-alive connections: were a connection to hold a worker, the
    // new clients would wait for the idle timeout.
    let s = TestServer::start_with(&["--threads", "2"]);
    let mut idle = Wire::idle_ones(s.host(), 8);
    let started = Instant::now();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..16)
            .map(|_| {
                scope.spawn(|| {
                    s.raw("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                        .status
                })
            })
            .collect();
        clients
            .into_iter()
            .map(|c| c.join().expect("client"))
            .collect()
    });
    assert_eq!(statuses, vec![200; 16]);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    // The idle ones are still served too.
    for wire in &mut idle {
        wire.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(wire.answer(false).expect("a reply").status, 200);
    }
}

/// The status of `GET /healthz` on a fresh connection; `None` if it failed at any point.
fn health_status(host: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(host).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut head = [0u8; 12];
    std::io::Read::read_exact(&mut stream, &mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

#[test]
fn the_accept_loop_survives_running_out_of_descriptors() {
    let s = TestServer::start();
    let t = s.tenant(CASHIER);
    assert_eq!(s.get("/healthz", "x").status, 200);
    // Keep-alive connections opened before: while the server is out of descriptors they ask
    // for reads at once, which on PostgreSQL wants new pool connections (a socket and a
    // runtime each).
    let list = format!(
        "GET /v1/vouchers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        t.token
    );
    let mut kept = Wire::idle_ones(s.host(), 8);
    let pid = s.pid();
    let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("proc fd")
        .count();
    // Room for a few more descriptors only: the connections below run it out (EMFILE).
    let limit = open + 5;
    let status = std::process::Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={limit}:{limit}"))
        .status()
        .expect("prlimit runs");
    assert!(status.success());
    let flood: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(s.host()).expect("connect (the backlog takes it)"))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // Out of descriptors, a read is answered (a 503 where it needed a new database
    // connection), never left hanging, and nothing panics.
    std::thread::scope(|scope| {
        for wire in &mut kept {
            let list = &list;
            scope.spawn(move || {
                wire.send(list.as_bytes());
                let answer = wire.answer(false).expect("an answer");
                assert!(
                    answer.status == 200 || answer.status == 503,
                    "{} {}",
                    answer.status,
                    answer.text()
                );
            });
        }
    });
    drop(flood);
    // Once descriptors are free again the server accepts and answers as before.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if health_status(s.host()) == Some(200) {
            break;
        }
        assert!(Instant::now() < deadline, "the server stopped accepting");
        std::thread::sleep(Duration::from_millis(100));
    }
    for wire in &mut kept {
        wire.send(list.as_bytes());
        let answer = wire.answer(false).expect("an answer");
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    assert!(!s.output().contains("panicked"), "{}", s.output());
}
