//! The route table: one match over method and path segments.

use super::host::is_authority;
use crate::api::oauth;
use crate::api::{
    admin, carecloud, export, import, jtl, ledger, native, pos, stats, symbols, webhooks, Ctx,
};
use crate::app::App;
use crate::auth::scope::METRICS;
use crate::error::ApiError;
use crate::ops::{metrics, Trace};
use crate::ui;
use crate::web::request::{path_segments, Method, Request};
use crate::web::response::Reply;
use serde_json::json;

/// Runs the handler of the request's route; notes in `trace` the client it authenticated.
pub fn route(
    app: &App,
    conn: &crate::store::Db,
    req: &Request,
    trace: &mut Trace,
) -> Result<Reply, ApiError> {
    use Method::*;
    let segments = req.segments();
    let segs: Vec<&str> = segments.iter().map(|s| s.as_ref()).collect();
    // Every path's methods come from one place: a path the table knows with a method it does
    // not route is 405 with the path's `Allow`, never another route's answer.
    let (template, allow) = resource(&segs).unwrap_or((UNMATCHED, ""));
    // A request refused before any route runs is refused in its dialect's shape all the same.
    if let Err(err) = check_host(req).and_then(|()| check_query(req)) {
        return match segs.first() {
            Some(&"jtl") => Ok(jtl::refuse(err)),
            _ if carecloud::serves(&segs) => {
                Ok(carecloud::in_vendor_shape(Err(err), req, template))
            }
            _ => Err(err),
        };
    }
    let method = if req.method == Head { Get } else { req.method };
    let mut ctx = Ctx::new(app, conn, req);
    let ctx = &mut ctx;
    #[rustfmt::skip]
    let reply = match (method, template, segs.as_slice()) {
        (Get,    "/",                                            []                   ) => Ok(ui::page()),
        (Get,    "/ui/{file}",                                   [_, name]            ) => ui::asset(name).ok_or(ApiError::NotFound),
        (Get,    "/healthz",                                     [_]                  ) => Ok(Reply::json(200, &json!({"status": "ok"}))),
        (Get,    "/metrics",                                     [_]                  ) => ctx.authorize(METRICS).map(|_| Reply::bytes(200, metrics::CONTENT_TYPE, app.metrics.render().into_bytes())),
        (Get,    "/openapi.json",                                [_]                  ) => Ok(document(NATIVE_DOCUMENT)),
        (Get,    "/carecloud/openapi.json",                      [_, _]               ) => Ok(document(CARECLOUD_DOCUMENT)),
        (Get,    "/pos/openapi.json",                            [_, _]               ) => Ok(document(POS_DOCUMENT)),
        (Post,   "/oauth/token",                                 [_, _]               ) => oauth::token(ctx),
        (Get,    "/v1/vouchers",                                 [_, _]               ) => native::list_vouchers(ctx),
        (Post,   "/v1/vouchers",                                 [_, _]               ) => native::create_voucher(ctx),
        (Post,   "/v1/vouchers/batch",                           [_, _, _]            ) => native::create_batch(ctx),
        (Get,    "/v1/vouchers/export.csv",                      [_, _, _]            ) => export::export_vouchers(ctx),
        (Post,   "/v1/vouchers/import",                          [_, _, _]            ) => import::import_vouchers(ctx),
        (Get,    "/v1/vouchers/{id}",                            [_, _, id]           ) => native::get_voucher(ctx, id),
        (Patch,  "/v1/vouchers/{id}",                            [_, _, id]           ) => native::update_voucher(ctx, id),
        (Delete, "/v1/vouchers/{id}",                            [_, _, id]           ) => native::delete_voucher(ctx, id),
        (Get,    "/v1/vouchers/{id}/barcode.svg",                [_, _, id, _]        ) => symbols::barcode(ctx, id),
        (Get,    "/v1/vouchers/{id}/qr.svg",                     [_, _, id, _]        ) => symbols::qr(ctx, id),
        (Get,    "/v1/vouchers/{id}/charges",                    [_, _, id, _]        ) => ledger::list_charges(ctx, id),
        (Post,   "/v1/vouchers/{id}/charges",                    [_, _, id, _]        ) => ledger::post_charge(ctx, id),
        (Get,    "/v1/vouchers/{id}/reservations",               [_, _, id, _]        ) => ledger::list_holds(ctx, id),
        (Post,   "/v1/vouchers/{id}/reservations",               [_, _, id, _]        ) => ledger::reserve(ctx, id),
        (Post,   "/v1/vouchers/{id}/reservations/{rid}/capture", [_, _, id, _, rid, _]) => ledger::capture(ctx, id, rid),
        (Delete, "/v1/vouchers/{id}/reservations/{rid}",         [_, _, id, _, rid]   ) => ledger::release(ctx, id, rid),
        (Post,   "/v1/validate",                                 [_, _]               ) => ledger::validate(ctx),
        (Get,    "/v1/stats",                                    [_, _]               ) => stats::get_stats(ctx),
        (Get,    "/v1/customers/{id}/vouchers",                  [_, _, id, _]        ) => native::list_customer_vouchers(ctx, id),
        (Get,    "/v1/purchases/{id}/vouchers",                  [_, _, id, _]        ) => native::list_purchase_vouchers(ctx, id),
        (Get,    "/carecloud/rest-api/enterprise-interface/v1.0/customers/{customer_id}/vouchers", [.., id, _]) => carecloud::customer_vouchers(ctx, id),
        (Get,    "/carecloud/rest-api/enterprise-interface/v1.0/purchases/{purchase_id}/vouchers", [.., id, _]) => carecloud::purchase_vouchers(ctx, id),
        (Get,    "/pos/v1/vouchers",                             [_, _, _]            ) => pos::list(ctx),
        (Post,   "/pos/v1/vouchers",                             [_, _, _]            ) => pos::create(ctx),
        (Get,    "/pos/v1/vouchers/{code}",                      [_, _, _, code]      ) => pos::get(ctx, code),
        (Put,    "/pos/v1/vouchers/{code}",                      [_, _, _, code]      ) => pos::replace(ctx, code),
        (Delete, "/pos/v1/vouchers/{code}",                      [_, _, _, code]      ) => pos::delete(ctx, code),
        (Get,    "/v1/client-groups",                            [_, _]               ) => admin::list_groups(ctx),
        (Post,   "/v1/client-groups",                            [_, _]               ) => admin::create_group(ctx),
        (Get,    "/v1/clients",                                  [_, _]               ) => admin::list_clients(ctx),
        (Post,   "/v1/clients",                                  [_, _]               ) => admin::create_client(ctx),
        (Delete, "/v1/clients/{id}",                             [_, _, id]           ) => admin::revoke_client(ctx, id),
        (Get,    "/v1/webhooks",                                 [_, _]               ) => webhooks::list(ctx),
        (Post,   "/v1/webhooks",                                 [_, _]               ) => webhooks::create(ctx),
        (Get,    "/v1/webhooks/{id}",                            [_, _, id]           ) => webhooks::get(ctx, id),
        (Delete, "/v1/webhooks/{id}",                            [_, _, id]           ) => webhooks::delete(ctx, id),
        (Get,    "/v1/webhooks/{id}/deliveries",                 [_, _, id, _]        ) => webhooks::deliveries(ctx, id),
        (Post,   "/v1/webhook-events/{event_id}/redeliver",      [_, _, id, _]        ) => webhooks::redeliver(ctx, id),
        (method, _,                                      ["jtl", rest @ ..]   ) => Ok(jtl::route(ctx, method, rest, template)),
        _ if template == UNMATCHED                                                     => Err(ApiError::NotFound),
        _ => Err(ApiError::MethodNotAllowed(allow)),
    };
    trace.client_id = ctx.client_id.take();
    let reply = match (reply, ctx.quota.get()) {
        (Ok(reply), Some(q)) => Ok(reply
            .with_header("RateLimit-Limit", q.limit.to_string())
            .with_header("RateLimit-Remaining", q.remaining.to_string())
            .with_header("RateLimit-Reset", q.reset.to_string())),
        (reply, _) => reply,
    };
    if carecloud::serves(&segs) {
        return Ok(carecloud::in_vendor_shape(reply, req, template));
    }
    reply
}

