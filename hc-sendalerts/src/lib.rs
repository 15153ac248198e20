//! `hc-sendalerts`: decides which checks are down or back up and delivers notifications.
//!
//! The alert loop is not implemented yet: [`run`] refuses to start so that a unit pointing at
//! this binary fails loudly. What exists is the schedule inspection command in [`inspection`],
//! which answers "when is this check due next?" with the engine the loop will use, and the
//! loop's first step, [`going_down`], which flips checks down under the down-flip contract.
//! The delivery side starts at [`transports`]: one attempt per call, one module per channel kind.

pub mod alert;
pub mod digest;
pub mod going_down;
pub mod inspection;
pub mod transports;

use hc_core::config::{DbConfig, Vars};
use hc_core::exit::ConfigError;
use tokio_util::sync::CancellationToken;

/// The configuration of the alert loop.
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

/// Runs the alert loop until `shutdown` is cancelled.
pub async fn run(_config: Config, _shutdown: CancellationToken) -> anyhow::Result<()> {
    anyhow::bail!(
        "the hc-sendalerts alert loop is not implemented yet; only `hc-sendalerts schedule` works"
    )
}
