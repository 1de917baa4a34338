//! The route table: one match over method and path segments.

use super::request::{percent_decode, Method, Request};
use super::response::Reply;
use crate::api::{admin, carecloud, export, import, jtl, ledger, native, pos, stats, symbols, Ctx};
use crate::app::App;
use crate::auth::oauth;
use crate::error::ApiError;
use crate::ops::{metrics, Trace};
use crate::ui;
use serde_json::json;

/// Runs the handler of the request's route; notes in `trace` the client it authenticated.
pub fn route(
    app: &App,
    conn: &rusqlite::Connection,
    req: &Request,
    trace: &mut Trace,
) -> Result<Reply, ApiError> {
    use Method::*;
    let segments = req.segments();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let mut ctx = Ctx::new(app, conn, req);
    let ctx = &mut ctx;
    #[rustfmt::skip]
    let reply = match (req.method, segs.as_slice()) {
        (Get,    [])                                             => Ok(ui::page()),
        (Get,    ["ui", name])                                   => ui::asset(name).ok_or(ApiError::NotFound),
        (Get,    ["healthz"])                                    => Ok(Reply::json(200, &json!({"status": "ok"}))),
        (Get,    ["metrics"])                                    => Ok(Reply::bytes(200, metrics::CONTENT_TYPE, app.metrics.render().into_bytes())),
        (Get,    ["openapi.json"])                               => Ok(openapi()),
        (Post,   ["oauth", "token"])                             => oauth::token(ctx),
        (Get,    ["v1", "vouchers"])                             => native::list_vouchers(ctx),
        (Post,   ["v1", "vouchers"])                             => native::create_voucher(ctx),
        (Post,   ["v1", "vouchers", "batch"])                    => native::create_batch(ctx),
        (Get,    ["v1", "vouchers", "export.csv"])               => export::export_vouchers(ctx),
        (Post,   ["v1", "vouchers", "import"])                   => import::import_vouchers(ctx),
        (Get,    ["v1", "vouchers", id])                         => native::get_voucher(ctx, id),
        (Patch,  ["v1", "vouchers", id])                         => native::update_voucher(ctx, id),
        (Delete, ["v1", "vouchers", id])                         => native::delete_voucher(ctx, id),
        (Get,    ["v1", "vouchers", id, "barcode.svg"])          => symbols::barcode(ctx, id),
        (Get,    ["v1", "vouchers", id, "qr.svg"])               => symbols::qr(ctx, id),
        (Get,    ["v1", "vouchers", id, "charges"])              => ledger::list_charges(ctx, id),
        (Post,   ["v1", "vouchers", id, "charges"])              => ledger::post_charge(ctx, id),
        (Get,    ["v1", "vouchers", id, "reservations"])         => ledger::list_holds(ctx, id),
        (Post,   ["v1", "vouchers", id, "reservations"])         => ledger::reserve(ctx, id),
        (Post,   ["v1", "vouchers", id, "reservations", rid, "capture"]) => ledger::capture(ctx, id, rid),
        (Delete, ["v1", "vouchers", id, "reservations", rid])    => ledger::release(ctx, id, rid),
        (Post,   ["v1", "validate"])                             => ledger::validate(ctx),
        (Get,    ["v1", "stats"])                                => stats::get_stats(ctx),
        (Get,    ["v1", "customers", id, "vouchers"])            => native::list_customer_vouchers(ctx, id),
        (Get,    ["v1", "purchases", id, "vouchers"])            => native::list_purchase_vouchers(ctx, id),
        (Get,    ["carecloud", "v1", "customers", id, "vouchers"]) => carecloud::customer_vouchers(ctx, id),
        (Get,    ["carecloud", "v1", "purchases", id, "vouchers"]) => carecloud::purchase_vouchers(ctx, id),
        (Get,    ["pos", "v1", "vouchers"])                      => pos::list(ctx),
        (Post,   ["pos", "v1", "vouchers"])                      => pos::create(ctx),
        (Get,    ["pos", "v1", "vouchers", code])                => pos::get(ctx, code),
        (Put,    ["pos", "v1", "vouchers", code])                => pos::replace(ctx, code),
        (Delete, ["pos", "v1", "vouchers", code])                => pos::delete(ctx, code),
        (Get,    ["v1", "client-groups"])                        => admin::list_groups(ctx),
        (Post,   ["v1", "client-groups"])                        => admin::create_group(ctx),
        (Get,    ["v1", "clients"])                              => admin::list_clients(ctx),
        (Post,   ["v1", "clients"])                              => admin::create_client(ctx),
        (Delete, ["v1", "clients", id])                          => admin::revoke_client(ctx, id),
        (method, ["jtl", rest @ ..])                             => Ok(jtl::route(ctx, method, rest)),
        _ => Err(match resource(&segs) {
            Some((_, allow)) => ApiError::MethodNotAllowed(allow),
            None => ApiError::NotFound,
        }),
    };
    trace.client_id = ctx.client_id.take();
    match (reply, ctx.quota.get()) {
        (Ok(reply), Some(q)) => Ok(reply
            .with_header("RateLimit-Limit", q.limit.to_string())
            .with_header("RateLimit-Remaining", q.remaining.to_string())
            .with_header("RateLimit-Reset", q.reset.to_string())),
        (reply, _) => reply,
    }
}