/// A `Host` that is not an authority is a 400: its value would otherwise reach the links built
/// from it. (A request with more than one `Host` never gets here: the framing refuses it.)
fn check_host(req: &Request) -> Result<(), ApiError> {
    match req.header("host") {
        Some(host) if !is_authority(host) => Err(ApiError::Malformed(
            "The Host header must be a host name or IP address with an optional port.".into(),
        )),
        _ => Ok(()),
    }
}

/// A query string that did not decode is a 400.
fn check_query(req: &Request) -> Result<(), ApiError> {
    if req.query_malformed {
        return Err(ApiError::Malformed(
            "The query string is not valid UTF-8 percent-encoding.".into(),
        ));
    }
    Ok(())
}

/// The label of a path no route knows, in the metrics and the access log.
pub const UNMATCHED: &str = "unmatched";

/// The route template a request's target (`/v1/vouchers/4ZH…/charges?page=2`) matches
/// (`/v1/vouchers/{id}/charges`), whatever the method; [`UNMATCHED`] for an unknown path.
pub fn template(target: &str) -> &'static str {
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    let segments = path_segments(path);
    let segs: Vec<&str> = segments.iter().map(|s| s.as_ref()).collect();
    resource(&segs).map_or(UNMATCHED, |(template, _)| template)
}

