//! The HTTP server: a listener with socket timeouts, N worker threads each owning a reader
//! connection, and a panic guard around every request.
//!
//! tiny_http has no timeouts of its own; accepted sockets inherit `SO_RCVTIMEO`/`SO_SNDTIMEO`
//! from the listening socket on Linux, so they are set once here. The rest of SPEC §5's limits
//! (connection cap, header and request-line limits, a deadline for a request's head, a bounded
//! connection thread pool) are patches to the vendored tiny_http (vendor/tiny_http/PATCHES.md).

use super::request::Request;
use super::response::{Body, Reply};
use super::router;
use crate::app::App;
use crate::error::ApiError;
use crate::ops::Trace;
use std::io::Read;
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a connection may stay silent while a request is read or a reply written.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A running server: its address, and the handles to stop it.
pub struct Running {
    pub addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    /// The listening socket tiny_http accepts on, to stop accepting at shutdown.
    listener: TcpListener,
    workers: Vec<JoinHandle<()>>,
    app: Arc<App>,
}

impl Running {
    /// Blocks until every worker has stopped.
    pub fn wait(self) {
        for worker in self.workers {
            let _ = worker.join();
        }
        self.app.tokens.stop_watching();
        self.app.store.close();
    }

    /// Stops accepting, lets the workers finish what they hold, and flushes the writer.
    pub fn shutdown(mut self) {
        // On Linux this wakes tiny_http's accept() with an error, which ends its accept loop:
        // new connections are refused from here on instead of queueing unanswered.
        let _ = socket2::SockRef::from(&self.listener).shutdown(Shutdown::Read);
        for _ in 0..self.workers.len() {
            self.server.unblock();
        }
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
        // Requests queued behind the workers' stop marks get a clean 503. A worker may have
        // stopped on the accept loop's error instead of its mark, so look past one empty pop.
        let mut empty = 0;
        while empty < 2 {
            match self.server.try_recv() {
                Ok(Some(raw)) => respond(
                    raw,
                    ApiError::Unavailable(1)
                        .to_reply()
                        .with_header("Connection", "close"),
                ),
                _ => empty += 1,
            }
        }
        self.wait();
    }
}

pub fn start(app: Arc<App>, listener: TcpListener, threads: usize) -> std::io::Result<Running> {
    let sock = socket2::SockRef::from(&listener);
    sock.set_read_timeout(Some(IO_TIMEOUT))?;
    sock.set_write_timeout(Some(IO_TIMEOUT))?;
    let addr = listener.local_addr()?;
    let accepting = listener.try_clone()?;
    let server = Arc::new(
        tiny_http::Server::from_listener_with_limits(listener, None, tiny_http::Limits::default())
            .map_err(std::io::Error::other)?,
    );
    app.tokens.watch(&app.store)?;
    let mut workers = Vec::with_capacity(threads);
    for i in 0..threads.max(1) {
        let server = Arc::clone(&server);
        let app = Arc::clone(&app);
        let conn = app
            .store
            .worker_reader(threads.max(1))
            .map_err(std::io::Error::other)?;
        let worker = std::thread::Builder::new()
            .name(format!("vouchd-worker-{i}"))
            .spawn(move || {
                while let Ok(mut raw) = server.recv() {
                    let started = Instant::now();
                    let _in_flight = app.metrics.in_flight.hold();
                    // tiny_http (patched) counts its open connections; read at each request,
                    // so a scrape of /metrics sees the count of its own moment.
                    app.metrics
                        .connections
                        .set(i64::try_from(server.num_connections()).unwrap_or(i64::MAX));
                    let mut trace = Trace::of(&raw);
                    let reply = catch_unwind(AssertUnwindSafe(|| {
                        handle(&app, &conn, &mut raw, &mut trace)
                    }))
                    .unwrap_or_else(|_| {
                        eprintln!(
                            "vouchd: a request handler panicked: {} {}",
                            raw.method(),
                            raw.url()
                        );
                        ApiError::Internal("panic".into()).to_reply()
                    });
                    let status = reply.status;
                    respond(raw, reply);
                    let elapsed = started.elapsed();
                    app.metrics
                        .observe(trace.method.as_str(), trace.route, status, elapsed);
                    app.access_log.write(&trace, status, elapsed);
                }
            })?;
        workers.push(worker);
    }
    Ok(Running {
        addr,
        server,
        listener: accepting,
        workers,
        app,
    })
}

fn handle(
    app: &App,
    conn: &rusqlite::Connection,
    raw: &mut tiny_http::Request,
    trace: &mut Trace,
) -> Reply {
    let result = Request::read(raw).and_then(|req| router::route(app, conn, &req, trace));
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
