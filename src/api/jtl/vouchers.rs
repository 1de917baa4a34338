//! JTL's voucher routes: list, create (inactive, with a PIN when printed), read, change sku
//! and batch, delete with a reason, read with secrets, and activate or deactivate.

use super::error::{violation, JtlError};
use super::scopes::{self, MANAGE, READ, READ_LISTS, READ_SECRETS, UPDATE, USE};
use super::wire::{self, Body, Extra};
use super::{authorize, find_voucher, list_pairs};
use crate::api::ledger::{check_guessing, looks_up_code};
use crate::api::native::generated_code;
use crate::api::tenant_of as tenant;
use crate::api::Ctx;
use crate::auth::scope::VOUCHERS_WRITE;
use crate::auth::secret;
use crate::domain::clock::{self, Interval};
use crate::domain::code::{new_id, Code};
use crate::domain::money::parse_decimal;
use crate::domain::query::{parse_list, Filter, ListKind};
use crate::domain::voucher::{
    valid_until_on_activation, Changes, Medium, Refusal, Status, Voucher, PERCENT_MAX,
    PERCENT_SCALE,
};
use crate::error::ApiError;
use crate::store::{pins, vouchers};
use crate::web::response::Reply;
use rand::Rng;
use serde_json::Value;

/// The list's filters, as JTL names them.
const FILTERS: &[&str] = &[
    "created_from",
    "created_to",
    "valid_until_from",
    "valid_until_to",
    "client_id",
    "client.client_group_id",
    "code",
    "id",
    "sku",
    "type",
    "amount",
    "status",
    "batch",
    "remaining_amount",
    "taxable",
    "tax_rate",
];

/// The validity a voucher gets when the client sets none: three years, the usual limitation
/// period for gift vouchers in Germany (JTL's admin UI default is not documented).
const DEFAULT_VALIDITY: (i64, Interval) = (3, Interval::Years);
/// Digits of a PIN made for a printed voucher.
const PIN_DIGITS: usize = 8;

/// `GET /v1/vouchers`: the paginated list, vouchers with their balance.
pub fn list(ctx: &Ctx) -> Result<Reply, JtlError> {
    let token = authorize(ctx, READ_LISTS)?;
    let pairs = list_pairs(&ctx.req.query, FILTERS, true).map_err(ApiError::from)?;
    let mut query =
        parse_list(&pairs, ListKind::Vouchers, ctx.app.offset).map_err(ApiError::from)?;
    query
        .filters
        .push(Filter::ValueWithExponent(wire::EXPONENT));
    let by_code = looks_up_code(&query.filters);
    if by_code {
        check_guessing(ctx, &token)?;
    }
    let (items, total) = vouchers::list(ctx.conn, &tenant(&token), &query)?;
    if by_code && total == 0 {
        ctx.app.guesses.fail(&token.client_id);
    }
    let offset = ctx.app.offset;
    let views: Vec<Value> = items
        .iter()
        .map(|v| wire::voucher(v, offset, Extra::Balance))
        .collect();
    Ok(ctx.page_reply(views, total, &query))
}

/// A tax rate as JTL writes it (`"19"`, `"7.5"`), in hundredths of a percent.
fn read_tax_rate(b: &mut Body) -> Option<i64> {
    let text = b.string("tax_rate", 6, false)?;
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, "00"));
    let digits =
        |s: &str, n: usize| (1..=n).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    match parse_decimal(&text, PERCENT_SCALE) {
        Ok(rate) if rate <= PERCENT_MAX && digits(whole, 3) && digits(fraction, 2) => Some(rate),
        _ => {
            b.fail(
                "tax_rate",
                "numeric",
                "The tax rate must be a number from 0 to 100.".into(),
            );
            None
        }
    }
}

