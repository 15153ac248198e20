//! systemd notification helpers (`READY=1`, `STOPPING=1`, `WATCHDOG=1`, `STATUS=`); no-ops outside systemd.

use std::time::Duration;

/// Tells systemd the service is ready (listener bound, database answered).
pub fn notify_ready() {
    send(&[sd_notify::NotifyState::Ready]);
}

/// Tells systemd the service is stopping.
pub fn notify_stopping() {
    send(&[sd_notify::NotifyState::Stopping]);
}

/// Sets the one-line status shown by `systemctl status`.
pub fn notify_status(status: &str) {
    send(&[sd_notify::NotifyState::Status(status)]);
}

/// Pets the watchdog; call from the main loop.
pub fn notify_watchdog() {
    send(&[sd_notify::NotifyState::Watchdog]);
}

/// The watchdog interval systemd expects (`WatchdogSec=`), if one is set for this process.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
}

fn send(states: &[sd_notify::NotifyState<'_>]) {
    if let Err(err) = sd_notify::notify(states) {
        tracing::debug!(%err, "could not notify systemd");
    }
}
