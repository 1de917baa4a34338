//! Webhook endpoints of the token's group (`/v1/webhooks`, scope `webhooks`), their
//! deliveries, redelivery of an event, and the JSON body every event is sent as.

use super::fields::Fields;
use super::ledger::{EntryView, HoldView};
use super::views::{Page, VoucherView};
use super::Ctx;
use crate::auth::scope::WEBHOOKS;
use crate::domain::clock::format_rfc3339;
use crate::domain::ledger::Reservation;
use crate::domain::money::Currency;
use crate::domain::webhook::{check_url, EventType};
use crate::error::ApiError;
use crate::store::outbox::{self, Envelope, Event};
use crate::store::webhooks::{self as endpoints, Delivery, Endpoint};
use crate::web::response::Reply;
use serde_json::{json, Value};
use time::UtcOffset;

/// Deliveries `GET /v1/webhooks/{id}/deliveries` shows: the most recent ones.
const RECENT_DELIVERIES: i64 = 100;

/// Makes the store render event bodies as this API renders the objects in them.
pub fn install_renderer(offset: UtcOffset) {
    outbox::set_renderer(Box::new(move |env| render_event(env, offset)));
}

/// `{id, type, created_at, data}`, `data` being the object as the native API renders it.
pub fn render_event(env: &Envelope, offset: UtcOffset) -> String {
    let data = match env.event {
        Event::VoucherCreated(v) | Event::VoucherUpdated(v) | Event::VoucherDeleted(v) => {
            serde_json::to_value(VoucherView::new(v, offset))
        }
        Event::Entry(e) => serde_json::to_value(EntryView::new(e, offset)),
        Event::ReservationCreated(h, c) => serde_json::to_value(HoldView::new(h, *c, offset)),
        // The hold as the event leaves it (the store may hand it over as it was before).
        Event::ReservationReleased(h, c) => ended(h, "released", *c, offset),
        // Still `held` in the table: a hold expires by time, with no write.
        Event::ReservationExpired(h, c) => ended(h, "expired", *c, offset),
        Event::ImportCompleted { count } => Ok(json!({ "count": count })),
    }
    .unwrap_or(Value::Null);
    json!({
        "id": env.id,
        "type": env.kind.as_str(),
        "created_at": format_rfc3339(env.created_at, offset),
        "data": data,
    })
    .to_string()
}

/// The hold rendered with `status` as the event reports it (`expired` is no stored status).
fn ended(
    hold: &Reservation,
    status: &str,
    currency: Currency,
    offset: UtcOffset,
) -> serde_json::Result<Value> {
    let mut view = serde_json::to_value(HoldView::new(hold, currency, offset))?;
    view["status"] = Value::String(status.into());
    Ok(view)
}

fn endpoint_json(e: &Endpoint, offset: UtcOffset) -> Value {
    json!({
        "id": e.id,
        "url": e.url,
        "events": e.events.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        "created_at": format_rfc3339(e.created_at, offset),
        "disabled": e.disabled_at.is_some(),
        "disabled_at": e.disabled_at.map(|t| format_rfc3339(t, offset)),
        "disabled_reason": e.disabled_reason,
    })
}

fn delivery_json(d: &Delivery, offset: UtcOffset) -> Value {
    let ms = |t: i64| format_rfc3339(t.div_euclid(1000), offset);
    json!({
        "event_id": d.event_id,
        "event_type": d.event_type,
        "state": d.state,
        "attempts": d.attempts,
        "last_status": d.last_status,
        "last_error": d.last_error,
        "next_try_at": d.next_try_at.map(ms),
        "delivered_at": d.delivered_at.map(ms),
        "created_at": format_rfc3339(d.created_at, offset),
    })
}

/// A whole small list in the native list shape.
fn whole_list(ctx: &Ctx, items: Vec<Value>) -> Reply {
    let total = items.len() as u64;
    let page = Page {
        items,
        total,
        page: 1,
        per_page: total.max(1),
    };
    page.render(&format!("{}{}", ctx.base_url(), ctx.req.path), &[])
}

