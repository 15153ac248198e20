//! `hchk-ping`: Ping endpoint of the hc toolkit: records every ping over HTTP.
//!
//! Not implemented yet: its issue has not been taken. [`run`] refuses to start so that a unit
//! pointing at this binary fails loudly instead of looking healthy.

use hc_core::config::{DbConfig, Vars};
use hc_core::exit::ConfigError;
use tokio_util::sync::CancellationToken;

/// The configuration of `hchk-ping`.
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
    anyhow::bail!("hchk-ping is not implemented yet")
}
