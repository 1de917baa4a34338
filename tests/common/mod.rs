//! The harness every integration test stands on: `TestServer` starts the real `vouchd` binary
//! on a fresh temporary database and an ephemeral port, hands out groups, clients and tokens,
//! and speaks HTTP to it with `ureq` without turning 4xx/5xx answers into errors, so a test can
//! assert on the status, headers and problem body of a refusal as easily as on a success.
//!
//! Servers kept in a `static OnceLock` are never dropped, so every server also gets a tiny `sh`
//! watchdog holding a pipe from this process: when the test binary exits (normally or not) the
//! pipe closes and the watchdog kills the server and removes its directory (and, on
//! PostgreSQL, drops its database when `psql` is at hand).
//!
//! The engine: SQLite by default, PostgreSQL with `VOUCHD_TEST_ENGINE=postgres` (see [`db`]).
//! A server's `db` is its `--db` value either way; tests about the SQLite file itself say so
//! with `if engine_is_postgres() { return; } // SQLite-only: …`.

#![allow(dead_code)]

mod db;
pub use db::*;

use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const BIN: &str = env!("CARGO_BIN_EXE_vouchd");
const START_TIMEOUT: Duration = Duration::from_secs(20);
const ADMIN_PREFIX: &str = "vouchd: created admin client ";
const LISTEN_PREFIX: &str = "vouchd listening on ";

pub const READ: &str = "vouchers:read";
pub const WRITE: &str = "vouchers:write";
pub const RW: &[&str] = &["vouchers:read", "vouchers:write"];
/// What a till needs: vouchers and charges, read and write.
pub const CASHIER: &[&str] = &[
    "vouchers:read",
    "vouchers:write",
    "charges:read",
    "charges:write",
];
pub const ALL_SCOPES: &[&str] = &[
    "vouchers:read",
    "vouchers:write",
    "charges:read",
    "charges:write",
    "admin",
    "metrics",
    "webhooks",
];
/// The generated-code alphabet: no `0 O 1 I L`.
pub const CODE_ALPHABET: &str = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn next_n() -> u64 {
    COUNTER.fetch_add(1, Ordering::SeqCst)
}

fn nanos() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

/// A name no other test in this process uses (groups, batches, labels).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}-{}", std::process::id(), next_n(), nanos())
}

/// Six `[A-Z0-9]` characters unique within this process; append up to two characters to get
/// a valid custom code whose sort order the test controls.
pub fn code_stem() -> String {
    let mut n = next_n();
    let digits = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut tail = Vec::new();
    for _ in 0..5 {
        tail.push(digits[(n % 36) as usize] as char);
        n /= 36;
    }
    tail.reverse();
    format!("Q{}", tail.into_iter().collect::<String>())
}

/// A test's home: a temporary directory removed on drop and, on PostgreSQL, the database of
/// the servers started in it (created at first use, dropped with the home).
pub struct TempDir {
    path: PathBuf,
    postgres: bool,
    pg: OnceLock<PgDatabase>,
}

impl TempDir {
    /// A home on the engine of this test run ([`engine_is_postgres`]).
    pub fn new() -> TempDir {
        TempDir::on(engine_is_postgres())
    }

    /// A home whose database is on PostgreSQL whatever the engine of this test run (the
    /// PostgreSQL-only tests).
    pub fn new_postgres() -> TempDir {
        TempDir::on(true)
    }

    /// A home whose database is a SQLite file whatever the engine of this test run (the copies
    /// between engines).
    pub fn new_sqlite() -> TempDir {
        TempDir::on(false)
    }

