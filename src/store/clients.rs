//! Client groups, clients, tokens and the auth epoch.

use crate::domain::scope::{Scopes, TokenHash, TokenInfo};
use crate::domain::{clock, code};
use crate::store::error::{Conflict, StoreError};
use crate::store::sql::{DbError, Row, ToArg};
use crate::store::Db;

#[derive(Clone, Debug)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub scopes: Scopes,
    pub created_at: i64,
}

#[derive(Clone, Debug)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub group_id: String,
    pub group_name: String,
    /// The scopes the client may ask for: its own subset, or its group's.
    pub scopes: Scopes,
    pub revoked_at: Option<i64>,
    pub created_at: i64,
}

/// What the token endpoint needs to check a login.
pub struct Login {
    pub secret_hash: String,
    pub group_id: String,
    pub scopes: Scopes,
}

fn scopes_column(row: &Row, idx: usize) -> Result<Scopes, DbError> {
    let text: String = row.get(idx)?;
    Scopes::parse(&text).map_err(|e| DbError::column(idx, &format!("unknown scope {e}")))
}

fn group_from_row(row: &Row) -> Result<Group, DbError> {
    Ok(Group {
        id: row.get(0)?,
        name: row.get(1)?,
        scopes: scopes_column(row, 2)?,
        created_at: row.get(3)?,
    })
}

pub fn create_group(conn: &Db, name: &str, scopes: Scopes) -> Result<Group, StoreError> {
    create_group_at(conn, name, scopes, clock::now())
}

/// [`create_group`] with the creation time given (the demo data's history lies in the past).
pub fn create_group_at(
    conn: &Db,
    name: &str,
    scopes: Scopes,
    created_at: i64,
) -> Result<Group, StoreError> {
    let group = Group {
        id: code::new_id(),
        name: name.to_string(),
        scopes,
        created_at,
    };
    // A name taken (also by another vouchd on the same PostgreSQL database meanwhile) inserts
    // nothing.
    let inserted = conn.execute(
        "INSERT INTO client_groups (id, name, scopes, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name) DO NOTHING",
        &[
            &group.id,
            &group.name,
            &scopes.to_space_list(),
            &group.created_at,
        ],
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict(Conflict::DuplicateGroupName(
            name.to_string(),
        )));
    }
    Ok(group)
}

pub fn list_groups(conn: &Db) -> Result<Vec<Group>, StoreError> {
    Ok(conn.query_map(
        "SELECT id, name, scopes, created_at FROM client_groups ORDER BY created_at, id",
        &[],
        group_from_row,
    )?)
}

/// A group by its id or its name: text shaped like an id is an id, anything else a name (a
/// name cannot look like an id, so neither can stand for another group).
pub fn find_group(conn: &Db, id_or_name: &str) -> Result<Option<Group>, StoreError> {
    let sql = if code::looks_like_id(id_or_name) {
        "SELECT id, name, scopes, created_at FROM client_groups WHERE id = ?1"
    } else {
        "SELECT id, name, scopes, created_at FROM client_groups WHERE name = ?1"
    };
    Ok(conn.query_opt(sql, &[&id_or_name], group_from_row)?)
}

const CLIENT_COLUMNS: &str =
    "c.id, c.name, c.group_id, g.name, COALESCE(c.scopes, g.scopes), c.revoked_at, c.created_at";

fn client_from_row(row: &Row) -> Result<Client, DbError> {
    Ok(Client {
        id: row.get(0)?,
        name: row.get(1)?,
        group_id: row.get(2)?,
        group_name: row.get(3)?,
        scopes: scopes_column(row, 4)?,
        revoked_at: row.get(5)?,
        created_at: row.get(6)?,
    })
}

/// Inserts a client whose secret was hashed by the caller; `scopes` must lie within the group's.
pub fn create_client(
    conn: &Db,
    name: &str,
    group: &Group,
    scopes: Option<Scopes>,
    secret_hash: &str,
) -> Result<Client, StoreError> {
    create_client_at(conn, name, group, scopes, secret_hash, clock::now())
}

/// [`create_client`] with the creation time given.
pub fn create_client_at(
    conn: &Db,
    name: &str,
    group: &Group,
    scopes: Option<Scopes>,
    secret_hash: &str,
    created_at: i64,
) -> Result<Client, StoreError> {
    let id = code::new_id();
    conn.execute(
        "INSERT INTO clients (id, name, group_id, scopes, secret_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        &[&id, &name, &group.id, &scopes.map(Scopes::to_space_list), &secret_hash, &created_at],
    )?;
    find_client(conn, &id)?.ok_or(StoreError::Bug("client vanished after insert"))
}

pub fn find_client(conn: &Db, id: &str) -> Result<Option<Client>, StoreError> {
    let sql = format!("SELECT {CLIENT_COLUMNS} FROM clients c JOIN client_groups g ON g.id = c.group_id WHERE c.id = ?1");
    Ok(conn.query_opt(&sql, &[&id], client_from_row)?)
}

pub fn list_clients(conn: &Db) -> Result<Vec<Client>, StoreError> {
    let sql = format!(
        "SELECT {CLIENT_COLUMNS} FROM clients c JOIN client_groups g ON g.id = c.group_id ORDER BY c.created_at, c.id"
    );
    Ok(conn.query_map(&sql, &[], client_from_row)?)
}

/// Inside a write: waits until no other write of vouchd's own set-up (the first admin client)
/// runs on the database, so that vouchd instances starting together on one PostgreSQL
/// database make one admin. SQLite's write transactions are one at a time already.
pub fn lock_setup(conn: &Db) -> Result<(), StoreError> {
    if conn.locks_rows() {
        conn.query_opt(
            "SELECT pg_advisory_xact_lock(hashtextextended('vouchd setup', 0))",
            &[],
            |_| Ok(()),
        )?;
    }
    Ok(())
}

