//! The native `/v1/vouchers` routes: create one or a batch, read, change, delete, list.

use super::fields::{Fields, Given};
use super::idempotency::{self, finish_write};
use super::ledger::{check_guessing, looks_up_code};
use super::views::VoucherView;
use super::{tenant_of, Ctx};
use crate::auth::scope::{VOUCHERS_READ, VOUCHERS_WRITE};
use crate::auth::token::TokenInfo;
use crate::domain::clock::{self, add_interval, DayEnd, Interval};
use crate::domain::code::{new_id, Code, CodeShape};
use crate::domain::money::Currency;
use crate::domain::query::{parse_list, Filter, ListKind};
use crate::domain::voucher::{
    Changes, Discount, DiscountKind, Medium, Restrictions, Status, Voucher, PERCENT_MAX,
    PERCENT_SCALE,
};
use crate::error::ApiError;
use crate::store::vouchers;
use crate::web::response::Reply;
use serde::Serialize;
use time::UtcOffset;

pub const MAX_BATCH: i64 = 100_000;
const SHORT: usize = 255;
const NOTE: usize = 1000;
const DATA: usize = 65_536;

/// Fields a client may send but that the server owns; they are ignored on create.
const READ_ONLY: &[&str] = &[
    "id",
    "client_id",
    "remaining_amount",
    "held_amount",
    "uses",
    "used_at",
    "created_at",
    "updated_at",
    "deletable",
];

/// Who a voucher being read is issued to, and the server's defaults for what it leaves out.
#[derive(Clone, Debug)]
pub struct Issuer {
    pub client_id: String,
    pub group_id: String,
    pub offset: UtcOffset,
    pub currency: Currency,
}

impl Issuer {
    pub fn of(ctx: &Ctx, token: &TokenInfo) -> Issuer {
        Issuer {
            client_id: token.client_id.clone(),
            group_id: token.group_id.clone(),
            offset: ctx.app.offset,
            currency: ctx.app.currency,
        }
    }
}

/// Reads `code` if given (normalised and checked); `None` when absent or bad.
pub fn read_code(f: &mut Fields) -> Option<Code> {
    match f.text("code", 64) {
        Given::Value(text) => match Code::parse(&text) {
            Ok(code) => Some(code),
            Err(e) => {
                f.error("code", e.to_string());
                None
            }
        },
        _ => None,
    }
}

