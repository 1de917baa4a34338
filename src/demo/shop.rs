//! What the demo shop holds: Main Street Shop's printed gift cards, Christmas batches, event
//! vouchers, sale and loyalty discounts, and the Webshop's e-gift cards in three currencies
//! with its welcome code and newsletter vouchers, each with a fate (untouched, partly spent,
//! spent, expired, cancelled, blocked) planned on the [`Story`].

use super::story::{Story, DAY, HOUR};
use crate::domain::clock::{add_interval, Interval};
use crate::domain::code::{Code, CodeShape};
use crate::domain::money::Currency;
use crate::domain::voucher::{Discount, DiscountKind, Medium, Status, Voucher};
use crate::error::ApiError;
use rand::seq::SliceRandom;
use rand::Rng;
use time::{Date, Month, OffsetDateTime, UtcOffset};

/// Indexes of the owners in the story.
pub const SHOP: usize = 0;
pub const WEB: usize = 1;

/// How far back the history reaches.
const HISTORY: i64 = 395 * DAY;

fn currency(code: &str) -> Result<Currency, ApiError> {
    Currency::parse(code).ok_or_else(|| ApiError::Internal(format!("unknown currency {code}")))
}

fn shape(prefix: &str) -> Result<CodeShape, ApiError> {
    CodeShape::new(Some(prefix), Some(8)).map_err(|(_, e)| ApiError::Internal(e))
}

/// The most recent `month`/`day`, 09:00 UTC, at least a day before `now`, and its year.
fn last_date(now: i64, month: Month, day: u8) -> (i64, i32) {
    let year = OffsetDateTime::from_unix_timestamp(now).map_or(2026, |t| t.year());
    for y in [year, year - 1] {
        let at = Date::from_calendar_date(y, month, day)
            .and_then(|d| d.with_hms(9, 0, 0))
            .map(|d| d.assume_utc().unix_timestamp());
        if let Some(at) = at.ok().filter(|at| *at <= now - DAY) {
            return (at, y);
        }
    }
    (now - 365 * DAY, year - 1)
}

fn valid_for(v: &mut Voucher, n: i64, unit: Interval) {
    v.validity = Some((n, unit));
    v.valid_until = add_interval(v.created_at, n, unit, UtcOffset::UTC);
}

fn value(mut v: Voucher, amount: i64) -> Voucher {
    v.amount = Some(amount);
    v.remaining = Some(amount);
    v
}

fn discount(mut v: Voucher, kind: DiscountKind, value: i64, max_uses: i64) -> Voucher {
    v.discount = Some(Discount { kind, value });
    v.max_uses = Some(max_uses);
    v
}

/// Customer ids reused across vouchers: low numbers (regulars) come up more often.
fn customer(story: &mut Story) -> String {
    let r: f64 = story.rng.gen();
    format!("C-{}", 10_001 + (r * r * 140.0) as i64)
}

fn some<T>(story: &mut Story, percent: u32, make: impl FnOnce(&mut Story) -> T) -> Option<T> {
    story.rng.gen_ratio(percent, 100).then(|| make(story))
}

/// Plans a gift card's fate from `odds`: percentages of untouched, partly spent, spent,
/// cancelled and blocked (the rest).
fn fate(story: &mut Story, card: usize, odds: [u32; 4], max_charges: usize) {
    let roll = story.rng.gen_range(0..100);
    let [untouched, partly, spent, cancelled] = odds;
    match roll {
        r if r < untouched => {}
        r if r < untouched + partly => {
            let share = story.rng.gen_range(10..=90);
            story.spend(card, share, max_charges);
        }
        r if r < untouched + partly + spent => story.spend(card, 100, max_charges),
        r if r < untouched + partly + spent + cancelled => {
            let share = story.rng.gen_range(0..=50);
            story.spend(card, share, max_charges);
            story.end(card, Status::Cancelled, "Reported lost by the customer");
        }
        _ => {
            let share = story.rng.gen_range(10..=60);
            story.spend(card, share, max_charges);
            story.end(
                card,
                Status::Inactive,
                "Blocked: suspected misuse, ask the manager",
            );
        }
    }
}

