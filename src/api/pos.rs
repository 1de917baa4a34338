//! The point-of-sale dialect (`/pos/v1/vouchers`): ticket discount vouchers addressed by code,
//! in the POS system's shape. Value vouchers (gift cards) are not part of it: they are neither
//! listed nor found by code here. A used voucher is read-only: changing or removing it is 403.

use super::fields::{Fields, Given};
use super::idempotency;
use super::ledger::check_guessing;
use super::native::{generated_code, insert_new, read_discount};
use super::views::{number, DiscountNumberView};
use super::{tenant_of, Ctx};
use crate::auth::scope::{VOUCHERS_READ, VOUCHERS_WRITE};
use crate::auth::token::TokenInfo;
use crate::domain::clock::{self, format_date, format_rfc3339, DayEnd};
use crate::domain::code::{new_id, Code};
use crate::domain::money::format_decimal_trimmed;
use crate::domain::query::{bad, parse_bool, parse_count, Filter, ListQuery, ParamError};
use crate::domain::voucher::{Changes, Discount, Restrictions, Status, Tenant, Voucher};
use crate::error::ApiError;
use crate::store::vouchers;
use crate::web::response::Reply;
use serde::Serialize;
use serde_json::json;
use time::UtcOffset;

const LIMIT_DEFAULT: u64 = 25;
const LIMIT_MAX: u64 = 1000;
/// What a voucher without an end date shows as `valid_until`, which the POS shape never nulls.
const NO_END: &str = "9999-12-31";
const SHORT: usize = 255;
/// Sent back by clients that PUT what they got; the server owns them.
const READ_ONLY: &[&str] = &["created_at", "updated_at", "used_at"];

#[derive(Serialize)]
struct PosVoucher<'a> {
    code: &'a str,
    created_at: String,
    customer_id: Option<&'a str>,
    discount: Option<DiscountNumberView>,
    enabled: bool,
    label: &'a str,
    product_id: Option<&'a str>,
    updated_at: Option<String>,
    used_at: Option<String>,
    valid_until: String,
}

