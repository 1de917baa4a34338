//! vouchd: a self-hosted voucher server in one executable, its data in one SQLite file.
//!
//! Requests flow one way: `http` → `api` → `store`, all using `domain`, which uses nothing;
//! the request and reply types are in `web`, below `http` and `api` both.
//! [`serve`] starts the whole server on a listener, so tests can start it in-process too.

pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod commands;
pub mod demo;
pub mod domain;
pub mod error;
pub mod http;
pub mod ops;
pub mod pace;
pub mod store;
pub mod ui;
pub mod web;

use app::App;
use std::net::TcpListener;
use std::sync::Arc;

pub use http::server::Running;

/// Opens the store and starts serving on `listener` with the configured worker threads.
pub fn serve(config: &cli::ServeConfig, listener: TcpListener) -> Result<Running, String> {
    let batch_sizes = Arc::new(ops::metrics::Histogram::batch_sizes());
    let groups = Arc::new(app::GroupSizes(Arc::clone(&batch_sizes)));
    let store = store::Store::open_observed(&config.db, config.sync, groups)?;
    let mut app = App::new(
        store,
        batch_sizes,
        config.offset,
        config.currency,
        config.rate_limit,
    );
    app.access_log = ops::log::AccessLog::new(config.log_format);
    app.public_url.clone_from(&config.public_url);
    api::webhooks::install_renderer(config.offset);
    let outcomes = std::sync::Arc::clone(&app.metrics.webhooks);
    app.webhooks = Some(ops::webhooks::start(
        app.store.clone(),
        config.webhooks,
        outcomes,
    )?);
    let app = Arc::new(app);
    let settings = http::server::Settings {
        threads: config.threads,
        max_connections: config.max_connections,
        max_connections_per_ip: config.max_connections_per_ip,
        idle_timeout: config.idle_timeout,
        trusted_proxies: config.trusted_proxies.clone(),
    };
    http::server::start(app, listener, &settings)
        .map_err(|e| format!("cannot start the server: {e}"))
}
