//! The webhook outbox: recording events, in SQL.
//!
//! [`record`] runs inside the write it reports (same transaction), so an event exists if and
//! only if its change committed. It writes nothing for a group with no endpoint that wants
//! the event, and one row for any other: no delivery rows, and for a ledger event (a charge or
//! refund, the busiest) not even the body, only the entry's id — the ledger is append-only, so
//! the body rendered from the entry when it is sent ([`render_entry_event`], on the delivery
//! thread's connection) is the one rendered now would have been, on every attempt.
//!
//! The delivery thread does the rest outside the request's transaction, in batches: it makes
//! each enabled endpoint's deliveries for the events after its `fanned_upto` ([`fan_out`]) and
//! prunes delivered events past the retention ([`prune`]). Nothing here waits on a receiver.

use super::error::StoreError;
use super::ledger::hold_from_row;
use super::sql::ToArg;
use super::Db;
use crate::domain::clock;
use crate::domain::code::new_id;
use crate::domain::ledger::{Entry, EntryKind, Reservation};
use crate::domain::money::Currency;
use crate::domain::voucher::{Status, Voucher};
use crate::domain::webhook::EventType;
use std::collections::HashMap;
use std::sync::OnceLock;

/// A change worth telling a receiver of, as the store has it at the moment of the change.
pub enum Event<'a> {
    VoucherCreated(&'a Voucher),
    VoucherUpdated(&'a Voucher),
    VoucherDeleted(&'a Voucher),
    /// A ledger entry: charges and uses are `charge.created`, refunds `refund.created`;
    /// recharges are no event.
    Entry(&'a Entry),
    ReservationCreated(&'a Reservation, Currency),
    ReservationReleased(&'a Reservation, Currency),
    ReservationExpired(&'a Reservation, Currency),
    /// An import's vouchers of one group.
    ImportCompleted {
        count: i64,
    },
}

impl Event<'_> {
    pub fn kind(&self) -> Option<EventType> {
        Some(match self {
            Event::VoucherCreated(_) => EventType::VoucherCreated,
            Event::VoucherUpdated(_) => EventType::VoucherUpdated,
            Event::VoucherDeleted(_) => EventType::VoucherDeleted,
            Event::Entry(e) => match e.kind {
                EntryKind::Charge | EntryKind::Use => EventType::ChargeCreated,
                EntryKind::Refund => EventType::RefundCreated,
                EntryKind::Recharge => return None,
            },
            Event::ReservationCreated(..) => EventType::ReservationCreated,
            Event::ReservationReleased(..) => EventType::ReservationReleased,
            Event::ReservationExpired(..) => EventType::ReservationExpired,
            Event::ImportCompleted { .. } => EventType::ImportCompleted,
        })
    }
}

/// What an event is, for the renderer of its body.
pub struct Envelope<'a> {
    pub id: &'a str,
    pub kind: EventType,
    pub created_at: i64,
    pub event: &'a Event<'a>,
}

/// Renders an event's JSON body; set once by the API layer, which owns the wire shapes.
pub type Renderer = Box<dyn Fn(&Envelope) -> String + Send + Sync>;

static RENDERER: OnceLock<Renderer> = OnceLock::new();

/// Sets how event bodies are rendered (the first call wins; the process has one offset).
pub fn set_renderer(renderer: Renderer) {
    let _ = RENDERER.set(renderer);
}

/// Current time in unix milliseconds, the unit of delivery times.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Records `event` of group `group_id`, in the caller's transaction, if an enabled endpoint
/// of the group wants its type: one outbox row; the deliveries are made by [`fan_out`].
pub fn record(conn: &Db, group_id: &str, event: Event) -> Result<(), StoreError> {
    let Some(kind) = event.kind() else {
        return Ok(());
    };
    if !wanted(conn, group_id, kind)? {
        return Ok(());
    }
    record_wanted(conn, group_id, event)
}

/// Whether an enabled endpoint of group `group_id` wants events of type `kind` (asked once by
/// a write that records many events of one type, then [`record_wanted`] for each).
pub fn wanted(conn: &Db, group_id: &str, kind: EventType) -> Result<bool, StoreError> {
    Ok(conn.query_value(
        "SELECT EXISTS (SELECT 1 FROM webhook_endpoints
         WHERE group_id = ?1 AND disabled_at IS NULL AND ' ' || events || ' ' LIKE ?2)",
        &[&group_id, &format!("% {} %", kind.as_str())],
    )?)
}

/// [`record`] once [`wanted`] said yes for the event's type in this transaction.
pub fn record_wanted(conn: &Db, group_id: &str, event: Event) -> Result<(), StoreError> {
    let Some(kind) = event.kind() else {
        return Ok(());
    };
    // `fan_out` moves each endpoint's mark to the newest event, so no event may commit
    // behind a mark: under SQLite's one writer none does; on PostgreSQL, where writes run
    // side by side, a write with an event holds its group's outbox lock from here until it
    // commits, and `fan_out` moves the marks of a group's endpoints only while it holds that
    // lock (a `seq` taken earlier but committed later would fall behind a mark and never be
    // sent). Writes of different groups do not wait for each other.
    if conn.locks_rows() {
        conn.query_opt(GROUP_LOCK, &[&group_id], |_| Ok(()))?;
    }
    let id = format!("evt_{}", new_id());
    let created_at = clock::now();
    let (body, entry_id) = match &event {
        Event::Entry(entry) => (None, Some(entry.id.as_str())),
        _ => (Some(render(&id, kind, created_at, &event)?), None),
    };
    conn.execute(
        "INSERT INTO webhook_events (id, group_id, type, created_at, body, entry_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        &[
            &id,
            &group_id,
            &kind.as_str(),
            &created_at,
            &body,
            &entry_id,
        ],
    )?;
    Ok(())
}

/// A group's outbox lock on PostgreSQL, held to the end of the transaction.
const GROUP_LOCK: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended('vouchd outbox ' || ?1, 0))";

fn render(id: &str, kind: EventType, created_at: i64, event: &Event) -> Result<String, StoreError> {
    let renderer = RENDERER
        .get()
        .ok_or(StoreError::Bug("no renderer for webhook events"))?;
    Ok(renderer(&Envelope {
        id,
        kind,
        created_at,
        event,
    }))
}

/// The body of a ledger event (stored without one), rendered from its entry: the same on
/// every attempt, since neither the entry (the ledger is append-only) nor the event changes.
pub fn render_entry_event(
    conn: &Db,
    id: &str,
    kind: &str,
    created_at: i64,
    entry_id: Option<String>,
) -> Result<String, StoreError> {
    let kind = EventType::parse(kind).ok_or(StoreError::Bug("an unknown event type"))?;
    let entry = match entry_id {
        Some(entry_id) => super::ledger::find_entry(conn, &entry_id)?,
        None => None,
    };
    let entry = entry.ok_or(StoreError::Bug("an event with neither body nor entry"))?;
    render(id, kind, created_at, &Event::Entry(&entry))
}

/// Whether an enabled endpoint has events after its `fanned_upto` (so [`fan_out`] has work).
pub fn fan_out_due(conn: &Db) -> Result<bool, StoreError> {
    // 2^62 when no endpoint is enabled (as a literal: PostgreSQL's `1 << 62` is a 32-bit
    // shift).
    Ok(conn.query_value(
        "SELECT COALESCE((SELECT MAX(seq) FROM webhook_events), 0) >
                COALESCE((SELECT MIN(fanned_upto) FROM webhook_endpoints
                          WHERE disabled_at IS NULL), 4611686018427387904)",
        &[],
    )?)
}

/// Makes the pending deliveries of every enabled endpoint (or only `endpoint`) for the events
/// of its group and types after its `fanned_upto`, in event order, and moves the mark to the
/// newest event. Endpoints see the events of their group only. (`CROSS JOIN` and
/// `+ev.group_id`: each endpoint's events are found by seq from its mark on, not by a scan or
/// a temporary index of the whole table. PostgreSQL has no unary plus on text, and plans on
/// its own.)
pub fn fan_out(conn: &Db, endpoint: Option<&str>) -> Result<(), StoreError> {
    const SQLITE: &str =
        "INSERT INTO webhook_deliveries (endpoint_id, event_seq, state, next_try_at)
         SELECT e.id, ev.seq, 'pending', ?1
         FROM webhook_endpoints e CROSS JOIN webhook_events ev
         WHERE ev.seq > e.fanned_upto AND ev.seq <= ?3 AND +ev.group_id = e.group_id
           AND e.disabled_at IS NULL AND (?2 IS NULL OR e.id = ?2)
           AND ' ' || e.events || ' ' LIKE '% ' || ev.type || ' %'
         ORDER BY e.id, ev.seq
         ON CONFLICT DO NOTHING";
    const POSTGRES: &str =
        "INSERT INTO webhook_deliveries (endpoint_id, event_seq, state, next_try_at)
         SELECT e.id, ev.seq, 'pending', CAST(?1 AS BIGINT)
         FROM webhook_endpoints e JOIN webhook_events ev ON ev.group_id = e.group_id
         WHERE ev.seq > e.fanned_upto AND ev.seq <= ?3 AND e.group_id = ?4
           AND e.disabled_at IS NULL AND (CAST(?2 AS TEXT) IS NULL OR e.id = ?2)
           AND ' ' || e.events || ' ' LIKE '% ' || ev.type || ' %'
         ORDER BY e.id, ev.seq
         ON CONFLICT DO NOTHING";
    let now = now_ms();
    if !conn.is_postgres() {
        // One writer: every event up to the newest has committed.
        let upto: i64 =
            conn.query_value("SELECT COALESCE(MAX(seq), 0) FROM webhook_events", &[])?;
        conn.execute(SQLITE, &[&now, &endpoint, &upto])?;
        conn.execute(
            "UPDATE webhook_endpoints SET fanned_upto = ?2
             WHERE disabled_at IS NULL AND (CAST(?1 AS TEXT) IS NULL OR id = ?1)
               AND fanned_upto < ?2",
            &[&endpoint, &upto],
        )?;
        return Ok(());
    }
    // PostgreSQL: group by group, under the group's outbox lock (see `record`): while it is
    // held no event of the group is uncommitted, and none commits before this write does, so
    // every event of the group up to the newest seq read after taking it has committed and
    // stays the same for both statements. A group whose lock a write holds right now waits for
    // the next round (for one endpoint being disabled, its lock is waited for: its events up
    // to now must be made).
    let groups: Vec<String> = conn.query_map(
        "SELECT DISTINCT group_id FROM webhook_endpoints
         WHERE disabled_at IS NULL AND (CAST(?1 AS TEXT) IS NULL OR id = ?1)
         ORDER BY group_id",
        &[&endpoint],
        |r| r.get(0),
    )?;
    let mut locked = Vec::new();
    for group in groups {
        let got = if endpoint.is_some() {
            conn.query_opt(GROUP_LOCK, &[&group], |_| Ok(()))?;
            true
        } else {
            conn.query_value(
                "SELECT pg_try_advisory_xact_lock(hashtextextended('vouchd outbox ' || ?1, 0))",
                &[&group],
            )?
        };
        if got {
            locked.push(group);
        }
    }
    if locked.is_empty() {
        return Ok(());
    }
    let upto: i64 = conn.query_value("SELECT COALESCE(MAX(seq), 0) FROM webhook_events", &[])?;
    for group in &locked {
        conn.execute(POSTGRES, &[&now, &endpoint, &upto, group])?;
        conn.execute(
            "UPDATE webhook_endpoints SET fanned_upto = ?2
             WHERE disabled_at IS NULL AND (CAST(?1 AS TEXT) IS NULL OR id = ?1)
               AND group_id = ?3 AND fanned_upto < ?2",
            &[&endpoint, &upto, group],
        )?;
    }
    Ok(())
}

/// How long a delivered event is kept: 30 days.
pub const RETENTION_SECS: i64 = 30 * 24 * 3600;
/// Events pruned per call, at most.
const PRUNE_BATCH: i64 = 5000;

/// Deletes the oldest events created before `cutoff` (unix seconds) that every endpoint is
/// done with, with their deliveries: none pending for any endpoint (a disabled endpoint's
/// pending ones are kept for redelivery), all made (at or before every enabled endpoint's
/// `fanned_upto`), and never the newest event, whose seq the next one follows. Returns how
/// many events went.
pub fn prune(conn: &Db, cutoff: i64) -> Result<usize, StoreError> {
    let upto: Option<i64> = conn.query_value(
        "WITH bound AS (SELECT MIN(b) AS b FROM (
             SELECT MAX(seq) AS b FROM webhook_events
             UNION ALL SELECT MIN(fanned_upto) + 1 FROM webhook_endpoints
                 WHERE disabled_at IS NULL
             UNION ALL SELECT MIN(event_seq) FROM webhook_deliveries WHERE state = 'pending')
             AS bounds)
         SELECT MAX(seq) FROM (SELECT seq, created_at FROM webhook_events
             WHERE seq < (SELECT b FROM bound) ORDER BY seq LIMIT ?2) AS oldest
         WHERE created_at < ?1",
        &[&cutoff, &PRUNE_BATCH],
    )?;
    let Some(upto) = upto else {
        return Ok(0);
    };
    conn.execute(
        "DELETE FROM webhook_deliveries
         WHERE endpoint_id IN (SELECT id FROM webhook_endpoints) AND event_seq <= ?1",
        &[&upto],
    )?;
    Ok(conn.execute("DELETE FROM webhook_events WHERE seq <= ?1", &[&upto])?)
}