    fn on(postgres: bool) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "vouchd-test-{}-{}-{}",
            std::process::id(),
            next_n(),
            nanos()
        ));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create temp dir {}: {e}", path.display()));
        TempDir {
            path,
            postgres,
            pg: OnceLock::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The database of this home as `--db` takes it: `DIR/v.db` on SQLite; on PostgreSQL the
    /// URL of a fresh database created at the first call and the same on every later one, so a
    /// restart (`TestServer::start_in`) finds its data again.
    pub fn db(&self) -> String {
        if self.postgres {
            self.pg.get_or_init(PgDatabase::create).url.clone()
        } else {
            let db = self.path.join("v.db");
            db.to_str()
                .unwrap_or_else(|| panic!("temp path is not UTF-8: {}", db.display()))
                .to_string()
        }
    }

    /// The PostgreSQL database's name, once [`TempDir::db`] made one.
    fn pg_name(&self) -> Option<&str> {
        self.pg.get().map(|d| d.name.as_str())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// One HTTP answer: status, headers (names lower-cased), raw body and the body parsed as JSON
/// (`Value::Null` when it is not JSON).
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub json: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }

    fn from_result(what: &str, result: Result<ureq::Response, ureq::Error>) -> Resp {
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{what}: transport error: {e}"),
        };
        let status = resp.status();
        let mut headers = Vec::new();
        for name in resp.headers_names() {
            for value in resp.all(&name) {
                headers.push((name.to_ascii_lowercase(), value.to_string()));
            }
        }
        let mut bytes = Vec::new();
        resp.into_reader()
            .take(256 << 20)
            .read_to_end(&mut bytes)
            .unwrap_or_else(|e| panic!("{what}: reading body: {e}"));
        let body =
            String::from_utf8(bytes).unwrap_or_else(|e| panic!("{what}: body is not UTF-8: {e}"));
        let json = serde_json::from_str(&body).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            json,
        }
    }
}

/// A group with one client and that client's token (all of the client's scopes).
#[derive(Debug, Clone)]
pub struct Tenant {
    pub group_id: String,
    pub group_name: String,
    pub client_id: String,
    pub secret: String,
    pub token: String,
}

/// What a start expects of the admin line.
enum Admin {
    /// A fresh database: the line must be printed.
    Fresh,
    /// A restart or another instance: the admin is known, a line is not expected.
    Known((String, String)),
    /// One of several instances starting at once on a fresh database: either way.
    Either,
}

pub struct TestServer {
    /// `http://127.0.0.1:PORT`, as printed by the server.
    pub base: String,
    /// The database as `--db` takes it: a file path on SQLite, a `postgres://` URL on
    /// PostgreSQL.
    pub db: String,
    pub admin_id: String,
    pub admin_secret: String,
    /// Whether this start printed the `created admin client` line.
    pub printed_admin: bool,
    child: Child,
    watchdog: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
    agent: ureq::Agent,
    tokens: Mutex<HashMap<(String, Option<String>), String>>,
    dir: Arc<TempDir>,
}

