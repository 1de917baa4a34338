//! The route table: one match over method and path segments.

use super::request::{Method, Request};
use super::response::Reply;
use crate::api::{admin, carecloud, export, import, ledger, native, pos, stats, symbols, Ctx};
use crate::app::App;
use crate::auth::oauth;
use crate::error::ApiError;
use crate::ui;
use serde_json::json;

pub fn route(app: &App, conn: &rusqlite::Connection, req: &Request) -> Result<Reply, ApiError> {
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
        _ => Err(match allowed(&segs) {
            Some(allow) => ApiError::MethodNotAllowed(allow),
            None => ApiError::NotFound,
        }),
    };
    reply
}

/// The methods a known path takes, for 405's `Allow`.
#[rustfmt::skip]
fn allowed(segs: &[&str]) -> Option<&'static str> {
    Some(match segs {
        [] | ["ui", _]                                  => "GET",
        ["healthz"]                                     => "GET",
        ["oauth", "token"]                              => "POST",
        ["v1", "vouchers"]                              => "GET, POST",
        ["v1", "vouchers", "batch"]                     => "POST",
        ["v1", "vouchers", "export.csv"]                => "GET",
        ["v1", "vouchers", "import"]                    => "POST",
        ["v1", "vouchers", _]                           => "GET, PATCH, DELETE",
        ["v1", "vouchers", _, "charges"]                => "GET, POST",
        ["v1", "vouchers", _, "barcode.svg" | "qr.svg"] => "GET",
        ["v1", "vouchers", _, "reservations"]           => "GET, POST",
        ["v1", "vouchers", _, "reservations", _, "capture"] => "POST",
        ["v1", "vouchers", _, "reservations", _]        => "DELETE",
        ["v1", "validate"]                              => "POST",
        ["v1", "stats"]                                 => "GET",
        ["v1", "customers" | "purchases", _, "vouchers"] => "GET",
        ["carecloud", "v1", "customers" | "purchases", _, "vouchers"] => "GET",
        ["pos", "v1", "vouchers"]                       => "GET, POST",
        ["pos", "v1", "vouchers", _]                    => "GET, PUT, DELETE",
        ["v1", "client-groups"] | ["v1", "clients"]     => "GET, POST",
        ["v1", "clients", _]                            => "DELETE",
        _ => return None,
    })
}
