//! The store's own errors: what went wrong in domain terms, never in a client's wording.
//!
//! `From<StoreError> for ApiError` (in `crate::error`) is the one place where these kinds meet
//! HTTP statuses, codes and the sentences clients read. An engine's error is kept whole as the
//! `source()`, so the log shows what the engine said.

use crate::domain::field::FieldError;
use crate::domain::ledger::{Breach, HoldStatus};
use crate::domain::voucher::Refusal;
use crate::store::sql::DbError;
use std::fmt;

#[derive(Debug)]
pub enum StoreError {
    /// No such voucher, reservation, entry … (or one the caller's group may not see).
    NotFound,
    /// The operation contradicts what is stored.
    Conflict(Conflict),
    /// A voucher rule refused a redemption.
    Refused(Refusal),
    /// A value the store cannot take.
    Invalid(Invalid),
    /// An import's bad rows, each with its row number.
    Rows(Vec<FieldError>),
    /// The database is locked by another process (the CLI, a backup): try again shortly.
    Busy,
    /// The writer did not take the write in time, or is gone: it was not done.
    Unavailable,
    /// The group's writes are lost: its commit failed, or writes stopped after a failed sync of
    /// the WAL. The text is for the operator's log (what failed, what to do).
    Stopped(String),
    /// The engine failed; `context` says at what.
    Engine {
        context: &'static str,
        source: DbError,
    },
    /// A broken invariant of the store's own (a bug), with what broke.
    Bug(&'static str),
}

/// What a write contradicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// The code is held by another voucher of the group.
    DuplicateCode(String),
    /// A batch found no free code of its shape.
    CodeSpaceExhausted,
    /// Vouchers of several groups hold the code (only an admin, who sees them all, meets this).
    AmbiguousCode(String),
    /// A group of that name exists.
    DuplicateGroupName(String),
    /// The discount of a used (or a value) voucher cannot change.
    DiscountAfterUse,
    /// A voucher with ledger entries cannot be deleted.
    NotDeletable,
    /// More than is left to refund of the charge.
    RefundExceedsCharge,
    /// The refund would take the balance above the voucher's amount.
    RefundExceedsAmount,
    /// The reservation's time ran out.
    ReservationExpired,
    /// The reservation was captured or released already (its status named).
    ReservationNotHeld(HoldStatus),
    /// A capture above the held amount.
    CaptureExceedsHold,
}

/// A value the store cannot take, named by what it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// A refund's charge is not a charge of this voucher.
    NotAChargeOfThisVoucher,
    /// A batch larger than its code shape has room for: at most `room` more.
    NoRoomForCodes {
        room: u64,
        length: usize,
        prefix: String,
    },
}

impl StoreError {
    pub(crate) fn engine(context: &'static str, source: impl Into<DbError>) -> StoreError {
        let source = source.into();
        if source.is_busy() {
            return StoreError::Busy;
        }
        StoreError::Engine { context, source }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> StoreError {
        StoreError::engine("database", err)
    }
}

impl From<DbError> for StoreError {
    fn from(err: DbError) -> StoreError {
        StoreError::engine("database", err)
    }
}

impl From<Breach> for StoreError {
    fn from(breach: Breach) -> StoreError {
        StoreError::Conflict(match breach {
            Breach::RefundExceedsCharge => Conflict::RefundExceedsCharge,
            Breach::CaptureExceedsHold => Conflict::CaptureExceedsHold,
            Breach::HoldExpired => Conflict::ReservationExpired,
            Breach::HoldNotHeld(status) => Conflict::ReservationNotHeld(status),
            Breach::DiscountAfterUse => Conflict::DiscountAfterUse,
        })
    }
}

impl From<Refusal> for StoreError {
    fn from(refusal: Refusal) -> StoreError {
        StoreError::Refused(refusal)
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::NotFound => f.write_str("not found"),
            StoreError::Conflict(c) => write!(f, "conflict: {c:?}"),
            StoreError::Refused(r) => f.write_str(&r.message()),
            StoreError::Invalid(i) => write!(f, "invalid: {i:?}"),
            StoreError::Rows(rows) => write!(f, "{} bad rows", rows.len()),
            StoreError::Busy => f.write_str("the database is busy"),
            StoreError::Unavailable => f.write_str("the writer did not take the write"),
            StoreError::Stopped(why) => f.write_str(why),
            StoreError::Engine { context, source } => write!(f, "{context}: {source}"),
            StoreError::Bug(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Engine { source, .. } => Some(source),
            _ => None,
        }
    }
}
