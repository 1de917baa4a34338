//! A worker: takes a connection whose bytes have arrived, reads and frames what is there,
//! answers every complete request in order on this same thread (pipelined ones too), and hands
//! the connection back to the poller when it has to wait for more.

use super::body::BodyReader;
use super::conn::{recv_now, BodyState, Conn, Phase};
use super::request::{Method, Request};
use super::response::Reply;
use super::router;
use super::server::Shared;
use super::wire::{self, Fault, Parsed};
use super::write::{fault_bytes, write_reply, DateCache, Exchange};
use crate::app::App;
use crate::error::ApiError;
use crate::ops::Trace;
use std::io::{ErrorKind, Write};
use std::net::Shutdown;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A request's head must be whole within this time of its first byte, and a body must not
/// pause longer between reads.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// How long a refused client's remaining bytes are read and dropped before the close.
const LINGER: Duration = Duration::from_secs(2);
/// A worker keeps a read buffer up to this size between connections.
const KEEP_BUFFER: usize = 256 * 1024;

pub struct Worker {
    shared: Arc<Shared>,
    db: crate::store::Db,
    buf: Vec<u8>,
    out: Vec<u8>,
    date: DateCache,
}

/// What becomes of a connection once nothing more can be done for it now.
enum Next {
    Park,
    Close,
    Linger,
}

impl Worker {
    pub fn new(shared: Arc<Shared>, db: crate::store::Db) -> Worker {
        Worker {
            shared,
            db,
            buf: Vec::new(),
            out: Vec::new(),
            date: DateCache::default(),
        }
    }

    /// Serves ready connections until the server stops.
    pub fn run(mut self) {
        loop {
            let key = match self.shared.poller.wait() {
                Ok(key) => key,
                Err(err) => {
                    eprintln!("vouchd: a worker cannot wait for connections: {err}");
                    return;
                }
            };
            if key == super::poll::STOP {
                return;
            }
            if let Some(conn) = self.shared.take(key) {
                if let Some(conn) = self.serve(conn) {
                    self.shared.park(conn);
                }
            }
        }
    }

