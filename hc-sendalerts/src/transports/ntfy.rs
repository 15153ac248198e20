//! The `ntfy` kind: a JSON publish to an ntfy server, with a priority per status (0 turns the
//! status off), a Markdown message, and a rate limit of 6 messages per minute per server and
//! topic.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::alert::Alert;

use super::chat;
use super::http::HttpRequest;
use super::text::escape_html;
use super::{Settings, TransportError, Transports, text, tokenbucket};

/// The channel's value.
#[derive(Debug, Clone, Deserialize)]
pub struct NtfySpec {
    /// The topic.
    pub topic: String,
    /// The server's base URL (for example `https://ntfy.sh`).
    pub url: String,
    /// The priority of down notifications (1–5; 0 = none).
    pub priority: i64,
    /// The priority of up notifications (1–5; 0 = none).
    pub priority_up: i64,
    /// An access token, if the topic needs one.
    #[serde(default)]
    pub token: Option<String>,
}

impl NtfySpec {
    /// Parses a channel value.
    pub fn parse(value: &str) -> Option<NtfySpec> {
        serde_json::from_str(value).ok()
    }

    /// The priority for `status`.
    pub fn priority(&self, status: &str) -> i64 {
        if status == "up" {
            self.priority_up
        } else {
            self.priority
        }
    }
}

/// Whether the priority for `new_status` is 0.
pub fn is_noop(value: &str, new_status: &str) -> bool {
    NtfySpec::parse(value).is_some_and(|spec| spec.priority(new_status) == 0)
}

/// Publishes `alert`, unless the topic's rate limit is spent.
pub async fn notify(transports: &Transports, alert: &Alert) -> Result<(), TransportError> {
    let spec =
        NtfySpec::parse(&alert.channel.value).ok_or_else(|| chat::malformed_value("ntfy"))?;
    let key = tokenbucket::ntfy_key(
        &spec.url,
        &spec.topic,
        transports.settings.secret_key.expose(),
    );
    tokenbucket::require(&transports.pool, &key, 6, 60.0).await?;
    chat::send(
        transports,
        build_request(&spec, alert, &transports.settings, Utc::now()),
    )
    .await
}

/// The POST of the message to the server.
pub fn build_request(
    spec: &NtfySpec,
    alert: &Alert,
    settings: &Settings,
    now: DateTime<Utc>,
) -> HttpRequest {
    let token = match (&spec.token, &settings.chat.ntfy_sh_token) {
        (Some(token), _) if !token.is_empty() => Some(token.clone()),
        (_, Some(token)) if spec.url == "https://ntfy.sh" => Some(token.expose().clone()),
        _ => None,
    };
    let headers = token
        .map(|token| {
            (
                "Authorization".to_owned(),
                format!("Bearer {token}").into_bytes(),
            )
        })
        .into_iter()
        .collect();
    chat::json_request(
        "POST",
        spec.url.clone(),
        &payload(spec, alert, settings, now),
        headers,
    )
}

/// The publish payload.
pub fn payload(spec: &NtfySpec, alert: &Alert, settings: &Settings, now: DateTime<Utc>) -> Value {
    let status = alert.flip.new_status.as_str();
    // The reason is in the message ("Reason: …"), not in the title.
    let title = format!(
        "{} is {}",
        alert.check.name_then_code(),
        status.to_uppercase()
    );
    json!({
        "topic": spec.topic,
        "priority": spec.priority(status),
        "title": title,
        "message": message(alert, now),
        "markdown": true,
        "tags": [if status == "down" { "red_circle" } else { "green_circle" }],
        "actions": [{
            "action": "view",
            "label": format!("View on {}", settings.site_name),
            "url": chat::check_url(settings, alert),
        }],
    })
}