/// `GET /openapi.json`: the OpenAPI 3.1 document of the native routes ([`ROUTES`]), kept in the
/// repository as JSON and checked against the running server by the fuzz test (tests/openapi.rs).
const NATIVE_DOCUMENT: &str = include_str!("../api/openapi.json");
/// `GET /carecloud/openapi.json`: the CareCloud dialect's routes ([`CARECLOUD_ROUTES`]),
/// written from the vendor's facts (tests/dialect_fuzz.rs checks the server against it).
const CARECLOUD_DOCUMENT: &str = include_str!("../api/openapi/carecloud.json");
/// `GET /pos/openapi.json`: the POS dialect's routes ([`POS_ROUTES`]).
const POS_DOCUMENT: &str = include_str!("../api/openapi/pos.json");

fn document(text: &'static str) -> Reply {
    Reply::bytes(200, "application/json", text.as_bytes().to_vec())
}

/// The CareCloud dialect's routes, full paths in OpenAPI's spelling; its document lists them
/// below its server URL.
#[rustfmt::skip]
pub const CARECLOUD_ROUTES: &[(&str, &str)] = &[
    ("GET",    "/carecloud/rest-api/enterprise-interface/v1.0/customers/{customer_id}/vouchers"),
    ("GET",    "/carecloud/rest-api/enterprise-interface/v1.0/purchases/{purchase_id}/vouchers"),
];

/// The POS dialect's routes, full paths; its document lists them below its server URL.
#[rustfmt::skip]
pub const POS_ROUTES: &[(&str, &str)] = &[
    ("GET",    "/pos/v1/vouchers"),
    ("POST",   "/pos/v1/vouchers"),
    ("GET",    "/pos/v1/vouchers/{code}"),
    ("PUT",    "/pos/v1/vouchers/{code}"),
    ("DELETE", "/pos/v1/vouchers/{code}"),
];

/// Every native route as `(method, path template)` in OpenAPI's spelling, in the order of the
/// table above: what `/openapi.json` must describe, one operation each (checked by the tests).
#[rustfmt::skip]
pub const ROUTES: &[(&str, &str)] = &[
    ("GET",    "/"),
    ("GET",    "/ui/{file}"),
    ("GET",    "/healthz"),
    ("GET",    "/openapi.json"),
    ("GET",    "/carecloud/openapi.json"),
    ("GET",    "/pos/openapi.json"),
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
    ("GET",    "/v1/client-groups"),
    ("POST",   "/v1/client-groups"),
    ("GET",    "/v1/clients"),
    ("POST",   "/v1/clients"),
    ("DELETE", "/v1/clients/{id}"),
    ("GET",    "/v1/webhooks"),
    ("POST",   "/v1/webhooks"),
    ("GET",    "/v1/webhooks/{id}"),
    ("DELETE", "/v1/webhooks/{id}"),
    ("GET",    "/v1/webhooks/{id}/deliveries"),
    ("POST",   "/v1/webhook-events/{event_id}/redeliver"),
];