impl TestServer {
    pub fn start() -> TestServer {
        TestServer::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> TestServer {
        TestServer::start_in(Arc::new(TempDir::new()), extra, None)
    }

    /// Starts a server on `dir`'s database ([`TempDir::db`]). With `known_admin` (a restart,
    /// or another instance on the same database) the admin line is not required; without it
    /// (a fresh database) it is.
    pub fn start_in(
        dir: Arc<TempDir>,
        extra: &[&str],
        known_admin: Option<(String, String)>,
    ) -> TestServer {
        let admin = match known_admin {
            Some(a) => Admin::Known(a),
            None => Admin::Fresh,
        };
        TestServer::start_inner(dir, extra, admin)
    }

    /// Starts one of several instances on `dir`'s database that may or may not be the one to
    /// set up a fresh database: `printed_admin` says whether it printed the admin line, and
    /// `admin_id`/`admin_secret` are empty when it did not.
    pub fn start_instance(dir: Arc<TempDir>, extra: &[&str]) -> TestServer {
        TestServer::start_inner(dir, extra, Admin::Either)
    }

    fn start_inner(dir: Arc<TempDir>, extra: &[&str], known_admin: Admin) -> TestServer {
        let db = dir.db();
        let mut child = Command::new(BIN)
            .arg("serve")
            .arg("--db")
            .arg(&db)
            .args(["--listen", "127.0.0.1:0"])
            .args(if extra.contains(&"--threads") {
                &[][..]
            } else {
                &["--threads", "4"][..]
            })
            // Tests hammer one client from many threads; the rate limit has tests of its own.
            .args(if extra.contains(&"--rate-limit") {
                &[][..]
            } else {
                &["--rate-limit", "0"][..]
            })
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {BIN}: {e}"));
        let (pg_admin, pg_name) = match dir.pg_name() {
            Some(name) => (pg_admin_url(), name.to_string()),
            None => (String::new(), String::new()),
        };
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(
                "read _ignored; kill -9 \"$1\" 2>/dev/null; sleep 0.3; rm -rf \"$2\"; \
                 if [ -n \"$4\" ] && command -v psql >/dev/null; then \
                 psql -qX -d \"$3\" -c \"DROP DATABASE IF EXISTS \\\"$4\\\" WITH (FORCE)\"; fi",
            )
            .arg("sh")
            .arg(child.id().to_string())
            .arg(dir.path())
            .arg(pg_admin)
            .arg(pg_name)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();

        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let stderr = child.stderr.take().expect("piped stderr");
        let stdout = child.stdout.take().expect("piped stdout");
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Ok(mut l) = log.lock() {
                        l.push(line.clone());
                    }
                    // The receiver is gone once the server is up; keep draining regardless.
                    let _ = tx.send(line);
                }
            });
        }
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Ok(mut l) = log.lock() {
                        l.push(format!("[stdout] {line}"));
                    }
                }
            });
        }

        let dump =
            |log: &Arc<Mutex<Vec<String>>>| log.lock().map(|l| l.join("\n")).unwrap_or_default();
        let deadline = Instant::now() + START_TIMEOUT;
        let mut admin: Option<(String, String)> = None;
        let mut admin_lines = 0;
        let base = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(ADMIN_PREFIX) {
                        admin_lines += 1;
                        let v: Value = serde_json::from_str(rest.trim()).unwrap_or_else(|e| {
                            panic!("admin line is not `{ADMIN_PREFIX}{{json}}`: {line:?}: {e}")
                        });
                        let id = id_of(&v["client_id"]);
                        let secret = v["client_secret"]
                            .as_str()
                            .unwrap_or_else(|| panic!("admin line without client_secret: {line}"))
                            .to_string();
                        admin = Some((id, secret));
                    } else if let Some(url) = line.strip_prefix(LISTEN_PREFIX) {
                        break url.trim().trim_end_matches('/').to_string();
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "vouchd did not print `{LISTEN_PREFIX}http://…` within {START_TIMEOUT:?}; output so far:\n{}",
                        dump(&log)
                    );
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = child.wait();
                    std::thread::sleep(Duration::from_millis(50));
                    panic!(
                        "vouchd exited before listening ({status:?}); output:\n{}",
                        dump(&log)
                    );
                }
            }
        };
        assert!(
            base.starts_with("http://127.0.0.1:"),
            "listening line should name http://127.0.0.1:PORT, got {base:?}"
        );
        let printed_admin = admin.is_some();
        if printed_admin {
            assert_eq!(admin_lines, 1, "admin line printed more than once");
        }
        let (admin_id, admin_secret) = match (admin, known_admin) {
            (Some(a), Admin::Fresh | Admin::Either) => a,
            (None, Admin::Known(a)) => a,
            (Some(_), Admin::Known(a)) => a,
            (None, Admin::Either) => (String::new(), String::new()),
            (None, Admin::Fresh) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "fresh database but no `{ADMIN_PREFIX}{{…}}` line before listening; output:\n{}",
                    dump(&log)
                );
            }
        };
        // No pooled connections: a socket the server closed while idle would fail a POST.
        let agent = ureq::AgentBuilder::new()
            .max_idle_connections(0)
            .timeout_connect(Duration::from_secs(5))
            .timeout(Duration::from_secs(300))
            .build();
        TestServer {
            base,
            db,
            admin_id,
            admin_secret,
            printed_admin,
            child,
            watchdog,
            log,
            agent,
            tokens: Mutex::new(HashMap::new()),
            dir,
        }
    }

    pub fn dir(&self) -> Arc<TempDir> {
        Arc::clone(&self.dir)
    }

    /// A connection of the test's own to this server's database.
    pub fn sql(&self) -> TestDb {
        TestDb::open(&self.db)
    }

    /// Whether `needle` is stored anywhere in this server's database ([`stored_anywhere`]).
    pub fn stored_anywhere(&self, needle: &str) -> bool {
        stored_anywhere(&self.db, needle)
    }

    /// Everything the server printed so far (stderr, and stdout lines prefixed).
    pub fn output(&self) -> String {
        self.log.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// SIGKILL, as a power cut would: no shutdown path runs. The watchdog goes first so it
    /// cannot kill a recycled pid later; the directory stays for a restart with `start_in`.
    pub fn kill(&mut self) {
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends `signal` (`TERM`, `INT`, …) to the server process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits up to `limit` for the server to exit by itself and returns how it exited. The
    /// watchdog is stopped once the process is gone, so it cannot kill a recycled pid later;
    /// the directory stays for a restart with `start_in`.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    if let Some(mut w) = self.watchdog.take() {
                        let _ = w.kill();
                        let _ = w.wait();
                    }
                    return status;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(None) => panic!(
                    "vouchd did not exit within {limit:?}; output:\n{}",
                    self.output()
                ),
                Err(e) => panic!("cannot wait for vouchd: {e}"),
            }
        }
    }

    /// The first line of the server's output that `wanted` accepts, waiting up to 5 s for it
    /// (a line is written after its reply is sent, so it may trail the answer a little).
    pub fn wait_for_line(&self, wanted: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let found = self
                .log
                .lock()
                .ok()
                .and_then(|l| l.iter().find(|line| wanted(line)).cloned());
            if found.is_some() || Instant::now() >= deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `host:port` as the server sees it in `Host`.
    /// The server process's id (for /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn host(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") {
            path.to_string()
        } else {
            format!("{}{}", self.base, path)
        }
    }

    // ---- HTTP ----------------------------------------------------------------------------

    /// Any request; `headers` are sent as given, `body` with its content type.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> Resp {
        let url = self.url(path);
        let mut req = self.agent.request(method, &url);
        for (n, v) in headers {
            req = req.set(n, v);
        }
        let result = match body {
            Some((ctype, bytes)) => req.set("Content-Type", ctype).send_bytes(bytes),
            None => req.call(),
        };
        Resp::from_result(&format!("{method} {url}"), result)
    }

    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Resp {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = Vec::new();
        if let Some(a) = &auth {
            headers.push(("Authorization", a.as_str()));
        }
        let bytes = body.map(|b| serde_json::to_vec(b).expect("serialisable body"));
        self.send(
            method,
            path,
            &headers,
            bytes.as_deref().map(|b| ("application/json", b)),
        )
    }

    pub fn get(&self, path: &str, token: &str) -> Resp {
        self.call("GET", path, Some(token), None)
    }

    pub fn post(&self, path: &str, token: &str, body: &Value) -> Resp {
        self.call("POST", path, Some(token), Some(body))
    }

    pub fn patch(&self, path: &str, token: &str, body: &Value) -> Resp {
        self.call("PATCH", path, Some(token), Some(body))
    }

    pub fn delete(&self, path: &str, token: &str) -> Resp {
        self.call("DELETE", path, Some(token), None)
    }

    /// One request written by hand on a fresh socket (for things `ureq` will not send, such
    /// as a `Content-Length` with no body behind it). Returns the parsed answer.
    pub fn raw(&self, request: &str) -> Resp {
        let mut stream = TcpStream::connect(self.host()).expect("connect to server");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("set timeout");
        stream.write_all(request.as_bytes()).expect("write request");
        read_raw_response(&mut stream)
    }

    /// [`TestServer::raw`] from another loopback address (`127.x.y.z`), as another machine
    /// would connect: the server sees that address as the remote one.
    pub fn raw_from(&self, source: std::net::Ipv4Addr, request: &str) -> Resp {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("a socket");
        let from = std::net::SocketAddr::from((source, 0));
        socket.bind(&from.into()).expect("bind the source address");
        let to: std::net::SocketAddr = self.host().parse().expect("host is an address");
        socket.connect(&to.into()).expect("connect to server");
        let mut stream: TcpStream = socket.into();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("set timeout");
        stream.write_all(request.as_bytes()).expect("write request");
        read_raw_response(&mut stream)
    }

    /// `POST /oauth/token` with Basic credentials, sent from `source` (see [`TestServer::raw_from`]).
    pub fn token_request_from(
        &self,
        source: std::net::Ipv4Addr,
        client_id: &str,
        secret: &str,
    ) -> Resp {
        let body = "grant_type=client_credentials";
        let basic = base64(format!("{client_id}:{secret}").as_bytes());
        self.raw_from(
            source,
            &format!(
                "POST /oauth/token HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {basic}\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                self.host(),
                body.len()
            ),
        )
    }

    // ---- OAuth ---------------------------------------------------------------------------

    pub fn token_request(&self, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> Resp {
        let url = self.url("/oauth/token");
        let mut req = self.agent.post(&url);
        if let Some((id, secret)) = basic {
            req = req.set(
                "Authorization",
                &format!("Basic {}", base64(format!("{id}:{secret}").as_bytes())),
            );
        }
        Resp::from_result("POST /oauth/token", req.send_form(form))
    }

    /// A bearer token for the client (cached per client and scope: argon2 is slow in debug).
    pub fn token(&self, client_id: &str, secret: &str, scope: Option<&str>) -> String {
        let key = (client_id.to_string(), scope.map(str::to_string));
        if let Some(t) = self.tokens.lock().expect("token cache").get(&key) {
            return t.clone();
        }
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        let r = self.token_request(&form, Some((client_id, secret)));
        assert_eq!(r.status, 200, "token for {client_id}: {}", r.body);
        let token = r.json["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access_token in {}", r.body))
            .to_string();
        self.tokens
            .lock()
            .expect("token cache")
            .insert(key, token.clone());
        token
    }

    pub fn admin_token(&self) -> String {
        self.token(&self.admin_id, &self.admin_secret, None)
    }

    /// `POST /v1/client-groups` as admin → the group's id.
    pub fn create_group(&self, name: &str, scopes: &[&str]) -> String {
        let r = self.post(
            "/v1/client-groups",
            &self.admin_token(),
            &json!({"name": name, "scopes": scopes}),
        );
        assert_eq!(r.status, 201, "create group {name}: {}", r.body);
        assert_eq!(r.json["name"], name, "group body: {}", r.body);
        id_of(&r.json["id"])
    }

    /// `POST /v1/clients` as admin → (client_id, client_secret).
    pub fn create_client(
        &self,
        name: &str,
        group: &str,
        scopes: Option<&[&str]>,
    ) -> (String, String) {
        let mut body = json!({"name": name, "group": group});
        if let Some(s) = scopes {
            body["scopes"] = json!(s);
        }
        let r = self.post("/v1/clients", &self.admin_token(), &body);
        assert_eq!(r.status, 201, "create client {name}: {}", r.body);
        let secret = r.json["client_secret"]
            .as_str()
            .unwrap_or_else(|| panic!("no client_secret in {}", r.body))
            .to_string();
        (id_of(&r.json["client_id"]), secret)
    }

    /// A fresh group with `scopes`, one client of it and its token.
    pub fn tenant(&self, scopes: &[&str]) -> Tenant {
        let group_name = unique("group");
        let group_id = self.create_group(&group_name, scopes);
        let (client_id, secret) = self.create_client(&unique("client"), &group_name, None);
        let token = self.token(&client_id, &secret, None);
        Tenant {
            group_id,
            group_name,
            client_id,
            secret,
            token,
        }
    }

    /// `vouchd ARGS --db <this server's db>`.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .arg("--db")
            .arg(&self.db)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {BIN} {args:?}: {e}"))
    }

    // ---- vouchers ------------------------------------------------------------------------

    /// `POST /v1/vouchers`, asserting 201; returns the voucher.
    pub fn create_voucher(&self, token: &str, body: &Value) -> Value {
        let r = self.post("/v1/vouchers", token, body);
        assert_eq!(r.status, 201, "create voucher {body}: {}", r.body);
        r.json
    }

    /// `GET /v1/vouchers?query`.
    pub fn list(&self, token: &str, query: &str) -> Resp {
        self.get(&format!("/v1/vouchers?{query}"), token)
    }

    /// The ids of one list page, in order (asserting 200).
    pub fn list_ids(&self, token: &str, query: &str) -> Vec<String> {
        let r = self.list(token, query);
        assert_eq!(r.status, 200, "GET /v1/vouchers?{query}: {}", r.body);
        r.json["data"]
            .as_array()
            .unwrap_or_else(|| panic!("no data array for {query}: {}", r.body))
            .iter()
            .map(|v| id_of(&v["id"]))
            .collect()
    }

    pub fn list_set(&self, token: &str, query: &str) -> BTreeSet<String> {
        self.list_ids(token, query).into_iter().collect()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // The watchdog first, so it cannot kill a recycled pid later.
        if let Some(w) = &mut self.watchdog {
            let _ = w.kill();
            let _ = w.wait();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- assertions -----------------------------------------------------------------------------

/// Asserts an RFC 9457 problem with this status and `code`; returns the body.
pub fn assert_problem<'a>(r: &'a Resp, status: u16, code: &str) -> &'a Value {
    assert_eq!(
        r.status, status,
        "expected {status} {code}, got: {}",
        r.body
    );
    assert!(
        r.content_type().starts_with("application/problem+json"),
        "problem content type, got {:?} for {}",
        r.content_type(),
        r.body
    );
    assert_eq!(
        r.json["status"],
        json!(status),
        "status in body: {}",
        r.body
    );
    assert_eq!(r.json["code"], json!(code), "code in body: {}", r.body);
    assert!(r.json["type"].is_string(), "problem type: {}", r.body);
    assert!(r.json["title"].is_string(), "problem title: {}", r.body);
    &r.json
}

