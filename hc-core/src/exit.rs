//! Process exit codes shared by every binary: 0 success, 1 runtime failure, 78 bad configuration.

use std::process::ExitCode;

/// Exit status for a clean run, including a clean stop on SIGTERM.
pub const SUCCESS: u8 = 0;
/// Exit status for a runtime failure (a oneshot job interrupted half-way must not look successful).
pub const FAILURE: u8 = 1;
/// Exit status for bad configuration (`EX_CONFIG`); units pair it with `RestartPreventExitStatus=78`.
pub const CONFIG: u8 = 78;

use crate::config::ConfigError;

/// Maps the result of a service's `run` to its exit code, logging the error once with its causes.
pub fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::from(SUCCESS),
        Err(err) => {
            tracing::error!("{err:#}");
            if err.chain().any(|cause| cause.is::<ConfigError>()) {
                ExitCode::from(CONFIG)
            } else {
                ExitCode::from(FAILURE)
            }
        }
    }
}
