//! The native ledger routes: charges, uses, refunds, reservations, the ledger list, validate.

use super::fields::{Fields, LaterAmount};
use super::idempotency::{self, finish_write};
use super::views::VoucherView;
use super::{tenant_of, Ctx};
use crate::auth::scope::{CHARGES_READ, CHARGES_WRITE, VOUCHERS_READ};
use crate::auth::token::TokenInfo;
use crate::domain::clock::{self, format_rfc3339};
use crate::domain::code::Code;
use crate::domain::ledger::{Entry, Redemption, Reservation};
use crate::domain::money::{format_decimal, Currency};
use crate::domain::query::{bad, parse_list, Filter, ListKind};
use crate::domain::voucher::{check_charge, check_use, Context, Refusal, Voucher};
use crate::error::ApiError;
use crate::ops::metrics::ChargeKind;
use crate::store::ledger;
use crate::store::{pins, vouchers, Db};
use crate::web::response::Reply;
use serde::Serialize;
use serde_json::json;
use time::UtcOffset;

const SHORT: usize = 255;
pub const HOLD_DEFAULT_SECS: i64 = 900;
pub const HOLD_MAX_SECS: i64 = 86_400;

#[derive(Serialize)]
pub(super) struct EntryView<'a> {
    id: &'a str,
    voucher_id: &'a str,
    client_id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    amount: String,
    order_number: Option<&'a str>,
    refers_to: Option<&'a str>,
    created_at: String,
    updated_at: String,
}

impl<'a> EntryView<'a> {
    pub(super) fn new(e: &'a Entry, offset: UtcOffset) -> EntryView<'a> {
        let exponent = Currency::parse(&e.currency).map_or(2, |c| c.exponent());
        let at = format_rfc3339(e.created_at, offset);
        EntryView {
            id: &e.id,
            voucher_id: &e.voucher_id,
            client_id: &e.client_id,
            kind: e.kind.as_str(),
            amount: format_decimal(e.amount, exponent),
            order_number: e.order_number.as_deref(),
            refers_to: e.refers_to.as_deref(),
            created_at: at.clone(),
            updated_at: at,
        }
    }
}

fn entry_reply(entry: &Entry, offset: UtcOffset) -> Reply {
    Reply::json(201, &EntryView::new(entry, offset))
}

/// Renders a written entry inside the write, keeping it in `written` for [`count_entry`].
fn render_entry(entry: Entry, offset: UtcOffset, written: &mut Option<Entry>) -> Reply {
    let reply = entry_reply(&entry, offset);
    *written = Some(entry);
    reply
}

/// Counts a written entry in the charge metrics once its transaction has committed (a write
/// that returns at all has), and answers with the reply.
fn count_entry(
    ctx: &Ctx,
    kind: ChargeKind,
    written: Result<(Reply, Option<Entry>), ApiError>,
) -> Result<Reply, ApiError> {
    let (reply, entry) = written?;
    if let Some(entry) = entry {
        ctx.app.metrics.charged(kind, &entry.currency, entry.amount);
    }
    Ok(reply)
}

#[derive(Serialize)]
pub(super) struct HoldView<'a> {
    id: &'a str,
    voucher_id: &'a str,
    amount: String,
    order_number: Option<&'a str>,
    expires_at: String,
    status: &'a str,
    created_at: String,
}

impl<'a> HoldView<'a> {
    pub(super) fn new(
        hold: &'a Reservation,
        currency: Currency,
        offset: UtcOffset,
    ) -> HoldView<'a> {
        HoldView {
            id: &hold.id,
            voucher_id: &hold.voucher_id,
            amount: format_decimal(hold.amount, currency.exponent()),
            order_number: hold.order_number.as_deref(),
            expires_at: format_rfc3339(hold.expires_at, offset),
            status: hold.status.as_str(),
            created_at: format_rfc3339(hold.created_at, offset),
        }
    }
}

fn hold_reply(hold: &Reservation, currency: Currency, offset: UtcOffset) -> Reply {
    Reply::json(201, &HoldView::new(hold, currency, offset))
}

/// Reads the sale's context: currency and the restriction fields.
fn read_context(f: &mut Fields) -> Context {
    let currency = f
        .choice("currency", Currency::parse, "an ISO 4217 currency code")
        .value();
    let customer_id = f.text("customer_id", SHORT).value();
    let store_id = f.text("store_id", SHORT).value();
    let mut product_ids = f
        .texts("product_ids", 1000, SHORT)
        .value()
        .unwrap_or_default();
    if let Some(product) = f.text("product_id", SHORT).value() {
        product_ids.push(product);
    }
    Context {
        currency,
        customer_id,
        product_ids,
        store_id,
    }
}

