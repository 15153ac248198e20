//! Entry point of `hc-backup`; the library says what it does.

use std::process::ExitCode;

use clap::Parser;

/// Dumps the database, encrypts it for a GPG recipient and uploads it to S3.
#[derive(Parser)]
#[command(
    version,
    about,
    long_about = "Dumps the database, encrypts it for a GPG recipient, uploads it to S3-compatible storage and expires old backups; run by hc-backup.timer.\n\nNOT IMPLEMENTED YET: this binary exits with status 1 when started."
)]
struct Cli {}

fn main() -> ExitCode {
    let _cli = Cli::parse();
    hc_core::process::run_service(|env, shutdown| async move {
        let config = hc_backup::Config::from_vars(&env)?;
        hc_backup::run(config, shutdown).await
    })
}
