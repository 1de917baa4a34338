//! JSON request bodies, read strictly: every route's body goes through [`parse_object`].
//!
//! serde_json keeps the last of two equal keys in an object (`{"amount":"1.00",
//! "amount":"999.00"}` reads as 999.00), so what one reader of a body sees may not be what a
//! proxy, a log or a signature in front of vouchd saw. A key given twice is refused instead,
//! at any depth, with the key's path in the message.
//!
//! A string (or key) holding a NUL character (`\u0000`) is refused too, by its path: no text
//! vouchd keeps may hold one (PostgreSQL's text cannot), so both engines answer it alike.

use crate::error::ApiError;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

/// The body as a JSON object: 400 for malformed JSON, another top-level value, a key given
/// twice in one object, or a NUL character in a string or key.
pub fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let map = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return Err(ApiError::Malformed(
                "The body must be a JSON object.".into(),
            ))
        }
        Err(err) => {
            return Err(ApiError::Malformed(format!(
                "The body is not valid JSON: {err}."
            )))
        }
    };
    match refused(body) {
        Some(Refusal::Twice(path)) => Err(ApiError::Malformed(format!(
            "The body gives the key \"{path}\" more than once; each key may appear once."
        ))),
        Some(Refusal::Nul(path)) => Err(ApiError::Malformed(format!(
            "\"{path}\" holds a NUL character (\\u0000), which no text in vouchd may hold."
        ))),
        None => Ok(map),
    }
}

/// What [`refused`] found first.
enum Refusal {
    /// The path of a key an object holds twice.
    Twice(String),
    /// The path of a string holding a NUL character (or of a key holding one).
    Nul(String),
}

/// The path (`amount`, `discount.value`, `items[2].code`) of the first key that an object in
/// this (valid) JSON text holds twice, or of the first string or key holding a NUL.
fn refused(body: &[u8]) -> Option<Refusal> {
    let found = RefCell::new(None);
    let mut reader = serde_json::Deserializer::from_slice(body);
    let walk = Walk {
        path: String::new(),
        found: &found,
    };
    // The only errors a valid text can give here are the ones a refusal raises.
    let _ = walk.deserialize(&mut reader);
    found.into_inner()
}

/// A visitor that reads a JSON value without keeping it, noting the first repeated key.
struct Walk<'f> {
    path: String,
    found: &'f RefCell<Option<Refusal>>,
}

impl Walk<'_> {
    fn child(&self, path: String) -> Walk<'_> {
        Walk {
            path,
            found: self.found,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        if s.contains('\0') {
            *self.found.borrow_mut() = Some(Refusal::Nul(self.path));
            return Err(E::custom("a NUL character"));
        }
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        while seq
            .next_element_seed(self.child(format!("{}[{i}]", self.path)))?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if key.contains('\0') {
                *self.found.borrow_mut() = Some(Refusal::Nul(path));
                return Err(de::Error::custom("a NUL character"));
            }
            if !seen.insert(key) {
                *self.found.borrow_mut() = Some(Refusal::Twice(path));
                return Err(de::Error::custom("a key is given twice"));
            }
            map.next_value_seed(self.child(path))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused_key(body: &str) -> Option<String> {
        match parse_object(body.as_bytes()) {
            Err(ApiError::Malformed(detail)) => Some(detail),
            Err(other) => panic!("{body}: {other:?}"),
            Ok(_) => None,
        }
    }

    #[test]
    fn a_key_given_twice_is_refused_at_any_depth_by_its_path() {
        for (body, path) in [
            (r#"{"amount":"1.00","amount":"999.00"}"#, "amount"),
            (r#"{"a":1,"b":2,"a":1}"#, "a"),
            (
                r#"{"discount":{"type":"money","value":1,"value":2}}"#,
                "discount.value",
            ),
            (r#"{"x":[{"k":1},{"k":1,"k":2}]}"#, "x[1].k"),
            (r#"{"a\u0062":1,"ab":2}"#, "ab"),
            (r#"{"":1,"":2}"#, ""),
        ] {
            let detail = refused_key(body).unwrap_or_else(|| panic!("{body} was taken"));
            assert!(detail.contains(&format!("\"{path}\"")), "{body}: {detail}");
        }
    }

    #[test]
    fn a_nul_character_in_a_string_or_key_is_refused_by_its_path() {
        for (body, path) in [
            (r#"{"note":"a\u0000b"}"#, "note"),
            (r#"{"x":[{"k":"ok"},{"k":"\u0000"}]}"#, "x[1].k"),
            (r#"{"data":{"a\u0000":1}}"#, "data.a\u{0}"),
        ] {
            let detail = refused_key(body).unwrap_or_else(|| panic!("{body} was taken"));
            assert!(detail.contains(&format!("\"{path}\"")), "{body}: {detail}");
            assert!(detail.contains("NUL"), "{body}: {detail}");
        }
        assert!(refused_key(r#"{"note":"a\u0001b"}"#).is_none());
    }

    #[test]
    fn distinct_keys_numbers_and_nesting_are_taken_as_they_were() {
        for body in [
            r#"{}"#,
            r#"{"amount":"1.00","currency":"EUR"}"#,
            r#"{"amount":12.50,"n":-1,"big":123456789012345678901234567890,"e":1e3}"#,
            r#"{"a":{"k":1},"b":{"k":1},"c":[{"k":1},{"k":2}],"d":[[1,2],[]],"e":null}"#,
            r#"{"A":1,"a":2}"#,
        ] {
            let map = parse_object(body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e:?}"));
            let again: Value = serde_json::from_str(body).expect("valid JSON");
            assert_eq!(Value::Object(map), again, "{body}");
        }
        let map = parse_object(br#"{"amount":12.50}"#).expect("a number");
        assert_eq!(map["amount"].to_string(), "12.50");
        assert!(refused_key("[1]").is_some_and(|d| d.contains("JSON object")));
        assert!(refused_key("{").is_some_and(|d| d.contains("not valid JSON")));
    }
}
