//! The layers as the source draws them: every `crate::…` path in `src/` (the `use` lines and
//! paths written out in code) is an arrow from its file's module to the module it names.
//!
//! The rules: `domain` imports nothing of the crate outside `domain`; `store` imports only
//! `store`, `domain` and `pace` (a thread's turn, given away while it waits); `pace` imports
//! nothing; `ops` does not import `http`; no file outside `src/store/` names
//! `rusqlite` or runs a statement on the store's `Db` handle (callers only pass it to the
//! store's operations); no two modules (files) import each other, directly or round a longer
//! circle; and no two top-level modules (`http`, `api`, `store`, `web`, …) do either, so the
//! layers form one order (`http` → `api` → `store` → `domain`, with the request and reply types
//! in `web`, below both `http` and `api`). A broken rule fails with the file that breaks it; a
//! circle of top-level modules names one file (and the path it writes) for each of its arrows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One source file: its module path (`store::writer`), its name, and its code.
struct Source {
    module: String,
    file: String,
    code: String,
}

/// Every `.rs` file under `src/`, whole-line comments dropped (doc links name paths too).
fn sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files
        .into_iter()
        .map(|path| {
            let rel = path.strip_prefix(&root).expect("under src");
            let text = std::fs::read_to_string(&path).expect("a readable source file");
            Source {
                module: module_of(rel),
                file: format!("src/{}", rel.display()),
                code: without_comments(&text),
            }
        })
        .collect()
}

fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a readable directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            walk(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// `store/writer.rs` → `store::writer`, `store/mod.rs` → `store`, `lib.rs` → `crate`.
fn module_of(rel: &Path) -> String {
    let text = rel
        .to_string_lossy()
        .trim_end_matches(".rs")
        .replace('/', "::");
    let text = text.trim_end_matches("::mod").to_string();
    match text.as_str() {
        "lib" | "main" => "crate".into(),
        _ => text,
    }
}

fn without_comments(text: &str) -> String {
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path that follows `crate::` in `code`, braces expanded: `crate::store::{self,
/// clients::Client}` gives `store` and `store::clients::Client`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `vouchd_crate::` or the like
        }
        let mut chars = rest.chars().peekable();
        tree(&mut chars, String::new(), &mut found);
    }
    found
}

/// Reads one use-tree after `prefix`: a path, then maybe `::{…}` of further trees.
fn tree(chars: &mut std::iter::Peekable<std::str::Chars>, prefix: String, found: &mut Vec<String>) {
    let mut path = prefix;
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek() == Some(&'{') {
            chars.next();
            loop {
                tree(chars, path.clone(), found);
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                match chars.next() {
                    Some(',') => {
                        while chars.peek().is_some_and(|c| c.is_whitespace()) {
                            chars.next();
                        }
                        if chars.peek() == Some(&'}') {
                            chars.next();
                            return;
                        }
                    }
                    _ => return,
                }
            }
        }
        let mut segment = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_alphanumeric() || c == '_' || c == '*' {
                segment.push(c);
                chars.next();
            } else {
                break;
            }
        }
        if !segment.is_empty() && segment != "self" && segment != "*" {
            if !path.is_empty() {
                path.push_str("::");
            }
            path.push_str(&segment);
        }
        let mut ahead = chars.clone();
        if ahead.next() == Some(':') && ahead.next() == Some(':') {
            chars.next();
            chars.next();
            continue;
        }
        if !path.is_empty() {
            found.push(path);
        }
        return;
    }
}

/// The module a path lands in: its longest prefix that is a module of `modules`.
fn target(path: &str, modules: &BTreeSet<String>) -> Option<String> {
    let segments: Vec<&str> = path.split("::").collect();
    (1..=segments.len())
        .rev()
        .map(|n| segments[..n].join("::"))
        .find(|m| modules.contains(m))
}

fn top(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
}

