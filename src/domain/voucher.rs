//! Vouchers and the rules that say whether one may be redeemed.
//!
//! A value voucher carries an amount charged down until nothing remains; a discount voucher
//! carries a discount granted on a ticket up to `max_uses` times. The store applies these rules
//! inside its write transactions; nothing here knows of HTTP or SQL.

use super::clock::{add_interval, Interval};
use super::code::Code;
use super::money::{percent_of, Currency};
use time::UtcOffset;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    Active,
    Inactive,
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 3] = [Status::Active, Status::Inactive, Status::Cancelled];

    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Inactive => "inactive",
            Status::Cancelled => "cancelled",
        }
    }
}

/// Whether the voucher is delivered as a file or printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Medium {
    Digital,
    Print,
}

impl Medium {
    pub fn parse(text: &str) -> Option<Medium> {
        match text {
            "digital" => Some(Medium::Digital),
            "print" => Some(Medium::Print),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Medium::Digital => "digital",
            Medium::Print => "print",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscountKind {
    Money,
    Percentage,
}

impl DiscountKind {
    pub fn parse(text: &str) -> Option<DiscountKind> {
        match text {
            "money" => Some(DiscountKind::Money),
            "percentage" => Some(DiscountKind::Percentage),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DiscountKind::Money => "money",
            DiscountKind::Percentage => "percentage",
        }
    }

    /// Decimals of `value`: the currency's for money, two for a percentage.
    pub fn scale(self, currency: Currency) -> u8 {
        match self {
            DiscountKind::Money => currency.exponent(),
            DiscountKind::Percentage => PERCENT_SCALE,
        }
    }
}

/// Percentages are kept in hundredths: `12.5 %` is `1250`.
pub const PERCENT_SCALE: u8 = 2;
pub const PERCENT_MAX: i64 = 100 * 100;

/// A discount granted on a ticket: money in minor units, or a percentage in hundredths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Discount {
    pub kind: DiscountKind,
    pub value: i64,
}

impl Discount {
    /// The discount this grants on a ticket of `total` minor units: a money discount up to the
    /// total, a percentage of it rounded half up to whole minor units.
    pub fn granted_on(self, total: i64) -> i64 {
        match self.kind {
            DiscountKind::Money => self.value.min(total),
            DiscountKind::Percentage => percent_of(total, self.value),
        }
    }
}

/// The customer, product and store a voucher is limited to (any may be unset).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Restrictions {
    pub customer_id: Option<String>,
    pub product_id: Option<String>,
    pub store_id: Option<String>,
}

/// A voucher as stored, with the sum of its live holds and its ledger size alongside.
#[derive(Clone, Debug)]
pub struct Voucher {
    pub id: String,
    pub code: Code,
    pub client_id: String,
    pub group_id: String,
    pub sku: Option<String>,
    pub batch: Option<String>,
    pub label: Option<String>,
    pub note: Option<String>,
    pub currency: Currency,
    /// Value vouchers: the amount issued and what is left, in minor units.
    pub amount: Option<i64>,
    pub remaining: Option<i64>,
    /// Discount vouchers: the discount, how often it may be used and how often it was.
    pub discount: Option<Discount>,
    pub max_uses: Option<i64>,
    pub uses: i64,
    pub used_at: Option<i64>,
    pub valid_from: Option<i64>,
    pub valid_until: Option<i64>,
    pub validity: Option<(i64, Interval)>,
    pub status: Status,
    pub medium: Medium,
    pub taxable: bool,
    /// Hundredths of a percent.
    pub tax_rate: Option<i64>,
    pub order_number: Option<String>,
    pub restrictions: Restrictions,
    pub purchase_id: Option<String>,
    pub reward_id: Option<String>,
    pub data: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Sum of holds not yet captured, released or expired, in minor units.
    pub held: i64,
    /// Number of ledger entries; a voucher with any is not deletable.
    pub entries: i64,
}

impl Voucher {
    /// An active digital voucher of `client_id` (a client of `group_id`) in `currency`, made
    /// at `now`, with no id, code, kind or other field set yet: the caller makes it a value
    /// voucher (`amount`, `remaining`) or a discount voucher (`discount`, `max_uses`).
    pub fn blank(client_id: String, group_id: String, currency: Currency, now: i64) -> Voucher {
        Voucher {
            id: String::new(),
            code: Code::from_stored(String::new()),
            client_id,
            group_id,
            sku: None,
            batch: None,
            label: None,
            note: None,
            currency,
            amount: None,
            remaining: None,
            discount: None,
            max_uses: None,
            uses: 0,
            used_at: None,
            valid_from: None,
            valid_until: None,
            validity: None,
            status: Status::Active,
            medium: Medium::Digital,
            taxable: false,
            tax_rate: None,
            order_number: None,
            restrictions: Restrictions::default(),
            purchase_id: None,
            reward_id: None,
            data: None,
            created_at: now,
            updated_at: now,
            held: 0,
            entries: 0,
        }
    }

