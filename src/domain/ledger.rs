//! The ledger's types and the rules a write to it must keep: refunds within their charge,
//! captures within their hold and only while it is live, a discount changed only before use.
//!
//! The store asks these rules inside its write transaction, as it asks `check_charge`, and
//! then applies the write with conditional statements that hold even if a rule were wrong.

use super::voucher::{Context, Discount, Tenant, Voucher};
use std::fmt;

/// What a ledger entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    Charge,
    Use,
    Refund,
    /// Credit added to a value voucher (the JTL dialect's recharge).
    Recharge,
}

impl EntryKind {
    pub const ALL: [EntryKind; 4] = [
        EntryKind::Charge,
        EntryKind::Use,
        EntryKind::Refund,
        EntryKind::Recharge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Charge => "charge",
            EntryKind::Use => "use",
            EntryKind::Refund => "refund",
            EntryKind::Recharge => "recharge",
        }
    }

    pub fn parse(text: &str) -> Option<EntryKind> {
        EntryKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// One ledger entry, with its voucher's currency for rendering.
#[derive(Clone, Debug)]
pub struct Entry {
    pub id: String,
    pub voucher_id: String,
    pub client_id: String,
    pub kind: EntryKind,
    pub amount: i64,
    pub order_number: Option<String>,
    pub refers_to: Option<String>,
    pub created_at: i64,
    pub currency: String,
}

/// Where a hold stands. A `Held` one past its expiry no longer counts (and cannot be captured).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldStatus {
    Held,
    Captured,
    Released,
}

impl HoldStatus {
    pub const ALL: [HoldStatus; 3] = [HoldStatus::Held, HoldStatus::Captured, HoldStatus::Released];

    pub fn as_str(self) -> &'static str {
        match self {
            HoldStatus::Held => "held",
            HoldStatus::Captured => "captured",
            HoldStatus::Released => "released",
        }
    }

    pub fn parse(text: &str) -> Option<HoldStatus> {
        HoldStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for HoldStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A hold on a voucher's balance.
#[derive(Clone, Debug)]
pub struct Reservation {
    pub id: String,
    pub voucher_id: String,
    pub amount: i64,
    pub order_number: Option<String>,
    pub status: HoldStatus,
    pub expires_at: i64,
    pub created_at: i64,
}

impl Reservation {
    /// Held and not yet expired at `now`.
    pub fn is_live(&self, now: i64) -> bool {
        self.status == HoldStatus::Held && self.expires_at > now
    }
}

/// Who is redeeming, and what they say about the sale.
pub struct Redemption<'a> {
    pub client_id: &'a str,
    pub tenant: &'a Tenant,
    pub order_number: Option<&'a str>,
    pub context: &'a Context,
    pub now: i64,
}

/// A ledger rule a write would break.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Breach {
    /// Nothing, or more than is left to refund of the charge.
    RefundExceedsCharge,
    /// A capture above the held amount.
    CaptureExceedsHold,
    /// The hold's time ran out.
    HoldExpired,
    /// The hold was captured or released already (or, racing its expiry, is no longer live).
    HoldNotHeld(HoldStatus),
    /// The discount of a used voucher, or of a value voucher, cannot change.
    DiscountAfterUse,
}

/// The amount a refund gives back: `asked`, or all that is `refundable` of its charge; never
/// nothing and never more than is left.
pub fn refund_amount(refundable: i64, asked: Option<i64>) -> Result<i64, Breach> {
    let amount = asked.unwrap_or(refundable);
    if amount == 0 || amount > refundable {
        return Err(Breach::RefundExceedsCharge);
    }
    Ok(amount)
}

/// Why `hold` cannot be ended at `now`: expired while held, or ended already.
pub fn not_live(hold: &Reservation, now: i64) -> Breach {
    if hold.status == HoldStatus::Held && hold.expires_at <= now {
        Breach::HoldExpired
    } else {
        Breach::HoldNotHeld(hold.status)
    }
}

