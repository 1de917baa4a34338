//! The floor for the charges benchmark: the same charge transaction the server runs
//! (`store::ledger::charge` inside a SAVEPOINT inside `BEGIN IMMEDIATE … COMMIT`), in-process,
//! without HTTP or threads. Once with one commit per charge, once with `GROUP` charges per
//! commit, each on a fresh database of 1 000 vouchers.
//!
//! `cargo run --release --example bench-floor -- DIR CHARGES SYNC` prints one JSON line per
//! mode: `{"mode":"one"|"grouped","sync":…,"charges":…,"seconds":…,"per_sec":…}`.

use rand::{rngs::StdRng, Rng, SeedableRng};
use rusqlite::Connection;
use std::path::Path;
use std::time::Instant;
use vouchd::auth::scope::Scopes;
use vouchd::domain::code::CodeShape;
use vouchd::domain::money::Currency;
use vouchd::domain::voucher::{Context, Tenant, Voucher};
use vouchd::store::ledger::{self, Redemption};
use vouchd::store::{clients, connect, in_savepoint, migrate, vouchers, SyncMode};

const VOUCHERS: u64 = 1000;
const GROUP: usize = 100;

struct Setup {
    conn: Connection,
    client_id: String,
    tenant: Tenant,
    ids: Vec<String>,
}

fn setup(path: &Path, sync: SyncMode) -> Setup {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let mut conn = connect(path, sync, false).expect("open");
    migrate::migrate(&mut conn).expect("migrate");
    let group = clients::create_group(&conn, "bench", Scopes::all()).expect("group");
    let client = clients::create_client(&conn, "bench", &group, None, "-").expect("client");
    let template = Voucher {
        batch: Some("bench".into()),
        amount: Some(100_000_000),
        remaining: Some(100_000_000),
        ..Voucher::blank(
            client.id.clone(),
            group.id.clone(),
            Currency::parse("EUR").expect("EUR"),
            vouchd::domain::clock::now(),
        )
    };
    let shape = CodeShape::new(None, None).expect("shape");
    conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
    let ids = vouchers::insert_batch(&conn, &template, &shape, VOUCHERS)
        .expect("vouchers")
        .into_iter()
        .map(|(id, _code)| id)
        .collect();
    conn.execute_batch("COMMIT").expect("commit");
    Setup {
        conn,
        client_id: client.id,
        tenant: Tenant::Group(group.id),
        ids,
    }
}

fn run(path: &Path, sync: SyncMode, charges: usize, per_commit: usize) -> f64 {
    let s = setup(path, sync);
    let context = Context::default();
    let mut rng = StdRng::seed_from_u64(1);
    let started = Instant::now();
    let mut done = 0;
    while done < charges {
        s.conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        for _ in 0..per_commit.min(charges - done) {
            let id = &s.ids[rng.gen_range(0..s.ids.len())];
            let r = Redemption {
                client_id: &s.client_id,
                tenant: &s.tenant,
                order_number: Some("bench"),
                context: &context,
                now: vouchd::domain::clock::now(),
            };
            in_savepoint(&s.conn, |c| ledger::charge(c, id, 1, &r)).expect("charge");
            done += 1;
        }
        s.conn.execute_batch("COMMIT").expect("commit");
    }
    started.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).map_or("/tmp", String::as_str);
    let charges: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(2000);
    let sync_name = args.get(3).map_or("full", String::as_str);
    let sync = SyncMode::parse(sync_name).expect("sync is full or normal");
    let path = Path::new(dir).join(format!("floor-{sync_name}.db"));
    for (mode, per_commit) in [("one", 1), ("grouped", GROUP)] {
        let seconds = run(&path, sync, charges, per_commit);
        println!(
            "{{\"mode\":\"{mode}\",\"sync\":\"{sync_name}\",\"charges\":{charges},\"seconds\":{seconds:.3},\"per_sec\":{:.1}}}",
            charges as f64 / seconds
        );
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
