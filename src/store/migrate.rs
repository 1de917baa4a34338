//! Schema set-up and numbered migrations, driven by `PRAGMA user_version`.
//!
//! Version 0 is an empty file: `schema.sql` is applied and the `admin` group seeded. Each later
//! step in [`MIGRATIONS`] runs in its own transaction and bumps the version by one.

use crate::auth::scope::ALL_SCOPES;
use crate::domain::{clock, code};
use rusqlite::{params, Connection, TransactionBehavior};

const SCHEMA: &str = include_str!("../../schema.sql");

/// Steps after the initial schema; step `i` takes the database from version `i + 1` to `i + 2`.
const MIGRATIONS: &[&str] = &[];

pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version == 0 {
        tx.execute_batch(SCHEMA)?;
        tx.execute(
            "INSERT INTO client_groups (id, name, scopes, created_at) VALUES (?1, 'admin', ?2, ?3)",
            params![code::new_id(), ALL_SCOPES.join(" "), clock::now()],
        )?;
        tx.pragma_update(None, "user_version", 1)?;
    }
    tx.commit()?;
    for (i, step) in MIGRATIONS.iter().enumerate() {
        let target = i as i64 + 2;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version < target {
            tx.execute_batch(step)?;
            tx.pragma_update(None, "user_version", target)?;
        }
        tx.commit()?;
    }
    Ok(())
}
