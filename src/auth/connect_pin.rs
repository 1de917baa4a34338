//! Connection PINs (JTL's way to hand a till its credentials): made by
//! `vouchd client connect-pin`, swapped once for a new client by `POST /jtl/v1/clients/connect`.
//! Only a PIN's hash is stored.

use crate::auth::token::hash_token;
use crate::domain::clock;
use crate::domain::code::CodeShape;
use crate::error::ApiError;
use crate::store::{clients, pins, Db};

/// How long a connection PIN may be redeemed, as JTL's admin UI shows it: 30 minutes.
pub const PIN_LIFETIME: i64 = 30 * 60;
/// Characters of a connection PIN, from the code alphabet (no look-alikes): ~50 bits.
const PIN_LENGTH: usize = 10;

/// The hash a connection PIN is kept and found by: typed in upper or lower case, with or
/// without spaces and dashes (ASCII case only, as codes are read).
pub fn pin_hash(pin: &str) -> [u8; 32] {
    let normal: String = pin
        .chars()
        .filter(|c| *c != ' ' && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    hash_token(&normal)
}

/// Makes a connection PIN for a new client named `name` in `group` (an id or name), valid for
/// [`PIN_LIFETIME`]: `(pin, group id, expires_at)`. Only the PIN's hash is stored.
pub fn make_connect_pin(
    conn: &Db,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_is_found_whatever_its_ascii_case_spaces_and_dashes_and_by_ascii_case_only() {
        assert_eq!(pin_hash("ab-cd ef2345"), pin_hash("ABCDEF2345"));
        assert_ne!(
            pin_hash("\u{df}"),
            pin_hash("SS"),
            "no Unicode case mapping"
        );
        assert_ne!(pin_hash("\u{fb01}"), pin_hash("FI"));
    }
}
