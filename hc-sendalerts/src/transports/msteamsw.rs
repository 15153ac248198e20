//! The `msteamsw` kind: a Microsoft Teams Workflows webhook, sent an Adaptive Card 1.2 with a
//! heading, a fact set and, when the last ping has a body, a code block of it.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::alert::Alert;

use super::chat;
use super::http::HttpRequest;
use super::text::escape_html;
use super::{Settings, TransportError, Transports, text};

/// Delivers `alert` to the channel's Workflows URL; fails when `MSTEAMS_ENABLED` is off.
pub async fn notify(transports: &Transports, alert: &Alert) -> Result<(), TransportError> {
    if !transports.settings.chat.msteams_enabled {
        return Err(TransportError::fail(
            "MS Teams notifications are not enabled.",
        ));
    }
    chat::send(
        transports,
        build_request(alert, &transports.settings, Utc::now()),
    )
    .await
}

/// The POST of the card to the channel's URL.
pub fn build_request(alert: &Alert, settings: &Settings, now: DateTime<Utc>) -> HttpRequest {
    chat::json_request(
        "POST",
        alert.channel.value.trim().to_owned(),
        &payload(alert, settings, now),
        Vec::new(),
    )
}

/// The message with its Adaptive Card.
pub fn payload(alert: &Alert, settings: &Settings, now: DateTime<Utc>) -> Value {
    let check = &alert.check;
    let name = check.name_then_code();
    let status = alert.flip.new_status.to_uppercase();
    // `msteamsw_message.html` as `Transport.tmpl` renders it: escaped, stripped, and no-break
    // spaces made plain.
    let heading = if alert.flip.new_status == "down" {
        let reason = match alert.flip.reason.as_str() {
            "" => String::new(),
            reason => format!(" ({})", text::reason_long(reason).unwrap_or("None")),
        };
        format!("🔴 “{}” is DOWN{reason}.", escape_html(&name))
    } else {
        format!("🟢 “{}” is UP.", escape_html(&name))
    };
    let heading = text::python_strip(&heading).replace('\u{a0}', " ");

    // Healthchecks fills the fact set with its Slack field helper, whose fields are `short`.
    let mut facts = Vec::new();
    let mut fact = |title: &str, value: String| {
        facts.push(json!({"title": title, "value": value, "short": true}));
    };
    if !check.desc.is_empty() {
        fact("Description:", check.desc.replace('\n', "\n\n"));
    }
    if !alert.project.name.is_empty() {
        fact("Project:", alert.project.name.clone());
    }
    let tags = text::tags_list(&check.tags);
    if !tags.is_empty() {
        fact("Tags:", tags.join(" "));
    }
    if check.kind == "simple" {
        fact("Period:", text::format_duration(check.timeout));
    }
    if check.kind == "cron" || check.kind == "oncalendar" {
        // Healthchecks keeps asterisks from reading as Markdown with a combining grapheme joiner.
        fact("Schedule:", check.schedule.replace('*', "\u{34f}*"));
        fact("Time Zone:", check.tz.clone());
    }
    let ping = alert.last_ping.as_ref();
    fact("Total Pings:", chat::total_pings(ping));
    fact("Last Ping:", chat::last_ping_text(ping, now));

    let mut body = vec![
        json!({
            "type": "TextBlock",
            "text": heading,
            "weight": "bolder",
            "size": "medium",
            "wrap": true,
            "style": "heading",
        }),
        json!({"type": "FactSet", "facts": facts}),
    ];
    if let Some(text) = chat::ping_body(ping) {
        body.push(json!({"type": "TextBlock", "text": "Last Ping Body:", "weight": "bolder"}));
        body.push(json!({"type": "CodeBlock", "codeSnippet": text, "language": "PlainText"}));
    }

    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "fallbackText": format!("“{}” is {status}.", escape_html(&name)),
                "version": "1.2",
                "body": body,
                "actions": [{
                    "type": "Action.OpenUrl",
                    "title": format!("View in {}", settings.site_name),
                    "url": chat::check_url(settings, alert),
                }],
            },
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::PingBody;
    use crate::transports::chat::tests::{alert, now, settings};

    fn card(alert: &Alert) -> Value {
        payload(alert, &settings(), now())["attachments"][0]["content"].clone()
    }

    fn fact(card: &Value, title: &str) -> Option<String> {
        card["body"][1]["facts"]
            .as_array()?
            .iter()
            .find(|f| f["title"] == title)
            .and_then(|f| f["value"].as_str())
            .map(str::to_owned)
    }

    #[test]
    fn down_card() {
        let a = alert("msteamsw", "https://example.webhook.office.com/x");
        let request = build_request(&a, &settings(), now());
        assert_eq!(request.method, "POST");
        assert_eq!(request.url, "https://example.webhook.office.com/x");
        let card = card(&a);
        assert_eq!(card["version"], "1.2");
        assert_eq!(card["fallbackText"], "“Foo” is DOWN.");
        assert_eq!(
            card["body"][0]["text"],
            "🔴 “Foo” is DOWN (success signal did not arrive on time, grace time passed)."
        );
        assert_eq!(
            fact(&card, "Last Ping:").as_deref(),
            Some("Success, 10 minutes ago")
        );
        assert_eq!(fact(&card, "Total Pings:").as_deref(), Some("112233"));
        assert_eq!(fact(&card, "Period:").as_deref(), Some("1 day"));
        assert_eq!(fact(&card, "Tags:").as_deref(), Some("foo bar"));
        assert!(
            card["body"][1]["facts"]
                .as_array()
                .expect("facts")
                .iter()
                .all(|f| f["short"] == true)
        );
        assert_eq!(
            card["actions"][0]["url"],
            format!("https://hc.example.org/cloaked/{}/", a.check.unique_key())
        );
        // No code block without a body, and the check's UUID never appears.
        assert_eq!(card["body"].as_array().map(Vec::len), Some(2));
        let text = String::from_utf8(request.body.expect("a body")).expect("utf-8");
        assert!(!text.contains(&a.check.code.to_string()));
    }

    #[test]
    fn up_card_with_body_and_cron() {
        let mut a = chat::tests::up(alert("msteamsw", "https://example.org/x"));
        a.check.kind = "cron".into();
        a.check.schedule = "0 * * * *".into();
        if let Some(ping) = a.last_ping.as_mut() {
            ping.body = PingBody::Inline(b"Hello World".to_vec());
        }
        let card = card(&a);
        assert_eq!(card["body"][0]["text"], "🟢 “Foo” is UP.");
        assert_eq!(
            fact(&card, "Schedule:").as_deref(),
            Some("0 \u{34f}* \u{34f}* \u{34f}* \u{34f}*")
        );
        assert_eq!(fact(&card, "Period:"), None);
        assert_eq!(card["body"][3]["type"], "CodeBlock");
        assert_eq!(card["body"][3]["codeSnippet"], "Hello World");
    }

    #[test]
    fn escapes_the_name_in_the_heading() {
        let mut a = alert("msteamsw", "https://example.org/x");
        a.check.name = "Foo & Bar".into();
        let card = card(&a);
        assert_eq!(card["fallbackText"], "“Foo &amp; Bar” is DOWN.");
        assert_eq!(
            card["body"][0]["text"],
            "🔴 “Foo &amp; Bar” is DOWN (success signal did not arrive on time, grace time passed)."
        );
    }
}
