//! The `rocketchat` kind (§3.7): a Slack-like attachment POSTed to a Rocket.Chat incoming
//! webhook; the last ping's body is linked, not shown.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::http;
use super::slack::{self, field, prefix_asterisks};
use super::text::{cloaked_url, format_duration, formatted_kind_created};
use super::{Settings, TransportError, Transports};
use crate::alert::{Alert, PingBody};

/// Delivers `alert` to a Rocket.Chat incoming webhook (the channel value is its URL).
pub async fn notify(transports: &Transports, alert: &Alert) -> Result<(), TransportError> {
    if !transports.settings.rocketchat_enabled {
        return Err(TransportError::fail(
            "Rocket.Chat notifications are not enabled.",
        ));
    }
    let body = payload(&transports.settings, alert, Utc::now());
    let response = slack::post_json(transports, alert.channel.value.clone(), &body).await?;
    http::expect_success(response).map(|_| ())
}

/// The Rocket.Chat payload for `alert` as of `now` (Healthchecks' `RocketChat.payload`).
pub fn payload(settings: &Settings, alert: &Alert, now: DateTime<Utc>) -> Value {
    let check = &alert.check;
    let url = cloaked_url(settings, check);
    let mut fields = Vec::new();
    if !check.desc.is_empty() {
        fields.push(field("Description", check.desc.clone(), false));
    }
    if !alert.project.name.is_empty() {
        fields.push(field("Project", alert.project.name.clone(), true));
    }
    let tags: Vec<String> = check
        .tags
        .split(' ')
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
        .map(|tag| format!("`{tag}`"))
        .collect();
    if !tags.is_empty() {
        fields.push(field("Tags", tags.join(" "), true));
    }
    match check.kind.as_str() {
        "simple" => fields.push(field("Period", format_duration(check.timeout), true)),
        "cron" | "oncalendar" => {
            fields.push(field("Schedule", prefix_asterisks(&check.schedule), true));
            fields.push(field("Time Zone", check.tz.clone(), true));
        }
        _ => {}
    }
    match &alert.last_ping {
        Some(ping) => {
            let n = ping.n.map_or_else(|| "None".to_owned(), |n| n.to_string());
            fields.push(field("Total Pings", n.clone(), true));
            fields.push(field("Last Ping", formatted_kind_created(ping, now), true));
            let size = match &ping.body {
                PingBody::None => 0,
                PingBody::Inline(bytes) => bytes.len(),
                PingBody::InObjectStorage(size) => usize::try_from(*size).unwrap_or(0),
            };
            if size > 0 {
                let unit = if size == 1 { "byte" } else { "bytes" };
                let text = format!("{size} {unit}, [show body]({url}#ping-{n})");
                fields.push(field("Last Ping Body", text, true));
            }
        }
        None => {
            fields.push(field("Total Pings", "0", true));
            fields.push(field("Last Ping", "Never", true));
        }
    }
    let status = alert.flip.new_status.to_uppercase();
    json!({
        "alias": settings.site_name,
        "avatar": settings.site_logo_url,
        "text": format!("[{}]({url}) is {status}.", check.name_then_code()),
        "attachments": [{
            "color": if alert.flip.new_status == "up" { "#5cb85c" } else { "#d9534f" },
            "fields": fields,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transports::slack::tests::{alert, fields, now, settings};

    #[test]
    fn the_text_links_the_check() {
        let a = alert("rocketchat", "https://chat.example/hooks/x");
        let p = payload(&settings(), &a, now());
        assert_eq!(
            p["text"],
            format!(
                "[Foobar](http://testserver/cloaked/{}/) is DOWN.",
                a.check.unique_key()
            )
        );
        assert_eq!(p["alias"], "Mychecks");
        assert_eq!(p["attachments"][0]["color"], "#d9534f");
    }

    #[test]
    fn the_body_is_linked_with_its_size() {
        let mut a = alert("rocketchat", "x");
        a.last_ping.as_mut().expect("ping").body = PingBody::Inline(b"hello".to_vec());
        let p = payload(&settings(), &a, now());
        let body = fields(&p)
            .into_iter()
            .find(|(t, _)| t == "Last Ping Body")
            .map(|(_, v)| v);
        assert_eq!(
            body,
            Some(format!(
                "5 bytes, [show body](http://testserver/cloaked/{}/#ping-112233)",
                a.check.unique_key()
            ))
        );
    }

    #[test]
    fn no_body_no_field() {
        let p = payload(&settings(), &alert("rocketchat", "x"), now());
        assert!(fields(&p).iter().all(|(t, _)| t != "Last Ping Body"));
    }
}
