//! `vouchd demo`: a small shop's last year of vouchers in an empty database.
//!
//! Two client groups besides `admin` (a shop with two tills and a read-only bookkeeping client,
//! and a webshop), a few hundred gift cards and discount vouchers, and their ledger history,
//! all written in the caller's one transaction through the store's own insert and ledger paths
//! with past timestamps (see [`story`]), ending at the start of the current UTC day. What
//! happens to which voucher comes from a seeded generator, so two runs on the same day tell
//! the same story; codes, ids and secrets come
//! from the OS-seeded generators as everywhere else, so no demo code can be guessed from this
//! file.

pub(crate) mod report;
mod shop;
mod story;

use crate::auth::scope::Scopes;
use crate::auth::secret;
use crate::error::ApiError;
use crate::store::clients::{self, Client, Group};
use crate::store::Db;
use story::{Owner, Story, DAY};

pub use story::Tally;

/// Seed of the content's randomness (amounts, dates, fates).
const SEED: u64 = 20_261_124;

const CASHIER: &str = "vouchers:read vouchers:write charges:read charges:write";

/// The groups the demo creates, their scopes, and the receipt prefix of their ledger entries.
const GROUPS: [(&str, &str, &str, bool); 2] = [
    ("Main Street Shop", CASHIER, "MS", true),
    ("Webshop", CASHIER, "WEB", false),
];

/// The clients: name, group, and a narrower scope list than the group's when read-only.
/// Tenancy is by group (only `admin` sees across groups), so the shop's bookkeeping reads the
/// shop's vouchers through a read-only client of the shop's own group.
const CLIENTS: [(&str, &str, Option<&str>); 5] = [
    ("till-1", "Main Street Shop", None),
    ("till-2", "Main Street Shop", None),
    (
        "bookkeeping",
        "Main Street Shop",
        Some("vouchers:read charges:read"),
    ),
    ("checkout", "Webshop", None),
    ("support", "Webshop", None),
];

/// A client to create, with its fresh secret and that secret's argon2id hash.
pub struct NewClient {
    name: &'static str,
    group: &'static str,
    scopes: Option<&'static str>,
    secret: String,
    hash: String,
}

/// Generates and hashes the demo clients' secrets. Argon2 is slow on purpose, so this runs
/// before the write transaction begins.
pub fn prepare_clients() -> Result<Vec<NewClient>, String> {
    CLIENTS
        .iter()
        .map(|&(name, group, scopes)| {
            let secret = secret::generate_secret();
            let hash = secret::hash_secret(&secret)?;
            Ok(NewClient {
                name,
                group,
                scopes,
                secret,
                hash,
            })
        })
        .collect()
}

/// What [`fill`] made: the groups, the clients with their secrets (shown once), a tally, and
/// a partly spent gift card of the shop to show in the printed examples.
pub struct Filled {
    pub groups: Vec<Group>,
    pub clients: Vec<(Client, String)>,
    pub tally: Tally,
    pub example_id: String,
    pub example_code: String,
}

/// Writes the demo shop into the database on `conn`, which the caller holds in one
/// transaction and has checked to hold no vouchers.
pub fn fill(conn: &Db, new_clients: Vec<NewClient>, now: i64) -> Result<Filled, String> {
    fill_story(conn, new_clients, now).map_err(|e| match e {
        ApiError::Conflict(_, message) => message,
        ApiError::Refused(refusal) => {
            format!("the demo broke a voucher rule: {}", refusal.message())
        }
        other => other
            .log_message()
            .map_or_else(|| other.detail(), str::to_string),
    })
}

fn fill_story(conn: &Db, new_clients: Vec<NewClient>, now: i64) -> Result<Filled, ApiError> {
    // The shop opened a little before its first voucher.
    let opened = now - 400 * DAY;
    let mut groups = Vec::new();
    let mut owners = Vec::new();
    for (name, scopes, receipts, shop_hours) in GROUPS {
        let scopes = Scopes::parse(scopes).map_err(ApiError::Internal)?;
        let group = clients::create_group_at(conn, name, scopes, opened)?;
        owners.push(Owner {
            group_id: group.id.clone(),
            clients: Vec::new(),
            receipts,
            shop_hours,
        });
        groups.push(group);
    }
    let mut made = Vec::new();
    for c in new_clients {
        let index = GROUPS
            .iter()
            .position(|g| g.0 == c.group)
            .ok_or_else(|| ApiError::Internal(format!("no demo group {}", c.group)))?;
        let scopes = c
            .scopes
            .map(Scopes::parse)
            .transpose()
            .map_err(ApiError::Internal)?;
        let client =
            clients::create_client_at(conn, c.name, &groups[index], scopes, &c.hash, opened)?;
        if scopes.is_none() {
            owners[index].clients.push(client.id.clone());
        }
        made.push((client, c.secret));
    }
    let mut story = Story::new(conn, SEED, now, owners);
    let example = shop::write(&mut story)?;
    let (example_id, example_code) = story.id_and_code(example);
    let tally = story.apply()?;
    Ok(Filled {
        groups,
        clients: made,
        tally,
        example_id,
        example_code,
    })
}