/// Reads every voucher field but the code into a voucher owned by `issuer`, created `now`.
/// The one set of rules for a new voucher: creating one, a batch, and each row of an import.
pub fn read_voucher(f: &mut Fields, issuer: &Issuer, now: i64) -> Option<Voucher> {
    let offset = issuer.offset;
    f.ignore(READ_ONLY);
    let currency = match f.choice("currency", Currency::parse, "an ISO 4217 currency code") {
        Given::Value(currency) => currency,
        Given::Null => {
            f.error(
                "currency",
                "must not be null; leave it out for the server's default",
            );
            issuer.currency
        }
        Given::Absent => issuer.currency,
    };
    let amount = f.amount("amount", currency, false).value();
    let discount = match f.object("discount") {
        Given::Value(map) => read_discount(f, map, currency, false),
        _ => None,
    };
    let max_uses = f.integer("max_uses", 1, 1_000_000).value();
    if amount.is_some() == discount.is_some()
        && !f
            .errors
            .iter()
            .any(|e| e.field.starts_with("discount") || e.field == "amount")
    {
        f.error(
            "amount",
            "give either amount (a value voucher) or discount (a discount voucher)",
        );
    }
    if amount.is_some() && max_uses.is_some() {
        f.error("max_uses", "only discount vouchers have uses");
    }
    let valid_from = f.instant("valid_from", offset, DayEnd::Start).value();
    let mut valid_until = f.instant("valid_until", offset, DayEnd::End).value();
    let validity_value = f.integer("validity_value", 1, 10_000).value();
    let validity_interval = f
        .choice(
            "validity_interval",
            Interval::parse,
            "days, weeks, months or years",
        )
        .value();
    let validity = match (validity_value, validity_interval) {
        (Some(n), Some(unit)) => Some((n, unit)),
        (None, None) => None,
        (Some(_), None) => {
            f.error("validity_interval", "is required with validity_value");
            None
        }
        (None, Some(_)) => {
            f.error("validity_value", "is required with validity_interval");
            None
        }
    };
    if valid_until.is_none() {
        if let Some((n, unit)) = validity {
            valid_until = add_interval(now, n, unit, offset);
            if valid_until.is_none() {
                f.error("validity_value", "reaches beyond the year 9999");
            }
        }
    }
    if let (Some(from), Some(until)) = (valid_from, valid_until) {
        if from > until {
            f.error("valid_until", "must not be before valid_from");
        }
    }
    let status = f
        .choice("status", Status::parse, "active, inactive or cancelled")
        .value()
        .unwrap_or(Status::Active);
    let medium = f
        .choice("type", Medium::parse, "digital or print")
        .value()
        .unwrap_or(Medium::Digital);
    let taxable = f.boolean("taxable").value().unwrap_or(false);
    let tax_rate = f.decimal("tax_rate", PERCENT_SCALE).value();
    if tax_rate.is_some_and(|r| r > PERCENT_MAX) {
        f.error("tax_rate", "must be at most 100");
    }
    let mut text = |name: &str, max: usize| f.text(name, max).value();
    let voucher = Voucher {
        id: new_id(),
        code: Code::from_stored(String::new()),
        client_id: issuer.client_id.clone(),
        group_id: issuer.group_id.clone(),
        sku: text("sku", SHORT),
        batch: text("batch", SHORT),
        label: text("label", SHORT),
        note: text("note", NOTE),
        currency,
        amount,
        remaining: amount,
        discount,
        max_uses: discount.map(|_| max_uses.unwrap_or(1)),
        uses: 0,
        used_at: None,
        valid_from,
        valid_until,
        validity,
        status,
        medium,
        taxable,
        tax_rate,
        order_number: text("order_number", SHORT),
        restrictions: Restrictions {
            customer_id: text("customer_id", SHORT),
            product_id: text("product_id", SHORT),
            store_id: text("store_id", SHORT),
        },
        purchase_id: text("purchase_id", SHORT),
        reward_id: text("reward_id", SHORT),
        data: f.data("data", DATA).value(),
        created_at: now,
        updated_at: now,
        held: 0,
        entries: 0,
    };
    f.errors.is_empty().then_some(voucher)
}

/// Reads `{"type": "money"|"percentage", "value": …}`; errors are named `discount.…`. A value
/// of 0 passes only with `allow_zero` (the POS dialect's vouchers may discount nothing).
pub(super) fn read_discount(
    f: &mut Fields,
    map: serde_json::Map<String, serde_json::Value>,
    currency: Currency,
    allow_zero: bool,
) -> Option<Discount> {
    let mut d = Fields::new(map);
    let kind = d.choice("type", DiscountKind::parse, "money or percentage");
    let kind = d.required("type", kind);
    let value = match kind {
        Some(kind) => {
            let value = d.decimal("value", kind.scale(currency));
            d.required("value", value)
        }
        None => None,
    };
    let discount = match (kind, value) {
        (Some(_), Some(value)) if value < 0 || (value == 0 && !allow_zero) => {
            let wanted = if allow_zero {
                "zero or more"
            } else {
                "greater than zero"
            };
            d.error("value", format!("must be {wanted}"));
            None
        }
        (Some(DiscountKind::Percentage), Some(value)) if value > PERCENT_MAX => {
            d.error("value", "a percentage must be at most 100");
            None
        }
        (Some(kind), Some(value)) => Some(Discount { kind, value }),
        _ => None,
    };
    if let Err(ApiError::Invalid(errors)) = d.finish() {
        for e in errors {
            f.error(&format!("discount.{}", e.field), e.message);
        }
        return None;
    }
    discount
}

