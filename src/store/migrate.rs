//! Schema set-up and numbered migrations, driven by `PRAGMA user_version`.
//!
//! Version 0 is an empty file: `schema.sql`, the whole schema, is applied, the `admin` group
//! seeded and the file stamped with the latest version. An older file runs each step in
//! [`MIGRATIONS`] it lacks, each in its own transaction bumping the version by one, and ends
//! with the same schema (the test `a_new_and_a_migrated_version_1_database_have_the_same_schema`).

use crate::domain::scope::ALL_SCOPES;
use crate::domain::{clock, code};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

const SCHEMA: &str = include_str!("../../schema.sql");

/// Steps after version 1; step `i` takes the database from version `i + 1` to `i + 2`. A new
/// step changes `schema.sql` to its end state too.
const MIGRATIONS: &[&str] = &[
    // 2: vouchers counted per group and status, kept by triggers in every statement's own
    // transaction, so a list's `meta.total` without other filters is a sum of a few rows instead
    // of a COUNT(*) over the table.
    "CREATE TABLE voucher_counts (
         group_id TEXT NOT NULL,
         status   TEXT NOT NULL,
         n        INTEGER NOT NULL,
         PRIMARY KEY (group_id, status)
     ) WITHOUT ROWID;
     INSERT INTO voucher_counts (group_id, status, n)
         SELECT group_id, status, COUNT(*) FROM vouchers GROUP BY group_id, status;
     CREATE TRIGGER vouchers_counted_in AFTER INSERT ON vouchers BEGIN
         INSERT INTO voucher_counts (group_id, status, n) VALUES (NEW.group_id, NEW.status, 1)
             ON CONFLICT (group_id, status) DO UPDATE SET n = n + 1;
     END;
     CREATE TRIGGER vouchers_counted_out AFTER DELETE ON vouchers BEGIN
         UPDATE voucher_counts SET n = n - 1
             WHERE group_id = OLD.group_id AND status = OLD.status;
     END;
     CREATE TRIGGER vouchers_counted_moved AFTER UPDATE OF group_id, status ON vouchers
         WHEN OLD.group_id IS NOT NEW.group_id OR OLD.status IS NOT NEW.status BEGIN
         UPDATE voucher_counts SET n = n - 1
             WHERE group_id = OLD.group_id AND status = OLD.status;
         INSERT INTO voucher_counts (group_id, status, n) VALUES (NEW.group_id, NEW.status, 1)
             ON CONFLICT (group_id, status) DO UPDATE SET n = n + 1;
     END;",
    // 3: the counts are kept by the store's own insert, batch, import, status change and
    // delete (one statement for a whole batch) instead of a trigger per row, which slowed
    // batches. Recounted here so nothing carries over.
    "DROP TRIGGER vouchers_counted_in;
     DROP TRIGGER vouchers_counted_out;
     DROP TRIGGER vouchers_counted_moved;
     DELETE FROM voucher_counts;
     INSERT INTO voucher_counts (group_id, status, n)
         SELECT group_id, status, COUNT(*) FROM vouchers GROUP BY group_id, status;",
    // 4: the group's index carries the status, so a page of one status deep in a list skips
    // the rows before it in the index instead of reading each from the table.
    "DROP INDEX vouchers_group_created;
     CREATE INDEX vouchers_group_created ON vouchers(group_id, created_at, id, status);",
    // 5: no token rows of revoked clients (a login racing a revocation could leave one) and
    // none past expiry (they were kept a day); logins keep it so from here on.
    "DELETE FROM tokens WHERE expires_at <= unixepoch()
         OR client_id IN (SELECT id FROM clients WHERE revoked_at IS NOT NULL);",
    // 6: codes are unique per group instead of across groups, so that no request of one group
    // can tell whether another holds a code (a clash, a batch's room, an import's report did).
    // SQLite cannot drop a column's UNIQUE: the table is rebuilt, rows and indexes as they were.
    "CREATE TABLE vouchers_new (
         seq               INTEGER PRIMARY KEY,   -- storage order; never shown
         id                TEXT NOT NULL UNIQUE,  -- 16 chars [A-Z0-9]
         code              TEXT NOT NULL,         -- normalised 4–8 chars [A-Z0-9], unique in its group
         client_id         TEXT NOT NULL REFERENCES clients(id),
         group_id          TEXT NOT NULL REFERENCES client_groups(id), -- the owner's group: tenancy
         sku               TEXT,
         batch             TEXT,
         label             TEXT,
         note              TEXT,
         currency          TEXT NOT NULL,         -- ISO 4217
         exponent          INTEGER NOT NULL,      -- the currency's decimals, for amount filters
         amount            INTEGER,               -- value vouchers: issued amount; NULL for discounts
         remaining         INTEGER,               -- value vouchers: what is left; never below 0
         discount_type     TEXT CHECK (discount_type IN ('money', 'percentage')),
         discount_value    INTEGER,               -- minor units (money) or hundredths of a percent
         max_uses          INTEGER,               -- discount vouchers: how often it may be used
         uses              INTEGER NOT NULL DEFAULT 0,
         used_at           INTEGER,               -- when the last use spent it
         valid_from        INTEGER,
         valid_until       INTEGER,
         validity_value    INTEGER,
         validity_interval TEXT,                  -- days | weeks | months | years
         status            TEXT NOT NULL CHECK (status IN ('active', 'inactive', 'cancelled')),
         type              TEXT NOT NULL CHECK (type IN ('digital', 'print')),
         taxable           INTEGER NOT NULL DEFAULT 0,
         tax_rate          INTEGER,               -- hundredths of a percent
         order_number      TEXT,
         customer_id       TEXT,
         product_id        TEXT,
         store_id          TEXT,
         purchase_id       TEXT,
         reward_id         TEXT,
         data              TEXT,                  -- free text (usually JSON) owned by the client
         entries           INTEGER NOT NULL DEFAULT 0, -- ledger entries; > 0 means not deletable
         created_at        INTEGER NOT NULL,
         updated_at        INTEGER NOT NULL,
         CHECK ((amount IS NULL) <> (discount_type IS NULL)),   -- exactly one kind
         CHECK (remaining IS NULL OR (remaining >= 0 AND remaining <= amount)),
         CHECK (max_uses IS NULL OR uses <= max_uses)
     );
     INSERT INTO vouchers_new SELECT * FROM vouchers;
     DROP TABLE vouchers;
     ALTER TABLE vouchers_new RENAME TO vouchers;
     CREATE INDEX vouchers_group_created ON vouchers(group_id, created_at, id, status);
     CREATE INDEX vouchers_created ON vouchers(created_at, id);
     CREATE INDEX vouchers_batch ON vouchers(batch) WHERE batch IS NOT NULL;
     CREATE INDEX vouchers_customer ON vouchers(customer_id) WHERE customer_id IS NOT NULL;
     CREATE INDEX vouchers_purchase ON vouchers(purchase_id) WHERE purchase_id IS NOT NULL;
     CREATE INDEX vouchers_order ON vouchers(order_number) WHERE order_number IS NOT NULL;
     CREATE INDEX vouchers_client ON vouchers(client_id);
     CREATE UNIQUE INDEX vouchers_code ON vouchers(code, group_id);",
    // 7: the `metrics` scope (scraping /metrics, which shows every group's totals) is new, and
    // group `admin` holds every scope.
    "UPDATE client_groups SET scopes = scopes || ' metrics'
         WHERE name = 'admin' AND ' ' || scopes || ' ' NOT LIKE '% metrics %';",
    // 8: what the JTL dialect keeps. Recharges in the ledger: its type CHECK cannot be altered,
    // so the table is rebuilt as it was with one more type (indexes and guards included). A
    // voucher's PIN as an argon2id hash; the JTL scopes a token was granted; one-time
    // connection PINs (hashed) that a client swaps for credentials; the reasons given for
    // deletions and status changes.
    "CREATE TABLE ledger_new (
         seq          INTEGER PRIMARY KEY,
         id           TEXT NOT NULL UNIQUE,
         voucher_id   TEXT NOT NULL REFERENCES vouchers(id),
         client_id    TEXT NOT NULL,
         type         TEXT NOT NULL CHECK (type IN ('charge', 'use', 'refund', 'recharge')),
         amount       INTEGER NOT NULL CHECK (amount >= 0),
         order_number TEXT,
         refers_to    TEXT,
         ticket_total INTEGER,
         created_at   INTEGER NOT NULL
     );
     INSERT INTO ledger_new (seq, id, voucher_id, client_id, type, amount, order_number,
                             refers_to, ticket_total, created_at)
         SELECT seq, id, voucher_id, client_id, type, amount, order_number, refers_to,
                ticket_total, created_at FROM ledger;
     DROP TABLE ledger;
     ALTER TABLE ledger_new RENAME TO ledger;
     CREATE INDEX ledger_voucher ON ledger(voucher_id, created_at, id);
     CREATE INDEX ledger_refers ON ledger(refers_to) WHERE refers_to IS NOT NULL;
     CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
     BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
     CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
     BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
     ALTER TABLE vouchers ADD COLUMN pin_hash TEXT;
     ALTER TABLE tokens ADD COLUMN dialect_scopes TEXT;
     CREATE TABLE connect_pins (
         hash        BLOB PRIMARY KEY,
         group_id    TEXT NOT NULL REFERENCES client_groups(id),
         name        TEXT NOT NULL,
         expires_at  INTEGER NOT NULL,
         used_at     INTEGER,
         created_at  INTEGER NOT NULL
     ) WITHOUT ROWID;
     CREATE TABLE voucher_comments (
         seq         INTEGER PRIMARY KEY,
         voucher_id  TEXT NOT NULL,
         client_id   TEXT NOT NULL,
         action      TEXT NOT NULL,
         comment     TEXT,
         created_at  INTEGER NOT NULL
     );
     CREATE INDEX voucher_comments_voucher ON voucher_comments(voucher_id);",
    // 9: webhooks: endpoints, the outbox of events, their deliveries, and an index for the
    // sweep that reports expired holds; the `webhooks` scope is new, and group `admin` holds
    // every scope.
    "UPDATE client_groups SET scopes = scopes || ' webhooks'
         WHERE name = 'admin' AND ' ' || scopes || ' ' NOT LIKE '% webhooks %';
     CREATE TABLE webhook_endpoints (
         id              TEXT PRIMARY KEY,
         group_id        TEXT NOT NULL REFERENCES client_groups(id),
         url             TEXT NOT NULL,           -- http:// or https://
         events          TEXT NOT NULL,           -- space-separated event types it wants
         secret          TEXT NOT NULL,           -- the HMAC key; kept as is, since signing needs it
         created_at      INTEGER NOT NULL,
         disabled_at     INTEGER,                 -- set when it failed for the whole retry window
         disabled_reason TEXT
     );
     CREATE INDEX webhook_endpoints_group ON webhook_endpoints(group_id);
     CREATE TABLE webhook_events (
         seq         INTEGER PRIMARY KEY,         -- the order of delivery
         id          TEXT NOT NULL UNIQUE,        -- the event id receivers see, the same on every try
         group_id    TEXT NOT NULL,
         type        TEXT NOT NULL,
         created_at  INTEGER NOT NULL,
         body        TEXT NOT NULL                -- the JSON sent, rendered once
     );
     CREATE TABLE webhook_deliveries (
         endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
         event_seq       INTEGER NOT NULL REFERENCES webhook_events(seq),
         state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
         attempts        INTEGER NOT NULL DEFAULT 0,
         first_failed_at INTEGER,                 -- unix ms of the first failed attempt
         last_status     INTEGER,                 -- the receiver's HTTP status; NULL: no answer
         last_error      TEXT,
         next_try_at     INTEGER NOT NULL,        -- unix ms
         delivered_at    INTEGER,
         PRIMARY KEY (endpoint_id, event_seq)
     ) WITHOUT ROWID;
     CREATE INDEX webhook_deliveries_pending
         ON webhook_deliveries(endpoint_id, event_seq) WHERE state = 'pending';
     CREATE INDEX reservations_expiry ON reservations(expires_at) WHERE status = 'held';",
    // 10: JTL's "one live reservation per voucher" replaces only JTL's own holds: a hold another
    // integration took through the native API stays until it is captured, released or expires.
    "ALTER TABLE reservations ADD COLUMN dialect TEXT;",
    // 11: a write records one outbox row per event and nothing more: the delivery thread makes
    // each endpoint's deliveries (up to `fanned_upto`, which starts at the newest event, since
    // every older one has its deliveries), and a ledger event keeps its entry's id instead of
    // a body (NULL), rendered from the entry when sent. The events table is rebuilt for that.
    "ALTER TABLE webhook_endpoints ADD COLUMN fanned_upto INTEGER NOT NULL DEFAULT 0;
     UPDATE webhook_endpoints SET fanned_upto = (SELECT COALESCE(MAX(seq), 0) FROM webhook_events);
     CREATE TABLE webhook_events_new (
         seq         INTEGER PRIMARY KEY,
         id          TEXT NOT NULL UNIQUE,
         group_id    TEXT NOT NULL,
         type        TEXT NOT NULL,
         created_at  INTEGER NOT NULL,
         body        TEXT,
         entry_id    TEXT
     );
     INSERT INTO webhook_events_new (seq, id, group_id, type, created_at, body)
         SELECT seq, id, group_id, type, created_at, body FROM webhook_events;
     DROP TABLE webhook_events;
     ALTER TABLE webhook_events_new RENAME TO webhook_events;",
];

