//! Authentication and authorisation: OAuth2 client credentials, bearer tokens, scopes, and
//! the throttles that slow down guessing.

pub mod connect_pin;
pub mod oauth;
pub mod rate;
pub mod scope;
pub mod secret;
pub mod throttle;
pub mod token;
