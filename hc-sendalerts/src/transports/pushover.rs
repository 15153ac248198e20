//! The `po` kind (Pushover): a form POST to `/1/messages.json` with a priority per status
//! (-3 turns the status off, 2 is an emergency that repeats until acknowledged), 6 messages per
//! minute per user key, and emergencies cancelled when the check comes back up.

use chrono::{DateTime, Utc};

use crate::alert::Alert;

use super::chat;
use super::http::{HttpRequest, expect_success};
use super::text::escape_html;
use super::{Settings, TransportError, Transports, text, tokenbucket};

/// The priority that turns a status off.
pub const DISABLED: i32 = -3;
/// The emergency priority.
pub const EMERGENCY: i32 = 2;

/// The channel's value: `"<user_key>|<prio>|<prio_up>"`, or the legacy `"<user_key>|<prio>"`
/// (the same priority both ways).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushoverSpec {
    /// The user (or group) key.
    pub user_key: String,
    /// The priority of down notifications.
    pub priority: i32,
    /// The priority of up notifications.
    pub priority_up: i32,
}

impl PushoverSpec {
    /// Parses a channel value.
    pub fn parse(value: &str) -> Option<PushoverSpec> {
        let parts: Vec<&str> = value.split('|').collect();
        let (user_key, priority, priority_up) = match parts.as_slice() {
            [user_key, prio] => (user_key, prio.parse().ok()?, prio.parse().ok()?),
            [user_key, prio, prio_up] => (user_key, prio.parse().ok()?, prio_up.parse().ok()?),
            _ => return None,
        };
        Some(PushoverSpec {
            user_key: (*user_key).to_owned(),
            priority,
            priority_up,
        })
    }

    /// The priority for `status`.
    pub fn priority(&self, status: &str) -> i32 {
        if status == "up" {
            self.priority_up
        } else {
            self.priority
        }
    }
}

/// Whether the priority for `new_status` is -3.
pub fn is_noop(value: &str, new_status: &str) -> bool {
    PushoverSpec::parse(value).is_some_and(|spec| spec.priority(new_status) == DISABLED)
}

/// Sends `alert`: after an emergency down, an up first cancels the emergency's retries.
pub async fn notify(transports: &Transports, alert: &Alert) -> Result<(), TransportError> {
    let settings = &transports.settings;
    let Some(api_token) = &settings.chat.pushover_api_token else {
        return Err(TransportError::fail(
            "Pushover notifications are not enabled.",
        ));
    };
    let spec =
        PushoverSpec::parse(&alert.channel.value).ok_or_else(|| chat::malformed_value("po"))?;
    let key = tokenbucket::pushover_key(&spec.user_key, settings.secret_key.expose());
    tokenbucket::require(&transports.pool, &key, 6, 60.0).await?;

    if alert.flip.new_status == "up" && spec.priority == EMERGENCY {
        let cancel = cancel_request(alert, settings, api_token.expose());
        check_response(transports.http.send(cancel).await?)?;
    }
    let request = build_request(&spec, alert, settings, api_token.expose(), Utc::now());
    check_response(transports.http.send(request).await?)
}

/// Success, or Healthchecks' errors: a 400 naming an invalid user is permanent.
fn check_response(response: super::http::HttpResponse) -> Result<(), TransportError> {
    if response.status == 400 {
        let invalid_user = serde_json::from_slice::<serde_json::Value>(&response.body)
            .ok()
            .is_some_and(|doc| doc["user"] == "invalid");
        if invalid_user {
            return Err(TransportError::permanent(
                "Received status code 400 (invalid user)",
            ));
        }
    }
    expect_success(response).map(drop)
}

/// The POST that cancels the check's emergency notifications (tagged with its unique key).
pub fn cancel_request(alert: &Alert, settings: &Settings, api_token: &str) -> HttpRequest {
    let url = format!(
        "{}/1/receipts/cancel_by_tag/{}.json",
        settings.chat.pushover_api_url,
        alert.check.unique_key()
    );
    chat::form_request(url, &[("token", api_token.to_owned())])
}

