//! Webhook endpoints and their deliveries in SQL: what the API and the CLI manage, and what
//! the delivery threads read (on their own connections) and write back through the writer.
//! The events themselves are recorded by [`super::outbox`].

use super::error::StoreError;
use super::outbox::{self, now_ms};
use super::sql::{DbError, Row};
use super::Db;
use crate::domain::clock;
use crate::domain::code::new_id;
use crate::domain::webhook::EventType;

/// A receiver of a group's events.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub id: String,
    pub url: String,
    pub events: Vec<EventType>,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
    pub disabled_reason: Option<String>,
}

const ENDPOINT_COLUMNS: &str = "id, url, events, created_at, disabled_at, disabled_reason";

fn endpoint_from_row(row: &Row) -> Result<Endpoint, DbError> {
    let events: String = row.get(2)?;
    Ok(Endpoint {
        id: row.get(0)?,
        url: row.get(1)?,
        events: events.split(' ').filter_map(EventType::parse).collect(),
        created_at: row.get(3)?,
        disabled_at: row.get(4)?,
        disabled_reason: row.get(5)?,
    })
}

/// Adds an endpoint with its secret; events that happen from its commit on reach it (its
/// deliveries start after the newest event now).
pub fn insert_endpoint(
    conn: &Db,
    group_id: &str,
    url: &str,
    events: &[EventType],
    secret: &str,
) -> Result<Endpoint, StoreError> {
    let endpoint = Endpoint {
        id: new_id(),
        url: url.to_string(),
        events: events.to_vec(),
        created_at: clock::now(),
        disabled_at: None,
        disabled_reason: None,
    };
    let names: Vec<&str> = events.iter().map(|e| e.as_str()).collect();
    conn.execute(
        "INSERT INTO webhook_endpoints (id, group_id, url, events, secret, created_at, fanned_upto)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, (SELECT COALESCE(MAX(seq), 0) FROM webhook_events))",
        &[
            &endpoint.id,
            &group_id,
            &url,
            &names.join(" "),
            &secret,
            &endpoint.created_at,
        ],
    )?;
    Ok(endpoint)
}

/// The group's endpoints, oldest first.
pub fn list_endpoints(conn: &Db, group_id: &str) -> Result<Vec<Endpoint>, StoreError> {
    let sql = format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE group_id = ?1
         ORDER BY created_at, id"
    );
    Ok(conn.query_map(&sql, &[&group_id], endpoint_from_row)?)
}

/// One of the group's endpoints (another group's is not found).
pub fn find_endpoint(conn: &Db, group_id: &str, id: &str) -> Result<Endpoint, StoreError> {
    let sql =
        format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = ?1 AND group_id = ?2");
    conn.query_opt(&sql, &[&id, &group_id], endpoint_from_row)?
        .ok_or(StoreError::NotFound)
}

/// Removes one of the group's endpoints and its deliveries; false when there was none.
pub fn delete_endpoint(conn: &Db, group_id: &str, id: &str) -> Result<bool, StoreError> {
    conn.execute(
        "DELETE FROM webhook_deliveries WHERE endpoint_id = (SELECT id FROM webhook_endpoints WHERE id = ?1 AND group_id = ?2)",
        &[&id, &group_id],
    )?;
    Ok(conn.execute(
        "DELETE FROM webhook_endpoints WHERE id = ?1 AND group_id = ?2",
        &[&id, &group_id],
    )? > 0)
}

