//! `hchk-ping`: the ping endpoint. It records every HTTP ping in `api_ping` and updates its check
//! and flips exactly as Healthchecks' `Check.ping()` does, and answers only after the ping is
//! committed.
//!
//! Start reading at [`serve`]: [`http`] turns requests into jobs on the [`queue`]; the
//! [`writer`]s commit them in batches, one transaction per batch, applying [`pings::apply_ping`]
//! to each locked check in order; [`routes`] is the pure URL parser.

pub mod http;
pub mod metrics;
pub mod pings;
mod provision;
pub mod proxies;
pub mod queue;
pub mod routes;
pub mod writer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hc_core::config::{
    ConfigError, DbConfig, Vars, parse_optional_var, parse_var, positive, seconds, string_var,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::proxies::{DEFAULT_TRUSTED_PROXIES, TrustedProxies};

/// Healthchecks' `PING_BODY_LIMIT` default is 10,000; ours is the hosted service's 100,000.
pub const DEFAULT_BODY_LIMIT: usize = 100_000;
/// Django's `DATA_UPLOAD_MAX_MEMORY_SIZE`: bodies above it get 413.
pub const DEFAULT_BODY_HARD_LIMIT: usize = 2_621_440;

/// The configuration of `hchk-ping`.
#[derive(Debug, Clone)]
pub struct Config {
    /// The shared database (`DB_*`).
    pub db: DbConfig,
    /// `HCHK_PING_LISTEN`: address and port to listen on (default `127.0.0.1:8000`).
    pub listen: SocketAddr,
    /// The path part of `SITE_ROOT` (`""` or like `/hc`): every ping URL sits under it.
    pub site_prefix: String,
    /// `PING_BODY_LIMIT`: bytes of the body stored (`None`: up to the hard limit).
    pub body_limit: Option<usize>,
    /// `HCHK_PING_BODY_HARD_LIMIT`: larger bodies get 413 (at least `PING_BODY_LIMIT`).
    pub body_hard_limit: usize,
    /// `TRUSTED_PROXIES`: peers whose `X-Forwarded-For`/`-Proto` count.
    pub trusted_proxies: TrustedProxies,
    /// `HCHK_PING_DB_WAIT`: how long a ping waits for the database before 503.
    pub db_wait: Duration,
    /// `HCHK_PING_HEALTH_MAX_DWELL`: `/health` fails when the oldest pending ping is older.
    pub health_max_dwell: Duration,
    /// `HCHK_PING_BATCH_MAX`: most pings per transaction.
    pub batch_max: usize,
    /// `HCHK_PING_WRITERS`: batches written concurrently (one connection each).
    pub writers: usize,
    /// `HCHK_PING_MAX_CONNECTIONS`: open client connections at most.
    pub max_connections: usize,
    /// `HCHK_PING_MAX_HEADER_BYTES`: request line plus headers at most.
    pub max_header_bytes: usize,
    /// `HCHK_PING_HEADER_TIMEOUT`: time to send the request line and headers.
    pub header_timeout: Duration,
    /// `HCHK_PING_BODY_TIMEOUT`: time to send the body.
    pub body_timeout: Duration,
    /// `HCHK_PING_SHUTDOWN_GRACE`: time to finish requests in flight after SIGTERM.
    pub shutdown_grace: Duration,
}

impl Config {
    /// Builds the configuration from environment variables.
    pub fn from_vars(vars: &impl Vars) -> Result<Config, ConfigError> {
        let body_limit = parse_optional_var(vars, "PING_BODY_LIMIT", Some(DEFAULT_BODY_LIMIT))?;
        let hard = parse_var(vars, "HCHK_PING_BODY_HARD_LIMIT", DEFAULT_BODY_HARD_LIMIT)?;
        // Unset means loopback; set but empty trusts nobody.
        let trusted = vars
            .get("TRUSTED_PROXIES")
            .unwrap_or_else(|| DEFAULT_TRUSTED_PROXIES.to_owned());
        let trusted_proxies = TrustedProxies::parse(&trusted)
            .map_err(|err| ConfigError(format!("TRUSTED_PROXIES: {err}")))?;
        Ok(Config {
            db: DbConfig::from_vars(vars)?,
            listen: parse_var(
                vars,
                "HCHK_PING_LISTEN",
                SocketAddr::from(([127, 0, 0, 1], 8000)),
            )?,
            site_prefix: site_prefix(&string_var(vars, "SITE_ROOT", "http://localhost:8000")),
            body_limit,
            body_hard_limit: hard.max(body_limit.unwrap_or(0)),
            trusted_proxies,
            db_wait: seconds(vars, "HCHK_PING_DB_WAIT", 10.0)?,
            health_max_dwell: seconds(vars, "HCHK_PING_HEALTH_MAX_DWELL", 15.0)?,
            batch_max: positive(vars, "HCHK_PING_BATCH_MAX", 1000)?,
            writers: positive(vars, "HCHK_PING_WRITERS", 4)?,
            max_connections: positive(vars, "HCHK_PING_MAX_CONNECTIONS", 4096)?,
            max_header_bytes: parse_var(vars, "HCHK_PING_MAX_HEADER_BYTES", 16_384)?.max(8192),
            header_timeout: seconds(vars, "HCHK_PING_HEADER_TIMEOUT", 10.0)?,
            body_timeout: seconds(vars, "HCHK_PING_BODY_TIMEOUT", 60.0)?,
            shutdown_grace: seconds(vars, "HCHK_PING_SHUTDOWN_GRACE", 20.0)?,
        })
    }
}

/// The path of `SITE_ROOT` without a trailing slash: `https://hc.example.com/hc/` gives `/hc`.
fn site_prefix(site_root: &str) -> String {
    let after_scheme = site_root
        .split_once("://")
        .map_or(site_root, |(_, rest)| rest);
    let path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
    path.trim_end_matches('/').to_owned()
}

/// Runs the service until `shutdown` is cancelled: binds `HCHK_PING_LISTEN`, waits for the
/// database and checks its schema, tells systemd it is ready, and serves.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let pool = hc_core::process::start_up(&pool_config(&config), "hchk-ping", &shutdown).await?;
    tracing::info!(listen = %config.listen, writers = config.writers, "hchk-ping ready");
    hc_core::systemd::notify_ready();
    serve_with_pool(listener, config, pool, shutdown).await
}