/// The message POST.
pub fn build_request(
    spec: &PushoverSpec,
    alert: &Alert,
    settings: &Settings,
    api_token: &str,
    now: DateTime<Utc>,
) -> HttpRequest {
    let status = alert.flip.new_status.as_str();
    let priority = spec.priority(status);
    let emoji = if status == "down" { "🔴" } else { "🟢" };
    let mut fields = vec![
        ("token", api_token.to_owned()),
        ("user", spec.user_key.clone()),
        ("message", message(alert, now)),
        // The title is plain text: not escaped.
        (
            "title",
            format!(
                "{emoji} {} is {}",
                alert.check.name_then_code(),
                status.to_uppercase()
            ),
        ),
        ("html", "1".to_owned()),
        ("priority", priority.to_string()),
        // Emergencies are cancelled by this tag when the check comes back up.
        ("tags", alert.check.unique_key()),
        ("url", chat::check_url(settings, alert)),
        ("url_title", format!("View on {}", settings.site_name)),
    ];
    if priority == EMERGENCY {
        fields.push((
            "retry",
            settings.chat.pushover_emergency_retry_delay.to_string(),
        ));
        fields.push((
            "expire",
            settings.chat.pushover_emergency_expiration.to_string(),
        ));
    }
    let url = format!("{}/1/messages.json", settings.chat.pushover_api_url);
    chat::form_request(url, &fields)
}