/// The version `schema.sql` is: the last step's.
pub(super) const LATEST: i64 = MIGRATIONS.len() as i64 + 1;

pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version == 0 {
        tx.execute_batch(SCHEMA)?;
        tx.execute(
            "INSERT INTO client_groups (id, name, scopes, created_at) VALUES (?1, 'admin', ?2, ?3)",
            params![code::new_id(), ALL_SCOPES.join(" "), clock::now()],
        )?;
        tx.pragma_update(None, "user_version", LATEST)?;
    }
    tx.commit()?;
    if version == 0 {
        return Ok(());
    }
    // A step may rebuild a table that others refer to (SQLite's way to change a column), which
    // foreign keys would refuse half-way: they are off during the steps, and each step is
    // checked for dangling references before it commits.
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let stepped = run_steps(conn);
    conn.pragma_update(None, "foreign_keys", "ON")?;
    stepped
}

fn run_steps(conn: &mut Connection) -> rusqlite::Result<()> {
    for (i, step) in MIGRATIONS.iter().enumerate() {
        let target = i as i64 + 2;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version < target {
            tx.execute_batch(step)?;
            let dangling = tx
                .query_row("PRAGMA foreign_key_check", [], |_| Ok(()))
                .optional()?;
            if dangling.is_some() {
                return Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY),
                    Some(format!("migration {target} leaves a dangling reference")),
                ));
            }
            tx.pragma_update(None, "user_version", target)?;
        }
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `schema.sql` as version 1 had it: codes unique across groups, no counts, no JTL tables.
    const SCHEMA_V1: &str = include_str!("../../tests/fixtures/schema-v1.sql");

    /// Every table, index and trigger with its SQL, comments dropped and spacing normalised:
    /// SQLite keeps a statement's text as written (and as `ALTER TABLE` edited it), so the
    /// same schema reached by another road differs only in comments, line breaks and quotes.
    fn schema_of(conn: &Connection) -> Vec<(String, String, String)> {
        let mut stmt = conn
            .prepare("SELECT type, name, sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY type, name")
            .expect("sqlite_schema");
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, normalise(&r.get::<_, String>(2)?)))
            })
            .expect("query")
            .collect::<rusqlite::Result<Vec<_>>>()
            .expect("rows");
        rows
    }

    fn normalise(sql: &str) -> String {
        let uncommented: Vec<&str> = sql
            .lines()
            .map(|line| line.split_once("--").map_or(line, |(code, _)| code))
            .collect();
        let spaced = uncommented.join(" ").replace('"', "");
        let mut out = String::new();
        for word in spaced.split_whitespace() {
            let glued = out.ends_with(['(', ',']) || word.starts_with([')', ',']);
            if !out.is_empty() && !glued {
                out.push(' ');
            }
            out.push_str(word);
        }
        out
    }

    #[test]
    fn a_new_and_a_migrated_version_1_database_have_the_same_schema() {
        let new = fresh();
        let mut old = Connection::open_in_memory().expect("in-memory database");
        old.execute_batch(SCHEMA_V1).expect("the version 1 schema");
        old.execute(
            "INSERT INTO client_groups (id, name, scopes, created_at) VALUES ('G', 'admin', 'admin', 0)",
            [],
        )
        .expect("its admin group");
        old.pragma_update(None, "user_version", 1)
            .expect("version 1");
        migrate(&mut old).expect("migrate");
        let version = |c: &Connection| -> i64 {
            c.pragma_query_value(None, "user_version", |r| r.get(0))
                .expect("version")
        };
        assert_eq!(
            version(&new),
            LATEST,
            "a new database is stamped with the latest version"
        );
        assert_eq!(version(&old), LATEST);
        let (new, old) = (schema_of(&new), schema_of(&old));
        let names = |s: &[(String, String, String)]| -> Vec<String> {
            s.iter().map(|(t, n, _)| format!("{t} {n}")).collect()
        };
        assert_eq!(
            names(&new),
            names(&old),
            "the same tables, indexes and triggers"
        );
        for (n, o) in new.iter().zip(&old) {
            assert_eq!(n, o, "schema.sql and the migrations disagree");
        }
    }

    #[test]
    fn normalising_keeps_real_differences() {
        let a = normalise("CREATE TABLE t (\n  a INTEGER NOT NULL, -- why\n  b TEXT\n)");
        assert_eq!(a, "CREATE TABLE t (a INTEGER NOT NULL,b TEXT)");
        assert_eq!(
            a,
            normalise("CREATE TABLE \"t\" (a INTEGER NOT NULL, b TEXT)")
        );
        assert_ne!(a, normalise("CREATE TABLE t (a INTEGER, b TEXT)"));
        assert_ne!(a, normalise("CREATE TABLE t (a INTEGER NOT NULL, b BLOB)"));
    }

    fn fresh() -> Connection {
        let mut conn = Connection::open_in_memory().expect("in-memory database");
        conn.pragma_update(None, "foreign_keys", "ON")
            .expect("foreign keys");
        migrate(&mut conn).expect("migrate");
        conn
    }

    #[test]
    fn the_rebuilt_vouchers_table_is_still_referenced_and_foreign_keys_are_back_on() {
        let conn = fresh();
        let on: i64 = conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .expect("pragma");
        assert_eq!(on, 1);
        let dangling = conn.execute(
            "INSERT INTO ledger (id, voucher_id, client_id, type, amount, created_at)
             VALUES ('L', 'NO SUCH VOUCHER', 'C', 'charge', 1, 0)",
            [],
        );
        assert!(dangling.is_err(), "a ledger row needs its voucher");
    }

    #[test]
    fn a_database_from_before_per_group_codes_keeps_its_vouchers_and_ledger() {
        let mut conn = Connection::open_in_memory().expect("in-memory database");
        conn.pragma_update(None, "foreign_keys", "ON")
            .expect("foreign keys");
        conn.execute_batch(SCHEMA_V1).expect("the old schema");
        conn.execute_batch(
            "INSERT INTO client_groups VALUES ('GA', 'a', 'vouchers:write', 0), ('GB', 'b', 'vouchers:write', 0);
             INSERT INTO clients (id, name, group_id, secret_hash, created_at)
                 VALUES ('CA', 'a', 'GA', 'x', 0), ('CB', 'b', 'GB', 'x', 0);
             INSERT INTO vouchers (id, code, client_id, group_id, currency, exponent, amount,
                 remaining, status, type, entries, created_at, updated_at)
                 VALUES ('VA', 'ABCD', 'CA', 'GA', 'EUR', 2, 1000, 900, 'active', 'digital', 1, 0, 0);
             INSERT INTO ledger (id, voucher_id, client_id, type, amount, created_at)
                 VALUES ('L1', 'VA', 'CA', 'charge', 100, 0);
             PRAGMA user_version = 1;",
        )
        .expect("old data");
        migrate(&mut conn).expect("migrate");
        let charged: i64 = conn
            .query_row(
                "SELECT l.amount FROM ledger l JOIN vouchers v ON v.id = l.voucher_id WHERE v.code = 'ABCD'",
                [],
                |r| r.get(0),
            )
            .expect("the ledger row and its voucher");
        assert_eq!(charged, 100);
        let insert = |id: &str, client: &str, group: &str| {
            conn.execute(
                "INSERT INTO vouchers (id, code, client_id, group_id, currency, exponent, amount,
                     remaining, status, type, created_at, updated_at)
                 VALUES (?1, 'ABCD', ?2, ?3, 'EUR', 2, 1, 1, 'active', 'digital', 0, 0)",
                [id, client, group],
            )
        };
        insert("VB", "CB", "GB").expect("another group may have the code");
        assert!(
            insert("VA2", "CA", "GA").is_err(),
            "not the same group twice"
        );
    }

    #[test]
    fn an_older_admin_group_gets_the_metrics_scope_once() {
        let conn = fresh();
        conn.execute(
            "UPDATE client_groups SET scopes = 'vouchers:read admin' WHERE name = 'admin'",
            [],
        )
        .expect("an older admin group");
        let step = MIGRATIONS
            .iter()
            .find(|s| s.contains("' metrics'"))
            .expect("the metrics step");
        conn.execute_batch(step).expect("the step runs");
        conn.execute_batch(step).expect("and again");
        let scopes: String = conn
            .query_row(
                "SELECT scopes FROM client_groups WHERE name = 'admin'",
                [],
                |r| r.get(0),
            )
            .expect("admin group");
        assert_eq!(scopes, "vouchers:read admin metrics");
    }

    #[test]
    fn a_version_10_outbox_keeps_its_events_and_deliveries_and_makes_none_twice() {
        let mut conn = Connection::open_in_memory().expect("open");
        conn.pragma_update(None, "foreign_keys", "ON").expect("fk");
        conn.execute_batch(SCHEMA_V1).expect("schema");
        let before = MIGRATIONS
            .iter()
            .position(|s| s.contains("fanned_upto"))
            .expect("the outbox step");
        for step in &MIGRATIONS[..before] {
            conn.execute_batch(step).expect("old step");
        }
        conn.pragma_update(None, "user_version", before as i64 + 1)
            .expect("version");
        conn.execute_batch(
            "INSERT INTO client_groups (id, name, scopes, created_at) VALUES ('G', 'admin', 'admin', 0);
             INSERT INTO webhook_endpoints (id, group_id, url, events, secret, created_at)
                 VALUES ('E', 'G', 'http://127.0.0.1/', 'charge.created', 's', 0);
             INSERT INTO webhook_events (seq, id, group_id, type, created_at, body)
                 VALUES (7, 'evt_A', 'G', 'charge.created', 0, '{}');
             INSERT INTO webhook_deliveries (endpoint_id, event_seq, state, next_try_at)
                 VALUES ('E', 7, 'pending', 0);",
        )
        .expect("an older outbox");
        migrate(&mut conn).expect("migrate");
        let kept: (i64, String, i64) = conn
            .query_row(
                "SELECT e.fanned_upto, ev.body, d.event_seq FROM webhook_endpoints e
                 JOIN webhook_deliveries d ON d.endpoint_id = e.id
                 JOIN webhook_events ev ON ev.seq = d.event_seq",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("the endpoint, its delivery and the event");
        assert_eq!(
            kept,
            (7, "{}".into(), 7),
            "made already: not to be made again"
        );
    }

    #[test]
    fn a_version_8_database_gets_the_webhook_tables_and_only_its_admin_group_the_scope() {
        let mut conn = Connection::open_in_memory().expect("open");
        conn.pragma_update(None, "foreign_keys", "ON").expect("fk");
        conn.execute_batch(SCHEMA_V1).expect("schema");
        let before = MIGRATIONS
            .iter()
            .position(|s| s.contains("' webhooks'"))
            .expect("the webhooks step");
        for step in &MIGRATIONS[..before] {
            conn.execute_batch(step).expect("old step");
        }
        conn.pragma_update(None, "user_version", before as i64 + 1)
            .expect("version");
        conn.execute_batch(
            "INSERT INTO client_groups (id, name, scopes, created_at)
                 VALUES ('A', 'admin', 'vouchers:read admin metrics', 0),
                        ('S', 'shop', 'vouchers:read', 0);",
        )
        .expect("older groups");
        migrate(&mut conn).expect("migrate");
        let scopes = |name: &str| -> String {
            conn.query_row(
                "SELECT scopes FROM client_groups WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .expect("group")
        };
        assert_eq!(scopes("admin"), "vouchers:read admin metrics webhooks");
        assert_eq!(scopes("shop"), "vouchers:read");
        for table in ["webhook_endpoints", "webhook_events", "webhook_deliveries"] {
            let n: i64 = conn
                .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
                .expect(table);
            assert_eq!(n, 0);
        }
    }

    #[test]
    fn the_ledger_rebuild_keeps_every_entry_and_its_guards_and_admits_recharges() {
        let mut conn = Connection::open_in_memory().expect("open");
        conn.pragma_update(None, "foreign_keys", "ON").expect("fk");
        // A database as version 4 left it, with a voucher and two entries.
        conn.execute_batch(SCHEMA_V1).expect("schema");
        for step in &MIGRATIONS[..3] {
            conn.execute_batch(step).expect("old step");
        }
        conn.pragma_update(None, "user_version", 4)
            .expect("version");
        conn.execute_batch(
            "INSERT INTO client_groups (id, name, scopes, created_at) VALUES ('G', 'g', 'admin', 0);
             INSERT INTO clients (id, name, group_id, secret_hash, created_at) VALUES ('C', 'c', 'G', 'h', 0);
             INSERT INTO vouchers (id, code, client_id, group_id, currency, exponent, amount, remaining,
                                   status, type, entries, created_at, updated_at)
                 VALUES ('V', 'ABCD', 'C', 'G', 'EUR', 2, 1000, 800, 'active', 'digital', 2, 0, 0);
             INSERT INTO ledger (id, voucher_id, client_id, type, amount, created_at)
                 VALUES ('L1', 'V', 'C', 'charge', 300, 1), ('L2', 'V', 'C', 'refund', 100, 2);",
        )
        .expect("old rows");
        migrate(&mut conn).expect("migrate");
        let rows: Vec<(i64, String, String, i64)> = conn
            .prepare("SELECT seq, id, type, amount FROM ledger ORDER BY seq")
            .expect("select")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .expect("rows")
            .collect::<rusqlite::Result<_>>()
            .expect("read");
        assert_eq!(
            rows,
            vec![
                (1, "L1".into(), "charge".into(), 300),
                (2, "L2".into(), "refund".into(), 100)
            ]
        );
        conn.execute(
            "INSERT INTO ledger (id, voucher_id, client_id, type, amount, created_at) VALUES ('L3', 'V', 'C', 'recharge', 5, 3)",
            [],
        )
        .expect("a recharge entry");
        assert!(conn
            .execute("INSERT INTO ledger (id, voucher_id, client_id, type, amount, created_at) VALUES ('L4', 'V', 'C', 'gift', 5, 3)", [])
            .is_err());
        assert!(conn.execute("UPDATE ledger SET amount = 1", []).is_err());
        assert!(conn.execute("DELETE FROM ledger", []).is_err());
        assert!(conn
            .execute("INSERT INTO ledger (id, voucher_id, client_id, type, amount, created_at) VALUES ('L5', 'NOPE', 'C', 'charge', 5, 3)", [])
            .is_err(), "the voucher reference is still enforced");
        let indexes: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name IN ('ledger_voucher', 'ledger_refers')",
                [],
                |r| r.get(0),
            )
            .expect("indexes");
        assert_eq!(indexes, 2);
    }
}
