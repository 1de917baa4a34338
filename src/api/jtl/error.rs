//! JTL's error body, `{status, code, message}` plus `errors: [{code, property, rule, message}]`
//! on a 422, and how vouchd's own errors and refusals read in it.
//!
//! Codes follow JTL's `<RESOURCE>.<OPERATION>.<FIELD>.<RULE>` pattern with Laravel's rule
//! names and messages. Only a few are confirmed by JTL's documents; docs/jtl.md lists the
//! ones vouchd chose.

use crate::domain::voucher::Refusal;
use crate::error::ApiError;
use crate::web::response::Reply;
use serde::Serialize;
use serde_json::json;

/// One field that failed a rule.
#[derive(Clone, Debug, Serialize)]
pub struct Violation {
    pub code: String,
    pub property: String,
    pub rule: String,
    pub message: String,
}

/// A JTL error, boxed: results carry it on every route and it is large.
#[derive(Debug)]
pub struct JtlError(Box<Problem>);

/// What a JTL error body says, and the headers and log line that go with it.
#[derive(Debug)]
pub struct Problem {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub errors: Vec<Violation>,
    headers: Vec<(&'static str, String)>,
    /// The cause of an internal error, for the server's log only.
    pub log: Option<String>,
}

impl std::ops::Deref for JtlError {
    type Target = Problem;
    fn deref(&self) -> &Problem {
        &self.0
    }
}

impl std::ops::DerefMut for JtlError {
    fn deref_mut(&mut self) -> &mut Problem {
        &mut self.0
    }
}

impl JtlError {
    pub fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> JtlError {
        JtlError(Box::new(Problem {
            status,
            code: code.into(),
            message: message.into(),
            errors: Vec::new(),
            headers: Vec::new(),
            log: None,
        }))
    }

    /// `VOUCHER.NOT_FOUND`: "The requested Voucher was not found."
    pub fn not_found(resource: &str) -> JtlError {
        let name = match resource {
            "VOUCHER" => "Voucher",
            "RESERVATION" => "Reservation",
            "CHARGE" => "Charge",
            _ => "resource",
        };
        JtlError::new(
            404,
            format!("{resource}.NOT_FOUND"),
            format!("The requested {name} was not found."),
        )
    }

    /// A 422 for `operation` (`VOUCHER.CREATE`) naming every violation.
    pub fn invalid(operation: &str, errors: Vec<Violation>) -> JtlError {
        let mut e = JtlError::new(
            422,
            format!("{operation}.UNPROCESSABLE_ENTITY"),
            "The given data was invalid.",
        );
        e.errors = errors;
        e
    }

    /// A business rule's refusal: 422 with its own code.
    pub fn rule(code: impl Into<String>, message: impl Into<String>) -> JtlError {
        JtlError::new(422, code, message)
    }

    /// vouchd's error read as JTL's; a 404 is `resource`'s.
    pub fn from_api(err: ApiError, resource: &str) -> JtlError {
        let message = err.detail();
        let mut e = match &err {
            ApiError::NotFound => return JtlError::not_found(resource),
            ApiError::Unauthenticated | ApiError::InvalidToken => {
                JtlError::new(401, "AUTH.UNAUTHENTICATED", "Unauthenticated.")
            }
            ApiError::InsufficientScope(scope) => JtlError::new(
                403,
                "AUTH.SCOPE_MISSING",
                format!("The access token lacks the scope {scope}."),
            ),
            ApiError::Refused(refusal) => refused(refusal),
            ApiError::Conflict(code, _) => JtlError::rule(conflict_code(resource, code), message),
            ApiError::Invalid(fields) => JtlError::invalid(
                &format!("{resource}.REQUEST"),
                fields
                    .iter()
                    .map(|f| {
                        violation(
                            &format!("{resource}.REQUEST"),
                            &f.field,
                            "invalid",
                            &f.message,
                        )
                    })
                    .collect(),
            ),
            ApiError::Parameter(p) => JtlError::invalid(
                &format!("{resource}.LIST"),
                vec![violation(
                    &format!("{resource}.LIST"),
                    &p.param,
                    "invalid",
                    &format!("The {} {}.", p.param, p.message),
                )],
            ),
            _ => JtlError::new(
                err.status(),
                format!("REQUEST.{}", err.code().to_ascii_uppercase()),
                message,
            ),
        };
        e.log = err.log_message().map(str::to_string);
        if e.status == 500 {
            e.message = "Server Error".into();
        }
        // Keep the headers vouchd's own reply has (WWW-Authenticate, Allow, Retry-After).
        e.headers = err
            .to_reply()
            .headers
            .into_iter()
            .filter(|(name, _)| matches!(*name, "WWW-Authenticate" | "Allow" | "Retry-After"))
            .collect();
        e
    }

    pub fn to_reply(&self) -> Reply {
        let mut body = json!({"status": self.status, "code": self.code, "message": self.message});
        if !self.errors.is_empty() {
            body["errors"] = json!(self.errors);
        }
        let mut reply = Reply::json(self.status, &body);
        reply.headers.extend(self.headers.iter().cloned());
        reply
    }
}

impl From<ApiError> for JtlError {
    fn from(err: ApiError) -> JtlError {
        JtlError::from_api(err, "VOUCHER")
    }
}

impl From<crate::store::StoreError> for JtlError {
    fn from(err: crate::store::StoreError) -> JtlError {
        JtlError::from_api(err.into(), "VOUCHER")
    }
}

/// `{operation}.{PROPERTY}.{RULE}[:arg]` and its message.
pub fn violation(operation: &str, property: &str, rule: &str, message: &str) -> Violation {
    let field: String = property
        .replace(['.', '['], "_")
        .replace(']', "")
        .trim_matches('_')
        .to_ascii_uppercase();
    Violation {
        code: format!("{operation}.{field}.{}", rule.to_ascii_uppercase()),
        property: property.to_string(),
        rule: rule.split(':').next().unwrap_or(rule).to_string(),
        message: message.to_string(),
    }
}

fn refused(refusal: &Refusal) -> JtlError {
    let code = match refusal {
        Refusal::Inactive => "VOUCHER.INACTIVE",
        Refusal::Cancelled => "VOUCHER.CANCELLED",
        Refusal::NotYetValid => "VOUCHER.NOT_YET_VALID",
        Refusal::Expired => "VOUCHER.EXPIRED",
        Refusal::CurrencyMismatch => "VOUCHER.CURRENCY_MISMATCH",
        Refusal::RestrictionMismatch(_) => "VOUCHER.RESTRICTED",
        Refusal::Used => "VOUCHER.USED",
        Refusal::InsufficientFunds => "VOUCHER.INSUFFICIENT_BALANCE",
        Refusal::WrongKind(_) => "VOUCHER.WRONG_TYPE",
        Refusal::CreditLimit => "VOUCHER.RECHARGE.LIMIT_EXCEEDED",
    };
    JtlError::rule(code, refusal.message())
}

fn conflict_code(resource: &str, code: &str) -> String {
    match code {
        "reservation_expired" => "RESERVATION.EXPIRED".into(),
        "reservation_not_held" => "RESERVATION.NOT_ACTIVE".into(),
        "capture_exceeds_hold" => "RESERVATION.AMOUNT_EXCEEDED".into(),
        "refund_exceeds_charge" => "CHARGE.REFUND.AMOUNT_EXCEEDED".into(),
        "not_deletable" => "VOUCHER.DELETE.NOT_DELETABLE".into(),
        other => format!("{resource}.{}", other.to_ascii_uppercase()),
    }
}
