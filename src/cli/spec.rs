//! The commands the CLI knows, their arguments and flags with their defaults, and the help text
//! made from them. Parsing looks commands up here, so a command has help as soon as it exists.

use crate::auth::scope::ALL_SCOPES;
use std::fmt::Write;

/// One `--name VALUE` option of a command.
pub struct Flag {
    pub name: &'static str,
    /// What the value is, as the usage shows it (`PATH`, `N`).
    pub value: &'static str,
    pub help: &'static str,
    /// What applies when the flag is left out; empty when nothing does (optional or required).
    pub default: &'static str,
}

/// A command: the words that name it, its positional arguments and its flags.
pub struct Spec {
    pub words: &'static [&'static str],
    /// The positional arguments as the usage line shows them; empty for none.
    pub args: &'static str,
    pub summary: &'static str,
    pub flags: &'static [Flag],
    /// Flags that must be given.
    pub required: &'static [&'static str],
    /// More about the command, printed after its flags.
    pub notes: &'static str,
}

impl Spec {
    pub fn name(&self) -> String {
        self.words.join(" ")
    }

    pub fn flag(&self, name: &str) -> Option<&Flag> {
        self.flags.iter().find(|f| f.name == name)
    }
}

const DB: Flag = Flag {
    name: "db",
    value: "PATH",
    help: "the SQLite database file, or a PostgreSQL database as postgres://user:password@host:port/dbname",
    default: "$VOUCHD_DB, else ./vouchd.db",
};

const UTC_OFFSET: Flag = Flag {
    name: "utc-offset",
    value: "+HH:MM",
    help: "the shop's offset from UTC: times are written at it, and a date-only valid_until ends at 23:59:59 there",
    default: "+00:00",
};

const CURRENCY: Flag = Flag {
    name: "currency",
    value: "XXX",
    help: "the ISO 4217 currency wherever an amount comes without one",
    default: "EUR",
};

/// Flags that may be given more than once (their values add up).
pub const REPEATABLE: &[&str] = &["trusted-proxy"];

