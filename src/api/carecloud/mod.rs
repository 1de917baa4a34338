//! The loyalty platform's dialect: a customer's or a purchase's vouchers with the vendor's
//! paths, parameters, voucher object and error body, below
//! `/carecloud/rest-api/enterprise-interface/v1.0`. Read-only, over the same store query as the
//! native list. Authentication stays vouchd's bearer token.

mod params;
mod shape;
mod stream;

use super::ledger::check_guessing;
use super::{tenant_of, Ctx};
use crate::auth::scope::VOUCHERS_READ;
use crate::domain::clock;
use crate::domain::query::Filter;
use crate::error::ApiError;
use crate::store::vouchers;
use crate::web::request::Request;
use crate::web::response::{Body, Reply};
use params::{InvalidParam, Operation};
use serde_json::{json, Value};
use shape::CareVoucher;

pub use params::SORT_FIELDS;

/// The path segments every route of this dialect starts with.
pub const BASE: [&str; 4] = ["carecloud", "rest-api", "enterprise-interface", "v1.0"];

/// `GET …/customers/{customer_id}/vouchers`.
pub fn customer_vouchers(ctx: &mut Ctx, customer_id: &str) -> Result<Reply, ApiError> {
    let scope = Filter::CustomerId(customer_id.to_string());
    list(ctx, Operation::Customer, scope)
}

/// `GET …/purchases/{purchase_id}/vouchers`.
pub fn purchase_vouchers(ctx: &mut Ctx, purchase_id: &str) -> Result<Reply, ApiError> {
    let scope = Filter::PurchaseId(purchase_id.to_string());
    list(ctx, Operation::Purchase, scope)
}

fn list(ctx: &mut Ctx, operation: Operation, scope: Filter) -> Result<Reply, ApiError> {
    let token = ctx.authorize(VOUCHERS_READ)?;
    // The path's id is matched against stored text, which never holds a NUL (PostgreSQL's
    // cannot): refused as a bad parameter, alike on both engines.
    if let Filter::CustomerId(id) | Filter::PurchaseId(id) = &scope {
        if id.contains('\0') {
            let name = match operation {
                Operation::Customer => "customer_id",
                Operation::Purchase => "purchase_id",
            };
            return Ok(invalid_params(&[params::InvalidParam {
                name: name.into(),
                reason: "invalid_value_format",
                value: id.clone(),
                message: "must not hold a NUL character".into(),
            }]));
        }
    }
    let params = match params::parse(&ctx.req.query, operation, clock::now()) {
        Ok(params) => params,
        Err(invalid) => return Ok(invalid_params(&invalid)),
    };
    let mut query = params.query;
    query.filters.push(scope);
    if params.by_code {
        check_guessing(ctx, &token)?;
    }
    if query.per_page > stream::PAGE {
        let conn = ctx.app.store.reader()?;
        let (offset, tenant) = (ctx.app.offset, tenant_of(&token));
        let (body, total) =
            stream::CareStream::new(conn, tenant, query, offset, params.with_stores)?;
        if params.by_code && total == 0 {
            ctx.app.guesses.fail(&token.client_id);
        }
        return Ok(Reply::stream(200, "application/json", body));
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
        &json!({"data": {"vouchers": views, "total_items": total}}),
    ))
}

/// Is this a path of the dialect (so its errors take the vendor's shape)?
pub fn serves(segs: &[&str]) -> bool {
    segs.starts_with(&BASE[..2])
}

/// The vendor's error object: `{"error": {type, exception, title, detail[, error_data]}}`.
fn error_body(status: u16, detail: &str, data: Option<Value>) -> Vec<u8> {
    let (exception, title) = match status {
        400 => ("bad_request_exception", "Bad Request"),
        401 => ("unauthorized_exception", "Unauthorized"),
        403 => ("interface_not_allowed_exception", "Forbidden"),
        404 => ("not_found_exception", "Not Found"),
        405 => ("method_not_allowed_exception", "Method Not Allowed"),
        429 => ("too_many_requests_exception", "Too Many Requests"),
        503 => ("service_unavailable_exception", "Service Unavailable"),
        _ => ("internal_server_error_exception", "Internal Server Error"),
    };
    let mut error = json!({
        "type": "about:blank",
        "exception": exception,
        "title": title,
        "detail": detail,
    });
    if let Some(data) = data {
        error["error_data"] = data;
    }
    serde_json::to_vec(&json!({ "error": error })).unwrap_or_default()
}

/// 400 listing every bad parameter.
fn invalid_params(invalid: &[InvalidParam]) -> Reply {
    let names: Vec<&str> = invalid.iter().map(|p| p.name.as_str()).collect();
    let detail = format!("Invalid query parameter {}.", names.join(", "));
    let list: Vec<Value> = invalid
        .iter()
        .map(
            |p| json!({"name": p.name, "reason": p.reason, "value": p.value, "message": p.message}),
        )
        .collect();
    let data = json!({ "invalid_params": list });
    Reply::bytes(
        400,
        "application/json",
        error_body(400, &detail, Some(data)),
    )
}

/// Renders an error of a dialect path in the vendor's shape, keeping the headers vouchd sends
/// with it (`WWW-Authenticate`, `Allow`, `Retry-After`). Internal errors are logged here, as the
/// server logs the errors it renders itself, under the route's template `route`.
pub fn in_vendor_shape(result: Result<Reply, ApiError>, req: &Request, route: &str) -> Reply {
    let err = match result {
        Ok(reply) => return reply,
        Err(err) => err,
    };
    if let Some(cause) = err.log_message() {
        // The route template, never the path: customer and purchase ids stay out of the log.
        eprintln!("vouchd: {} {route}: {cause}", req.method.as_str());
    }
    let data = match &err {
        ApiError::InsufficientScope(_) => Some(json!({
            "invalid_resource_name": "vouchers",
            "interface": BASE[2],
        })),
        ApiError::NotFound => Some(json!({"resource_name": req.path, "resource_id": ""})),
        ApiError::MethodNotAllowed(_) => Some(json!({"http_method": req.method.as_str()})),
        ApiError::Parameter(p) => Some(json!({"invalid_params": [{
            "name": p.param, "reason": "not_allowed_value", "value": "", "message": p.message,
        }]})),
        _ => None,
    };
    let mut reply = err.to_reply();
    reply.content_type = "application/json";
    reply.body = Body::Bytes(error_body(reply.status, &err.detail(), data));
    reply
}
