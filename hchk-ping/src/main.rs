//! Entry point of `hchk-ping`; the library says what it does.

use std::process::ExitCode;

use clap::Parser;

/// Ping endpoint of the hc toolkit: records every ping over HTTP.
#[derive(Parser)]
#[command(
    version,
    about,
    long_about = "Ping endpoint of the hc toolkit: records every HTTP ping (/ping/<uuid>[/start|/fail|/log|/<exit status>], \
/ping/<ping_key>/<slug>[...]) in the Healthchecks database, and answers only once the ping is committed.

Configuration comes from the environment (systemd's EnvironmentFile=):
  DB, DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD[_FILE], ...   the shared PostgreSQL database
  HCHK_PING_LISTEN            address:port to listen on (default 127.0.0.1:8000)
  SITE_ROOT                   its path, if any, prefixes every URL (default http://localhost:8000)
  PING_BODY_LIMIT             body bytes stored, or None (default 100000)
  HCHK_PING_BODY_HARD_LIMIT   larger bodies get 413 (default 2621440)
  TRUSTED_PROXIES             peers whose X-Forwarded-For/-Proto count (default 127.0.0.0/8,::1/128)
  HCHK_PING_DB_WAIT           seconds a ping waits for the database before 503 (default 10)
  HCHK_PING_HEALTH_MAX_DWELL  /health fails when a ping waits longer, seconds (default 15)
  HCHK_PING_BATCH_MAX         pings per transaction at most (default 1000)
  HCHK_PING_WRITERS           concurrent batches, one connection each (default 4)
  HCHK_PING_MAX_CONNECTIONS   client connections at most (default 4096)
  HCHK_PING_MAX_HEADER_BYTES  request line and headers at most (default 16384)
  HCHK_PING_HEADER_TIMEOUT    seconds to send the headers (default 10)
  HCHK_PING_BODY_TIMEOUT      seconds to send the body (default 60)
  HCHK_PING_SHUTDOWN_GRACE    seconds to finish requests after SIGTERM (default 20)

Also serves GET /health (200, or 503 when the database is unreachable or pings wait too long) and
GET /metrics (Prometheus text). Exit status: 0 after a clean stop, 1 on a runtime failure, 78 on bad configuration."
)]
struct Cli {}

fn main() -> ExitCode {
    let _cli = Cli::parse();
    hc_core::process::run_service(|env, shutdown| async move {
        let config = hchk_ping::Config::from_vars(&env)?;
        hchk_ping::run(config, shutdown).await
    })
}
