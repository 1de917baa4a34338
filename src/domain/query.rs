//! The list query: pages, filters and sort order, parsed from decoded query pairs.
//!
//! Parsing is strict: an unknown parameter, filter or sort field, or a malformed value, is an
//! error naming the parameter exactly as it was sent. Nothing is silently ignored.

use super::clock::{parse_instant, DayEnd};
use super::code::Code;
use super::money::{parse_decimal, MAX_MAJOR};
use super::voucher::{Medium, Status, PERCENT_SCALE};
use time::UtcOffset;

pub const PER_PAGE_DEFAULT: u64 = 25;
pub const PER_PAGE_MAX: u64 = 1000;

/// A bad query parameter: its name as sent, and what is wrong.
#[derive(Debug, PartialEq, Eq)]
pub struct ParamError {
    pub param: String,
    pub message: String,
}

/// A bad parameter: its name as sent and what is wrong (for the dialects' own parsers too).
pub fn bad(param: &str, message: impl Into<String>) -> ParamError {
    ParamError {
        param: param.to_string(),
        message: message.into(),
    }
}

/// One narrowing condition of a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    CreatedFrom(i64),
    CreatedTo(i64),
    ValidUntilFrom(i64),
    ValidUntilTo(i64),
    ClientId(String),
    GroupId(String),
    Code(String),
    Id(String),
    Sku(String),
    Medium(Medium),
    /// An amount as it may be written in currencies of each exponent: `(exponent, minor)`.
    Amount(Vec<(u8, i64)>),
    Status(Vec<Status>),
    Batch(String),
    HasRemaining(bool),
    Taxable(bool),
    TaxRate(i64),
    CustomerId(String),
    PurchaseId(String),
    StoreId(String),
    RewardId(String),
    OrderNumber(String),
    /// Inside (`true`) or outside (`false`) its validity range at the given instant.
    ValidAt(i64, bool),
    /// Applied (has ledger entries or a hold live at the instant) or not.
    AppliedAt(i64, bool),
    /// Any of these rewards.
    RewardIn(Vec<String>),
    /// Discount vouchers only (the POS dialect knows no others).
    DiscountOnly,
    /// Used up (`used_at` set) or not.
    Used(bool),
    /// Value vouchers in currencies of this many decimals only (JTL's money has two).
    ValueWithExponent(u8),
}

/// Fields a list can be ordered by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortField {
    CreatedAt,
    UpdatedAt,
    ValidUntil,
    Amount,
    RemainingAmount,
    Code,
    // The dialects' extra keys.
    Id,
    CustomerId,
    StoreId,
    /// The amount of a value voucher or the discount of a discount voucher.
    Value,
    UsedAt,
    ValidFrom,
    RewardId,
    Note,
    Status,
    /// Discount vouchers before value vouchers.
    Kind,
}