pub fn create_voucher(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let token = ctx.authorize(VOUCHERS_WRITE)?;
    let ctx = &*ctx;
    idempotency::run(ctx, &token, |key| {
        let mut f = Fields::new(ctx.json_body()?);
        let code = read_code(&mut f);
        let voucher = read_voucher(&mut f, &Issuer::of(ctx, &token), clock::now());
        f.finish()?;
        let mut voucher = voucher
            .ok_or_else(|| ApiError::Internal("voucher fields passed but no voucher".into()))?;
        voucher.code = code.unwrap_or_else(generated_code);
        insert_new(ctx, key, voucher, |v, offset| {
            Reply::json(201, &VoucherView::new(&v, offset))
                .with_header("Location", format!("/v1/vouchers/{}", v.id))
        })
    })
}

/// A code of the default shape: 8 characters of the look-alike-free alphabet.
pub(super) fn generated_code() -> Code {
    CodeShape::new(None, None)
        .map(|s| s.generate(&mut rand::thread_rng()))
        .unwrap_or_else(|_| Code::from_stored(new_id()[..8].to_string()))
}

/// Inserts one new voucher through the writer (saving the reply under `key`) and answers with
/// `render(voucher, offset)`; a duplicate code is its 409.
pub(super) fn insert_new(
    ctx: &Ctx,
    key: Option<crate::store::idempotency::Key>,
    voucher: Voucher,
    render: fn(Voucher, time::UtcOffset) -> Reply,
) -> Result<Reply, ApiError> {
    let offset = ctx.app.offset;
    ctx.app.store.write(move |conn| {
        finish_write(
            conn,
            key.as_ref(),
            |c| Ok(vouchers::insert(c, &voucher).map(|()| voucher)?),
            |v| render(v, offset),
        )
    })
}

/// The answer to a batch: rendered from borrowed strings, not a `serde_json::Value` tree (which
/// took far more memory for a large batch, kept by the allocator afterwards).
#[derive(Serialize)]
struct BatchView<'a> {
    batch: &'a str,
    count: usize,
    data: Vec<MadeView<'a>>,
}

#[derive(Serialize)]
struct MadeView<'a> {
    id: &'a str,
    code: &'a str,
}

pub fn create_batch(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let token = ctx.authorize(VOUCHERS_WRITE)?;
    let ctx = &*ctx;
    idempotency::run(ctx, &token, |key| {
        let mut f = Fields::new(ctx.json_body()?);
        let count = f.integer("count", 1, MAX_BATCH);
        let count = f.required("count", count);
        let length = f.integer("code_length", 4, 8).value();
        let prefix = f.text("code_prefix", 8).value();
        if f.has("code") {
            f.error(
                "code",
                "a batch generates its codes; use code_prefix and code_length",
            );
            f.ignore(&["code"]);
        }
        let shape = match CodeShape::new(prefix.as_deref(), length.map(|n| n as usize)) {
            Ok(shape) => Some(shape),
            Err((field, message)) => {
                f.error(field, message);
                None
            }
        };
        let template = read_voucher(&mut f, &Issuer::of(ctx, &token), clock::now());
        f.finish()?;
        let (Some(count), Some(shape), Some(mut template)) = (count, shape, template) else {
            return Err(ApiError::Internal(
                "batch fields passed but incomplete".into(),
            ));
        };
        let batch = template.batch.get_or_insert_with(new_id).clone();
        ctx.app.store.write(move |conn| {
            finish_write(
                conn,
                key.as_ref(),
                |c| Ok(vouchers::insert_batch(c, &template, &shape, count as u64)?),
                |made| {
                    Reply::json(
                        201,
                        &BatchView {
                            batch: &batch,
                            count: made.len(),
                            data: made
                                .iter()
                                .map(|(id, code)| MadeView { id, code })
                                .collect(),
                        },
                    )
                },
            )
        })
    })
}

pub fn get_voucher(ctx: &mut Ctx, id: &str) -> Result<Reply, ApiError> {
    let token = ctx.authorize(VOUCHERS_READ)?;
    let voucher = vouchers::get(ctx.conn, id, &tenant_of(&token))?;
    Ok(Reply::json(
        200,
        &VoucherView::new(&voucher, ctx.app.offset),
    ))
}

