//! Access management for `admin` tokens: client groups and clients.

use super::fields::Fields;
use super::views::Page;
use super::Ctx;
use crate::auth::scope::{Scopes, ADMIN};
use crate::auth::secret;
use crate::domain::clock::format_rfc3339;
use crate::error::ApiError;
use crate::http::response::Reply;
use crate::store::clients::{self, Client, Group};
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

/// The shape `client create` and `POST /v1/clients` answer with: the secret, shown once.
pub fn new_client_json(c: &Client, secret: &str) -> Value {
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

/// Checks a group name: 1–64 characters, no control characters.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err("must be 1 to 64 characters without control characters".into());
    }
    Ok(())
}

fn read_scopes(f: &mut Fields) -> Option<Scopes> {
    let names = f.texts("scopes", 5, 32).value()?;
    match Scopes::from_names(names.iter().map(String::as_str)) {
        Ok(scopes) => Some(scopes),
        Err(unknown) => {
            f.error("scopes", format!("unknown scope {unknown:?}"));
            None
        }
    }
}

pub fn create_group(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    ctx.authorize(ADMIN)?;
    let mut f = Fields::new(ctx.json_body()?);
    let name = f.text("name", 64);
    let name = f.required("name", name);
    if let Some(Err(message)) = name.as_deref().map(check_name) {
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
    let group = ctx
        .app
        .store
        .write(move |conn| clients::create_group(conn, &name, scopes))?;
    Ok(Reply::json(201, &group_json(&group)))
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

pub fn create_client(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    ctx.authorize(ADMIN)?;
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
    let client = ctx
        .app
        .store
        .write(move |conn| clients::create_client(conn, &name, &group, scopes, &hash))?;
    Ok(Reply::json(201, &new_client_json(&client, &secret)))
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
