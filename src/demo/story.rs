//! The demo's timeline: vouchers issued at past creation times, then every charge, refund, use
//! and status change they see, replayed in time order through the store's own write paths
//! (`vouchers::insert`, `ledger::charge`, `ledger::refund`, `ledger::use_discount`,
//! `vouchers::update_at`) with the event's time as "now". The demo data therefore obeys exactly
//! the rules a live request does: a planning mistake here fails the demo, it cannot write a
//! balance the ledger does not explain.

use crate::domain::code::{new_id, Code, CodeShape};
use crate::domain::ledger::Redemption;
use crate::domain::money::Currency;
use crate::domain::voucher::{Changes, Context, Status, Tenant, Voucher};
use crate::error::ApiError;
use crate::store::error::{Conflict, StoreError};
use crate::store::ledger;
use crate::store::vouchers;
use crate::store::Db;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;

pub const HOUR: i64 = 3600;
pub const DAY: i64 = 24 * HOUR;

/// A group whose clients issue and redeem vouchers.
pub struct Owner {
    pub group_id: String,
    /// The clients that write (issue, charge, use); read-only clients are not listed.
    pub clients: Vec<String>,
    /// Prefix of the receipt numbers its ledger entries carry.
    pub receipts: &'static str,
    /// Tills work shop hours; a webshop sells around the clock.
    pub shop_hours: bool,
}

/// What the timeline remembers of an issued voucher.
struct Issued {
    id: String,
    code: String,
    owner: usize,
    amount: Option<i64>,
    /// The window in which it can be redeemed: from its creation (or `valid_from`) until its
    /// expiry or shortly before now.
    from: i64,
    until: i64,
    /// The latest planned event, so a status change comes after the history.
    last: i64,
}

enum Action {
    Charge { amount: i64, slot: usize },
    Refund { slot: usize, amount: i64 },
    Use { ticket_total: i64 },
    End { status: Status, note: &'static str },
}

struct Event {
    at: i64,
    voucher: usize,
    client: usize,
    action: Action,
}

/// What the demo wrote, for the summary.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub gift_cards: usize,
    pub discount_vouchers: usize,
    pub per_owner: Vec<usize>,
    pub currencies: BTreeSet<String>,
    pub expired: usize,
    pub not_yet_valid: usize,
    pub inactive: usize,
    pub cancelled: usize,
    pub charges: usize,
    pub refunds: usize,
    pub uses: usize,
}

/// Splits `total` into `n` positive parts of whole tens of minor units (the last takes the
/// rest); one part when `total` is too small to split.
fn split(rng: &mut impl Rng, total: i64, n: usize) -> Vec<i64> {
    if n <= 1 || total < 10 * n as i64 {
        return vec![total];
    }
    let weights: Vec<i64> = (0..n).map(|_| rng.gen_range(1..=10)).collect();
    let sum: i64 = weights.iter().sum();
    let mut parts: Vec<i64> = weights[..n - 1]
        .iter()
        .map(|w| (total * w / sum / 10 * 10).max(10))
        .collect();
    let rest = total - parts.iter().sum::<i64>();
    if rest <= 0 {
        return vec![total];
    }
    parts.push(rest);
    parts
}

pub struct Story<'c> {
    conn: &'c Db,
    pub rng: StdRng,
    /// Where the story ends: the start of the current UTC day, so that every random range,
    /// and with it the whole content, is the same for every run on one day.
    pub now: i64,
    /// The real time, for the summary's counts.
    wall: i64,
    pub owners: Vec<Owner>,
    issued: Vec<Issued>,
    events: Vec<Event>,
    charge_slots: usize,
    pub tally: Tally,
}