/// An owned copy of what a redemption needs, to move into the writer.
pub(crate) struct Sale {
    pub token: TokenInfo,
    pub order_number: Option<String>,
    pub context: Context,
}

impl Sale {
    pub fn redemption<'a>(&'a self, tenant: &'a crate::domain::voucher::Tenant) -> Redemption<'a> {
        Redemption {
            client_id: &self.token.client_id,
            tenant,
            order_number: self.order_number.as_deref(),
            context: &self.context,
            now: clock::now(),
        }
    }
}

/// `POST /v1/vouchers/{id}/charges`: a charge, a use or a refund.
pub fn post_charge(ctx: &mut Ctx, id: &str) -> Result<Reply, ApiError> {
    let token = ctx.authorize(CHARGES_WRITE)?;
    let ctx = &*ctx;
    idempotency::run(ctx, &token, |key| {
        let tenant = tenant_of(&token);
        let mut f = Fields::new(ctx.json_body()?);
        let kind = f.choice(
            "type",
            |s| ["charge", "use", "refund"].into_iter().find(|k| *k == s),
            "charge, use or refund",
        );
        let kind = f.required("type", kind);
        let order_number = f.text("order_number", SHORT).value();
        let context = read_context(&mut f);
        // The amounts' decimals are checked against the voucher's currency in the write, where
        // the voucher is read: no look-up before it (a reader's was a third of a charge's CPU).
        let op = match kind {
            Some("charge") => {
                let amount = f.later_amount("amount", false);
                f.required("amount", amount).map(Op::Charge)
            }
            Some("use") => {
                let total = f.later_amount("ticket_total", true);
                f.required("ticket_total", total).map(Op::Use)
            }
            Some("refund") => {
                let amount = f.later_amount("amount", false).value();
                let refers_to = f.text("refers_to", SHORT);
                f.required("refers_to", refers_to)
                    .map(|r| Op::Refund(r, amount))
            }
            _ => None,
        };
        f.finish()?;
        let op =
            op.ok_or_else(|| ApiError::Internal("charge fields passed but incomplete".into()))?;
        let sale = Sale {
            token: token.clone(),
            order_number,
            context,
        };
        let (offset, voucher_id) = (ctx.app.offset, id.to_string());
        let kind = match op {
            Op::Charge(_) => ChargeKind::Charge,
            Op::Use(_) => ChargeKind::Use,
            Op::Refund(..) => ChargeKind::Refund,
        };
        let written = ctx.app.store.write(move |conn| {
            let r = sale.redemption(&tenant);
            let effect = |c: &Db| -> Result<_, ApiError> {
                let v = vouchers::get(c, &voucher_id, &tenant)?;
                Ok(match op {
                    Op::Charge(amount) => {
                        refuse_pin_voucher(c, &v.id)?;
                        ledger::charge_on(c, &v, amount.minor_units(v.currency)?, &r)?
                    }
                    Op::Use(total) => {
                        refuse_pin_voucher(c, &v.id)?;
                        ledger::use_discount_on(c, &v, total.minor_units(v.currency)?, &r)?
                    }
                    Op::Refund(refers_to, amount) => {
                        let amount = amount.map(|a| a.minor_units(v.currency)).transpose()?;
                        ledger::refund_on(c, &v, &refers_to, amount, &r)?
                    }
                })
            };
            let mut written = None;
            let reply = finish_write(conn, key.as_ref(), effect, |entry| {
                render_entry(entry, offset, &mut written)
            })?;
            Ok((reply, written))
        });
        count_entry(ctx, kind, written)
    })
}

/// A voucher with a PIN (a printed JTL voucher) is spent only where its PIN is checked, JTL's
/// reservation: the native routes take no PIN, so knowing the code must not be enough here.
fn refuse_pin_voucher(conn: &Db, voucher_id: &str) -> Result<(), ApiError> {
    if pins::voucher_pin(conn, voucher_id)?.is_some() {
        return Err(ApiError::Conflict(
            "pin_required",
            "This voucher has a PIN and is spent only with it, through the JTL dialect's \
             POST /jtl/v1/reservations."
                .into(),
        ));
    }
    Ok(())
}

enum Op {
    Charge(LaterAmount),
    Use(LaterAmount),
    Refund(String, Option<LaterAmount>),
}

