//! The query parameters of the two vouchers operations, with the vendor's names and values.
//! Every bad parameter is collected (the vendor's `invalid_params` is a list), each with the
//! vendor's reason word.

use crate::domain::code::Code;
use crate::domain::query::{Filter, ListQuery, SortField, SortKey};

pub const COUNT_DEFAULT: u64 = 100;
/// `count` and `offset` have no documented maximum; larger numbers are read as this one.
const NUMBER_CEILING: u64 = i64::MAX as u64;

/// Which operation a query is for: the purchase one takes only the paging and sort parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Customer,
    Purchase,
}

/// One bad parameter as the vendor reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidParam {
    pub name: String,
    /// One of the vendor's reason words: `empty`, `not_allowed_value`, `invalid_value_format`.
    pub reason: &'static str,
    pub value: String,
    pub message: String,
}

/// A parsed query string.
#[derive(Debug, PartialEq, Eq)]
pub struct Params {
    pub query: ListQuery,
    /// `code` was given: the request counts toward the guessing throttle.
    pub by_code: bool,
    /// `without_stores=false`: each reward carries its store list.
    pub with_stores: bool,
}

/// The first-level fields of the vendor's voucher, as sort keys.
fn sort_field(name: &str) -> Option<SortField> {
    Some(match name {
        "voucher_id" => SortField::Id,
        "customer_id" => SortField::CustomerId,
        "store_id" => SortField::StoreId,
        "code" => SortField::Code,
        "value" => SortField::Value,
        "applied_date" => SortField::UsedAt,
        "valid_from" => SortField::ValidFrom,
        "valid_to" => SortField::ValidUntil,
        "reward_group" => SortField::Kind,
        "note" => SortField::Note,
        "reward" => SortField::RewardId,
        "created_at" => SortField::CreatedAt,
        "last_change" => SortField::UpdatedAt,
        "state" => SortField::Status,
        _ => return None,
    })
}

/// The names `sort_field` takes, for the OpenAPI document's test and the error message.
pub const SORT_FIELDS: &[&str] = &[
    "voucher_id",
    "customer_id",
    "store_id",
    "code",
    "value",
    "applied_date",
    "valid_from",
    "valid_to",
    "reward_group",
    "note",
    "reward",
    "created_at",
    "last_change",
    "state",
];

/// Parameters only the customer operation has.
const CUSTOMER_ONLY: &[&str] = &[
    "code",
    "store_id",
    "is_valid",
    "is_applied",
    "without_stores",
    "reward_id",
    "reward_id[]",
];

struct Parser {
    invalid: Vec<InvalidParam>,
}

impl Parser {
    fn refuse(&mut self, name: &str, value: &str, reason: &'static str, message: &str) {
        self.invalid.push(InvalidParam {
            name: name.to_string(),
            reason,
            value: value.to_string(),
            message: message.to_string(),
        });
    }

    /// A whole number of at least `min`, with no upper bound.
    fn number(&mut self, name: &str, value: &str, min: u64) -> Option<u64> {
        if value.is_empty() {
            self.refuse(name, value, "empty", "must not be empty");
            return None;
        }
        if !value.bytes().all(|b| b.is_ascii_digit()) {
            let message = format!("must be a whole number of at least {min}");
            self.refuse(name, value, "invalid_value_format", &message);
            return None;
        }
        let n = value.parse::<u64>().unwrap_or(u64::MAX).min(NUMBER_CEILING);
        if n < min {
            let message = format!("must be at least {min}");
            self.refuse(name, value, "not_allowed_value", &message);
            return None;
        }
        Some(n)
    }

    /// `true` or `false` as the vendor's client sends them (`1`/`0` too).
    fn boolean(&mut self, name: &str, value: &str) -> Option<bool> {
        match value {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            "" => {
                self.refuse(name, value, "empty", "must be true or false");
                None
            }
            _ => {
                self.refuse(name, value, "invalid_value_format", "must be true or false");
                None
            }
        }
    }

    /// A text of 1 to 255 bytes.
    fn text(&mut self, name: &str, value: &str) -> Option<String> {
        if value.is_empty() {
            self.refuse(name, value, "empty", "must not be empty");
            return None;
        }
        if value.len() > 255 {
            let message = "must be at most 255 bytes";
            self.refuse(name, value, "not_allowed_value", message);
            return None;
        }
        Some(value.to_string())
    }
}

