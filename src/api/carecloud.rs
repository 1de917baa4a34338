//! The loyalty platform's dialect: a customer's or a purchase's vouchers, in its shape
//! (`/carecloud/v1/…`). Read-only, over the same store query as the native list.

use super::ledger::check_guessing;
use super::views::number;
use super::{tenant_of, Ctx};
use crate::auth::scope::VOUCHERS_READ;
use crate::domain::clock::{self, format_plain};
use crate::domain::money::format_decimal_trimmed;
use crate::domain::query::{
    bad, parse_bool as boolean, parse_code, parse_count as count, parse_text as text, Filter,
    ListQuery, ParamError, SortField, SortKey,
};
use crate::domain::voucher::{Status, Voucher};
use crate::error::ApiError;
use crate::http::response::Reply;
use crate::store::vouchers;
use serde::Serialize;
use serde_json::{json, Number};
use time::UtcOffset;

const COUNT_DEFAULT: u64 = 100;
const COUNT_MAX: u64 = 1000;

/// `GET /carecloud/v1/customers/{id}/vouchers`.
pub fn customer_vouchers(ctx: &mut Ctx, customer_id: &str) -> Result<Reply, ApiError> {
    list(ctx, Filter::CustomerId(customer_id.to_string()))
}

/// `GET /carecloud/v1/purchases/{id}/vouchers`.
pub fn purchase_vouchers(ctx: &mut Ctx, purchase_id: &str) -> Result<Reply, ApiError> {
    list(ctx, Filter::PurchaseId(purchase_id.to_string()))
}

fn list(ctx: &mut Ctx, scope: Filter) -> Result<Reply, ApiError> {
    let token = ctx.authorize(VOUCHERS_READ)?;
    let params = parse_params(&ctx.req.query, clock::now())?;
    let mut query = params.query;
    query.filters.push(scope);
    if params.by_code {
        check_guessing(ctx, &token)?;
    }
    let (items, total) = vouchers::list(ctx.conn, &tenant_of(&token), &query)?;
    if params.by_code && total == 0 {
        ctx.app.guesses.fail(&token.client_id);
    }
    let offset = ctx.app.offset;
    let views: Vec<CareVoucher> = items
        .iter()
        .map(|v| CareVoucher::new(v, offset, params.with_stores))
        .collect();
    Ok(Reply::json(
        200,
        &json!({"data": {"vouchers": views, "total_count": total}}),
    ))
}

/// A parsed query string of this dialect.
#[derive(Debug, PartialEq, Eq)]
struct Params {
    query: ListQuery,
    /// `code` was given: the request counts toward the guessing throttle.
    by_code: bool,
    /// `skip_stores=false`: each voucher carries its `stores`.
    with_stores: bool,
}

/// The first-level fields of the shape, as sort keys.
fn sort_field(name: &str) -> Option<SortField> {
    Some(match name {
        "voucher_id" => SortField::Id,
        "customer_id" => SortField::CustomerId,
        "store_id" => SortField::StoreId,
        "code" => SortField::Code,
        "voucher_value" => SortField::Value,
        "applied_date" => SortField::UsedAt,
        "valid_from" => SortField::ValidFrom,
        "valid_to" => SortField::ValidUntil,
        // Rewards have no groups here (always null): ordered by reward like `reward`.
        "reward_group_id" | "reward" => SortField::RewardId,
        "note" => SortField::Note,
        "created_date" => SortField::CreatedAt,
        "last_change" => SortField::UpdatedAt,
        "state" => SortField::Status,
        _ => return None,
    })
}

/// Parses the dialect's query parameters; `now` is the instant `validity` and `is_applied`
/// are judged at. Unknown or repeated parameters are refused like the native list's.
fn parse_params(pairs: &[(String, String)], now: i64) -> Result<Params, ParamError> {
    let mut query = ListQuery::first(COUNT_DEFAULT);
    let mut seen: Vec<&str> = Vec::new();
    let mut rewards: Vec<String> = Vec::new();
    let (mut field, mut descending) = (None, None);
    let (mut by_code, mut with_stores) = (false, false);
    for (name, value) in pairs {
        let name = name.as_str();
        let repeatable = name == "reward_id[]";
        if !repeatable && seen.contains(&name) {
            return Err(bad(name, "given more than once"));
        }
        seen.push(name);
        match name {
            "count" => query.per_page = count(name, value, 1, COUNT_MAX)?,
            "offset" => query.offset = count(name, value, 0, u64::MAX / 2)?,
            "sort_field" => {
                field = Some(
                    sort_field(value)
                        .ok_or_else(|| bad(name, "must be a field of the voucher shape"))?,
                )
            }
            "sort_direction" => {
                descending = Some(match value.as_str() {
                    "asc" => false,
                    "desc" => true,
                    _ => return Err(bad(name, "must be asc or desc")),
                })
            }
            "code" => {
                query.filters.push(Filter::Code(parse_code(name, value)?));
                by_code = true;
            }
            "store_id" => query.filters.push(Filter::StoreId(text(name, value)?)),
            "validity" => query
                .filters
                .push(Filter::ValidAt(now, boolean(name, value)?)),
            "is_applied" => query
                .filters
                .push(Filter::AppliedAt(now, boolean(name, value)?)),
            "skip_stores" => with_stores = !boolean(name, value)?,
            "reward_id[]" | "reward_id" => {
                let id = text(name, value)?;
                if !rewards.contains(&id) {
                    rewards.push(id);
                }
            }
            _ => return Err(bad(name, "unknown parameter")),
        }
    }
    if !rewards.is_empty() {
        query.filters.push(Filter::RewardIn(rewards));
    }
    // Newest first by default; a sort_field alone sorts ascending.
    query.sort.push(SortKey {
        field: field.unwrap_or(SortField::CreatedAt),
        descending: descending.unwrap_or(field.is_none()),
    });
    Ok(Params {
        query,
        by_code,
        with_stores,
    })
}