/// `POST /v1/vouchers`: a new voucher, inactive until activated; a printed one gets a PIN.
pub fn create(ctx: &Ctx) -> Result<Reply, JtlError> {
    let token = authorize(ctx, MANAGE)?;
    let mut b = Body::read(ctx, "VOUCHER.CREATE")?;
    b.ignore(&[
        "client_id",
        "status",
        "valid_until",
        "created_at",
        "updated_at",
        "remaining_amount",
        "deletable",
    ]);
    // Ids are vouchd's own: a client's id would be unique across every group, so its clash
    // would tell one shop another's ids (docs/jtl.md).
    if b.string("id", 255, false).is_some() {
        b.fail(
            "id",
            "prohibited",
            "vouchd assigns voucher ids; leave the id out.".into(),
        );
    }
    let code = b
        .string("code", 255, false)
        .and_then(|text| match Code::parse(&text) {
            Ok(code) => Some(code),
            Err(e) => {
                b.fail("code", "regex", format!("The code format is invalid: {e}."));
                None
            }
        });
    let pin = b.string("pin", 255, false);
    if pin.as_deref() == Some("") {
        b.fail(
            "pin",
            "min:1",
            "The pin must be at least 1 characters.".into(),
        );
    }
    let sku = b.string("sku", 255, false);
    let batch = b.string("batch", 30, false);
    let amount = b.money("amount", true, 0);
    let currency = match b.currency("currency", false) {
        Some(c) => Some(c),
        None if b.errors.iter().any(|e| e.property == "currency") => None,
        None if ctx.app.currency.exponent() == wire::EXPONENT => Some(ctx.app.currency),
        None => {
            b.fail(
                "currency",
                "required",
                "The currency field is required.".into(),
            );
            None
        }
    };
    let validity_value = b.integer("validity_value", 1, 10_000);
    let validity_interval = b
        .choice(
            "validity_interval",
            &["days", "weeks", "months", "years"],
            false,
        )
        .and_then(|s| Interval::parse(&s));
    let validity = match (validity_value, validity_interval) {
        (Some(n), Some(unit)) => Some((n, unit)),
        (None, None) => Some(DEFAULT_VALIDITY),
        (Some(_), None) => {
            b.fail(
                "validity_interval",
                "required_with:validity_value",
                "The validity interval field is required when validity value is present.".into(),
            );
            None
        }
        (None, Some(_)) => {
            b.fail(
                "validity_value",
                "required_with:validity_interval",
                "The validity value field is required when validity interval is present.".into(),
            );
            None
        }
    };
    let medium = b
        .choice("type", &["digital", "print"], false)
        .and_then(|s| Medium::parse(&s))
        .unwrap_or(Medium::Digital);
    let taxable = b.boolean("taxable").unwrap_or(false);
    let tax_rate = read_tax_rate(&mut b);
    let order_number = b.string("order_number", 255, false);
    let data = b.string("data", 65_536, false);
    for e in b.errors.iter_mut().filter(|e| e.property == "id") {
        e.code = e.code.replace("CREATE.ID.", "CREATE.CUSTOM_ID.");
    }
    b.finish()?;
    let (Some(amount), Some(currency)) = (amount, currency) else {
        return Err(ApiError::internal("create", "fields passed but incomplete").into());
    };
    let now = clock::now();
    let voucher = Voucher {
        id: new_id(),
        code: code.unwrap_or_else(generated_code),
        sku,
        batch,
        amount: Some(amount),
        remaining: Some(amount),
        validity,
        status: Status::Inactive,
        medium,
        taxable,
        tax_rate,
        order_number,
        data,
        ..Voucher::blank(
            token.client_id.clone(),
            token.group_id.clone(),
            currency,
            now,
        )
    };
    let pin = pin.or_else(|| (medium == Medium::Print).then(new_pin));
    let pin_hash = match &pin {
        Some(pin) => Some(secret::hash_secret_capped(pin)?),
        None => None,
    };
    let offset = ctx.app.offset;
    let written = ctx.app.store.write(move |c| {
        vouchers::insert(c, &voucher)?;
        pins::set_voucher_pin(c, &voucher.id, pin_hash.as_deref())?;
        Ok(voucher)
    });
    let taken = |field: &str, what: &str| {
        JtlError::invalid(
            "VOUCHER.CREATE",
            vec![violation(
                "VOUCHER.CREATE",
                field,
                "unique",
                &format!("The {what} has already been taken."),
            )],
        )
    };
    let voucher = match written {
        Ok(v) => v,
        Err(ApiError::Conflict("duplicate_code", _)) => return Err(taken("code", "code")),
        Err(e) => return Err(e.into()),
    };
    Ok(Reply::json(
        201,
        &wire::voucher(&voucher, offset, Extra::Secrets(pin.as_deref())),
    ))
}

