//! The scopes live in the domain (the store keeps them too); their names stay here as well.

pub use crate::domain::scope::*;
