//! JTL's wire format: its money strings, the JSON bodies it sends checked by Laravel-style
//! rules, and its voucher, charge and reservation objects built from vouchd's.

use super::error::{violation, JtlError, Violation};
use crate::api::{json, Ctx};
use crate::domain::clock::format_rfc3339;
use crate::domain::ledger::{Entry, Reservation};
use crate::domain::money::{format_decimal, format_decimal_trimmed, Currency};
use crate::domain::voucher::{Voucher, PERCENT_SCALE};
use serde_json::{json, Map, Value};
use time::UtcOffset;

/// JTL's money has two decimals, whatever the currency: only currencies of two are served.
pub const EXPONENT: u8 = 2;
/// The largest amount JTL's money pattern admits (nine characters): 999999.99.
pub const MAX_MINOR: i64 = 99_999_999;

/// Minor units from JTL's money text: `^\d+\.\d{2}$`, four to nine characters.
pub fn parse_money(text: &str) -> Option<i64> {
    let (major, minor) = text.split_once('.')?;
    let ok = (4..=9).contains(&text.len())
        && !major.is_empty()
        && major.bytes().all(|b| b.is_ascii_digit())
        && minor.len() == 2
        && minor.bytes().all(|b| b.is_ascii_digit());
    if !ok {
        return None;
    }
    let major: i64 = major.parse().ok()?;
    let minor: i64 = minor.parse().ok()?;
    Some(major * 100 + minor)
}

pub fn money(minor: i64) -> String {
    format_decimal(minor, EXPONENT)
}

/// A JSON object body read field by field against Laravel-style rules; every violation is
/// collected, named `{operation}.{FIELD}.{RULE}`.
pub struct Body {
    operation: &'static str,
    map: Map<String, Value>,
    pub errors: Vec<Violation>,
}

impl Body {
    /// The request's JSON object (an empty body reads as `{}`, as Laravel reads it).
    pub fn read(ctx: &Ctx, operation: &'static str) -> Result<Body, JtlError> {
        let map = if ctx.req.body.iter().all(u8::is_ascii_whitespace) {
            Map::new()
        } else {
            if ctx.req.media_type() != "application/json" {
                return Err(JtlError::new(
                    415,
                    "REQUEST.UNSUPPORTED_MEDIA_TYPE",
                    "The body must be application/json.",
                ));
            }
            // The one reader of JSON bodies, which refuses a key given twice.
            json::parse_object(&ctx.req.body)
                .map_err(|e| JtlError::new(400, "REQUEST.MALFORMED", e.detail()))?
        };
        Ok(Body {
            operation,
            map,
            errors: Vec::new(),
        })
    }

    pub fn fail(&mut self, property: &str, rule: &str, message: String) {
        self.errors
            .push(violation(self.operation, property, rule, &message));
    }

    pub fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    fn has_error(&self, property: &str) -> bool {
        self.errors.iter().any(|e| e.property == property)
    }

    /// Takes a field; `None` when absent or null (`required` records the violation).
    fn take(&mut self, name: &str, required: bool) -> Option<Value> {
        match self.map.remove(name) {
            Some(Value::Null) | None => {
                if required {
                    self.fail(name, "required", format!("The {name} field is required."));
                }
                None
            }
            Some(v) => Some(v),
        }
    }

    pub fn string(&mut self, name: &str, max: usize, required: bool) -> Option<String> {
        match self.take(name, required)? {
            Value::String(s) if s.chars().count() > max => {
                self.fail(
                    name,
                    &format!("max:{max}"),
                    format!("The {name} may not be greater than {max} characters."),
                );
                None
            }
            Value::String(s) if s.is_empty() && required => {
                self.fail(name, "required", format!("The {name} field is required."));
                None
            }
            Value::String(s) => Some(s),
            _ => {
                self.fail(name, "string", format!("The {name} must be a string."));
                None
            }
        }
    }