/// A PIN for a printed voucher: digits from the OS's random source.
fn new_pin() -> String {
    let mut rng = rand::rngs::OsRng;
    (0..PIN_DIGITS)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

/// `GET /v1/vouchers/{id}`: one voucher with its balance, without code and PIN.
pub fn get(ctx: &Ctx, id: &str) -> Result<Reply, JtlError> {
    let token = authorize(ctx, READ)?;
    let v = find_voucher(ctx.conn, id, &tenant(&token))?;
    Ok(Reply::json(
        200,
        &wire::voucher(&v, ctx.app.offset, Extra::Balance),
    ))
}

/// `GET /v1/vouchers/{id}/complete`: one voucher with its code. The PIN is kept only as a
/// hash, so it is shown once, when the voucher is created; here it is null.
pub fn complete(ctx: &Ctx, id: &str) -> Result<Reply, JtlError> {
    let token = authorize(ctx, READ_SECRETS)?;
    let v = find_voucher(ctx.conn, id, &tenant(&token))?;
    Ok(Reply::json(
        200,
        &wire::voucher(&v, ctx.app.offset, Extra::Secrets(None)),
    ))
}

/// A text that may be changed or cleared: absent `None`, null `Some(None)`.
fn changed_text(b: &mut Body, name: &str, max: usize, given: bool) -> Option<Option<String>> {
    let value = b.string(name, max, false);
    given.then_some(value)
}

/// `PATCH /v1/vouchers/{id}`: sku and batch.
pub fn update(ctx: &Ctx, id: &str) -> Result<Reply, JtlError> {
    let token = authorize(ctx, UPDATE)?;
    let mut b = Body::read(ctx, "VOUCHER.UPDATE")?;
    let (has_sku, has_batch) = (b.has("sku"), b.has("batch"));
    let changes = Changes {
        sku: changed_text(&mut b, "sku", 255, has_sku),
        batch: changed_text(&mut b, "batch", 30, has_batch),
        ..Changes::default()
    };
    b.finish()?;
    let (tenant, id, offset) = (tenant(&token), id.to_string(), ctx.app.offset);
    let v = ctx.app.store.write(move |c| {
        find_voucher(c, &id, &tenant)?;
        Ok::<_, ApiError>(vouchers::update(c, &id, &tenant, &changes)?)
    })?;
    Ok(Reply::json(200, &wire::voucher(&v, offset, Extra::None)))
}

/// `DELETE /v1/vouchers/{id}`: only while it has no charges; the reason is kept.
pub fn delete(ctx: &Ctx, id: &str) -> Result<Reply, JtlError> {
    let token = authorize(ctx, MANAGE)?;
    let mut b = Body::read(ctx, "VOUCHER.DELETE")?;
    let comment = b.string("comment", 255, true);
    b.finish()?;
    let (tenant, id) = (tenant(&token), id.to_string());
    let client_id = token.client_id.clone();
    ctx.app.store.write(move |c| {
        find_voucher(c, &id, &tenant)?;
        vouchers::delete(c, &id, &tenant)?;
        pins::record_comment(
            c,
            &id,
            &client_id,
            "delete",
            comment.as_deref(),
            clock::now(),
        )?;
        Ok::<_, ApiError>(())
    })?;
    Ok(Reply::no_content())
}

/// `PATCH /v1/vouchers/{id}/status`: activate (its end of validity is set from its validity
/// pair, counted from now, if it has none yet) or deactivate.
pub fn set_status(ctx: &Ctx, id: &str) -> Result<Reply, JtlError> {
    let token = authorize(ctx, USE)?;
    if !scopes::may_change_status(&token) {
        return Err(JtlError::from_api(
            ApiError::InsufficientScope(VOUCHERS_WRITE),
            "",
        ));
    }
    let mut b = Body::read(ctx, "VOUCHER.STATUS")?;
    let status = b
        .choice("status", &["active", "inactive"], true)
        .and_then(|s| Status::parse(&s));
    let comment = b.string("comment", 255, false);
    b.finish()?;
    let status =
        status.ok_or_else(|| ApiError::internal("status", "fields passed but incomplete"))?;
    let (tenant, id, offset) = (tenant(&token), id.to_string(), ctx.app.offset);
    let client_id = token.client_id.clone();
    let v = ctx.app.store.write(move |c| -> Result<_, ApiError> {
        let v = find_voucher(c, &id, &tenant)?;
        if v.status == Status::Cancelled {
            return Err(Refusal::Cancelled.into());
        }
        let now = clock::now();
        let mut changes = Changes {
            status: Some(status),
            ..Changes::default()
        };
        if status == Status::Active && v.valid_until.is_none() {
            changes.valid_until = Some(valid_until_on_activation(&v, now, offset));
        }
        let action = format!("status:{}", status.as_str());
        pins::record_comment(c, &id, &client_id, &action, comment.as_deref(), now)?;
        Ok(vouchers::update_at(c, &id, &tenant, &changes, now)?)
    })?;
    Ok(Reply::json(200, &wire::voucher(&v, offset, Extra::None)))
}
