//! Entry point of `hc-sendalerts`; the library says what it does.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Decides which checks are down or back up and delivers notifications.
#[derive(Parser)]
#[command(
    version,
    about,
    long_about = "Decides which checks are down or back up and delivers notifications.\n\n\
        Without a subcommand it runs the alert loop, which is NOT IMPLEMENTED YET \
        (it exits with status 1).\n\
        `hc-sendalerts schedule` answers when cron and OnCalendar schedules fire next."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Reads JSON-lines schedule requests on stdin and answers each with its next fire times.
    ///
    /// Each input line is an object {"id", "expr", "tz", "start", "n", "kind"} where kind is
    /// "cron" (the default) or "oncalendar" and start is an RFC 3339 time. Each output line is
    /// {"id", "next": [RFC 3339 times in the zone's offset]} or {"id", "error": "why"}, in input
    /// order. A malformed line gets an error answer; the command goes on with the next line.
    ///
    /// Example: echo '{"id":1,"expr":"30 2 * * 1-5","tz":"Europe/Riga","start":"2021-03-28T01:30:00+02:00","n":3}' | hc-sendalerts schedule
    Schedule,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Schedule) => hc_sendalerts::inspection::answer_stdin(),
        None => hc_core::process::run_service(|env, shutdown| async move {
            let config = hc_sendalerts::Config::from_vars(&env)?;
            hc_sendalerts::run(config, shutdown).await
        }),
    }
}
