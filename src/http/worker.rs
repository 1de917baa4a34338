//! A worker: takes a connection whose bytes have arrived, reads and frames what is there,
//! answers every complete request in order on this same thread (pipelined ones too), and hands
//! the connection back to the poller when it has to wait for more: for the client's next bytes,
//! or for room in its socket while a reply is only partly sent.

use super::body::BodyReader;
use super::conn::{recv_now, BodyState, Conn, Phase};
use super::proxy::client_address;
use super::request::MAX_BODY;
use super::router;
use super::server::Shared;
use super::turns::Seat;
use super::wire::{self, Fault, Framing, HeadScan, Parsed};
use super::write::Answered;
use super::write::{fault_bytes, send_some, DateCache, Exchange, Outgoing, Progress, MIN_RATE};
use crate::app::App;
use crate::error::ApiError;
use crate::ops::log;
use crate::ops::Trace;
use crate::web::request::{Method, Request};
use crate::web::response::Reply;
use std::io::ErrorKind;
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A request's head must be whole within this time of its first byte, and a body within this
/// time plus its length at the minimum rate of the head's acceptance.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// How long a refused client's remaining bytes are read and dropped before the close.
const LINGER: Duration = Duration::from_secs(2);
/// A worker keeps a read buffer up to this size between connections.
const KEEP_BUFFER: usize = 256 * 1024;

pub struct Worker {
    shared: Arc<Shared>,
    /// This worker's number among the turns.
    me: usize,
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
    pub fn new(shared: Arc<Shared>, me: usize) -> Worker {
        Worker {
            shared,
            me,
            buf: Vec::new(),
            out: Vec::new(),
            date: DateCache::default(),
        }
    }

    /// Serves ready connections until the server stops: waits for a turn, then for a
    /// connection with bytes, and serves it.
    pub fn run(mut self) {
        let turns = Arc::clone(&self.shared.turns);
        crate::pace::join(Arc::new(Seat {
            turns: Arc::clone(&turns),
            me: self.me,
        }));
        // Access lines are written when this worker is about to wait, a few dozen at a time
        // under load.
        log::hold_lines();
        let mut served: u64 = 0;
        loop {
            if !turns.take(self.me, log::write_held) {
                log::write_held();
                self.finish_replies();
                return;
            }
            let key = match self.next_ready() {
                Ok(key) => key,
                Err(err) => {
                    log::write_held();
                    eprintln!("vouchd: a worker cannot wait for connections: {err}");
                    return;
                }
            };
            if key == super::poll::STOP {
                log::write_held();
                self.finish_replies();
                return;
            }
            if let Some(conn) = self.shared.take(key) {
                served += 1;
                turns.running(self.me, Some(served));
                if let Some(conn) = self.serve(conn) {
                    self.shared.park(conn);
                }
                turns.running(self.me, None);
            }
        }
    }

    /// The key of the next connection ready to be served; the lines this worker holds are
    /// written first if it has to wait for one.
    fn next_ready(&self) -> std::io::Result<u64> {
        let poller = &self.shared.poller;
        if log::holding() {
            if let Some(key) = poller.ready_now()? {
                return Ok(key);
            }
            log::write_held();
        }
        poller.wait()
    }

    /// At the stop: sends the replies still waiting for their clients' sockets, each until it
    /// is sent or its deadline passes, so every request taken is answered in full.
    fn finish_replies(&mut self) {
        while let Some(mut conn) = self.shared.take_writing() {
            while let Phase::Writing(out) = &mut conn.phase {
                let wait = out.deadline().saturating_duration_since(Instant::now());
                if wait.is_zero() || !matches!(out.advance(&conn.stream), Progress::Blocked) {
                    break;
                }
                let mut room = libc::pollfd {
                    fd: conn.stream.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                };
                let millis = libc::c_int::try_from(wait.as_millis()).unwrap_or(libc::c_int::MAX);
                // SAFETY: one live pollfd.
                if unsafe { libc::poll(&mut room, 1, millis.max(1)) } <= 0 {
                    break;
                }
            }
        }
    }

