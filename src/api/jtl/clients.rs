//! JTL's token endpoint and `POST /clients/connect`, which swaps a one-time connection PIN
//! (made by `vouchd client connect-pin`) for a new client's id and secret.

use super::error::JtlError;
use super::scopes;
use super::wire::Body;
use crate::api::oauth;
use crate::api::Ctx;
use crate::auth::connect_pin::pin_hash;
use crate::auth::secret;
use crate::domain::clock::{self, format_rfc3339};
use crate::error::ApiError;
use crate::store::{clients, pins};
use crate::web::response::Reply;
use serde_json::json;

/// `POST /jtl/oauth/token`: client credentials, JTL's scope names.
pub fn token(ctx: &Ctx) -> Reply {
    oauth::token_with(ctx, &scopes::grant)
}

/// `POST /jtl/v1/clients/connect`: no token; the PIN is the credential, used once. The
/// attempt is counted before any work, and a secret is hashed only for a PIN that is live.
pub fn connect(ctx: &Ctx) -> Result<Reply, JtlError> {
    let addr = format!("addr:{}", ctx.req.remote);
    if let Err(wait) = ctx.app.logins.attempt(&addr) {
        return Err(JtlError::from_api(
            ApiError::TooManyRequests(wait),
            "CLIENT",
        ));
    }
    let invalid = || {
        JtlError::rule(
            "CLIENT.CONNECT.PIN.INVALID",
            "The pin is unknown, used or expired.",
        )
    };
    let mut b = Body::read(ctx, "CLIENT.CONNECT")?;
    let pin = b.string("pin", 255, true);
    b.finish()?;
    let pin = pin.ok_or_else(|| JtlError::from_api(ApiError::internal("connect", "no pin"), ""))?;
    let hash = pin_hash(&pin);
    if !pins::connect_pin_live(ctx.conn, &hash, clock::now())? {
        return Err(invalid());
    }
    let client_secret = secret::generate_secret();
    let secret_hash = secret::hash_secret_capped(&client_secret).inspect_err(|_| {
        // No PIN was tried (every slot busy): the attempt does not count.
        ctx.app.logins.refund(&addr);
    })?;
    let now = clock::now();
    let made = ctx.app.store.write(move |conn| -> Result<_, ApiError> {
        let Some((group_id, name)) = pins::redeem_connect_pin(conn, &hash, now)? else {
            return Ok(None);
        };
        let group = clients::find_group(conn, &group_id)?.ok_or(ApiError::NotFound)?;
        let client = clients::create_client(conn, &name, &group, None, &secret_hash)?;
        Ok(Some(client))
    })?;
    let Some(client) = made else {
        return Err(invalid());
    };
    ctx.app.logins.refund(&addr);
    let offset = ctx.app.offset;
    let at = format_rfc3339(client.created_at, offset);
    let allowed = scopes::allowed_by(client.scopes);
    let legacy: Vec<&str> = [("use", "can_use"), ("manage", "can_manage")]
        .into_iter()
        .filter(|(jtl, _)| allowed.contains(jtl))
        .map(|(_, legacy)| legacy)
        .collect();
    Ok(Reply::json(
        200,
        &json!({
            "id": client.id,
            "client_group_id": client.group_id,
            "name": client.name,
            "secret": client_secret,
            "scopes": legacy,
            "created_at": at,
            "updated_at": at,
            "connected_at": format_rfc3339(now, offset),
            "type": "pos",
        }),
    ))
}
