//! The command line as a person meets it (issue 20): the real binary, every command from the
//! CLI's own list (`vouchd::cli::spec::COMMANDS`) answering `--help`, the version, and the
//! usage errors that name what is wrong.

use crate::common::*;
use std::collections::BTreeSet;
use std::process::{Command, Output};
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
