//! The API: per-dialect handlers that parse their input, call the store, and render their
//! shapes. `Ctx` carries what every handler needs for one request.

pub(crate) mod admin;
pub mod carecloud;
pub(crate) mod export;
pub(crate) mod fields;
pub(crate) mod idempotency;
pub(crate) mod import;
pub(crate) mod json;
pub mod jtl;
pub(crate) mod ledger;
pub(crate) mod native;
pub(crate) mod oauth;
pub(crate) mod pos;
pub(crate) mod stats;
pub(crate) mod symbols;
pub(crate) mod views;
pub(crate) mod webhooks;

use crate::app::App;
use crate::auth::rate::Quota;
use crate::auth::token::{hash_token, TokenInfo};
use crate::domain::clock;
use crate::domain::voucher::Tenant;
use crate::error::ApiError;
use crate::store::{clients, Db};
use crate::web::request::Request;
use serde_json::{Map, Value};
use std::cell::Cell;
use std::time::Instant;

pub struct Ctx<'a> {
    pub app: &'a App,
    pub conn: &'a Db,
    pub req: &'a Request,
    /// The client's rate-limit bucket after this request took from it (for the headers).
    pub quota: Cell<Option<Quota>>,
    /// The client this request proved to be (a valid token, or a login), for the access log.
    pub client_id: Cell<Option<String>>,
}

impl<'a> Ctx<'a> {
    pub fn new(app: &'a App, conn: &'a Db, req: &'a Request) -> Ctx<'a> {
        Ctx {
            app,
            conn,
            req,
            quota: Cell::new(None),
            client_id: Cell::new(None),
        }
    }

    /// Checks the bearer token and that it holds `scope`. A token issued by a dialect's own
    /// token endpoint (JTL's) works on that dialect only: its scope split would mean nothing
    /// if the vouchd scopes behind it opened the native, POS and CareCloud routes.
    pub fn authorize(&self, scope: &'static str) -> Result<TokenInfo, ApiError> {
        let info = self.authenticate()?;
        if info.dialect_scopes.is_some() || !info.scopes.contains(scope) {
            return Err(ApiError::InsufficientScope(scope));
        }
        Ok(info)
    }

    /// Checks the bearer token (and takes from the client's rate limit), whatever its scopes.
    pub fn authenticate(&self) -> Result<TokenInfo, ApiError> {
        let header = self
            .req
            .header("authorization")
            .ok_or(ApiError::Unauthenticated)?;
        let (kind, token) = header
            .trim()
            .split_once(' ')
            .ok_or(ApiError::InvalidToken)?;
        if !kind.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::Unauthenticated);
        }
        let token = token.trim();
        let hash = hash_token(token);
        let now = clock::now();
        let info = match self.app.tokens.get(&hash) {
            Some(info) => info,
            None => {
                let generation = self.app.tokens.generation();
                let info =
                    clients::find_token(self.conn, &hash, now)?.ok_or(ApiError::InvalidToken)?;
                self.app.tokens.insert(generation, hash, info.clone());
                info
            }
        };
        if info.expires_at <= now {
            return Err(ApiError::InvalidToken);
        }
        if !self.app.rate.is_off() && self.quota.get().is_none() {
            let quota = self
                .app
                .rate
                .take(&info.client_id, Instant::now())
                .map_err(ApiError::TooManyRequests)?;
            self.quota.set(Some(quota));
        }
        self.client_id.set(Some(info.client_id.clone()));
        Ok(info)
    }

    /// The JSON object body; 415 for another content type, 400 for malformed JSON or a key
    /// given twice ([`json::parse_object`], the one reader of every route's JSON body).
    pub fn json_body(&self) -> Result<Map<String, Value>, ApiError> {
        if self.req.media_type() != "application/json" {
            return Err(ApiError::UnsupportedMediaType("application/json"));
        }
        if self.req.body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::Malformed(
                "The body is empty; a JSON object is expected.".into(),
            ));
        }
        json::parse_object(&self.req.body)
    }

    /// One page of a list query in the native list shape, links pointing back at this route.
    pub fn page_reply<T: serde::Serialize>(
        &self,
        items: Vec<T>,
        total: u64,
        query: &crate::domain::query::ListQuery,
    ) -> crate::web::response::Reply {
        let page = views::Page {
            items,
            total,
            page: query.page,
            per_page: query.per_page,
        };
        page.render(
            &format!("{}{}", self.base_url(), self.req.path),
            &self.req.query,
        )
    }

    /// The base of absolute links: `--public-url` when given, else `http://` and the `Host`
    /// the client addressed us by (checked to be an authority by the router).
    pub fn base_url(&self) -> String {
        if let Some(url) = &self.app.public_url {
            return url.clone();
        }
        let host = self.req.header("host").unwrap_or("localhost");
        format!("http://{host}")
    }
}

/// Which vouchers a token may see: all of them for `admin`, else its group's.
pub fn tenant_of(token: &TokenInfo) -> Tenant {
    if token.is_admin() {
        Tenant::All
    } else {
        Tenant::Group(token.group_id.clone())
    }
}