/// Reads `events`: a non-empty list of known event types, or `["*"]` for all of them.
fn read_events(f: &mut Fields) -> Option<Vec<EventType>> {
    let names = f.texts("events", 16, 64);
    let names = f.required("events", names)?;
    if names.iter().any(|n| n == "*") {
        return Some(EventType::ALL.to_vec());
    }
    let mut types = Vec::new();
    for name in &names {
        match EventType::parse(name) {
            Some(t) if !types.contains(&t) => types.push(t),
            Some(_) => {}
            None => {
                let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
                f.error(
                    "events",
                    format!("unknown event type {name:?}; known: {}", known.join(", ")),
                );
                return None;
            }
        }
    }
    if types.is_empty() {
        f.error("events", "must name at least one event type");
        return None;
    }
    Some(types)
}

/// A new endpoint's secret: 32 random bytes, shown once.
pub fn new_secret() -> String {
    format!("whsec_{}", crate::auth::secret::generate_secret())
}

/// `POST /v1/webhooks`: `{url, events}`; the answer holds the secret, shown only now.
pub fn create(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let token = ctx.authorize(WEBHOOKS)?;
    let mut f = Fields::new(ctx.json_body()?);
    let url = f.text("url", 2000);
    let url = f.required("url", url);
    if let Some(Err(message)) = url.as_deref().map(check_url) {
        f.error("url", message);
    }
    let events = read_events(&mut f);
    f.finish()?;
    let (Some(url), Some(events)) = (url, events) else {
        return Err(ApiError::Internal(
            "webhook fields passed but incomplete".into(),
        ));
    };
    let secret = new_secret();
    let kept = secret.clone();
    let group = token.group_id.clone();
    let endpoint = ctx
        .app
        .store
        .write(move |conn| endpoints::insert_endpoint(conn, &group, &url, &events, &kept))?;
    let mut body = endpoint_json(&endpoint, ctx.app.offset);
    body["secret"] = Value::String(secret);
    Ok(Reply::json(201, &body))
}

pub fn list(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let token = ctx.authorize(WEBHOOKS)?;
    let offset = ctx.app.offset;
    let items = endpoints::list_endpoints(ctx.conn, &token.group_id)?
        .iter()
        .map(|e| endpoint_json(e, offset))
        .collect();
    Ok(whole_list(ctx, items))
}

pub fn get(ctx: &mut Ctx, id: &str) -> Result<Reply, ApiError> {
    let token = ctx.authorize(WEBHOOKS)?;
    let endpoint = endpoints::find_endpoint(ctx.conn, &token.group_id, id)?;
    Ok(Reply::json(200, &endpoint_json(&endpoint, ctx.app.offset)))
}

pub fn delete(ctx: &mut Ctx, id: &str) -> Result<Reply, ApiError> {
    let token = ctx.authorize(WEBHOOKS)?;
    let (group, id) = (token.group_id.clone(), id.to_string());
    let deleted = ctx
        .app
        .store
        .write(move |conn| endpoints::delete_endpoint(conn, &group, &id))?;
    if !deleted {
        return Err(ApiError::NotFound);
    }
    Ok(Reply::no_content())
}

/// `GET /v1/webhooks/{id}/deliveries`: the endpoint's recent deliveries, newest first.
pub fn deliveries(ctx: &mut Ctx, id: &str) -> Result<Reply, ApiError> {
    let token = ctx.authorize(WEBHOOKS)?;
    let endpoint = endpoints::find_endpoint(ctx.conn, &token.group_id, id)?;
    let offset = ctx.app.offset;
    let items = endpoints::list_deliveries(ctx.conn, &endpoint.id, RECENT_DELIVERIES)?
        .iter()
        .map(|d| delivery_json(d, offset))
        .collect();
    Ok(whole_list(ctx, items))
}

/// `POST /v1/webhook-events/{event_id}/redeliver`: sends the event again to every endpoint
/// of the group that had it, as soon as the endpoint's earlier events are through.
pub fn redeliver(ctx: &mut Ctx, event_id: &str) -> Result<Reply, ApiError> {
    let token = ctx.authorize(WEBHOOKS)?;
    let (group, id) = (token.group_id.clone(), event_id.to_string());
    let found = ctx
        .app
        .store
        .write(move |conn| endpoints::redeliver(conn, &group, &id))?;
    if !found {
        return Err(ApiError::NotFound);
    }
    Ok(Reply::json(
        202,
        &json!({"event_id": event_id, "redelivery": "queued"}),
    ))
}
