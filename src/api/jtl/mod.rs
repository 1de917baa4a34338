//! The JTL Voucher Cloud 1.8 dialect under `/jtl`: JTL's paths below `/jtl/v1`, its token
//! endpoint at `/jtl/oauth/token`, its scopes, field names, money strings and error body, over
//! the same vouchers, balances and ledger as the native API. Only value vouchers in currencies
//! of two decimals exist here (JTL knows no others); docs/jtl.md says what else differs.

pub(crate) mod clients;
pub(crate) mod error;
pub(crate) mod ledger;
pub(crate) mod scopes;
pub(crate) mod vouchers;
pub(crate) mod wire;

use super::Ctx;
use crate::auth::token::TokenInfo;
use crate::domain::query::{ParamError, PER_PAGE_MAX};
use crate::domain::voucher::{Tenant, Voucher};
use crate::error::ApiError;
use crate::store::vouchers as store_vouchers;
use crate::web::request::Method;
use crate::web::response::Reply;
use error::JtlError;

/// A request refused before any route ran (a bad `Host`, a query that does not decode), in
/// JTL's error body.
pub fn refuse(err: ApiError) -> Reply {
    JtlError::from_api(err, "").to_reply()
}

/// Runs the JTL route for `segments` (the path after `/jtl`), answering every failure in
/// JTL's error body; `template` is the path's template, what a logged failure names.
pub fn route(ctx: &mut Ctx, method: Method, segments: &[&str], template: &str) -> Reply {
    use Method::*;
    let ctx = &*ctx;
    #[rustfmt::skip]
    let result = match (method, segments) {
        (Post,   ["oauth", "token"])                           => Ok(clients::token(ctx)),
        (Get,    ["openapi.json"])                             => Ok(openapi()),
        (Get,    ["v1", "vouchers"])                           => vouchers::list(ctx),
        (Post,   ["v1", "vouchers"])                           => vouchers::create(ctx),
        (Post,   ["v1", "vouchers", "recharge"])               => ledger::recharge(ctx),
        (_,      ["v1", "vouchers", "recharge"])               => Err(JtlError::from_api(ApiError::MethodNotAllowed("POST"), "")),
        (Get,    ["v1", "vouchers", id])                       => vouchers::get(ctx, id),
        (Patch,  ["v1", "vouchers", id])                       => vouchers::update(ctx, id),
        (Delete, ["v1", "vouchers", id])                       => vouchers::delete(ctx, id),
        (Get,    ["v1", "vouchers", id, "complete"])           => vouchers::complete(ctx, id),
        (Patch,  ["v1", "vouchers", id, "status"])             => vouchers::set_status(ctx, id),
        (Get,    ["v1", "vouchers", id, "charges"])            => ledger::list_charges(ctx, id),
        (Get,    ["v1", "vouchers", id, "charges", charge])    => ledger::get_charge(ctx, id, charge),
        (Post,   ["v1", "reservations"])                       => ledger::reserve(ctx),
        (Post,   ["v1", "reservations", id, "charge"])         => ledger::charge_reservation(ctx, id),
        (Post,   ["v1", "charges", id, "refund"])              => ledger::refund(ctx, id),
        (Post,   ["v1", "clients", "connect"])                 => clients::connect(ctx),
        _ => Err(match resource(segments) {
            Some((_, allow)) => JtlError::from_api(ApiError::MethodNotAllowed(allow), ""),
            None => JtlError::new(404, "ROUTE.NOT_FOUND", "The requested route was not found."),
        }),
    };
    result.unwrap_or_else(|err| {
        if let Some(cause) = &err.log {
            // The route template, never the path: ids do not belong in the log.
            eprintln!("vouchd: {} {template}: {cause}", method.as_str());
        }
        err.to_reply()
    })
}

/// `GET /jtl/openapi.json`: the dialect's OpenAPI document, written from JTL's facts.
fn openapi() -> Reply {
    const DOCUMENT: &str = include_str!("openapi.json");
    Reply::bytes(200, "application/json", DOCUMENT.as_bytes().to_vec())
}