/// Asserts 422 `validation_failed` with an `errors` entry naming `field`.
pub fn assert_invalid_field(r: &Resp, field: &str) {
    let body = assert_problem(r, 422, "validation_failed");
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("422 without errors array: {}", r.body));
    assert!(
        errors.iter().any(|e| e["field"] == json!(field)),
        "errors should name field {field:?}: {}",
        r.body
    );
    assert!(
        errors.iter().all(|e| e["message"].is_string()),
        "every error has a message: {}",
        r.body
    );
}

/// Asserts 400 `invalid_parameter` whose first error names `param` exactly as sent.
pub fn assert_invalid_param(r: &Resp, param: &str) {
    let body = assert_problem(r, 400, "invalid_parameter");
    assert_eq!(
        body["errors"][0]["field"],
        json!(param),
        "errors[0].field: {}",
        r.body
    );
}

/// Asserts an RFC 6749 §5.2 error from the token endpoint.
pub fn assert_oauth_error(r: &Resp, status: u16, error: &str) {
    assert_eq!(r.status, status, "expected {status} {error}: {}", r.body);
    assert!(
        r.content_type().starts_with("application/json"),
        "token errors are application/json, got {:?}",
        r.content_type()
    );
    assert_eq!(r.json["error"], json!(error), "error in body: {}", r.body);
}

