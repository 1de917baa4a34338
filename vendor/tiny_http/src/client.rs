use ascii::AsciiString;

use std::io::Error as IoError;
use std::io::Result as IoResult;
use std::io::{BufRead, BufReader, BufWriter, ErrorKind, Read};

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Instant;

use crate::common::{HTTPVersion, Method};
use crate::connection::Connection;
use crate::util::RefinedTcpStream;
use crate::util::{SequentialReader, SequentialReaderBuilder, SequentialWriterBuilder};
use crate::Limits;
use crate::Request;

/// A ClientConnection is an object that will store a socket to a client
/// and return Request objects.
pub struct ClientConnection {
    // address of the client
    remote_addr: IoResult<Option<SocketAddr>>,

    // sequence of Readers to the stream, so that the data is not read in
    //  the wrong order
    source: SequentialReaderBuilder<BufReader<RefinedTcpStream>>,

    // sequence of Writers to the stream, to avoid writing response #2 before
    //  response #1
    sink: SequentialWriterBuilder<BufWriter<RefinedTcpStream>>,

    // Reader to read the next header from
    next_header_source: SequentialReader<BufReader<RefinedTcpStream>>,

    // set to true if we know that the previous request is the last one
    no_more_requests: bool,

    // true if the connection goes through SSL
    secure: bool,

    // vouchd patch: how long and how many header lines may be, and how long reading them may take
    limits: Limits,

    // vouchd patch: when the first byte of the request being read arrived
    started: Option<Instant>,

    // vouchd patch: the socket, to shut it down after a `Connection: close` reply
    closer: Option<Connection>,
}

/// Error that can happen when reading a request.
#[derive(Debug)]
enum ReadError {
    WrongRequestLine,
    WrongHeader(HTTPVersion),
    /// the client sent an unrecognized `Expect` header
    ExpectationFailed(HTTPVersion),
    ReadIoError(IoError),
    /// vouchd patch: the request line is longer than `Limits::max_line` (414)
    RequestLineTooLong,
    /// vouchd patch: a header line is too long, or there are too many (431)
    HeadersTooLarge,
}

impl ClientConnection {
    /// Creates a new `ClientConnection` that takes ownership of the `TcpStream`.
    pub fn new(
        write_socket: RefinedTcpStream,
        mut read_socket: RefinedTcpStream,
        limits: Limits,
        closer: Option<Connection>,
    ) -> ClientConnection {
        let remote_addr = read_socket.peer_addr();
        let secure = read_socket.secure();

        let mut source = SequentialReaderBuilder::new(BufReader::with_capacity(1024, read_socket));
        let first_header = source.next().unwrap();

        ClientConnection {
            source,
            // vouchd patch: 8 KiB so that most replies leave in one write (was 1 KiB).
            sink: SequentialWriterBuilder::new(BufWriter::with_capacity(8192, write_socket)),
            remote_addr,
            next_header_source: first_header,
            no_more_requests: false,
            secure,
            limits,
            started: None,
            closer,
        }
    }