impl SortField {
    fn parse(name: &str) -> Option<SortField> {
        Some(match name {
            "created_at" => SortField::CreatedAt,
            "updated_at" => SortField::UpdatedAt,
            "valid_until" => SortField::ValidUntil,
            "amount" => SortField::Amount,
            "remaining_amount" => SortField::RemainingAmount,
            "code" => SortField::Code,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SortKey {
    pub field: SortField,
    pub descending: bool,
}

/// A parsed list request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListQuery {
    pub page: u64,
    pub per_page: u64,
    /// Rows skipped before the page: `(page − 1) × per_page` natively, any number in a dialect.
    pub offset: u64,
    pub filters: Vec<Filter>,
    pub sort: Vec<SortKey>,
}

impl ListQuery {
    /// The first page of `per_page` rows, unfiltered, in the default order.
    pub fn first(per_page: u64) -> ListQuery {
        ListQuery {
            page: 1,
            per_page,
            offset: 0,
            filters: Vec::new(),
            sort: Vec::new(),
        }
    }

    /// The total a page of `rows` rows proves without counting: a page that is not full and
    /// not empty past the start is the last one, so the total is `offset + rows`. (Saves the
    /// `COUNT(*)` of every look-up by code or id.)
    pub fn total_from_page(&self, rows: usize) -> Option<u64> {
        let rows = rows as u64;
        let last = rows < self.per_page && (rows > 0 || self.offset == 0);
        last.then(|| self.offset.saturating_add(rows))
    }
}

/// Which list is being asked for: they differ in the filters and sort fields they know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListKind {
    Vouchers,
    Charges,
}

const VOUCHER_SORTS: &[SortField] = &[
    SortField::CreatedAt,
    SortField::UpdatedAt,
    SortField::ValidUntil,
    SortField::Amount,
    SortField::RemainingAmount,
    SortField::Code,
];
const CHARGE_SORTS: &[SortField] = &[
    SortField::CreatedAt,
    SortField::UpdatedAt,
    SortField::Amount,
];

/// Parses decoded query pairs into a [`ListQuery`] for `kind`.
pub fn parse_list(
    pairs: &[(String, String)],
    kind: ListKind,
    offset: UtcOffset,
) -> Result<ListQuery, ParamError> {
    let mut query = ListQuery::first(PER_PAGE_DEFAULT);
    let mut seen: Vec<&str> = Vec::new();
    let mut statuses: Vec<Status> = Vec::new();
    for (name, value) in pairs {
        let name = name.as_str();
        // No stored text holds a NUL (PostgreSQL's cannot): refused alike on both engines.
        if value.contains('\0') {
            return Err(bad(name, "must not hold a NUL character"));
        }
        // Repeatable: sort and the status list. Anything else given twice is ambiguous.
        let repeatable = name == "sort" || name.starts_with("filter[status]");
        if !repeatable {
            if seen.contains(&name) {
                return Err(bad(name, "given more than once"));
            }
            seen.push(name);
        }
        match name {
            "page" => query.page = parse_count(name, value, 1, u64::MAX / 2)?,
            "per_page" => query.per_page = parse_count(name, value, 1, PER_PAGE_MAX)?,
            "sort" => parse_sort(name, value, kind, &mut query.sort)?,
            "filter[status]" | "filter[status][]" if kind == ListKind::Vouchers => {
                for part in value.split(',') {
                    let status = Status::parse(part.trim())
                        .ok_or_else(|| bad(name, "must be active, inactive or cancelled"))?;
                    if !statuses.contains(&status) {
                        statuses.push(status);
                    }
                }
            }
            _ => {
                let filter = parse_filter(name, value, kind, offset)?;
                query.filters.push(filter);
            }
        }
    }
    if !statuses.is_empty() {
        query.filters.push(Filter::Status(statuses));
    }
    query.offset = (query.page - 1).saturating_mul(query.per_page);
    Ok(query)
}

/// A whole number from `min` to `max`.
pub fn parse_count(name: &str, value: &str, min: u64, max: u64) -> Result<u64, ParamError> {
    value
        .parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| bad(name, format!("must be a whole number from {min} to {max}")))
}

/// `true`/`1` or `false`/`0`.
pub fn parse_bool(name: &str, value: &str) -> Result<bool, ParamError> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(bad(name, "must be true or false")),
    }
}

/// A text of 1 to 255 bytes.
pub fn parse_text(name: &str, value: &str) -> Result<String, ParamError> {
    if value.is_empty() || value.len() > 255 {
        return Err(bad(name, "must be 1 to 255 characters"));
    }
    Ok(value.to_string())
}

fn parse_sort(
    name: &str,
    value: &str,
    kind: ListKind,
    keys: &mut Vec<SortKey>,
) -> Result<(), ParamError> {
    let allowed = match kind {
        ListKind::Vouchers => VOUCHER_SORTS,
        ListKind::Charges => CHARGE_SORTS,
    };
    for part in value.split(',') {
        let (descending, field_name) = match part.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, part),
        };
        let field = SortField::parse(field_name)
            .filter(|f| allowed.contains(f))
            .ok_or_else(|| bad(name, format!("unknown sort field {part:?}")))?;
        if keys.iter().any(|k| k.field == field) {
            return Err(bad(name, format!("sort field {field_name:?} given twice")));
        }
        keys.push(SortKey { field, descending });
    }
    Ok(())
}