/// The engine calls that run SQL or transactions on a connection.
const STATEMENT_CALLS: &[&str] = &[
    ".prepare(",
    ".prepare_cached(",
    ".execute(",
    ".execute_batch(",
    ".query_row(",
    ".query_map(",
    ".pragma_update(",
    ".pragma_query_value(",
    ".unchecked_transaction(",
    ".transaction_with_behavior(",
];

/// Every rule `sources` break, each naming its file.
fn broken_rules(sources: &[Source]) -> Vec<String> {
    let modules: BTreeSet<String> = sources.iter().map(|s| s.module.clone()).collect();
    let mut broken = Vec::new();
    let mut arrows: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    // Between top-level modules: each arrow with the first file (by name) that draws it.
    let mut top_arrows: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut witness: BTreeMap<(String, String), (&str, String)> = BTreeMap::new();
    for source in sources {
        let from = source.module.as_str();
        if !source.file.starts_with("src/store/") && source.code.contains("rusqlite") {
            broken.push(format!(
                "{}: names rusqlite; only src/store/ may (the store's face is its operations)",
                source.file
            ));
        }
        if !source.file.starts_with("src/store/") {
            for call in STATEMENT_CALLS {
                if source.code.contains(call) {
                    broken.push(format!(
                        "{}: runs {call}…) on a connection; only src/store/ may",
                        source.file
                    ));
                }
            }
        }
        for path in crate_paths(&source.code) {
            let Some(to) = target(&path, &modules) else {
                continue;
            };
            let allowed = match top(from) {
                "domain" => top(&to) == "domain",
                "store" => matches!(top(&to), "store" | "domain" | "pace"),
                "pace" => top(&to) == "pace",
                "ops" => top(&to) != "http",
                _ => true,
            };
            if !allowed {
                broken.push(format!(
                    "{}: {} may not import crate::{path}",
                    source.file,
                    top(from)
                ));
            }
            if to != from && to != "crate" && from != "crate" {
                if top(from) != top(&to) {
                    top_arrows
                        .entry(top(from))
                        .or_default()
                        .insert(top(&to).into());
                    let key = (top(from).to_string(), top(&to).to_string());
                    let seen = witness
                        .entry(key)
                        .or_insert((source.file.as_str(), path.clone()));
                    if source.file.as_str() < seen.0 {
                        *seen = (source.file.as_str(), path.clone());
                    }
                }
                arrows.entry(from).or_default().insert(to);
            }
        }
    }
    let files: BTreeMap<&str, &str> = sources
        .iter()
        .map(|s| (s.module.as_str(), s.file.as_str()))
        .collect();
    for circle in circles(&arrows) {
        let names: Vec<&str> = circle
            .iter()
            .map(|m| files.get(m.as_str()).copied().unwrap_or(m))
            .collect();
        broken.push(format!("import circle: {}", names.join(" → ")));
    }
    for circle in circles(&top_arrows) {
        let by: Vec<String> = circle
            .windows(2)
            .map(|pair| {
                let (file, path) = &witness[&(pair[0].clone(), pair[1].clone())];
                format!("{file} imports crate::{path}")
            })
            .collect();
        broken.push(format!(
            "module circle: {} ({})",
            circle.join(" → "),
            by.join("; ")
        ));
    }
    broken
}

