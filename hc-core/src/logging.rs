//! The one `tracing` setup: `RUST_LOG` honoured (default `info`); under systemd the journal, else stderr.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber. `under_systemd` is true when `JOURNAL_STREAM` is set.
///
/// Under systemd, logs go to journald with structured fields; when no journald listens,
/// they go to stderr without timestamps or colour (the journal adds its own).
pub fn init(rust_log: Option<&str>, under_systemd: bool) {
    let filter =
        EnvFilter::try_new(rust_log.unwrap_or("info")).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    if under_systemd {
        if let Ok(journald) = tracing_journald::layer() {
            let _ = registry.with(journald).try_init();
            return;
        }
        let plain = tracing_subscriber::fmt::layer()
            .without_time()
            .with_ansi(false)
            .with_writer(std::io::stderr);
        let _ = registry.with(plain).try_init();
    } else {
        let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
        let _ = registry.with(fmt).try_init();
    }
}