fn parse_filter(
    name: &str,
    value: &str,
    kind: ListKind,
    offset: UtcOffset,
) -> Result<Filter, ParamError> {
    let field = name
        .strip_prefix("filter[")
        .and_then(|rest| rest.strip_suffix(']'))
        .ok_or_else(|| bad(name, "unknown parameter"))?;
    let text = || parse_text(name, value);
    let instant = |end: DayEnd| {
        parse_instant(value, offset, end)
            .ok_or_else(|| bad(name, "must be an RFC 3339 timestamp or a date"))
    };
    let boolean = || parse_bool(name, value);
    let charges = kind == ListKind::Charges;
    Ok(match field {
        "created_from" => Filter::CreatedFrom(instant(DayEnd::Start)?),
        "created_to" => Filter::CreatedTo(instant(DayEnd::End)?),
        "amount" => Filter::Amount(parse_amount_filter(name, value)?),
        "order_number" if charges => Filter::OrderNumber(text()?),
        _ if charges => return Err(bad(name, "unknown filter")),
        "valid_until_from" => Filter::ValidUntilFrom(instant(DayEnd::Start)?),
        "valid_until_to" => Filter::ValidUntilTo(instant(DayEnd::End)?),
        "client_id" => Filter::ClientId(text()?),
        "client.client_group_id" => Filter::GroupId(text()?),
        "code" => Filter::Code(parse_code(name, value)?),
        "id" => Filter::Id(text()?),
        "sku" => Filter::Sku(text()?),
        "type" => Filter::Medium(
            Medium::parse(value).ok_or_else(|| bad(name, "must be digital or print"))?,
        ),
        "batch" => Filter::Batch(text()?),
        "remaining_amount" => Filter::HasRemaining(boolean()?),
        "taxable" => Filter::Taxable(boolean()?),
        "tax_rate" => Filter::TaxRate(
            parse_decimal(value, PERCENT_SCALE).map_err(|e| bad(name, format!("tax rate {e}")))?,
        ),
        "customer_id" => Filter::CustomerId(text()?),
        "purchase_id" => Filter::PurchaseId(text()?),
        "store_id" => Filter::StoreId(text()?),
        "reward_id" => Filter::RewardId(text()?),
        _ => return Err(bad(name, "unknown filter")),
    })
}

/// A code filter's value, read as a code is read everywhere: a text that cannot be a code is a
/// bad parameter, not a look-up that finds nothing.
pub fn parse_code(name: &str, value: &str) -> Result<String, ParamError> {
    Code::parse(value)
        .map(Code::into_string)
        .map_err(|e| bad(name, e.to_string()))
}

