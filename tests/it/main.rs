//! The one integration-test binary; each module below is one area of behaviour.

/// Cron engine versus cronsim and a brute-force Debian cron replay; the `schedule` command.
mod schedule_cron;
