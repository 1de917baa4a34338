//! The access log: one line per answered request on stderr, as logfmt-style text or as JSON
//! (`serve --log-format text|json`).
//!
//! A line holds the time, the client's address (the peer's, or behind a `--trusted-proxy` the
//! one it forwards, parsed as an IP address), the method, the route template, the status, the
//! duration (until the last byte of the reply went out) and the client id. It is built only
//! from values the server made or checked: never the raw path (ids and voucher codes), never a
//! header's text, a token, a secret or a body. Lines are written whole, under stderr's lock, so
//! lines from different workers do not interleave.
//!
//! A server worker holds its lines ([`hold_lines`]) while requests keep coming to it back to
//! back, and writes them in one call when it is about to wait (for bytes, for a turn, on the
//! writer) or once they fill [`HOLD_MAX`]: under load that is one `write` per few dozen
//! requests instead of one each, and when the server is not busy a line is written as soon as
//! its request is done.

use super::Trace;
use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write;
use std::time::Duration;
use time::format_description::FormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

const TIME_FORMAT: &[FormatItem<'_>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// `access time=… remote=… method=GET route=/v1/vouchers/{id} status=200 duration_ms=1.234
    /// client_id=…` (`-` for no value).
    #[default]
    Text,
    /// One JSON object per line with the same fields (`null` for no value).
    Json,
}

impl LogFormat {
    pub fn parse(text: &str) -> Option<LogFormat> {
        match text {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

/// Where access lines go and in which format.
#[derive(Clone, Copy, Debug, Default)]
pub struct AccessLog {
    pub format: LogFormat,
}

impl AccessLog {
    pub fn new(format: LogFormat) -> AccessLog {
        AccessLog { format }
    }

    /// Writes the line for one answered request to stderr, or holds it with the thread's other
    /// lines (see [`hold_lines`]). A failed write is dropped: the log must never stop the server.
    pub fn write(&self, trace: &Trace, status: u16, elapsed: Duration) {
        let line = render(
            self.format,
            OffsetDateTime::now_utc(),
            trace,
            status,
            elapsed,
        );
        let held = HELD.with(|held| match held.borrow_mut().as_mut() {
            Some(lines) => {
                lines.extend_from_slice(line.as_bytes());
                if lines.len() >= HOLD_MAX {
                    write_out(lines);
                }
                true
            }
            None => false,
        });
        if !held {
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }
}

/// Held lines are written once they reach this size (so a write is this plus at most one line:
/// about a pipe's atomic write; whole lines either way, under stderr's lock).
pub const HOLD_MAX: usize = 4096;

thread_local! {
    /// The calling thread's lines not yet written, once it holds them.
    static HELD: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// From now on the calling thread holds its access lines until [`write_held`] (or until they
/// fill [`HOLD_MAX`]).
pub fn hold_lines() {
    HELD.with(|held| *held.borrow_mut() = Some(Vec::with_capacity(HOLD_MAX * 2)));
}

/// Writes the lines the calling thread holds, if any.
pub fn write_held() {
    HELD.with(|held| {
        if let Some(lines) = held.borrow_mut().as_mut() {
            if !lines.is_empty() {
                write_out(lines);
            }
        }
    });
}

/// Whether the calling thread holds lines not yet written.
pub fn holding() -> bool {
    HELD.with(|held| {
        held.borrow()
            .as_ref()
            .is_some_and(|lines| !lines.is_empty())
    })
}

fn write_out(lines: &mut Vec<u8>) {
    let _ = std::io::stderr().lock().write_all(lines);
    lines.clear();
}

/// One line, with its `\n`.
pub fn render(
    format: LogFormat,
    at: OffsetDateTime,
    trace: &Trace,
    status: u16,
    elapsed: Duration,
) -> String {
    // Milliseconds with microsecond precision.
    let millis = elapsed.as_micros() as f64 / 1000.0;
    match format {
        LogFormat::Text => {
            // One buffer, written in place (the line is on every request's path).
            let mut line = String::with_capacity(160);
            let _ = write!(
                line,
                "access time={:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z remote=",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour(),
                at.minute(),
                at.second(),
                at.millisecond(),
            );
            match trace.remote {
                Some(ip) => {
                    let _ = write!(line, "{ip}");
                }
                None => line.push('-'),
            }
            let _ = writeln!(
                line,
                " method={} route={} status={status} duration_ms={millis:.3} client_id={}",
                trace.method,
                trace.route,
                trace.client_id.as_deref().unwrap_or("-"),
            );
            line
        }
        LogFormat::Json => {
            let time = at.format(TIME_FORMAT).unwrap_or_default();
            let remote = trace.remote.map(|ip| ip.to_string());
            let mut line = serde_json::json!({
                "time": time,
                "remote": remote,
                "method": trace.method,
                "route": trace.route,
                "status": status,
                "duration_ms": (millis * 1000.0).round() / 1000.0,
                "client_id": trace.client_id,
            })
            .to_string();
            line.push('\n');
            line
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_that_holds_its_lines_keeps_them_until_it_writes_them_or_they_fill_up() {
        std::thread::spawn(|| {
            let log = AccessLog::new(LogFormat::Text);
            log.write(&trace(None), 200, Duration::from_millis(1));
            assert!(!holding(), "a thread that does not hold writes at once");
            hold_lines();
            log.write(&trace(None), 200, Duration::from_millis(1));
            assert!(holding());
            write_held();
            assert!(!holding());
            // (The lines written here go to the test run's stderr.)
            let filled = (0..HOLD_MAX).any(|_| {
                log.write(&trace(Some("c")), 200, Duration::from_millis(1));
                !holding()
            });
            assert!(
                filled,
                "full lines are written without waiting for the thread"
            );
        })
        .join()
        .expect("thread");
    }

    fn trace(client: Option<&str>) -> Trace {
        Trace {
            method: "POST",
            route: "/v1/vouchers/{id}/charges",
            remote: "127.0.0.1".parse().ok(),
            client_id: client.map(str::to_string),
        }
    }

    fn at() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).expect("a time")
    }

    #[test]
    fn text_line_has_every_field() {
        let line = render(
            LogFormat::Text,
            at(),
            &trace(Some("C1")),
            201,
            Duration::from_micros(1234),
        );
        assert_eq!(
            line,
            "access time=2023-11-14T22:13:20.123Z remote=127.0.0.1 method=POST \
             route=/v1/vouchers/{id}/charges status=201 duration_ms=1.234 client_id=C1\n"
        );
        let anonymous = render(LogFormat::Text, at(), &trace(None), 401, Duration::ZERO);
        assert!(anonymous.ends_with("status=401 duration_ms=0.000 client_id=-\n"));
    }

    #[test]
    fn json_line_parses_with_the_same_fields() {
        let line = render(
            LogFormat::Json,
            at(),
            &trace(None),
            409,
            Duration::from_micros(25_500),
        );
        assert!(line.ends_with('\n') && !line.trim_end().contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert_eq!(v["time"], "2023-11-14T22:13:20.123Z");
        assert_eq!(v["remote"], "127.0.0.1");
        assert_eq!(v["method"], "POST");
        assert_eq!(v["route"], "/v1/vouchers/{id}/charges");
        assert_eq!(v["status"], 409);
        assert_eq!(v["duration_ms"].as_f64(), Some(25.5));
        assert!(v["client_id"].is_null());
    }

    #[test]
    fn formats_parse() {
        assert_eq!(LogFormat::parse("text"), Some(LogFormat::Text));
        assert_eq!(LogFormat::parse("json"), Some(LogFormat::Json));
        assert_eq!(LogFormat::parse("JSON"), None);
    }
}