/// The amount a capture charges: `asked`, or all of the hold; only of a live hold, and never
/// more than it holds.
pub fn capture_amount(hold: &Reservation, asked: Option<i64>, now: i64) -> Result<i64, Breach> {
    if !hold.is_live(now) {
        return Err(not_live(hold, now));
    }
    let amount = asked.unwrap_or(hold.amount);
    if amount > hold.amount {
        return Err(Breach::CaptureExceedsHold);
    }
    Ok(amount)
}

/// The discount a change sets, if it changes the current one: only a discount voucher's, and
/// only before its first ledger entry (a use was granted on the old discount).
pub fn discount_change(
    current: &Voucher,
    wanted: Option<Discount>,
) -> Result<Option<Discount>, Breach> {
    match wanted.filter(|d| current.discount != Some(*d)) {
        Some(_) if current.discount.is_none() || current.entries > 0 => {
            Err(Breach::DiscountAfterUse)
        }
        changed => Ok(changed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(status: HoldStatus, amount: i64, expires_at: i64) -> Reservation {
        Reservation {
            id: "H".into(),
            voucher_id: "V".into(),
            amount,
            order_number: None,
            status,
            expires_at,
            created_at: 0,
        }
    }

    #[test]
    fn a_refund_gives_back_at_most_what_is_left_of_its_charge_and_never_nothing() {
        assert_eq!(refund_amount(500, None), Ok(500));
        assert_eq!(refund_amount(500, Some(200)), Ok(200));
        assert_eq!(refund_amount(500, Some(500)), Ok(500));
        assert_eq!(
            refund_amount(500, Some(501)),
            Err(Breach::RefundExceedsCharge)
        );
        assert_eq!(
            refund_amount(500, Some(0)),
            Err(Breach::RefundExceedsCharge)
        );
        assert_eq!(refund_amount(0, None), Err(Breach::RefundExceedsCharge));
    }

    #[test]
    fn a_capture_takes_at_most_the_hold_and_only_while_it_is_live() {
        let live = hold(HoldStatus::Held, 300, 100);
        assert_eq!(capture_amount(&live, None, 50), Ok(300));
        assert_eq!(capture_amount(&live, Some(120), 50), Ok(120));
        assert_eq!(
            capture_amount(&live, Some(301), 50),
            Err(Breach::CaptureExceedsHold)
        );
        assert_eq!(capture_amount(&live, None, 100), Err(Breach::HoldExpired));
        for ended in [HoldStatus::Captured, HoldStatus::Released] {
            assert_eq!(
                capture_amount(&hold(ended, 300, 100), None, 50),
                Err(Breach::HoldNotHeld(ended))
            );
        }
    }

    #[test]
    fn a_discount_changes_only_on_an_unused_discount_voucher() {
        use crate::domain::money::Currency;
        use crate::domain::voucher::DiscountKind;
        let eur = Currency::parse("EUR").expect("EUR");
        let ten = Discount {
            kind: DiscountKind::Percentage,
            value: 1000,
        };
        let five = Discount { value: 500, ..ten };
        let unused = Voucher {
            discount: Some(ten),
            max_uses: Some(3),
            ..Voucher::blank("C".into(), "G".into(), eur, 0)
        };
        assert_eq!(discount_change(&unused, Some(five)), Ok(Some(five)));
        assert_eq!(
            discount_change(&unused, Some(ten)),
            Ok(None),
            "the same is no change"
        );
        assert_eq!(discount_change(&unused, None), Ok(None));
        let used = Voucher {
            entries: 1,
            ..unused.clone()
        };
        assert_eq!(
            discount_change(&used, Some(five)),
            Err(Breach::DiscountAfterUse)
        );
        assert_eq!(discount_change(&used, Some(ten)), Ok(None));
        let value = Voucher {
            discount: None,
            amount: Some(1000),
            remaining: Some(1000),
            ..unused
        };
        assert_eq!(
            discount_change(&value, Some(five)),
            Err(Breach::DiscountAfterUse)
        );
    }

    #[test]
    fn hold_and_entry_kinds_read_back_what_they_write() {
        for s in HoldStatus::ALL {
            assert_eq!(HoldStatus::parse(s.as_str()), Some(s));
        }
        for k in EntryKind::ALL {
            assert_eq!(EntryKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(HoldStatus::parse("expired"), None);
        assert_eq!(EntryKind::parse("gift"), None);
    }
}
