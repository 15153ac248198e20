//! `hc-backup`: Dumps the database, encrypts it for a GPG recipient and uploads it to S3.
//!
//! Not implemented yet: its issue has not been taken. [`run`] refuses to start so that a unit
//! pointing at this binary fails loudly instead of looking healthy.

use hc_core::config::ConfigError;
use hc_core::config::{DbConfig, Vars};
use tokio_util::sync::CancellationToken;

/// The configuration of `hc-backup`.
#[derive(Debug, Clone)]
pub struct Config {
    /// The shared database (`DB_*`).
    pub db: DbConfig,
}

impl Config {
    /// Builds the configuration from environment variables.
    pub fn from_vars(vars: &impl Vars) -> Result<Config, ConfigError> {
        Ok(Config {
            db: DbConfig::from_vars(vars)?,
        })
    }
}

/// Runs the service until `shutdown` is cancelled.
pub async fn run(_config: Config, _shutdown: CancellationToken) -> anyhow::Result<()> {
    anyhow::bail!("hc-backup is not implemented yet")
}
