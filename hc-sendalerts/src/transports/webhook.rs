//! The `webhook` kind (§3.7): separate up and down method, URL, body and headers, with
//! Healthchecks' placeholders and encoding rules.
//!
//! STUB: to be implemented (see the issue note).

use crate::alert::Alert;

use super::{TransportError, Transports};

/// Whether the channel has no URL for `new_status`.
pub fn is_noop(value: &str, new_status: &str) -> bool {
    let Ok(spec) = serde_json::from_str::<serde_json::Value>(value) else {
        return false;
    };
    let key = if new_status == "up" {
        "url_up"
    } else {
        "url_down"
    };
    spec.get(key)
        .and_then(|url| url.as_str())
        .is_none_or(str::is_empty)
}

/// Delivers `alert` to the webhook.
pub async fn notify(transports: &Transports, alert: &Alert) -> Result<(), TransportError> {
    let _ = (transports, alert);
    Err(TransportError::fail(
        "webhook transport not implemented yet",
    ))
}
