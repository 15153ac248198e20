//! The `mattermost` kind (§3.7): the Slack payload, POSTed to a Mattermost incoming webhook.

use chrono::Utc;

use super::http;
use super::slack::{self, prefix_asterisks};
use super::{TransportError, Transports};
use crate::alert::Alert;

/// Delivers `alert` to a Mattermost incoming webhook.
pub async fn notify(transports: &Transports, alert: &Alert) -> Result<(), TransportError> {
    if !transports.settings.mattermost_enabled {
        return Err(TransportError::fail(
            "Mattermost notifications are not enabled.",
        ));
    }
    let url = slack::webhook_url(&alert.channel.value)?;
    let body = slack::payload(&transports.settings, alert, Utc::now(), prefix_asterisks);
    let response = slack::post_json(transports, url, &body).await?;
    http::expect_success(response).map(|_| ())
}
