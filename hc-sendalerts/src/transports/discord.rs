//! The `discord` kind (§3.7): the Slack payload, POSTed to the Slack-compatible endpoint of a
//! Discord webhook (`<webhook.url>/slack`); a 404 disables the channel.

use chrono::Utc;
use serde_json::Value;

use super::http;
use super::slack;
use super::{TransportError, Transports};
use crate::alert::Alert;

/// Delivers `alert` to a Discord webhook.
pub async fn notify(transports: &Transports, alert: &Alert) -> Result<(), TransportError> {
    let url = format!("{}/slack", webhook_url(&alert.channel.value)?);
    let body = slack::payload(&transports.settings, alert, Utc::now(), escape_asterisks);
    let response = slack::post_json(transports, url, &body).await?;
    if response.status == 404 {
        // The webhook was deleted; it will not come back.
        return Err(TransportError::permanent("Received status code 404"));
    }
    http::expect_success(response).map(|_| ())
}

/// `webhook.url` of the channel value, with `https://discordapp.com/` moved to
/// `https://discord.com/` (Discord dropped the old domain in November 2020).
pub fn webhook_url(value: &str) -> Result<String, TransportError> {
    let doc: Value = serde_json::from_str(value)
        .map_err(|_| TransportError::fail("Invalid Discord configuration"))?;
    let url = doc
        .pointer("/webhook/url")
        .and_then(Value::as_str)
        .ok_or_else(|| TransportError::fail("Invalid Discord configuration"))?;
    Ok(match url.strip_prefix("https://discordapp.com/") {
        Some(rest) => format!("https://discord.com/{rest}"),
        None => url.to_owned(),
    })
}

/// Discord's Markdown needs asterisks escaped with a backslash.
pub fn escape_asterisks(text: &str) -> String {
    text.replace('*', "\\*")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_old_domain_is_rewritten() {
        let value = r#"{"webhook": {"url": "https://discordapp.com/api/webhooks/1/x"}}"#;
        assert_eq!(
            webhook_url(value).expect("url"),
            "https://discord.com/api/webhooks/1/x"
        );
        let value = r#"{"webhook": {"url": "https://discord.com/api/webhooks/1/x"}}"#;
        assert_eq!(
            webhook_url(value).expect("url"),
            "https://discord.com/api/webhooks/1/x"
        );
        assert!(webhook_url("https://discord.com/x").is_err());
    }

    #[test]
    fn schedules_get_escaped_asterisks() {
        let mut a = slack::tests::alert("discord", "{}");
        a.check.kind = "cron".to_owned();
        a.check.schedule = "*/5 * * * *".to_owned();
        let p = slack::payload(
            &slack::tests::settings(),
            &a,
            slack::tests::now(),
            escape_asterisks,
        );
        let schedule = slack::tests::fields(&p)
            .into_iter()
            .find(|(t, _)| t == "Schedule")
            .map(|(_, v)| v);
        assert_eq!(schedule.as_deref(), Some("\\*/5 \\* \\* \\* \\*"));
    }
}
