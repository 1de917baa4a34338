//! Bearer tokens: random, stored only as hashes, checked from an in-memory cache.
//!
//! A token is 32 random bytes (base64url); the database keeps its BLAKE2s-256 hash. Checks hit
//! the cache first, so the hot path has no SQL round trip. A watcher polls the `auth_epoch`
//! setting, which every revocation bumps (the CLI's too), and empties the cache when it moves,
//! so a revoked client's tokens die within [`WATCH_EVERY`].

use crate::store::{self, clients};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use blake2::{Blake2s256, Digest};
use rand::RngCore;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub const TOKEN_LIFETIME: i64 = 3600;
pub const WATCH_EVERY: Duration = Duration::from_millis(250);
const MAX_CACHED: usize = 100_000;

pub use crate::domain::scope::{TokenHash, TokenInfo};

pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn hash_token(token: &str) -> TokenHash {
    Blake2s256::digest(token.as_bytes()).into()
}

/// Tokens seen recently, emptied whenever a revocation is noticed.
///
/// Each emptying starts a new generation. A token read from the database (or just stored) is
/// cached only if no emptying happened since its caller took [`TokenCache::generation`] before
/// that read: a revocation committed after the read empties the cache after it, so the stale
/// entry must not land in the new generation.
#[derive(Default)]
pub struct TokenCache {
    tokens: RwLock<Generation>,
    stop: AtomicBool,
}

#[derive(Default)]
struct Generation {
    number: u64,
    tokens: HashMap<TokenHash, TokenInfo>,
}

impl TokenCache {
    pub fn get(&self, hash: &TokenHash) -> Option<TokenInfo> {
        self.tokens.read().ok()?.tokens.get(hash).cloned()
    }

    /// The current generation; take it before reading a token's row from the database.
    pub fn generation(&self) -> u64 {
        self.tokens.read().map_or(u64::MAX, |g| g.number)
    }

    /// Caches `info` unless the cache was emptied since `generation` was taken.
    pub fn insert(&self, generation: u64, hash: TokenHash, info: TokenInfo) {
        if let Ok(mut cache) = self.tokens.write() {
            if cache.number != generation {
                return;
            }
            if cache.tokens.len() >= MAX_CACHED {
                cache.tokens.clear();
            }
            cache.tokens.insert(hash, info);
        }
    }

    /// Forgets tokens whose rows were deleted (a client's oldest beyond its bound).
    pub fn forget(&self, hashes: &[TokenHash]) {
        if let Ok(mut cache) = self.tokens.write() {
            for hash in hashes {
                cache.tokens.remove(hash);
            }
        }
    }

    /// Empties the cache and starts a new generation (after a revocation).
    pub fn clear(&self) {
        if let Ok(mut cache) = self.tokens.write() {
            cache.number = cache.number.wrapping_add(1);
            cache.tokens.clear();
        }
    }

    pub fn stop_watching(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Starts the thread that empties the cache when `auth_epoch` moves in the database.
    pub fn watch(self: &Arc<Self>, store: &store::Store) -> std::io::Result<()> {
        let cache = Arc::clone(self);
        let conn = store.reader().map_err(std::io::Error::other)?;
        std::thread::Builder::new()
            .name("vouchd-auth-watch".into())
            .spawn(move || {
                let mut seen = clients::auth_epoch(&conn).ok();
                while !cache.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(WATCH_EVERY);
                    let now = clients::auth_epoch(&conn).ok();
                    if now != seen {
                        cache.clear();
                        seen = now;
                    }
                }
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::scope::Scopes;

    fn info() -> TokenInfo {
        TokenInfo {
            client_id: "C".into(),
            group_id: "G".into(),
            scopes: Scopes::all(),
            expires_at: i64::MAX,
            dialect_scopes: None,
        }
    }

    #[test]
    fn a_token_read_before_an_emptying_is_not_cached_after_it() {
        let cache = TokenCache::default();
        let before = cache.generation();
        cache.clear();
        cache.insert(before, [1; 32], info());
        assert!(cache.get(&[1; 32]).is_none());
        cache.insert(cache.generation(), [2; 32], info());
        assert!(cache.get(&[2; 32]).is_some());
        cache.forget(&[[2; 32]]);
        assert!(cache.get(&[2; 32]).is_none());
    }
}
