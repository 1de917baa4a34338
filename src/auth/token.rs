//! Bearer tokens: random, stored only as hashes, checked from an in-memory cache.
//!
//! A token is 32 random bytes (base64url); the database keeps its BLAKE2s-256 hash. Checks hit
//! the cache first, so the hot path has no SQL round trip. A watcher polls the `auth_epoch`
//! setting, which every revocation bumps (the CLI's too), and empties the cache when it moves,
//! so a revoked client's tokens die within [`WATCH_EVERY`].

use super::scope::{Scopes, ADMIN};
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

pub type TokenHash = [u8; 32];

/// Who a valid token speaks for.
#[derive(Clone, Debug)]
pub struct TokenInfo {
    pub client_id: String,
    pub group_id: String,
    pub scopes: Scopes,
    pub expires_at: i64,
    /// A dialect's own scope names granted with the token (the JTL dialect's), space-separated.
    pub dialect_scopes: Option<String>,
}

impl TokenInfo {
    pub fn is_admin(&self) -> bool {
        self.scopes.contains(ADMIN)
    }
}

pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn hash_token(token: &str) -> TokenHash {
    Blake2s256::digest(token.as_bytes()).into()
}

/// Tokens seen recently, emptied whenever a revocation is noticed.
#[derive(Default)]
pub struct TokenCache {
    tokens: RwLock<HashMap<TokenHash, TokenInfo>>,
    stop: AtomicBool,
}

impl TokenCache {
    pub fn get(&self, hash: &TokenHash) -> Option<TokenInfo> {
        self.tokens.read().ok()?.get(hash).cloned()
    }

    pub fn insert(&self, hash: TokenHash, info: TokenInfo) {
        if let Ok(mut tokens) = self.tokens.write() {
            if tokens.len() >= MAX_CACHED {
                tokens.clear();
            }
            tokens.insert(hash, info);
        }
    }

    pub fn clear(&self) {
        if let Ok(mut tokens) = self.tokens.write() {
            tokens.clear();
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
