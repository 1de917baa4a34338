//! The HTTP server: a listener with socket timeouts, N worker threads each owning a reader
//! connection, and a panic guard around every request.
//!
//! tiny_http has no timeouts of its own; accepted sockets inherit `SO_RCVTIMEO`/`SO_SNDTIMEO`
//! from the listening socket on Linux, so they are set once here. The same `SO_RCVTIMEO` makes
//! the listener's `accept()` fail after [`IO_TIMEOUT`] without a new connection, and tiny_http
//! 0.12 ends its accept thread on the first accept error: the server would stop listening after
//! ten quiet seconds. Until connections are accepted here rather than by tiny_http, a waker
//! thread connects to the listener more often than that.

use super::request::Request;
use super::response::{Body, Reply};
use super::router;
use crate::app::App;
use crate::error::ApiError;
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a connection may stay silent while a request is read or a reply written.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A running server: its address, and the handles to stop it.
pub struct Running {
    pub addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    workers: Vec<JoinHandle<()>>,
    app: Arc<App>,
    stop_waker: Arc<AtomicBool>,
}

impl Running {
    /// Blocks until every worker has stopped.
    pub fn wait(self) {
        for worker in self.workers {
            let _ = worker.join();
        }
        self.stop_waker.store(true, Ordering::Relaxed);
        self.app.tokens.stop_watching();
        self.app.store.close();
    }

    /// Stops accepting, lets the workers finish what they hold, and flushes the writer.
    pub fn shutdown(self) {
        for _ in 0..self.workers.len() {
            self.server.unblock();
        }
        self.wait();
    }
}

pub fn start(app: Arc<App>, listener: TcpListener, threads: usize) -> std::io::Result<Running> {
    let sock = socket2::SockRef::from(&listener);
    sock.set_read_timeout(Some(IO_TIMEOUT))?;
    sock.set_write_timeout(Some(IO_TIMEOUT))?;
    let addr = listener.local_addr()?;
    let server =
        Arc::new(tiny_http::Server::from_listener(listener, None).map_err(std::io::Error::other)?);
    app.tokens.watch(&app.store)?;
    let mut workers = Vec::with_capacity(threads);
    for i in 0..threads.max(1) {
        let server = Arc::clone(&server);
        let app = Arc::clone(&app);
        let conn = app.store.reader().map_err(std::io::Error::other)?;
        let worker = std::thread::Builder::new()
            .name(format!("vouchd-worker-{i}"))
            .spawn(move || {
                while let Ok(mut raw) = server.recv() {
                    let reply = catch_unwind(AssertUnwindSafe(|| handle(&app, &conn, &mut raw)))
                        .unwrap_or_else(|_| {
                            eprintln!(
                                "vouchd: a request handler panicked: {} {}",
                                raw.method(),
                                raw.url()
                            );
                            ApiError::Internal("panic".into()).to_reply()
                        });
                    respond(raw, reply);
                }
            })?;
        workers.push(worker);
    }
    let stop_waker = Arc::new(AtomicBool::new(false));
    spawn_waker(addr, Arc::clone(&stop_waker))?;
    Ok(Running {
        addr,
        server,
        workers,
        app,
        stop_waker,
    })
}

/// Connects to the listener every third of [`IO_TIMEOUT`] and hangs up at once, so its
/// `accept()` never waits long enough to time out (which would end tiny_http's accept thread).
/// tiny_http reads an empty connection and drops it.
fn spawn_waker(addr: SocketAddr, stop: Arc<AtomicBool>) -> std::io::Result<()> {
    let target = match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => {
            SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, a.port()))
        }
        SocketAddr::V6(a) if a.ip().is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port()))
        }
        other => other,
    };
    std::thread::Builder::new()
        .name("vouchd-waker".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(IO_TIMEOUT / 3);
                let _ = std::net::TcpStream::connect_timeout(&target, IO_TIMEOUT / 3);
            }
        })?;
    Ok(())
}

fn handle(app: &App, conn: &rusqlite::Connection, raw: &mut tiny_http::Request) -> Reply {
    let result = Request::read(raw).and_then(|req| router::route(app, conn, &req));
    match result {
        Ok(reply) => reply,
        Err(err) => {
            if let Some(cause) = err.log_message() {
                eprintln!("vouchd: {} {}: {cause}", raw.method(), raw.url());
            }
            let mut reply = err.to_reply();
            if matches!(err, ApiError::PayloadTooLarge) {
                // The unread body must not be taken for the next request.
                reply.headers.push(("Connection", "close".into()));
            }
            reply
        }
    }
}

fn respond(raw: tiny_http::Request, reply: Reply) {
    let mut headers = Vec::new();
    let mut add = |name: &str, value: &str| {
        if let Ok(header) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            headers.push(header);
        }
    };
    if reply.status != 204 {
        add("Content-Type", reply.content_type);
    }
    for (name, value) in &reply.headers {
        add(name, value);
    }
    let status = tiny_http::StatusCode(reply.status);
    // A client gone away is not worth a log line; a stream logs its own failures.
    let _ = match reply.body {
        Body::Bytes(bytes) => {
            let length = bytes.len();
            let data = std::io::Cursor::new(bytes);
            raw.respond(tiny_http::Response::new(
                status,
                headers,
                data,
                Some(length),
                None,
            ))
        }
        // No length: tiny_http sends it chunked (the handler checked the client can take
        // that), reading the stream as the socket drains, so it never sits in memory whole.
        Body::Stream(reader) => raw.respond(tiny_http::Response::new(
            status,
            headers,
            Guarded(reader),
            None,
            None,
        )),
    };
}

/// A streamed body is read after the handler's panic guard: each read gets a guard of its own,
/// so a panic cuts the reply short (the client sees an unfinished chunked body) and the worker
/// lives on.
struct Guarded(Box<dyn Read + Send>);

impl Read for Guarded {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        catch_unwind(AssertUnwindSafe(|| self.0.read(buf))).unwrap_or_else(|_| {
            eprintln!("vouchd: a streamed reply panicked; it was cut short");
            Err(std::io::Error::other("a streamed reply panicked"))
        })
    }
}