/// Fills the story; returns the partly spent gift card the printed curl commands look up.
pub fn write(story: &mut Story) -> Result<usize, ApiError> {
    let example = main_street(story)?;
    main_street_discounts(story)?;
    webshop(story)?;
    Ok(example)
}

fn counter_card(story: &mut Story, created: i64, amount: i64) -> Result<Voucher, ApiError> {
    let mut v = value(story.template(SHOP, created, currency("EUR")?), amount);
    v.label = Some("Gift card".into());
    v.sku = Some(format!("GC-{}", amount / 100));
    v.medium = Medium::Print;
    v.order_number = Some(format!("MS-S{}", story.rng.gen_range(10_000..100_000)));
    v.restrictions.customer_id = some(story, 30, customer);
    v.restrictions.store_id = some(story, 35, |s| {
        ["main-street", "market-hall"][s.rng.gen_range(0..2)].to_string()
    });
    valid_for(&mut v, 3, Interval::Years);
    Ok(v)
}

fn main_street(story: &mut Story) -> Result<usize, ApiError> {
    let now = story.now;
    let eur = currency("EUR")?;

    // The card the printed commands show: 50.00 bought three months ago, partly spent.
    let v = counter_card(story, now - 92 * DAY + 10 * HOUR + 25 * 60, 5000)?;
    let example = story.issue(SHOP, v)?;
    story.spend(example, 64, 4);

    // Gift cards sold at the counter over the year.
    for _ in 0..110 {
        let created = story.moment(SHOP, now - HISTORY, now - DAY).unwrap_or(now);
        let amounts = [
            1000, 1500, 2000, 2500, 2500, 3000, 4000, 5000, 5000, 7500, 10_000,
        ];
        let amount = *amounts.choose(&mut story.rng).unwrap_or(&2500);
        let v = counter_card(story, created, amount)?;
        let card = story.issue(SHOP, v)?;
        fate(story, card, [20, 42, 28, 5], 6);
    }

    // This Christmas's printed batch, sold from late November, valid three years.
    let (xmas, year) = last_date(now, Month::November, 20);
    for (amount, count) in [(2500, 30), (5000, 20)] {
        let mut v = value(story.template(SHOP, xmas, eur), amount);
        v.batch = Some(format!("Christmas {year}"));
        v.label = Some("Christmas gift card".into());
        v.sku = Some(format!("GC-XMAS-{}", amount / 100));
        v.medium = Medium::Print;
        valid_for(&mut v, 3, Interval::Years);
        for card in story.issue_batch(SHOP, &v, &shape("XM")?, count)? {
            fate(story, card, [70, 20, 10, 0], 3);
        }
    }

    // Last Christmas's batch was valid one year: it has just expired, some of it unspent.
    let last_xmas = add_interval(xmas, -1, Interval::Years, UtcOffset::UTC).unwrap_or(xmas);
    for (amount, count) in [(2000, 30), (5000, 20)] {
        let mut v = value(story.template(SHOP, last_xmas, eur), amount);
        v.batch = Some(format!("Christmas {}", year - 1));
        v.label = Some("Christmas gift card".into());
        v.sku = Some(format!("GC-XMAS-{}", amount / 100));
        v.medium = Medium::Print;
        valid_for(&mut v, 1, Interval::Years);
        for card in story.issue_batch(SHOP, &v, &shape("XM")?, count)? {
            fate(story, card, [20, 35, 45, 0], 5);
        }
    }

    // Printed stock waiting at the counter: inactive until sold.
    let mut v = value(story.template(SHOP, now - 40 * DAY, eur), 1000);
    v.batch = Some("Counter stock".into());
    v.label = Some("Gift card".into());
    v.sku = Some("GC-10".into());
    v.medium = Medium::Print;
    v.status = Status::Inactive;
    v.note = Some("Printed stock; activated when sold".into());
    story.issue_batch(SHOP, &v, &shape("ST")?, 15)?;

    // Single-purpose vouchers for an event: taxed on sale, limited to one product.
    for _ in 0..8 {
        let created = story
            .moment(SHOP, now - 300 * DAY, now - 5 * DAY)
            .unwrap_or(now);
        let mut v = value(story.template(SHOP, created, eur), 3900);
        v.label = Some("Coffee tasting for two".into());
        v.sku = Some("EVT-TASTING-2".into());
        v.restrictions.product_id = Some("tasting-for-two".into());
        v.restrictions.customer_id = Some(customer(story));
        v.taxable = true;
        v.tax_rate = Some(1900);
        valid_for(&mut v, 1, Interval::Years);
        let card = story.issue(SHOP, v)?;
        if story.rng.gen_bool(0.6) {
            story.spend(card, 100, 1);
        }
    }
    Ok(example)
}