/// Every command, in the order the general help lists them.
pub const COMMANDS: &[Spec] = &[
    Spec {
        words: &["serve"],
        args: "",
        summary: "run the server: the JSON API, and the back-room page at /",
        flags: &[
            Flag {
                name: "db",
                value: "PATH",
                help: "the SQLite database file, created when new (and then a client `admin`, whose secret is printed once), or a PostgreSQL database as postgres://user:password@host:port/dbname",
                default: "$VOUCHD_DB, else ./vouchd.db",
            },
            Flag {
                name: "listen",
                value: "ADDR",
                help: "the address to listen on; port 0 picks a free one",
                default: "$VOUCHD_LISTEN, else 127.0.0.1:8080",
            },
            Flag {
                name: "threads",
                value: "N",
                help: "worker threads answering requests, 1 to 1024",
                default: "4 × the machine's cores",
            },
            Flag {
                name: "sync",
                value: "full|normal",
                help: "full: a write is on disk before it is answered; normal: a power cut may lose the last writes",
                default: "full",
            },
            UTC_OFFSET,
            CURRENCY,
            Flag {
                name: "rate-limit",
                value: "N",
                help: "API requests a second per client; a client may send up to twice that at once (at least 10), which its answers' RateLimit-Limit shows; 0 turns it off",
                default: "100",
            },
            Flag {
                name: "log-format",
                value: "text|json",
                help: "the format of the access log, one line per request on stderr",
                default: "text",
            },
            Flag {
                name: "max-connections",
                value: "N",
                help: "open connections at most; the next one is answered 503 and closed",
                default: "4096",
            },
            Flag {
                name: "max-connections-per-ip",
                value: "N",
                help: "open connections from one address at most",
                default: "256",
            },
            Flag {
                name: "idle-timeout",
                value: "SECONDS",
                help: "how long an idle keep-alive connection is kept, 1 to 3600",
                default: "10",
            },
            Flag {
                name: "public-url",
                value: "URL",
                help: "the server's URL as clients reach it (behind a proxy); links are built on it",
                default: "the request's Host",
            },
            Flag {
                name: "webhook-retry-for",
                value: "DURATION",
                help: "how long a webhook event is retried (90s, 30m, 24h, 7d) before its endpoint is disabled",
                default: "24h",
            },
            Flag {
                name: "webhook-first-retry",
                value: "DURATION",
                help: "the wait before a webhook's first retry; each later one doubles it, with jitter, up to 1h",
                default: "5s",
            },
            Flag {
                name: "trusted-proxy",
                value: "ADDR,...",
                help: "reverse proxies (IP addresses; repeatable) whose connections name the client in the last X-Forwarded-For entry: the login throttles and the access log use it, and the per-address cap does not count them",
                default: "none",
            },
        ],
        required: &[],
        notes: "SIGTERM or SIGINT (Ctrl-C) stops it gracefully: requests in flight are answered first; \
                a second signal stops it at once.",
    },
    Spec {
        words: &["demo"],
        args: "",
        summary: "fill a database without vouchers with a sample shop and print how to use it",
        flags: &[DB],
        required: &[],
        notes: "Prints each new client's id and secret once, the command that serves the file and \
                curl commands to try (at $VOUCHD_LISTEN, else 127.0.0.1:8080). A database that \
                holds vouchers is refused.",
    },
    Spec {
        words: &["group", "create"],
        args: "NAME",
        summary: "create a client group (a shop: its clients share its vouchers)",
        flags: &[
            Flag {
                name: "scopes",
                value: "SCOPE,...",
                help: "what the group's clients may do",
                default: "",
            },
            DB,
        ],
        required: &["scopes"],
        notes: "A group with the scope admin sees every group's vouchers and manages clients.",
    },
    Spec {
        words: &["client", "create"],
        args: "NAME",
        summary: "create a client of a group and print its client_id and secret (shown only now)",
        flags: &[
            Flag {
                name: "group",
                value: "GROUP",
                help: "the group's name or id; `admin` makes a client that sees every group",
                default: "",
            },
            Flag {
                name: "scopes",
                value: "SCOPE,...",
                help: "fewer scopes than the group's",
                default: "the group's scopes",
            },
            DB,
        ],
        required: &["group"],
        notes: "A client signs in (POST /oauth/token) with the printed client_id and \
                client_secret, not with its NAME.",
    },
    Spec {
        words: &["client", "list"],
        args: "",
        summary: "list the clients as JSON (never their secrets)",
        flags: &[DB],
        required: &[],
        notes: "",
    },
    Spec {
        words: &["client", "revoke"],
        args: "CLIENT_ID",
        summary: "revoke a client: it cannot sign in again and its tokens stop working within a second",
        flags: &[DB],
        required: &[],
        notes: "",
    },
    Spec {
        words: &["client", "connect-pin"],
        args: "",
        summary: "print a one-time PIN, valid 30 minutes, that a JTL client swaps for its own \
                  client_id and secret at POST /jtl/v1/clients/connect",
        flags: &[
            Flag {
                name: "group",
                value: "GROUP",
                help: "the group's name or id the new client joins",
                default: "",
            },
            Flag {
                name: "name",
                value: "NAME",
                help: "the name of the client the PIN creates",
                default: "JTL client",
            },
            DB,
        ],
        required: &["group"],
        notes: "The PIN is shown only now and works once.",
    },
    Spec {
        words: &["webhook", "add"],
        args: "URL",
        summary: "add a webhook endpoint of a group and print its secret (shown only now)",
        flags: &[
            Flag {
                name: "group",
                value: "GROUP",
                help: "the group's name or id whose events the endpoint receives",
                default: "",
            },
            Flag {
                name: "events",
                value: "TYPE,...",
                help: "the event types it receives, e.g. charge.created,refund.created",
                default: "* (every type)",
            },
            DB,
        ],
        required: &["group"],
        notes: "URL is http:// or https://. Each event is POSTed with a Vouchd-Signature header \
                (HMAC-SHA256 with the secret); docs/webhooks.md shows how to check it.",
    },
    Spec {
        words: &["webhook", "list"],
        args: "",
        summary: "list every group's webhook endpoints as JSON (never their secrets)",
        flags: &[DB],
        required: &[],
        notes: "",
    },
    Spec {
        words: &["webhook", "remove"],
        args: "ID",
        summary: "remove a webhook endpoint; its undelivered events are not sent",
        flags: &[DB],
        required: &[],
        notes: "",
    },
    Spec {
        words: &["backup"],
        args: "DEST",
        summary: "copy the database to a new file DEST, also while a server uses it",
        flags: &[DB],
        required: &[],
        notes: "DEST must not exist. The copy is the database as of the moment the backup began.",
    },
    Spec {
        words: &["copy"],
        args: "FROM TO",
        summary: "copy a whole database to another engine: a SQLite file to a postgres:// URL or back",
        flags: &[],
        required: &[],
        notes: "FROM and TO are each a SQLite file or a postgres://user:password@host/database URL. \
                Everything is copied: vouchers, the ledger, holds, groups and clients with their \
                secret hashes (clients sign in on the copy as before), tokens, idempotency records, \
                connect PINs, comments, webhook endpoints and events, settings. TO is created (a \
                file) or laid out (an empty PostgreSQL database) when new; a TO that holds vouchers \
                is refused, and one without has its own clients and groups replaced by FROM's. \
                FROM is read in one snapshot, so a server may keep running on it; TO is written in \
                one transaction, which is committed only after a check on TO: every table holds \
                FROM's number of rows, and every voucher's amount − charges + refunds = remaining \
                (discounts: uses = use entries) as on FROM. Stop the servers on FROM before \
                copying if no write may be left behind.",
    },
    Spec {
        words: &["export"],
        args: "[filter[NAME]=VALUE ...]",
        summary: "write every voucher (or those the filters select) as CSV",
        flags: &[
            Flag {
                name: "out",
                value: "FILE",
                help: "the file to write",
                default: "stdout",
            },
            UTC_OFFSET,
            DB,
        ],
        required: &[],
        notes: "The filters are the list's, e.g. 'filter[status]=active' 'filter[batch]=Winter'.",
    },
    Spec {
        words: &["import"],
        args: "FILE|-",
        summary: "add the vouchers of a CSV file (- reads stdin), all or nothing",
        flags: &[
            Flag {
                name: "client",
                value: "CLIENT_ID",
                help: "the client the vouchers belong to",
                default: "the oldest live client of group admin",
            },
            CURRENCY,
            UTC_OFFSET,
            DB,
        ],
        required: &[],
        notes: "The CSV is an export's. On a database without clients (a new file, say) it first \
                creates client `admin` as serve would, prints its secret once and imports for it. \
                If anything fails nothing is imported, and a file the import created is removed.",
    },
    Spec {
        words: &["help"],
        args: "[COMMAND]",
        summary: "this overview, or a command's help",
        flags: &[],
        required: &[],
        notes: "",
    },
];

