//! The `matrix` kind: an `m.room.message` PUT to `MATRIX_HOMESERVER` as the bot user
//! (`MATRIX_ACCESS_TOKEN`), in plain text and HTML.
//!
//! The transaction id is the notification's code, so a retried delivery of the same
//! notification is deduplicated by the homeserver instead of posted twice.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::alert::Alert;

use super::chat;
use super::http::HttpRequest;
use super::text::escape_html;
use super::{Settings, TransportError, Transports, text};

/// Posts `alert` into the channel's room.
pub async fn notify(transports: &Transports, alert: &Alert) -> Result<(), TransportError> {
    let request = build_request(alert, &transports.settings, Utc::now())
        .ok_or_else(|| TransportError::fail("Matrix notifications are not enabled."))?;
    chat::send(transports, request).await
}

/// The PUT to `<hs>/_matrix/client/v3/rooms/<room>/send/m.room.message/<notification code>`;
/// `None` without `MATRIX_HOMESERVER` or `MATRIX_ACCESS_TOKEN`.
pub fn build_request(
    alert: &Alert,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Option<HttpRequest> {
    let homeserver = settings.chat.matrix_homeserver.as_ref()?;
    let token = settings.chat.matrix_access_token.as_ref()?;
    let url = format!(
        "{homeserver}/_matrix/client/v3/rooms/{}/send/m.room.message/{}",
        chat::percent_encode(alert.channel.value.trim()),
        alert.notification.simple()
    );
    let headers = vec![(
        "Authorization".to_owned(),
        format!("Bearer {}", token.expose()).into_bytes(),
    )];
    Some(chat::json_request(
        "PUT",
        url,
        &payload(alert, settings, now),
        headers,
    ))
}

/// The message event.
pub fn payload(alert: &Alert, settings: &Settings, now: DateTime<Utc>) -> Value {
    json!({
        "msgtype": "m.text",
        "body": plain(alert),
        "format": "org.matrix.custom.html",
        "formatted_body": formatted(alert, settings, now),
    })
}

/// The plain-text body: one sentence, and for an up flip after a down flip the downtime.
pub fn plain(alert: &Alert) -> String {
    // Django escapes the name in this template too, although the text is not HTML.
    let name = escape_html(&alert.check.name_then_code());
    if alert.flip.new_status == "down" {
        format!("{name} is DOWN{}.", chat::reason_in_parens(alert))
    } else {
        with_downtime(format!("{name} is now UP."), alert)
    }
}

/// `sentence`, followed by "The downtime lasted …" when the check was down before.
fn with_downtime(sentence: String, alert: &Alert) -> String {
    match chat::downtime_sentence(alert) {
        Some(downtime) => format!("{sentence} {downtime}"),
        None => sentence,
    }
}

/// The HTML body.
pub fn formatted(alert: &Alert, settings: &Settings, now: DateTime<Utc>) -> String {
    let check = &alert.check;
    let link = format!(
        "<a href=\"{}\">{}</a>",
        chat::check_url(settings, alert),
        escape_html(&check.name_then_code())
    );
    let mut out = if alert.flip.new_status == "down" {
        format!(
            "🔴 The check {link} is <b>DOWN</b>{}.",
            chat::reason_in_parens(alert)
        )
    } else {
        let mut up = format!("🟢 The check {link} is <b>UP</b>.");
        if let Some(downtime) = chat::downtime_sentence(alert) {
            up.push_str(&format!("\n<br>{downtime}"));
        }
        up
    };
    out.push_str("<br>\n<br>\n");
    if !alert.project.name.is_empty() {
        out.push_str(&format!(
            "<b>Project:</b> {}<br>\n",
            escape_html(&alert.project.name)
        ));
    }
    let tags = chat::tags_list(alert);
    if !tags.is_empty() {
        let tags: Vec<String> = tags
            .iter()
            .map(|tag| format!("<code>{}</code>", escape_html(tag)))
            .collect();
        out.push_str(&format!("<b>Tags:</b> {}<br>\n", tags.join(" ")));
    }
    if check.kind == "simple" {
        out.push_str(&format!(
            "<b>Period:</b> {}<br>\n",
            text::format_duration(check.timeout)
        ));
    }
    if check.kind == "cron" || check.kind == "oncalendar" {
        out.push_str(&format!(
            "<b>Schedule:</b> <code>{}</code><br>\n",
            escape_html(&check.schedule)
        ));
        out.push_str(&format!(
            "<b>Time Zone:</b> {}<br>\n",
            escape_html(&check.tz)
        ));
    }
    let ping = alert.last_ping.as_ref();
    out.push_str(&format!(
        "<b>Total Pings:</b> {}<br>\n",
        chat::total_pings(ping)
    ));
    out.push_str(&format!(
        "<b>Last Ping:</b> {}<br>\n",
        chat::last_ping_text(ping, now)
    ));
    if let Some(body) = chat::ping_body(ping) {
        out.push_str(&format!(
            "<b>Last Ping Body:</b><br>\n<pre>{}</pre>\n",
            escape_html(&body)
        ));
    }
    let others = chat::other_down_lines(alert, |other| {
        format!(
            "<li><a href=\"{}\">{}</a> (last ping: {})</li>",
            chat::other_url(settings, other),
            escape_html(&other.name_then_code()),
            chat::other_last_ping(other, now)
        )
    });
    if let Some((heading, items)) = others.split_first() {
        out.push_str(&format!("<br>\n{heading}<br>\n"));
        if !items.is_empty() {
            out.push_str(&format!("<ul>{}</ul>\n", items.join("")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::PingBody;
    use crate::transports::chat::tests::{alert, now, other, settings, up};

    #[test]
    fn request() {
        let a = alert("matrix", "!abc:example.org");
        let r = build_request(&a, &settings(), now()).expect("configured");
        assert_eq!(r.method, "PUT");
        assert_eq!(
            r.url,
            format!(
                "https://matrix.example.org/_matrix/client/v3/rooms/%21abc%3Aexample.org/send/m.room.message/{}",
                a.notification.simple()
            )
        );
        assert!(
            r.headers
                .contains(&("Authorization".to_owned(), b"Bearer mx-token".to_vec()))
        );
        let p: Value = serde_json::from_slice(r.body.as_deref().unwrap_or_default()).expect("JSON");
        assert_eq!(p["msgtype"], "m.text");
        assert_eq!(p["format"], "org.matrix.custom.html");
        assert_eq!(
            p["body"],
            "Foo is DOWN (success signal did not arrive on time, grace time passed)."
        );
        let html = p["formatted_body"].as_str().unwrap_or_default();
        assert!(html.contains("<b>Tags:</b> <code>foo</code> <code>bar</code><br>"));
        assert!(html.contains("<b>Last Ping:</b> Success, 10 minutes ago<br>"));
    }

    #[test]
    fn same_notification_same_transaction() {
        let a = alert("matrix", "!abc:example.org");
        let first = build_request(&a, &settings(), now()).expect("configured");
        let again = build_request(&a, &settings(), now()).expect("configured");
        assert_eq!(first.url, again.url);
    }

    #[test]
    fn unconfigured() {
        let mut s = settings();
        s.chat.matrix_homeserver = None;
        assert!(build_request(&alert("matrix", "!a:b"), &s, now()).is_none());
    }

    #[test]
    fn up_with_body_and_others() {
        let mut a = up(alert("matrix", "!a:b"));
        let bar = other("Bar <1>");
        a.other_down = Some(vec![bar.clone()]);
        if let Some(ping) = a.last_ping.as_mut() {
            ping.body = PingBody::Inline(b"a < b".to_vec());
        }
        assert_eq!(
            plain(&a),
            "Foo is now UP. The downtime lasted 1 hour, 30 minutes."
        );
        let html = formatted(&a, &settings(), now());
        assert!(html.contains("is <b>UP</b>.\n<br>The downtime lasted 1 hour, 30 minutes."));
        assert!(html.contains("<pre>a &lt; b</pre>"));
        assert!(html.contains(&format!(
            "The following checks are still down:<br>\n<ul><li><a href=\"{}\">Bar &lt;1&gt;</a> \
                 (last ping: an hour ago)</li></ul>",
            chat::other_url(&settings(), &bar)
        )));
    }
}
