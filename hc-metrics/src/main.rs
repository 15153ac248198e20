//! Entry point of `hc-metrics`; the library says what it does.

use std::process::ExitCode;

use clap::Parser;

/// Exports the status-page metrics of the hc toolkit.
#[derive(Parser)]
#[command(
    version,
    about,
    long_about = "Exports the status-page metrics: processed pings, queued pings, notifications sent, queued notifications.\n\nNOT IMPLEMENTED YET: this binary exits with status 1 when started."
)]
struct Cli {}

fn main() -> ExitCode {
    let _cli = Cli::parse();
    hc_core::process::run_service(|env, shutdown| async move {
        let config = hc_metrics::Config::from_vars(&env)?;
        hc_metrics::run(config, shutdown).await
    })
}