/// Each circle in the arrows once, as the modules round it (the first one again at the end).
fn circles(arrows: &BTreeMap<&str, BTreeSet<String>>) -> Vec<Vec<String>> {
    let mut found: Vec<Vec<String>> = Vec::new();
    let mut seen: BTreeSet<BTreeSet<String>> = BTreeSet::new();
    for &start in arrows.keys() {
        // Depth-first from `start`, looking for a way back to it through larger names only, so
        // each circle is found from its smallest module.
        let mut stack: Vec<(String, Vec<String>)> = vec![(start.to_string(), vec![start.into()])];
        while let Some((at, path)) = stack.pop() {
            for next in arrows.get(at.as_str()).into_iter().flatten() {
                if next == start {
                    let members: BTreeSet<String> = path.iter().cloned().collect();
                    if seen.insert(members) {
                        let mut circle = path.clone();
                        circle.push(start.into());
                        found.push(circle);
                    }
                } else if next.as_str() > start && !path.contains(next) && path.len() < 8 {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    found
}

#[test]
fn the_layers_hold_no_arrow_against_the_rules_and_no_circle() {
    let sources = sources();
    assert!(
        sources.iter().any(|s| s.module == "store::writer"),
        "the sources were read"
    );
    let broken = broken_rules(&sources);
    assert!(broken.is_empty(), "\n{}\n", broken.join("\n"));
}

fn source(module: &str, code: &str) -> Source {
    Source {
        module: module.into(),
        file: format!("src/{}.rs", module.replace("::", "/")),
        code: code.into(),
    }
}

#[test]
fn the_rules_catch_a_forbidden_use_a_rusqlite_name_a_statement_and_a_circle() {
    let sources = [
        source("domain::money", "use crate::domain::{clock, code::Code};"),
        source("domain::clock", "fn f() {}"),
        source("domain::code", "fn f() {}"),
        source(
            "store::vouchers",
            "use crate::{domain::money, http::response::Reply};",
        ),
        source("http::response", "use crate::api::native;"),
        source(
            "api::native",
            "let r: crate::http::response::Reply = todo!();",
        ),
        source("ops::log", "use crate::http::response;"),
        source("api::stats", "fn f(c: &rusqlite::Connection) {}"),
        source(
            "api::admin",
            "ctx.conn.execute_batch(\"DELETE FROM vouchers\")?;",
        ),
    ];
    let broken = broken_rules(&sources);
    assert_eq!(
        broken,
        vec![
            "src/store/vouchers.rs: store may not import crate::http::response::Reply",
            "src/ops/log.rs: ops may not import crate::http::response",
            "src/api/stats.rs: names rusqlite; only src/store/ may (the store's face is its operations)",
            "src/api/admin.rs: runs .execute_batch(…) on a connection; only src/store/ may",
            "import circle: src/api/native.rs → src/http/response.rs → src/api/native.rs",
            "module circle: api → http → api (src/api/native.rs imports crate::http::response::Reply; \
             src/http/response.rs imports crate::api::native)",
        ]
    );
}

#[test]
fn a_circle_of_top_level_modules_is_caught_though_no_file_circle_is() {
    // No file imports itself round a circle, but http → api → error → http does.
    let sources = [
        source("http::router", "use crate::api::native;"),
        source("http::wire", "fn f() {}"),
        source("http::request", "use crate::web::request::Request;"),
        source(
            "api::native",
            "use crate::{error::ApiError, web::response::Reply};",
        ),
        source("api::jtl", "use crate::error::ApiError;"),
        source("error", "fn f(h: crate::http::wire::Head) {}"),
        source("web::request", "fn f() {}"),
        source("web::response", "fn f() {}"),
    ];
    assert_eq!(
        broken_rules(&sources),
        vec![
            "module circle: api → error → http → api (src/api/jtl.rs imports crate::error::ApiError; \
             src/error.rs imports crate::http::wire::Head; src/http/router.rs imports crate::api::native)"
        ]
    );
    // Take the arrow back out of `error`, and the order holds.
    let mut fixed = sources;
    fixed[5] = source("error", "fn f() {}");
    assert_eq!(broken_rules(&fixed), Vec::<String>::new());
}

#[test]
fn paths_are_read_through_braces_and_line_breaks() {
    let code = "use crate::store::{self,\n    clients::{Client, Group},\n    vouchers,\n};\nlet x = crate::domain::clock::now();";
    assert_eq!(
        crate_paths(code),
        vec![
            "store",
            "store::clients::Client",
            "store::clients::Group",
            "store::vouchers",
            "domain::clock::now",
        ]
    );
}