/// A decimal money string (`"12.34"`, `"-0.50"`, `"7"`) in minor units of a 2-decimal
/// currency.
pub fn cents(v: &Value) -> i64 {
    let text = v
        .as_str()
        .unwrap_or_else(|| panic!("expected a decimal string, got {v}"));
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    assert!(frac.len() <= 2, "more than 2 decimals in {text}");
    let whole: i64 = whole.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
    let frac: i64 = format!("{frac:0<2}")
        .parse()
        .unwrap_or_else(|e| panic!("{text}: {e}"));
    let n = whole * 100 + frac;
    if negative {
        -n
    } else {
        n
    }
}

/// Minor units as the API writes them for a 2-decimal currency.
pub fn money(n: i64) -> String {
    format!(
        "{}{}.{:02}",
        if n < 0 { "-" } else { "" },
        n.abs() / 100,
        n.abs() % 100
    )
}

/// A JSON id as a string (ids are opaque strings; tolerate a number for groups).
pub fn id_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("expected an id, got {other}"),
    }
}

pub fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

pub fn ids(vouchers: &[&Value]) -> BTreeSet<String> {
    vouchers.iter().map(|v| id_of(&v["id"])).collect()
}

// ---- encoding -------------------------------------------------------------------------------

pub fn base64(bytes: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Form-style decoding: `%XX` and `+` as space.
pub fn dec(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits a link URL into (the part before `?`, its decoded query pairs sorted).
pub fn split_link(url: &str) -> (String, Vec<(String, String)>) {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (dec(k), dec(v))
        })
        .collect();
    pairs.sort();
    (path.to_string(), pairs)
}