pub fn count_clients(conn: &Db) -> Result<i64, StoreError> {
    Ok(conn.query_value("SELECT COUNT(*) FROM clients", &[])?)
}

/// Revokes a client: its tokens are deleted and the auth epoch moves so caches notice.
/// Returns false when there is no such live client.
pub fn revoke_client(conn: &Db, id: &str) -> Result<bool, StoreError> {
    let changed = conn.execute(
        "UPDATE clients SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        &[&id, &clock::now()],
    )?;
    if changed == 0 {
        return Ok(false);
    }
    conn.execute("DELETE FROM tokens WHERE client_id = ?1", &[&id])?;
    conn.execute(
        "UPDATE settings SET value = CAST(CAST(value AS BIGINT) + 1 AS TEXT) WHERE key = 'auth_epoch'",
        &[],
    )?;
    Ok(true)
}

pub fn auth_epoch(conn: &Db) -> Result<i64, StoreError> {
    let value: String =
        conn.query_value("SELECT value FROM settings WHERE key = 'auth_epoch'", &[])?;
    Ok(value.parse().unwrap_or(0))
}

pub fn find_login(conn: &Db, client_id: &str) -> Result<Option<Login>, StoreError> {
    Ok(conn.query_opt(
        "SELECT c.secret_hash, c.group_id, COALESCE(c.scopes, g.scopes) FROM clients c
         JOIN client_groups g ON g.id = c.group_id WHERE c.id = ?1 AND c.revoked_at IS NULL",
        &[&client_id],
        |row| {
            Ok(Login {
                secret_hash: row.get(0)?,
                group_id: row.get(1)?,
                scopes: scopes_column(row, 2)?,
            })
        },
    )?)
}

/// Live tokens a client may hold at once; a login beyond it ends the client's oldest token.
pub const MAX_LIVE_TOKENS: i64 = 100;

/// Stores a token if its client is still live, checked in the same transaction as the insert:
/// a revocation is ordered before it (the insert is refused) or after it (the row is deleted).
/// `None` when the client is revoked or gone; else the hashes of the client's oldest tokens
/// that the bound on live tokens ended, for the caller to drop from its cache.
pub fn insert_token(
    conn: &Db,
    hash: &TokenHash,
    info: &TokenInfo,
    client_type: Option<&str>,
) -> Result<Option<Vec<TokenHash>>, StoreError> {
    let now = clock::now();
    let args: [&dyn ToArg; 7] = [
        hash,
        &info.client_id,
        &info.scopes.to_space_list(),
        &client_type,
        &info.expires_at,
        &now,
        &info.dialect_scopes,
    ];
    let inserted = if conn.locks_rows() {
        // PostgreSQL: the client's row is locked while its token goes in, so a revocation
        // (which updates that row) comes wholly before (no row: refused) or after (and
        // deletes the token), and so do the client's other logins: each one's trim to
        // MAX_LIVE_TOKENS below sees the tokens of those before it (a shared lock let two
        // logins at once both keep one too many).
        let live = conn
            .query_opt(
                "SELECT 1 FROM clients WHERE id = ?1 AND revoked_at IS NULL FOR NO KEY UPDATE",
                &[&info.client_id],
                |_| Ok(()),
            )?
            .is_some();
        live && conn.execute(
            "INSERT INTO tokens (hash, client_id, scopes, client_type, expires_at, created_at,
                                 dialect_scopes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            &args,
        )? > 0
    } else {
        conn.execute(
            "INSERT INTO tokens (hash, client_id, scopes, client_type, expires_at, created_at,
                                 dialect_scopes)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
             WHERE EXISTS (SELECT 1 FROM clients WHERE id = ?2 AND revoked_at IS NULL)",
            &args,
        )? > 0
    };
    if !inserted {
        return Ok(None);
    }
    // Keep the table small: expired tokens go, a few at a time.
    conn.execute(
        "DELETE FROM tokens WHERE hash IN (SELECT hash FROM tokens WHERE expires_at <= ?1 LIMIT 64)",
        &[&now],
    )?;
    let blobs = conn.query_map(
        "DELETE FROM tokens WHERE hash IN (
             SELECT hash FROM tokens WHERE client_id = ?1
             ORDER BY expires_at DESC, created_at DESC LIMIT 9223372036854775807 OFFSET ?2)
         RETURNING hash",
        &[&info.client_id, &MAX_LIVE_TOKENS],
        |row| row.get::<Vec<u8>>(0),
    )?;
    let mut ended = Vec::new();
    for blob in blobs {
        if let Ok(hash) = TokenHash::try_from(blob.as_slice()) {
            ended.push(hash);
        }
    }
    Ok(Some(ended))
}

/// A live token of a live client.
pub fn find_token(conn: &Db, hash: &TokenHash, now: i64) -> Result<Option<TokenInfo>, StoreError> {
    Ok(conn.query_opt(
        "SELECT t.client_id, c.group_id, t.scopes, t.expires_at, t.dialect_scopes FROM tokens t JOIN clients c ON c.id = t.client_id
         WHERE t.hash = ?1 AND t.expires_at > ?2 AND c.revoked_at IS NULL",
        &[hash, &now],
        |row| {
            Ok(TokenInfo {
                client_id: row.get(0)?,
                group_id: row.get(1)?,
                scopes: scopes_column(row, 2)?,
                expires_at: row.get(3)?,
                dialect_scopes: row.get(4)?,
            })
        },
    )?)
}