/// `state`: 0 cancelled (the vendor's "deleted"), 1 active, 2 inactive.
fn state(status: Status) -> u8 {
    match status {
        Status::Cancelled => 0,
        Status::Active => 1,
        Status::Inactive => 2,
    }
}

#[derive(Serialize)]
struct Reward<'a> {
    reward_id: &'a str,
}

#[derive(Serialize)]
struct Store<'a> {
    store_id: &'a str,
}

#[derive(Serialize)]
struct CareVoucher<'a> {
    voucher_id: &'a str,
    customer_id: Option<&'a str>,
    store_id: Option<&'a str>,
    code: &'a str,
    voucher_value: Number,
    applied_date: Option<String>,
    valid_from: Option<String>,
    valid_to: Option<String>,
    reward_group_id: Option<&'a str>,
    note: Option<&'a str>,
    reward: Option<Reward<'a>>,
    created_date: String,
    last_change: String,
    state: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    stores: Option<Vec<Store<'a>>>,
}

impl<'a> CareVoucher<'a> {
    fn new(v: &'a Voucher, offset: UtcOffset, with_stores: bool) -> CareVoucher<'a> {
        let at = |t: Option<i64>| t.map(|t| format_plain(t, offset));
        // A value voucher's face value, or a discount's value (money or percent).
        let value = match (v.amount, v.discount) {
            (Some(amount), _) => format_decimal_trimmed(amount, v.currency.exponent()),
            (None, Some(d)) => format_decimal_trimmed(d.value, d.kind.scale(v.currency)),
            (None, None) => "0".to_string(),
        };
        let store_id = v.restrictions.store_id.as_deref();
        CareVoucher {
            voucher_id: &v.id,
            customer_id: v.restrictions.customer_id.as_deref(),
            store_id,
            code: v.code.as_str(),
            voucher_value: number(&value),
            applied_date: at(v.used_at),
            valid_from: at(v.valid_from),
            valid_to: at(v.valid_until),
            reward_group_id: None,
            note: v.note.as_deref(),
            reward: v.reward_id.as_deref().map(|reward_id| Reward { reward_id }),
            created_date: format_plain(v.created_at, offset),
            last_change: format_plain(v.updated_at, offset),
            state: state(v.status),
            stores: with_stores.then(|| {
                store_id
                    .map(|store_id| Store { store_id })
                    .into_iter()
                    .collect()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(items: &[(&str, &str)]) -> Result<Params, ParamError> {
        let pairs: Vec<(String, String)> = items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse_params(&pairs, 1000)
    }

    #[test]
    fn defaults_are_a_hundred_newest_first() {
        let p = parse(&[]).unwrap();
        assert_eq!((p.query.per_page, p.query.offset), (100, 0));
        assert_eq!(
            p.query.sort,
            vec![SortKey {
                field: SortField::CreatedAt,
                descending: true
            }]
        );
        assert!(!p.by_code && !p.with_stores);
    }

    #[test]
    fn every_parameter_becomes_its_filter() {
        let p = parse(&[
            ("count", "5"),
            ("offset", "7"),
            ("sort_field", "voucher_value"),
            ("code", "ab-cd 12"),
            ("store_id", "S1"),
            ("validity", "true"),
            ("is_applied", "0"),
            ("skip_stores", "false"),
            ("reward_id[]", "R1"),
            ("reward_id[]", "R2"),
            ("reward_id[]", "R1"),
        ])
        .unwrap();
        assert_eq!((p.query.per_page, p.query.offset), (5, 7));
        assert_eq!(
            p.query.sort,
            vec![SortKey {
                field: SortField::Value,
                descending: false
            }]
        );
        assert_eq!(
            p.query.filters,
            vec![
                Filter::Code("ABCD12".into()),
                Filter::StoreId("S1".into()),
                Filter::ValidAt(1000, true),
                Filter::AppliedAt(1000, false),
                Filter::RewardIn(vec!["R1".into(), "R2".into()]),
            ]
        );
        assert!(p.by_code && p.with_stores);
    }

    #[test]
    fn sort_direction_alone_turns_the_default_order() {
        let p = parse(&[("sort_direction", "asc")]).unwrap();
        assert!(!p.query.sort[0].descending);
        let p = parse(&[("sort_field", "state"), ("sort_direction", "desc")]).unwrap();
        assert_eq!(p.query.sort[0].field, SortField::Status);
        assert!(p.query.sort[0].descending);
    }

    #[test]
    fn bad_values_name_their_parameter() {
        for (name, value) in [
            ("count", "0"),
            ("count", "1001"),
            ("count", "x"),
            ("offset", "-1"),
            ("sort_field", "amount"),
            ("sort_field", "created_at"),
            ("sort_direction", "up"),
            ("validity", "yes"),
            ("is_applied", ""),
            ("skip_stores", "2"),
            ("code", ""),
            ("page", "1"),
            ("filter[code]", "X"),
        ] {
            let err = parse(&[(name, value)]).unwrap_err();
            assert_eq!(err.param, name, "{name}={value}");
        }
        assert_eq!(
            parse(&[("count", "1"), ("count", "2")]).unwrap_err().param,
            "count"
        );
    }

    #[test]
    fn states_follow_the_vendor() {
        assert_eq!(state(Status::Cancelled), 0);
        assert_eq!(state(Status::Active), 1);
        assert_eq!(state(Status::Inactive), 2);
    }
}