/// Every JTL route as `(method, path template)`, as the dialect's OpenAPI document names it
/// (below `/jtl`): checked against the document by the tests.
#[rustfmt::skip]
pub const ROUTES: &[(&str, &str)] = &[
    ("POST",   "/oauth/token"),
    ("GET",    "/openapi.json"),
    ("GET",    "/v1/vouchers"),
    ("POST",   "/v1/vouchers"),
    ("POST",   "/v1/vouchers/recharge"),
    ("GET",    "/v1/vouchers/{id}"),
    ("PATCH",  "/v1/vouchers/{id}"),
    ("DELETE", "/v1/vouchers/{id}"),
    ("GET",    "/v1/vouchers/{id}/complete"),
    ("PATCH",  "/v1/vouchers/{id}/status"),
    ("GET",    "/v1/vouchers/{id}/charges"),
    ("GET",    "/v1/vouchers/{id}/charges/{charge_id}"),
    ("POST",   "/v1/reservations"),
    ("POST",   "/v1/reservations/{id}/charge"),
    ("POST",   "/v1/charges/{id}/refund"),
    ("POST",   "/v1/clients/connect"),
];

/// A known JTL path's route template (with `/jtl`) and the methods it takes.
#[rustfmt::skip]
pub fn resource(segs: &[&str]) -> Option<(&'static str, &'static str)> {
    Some(match segs {
        ["oauth", "token"]                    => ("/jtl/oauth/token", "POST"),
        ["openapi.json"]                      => ("/jtl/openapi.json", "GET, HEAD"),
        ["v1", "vouchers"]                    => ("/jtl/v1/vouchers", "GET, HEAD, POST"),
        ["v1", "vouchers", "recharge"]        => ("/jtl/v1/vouchers/recharge", "POST"),
        ["v1", "vouchers", _]                 => ("/jtl/v1/vouchers/{id}", "GET, HEAD, PATCH, DELETE"),
        ["v1", "vouchers", _, "complete"]     => ("/jtl/v1/vouchers/{id}/complete", "GET, HEAD"),
        ["v1", "vouchers", _, "status"]       => ("/jtl/v1/vouchers/{id}/status", "PATCH"),
        ["v1", "vouchers", _, "charges"]      => ("/jtl/v1/vouchers/{id}/charges", "GET, HEAD"),
        ["v1", "vouchers", _, "charges", _]   => ("/jtl/v1/vouchers/{id}/charges/{charge_id}", "GET, HEAD"),
        ["v1", "reservations"]                => ("/jtl/v1/reservations", "POST"),
        ["v1", "reservations", _, "charge"]   => ("/jtl/v1/reservations/{id}/charge", "POST"),
        ["v1", "charges", _, "refund"]        => ("/jtl/v1/charges/{id}/refund", "POST"),
        ["v1", "clients", "connect"]          => ("/jtl/v1/clients/connect", "POST"),
        _ => return None,
    })
}

/// Checks the bearer token and that it holds the JTL scope `scope`.
fn authorize(ctx: &Ctx, scope: &'static str) -> Result<TokenInfo, JtlError> {
    let token = ctx.authenticate()?;
    if !scopes::holds(&token, scope) {
        return Err(JtlError::from_api(ApiError::InsufficientScope(scope), ""));
    }
    Ok(token)
}

/// Whether the dialect shows this voucher: a value voucher in a currency of two decimals.
pub fn served(v: &Voucher) -> bool {
    v.discount.is_none() && v.currency.exponent() == wire::EXPONENT
}

/// A voucher the tenant may see and the dialect shows, or `VOUCHER.NOT_FOUND`.
fn find_voucher(conn: &crate::store::Db, id: &str, tenant: &Tenant) -> Result<Voucher, ApiError> {
    let v = store_vouchers::get(conn, id, tenant)?;
    if served(&v) {
        Ok(v)
    } else {
        Err(ApiError::NotFound)
    }
}

/// The query pairs of a JTL list, checked against the names it takes (`filters`, plus `page`,
/// `per_page` and, when `sortable`, `sort` by `created_at`), with `per_page` capped at vouchd's
/// page size (JTL documents no maximum).
fn list_pairs(
    query: &[(String, String)],
    filters: &[&str],
    sortable: bool,
) -> Result<Vec<(String, String)>, ParamError> {
    let mut pairs = Vec::with_capacity(query.len());
    for (name, value) in query {
        let known = match name.as_str() {
            "page" | "per_page" => true,
            "sort" if sortable => value
                .split(',')
                .all(|s| s == "created_at" || s == "-created_at"),
            _ => name
                .strip_prefix("filter[")
                .and_then(|rest| rest.strip_suffix("][]").or(rest.strip_suffix(']')))
                .is_some_and(|f| filters.contains(&f)),
        };
        if !known {
            let message = if name == "sort" {
                "must be created_at or -created_at"
            } else {
                "is not a parameter of this list"
            };
            return Err(crate::domain::query::bad(name, message));
        }
        if let Some(expected) = shape_error(name, value) {
            return Err(crate::domain::query::bad(name, expected));
        }
        let value = match name.as_str() {
            "per_page" => match value.parse::<u64>() {
                Ok(n) if n > PER_PAGE_MAX => PER_PAGE_MAX.to_string(),
                _ => value.clone(),
            },
            _ => value.clone(),
        };
        pairs.push((name.clone(), value));
    }
    Ok(pairs)
}

