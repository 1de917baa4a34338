//! The parser's unit tests: arguments in, a command or a usage error out.

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

fn error(line: &str) -> String {
    match parse(&args(line)) {
        Err(e) => e.message,
        Ok(c) => panic!("{line} parsed: {c:?}"),
    }
}

#[test]
fn every_command_and_family_has_its_own_help() {
    for spec in spec::COMMANDS {
        let name = spec.name();
        for line in [format!("{name} --help"), format!("help {name}")] {
            let Ok(Command::Help(text)) = parse(&args(&line)) else {
                panic!("{line} is not a help");
            };
            assert!(text.contains(&spec::synopsis(spec)), "{line}: {text}");
            for flag in spec.flags {
                assert!(
                    text.contains(&format!("--{} ", flag.name)),
                    "{line}: {text}"
                );
            }
        }
    }
    for line in ["client --help", "help client", "group -h"] {
        assert!(
            matches!(parse(&args(line)), Ok(Command::Help(t)) if t.contains("create")),
            "{line}"
        );
    }
    assert!(
        matches!(parse(&args("--version")), Ok(Command::Help(t)) if t.starts_with("vouchd 0."))
    );
}

#[test]
fn an_unknown_option_is_named_whether_or_not_a_value_follows() {
    assert_eq!(error("serve --bogus"), "unknown option --bogus");
    assert_eq!(error("serve --bogus 1"), "unknown option --bogus");
    assert_eq!(error("serve --bogus=1"), "unknown option --bogus");
    assert_eq!(error("serve --db"), "--db needs a value");
    assert_eq!(error("serve --db --threads 2"), "--db needs a value");
}

#[test]
fn no_command_or_an_unknown_one_is_a_usage_error() {
    assert_eq!(error(""), "no command given");
    assert_eq!(error("frobnicate"), "unknown command \"frobnicate\"");
    assert_eq!(error("client"), "client needs a command");
    assert_eq!(error("client frob"), "unknown command \"client frob\"");
    assert_eq!(error("help frob"), "no command \"frob\"");
    assert_eq!(error("group create shop"), "group create needs --scopes");
}

#[test]
fn an_unknown_scope_names_the_valid_ones() {
    let text = spec::unknown_scope("foo");
    for scope in crate::auth::scope::ALL_SCOPES {
        assert!(text.contains(scope), "{text}");
    }
}

#[test]
fn serve_help_shows_the_defaults_the_parser_applies() {
    let serve = spec::find(&args("serve")).expect("serve is listed");
    let default = |name: &str| serve.flag(name).expect(name).default;
    assert_eq!(default("rate-limit"), DEFAULT_RATE_LIMIT.to_string());
    assert_eq!(
        default("max-connections"),
        DEFAULT_MAX_CONNECTIONS.to_string()
    );
    assert_eq!(
        default("max-connections-per-ip"),
        DEFAULT_MAX_CONNECTIONS_PER_IP.to_string()
    );
    assert_eq!(
        default("idle-timeout"),
        DEFAULT_IDLE_TIMEOUT_SECS.to_string()
    );
    assert!(default("listen").ends_with(DEFAULT_LISTEN));
    let Ok(Command::Serve(c)) = parse(&args("serve")) else {
        panic!("serve should parse");
    };
    assert_eq!(c.rate_limit, DEFAULT_RATE_LIMIT);
    assert_eq!(c.max_connections, DEFAULT_MAX_CONNECTIONS);
    assert_eq!(c.max_connections_per_ip, DEFAULT_MAX_CONNECTIONS_PER_IP);
    assert_eq!(c.idle_timeout.as_secs(), DEFAULT_IDLE_TIMEOUT_SECS);
}

#[test]
fn trusted_proxies_add_up_over_repeats_and_comma_lists() {
    let Ok(Command::Serve(c)) = parse(&args(
        "serve --trusted-proxy 10.0.0.1,10.0.0.2 --trusted-proxy ::1",
    )) else {
        panic!("serve should parse");
    };
    let want: Vec<std::net::IpAddr> = ["10.0.0.1", "10.0.0.2", "::1"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    assert_eq!(c.trusted_proxies, want);
    let Ok(Command::Serve(c)) = parse(&args("serve")) else {
        panic!("serve should parse");
    };
    assert!(c.trusted_proxies.is_empty());
    assert!(parse(&args("serve --trusted-proxy proxy.example")).is_err());
    assert!(parse(&args("serve --threads 2 --threads 3")).is_err());
}