impl<'c> Story<'c> {
    pub fn new(conn: &'c Db, seed: u64, wall: i64, owners: Vec<Owner>) -> Story<'c> {
        let tally = Tally {
            per_owner: vec![0; owners.len()],
            ..Tally::default()
        };
        Story {
            conn,
            rng: StdRng::seed_from_u64(seed),
            now: wall.div_euclid(DAY) * DAY,
            wall,
            owners,
            issued: Vec::new(),
            events: Vec::new(),
            charge_slots: 0,
            tally,
        }
    }

    /// A random moment in `[from, to]`, moved into shop hours (09:00–19:00 UTC) for a till
    /// when that stays inside the range; `None` when the range is empty.
    pub fn moment(&mut self, owner: usize, from: i64, to: i64) -> Option<i64> {
        if from > to {
            return None;
        }
        let at = self.rng.gen_range(from..=to);
        if !self.owners[owner].shop_hours {
            return Some(at);
        }
        let in_hours = at.div_euclid(DAY) * DAY + 9 * HOUR + self.rng.gen_range(0..10 * HOUR);
        Some(if (from..=to).contains(&in_hours) {
            in_hours
        } else {
            at
        })
    }

    /// A blank active voucher of `owner`, issued by one of its clients at `created_at`; the
    /// caller makes it a value or a discount voucher.
    pub fn template(&mut self, owner: usize, created_at: i64, currency: Currency) -> Voucher {
        let clients = &self.owners[owner].clients;
        let client_id = clients[self.rng.gen_range(0..clients.len())].clone();
        let group_id = self.owners[owner].group_id.clone();
        Voucher::blank(client_id, group_id, currency, created_at)
    }

    fn remember(&mut self, owner: usize, v: &Voucher) -> usize {
        let t = &mut self.tally;
        if v.discount.is_some() {
            t.discount_vouchers += 1;
        } else {
            t.gift_cards += 1;
        }
        t.per_owner[owner] += 1;
        t.currencies.insert(v.currency.as_str().to_string());
        if v.valid_until.is_some_and(|u| u < self.wall) {
            t.expired += 1;
        }
        if v.valid_from.is_some_and(|f| f > self.wall) {
            t.not_yet_valid += 1;
        }
        match v.status {
            Status::Active => {}
            Status::Inactive => t.inactive += 1,
            Status::Cancelled => t.cancelled += 1,
        }
        let from = v.created_at.max(v.valid_from.unwrap_or(0)) + 10 * 60;
        let until = v.valid_until.unwrap_or(i64::MAX).min(self.now - 10 * 60);
        self.issued.push(Issued {
            id: v.id.clone(),
            code: v.code.as_str().to_string(),
            owner,
            amount: v.amount,
            from,
            until,
            last: v.created_at,
        });
        self.issued.len() - 1
    }

    /// Inserts one voucher; without a code it gets a generated one (from the OS-seeded CSPRNG,
    /// as the API's), drawn again in the unlikely case it is taken.
    pub fn issue(&mut self, owner: usize, mut v: Voucher) -> Result<usize, ApiError> {
        let generate = v.code.as_str().is_empty();
        let shape = CodeShape::new(None, None).map_err(|(_, e)| ApiError::Internal(e))?;
        let mut attempts = 0;
        loop {
            v.id = new_id();
            if generate {
                v.code = shape.generate(&mut rand::thread_rng());
            }
            match vouchers::insert(self.conn, &v) {
                Ok(()) => break,
                Err(StoreError::Conflict(Conflict::DuplicateCode(_)))
                    if generate && attempts < 16 =>
                {
                    attempts += 1
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(self.remember(owner, &v))
    }

    /// Inserts `count` copies of `template` with generated codes of `shape`, as
    /// `POST /v1/vouchers/batch` does.
    pub fn issue_batch(
        &mut self,
        owner: usize,
        template: &Voucher,
        shape: &CodeShape,
        count: u64,
    ) -> Result<Vec<usize>, ApiError> {
        let made = vouchers::insert_batch(self.conn, template, shape, count)?;
        let mut v = template.clone();
        Ok(made
            .into_iter()
            .map(|(id, code)| {
                v.id = id;
                v.code = Code::from_stored(code);
                self.remember(owner, &v)
            })
            .collect())
    }

    pub fn id_and_code(&self, voucher: usize) -> (String, String) {
        let v = &self.issued[voucher];
        (v.id.clone(), v.code.clone())
    }

    fn plan(&mut self, voucher: usize, at: i64, action: Action) {
        let owner = self.issued[voucher].owner;
        let client = self.rng.gen_range(0..self.owners[owner].clients.len());
        let v = &mut self.issued[voucher];
        v.last = v.last.max(at);
        self.events.push(Event {
            at,
            voucher,
            client,
            action,
        });
    }

    /// Plans charges of `percent` of a value voucher's amount (all of it at 100) in up to
    /// `max_charges` purchases spread over its window. Below 100 %, now and then part or all
    /// of a charge is refunded later (a returned item).
    pub fn spend(&mut self, voucher: usize, percent: i64, max_charges: usize) {
        let Issued {
            owner,
            amount,
            from,
            until,
            ..
        } = self.issued[voucher];
        let Some(amount) = amount else { return };
        let target = if percent >= 100 {
            amount
        } else {
            amount * percent / 100 / 10 * 10
        };
        if target <= 0 {
            return;
        }
        let n = self.rng.gen_range(1..=max_charges.max(1));
        let mut times: Vec<i64> = (0..n)
            .filter_map(|_| self.moment(owner, from, until))
            .collect();
        times.sort_unstable();
        let pieces = split(&mut self.rng, target, times.len());
        for (at, piece) in times.into_iter().zip(pieces) {
            let slot = self.charge_slots;
            self.charge_slots += 1;
            self.plan(
                voucher,
                at,
                Action::Charge {
                    amount: piece,
                    slot,
                },
            );
            if percent < 100 && self.rng.gen_ratio(1, 8) {
                let back = if self.rng.gen_bool(0.5) || piece < 20 {
                    piece
                } else {
                    self.rng.gen_range(1..=piece / 10) * 10
                };
                let later = at + self.rng.gen_range(HOUR..=14 * DAY);
                if later <= until {
                    let action = Action::Refund { slot, amount: back };
                    self.plan(voucher, later, action);
                }
            }
        }
    }

    /// Plans `uses` uses of a discount voucher on tickets of 8.00 to 180.00, spread over its
    /// window (fewer when the window is empty).
    pub fn redeem(&mut self, voucher: usize, uses: u32) {
        let Issued {
            owner, from, until, ..
        } = self.issued[voucher];
        for _ in 0..uses {
            if let Some(at) = self.moment(owner, from, until) {
                let ticket_total = self.rng.gen_range(80..=1800) * 10;
                self.plan(voucher, at, Action::Use { ticket_total });
            }
        }
    }

    /// Plans a status change after everything planned so far for this voucher.
    pub fn end(&mut self, voucher: usize, status: Status, note: &'static str) {
        let Issued { owner, last, .. } = self.issued[voucher];
        let latest = self.now - 10 * 60;
        let at = self
            .moment(owner, last + HOUR, (last + 30 * DAY).min(latest))
            .unwrap_or((last + 1).min(latest));
        self.plan(voucher, at, Action::End { status, note });
        match status {
            Status::Active => {}
            Status::Inactive => self.tally.inactive += 1,
            Status::Cancelled => self.tally.cancelled += 1,
        }
    }

    /// Applies every planned event in time order (a refund always lies after its charge).
    pub fn apply(mut self) -> Result<Tally, ApiError> {
        let mut events = std::mem::take(&mut self.events);
        events.sort_by_key(|e| e.at);
        let mut charge_ids: Vec<Option<String>> = vec![None; self.charge_slots];
        let mut receipts: Vec<u64> = vec![0; self.owners.len()];
        let context = Context::default();
        for e in events {
            let v = &self.issued[e.voucher];
            let owner = &self.owners[v.owner];
            let tenant = Tenant::Group(owner.group_id.clone());
            let order = match e.action {
                Action::End { .. } => None,
                _ => {
                    receipts[v.owner] += 1;
                    Some(format!("{}-{:06}", owner.receipts, receipts[v.owner]))
                }
            };
            let r = Redemption {
                client_id: &owner.clients[e.client],
                tenant: &tenant,
                order_number: order.as_deref(),
                context: &context,
                now: e.at,
            };
            match e.action {
                Action::Charge { amount, slot } => {
                    let entry = ledger::charge(self.conn, &v.id, amount, &r)?;
                    charge_ids[slot] = Some(entry.id);
                    self.tally.charges += 1;
                }
                Action::Refund { slot, amount } => {
                    let charge = charge_ids[slot].as_deref().ok_or_else(|| {
                        ApiError::Internal("a demo refund came before its charge".into())
                    })?;
                    ledger::refund(self.conn, &v.id, charge, Some(amount), &r)?;
                    self.tally.refunds += 1;
                }
                Action::Use { ticket_total } => {
                    ledger::use_discount(self.conn, &v.id, ticket_total, &r)?;
                    self.tally.uses += 1;
                }
                Action::End { status, note } => {
                    let changes = Changes {
                        status: Some(status),
                        note: Some(Some(note.to_string())),
                        ..Changes::default()
                    };
                    vouchers::update_at(self.conn, &v.id, &tenant, &changes, e.at)?;
                }
            }
        }
        Ok(self.tally)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_are_positive_and_add_up() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..20_000 {
            let total = rng.gen_range(1..=20_000);
            let n = rng.gen_range(0..=6);
            let parts = split(&mut rng, total, n);
            assert!(
                !parts.is_empty() && parts.len() <= n.max(1),
                "{total} {n} {parts:?}"
            );
            assert!(parts.iter().all(|p| *p > 0), "{total} {n} {parts:?}");
            assert_eq!(parts.iter().sum::<i64>(), total, "{parts:?}");
        }
    }
}