/// A known path's route template and the methods it takes (for 405's `Allow`; HEAD wherever
/// GET is, answered as GET without the body).
#[rustfmt::skip]
fn resource(segs: &[&str]) -> Option<(&'static str, &'static str)> {
    Some(match segs {
        []                                              => ("/", "GET, HEAD"),
        ["ui", _]                                       => ("/ui/{file}", "GET, HEAD"),
        ["healthz"]                                     => ("/healthz", "GET, HEAD"),
        ["metrics"]                                     => ("/metrics", "GET, HEAD"),
        ["openapi.json"]                                => ("/openapi.json", "GET, HEAD"),
        ["carecloud", "openapi.json"]                   => ("/carecloud/openapi.json", "GET, HEAD"),
        ["pos", "openapi.json"]                         => ("/pos/openapi.json", "GET, HEAD"),
        ["jtl", rest @ ..]                              => return jtl::resource(rest),
        ["oauth", "token"]                              => ("/oauth/token", "POST"),
        ["v1", "vouchers"]                              => ("/v1/vouchers", "GET, HEAD, POST"),
        ["v1", "vouchers", "batch"]                     => ("/v1/vouchers/batch", "POST"),
        ["v1", "vouchers", "export.csv"]                => ("/v1/vouchers/export.csv", "GET, HEAD"),
        ["v1", "vouchers", "import"]                    => ("/v1/vouchers/import", "POST"),
        ["v1", "vouchers", _]                           => ("/v1/vouchers/{id}", "GET, HEAD, PATCH, DELETE"),
        ["v1", "vouchers", _, "charges"]                => ("/v1/vouchers/{id}/charges", "GET, HEAD, POST"),
        ["v1", "vouchers", _, "barcode.svg"]            => ("/v1/vouchers/{id}/barcode.svg", "GET, HEAD"),
        ["v1", "vouchers", _, "qr.svg"]                 => ("/v1/vouchers/{id}/qr.svg", "GET, HEAD"),
        ["v1", "vouchers", _, "reservations"]           => ("/v1/vouchers/{id}/reservations", "GET, HEAD, POST"),
        ["v1", "vouchers", _, "reservations", _, "capture"] => ("/v1/vouchers/{id}/reservations/{rid}/capture", "POST"),
        ["v1", "vouchers", _, "reservations", _]        => ("/v1/vouchers/{id}/reservations/{rid}", "DELETE"),
        ["v1", "validate"]                              => ("/v1/validate", "POST"),
        ["v1", "stats"]                                 => ("/v1/stats", "GET, HEAD"),
        ["v1", "customers", _, "vouchers"]              => ("/v1/customers/{id}/vouchers", "GET, HEAD"),
        ["v1", "purchases", _, "vouchers"]              => ("/v1/purchases/{id}/vouchers", "GET, HEAD"),
        ["carecloud", "rest-api", "enterprise-interface", "v1.0", "customers", _, "vouchers"] => (CARECLOUD_ROUTES[0].1, "GET, HEAD"),
        ["carecloud", "rest-api", "enterprise-interface", "v1.0", "purchases", _, "vouchers"] => (CARECLOUD_ROUTES[1].1, "GET, HEAD"),
        ["pos", "v1", "vouchers"]                       => ("/pos/v1/vouchers", "GET, HEAD, POST"),
        ["pos", "v1", "vouchers", _]                    => ("/pos/v1/vouchers/{code}", "GET, HEAD, PUT, DELETE"),
        ["v1", "client-groups"]                         => ("/v1/client-groups", "GET, HEAD, POST"),
        ["v1", "clients"]                               => ("/v1/clients", "GET, HEAD, POST"),
        ["v1", "clients", _]                            => ("/v1/clients/{id}", "DELETE"),
        ["v1", "webhooks"]                              => ("/v1/webhooks", "GET, HEAD, POST"),
        ["v1", "webhooks", _]                           => ("/v1/webhooks/{id}", "GET, HEAD, DELETE"),
        ["v1", "webhooks", _, "deliveries"]             => ("/v1/webhooks/{id}/deliveries", "GET, HEAD"),
        ["v1", "webhook-events", _, "redeliver"]        => ("/v1/webhook-events/{event_id}/redeliver", "POST"),
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
                "/carecloud/rest-api/enterprise-interface/v1.0/purchases/P1/vouchers",
                "/carecloud/rest-api/enterprise-interface/v1.0/purchases/{purchase_id}/vouchers",
            ),
            ("/carecloud/v1/purchases/P1/vouchers", UNMATCHED),
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
        let all: Vec<(&str, &str)> = [ROUTES, CARECLOUD_ROUTES, POS_ROUTES].concat();
        let mut templates: Vec<&str> = all.iter().map(|(_, t)| *t).collect();
        templates.dedup();
        for template in templates {
            let mut listed: Vec<&str> = all
                .iter()
                .filter(|(_, t)| *t == template)
                .map(|(m, _)| *m)
                .collect();
            let (_, allow) = resource(&instantiate(template))
                .unwrap_or_else(|| panic!("{template} is not a known path"));
            let mut allowed: Vec<&str> = allow.split(", ").filter(|m| *m != "HEAD").collect();
            assert_eq!(
                allow.contains("GET"),
                allow.contains("HEAD"),
                "{template}: HEAD goes with GET"
            );
            listed.sort_unstable();
            allowed.sort_unstable();
            assert_eq!(listed, allowed, "{template}");
        }
    }

    #[test]
    fn the_openapi_documents_are_json() {
        for text in [NATIVE_DOCUMENT, CARECLOUD_DOCUMENT, POS_DOCUMENT] {
            let reply = document(text);
            let doc: serde_json::Value =
                serde_json::from_slice(reply.body_bytes().expect("bytes")).expect("valid JSON");
            assert_eq!(doc["openapi"], "3.1.0");
        }
    }
}
