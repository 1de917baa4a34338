//! The one integration-test binary (`cargo test --test integration`): every module talks HTTP
//! to the real `vouchd` executable started by `common::TestServer`.

mod common;

mod access_log;
mod admin_access;
mod auth;
mod backup;
mod cli;
mod code_tenancy;
mod copy;
mod crash;
mod csv;
mod demo;
mod dialect_fuzz;
mod dialects;
mod hardening;
mod http;
mod http_clients;
mod http_load;
mod http_slow;
mod jtl;
mod layers;
mod list;
mod login_throttle;
mod metrics;
mod money;
mod openapi;
mod postgres;
mod readme;
mod revocation;
mod shutdown;
mod stats;
mod strict_input;
mod ui;
mod vendor_clients;
mod vouchers;
mod webhooks;