    /// A money string of at least `min` minor units: not a number is `numeric`, below `min`
    /// (negative included) `min`, any other shape than `10.50` `regex`.
    pub fn money(&mut self, name: &str, required: bool, min: i64) -> Option<i64> {
        let text = self.string(name, 255, required)?;
        let unsigned = text.strip_prefix('-').unwrap_or(&text);
        let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, "0"));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let value = parse_money(&text);
        if value.is_some_and(|v| v >= min) {
            return value;
        }
        if !(digits(whole) && digits(fraction)) {
            self.fail(name, "numeric", format!("The {name} must be a number."));
        } else if value.is_some() || text.starts_with('-') {
            // Laravel writes the rule's argument as given: `min:0`, `min:0.01`.
            let least = if min % 100 == 0 {
                (min / 100).to_string()
            } else {
                money(min)
            };
            self.fail(
                name,
                &format!("min:{least}"),
                format!("The {name} must be at least {least}."),
            );
        } else {
            self.fail(
                name,
                "regex",
                format!("The {name} format is invalid (like 10.50)."),
            );
        }
        None
    }

    /// A currency JTL serves: ISO 4217 with two decimals.
    pub fn currency(&mut self, name: &str, required: bool) -> Option<Currency> {
        let text = self.string(name, 255, required)?;
        match Currency::parse(&text).filter(|c| c.exponent() == EXPONENT && text.len() == 3) {
            Some(c) => Some(c),
            None => {
                self.fail(
                    name,
                    "valid_currency",
                    "Currency must be a valid currency code".into(),
                );
                None
            }
        }
    }

    pub fn integer(&mut self, name: &str, min: i64, max: i64) -> Option<i64> {
        match self.take(name, false)? {
            Value::Number(n) => match n.as_i64() {
                Some(v) if v < min => {
                    self.fail(
                        name,
                        &format!("min:{min}"),
                        format!("The {name} must be at least {min}."),
                    );
                    None
                }
                Some(v) if v > max => {
                    self.fail(
                        name,
                        &format!("max:{max}"),
                        format!("The {name} may not be greater than {max}."),
                    );
                    None
                }
                Some(v) => Some(v),
                None => {
                    self.fail(name, "integer", format!("The {name} must be an integer."));
                    None
                }
            },
            _ => {
                self.fail(name, "integer", format!("The {name} must be an integer."));
                None
            }
        }
    }

    pub fn boolean(&mut self, name: &str) -> Option<bool> {
        match self.take(name, false)? {
            Value::Bool(b) => Some(b),
            _ => {
                self.fail(
                    name,
                    "boolean",
                    format!("The {name} field must be true or false."),
                );
                None
            }
        }
    }

    /// One of `values`.
    pub fn choice(&mut self, name: &str, values: &[&str], required: bool) -> Option<String> {
        let text = self.string(name, 64, required)?;
        if values.contains(&text.as_str()) {
            return Some(text);
        }
        self.fail(name, "in", format!("The selected {name} is invalid."));
        None
    }

    /// Fields the client may send back but the server owns: dropped.
    pub fn ignore(&mut self, names: &[&str]) {
        for name in names {
            self.map.remove(*name);
        }
    }

    /// Ends reading: a field left over is not one this operation takes.
    pub fn finish(mut self) -> Result<(), JtlError> {
        let mut left: Vec<String> = self.map.keys().cloned().collect();
        left.sort();
        for name in left {
            if !self.has_error(&name) {
                self.fail(
                    &name,
                    "prohibited",
                    format!("The {name} field is prohibited."),
                );
            }
        }
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(JtlError::invalid(self.operation, self.errors))
        }
    }
}

/// What a voucher object carries beyond JTL's base voucher.
pub enum Extra<'a> {
    None,
    /// `remaining_amount` and `deletable` (a single voucher, the list).
    Balance,
    /// `code` and `pin` (`/complete`, and the answer to a create).
    Secrets(Option<&'a str>),
}

pub fn voucher(v: &Voucher, offset: UtcOffset, extra: Extra) -> Value {
    let at = |t: i64| format_rfc3339(t, offset);
    let mut body = json!({
        "id": v.id,
        "client_id": v.client_id,
        "sku": v.sku,
        "batch": v.batch,
        "amount": money(v.amount.unwrap_or(0)),
        "currency": v.currency.as_str(),
        "valid_until": v.valid_until.map(at),
        "validity_value": v.validity.map(|(n, _)| n),
        "validity_interval": v.validity.map(|(_, unit)| unit.as_str()),
        "status": v.status.as_str(),
        "type": v.medium.as_str(),
        "taxable": v.taxable,
        "tax_rate": v.tax_rate.map(|r| format_decimal_trimmed(r, PERCENT_SCALE)),
        "order_number": v.order_number,
        "data": v.data,
        "created_at": at(v.created_at),
        "updated_at": at(v.updated_at),
    });
    match extra {
        Extra::None => {}
        Extra::Balance => {
            body["remaining_amount"] = json!(money(v.remaining.unwrap_or(0)));
            body["deletable"] = json!(v.deletable());
        }
        Extra::Secrets(pin) => {
            body["code"] = json!(v.code.as_str());
            body["pin"] = json!(pin);
        }
    }
    body
}

pub fn charge(e: &Entry, offset: UtcOffset) -> Value {
    let at = format_rfc3339(e.created_at, offset);
    json!({
        "id": e.id,
        "voucher_id": e.voucher_id,
        "client_id": e.client_id,
        "type": e.kind.as_str(),
        "amount": money(e.amount),
        "order_number": e.order_number,
        "created_at": at,
        "updated_at": at,
    })
}

/// A reservation of `v` taken by `client_id`.
pub fn reservation(
    hold: &Reservation,
    client_id: &str,
    updated_at: i64,
    v: &Voucher,
    offset: UtcOffset,
) -> Value {
    json!({
        "id": hold.id,
        "voucher_id": hold.voucher_id,
        "voucher_taxable": v.taxable,
        "voucher_tax_rate": v.tax_rate.map(|r| format_decimal_trimmed(r, PERCENT_SCALE)),
        "client_id": client_id,
        "amount": money(hold.amount),
        "valid_until": format_rfc3339(hold.expires_at, offset),
        "created_at": format_rfc3339(hold.created_at, offset),
        "updated_at": format_rfc3339(updated_at, offset),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_two_decimals_in_four_to_nine_characters() {
        assert_eq!(parse_money("10.53"), Some(1053));
        assert_eq!(parse_money("0.01"), Some(1));
        assert_eq!(parse_money("999999.99"), Some(MAX_MINOR));
        for bad in [
            "1000000.00",
            "10",
            "10.5",
            "10.555",
            ".50",
            "-1.00",
            "1,00",
            "1.0a",
            "",
            "+1.00",
            " 1.00",
        ] {
            assert_eq!(parse_money(bad), None, "{bad:?}");
        }
        assert_eq!(money(1053), "10.53");
        assert_eq!(money(0), "0.00");
    }
}
