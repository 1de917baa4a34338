//! Load generator for the charges benchmark, run as its own process against a running
//! `vouchd serve` on 127.0.0.1.
//!
//! `cargo run --release --example bench-load -- BASE CLIENT_ID SECRET CONCURRENCY SECONDS`
//! gets a token, creates 1 000 gift cards with one batch request, then keeps `CONCURRENCY`
//! keep-alive connections busy charging 0.01 on random cards for `SECONDS`, and prints one JSON
//! line: `{"requests","ok","errors","seconds","per_sec","p50_ms","p99_ms","max_ms"}`.
//! Every answer other than 201 counts as an error, and so does every request that had to be
//! sent again on a new connection (a charge resent after a lost answer).

use base64::Engine;
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const VOUCHERS: usize = 1000;

/// One keep-alive connection that reconnects when the server closes it.
struct Conn {
    host: String,
    stream: Option<(TcpStream, BufReader<TcpStream>)>,
    /// Requests sent again on a fresh connection after the old one failed.
    retries: usize,
}

impl Conn {
    fn new(host: &str) -> Conn {
        Conn {
            host: host.to_string(),
            stream: None,
            retries: 0,
        }
    }

    /// Sends one request and returns (status, body). Retries once on a stale connection.
    fn send(&mut self, method: &str, path: &str, headers: &str, body: &str) -> (u16, String) {
        for attempt in 0..2 {
            if self.stream.is_none() {
                let s = TcpStream::connect(&self.host).expect("connect");
                s.set_nodelay(true).expect("nodelay");
                s.set_read_timeout(Some(Duration::from_secs(60)))
                    .expect("timeout");
                let reader = BufReader::new(s.try_clone().expect("clone"));
                self.stream = Some((s, reader));
            }
            let (stream, reader) = self.stream.as_mut().expect("connected");
            let request = format!(
                "{method} {path} HTTP/1.1\r\nHost: {}\r\n{headers}Content-Length: {}\r\n\r\n{body}",
                self.host,
                body.len()
            );
            if stream.write_all(request.as_bytes()).is_ok() {
                if let Some(answer) = read_response(reader) {
                    return answer;
                }
            }
            self.stream = None;
            self.retries += 1;
            assert!(attempt == 0, "connection failed twice in a row");
        }
        unreachable!()
    }
}

fn read_response(reader: &mut BufReader<TcpStream>) -> Option<(u16, String)> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let status: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut length = 0usize;
    let mut chunked = false;
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None; // cut off inside the headers
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
            if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.trim().eq_ignore_ascii_case("chunked");
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        // tiny_http sends bodies over 32 KiB chunked.
        loop {
            line.clear();
            reader.read_line(&mut line).ok()?;
            let size = usize::from_str_radix(line.trim_end(), 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        body.resize(length, 0);
        reader.read_exact(&mut body).ok()?;
    }
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, base, client_id, secret, concurrency, seconds] = args.as_slice() else {
        eprintln!("usage: bench-load BASE CLIENT_ID SECRET CONCURRENCY SECONDS");
        std::process::exit(2);
    };
    let host = base.trim_start_matches("http://").trim_end_matches('/');
    let concurrency: usize = concurrency.parse().expect("concurrency");
    let seconds: f64 = seconds.parse().expect("seconds");

    let mut setup = Conn::new(host);
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"));
    let (status, body) = setup.send(
        "POST",
        "/oauth/token",
        &format!(
            "Authorization: Basic {basic}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        ),
        "grant_type=client_credentials",
    );
    assert_eq!(status, 200, "token: {body}");
    let token: Value = serde_json::from_str(&body).expect("token json");
    let auth = format!(
        "Authorization: Bearer {}\r\nContent-Type: application/json\r\n",
        token["access_token"].as_str().expect("access_token")
    );
    let (status, body) = setup.send(
        "POST",
        "/v1/vouchers/batch",
        &auth,
        &json!({"count": VOUCHERS, "amount": "1000000.00", "batch": "bench"}).to_string(),
    );
    assert_eq!(status, 201, "batch: {body}");
    let batch: Value = serde_json::from_str(&body).expect("batch json");
    let ids: Vec<String> = batch["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|v| v["id"].as_str().expect("id").to_string())
        .collect();

    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let results: Vec<(Vec<u32>, usize)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..concurrency)
            .map(|n| {
                let (ids, auth, stop) = (&ids, &auth, &stop);
                scope.spawn(move || {
                    let mut rng = StdRng::seed_from_u64(n as u64);
                    let mut conn = Conn::new(host);
                    let mut micros = Vec::new();
                    let mut errors = 0;
                    let body = json!({"type": "charge", "amount": "0.01", "order_number": "bench"})
                        .to_string();
                    while !stop.load(Ordering::Relaxed) {
                        let id = &ids[rng.gen_range(0..ids.len())];
                        let t = Instant::now();
                        let (status, _) =
                            conn.send("POST", &format!("/v1/vouchers/{id}/charges"), auth, &body);
                        micros.push(t.elapsed().as_micros() as u32);
                        if status != 201 {
                            errors += 1;
                        }
                    }
                    (micros, errors + conn.retries)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs_f64(seconds));
        stop.store(true, Ordering::Relaxed);
        workers
            .into_iter()
            .map(|w| w.join().expect("worker"))
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let errors: usize = results.iter().map(|(_, e)| e).sum();
    let mut all: Vec<u32> = results.into_iter().flat_map(|(m, _)| m).collect();
    all.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return 0.0;
        }
        let i = ((all.len() as f64 * p).ceil() as usize).clamp(1, all.len()) - 1;
        f64::from(all[i]) / 1000.0
    };
    println!(
        "{{\"requests\":{},\"ok\":{},\"errors\":{errors},\"seconds\":{elapsed:.2},\"per_sec\":{:.1},\"p50_ms\":{:.2},\"p99_ms\":{:.2},\"max_ms\":{:.2}}}",
        all.len(),
        all.len() - errors,
        (all.len() - errors) as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        all.last().map_or(0.0, |m| f64::from(*m) / 1000.0),
    );
}
