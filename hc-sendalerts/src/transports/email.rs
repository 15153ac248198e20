//! The `email` kind (§3.8): SMTP to `EMAIL_HOST`, text and HTML parts, `List-Unsubscribe`
//! headers signed like the Django app.
//!
//! STUB: to be implemented (see the issue note).

use hc_core::config::Vars;
use hc_core::exit::ConfigError;

use crate::alert::Alert;

use super::{TransportError, Transports};

/// SMTP settings.
#[derive(Debug, Clone)]
pub struct EmailSettings {
    /// `DEFAULT_FROM_EMAIL`.
    pub from: String,
}

impl EmailSettings {
    /// Reads the settings.
    pub fn from_vars(vars: &impl Vars) -> Result<EmailSettings, ConfigError> {
        Ok(EmailSettings {
            from: hc_core::config::string_var(
                vars,
                "DEFAULT_FROM_EMAIL",
                "healthchecks@example.org",
            ),
        })
    }
}

/// The SMTP sender.
#[derive(Debug, Clone)]
pub struct Mailer {}

impl Mailer {
    /// Builds the sender (no connection is made yet).
    pub fn new(_settings: &EmailSettings) -> anyhow::Result<Mailer> {
        Ok(Mailer {})
    }
}

/// Whether the channel's up/down flag is off for `new_status`.
pub fn is_noop(value: &str, new_status: &str) -> bool {
    let Ok(spec) = serde_json::from_str::<serde_json::Value>(value) else {
        return false;
    };
    spec.get(new_status)
        .and_then(|flag| flag.as_bool())
        .is_some_and(|on| !on)
}

/// Sends `alert` by email.
pub async fn notify(transports: &Transports, alert: &Alert) -> Result<(), TransportError> {
    let _ = (transports, alert);
    Err(TransportError::fail("email transport not implemented yet"))
}