    /// true if the connection is HTTPS
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Reads the next line from self.next_header_source.
    ///
    /// Reads until `CRLF` is reached. The next read will start
    ///  at the first byte of the new line.
    ///
    /// vouchd patch: a line longer than `max` is `Ok(None)` (the rest is left unread: the
    /// connection is closed after the error reply), and reading the head of one request may
    /// take at most `Limits::header_deadline` from its first byte.
    fn read_next_line(&mut self, max: usize) -> IoResult<Option<AsciiString>> {
        // vouchd patch: scans what the buffer holds for the line end instead of reading one
        // byte per call and reading the clock per byte (~14 % of the server's CPU for a
        // 200-byte head). The deadline is checked at every read from the socket. A line ends
        // at CR LF; a lone LF stays part of the line, as before.
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let available = match self.next_header_source.fill_buf() {
                // `bytes()` retried these; a signal must not drop a half-read head.
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                other => other?,
            };
            if available.is_empty() {
                return Err(IoError::new(ErrorKind::ConnectionAborted, "Unexpected EOF"));
            }
            let started = *self.started.get_or_insert_with(Instant::now);
            if started.elapsed() > self.limits.header_deadline {
                return Err(IoError::new(ErrorKind::TimedOut, "request head too slow"));
            }
            let mut taken = available.len();
            let mut line_end = false;
            let mut searched = 0;
            while let Some(i) = available[searched..].iter().position(|&b| b == b'\n') {
                let at = searched + i;
                let after_cr = match at {
                    0 => buf.last() == Some(&b'\r'),
                    _ => available[at - 1] == b'\r',
                };
                if after_cr {
                    taken = at + 1;
                    line_end = true;
                    break;
                }
                searched = at + 1;
            }
            let content = if line_end { taken - 1 } else { taken };
            // The line's bytes, CR included: more than max + 1 of them is too long.
            if buf.len() + content > max + 1 {
                self.next_header_source.consume(taken);
                return Ok(None);
            }
            buf.extend_from_slice(&available[..content]);
            self.next_header_source.consume(taken);
            if line_end {
                buf.pop(); // removing the '\r'
                return AsciiString::from_ascii(buf)
                    .map(Some)
                    .map_err(|_| IoError::new(ErrorKind::InvalidInput, "Header is not in ASCII"));
            }
        }
    }

    /// Reads a request from the stream.
    /// Blocks until the header has been read.
    fn read(&mut self) -> Result<Request, ReadError> {
        let (method, path, version, headers) = {
            // reading the request line
            self.started = None;
            let (method, path, version) = {
                let line = self
                    .read_next_line(self.limits.max_line)
                    .map_err(ReadError::ReadIoError)?
                    .ok_or(ReadError::RequestLineTooLong)?;

                parse_request_line(
                    line.as_str().trim(), // TODO: remove this conversion
                )?
            };

            // getting all headers
            let headers = {
                let mut headers = Vec::new();
                loop {
                    let line = self
                        .read_next_line(self.limits.max_line)
                        .map_err(ReadError::ReadIoError)?
                        .ok_or(ReadError::HeadersTooLarge)?;

                    if line.is_empty() {
                        break;
                    };
                    if headers.len() >= self.limits.max_headers {
                        return Err(ReadError::HeadersTooLarge);
                    }
                    headers.push(match FromStr::from_str(line.as_str().trim()) {
                        // TODO: remove this conversion
                        Ok(h) => h,
                        _ => return Err(ReadError::WrongHeader(version)),
                    });
                }

                headers
            };

            (method, path, version, headers)
        };

        // building the writer for the request
        let writer = self.sink.next().unwrap();

        // follow-up for next potential request
        let mut data_source = self.source.next().unwrap();
        std::mem::swap(&mut self.next_header_source, &mut data_source);

        // building the next reader
        let request = crate::request::new_request(
            self.secure,
            method,
            path,
            version.clone(),
            headers,
            *self.remote_addr.as_ref().unwrap(),
            data_source,
            writer,
            self.closer.as_ref().and_then(|c| c.try_clone().ok()),
        )
        .map_err(|e| {
            use crate::request;
            match e {
                request::RequestCreationError::CreationIoError(e) => ReadError::ReadIoError(e),
                request::RequestCreationError::ExpectationFailed => {
                    ReadError::ExpectationFailed(version)
                }
            }
        })?;

        // return the request
        Ok(request)
    }
}

impl Iterator for ClientConnection {
    type Item = Request;

    /// Blocks until the next Request is available.
    /// Returns None when no new Requests will come from the client.
    fn next(&mut self) -> Option<Request> {
        // the client sent a "connection: close" header in this previous request
        //  or is using HTTP 1.0, meaning that no new request will come
        if self.no_more_requests {
            return None;
        }

        loop {
            // vouchd patch: every refusal is an RFC 9457 problem, and ends the connection.
            let rq = match self.read() {
                Err(ReadError::WrongRequestLine) => {
                    self.refuse(400, "bad_request", "The request line is malformed.");
                    return None; // we don't know where the next request would start,
                                 // se we have to close
                }

                Err(ReadError::WrongHeader(_)) => {
                    self.refuse(400, "bad_request", "A header line is malformed.");
                    return None; // we don't know where the next request would start,
                                 // se we have to close
                }

                Err(ReadError::RequestLineTooLong) => {
                    self.refuse(414, "uri_too_long", "The request line is too long.");
                    return None;
                }

                Err(ReadError::HeadersTooLarge) => {
                    self.refuse(
                        431,
                        "header_fields_too_large",
                        "A header line is too long, or there are too many header lines.",
                    );
                    return None;
                }

                Err(ReadError::ReadIoError(ref err)) if err.kind() == ErrorKind::TimedOut => {
                    // request timeout; silent when no byte of a next request came at all
                    if self.started.is_some() {
                        self.refuse(408, "request_timeout", "The request came too slowly.");
                    }
                    return None; // closing the connection
                }

                Err(ReadError::ExpectationFailed(_)) => {
                    self.refuse(
                        417,
                        "expectation_failed",
                        "Only Expect: 100-continue is known.",
                    );
                    return None; // TODO: should be recoverable, but needs handling in case of body
                }

                Err(ReadError::ReadIoError(_)) => return None,

                Ok(rq) => rq,
            };

            // checking HTTP version
            if *rq.http_version() > (1, 1) {
                self.refuse(
                    505,
                    "http_version_not_supported",
                    "This server only supports HTTP versions 1.0 and 1.1.",
                );
                return None;
            }

            // updating the status of the connection
            let connection_header = rq
                .headers()
                .iter()
                .find(|h| h.field.equiv("Connection"))
                .map(|h| h.value.as_str());

            let lowercase = connection_header.map(|h| h.to_ascii_lowercase());

            match lowercase {
                Some(ref val) if val.contains("close") => self.no_more_requests = true,
                Some(ref val) if val.contains("upgrade") => self.no_more_requests = true,
                Some(ref val)
                    if !val.contains("keep-alive") && *rq.http_version() == HTTPVersion(1, 0) =>
                {
                    self.no_more_requests = true
                }
                None if *rq.http_version() == HTTPVersion(1, 0) => self.no_more_requests = true,
                _ => (),
            };

            // returning the request
            return Some(rq);
        }
    }
}

