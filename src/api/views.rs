//! The native API's JSON shapes, built from domain values.

use crate::domain::clock::format_rfc3339;
use crate::domain::money::{format_decimal, format_decimal_trimmed};
use crate::domain::voucher::{Voucher, PERCENT_SCALE};
use crate::web::request::percent_encode;
use crate::web::response::Reply;
use serde::Serialize;
use time::UtcOffset;

#[derive(Serialize)]
pub struct DiscountView {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub value: String,
}

/// A decimal string as a JSON number, digits kept exactly (`12.5`, `30`: no float inside), for
/// the dialects that want numbers.
pub fn number(decimal: &str) -> serde_json::Number {
    decimal
        .parse()
        .unwrap_or_else(|_| serde_json::Number::from(0))
}

/// A discount whose value is a JSON number (the POS dialect's shape).
#[derive(Serialize)]
pub struct DiscountNumberView {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub value: serde_json::Number,
}

/// Also the cells of a CSV export, so both render every value the same way.
#[derive(Serialize)]
pub struct VoucherView<'a> {
    pub(super) id: &'a str,
    pub(super) code: &'a str,
    pub(super) client_id: &'a str,
    pub(super) sku: Option<&'a str>,
    pub(super) batch: Option<&'a str>,
    pub(super) label: Option<&'a str>,
    pub(super) note: Option<&'a str>,
    pub(super) amount: Option<String>,
    pub(super) remaining_amount: Option<String>,
    pub(super) held_amount: Option<String>,
    pub(super) currency: &'a str,
    pub(super) discount: Option<DiscountView>,
    pub(super) max_uses: Option<i64>,
    pub(super) uses: i64,
    pub(super) used_at: Option<String>,
    pub(super) valid_from: Option<String>,
    pub(super) valid_until: Option<String>,
    pub(super) validity_value: Option<i64>,
    pub(super) validity_interval: Option<&'static str>,
    pub(super) status: &'static str,
    #[serde(rename = "type")]
    pub(super) medium: &'static str,
    pub(super) taxable: bool,
    pub(super) tax_rate: Option<String>,
    pub(super) order_number: Option<&'a str>,
    pub(super) customer_id: Option<&'a str>,
    pub(super) product_id: Option<&'a str>,
    pub(super) store_id: Option<&'a str>,
    pub(super) purchase_id: Option<&'a str>,
    pub(super) reward_id: Option<&'a str>,
    pub(super) data: Option<&'a str>,
    pub(super) created_at: String,
    pub(super) updated_at: String,
    pub(super) deletable: bool,
}

impl<'a> VoucherView<'a> {
    pub fn new(v: &'a Voucher, offset: UtcOffset) -> VoucherView<'a> {
        let exp = v.currency.exponent();
        let money = |minor: Option<i64>| minor.map(|m| format_decimal(m, exp));
        let at = |t: Option<i64>| t.map(|t| format_rfc3339(t, offset));
        VoucherView {
            id: &v.id,
            code: v.code.as_str(),
            client_id: &v.client_id,
            sku: v.sku.as_deref(),
            batch: v.batch.as_deref(),
            label: v.label.as_deref(),
            note: v.note.as_deref(),
            amount: money(v.amount),
            remaining_amount: money(v.remaining),
            held_amount: v.remaining.map(|_| format_decimal(v.held, exp)),
            currency: v.currency.as_str(),
            discount: v.discount.map(|d| DiscountView {
                kind: d.kind.as_str(),
                value: format_decimal(d.value, d.kind.scale(v.currency)),
            }),
            max_uses: v.max_uses,
            uses: v.uses,
            used_at: at(v.used_at),
            valid_from: at(v.valid_from),
            valid_until: at(v.valid_until),
            validity_value: v.validity.map(|(n, _)| n),
            validity_interval: v.validity.map(|(_, unit)| unit.as_str()),
            status: v.status.as_str(),
            medium: v.medium.as_str(),
            taxable: v.taxable,
            tax_rate: v.tax_rate.map(|r| format_decimal_trimmed(r, PERCENT_SCALE)),
            order_number: v.order_number.as_deref(),
            customer_id: v.restrictions.customer_id.as_deref(),
            product_id: v.restrictions.product_id.as_deref(),
            store_id: v.restrictions.store_id.as_deref(),
            purchase_id: v.purchase_id.as_deref(),
            reward_id: v.reward_id.as_deref(),
            data: v.data.as_deref(),
            created_at: format_rfc3339(v.created_at, offset),
            updated_at: format_rfc3339(v.updated_at, offset),
            deletable: v.deletable(),
        }
    }
}

/// A page of a list: `data`, `links` and `meta` as the native API shapes them.
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub page: u64,
    pub per_page: u64,
}

#[derive(Serialize)]
struct PageView<'a, T> {
    data: &'a [T],
    links: Links,
    meta: Meta<'a>,
}

#[derive(Serialize)]
struct Links {
    first: String,
    last: String,
    prev: Option<String>,
    next: Option<String>,
}

#[derive(Serialize)]
struct Meta<'a> {
    current_page: u64,
    per_page: u64,
    from: Option<u64>,
    to: Option<u64>,
    last_page: u64,
    total: u64,
    path: &'a str,
}

impl<T: Serialize> Page<T> {
    /// Renders the page; `path` is the absolute URL without query, `query` the request's pairs
    /// (everything but `page` is kept in the links).
    pub fn render(&self, path: &str, query: &[(String, String)]) -> Reply {
        let last_page = self.total.div_ceil(self.per_page).max(1);
        // `path?` and the kept pairs, each followed by `&`; a link adds its `page=N`.
        let mut kept = String::with_capacity(path.len() + 64);
        kept.push_str(path);
        kept.push('?');
        for (k, v) in query.iter().filter(|(k, _)| k != "page") {
            kept.push_str(&percent_encode(k));
            kept.push('=');
            kept.push_str(&percent_encode(v));
            kept.push('&');
        }
        let link = |page: u64| {
            let mut link = String::with_capacity(kept.len() + 16);
            link.push_str(&kept);
            link.push_str("page=");
            link.push_str(&page.to_string());
            link
        };
        let from = (self.page - 1)
            .saturating_mul(self.per_page)
            .saturating_add(1);
        let count = self.items.len() as u64;
        let view = PageView {
            data: &self.items,
            links: Links {
                first: link(1),
                last: link(last_page),
                prev: (self.page > 1).then(|| link((self.page - 1).min(last_page))),
                next: (self.page < last_page).then(|| link(self.page + 1)),
            },
            meta: Meta {
                current_page: self.page,
                per_page: self.per_page,
                from: (count > 0).then_some(from),
                to: (count > 0).then_some(from + count - 1),
                last_page,
                total: self.total,
                path,
            },
        };
        Reply::json(200, &view)
    }
}

#[cfg(test)]
mod tests {
    use super::number;

    #[test]
    fn numbers_keep_their_digits() {
        assert_eq!(number("12.50").to_string(), "12.50");
        assert_eq!(number("7").to_string(), "7");
    }
}
