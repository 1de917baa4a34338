//! The HTTP floor: bare tiny_http 0.12 from the registry (the server the design started from,
//! kept as the anchor), with the same number of worker threads taking requests from it,
//! answering every request with one fixed small JSON body. Nothing vouchd does per request (routing, auth, SQL, rendering, logging, metrics) is
//! here, so its requests per second are the most vouchd's could be on this machine.
//!
//! `cargo run --release --example bench-http-floor -- THREADS` listens on 127.0.0.1 (a free
//! port), prints `listening on http://ADDR` and serves until killed.

use std::io::Write;
use std::net::TcpListener;
use std::sync::Arc;

const BODY: &str = r#"{"data":[{"id":"HOFIIWMRK46UEZAM","code":"29QHE5V4","amount":"100.00","remaining_amount":"100.00","currency":"EUR","status":"active"}],"meta":{"total":1}}"#;

fn main() {
    let threads: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(8);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = Arc::new(tiny_http::Server::from_listener(listener, None).expect("server"));
    let header = tiny_http::Header::from_bytes("Content-Type", "application/json").expect("header");
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let server = Arc::clone(&server);
            let header = header.clone();
            std::thread::spawn(move || {
                while let Ok(request) = server.recv() {
                    let reply = tiny_http::Response::from_string(BODY).with_header(header.clone());
                    let _ = request.respond(reply);
                }
            })
        })
        .collect();
    println!("listening on http://{addr}");
    std::io::stdout().flush().expect("stdout");
    for w in workers {
        let _ = w.join();
    }
}
