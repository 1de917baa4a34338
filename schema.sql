-- vouchd schema: the whole schema of a new database, which is then stamped with the latest
-- version (PRAGMA user_version). The numbered migrations in src/store/migrate.rs only bring
-- older files up to it; a change here comes with a migration, and the store's schema test
-- checks that both roads end in the same schema.
-- Money is integer minor units of the row's currency; times are unix seconds (UTC).

-- Groups of API clients: tenancy and scopes are per group.
CREATE TABLE client_groups (
    id          TEXT PRIMARY KEY,            -- opaque 16-char id
    name        TEXT NOT NULL UNIQUE,        -- human name, also accepted where a group is named
    scopes      TEXT NOT NULL,               -- space-separated scopes every member may hold
    created_at  INTEGER NOT NULL
);

-- OAuth2 clients (client credentials grant).
CREATE TABLE clients (
    id          TEXT PRIMARY KEY,            -- the public client_id
    name        TEXT NOT NULL,
    group_id    TEXT NOT NULL REFERENCES client_groups(id),
    scopes      TEXT,                        -- space-separated subset of the group's; NULL = the group's
    secret_hash TEXT NOT NULL,               -- argon2id PHC string; the secret itself is never stored
    revoked_at  INTEGER,                     -- set by revoke; a revoked client has no live tokens
    created_at  INTEGER NOT NULL
);
CREATE INDEX clients_group ON clients(group_id);

-- Issued bearer tokens, by hash only.
CREATE TABLE tokens (
    hash        BLOB PRIMARY KEY,            -- BLAKE2s-256 of the token
    client_id   TEXT NOT NULL REFERENCES clients(id),
    scopes      TEXT NOT NULL,               -- space-separated scopes granted to this token
    client_type TEXT,                        -- optional, ≤ 32 chars, statistics only
    expires_at  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    dialect_scopes TEXT                      -- JTL: the dialect's scopes this token was granted
) WITHOUT ROWID;
CREATE INDEX tokens_client ON tokens(client_id);
CREATE INDEX tokens_expiry ON tokens(expires_at);