pub fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    v.sort();
    v
}

// ---- raw HTTP -------------------------------------------------------------------------------

fn read_raw_response(stream: &mut TcpStream) -> Resp {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = find(&buf, b"\r\n\r\n") {
            break p;
        }
        match stream.read(&mut chunk) {
            Ok(0) => panic!(
                "connection closed before a full response head: {:?}",
                String::from_utf8_lossy(&buf)
            ),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => panic!(
                "no response head ({e}); got so far: {:?}",
                String::from_utf8_lossy(&buf)
            ),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut rest = buf[head_end + 4..].to_vec();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let done = |rest: &Vec<u8>| match length {
        Some(l) => rest.len() >= l,
        None if chunked => find(rest, b"0\r\n\r\n").is_some(),
        None => false,
    };
    while !done(&rest) {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => rest.extend_from_slice(&chunk[..n]),
        }
    }
    let body_bytes = if chunked { dechunk(&rest) } else { rest };
    let body = String::from_utf8_lossy(&body_bytes).into_owned();
    let json = serde_json::from_str(&body).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        body,
        json,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(p) = find(data, b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..p]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        data = &data[p + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
    out
}

// ---- timestamps -----------------------------------------------------------------------------

/// `YYYY-MM-DDTHH:MM:SS±HH:MM`, split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ts {
    pub y: i64,
    pub mo: u32,
    pub d: u32,
    pub h: u32,
    pub mi: u32,
    pub s: u32,
    pub off: String,
}