/// The label of a path no route knows, in the metrics and the access log.
pub const UNMATCHED: &str = "unmatched";

/// The route template a request's target (`/v1/vouchers/4ZH…/charges?page=2`) matches
/// (`/v1/vouchers/{id}/charges`), whatever the method; [`UNMATCHED`] for an unknown path.
pub fn template(target: &str) -> &'static str {
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode(s, false).unwrap_or_default())
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    resource(&segs).map_or(UNMATCHED, |(template, _)| template)
}

/// `GET /openapi.json`: the OpenAPI 3.1 document of every route below, kept in the repository
/// as JSON and checked against the running server by the fuzz test (tests/openapi.rs).
fn openapi() -> Reply {
    const DOCUMENT: &str = include_str!("../api/openapi.json");
    Reply::bytes(200, "application/json", DOCUMENT.as_bytes().to_vec())
}

/// Every route as `(method, path template)` in OpenAPI's spelling, in the order of the table
/// above: what `/openapi.json` must describe, one operation each (checked by the tests).
#[rustfmt::skip]
pub const ROUTES: &[(&str, &str)] = &[
    ("GET",    "/"),
    ("GET",    "/ui/{file}"),
    ("GET",    "/healthz"),
    ("GET",    "/openapi.json"),
    ("GET",    "/metrics"),
    ("POST",   "/oauth/token"),
    ("GET",    "/v1/vouchers"),
    ("POST",   "/v1/vouchers"),
    ("POST",   "/v1/vouchers/batch"),
    ("GET",    "/v1/vouchers/export.csv"),
    ("POST",   "/v1/vouchers/import"),
    ("GET",    "/v1/vouchers/{id}"),
    ("PATCH",  "/v1/vouchers/{id}"),
    ("DELETE", "/v1/vouchers/{id}"),
    ("GET",    "/v1/vouchers/{id}/charges"),
    ("POST",   "/v1/vouchers/{id}/charges"),
    ("GET",    "/v1/vouchers/{id}/barcode.svg"),
    ("GET",    "/v1/vouchers/{id}/qr.svg"),
    ("GET",    "/v1/vouchers/{id}/reservations"),
    ("POST",   "/v1/vouchers/{id}/reservations"),
    ("POST",   "/v1/vouchers/{id}/reservations/{rid}/capture"),
    ("DELETE", "/v1/vouchers/{id}/reservations/{rid}"),
    ("POST",   "/v1/validate"),
    ("GET",    "/v1/stats"),
    ("GET",    "/v1/customers/{id}/vouchers"),
    ("GET",    "/v1/purchases/{id}/vouchers"),
    ("GET",    "/carecloud/v1/customers/{id}/vouchers"),
    ("GET",    "/carecloud/v1/purchases/{id}/vouchers"),
    ("GET",    "/pos/v1/vouchers"),
    ("POST",   "/pos/v1/vouchers"),
    ("GET",    "/pos/v1/vouchers/{code}"),
    ("PUT",    "/pos/v1/vouchers/{code}"),
    ("DELETE", "/pos/v1/vouchers/{code}"),
    ("GET",    "/v1/client-groups"),
    ("POST",   "/v1/client-groups"),
    ("GET",    "/v1/clients"),
    ("POST",   "/v1/clients"),
    ("DELETE", "/v1/clients/{id}"),
];

