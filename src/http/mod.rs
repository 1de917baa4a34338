//! HTTP: the server loop and its limits, the route table, request parsing and replies.

pub mod host;
pub mod request;
pub mod response;
pub mod router;
pub mod server;
