//! The one integration-test binary (`cargo test --test integration`): every module talks HTTP
//! to the real `vouchd` executable started by `common::TestServer`.

mod common;

mod access_log;
mod auth;
mod backup;
mod crash;
mod csv;
mod demo;
mod dialects;
mod hardening;
mod jtl;
mod list;
mod metrics;
mod money;
mod openapi;
mod shutdown;
mod stats;
mod ui;
mod vouchers;