    pub fn deletable(&self) -> bool {
        self.entries == 0
    }

    /// What a charge may still take: remaining minus live holds (0 for discount vouchers).
    pub fn available(&self) -> i64 {
        self.remaining.map_or(0, |r| (r - self.held).max(0))
    }

    /// Used up: a discount voucher with no uses left, or a value voucher with nothing left.
    pub fn is_spent(&self) -> bool {
        match self.discount {
            Some(_) => self.uses >= self.max_uses.unwrap_or(1),
            None => self.remaining == Some(0),
        }
    }
}

/// Why a voucher cannot be redeemed; each carries the problem `code` clients branch on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    Inactive,
    Cancelled,
    NotYetValid,
    Expired,
    CurrencyMismatch,
    RestrictionMismatch(&'static str),
    Used,
    InsufficientFunds,
    /// A charge on a discount voucher, a use on a value voucher.
    WrongKind(&'static str),
    /// A recharge that would take the voucher's credit beyond the most it may hold.
    CreditLimit,
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Inactive => "voucher_inactive",
            Refusal::Cancelled => "voucher_cancelled",
            Refusal::NotYetValid => "voucher_not_yet_valid",
            Refusal::Expired => "voucher_expired",
            Refusal::CurrencyMismatch => "currency_mismatch",
            Refusal::RestrictionMismatch(_) => "restriction_mismatch",
            Refusal::Used => "voucher_used",
            Refusal::InsufficientFunds => "insufficient_funds",
            Refusal::WrongKind(_) => "wrong_voucher_kind",
            Refusal::CreditLimit => "credit_limit_exceeded",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Refusal::Inactive => "The voucher is inactive.".into(),
            Refusal::Cancelled => "The voucher is cancelled.".into(),
            Refusal::NotYetValid => "The voucher is not valid yet.".into(),
            Refusal::Expired => "The voucher has expired.".into(),
            Refusal::CurrencyMismatch => "The currency differs from the voucher's.".into(),
            Refusal::RestrictionMismatch(what) => {
                format!("The voucher is limited to another {what}.")
            }
            Refusal::Used => "The voucher has no uses left.".into(),
            Refusal::InsufficientFunds => {
                "The amount exceeds what is available on the voucher.".into()
            }
            Refusal::WrongKind(what) => format!("This voucher {what}."),
            Refusal::CreditLimit => "The recharge would exceed the most a voucher may hold.".into(),
        }
    }
}

/// What a redemption says about itself, checked against the voucher's restrictions.
#[derive(Clone, Debug, Default)]
pub struct Context {
    pub currency: Option<Currency>,
    pub customer_id: Option<String>,
    pub product_ids: Vec<String>,
    pub store_id: Option<String>,
}

/// Checks status, validity window, currency and restrictions, in that order.
pub fn check_usable(v: &Voucher, now: i64, ctx: &Context) -> Result<(), Refusal> {
    match v.status {
        Status::Active => {}
        Status::Inactive => return Err(Refusal::Inactive),
        Status::Cancelled => return Err(Refusal::Cancelled),
    }
    if v.valid_from.is_some_and(|from| now < from) {
        return Err(Refusal::NotYetValid);
    }
    if v.valid_until.is_some_and(|until| now > until) {
        return Err(Refusal::Expired);
    }
    if ctx.currency.is_some_and(|c| c != v.currency) {
        return Err(Refusal::CurrencyMismatch);
    }
    let r = &v.restrictions;
    let differs = |asked: &Option<String>, set: &Option<String>| matches!((asked, set), (Some(a), Some(s)) if a != s);
    if differs(&ctx.customer_id, &r.customer_id) {
        return Err(Refusal::RestrictionMismatch("customer"));
    }
    if let Some(product) = &r.product_id {
        if !ctx.product_ids.is_empty() && !ctx.product_ids.contains(product) {
            return Err(Refusal::RestrictionMismatch("product"));
        }
    }
    if differs(&ctx.store_id, &r.store_id) {
        return Err(Refusal::RestrictionMismatch("store"));
    }
    Ok(())
}

/// May `amount` be charged (or held) on this voucher now?
pub fn check_charge(v: &Voucher, amount: i64, now: i64, ctx: &Context) -> Result<(), Refusal> {
    if v.discount.is_some() {
        return Err(Refusal::WrongKind(
            "is a discount voucher: use it on a ticket",
        ));
    }
    check_usable(v, now, ctx)?;
    if amount > v.available() {
        return Err(Refusal::InsufficientFunds);
    }
    Ok(())
}