fn main_street_discounts(story: &mut Story) -> Result<(), ApiError> {
    let now = story.now;
    let eur = currency("EUR")?;

    // The spring sale: one-off 10 % codes handed out for a month.
    let (spring, year) = last_date(now, Month::March, 15);
    let mut v = discount(
        story.template(SHOP, spring, eur),
        DiscountKind::Percentage,
        1000,
        1,
    );
    v.batch = Some(format!("Spring Sale {year}"));
    v.label = Some("10 % off one purchase".into());
    v.valid_until = Some((spring + 31 * DAY).div_euclid(DAY) * DAY + DAY - 1);
    for code in story.issue_batch(SHOP, &v, &shape("SP")?, 30)? {
        if story.rng.gen_bool(0.6) {
            story.redeem(code, 1);
        }
    }

    // Loyalty rewards: a full stamp card or a birthday, for a known customer, six months.
    for _ in 0..35 {
        let created = story
            .moment(SHOP, now - 360 * DAY, now - DAY)
            .unwrap_or(now);
        let template = story.template(SHOP, created, eur);
        let mut v = if story.rng.gen_bool(0.7) {
            let mut v = discount(template, DiscountKind::Money, 500, 1);
            v.reward_id = Some("stamp-card-10".into());
            v.label = Some("5.00 off: stamp card full".into());
            v
        } else {
            let mut v = discount(template, DiscountKind::Percentage, 1500, 1);
            v.reward_id = Some("birthday".into());
            v.label = Some("Happy birthday: 15 % off".into());
            v
        };
        v.restrictions.customer_id = Some(customer(story));
        valid_for(&mut v, 6, Interval::Months);
        let reward = story.issue(SHOP, v)?;
        if story.rng.gen_bool(0.6) {
            story.redeem(reward, 1);
        }
    }

    // Two codes used many times: the staff discount, and one for friends that is used up.
    let mut staff = discount(
        story.template(SHOP, now - HISTORY, eur),
        DiscountKind::Percentage,
        2000,
        500,
    );
    staff.code = Code::from_stored("STAFF20".into());
    staff.label = Some("Staff discount".into());
    staff.note = Some("Staff purchases only".into());
    let staff = story.issue(SHOP, staff)?;
    story.redeem(staff, 140);
    let mut friends = discount(
        story.template(SHOP, now - 200 * DAY, eur),
        DiscountKind::Percentage,
        1500,
        25,
    );
    friends.code = Code::from_stored("FRIENDS".into());
    friends.label = Some("Friends and family: 15 % off".into());
    let friends = story.issue(SHOP, friends)?;
    story.redeem(friends, 25);
    Ok(())
}

const RECIPIENTS: &[&str] = &["Anna", "Ben", "Clara", "David", "Emma", "Felix", "Grace"];
const MESSAGES: &[&str] = &[
    "Happy birthday!",
    "Merry Christmas!",
    "Thank you for everything.",
    "Congratulations on the new flat!",
    "Enjoy!",
];

