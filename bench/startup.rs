//! Start-up time: from spawning `vouchd serve` on an existing database to its first answer
//! (`GET /healthz` → 200) on 127.0.0.1, polled every 0.5 ms.
//!
//! `cargo run --release --example bench-startup -- VOUCHD DB RUNS` prints
//! `{"median_ms","runs_ms":[…]}`; each run's server is stopped (SIGTERM) before the next.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn answered(addr: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && &head[9..12] == b"200"
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (bin, db) = (&args[1], &args[2]);
    let runs: usize = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(5);
    let mut times = Vec::new();
    for _ in 0..runs {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let started = Instant::now();
        let mut child = Command::new(bin)
            .args(["serve", "--db", db, "--listen", &addr, "--rate-limit", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn vouchd");
        while !answered(&addr) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "vouchd did not answer"
            );
            std::thread::sleep(Duration::from_micros(500));
        }
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        let _ = Command::new("kill").arg(child.id().to_string()).status();
        let _ = child.wait();
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let runs: Vec<String> = times.iter().map(|t| format!("{t:.1}")).collect();
    println!(
        "{{\"median_ms\":{:.1},\"runs_ms\":[{}]}}",
        sorted[sorted.len() / 2],
        runs.join(",")
    );
}
