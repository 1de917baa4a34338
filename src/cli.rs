//! The command line: argv and `VOUCHD_*` environment into a validated command.

use crate::domain::clock::parse_offset;
use crate::domain::money::Currency;
use crate::ops::log::LogFormat;
use crate::store::SyncMode;
use std::path::PathBuf;
use time::UtcOffset;

pub const USAGE: &str = "usage:
  vouchd serve [--db PATH] [--listen ADDR] [--threads N] [--sync full|normal] [--utc-offset +HH:MM] [--currency EUR] [--rate-limit N]
               [--log-format text|json] [--max-connections N] [--max-connections-per-ip N]
               [--idle-timeout SECONDS] [--public-url URL]
  vouchd group create NAME --scopes SCOPE,SCOPE... [--db PATH]
  vouchd client create NAME --group GROUP [--scopes SCOPE,...] [--db PATH]
  vouchd client list [--db PATH]
  vouchd client revoke CLIENT_ID [--db PATH]
  vouchd client connect-pin --group GROUP [--name NAME] [--db PATH]
  vouchd backup DEST [--db PATH]
  vouchd demo [--db PATH]
  vouchd export [filter[NAME]=VALUE ...] [--out FILE] [--utc-offset +HH:MM] [--db PATH]
  vouchd import FILE|- [--client CLIENT_ID] [--currency EUR] [--utc-offset +HH:MM] [--db PATH]

  --db defaults to $VOUCHD_DB or ./vouchd.db; --listen to $VOUCHD_LISTEN or 127.0.0.1:8080.
  serve writes an access line per request to stderr (--log-format, default text); SIGTERM or
  SIGINT stops it gracefully (a second one at once). backup copies a database while a server
  uses it (SQLite's online backup) and refuses an existing DEST.
  demo fills a database without vouchers with a sample shop and prints its clients' secrets.
  export writes CSV to stdout (or --out), every voucher in storage order, narrowed by the
  list's filters (e.g. 'filter[status]=active'). import reads that CSV (- for stdin) all or
  nothing; its vouchers belong to --client, by default the oldest live client of group admin.
  client connect-pin prints a one-time PIN, valid 30 minutes, that a JTL client swaps for its
  own id and secret at POST /jtl/v1/clients/connect (a new client NAME in GROUP).";

/// API requests a second per client unless `--rate-limit` says otherwise: far above what a till
/// or a web shop's checkout sends, low enough that one runaway client cannot take the server.
pub const DEFAULT_RATE_LIMIT: u32 = 100;

/// Open connections the server holds at most unless `--max-connections` says otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// Open connections from one remote address at most (`--max-connections-per-ip`): enough for
/// every till of a shop, too few for one address to fill the server.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 256;

/// Seconds an idle keep-alive connection is kept unless `--idle-timeout` says otherwise.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 10;

/// Where `serve` listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub db: PathBuf,
    pub listen: String,
    pub threads: usize,
    /// API requests a second per client; 0 turns the limit off.
    pub rate_limit: u32,
    pub sync: SyncMode,
    pub offset: UtcOffset,
    pub currency: Currency,
    pub log_format: LogFormat,
    /// Open connections in all, past which a new one gets 503 and is closed.
    pub max_connections: usize,
    /// Open connections from one remote address, past which a new one gets 503.
    pub max_connections_per_ip: usize,
    /// How long an idle keep-alive connection is kept.
    pub idle_timeout: std::time::Duration,
    /// The server's own URL as clients reach it (`--public-url`): links are built on it
    /// instead of the request's `Host`.
    pub public_url: Option<String>,
}

#[derive(Debug)]
pub enum Command {
    Serve(ServeConfig),
    GroupCreate {
        db: PathBuf,
        name: String,
        scopes: String,
    },
    ClientCreate {
        db: PathBuf,
        name: String,
        group: String,
        scopes: Option<String>,
    },
    ClientList {
        db: PathBuf,
    },
    ClientRevoke {
        db: PathBuf,
        client_id: String,
    },
    ClientConnectPin {
        db: PathBuf,
        group: String,
        name: String,
    },
    Backup {
        db: PathBuf,
        dest: PathBuf,
    },
    /// `listen` is where `serve` would listen, for the printed examples.
    Demo {
        db: PathBuf,
        listen: String,
    },
    Export {
        db: PathBuf,
        /// `filter[…]` query pairs, as the HTTP export takes them.
        filters: Vec<(String, String)>,
        out: Option<PathBuf>,
        offset: UtcOffset,
    },
    Import {
        db: PathBuf,
        /// The CSV file; `-` is stdin.
        file: String,
        client: Option<String>,
        currency: Currency,
        offset: UtcOffset,
    },
    Help,
}