fn webshop(story: &mut Story) -> Result<(), ApiError> {
    let now = story.now;
    let eur = currency("EUR")?;
    let currencies = [eur, currency("CHF")?, currency("GBP")?];

    // E-gift cards bought online, mostly in euros; the buyer is a known customer.
    for order in 0..95 {
        let created = story.moment(WEB, now - HISTORY, now - DAY).unwrap_or(now);
        let roll = story.rng.gen_range(0..100);
        let cur = currencies[usize::from(roll >= 78) + usize::from(roll >= 92)];
        let amount = *[2500, 5000, 5000, 10_000, 15_000]
            .choose(&mut story.rng)
            .unwrap_or(&5000);
        let mut v = value(story.template(WEB, created, cur), amount);
        v.label = Some("E-gift card".into());
        v.sku = Some(format!("EGC-{}", amount / 100));
        v.order_number = Some(format!("WEB-{}", 40_000 + order * 7));
        v.purchase_id = Some(format!("P-{}", 880_000 + order * 13));
        v.restrictions.customer_id = Some(customer(story));
        v.restrictions.store_id = Some("webshop".into());
        let data = serde_json::json!({
            "recipient": RECIPIENTS.choose(&mut story.rng),
            "message": MESSAGES.choose(&mut story.rng),
        });
        v.data = Some(data.to_string());
        valid_for(&mut v, 24, Interval::Months);
        if order % 30 == 29 {
            // Bought as a present for a day still ahead.
            v.created_at = now - story.rng.gen_range(1..5) * DAY;
            v.updated_at = v.created_at;
            v.valid_from = Some(now + story.rng.gen_range(3..20) * DAY);
            valid_for(&mut v, 24, Interval::Months);
            v.note = Some("Scheduled for the recipient's birthday".into());
            story.issue(WEB, v)?;
            continue;
        }
        let card = story.issue(WEB, v)?;
        if story.rng.gen_ratio(1, 25) {
            story.end(
                card,
                Status::Cancelled,
                "Payment charged back by the card issuer",
            );
        } else {
            fate(story, card, [25, 42, 33, 0], 3);
        }
    }

    // The welcome code on the shop's front page: 10 % off, any number of first orders.
    let mut welcome = discount(
        story.template(WEB, now - HISTORY, eur),
        DiscountKind::Percentage,
        1000,
        100_000,
    );
    welcome.code = Code::from_stored("WELCOME".into());
    welcome.label = Some("10 % off your first order".into());
    let welcome = story.issue(WEB, welcome)?;
    story.redeem(welcome, 420);

    // Newsletter vouchers: 5.00 off for each subscriber, three months.
    let sent = now - 150 * DAY;
    for _ in 0..30 {
        let mut v = discount(story.template(WEB, sent, eur), DiscountKind::Money, 500, 1);
        v.batch = Some("Newsletter".into());
        v.label = Some("5.00 off your next order".into());
        v.restrictions.customer_id = Some(customer(story));
        valid_for(&mut v, 3, Interval::Months);
        let code = story.issue(WEB, v)?;
        if story.rng.gen_bool(0.45) {
            story.redeem(code, 1);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::clock::{format_rfc3339, parse_instant, DayEnd};

    fn at(text: &str) -> i64 {
        parse_instant(text, UtcOffset::UTC, DayEnd::Start).expect("timestamp")
    }

    #[test]
    fn last_date_is_the_latest_at_least_a_day_ago() {
        let cases = [
            ("2026-11-23T11:00:00Z", "2026-11-20T09:00:00+00:00", 2026),
            ("2026-11-21T08:59:59Z", "2025-11-20T09:00:00+00:00", 2025),
            ("2026-11-21T09:00:00Z", "2026-11-20T09:00:00+00:00", 2026),
            ("2027-03-01T00:00:00Z", "2026-11-20T09:00:00+00:00", 2026),
        ];
        for (now, want, year) in cases {
            let (got, y) = last_date(at(now), Month::November, 20);
            assert_eq!(
                (format_rfc3339(got, UtcOffset::UTC).as_str(), y),
                (want, year)
            );
        }
    }
}