/// PATCH fields: label, note, status, valid_until, sku, batch, restrictions, data.
pub fn update_voucher(ctx: &mut Ctx, id: &str) -> Result<Reply, ApiError> {
    let token = ctx.authorize(VOUCHERS_WRITE)?;
    let mut f = Fields::new(ctx.json_body()?);
    let offset = ctx.app.offset;
    let text = |f: &mut Fields, name: &str, max: usize| match f.text(name, max) {
        Given::Absent => None,
        Given::Null => Some(None),
        Given::Value(v) => Some(Some(v)),
    };
    let mut changes = Changes {
        label: text(&mut f, "label", SHORT),
        note: text(&mut f, "note", NOTE),
        sku: text(&mut f, "sku", SHORT),
        batch: text(&mut f, "batch", SHORT),
        customer_id: text(&mut f, "customer_id", SHORT),
        product_id: text(&mut f, "product_id", SHORT),
        store_id: text(&mut f, "store_id", SHORT),
        ..Changes::default()
    };
    changes.status = match f.choice("status", Status::parse, "active, inactive or cancelled") {
        Given::Null => {
            f.error("status", "must not be null");
            None
        }
        given => given.value(),
    };
    changes.valid_until = match f.instant("valid_until", offset, DayEnd::End) {
        Given::Absent => None,
        Given::Null => Some(None),
        Given::Value(t) => Some(Some(t)),
    };
    changes.data = match f.data("data", DATA) {
        Given::Absent => None,
        Given::Null => Some(None),
        Given::Value(v) => Some(Some(v)),
    };
    f.finish()?;
    let tenant = tenant_of(&token);
    let id = id.to_string();
    let voucher = ctx
        .app
        .store
        .write(move |conn| vouchers::update(conn, &id, &tenant, &changes))?;
    Ok(Reply::json(200, &VoucherView::new(&voucher, offset)))
}

pub fn delete_voucher(ctx: &mut Ctx, id: &str) -> Result<Reply, ApiError> {
    let token = ctx.authorize(VOUCHERS_WRITE)?;
    let tenant = tenant_of(&token);
    let id = id.to_string();
    ctx.app
        .store
        .write(move |conn| vouchers::delete(conn, &id, &tenant))?;
    Ok(Reply::no_content())
}

pub fn list_vouchers(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    list_scoped(ctx, None)
}

/// `GET /v1/customers/{id}/vouchers`: the list narrowed to one customer.
pub fn list_customer_vouchers(ctx: &mut Ctx, customer_id: &str) -> Result<Reply, ApiError> {
    list_scoped(ctx, Some(Filter::CustomerId(customer_id.to_string())))
}

/// `GET /v1/purchases/{id}/vouchers`: the list narrowed to one purchase.
pub fn list_purchase_vouchers(ctx: &mut Ctx, purchase_id: &str) -> Result<Reply, ApiError> {
    list_scoped(ctx, Some(Filter::PurchaseId(purchase_id.to_string())))
}

/// The native list, with `scope` added to the query's own filters.
fn list_scoped(ctx: &mut Ctx, scope: Option<Filter>) -> Result<Reply, ApiError> {
    let token = ctx.authorize(VOUCHERS_READ)?;
    let mut query = parse_list(&ctx.req.query, ListKind::Vouchers, ctx.app.offset)?;
    query.filters.extend(scope);
    let by_code = looks_up_code(&query.filters);
    if by_code {
        check_guessing(ctx, &token)?;
    }
    let (items, total) = vouchers::list(ctx.conn, &tenant_of(&token), &query)?;
    if by_code && total == 0 {
        ctx.app.guesses.fail(&token.client_id);
    }
    let views: Vec<VoucherView> = items
        .iter()
        .map(|v| VoucherView::new(v, ctx.app.offset))
        .collect();
    Ok(ctx.page_reply(views, total, &query))
}