impl Ts {
    pub fn render(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}",
            self.y, self.mo, self.d, self.h, self.mi, self.s, self.off
        )
    }

    /// Seconds since the Unix epoch (the offset applied).
    pub fn epoch(&self) -> i64 {
        let sign = if self.off.starts_with('-') { -1 } else { 1 };
        let oh: i64 = self.off[1..3].parse().expect("offset hours");
        let om: i64 = self.off[4..6].parse().expect("offset minutes");
        days_from_civil(self.y, self.mo, self.d) * 86_400
            + i64::from(self.h) * 3600
            + i64::from(self.mi) * 60
            + i64::from(self.s)
            - sign * (oh * 3600 + om * 60)
    }

    pub fn plus_days(&self, n: i64) -> Ts {
        let (y, mo, d) = civil_from_days(days_from_civil(self.y, self.mo, self.d) + n);
        Ts {
            y,
            mo,
            d,
            ..self.clone()
        }
    }

    /// Calendar months, the day clamped to the target month's end.
    pub fn plus_months(&self, n: i64) -> Ts {
        let total = self.y * 12 + i64::from(self.mo) - 1 + n;
        let y = total.div_euclid(12);
        let mo = (total.rem_euclid(12) + 1) as u32;
        let d = self.d.min(days_in_month(y, mo));
        Ts {
            y,
            mo,
            d,
            ..self.clone()
        }
    }
}

/// Parses a timestamp of exactly the API's shape (seconds precision, numeric offset).
pub fn parse_ts(s: &str) -> Ts {
    let b = s.as_bytes();
    let shape_ok = b.len() == 25
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && (b[19] == b'+' || b[19] == b'-')
        && b[22] == b':';
    assert!(
        shape_ok,
        "timestamp {s:?} is not RFC 3339 `YYYY-MM-DDTHH:MM:SS±HH:MM`"
    );
    let num = |r: std::ops::Range<usize>| -> u32 {
        s[r].parse()
            .unwrap_or_else(|_| panic!("timestamp {s:?} has a non-numeric part"))
    };
    Ts {
        y: i64::from(num(0..4)),
        mo: num(5..7),
        d: num(8..10),
        h: num(11..13),
        mi: num(14..16),
        s: num(17..19),
        off: s[19..].to_string(),
    }
}

pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}
