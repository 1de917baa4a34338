//! Replies on the wire: the status line and headers, then the body with `Content-Length`, or a
//! stream sent chunked (HTTP/1.1) or up to the close (HTTP/1.0), or nothing for HEAD. Writes
//! never wait: a reply the client is slow to take waits in epoll for room ([`Outgoing`]), and
//! must be taken within its deadline.

use super::wire::{reason, Fault};
use crate::app::App;
use crate::ops::Trace;
use crate::web::response::{Body, Reply};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Bodies up to this size go out in the same write as the head.
const JOIN_LIMIT: usize = 64 * 1024;
/// How much of a streamed body is read and sent at a time.
const STREAM_CHUNK: usize = 16 * 1024;

/// The `Date` header's value, formatted once a second.
#[derive(Default)]
pub struct DateCache {
    secs: u64,
    text: String,
}

impl DateCache {
    pub fn now(&mut self) -> &str {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if secs != self.secs || self.text.is_empty() {
            self.secs = secs;
            self.text = http_date(secs);
        }
        &self.text
    }
}

/// An IMF-fixdate (RFC 9110 §5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(secs: u64) -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(0))
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_default()
}

/// Every reply may take this long, plus its size at [`MIN_RATE`]: a client that reads slower
/// than that is cut off, so it cannot hold the reply (or the snapshot a stream reads) for ever.
pub const REPLY_GRACE: Duration = Duration::from_secs(10);
/// The slowest a client may take a reply (and send a body), in bytes a second, past the grace.
pub const MIN_RATE: u64 = 32 * 1024;

/// What a reply is sent for.
pub struct Exchange {
    /// The request's HTTP minor version: 0 for HTTP/1.0.
    pub minor: u8,
    /// HEAD: the headers of the GET reply, no body.
    pub head_only: bool,
    /// Whether the connection stays open after the reply; cleared when it cannot.
    pub keep_alive: bool,
}

/// How far a reply got.
pub enum Progress {
    /// All of it is sent.
    Done,
    /// The client's socket is full: the rest waits until it reads.
    Blocked,
    /// The connection failed, or the stream was cut short.
    Failed,
}

/// A reply on its way out, never waiting on the socket: what [`Outgoing::advance`] cannot
/// send now stays here while the connection waits in epoll for room, holding no worker. A
/// stream holds one chunk at a time and is read again only once that chunk is sent.
pub struct Outgoing {
    /// Bytes to send, from `sent` on.
    buf: Vec<u8>,
    sent: usize,
    /// A large body, sent after `buf` without a copy.
    then: Vec<u8>,
    stream: Option<Guarded>,
    chunked: bool,
    started: Instant,
    /// Bytes of the reply known so far (all of it, unless it is a stream).
    queued: u64,
    /// Whether the connection stays open once the reply is sent.
    pub keep_alive: bool,
    /// The request's record, written when the reply is done with (sent or cut off).
    pub answered: Option<Answered>,
}

impl Outgoing {
    /// `reply` rendered for `exchange`; `buf` is the worker's buffer, reused from request to
    /// request.
    pub fn reply(
        mut buf: Vec<u8>,
        date: &mut DateCache,
        reply: Reply,
        exchange: &mut Exchange,
    ) -> Outgoing {
        let status = reply.status;
        let no_body = status == 204 || status == 304;
        let streamed = matches!(reply.body, Body::Stream(_));
        if reply.headers.iter().any(|(name, value)| {
            name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close")
        }) {
            exchange.keep_alive = false;
        }
        let chunked = streamed && exchange.minor >= 1;
        if streamed && !chunked && !exchange.head_only {
            exchange.keep_alive = false;
        }
        buf.clear();
        // Writing into a Vec cannot fail.
        let _ = write!(
            buf,
            "HTTP/1.1 {status} {}\r\nDate: {}\r\n",
            reason(status),
            date.now()
        );
        if !no_body {
            let _ = write!(buf, "Content-Type: {}\r\n", reply.content_type);
        }
        for (name, value) in &reply.headers {
            // The connection's own headers are this layer's; a value that could end the line is
            // never sent (header injection).
            if name.eq_ignore_ascii_case("connection") || value.contains(['\r', '\n']) {
                continue;
            }
            let _ = write!(buf, "{name}: {value}\r\n");
        }
        match &reply.body {
            Body::Bytes(bytes) if !no_body => {
                let _ = write!(buf, "Content-Length: {}\r\n", bytes.len());
            }
            Body::Stream(_) if chunked => buf.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
            _ => {}
        }
        if !exchange.keep_alive {
            buf.extend_from_slice(b"Connection: close\r\n");
        } else if exchange.minor == 0 {
            buf.extend_from_slice(b"Connection: keep-alive\r\n");
        }
        buf.extend_from_slice(b"\r\n");
        let mut out = Outgoing::bytes(buf, exchange.keep_alive);
        match reply.body {
            Body::Bytes(_) if exchange.head_only || no_body => {}
            Body::Bytes(bytes) if bytes.len() <= JOIN_LIMIT => out.buf.extend_from_slice(&bytes),
            Body::Bytes(bytes) => out.then = bytes,
            Body::Stream(_) if exchange.head_only => {}
            Body::Stream(reader) => {
                out.stream = Some(Guarded(reader));
                out.chunked = chunked;
            }
        }
        out.queued = (out.buf.len() + out.then.len()) as u64;
        out
    }

