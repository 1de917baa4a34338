//! The command line: argv and `VOUCHD_*` environment into a validated command. The commands,
//! their flags and help live in [`spec`]; this reads arguments against it.

pub mod spec;
pub mod webhook;

use crate::domain::clock::parse_offset;
use crate::domain::money::Currency;
use crate::ops::log::LogFormat;
use crate::store::SyncMode;
use spec::Spec;
use std::fmt;
use std::path::PathBuf;
use time::UtcOffset;

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
    /// `--webhook-retry-for` and `--webhook-first-retry`.
    pub webhooks: crate::ops::webhooks::Settings,
    /// Reverse proxies whose `X-Forwarded-For` names the client (`--trusted-proxy`).
    pub trusted_proxies: Vec<std::net::IpAddr>,
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
    /// `copy FROM TO`: a whole database into another, on either engine.
    Copy {
        from: PathBuf,
        to: PathBuf,
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
    /// `webhook add|list|remove`.
    Webhook(webhook::WebhookCommand),
    /// Text to print on stdout, then exit 0: a help or the version.
    Help(String),
}

/// A command line that cannot run: what is wrong, and the help of the command it concerns
/// (exit status 2).
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    /// The command's synopsis and a pointer to its `--help`.
    pub usage: String,
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\n\n{}", self.message, self.usage)
    }
}

/// `--flag value` pairs in the order given.
type Options = Vec<(String, String)>;

/// What a command's arguments hold: positionals and options, or a request for its help.
enum Split {
    Args(Vec<String>, Options),
    Help,
}

/// Splits a command's arguments into positionals and `--flag value` options (also
/// `--flag=value`), checked against its flags; `--help` or `-h` anywhere asks for its help.
fn split(args: &[String], spec: &Spec) -> Result<Split, String> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        return Ok(Split::Help);
    }
    let mut positional = Vec::new();
    let mut options = Options::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let Some(flag) = arg.strip_prefix("--") else {
            positional.push(arg.clone());
            continue;
        };
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        if spec.flag(name).is_none() {
            return Err(format!("unknown option --{name}"));
        }
        let value = match inline {
            Some(v) => v,
            None => match iter.next() {
                Some(v) if !v.starts_with("--") => v.clone(),
                _ => return Err(format!("--{name} needs a value")),
            },
        };
        if options.iter().any(|(n, _)| n == name) && !spec::REPEATABLE.contains(&name) {
            return Err(format!("--{name} given twice"));
        }
        options.push((name.to_string(), value));
    }
    for name in spec.required {
        if option(&options, name).is_none() {
            return Err(format!("{} needs --{name}", spec.name()));
        }
    }
    Ok(Split::Args(positional, options))
}

