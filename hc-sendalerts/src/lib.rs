//! `hc-sendalerts`: decides which checks are down or back up and delivers notifications.
//!
//! Start at [`run`]: it connects, checks the schema, and runs the [`alert_loop`], whose passes
//! are [`going_down`] (flip overdue checks down under ARCHITECTURE.md's down-flip contract),
//! [`flips`] (turn unprocessed flips into pending notifications) and [`deliveries`] (claim,
//! send through [`transports`], record). [`inspection`] is the `schedule` subcommand.

pub mod alert;
pub mod alert_loop;
pub mod batch;
pub mod codes;
pub mod deliveries;
pub mod digest;
pub mod flips;
pub mod going_down;
pub mod inspection;
pub mod loading;
pub mod metrics;
pub mod transports;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hc_core::config::{ConfigError, DbConfig, Vars, listen_addr, positive, seconds, seconds_list};
use tokio_util::sync::CancellationToken;

use crate::deliveries::{Deliveries, DeliverySettings};
use crate::metrics::Metrics;

/// The name this service uses in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "hc-sendalerts";

/// The configuration of the alert loop.
#[derive(Debug, Clone)]
pub struct Config {
    /// The shared database (`DB_*`).
    pub db: DbConfig,
    /// Transport settings (`SITE_ROOT`, `SECRET_KEY`, `EMAIL_*`, …).
    pub transports: transports::Settings,
    /// Delivery pacing (`SENDALERTS_CONCURRENCY`, `SENDALERTS_CHANNEL_CONCURRENCY`,
    /// `SENDALERTS_RETRY_DELAYS`).
    pub deliveries: DeliverySettings,
    /// Where `/metrics` is served (`SENDALERTS_METRICS_LISTEN`, default `127.0.0.1:9611`;
    /// empty: nowhere).
    pub metrics_listen: Option<SocketAddr>,
    /// The longest idle wait (`SENDALERTS_IDLE_WAIT`, seconds, default 2).
    pub idle_wait: Duration,
    /// How often to look for notifications no sender delivers
    /// (`SENDALERTS_RECOVERY_INTERVAL`, seconds, default 60; also at start-up).
    pub recovery_interval: Duration,
    /// Run one pass and exit (`--once`).
    pub once: bool,
}

impl Config {
    /// Builds the configuration from environment variables.
    pub fn from_vars(vars: &impl Vars) -> Result<Config, ConfigError> {
        let defaults = DeliverySettings::default();
        let deliveries = DeliverySettings {
            concurrency: positive(vars, "SENDALERTS_CONCURRENCY", defaults.concurrency)?,
            channel_concurrency: positive(
                vars,
                "SENDALERTS_CHANNEL_CONCURRENCY",
                defaults.channel_concurrency,
            )?,
            backoff: seconds_list(vars, "SENDALERTS_RETRY_DELAYS", &defaults.backoff)?,
            attempt_limit: defaults.attempt_limit,
        };
        let metrics_listen = listen_addr(
            vars,
            "SENDALERTS_METRICS_LISTEN",
            Some(SocketAddr::from(([127, 0, 0, 1], 9611))),
        )?;
        Ok(Config {
            db: DbConfig::from_vars(vars)?,
            transports: transports::Settings::from_vars(vars)?,
            deliveries,
            metrics_listen,
            idle_wait: seconds(vars, "SENDALERTS_IDLE_WAIT", 2.0)?,
            recovery_interval: seconds(vars, "SENDALERTS_RECOVERY_INTERVAL", 60.0)?,
            once: false,
        })
    }
}

/// Runs the alert loop until `shutdown` is cancelled (or, with `config.once`, until there is
/// nothing left to do).
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let pool = hc_core::process::start_up(&config.db, APPLICATION_NAME, &shutdown).await?;
    let metrics = Arc::new(Metrics::default());
    if let Some(addr) = config.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} for /metrics"))?;
        tracing::info!(addr = %listener.local_addr()?, "serving /metrics");
        tokio::spawn(metrics::serve(listener, metrics.clone(), shutdown.clone()));
    }
    let secret = config.transports.secret_key.expose().clone();
    let transports = transports::Transports::new(config.transports, pool.clone())?;
    let deliveries = Deliveries::new(
        pool.clone(),
        hc_core::db::pg_config(&config.db, APPLICATION_NAME),
        transports,
        config.deliveries,
        metrics.clone(),
        shutdown.clone(),
    );
    let alert_loop = alert_loop::AlertLoop {
        pool,
        deliveries,
        metrics,
        secret,
        idle_wait: config.idle_wait,
        recovery_interval: config.recovery_interval,
    };
    hc_core::systemd::notify_ready();
    tracing::info!(once = config.once, "hc-sendalerts is running");
    let result = alert_loop.run(&shutdown, config.once).await;
    hc_core::systemd::notify_stopping();
    tracing::info!("hc-sendalerts stopped");
    result
}
