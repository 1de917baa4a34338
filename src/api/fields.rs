//! Reading fields out of a JSON object body, collecting every error with its field name.
//!
//! Each getter takes a field out of the map (so what is left at the end is unknown), checks
//! its type and shape, and records a [`FieldError`] instead of failing fast, so one 422 names
//! everything that is wrong.

use crate::domain::clock::{parse_instant, DayEnd};
use crate::domain::money::{parse_decimal, AmountError, Currency, MAX_EXPONENT};
use crate::error::{ApiError, FieldError};
use serde_json::{Map, Value};
use time::UtcOffset;

/// An amount read by [`Fields::later_amount`], to be put in minor units once its currency is
/// known.
#[derive(Clone, Debug)]
pub struct LaterAmount {
    field: &'static str,
    text: String,
}

impl LaterAmount {
    /// The amount in minor units of `currency`, or a 422 naming the field when it has more
    /// decimals than the currency.
    pub fn minor_units(&self, currency: Currency) -> Result<i64, ApiError> {
        parse_decimal(&self.text, currency.exponent())
            .map_err(|e| ApiError::invalid(self.field, e.to_string()))
    }
}

pub struct Fields {
    map: Map<String, Value>,
    pub errors: Vec<FieldError>,
}

/// A field as given: absent, explicitly null, or a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Given<T> {
    Absent,
    Null,
    Value(T),
}

impl<T> Given<T> {
    pub fn value(self) -> Option<T> {
        match self {
            Given::Value(v) => Some(v),
            _ => None,
        }
    }
}

impl Fields {
    pub fn new(map: Map<String, Value>) -> Fields {
        Fields {
            map,
            errors: Vec::new(),
        }
    }

    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    pub fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// Drops fields that are read-only and not taken from a client.
    pub fn ignore(&mut self, names: &[&str]) {
        for name in names {
            self.map.remove(*name);
        }
    }

    fn take(&mut self, name: &str) -> Given<Value> {
        match self.map.remove(name) {
            None => Given::Absent,
            Some(Value::Null) => Given::Null,
            Some(v) => Given::Value(v),
        }
    }

    /// A string of at most `max` characters (after trimming nothing: the text is kept as sent).
    pub fn text(&mut self, name: &str, max: usize) -> Given<String> {
        match self.take(name) {
            Given::Value(Value::String(s)) if s.chars().count() > max => {
                self.error(name, format!("must be at most {max} characters"));
                Given::Absent
            }
            Given::Value(Value::String(s)) => Given::Value(s),
            Given::Value(_) => {
                self.error(name, "must be a string");
                Given::Absent
            }
            Given::Null => Given::Null,
            Given::Absent => Given::Absent,
        }
    }

    /// Free-form data: a string, or any other JSON value stored as its JSON text.
    pub fn data(&mut self, name: &str, max: usize) -> Given<String> {
        match self.take(name) {
            Given::Value(Value::String(s)) => self.limit(name, s, max),
            Given::Value(other) => {
                let text = other.to_string();
                self.limit(name, text, max)
            }
            Given::Null => Given::Null,
            Given::Absent => Given::Absent,
        }
    }

    fn limit(&mut self, name: &str, text: String, max: usize) -> Given<String> {
        if text.len() > max {
            self.error(name, format!("must be at most {max} bytes"));
            return Given::Absent;
        }
        Given::Value(text)
    }

    /// The text of a decimal given as a string or a JSON number (another type is an error).
    fn decimal_text(&mut self, name: &str) -> Given<String> {
        match self.take(name) {
            Given::Value(Value::String(s)) => Given::Value(s),
            Given::Value(Value::Number(n)) => Given::Value(n.to_string()),
            Given::Value(_) => {
                self.error(name, "must be a decimal string or a number");
                Given::Absent
            }
            Given::Null => Given::Null,
            Given::Absent => Given::Absent,
        }
    }

    /// A decimal given as a string or a JSON number, in units of `10^-scale`.
    pub fn decimal(&mut self, name: &str, scale: u8) -> Given<i64> {
        let text = match self.decimal_text(name) {
            Given::Value(text) => text,
            Given::Null => return Given::Null,
            Given::Absent => return Given::Absent,
        };
        match parse_decimal(&text, scale) {
            Ok(v) => Given::Value(v),
            Err(e) => {
                self.error(name, e.to_string());
                Given::Absent
            }
        }
    }

    /// An amount whose currency is not known yet: the voucher's, read inside the write. Its
    /// type, shape, sign, size and zero are checked here with the other fields; its decimals
    /// against the currency by [`LaterAmount::minor_units`].
    pub fn later_amount(&mut self, name: &'static str, allow_zero: bool) -> Given<LaterAmount> {
        let text = match self.decimal_text(name) {
            Given::Value(text) => text,
            Given::Null => return Given::Null,
            Given::Absent => return Given::Absent,
        };
        match parse_decimal(&text, MAX_EXPONENT) {
            Ok(0) if !allow_zero => {
                self.error(name, "must be greater than zero");
                Given::Absent
            }
            Ok(_) | Err(AmountError::TooManyDecimals(_)) => {
                Given::Value(LaterAmount { field: name, text })
            }
            Err(e) => {
                self.error(name, e.to_string());
                Given::Absent
            }
        }
    }