/// Parses the query of `operation`; `now` is the instant `is_valid` and `is_applied` are
/// judged at. Unknown or repeated parameters are refused: nothing is silently ignored.
pub fn parse(
    pairs: &[(String, String)],
    operation: Operation,
    now: i64,
) -> Result<Params, Vec<InvalidParam>> {
    let mut p = Parser {
        invalid: Vec::new(),
    };
    let mut query = ListQuery::first(COUNT_DEFAULT);
    let mut seen: Vec<&str> = Vec::new();
    let mut rewards: Vec<String> = Vec::new();
    let (mut field, mut descending) = (None, None);
    let (mut by_code, mut with_stores) = (false, false);
    for (name, value) in pairs {
        let name = name.as_str();
        // Reward ids add up however they come: comma-joined, repeated, or with `[]`.
        let repeatable = name == "reward_id" || name == "reward_id[]";
        // No stored text holds a NUL (PostgreSQL's cannot): refused alike on both engines.
        if value.contains('\0') {
            p.refuse(
                name,
                value,
                "invalid_value_format",
                "must not hold a NUL character",
            );
            continue;
        }
        if !repeatable && seen.contains(&name) {
            p.refuse(name, value, "not_allowed_value", "is given more than once");
            continue;
        }
        seen.push(name);
        if operation == Operation::Purchase && CUSTOMER_ONLY.contains(&name) {
            let message = "is a parameter of the customer vouchers operation only";
            p.refuse(name, value, "not_allowed_value", message);
            continue;
        }
        match name {
            "count" => {
                if let Some(n) = p.number(name, value, 1) {
                    query.per_page = n;
                }
            }
            "offset" => {
                if let Some(n) = p.number(name, value, 0) {
                    query.offset = n;
                }
            }
            "sort_field" => match sort_field(value) {
                Some(f) => field = Some(f),
                None => {
                    let message = format!("must be one of {}", SORT_FIELDS.join(", "));
                    p.refuse(name, value, "not_allowed_value", &message);
                }
            },
            "sort_direction" => match value.as_str() {
                "ASC" => descending = Some(false),
                "DESC" => descending = Some(true),
                _ => p.refuse(name, value, "not_allowed_value", "must be ASC or DESC"),
            },
            "code" => {
                if let Some(code) = p.text(name, value) {
                    match Code::parse(&code) {
                        Ok(code) => {
                            query.filters.push(Filter::Code(code.into_string()));
                            by_code = true;
                        }
                        Err(err) => p.refuse(name, value, "invalid_value_format", &err.to_string()),
                    }
                }
            }
            "store_id" => {
                if let Some(store) = p.text(name, value) {
                    query.filters.push(Filter::StoreId(store));
                }
            }
            "is_valid" => {
                if let Some(inside) = p.boolean(name, value) {
                    query.filters.push(Filter::ValidAt(now, inside));
                }
            }
            "is_applied" => {
                if let Some(applied) = p.boolean(name, value) {
                    query.filters.push(Filter::AppliedAt(now, applied));
                }
            }
            "without_stores" => {
                if let Some(without) = p.boolean(name, value) {
                    with_stores = !without;
                }
            }
            "reward_id" | "reward_id[]" => {
                for id in value.split(',') {
                    if let Some(id) = p.text(name, id) {
                        if !rewards.contains(&id) {
                            rewards.push(id);
                        }
                    }
                }
            }
            _ => p.refuse(
                name,
                value,
                "not_allowed_value",
                "is not a parameter of this operation",
            ),
        }
    }
    if !p.invalid.is_empty() {
        return Err(p.invalid);
    }
    if !rewards.is_empty() {
        query.filters.push(Filter::RewardIn(rewards));
    }
    // Newest first by default; a sort_field alone sorts ascending.
    query.sort.push(SortKey {
        field: field.unwrap_or(SortField::CreatedAt),
        descending: descending.unwrap_or(field.is_none()),
    });
    Ok(Params {
        query,
        by_code,
        with_stores,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_as(op: Operation, items: &[(&str, &str)]) -> Result<Params, Vec<InvalidParam>> {
        let pairs: Vec<(String, String)> = items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(&pairs, op, 1000)
    }

    fn customer(items: &[(&str, &str)]) -> Result<Params, Vec<InvalidParam>> {
        parse_as(Operation::Customer, items)
    }

    fn refused(result: Result<Params, Vec<InvalidParam>>) -> Vec<(String, &'static str)> {
        result
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.name, e.reason))
            .collect()
    }

    #[test]
    fn defaults_are_a_hundred_newest_first_without_stores() {
        let p = customer(&[]).unwrap();
        assert_eq!((p.query.per_page, p.query.offset), (100, 0));
        assert_eq!(
            p.query.sort,
            vec![SortKey {
                field: SortField::CreatedAt,
                descending: true
            }]
        );
        assert!(!p.by_code && !p.with_stores);
    }

    #[test]
    fn every_vendor_parameter_becomes_its_filter() {
        let p = customer(&[
            ("count", "5"),
            ("offset", "7"),
            ("sort_field", "value"),
            ("sort_direction", "DESC"),
            ("code", "ab-cd 12"),
            ("store_id", "S1"),
            ("is_valid", "true"),
            ("is_applied", "false"),
            ("without_stores", "false"),
            ("reward_id", "R1,R2"),
            ("reward_id[]", "R3"),
            ("reward_id[]", "R1"),
        ])
        .unwrap();
        assert_eq!((p.query.per_page, p.query.offset), (5, 7));
        assert_eq!(
            p.query.sort,
            vec![SortKey {
                field: SortField::Value,
                descending: true
            }]
        );
        assert_eq!(
            p.query.filters,
            vec![
                Filter::Code("ABCD12".into()),
                Filter::StoreId("S1".into()),
                Filter::ValidAt(1000, true),
                Filter::AppliedAt(1000, false),
                Filter::RewardIn(vec!["R1".into(), "R2".into(), "R3".into()]),
            ]
        );
        assert!(p.by_code && p.with_stores);
    }

    #[test]
    fn count_has_no_maximum() {
        let p = customer(&[("count", "1000000")]).unwrap();
        assert_eq!(p.query.per_page, 1_000_000);
        let p = customer(&[("count", "99999999999999999999999")]).unwrap();
        assert_eq!(p.query.per_page, NUMBER_CEILING);
    }

    #[test]
    fn sort_fields_are_the_vendor_names_and_directions_upper_case() {
        for name in SORT_FIELDS {
            assert!(customer(&[("sort_field", name)]).is_ok(), "{name}");
        }
        let p = customer(&[("sort_field", "created_at"), ("sort_direction", "ASC")]).unwrap();
        assert_eq!(p.query.sort[0].field, SortField::CreatedAt);
        assert!(!p.query.sort[0].descending);
        for old in ["voucher_value", "created_date", "reward_group_id"] {
            assert_eq!(
                refused(customer(&[("sort_field", old)])),
                vec![("sort_field".into(), "not_allowed_value")]
            );
        }
        assert_eq!(
            refused(customer(&[("sort_direction", "desc")])),
            vec![("sort_direction".into(), "not_allowed_value")]
        );
    }

    #[test]
    fn the_purchase_operation_refuses_customer_parameters() {
        let p = parse_as(
            Operation::Purchase,
            &[
                ("count", "3"),
                ("sort_field", "code"),
                ("sort_direction", "DESC"),
            ],
        )
        .unwrap();
        assert_eq!(p.query.per_page, 3);
        for name in CUSTOMER_ONLY {
            assert_eq!(
                refused(parse_as(Operation::Purchase, &[(name, "true")])),
                vec![(name.to_string(), "not_allowed_value")],
                "{name}"
            );
        }
    }

    #[test]
    fn every_bad_parameter_is_reported_with_its_reason() {
        let got = refused(customer(&[
            ("count", "0"),
            ("offset", "-1"),
            ("is_valid", "yes"),
            ("code", ""),
            ("validity", "true"),
            ("skip_stores", "true"),
            ("reward_id", "R1,,R2"),
        ]));
        assert_eq!(
            got,
            vec![
                ("count".into(), "not_allowed_value"),
                ("offset".into(), "invalid_value_format"),
                ("is_valid".into(), "invalid_value_format"),
                ("code".into(), "empty"),
                ("validity".into(), "not_allowed_value"),
                ("skip_stores".into(), "not_allowed_value"),
                ("reward_id".into(), "empty"),
            ]
        );
        assert_eq!(
            refused(customer(&[("count", "1"), ("count", "2")])),
            vec![("count".into(), "not_allowed_value")]
        );
    }
}