fn option(options: &[(String, String)], name: &str) -> Option<String> {
    options
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

/// Every value of a repeatable option, in the order given.
fn options_all(options: &[(String, String)], name: &str) -> Vec<String> {
    options
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .collect()
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

/// A command's synopsis and where its help is, for an error about it.
fn usage_of(spec: &Spec) -> String {
    format!(
        "usage: {}\n`vouchd {} --help` shows its options.",
        spec::synopsis(spec),
        spec.name()
    )
}

fn general_usage() -> String {
    "usage: vouchd COMMAND [ARGUMENTS] [OPTIONS]\n`vouchd --help` lists the commands.".into()
}

pub fn parse(args: &[String]) -> Result<Command, CliError> {
    let Some(first) = args.first() else {
        return Err(CliError {
            message: "no command given".into(),
            usage: spec::overview(),
        });
    };
    match first.as_str() {
        "--help" | "-h" => return Ok(Command::Help(spec::overview())),
        "--version" | "-V" => {
            return Ok(Command::Help(format!(
                "vouchd {}\n",
                env!("CARGO_PKG_VERSION")
            )))
        }
        _ => {}
    }
    let Some(spec) = spec::find(args) else {
        let members = spec::family(first);
        return Err(match members.as_slice() {
            [] => CliError {
                message: format!("unknown command {first:?}"),
                usage: general_usage(),
            },
            _ if args.len() == 1 => CliError {
                message: format!("{first} needs a command"),
                usage: spec::family_help(first, &members),
            },
            _ if args[1] == "--help" || args[1] == "-h" => {
                return Ok(Command::Help(spec::family_help(first, &members)))
            }
            _ => CliError {
                message: format!("unknown command \"{first} {}\"", args[1]),
                usage: spec::family_help(first, &members),
            },
        });
    };
    let rest = &args[spec.words.len()..];
    let fail = |message: String| CliError {
        message,
        usage: usage_of(spec),
    };
    let (pos, opts) = match split(rest, spec).map_err(fail)? {
        Split::Help => return Ok(Command::Help(spec::help(spec))),
        Split::Args(pos, opts) => (pos, opts),
    };
    build(spec, pos, &opts).map_err(fail)
}

/// `vouchd help [COMMAND]`: the overview, or the help of the command or family named.
fn help_for(words: &[String]) -> Result<Command, String> {
    let Some(first) = words.first() else {
        return Ok(Command::Help(spec::overview()));
    };
    if let Some(spec) = spec::find(words).filter(|s| s.words.len() == words.len()) {
        return Ok(Command::Help(spec::help(spec)));
    }
    let members = spec::family(first);
    if words.len() == 1 && !members.is_empty() {
        return Ok(Command::Help(spec::family_help(first, &members)));
    }
    Err(format!("no command {:?}", words.join(" ")))
}

/// One positional argument, or a sentence saying what the command takes.
fn one(spec: &Spec, pos: Vec<String>) -> Result<String, String> {
    match <[String; 1]>::try_from(pos) {
        Ok([arg]) => Ok(arg),
        Err(pos) if pos.is_empty() => Err(format!("{} needs {}", spec.name(), spec.args)),
        Err(pos) => Err(format!(
            "{} takes one {}, got {}",
            spec.name(),
            spec.args,
            pos.join(" ")
        )),
    }
}

fn none(spec: &Spec, pos: &[String]) -> Result<(), String> {
    match pos {
        [] => Ok(()),
        _ => Err(format!(
            "{} takes no arguments, got {:?}",
            spec.name(),
            pos.join(" ")
        )),
    }
}

/// The command `spec` names, from its checked arguments.
fn build(spec: &Spec, pos: Vec<String>, opts: &[(String, String)]) -> Result<Command, String> {
    let db = db_path(opts);
    Ok(match spec.words {
        ["serve"] => {
            none(spec, &pos)?;
            parse_serve(opts)?
        }
        ["demo"] => {
            none(spec, &pos)?;
            Command::Demo {
                db,
                listen: listen_address(opts),
            }
        }
        ["group", "create"] => Command::GroupCreate {
            db,
            name: one(spec, pos)?,
            scopes: option(opts, "scopes").unwrap_or_default(),
        },
        ["client", "create"] => Command::ClientCreate {
            db,
            name: one(spec, pos)?,
            group: option(opts, "group").unwrap_or_default(),
            scopes: option(opts, "scopes"),
        },
        ["client", "list"] => {
            none(spec, &pos)?;
            Command::ClientList { db }
        }
        ["client", "revoke"] => Command::ClientRevoke {
            db,
            client_id: one(spec, pos)?,
        },
        ["client", "connect-pin"] => {
            none(spec, &pos)?;
            Command::ClientConnectPin {
                db,
                group: option(opts, "group").unwrap_or_default(),
                name: option(opts, "name").unwrap_or_else(|| "JTL client".into()),
            }
        }
        ["backup"] => Command::Backup {
            db,
            dest: one(spec, pos)?.into(),
        },
        ["copy"] => match <[String; 2]>::try_from(pos) {
            Ok([from, to]) => Command::Copy {
                from: from.into(),
                to: to.into(),
            },
            Err(pos) => {
                return Err(format!(
                    "copy takes FROM and TO, got {}",
                    if pos.is_empty() {
                        "nothing".to_string()
                    } else {
                        // Each as shown anywhere: a URL without its password.
                        pos.iter()
                            .map(|p| crate::store::shown(std::path::Path::new(p)))
                            .collect::<Vec<_>>()
                            .join(" ")
                    }
                ));
            }
        },
        ["export"] => {
            let filters = pos
                .iter()
                .map(|arg| match arg.split_once('=') {
                    Some((name, value)) => Ok((name.to_string(), value.to_string())),
                    None => Err(format!("export takes filters as NAME=VALUE, got {arg:?}")),
                })
                .collect::<Result<_, String>>()?;
            Command::Export {
                db,
                filters,
                out: option(opts, "out").map(PathBuf::from),
                offset: utc_offset(opts)?,
            }
        }
        ["import"] => Command::Import {
            db,
            file: one(spec, pos)?,
            client: option(opts, "client"),
            currency: currency(opts)?,
            offset: utc_offset(opts)?,
        },
        ["webhook", ..] => Command::Webhook(webhook::build(spec, pos, opts)?),
        ["help"] => help_for(&pos)?,
        _ => return Err(format!("{} is listed but not handled", spec.name())),
    })
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

fn parse_serve(opts: &[(String, String)]) -> Result<Command, String> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = match option(opts, "threads") {
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1024).contains(n))
            .ok_or("--threads must be 1 to 1024")?,
        None => 4 * cores,
    };
    let rate_limit = match option(opts, "rate-limit") {
        Some(n) => n
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= 1_000_000)
            .ok_or("--rate-limit must be 0 (off) to 1000000 requests a second")?,
        None => DEFAULT_RATE_LIMIT,
    };
    let sync = match option(opts, "sync") {
        Some(s) => SyncMode::parse(&s).ok_or("--sync must be full or normal")?,
        None => SyncMode::Full,
    };
    let offset = utc_offset(opts)?;
    let currency = currency(opts)?;
    let listen = listen_address(opts);
    let log_format = match option(opts, "log-format") {
        Some(s) => LogFormat::parse(&s).ok_or("--log-format must be text or json")?,
        None => LogFormat::Text,
    };
    let max_connections = count_option(opts, "max-connections", DEFAULT_MAX_CONNECTIONS)?;
    let max_connections_per_ip = count_option(
        opts,
        "max-connections-per-ip",
        DEFAULT_MAX_CONNECTIONS_PER_IP,
    )?;
    let idle_timeout = match option(opts, "idle-timeout") {
        Some(n) => n
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=3600).contains(n))
            .ok_or("--idle-timeout must be 1 to 3600 seconds")?,
        None => DEFAULT_IDLE_TIMEOUT_SECS,
    };
    Ok(Command::Serve(ServeConfig {
        db: db_path(opts),
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
        public_url: option(opts, "public-url")
            .map(|url| crate::http::host::parse_public_url(&url))
            .transpose()?,
        webhooks: webhook::serve_settings(opts)?,
        trusted_proxies: options_all(opts, "trusted-proxy")
            .iter()
            .map(|text| crate::http::proxy::parse_trusted(text))
            .collect::<Result<Vec<_>, _>>()?
            .concat(),
    }))
}

#[cfg(test)]
mod tests;