/// The command named by the longest prefix of `args`.
pub fn find(args: &[String]) -> Option<&'static Spec> {
    COMMANDS
        .iter()
        .filter(|spec| {
            spec.words.len() <= args.len()
                && spec.words.iter().zip(args).all(|(w, a)| *w == a.as_str())
        })
        .max_by_key(|spec| spec.words.len())
}

/// The commands whose first word is `word`, when it names a family (`client`, `group`).
pub fn family(word: &str) -> Vec<&'static Spec> {
    COMMANDS
        .iter()
        .filter(|spec| spec.words.len() > 1 && spec.words[0] == word)
        .collect()
}

/// `vouchd client create NAME --group GROUP [OPTIONS]`.
pub fn synopsis(spec: &Spec) -> String {
    let mut line = format!("vouchd {}", spec.name());
    if !spec.args.is_empty() {
        let _ = write!(line, " {}", spec.args);
    }
    for name in spec.required {
        if let Some(flag) = spec.flag(name) {
            let _ = write!(line, " --{name} {}", flag.value);
        }
    }
    if spec.flags.len() > spec.required.len() {
        line.push_str(" [OPTIONS]");
    }
    line
}

/// `vouchd --help`: what vouchd is and every command in one line.
pub fn overview() -> String {
    let mut out = format!(
        "vouchd {}: a self-hosted voucher server; its data is one SQLite file.\n\n\
         usage: vouchd COMMAND [ARGUMENTS] [OPTIONS]\n\ncommands:\n",
        env!("CARGO_PKG_VERSION")
    );
    let usages: Vec<String> = COMMANDS
        .iter()
        .map(|s| format!("{} {}", s.name(), s.args).trim_end().to_string())
        .collect();
    let width = usages.iter().map(|u| u.chars().count()).max().unwrap_or(0);
    for (spec, usage) in COMMANDS.iter().zip(&usages) {
        let _ = writeln!(out, "  {usage:<width$}  {}", spec.summary);
    }
    out.push_str(
        "\n`vouchd COMMAND --help` shows a command's options and their defaults; \
         `vouchd --version` the version.\n",
    );
    out
}