    /// Serves what has arrived on `conn`; the connection back if it waits for more.
    fn serve(&mut self, mut conn: Conn) -> Option<Conn> {
        if let Phase::Lingering = conn.phase {
            return drain(conn);
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.extend_from_slice(&conn.pending);
        conn.pending = Vec::new();
        let next = self.exchange(&mut conn, &mut buf);
        if buf.capacity() <= KEEP_BUFFER {
            self.buf = buf;
        }
        match next {
            Next::Park => Some(conn),
            Next::Close => None,
            Next::Linger => {
                let _ = conn.stream.shutdown(Shutdown::Write);
                conn.pending = Vec::new();
                conn.phase = Phase::Lingering;
                conn.deadline = Instant::now() + LINGER;
                Some(conn)
            }
        }
    }

    fn exchange(&mut self, conn: &mut Conn, buf: &mut Vec<u8>) -> Next {
        let mut start = 0;
        loop {
            if let Phase::Body(state) = &mut conn.phase {
                match state.reader.feed(&buf[start..]) {
                    Err(fault) => return self.refuse(conn, &fault),
                    Ok((used, done)) => {
                        start += used;
                        if done {
                            let Phase::Body(state) =
                                std::mem::replace(&mut conn.phase, Phase::Idle)
                            else {
                                return Next::Close;
                            };
                            let BodyState { head, reader, .. } = *state;
                            if let Some(next) = self.answer(conn, head, reader.body) {
                                return next;
                            }
                            continue;
                        }
                    }
                }
            } else if start < buf.len() {
                match wire::parse_head(&buf[start..]) {
                    Err(fault) => return self.refuse(conn, &fault),
                    Ok(Parsed::Partial) => {
                        if let Phase::Idle = conn.phase {
                            conn.phase = Phase::Head {
                                since: Instant::now(),
                            };
                        }
                    }
                    Ok(Parsed::Complete(head, used)) => {
                        start += used;
                        match head.framing {
                            None => {
                                conn.phase = Phase::Idle;
                                if let Some(next) = self.answer(conn, head, Vec::new()) {
                                    return next;
                                }
                            }
                            Some(framing) => {
                                conn.phase = Phase::Body(Box::new(BodyState {
                                    head,
                                    reader: BodyReader::new(framing),
                                    continued: false,
                                }));
                            }
                        }
                        continue;
                    }
                }
            }
            // Everything buffered is used: more bytes are needed.
            if let Phase::Body(state) = &mut conn.phase {
                if state.head.expect_continue && !state.continued {
                    state.continued = true;
                    if (&conn.stream)
                        .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                        .is_err()
                    {
                        return Next::Close;
                    }
                }
            }
            if start > 0 {
                buf.drain(..start);
                start = 0;
            }
            match recv_now(&conn.stream, buf) {
                Ok(0) => return Next::Close,
                Ok(_) => {}
                Err(err) if err.kind() == ErrorKind::WouldBlock => {
                    if self.shared.stopping.load(Ordering::SeqCst) {
                        return Next::Close;
                    }
                    conn.pending.extend_from_slice(buf);
                    conn.deadline = match conn.phase {
                        Phase::Idle => Instant::now() + self.shared.idle_timeout,
                        Phase::Head { since } => since + REQUEST_DEADLINE,
                        _ => Instant::now() + REQUEST_DEADLINE,
                    };
                    return Next::Park;
                }
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Next::Close,
            }
        }
    }

    /// Sends a protocol refusal; the connection ends after it.
    fn refuse(&mut self, conn: &Conn, fault: &Fault) -> Next {
        let bytes = fault_bytes(fault, &mut self.date);
        match (&conn.stream).write_all(&bytes) {
            Ok(()) => Next::Linger,
            Err(_) => Next::Close,
        }
    }

    /// Handles one complete request and writes its reply; `None` if the connection goes on.
    /// A connection that ends after its reply lingers: the client may have sent more already,
    /// and closing on unread bytes would reset the connection under the reply.
    fn answer(&mut self, conn: &Conn, head: wire::Head, body: Vec<u8>) -> Option<Next> {
        let started = Instant::now();
        let app = &*self.shared.app;
        let _in_flight = app.metrics.in_flight.hold();
        let mut exchange = Exchange {
            minor: head.minor,
            head_only: head.method == Method::Head,
            keep_alive: head.keep_alive && !self.shared.stopping.load(Ordering::SeqCst),
        };
        let mut trace = Trace::new(
            head.method.as_str(),
            router::template(&head.target),
            conn.peer,
        );
        let reply = match Request::new(head, body, conn.remote.clone()) {
            Ok(request) => catch_unwind(AssertUnwindSafe(|| {
                handle(app, &self.db, &request, &mut trace)
            }))
            .unwrap_or_else(|_| {
                eprintln!(
                    "vouchd: a request handler panicked: {} {}",
                    trace.method, trace.route
                );
                ApiError::Internal("panic".into()).to_reply()
            }),
            Err(err) => err.to_reply(),
        };
        let status = reply.status;
        let written = write_reply(
            &conn.stream,
            &mut self.out,
            &mut self.date,
            reply,
            &mut exchange,
        );
        let elapsed = started.elapsed();
        app.metrics
            .observe(trace.method, trace.route, status, elapsed);
        app.access_log.write(&trace, status, elapsed);
        match (written, exchange.keep_alive) {
            (Ok(()), true) => None,
            (Ok(()), false) => Some(Next::Linger),
            (Err(_), _) => Some(Next::Close),
        }
    }
}

/// Runs the route; an error becomes its problem reply, an internal one is logged by its route
/// template (never the raw path: ids and codes stay out of the log).
fn handle(app: &App, conn: &crate::store::Db, req: &Request, trace: &mut Trace) -> Reply {
    let mut reply = match router::route(app, conn, req, trace) {
        Ok(reply) => reply,
        Err(err) => {
            if let Some(cause) = err.log_message() {
                eprintln!("vouchd: {} {}: {cause}", trace.method, trace.route);
            }
            err.to_reply()
        }
    };
    // A reply about a client's own data is for that client only: no cache may keep it.
    let authenticated = trace.client_id.is_some() || req.header("authorization").is_some();
    if authenticated
        && !reply
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("cache-control"))
    {
        reply.headers.push(("Cache-Control", "no-store".into()));
    }
    reply
}

/// Reads and drops what a refused client still sends; closes at its end or on an error.
fn drain(conn: Conn) -> Option<Conn> {
    let mut sink = Vec::with_capacity(16 * 1024);
    for _ in 0..16 {
        sink.clear();
        match recv_now(&conn.stream, &mut sink) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(err) if err.kind() == ErrorKind::WouldBlock => return Some(conn),
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(conn)
}
