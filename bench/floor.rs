//! The store floors: the statements the server runs, in-process, on one connection, without
//! HTTP, threads or rendering — what the server's figures are measured against.
//!
//! `cargo run --release --example bench-floor -- lookup DB CLIENT_ID CODES N` looks up `N`
//! random codes from the file `CODES` with the store's list query (`filter[code]`, total
//! included) on a read-only connection, as a worker does.
//!
//! `cargo run --release --example bench-floor -- charges DB CLIENT_ID CARDS N SYNC` charges 0.01
//! on random vouchers from the file `CARDS` with the store's charge transaction
//! (`store::ledger::charge` in a SAVEPOINT in `store::write_direct`'s `BEGIN IMMEDIATE … COMMIT`),
//! `N` times with one
//! COMMIT per charge and `N` times with 100 charges per COMMIT.
//!
//! Each prints one JSON line per mode: `{"mode","per_sec","n","seconds"}`.

use rand::{rngs::StdRng, Rng, SeedableRng};
use std::path::Path;
use std::time::Instant;
use vouchd::domain::ledger::Redemption;
use vouchd::domain::query::{Filter, ListQuery};
use vouchd::domain::voucher::{Context, Tenant};
use vouchd::store::ledger;
use vouchd::store::{clients, connect, in_savepoint, vouchers, write_direct, Db, SyncMode};

const GROUP: usize = 100;

fn lines(path: &str) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("list file")
        .lines()
        .map(str::to_string)
        .collect()
}

fn tenant(conn: &Db, client_id: &str) -> Tenant {
    let client = clients::find_client(conn, client_id)
        .expect("client")
        .expect("the bench client exists");
    Tenant::Group(client.group_id)
}

fn report(mode: &str, n: usize, seconds: f64) {
    println!(
        "{{\"mode\":\"{mode}\",\"per_sec\":{:.1},\"n\":{n},\"seconds\":{seconds:.3}}}",
        n as f64 / seconds
    );
}

fn lookup(db: &Path, client_id: &str, codes: &str, n: usize) {
    let conn = Db::new(connect(db, SyncMode::Full, true).expect("open"));
    let tenant = tenant(&conn, client_id);
    let codes = lines(codes);
    let mut rng = StdRng::seed_from_u64(1);
    let started = Instant::now();
    for _ in 0..n {
        let code = &codes[rng.gen_range(0..codes.len())];
        let mut query = ListQuery::first(20);
        query.filters.push(Filter::Code(code.clone()));
        let (found, total) = vouchers::list(&conn, &tenant, &query).expect("lookup");
        assert!(found.len() == 1 && total == 1, "{code} not found");
    }
    report("lookup", n, started.elapsed().as_secs_f64());
}

fn charges(db: &Path, client_id: &str, cards: &str, n: usize, sync: SyncMode) {
    let mut conn = Db::new(connect(db, sync, false).expect("open"));
    let tenant = tenant(&conn, client_id);
    let cards = lines(cards);
    let context = Context::default();
    let mut rng = StdRng::seed_from_u64(2);
    for (mode, per_commit) in [("one", 1), ("grouped", GROUP)] {
        let started = Instant::now();
        let mut done = 0;
        while done < n {
            let group = per_commit.min(n - done);
            // One BEGIN IMMEDIATE … COMMIT, a SAVEPOINT per charge: the writer's shape.
            write_direct(&mut conn, |c| {
                for _ in 0..group {
                    let id = &cards[rng.gen_range(0..cards.len())];
                    let r = Redemption {
                        client_id,
                        tenant: &tenant,
                        order_number: Some("bench"),
                        context: &context,
                        now: vouchd::domain::clock::now(),
                    };
                    in_savepoint(c, |c| ledger::charge(c, id, 1, &r))
                        .map_err(|e| format!("charge: {e:?}"))?;
                }
                Ok(())
            })
            .expect("charges");
            done += group;
        }
        report(mode, n, started.elapsed().as_secs_f64());
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).map_or("", String::as_str);
    let usage =
        "usage: bench-floor lookup DB CLIENT_ID CODES N | charges DB CLIENT_ID CARDS N SYNC";
    let n: usize = arg(5).parse().expect(usage);
    let db = Path::new(arg(2));
    match arg(1) {
        "lookup" => lookup(db, arg(3), arg(4), n),
        "charges" => charges(
            db,
            arg(3),
            arg(4),
            n,
            SyncMode::parse(arg(6)).expect("SYNC is full or normal"),
        ),
        _ => panic!("{usage}"),
    }
}
