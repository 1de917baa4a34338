//! `GET /v1/stats`: the back-room dashboard's figures for what the token may see.
//!
//! Vouchers issued (by kind and status), the outstanding balance per currency, and the ledger
//! per day over the last 90 days at the shop's `--utc-offset`, every day present (zeros
//! included) so a chart needs no gap filling. All read in one transaction: one snapshot.

use super::{tenant_of, Ctx};
use crate::auth::scope::VOUCHERS_READ;
use crate::domain::clock::{self, day_start, format_day, format_rfc3339, local_day};
use crate::domain::money::format_decimal;
use crate::domain::query::bad;
use crate::error::ApiError;
use crate::store::stats::{self, DayActivity};
use crate::web::response::Reply;
use serde::Serialize;
use std::collections::BTreeMap;

/// Days in the activity window, today included.
pub const WINDOW_DAYS: i64 = 90;

#[derive(Serialize)]
struct StatsView {
    as_of: String,
    issued: IssuedView,
    liability: Vec<LiabilityView>,
    charges_per_day: Vec<DayView>,
}

#[derive(Serialize)]
struct IssuedView {
    total: i64,
    value: i64,
    discount: i64,
    active: i64,
    inactive: i64,
    cancelled: i64,
    last_90_days: i64,
}

#[derive(Serialize)]
struct LiabilityView {
    currency: String,
    amount: String,
    vouchers: i64,
}

#[derive(Serialize)]
struct DayView {
    date: String,
    charges: i64,
    uses: i64,
    refunds: i64,
    amounts: Vec<DayAmounts>,
}

/// One currency's money moved on one day, as decimal strings.
#[derive(Serialize)]
struct DayAmounts {
    currency: String,
    charged: String,
    discounted: String,
    refunded: String,
}

pub fn get_stats(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let token = ctx.authorize(VOUCHERS_READ)?;
    if let Some((name, _)) = ctx.req.query.first() {
        return Err(ApiError::Parameter(bad(
            name,
            "unknown parameter; this route takes none",
        )));
    }
    let tenant = tenant_of(&token);
    let offset = ctx.app.offset;
    let now = clock::now();
    let today = local_day(now, offset);
    let first = today - (WINDOW_DAYS - 1);
    let from = day_start(first, offset);
    let until = day_start(today + 1, offset);
    // One snapshot: the counts, balances and ledger agree.
    let (issued, liability, activity) = stats::summary(
        ctx.conn,
        &tenant,
        from,
        until,
        now,
        i64::from(offset.whole_seconds()),
    )?;
    let view = StatsView {
        as_of: format_rfc3339(now, offset),
        issued: IssuedView {
            total: issued.total,
            value: issued.value,
            discount: issued.discount,
            active: issued.active,
            inactive: issued.inactive,
            cancelled: issued.cancelled,
            last_90_days: issued.since,
        },
        liability: liability
            .into_iter()
            .map(|l| LiabilityView {
                amount: format_decimal(l.amount, l.exponent),
                currency: l.currency,
                vouchers: l.vouchers,
            })
            .collect(),
        charges_per_day: days(first, today, &activity),
    };
    Ok(Reply::json(200, &view))
}

/// Every day from `first` to `last`, with the activity that fell on it.
fn days(first: i64, last: i64, activity: &[DayActivity]) -> Vec<DayView> {
    // (day, currency) → (exponent, [charged, discounted, refunded]), currencies sorted.
    let mut money: BTreeMap<(i64, &str), (u8, [i128; 3])> = BTreeMap::new();
    let mut counts: BTreeMap<i64, [i64; 3]> = BTreeMap::new();
    for a in activity {
        let slot = match a.kind.as_str() {
            "charge" => 0,
            "use" => 1,
            "refund" => 2,
            // Recharges (the JTL dialect's) add credit: neither a redemption nor a refund.
            _ => continue,
        };
        counts.entry(a.day).or_default()[slot] += a.count;
        let entry = money
            .entry((a.day, a.currency.as_str()))
            .or_insert((a.exponent, [0; 3]));
        entry.1[slot] += a.amount;
    }
    (first..=last)
        .map(|day| {
            let [charges, uses, refunds] = counts.get(&day).copied().unwrap_or_default();
            let amounts = money
                .range((day, "")..(day + 1, ""))
                .map(|((_, currency), (exponent, sums))| DayAmounts {
                    currency: (*currency).to_string(),
                    charged: format_decimal(sums[0], *exponent),
                    discounted: format_decimal(sums[1], *exponent),
                    refunded: format_decimal(sums[2], *exponent),
                })
                .collect();
            DayView {
                date: format_day(day),
                charges,
                uses,
                refunds,
                amounts,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activity(day: i64, kind: &str, currency: &str, count: i64, amount: i128) -> DayActivity {
        DayActivity {
            day,
            kind: kind.into(),
            currency: currency.into(),
            exponent: if currency == "JPY" { 0 } else { 2 },
            count,
            amount,
        }
    }

    #[test]
    fn every_day_of_the_window_is_listed_with_its_activity() {
        let first = 20_000; // 2024-10-04
        let rows = [
            activity(first, "charge", "EUR", 2, 1250),
            activity(first, "use", "EUR", 1, 500),
            activity(first, "charge", "JPY", 1, 1500),
            activity(first + 2, "refund", "CHF", 1, 300),
            activity(first + 2, "recharge", "CHF", 1, 9900),
        ];
        let days = days(first, first + 3, &rows);
        let dates: Vec<&str> = days.iter().map(|d| d.date.as_str()).collect();
        assert_eq!(
            dates,
            ["2024-10-04", "2024-10-05", "2024-10-06", "2024-10-07"]
        );
        let d0 = &days[0];
        assert_eq!((d0.charges, d0.uses, d0.refunds), (3, 1, 0));
        let amounts: Vec<(&str, &str, &str, &str)> = d0
            .amounts
            .iter()
            .map(|a| {
                (
                    a.currency.as_str(),
                    a.charged.as_str(),
                    a.discounted.as_str(),
                    a.refunded.as_str(),
                )
            })
            .collect();
        assert_eq!(
            amounts,
            [("EUR", "12.50", "5.00", "0.00"), ("JPY", "1500", "0", "0")]
        );
        assert!(days[1].amounts.is_empty());
        assert_eq!((days[1].charges, days[1].uses, days[1].refunds), (0, 0, 0));
        assert_eq!(days[2].refunds, 1);
        assert_eq!(days[2].amounts[0].refunded, "3.00");
        assert!(days[3].amounts.is_empty());
    }
}
