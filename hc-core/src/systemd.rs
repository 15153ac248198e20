//! systemd notification helpers (`READY=1`, `STOPPING=1`, `WATCHDOG=1`, `STATUS=`); no-ops outside systemd.

use std::time::{Duration, Instant};

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

/// The systemd watchdog (`WatchdogSec=`), the one way every service pets it: [`Watchdog::pet`]
/// from the main loop (or from a timer every [`Watchdog::period`]) sends `WATCHDOG=1` at most
/// once per half interval, because the notify socket is a blocking write and a message per
/// pass would fill a socket nobody reads. Without a watchdog it does nothing.
#[derive(Debug)]
pub struct Watchdog {
    period: Option<Duration>,
    next: Instant,
}

impl Watchdog {
    /// The watchdog systemd set for this process, if any.
    pub fn from_systemd() -> Watchdog {
        Watchdog::with_interval(watchdog_interval())
    }

    /// A watchdog with systemd's `interval` (`None`: none).
    pub fn with_interval(interval: Option<Duration>) -> Watchdog {
        Watchdog {
            period: interval.map(|interval| interval / 2),
            next: Instant::now(),
        }
    }

    /// How often to pet it: half the interval systemd expects.
    pub fn period(&self) -> Option<Duration> {
        self.period
    }

    /// Tells systemd the service is alive, unless it was told less than a period ago; returns
    /// whether a message was sent.
    pub fn pet(&mut self) -> bool {
        let Some(period) = self.period else {
            return false;
        };
        let now = Instant::now();
        if now < self.next {
            return false;
        }
        notify_watchdog();
        self.next = now + period;
        true
    }
}

fn send(states: &[sd_notify::NotifyState<'_>]) {
    if let Err(err) = sd_notify::notify(states) {
        tracing::debug!(%err, "could not notify systemd");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watchdog_pets_once_per_period() {
        let mut watchdog = Watchdog::with_interval(Some(Duration::from_secs(60)));
        assert_eq!(watchdog.period(), Some(Duration::from_secs(30)));
        assert!(watchdog.pet());
        assert!(!watchdog.pet());
        let mut none = Watchdog::with_interval(None);
        assert!(!none.pet());
        assert_eq!(none.period(), None);
    }
}