/// The Markdown body (values HTML-escaped, as Healthchecks' template does).
pub fn message(alert: &Alert, now: DateTime<Utc>) -> String {
    let check = &alert.check;
    let mut lines = Vec::new();
    let reason = text::reason_long(&alert.flip.reason).filter(|_| alert.flip.new_status == "down");
    if let Some(reason) = reason {
        lines.push(format!("Reason: {reason}."));
        lines.push(String::new());
    } else if let Some(sentence) = chat::downtime_sentence(alert) {
        lines.push(sentence);
        lines.push(String::new());
    }
    if !alert.project.name.is_empty() {
        lines.push(format!("**Project:** {}", escape_html(&alert.project.name)));
    }
    let tags = chat::tags_list(alert);
    if !tags.is_empty() {
        lines.push(format!("**Tags:** {}", escape_html(&tags.join(", "))));
    }
    if check.kind == "simple" {
        lines.push(format!(
            "**Period:** {}",
            text::format_duration(check.timeout)
        ));
    }
    if check.kind == "cron" || check.kind == "oncalendar" {
        lines.push(format!("**Schedule:** `{}`", escape_html(&check.schedule)));
        lines.push(format!("**Time Zone:** {}", escape_html(&check.tz)));
    }
    let ping = alert.last_ping.as_ref();
    lines.push(format!("**Total Pings:** {}", chat::total_pings(ping)));
    lines.push(format!(
        "**Last Ping:** {}",
        chat::last_ping_text(ping, now)
    ));
    let others = chat::other_down_lines(alert, |other| {
        format!(
            "• **{}** (last ping: {})",
            escape_html(&other.name_then_code()),
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
    use crate::transports::chat::tests::{alert, now, settings, up};

    const VALUE: &str =
        r#"{"topic": "foo", "url": "https://example.org", "priority": 5, "priority_up": 1}"#;

    fn request(value: &str, a: &Alert) -> (HttpRequest, Value) {
        let spec = NtfySpec::parse(value).expect("a valid value");
        let request = build_request(&spec, a, &settings(), now());
        let body = serde_json::from_slice(request.body.as_deref().unwrap_or_default())
            .expect("a JSON body");
        (request, body)
    }

    fn header<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a [u8]> {
        request
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    #[test]
    fn down_message() {
        let a = alert("ntfy", VALUE);
        let (request, p) = request(VALUE, &a);
        assert_eq!(request.url, "https://example.org");
        assert_eq!(header(&request, "Authorization"), None);
        assert_eq!(p["topic"], "foo");
        assert_eq!(p["priority"], 5);
        assert_eq!(p["title"], "Foo is DOWN");
        assert_eq!(p["markdown"], true);
        assert_eq!(p["tags"], json!(["red_circle"]));
        assert_eq!(p["actions"][0]["action"], "view");
        assert_eq!(p["actions"][0]["label"], "View on Mychecks");
        let message = p["message"].as_str().unwrap_or_default();
        for expected in [
            "Reason: success signal did not arrive on time, grace time passed.",
            "**Project:** Alices Project",
            "**Tags:** foo, bar",
            "**Period:** 1 day",
            "**Total Pings:** 112233",
            "**Last Ping:** Success, 10 minutes ago",
        ] {
            assert!(message.contains(expected), "{expected:?} in {message:?}");
        }
        assert!(!message.contains("All the other checks are up."));
    }

    #[test]
    fn up_message_uses_priority_up_and_downtime() {
        let a = up(alert("ntfy", VALUE));
        let (_, p) = request(VALUE, &a);
        assert_eq!(p["priority"], 1);
        assert_eq!(p["tags"], json!(["green_circle"]));
        assert!(
            p["message"]
                .as_str()
                .unwrap_or_default()
                .contains("The downtime lasted 1 hour, 30 minutes.")
        );
    }

    #[test]
    fn escapes_markdown_values() {
        let mut a = alert("ntfy", VALUE);
        a.project.name = "Alice & Bob > Charlie".into();
        assert!(message(&a, now()).contains("**Project:** Alice &amp; Bob &gt; Charlie"));
    }

    #[test]
    fn cron_schedule() {
        let mut a = alert("ntfy", VALUE);
        a.check.kind = "cron".into();
        a.check.tz = "Europe/Riga".into();
        let m = message(&a, now());
        assert!(m.contains("**Schedule:** `* * * * *`"));
        assert!(m.contains("**Time Zone:** Europe/Riga"));
    }

    #[test]
    fn channel_token_wins() {
        let value = r#"{"topic": "foo", "url": "https://ntfy.sh", "priority": 5, "priority_up": 1, "token": "tk_test"}"#;
        let (request, _) = request(value, &alert("ntfy", value));
        assert_eq!(
            header(&request, "Authorization"),
            Some(&b"Bearer tk_test"[..])
        );
    }

    #[test]
    fn ntfy_sh_token_only_for_ntfy_sh() {
        let mut s = settings();
        s.chat.ntfy_sh_token = Some(hc_core::config::Secret::new("default".into()));
        let value = r#"{"topic": "foo", "url": "https://ntfy.sh", "priority": 5, "priority_up": 1, "token": null}"#;
        let spec = NtfySpec::parse(value).expect("valid");
        let r = build_request(&spec, &alert("ntfy", value), &s, now());
        assert_eq!(header(&r, "Authorization"), Some(&b"Bearer default"[..]));
        let spec = NtfySpec::parse(VALUE).expect("valid");
        let r = build_request(&spec, &alert("ntfy", VALUE), &s, now());
        assert_eq!(header(&r, "Authorization"), None);
    }

    #[test]
    fn priority_zero_is_a_noop() {
        let value =
            r#"{"topic": "foo", "url": "https://example.org", "priority": 0, "priority_up": 5}"#;
        assert!(is_noop(value, "down"));
        assert!(!is_noop(value, "up"));
        assert!(!is_noop("not json", "down"));
    }
}