    /// A positive amount of `currency` (zero refused unless `allow_zero`).
    pub fn amount(&mut self, name: &str, currency: Currency, allow_zero: bool) -> Given<i64> {
        let given = self.decimal(name, currency.exponent());
        if let Given::Value(0) = given {
            if !allow_zero {
                self.error(name, "must be greater than zero");
                return Given::Absent;
            }
        }
        given
    }

    /// A whole number within `min..=max`.
    pub fn integer(&mut self, name: &str, min: i64, max: i64) -> Given<i64> {
        match self.take(name) {
            Given::Value(Value::Number(n)) => {
                match n.as_i64().filter(|v| (min..=max).contains(v)) {
                    Some(v) => Given::Value(v),
                    None => {
                        self.error(name, format!("must be a whole number from {min} to {max}"));
                        Given::Absent
                    }
                }
            }
            Given::Value(_) => {
                self.error(name, "must be a number");
                Given::Absent
            }
            Given::Null => Given::Null,
            Given::Absent => Given::Absent,
        }
    }

    pub fn boolean(&mut self, name: &str) -> Given<bool> {
        match self.take(name) {
            Given::Value(Value::Bool(b)) => Given::Value(b),
            Given::Value(_) => {
                self.error(name, "must be true or false");
                Given::Absent
            }
            Given::Null => Given::Null,
            Given::Absent => Given::Absent,
        }
    }

    /// A timestamp (RFC 3339) or a date, which means the start or end of that local day.
    pub fn instant(&mut self, name: &str, offset: UtcOffset, date_means: DayEnd) -> Given<i64> {
        match self.text(name, 64) {
            Given::Value(s) => match parse_instant(&s, offset, date_means) {
                Some(t) => Given::Value(t),
                None => {
                    self.error(name, "must be an RFC 3339 timestamp or a date YYYY-MM-DD");
                    Given::Absent
                }
            },
            Given::Null => Given::Null,
            Given::Absent => Given::Absent,
        }
    }

    /// A text parsed by `parse`, with `expected` as the message when it does not parse.
    pub fn choice<T>(
        &mut self,
        name: &str,
        parse: impl Fn(&str) -> Option<T>,
        expected: &str,
    ) -> Given<T> {
        match self.text(name, 64) {
            Given::Value(s) => match parse(&s) {
                Some(v) => Given::Value(v),
                None => {
                    self.error(name, format!("must be {expected}"));
                    Given::Absent
                }
            },
            Given::Null => Given::Null,
            Given::Absent => Given::Absent,
        }
    }

    /// A nested object, handed out for its own reading.
    pub fn object(&mut self, name: &str) -> Given<Map<String, Value>> {
        match self.take(name) {
            Given::Value(Value::Object(m)) => Given::Value(m),
            Given::Value(_) => {
                self.error(name, "must be an object");
                Given::Absent
            }
            Given::Null => Given::Null,
            Given::Absent => Given::Absent,
        }
    }

    /// A list of strings.
    pub fn texts(&mut self, name: &str, max_items: usize, max_len: usize) -> Given<Vec<String>> {
        match self.take(name) {
            Given::Value(Value::Array(items)) if items.len() <= max_items => {
                let strings: Option<Vec<String>> = items
                    .into_iter()
                    .map(|v| match v {
                        Value::String(s) if s.chars().count() <= max_len => Some(s),
                        _ => None,
                    })
                    .collect();
                match strings {
                    Some(s) => Given::Value(s),
                    None => {
                        self.error(
                            name,
                            format!("must be a list of strings of at most {max_len} characters"),
                        );
                        Given::Absent
                    }
                }
            }
            Given::Value(_) => {
                self.error(
                    name,
                    format!("must be a list of at most {max_items} strings"),
                );
                Given::Absent
            }
            Given::Null => Given::Null,
            Given::Absent => Given::Absent,
        }
    }

    /// A required field: records "is required" when absent or null.
    pub fn required<T>(&mut self, name: &str, given: Given<T>) -> Option<T> {
        match given {
            Given::Value(v) => Some(v),
            _ => {
                if !self.errors.iter().any(|e| e.field == name) {
                    self.error(name, "is required");
                }
                None
            }
        }
    }

    /// Ends reading: any field left is unknown. Returns the collected errors as a 422.
    pub fn finish(mut self) -> Result<(), ApiError> {
        let mut unknown: Vec<String> = self.map.keys().cloned().collect();
        unknown.sort();
        for name in unknown {
            self.error(&name, "is not a known field");
        }
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Invalid(self.errors))
        }
    }
}