/// May this discount voucher be used on a ticket of `total` now? Returns the discount granted.
pub fn check_use(v: &Voucher, total: i64, now: i64, ctx: &Context) -> Result<i64, Refusal> {
    let Some(discount) = v.discount else {
        return Err(Refusal::WrongKind("is a value voucher: charge an amount"));
    };
    check_usable(v, now, ctx)?;
    if v.is_spent() {
        return Err(Refusal::Used);
    }
    Ok(discount.granted_on(total))
}

/// May `amount` be added to this value voucher's credit now (a recharge)? It must be usable
/// now, like a charge, and its amount (issued plus recharged) must stay at most `max`.
pub fn check_recharge(
    v: &Voucher,
    amount: i64,
    now: i64,
    ctx: &Context,
    max: i64,
) -> Result<(), Refusal> {
    if v.discount.is_some() {
        return Err(Refusal::WrongKind(
            "is a discount voucher: it holds no credit",
        ));
    }
    check_usable(v, now, ctx)?;
    let total = v.amount.unwrap_or(0).checked_add(amount);
    if total.is_none_or(|t| t > max) {
        return Err(Refusal::CreditLimit);
    }
    Ok(())
}

/// The end of validity a voucher gets when it is activated at `now`: the one it has, or else
/// `now` plus its validity pair (`None` without either: valid without end).
pub fn valid_until_on_activation(v: &Voucher, now: i64, offset: UtcOffset) -> Option<i64> {
    v.valid_until.or_else(|| {
        v.validity
            .and_then(|(n, unit)| add_interval(now, n, unit, offset))
    })
}

/// Whose vouchers a request may see and change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tenant {
    /// An `admin` token: every group's.
    All,
    /// Vouchers owned by clients of this group.
    Group(String),
}

impl Tenant {
    pub fn may_see(&self, v: &Voucher) -> bool {
        match self {
            Tenant::All => true,
            Tenant::Group(g) => *g == v.group_id,
        }
    }
}