/// Every group's endpoints with the group's name, for the CLI.
pub fn list_all_endpoints(conn: &Db) -> Result<Vec<(Endpoint, String)>, StoreError> {
    let sql = format!(
        "SELECT {}, g.name FROM webhook_endpoints e JOIN client_groups g ON g.id = e.group_id
         ORDER BY e.created_at, e.id",
        ENDPOINT_COLUMNS
            .split(", ")
            .map(|c| format!("e.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(conn.query_map(&sql, &[], |r| Ok((endpoint_from_row(r)?, r.get(6)?)))?)
}

/// Removes an endpoint of any group (the CLI); false when there was none.
pub fn delete_any_endpoint(conn: &Db, id: &str) -> Result<bool, StoreError> {
    conn.execute(
        "DELETE FROM webhook_deliveries WHERE endpoint_id = ?1",
        &[&id],
    )?;
    Ok(conn.execute("DELETE FROM webhook_endpoints WHERE id = ?1", &[&id])? > 0)
}

/// One event to one endpoint, as `GET /v1/webhooks/{id}/deliveries` shows it.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub event_id: String,
    pub event_type: String,
    pub state: String,
    pub attempts: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub next_try_at: Option<i64>,
    pub delivered_at: Option<i64>,
    pub created_at: i64,
}

/// The endpoint's `limit` most recent deliveries, newest event first.
pub fn list_deliveries(
    conn: &Db,
    endpoint_id: &str,
    limit: i64,
) -> Result<Vec<Delivery>, StoreError> {
    Ok(conn.query_map(
        "SELECT ev.id, ev.type, d.state, d.attempts, d.last_status, d.last_error,
                d.next_try_at, d.delivered_at, ev.created_at
         FROM webhook_deliveries d JOIN webhook_events ev ON ev.seq = d.event_seq
         WHERE d.endpoint_id = ?1 ORDER BY d.event_seq DESC LIMIT ?2",
        &[&endpoint_id, &limit],
        |r| {
            let state: String = r.get(2)?;
            Ok(Delivery {
                event_id: r.get(0)?,
                event_type: r.get(1)?,
                next_try_at: if state == "pending" { r.get(6)? } else { None },
                state,
                attempts: r.get(3)?,
                last_status: r.get(4)?,
                last_error: r.get(5)?,
                delivered_at: r.get(7)?,
                created_at: r.get(8)?,
            })
        },
    )?)
}

/// Queues the group's event `event_id` again for every endpoint that had it (enabling a
/// disabled one again: it gets the events from now on, not those of while it was disabled);
/// false when the group has no such event.
pub fn redeliver(conn: &Db, group_id: &str, event_id: &str) -> Result<bool, StoreError> {
    let seq: Option<i64> = conn.query_opt(
        "SELECT seq FROM webhook_events WHERE id = ?1 AND group_id = ?2",
        &[&event_id, &group_id],
        |r| r.get(0),
    )?;
    let Some(seq) = seq else {
        return Ok(false);
    };
    // Through the group's endpoints, so the primary key finds the rows (no index on the
    // event alone: one index less to write with every event).
    conn.execute(
        "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, first_failed_at = NULL,
             next_try_at = ?3
         WHERE event_seq = ?1
           AND endpoint_id IN (SELECT id FROM webhook_endpoints WHERE group_id = ?2)",
        &[&seq, &group_id, &now_ms()],
    )?;
    conn.execute(
        "UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL,
             fanned_upto = CASE WHEN disabled_at IS NULL THEN fanned_upto
                 ELSE (SELECT COALESCE(MAX(seq), 0) FROM webhook_events) END
         WHERE group_id = ?2 AND EXISTS (SELECT 1 FROM webhook_deliveries
             WHERE endpoint_id = webhook_endpoints.id AND event_seq = ?1)",
        &[&seq, &group_id],
    )?;
    Ok(true)
}

/// The oldest pending delivery of an enabled endpoint: the only one of it that may be tried.
#[derive(Clone, Debug)]
pub struct Head {
    pub endpoint_id: String,
    pub url: String,
    pub secret: String,
    pub event_seq: i64,
    pub event_id: String,
    pub body: String,
    pub attempts: i64,
    pub first_failed_at: Option<i64>,
    pub next_try_at: i64,
    /// What `body` is rendered from by [`render`], for a ledger event (stored without one).
    from: Option<RenderFrom>,
}

const HEAD_SQL: &str = "SELECT e.id, e.url, e.secret, d.event_seq, ev.id, ev.body, d.attempts,
        d.first_failed_at, d.next_try_at, ev.type, ev.created_at, ev.entry_id
     FROM webhook_endpoints e
     JOIN webhook_deliveries d ON d.endpoint_id = e.id AND d.event_seq =
         (SELECT MIN(event_seq) FROM webhook_deliveries WHERE endpoint_id = e.id AND state = 'pending')
     JOIN webhook_events ev ON ev.seq = d.event_seq
     WHERE e.disabled_at IS NULL";

/// A head as stored: a ledger event's body is rendered from its entry (see `outbox`) by
/// [`render`].
fn head_from_row(r: &Row) -> Result<Head, DbError> {
    let body: Option<String> = r.get(5)?;
    let from = match body {
        Some(_) => None,
        None => Some((r.get(9)?, r.get(10)?, r.get(11)?)),
    };
    Ok(Head {
        endpoint_id: r.get(0)?,
        url: r.get(1)?,
        secret: r.get(2)?,
        event_seq: r.get(3)?,
        event_id: r.get(4)?,
        body: body.unwrap_or_default(),
        attempts: r.get(6)?,
        first_failed_at: r.get(7)?,
        next_try_at: r.get(8)?,
        from,
    })
}

/// What an unstored body is rendered from: the event's type, time and ledger entry.
type RenderFrom = (String, i64, Option<String>);

/// Fills in the body of a head read by [`heads`] or [`head_of`] (a ledger event's body is
/// rendered from its entry). An error concerns this head alone.
pub fn render(conn: &Db, head: &mut Head) -> Result<(), StoreError> {
    if let Some((kind, created_at, entry_id)) = head.from.take() {
        head.body = outbox::render_entry_event(conn, &head.event_id, &kind, created_at, entry_id)?;
    }
    Ok(())
}

/// Every enabled endpoint's head delivery, due or not, not yet [`render`]ed.
pub fn heads(conn: &Db) -> Result<Vec<Head>, StoreError> {
    Ok(conn.query_map(HEAD_SQL, &[], head_from_row)?)
}

/// One endpoint's head delivery, if it is enabled and has one, not yet [`render`]ed.
pub fn head_of(conn: &Db, endpoint_id: &str) -> Result<Option<Head>, StoreError> {
    Ok(conn.query_opt(
        &format!("{HEAD_SQL} AND e.id = ?1"),
        &[&endpoint_id],
        head_from_row,
    )?)
}

/// Claims the delivery of event `event_seq` to `endpoint_id` for one attempt: moves its `next_try_at` to `lease_until` (unix ms) if it is
/// still pending and due at `now`. Only the instance whose claim changed the row sends the
/// attempt; the others (and this one, if it stops before writing the outcome) see it due
/// again once the lease is over.
pub fn claim(
    conn: &Db,
    endpoint_id: &str,
    event_seq: i64,
    now: i64,
    lease_until: i64,
) -> Result<bool, StoreError> {
    let changed = conn.execute(
        "UPDATE webhook_deliveries SET next_try_at = ?4
         WHERE endpoint_id = ?1 AND event_seq = ?2 AND state = 'pending' AND next_try_at <= ?3",
        &[&endpoint_id, &event_seq, &now, &lease_until],
    )?;
    Ok(changed == 1)
}

/// An attempt's result, written back by the delivery thread through the writer.
pub enum Outcome {
    Delivered {
        status: i64,
    },
    /// Tried again at `next_try_at` (unix ms), or, with `disable`, the endpoint is disabled
    /// with that reason.
    Failed {
        status: Option<i64>,
        error: String,
        next_try_at: i64,
        disable: Option<String>,
    },
}

/// Writes an attempt's outcome for `(endpoint, event_seq)`; `at` is when it was made (ms).
pub fn finish_attempt(
    conn: &Db,
    endpoint_id: &str,
    event_seq: i64,
    at: i64,
    outcome: &Outcome,
) -> Result<(), StoreError> {
    match outcome {
        Outcome::Delivered { status } => {
            conn.execute(
                "UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1,
                     last_status = ?3, last_error = NULL, delivered_at = ?4
                 WHERE endpoint_id = ?1 AND event_seq = ?2",
                &[&endpoint_id, &event_seq, status, &at],
            )?;
        }
        Outcome::Failed {
            status,
            error,
            next_try_at,
            disable,
        } => {
            conn.execute(
                "UPDATE webhook_deliveries SET attempts = attempts + 1,
                     first_failed_at = COALESCE(first_failed_at, ?3), last_status = ?4,
                     last_error = ?5, next_try_at = ?6
                 WHERE endpoint_id = ?1 AND event_seq = ?2",
                &[&endpoint_id, &event_seq, &at, status, error, next_try_at],
            )?;
            if let Some(reason) = disable {
                // Events up to now are its to get once it is enabled again; later ones not.
                outbox::fan_out(conn, Some(endpoint_id))?;
                conn.execute(
                    "UPDATE webhook_endpoints SET disabled_at = ?2, disabled_reason = ?3
                     WHERE id = ?1",
                    &[&endpoint_id, &(at / 1000), reason],
                )?;
            }
        }
    }
    Ok(())
}