/// Records `import.completed` for each group an import added vouchers to.
pub fn record_import(
    conn: &Db,
    counted: &HashMap<(String, Status), i64>,
) -> Result<(), StoreError> {
    let mut per_group: HashMap<&str, i64> = HashMap::new();
    for ((group, _), n) in counted {
        *per_group.entry(group.as_str()).or_default() += n;
    }
    for (group, count) in per_group {
        record(conn, group, Event::ImportCompleted { count })?;
    }
    Ok(())
}

/// Records `reservation.released` for each hold of `voucher` still live at `now` (before
/// they are released together).
pub fn record_live_releases(conn: &Db, voucher_id: &str, now: i64) -> Result<(), StoreError> {
    let holds = holds_where(
        conn,
        "r.voucher_id = ?1 AND r.status = 'held' AND r.expires_at > ?2",
        &[&voucher_id, &now],
    )?;
    for (group, currency, hold) in holds {
        record(conn, &group, Event::ReservationReleased(&hold, currency))?;
    }
    Ok(())
}

type HoldOf = (String, Currency, Reservation);

fn holds_where(conn: &Db, cond: &str, args: &[&dyn ToArg]) -> Result<Vec<HoldOf>, StoreError> {
    // The hold's columns first, in the order `hold_from_row` reads them.
    let sql = format!(
        "SELECT r.id, r.voucher_id, r.amount, r.order_number, r.status, r.expires_at,
                r.created_at, v.group_id, v.currency
         FROM reservations r JOIN vouchers v ON v.id = r.voucher_id WHERE {cond}"
    );
    let rows = conn.query_map(&sql, args, |r| {
        let hold = hold_from_row(r)?;
        Ok((r.get::<String>(7)?, r.get::<String>(8)?, hold))
    })?;
    Ok(rows
        .into_iter()
        .filter_map(|(g, c, h)| Currency::parse(&c).map(|c| (g, c, h)))
        .collect())
}

