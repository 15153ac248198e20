//! The `telegram` kind: the Bot API's `sendMessage` with an HTML message, 6 messages per minute
//! per chat. A group that became a supergroup answers with `migrate_to_chat_id`: the new id is
//! saved into the channel's value and the message sent again. A blocked bot, a deleted group, a
//! deactivated user or an unknown chat disables the channel.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::alert::Alert;

use super::chat;
use super::http::{HttpRequest, HttpResponse, expect_success};
use super::text::escape_html;
use super::{Settings, TransportError, Transports, tokenbucket};

/// The channel's value (other keys, such as `type` and `name`, are kept as they are).
#[derive(Debug, Clone, Deserialize)]
pub struct TelegramSpec {
    /// The chat id.
    pub id: i64,
    /// The forum topic, if any.
    #[serde(default)]
    pub thread_id: Option<i64>,
}

impl TelegramSpec {
    /// Parses a channel value.
    pub fn parse(value: &str) -> Option<TelegramSpec> {
        serde_json::from_str(value).ok()
    }
}

/// What an attempt's answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Sent.
    Sent,
    /// The chat moved to a new id: save it and send again.
    Migrate(i64),
}

/// Sends `alert`, following one chat migration.
pub async fn notify(transports: &Transports, alert: &Alert) -> Result<(), TransportError> {
    let settings = &transports.settings;
    let Some(token) = &settings.chat.telegram_token else {
        return Err(TransportError::fail(
            "Telegram notifications are not enabled.",
        ));
    };
    let spec = TelegramSpec::parse(&alert.channel.value)
        .ok_or_else(|| chat::malformed_value("telegram"))?;
    tokenbucket::require(
        &transports.pool,
        &tokenbucket::telegram_key(spec.id),
        6,
        60.0,
    )
    .await?;

    let text = message(alert, settings, Utc::now());
    let url = send_message_url(settings, token.expose());
    let request = build_request(&url, spec.id, spec.thread_id, &text);
    match classify(transports.http.send(request).await?)? {
        Outcome::Sent => Ok(()),
        Outcome::Migrate(new_id) => {
            save_chat_id(transports, alert, new_id).await?;
            let request = build_request(&url, new_id, spec.thread_id, &text);
            match classify(transports.http.send(request).await?)? {
                Outcome::Sent => Ok(()),
                Outcome::Migrate(_) => Err(TransportError::fail(
                    "Telegram asked to migrate the chat twice",
                )),
            }
        }
    }
}

/// Writes `new_id` into the channel's value, keeping its other keys.
async fn save_chat_id(
    transports: &Transports,
    alert: &Alert,
    new_id: i64,
) -> Result<(), TransportError> {
    let value = migrated_value(&alert.channel.value, new_id)
        .ok_or_else(|| chat::malformed_value("telegram"))?;
    let client = transports.pool.get().await.map_err(|err| {
        TransportError::transient(format!("cannot save the new Telegram chat id: {err}"))
    })?;
    client
        .execute(
            "UPDATE api_channel SET value = $1 WHERE id = $2",
            &[&value, &alert.channel.id],
        )
        .await
        .map_err(|err| {
            TransportError::transient(format!("cannot save the new Telegram chat id: {err}"))
        })?;
    Ok(())
}

/// The channel's value with its chat id replaced.
pub fn migrated_value(value: &str, new_id: i64) -> Option<String> {
    let mut doc: Value = serde_json::from_str(value).ok()?;
    doc.as_object_mut()?.insert("id".to_owned(), json!(new_id));
    Some(doc.to_string())
}

/// `<api>/bot<token>/sendMessage`.
pub fn send_message_url(settings: &Settings, token: &str) -> String {
    format!("{}/bot{token}/sendMessage", settings.chat.telegram_api_url)
}

/// The `sendMessage` POST.
pub fn build_request(url: &str, chat_id: i64, thread_id: Option<i64>, text: &str) -> HttpRequest {
    let payload = json!({
        "chat_id": chat_id,
        "message_thread_id": thread_id,
        "text": text,
        "parse_mode": "html",
    });
    chat::json_request("POST", url.to_owned(), &payload, Vec::new())
}

#[derive(Deserialize)]
struct ApiError {
    description: String,
    #[serde(default)]
    parameters: Option<Parameters>,
}

#[derive(Deserialize)]
struct Parameters {
    #[serde(default)]
    migrate_to_chat_id: Option<i64>,
}

/// Reads the Bot API's answer: success, a migration, or an error in Healthchecks' words.
pub fn classify(response: HttpResponse) -> Result<Outcome, TransportError> {
    if matches!(response.status, 200 | 201 | 202 | 204) {
        return Ok(Outcome::Sent);
    }
    let Ok(error) = serde_json::from_slice::<ApiError>(&response.body) else {
        return expect_success(response).map(|_| Outcome::Sent);
    };
    if let Some(new_id) = error.parameters.and_then(|p| p.migrate_to_chat_id) {
        return Ok(Outcome::Migrate(new_id));
    }
    let message = format!(
        "Received status code {} with a message: \"{}\"",
        response.status, error.description
    );
    let permanent = matches!(
        error.description.as_str(),
        "Forbidden: the group chat was deleted"
            | "Forbidden: bot was blocked by the user"
            | "Forbidden: user is deactivated"
    ) || error.description.contains("chat not found");
    Err(if permanent {
        TransportError::permanent(message)
    } else if response.status >= 500 {
        TransportError::transient(message)
    } else {
        TransportError::fail(message)
    })
}

