//! The command line as a person meets it (issue 20): the real binary, every command from the
//! CLI's own list (`vouchd::cli::spec::COMMANDS`) answering `--help`, the version, and the
//! usage errors that name what is wrong.

use crate::common::*;
use std::collections::BTreeSet;
use std::process::{Command, Output};
use std::sync::Arc;
use vouchd::cli::spec::COMMANDS;

fn vouchd(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("VOUCHD_DB")
        .env_remove("VOUCHD_LISTEN")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn every_command_and_subcommand_answers_help_with_its_flags_and_defaults() {
    for spec in COMMANDS {
        let mut line: Vec<&str> = spec.words.to_vec();
        line.push("--help");
        let out = vouchd(&line);
        let help = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{line:?}: {}",
            text(&out.stderr)
        );
        assert!(
            help.contains(&format!("usage: vouchd {}", spec.name())),
            "{line:?}:\n{help}"
        );
        // The help's wrapped lines joined, so a default broken over two lines is still found.
        let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
        for flag in spec.flags {
            assert!(
                flat.contains(&format!("--{} {}", flag.name, flag.value)),
                "{line:?} lacks --{}:\n{help}",
                flag.name
            );
            if !flag.default.is_empty() && !spec.required.contains(&flag.name) {
                assert!(
                    flat.contains(&format!("(default: {})", flag.default)),
                    "{line:?} lacks the default of --{}:\n{help}",
                    flag.name
                );
            }
        }
        // `vouchd help WORDS` says the same.
        let mut asked: Vec<&str> = vec!["help"];
        asked.extend(spec.words);
        let out = vouchd(&asked);
        assert_eq!(out.status.code(), Some(0), "{asked:?}");
        assert_eq!(text(&out.stdout), help, "{asked:?}");
    }
    let families: BTreeSet<&str> = COMMANDS
        .iter()
        .filter(|s| s.words.len() > 1)
        .map(|s| s.words[0])
        .collect();
    assert!(families.contains("client"), "{families:?}");
    for family in families {
        let out = vouchd(&[family, "--help"]);
        assert_eq!(out.status.code(), Some(0), "{family} --help");
        for spec in COMMANDS.iter().filter(|s| s.words[0] == family) {
            assert!(
                text(&out.stdout).contains(&format!("vouchd {}", spec.name())),
                "{family} --help lacks {}:\n{}",
                spec.name(),
                text(&out.stdout)
            );
        }
    }
}

#[test]
fn the_overview_lists_every_command() {
    let out = vouchd(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let overview = text(&out.stdout);
    for spec in COMMANDS {
        assert!(
            overview.contains(&format!("  {}", spec.name())),
            "{}:\n{overview}",
            spec.name()
        );
    }
    assert_eq!(text(&vouchd(&["help"]).stdout), overview);
}

#[test]
fn bare_vouchd_prints_the_usage_and_exits_2() {
    let out = vouchd(&[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("usage: vouchd COMMAND"), "{stderr}");
    assert!(stderr.contains("serve"), "{stderr}");
}

#[test]
fn version_prints_the_package_version() {
    let out = vouchd(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        format!("vouchd {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn an_unknown_option_is_called_one_with_or_without_a_value() {
    for line in [&["serve", "--bogus"][..], &["serve", "--bogus", "1"]] {
        let out = vouchd(line);
        assert_eq!(out.status.code(), Some(2), "{line:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with("vouchd: unknown option --bogus\n"),
            "{line:?}: {stderr}"
        );
        assert!(stderr.contains("vouchd serve --help"), "{stderr}");
    }
}

#[test]
fn an_unknown_scope_lists_the_valid_ones() {
    let dir = TempDir::new();
    let db = dir.path().join("v.db");
    let db = db.to_string_lossy();
    let out = vouchd(&["group", "create", "shop", "--scopes", "foo", "--db", &db]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("unknown scope \"foo\""), "{stderr}");
    for scope in ALL_SCOPES {
        assert!(stderr.contains(scope), "{stderr}");
    }
}

/// `vouchd import CSV --db DB` and more arguments, run in `dir`.
fn import(dir: &TempDir, csv: &str, db: &str, more: &[&str]) -> Output {
    let file = dir.path().join("in.csv");
    std::fs::write(&file, csv).expect("write in.csv");
    let mut args = vec!["import", file.to_str().expect("UTF-8 path"), "--db", db];
    args.extend(more);
    vouchd(&args)
}

#[test]
fn import_into_a_new_file_creates_its_admin_and_imports_for_it() {
    let dir = Arc::new(TempDir::new());
    let db = dir.db();
    let out = import(&dir, "code,amount,currency\nNEWFILE1,25.00,EUR\n", &db, &[]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(text(&out.stdout).trim(), r#"{"imported":1}"#);
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("vouchd: created admin client "))
        .unwrap_or_else(|| panic!("no admin line: {stderr}"));
    let admin: serde_json::Value = serde_json::from_str(line).expect("admin JSON");
    let id = admin["client_id"].as_str().unwrap_or_default().to_string();
    let secret = admin["client_secret"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let server = TestServer::start_in(dir, &[], Some((id.clone(), secret)));
    assert!(!server.printed_admin, "serve made a second admin");
    let r = server.list(&server.admin_token(), "filter[code]=NEWFILE1");
    assert_eq!(r.json["meta"]["total"], 1, "{}", r.body);
    assert_eq!(r.json["data"][0]["client_id"], id.as_str(), "{}", r.body);
}

#[test]
fn a_failed_import_into_a_new_file_leaves_no_file_and_says_why() {
    if engine_is_postgres() {
        return; // SQLite-only: about the database file a failed import must not leave behind.
    }
    let dir = TempDir::new();
    let db = dir.path().join("new.db");
    let path = db.to_str().expect("UTF-8 path");
    let cases: [(&str, &[&str], &str); 2] = [
        (
            "amount\n25.00\n",
            &["--client", "NOSUCHCLIENT0000"],
            "no client",
        ),
        ("amount\n-1\n", &[], "row 1: amount"),
    ];
    for (csv, more, why) in cases {
        let out = import(&dir, csv, path, more);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{more:?}: {stderr}");
        assert!(stderr.contains(why), "{more:?}: {stderr}");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("read the dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("new.db"))
            .collect();
        assert!(left.is_empty(), "{more:?} left {left:?}");
    }
}

#[test]
fn a_failed_import_into_an_existing_file_keeps_it_and_its_clients() {
    let server = TestServer::start();
    let dir = TempDir::new();
    let out = import(&dir, "amount\n-1\n", &server.db, &[]);
    assert!(!out.status.success());
    let r = server.list(&server.admin_token(), "per_page=1");
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn rate_limit_limit_header_is_the_burst_twice_the_default_rate_as_the_readme_says() {
    let default = vouchd::cli::DEFAULT_RATE_LIMIT;
    let server = TestServer::start_with(&["--rate-limit", &default.to_string()]);
    let r = server.list(&server.admin_token(), "per_page=1");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("ratelimit-limit"), Some("200"));
    assert_eq!(default * 2, 200, "the README's figures follow the default");
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let flat = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("which is twice `--rate-limit` (at least 10), so `200` at the default"),
        "the README explains RateLimit-Limit"
    );
}
