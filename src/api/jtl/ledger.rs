//! JTL's money routes: reserve by code (and PIN), charge a reservation, refund a charge,
//! recharge, and a voucher's charges. Every one goes through the store's own charge, hold,
//! capture, refund and recharge operations, inside one write each.

use super::error::JtlError;
use super::scopes::{READ, READ_LISTS, RECHARGE, USE};
use super::wire::{self, Body};
use super::{authorize, find_voucher, list_pairs, served};
use crate::api::ledger::{check_guessing, Sale};
use crate::api::tenant_of as tenant;
use crate::api::Ctx;
use crate::auth::secret;
use crate::auth::token::TokenInfo;
use crate::domain::code::Code;
use crate::domain::ledger::{Entry, EntryKind};
use crate::domain::money::Currency;
use crate::domain::query::{parse_list, ListKind};
use crate::domain::voucher::{Context, Voucher};
use crate::error::ApiError;
use crate::ops::metrics::ChargeKind;
use crate::store::ledger;
use crate::store::StoreError;
use crate::store::{holds, pins, vouchers};
use crate::web::response::Reply;
use serde_json::Value;

/// How long a reservation holds its amount: JTL's 30 minutes.
pub const RESERVATION_SECS: i64 = 30 * 60;

/// The charges list's filters, as JTL names them.
const FILTERS: &[&str] = &["created_from", "created_to", "order_number", "amount"];

/// A sale by `token` with JTL's context: the currency the request names, if any.
fn sale(token: &TokenInfo, order_number: Option<String>, currency: Option<Currency>) -> Sale {
    Sale {
        token: token.clone(),
        order_number,
        context: Context {
            currency,
            ..Context::default()
        },
    }
}

/// Counts a written entry in the charge metrics.
fn counted(ctx: &Ctx, kind: ChargeKind, entry: &Entry) {
    ctx.app.metrics.charged(kind, &entry.currency, entry.amount);
}

/// A voucher by the code a customer typed, for this tenant and this dialect; a miss counts
/// toward the client's guessing throttle.
fn voucher_by_code(ctx: &Ctx, token: &TokenInfo, code: &str) -> Result<Voucher, JtlError> {
    check_guessing(ctx, token)?;
    let found = match Code::parse(code) {
        Ok(code) => vouchers::find_by_code(ctx.conn, code.as_str(), &tenant(token))?,
        Err(_) => None,
    };
    match found.filter(served) {
        Some(v) => Ok(v),
        None => {
            ctx.app.guesses.fail(&token.client_id);
            Err(JtlError::not_found("VOUCHER"))
        }
    }
}

/// Checks the PIN sent with a code against the voucher's: required when it has one.
fn check_pin(ctx: &Ctx, token: &TokenInfo, v: &Voucher, pin: Option<&str>) -> Result<(), JtlError> {
    let Some(hash) = pins::voucher_pin(ctx.conn, &v.id)? else {
        return Ok(());
    };
    let Some(pin) = pin else {
        return Err(JtlError::rule(
            "VOUCHER.PIN.REQUIRED",
            "This voucher needs its PIN.",
        ));
    };
    if secret::verify_secret(pin, &hash)? {
        return Ok(());
    }
    ctx.app.guesses.fail(&token.client_id);
    Err(JtlError::rule("VOUCHER.PIN.INVALID", "The PIN is wrong."))
}

/// `POST /v1/reservations`: hold an amount of the voucher with this code for 30 minutes,
/// replacing a live JTL reservation it had; a native hold stays, and the new one must fit
/// beside it.
pub fn reserve(ctx: &Ctx) -> Result<Reply, JtlError> {
    let token = authorize(ctx, USE)?;
    let mut b = Body::read(ctx, "RESERVATION.CREATE")?;
    let amount = b.money("amount", true, 1);
    let currency = b.currency("currency", true);
    let code = b.string("code", 255, true);
    let pin = b.string("pin", 255, false);
    b.finish()?;
    let (Some(amount), Some(code)) = (amount, code) else {
        return Err(ApiError::internal("reserve", "fields passed but incomplete").into());
    };
    let v = voucher_by_code(ctx, &token, &code)?;
    check_pin(ctx, &token, &v, pin.as_deref())?;
    let (offset, voucher_id, tenant) = (ctx.app.offset, v.id.clone(), tenant(&token));
    let sale = sale(&token, None, currency);
    let hold = ctx.app.store.write(move |c| {
        let r = sale.redemption(&tenant);
        holds::release_live(c, &voucher_id, r.now)?;
        let hold = ledger::reserve(c, &voucher_id, amount, RESERVATION_SECS, &r)?;
        holds::mark_jtl(c, &hold.id)?;
        Ok::<_, StoreError>(hold)
    })?;
    Ok(Reply::json(
        200,
        &wire::reservation(&hold, &token.client_id, hold.created_at, &v, offset),
    ))
}

/// `POST /v1/reservations/{id}/charge`: book the reserved amount as a charge.
pub fn charge_reservation(ctx: &Ctx, hold_id: &str) -> Result<Reply, JtlError> {
    let token = authorize(ctx, USE)?;
    let mut b = Body::read(ctx, "RESERVATION.CHARGE")?;
    let order_number = b.string("order_number", 255, true);
    b.finish()?;
    let not_found = || JtlError::not_found("RESERVATION");
    let hold = holds::find(ctx.conn, hold_id)?.ok_or_else(not_found)?;
    let tenant = tenant(&token);
    match find_voucher(ctx.conn, &hold.voucher_id, &tenant) {
        Ok(_) => {}
        Err(ApiError::NotFound) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    }
    let (offset, hold_id) = (ctx.app.offset, hold_id.to_string());
    let sale = sale(&token, order_number, None);
    let entry = ctx
        .app
        .store
        .write(move |c| {
            let r = sale.redemption(&tenant);
            ledger::capture(c, &hold.voucher_id, &hold_id, None, &r)
        })
        .map_err(|e| JtlError::from_api(e.into(), "RESERVATION"))?;
    counted(ctx, ChargeKind::Capture, &entry);
    Ok(Reply::json(200, &wire::charge(&entry, offset)))
}

