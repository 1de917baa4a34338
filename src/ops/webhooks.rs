//! Webhook delivery: a dispatching thread and one short-lived thread per endpoint at work.
//!
//! A write records one outbox row per event and nothing more; the dispatcher does the rest in
//! batches, once a tick: it makes the endpoints' deliveries for the events recorded since the
//! last tick, and now and then prunes delivered events older than the retention (30 days).
//! Each enabled endpoint's oldest pending delivery (its head) is the only one of it that may
//! be tried, which keeps each endpoint's events in order. A due head gets a thread that claims
//! it in the database (so that of several instances on one PostgreSQL database one sends it),
//! renders it (a ledger event's body is rendered from its entry, outside every write; a head
//! that cannot be rendered waits out its claim, holding up its endpoint alone), POSTs it (10 s
//! at most), reports the outcome through the writer like any other write, and goes on with
//! the endpoint's next head while they succeed. A hanging receiver therefore holds its own
//! thread and nothing else: no lock, no transaction, no other endpoint.
//! The dispatcher also reports expired reservations (they expire by time, with no write).

use crate::domain::clock;
use crate::domain::webhook::{retry_delay, signature};
use crate::ops::metrics::WebhookOutcomes;
use crate::store::outbox;
use crate::store::webhooks::{self as endpoints, Head, Outcome};
use crate::store::{Db, Store, StoreError};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long one attempt may take, connecting included.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the dispatcher looks for due deliveries and expired holds.
const TICK: Duration = Duration::from_millis(100);
/// Endpoints delivered to at the same time, at most.
const MAX_WORKERS: usize = 32;
/// How often delivered events past the retention are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// How long a claimed delivery is left to the instance that claimed it (longer than an
/// attempt and the write of its outcome); then it is due again, for any instance.
const CLAIM_LEASE: Duration = Duration::from_secs(20);
/// The longest error text kept with a delivery.
const MAX_ERROR_LEN: usize = 300;

/// `--webhook-retry-for` and `--webhook-first-retry`.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// How long an event is retried before its endpoint is disabled.
    pub retry_for: Duration,
    /// The wait before the first retry; each later one doubles it (with jitter).
    pub first_retry: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            retry_for: Duration::from_secs(24 * 3600),
            first_retry: Duration::from_secs(5),
        }
    }
}

/// The running delivery; dropping it stops the dispatcher (attempts under way finish).
pub struct Delivery {
    stop: Arc<AtomicBool>,
    dispatcher: Option<JoinHandle<()>>,
}

impl Drop for Delivery {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(handle) = self.dispatcher.take() {
            let _ = handle.join();
        }
    }
}

/// What the dispatcher and its workers share.
struct Shared {
    store: Store,
    settings: Settings,
    counts: Arc<WebhookOutcomes>,
    stop: Arc<AtomicBool>,
    /// Endpoints a worker is delivering to right now.
    busy: Mutex<HashSet<String>>,
}

/// Starts delivering what the outbox of `store` holds.
pub fn start(
    store: Store,
    settings: Settings,
    counts: Arc<WebhookOutcomes>,
) -> Result<Delivery, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let conn = store
        .reader()
        .map_err(|e| format!("cannot open the database for webhook delivery: {e}"))?;
    let shared = Arc::new(Shared {
        store,
        settings,
        counts,
        stop: Arc::clone(&stop),
        busy: Mutex::new(HashSet::new()),
    });
    let dispatcher = std::thread::Builder::new()
        .name("vouchd-webhooks".into())
        .spawn(move || dispatch(&conn, &shared))
        .map_err(|e| format!("cannot start the webhook thread: {e}"))?;
    Ok(Delivery {
        stop,
        dispatcher: Some(dispatcher),
    })
}

fn dispatch(conn: &Db, shared: &Arc<Shared>) {
    let mut pruned_at: Option<Instant> = None;
    let mut complaints = Complaints::default();
    while !shared.stop.load(Ordering::Acquire) {
        let failed = tick(conn, shared, &mut pruned_at);
        complaints.round(&failed, Instant::now());
        std::thread::sleep(TICK);
    }
}

/// One round of the dispatcher: each step runs whatever another failed (one bad row holds up
/// its own step only); says what it could not do.
fn tick(conn: &Db, shared: &Arc<Shared>, pruned_at: &mut Option<Instant>) -> Vec<String> {
    let mut failed = Vec::new();
    if let Err(e) = sweep_expired(conn, &shared.store) {
        failed.push(format!("cannot look for expired reservations: {e}"));
    }
    if let Err(e) = fan_out(conn, &shared.store) {
        failed.push(format!("cannot queue deliveries: {e}"));
    }
    if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
        *pruned_at = Some(Instant::now());
        let cutoff = clock::now() - outbox::RETENTION_SECS;
        if let Err(e) = shared.store.write(move |c| outbox::prune(c, cutoff)) {
            failed.push(format!("cannot prune delivered events: {e}"));
        }
    }
    match endpoints::heads(conn) {
        Ok(heads) => start_due(shared, heads),
        Err(e) => failed.push(format!("cannot read the outbox: {e}")),
    }
    failed
}

