//! JTL's token endpoint and `POST /clients/connect`, which swaps a one-time connection PIN
//! (made by `vouchd client connect-pin`) for a new client's id and secret.

use super::error::JtlError;
use super::scopes;
use super::wire::Body;
use crate::api::oauth;
use crate::api::Ctx;
use crate::auth::secret;
use crate::auth::token::hash_token;
use crate::domain::clock::{self, format_rfc3339};
use crate::domain::code::CodeShape;
use crate::error::ApiError;
use crate::http::response::Reply;
use crate::store::{clients, pins};
use serde_json::json;

/// How long a connection PIN may be redeemed, as JTL's admin UI shows it: 30 minutes.
pub const PIN_LIFETIME: i64 = 30 * 60;
/// Characters of a connection PIN, from the code alphabet (no look-alikes): ~50 bits.
const PIN_LENGTH: usize = 10;

/// `POST /jtl/oauth/token`: client credentials, JTL's scope names.
pub fn token(ctx: &Ctx) -> Reply {
    oauth::token_with(ctx, &scopes::grant)
}

/// The hash a connection PIN is kept and found by: typed in upper or lower case, with or
/// without spaces and dashes.
fn pin_hash(pin: &str) -> [u8; 32] {
    let normal: String = pin
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect();
    hash_token(&normal)
}

/// Makes a connection PIN for a new client named `name` in `group` (an id or name), valid for
/// [`PIN_LIFETIME`]: `(pin, group id, expires_at)`. Only the PIN's hash is stored.
pub fn make_connect_pin(
    conn: &crate::store::Db,
    group: &str,
    name: &str,
) -> Result<(String, String, i64), String> {
    let group = clients::find_group(conn, group)
        .map_err(|e| sentence(e.into()))?
        .ok_or(format!("no group {group:?}"))?;
    // Two halves: a code is at most eight characters.
    let half = CodeShape::new(None, Some(PIN_LENGTH / 2)).map_err(|(_, m)| m)?;
    let mut rng = rand::rngs::OsRng;
    let pin = format!(
        "{}{}",
        half.generate(&mut rng).as_str(),
        half.generate(&mut rng).as_str()
    );
    let now = clock::now();
    let expires_at = now + PIN_LIFETIME;
    pins::insert_connect_pin(conn, &pin_hash(&pin), &group.id, name, expires_at, now)
        .map_err(|e| sentence(e.into()))?;
    Ok((pin, group.id, expires_at))
}

/// What a person reads of an error: the cause an operator needs, or the client's sentence.
fn sentence(err: ApiError) -> String {
    err.log_message()
        .map_or_else(|| err.detail(), str::to_string)
}

/// `POST /jtl/v1/clients/connect`: no token; the PIN is the credential, used once.
pub fn connect(ctx: &Ctx) -> Result<Reply, JtlError> {
    let addr = format!("addr:{}", ctx.req.remote);
    if let Some(wait) = ctx.app.logins.blocked(&addr) {
        return Err(JtlError::from_api(
            ApiError::TooManyRequests(wait),
            "CLIENT",
        ));
    }
    let mut b = Body::read(ctx, "CLIENT.CONNECT")?;
    let pin = b.string("pin", 255, true);
    b.finish()?;
    let pin = pin.ok_or_else(|| JtlError::from_api(ApiError::internal("connect", "no pin"), ""))?;
    let hash = pin_hash(&pin);
    let client_secret = secret::generate_secret();
    let secret_hash = secret::hash_secret(&client_secret)
        .map_err(|e| JtlError::from_api(ApiError::internal("hash a secret", e), ""))?;
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
        ctx.app.logins.fail(&addr);
        return Err(JtlError::rule(
            "CLIENT.CONNECT.PIN.INVALID",
            "The pin is unknown, used or expired.",
        ));
    };
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
