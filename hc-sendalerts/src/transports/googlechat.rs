//! The `googlechat` kind: a Google Chat webhook, sent one `cardsV2` card (a heading paragraph,
//! labelled facts and a "View in …" button).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::alert::Alert;

use super::chat;
use super::http::HttpRequest;
use super::text::escape_html;
use super::{Settings, TransportError, Transports, slack, text};

/// Delivers `alert` to the channel's webhook URL.
pub async fn notify(transports: &Transports, alert: &Alert) -> Result<(), TransportError> {
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

/// The `cardsV2` message.
pub fn payload(alert: &Alert, settings: &Settings, now: DateTime<Utc>) -> Value {
    let check = &alert.check;
    // `googlechat_message.html` as `Transport.tmpl` renders it: lines joined by newlines, values
    // escaped, stripped, and no-break spaces made plain.
    let name = escape_html(&check.name_then_code());
    let mut lines = Vec::new();
    if alert.flip.new_status == "down" {
        lines.push(format!("🔴 The check <b>{name}</b> is <b>DOWN</b>."));
        if !alert.flip.reason.is_empty() {
            let reason = text::reason_long(&alert.flip.reason).unwrap_or("None");
            lines.push(format!("Reason: {reason}."));
        }
    } else {
        lines.push(format!("🟢 The check <b>{name}</b> is now <b>UP</b>."));
        if let Some(downtime) = slack::downtime_sentence(alert) {
            lines.push(downtime);
        }
    }
    let title = text::python_strip(&lines.join("\n")).replace('\u{a0}', " ");

    let mut widgets = vec![json!({"textParagraph": {"text": title}})];
    let mut field = |label: &str, text: String| {
        widgets.push(json!({"decoratedText": {"topLabel": label, "text": text}}));
    };
    if !alert.project.name.is_empty() {
        field("Project", alert.project.name.clone());
    }
    let tags = text::tags_list(&check.tags);
    if !tags.is_empty() {
        field("Tags", tags.join(", "));
    }
    if check.kind == "simple" {
        field("Period", text::format_duration(check.timeout));
    }
    if check.kind == "cron" || check.kind == "oncalendar" {
        field("Schedule", check.schedule.clone());
        field("Time Zone", check.tz.clone());
    }
    let ping = alert.last_ping.as_ref();
    field("Total Pings", chat::total_pings(ping));
    field("Last Ping", chat::last_ping_text(ping, now));
    widgets.push(json!({
        "buttonList": {"buttons": [{
            "text": format!("View in {}", settings.site_name),
            "type": "FILLED",
            "onClick": {"openLink": {"url": chat::check_url(settings, alert)}},
        }]}
    }));

    json!({
        "cardsV2": [{
            "card": {
                // One collapsible section whose first widget (the heading) stays visible.
                // Healthchecks sends `sections` as this object, not the list the Chat API
                // documents; sent the same way so both implementations behave alike.
                "sections": {
                    "collapsible": true,
                    "uncollapsibleWidgetsCount": 1,
                    "widgets": widgets,
                },
            },
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transports::chat::tests::{alert, now, settings, up};

    fn widgets(alert: &Alert) -> Vec<Value> {
        payload(alert, &settings(), now())["cardsV2"][0]["card"]["sections"]["widgets"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn down_card() {
        let a = alert(
            "googlechat",
            "https://chat.googleapis.com/v1/spaces/x/messages?key=k",
        );
        let request = build_request(&a, &settings(), now());
        assert_eq!(
            request.url,
            "https://chat.googleapis.com/v1/spaces/x/messages?key=k"
        );
        let w = widgets(&a);
        assert_eq!(
            w[0]["textParagraph"]["text"],
            "🔴 The check <b>Foo</b> is <b>DOWN</b>.\n\
             Reason: success signal did not arrive on time, grace time passed."
        );
        assert_eq!(w[1]["decoratedText"]["topLabel"], "Project");
        assert_eq!(w[2]["decoratedText"]["text"], "foo, bar");
        assert_eq!(w[3]["decoratedText"]["text"], "1 day");
        assert_eq!(w[5]["decoratedText"]["text"], "Success, 10 minutes ago");
        let button = &w[6]["buttonList"]["buttons"][0];
        assert_eq!(button["text"], "View in Mychecks");
        assert_eq!(
            button["onClick"]["openLink"]["url"],
            format!("https://hc.example.org/cloaked/{}/", a.check.unique_key())
        );
    }

    #[test]
    fn names_are_escaped() {
        let mut a = alert("googlechat", "https://example.org");
        a.check.name = "<db> & co".to_owned();
        a.flip.reason = String::new();
        let w = widgets(&a);
        assert_eq!(
            w[0]["textParagraph"]["text"],
            "🔴 The check <b>&lt;db&gt; &amp; co</b> is <b>DOWN</b>."
        );
    }

    #[test]
    fn up_card_without_ping() {
        let mut a = up(alert("googlechat", "https://example.org"));
        a.last_ping = None;
        let w = widgets(&a);
        assert_eq!(
            w[0]["textParagraph"]["text"],
            "🟢 The check <b>Foo</b> is now <b>UP</b>.\nThe downtime lasted 1 hour, 30 minutes."
        );
        assert_eq!(w[4]["decoratedText"]["text"], "0");
        assert_eq!(w[5]["decoratedText"]["text"], "Never");
    }
}
