//! `vouchd backup DEST` while a write load runs against the server: the copy passes
//! `integrity_check`, every balance in it agrees with its ledger, and a second server on the
//! copy serves every voucher acknowledged before the backup began (issue 5, acceptance item 6).
//!
//! SQLite-only: `vouchd backup` copies an SQLite file. PostgreSQL's backups are PostgreSQL's
//! (pg_dump); tests/postgres.rs checks that `vouchd backup` on a postgres:// database says so.

use crate::common::*;
use crate::crash::integrity_check;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const THREADS: usize = 4;
/// Vouchers made in one batch first, so the copy takes many backup steps.
const BATCH: u64 = 20_000;

/// A voucher the server acknowledged: id, amount and the charges acknowledged on it (cents).
#[derive(Clone, Debug)]
struct Made {
    id: String,
    amount: i64,
}

/// Creates vouchers and charges each once, until `stop`; records what was acknowledged.
fn write_load(
    s: &TestServer,
    token: &str,
    thread: usize,
    stop: &AtomicBool,
    made: &Mutex<Vec<Made>>,
) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        n += 1;
        let amount = 1000 + (thread * 1000 + n) as i64;
        let v = s.create_voucher(token, &json!({"amount": money(amount)}));
        let id = id_of(&v["id"]);
        let r = s.post(
            &format!("/v1/vouchers/{id}/charges"),
            token,
            &json!({"type": "charge", "amount": "1.00"}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        made.lock().expect("made").push(Made { id, amount });
    }
}

/// For every value voucher in the file: amount − Σcharges + Σrefunds = remaining ≥ 0.
fn assert_balances_match_ledger(db: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(db).expect("open the copy");
    let wrong: Vec<(String, i64, i64)> = conn
        .prepare(
            "SELECT v.id, v.remaining, v.amount
                 - COALESCE((SELECT SUM(amount) FROM ledger WHERE voucher_id = v.id AND type = 'charge'), 0)
                 + COALESCE((SELECT SUM(amount) FROM ledger WHERE voucher_id = v.id AND type = 'refund'), 0)
             FROM vouchers v WHERE v.amount IS NOT NULL",
        )
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .filter(|(_, remaining, computed)| remaining != computed || *remaining < 0)
        .collect();
    assert!(
        wrong.is_empty(),
        "balances disagree with the ledger: {wrong:?}"
    );
    conn.query_row("SELECT count(*) FROM vouchers", [], |r| r.get(0))
        .expect("count")
}

#[test]
fn backup_during_a_write_load_is_intact_and_serves_the_same_vouchers() {
    if engine_is_postgres() {
        return; // SQLite-only: the backup is a copy of the SQLite file (see the module doc).
    }
    let s = TestServer::start();
    let t = s.tenant(CASHIER);
    let batch = s.post(
        "/v1/vouchers/batch",
        &t.token,
        &json!({"count": BATCH, "amount": "5.00", "batch": "backup-fill"}),
    );
    assert_eq!(batch.status, 201, "{}", batch.body);
    let copy_dir = Arc::new(TempDir::new());
    let dest = copy_dir.path().join("v.db");
    let dest_arg = dest.to_str().expect("utf-8 path").to_string();

    let stop = AtomicBool::new(false);
    let made = Mutex::new(Vec::new());
    let (before, backup, total) = std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let (s, token, stop, made) = (&s, &t.token, &stop, &made);
            scope.spawn(move || write_load(s, token, thread, stop, made));
        }
        let until = Instant::now() + Duration::from_secs(60);
        while made.lock().expect("made").len() < 40 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        let before: Vec<Made> = made.lock().expect("made").clone();
        let backup = s.cli(&["backup", &dest_arg]);
        // Keep writing a little after the copy, then stop.
        let after = made.lock().expect("made").len();
        while made.lock().expect("made").len() < after + 20 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        stop.store(true, Ordering::SeqCst);
        (before, backup, made.lock().map(|m| m.len()).unwrap_or(0))
    });
    let made_total = made.lock().expect("made").len().max(total);
    let stderr = String::from_utf8_lossy(&backup.stderr).to_string();
    assert!(backup.status.success(), "backup failed: {stderr}");
    assert!(stderr.contains("vouchd: backed up"), "{stderr}");
    assert!(before.len() >= 40, "the load had not started");

    // The copy is a whole database, its money adds up, and it holds no voucher nobody made.
    integrity_check(&dest_arg);
    let copied = assert_balances_match_ledger(&dest);
    assert!(
        copied >= (BATCH as i64) + before.len() as i64,
        "{copied} vouchers in the copy, {} acknowledged before the backup",
        before.len()
    );
    assert!(copied <= (BATCH as i64) + made_total as i64);
    let leftovers: Vec<String> = std::fs::read_dir(copy_dir.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
        .filter(|n| n != "v.db")
        .collect();
    assert!(leftovers.is_empty(), "left beside the copy: {leftovers:?}");

    // A second server on the copy serves every voucher acknowledged before the backup began,
    // each charged once.
    let copy = TestServer::start_in(
        Arc::clone(&copy_dir),
        &[],
        Some((s.admin_id.clone(), s.admin_secret.clone())),
    );
    let token = copy.token(&t.client_id, &t.secret, None);
    for m in &before {
        let v = copy.get(&format!("/v1/vouchers/{}", m.id), &token);
        assert_eq!(
            v.status, 200,
            "{} is missing from the copy: {}",
            m.id, v.body
        );
        assert_eq!(cents(&v.json["amount"]), m.amount);
        assert_eq!(cents(&v.json["remaining_amount"]), m.amount - 100);
        let ledger = copy.get(&format!("/v1/vouchers/{}/charges", m.id), &token);
        assert_eq!(ledger.json["meta"]["total"], 1, "{}", ledger.body);
    }
    let filled = copy.list(&token, "filter[batch]=backup-fill&per_page=1");
    assert_eq!(filled.json["meta"]["total"], BATCH, "{}", filled.body);

    // A second backup to the same place is refused and leaves the copy alone.
    let size = std::fs::metadata(&dest).expect("copy").len();
    let again = s.cli(&["backup", &dest_arg]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    assert_eq!(std::fs::metadata(&dest).expect("copy").len(), size);
}

#[test]
fn backup_of_a_missing_database_fails_and_creates_nothing() {
    if engine_is_postgres() {
        return; // SQLite-only: the backup is a copy of the SQLite file (see the module doc).
    }
    let dir = TempDir::new();
    let source = dir.path().join("nothing.db");
    let dest = dir.path().join("copy.db");
    let out = std::process::Command::new(BIN)
        .arg("backup")
        .arg(&dest)
        .arg("--db")
        .arg(&source)
        .output()
        .expect("run vouchd backup");
    assert!(!out.status.success());
    assert!(!source.exists() && !dest.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("dir").count(),
        0,
        "nothing is left behind"
    );
}
