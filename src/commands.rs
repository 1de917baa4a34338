//! What each CLI command does, printing JSON on stdout and messages on stderr.

use crate::api::admin::{check_name, client_json, group_json, new_client_json};
use crate::auth::scope::Scopes;
use crate::auth::secret;
use crate::cli::{Command, ServeConfig, USAGE};
use crate::store::{self, clients};
use std::net::TcpListener;
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
            let created = create_client(&conn, &name, &group, scopes.as_deref())?;
            println!("{created}");
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
    }
}

fn create_client(
    conn: &rusqlite::Connection,
    name: &str,
    group: &str,
    scopes: Option<&str>,
) -> Result<serde_json::Value, String> {
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
    Ok(new_client_json(&client, &secret))
}

fn serve(config: &ServeConfig) -> Result<(), String> {
    {
        let conn = store::open_direct(&config.db)?;
        if clients::count_clients(&conn).map_err(|e| format!("{e:?}"))? == 0 {
            let created = create_client(&conn, "admin", "admin", None)?;
            eprintln!("vouchd: created admin client {created}");
        }
    }
    let listener = TcpListener::bind(&config.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let running = crate::serve(config, listener)?;
    eprintln!("vouchd listening on http://{}", running.addr);
    running.wait();
    Ok(())
}
