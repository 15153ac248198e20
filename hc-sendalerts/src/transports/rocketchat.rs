//! The `rocketchat` kind (§3.7): a Slack-like attachment POSTed to a Rocket.Chat incoming
//! webhook; the last ping's body is linked, not shown.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::http;
use super::slack::{self, check_fields, field};
use super::text::{cloaked_url, formatted_kind_created, reason_long};
use super::{Settings, TransportError, Transports, text};
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
    let mut fields = check_fields(alert, escape_asterisks);
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
    json!({
        "alias": settings.site_name,
        "avatar": settings.site_logo_url,
        "text": text(alert, &url),
        "attachments": [{
            "color": if alert.flip.new_status == "up" { "#5cb85c" } else { "#d9534f" },
            "fields": fields,
        }],
    })
}

/// Healthchecks' `rocketchat_message.html` as `Transport.tmpl` renders it: the linked name (not
/// escaped: the template marks it safe), the status with the reason in parentheses, and for an
/// up flip after a down flip a second line with the downtime; stripped, no-break spaces plain.
fn text(alert: &Alert, url: &str) -> String {
    let mut text = format!(
        "[{}]({url}) is {}",
        alert.check.name_then_code(),
        alert.flip.new_status.to_uppercase()
    );
    if !alert.flip.reason.is_empty() {
        let reason = reason_long(&alert.flip.reason).unwrap_or("None");
        text.push_str(&format!(" ({reason})"));
    }
    text.push('.');
    if alert.flip.new_status == "up" {
        if let Some(downtime) = slack::downtime_sentence(alert) {
            text.push('\n');
            text.push_str(&downtime);
        }
    }
    text::python_strip(&text).replace('\u{a0}', " ")
}

/// Rocket.Chat's Markdown needs asterisks escaped with a backslash (Healthchecks'
/// `RocketChat.fix_asterisks`).
fn escape_asterisks(text: &str) -> String {
    text.replace('*', "\\*")
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
                "[Foobar](http://testserver/cloaked/{}/) is DOWN \
                 (success signal did not arrive on time, grace time passed).",
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
    fn up_flips_after_a_down_flip_tell_the_downtime() {
        let mut a = alert("rocketchat", "x");
        a.check.name = "*bold*".to_owned();
        a.flip.old_status = "down".to_owned();
        a.flip.new_status = "up".to_owned();
        a.flip.reason = String::new();
        a.down_since = Some(now() - chrono::TimeDelta::minutes(61));
        let p = payload(&settings(), &a, now());
        assert_eq!(
            p["text"],
            format!(
                "[*bold*](http://testserver/cloaked/{}/) is UP.\n\
                 The downtime lasted 1 hour, 1 minute.",
                a.check.unique_key()
            )
        );
    }

    #[test]
    fn schedules_get_backslashed_asterisks() {
        let mut a = alert("rocketchat", "x");
        a.check.kind = "cron".to_owned();
        a.check.schedule = "*/5 * * * *".to_owned();
        let p = payload(&settings(), &a, now());
        let schedule = fields(&p)
            .into_iter()
            .find(|(t, _)| t == "Schedule")
            .map(|(_, v)| v);
        assert_eq!(schedule.as_deref(), Some("\\*/5 \\* \\* \\* \\*"));
    }

    #[test]
    fn no_body_no_field() {
        let p = payload(&settings(), &alert("rocketchat", "x"), now());
        assert!(fields(&p).iter().all(|(t, _)| t != "Last Ping Body"));
    }
}
