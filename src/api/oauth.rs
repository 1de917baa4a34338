//! `POST /oauth/token`: the OAuth 2.0 client credentials grant (RFC 6749 §4.4).
//!
//! Errors here are RFC 6749 §5.2 JSON (`{"error", "error_description"}`), not problem+json,
//! because OAuth client libraries parse that shape. Repeated failures for one client or from
//! one address are answered 429 with `Retry-After` until the window passes.

use super::Ctx;
use crate::auth::scope::Scopes;
use crate::auth::secret;
use crate::auth::token::{hash_token, new_token, TokenInfo, TOKEN_LIFETIME};
use crate::domain::clock;
use crate::domain::code::ID_LEN;
use crate::error::ApiError;
use crate::store::clients;
use crate::web::request::{decode_pairs, percent_decode};
use crate::web::response::Reply;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::json;

const MAX_CLIENT_TYPE: usize = 32;

/// An RFC 6749 error reply.
fn oauth_error(status: u16, error: &str, description: &str) -> Reply {
    let reply = Reply::json(
        status,
        &json!({"error": error, "error_description": description}),
    )
    .with_header("Cache-Control", "no-store")
    .with_header("Pragma", "no-cache");
    if status == 401 {
        reply.with_header("WWW-Authenticate", "Basic realm=\"vouchd\"")
    } else {
        reply
    }
}

fn invalid_request(description: &str) -> Reply {
    oauth_error(400, "invalid_request", description)
}

/// Credentials from an HTTP Basic header: both parts are form-encoded (RFC 6749 §2.3.1).
fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((percent_decode(id, true)?, percent_decode(secret, true)?))
}

pub fn token(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    Ok(issue(ctx, &native_grant).unwrap_or_else(|reply| reply))
}

/// What a token is granted: vouchd's scopes, a dialect's own scope names, and the `scope`
/// the answer reports.
pub struct Grant {
    pub scopes: Scopes,
    pub dialect_scopes: Option<String>,
    pub scope: String,
}

/// Decides the grant from the `scope` asked for and the client's scopes; `None`: the scope is
/// unknown or beyond the client's (`invalid_scope`).
pub type GrantRule = dyn Fn(Option<&str>, Scopes) -> Option<Grant>;

/// The native grant: a subset of vouchd's scopes, all of the client's by default.
fn native_grant(asked: Option<&str>, client: Scopes) -> Option<Grant> {
    let scopes = match asked {
        Some(list) => match Scopes::parse(list) {
            Ok(asked) if !asked.is_empty() && asked.is_subset_of(client) => asked,
            _ => return None,
        },
        None => client,
    };
    Some(Grant {
        scopes,
        dialect_scopes: None,
        scope: scopes.to_space_list(),
    })
}

/// The token endpoint with a dialect's own rule for scopes (the same credentials, throttles
/// and token store as `POST /oauth/token`).
pub fn token_with(ctx: &Ctx, rule: &GrantRule) -> Reply {
    issue(ctx, rule).unwrap_or_else(|reply| reply)
}

