//! Replies on the wire: the status line and headers, then the body with `Content-Length`, or a
//! stream sent chunked (HTTP/1.1) or up to the close (HTTP/1.0), or nothing for HEAD.

use super::response::{Body, Reply};
use super::wire::{reason, Fault};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{SystemTime, UNIX_EPOCH};

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

/// What a reply is sent for.
pub struct Exchange {
    /// The request's HTTP minor version: 0 for HTTP/1.0.
    pub minor: u8,
    /// HEAD: the headers of the GET reply, no body.
    pub head_only: bool,
    /// Whether the connection stays open after the reply; cleared when it cannot.
    pub keep_alive: bool,
}

/// Writes `reply`; `out` is the worker's buffer, reused from request to request.
pub fn write_reply(
    stream: &TcpStream,
    out: &mut Vec<u8>,
    date: &mut DateCache,
    reply: Reply,
    exchange: &mut Exchange,
) -> io::Result<()> {
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
    out.clear();
    write!(
        out,
        "HTTP/1.1 {status} {}\r\nDate: {}\r\n",
        reason(status),
        date.now()
    )?;
    if !no_body {
        write!(out, "Content-Type: {}\r\n", reply.content_type)?;
    }
    for (name, value) in &reply.headers {
        // The connection's own headers are this layer's; a value that could end the line is
        // never sent (header injection).
        if name.eq_ignore_ascii_case("connection") || value.contains(['\r', '\n']) {
            continue;
        }
        write!(out, "{name}: {value}\r\n")?;
    }
    match &reply.body {
        Body::Bytes(bytes) if !no_body => write!(out, "Content-Length: {}\r\n", bytes.len())?,
        Body::Stream(_) if chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        _ => {}
    }
    if !exchange.keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if exchange.minor == 0 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    let mut stream = stream;
    match reply.body {
        Body::Bytes(_) if exchange.head_only || no_body => stream.write_all(out),
        Body::Bytes(bytes) if bytes.len() <= JOIN_LIMIT => {
            out.extend_from_slice(&bytes);
            stream.write_all(out)
        }
        Body::Bytes(bytes) => {
            stream.write_all(out)?;
            stream.write_all(&bytes)
        }
        Body::Stream(_) if exchange.head_only => stream.write_all(out),
        Body::Stream(reader) => {
            stream.write_all(out)?;
            send_stream(stream, out, Guarded(reader), chunked)
        }
    }
}

/// Sends a body of unknown length as it is read, never holding it whole.
fn send_stream(
    mut stream: &TcpStream,
    out: &mut Vec<u8>,
    mut reader: impl Read,
    chunked: bool,
) -> io::Result<()> {
    let mut data = vec![0u8; STREAM_CHUNK];
    loop {
        let n = match reader.read(&mut data) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            // Cut short: without the last chunk (or with the close) the client sees it unfinished.
            Err(err) => return Err(err),
        };
        if chunked {
            out.clear();
            write!(out, "{n:x}\r\n")?;
            out.extend_from_slice(&data[..n]);
            out.extend_from_slice(b"\r\n");
            stream.write_all(out)?;
        } else {
            stream.write_all(&data[..n])?;
        }
    }
    if chunked {
        stream.write_all(b"0\r\n\r\n")?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_imf_fixdates() {
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
    }
}
