//! The common start-up of every binary: environment, logging, runtime, shutdown token, exit
//! code ([`run_service`]), and of every service that uses the database ([`start_up`]).

use std::future::Future;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use crate::config::{DbConfig, Env, Vars};

/// Runs a service's `run` future to completion and maps its result to the process exit code.
///
/// Captures the environment, initialises logging, builds the tokio runtime and installs the
/// SIGTERM/SIGINT token before calling `run`.
pub fn run_service<F, Fut>(run: F) -> ExitCode
where
    F: FnOnce(Env, CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let env = Env::capture();
    crate::logging::init(
        env.get("RUST_LOG").as_deref(),
        env.get("JOURNAL_STREAM").is_some(),
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!("cannot start the tokio runtime: {err}");
            return ExitCode::from(crate::exit::FAILURE);
        }
    };
    let result = runtime.block_on(async {
        let shutdown = crate::shutdown::install()
            .map_err(|err| anyhow::anyhow!("cannot install signal handlers: {err}"))?;
        run(env, shutdown).await
    });
    crate::exit::exit_code(result)
}

/// The database start-up every service shares: the pool, then waiting (with backoff, until
/// `shutdown`) for the database to answer, then the schema check (a mismatch is a
/// configuration error, exit 78). Bind listeners before; tell systemd `READY=1`
/// ([`crate::systemd::notify_ready`]) after, and pet the watchdog with
/// [`crate::systemd::Watchdog`].
pub async fn start_up(
    db: &DbConfig,
    application_name: &str,
    shutdown: &CancellationToken,
) -> anyhow::Result<deadpool_postgres::Pool> {
    let pool = crate::db::create_pool(db, application_name)?;
    let client = crate::db::wait_until_reachable(&pool, shutdown).await?;
    crate::db::check_schema(&client)
        .await
        .map_err(crate::db::SchemaError::into_anyhow)?;
    drop(client);
    Ok(pool)
}