/// `POST /v1/vouchers/{id}/reservations`: hold an amount.
pub fn reserve(ctx: &mut Ctx, id: &str) -> Result<Reply, ApiError> {
    let token = ctx.authorize(CHARGES_WRITE)?;
    let ctx = &*ctx;
    idempotency::run(ctx, &token, |key| {
        let tenant = tenant_of(&token);
        let voucher = vouchers::get(ctx.conn, id, &tenant)?;
        refuse_pin_voucher(ctx.conn, &voucher.id)?;
        let mut f = Fields::new(ctx.json_body()?);
        let amount = f.amount("amount", voucher.currency, false);
        let amount = f.required("amount", amount);
        let expires_in = f
            .integer("expires_in", 1, HOLD_MAX_SECS)
            .value()
            .unwrap_or(HOLD_DEFAULT_SECS);
        let order_number = f.text("order_number", SHORT).value();
        let context = read_context(&mut f);
        f.finish()?;
        let amount = amount
            .ok_or_else(|| ApiError::Internal("reservation fields passed but incomplete".into()))?;
        let sale = Sale {
            token: token.clone(),
            order_number,
            context,
        };
        let (offset, currency, voucher_id) = (ctx.app.offset, voucher.currency, voucher.id);
        ctx.app.store.write(move |conn| {
            let r = sale.redemption(&tenant);
            finish_write(
                conn,
                key.as_ref(),
                |c| Ok(ledger::reserve(c, &voucher_id, amount, expires_in, &r)?),
                |hold| hold_reply(&hold, currency, offset),
            )
        })
    })
}

/// `POST /v1/vouchers/{id}/reservations/{rid}/capture`: charge (part of) a hold and end it.
pub fn capture(ctx: &mut Ctx, id: &str, hold_id: &str) -> Result<Reply, ApiError> {
    let token = ctx.authorize(CHARGES_WRITE)?;
    let ctx = &*ctx;
    idempotency::run(ctx, &token, |key| {
        let tenant = tenant_of(&token);
        let voucher = vouchers::get(ctx.conn, id, &tenant)?;
        // An empty body captures the whole hold.
        let mut f = if ctx.req.body.iter().all(u8::is_ascii_whitespace) {
            Fields::new(serde_json::Map::new())
        } else {
            Fields::new(ctx.json_body()?)
        };
        let amount = f.amount("amount", voucher.currency, false).value();
        let order_number = f.text("order_number", SHORT).value();
        let context = read_context(&mut f);
        f.finish()?;
        let sale = Sale {
            token: token.clone(),
            order_number,
            context,
        };
        let (offset, voucher_id, hold_id) = (ctx.app.offset, voucher.id, hold_id.to_string());
        let written = ctx.app.store.write(move |conn| {
            let r = sale.redemption(&tenant);
            let mut written = None;
            let reply = finish_write(
                conn,
                key.as_ref(),
                |c| Ok(ledger::capture(c, &voucher_id, &hold_id, amount, &r)?),
                |entry| render_entry(entry, offset, &mut written),
            )?;
            Ok((reply, written))
        });
        count_entry(ctx, ChargeKind::Capture, written)
    })
}

/// `DELETE /v1/vouchers/{id}/reservations/{rid}`: release a hold.
pub fn release(ctx: &mut Ctx, id: &str, hold_id: &str) -> Result<Reply, ApiError> {
    let token = ctx.authorize(CHARGES_WRITE)?;
    let tenant = tenant_of(&token);
    let (voucher_id, hold_id) = (id.to_string(), hold_id.to_string());
    ctx.app
        .store
        .write(move |conn| ledger::release(conn, &voucher_id, &hold_id, &tenant, clock::now()))?;
    Ok(Reply::no_content())
}

/// `GET /v1/vouchers/{id}/charges`: the ledger, newest first by default.
pub fn list_charges(ctx: &mut Ctx, id: &str) -> Result<Reply, ApiError> {
    let token = ctx.authorize(CHARGES_READ)?;
    let voucher = vouchers::get(ctx.conn, id, &tenant_of(&token))?;
    let query = parse_list(&ctx.req.query, ListKind::Charges, ctx.app.offset)?;
    let (entries, total) = ledger::list(ctx.conn, &voucher, &query)?;
    let views: Vec<EntryView> = entries
        .iter()
        .map(|e| EntryView::new(e, ctx.app.offset))
        .collect();
    Ok(ctx.page_reply(views, total, &query))
}