/// "1 failed round", "2 failed rounds".
fn rounds(n: u64) -> String {
    match n {
        1 => "1 failed round".into(),
        n => format!("{n} failed rounds"),
    }
}

/// How often the dispatcher's failures are logged at most: it ticks ten times a second.
const COMPLAINT_EVERY: Duration = Duration::from_secs(10);

/// The dispatcher's failed rounds, logged once per [`COMPLAINT_EVERY`] with a count of the
/// ones left out; the first good round after some left out says so.
#[derive(Default)]
struct Complaints {
    logged_at: Option<Instant>,
    unlogged: u64,
}

impl Complaints {
    /// Takes a round's failures (none: it went well); returns the line it logged, if any.
    fn round(&mut self, failed: &[String], now: Instant) -> Option<String> {
        let line = if failed.is_empty() {
            match std::mem::take(&mut self.unlogged) {
                0 => return None,
                n => format!("working again ({} not logged)", rounds(n)),
            }
        } else if self
            .logged_at
            .is_some_and(|at| now.duration_since(at) < COMPLAINT_EVERY)
        {
            self.unlogged += 1;
            return None;
        } else {
            let what = failed.join("; ");
            match std::mem::take(&mut self.unlogged) {
                0 => what,
                n => format!("{what} (and {} not logged)", rounds(n)),
            }
        };
        eprintln!("vouchd: webhooks: {line}");
        self.logged_at = if failed.is_empty() { None } else { Some(now) };
        Some(line)
    }
}

/// Records `reservation.expired` for holds that expired since the last look; writes only when
/// there is one (or to set the first mark).
fn sweep_expired(conn: &Db, store: &Store) -> Result<(), StoreError> {
    let now = clock::now();
    let due = match outbox::swept_until(conn)? {
        None => true,
        Some(since) => outbox::has_expired_since(conn, since, now)?,
    };
    if due {
        store.write(move |c| outbox::sweep_expired(c, now))?;
    }
    Ok(())
}

/// Makes the deliveries of the events recorded since the last look; writes only when there
/// are some.
fn fan_out(conn: &Db, store: &Store) -> Result<(), StoreError> {
    if outbox::fan_out_due(conn)? {
        store.write(|c| outbox::fan_out(c, None))?;
    }
    Ok(())
}

fn start_due(shared: &Arc<Shared>, heads: Vec<Head>) {
    let now = outbox::now_ms();
    for head in heads.into_iter().filter(|h| h.next_try_at <= now) {
        {
            let mut busy = shared.busy.lock().unwrap_or_else(|e| e.into_inner());
            if busy.len() >= MAX_WORKERS || !busy.insert(head.endpoint_id.clone()) {
                continue;
            }
        }
        let endpoint = head.endpoint_id.clone();
        let worker = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name("vouchd-webhook".into())
            .spawn(move || deliver_while_due(&worker, head));
        if let Err(err) = spawned {
            eprintln!("vouchd: webhooks: cannot start a delivery thread: {err}");
            let mut busy = shared.busy.lock().unwrap_or_else(|e| e.into_inner());
            busy.remove(&endpoint);
        }
    }
}

