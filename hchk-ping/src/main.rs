//! Entry point of `hchk-ping`; the library says what it does.

use std::process::ExitCode;

use clap::Parser;

/// Ping endpoint of the hc toolkit: records every ping over HTTP.
#[derive(Parser)]
#[command(
    version,
    about,
    long_about = "Ping endpoint of the hc toolkit: records every ping over HTTP.\n\nNOT IMPLEMENTED YET: this binary exits with status 1 when started.\nConfiguration comes from the environment (DB_*, PING_BODY_LIMIT, ...)."
)]
struct Cli {}

fn main() -> ExitCode {
    let _cli = Cli::parse();
    hc_core::process::run_service(|env, shutdown| async move {
        let config = hchk_ping::Config::from_vars(&env)?;
        hchk_ping::run(config, shutdown).await
    })
}
