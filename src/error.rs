//! One error type for every request, its HTTP status, and its RFC 9457 problem+json body.
//!
//! What the client reads (`detail`) and what the log keeps are separate: an internal error logs
//! its cause and tells the client only that something went wrong.

use crate::domain::query::ParamError;
use crate::domain::voucher::Refusal;
use crate::store::error::{Conflict, Invalid, StoreError};
use crate::web::response::Reply;
use serde_json::json;

pub use crate::domain::field::FieldError;

#[derive(Debug)]
pub enum ApiError {
    /// 400: the body or a header is not what the route reads.
    Malformed(String),
    /// 400: a query parameter is unknown or malformed.
    Parameter(ParamError),
    /// 401 without credentials.
    Unauthenticated,
    /// 401: the bearer token is unknown, expired or revoked.
    InvalidToken,
    /// 403: the token lacks this scope.
    InsufficientScope(&'static str),
    /// 403 with a stable code: a dialect that forbids what the native API calls a conflict.
    Forbidden(&'static str, String),
    NotFound,
    MethodNotAllowed(&'static str),
    /// 409 with a stable code: duplicates, deletions of used vouchers, replays in flight.
    Conflict(&'static str, String),
    /// 409: a voucher rule refused a redemption.
    Refused(Refusal),
    PayloadTooLarge,
    UnsupportedMediaType(&'static str),
    /// 422: field values are invalid.
    Invalid(Vec<FieldError>),
    /// 422 with a code of its own (e.g. an idempotency key reused with another body).
    Unprocessable(&'static str, String),
    /// 429: slow down for this many seconds.
    TooManyRequests(u64),
    /// 503: the store could not answer in time.
    Unavailable(u64),
    /// 500: logged with its cause, shown generically.
    Internal(String),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::Invalid(vec![FieldError::new(field, message)])
    }

    pub fn internal(context: &str, err: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(format!("{context}: {err}"))
    }

    pub fn status(&self) -> u16 {
        match self {
            ApiError::Malformed(_) | ApiError::Parameter(_) => 400,
            ApiError::Unauthenticated | ApiError::InvalidToken => 401,
            ApiError::InsufficientScope(_) | ApiError::Forbidden(..) => 403,
            ApiError::NotFound => 404,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::Conflict(..) | ApiError::Refused(_) => 409,
            ApiError::PayloadTooLarge => 413,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::Invalid(_) | ApiError::Unprocessable(..) => 422,
            ApiError::TooManyRequests(_) => 429,
            ApiError::Internal(_) => 500,
            ApiError::Unavailable(_) => 503,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Malformed(_) => "malformed_request",
            ApiError::Parameter(_) => "invalid_parameter",
            ApiError::Unauthenticated => "unauthorized",
            ApiError::InvalidToken => "invalid_token",
            ApiError::InsufficientScope(_) => "insufficient_scope",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Conflict(code, _)
            | ApiError::Forbidden(code, _)
            | ApiError::Unprocessable(code, _) => code,
            ApiError::Refused(refusal) => refusal.code(),
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Invalid(_) => "validation_failed",
            ApiError::TooManyRequests(_) => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }

    fn title(&self) -> &'static str {
        match self.status() {
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            409 => "Conflict",
            413 => "Content Too Large",
            415 => "Unsupported Media Type",
            422 => "Unprocessable Content",
            429 => "Too Many Requests",
            503 => "Service Unavailable",
            _ => "Internal Server Error",
        }
    }

    pub fn detail(&self) -> String {
        match self {
            ApiError::Malformed(detail)
            | ApiError::Conflict(_, detail)
            | ApiError::Forbidden(_, detail)
            | ApiError::Unprocessable(_, detail) => detail.clone(),
            ApiError::Parameter(p) => format!("Query parameter {}: {}.", p.param, p.message),
            ApiError::Unauthenticated => "A bearer token is required.".into(),
            ApiError::InvalidToken => "The access token is unknown, expired or revoked.".into(),
            ApiError::InsufficientScope(scope) => {
                format!("The access token lacks the scope {scope}.")
            }
            ApiError::NotFound => "No such resource.".into(),
            ApiError::MethodNotAllowed(allow) => format!("Allowed methods: {allow}."),
            ApiError::Refused(refusal) => refusal.message(),
            ApiError::PayloadTooLarge => "The body exceeds 1 MiB.".into(),
            ApiError::UnsupportedMediaType(wanted) => format!("The body must be {wanted}."),
            ApiError::Invalid(errors) => {
                let fields: Vec<String> = errors.iter().map(FieldError::label).collect();
                format!("Invalid value for {}.", fields.join(", "))
            }
            ApiError::TooManyRequests(secs) => format!("Too many requests; retry in {secs} s."),
            ApiError::Unavailable(secs) => format!("The store is busy; retry in {secs} s."),
            ApiError::Internal(_) => {
                "Something went wrong on the server; it has been logged.".into()
            }
        }
    }

    /// The log line for errors the operator should see (internal ones), else `None`.
    pub fn log_message(&self) -> Option<&str> {
        match self {
            ApiError::Internal(cause) => Some(cause),
            _ => None,
        }
    }

    /// Renders the problem+json body, status and the headers this error needs.
    pub fn to_reply(&self) -> Reply {
        let mut body = json!({
            "type": "about:blank",
            "title": self.title(),
            "status": self.status(),
            "detail": self.detail(),
            "code": self.code(),
        });
        let errors: Vec<FieldError> = match self {
            ApiError::Invalid(errors) => errors.clone(),
            ApiError::Parameter(p) => vec![FieldError::new(p.param.clone(), p.message.clone())],
            _ => Vec::new(),
        };
        if !errors.is_empty() {
            body["errors"] = errors
                .iter()
                .map(|e| match e.row {
                    Some(row) => json!({"row": row, "field": e.field, "message": e.message}),
                    None => json!({"field": e.field, "message": e.message}),
                })
                .collect();
        }
        let mut reply = Reply::json_with_type(self.status(), &body, "application/problem+json");
        match self {
            ApiError::Unauthenticated => reply.headers.push(("WWW-Authenticate", "Bearer realm=\"vouchd\"".into())),
            ApiError::InvalidToken => reply.headers.push((
                "WWW-Authenticate",
                "Bearer realm=\"vouchd\", error=\"invalid_token\", error_description=\"The access token is unknown, expired or revoked\"".into(),
            )),
            ApiError::InsufficientScope(scope) => reply.headers.push((
                "WWW-Authenticate",
                format!("Bearer realm=\"vouchd\", error=\"insufficient_scope\", scope=\"{scope}\""),
            )),
            ApiError::MethodNotAllowed(allow) => reply.headers.push(("Allow", (*allow).into())),
            ApiError::TooManyRequests(secs) | ApiError::Unavailable(secs) => {
                reply.headers.push(("Retry-After", secs.to_string()))
            }
            _ => {}
        }
        reply
    }
}

/// Where the store's kinds of failure meet HTTP: the status, the stable code and the sentence.
impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        match err {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::Conflict(conflict) => conflict_error(conflict),
            StoreError::Refused(refusal) => ApiError::Refused(refusal),
            StoreError::Invalid(Invalid::NotAChargeOfThisVoucher) => {
                ApiError::invalid("refers_to", "must be the id of a charge on this voucher")
            }
            StoreError::Invalid(Invalid::NoRoomForCodes {
                room,
                length,
                prefix,
            }) => ApiError::invalid(
                "count",
                format!("at most {room} more codes of length {length} with prefix {prefix:?} can be made; use longer codes"),
            ),
            StoreError::Rows(errors) => ApiError::Invalid(errors),
            StoreError::Busy | StoreError::Unavailable => ApiError::Unavailable(1),
            StoreError::Stopped(why) => ApiError::Internal(why),
            StoreError::Engine { context, source } => ApiError::internal(context, source),
            StoreError::Bug(what) => ApiError::Internal(what.into()),
        }
    }
}

fn conflict_error(conflict: Conflict) -> ApiError {
    let (code, detail) = match conflict {
        Conflict::DuplicateCode(code) => ("duplicate_code", format!("The code {code} is taken.")),
        Conflict::CodeSpaceExhausted => (
            "code_space_exhausted",
            "No free code was found; use longer codes.".into(),
        ),
        Conflict::AmbiguousCode(code) => (
            "ambiguous_code",
            format!("Vouchers of several groups have the code {code}; address one by its id."),
        ),
        Conflict::DuplicateGroupName(name) => (
            "duplicate_name",
            format!("A group named {name:?} exists already."),
        ),
        Conflict::DiscountAfterUse => (
            "voucher_used",
            "Only the discount of a discount voucher that has not been used can change.".into(),
        ),
        Conflict::NotDeletable => (
            "not_deletable",
            "The voucher has ledger entries and cannot be deleted.".into(),
        ),
        Conflict::RefundExceedsCharge => (
            "refund_exceeds_charge",
            "The refund exceeds what is left to refund of that charge.".into(),
        ),
        Conflict::RefundExceedsAmount => (
            "refund_exceeds_charge",
            "The refund would exceed the voucher's amount.".into(),
        ),
        Conflict::ReservationExpired => {
            ("reservation_expired", "The reservation has expired.".into())
        }
        Conflict::ReservationNotHeld(status) => (
            "reservation_not_held",
            format!("The reservation is {status} already."),
        ),
        Conflict::CaptureExceedsHold => (
            "capture_exceeds_hold",
            "The capture exceeds the held amount.".into(),
        ),
    };
    ApiError::Conflict(code, detail)
}

impl From<ParamError> for ApiError {
    fn from(err: ParamError) -> ApiError {
        ApiError::Parameter(err)
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> ApiError {
        ApiError::Refused(refusal)
    }
}
