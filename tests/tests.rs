//! The one integration-test binary (`cargo test --test integration`): every module talks HTTP
//! to the real `vouchd` executable started by `common::TestServer`.

mod common;

mod auth;
mod crash;
mod csv;
mod demo;
mod dialects;
mod list;
mod money;
mod stats;
mod ui;
mod vouchers;
