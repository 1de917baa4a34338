//! Client secrets: generated at random, stored only as argon2id hashes, verified under a cap.
//!
//! Argon2id with OWASP's parameters (19 MiB, t=2, p=1) costs memory per verification, so at
//! most [`MAX_CONCURRENT`] run at once; others wait briefly, then get a 503.

use crate::error::ApiError;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

pub const MAX_CONCURRENT: usize = 2;
const WAIT: Duration = Duration::from_secs(5);

static SLOTS: Mutex<usize> = Mutex::new(0);
static FREED: Condvar = Condvar::new();

fn argon2() -> Argon2<'static> {
    // OWASP's minimum for argon2id: m = 19 456 KiB, t = 2, p = 1.
    let params = Params::new(19_456, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A fresh random secret (256 bits, base64url).
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn hash_secret(secret: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// [`hash_secret`] under the same cap as verification, for routes a stranger can call.
pub fn hash_secret_capped(secret: &str) -> Result<String, ApiError> {
    // Tens of milliseconds of one core: a request's turn is not held for that long.
    crate::pace::waiting(|| {
        let _slot = Slot::acquire()?;
        hash_secret(secret).map_err(|e| ApiError::internal("hash a secret", e))
    })
}

/// Verifies `secret` against a stored hash, waiting for one of the few verification slots.
pub fn verify_secret(secret: &str, stored: &str) -> Result<bool, ApiError> {
    crate::pace::waiting(|| {
        let _slot = Slot::acquire()?;
        let Ok(hash) = PasswordHash::new(stored) else {
            return Ok(false);
        };
        Ok(argon2().verify_password(secret.as_bytes(), &hash).is_ok())
    })
}

/// Whether `text` is an argon2id hash as [`hash_secret`] writes it (a PHC string), e.g. a
/// voucher PIN's carried through a CSV export.
pub fn is_secret_hash(text: &str) -> bool {
    PasswordHash::new(text).is_ok_and(|h| h.algorithm.as_str() == "argon2id")
}

/// A hash of a random secret, verified against when the client is unknown so that an unknown
/// client id costs as much time as a wrong secret.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_secret(&generate_secret()).unwrap_or_default())
}

struct Slot;

impl Slot {
    fn acquire() -> Result<Slot, ApiError> {
        let busy = SLOTS.lock().map_err(|_| ApiError::Unavailable(1))?;
        let (mut busy, timeout) = FREED
            .wait_timeout_while(busy, WAIT, |n| *n >= MAX_CONCURRENT)
            .map_err(|_| ApiError::Unavailable(1))?;
        if timeout.timed_out() && *busy >= MAX_CONCURRENT {
            return Err(ApiError::Unavailable(1));
        }
        *busy += 1;
        Ok(Slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut busy) = SLOTS.lock() {
            *busy = busy.saturating_sub(1);
        }
        FREED.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_verify_only_against_their_own_hash() {
        let secret = generate_secret();
        let hash = hash_secret(&secret).expect("hashes");
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_secret(&secret, &hash).expect("slot"));
        assert!(!verify_secret("wrong", &hash).expect("slot"));
        assert!(!verify_secret(&secret, "not a hash").expect("slot"));
    }
}