/// `POST /v1/charges/{id}/refund`: give back (part of) a charge, as a new refund charge
/// carrying the charge's order number.
pub fn refund(ctx: &Ctx, charge_id: &str) -> Result<Reply, JtlError> {
    let token = authorize(ctx, USE)?;
    let mut b = Body::read(ctx, "CHARGE.REFUND")?;
    let amount = b.money("amount", true, 1);
    let currency = b.currency("currency", true);
    b.finish()?;
    let not_found = || JtlError::not_found("CHARGE");
    let charge = ledger::find_entry(ctx.conn, charge_id)?.ok_or_else(not_found)?;
    let tenant = tenant(&token);
    match find_voucher(ctx.conn, &charge.voucher_id, &tenant) {
        Ok(_) => {}
        Err(ApiError::NotFound) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    }
    if charge.kind != EntryKind::Charge {
        return Err(JtlError::rule(
            "CHARGE.REFUND.NOT_A_CHARGE",
            format!(
                "A {} cannot be refunded; only a charge can.",
                charge.kind.as_str()
            ),
        ));
    }
    let offset = ctx.app.offset;
    let sale = sale(&token, charge.order_number.clone(), currency);
    let entry = ctx
        .app
        .store
        .write(move |c| {
            let v = vouchers::get(c, &charge.voucher_id, &tenant)?;
            let r = sale.redemption(&tenant);
            ledger::refund_on(c, &v, &charge.id, amount, &r)
        })
        .map_err(|e| JtlError::from_api(e.into(), "CHARGE"))?;
    counted(ctx, ChargeKind::Refund, &entry);
    Ok(Reply::json(200, &wire::charge(&entry, offset)))
}

/// `POST /v1/vouchers/recharge`: add credit to the voucher named by `id` or `code`.
pub fn recharge(ctx: &Ctx) -> Result<Reply, JtlError> {
    let token = authorize(ctx, RECHARGE)?;
    let mut b = Body::read(ctx, "VOUCHER.RECHARGE")?;
    let amount = b.money("amount", true, 1);
    let currency = b.currency("currency", true);
    let order_number = b.string("order_number", 255, true);
    let code = b.string("code", 255, false);
    let id = b.string("id", 255, false);
    if code.is_none()
        && id.is_none()
        && !b
            .errors
            .iter()
            .any(|e| e.property == "code" || e.property == "id")
    {
        b.fail(
            "code",
            "required_without:id",
            "The code field is required when id is not present.".into(),
        );
    }
    b.finish()?;
    let v = match (id, code) {
        (Some(id), _) => find_voucher(ctx.conn, &id, &tenant(&token))?,
        (None, Some(code)) => voucher_by_code(ctx, &token, &code)?,
        (None, None) => {
            return Err(ApiError::internal("recharge", "fields passed but incomplete").into())
        }
    };
    let amount =
        amount.ok_or_else(|| ApiError::internal("recharge", "fields passed but incomplete"))?;
    let (offset, voucher_id, tenant) = (ctx.app.offset, v.id, tenant(&token));
    let sale = sale(&token, order_number, currency);
    let entry = ctx.app.store.write(move |c| {
        let v = vouchers::get(c, &voucher_id, &tenant)?;
        let r = sale.redemption(&tenant);
        ledger::recharge_on(c, &v, amount, wire::MAX_MINOR, &r)
    })?;
    counted(ctx, ChargeKind::Recharge, &entry);
    Ok(Reply::json(200, &wire::charge(&entry, offset)))
}

/// `GET /v1/vouchers/{id}/charges`: the voucher's ledger, paginated.
pub fn list_charges(ctx: &Ctx, id: &str) -> Result<Reply, JtlError> {
    let token = authorize(ctx, READ_LISTS)?;
    let v = find_voucher(ctx.conn, id, &tenant(&token))?;
    let pairs = list_pairs(&ctx.req.query, FILTERS, false)
        .map_err(|e| JtlError::from_api(e.into(), "CHARGE"))?;
    let query = parse_list(&pairs, ListKind::Charges, ctx.app.offset)
        .map_err(|e| JtlError::from_api(e.into(), "CHARGE"))?;
    let (entries, total) = ledger::list(ctx.conn, &v, &query)?;
    let offset = ctx.app.offset;
    let views: Vec<Value> = entries.iter().map(|e| wire::charge(e, offset)).collect();
    Ok(ctx.page_reply(views, total, &query))
}

/// `GET /v1/vouchers/{id}/charges/{charge_id}`: one entry of the voucher's ledger.
pub fn get_charge(ctx: &Ctx, id: &str, charge_id: &str) -> Result<Reply, JtlError> {
    let token = authorize(ctx, READ)?;
    let v = find_voucher(ctx.conn, id, &tenant(&token))?;
    let entry = ledger::find_entry(ctx.conn, charge_id)?
        .filter(|e| e.voucher_id == v.id)
        .ok_or_else(|| JtlError::not_found("CHARGE"))?;
    Ok(Reply::json(200, &wire::charge(&entry, ctx.app.offset)))
}