const SWEPT_KEY: &str = "webhook_holds_swept_until";

/// Up to when hold expiries were reported; `None` before the first sweep.
pub fn swept_until(conn: &Db) -> Result<Option<i64>, StoreError> {
    let value: Option<String> = conn.query_opt(
        "SELECT value FROM settings WHERE key = ?1",
        &[&SWEPT_KEY],
        |r| r.get(0),
    )?;
    Ok(value.and_then(|v| v.parse().ok()))
}

/// Whether a hold expired after `since` and by `now` (so a sweep has something to report).
pub fn has_expired_since(conn: &Db, since: i64, now: i64) -> Result<bool, StoreError> {
    Ok(conn.query_value(
        "SELECT EXISTS (SELECT 1 FROM reservations
         WHERE status = 'held' AND expires_at > ?1 AND expires_at <= ?2)",
        &[&since, &now],
    )?)
}

/// Records `reservation.expired` for each hold that expired after the last sweep and by
/// `now`, and moves the mark to `now`. The first sweep only sets the mark.
pub fn sweep_expired(conn: &Db, now: i64) -> Result<usize, StoreError> {
    let mut reported = 0;
    // Another vouchd on the same PostgreSQL database may sweep at the same moment: the mark's
    // row is locked until this write ends, so the second sweep starts from the first's mark
    // and no expiry is reported twice. (The first sweep of all may run twice; it reports
    // nothing.)
    if conn.locks_rows() {
        conn.query_opt(
            "SELECT value FROM settings WHERE key = ?1 FOR UPDATE",
            &[&SWEPT_KEY],
            |_| Ok(()),
        )?;
    }
    if let Some(since) = swept_until(conn)? {
        let holds = holds_where(
            conn,
            "r.status = 'held' AND r.expires_at > ?1 AND r.expires_at <= ?2",
            &[&since, &now],
        )?;
        for (group, currency, hold) in &holds {
            record(conn, group, Event::ReservationExpired(hold, *currency))?;
        }
        reported = holds.len();
    }
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&SWEPT_KEY, &now.to_string()],
    )?;
    Ok(reported)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::webhook::EventType;
    use crate::store::error::Conflict;
    use crate::store::webhooks::{heads, insert_endpoint};
    use rusqlite::Connection;

    fn database() -> (Db, String) {
        let mut conn = Connection::open_in_memory().expect("in-memory database");
        super::super::migrate::migrate(&mut conn).expect("migrate");
        let conn = Db::new(conn);
        let group: String = conn
            .query_value("SELECT id FROM client_groups", &[])
            .expect("the admin group");
        set_renderer(Box::new(|env| format!("{{\"id\":\"{}\"}}", env.id)));
        (conn, group)
    }

    fn events(conn: &Db) -> i64 {
        conn.query_value("SELECT COUNT(*) FROM webhook_events", &[])
            .expect("count")
    }

    #[test]
    fn nothing_is_recorded_for_a_group_without_an_endpoint_wanting_the_type() {
        let (conn, group) = database();
        record(&conn, &group, Event::ImportCompleted { count: 1 }).expect("record");
        assert_eq!(events(&conn), 0);
        insert_endpoint(
            &conn,
            &group,
            "http://127.0.0.1/",
            &[EventType::ChargeCreated],
            "s",
        )
        .expect("endpoint");
        record(&conn, &group, Event::ImportCompleted { count: 1 }).expect("record");
        assert_eq!(
            events(&conn),
            0,
            "the endpoint does not want import.completed"
        );
        record(&conn, "another group", Event::ImportCompleted { count: 1 }).expect("record");
        assert_eq!(events(&conn), 0);
    }

    #[test]
    fn an_event_is_rolled_back_with_the_write_that_recorded_it() {
        let (conn, group) = database();
        insert_endpoint(
            &conn,
            &group,
            "http://127.0.0.1/",
            &[EventType::ImportCompleted],
            "s",
        )
        .expect("endpoint");
        let failed: Result<(), StoreError> = super::super::in_savepoint(&conn, |c| {
            record(c, &group, Event::ImportCompleted { count: 3 })?;
            Err(StoreError::Conflict(Conflict::NotDeletable))
        });
        assert!(failed.is_err());
        assert_eq!(events(&conn), 0, "no event without its change");
        super::super::in_savepoint(&conn, |c| {
            record(c, &group, Event::ImportCompleted { count: 3 })
        })
        .expect("committed");
        assert_eq!(events(&conn), 1);
        assert!(
            heads(&conn).expect("heads").is_empty(),
            "no delivery made yet"
        );
        fan_out(&conn, None).expect("fan out");
        let head = heads(&conn).expect("heads");
        assert_eq!(head.len(), 1);
        assert!(head[0].body.contains(&head[0].event_id));
    }

    #[test]
    fn pruning_takes_only_old_events_every_endpoint_is_done_with_and_keeps_the_newest() {
        use crate::store::webhooks::{finish_attempt, Outcome};
        let (conn, group) = database();
        let endpoint = insert_endpoint(
            &conn,
            &group,
            "http://127.0.0.1/",
            &[EventType::ImportCompleted],
            "s",
        )
        .expect("endpoint");
        for count in 1..=3 {
            record(&conn, &group, Event::ImportCompleted { count }).expect("record");
        }
        let later = clock::now() + 60;
        assert_eq!(prune(&conn, later).expect("prune"), 0, "not fanned out yet");
        fan_out(&conn, None).expect("fan out");
        assert_eq!(prune(&conn, later).expect("prune"), 0, "all pending");
        let delivered = Outcome::Delivered { status: 200 };
        for seq in [1, 2] {
            finish_attempt(&conn, &endpoint.id, seq, now_ms(), &delivered).expect("delivered");
        }
        assert_eq!(
            prune(&conn, clock::now() - 60).expect("prune"),
            0,
            "none old enough"
        );
        assert_eq!(prune(&conn, later).expect("prune"), 2);
        assert_eq!(events(&conn), 1);
        finish_attempt(&conn, &endpoint.id, 3, now_ms(), &delivered).expect("delivered");
        assert_eq!(prune(&conn, later).expect("prune"), 0, "the newest stays");
        let deliveries: i64 = conn
            .query_value("SELECT COUNT(*) FROM webhook_deliveries", &[])
            .expect("count");
        assert_eq!(
            deliveries, 1,
            "the pruned events' deliveries went with them"
        );
        // The next event follows the kept one, so the endpoint's mark still holds.
        record(&conn, &group, Event::ImportCompleted { count: 4 }).expect("record");
        fan_out(&conn, None).expect("fan out");
        assert_eq!(heads(&conn).expect("heads")[0].event_seq, 4);
    }
}