/// `vouchd client --help`: the commands of a family.
pub fn family_help(word: &str, members: &[&Spec]) -> String {
    let mut out = format!("vouchd {word}: one of\n\n");
    for spec in members {
        let _ = writeln!(out, "  {}\n      {}", synopsis(spec), spec.summary);
    }
    let _ = writeln!(
        out,
        "\n`vouchd {word} COMMAND --help` shows a command's options and their defaults."
    );
    out
}

/// `vouchd serve --help`: the command's usage, every flag with its default, and notes.
pub fn help(spec: &Spec) -> String {
    let mut out = format!(
        "vouchd {}: {}\n\nusage: {}\n",
        spec.name(),
        spec.summary,
        synopsis(spec)
    );
    let labels: Vec<String> = spec
        .flags
        .iter()
        .map(|f| format!("--{} {}", f.name, f.value))
        .chain(["-h, --help".to_string()])
        .collect();
    let width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    out.push_str("\noptions:\n");
    for (flag, label) in spec.flags.iter().zip(&labels) {
        let mut text = flag.help.to_string();
        if spec.required.contains(&flag.name) {
            text.push_str(" (required)");
        } else if !flag.default.is_empty() {
            let _ = write!(text, " (default: {})", flag.default);
        }
        let _ = writeln!(out, "  {label:<width$}  {}", wrap(&text, width + 4));
    }
    let _ = writeln!(out, "  {:<width$}  show this help", "-h, --help");
    if spec.flag("scopes").is_some() {
        let _ = writeln!(out, "\nThe scopes: {}.", ALL_SCOPES.join(", "));
    }
    if !spec.notes.is_empty() {
        let _ = writeln!(out, "\n{}", wrap(spec.notes, 0));
    }
    out
}

/// Columns a help line is kept within.
const COLUMNS: usize = 100;

/// `text` broken into lines of at most [`COLUMNS`] (a longer word stays whole), each line after
/// the first indented by `indent`, which is also where the first one starts.
fn wrap(text: &str, indent: usize) -> String {
    let mut out = String::new();
    let mut column = indent;
    for word in text.split_whitespace() {
        let len = word.chars().count();
        if column > indent && column + 1 + len > COLUMNS {
            out.push('\n');
            out.extend(std::iter::repeat_n(' ', indent));
            column = indent;
        } else if column > indent {
            out.push(' ');
            column += 1;
        }
        out.push_str(word);
        column += len;
    }
    out
}

/// Why a scope was refused, with the ones there are.
pub fn unknown_scope(scope: &str) -> String {
    format!(
        "unknown scope {scope:?}; the scopes are {}",
        ALL_SCOPES.join(", ")
    )
}
