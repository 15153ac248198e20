//! Entry point of `hc-sendalerts`; the library says what it does.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Decides which checks are down or back up and delivers notifications.
#[derive(Parser)]
#[command(
    version,
    about,
    long_about = "Decides which checks are down or back up and delivers notifications.\n\n\
        Without a subcommand it runs the alert loop: checks past their deadline are flipped \
        down, unprocessed flips become notifications, and notifications are delivered by \
        email, webhook and chat integrations. Any number of copies may run against one \
        database: each notification is delivered once, and one that a crashed copy left \
        half-way is taken over by another.\n\n\
        Configuration comes from the environment, with Healthchecks' names: DB_* for the \
        database, SITE_ROOT, SITE_NAME, SECRET_KEY, EMAIL_HOST, EMAIL_PORT, EMAIL_USE_TLS, \
        DEFAULT_FROM_EMAIL, INTEGRATIONS_ALLOW_PRIVATE_IPS and the integrations' own variables; \
        SENDALERTS_METRICS_LISTEN (default 127.0.0.1:9611, empty to disable), \
        SENDALERTS_CONCURRENCY (32), SENDALERTS_CHANNEL_CONCURRENCY (4), \
        SENDALERTS_RETRY_DELAYS (\"2,10\" seconds between tries of a transient failure), \
        SENDALERTS_IDLE_WAIT (2 s) and SENDALERTS_RECOVERY_INTERVAL (60 s). \
        See systemd/hc.env.example.\n\n\
        `hc-sendalerts schedule` answers when cron and OnCalendar schedules fire next."
)]
struct Cli {
    /// Run passes until nothing is due or pending, wait for the deliveries, and exit.
    #[arg(long)]
    once: bool,
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
            let mut config = hc_sendalerts::Config::from_vars(&env)?;
            config.once = cli.once;
            hc_sendalerts::run(config, shutdown).await
        }),
    }
}