/// Delivers `head`, then the endpoint's next heads while they succeed and are due.
fn deliver_while_due(shared: &Shared, head: Head) {
    let endpoint = head.endpoint_id.clone();
    let agent = ureq::AgentBuilder::new()
        .timeout(ATTEMPT_TIMEOUT)
        .redirects(0)
        .user_agent(concat!("vouchd/", env!("CARGO_PKG_VERSION")))
        .build();
    let reader = match shared.store.reader() {
        Ok(reader) => Some(reader),
        Err(err) => {
            eprintln!("vouchd: webhooks: cannot open the database to deliver: {err}");
            None
        }
    };
    let mut next = reader.as_ref().map(|_| head);
    while let Some(mut head) = next.take() {
        if shared.stop.load(Ordering::Acquire) {
            break;
        }
        if !claimed(shared, &head) {
            break;
        }
        let Some(reader) = reader.as_ref() else { break };
        if let Err(err) = endpoints::render(reader, &mut head) {
            // This endpoint alone waits (its claim's lease) and is tried again.
            eprintln!(
                "vouchd: webhooks: cannot render event {} for endpoint {}: {err}",
                head.event_id, head.endpoint_id
            );
            break;
        }
        let at = outbox::now_ms();
        let outcome = attempt(&agent, &head, &shared.settings, at);
        let counter = match &outcome {
            Outcome::Delivered { .. } => &shared.counts.delivered,
            Outcome::Failed { disable: None, .. } => &shared.counts.failed,
            Outcome::Failed { .. } => &shared.counts.disabled,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let delivered = matches!(outcome, Outcome::Delivered { .. });
        let (id, seq) = (head.endpoint_id.clone(), head.event_seq);
        let written = shared
            .store
            .write(move |c| endpoints::finish_attempt(c, &id, seq, at, &outcome));
        if let Err(err) = written {
            // Not written: the delivery is tried again later (at least once, never lost).
            eprintln!("vouchd: webhooks: cannot record a delivery attempt: {err}");
            break;
        }
        if delivered {
            next = endpoints::head_of(reader, &endpoint)
                .ok()
                .flatten()
                .filter(|h| h.next_try_at <= outbox::now_ms());
        }
    }
    let mut busy = shared.busy.lock().unwrap_or_else(|e| e.into_inner());
    busy.remove(&endpoint);
}

/// Claims `head` in the database, so that of several instances sharing it (PostgreSQL) one
/// sends this attempt; false if another did or it is no longer due.
fn claimed(shared: &Shared, head: &Head) -> bool {
    let now = outbox::now_ms();
    let lease_until = now.saturating_add(CLAIM_LEASE.as_millis() as i64);
    let (id, seq) = (head.endpoint_id.clone(), head.event_seq);
    match shared
        .store
        .write(move |c| endpoints::claim(c, &id, seq, now, lease_until))
    {
        Ok(claimed) => claimed,
        Err(err) => {
            eprintln!("vouchd: webhooks: cannot claim a delivery: {err}");
            false
        }
    }
}

/// One POST of the head's event, signed at this second.
fn attempt(agent: &ureq::Agent, head: &Head, settings: &Settings, at: i64) -> Outcome {
    let t = at.div_euclid(1000);
    let sent = agent
        .post(&head.url)
        .set("Content-Type", "application/json")
        .set(
            "Vouchd-Signature",
            &signature(&head.secret, t, head.body.as_bytes()),
        )
        .set("Vouchd-Event-Id", &head.event_id)
        .send_string(&head.body);
    let (status, error) = match sent {
        Ok(answer) if (200..300).contains(&answer.status()) => {
            return Outcome::Delivered {
                status: i64::from(answer.status()),
            }
        }
        Ok(answer) => (
            Some(answer.status()),
            format!("answered {}", answer.status()),
        ),
        Err(ureq::Error::Status(code, _)) => (Some(code), format!("answered {code}")),
        Err(ureq::Error::Transport(t)) => (None, t.to_string()),
    };
    failed(head, settings, at, status.map(i64::from), error)
}

/// `text` with its control characters escaped (`\u{0}`).
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The outcome of a failed attempt: when to try again, or that the endpoint is disabled
/// because every attempt for `retry_for` failed.
fn failed(
    head: &Head,
    settings: &Settings,
    at: i64,
    status: Option<i64>,
    error: String,
) -> Outcome {
    // The receiver's bytes can be in it (ureq quotes a bad status line): control characters
    // escaped, so a NUL cannot keep the outcome from being stored (PostgreSQL's text).
    let mut error = printable(&error);
    if error.len() > MAX_ERROR_LEN {
        let mut cut = MAX_ERROR_LEN;
        while !error.is_char_boundary(cut) {
            cut -= 1;
        }
        error.truncate(cut);
    }
    let failing_since = head.first_failed_at.unwrap_or(at);
    let window = i64::try_from(settings.retry_for.as_millis()).unwrap_or(i64::MAX);
    let disable = (at.saturating_sub(failing_since) >= window).then(|| {
        format!(
            "every attempt to deliver event {} failed for {} s; the last: {error}",
            head.event_id,
            settings.retry_for.as_secs()
        )
    });
    let failures = u32::try_from(head.attempts + 1).unwrap_or(u32::MAX);
    let wait = retry_delay(failures, settings.first_retry, rand::random::<f64>());
    Outcome::Failed {
        status,
        error,
        next_try_at: at.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX)),
        disable,
    }
}

#[cfg(test)]
mod tests {
    use super::{printable, Complaints, COMPLAINT_EVERY};
    use std::time::{Duration, Instant};

    #[test]
    fn failed_rounds_are_logged_once_per_spell_with_a_count_of_the_rest() {
        let mut complaints = Complaints::default();
        let start = Instant::now();
        let down = ["cannot read the outbox: busy".to_string()];
        assert_eq!(
            complaints.round(&down, start).as_deref(),
            Some("cannot read the outbox: busy")
        );
        for ms in (100..10_000).step_by(100) {
            let at = start + Duration::from_millis(ms);
            assert_eq!(complaints.round(&down, at), None);
        }
        let later = start + COMPLAINT_EVERY;
        assert_eq!(
            complaints.round(&down, later).as_deref(),
            Some("cannot read the outbox: busy (and 99 failed rounds not logged)")
        );
        let at = later + Duration::from_millis(100);
        assert_eq!(complaints.round(&down, at), None);
        assert_eq!(
            complaints.round(&[], at).as_deref(),
            Some("working again (1 failed round not logged)")
        );
        assert_eq!(complaints.round(&[], at), None);
        // A new failure after the recovery is logged at once.
        assert!(complaints.round(&down, at).is_some());
    }

    #[test]
    fn a_receivers_control_characters_are_escaped_in_the_stored_error() {
        assert_eq!(
            printable("bad status (2\0 0)\r\n"),
            "bad status (2\\u{0} 0)\\r\\n"
        );
        assert_eq!(printable("Zeitüberschreitung"), "Zeitüberschreitung");
    }
}