impl ClientConnection {
    /// vouchd patch: answers a request that cannot be read with a problem+json body and
    /// `Connection: close`.
    fn refuse(&mut self, status: u16, code: &str, detail: &str) {
        let title = StatusCode(status).default_reason_phrase();
        let body = format!(
            "{{\"type\":\"about:blank\",\"title\":\"{title}\",\"status\":{status},\"detail\":\"{detail}\",\"code\":\"{code}\"}}"
        );
        let response = Response::from_string(body)
            .with_status_code(StatusCode(status))
            .with_header(problem_header())
            .with_header(close_header());
        if let Some(writer) = self.sink.next() {
            response
                .raw_print(writer, HTTPVersion(1, 1), &[], false, None)
                .ok();
        }
    }
}

fn problem_header() -> crate::Header {
    crate::Header::from_bytes(&b"Content-Type"[..], &b"application/problem+json"[..])
        .expect("a valid header")
}

fn close_header() -> crate::Header {
    crate::Header::from_bytes(&b"Connection"[..], &b"close"[..]).expect("a valid header")
}

use crate::{Response, StatusCode};

/// Parses a "HTTP/1.1" string.
fn parse_http_version(version: &str) -> Result<HTTPVersion, ReadError> {
    let (major, minor) = match version {
        "HTTP/0.9" => (0, 9),
        "HTTP/1.0" => (1, 0),
        "HTTP/1.1" => (1, 1),
        "HTTP/2.0" => (2, 0),
        "HTTP/3.0" => (3, 0),
        _ => return Err(ReadError::WrongRequestLine),
    };

    Ok(HTTPVersion(major, minor))
}

/// Parses the request line of the request.
/// eg. GET / HTTP/1.1
fn parse_request_line(line: &str) -> Result<(Method, String, HTTPVersion), ReadError> {
    let mut parts = line.split(' ');

    let method = parts.next().and_then(|w| w.parse().ok());
    let path = parts.next().map(ToOwned::to_owned);
    let version = parts.next().and_then(|w| parse_http_version(w).ok());

    method
        .and_then(|method| Some((method, path?, version?)))
        .ok_or(ReadError::WrongRequestLine)
}

#[cfg(test)]
mod test {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    /// A connection as the server sees it, and the client's end of it.
    fn pair() -> (super::ClientConnection, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server_side, _) = listener.accept().unwrap();
        let conn = crate::connection::Connection::from(server_side);
        let (read, write) = crate::util::RefinedTcpStream::new(conn);
        let limits = crate::Limits::default();
        (
            super::ClientConnection::new(write, read, limits, None),
            client,
        )
    }

    // vouchd patch: lines are scanned a buffer at a time; a CR LF split across two reads
    // still ends the line, and header lines arriving piecemeal are put together.
    #[test]
    fn head_lines_arriving_in_pieces() {
        let (mut conn, mut client) = pair();
        let sender = std::thread::spawn(move || {
            for part in [
                "GET /a HTTP/1.1\r",
                "\nHost: x\r\nX-On",
                "e: a b\r\n",
                "\r\n",
            ] {
                client.write_all(part.as_bytes()).unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
            client
        });
        let request = conn.next().expect("a request");
        assert_eq!(request.url(), "/a");
        let one = request.headers().iter().find(|h| h.field.equiv("X-One"));
        assert_eq!(one.map(|h| h.value.as_str()), Some("a b"));
        drop(sender.join());
    }

    #[test]
    fn a_request_line_over_the_limit_is_414_without_waiting_for_its_end() {
        let (mut conn, mut client) = pair();
        client
            .write_all(format!("GET /{} ", "a".repeat(9000)).as_bytes())
            .unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let reader = std::thread::spawn(move || {
            let mut head = [0u8; 12];
            client.read_exact(&mut head).map(|_| head)
        });
        assert!(conn.next().is_none());
        drop(conn); // as the server does: the refusal is flushed as the connection ends
        let head = reader
            .join()
            .unwrap()
            .expect("an answer before the line ended");
        assert_eq!(&head[9..12], b"414");
    }

    #[test]
    fn test_parse_request_line() {
        let (method, path, ver) = super::parse_request_line("GET /hello HTTP/1.1").unwrap();

        assert!(method == crate::Method::Get);
        assert!(path == "/hello");
        assert!(ver == crate::common::HTTPVersion(1, 1));

        assert!(super::parse_request_line("GET /hello").is_err());
        assert!(super::parse_request_line("qsd qsd qsd").is_err());
    }
}
