//! Access management for `admin` tokens: client groups and clients.

use super::fields::Fields;
use super::idempotency::{self, finish_write, finish_write_keeping};
use super::views::Page;
use super::Ctx;
use crate::auth::scope::{Scopes, ADMIN, ALL_SCOPES};
use crate::auth::secret;
use crate::domain::clock::format_rfc3339;
use crate::error::ApiError;
use crate::store::clients::{self, Client, Group};
use crate::web::response::Reply;
use serde_json::{json, Value};
use time::UtcOffset;

pub fn group_json(g: &Group) -> Value {
    json!({"id": g.id, "name": g.name, "scopes": g.scopes.names()})
}

pub fn client_json(c: &Client, offset: UtcOffset) -> Value {
    json!({
        "client_id": c.id,
        "name": c.name,
        "group": c.group_name,
        "group_id": c.group_id,
        "scopes": c.scopes.names(),
        "revoked": c.revoked_at.is_some(),
        "created_at": format_rfc3339(c.created_at, offset),
    })
}

/// The shape `client create` and `POST /v1/clients` answer with: the secret, shown once (a
/// replay of the POST has none).
pub fn new_client_json(c: &Client, secret: Option<&str>) -> Value {
    json!({"client_id": c.id, "client_secret": secret, "group": c.group_name, "scopes": c.scopes.names()})
}

/// Renders a whole small list in the native list shape (one page holding everything).
fn whole_list(ctx: &Ctx, items: Vec<Value>) -> Reply {
    let total = items.len() as u64;
    let page = Page {
        items,
        total,
        page: 1,
        per_page: total.max(1),
    };
    let path = format!("{}{}", ctx.base_url(), ctx.req.path);
    page.render(&path, &[])
}

pub fn list_groups(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    ctx.authorize(ADMIN)?;
    let groups = clients::list_groups(ctx.conn)?;
    Ok(whole_list(ctx, groups.iter().map(group_json).collect()))
}

/// Characters that reorder the text around them (bidi embeddings, overrides, isolates and
/// marks): a name holding one can show as something else than it is.
const BIDI_CONTROLS: &[char] = &[
    '\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}',
    '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
];

/// Checks a group's or client's name: 1–64 characters, no control or bidi characters.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.chars().count() > 64
        || name
            .chars()
            .any(|c| c.is_control() || BIDI_CONTROLS.contains(&c))
    {
        return Err(
            "must be 1 to 64 characters without control or bidirectional-text characters".into(),
        );
    }
    Ok(())
}

/// Checks a group name: as [`check_name`], and not shaped like an id, since a group is named
/// by its id or its name.
pub fn check_group_name(name: &str) -> Result<(), String> {
    check_name(name)?;
    if crate::domain::code::looks_like_id(name) {
        return Err("must not look like an id (16 characters of A-Z and 0-9)".into());
    }
    Ok(())
}

fn read_scopes(f: &mut Fields) -> Option<Scopes> {
    let names = f.texts("scopes", ALL_SCOPES.len(), 32).value()?;
    match Scopes::from_names(names.iter().map(String::as_str)) {
        Ok(scopes) => Some(scopes),
        Err(unknown) => {
            f.error("scopes", format!("unknown scope {unknown:?}"));
            None
        }
    }
}

/// `POST /v1/client-groups`; an `Idempotency-Key` replays the first answer.
pub fn create_group(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let token = ctx.authorize(ADMIN)?;
    let ctx = &*ctx;
    idempotency::run(ctx, &token, |key| {
        let mut f = Fields::new(ctx.json_body()?);
        let name = f.text("name", 64);
        let name = f.required("name", name);
        if let Some(Err(message)) = name.as_deref().map(check_group_name) {
            f.error("name", message);
        }
        let scopes = read_scopes(&mut f);
        let scopes = f.required(
            "scopes",
            scopes.map_or(super::fields::Given::Absent, super::fields::Given::Value),
        );
        f.finish()?;
        let (Some(name), Some(scopes)) = (name, scopes) else {
            return Err(ApiError::Internal(
                "group fields passed but incomplete".into(),
            ));
        };
        ctx.app.store.write(move |conn| {
            finish_write(
                conn,
                key.as_ref(),
                |c| Ok(clients::create_group(c, &name, scopes)?),
                |group| Reply::json(201, &group_json(&group)),
            )
        })
    })
}

pub fn list_clients(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    ctx.authorize(ADMIN)?;
    let offset = ctx.app.offset;
    let list = clients::list_clients(ctx.conn)?;
    Ok(whole_list(
        ctx,
        list.iter().map(|c| client_json(c, offset)).collect(),
    ))
}

/// `POST /v1/clients`; an `Idempotency-Key` replays the first answer, but with
/// `client_secret` null: the secret is shown once and only its hash is ever stored.
pub fn create_client(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let token = ctx.authorize(ADMIN)?;
    let ctx = &*ctx;
    idempotency::run(ctx, &token, |key| {
        let mut f = Fields::new(ctx.json_body()?);
        let name = f.text("name", 64);
        let name = f.required("name", name);
        if let Some(Err(message)) = name.as_deref().map(check_name) {
            f.error("name", message);
        }
        let group_ref = f.text("group", 64);
        let group_ref = f.required("group", group_ref);
        let scopes = read_scopes(&mut f);
        f.finish()?;
        let (Some(name), Some(group_ref)) = (name, group_ref) else {
            return Err(ApiError::Internal(
                "client fields passed but incomplete".into(),
            ));
        };
        let group = clients::find_group(ctx.conn, &group_ref)?
            .ok_or_else(|| ApiError::invalid("group", "no such group"))?;
        if let Some(s) = scopes {
            if !s.is_subset_of(group.scopes) {
                return Err(ApiError::invalid(
                    "scopes",
                    "must be a subset of the group's scopes",
                ));
            }
        }
        let secret = secret::generate_secret();
        let hash =
            secret::hash_secret(&secret).map_err(|e| ApiError::internal("hashing a secret", e))?;
        ctx.app.store.write(move |conn| {
            finish_write_keeping(
                conn,
                key.as_ref(),
                |c| Ok(clients::create_client(c, &name, &group, scopes, &hash)?),
                |client| {
                    let kept = new_client_json(&client, None);
                    (
                        Reply::json(201, &new_client_json(&client, Some(&secret))),
                        Some(Reply::json(201, &kept)),
                    )
                },
            )
        })
    })
}

pub fn revoke_client(ctx: &mut Ctx, id: &str) -> Result<Reply, ApiError> {
    ctx.authorize(ADMIN)?;
    let id = id.to_string();
    let revoked = ctx
        .app
        .store
        .write(move |conn| clients::revoke_client(conn, &id))?;
    if !revoked {
        return Err(ApiError::NotFound);
    }
    ctx.app.tokens.clear();
    Ok(Reply::no_content())
}