/// `GET /v1/vouchers/{id}/reservations`: the voucher's live holds (held and not expired),
/// newest first, in the list shape; `page` and `per_page` are its only parameters.
pub fn list_holds(ctx: &mut Ctx, id: &str) -> Result<Reply, ApiError> {
    let token = ctx.authorize(CHARGES_READ)?;
    let voucher = vouchers::get(ctx.conn, id, &tenant_of(&token))?;
    if let Some((name, _)) = ctx
        .req
        .query
        .iter()
        .find(|(name, _)| name != "page" && name != "per_page")
    {
        return Err(ApiError::Parameter(bad(
            name,
            "unknown parameter; this list takes page and per_page",
        )));
    }
    let query = parse_list(&ctx.req.query, ListKind::Charges, ctx.app.offset)?;
    let (holds, total) = ledger::list_holds(ctx.conn, &voucher.id, clock::now(), &query)?;
    let views: Vec<HoldView> = holds
        .iter()
        .map(|h| HoldView::new(h, voucher.currency, ctx.app.offset))
        .collect();
    Ok(ctx.page_reply(views, total, &query))
}

/// Refuses a client locked out for missing too many code look-ups.
pub fn check_guessing(ctx: &Ctx, token: &TokenInfo) -> Result<(), ApiError> {
    match ctx.app.guesses.blocked(&token.client_id) {
        Some(wait) => Err(ApiError::TooManyRequests(wait)),
        None => Ok(()),
    }
}

/// `POST /v1/validate`: would this code apply? Nothing is written.
pub fn validate(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let token = ctx.authorize(VOUCHERS_READ)?;
    check_guessing(ctx, &token)?;
    let mut f = Fields::new(ctx.json_body()?);
    let code = f.text("code", 64);
    let code = f
        .required("code", code)
        .and_then(|text| match Code::parse(&text) {
            Ok(code) => Some(code),
            Err(e) => {
                f.error("code", e.to_string());
                None
            }
        });
    let context = read_context(&mut f);
    // Checked here, before the look-up (type, shape, sign, size); their decimals against the
    // voucher's currency once it is found.
    let amount = f.later_amount("amount", true).value();
    let total = f.later_amount("ticket_total", true).value();
    f.finish()?;
    let code =
        code.ok_or_else(|| ApiError::Internal("validate fields passed but no code".into()))?;
    let found = vouchers::find_by_code(ctx.conn, code.as_str(), &tenant_of(&token))?;
    let Some(voucher) = found else {
        ctx.app.guesses.fail(&token.client_id);
        return Ok(Reply::json(
            200,
            &json!({"valid": false, "reason": "not_found", "applicable_amount": null, "voucher": null}),
        ));
    };
    let exponent = voucher.currency.exponent();
    let in_currency =
        |given: Option<LaterAmount>| given.map(|a| a.minor_units(voucher.currency)).transpose();
    let amount = in_currency(amount)?;
    let total = in_currency(total)?;
    let (verdict, applicable) = judge(&voucher, amount, total, &context);
    let offset = ctx.app.offset;
    Ok(Reply::json(
        200,
        &json!({
            "valid": verdict.is_ok(),
            "reason": verdict.err().map(|r| r.code()),
            "applicable_amount": applicable.map(|a| format_decimal(a, exponent)),
            "voucher": VoucherView::new(&voucher, offset),
        }),
    ))
}

/// The dry run: whether the voucher applies now, and how much it would give.
fn judge(
    v: &Voucher,
    amount: Option<i64>,
    total: Option<i64>,
    ctx: &Context,
) -> (Result<(), Refusal>, Option<i64>) {
    let now = clock::now();
    match v.discount {
        None => {
            let wanted = amount.or(total).unwrap_or(0);
            match check_charge(v, wanted, now, ctx) {
                Ok(()) => (
                    Ok(()),
                    Some(if wanted > 0 { wanted } else { v.available() }),
                ),
                Err(Refusal::InsufficientFunds) => {
                    (Err(Refusal::InsufficientFunds), Some(v.available()))
                }
                Err(refusal) => (Err(refusal), None),
            }
        }
        Some(discount) => match check_use(v, total.unwrap_or(0), now, ctx) {
            Ok(granted) if total.is_some() => (Ok(()), Some(granted)),
            Ok(_) => (
                Ok(()),
                matches!(discount.kind, crate::domain::voucher::DiscountKind::Money)
                    .then_some(discount.value),
            ),
            Err(refusal) => (Err(refusal), None),
        },
    }
}

/// Whether a list query looks a code up, for the guessing throttle.
pub fn looks_up_code(filters: &[Filter]) -> bool {
    filters.iter().any(|f| matches!(f, Filter::Code(_)))
}
