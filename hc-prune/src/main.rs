//! Entry point of `hc-prune`; the library says what it does.

use std::process::ExitCode;

use clap::Parser;

/// Removes old pings, notifications, flips and their stored objects.
#[derive(Parser)]
#[command(
    version,
    about,
    long_about = "Removes old pings, notifications, flips and the matching stored objects; run by hc-prune.timer.\n\nNOT IMPLEMENTED YET: this binary exits with status 1 when started."
)]
struct Cli {}

fn main() -> ExitCode {
    let _cli = Cli::parse();
    hc_core::process::run_service(|env, shutdown| async move {
        let config = hc_prune::Config::from_vars(&env)?;
        hc_prune::run(config, shutdown).await
    })
}
