//! The webhook outbox: recording events, in SQL.
//!
//! [`record`] runs inside the write it reports (same transaction), so an event exists if and
//! only if its change committed. It writes nothing for a group with no endpoint that wants
//! the event. The delivery thread reads due deliveries on its own connection and reports
//! each attempt back through the writer; nothing here waits on a receiver.

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

/// Records `event` of group `group_id` for every endpoint of the group that wants it, in the
/// caller's transaction.
pub fn record(conn: &Db, group_id: &str, event: Event) -> Result<(), StoreError> {
    let Some(kind) = event.kind() else {
        return Ok(());
    };
    let endpoints: Vec<String> = conn.query_map(
        "SELECT id FROM webhook_endpoints
         WHERE group_id = ?1 AND disabled_at IS NULL AND ' ' || events || ' ' LIKE ?2",
        &[&group_id, &format!("% {} %", kind.as_str())],
        |r| r.get(0),
    )?;
    if endpoints.is_empty() {
        return Ok(());
    }
    let renderer = RENDERER
        .get()
        .ok_or(StoreError::Bug("no renderer for webhook events"))?;
    let id = format!("evt_{}", new_id());
    let created_at = clock::now();
    let body = renderer(&Envelope {
        id: &id,
        kind,
        created_at,
        event: &event,
    });
    let seq: i64 = conn.query_value(
        "INSERT INTO webhook_events (id, group_id, type, created_at, body)
         VALUES (?1, ?2, ?3, ?4, ?5) RETURNING seq",
        &[&id, &group_id, &kind.as_str(), &created_at, &body],
    )?;
    let now = now_ms();
    for endpoint in endpoints {
        conn.execute(
            "INSERT INTO webhook_deliveries (endpoint_id, event_seq, state, next_try_at)
             VALUES (?1, ?2, 'pending', ?3)",
            &[&endpoint, &seq, &now],
        )?;
    }
    Ok(())
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
        let head = heads(&conn).expect("heads");
        assert_eq!(head.len(), 1);
        assert!(head[0].body.contains(&head[0].event_id));
    }
}
