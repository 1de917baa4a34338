//! What each CLI command does, printing JSON on stdout and messages on stderr.

mod copy;

use crate::api::admin::{check_group_name, check_name, client_json, group_json, new_client_json};
use crate::api::export::{export_filters, ExportStream};
use crate::api::import::{self, ImportReader};
use crate::api::native::Issuer;
use crate::api::webhooks::new_secret;
use crate::auth::scope::Scopes;
use crate::auth::secret;
use crate::cli::spec::unknown_scope;
use crate::cli::webhook::{parse_events, WebhookCommand};
use crate::cli::{Command, ServeConfig};
use crate::domain::clock;
use crate::domain::money::Currency;
use crate::domain::voucher::Tenant;
use crate::domain::webhook::check_url;
use crate::error::ApiError;
use crate::ops::signals::StopSignals;
use crate::store::bulk::{self, VoucherCursor};
use crate::store::clients::Client;
use crate::store::{self, clients, vouchers, webhooks};
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::Instant;
use time::UtcOffset;

/// Rows between two updates of a progress line.
const PROGRESS_EVERY: u64 = 10_000;

pub fn run(command: Command) -> Result<(), String> {
    // Any command that writes may record webhook events, rendered at the shop's offset.
    let offset = match &command {
        Command::Serve(config) => config.offset,
        Command::Import { offset, .. } => *offset,
        _ => UtcOffset::UTC,
    };
    crate::api::webhooks::install_renderer(offset);
    match command {
        Command::Help(text) => {
            print!("{text}");
            Ok(())
        }
        Command::Serve(config) => serve(&config),
        Command::Webhook(command) => webhook(command),
        Command::GroupCreate { db, name, scopes } => {
            check_group_name(&name).map_err(|e| format!("group name {e}"))?;
            let scopes = Scopes::parse(&scopes).map_err(|s| unknown_scope(&s))?;
            let conn = store::open_direct(&db)?;
            let group = clients::create_group(&conn, &name, scopes)
                .map_err(|e| failure(&ApiError::from(e)))?;
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
            println!("{}", new_client_json(&client, Some(&secret)));
            Ok(())
        }
        Command::ClientList { db } => {
            let conn = store::open_direct(&db)?;
            let list = clients::list_clients(&conn).map_err(|e| failure(&ApiError::from(e)))?;
            let json: Vec<_> = list
                .iter()
                .map(|c| client_json(c, UtcOffset::UTC))
                .collect();
            println!("{}", serde_json::Value::Array(json));
            Ok(())
        }
        Command::ClientRevoke { db, client_id } => {
            let conn = store::open_direct(&db)?;
            if !clients::revoke_client(&conn, &client_id)
                .map_err(|e| failure(&ApiError::from(e)))?
            {
                return Err(format!("no live client {client_id:?}"));
            }
            eprintln!("vouchd: revoked client {client_id}");
            Ok(())
        }
        Command::ClientConnectPin { db, group, name } => {
            check_name(&name).map_err(|e| format!("client name {e}"))?;
            let mut conn = store::open_direct(&db)?;
            let (pin, group_id, expires_at) = store::write_direct(&mut conn, |c| {
                crate::auth::connect_pin::make_connect_pin(c, &group, &name)
            })?;
            let expires = clock::format_rfc3339(expires_at, UtcOffset::UTC);
            println!(
                "{}",
                serde_json::json!({"pin": pin, "group_id": group_id, "name": name, "expires_at": expires})
            );
            Ok(())
        }
        Command::Backup { db, dest } => {
            let started = Instant::now();
            let copied = store::backup::backup(&db, &dest)?;
            eprintln!(
                "vouchd: backed up {} to {} ({} pages, {} bytes, {} steps, {:.1} s)",
                db.display(),
                dest.display(),
                copied.pages,
                copied.bytes,
                copied.steps,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Copy { from, to } => copy::run(&from, &to),
        Command::Demo { db, listen } => demo(&db, &listen),
        Command::Export {
            db,
            filters,
            out,
            offset,
        } => export(&db, &filters, out.as_deref(), offset),
        Command::Import {
            db,
            file,
            client,
            currency,
            offset,
        } => import(&db, &file, client.as_deref(), currency, offset),
    }
}

/// `vouchd export`: every voucher (narrowed by `filter[…]` pairs) as CSV, streamed.
fn export(
    db: &Path,
    pairs: &[(String, String)],
    out: Option<&Path>,
    offset: UtcOffset,
) -> Result<(), String> {
    let filters =
        export_filters(pairs, offset).map_err(|e| format!("{}: {}", e.param, e.message))?;
    let conn = store::open_direct(db)?;
    let cursor = VoucherCursor::open(conn, &Tenant::All, &filters)
        .map_err(|e| failure(&ApiError::from(e)))?;
    let pins = store::open_direct(db)?;
    let mut stream = ExportStream::new(cursor, Some(pins), offset).map_err(|e| failure(&e))?;
    let sink: Box<dyn Write> = match out {
        Some(path) => Box::new(
            File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut sink = BufWriter::with_capacity(64 << 10, sink);
    let mut progress = Progress::new("exported");
    let mut buf = vec![0; 64 << 10];
    loop {
        let n = stream
            .read(&mut buf)
            .map_err(|e| format!("export failed: {e}"))?;
        if n == 0 {
            break;
        }
        sink.write_all(&buf[..n])
            .map_err(|e| format!("cannot write the export: {e}"))?;
        progress.show(stream.rows());
    }
    sink.flush()
        .map_err(|e| format!("cannot write the export: {e}"))?;
    progress.end();
    eprintln!("vouchd: exported {} vouchers", stream.rows());
    Ok(())
}

/// `vouchd import`: a CSV in the export's format, all or nothing, in one transaction. A file
/// that did not exist before is removed again when the import fails, so a failed import into
/// a new file leaves nothing behind.
fn import(
    db: &Path,
    file: &str,
    client: Option<&str>,
    currency: Currency,
    offset: UtcOffset,
) -> Result<(), String> {
    let input: Box<dyn Read> = if file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(File::open(file).map_err(|e| format!("cannot open {file}: {e}"))?)
    };
    let new_file = !db.exists();
    let result = import_into(db, input, file, client, currency, offset);
    if result.is_err() && new_file {
        remove_database(db);
    }
    result
}

fn import_into(
    db: &Path,
    input: Box<dyn Read>,
    file: &str,
    client: Option<&str>,
    currency: Currency,
    offset: UtcOffset,
) -> Result<(), String> {
    let mut conn = store::open_direct(db)?;
    let now = clock::now();
    let mut progress = Progress::new("imported");
    let mut read = 0;
    // One IMMEDIATE transaction holding the write lock from the start: a server sharing the file
    // waits (or answers 503) until the import commits, instead of the import failing halfway.
    let result = store::write_direct(&mut conn, |c| {
        // A database without clients gets its `admin` as `serve` would give it, in this same
        // transaction: a failed import creates no client either.
        let admin = match client {
            None => create_first_admin(c)?,
            Some(_) => None,
        };
        let owner = import_owner(c, client)?;
        let issuer = Issuer {
            client_id: owner.id,
            group_id: owner.group_id,
            offset,
            currency,
        };
        let refused = |err: ApiError| format!("nothing was imported: {}", failure(&err));
        let mut reader = ImportReader::new(input, issuer, now).map_err(refused)?;
        let count = bulk::import(c, &mut reader, now, |_| {
            read += 1;
            progress.show(read);
        })
        .map_err(|e| refused(e.into()))?;
        if let Some(err) = reader.failure.take() {
            return Err(refused(err));
        }
        import::set_pins(c, &reader.pins).map_err(refused)?;
        Ok((count, admin))
    });
    progress.end();
    let (count, admin) = result?;
    if let Some((client, secret)) = admin {
        eprintln!(
            "vouchd: created admin client {}",
            new_client_json(&client, Some(&secret))
        );
    }
    println!("{}", serde_json::json!({ "imported": count }));
    eprintln!("vouchd: imported {count} vouchers from {file}");
    Ok(())
}

/// Removes a database file this command created, with the journal files SQLite keeps beside it.
fn remove_database(db: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut path = db.as_os_str().to_owned();
        path.push(suffix);
        let _ = std::fs::remove_file(path);
    }
}

/// The client an import's vouchers belong to: the one named, or the oldest live `admin` one.
fn import_owner(conn: &crate::store::Db, client: Option<&str>) -> Result<clients::Client, String> {
    match client {
        Some(id) => {
            match clients::find_client(conn, id).map_err(|e| failure(&ApiError::from(e)))? {
                Some(c) if c.revoked_at.is_none() => Ok(c),
                Some(_) => Err(format!("client {id:?} is revoked")),
                None => Err(format!(
                    "no client {id:?} (`vouchd client list` shows the clients)"
                )),
            }
        }
        None => clients::list_clients(conn)
            .map_err(|e| failure(&ApiError::from(e)))?
            .into_iter()
            .find(|c| c.group_name == "admin" && c.revoked_at.is_none())
            .ok_or_else(|| "no live client in group admin; name the owner with --client".into()),
    }
}

/// `vouchd webhook add|list|remove` on the database file.
fn webhook(command: WebhookCommand) -> Result<(), String> {
    match command {
        WebhookCommand::Add {
            db,
            group,
            url,
            events,
        } => {
            check_url(&url).map_err(|e| format!("the URL {e}"))?;
            let events = parse_events(&events)?;
            let mut conn = store::open_direct(&db)?;
            let group = clients::find_group(&conn, &group)
                .map_err(|e| failure(&ApiError::from(e)))?
                .ok_or(format!("no group {group:?}"))?;
            let secret = new_secret();
            let endpoint = store::write_direct(&mut conn, |c| {
                webhooks::insert_endpoint(c, &group.id, &url, &events, &secret)
                    .map_err(|e| failure(&ApiError::from(e)))
            })?;
            println!(
                "{}",
                serde_json::json!({
                    "id": endpoint.id,
                    "group": group.name,
                    "url": endpoint.url,
                    "events": events.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
                    "secret": secret,
                })
            );
            Ok(())
        }
        WebhookCommand::List { db } => {
            let conn = store::open_direct(&db)?;
            let list =
                webhooks::list_all_endpoints(&conn).map_err(|e| failure(&ApiError::from(e)))?;
            let items: Vec<_> = list
                .iter()
                .map(|(e, group)| {
                    serde_json::json!({
                        "id": e.id,
                        "group": group,
                        "url": e.url,
                        "events": e.events.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
                        "disabled": e.disabled_at.is_some(),
                        "disabled_reason": e.disabled_reason,
                    })
                })
                .collect();
            println!("{}", serde_json::Value::Array(items));
            Ok(())
        }
        WebhookCommand::Remove { db, id } => {
            let mut conn = store::open_direct(&db)?;
            let removed = store::write_direct(&mut conn, |c| {
                webhooks::delete_any_endpoint(c, &id).map_err(|e| failure(&ApiError::from(e)))
            })?;
            if !removed {
                return Err(format!("no webhook endpoint {id:?}"));
            }
            eprintln!("vouchd: removed webhook endpoint {id}");
            Ok(())
        }
    }
}

/// An error as the CLI reports it: each bad row on a line of its own.
pub(crate) fn failure(err: &ApiError) -> String {
    match err {
        ApiError::Invalid(errors) => {
            let mut text = format!("{} errors", errors.len());
            for e in errors {
                match e.row {
                    Some(row) => {
                        text.push_str(&format!("\n  row {row}: {}: {}", e.field, e.message))
                    }
                    None => text.push_str(&format!("\n  {}: {}", e.field, e.message)),
                }
            }
            if errors.len() >= bulk::MAX_ROW_ERRORS {
                text.push_str("\n  (the file was not read further)");
            }
            text
        }
        _ => err
            .log_message()
            .map_or_else(|| err.detail(), str::to_string),
    }
}

/// A `\r`-updated count on stderr every [`PROGRESS_EVERY`] rows, when stderr is a terminal.
struct Progress {
    verb: &'static str,
    shown: u64,
    tty: bool,
}

impl Progress {
    fn new(verb: &'static str) -> Progress {
        Progress {
            verb,
            shown: 0,
            tty: std::io::stderr().is_terminal(),
        }
    }

    fn show(&mut self, rows: u64) {
        if self.tty && rows / PROGRESS_EVERY > self.shown / PROGRESS_EVERY {
            eprint!("\rvouchd: {} {rows} rows", self.verb);
            self.shown = rows;
        }
    }

    fn end(&self) {
        if self.shown > 0 {
            eprintln!();
        }
    }
}

/// Creates a client with a fresh secret; returns it and the secret, which is not kept.
fn create_client(
    conn: &crate::store::Db,
    name: &str,
    group: &str,
    scopes: Option<&str>,
) -> Result<(Client, String), String> {
    let group = clients::find_group(conn, group)
        .map_err(|e| failure(&ApiError::from(e)))?
        .ok_or(format!("no group {group:?}"))?;
    let scopes = match scopes {
        Some(list) => {
            let s = Scopes::parse(list).map_err(|s| unknown_scope(&s))?;
            if !s.is_subset_of(group.scopes) {
                return Err("--scopes must be a subset of the group's scopes".into());
            }
            Some(s)
        }
        None => None,
    };
    let secret = secret::generate_secret();
    let hash = secret::hash_secret(&secret)?;
    let client = clients::create_client(conn, name, &group, scopes, &hash)
        .map_err(|e| failure(&ApiError::from(e)))?;
    Ok((client, secret))
}

/// On a database without clients, creates client `admin` (every scope) so there is a way in.
/// `serve` and `demo` both call this inside a write transaction, so whichever runs first
/// creates it and prints the secret, once.
fn create_first_admin(conn: &crate::store::Db) -> Result<Option<(Client, String)>, String> {
    clients::lock_setup(conn).map_err(|e| failure(&ApiError::from(e)))?;
    if clients::count_clients(conn).map_err(|e| failure(&ApiError::from(e)))? > 0 {
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
                new_client_json(&client, Some(&secret))
            );
        }
    }
    // Before anything is served: a stop asked for during start-up waits for the server to be
    // up, then stops it cleanly.
    let mut signals = StopSignals::install()?;
    let listener = TcpListener::bind(&config.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let running = crate::serve(config, listener)?;
    eprintln!("vouchd listening on http://{}", running.addr);
    let signal = signals.wait();
    eprintln!("vouchd: {signal}: stopping; finishing the requests in flight (a second signal exits at once)");
    signals.exit_on_next();
    running.shutdown();
    eprintln!("vouchd: stopped");
    Ok(())
}

/// Fills a database that holds no vouchers with the demo shop, in one transaction, and prints
/// how to log in. A database with vouchers is refused: demo data must never mix with real data.
fn demo(db: &Path, listen: &str) -> Result<(), String> {
    let started = Instant::now();
    let new_clients = crate::demo::prepare_clients()?;
    let mut conn = store::open_direct(db)?;
    let (admin, filled) = store::write_direct(&mut conn, |tx| {
        let held = vouchers::count_all(tx).map_err(|e| failure(&ApiError::from(e)))?;
        if held > 0 {
            return Err(format!(
                "{} holds {held} vouchers already; demo fills only a database without \
                 vouchers (give it a new file with --db PATH)",
                store::shown(db)
            ));
        }
        let admin = create_first_admin(tx)?;
        let filled = crate::demo::fill(tx, new_clients, clock::now())
            .map_err(|e| format!("cannot fill {}: {e}", store::shown(db)))?;
        Ok((admin, filled))
    })?;
    print!(
        "{}",
        crate::demo::report::render(
            &filled,
            admin.as_ref(),
            db,
            listen,
            &invocation(),
            started.elapsed()
        )
    );
    Ok(())
}

/// How to run this executable again from a shell: `vouchd` when that name on `PATH` is this
/// very file (it was installed), else this file's path, so a printed command runs either way.
fn invocation() -> String {
    let Ok(exe) = std::env::current_exe() else {
        return "vouchd".into();
    };
    let exe = exe.canonicalize().unwrap_or(exe);
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("vouchd"))
        .find(|candidate| candidate.is_file());
    match on_path.and_then(|p| p.canonicalize().ok()) {
        Some(found) if found == exe => "vouchd".into(),
        _ => exe.to_string_lossy().into_owned(),
    }
}