/// The HTML body.
pub fn message(alert: &Alert, now: DateTime<Utc>) -> String {
    // The title names the check and its status; the message starts with the reason or the
    // downtime, and the text is trimmed as Healthchecks' `tmpl` trims it.
    let mut lines = Vec::new();
    if alert.flip.new_status == "down" {
        if let Some(reason) = text::reason_long(&alert.flip.reason) {
            lines.push(format!("Reason: {reason}."));
        }
    } else if let Some(sentence) = chat::downtime_sentence(alert) {
        lines.push(sentence);
    }
    lines.push(String::new());
    lines.extend(chat::html_details(alert, now, |schedule| {
        format!("<code>{schedule}</code>")
    }));
    let others = chat::other_down_lines(alert, |other| {
        format!(
            "• <b>{}</b> (last ping: {})",
            escape_html(&other.name_then_code()),
            chat::other_last_ping(other, now)
        )
    });
    if !others.is_empty() {
        lines.push(String::new());
        lines.extend(others);
    }
    lines.join("\n").trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transports::chat::tests::{alert, now, settings, up};

    fn form(request: &HttpRequest) -> Vec<(String, String)> {
        let body = String::from_utf8(request.body.clone().unwrap_or_default()).expect("utf-8");
        body.split('&')
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (k.to_owned(), decode(v))
            })
            .collect()
    }

    fn decode(v: &str) -> String {
        let v = v.replace('+', " ");
        let mut out = Vec::new();
        let mut bytes = v.bytes();
        while let Some(b) = bytes.next() {
            if b == b'%' {
                let hex: String = [bytes.next(), bytes.next()]
                    .into_iter()
                    .flatten()
                    .map(char::from)
                    .collect();
                out.push(u8::from_str_radix(&hex, 16).unwrap_or(b'?'));
            } else {
                out.push(b);
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    fn field(form: &[(String, String)], name: &str) -> Option<String> {
        form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn parses_values() {
        assert_eq!(
            PushoverSpec::parse("123|0"),
            Some(PushoverSpec {
                user_key: "123".into(),
                priority: 0,
                priority_up: 0
            })
        );
        assert_eq!(
            PushoverSpec::parse("123|2|-1"),
            Some(PushoverSpec {
                user_key: "123".into(),
                priority: 2,
                priority_up: -1
            })
        );
        assert_eq!(PushoverSpec::parse("123"), None);
        assert_eq!(PushoverSpec::parse("123|x"), None);
    }

    #[test]
    fn disabled_priorities_are_noops() {
        assert!(is_noop("123|-3", "down"));
        assert!(is_noop("123|-3", "up"));
        assert!(is_noop("123|0|-3", "up"));
        assert!(!is_noop("123|0|-3", "down"));
    }

    #[test]
    fn down_message() {
        let a = alert("po", "123|0");
        let spec = PushoverSpec::parse("123|0").expect("valid");
        let r = build_request(&spec, &a, &settings(), "po-token", now());
        assert_eq!(r.url, "https://api.pushover.net/1/messages.json");
        let f = form(&r);
        assert_eq!(field(&f, "token").as_deref(), Some("po-token"));
        assert_eq!(field(&f, "user").as_deref(), Some("123"));
        assert_eq!(field(&f, "title").as_deref(), Some("🔴 Foo is DOWN"));
        assert_eq!(field(&f, "html").as_deref(), Some("1"));
        assert_eq!(field(&f, "priority").as_deref(), Some("0"));
        assert_eq!(field(&f, "tags"), Some(a.check.unique_key()));
        assert_eq!(field(&f, "url"), Some(chat::check_url(&settings(), &a)));
        assert_eq!(field(&f, "retry"), None);
        let m = field(&f, "message").unwrap_or_default();
        assert!(m.contains("112233") && m.contains("10 minutes ago"), "{m}");
        assert!(!m.contains("All the other checks are up."));
        assert!(
            m.starts_with("Reason: success signal did not arrive on time, grace time passed.\n\n"),
            "{m}"
        );
    }

    #[test]
    fn schedule_is_code() {
        let mut a = alert("po", "123|0");
        a.check.kind = "cron".into();
        a.check.tz = "Europe/Riga".into();
        let m = message(&a, now());
        assert!(m.contains("<b>Schedule:</b> <code>* * * * *</code>"), "{m}");
        assert!(m.contains("<b>Time Zone:</b> Europe/Riga"), "{m}");
    }

    #[test]
    fn emergency_up_has_retry_and_expire() {
        let a = up(alert("po", "123|0|2"));
        let spec = PushoverSpec::parse("123|0|2").expect("valid");
        let f = form(&build_request(&spec, &a, &settings(), "t", now()));
        assert_eq!(field(&f, "title").as_deref(), Some("🟢 Foo is UP"));
        assert_eq!(field(&f, "priority").as_deref(), Some("2"));
        assert_eq!(field(&f, "retry").as_deref(), Some("300"));
        assert_eq!(field(&f, "expire").as_deref(), Some("86400"));
    }

    #[test]
    fn title_is_not_escaped() {
        let mut a = alert("po", "123|0");
        a.check.name = "Foo & Bar".into();
        let spec = PushoverSpec::parse("123|0").expect("valid");
        let f = form(&build_request(&spec, &a, &settings(), "t", now()));
        assert_eq!(field(&f, "title").as_deref(), Some("🔴 Foo & Bar is DOWN"));
    }

    #[test]
    fn cancel_by_tag_url() {
        let a = up(alert("po", "123|2|0"));
        let r = cancel_request(&a, &settings(), "t");
        assert_eq!(
            r.url,
            format!(
                "https://api.pushover.net/1/receipts/cancel_by_tag/{}.json",
                a.check.unique_key()
            )
        );
    }

    #[test]
    fn invalid_user_is_permanent() {
        let response = |status, body: &[u8]| super::super::http::HttpResponse {
            status,
            body: body.to_vec(),
        };
        assert_eq!(
            check_response(response(400, br#"{"user": "invalid"}"#)),
            Err(TransportError::permanent(
                "Received status code 400 (invalid user)"
            ))
        );
        assert_eq!(
            check_response(response(400, b"")),
            Err(TransportError::fail("Received status code 400"))
        );
        assert_eq!(
            check_response(response(500, br#"{"user": "invalid"}"#)),
            Err(TransportError::transient("Received status code 500"))
        );
    }
}