/// A known path's route template and the methods it takes (for 405's `Allow`).
#[rustfmt::skip]
fn resource(segs: &[&str]) -> Option<(&'static str, &'static str)> {
    Some(match segs {
        []                                              => ("/", "GET"),
        ["ui", _]                                       => ("/ui/{file}", "GET"),
        ["healthz"]                                     => ("/healthz", "GET"),
        ["metrics"]                                     => ("/metrics", "GET"),
        ["openapi.json"]                                => ("/openapi.json", "GET"),
        ["oauth", "token"]                              => ("/oauth/token", "POST"),
        ["v1", "vouchers"]                              => ("/v1/vouchers", "GET, POST"),
        ["v1", "vouchers", "batch"]                     => ("/v1/vouchers/batch", "POST"),
        ["v1", "vouchers", "export.csv"]                => ("/v1/vouchers/export.csv", "GET"),
        ["v1", "vouchers", "import"]                    => ("/v1/vouchers/import", "POST"),
        ["v1", "vouchers", _]                           => ("/v1/vouchers/{id}", "GET, PATCH, DELETE"),
        ["v1", "vouchers", _, "charges"]                => ("/v1/vouchers/{id}/charges", "GET, POST"),
        ["v1", "vouchers", _, "barcode.svg"]            => ("/v1/vouchers/{id}/barcode.svg", "GET"),
        ["v1", "vouchers", _, "qr.svg"]                 => ("/v1/vouchers/{id}/qr.svg", "GET"),
        ["v1", "vouchers", _, "reservations"]           => ("/v1/vouchers/{id}/reservations", "GET, POST"),
        ["v1", "vouchers", _, "reservations", _, "capture"] => ("/v1/vouchers/{id}/reservations/{rid}/capture", "POST"),
        ["v1", "vouchers", _, "reservations", _]        => ("/v1/vouchers/{id}/reservations/{rid}", "DELETE"),
        ["v1", "validate"]                              => ("/v1/validate", "POST"),
        ["v1", "stats"]                                 => ("/v1/stats", "GET"),
        ["v1", "customers", _, "vouchers"]              => ("/v1/customers/{id}/vouchers", "GET"),
        ["v1", "purchases", _, "vouchers"]              => ("/v1/purchases/{id}/vouchers", "GET"),
        ["carecloud", "v1", "customers", _, "vouchers"] => ("/carecloud/v1/customers/{id}/vouchers", "GET"),
        ["carecloud", "v1", "purchases", _, "vouchers"] => ("/carecloud/v1/purchases/{id}/vouchers", "GET"),
        ["pos", "v1", "vouchers"]                       => ("/pos/v1/vouchers", "GET, POST"),
        ["pos", "v1", "vouchers", _]                    => ("/pos/v1/vouchers/{code}", "GET, PUT, DELETE"),
        ["v1", "client-groups"]                         => ("/v1/client-groups", "GET, POST"),
        ["v1", "clients"]                               => ("/v1/clients", "GET, POST"),
        ["v1", "clients", _]                            => ("/v1/clients/{id}", "DELETE"),
        ["jtl", rest @ ..]                              => return jtl::resource(rest),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_name_the_route_not_the_path() {
        for (target, want) in [
            ("/v1/vouchers", "/v1/vouchers"),
            ("/v1/vouchers?filter%5Bcode%5D=ABCD", "/v1/vouchers"),
            ("/v1/vouchers/4ZH83T0ACUUC14CW", "/v1/vouchers/{id}"),
            (
                "/v1/vouchers/4ZH83T0ACUUC14CW/charges?page=2",
                "/v1/vouchers/{id}/charges",
            ),
            (
                "/v1/vouchers/X/reservations/R/capture",
                "/v1/vouchers/{id}/reservations/{rid}/capture",
            ),
            ("/v1/vouchers/export.csv", "/v1/vouchers/export.csv"),
            ("/v1/vouchers/export%2Ecsv", "/v1/vouchers/export.csv"),
            ("/pos/v1/vouchers/WQ4MM3", "/pos/v1/vouchers/{code}"),
            (
                "/carecloud/v1/purchases/P1/vouchers",
                "/carecloud/v1/purchases/{id}/vouchers",
            ),
            ("//metrics/", "/metrics"),
            ("/v1/vouchers/a/b/c/d/e/f", UNMATCHED),
            ("/WQ4MM3", UNMATCHED),
            ("", "/"),
            ("/ui/app.js", "/ui/{file}"),
            (
                "/jtl/v1/vouchers/X/charges/Y?page=2",
                "/jtl/v1/vouchers/{id}/charges/{charge_id}",
            ),
            ("/jtl/oauth/token", "/jtl/oauth/token"),
            ("/jtl/v2/vouchers", UNMATCHED),
        ] {
            assert_eq!(template(target), want, "{target}");
        }
    }
    /// A template's segments with every `{param}` filled in.
    fn instantiate(template: &str) -> Vec<&str> {
        template
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| {
                if s.starts_with('{') {
                    "ABCDEFGH12345678"
                } else {
                    s
                }
            })
            .collect()
    }

    #[test]
    fn routes_list_exactly_the_methods_each_path_allows() {
        let mut templates: Vec<&str> = ROUTES.iter().map(|(_, t)| *t).collect();
        templates.dedup();
        for template in templates {
            let mut listed: Vec<&str> = ROUTES
                .iter()
                .filter(|(_, t)| *t == template)
                .map(|(m, _)| *m)
                .collect();
            let (_, allow) = resource(&instantiate(template))
                .unwrap_or_else(|| panic!("{template} is not a known path"));
            let mut allowed: Vec<&str> = allow.split(", ").collect();
            listed.sort_unstable();
            allowed.sort_unstable();
            assert_eq!(listed, allowed, "{template}");
        }
    }

    #[test]
    fn the_openapi_document_is_json() {
        let reply = openapi();
        let doc: serde_json::Value =
            serde_json::from_slice(reply.body_bytes().expect("bytes")).expect("valid JSON");
        assert_eq!(doc["openapi"], "3.1.0");
    }
}