impl<'a> PosVoucher<'a> {
    fn new(v: &'a Voucher, offset: UtcOffset) -> PosVoucher<'a> {
        PosVoucher {
            code: v.code.as_str(),
            created_at: format_rfc3339(v.created_at, offset),
            customer_id: v.restrictions.customer_id.as_deref(),
            discount: v.discount.map(|d| DiscountNumberView {
                kind: d.kind.as_str(),
                value: number(&format_decimal_trimmed(d.value, d.kind.scale(v.currency))),
            }),
            enabled: v.status == Status::Active,
            label: v.label.as_deref().unwrap_or(""),
            product_id: v.restrictions.product_id.as_deref(),
            updated_at: Some(format_rfc3339(v.updated_at, offset)),
            used_at: v.used_at.map(|t| format_rfc3339(t, offset)),
            valid_until: v
                .valid_until
                .map_or_else(|| NO_END.to_string(), |t| format_date(t, offset)),
        }
    }
}

fn reply(status: u16, v: &Voucher, offset: UtcOffset) -> Reply {
    Reply::json(status, &PosVoucher::new(v, offset))
}

/// The fields a POST or PUT body must carry (nullable ones as null), read into their values.
struct Seed {
    customer_id: Option<String>,
    discount: Discount,
    label: String,
    product_id: Option<String>,
    valid_until: i64,
    enabled: Option<bool>,
}

/// Reads the seed; `enabled` is required on PUT and optional (default true) on POST.
fn read_seed(f: &mut Fields, ctx: &Ctx, enabled_required: bool) -> Option<Seed> {
    let currency = ctx.app.currency;
    let nullable = |f: &mut Fields, name: &str| {
        if !f.has(name) {
            f.error(name, "is required (null is allowed)");
        }
        let id = f.text(name, SHORT).value();
        if id.as_deref().is_some_and(|id| !is_uuid(id)) {
            f.error(name, "must be a UUID or null");
        }
        id
    };
    let customer_id = nullable(f, "customer_id");
    let product_id = nullable(f, "product_id");
    let label = f.text("label", SHORT);
    let label = f.required("label", label);
    let valid_until = f.instant("valid_until", ctx.app.offset, DayEnd::End);
    let valid_until = f.required("valid_until", valid_until);
    let enabled = f.boolean("enabled");
    let enabled = if enabled_required {
        f.required("enabled", enabled)
    } else {
        enabled.value()
    };
    let discount = match f.object("discount") {
        Given::Value(map) => match map.get("value") {
            Some(serde_json::Value::String(_)) => {
                f.error("discount.value", "must be a JSON number");
                None
            }
            _ => read_discount(f, map, currency, true),
        },
        given => {
            f.required("discount", given);
            None
        }
    };
    Some(Seed {
        customer_id,
        discount: discount?,
        label: label?,
        product_id,
        valid_until: valid_until?,
        enabled,
    })
}

/// `8-4-4-4-12` hexadecimal digits, either case.
fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `GET /pos/v1/vouchers?limit=&offset=&customer_id=&used=`.
pub fn list(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let token = ctx.authorize(VOUCHERS_READ)?;
    let query = parse_window(&ctx.req.query)?;
    let (items, total) = vouchers::list(ctx.conn, &tenant_of(&token), &query)?;
    let offset = ctx.app.offset;
    let result: Vec<PosVoucher> = items.iter().map(|v| PosVoucher::new(v, offset)).collect();
    Ok(Reply::json(
        200,
        &json!({
            "query": {"limit": query.per_page, "offset": query.offset},
            "result": result,
            "total": total,
        }),
    ))
}

fn parse_window(pairs: &[(String, String)]) -> Result<ListQuery, ParamError> {
    let mut query = ListQuery::first(LIMIT_DEFAULT);
    query.filters.push(Filter::DiscountOnly);
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in pairs {
        let name = name.as_str();
        if seen.contains(&name) {
            return Err(bad(name, "given more than once"));
        }
        seen.push(name);
        match name {
            "limit" => query.per_page = parse_count(name, value, 0, LIMIT_MAX)?,
            "offset" => query.offset = parse_count(name, value, 0, u64::MAX / 2)?,
            "customer_id" if is_uuid(value) => {
                query.filters.push(Filter::CustomerId(value.to_string()))
            }
            "customer_id" => return Err(bad(name, "must be a UUID")),
            "used" => query.filters.push(Filter::Used(parse_bool(name, value)?)),
            _ => return Err(bad(name, "unknown parameter")),
        }
    }
    Ok(query)
}

/// `POST /pos/v1/vouchers`: a discount voucher with a generated code (the POS system takes no
/// `code`: one sent is an unknown field).
pub fn create(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let token = ctx.authorize(VOUCHERS_WRITE)?;
    let ctx = &*ctx;
    idempotency::run(ctx, &token, |key| {
        let mut f = Fields::new(ctx.json_body()?);
        f.ignore(READ_ONLY);
        let seed = read_seed(&mut f, ctx, false);
        f.finish()?;
        let seed =
            seed.ok_or_else(|| ApiError::Internal("POS fields passed but incomplete".into()))?;
        let voucher = new_voucher(seed, generated_code(), &token, ctx.app.currency);
        insert_new(ctx, key, voucher, |v, offset| {
            reply(201, &v, offset)
                .with_header("Location", format!("/pos/v1/vouchers/{}", v.code.as_str()))
        })
    })
}

fn new_voucher(
    seed: Seed,
    code: Code,
    token: &TokenInfo,
    currency: crate::domain::money::Currency,
) -> Voucher {
    let status = match seed.enabled {
        Some(false) => Status::Inactive,
        _ => Status::Active,
    };
    Voucher {
        id: new_id(),
        code,
        label: Some(seed.label),
        discount: Some(seed.discount),
        max_uses: Some(1),
        valid_until: Some(seed.valid_until),
        status,
        restrictions: Restrictions {
            customer_id: seed.customer_id,
            product_id: seed.product_id,
            store_id: None,
        },
        ..Voucher::blank(
            token.client_id.clone(),
            token.group_id.clone(),
            currency,
            clock::now(),
        )
    }
}

/// The discount voucher with this code, if the tenant may see it. Misses count as guesses.
fn find(
    ctx: &Ctx,
    conn: &crate::store::Db,
    token: &TokenInfo,
    code: &str,
) -> Result<Voucher, ApiError> {
    check_guessing(ctx, token)?;
    // A text that cannot be a code is a miss like any other, without a look-up.
    let found = match Code::parse(code) {
        Ok(code) => vouchers::find_by_code(conn, code.as_str(), &tenant_of(token))?,
        Err(_) => None,
    }
    .filter(|v| v.discount.is_some());
    found.ok_or_else(|| {
        ctx.app.guesses.fail(&token.client_id);
        ApiError::NotFound
    })
}

/// `GET /pos/v1/vouchers/{code}`.
pub fn get(ctx: &mut Ctx, code: &str) -> Result<Reply, ApiError> {
    let token = ctx.authorize(VOUCHERS_READ)?;
    let v = find(ctx, ctx.conn, &token, code)?;
    Ok(reply(200, &v, ctx.app.offset))
}

/// The POS system's answer to changing or removing a used voucher: the store's 409 as a 403.
fn forbidden_if_used(err: ApiError) -> ApiError {
    match err {
        ApiError::Conflict(code @ ("voucher_used" | "not_deletable"), detail) => {
            ApiError::Forbidden(code, detail)
        }
        other => other,
    }
}

/// `PUT /pos/v1/vouchers/{code}`: replaces every seed field (`enabled` included); 403 once the
/// voucher has been used.
pub fn replace(ctx: &mut Ctx, code: &str) -> Result<Reply, ApiError> {
    let token = ctx.authorize(VOUCHERS_WRITE)?;
    let found = find(ctx, ctx.conn, &token, code)?;
    if found.used_at.is_some() {
        return Err(ApiError::Forbidden(
            "voucher_used",
            "The voucher has been used and can no longer change.".into(),
        ));
    }
    let mut f = Fields::new(ctx.json_body()?);
    f.ignore(READ_ONLY);
    if let Given::Value(sent) = f.text("code", 64) {
        if Code::parse(&sent).ok().as_ref() != Some(&found.code) {
            f.error(
                "code",
                "cannot be changed; it must match the code in the path",
            );
        }
    }
    let seed = read_seed(&mut f, ctx, true);
    f.finish()?;
    let seed = seed.ok_or_else(|| ApiError::Internal("POS fields passed but incomplete".into()))?;
    let status = match (seed.enabled, found.status) {
        (Some(true), _) => Status::Active,
        // Disabling keeps a cancelled voucher cancelled.
        (_, Status::Cancelled) => Status::Cancelled,
        _ => Status::Inactive,
    };
    let changes = Changes {
        label: Some(Some(seed.label)),
        status: Some(status),
        valid_until: Some(Some(seed.valid_until)),
        customer_id: Some(seed.customer_id),
        product_id: Some(seed.product_id),
        discount: Some(seed.discount),
        ..Changes::default()
    };
    let tenant: Tenant = tenant_of(&token);
    let id = found.id;
    let offset = ctx.app.offset;
    let v = ctx
        .app
        .store
        .write(move |conn| vouchers::update(conn, &id, &tenant, &changes))
        .map_err(|e| forbidden_if_used(e.into()))?;
    Ok(reply(200, &v, offset))
}

/// `DELETE /pos/v1/vouchers/{code}`: 204, or 403 once it has been used.
pub fn delete(ctx: &mut Ctx, code: &str) -> Result<Reply, ApiError> {
    let token = ctx.authorize(VOUCHERS_WRITE)?;
    let found = find(ctx, ctx.conn, &token, code)?;
    let tenant = tenant_of(&token);
    ctx.app
        .store
        .write(move |conn| vouchers::delete(conn, &found.id, &tenant))
        .map_err(|e| forbidden_if_used(e.into()))?;
    Ok(Reply::no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(items: &[(&str, &str)]) -> Result<ListQuery, ParamError> {
        let pairs: Vec<(String, String)> = items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse_window(&pairs)
    }

    #[test]
    fn window_defaults_and_bounds() {
        let q = window(&[]).unwrap();
        assert_eq!((q.per_page, q.offset), (25, 0));
        assert_eq!(q.filters, vec![Filter::DiscountOnly]);
        let q = window(&[("limit", "1000"), ("offset", "5")]).unwrap();
        assert_eq!((q.per_page, q.offset), (1000, 5));
        assert_eq!(window(&[("limit", "0")]).unwrap().per_page, 0);
        for (name, value) in [
            ("limit", "1001"),
            ("limit", "-1"),
            ("customer_id", "C-1"),
            ("used", "yes"),
            ("offset", "-1"),
            ("offset", "x"),
            ("page", "1"),
        ] {
            assert_eq!(window(&[(name, value)]).unwrap_err().param, name);
        }
        assert_eq!(
            window(&[("limit", "1"), ("limit", "2")]).unwrap_err().param,
            "limit"
        );
    }

    #[test]
    fn list_filters_by_customer_uuid_and_use() {
        let q = window(&[
            ("customer_id", "160C0C4B-9966-4dc1-a916-8407eb10d74e"),
            ("used", "false"),
        ])
        .unwrap();
        assert_eq!(
            q.filters,
            vec![
                Filter::DiscountOnly,
                Filter::CustomerId("160C0C4B-9966-4dc1-a916-8407eb10d74e".into()),
                Filter::Used(false),
            ]
        );
    }

    #[test]
    fn uuids_are_five_hex_groups_of_8_4_4_4_12() {
        assert!(is_uuid("160c0c4b-9966-4dc1-a916-8407eb10d74e"));
        assert!(is_uuid("0D012AFA-F885-4E65-AECA-37E27701E2D1"));
        for text in [
            "",
            "C-9",
            "160c0c4b99664dc1a9168407eb10d74e",
            "160c0c4b-9966-4dc1-a916-8407eb10d74",
            "160c0c4b-9966-4dc1-a916-8407eb10d74g",
            "160c0c4b-9966-4dc1-a916-8407eb10d74e-0",
        ] {
            assert!(!is_uuid(text), "{text}");
        }
    }
}