/// What is wrong with a list parameter's value by JTL's own rules, which are narrower than
/// the native list's (no date-only times, no comma lists, no `1`/`0` booleans, two decimals).
fn shape_error(name: &str, value: &str) -> Option<&'static str> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let decimal = |s: &str, whole: Option<usize>| match s.split_once('.') {
        Some((w, f)) => {
            digits(w)
                && whole.is_none_or(|n| w.len() <= n)
                && (1..=2).contains(&f.len())
                && digits(f)
        }
        None => digits(s) && whole.is_none_or(|n| s.len() <= n),
    };
    let field = name
        .strip_prefix("filter[")
        .map(|f| f.trim_end_matches("[]").trim_end_matches(']'));
    let ok = match (name, field) {
        ("page" | "per_page", _) => digits(value),
        (_, Some("created_from" | "created_to" | "valid_until_from" | "valid_until_to")) => {
            value.contains(['T', 't'])
        }
        (_, Some("remaining_amount" | "taxable")) => value == "true" || value == "false",
        (_, Some("status")) => ["active", "inactive", "cancelled"].contains(&value),
        (_, Some("amount")) => decimal(value, None),
        (_, Some("tax_rate")) => decimal(value, Some(3)),
        _ => true,
    };
    (!ok).then_some("is not in the form JTL documents for it")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_list_exactly_the_methods_each_jtl_path_allows() {
        for (method, template) in ROUTES {
            let segs: Vec<&str> = template
                .split('/')
                .filter(|s| !s.is_empty())
                .map(|s| if s.starts_with('{') { "X1" } else { s })
                .collect();
            let (named, allow) =
                resource(&segs).unwrap_or_else(|| panic!("{template} is not a known path"));
            assert_eq!(named, format!("/jtl{template}"));
            let mut listed: Vec<&str> = ROUTES
                .iter()
                .filter(|(_, t)| t == template)
                .map(|(m, _)| *m)
                .collect();
            // HEAD is answered wherever GET is (the server's rule), never listed apart.
            let mut allowed: Vec<&str> = allow.split(", ").filter(|m| *m != "HEAD").collect();
            assert_eq!(
                allow.contains("HEAD"),
                listed.contains(&"GET"),
                "{template}"
            );
            listed.sort_unstable();
            allowed.sort_unstable();
            assert_eq!(listed, allowed, "{method} {template}");
        }
    }

    #[test]
    fn list_parameters_take_only_jtls_documented_forms() {
        let pairs = |items: &[(&str, &str)]| -> Vec<(String, String)> {
            items
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let filters = &["status", "amount", "created_from", "taxable"];
        let ok = list_pairs(
            &pairs(&[
                ("filter[status][]", "active"),
                ("filter[status]", "inactive"),
                ("filter[amount]", "10.5"),
                ("filter[created_from]", "2024-01-01T00:00:00+01:00"),
                ("filter[taxable]", "false"),
                ("per_page", "5000"),
                ("sort", "-created_at"),
            ]),
            filters,
            true,
        )
        .expect("JTL's forms");
        assert_eq!(ok[5], ("per_page".into(), "1000".into()));
        for (name, value) in [
            ("filter[status]", "active,inactive"),
            ("filter[amount]", "10.555"),
            ("filter[created_from]", "2024-01-01"),
            ("filter[taxable]", "1"),
            ("page", "+2"),
            ("sort", "amount"),
            ("filter[customer_id]", "C1"),
            ("bogus", "1"),
        ] {
            let err = list_pairs(&pairs(&[(name, value)]), filters, true)
                .expect_err(&format!("{name}={value}"));
            assert_eq!(err.param, name);
        }
    }
}
