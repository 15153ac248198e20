//! The one integration-test binary; each module below is one area of behaviour.

#![allow(
    clippy::unwrap_used,
    reason = "a test binary: a failed unwrap is a failed test, with its location"
)]

// `cargo xtask dev`: the printed pings work, and SIGTERM or a failed start leaves nothing running.
mod dev;
// Where the harness puts PostgreSQL clusters: somewhere the postgres user can enter.
mod clusters;
// Every variable a binary reads is in hc.env.example and the README, with the same default.
mod config_docs;
// Secrets from files and systemd credentials, DB_* errors and their exit code.
mod config;
// The harness's delay proxy: order, delay, and cutting connections like a partition.
mod delay_proxy;
// A pool with primary and hot standby keeps writing after a promotion, without a restart.
mod failover;
// Every binary as a process: help, version, exit codes.
mod processes;
// The ping API over HTTP on both schemas: responses, ping rules, run ids, filters, slugs.
mod ping_api;
// hchk-ping end to end: the first success ping.
mod ping_smoke;
// hchk-ping under load and failure (SIGKILL, PostgreSQL restart, fail-over): every 2xx recorded once.
mod ping_durability;
// Project schema SQL vs Healthchecks' dump, idempotence, the start-up schema check, factories.
mod schema;
// hc-sendalerts' going-down step: flips at the deadline, postponed broken schedules, the contract.
mod sendalerts_going_down;
// hc-sendalerts processes under load and failure: several senders, SIGKILL, PostgreSQL restart.
mod sendalerts_durability;
// hc-sendalerts' loop end to end: one notification per channel, order, retries, groups, bad rows.
mod sendalerts_loop;
// hc-sendalerts' loop with real transports: email down and up through OpenSMTPD, Slack errors.
mod sendalerts_kinds;
// Cron engine versus cronsim and a brute-force Debian cron replay; the `schedule` command.
mod schedule_cron;
// OnCalendar engine versus `systemd-analyze calendar`, expression by expression.
mod schedule_oncalendar;
// Chat and push transports (Teams, Google Chat, ntfy, Gotify, Pushover, Telegram, Matrix) via the recorder.
mod transports_chat;
// Every notification against the Healthchecks app itself: requests, mails and rows compared.
mod conformance_notifications;
// Conventions: file docs, no leftovers, dependency direction.
mod tidy;
// Slack, Mattermost, Rocket.Chat and Discord payloads and error classes against a recording server.
mod transports_slack;
// The webhook transport and HTTP client against a recording server: requests, failures, limits.
mod transports_webhook;
// The email transport through a real OpenSMTPD: message format, signatures, failures.
mod transports_email;
// The systemd units: present, verified, sandboxed.
mod units;
