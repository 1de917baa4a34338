//! The domain: pure types and rules about money, codes, time, vouchers and list queries.
//!
//! Nothing here knows of HTTP or SQL; the store applies these rules inside its transactions
//! and the API layers render these types in their own shapes.

pub mod clock;
pub mod code;
pub mod field;
pub mod ledger;
pub mod money;
pub mod query;
pub mod scope;
pub mod voucher;