/// A PATCH: each field is `None` when untouched, `Some(None)` when cleared.
#[derive(Clone, Debug, Default)]
pub struct Changes {
    pub label: Option<Option<String>>,
    pub note: Option<Option<String>>,
    pub status: Option<Status>,
    pub valid_until: Option<Option<i64>>,
    pub sku: Option<Option<String>>,
    pub batch: Option<Option<String>>,
    pub customer_id: Option<Option<String>>,
    pub product_id: Option<Option<String>>,
    pub store_id: Option<Option<String>>,
    pub data: Option<Option<String>>,
    /// A discount voucher's new discount: refused once the voucher has been used.
    pub discount: Option<Discount>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::parse("EUR").expect("EUR")
    }

    pub(crate) fn value_voucher(amount: i64) -> Voucher {
        Voucher {
            id: "V".into(),
            code: Code::from_stored("ABCD".into()),
            amount: Some(amount),
            remaining: Some(amount),
            ..Voucher::blank("C".into(), "G".into(), eur(), 0)
        }
    }

    fn discount_voucher(kind: DiscountKind, value: i64, max_uses: i64) -> Voucher {
        Voucher {
            amount: None,
            remaining: None,
            discount: Some(Discount { kind, value }),
            max_uses: Some(max_uses),
            ..value_voucher(0)
        }
    }

    #[test]
    fn charges_respect_remaining_minus_holds() {
        let mut v = value_voucher(5000);
        let ctx = Context::default();
        assert_eq!(check_charge(&v, 5000, 0, &ctx), Ok(()));
        assert_eq!(
            check_charge(&v, 5001, 0, &ctx),
            Err(Refusal::InsufficientFunds)
        );
        v.held = 2000;
        assert_eq!(check_charge(&v, 3000, 0, &ctx), Ok(()));
        assert_eq!(
            check_charge(&v, 3001, 0, &ctx),
            Err(Refusal::InsufficientFunds)
        );
    }

    #[test]
    fn status_and_window_come_first() {
        let ctx = Context::default();
        let mut v = value_voucher(100);
        v.status = Status::Inactive;
        assert_eq!(check_charge(&v, 1, 0, &ctx), Err(Refusal::Inactive));
        v.status = Status::Cancelled;
        assert_eq!(check_charge(&v, 1, 0, &ctx), Err(Refusal::Cancelled));
        v.status = Status::Active;
        v.valid_from = Some(100);
        assert_eq!(check_charge(&v, 1, 99, &ctx), Err(Refusal::NotYetValid));
        assert_eq!(check_charge(&v, 1, 100, &ctx), Ok(()));
        v.valid_until = Some(200);
        assert_eq!(check_charge(&v, 1, 200, &ctx), Ok(()));
        assert_eq!(check_charge(&v, 1, 201, &ctx), Err(Refusal::Expired));
    }

    #[test]
    fn currency_and_restrictions_only_bind_when_both_sides_say() {
        let mut v = value_voucher(100);
        v.restrictions = Restrictions {
            customer_id: Some("cust".into()),
            product_id: Some("prod".into()),
            store_id: Some("store".into()),
        };
        assert_eq!(check_charge(&v, 1, 0, &Context::default()), Ok(()));
        let usd = Context {
            currency: Currency::parse("USD"),
            ..Context::default()
        };
        assert_eq!(check_charge(&v, 1, 0, &usd), Err(Refusal::CurrencyMismatch));
        let same = Context {
            currency: Some(eur()),
            ..Context::default()
        };
        assert_eq!(check_charge(&v, 1, 0, &same), Ok(()));
        let other_customer = Context {
            customer_id: Some("x".into()),
            ..Context::default()
        };
        assert_eq!(
            check_charge(&v, 1, 0, &other_customer),
            Err(Refusal::RestrictionMismatch("customer"))
        );
        let products = Context {
            product_ids: vec!["a".into(), "prod".into()],
            ..Context::default()
        };
        assert_eq!(check_charge(&v, 1, 0, &products), Ok(()));
        let other_products = Context {
            product_ids: vec!["a".into()],
            ..Context::default()
        };
        assert_eq!(
            check_charge(&v, 1, 0, &other_products),
            Err(Refusal::RestrictionMismatch("product"))
        );
        let other_store = Context {
            store_id: Some("s2".into()),
            ..Context::default()
        };
        assert_eq!(
            check_charge(&v, 1, 0, &other_store),
            Err(Refusal::RestrictionMismatch("store"))
        );
    }

    #[test]
    fn discounts_grant_money_up_to_the_total_or_a_rounded_percentage() {
        let ctx = Context::default();
        let money = discount_voucher(DiscountKind::Money, 1250, 1);
        assert_eq!(check_use(&money, 4000, 0, &ctx), Ok(1250));
        assert_eq!(check_use(&money, 1000, 0, &ctx), Ok(1000));
        let pct = discount_voucher(DiscountKind::Percentage, 3300, 1);
        assert_eq!(check_use(&pct, 5, 0, &ctx), Ok(2));
        let mut twice = discount_voucher(DiscountKind::Percentage, 1000, 2);
        twice.uses = 1;
        assert_eq!(check_use(&twice, 1000, 0, &ctx), Ok(100));
        twice.uses = 2;
        assert_eq!(check_use(&twice, 1000, 0, &ctx), Err(Refusal::Used));
    }

    #[test]
    fn recharges_need_a_usable_value_voucher_and_stay_within_the_limit() {
        let ctx = Context::default();
        let mut v = value_voucher(5000);
        assert_eq!(check_recharge(&v, 5000, 0, &ctx, 10_000), Ok(()));
        assert_eq!(
            check_recharge(&v, 5001, 0, &ctx, 10_000),
            Err(Refusal::CreditLimit)
        );
        assert_eq!(
            check_recharge(&v, i64::MAX, 0, &ctx, i64::MAX),
            Err(Refusal::CreditLimit)
        );
        v.status = Status::Inactive;
        assert_eq!(
            check_recharge(&v, 1, 0, &ctx, 10_000),
            Err(Refusal::Inactive)
        );
        let discount = discount_voucher(DiscountKind::Money, 100, 1);
        assert!(matches!(
            check_recharge(&discount, 1, 0, &ctx, 10_000),
            Err(Refusal::WrongKind(_))
        ));
    }

    #[test]
    fn activation_keeps_an_end_of_validity_or_counts_the_pair_from_now() {
        let mut v = value_voucher(100);
        assert_eq!(valid_until_on_activation(&v, 1000, UtcOffset::UTC), None);
        v.validity = Some((2, Interval::Days));
        assert_eq!(
            valid_until_on_activation(&v, 1000, UtcOffset::UTC),
            Some(1000 + 2 * 86_400)
        );
        v.valid_until = Some(5);
        assert_eq!(valid_until_on_activation(&v, 1000, UtcOffset::UTC), Some(5));
    }

    #[test]
    fn kinds_do_not_mix() {
        let ctx = Context::default();
        let value = value_voucher(100);
        assert!(matches!(
            check_use(&value, 100, 0, &ctx),
            Err(Refusal::WrongKind(_))
        ));
        let discount = discount_voucher(DiscountKind::Money, 100, 1);
        assert!(matches!(
            check_charge(&discount, 1, 0, &ctx),
            Err(Refusal::WrongKind(_))
        ));
    }
}