/// The HTML message.
pub fn message(alert: &Alert, settings: &Settings, now: DateTime<Utc>) -> String {
    let check = &alert.check;
    let link = format!(
        "<a href=\"{}\">{}</a>",
        chat::check_url(settings, alert),
        escape_html(&check.name_then_code())
    );
    let mut lines = Vec::new();
    if alert.flip.new_status == "down" {
        let reason = chat::reason_in_parens(alert);
        lines.push(format!("🔴 The check {link} is <b>DOWN</b>{reason}."));
    } else {
        lines.push(format!("🟢 The check {link} is now <b>UP</b>."));
        lines.extend(chat::downtime_sentence(alert));
    }
    lines.push(String::new());
    lines.extend(chat::html_details(alert, now, |schedule| {
        format!("<code>{schedule}</code>")
    }));
    let ping = alert.last_ping.as_ref();
    if let Some(body) = chat::ping_body(ping) {
        lines.push("<b>Last Ping Body:</b>".to_owned());
        lines.push(format!("<pre>{}</pre>", escape_html(&body)));
    }
    let others = chat::other_down_lines(alert, |other| {
        format!(
            "- <a href=\"{}\">{}</a> (last ping: {})",
            chat::other_url(settings, other),
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
    use crate::alert::PingBody;
    use crate::transports::chat::tests::{alert, now, settings, up};

    fn response(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn request_payload() {
        let s = settings();
        let url = send_message_url(&s, "bot-token");
        assert_eq!(url, "https://api.telegram.org/botbot-token/sendMessage");
        let r = build_request(&url, 123, None, "hi");
        let p: Value = serde_json::from_slice(r.body.as_deref().unwrap_or_default()).expect("JSON");
        assert_eq!(
            p,
            json!({"chat_id": 123, "message_thread_id": null, "text": "hi", "parse_mode": "html"})
        );
        let r = build_request(&url, 123, Some(456), "hi");
        let p: Value = serde_json::from_slice(r.body.as_deref().unwrap_or_default()).expect("JSON");
        assert_eq!(p["message_thread_id"], 456);
    }

    #[test]
    fn down_message() {
        let a = alert("telegram", r#"{"id": 123}"#);
        let m = message(&a, &settings(), now());
        assert!(m.contains(">Foo</a>"));
        assert!(m.contains(&chat::check_url(&settings(), &a)));
        assert!(m.contains("grace time passed"));
        for line in [
            "<b>Project:</b> Alices Project\n",
            "<b>Tags:</b> foo, bar\n",
            "<b>Period:</b> 1 day\n",
            "<b>Total Pings:</b> 112233\n",
            "<b>Last Ping:</b> Success, 10 minutes ago",
        ] {
            assert!(m.contains(line), "{line:?} in {m:?}");
        }
        assert!(!m.contains("All the other checks are up."));
    }

    #[test]
    fn up_message_with_escaped_body() {
        let mut a = up(alert("telegram", r#"{"id": 123}"#));
        if let Some(ping) = a.last_ping.as_mut() {
            ping.body = PingBody::Inline(b"<b>bold</b>\nfoo & bar".to_vec());
        }
        let m = message(&a, &settings(), now());
        assert!(m.contains("is now <b>UP</b>.\nThe downtime lasted 1 hour, 30 minutes.\n\n"));
        assert!(
            m.contains("<b>Last Ping Body:</b>\n<pre>&lt;b&gt;bold&lt;/b&gt;\nfoo &amp; bar</pre>")
        );
    }

    #[test]
    fn errors() {
        assert_eq!(classify(response(200, "{}")), Ok(Outcome::Sent));
        assert_eq!(
            classify(response(400, r#"{"description": "Hi"}"#)),
            Err(TransportError::fail(
                "Received status code 400 with a message: \"Hi\""
            ))
        );
        assert_eq!(
            classify(response(400, "not json")),
            Err(TransportError::fail("Received status code 400"))
        );
        assert_eq!(
            classify(response(
                400,
                r#"{"description": "Hello", "parameters": {"migrate_to_chat_id": -234}}"#
            )),
            Ok(Outcome::Migrate(-234))
        );
        for description in [
            "Forbidden: the group chat was deleted",
            "Forbidden: bot was blocked by the user",
            "Forbidden: user is deactivated",
            "Bad Request: chat not found",
        ] {
            let body = json!({"description": description}).to_string();
            let err = classify(response(403, &body)).expect_err("an error");
            assert_eq!(
                err.failure,
                super::super::Failure::Permanent,
                "{description}"
            );
        }
    }

    #[test]
    fn migration_keeps_other_keys() {
        let value =
            migrated_value(r#"{"id": 123, "type": "group", "name": "Ops"}"#, -234).expect("valid");
        let doc: Value = serde_json::from_str(&value).expect("JSON");
        assert_eq!(doc, json!({"id": -234, "type": "group", "name": "Ops"}));
    }
}