fn issue(ctx: &Ctx, rule: &GrantRule) -> Result<Reply, Reply> {
    let req = ctx.req;
    if req.media_type() != "application/x-www-form-urlencoded" {
        return Err(invalid_request(
            "The body must be application/x-www-form-urlencoded.",
        ));
    }
    let body =
        std::str::from_utf8(&req.body).map_err(|_| invalid_request("The body is not UTF-8."))?;
    let form = decode_pairs(body)
        .ok_or_else(|| invalid_request("The body is not valid form encoding."))?;
    let mut names: Vec<&str> = form.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err(invalid_request("A parameter was given more than once."));
    }
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    match field("grant_type") {
        None => return Err(invalid_request("grant_type is required.")),
        Some("client_credentials") => {}
        Some(_) => {
            return Err(oauth_error(
                400,
                "unsupported_grant_type",
                "Only client_credentials is supported.",
            ))
        }
    }
    let client_type = field("client_type");
    if client_type.is_some_and(|t| t.chars().count() > MAX_CLIENT_TYPE) {
        return Err(invalid_request("client_type is at most 32 characters."));
    }
    if client_type.is_some_and(|t| t.contains('\0')) {
        return Err(invalid_request(
            "client_type must not hold a NUL character.",
        ));
    }
    let from_header = req
        .header("authorization")
        .map(|h| basic_credentials(h).ok_or(()));
    let from_body = match (field("client_id"), field("client_secret")) {
        (Some(id), Some(secret)) => Some((id.to_string(), secret.to_string())),
        (None, None) => None,
        _ => return Err(invalid_request("client_id and client_secret go together.")),
    };
    let (client_id, client_secret) = match (from_header, from_body) {
        (Some(_), Some(_)) => {
            return Err(invalid_request(
                "Credentials were given both in the header and the body.",
            ))
        }
        (Some(Err(())), None) => {
            return Err(oauth_error(
                401,
                "invalid_client",
                "The Authorization header is not valid Basic credentials.",
            ))
        }
        (Some(Ok(creds)), None) | (None, Some(creds)) => creds,
        (None, None) => {
            return Err(oauth_error(
                401,
                "invalid_client",
                "Client credentials are required.",
            ))
        }
    };
    // Every client id is 16 characters: a longer one is refused before it becomes a key of
    // the throttle, whose memory would otherwise grow with whatever a stranger sends. None
    // holds a NUL, which PostgreSQL's text cannot take.
    if client_id.len() > ID_LEN || client_id.contains('\0') {
        return Err(oauth_error(
            401,
            "invalid_client",
            "Unknown client or wrong secret.",
        ));
    }
    // Each attempt is counted before its secret is checked, so parallel logins get no more
    // checks than the limit. Attempts count per address and per (client, address): strangers
    // who lock a client out lock it out only from their own address.
    let throttle = &ctx.app.logins;
    let (addr_key, pair_key) = (
        format!("addr:{}", req.remote),
        format!("client:{client_id}@{}", req.remote),
    );
    let counted = throttle.attempt(&addr_key).and_then(|()| {
        throttle
            .attempt(&pair_key)
            .inspect_err(|_| throttle.refund(&addr_key))
    });
    if let Err(wait) = counted {
        return Err(
            oauth_error(429, "slow_down", "Too many failed logins; retry later.")
                .with_header("Retry-After", wait.to_string()),
        );
    }
    let login =
        clients::find_login(ctx.conn, &client_id).map_err(|e| ApiError::from(e).to_reply())?;
    let stored_hash = login
        .as_ref()
        .map_or(secret::decoy_hash(), |l| l.secret_hash.as_str());
    let verified = secret::verify_secret(&client_secret, stored_hash);
    let Some(login) = login.filter(|_| matches!(verified, Ok(true))) else {
        return Err(match verified {
            // No check was made (every slot busy): the attempt does not count.
            Err(e) => {
                throttle.refund(&addr_key);
                throttle.refund(&pair_key);
                e.to_reply()
            }
            Ok(_) => oauth_error(401, "invalid_client", "Unknown client or wrong secret."),
        });
    };
    throttle.succeed(&pair_key);
    throttle.refund(&addr_key);
    let Some(grant) = rule(field("scope"), login.scopes) else {
        return Err(oauth_error(
            400,
            "invalid_scope",
            "The scope is unknown or beyond the client's.",
        ));
    };
    let token = new_token();
    let hash = hash_token(&token);
    let info = TokenInfo {
        client_id,
        group_id: login.group_id,
        scopes: grant.scopes,
        expires_at: clock::now() + TOKEN_LIFETIME,
        dialect_scopes: grant.dialect_scopes,
    };
    let (stored_info, client_type) = (info.clone(), client_type.map(str::to_string));
    // Taken before the insert checks that the client is live: a revocation after that check
    // empties the cache after it too, and then this token is not cached.
    let generation = ctx.app.tokens.generation();
    let stored = ctx
        .app
        .store
        .write(move |conn| clients::insert_token(conn, &hash, &stored_info, client_type.as_deref()))
        .map_err(|e| ApiError::from(e).to_reply())?;
    let Some(ended) = stored else {
        return Err(oauth_error(
            401,
            "invalid_client",
            "Unknown client or wrong secret.",
        ));
    };
    ctx.app.tokens.forget(&ended);
    ctx.client_id.set(Some(info.client_id.clone()));
    ctx.app.tokens.insert(generation, hash, info);
    Ok(Reply::json(
        200,
        &json!({"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME, "scope": grant.scope}),
    )
    .with_header("Cache-Control", "no-store")
    .with_header("Pragma", "no-cache"))
}
