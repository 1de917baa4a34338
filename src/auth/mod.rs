//! Authentication and authorisation: OAuth2 client credentials, bearer tokens, scopes, and
//! the throttles that slow down guessing.

pub(crate) mod connect_pin;
pub(crate) mod rate;
pub mod scope;
pub mod secret;
pub(crate) mod throttle;
pub(crate) mod token;
