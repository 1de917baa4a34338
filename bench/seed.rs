//! Builds the benchmark's database: `VOUCHERS` vouchers made through the store's own insert (so
//! counts, indexes and constraints are the server's), a ledger history of charges and refunds,
//! a till's client (a group with every scope but `admin`) with a known secret, the lists the load scripts pick from, and the peer's copy of
//! the vouchers table.
//!
//! `cargo run --release --example bench-seed -- DIR VOUCHERS` writes into DIR:
//! - `vouchd.db`: the database `vouchd serve` runs on;
//! - `peer.db`: the same `vouchers` table (and the `clients`/`client_groups` it refers to), with
//!   its unique index on `code`, for the peer server;
//! - `codes.txt`, `ids.txt`: every voucher's code and id, one per line;
//! - `cards.txt`: 1 000 active value vouchers without restrictions and with at least
//!   [`CARD_MIN`] on them, chosen at random (the charge scenarios and the charge floor use
//!   these; a full run charges each about 900 times 0.01, and a card that runs dry answers
//!   409, which the load counts as an error).
//!
//! It prints one JSON line: `{"client_id","secret","seconds","vouchers","entries"}`.
//!
//! The data: vouchers made over the past year (one every 30 s), in batches of 1 000 (`B00000`,
//! …); every 4th restricted to a customer (`C…`, five vouchers each); every voucher has an order
//! number and a purchase (`O…`, `P…`, two vouchers each); every 10th batch is discount vouchers; one batch in 20
//! inactive, one in 20 cancelled. Every 5th value voucher has a charge, every 10th charge a
//! refund of half of it.

use rand::{rngs::StdRng, seq::SliceRandom, Rng, SeedableRng};
use std::io::Write;
use std::path::Path;
use std::time::Instant;
use vouchd::auth::scope::Scopes;
use vouchd::auth::secret::hash_secret;
use vouchd::domain::code::{new_id, CodeShape};
use vouchd::domain::ledger::Redemption;
use vouchd::domain::money::Currency;
use vouchd::domain::voucher::{Context, Discount, DiscountKind, Status, Tenant, Voucher};
use vouchd::store::error::{Conflict, StoreError};
use vouchd::store::ledger;
use vouchd::store::{clients, connect, in_savepoint, migrate, vouchers, Db, SyncMode};

