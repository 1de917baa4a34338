//! The native ledger routes: charges, uses, refunds, reservations and validate.

use super::Ctx;
use crate::error::ApiError;
use crate::http::response::Reply;

pub fn list_charges(_ctx: &mut Ctx, _id: &str) -> Result<Reply, ApiError> {
    Err(ApiError::NotFound)
}
pub fn post_charge(_ctx: &mut Ctx, _id: &str) -> Result<Reply, ApiError> {
    Err(ApiError::NotFound)
}
pub fn reserve(_ctx: &mut Ctx, _id: &str) -> Result<Reply, ApiError> {
    Err(ApiError::NotFound)
}
pub fn capture(_ctx: &mut Ctx, _id: &str, _rid: &str) -> Result<Reply, ApiError> {
    Err(ApiError::NotFound)
}
pub fn release(_ctx: &mut Ctx, _id: &str, _rid: &str) -> Result<Reply, ApiError> {
    Err(ApiError::NotFound)
}
pub fn validate(_ctx: &mut Ctx) -> Result<Reply, ApiError> {
    Err(ApiError::NotFound)
}