/// The minor-unit values `text` stands for in currencies of 0, 2, 3 and 4 decimals.
fn parse_amount_filter(name: &str, text: &str) -> Result<Vec<(u8, i64)>, ParamError> {
    let candidates: Vec<(u8, i64)> = [0u8, 2, 3, 4]
        .into_iter()
        .filter_map(|e| parse_decimal(text, e).ok().map(|m| (e, m)))
        .collect();
    if candidates.is_empty() {
        return Err(bad(
            name,
            format!("must be a decimal amount from 0 to {MAX_MAJOR}"),
        ));
    }
    Ok(candidates)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn vouchers(items: &[(&str, &str)]) -> Result<ListQuery, ParamError> {
        parse_list(&pairs(items), ListKind::Vouchers, UtcOffset::UTC)
    }

    fn param_of(result: Result<ListQuery, ParamError>) -> String {
        result.err().map(|e| e.param).unwrap_or_default()
    }

    #[test]
    fn defaults_are_page_one_of_twenty_five() {
        let q = vouchers(&[]).expect("empty query");
        assert_eq!((q.page, q.per_page, q.offset), (1, 25, 0));
        assert!(q.filters.is_empty() && q.sort.is_empty());
    }

    #[test]
    fn pages_are_bounded() {
        assert_eq!(
            vouchers(&[("page", "3"), ("per_page", "10")]).map(|q| q.offset),
            Ok(20)
        );
        assert_eq!(param_of(vouchers(&[("page", "0")])), "page");
        assert_eq!(param_of(vouchers(&[("per_page", "1001")])), "per_page");
        assert_eq!(param_of(vouchers(&[("per_page", "-1")])), "per_page");
        assert_eq!(param_of(vouchers(&[("page", "x")])), "page");
        assert_eq!(param_of(vouchers(&[("page", "1"), ("page", "2")])), "page");
    }

    #[test]
    fn status_lists_merge_repeated_and_comma_forms() {
        let q = vouchers(&[
            ("filter[status][]", "active"),
            ("filter[status][]", "inactive,cancelled"),
        ])
        .expect("valid statuses");
        assert_eq!(
            q.filters,
            vec![Filter::Status(vec![
                Status::Active,
                Status::Inactive,
                Status::Cancelled
            ])]
        );
        assert_eq!(
            param_of(vouchers(&[("filter[status]", "active,gone")])),
            "filter[status]"
        );
    }

    #[test]
    fn sort_takes_comma_lists_and_repeats_with_descending_marks() {
        let q = vouchers(&[("sort", "-amount,code"), ("sort", "created_at")]).expect("valid sort");
        let fields: Vec<(SortField, bool)> =
            q.sort.iter().map(|k| (k.field, k.descending)).collect();
        assert_eq!(
            fields,
            vec![
                (SortField::Amount, true),
                (SortField::Code, false),
                (SortField::CreatedAt, false)
            ]
        );
        assert_eq!(param_of(vouchers(&[("sort", "label")])), "sort");
        assert_eq!(param_of(vouchers(&[("sort", "")])), "sort");
        assert_eq!(param_of(vouchers(&[("sort", "code,-code")])), "sort");
    }

    #[test]
    fn filters_parse_their_values() {
        let q = vouchers(&[
            ("filter[code]", "ab-cd ef"),
            ("filter[remaining_amount]", "true"),
            ("filter[type]", "print"),
            ("filter[tax_rate]", "19"),
            ("filter[created_to]", "2024-01-31"),
        ])
        .expect("valid filters");
        assert_eq!(q.filters[0], Filter::Code("ABCDEF".into()));
        for code in ["straße", "ABCD\u{a0}", "ABCD\n", "abc"] {
            let q = vouchers(&[("filter[code]", code)]);
            assert_eq!(param_of(q), "filter[code]", "{code:?}");
        }
        assert_eq!(q.filters[1], Filter::HasRemaining(true));
        assert_eq!(q.filters[2], Filter::Medium(Medium::Print));
        assert_eq!(q.filters[3], Filter::TaxRate(1900));
        assert_eq!(q.filters[4], Filter::CreatedTo(1_706_745_599));
        let amount = vouchers(&[("filter[amount]", "10.5")]).expect("amount");
        assert_eq!(
            amount.filters[0],
            Filter::Amount(vec![(2, 1050), (3, 10_500), (4, 105_000)])
        );
    }

    #[test]
    fn unknown_or_malformed_filters_name_the_parameter() {
        for (name, value) in [
            ("filter[bogus]", "1"),
            ("bogus", "1"),
            ("filter[created_from]", "yesterday"),
            ("filter[taxable]", "yes"),
            ("filter[type]", "paper"),
            ("filter[amount]", "ten"),
            ("filter[amount]", "-1"),
            ("filter[code]", ""),
            ("filter[code", "x"),
        ] {
            assert_eq!(param_of(vouchers(&[(name, value)])), name, "{name}={value}");
        }
    }

    #[test]
    fn charge_lists_know_only_their_four_filters() {
        let q = parse_list(
            &pairs(&[("filter[order_number]", "O-1")]),
            ListKind::Charges,
            UtcOffset::UTC,
        );
        assert_eq!(
            q.map(|q| q.filters),
            Ok(vec![Filter::OrderNumber("O-1".into())])
        );
        let bad_filter = parse_list(
            &pairs(&[("filter[code]", "ABCD")]),
            ListKind::Charges,
            UtcOffset::UTC,
        );
        assert_eq!(param_of(bad_filter), "filter[code]");
        let bad_sort = parse_list(
            &pairs(&[("sort", "code")]),
            ListKind::Charges,
            UtcOffset::UTC,
        );
        assert_eq!(param_of(bad_sort), "sort");
    }

    #[test]
    fn a_short_page_proves_the_total() {
        let q = |offset, per_page| ListQuery {
            offset,
            per_page,
            ..ListQuery::first(per_page)
        };
        assert_eq!(q(0, 20).total_from_page(1), Some(1));
        assert_eq!(q(0, 20).total_from_page(0), Some(0));
        assert_eq!(q(40, 20).total_from_page(7), Some(47));
        assert_eq!(
            q(0, 20).total_from_page(20),
            None,
            "a full page may have more after it"
        );
        assert_eq!(
            q(40, 20).total_from_page(0),
            None,
            "past the end: the total is unknown"
        );
    }
}