/// `--flag value` pairs in the order given.
type Options = Vec<(String, String)>;

/// Splits arguments into positionals and `--flag value` options (also `--flag=value`).
fn split(args: &[String], known: &[&str]) -> Result<(Vec<String>, Options), String> {
    let mut positional = Vec::new();
    let mut options = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if let Some(flag) = arg.strip_prefix("--") {
            let (name, value) = match flag.split_once('=') {
                Some((n, v)) => (n.to_string(), v.to_string()),
                None => (
                    flag.to_string(),
                    iter.next()
                        .ok_or_else(|| format!("--{flag} needs a value"))?
                        .clone(),
                ),
            };
            if !known.contains(&name.as_str()) {
                return Err(format!("unknown option --{name}"));
            }
            if options.iter().any(|(n, _)| *n == name) {
                return Err(format!("--{name} given twice"));
            }
            options.push((name, value));
        } else {
            positional.push(arg.clone());
        }
    }
    Ok((positional, options))
}

fn option(options: &[(String, String)], name: &str) -> Option<String> {
    options
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

fn listen_address(options: &[(String, String)]) -> String {
    option(options, "listen")
        .or_else(|| std::env::var("VOUCHD_LISTEN").ok())
        .unwrap_or_else(|| DEFAULT_LISTEN.into())
}

fn db_path(options: &[(String, String)]) -> PathBuf {
    option(options, "db")
        .or_else(|| std::env::var("VOUCHD_DB").ok())
        .unwrap_or_else(|| "./vouchd.db".into())
        .into()
}

pub fn parse(args: &[String]) -> Result<Command, String> {
    let words: Vec<&str> = args.iter().take(2).map(String::as_str).collect();
    match words.as_slice() {
        [] | ["help" | "--help" | "-h", ..] => Ok(Command::Help),
        ["serve", ..] => parse_serve(&args[1..]),
        ["group", "create", ..] => {
            let (pos, opts) = split(&args[2..], &["db", "scopes"])?;
            let [name] = pos.as_slice() else {
                return Err("group create takes one NAME".into());
            };
            let scopes = option(&opts, "scopes").ok_or("group create needs --scopes")?;
            Ok(Command::GroupCreate {
                db: db_path(&opts),
                name: name.clone(),
                scopes,
            })
        }
        ["client", "create", ..] => {
            let (pos, opts) = split(&args[2..], &["db", "group", "scopes"])?;
            let [name] = pos.as_slice() else {
                return Err("client create takes one NAME".into());
            };
            let group = option(&opts, "group").ok_or("client create needs --group")?;
            Ok(Command::ClientCreate {
                db: db_path(&opts),
                name: name.clone(),
                group,
                scopes: option(&opts, "scopes"),
            })
        }
        ["client", "list", ..] => {
            let (pos, opts) = split(&args[2..], &["db"])?;
            if !pos.is_empty() {
                return Err("client list takes no arguments".into());
            }
            Ok(Command::ClientList { db: db_path(&opts) })
        }
        ["client", "revoke", ..] => {
            let (pos, opts) = split(&args[2..], &["db"])?;
            let [client_id] = pos.as_slice() else {
                return Err("client revoke takes one CLIENT_ID".into());
            };
            Ok(Command::ClientRevoke {
                db: db_path(&opts),
                client_id: client_id.clone(),
            })
        }
        ["client", "connect-pin", ..] => {
            let (pos, opts) = split(&args[2..], &["db", "group", "name"])?;
            if !pos.is_empty() {
                return Err("client connect-pin takes no arguments".into());
            }
            let group = option(&opts, "group").ok_or("client connect-pin needs --group")?;
            Ok(Command::ClientConnectPin {
                db: db_path(&opts),
                group,
                name: option(&opts, "name").unwrap_or_else(|| "JTL client".into()),
            })
        }
        ["backup", ..] => {
            let (pos, opts) = split(&args[1..], &["db"])?;
            let [dest] = pos.as_slice() else {
                return Err("backup takes one DEST".into());
            };
            Ok(Command::Backup {
                db: db_path(&opts),
                dest: dest.into(),
            })
        }
        ["demo", ..] => {
            let (pos, opts) = split(&args[1..], &["db"])?;
            if !pos.is_empty() {
                return Err("demo takes no arguments".into());
            }
            Ok(Command::Demo {
                db: db_path(&opts),
                listen: listen_address(&opts),
            })
        }
        ["export", ..] => {
            let (pos, opts) = split(&args[1..], &["db", "out", "utc-offset"])?;
            let filters = pos
                .iter()
                .map(|arg| match arg.split_once('=') {
                    Some((name, value)) => Ok((name.to_string(), value.to_string())),
                    None => Err(format!("export takes filters as NAME=VALUE, got {arg:?}")),
                })
                .collect::<Result<_, String>>()?;
            Ok(Command::Export {
                db: db_path(&opts),
                filters,
                out: option(&opts, "out").map(PathBuf::from),
                offset: utc_offset(&opts)?,
            })
        }
        ["import", ..] => {
            let (pos, opts) = split(&args[1..], &["db", "client", "currency", "utc-offset"])?;
            let [file] = pos.as_slice() else {
                return Err("import takes one FILE (- for stdin)".into());
            };
            Ok(Command::Import {
                db: db_path(&opts),
                file: file.clone(),
                client: option(&opts, "client"),
                currency: currency(&opts)?,
                offset: utc_offset(&opts)?,
            })
        }
        _ => Err(format!("unknown command {:?}", args.join(" "))),
    }
}

fn utc_offset(opts: &[(String, String)]) -> Result<UtcOffset, String> {
    match option(opts, "utc-offset") {
        Some(s) => {
            parse_offset(&s).ok_or_else(|| "--utc-offset must look like +02:00 or -05:30".into())
        }
        None => Ok(UtcOffset::UTC),
    }
}

fn currency(opts: &[(String, String)]) -> Result<Currency, String> {
    match option(opts, "currency") {
        Some(s) => Currency::parse(&s).ok_or_else(|| "--currency must be an ISO 4217 code".into()),
        None => Currency::parse("EUR").ok_or_else(|| "EUR is unknown".into()),
    }
}

/// A connection count option: 1 to 1 000 000, `default` when not given.
fn count_option(opts: &[(String, String)], name: &str, default: usize) -> Result<usize, String> {
    match option(opts, name) {
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1_000_000).contains(n))
            .ok_or_else(|| format!("--{name} must be 1 to 1000000")),
        None => Ok(default),
    }
}

