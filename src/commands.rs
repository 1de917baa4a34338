//! What each CLI command does, printing JSON on stdout and messages on stderr.

use crate::api::admin::{check_name, client_json, group_json, new_client_json};
use crate::auth::scope::Scopes;
use crate::auth::secret;
use crate::cli::{Command, ServeConfig, USAGE};
use crate::domain::clock;
use crate::store::clients::Client;
use crate::store::{self, clients, vouchers};
use std::net::TcpListener;
use std::path::Path;
use std::time::Instant;
use time::UtcOffset;

pub fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Help => {
            println!("{USAGE}");
            Ok(())
        }
        Command::Serve(config) => serve(&config),
        Command::GroupCreate { db, name, scopes } => {
            check_name(&name).map_err(|e| format!("group name {e}"))?;
            let scopes = Scopes::parse(&scopes).map_err(|s| format!("unknown scope {s:?}"))?;
            let conn = store::open_direct(&db)?;
            let group =
                clients::create_group(&conn, &name, scopes).map_err(|e| format!("{e:?}"))?;
            println!("{}", group_json(&group));
            Ok(())
        }
        Command::ClientCreate {
            db,
            name,
            group,
            scopes,
        } => {
            check_name(&name).map_err(|e| format!("client name {e}"))?;
            let conn = store::open_direct(&db)?;
            let (client, secret) = create_client(&conn, &name, &group, scopes.as_deref())?;
            println!("{}", new_client_json(&client, &secret));
            Ok(())
        }
        Command::ClientList { db } => {
            let conn = store::open_direct(&db)?;
            let list = clients::list_clients(&conn).map_err(|e| format!("{e:?}"))?;
            let json: Vec<_> = list
                .iter()
                .map(|c| client_json(c, UtcOffset::UTC))
                .collect();
            println!("{}", serde_json::Value::Array(json));
            Ok(())
        }
        Command::ClientRevoke { db, client_id } => {
            let conn = store::open_direct(&db)?;
            if !clients::revoke_client(&conn, &client_id).map_err(|e| format!("{e:?}"))? {
                return Err(format!("no live client {client_id:?}"));
            }
            eprintln!("vouchd: revoked client {client_id}");
            Ok(())
        }
        Command::Backup { db, dest } => {
            if dest.exists() {
                return Err(format!("{} exists already", dest.display()));
            }
            let conn = store::open_direct(&db)?;
            let dest_text = dest.to_str().ok_or("the destination path is not UTF-8")?;
            conn.execute("VACUUM INTO ?1", [dest_text])
                .map_err(|e| format!("backup failed: {e}"))?;
            eprintln!("vouchd: backed up {} to {}", db.display(), dest.display());
            Ok(())
        }
        Command::Demo { db, listen } => demo(&db, &listen),
    }
}

/// Creates a client with a fresh secret; returns it and the secret, which is not kept.
fn create_client(
    conn: &rusqlite::Connection,
    name: &str,
    group: &str,
    scopes: Option<&str>,
) -> Result<(Client, String), String> {
    let group = clients::find_group(conn, group)
        .map_err(|e| format!("{e:?}"))?
        .ok_or(format!("no group {group:?}"))?;
    let scopes = match scopes {
        Some(list) => {
            let s = Scopes::parse(list).map_err(|s| format!("unknown scope {s:?}"))?;
            if !s.is_subset_of(group.scopes) {
                return Err("--scopes must be a subset of the group's scopes".into());
            }
            Some(s)
        }
        None => None,
    };
    let secret = secret::generate_secret();
    let hash = secret::hash_secret(&secret)?;
    let client =
        clients::create_client(conn, name, &group, scopes, &hash).map_err(|e| format!("{e:?}"))?;
    Ok((client, secret))
}

/// On a database without clients, creates client `admin` (every scope) so there is a way in.
/// `serve` and `demo` both call this inside a write transaction, so whichever runs first
/// creates it and prints the secret, once.
fn create_first_admin(conn: &rusqlite::Connection) -> Result<Option<(Client, String)>, String> {
    if clients::count_clients(conn).map_err(|e| format!("{e:?}"))? > 0 {
        return Ok(None);
    }
    create_client(conn, "admin", "admin", None).map(Some)
}

fn serve(config: &ServeConfig) -> Result<(), String> {
    {
        let mut conn = store::open_direct(&config.db)?;
        if let Some((client, secret)) = store::write_direct(&mut conn, create_first_admin)? {
            eprintln!(
                "vouchd: created admin client {}",
                new_client_json(&client, &secret)
            );
        }
    }
    let listener = TcpListener::bind(&config.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let running = crate::serve(config, listener)?;
    eprintln!("vouchd listening on http://{}", running.addr);
    running.wait();
    Ok(())
}

/// Fills a database that holds no vouchers with the demo shop, in one transaction, and prints
/// how to log in. A database with vouchers is refused: demo data must never mix with real data.
fn demo(db: &Path, listen: &str) -> Result<(), String> {
    let started = Instant::now();
    let new_clients = crate::demo::prepare_clients()?;
    let mut conn = store::open_direct(db)?;
    let (admin, filled) = store::write_direct(&mut conn, |tx| {
        let held = vouchers::count_all(tx).map_err(|e| format!("{e:?}"))?;
        if held > 0 {
            return Err(format!(
                "{} holds {held} vouchers already; demo fills only a database without \
                 vouchers (give it a new file with --db PATH)",
                db.display()
            ));
        }
        let admin = create_first_admin(tx)?;
        let filled = crate::demo::fill(tx, new_clients, clock::now())
            .map_err(|e| format!("cannot fill {}: {e}", db.display()))?;
        Ok((admin, filled))
    })?;
    print!(
        "{}",
        crate::demo::report::render(&filled, admin.as_ref(), db, listen, started.elapsed())
    );
    Ok(())
}
