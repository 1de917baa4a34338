//! The README and `vouchd demo` tell a person what to type; these tests type it (issue 20).
//!
//! A `Session` is what the README's install step leaves: `vouchd` on `PATH` (here a link to the
//! binary under test), a shell in a fresh directory, and a server started when the text says
//! so. Every fenced ```sh block of README.md carries a marker on the line before it:
//! `<!-- test: run -->` (run in one shell session, in order, every command must succeed;
//! `run (prints TEXT)` also wants a line TEXT in its output),
//! `<!-- test: serve -->` (one command that runs a server: started in the background, stopped
//! before the next one) or `<!-- test: skip (why) -->` (builds, installs, the test suite).
//! The only change made to the text is the address: `127.0.0.1:8080` becomes the free port the
//! session took, which `VOUCHD_LISTEN` also names, so `vouchd serve` without `--listen` uses it.
//! `curl` fails on an HTTP error (`--fail-with-body`), so a refused request fails the test.

use crate::common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long one block or one server start may take.
const BLOCK_LIMIT: Duration = Duration::from_secs(120);
const README_ADDRESS: &str = "127.0.0.1:8080";

/// A fenced block of the README and the marker before it.
#[derive(Debug)]
struct Block {
    marker: String,
    text: String,
    line: usize,
}

fn readme() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every ```sh block with the marker on the line just before it ("" when there is none).
fn sh_blocks(text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim_end() == "```sh" {
            let marker = match i.checked_sub(1).map(|p| lines[p].trim()) {
                Some(l) if l.starts_with("<!-- test:") && l.ends_with("-->") => l
                    ["<!-- test:".len()..l.len() - "-->".len()]
                    .trim()
                    .to_string(),
                _ => String::new(),
            };
            let start = i + 1;
            let mut end = start;
            while end < lines.len() && lines[end].trim_end() != "```" {
                end += 1;
            }
            blocks.push(Block {
                marker,
                text: lines[start..end].join("\n"),
                line: start,
            });
            i = end;
        }
        i += 1;
    }
    blocks
}

/// Lines a child wrote, gathered by a thread so the child never blocks on a full pipe.
fn gather(from: impl Read + Send + 'static, into: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(from);
        let mut line = String::new();
        while matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
            if let Ok(mut all) = into.lock() {
                all.push_str(&line);
            }
            line.clear();
        }
    });
}

fn snapshot(text: &Mutex<String>) -> String {
    text.lock().map(|t| t.clone()).unwrap_or_default()
}

/// A server command running in the background, stopped (SIGTERM, then SIGKILL) when dropped.
struct Background {
    child: Child,
    output: Arc<Mutex<String>>,
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the README's install step leaves, and one shell in a fresh directory.
struct Session {
    dir: TempDir,
    addr: String,
    path: String,
    shell: Child,
    stdin: ChildStdin,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    failures: PathBuf,
    blocks_run: usize,
    server: Option<Background>,
}

impl Session {
    fn new() -> Session {
        let curl = Command::new("curl").arg("--version").output();
        assert!(
            curl.is_ok_and(|o| o.status.success()),
            "curl is needed: the README's commands use it (Debian: apt-get install curl)"
        );
        let dir = TempDir::new();
        let bin = dir.path().join("bin");
        let work = dir.path().join("work");
        for d in [&bin, &work] {
            std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        }
        std::os::unix::fs::symlink(BIN, bin.join("vouchd")).expect("link vouchd into bin/");
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let addr = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            probe.local_addr().expect("its address").to_string()
        };
        let failures = dir.path().join("failures.txt");
        let mut shell = Command::new("bash")
            .args(["--noprofile", "--norc", "-s"])
            .current_dir(&work)
            .env("PATH", &path)
            .env("VOUCHD_LISTEN", &addr)
            .env_remove("VOUCHD_DB")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start bash");
        let (stdout, stderr) = (Arc::default(), Arc::default());
        gather(shell.stdout.take().expect("stdout"), Arc::clone(&stdout));
        gather(shell.stderr.take().expect("stderr"), Arc::clone(&stderr));
        let stdin = shell.stdin.take().expect("stdin");
        let mut session = Session {
            dir,
            addr,
            path,
            shell,
            stdin,
            stdout,
            stderr,
            failures,
            blocks_run: 0,
            server: None,
        };
        // Every failing command is written down; curl treats an HTTP error as one.
        session.send(&format!(
            "set -o pipefail -o errtrace\n\
             trap 'echo \"exit $?: $BASH_COMMAND\" >> {}' ERR\n\
             curl() {{ command curl --fail-with-body --max-time 30 \"$@\"; }}\n",
            session.failures.display()
        ));
        session
    }

    fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    fn send(&mut self, text: &str) {
        self.stdin
            .write_all(text.as_bytes())
            .and_then(|()| self.stdin.flush())
            .expect("write to bash");
    }

    /// Runs `text` in the session's shell (its variables stay for the next block) and fails
    /// the test, showing what happened, if any command in it failed; returns its stdout.
    fn run(&mut self, what: &str, text: &str) -> String {
        self.blocks_run += 1;
        let end = format!("__end_of_block_{}__", self.blocks_run);
        let text = text.replace(README_ADDRESS, &self.addr);
        let (out_before, err_before) = (snapshot(&self.stdout).len(), snapshot(&self.stderr).len());
        // stdin is the script itself: a command that reads stdin reads nothing instead.
        self.send(&format!(
            "{{\n{text}\n}} < /dev/null\nprintf '\\n{end}\\n'\n"
        ));
        let started = Instant::now();
        while !snapshot(&self.stdout)[out_before..].contains(&end) {
            if started.elapsed() > BLOCK_LIMIT || matches!(self.shell.try_wait(), Ok(Some(_))) {
                panic!(
                    "{what} did not finish:\n{text}\n{}",
                    self.output(out_before, err_before)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let failed = std::fs::read_to_string(&self.failures).unwrap_or_default();
        if !failed.is_empty() {
            panic!(
                "{what} failed:\n{failed}\n--- the text:\n{text}\n{}",
                self.output(out_before, err_before)
            );
        }
        let out = snapshot(&self.stdout);
        let printed = &out[out_before..];
        printed[..printed.find(&end).unwrap_or(printed.len())].to_string()
    }

    fn output(&self, out_from: usize, err_from: usize) -> String {
        let server = self
            .server
            .as_ref()
            .map(|s| snapshot(&s.output))
            .unwrap_or_default();
        format!(
            "--- stdout:\n{}\n--- stderr:\n{}\n--- the server's output:\n{server}",
            &snapshot(&self.stdout)[out_from..],
            &snapshot(&self.stderr)[err_from..]
        )
    }

    /// Stops the running server, if any, then starts `line` in the background and waits
    /// until it listens.
    fn serve(&mut self, what: &str, line: &str) {
        self.server = None;
        let line = line.replace(README_ADDRESS, &self.addr);
        let mut child = Command::new("bash")
            .args(["--noprofile", "--norc", "-c", &format!("exec {line}")])
            .current_dir(self.work())
            .env("PATH", &self.path)
            .env("VOUCHD_LISTEN", &self.addr)
            .env_remove("VOUCHD_DB")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{what}: cannot start {line}: {e}"));
        let output = Arc::new(Mutex::new(String::new()));
        gather(child.stdout.take().expect("stdout"), Arc::clone(&output));
        gather(child.stderr.take().expect("stderr"), Arc::clone(&output));
        let mut server = Background { child, output };
        let started = Instant::now();
        let wanted = format!("vouchd listening on http://{}", self.addr);
        while !snapshot(&server.output).contains(&wanted) {
            let exited = matches!(server.child.try_wait(), Ok(Some(_)));
            if exited || started.elapsed() > BLOCK_LIMIT {
                panic!(
                    "{what}: {line} did not listen:\n{}",
                    snapshot(&server.output)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.server = Some(server);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.server = None;
        let _ = self.shell.kill();
        let _ = self.shell.wait();
    }
}

/// `run (prints TEXT)`: a block whose output must hold a line TEXT.
fn prints(marker: &str) -> Option<&str> {
    marker.strip_prefix("run (prints ")?.strip_suffix(')')
}

#[test]
fn every_shell_block_in_the_readme_is_marked_run_serve_or_skip() {
    let blocks = sh_blocks(&readme());
    assert!(blocks.len() > 5, "{blocks:?}");
    for b in &blocks {
        let known = b.marker == "run"
            || b.marker == "serve"
            || prints(&b.marker).is_some()
            || (b.marker.starts_with("skip (") && b.marker.ends_with(')'));
        assert!(
            known,
            "README.md line {}: a ```sh block needs <!-- test: run|serve|skip (why) --> on the \
             line before it, found {:?}",
            b.line, b.marker
        );
        if b.marker == "serve" {
            assert_eq!(
                b.text.trim().lines().count(),
                1,
                "line {}: one command",
                b.line
            );
        }
    }
}

#[test]
fn readme_shell_blocks_run_as_written_after_the_install_step() {
    let text = readme();
    let blocks = sh_blocks(&text);
    let mut session = Session::new();
    let mut ran = 0;
    for b in &blocks {
        let what = format!("README.md line {}", b.line);
        match b.marker.as_str() {
            "run" => {
                session.run(&what, &b.text);
            }
            "serve" => session.serve(&what, b.text.trim()),
            marker => match prints(marker) {
                Some(wanted) => {
                    let out = session.run(&what, &b.text);
                    assert!(
                        out.lines().any(|l| l.trim() == wanted),
                        "{what} should print a line {wanted:?}:\n{out}"
                    );
                }
                None => continue,
            },
        }
        ran += 1;
    }
    assert!(ran >= 8, "only {ran} blocks ran");
}

#[test]
fn readme_and_sources_point_at_nothing_outside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    let mut dirs = vec![root.join("src"), root.join("docs")];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    let mut found = Vec::new();
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            if line.contains("../shared") || line.contains("SPEC §") {
                found.push(format!("{}:{}: {line}", file.display(), n + 1));
            }
        }
    }
    assert!(files.len() > 20, "{files:?}");
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// What `vouchd demo` printed, split as a person reads it.
struct Printout {
    /// `TILL_1_ID=… TILL_1_SECRET=…` lines.
    variables: Vec<String>,
    /// Commands in `#   vouchd …` comments (how to get another admin client).
    commented: Vec<String>,
    /// The line under "Start the server:".
    serve: String,
    /// The lines under "Then, in another terminal".
    script: String,
}

impl Printout {
    fn parse(stdout: &str) -> Printout {
        let lines: Vec<&str> = stdout.lines().collect();
        let at = |heading: &str| {
            lines
                .iter()
                .position(|l| l.starts_with(heading))
                .unwrap_or_else(|| panic!("no {heading:?} in:\n{stdout}"))
        };
        let (clients, start, then) = (at("Clients."), at("Start the server:"), at("Then,"));
        let code = |from: usize, to: usize| -> Vec<String> {
            lines[from..to]
                .iter()
                .filter_map(|l| l.strip_prefix("  "))
                .map(str::to_string)
                .collect()
        };
        let client_lines = code(clients + 1, start);
        Printout {
            variables: client_lines
                .iter()
                .filter(|l| !l.starts_with('#'))
                .cloned()
                .collect(),
            commented: client_lines
                .iter()
                .filter_map(|l| l.strip_prefix("#   "))
                .map(str::to_string)
                .collect(),
            serve: code(start + 1, then).join("\n"),
            script: code(then + 1, lines.len()).join("\n"),
        }
    }
}

/// Runs `vouchd demo` as installed (from `PATH`) or, with `installed` false, by the binary's
/// path with no `vouchd` on `PATH`.
fn demo(session: &Session, db: &str, installed: bool) -> String {
    let (program, path) = if installed {
        ("vouchd", session.path.clone())
    } else {
        (BIN, std::env::var("PATH").unwrap_or_default())
    };
    let out = Command::new(program)
        .args(["demo", "--db", db])
        .current_dir(session.work())
        .env("PATH", path)
        .env("VOUCHD_LISTEN", &session.addr)
        .env_remove("VOUCHD_DB")
        .output()
        .expect("run vouchd demo from PATH");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn demo_prints_commands_that_run_as_printed() {
    let mut session = Session::new();
    let printed = Printout::parse(&demo(&session, "shop.db", true));
    assert_eq!(printed.serve, "vouchd serve --db shop.db");
    assert!(printed.variables.len() >= 6, "{:?}", printed.variables);
    session.serve("demo's serve", &printed.serve);
    session.run("demo's client variables", &printed.variables.join("\n"));
    session.run("demo's curl commands", &printed.script);
    assert!(
        printed
            .script
            .lines()
            .filter(|l| l.contains("curl"))
            .count()
            >= 4,
        "{}",
        printed.script
    );
    // The token came back and the example card was found by its code.
    session.run(
        "check",
        "case \"$TOKEN\" in '' | *'{'* | *' '*) false ;; esac",
    );
}

#[test]
fn demo_on_a_file_with_clients_prints_a_runnable_way_to_another_admin() {
    let mut session = Session::new();
    session.run(
        "a first client",
        "vouchd client create first --group admin --db old.db",
    );
    let printed = Printout::parse(&demo(&session, "old.db", true));
    assert!(
        !printed.variables.iter().any(|l| l.starts_with("ADMIN_ID=")),
        "{:?}",
        printed.variables
    );
    assert_eq!(printed.commented.len(), 1, "{:?}", printed.commented);
    let command = &printed.commented[0];
    assert!(command.starts_with("vouchd client create "), "{command}");
    session.run(
        "demo's hint",
        &format!("NEW=$({command})\necho \"$NEW\" | grep -q '\"client_secret\":\"'"),
    );
}

#[test]
fn demo_run_without_installing_prints_its_own_path_and_that_runs() {
    let mut session = Session::new();
    let printed = Printout::parse(&demo(&session, "shop.db", false));
    let exe = std::fs::canonicalize(BIN).expect("the binary's path");
    assert_eq!(
        printed.serve,
        format!("{} serve --db shop.db", exe.display()),
        "a bare `vouchd` is not found when it is not installed"
    );
    session.serve("demo's serve", &printed.serve);
    session.run("demo's client variables", &printed.variables.join("\n"));
    session.run("demo's curl commands", &printed.script);
}

/// Every route the server answers, as `METHOD /path` in OpenAPI's spelling: the native table,
/// the CareCloud and POS dialects' and JTL's (whose table is below `/jtl`).
fn every_route() -> Vec<String> {
    use vouchd::http::router::{CARECLOUD_ROUTES, POS_ROUTES, ROUTES};
    let full = [ROUTES, CARECLOUD_ROUTES, POS_ROUTES]
        .concat()
        .into_iter()
        .map(|(method, path)| format!("{method} {path}"));
    let jtl = vouchd::api::jtl::ROUTES
        .iter()
        .map(|(method, path)| format!("{method} /jtl{path}"));
    full.chain(jtl).collect()
}

/// The README's "## Routes" section, up to the next section.
fn routes_section(text: &str) -> &str {
    let start = text.find("\n## Routes\n").expect("a Routes section");
    let end = text[start + 1..]
        .find("\n## ")
        .map_or(text.len(), |n| start + 1 + n);
    &text[start..end]
}

#[test]
fn readme_route_overview_names_every_route_of_the_router_and_the_dialects() {
    let text = readme();
    let section = routes_section(&text);
    let routes = every_route();
    assert!(routes.len() > 50, "{routes:?}");
    let missing: Vec<&String> = routes
        .iter()
        .filter(|route| !section.contains(&format!("`{route}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "not in the README's routes: {missing:?}"
    );
}

#[test]
fn readme_route_overview_names_no_route_the_server_does_not_have() {
    let text = readme();
    let routes = every_route();
    // Every `METHOD /path` in backticks anywhere in the README's prose (fenced blocks aside).
    let mut fenced = false;
    let prose: Vec<&str> = text
        .lines()
        .filter(|line| {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect();
    let prose = prose.join("\n");
    let named: Vec<&str> = prose
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|quoted| {
            quoted.split_once(' ').is_some_and(|(method, path)| {
                ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method)
                    && path.starts_with('/')
                    && !path.contains(['?', ' '])
            })
        })
        .collect();
    assert!(
        named.len() >= routes.len(),
        "{} routes named: {named:?}",
        named.len()
    );
    let unknown: Vec<&&str> = named
        .iter()
        .filter(|route| !routes.iter().any(|r| r == *route))
        .collect();
    assert!(
        unknown.is_empty(),
        "the README names routes the server does not have: {unknown:?}"
    );
}