    /// Bytes already whole (a protocol refusal).
    pub fn bytes(buf: Vec<u8>, keep_alive: bool) -> Outgoing {
        Outgoing {
            queued: buf.len() as u64,
            buf,
            sent: 0,
            then: Vec::new(),
            stream: None,
            chunked: false,
            started: Instant::now(),
            keep_alive,
            answered: None,
        }
    }

    /// When the client must have taken the reply: the grace plus what is known of its size at
    /// the minimum rate (fixed for bytes; for a stream it grows as the stream is read).
    pub fn deadline(&self) -> Instant {
        self.started + REPLY_GRACE + Duration::from_millis(self.queued * 1000 / MIN_RATE)
    }

    /// Sends what the socket takes now.
    pub fn advance(&mut self, socket: &TcpStream) -> Progress {
        loop {
            while self.sent < self.buf.len() {
                match send_some(socket, &self.buf[self.sent..]) {
                    Ok(n) => self.sent += n,
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                        return Progress::Blocked
                    }
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Progress::Failed,
                }
            }
            self.sent = 0;
            if !self.then.is_empty() {
                self.buf = std::mem::take(&mut self.then);
                continue;
            }
            self.buf.clear();
            let Some(reader) = &mut self.stream else {
                return Progress::Done;
            };
            let mut data = [0u8; STREAM_CHUNK];
            let n = match reader.read(&mut data) {
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                // Cut short: without the last chunk (or with the close) the client sees it
                // unfinished.
                Err(_) => return Progress::Failed,
            };
            if n == 0 {
                self.stream = None;
                if self.chunked {
                    self.buf.extend_from_slice(b"0\r\n\r\n");
                }
                continue;
            }
            if self.chunked {
                let _ = write!(self.buf, "{n:x}\r\n");
                self.buf.extend_from_slice(&data[..n]);
                self.buf.extend_from_slice(b"\r\n");
            } else {
                self.buf.extend_from_slice(&data[..n]);
            }
            self.queued += self.buf.len() as u64;
        }
    }

    /// The buffer back, for the next reply.
    pub fn into_buffer(mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

/// Sends what the socket takes of `bytes` now, never waiting (`WouldBlock` when it takes none).
pub fn send_some(socket: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: reads `bytes.len()` bytes from a live slice.
    let n = unsafe {
        libc::send(
            socket.as_raw_fd(),
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// A streamed body is read after the handler's panic guard: each read gets a guard of its own,
/// so a panic cuts the reply short and the worker lives on.
struct Guarded(Box<dyn Read + Send>);

impl Read for Guarded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        catch_unwind(AssertUnwindSafe(|| self.0.read(buf))).unwrap_or_else(|_| {
            eprintln!("vouchd: a streamed reply panicked; it was cut short");
            Err(io::Error::other("a streamed reply panicked"))
        })
    }
}

/// A protocol-level refusal, whole: problem+json, `Connection: close`.
pub fn fault_bytes(fault: &Fault, date: &mut DateCache) -> Vec<u8> {
    let body = fault.body();
    let mut out = Vec::with_capacity(256 + body.len());
    let retry = if fault.status == 503 {
        "Retry-After: 1\r\n"
    } else {
        ""
    };
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\nDate: {}\r\nContent-Type: application/problem+json\r\n\
         Content-Length: {}\r\n{retry}Connection: close\r\n\r\n",
        fault.status,
        fault.title(),
        date.now(),
        body.len()
    );
    out.extend_from_slice(&body);
    out
}

/// A request whose reply is on its way: its metrics and access-log line are written when this
/// is dropped, which is when the last byte of the reply went out, or the reply was cut off
/// (a reply may wait for a slow client long after its handler returned).
pub struct Answered {
    pub app: Arc<App>,
    pub trace: Trace,
    pub status: u16,
    /// When a worker took the request.
    pub started: Instant,
}

impl Drop for Answered {
    fn drop(&mut self) {
        let elapsed = self.started.elapsed();
        self.app
            .metrics
            .observe(self.trace.method, self.trace.route, self.status, elapsed);
        self.app.access_log.write(&self.trace, self.status, elapsed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_imf_fixdates() {
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
    }
}