/// Serves pings on `listener` until `shutdown` is cancelled, then stops accepting, commits and
/// answers everything in flight, and returns.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let pool = create_pool(&config)?;
    serve_with_pool(listener, config, pool, shutdown).await
}

fn create_pool(config: &Config) -> anyhow::Result<deadpool_postgres::Pool> {
    Ok(hc_core::db::create_pool(&pool_config(config), "hchk-ping")?)
}

/// The database settings with a pool large enough: one connection per writer, plus one for
/// health probes and one for `?create=1`.
fn pool_config(config: &Config) -> DbConfig {
    let mut db = config.db.clone();
    db.pool_size = db.pool_size.max(config.writers + 2);
    db
}

async fn serve_with_pool(
    listener: TcpListener,
    config: Config,
    pool: deadpool_postgres::Pool,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let queue = Arc::new(queue::Queue::new(config.writers));
    let metrics = Arc::new(metrics::Metrics::default());
    let writers = Arc::new(writer::Writers::new(
        pool,
        queue.clone(),
        metrics.clone(),
        writer::WriterConfig {
            batch_max: config.batch_max,
            db_wait: config.db_wait,
        },
    ));
    let stop_writers = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    for slot in 0..config.writers {
        tasks.spawn(writers.clone().run(slot, stop_writers.clone()));
    }
    let watchdog = tokio::spawn(feed_watchdog(shutdown.clone()));
    let sweeper = tokio::spawn(expire_waiting_pings(queue.clone(), config.db_wait));
    let app = Arc::new(http::App {
        config,
        queue,
        writers,
        metrics,
    });
    http::accept(listener, app.clone(), shutdown).await;
    hc_core::systemd::notify_stopping();
    // No request can add a ping now: the writers finish the queue and stop.
    stop_writers.cancel();
    let drained = tokio::time::timeout(app.config.shutdown_grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    watchdog.abort();
    sweeper.abort();
    if drained.is_err() {
        anyhow::bail!("pings still unwritten at the end of the grace period");
    }
    tracing::info!("hchk-ping stopped");
    Ok(())
}

/// Answers 503 to pings that waited `db_wait` in the queue, whatever their writer is doing.
async fn expire_waiting_pings(queue: Arc<queue::Queue>, db_wait: Duration) {
    let mut ticker = tokio::time::interval(
        (db_wait / 20).clamp(Duration::from_millis(10), Duration::from_millis(250)),
    );
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let expired = queue.expire(std::time::Instant::now(), db_wait);
        if expired > 0 {
            tracing::debug!(expired, "answered 503 to pings that waited too long");
        }
    }
}

async fn feed_watchdog(shutdown: CancellationToken) {
    let mut watchdog = hc_core::systemd::Watchdog::from_systemd();
    let Some(period) = watchdog.period() else {
        return;
    };
    // Ticks at half the pet period, so a tick that comes a moment early never delays a pet
    // past systemd's interval.
    let mut ticker = tokio::time::interval(period / 2);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                watchdog.pet();
            }
            () = shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
        let mut vars: HashMap<&str, &str> = HashMap::from([("DB", "postgres")]);
        vars.extend(pairs.iter().copied());
        Config::from_vars(&vars)
    }

    #[test]
    fn defaults() {
        let config = config(&[]).unwrap();
        assert_eq!(config.body_limit, Some(100_000));
        assert_eq!(config.body_hard_limit, 2_621_440);
        assert_eq!(config.site_prefix, "");
        assert_eq!(config.db_wait, Duration::from_secs(10));
        assert_eq!(config.listen, "127.0.0.1:8000".parse().unwrap());
        assert!(
            config
                .trusted_proxies
                .contains("127.0.0.1".parse().unwrap())
        );
    }

    #[test]
    fn body_limits() {
        let config = config(&[("PING_BODY_LIMIT", "None")]).unwrap();
        assert_eq!(config.body_limit, None);
        let large = super::tests::config(&[("PING_BODY_LIMIT", "5000000")]).unwrap();
        assert_eq!(large.body_hard_limit, 5_000_000);
        assert!(super::tests::config(&[("PING_BODY_LIMIT", "lots")]).is_err());
    }

    #[test]
    fn site_prefixes() {
        assert_eq!(site_prefix("http://localhost:8000"), "");
        assert_eq!(site_prefix("https://hc.example.com/"), "");
        assert_eq!(site_prefix("https://hc.example.com/hc"), "/hc");
        assert_eq!(site_prefix("https://hc.example.com/a/b/"), "/a/b");
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (name, value) in [
            ("HCHK_PING_WRITERS", "0"),
            ("HCHK_PING_DB_WAIT", "-1"),
            ("TRUSTED_PROXIES", "nope"),
            ("HCHK_PING_LISTEN", "localhost"),
        ] {
            let err = config(&[(name, value)]).unwrap_err();
            assert!(err.0.contains(name), "{err:?}");
        }
        let nobody = config(&[("TRUSTED_PROXIES", "")]).unwrap();
        assert!(
            !nobody
                .trusted_proxies
                .contains("127.0.0.1".parse().unwrap())
        );
    }
}
