//! The `gotify` kind: a JSON message to `<url>/message?token=…` with a Markdown body and an
//! optional priority per status (0 turns the status off).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::alert::Alert;

use super::chat;
use super::http::HttpRequest;
use super::text::escape_html;
use super::{Settings, TransportError, Transports};

/// The channel's value.
#[derive(Debug, Clone, Deserialize)]
pub struct GotifySpec {
    /// The server's base URL (may have a path).
    pub url: String,
    /// The application token.
    pub token: String,
    /// The priority of down messages; absent in older channels (then none is sent).
    #[serde(default)]
    pub priority: Option<i64>,
    /// The priority of up messages.
    #[serde(default)]
    pub priority_up: Option<i64>,
}

impl GotifySpec {
    /// Parses a channel value.
    pub fn parse(value: &str) -> Option<GotifySpec> {
        serde_json::from_str(value).ok()
    }

    /// The priority for `status`, if the channel has one.
    pub fn priority(&self, status: &str) -> Option<i64> {
        if status == "up" {
            self.priority_up
        } else {
            self.priority
        }
    }
}

/// Whether the priority for `new_status` is 0.
pub fn is_noop(value: &str, new_status: &str) -> bool {
    GotifySpec::parse(value).is_some_and(|spec| spec.priority(new_status) == Some(0))
}

/// Delivers `alert` to the Gotify server.
pub async fn notify(transports: &Transports, alert: &Alert) -> Result<(), TransportError> {
    let spec =
        GotifySpec::parse(&alert.channel.value).ok_or_else(|| chat::malformed_value("gotify"))?;
    chat::send(
        transports,
        build_request(&spec, alert, &transports.settings, Utc::now()),
    )
    .await
}

/// The POST to `<url>/message?token=…`.
pub fn build_request(
    spec: &GotifySpec,
    alert: &Alert,
    settings: &Settings,
    now: DateTime<Utc>,
) -> HttpRequest {
    let base = spec.url.trim_end_matches('/');
    let url = format!("{base}/message?token={}", chat::percent_encode(&spec.token));
    chat::json_request(
        "POST",
        url,
        &payload(spec, alert, settings, now),
        Vec::new(),
    )
}

/// The message.
pub fn payload(spec: &GotifySpec, alert: &Alert, settings: &Settings, now: DateTime<Utc>) -> Value {
    let status = alert.flip.new_status.as_str();
    let mut payload = json!({
        "title": format!("{} is {}", alert.check.name_then_code(), status.to_uppercase()),
        "message": message(alert, settings, now),
        "extras": {"client::display": {"contentType": "text/markdown"}},
    });
    if let Some(priority) = spec.priority(status) {
        payload["priority"] = json!(priority);
    }
    payload
}

/// The Markdown body.
pub fn message(alert: &Alert, settings: &Settings, now: DateTime<Utc>) -> String {
    let link = format!(
        "[{}]({})",
        escape_html(&alert.check.name_then_code()),
        chat::check_url(settings, alert)
    );
    let mut lines = Vec::new();
    if alert.flip.new_status == "down" {
        let reason = chat::reason_in_parens(alert);
        lines.push(format!("🔴 The check {link} is **DOWN**{reason}."));
    } else {
        lines.push(format!("🟢 The check {link} is now **UP**."));
        if let Some(sentence) = chat::downtime_sentence(alert) {
            lines.push(String::new());
            lines.push(sentence);
        }
    }
    let others = chat::other_down_lines(alert, |other| {
        format!(
            "- [{}]({}) (last ping: {})",
            escape_html(&other.name_then_code()),
            chat::other_url(settings, other),
            chat::other_last_ping(other, now)
        )
    });
    if !others.is_empty() {
        lines.push(String::new());
        lines.extend(others);
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transports::chat::tests::{alert, now, other, settings, up};

    fn request(value: &str, a: &Alert) -> (HttpRequest, Value) {
        let spec = GotifySpec::parse(value).expect("a valid value");
        let request = build_request(&spec, a, &settings(), now());
        let body = serde_json::from_slice(request.body.as_deref().unwrap_or_default())
            .expect("a JSON body");
        (request, body)
    }

    #[test]
    fn down_message() {
        let value = r#"{"url": "https://example.org", "token": "abc"}"#;
        let a = alert("gotify", value);
        let (r, p) = request(value, &a);
        assert_eq!(r.url, "https://example.org/message?token=abc");
        assert_eq!(p["title"], "Foo is DOWN");
        let m = p["message"].as_str().unwrap_or_default();
        assert!(m.contains(&chat::check_url(&settings(), &a)));
        assert!(m.contains("grace time passed"));
        assert_eq!(
            p["extras"]["client::display"]["contentType"],
            "text/markdown"
        );
        assert!(p.get("priority").is_none());
    }

    #[test]
    fn subpath_with_and_without_slash() {
        for url in ["https://example.org/sub/", "https://example.org/sub"] {
            let value = json!({"url": url, "token": "abc"}).to_string();
            let (r, _) = request(&value, &alert("gotify", &value));
            assert_eq!(r.url, "https://example.org/sub/message?token=abc");
        }
    }

    #[test]
    fn priorities() {
        let value =
            r#"{"url": "https://example.org", "token": "abc", "priority": 9, "priority_up": 2}"#;
        let (_, p) = request(value, &alert("gotify", value));
        assert_eq!(p["priority"], 9);
        let (_, p) = request(value, &up(alert("gotify", value)));
        assert_eq!(p["priority"], 2);
        assert!(
            p["message"]
                .as_str()
                .unwrap_or_default()
                .contains("The downtime lasted 1 hour, 30 minutes.")
        );
    }

    #[test]
    fn priority_zero_is_a_noop() {
        let value =
            r#"{"url": "https://example.org", "token": "abc", "priority": 0, "priority_up": 5}"#;
        assert!(is_noop(value, "down"));
        assert!(!is_noop(value, "up"));
        assert!(!is_noop(
            r#"{"url": "https://example.org", "token": "abc"}"#,
            "down"
        ));
    }

    #[test]
    fn lists_other_down_checks() {
        let value = r#"{"url": "https://example.org", "token": "abc"}"#;
        let mut a = alert("gotify", value);
        let foobar = other("Foobar");
        a.other_down = Some(vec![foobar.clone()]);
        let m = message(&a, &settings(), now());
        let url = chat::other_url(&settings(), &foobar);
        assert!(m.ends_with(&format!(
            "The following checks are also down:\n- [Foobar]({url}) (last ping: an hour ago)"
        )));
    }
}