fn parse_serve(args: &[String]) -> Result<Command, String> {
    let (pos, opts) = split(
        args,
        &[
            "db",
            "listen",
            "threads",
            "sync",
            "utc-offset",
            "currency",
            "rate-limit",
            "log-format",
            "max-connections",
            "max-connections-per-ip",
            "idle-timeout",
            "public-url",
        ],
    )?;
    if !pos.is_empty() {
        return Err(format!("serve takes no arguments, got {:?}", pos.join(" ")));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = match option(&opts, "threads") {
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1024).contains(n))
            .ok_or("--threads must be 1 to 1024")?,
        None => 4 * cores,
    };
    let rate_limit = match option(&opts, "rate-limit") {
        Some(n) => n
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= 1_000_000)
            .ok_or("--rate-limit must be 0 (off) to 1000000 requests a second")?,
        None => DEFAULT_RATE_LIMIT,
    };
    let sync = match option(&opts, "sync") {
        Some(s) => SyncMode::parse(&s).ok_or("--sync must be full or normal")?,
        None => SyncMode::Full,
    };
    let offset = utc_offset(&opts)?;
    let currency = currency(&opts)?;
    let listen = listen_address(&opts);
    let log_format = match option(&opts, "log-format") {
        Some(s) => LogFormat::parse(&s).ok_or("--log-format must be text or json")?,
        None => LogFormat::Text,
    };
    let max_connections = count_option(&opts, "max-connections", DEFAULT_MAX_CONNECTIONS)?;
    let max_connections_per_ip = count_option(
        &opts,
        "max-connections-per-ip",
        DEFAULT_MAX_CONNECTIONS_PER_IP,
    )?;
    let idle_timeout = match option(&opts, "idle-timeout") {
        Some(n) => n
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=3600).contains(n))
            .ok_or("--idle-timeout must be 1 to 3600 seconds")?,
        None => DEFAULT_IDLE_TIMEOUT_SECS,
    };
    Ok(Command::Serve(ServeConfig {
        db: db_path(&opts),
        listen,
        threads,
        rate_limit,
        sync,
        offset,
        currency,
        log_format,
        max_connections,
        max_connections_per_ip,
        idle_timeout: std::time::Duration::from_secs(idle_timeout),
        public_url: option(&opts, "public-url"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn serve_takes_every_option() {
        let Ok(Command::Serve(c)) =
            parse(&args("serve --db x.db --listen 127.0.0.1:0 --threads 3 --sync normal --utc-offset +02:00 --currency usd --log-format json"))
        else {
            panic!("serve should parse");
        };
        assert_eq!(c.db, PathBuf::from("x.db"));
        assert_eq!(
            (c.listen.as_str(), c.threads, c.sync),
            ("127.0.0.1:0", 3, SyncMode::Normal)
        );
        assert_eq!(c.currency.as_str(), "USD");
        assert_eq!(c.offset.whole_hours(), 2);
        assert_eq!(c.log_format, LogFormat::Json);
        let Ok(Command::Serve(c)) = parse(&args("serve")) else {
            panic!("serve should parse");
        };
        assert_eq!(c.log_format, LogFormat::Text);
    }

    #[test]
    fn bad_options_are_refused() {
        for line in [
            "serve --threads 0",
            "serve --sync maybe",
            "serve --utc-offset 2",
            "serve --currency EURO",
            "serve --bogus 1",
            "serve --db",
            "serve --log-format xml",
            "backup",
            "backup a.db b.db",
            "group create",
            "group create a --db x",
            "client create a",
            "client revoke",
            "client connect-pin",
            "client connect-pin extra --group shop",
            "demo extra",
            "demo --listen 1.2.3.4:80",
            "frobnicate",
            "export status",
            "export --out",
            "import",
            "import a.csv b.csv",
            "import a.csv --currency EURO",
        ] {
            assert!(parse(&args(line)).is_err(), "{line}");
        }
    }

    #[test]
    fn subcommands_parse() {
        assert!(matches!(
            parse(&args("group create shop --scopes vouchers:read")),
            Ok(Command::GroupCreate { .. })
        ));
        assert!(matches!(
            parse(&args("client create till --group shop --db=v.db")),
            Ok(Command::ClientCreate { .. })
        ));
        assert!(matches!(
            parse(&args("client list")),
            Ok(Command::ClientList { .. })
        ));
        let Ok(Command::ClientConnectPin { group, name, .. }) =
            parse(&args("client connect-pin --group shop"))
        else {
            panic!("connect-pin");
        };
        assert_eq!((group.as_str(), name.as_str()), ("shop", "JTL client"));
        assert!(matches!(
            parse(&args("client revoke ABC")),
            Ok(Command::ClientRevoke { .. })
        ));
        assert!(matches!(
            parse(&args("backup /tmp/x.db")),
            Ok(Command::Backup { .. })
        ));
        let Ok(Command::Demo { db, .. }) = parse(&args("demo --db /tmp/d.db")) else {
            panic!("demo should parse");
        };
        assert_eq!(db, PathBuf::from("/tmp/d.db"));
        let Ok(Command::Export { filters, out, .. }) = parse(&args(
            "export filter[status]=active filter[batch]=a=b --out x.csv",
        )) else {
            panic!("export should parse");
        };
        assert_eq!(
            filters,
            vec![
                ("filter[status]".to_string(), "active".to_string()),
                ("filter[batch]".to_string(), "a=b".to_string())
            ]
        );
        assert_eq!(out, Some(PathBuf::from("x.csv")));
        let Ok(Command::Import {
            file,
            client,
            currency,
            ..
        }) = parse(&args("import - --client C1 --currency usd"))
        else {
            panic!("import should parse");
        };
        assert_eq!((file.as_str(), client.as_deref()), ("-", Some("C1")));
        assert_eq!(currency.as_str(), "USD");
    }
}