-- Small settings and counters; `auth_epoch` moves whenever a client is revoked so servers drop
-- their token caches.
CREATE TABLE settings (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO settings (key, value) VALUES ('auth_epoch', '0');

CREATE TABLE vouchers (
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
    pin_hash          TEXT,                  -- JTL: the voucher's PIN as an argon2id PHC string
    CHECK ((amount IS NULL) <> (discount_type IS NULL)),   -- exactly one kind
    CHECK (remaining IS NULL OR (remaining >= 0 AND remaining <= amount)),
    CHECK (max_uses IS NULL OR uses <= max_uses)
);
-- Tenancy-first indexes for the list's default order and the filters a till uses.
-- The status rides in the group's index so a page of one status skips rows in the index.
CREATE INDEX vouchers_group_created ON vouchers(group_id, created_at, id, status);
CREATE INDEX vouchers_created ON vouchers(created_at, id);
CREATE INDEX vouchers_batch ON vouchers(batch) WHERE batch IS NOT NULL;
CREATE INDEX vouchers_customer ON vouchers(customer_id) WHERE customer_id IS NOT NULL;
CREATE INDEX vouchers_purchase ON vouchers(purchase_id) WHERE purchase_id IS NOT NULL;
CREATE INDEX vouchers_order ON vouchers(order_number) WHERE order_number IS NOT NULL;
CREATE INDEX vouchers_client ON vouchers(client_id);
-- Codes are unique per group: no group can learn whether another group holds a code.
CREATE UNIQUE INDEX vouchers_code ON vouchers(code, group_id);

-- Vouchers counted per group and status, kept by the store's own inserts, status changes and
-- deletes (one statement for a whole batch), so a list's total without other filters is a sum
-- of a few rows instead of a count over the table.
CREATE TABLE voucher_counts (
    group_id TEXT NOT NULL,
    status   TEXT NOT NULL,
    n        INTEGER NOT NULL,
    PRIMARY KEY (group_id, status)
) WITHOUT ROWID;

-- The append-only ledger: charges, discount uses, refunds and recharges. Never updated, never deleted.
CREATE TABLE ledger (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    voucher_id   TEXT NOT NULL REFERENCES vouchers(id),
    client_id    TEXT NOT NULL,
    type         TEXT NOT NULL CHECK (type IN ('charge', 'use', 'refund', 'recharge')),
    amount       INTEGER NOT NULL CHECK (amount >= 0), -- minor units of the voucher's currency
    order_number TEXT,
    refers_to    TEXT,                       -- refund: the charge; capture: the reservation
    ticket_total INTEGER,                    -- use: the ticket the discount was granted on
    created_at   INTEGER NOT NULL
);
CREATE INDEX ledger_voucher ON ledger(voucher_id, created_at, id);
CREATE INDEX ledger_refers ON ledger(refers_to) WHERE refers_to IS NOT NULL;
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;

-- Holds on a value voucher's balance until captured, released or expired.
CREATE TABLE reservations (
    id           TEXT PRIMARY KEY,
    voucher_id   TEXT NOT NULL REFERENCES vouchers(id),
    client_id    TEXT NOT NULL,
    amount       INTEGER NOT NULL CHECK (amount > 0),
    order_number TEXT,
    status       TEXT NOT NULL CHECK (status IN ('held', 'captured', 'released')),
    expires_at   INTEGER NOT NULL,           -- a 'held' row past this no longer counts
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    dialect      TEXT                        -- 'jtl' for JTL's holds: a new one replaces only these
);
CREATE INDEX reservations_live ON reservations(voucher_id, expires_at) WHERE status = 'held';

-- Stored responses of POSTs sent with an Idempotency-Key, kept 24 h.
CREATE TABLE idempotency (
    client_id    TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash BLOB NOT NULL,              -- BLAKE2s-256 of method, path and body
    status       INTEGER NOT NULL,
    content_type TEXT NOT NULL,              -- then one "Name: value" line per kept header
    body         BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (client_id, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_created ON idempotency(created_at);

-- One-time connection PINs (hashed) that a JTL shop swaps for client credentials.
CREATE TABLE connect_pins (
    hash        BLOB PRIMARY KEY,
    group_id    TEXT NOT NULL REFERENCES client_groups(id),
    name        TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;

-- The reasons given for deletions and status changes (JTL).
CREATE TABLE voucher_comments (
    seq         INTEGER PRIMARY KEY,
    voucher_id  TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    action      TEXT NOT NULL,
    comment     TEXT,
    created_at  INTEGER NOT NULL
);
CREATE INDEX voucher_comments_voucher ON voucher_comments(voucher_id);

-- Webhooks. A group's receivers: where to send which events, signed with the secret.
CREATE TABLE webhook_endpoints (
    id              TEXT PRIMARY KEY,
    group_id        TEXT NOT NULL REFERENCES client_groups(id),
    url             TEXT NOT NULL,           -- http:// or https://
    events          TEXT NOT NULL,           -- space-separated event types it wants
    secret          TEXT NOT NULL,           -- the HMAC key; kept as is, since signing needs it
    created_at      INTEGER NOT NULL,
    disabled_at     INTEGER,                 -- set when it failed for the whole retry window
    disabled_reason TEXT,
    fanned_upto     INTEGER NOT NULL DEFAULT 0 -- its deliveries are made for events up to this seq
);
CREATE INDEX webhook_endpoints_group ON webhook_endpoints(group_id);
-- The outbox: one row per event, written in the transaction of the change it reports (and
-- nothing else there: the delivery thread makes the deliveries).
CREATE TABLE webhook_events (
    seq         INTEGER PRIMARY KEY,         -- the order of delivery
    id          TEXT NOT NULL UNIQUE,        -- the event id receivers see, the same on every try
    group_id    TEXT NOT NULL,
    type        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    body        TEXT,                        -- the JSON sent, rendered once; NULL for a ledger
    entry_id    TEXT                         -- event: rendered from this entry when sent
);
-- One event to one endpoint (made by the delivery thread): its attempts so far and the next.
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
-- Holds whose expiry the webhook sweep looks for.
CREATE INDEX reservations_expiry ON reservations(expires_at) WHERE status = 'held';
