//! The vendor's voucher object. Optional members a voucher has no value for are left out
//! rather than sent as null (the vendor declares none nullable); `customer_id`, the one
//! required member, is an empty string for a voucher made without a customer.

use crate::api::views::number;
use crate::domain::clock::format_plain;
use crate::domain::money::format_decimal_trimmed;
use crate::domain::voucher::{Status, Voucher};
use serde::Serialize;
use serde_json::Number;
use time::UtcOffset;

/// The vendor's reward groups vouchd's two kinds fall in.
const GIFT: u8 = 5;
const SIMPLE: u8 = 4;

/// `state`: 0 cancelled (the vendor's "deleted"), 1 active, 2 inactive.
pub fn state(status: Status) -> u8 {
    match status {
        Status::Cancelled => 0,
        Status::Active => 1,
        Status::Inactive => 2,
    }
}

/// A gift card (value voucher) is in the gift group, a discount voucher in the simple one.
pub fn reward_group(v: &Voucher) -> u8 {
    if v.amount.is_some() {
        GIFT
    } else {
        SIMPLE
    }
}

/// A store vouchd knows only by its id: the id also stands for its code and name.
#[derive(Serialize)]
struct Store<'a> {
    store_id: &'a str,
    store_code: &'a str,
    name: &'a str,
    partner_id: &'a str,
    system_id: &'a str,
}

/// A reward vouchd knows only by its id: the id is also its code; the name is the voucher's
/// label when it has one.
#[derive(Serialize)]
struct Reward<'a> {
    reward_id: &'a str,
    code: &'a str,
    name: &'a str,
    reward_group: u8,
    store_list: Vec<Store<'a>>,
}

#[derive(Serialize)]
pub struct CareVoucher<'a> {
    voucher_id: &'a str,
    customer_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    store_id: Option<&'a str>,
    code: &'a str,
    value: Number,
    #[serde(skip_serializing_if = "Option::is_none")]
    applied_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    valid_from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    valid_to: Option<String>,
    reward_group: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reward: Option<Reward<'a>>,
    created_at: String,
    last_change: String,
    state: u8,
}

impl<'a> CareVoucher<'a> {
    /// `with_stores`: the reward's store list holds the voucher's store (else it is empty).
    pub fn new(v: &'a Voucher, offset: UtcOffset, with_stores: bool) -> CareVoucher<'a> {
        let at = |t: Option<i64>| t.map(|t| format_plain(t, offset));
        // A gift card's face value, or a discount's value (money or percent).
        let value = match (v.amount, v.discount) {
            (Some(amount), _) => format_decimal_trimmed(amount, v.currency.exponent()),
            (None, Some(d)) => format_decimal_trimmed(d.value, d.kind.scale(v.currency)),
            (None, None) => "0".to_string(),
        };
        let store_id = v.restrictions.store_id.as_deref();
        let group = reward_group(v);
        let reward = v.reward_id.as_deref().map(|reward_id| Reward {
            reward_id,
            code: reward_id,
            name: v.label.as_deref().unwrap_or(reward_id),
            reward_group: group,
            store_list: store_id
                .filter(|_| with_stores)
                .map(|id| Store {
                    store_id: id,
                    store_code: id,
                    name: id,
                    partner_id: "",
                    system_id: "",
                })
                .into_iter()
                .collect(),
        });
        CareVoucher {
            voucher_id: &v.id,
            customer_id: v.restrictions.customer_id.as_deref().unwrap_or(""),
            store_id,
            code: v.code.as_str(),
            value: number(&value),
            applied_date: at(v.used_at),
            valid_from: at(v.valid_from),
            valid_to: at(v.valid_until),
            reward_group: group.to_string(),
            note: v.note.as_deref(),
            reward,
            created_at: format_plain(v.created_at, offset),
            last_change: format_plain(v.updated_at, offset),
            state: state(v.status),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::Currency;
    use crate::domain::voucher::{Discount, DiscountKind};
    use serde_json::json;

    fn card() -> Voucher {
        let currency = Currency::parse("EUR").expect("EUR");
        let mut v = Voucher::blank("c".into(), "g".into(), currency, 86_400);
        v.id = "V1".into();
        v.amount = Some(3049);
        v.remaining = Some(3049);
        v
    }

    #[test]
    fn states_follow_the_vendor() {
        assert_eq!(state(Status::Cancelled), 0);
        assert_eq!(state(Status::Active), 1);
        assert_eq!(state(Status::Inactive), 2);
    }

    #[test]
    fn a_bare_voucher_leaves_out_what_it_lacks() {
        let got = serde_json::to_value(CareVoucher::new(&card(), UtcOffset::UTC, true)).unwrap();
        assert_eq!(
            got,
            json!({"voucher_id": "V1", "customer_id": "", "code": "", "value": 30.49,
                   "reward_group": "5", "created_at": "1970-01-02 00:00:00",
                   "last_change": "1970-01-02 00:00:00", "state": 1})
        );
    }

    #[test]
    fn the_reward_carries_its_stores_only_when_asked() {
        let mut v = card();
        v.amount = None;
        v.remaining = None;
        v.discount = Some(Discount {
            kind: DiscountKind::Percentage,
            value: 1250,
        });
        v.reward_id = Some("R1".into());
        v.restrictions.store_id = Some("S1".into());
        let with = serde_json::to_value(CareVoucher::new(&v, UtcOffset::UTC, true)).unwrap();
        assert_eq!(with["value"], json!(12.5));
        assert_eq!(with["reward_group"], json!("4"));
        assert_eq!(
            with["reward"],
            json!({"reward_id": "R1", "code": "R1", "name": "R1", "reward_group": 4,
                   "store_list": [{"store_id": "S1", "store_code": "S1", "name": "S1",
                                   "partner_id": "", "system_id": ""}]})
        );
        let without = serde_json::to_value(CareVoucher::new(&v, UtcOffset::UTC, false)).unwrap();
        assert_eq!(without["reward"]["store_list"], json!([]));
        assert_eq!(without["store_id"], json!("S1"));
    }
}