const BATCH: u64 = 1000;
const SECRET: &str = "bench-secret-not-for-production-0000000000";
/// The least a charge card starts with, in minor units (100.00): the history takes at most
/// 5.00 of it, and the charge scenarios of a full run about 9.00.
const CARD_MIN: i64 = 10_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(args.get(1).map_or("/tmp", String::as_str));
    let count: u64 = args
        .get(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let started = Instant::now();
    let path = dir.join("vouchd.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let mut conn = connect(&path, SyncMode::Normal, false).expect("open");
    migrate::migrate(&mut conn).expect("migrate");
    // Set-up only: nothing here needs to survive a power cut.
    conn.pragma_update(None, "synchronous", "OFF")
        .expect("sync off");
    conn.pragma_update(None, "cache_size", -262_144)
        .expect("cache");
    let conn = Db::new(conn);

    // The store's SAVEPOINT outside a transaction is one (committed by its RELEASE): the
    // seed's writes go in chunks of that.
    let (group, client) = in_savepoint(&conn, |conn| {
        let group = clients::create_group(
            conn,
            "bench",
            Scopes::parse("vouchers:read vouchers:write charges:read charges:write")
                .expect("scopes"),
        )
        .expect("group");
        let client = clients::create_client(
            conn,
            "bench",
            &group,
            None,
            &hash_secret(SECRET).expect("hash"),
        )
        .expect("client");
        Ok::<_, StoreError>((group, client))
    })
    .expect("the bench client");
    let now = vouchd::domain::clock::now();
    let eur = Currency::parse("EUR").expect("EUR");
    let shape = CodeShape::new(None, None).expect("shape");
    let mut rng = StdRng::seed_from_u64(20261123);
    let mut codes = String::with_capacity(count as usize * 9);
    let mut ids = String::with_capacity(count as usize * 17);
    let mut chargeable = Vec::new();
    let chunks: Vec<u64> = (0..count).step_by(50_000).collect();
    for start in chunks {
        in_savepoint(&conn, |conn| {
            for i in start..count.min(start + 50_000) {
                let b = i / BATCH;
                let created = now - (count - i) as i64 * 30;
                let mut v = Voucher {
                    batch: Some(format!("B{b:05}")),
                    order_number: Some(format!("O{:07}", i / 2)),
                    purchase_id: Some(format!("P{:07}", i / 2)),
                    status: match b % 20 {
                        18 => Status::Inactive,
                        19 => Status::Cancelled,
                        _ => Status::Active,
                    },
                    ..Voucher::blank(client.id.clone(), group.id.clone(), eur, created)
                };
                if i % 4 == 1 {
                    v.restrictions.customer_id = Some(format!("C{:06}", i / 20));
                }
                if b % 10 == 5 {
                    v.discount = Some(Discount {
                        kind: DiscountKind::Percentage,
                        value: 1000,
                    });
                    v.max_uses = Some(1);
                } else {
                    let amount = rng.gen_range(10..=500) * 100;
                    v.amount = Some(amount);
                    v.remaining = Some(amount);
                }
                loop {
                    v.id = new_id();
                    v.code = shape.generate(&mut rng);
                    match vouchers::insert(conn, &v) {
                        Ok(()) => break,
                        Err(StoreError::Conflict(Conflict::DuplicateCode(_))) => continue,
                        Err(e) => panic!("insert: {e:?}"),
                    }
                }
                codes.push_str(v.code.as_str());
                codes.push('\n');
                ids.push_str(&v.id);
                ids.push('\n');
                if v.amount.is_some() && v.status == Status::Active && i % 4 != 1 {
                    chargeable.push((v.id, created, v.amount.unwrap_or(0)));
                }
            }
            Ok::<_, StoreError>(())
        })
        .expect("vouchers");
    }

    let tenant = Tenant::Group(group.id.clone());
    let context = Context::default();
    let mut entries = 0u64;
    let charged: Vec<(usize, &(String, i64, i64))> =
        chargeable.iter().enumerate().step_by(5).collect();
    for chunk in charged.chunks(10_000) {
        in_savepoint(&conn, |conn| {
            for &(n, (id, created, _)) in chunk {
                let r = Redemption {
                    client_id: &client.id,
                    tenant: &tenant,
                    order_number: Some("history"),
                    context: &context,
                    now: created + 3600,
                };
                let charge = ledger::charge(conn, id, 500, &r).expect("charge");
                entries += 1;
                if n % 50 == 0 {
                    ledger::refund(conn, id, &charge.id, Some(250), &r).expect("refund");
                    entries += 1;
                }
            }
            Ok::<_, StoreError>(())
        })
        .expect("history");
    }
    drop(conn);
    let conn = rusqlite::Connection::open(&path).expect("reopen");

    let peer = dir.join("peer.db");
    let _ = std::fs::remove_file(&peer);
    conn.execute(
        "ATTACH DATABASE ?1 AS peer",
        [peer.to_str().expect("utf-8 path")],
    )
    .expect("attach");
    for table in ["client_groups", "clients", "vouchers"] {
        let sql: String = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .expect("schema");
        conn.execute_batch(&sql.replacen(
            &format!("CREATE TABLE {table}"),
            &format!("CREATE TABLE peer.{table}"),
            1,
        ))
        .expect("peer table");
        conn.execute_batch(&format!(
            "INSERT INTO peer.{table} SELECT * FROM main.{table}"
        ))
        .expect("peer rows");
    }
    // The server's own index on the code (migration 6 made it `(code, group_id)`, no longer a
    // column constraint that `CREATE TABLE` would carry over): without it every peer look-up
    // scanned the whole table.
    conn.execute_batch("CREATE UNIQUE INDEX peer.vouchers_code ON vouchers(code, group_id)")
        .expect("peer code index");
    conn.execute_batch("DETACH DATABASE peer").expect("detach");
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .expect("checkpoint");
    drop(conn);

    chargeable.shuffle(&mut rng);
    let cards: Vec<&str> = chargeable
        .iter()
        .filter(|(_, _, amount)| *amount >= CARD_MIN)
        .take(1000)
        .map(|(id, _, _)| id.as_str())
        .collect();
    std::fs::write(dir.join("codes.txt"), codes).expect("codes");
    std::fs::write(dir.join("ids.txt"), ids).expect("ids");
    std::fs::write(dir.join("cards.txt"), cards.join("\n") + "\n").expect("cards");
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{{\"client_id\":\"{}\",\"secret\":\"{SECRET}\",\"seconds\":{:.1},\"vouchers\":{count},\"entries\":{entries}}}",
        client.id,
        started.elapsed().as_secs_f64()
    )
    .expect("stdout");
}