    /// Serves what has arrived on `conn`, or sends more of its waiting reply; the connection
    /// back if it waits for more.
    fn serve(&mut self, mut conn: Conn) -> Option<Conn> {
        if let Phase::Lingering = conn.phase {
            return drain(conn);
        }
        if let Phase::Writing(_) = conn.phase {
            if let Some(next) = self.resume(&mut conn) {
                return self.after(conn, next);
            }
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.extend_from_slice(&conn.pending);
        conn.pending = Vec::new();
        let next = self.exchange(&mut conn, &mut buf);
        if buf.capacity() <= KEEP_BUFFER {
            self.buf = buf;
        }
        self.after(conn, next)
    }

    /// Sends more of the reply `conn` waits with; `None` once it is sent and the connection
    /// goes on with the next request.
    fn resume(&mut self, conn: &mut Conn) -> Option<Next> {
        let Phase::Writing(mut out) = std::mem::replace(&mut conn.phase, Phase::Idle) else {
            return None;
        };
        match out.advance(&conn.stream) {
            Progress::Done if out.keep_alive && !self.shared.stopping.load(Ordering::SeqCst) => {
                None
            }
            Progress::Done => Some(Next::Linger),
            Progress::Blocked => {
                conn.deadline = out.deadline();
                conn.phase = Phase::Writing(out);
                Some(Next::Park)
            }
            Progress::Failed => Some(Next::Close),
        }
    }

    /// What becomes of `conn` once nothing more can be done for it now.
    fn after(&mut self, mut conn: Conn, next: Next) -> Option<Conn> {
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
                                return keep_rest(conn, next, &buf[start..]);
                            }
                            continue;
                        }
                    }
                }
            } else if start < buf.len() {
                if let Phase::Idle = conn.phase {
                    conn.phase = Phase::Head {
                        since: Instant::now(),
                        scan: HeadScan::default(),
                    };
                }
                let Phase::Head { scan, .. } = &mut conn.phase else {
                    return Next::Close;
                };
                match wire::parse_head_from(scan, &buf[start..]) {
                    Err(fault) => return self.refuse(conn, &fault),
                    Ok(Parsed::Partial) => {}
                    Ok(Parsed::Complete(head, used)) => {
                        start += used;
                        match head.framing {
                            None => {
                                conn.phase = Phase::Idle;
                                if let Some(next) = self.answer(conn, head, Vec::new()) {
                                    return keep_rest(conn, next, &buf[start..]);
                                }
                            }
                            Some(framing) => {
                                conn.phase = Phase::Body(Box::new(BodyState {
                                    head,
                                    reader: BodyReader::new(framing),
                                    continued: false,
                                    deadline: body_deadline(framing),
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
                    // Nothing else is unsent at this point: a socket without room for these
                    // few bytes belongs to a client that does not read.
                    const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
                    if !send_some(&conn.stream, CONTINUE).is_ok_and(|n| n == CONTINUE.len()) {
                        return Next::Close;
                    }
                }
            }
            if start > 0 {
                buf.drain(..start);
                start = 0;
                // A request was answered and nothing of another one is here: the client most
                // likely waits for that reply, so back to epoll without a read that would only
                // find nothing (rearming reports bytes that came meanwhile at once).
                if buf.is_empty() && matches!(conn.phase, Phase::Idle) {
                    if self.shared.stopping.load(Ordering::SeqCst) {
                        return Next::Close;
                    }
                    conn.deadline = Instant::now() + self.shared.idle_timeout;
                    return Next::Park;
                }
            }
            match recv_now(&conn.stream, buf) {
                Ok(0) => return Next::Close,
                Ok(_) => {}
                Err(err) if err.kind() == ErrorKind::WouldBlock => {
                    if self.shared.stopping.load(Ordering::SeqCst) {
                        return Next::Close;
                    }
                    conn.pending.extend_from_slice(buf);
                    conn.deadline = match &conn.phase {
                        Phase::Idle => Instant::now() + self.shared.idle_timeout,
                        Phase::Head { since, .. } => *since + REQUEST_DEADLINE,
                        Phase::Body(state) => state.deadline,
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
    fn refuse(&mut self, conn: &mut Conn, fault: &Fault) -> Next {
        let bytes = fault_bytes(fault, &mut self.date);
        self.send(conn, Outgoing::bytes(bytes, false))
            .unwrap_or(Next::Close)
    }

    /// Sends what the socket takes of `out` now; `None` if it is all sent and the connection
    /// goes on, else what becomes of the connection (parked with the rest of the reply when the
    /// client's socket is full).
    fn send(&mut self, conn: &mut Conn, mut out: Outgoing) -> Option<Next> {
        match out.advance(&conn.stream) {
            Progress::Done => {
                let keep_alive = out.keep_alive;
                let buf = out.into_buffer();
                if buf.capacity() <= KEEP_BUFFER {
                    self.out = buf;
                }
                (!keep_alive).then_some(Next::Linger)
            }
            Progress::Blocked => {
                conn.deadline = out.deadline();
                conn.phase = Phase::Writing(Box::new(out));
                Some(Next::Park)
            }
            Progress::Failed => Some(Next::Close),
        }
    }

    /// Handles one complete request and writes its reply; `None` if the connection goes on.
    /// A connection that ends after its reply lingers: the client may have sent more already,
    /// and closing on unread bytes would reset the connection under the reply.
    fn answer(&mut self, conn: &mut Conn, head: wire::Head, body: Vec<u8>) -> Option<Next> {
        let started = Instant::now();
        let shared = Arc::clone(&self.shared);
        let app = &*shared.app;
        let _in_flight = app.metrics.in_flight.hold();
        let mut exchange = Exchange {
            minor: head.minor,
            head_only: head.method == Method::Head,
            keep_alive: head.keep_alive && !self.shared.stopping.load(Ordering::SeqCst),
        };
        let client = client_address(conn.peer, &head.headers, &shared.trusted_proxies);
        let remote = if client == conn.peer {
            conn.remote.clone()
        } else {
            client.to_string()
        };
        let mut trace = Trace::new(head.method.as_str(), router::template(&head.target), client);
        let request = super::request::decode(head, body, remote);
        let reply = catch_unwind(AssertUnwindSafe(|| match shared.readers.lend(&app.store) {
            Ok(db) => handle(app, &db, &request, &mut trace),
            Err(err) => ApiError::from(err).to_reply(),
        }))
        .unwrap_or_else(|_| {
            eprintln!(
                "vouchd: a request handler panicked: {} {}",
                trace.method, trace.route
            );
            ApiError::Internal("panic".into()).to_reply()
        });
        let status = reply.status;
        let mut out = Outgoing::reply(
            std::mem::take(&mut self.out),
            &mut self.date,
            reply,
            &mut exchange,
        );
        out.answered = Some(Answered {
            app: Arc::clone(&shared.app),
            trace,
            status,
            started,
        });
        self.send(conn, out)
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

/// `next` for a connection whose reply was just sent or parked: what `rest` holds (requests
/// pipelined behind it) waits with a parked reply, to be answered once the reply is out.
fn keep_rest(conn: &mut Conn, next: Next, rest: &[u8]) -> Next {
    if let Next::Park = next {
        conn.pending.extend_from_slice(rest);
    }
    next
}

/// When a body framed as `framing` must be whole: the head deadline plus its length (the
/// largest allowed for a chunked one) at the minimum rate.
fn body_deadline(framing: Framing) -> Instant {
    let length = match framing {
        Framing::Length(length) => length,
        Framing::Chunked => MAX_BODY as u64,
    };
    Instant::now()
        + REQUEST_DEADLINE
        + Duration::from_millis(length.saturating_mul(1000) / MIN_RATE)
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
