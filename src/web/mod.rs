//! The exchange handlers and the server share: a decoded [`request::Request`] and the
//! [`response::Reply`] that answers it, with the percent-coding both sides use.
//!
//! It sits below `http` and `api` alike and imports nothing of the crate: `http` frames bytes
//! into a `Request` and puts a `Reply` on the wire, `api` (and `error`, `ui`) read the one and
//! build the other, and neither has to import the other for it. That keeps the arrows between
//! top-level modules one way (`http` → `api`, never back), which `tests/layers.rs` checks. The
//! name is the plain one for what it holds: the web's request/reply pair, not its transport.

pub mod request;
pub mod response;
