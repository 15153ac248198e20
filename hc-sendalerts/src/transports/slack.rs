//! The `slack` kind (§3.7), and the Slack attachment payload that `mattermost` and `discord`
//! send too (Healthchecks' `Slackalike`).
//!
//! The channel value is an incoming-webhook URL, or the JSON that Slack's OAuth flow returned
//! (`incoming_webhook.url`). A 404, or a 400 with the body `invalid_token`, disables the channel.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::http::{self, HttpRequest, HttpResponse};
use super::text::{
    body_excerpt, cloaked_url, format_duration, formatted_kind_created, reason_long,
};
use super::{Settings, TransportError, Transports, chat, text};
use crate::alert::Alert;

/// Characters of the last ping's body shown at most (§3.9).
pub const BODY_EXCERPT_CHARS: usize = 1000;

/// Delivers `alert` to a Slack incoming webhook.
pub async fn notify(transports: &Transports, alert: &Alert) -> Result<(), TransportError> {
    if !transports.settings.slack_enabled {
        return Err(TransportError::fail("Slack notifications are not enabled."));
    }
    let url = webhook_url(&alert.channel.value)?;
    let body = payload(&transports.settings, alert, Utc::now(), prefix_asterisks);
    let response = post_json(transports, url, &body).await?;
    if response.status == 404 || (response.status == 400 && response.body == b"invalid_token") {
        // 404: the webhook is gone; invalid_token: its user was deactivated. Neither comes back.
        return Err(TransportError::permanent(format!(
            "Received status code {}",
            response.status
        )));
    }
    http::expect_success(response).map(|_| ())
}

/// The incoming-webhook URL of a `slack` or `mattermost` value: the value itself, or
/// `incoming_webhook.url` of an OAuth JSON value (Healthchecks' `slack_webhook_url`).
pub fn webhook_url(value: &str) -> Result<String, TransportError> {
    if !value.starts_with('{') {
        return Ok(value.to_owned());
    }
    let doc: Value = serde_json::from_str(value)
        .map_err(|_| TransportError::fail("Invalid Slack configuration"))?;
    doc.pointer("/incoming_webhook/url")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| TransportError::fail("Invalid Slack configuration"))
}

/// POSTs `body` as JSON to `url` (one attempt).
pub async fn post_json(
    transports: &Transports,
    url: String,
    body: &Value,
) -> Result<HttpResponse, TransportError> {
    transports
        .http
        .send(HttpRequest {
            method: "POST".to_owned(),
            url,
            headers: vec![("Content-Type".to_owned(), b"application/json".to_vec())],
            body: Some(body.to_string().into_bytes()),
        })
        .await
}

/// Healthchecks' default `fix_asterisks`: a Combining Grapheme Joiner before each `*`, so that
/// cron schedules are not read as Markdown emphasis.
pub fn prefix_asterisks(text: &str) -> String {
    text.replace('*', "\u{34f}*")
}

/// "The downtime lasted 1 hour, 1 minute." for an up flip whose previous flip went down
/// (Healthchecks' `flip.down_duration` with `format_duration_for_sentence`).
pub fn downtime_sentence(alert: &Alert) -> Option<String> {
    let down = chat::down_duration(alert)?;
    Some(format!(
        "The downtime lasted {}.",
        chat::format_duration_for_sentence(down)
    ))
}

/// A `{title, value, short}` field of an attachment (`short` is left out when false, as
/// Healthchecks' `SlackFields.add` does).
pub fn field(title: &str, value: impl Into<String>, short: bool) -> Value {
    let mut field = json!({"title": title, "value": value.into()});
    if short {
        field["short"] = Value::Bool(true);
    }
    field
}

/// The fields describing the check that Slack and Rocket.Chat attachments share: description,
/// project, tags, and period or schedule (escaped by `fix_asterisks`) and time zone.
pub fn check_fields(alert: &Alert, fix_asterisks: fn(&str) -> String) -> Vec<Value> {
    let check = &alert.check;
    let mut fields = Vec::new();
    if !check.desc.is_empty() {
        fields.push(field("Description", check.desc.clone(), false));
    }
    if !alert.project.name.is_empty() {
        fields.push(field("Project", alert.project.name.clone(), true));
    }
    let tags: Vec<String> = text::tags_list(&check.tags)
        .into_iter()
        .map(|tag| format!("`{tag}`"))
        .collect();
    if !tags.is_empty() {
        fields.push(field("Tags", tags.join(" "), true));
    }
    match check.kind.as_str() {
        "simple" => fields.push(field("Period", format_duration(check.timeout), true)),
        "cron" | "oncalendar" => {
            fields.push(field("Schedule", fix_asterisks(&check.schedule), true));
            fields.push(field("Time Zone", check.tz.clone(), true));
        }
        _ => {}
    }
    fields
}

/// The Slack attachment payload for `alert` as of `now`; `fix_asterisks` escapes the schedule
/// (Discord escapes differently).
pub fn payload(
    settings: &Settings,
    alert: &Alert,
    now: DateTime<Utc>,
    fix_asterisks: fn(&str) -> String,
) -> Value {
    let check = &alert.check;
    let name = check.name_then_code();
    let status = alert.flip.new_status.to_uppercase();
    let mut fields = check_fields(alert, fix_asterisks);
    match &alert.last_ping {
        Some(ping) => {
            let n = ping.n.map_or_else(|| "None".to_owned(), |n| n.to_string());
            fields.push(field("Total Pings", n, true));
            fields.push(field("Last Ping", formatted_kind_created(ping, now), true));
            if let Some(body) = body_excerpt(&ping.body, BODY_EXCERPT_CHARS) {
                // A body with its own fence would break out of the code block.
                if !body.contains("```") {
                    fields.push(field("Last Ping Body", format!("```\n{body}\n```"), false));
                }
            }
        }
        None => {
            fields.push(field("Total Pings", "0", true));
            fields.push(field("Last Ping", "Never", true));
        }
    }
    // A reason wins over the downtime (an up flip has none).
    let text = if !alert.flip.reason.is_empty() {
        let reason = reason_long(&alert.flip.reason).unwrap_or("None");
        Some(format!("Reason: {reason}."))
    } else {
        downtime_sentence(alert)
    };
    json!({
        "username": settings.site_name,
        "icon_url": settings.site_logo_url,
        "attachments": [{
            "color": if alert.flip.new_status == "up" { "good" } else { "danger" },
            "fallback": format!("The check \"{name}\" is {status}."),
            "mrkdwn_in": ["fields"],
            "title": format!("\u{201c}{name}\u{201d} is {status}."),
            "title_link": cloaked_url(settings, check),
            "text": text,
            "fields": fields,
        }],
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::alert::{Channel, Check, Flip, Ping, PingBody, Project};

    pub(crate) fn settings() -> Settings {
        let vars: std::collections::HashMap<&str, &str> =
            [("SITE_ROOT", "http://testserver")].into_iter().collect();
        Settings::from_vars(&vars).expect("settings parse")
    }

    pub(crate) fn now() -> DateTime<Utc> {
        "2024-05-06T08:00:00Z".parse().expect("time")
    }

    pub(crate) fn alert(kind: &str, value: &str) -> Alert {
        Alert {
            notification: uuid::Uuid::nil(),
            flip: Flip {
                id: 1,
                created: now(),
                old_status: "up".to_owned(),
                new_status: "down".to_owned(),
                reason: "timeout".to_owned(),
            },
            check: Check {
                code: "0f0e0d0c-0b0a-4908-8706-050403020100"
                    .parse()
                    .expect("uuid"),
                name: "Foobar".to_owned(),
                kind: "simple".to_owned(),
                timeout: TimeDelta::days(1),
                grace: TimeDelta::hours(1),
                ..Check::default()
            },
            project: Project::default(),
            channel: Channel {
                kind: kind.to_owned(),
                value: value.to_owned(),
                ..Channel::default()
            },
            last_ping: Some(Ping {
                n: Some(112233),
                created: now() - TimeDelta::minutes(10),
                kind: None,
                scheme: "http".to_owned(),
                remote_addr: None,
                method: "GET".to_owned(),
                ua: String::new(),
                exitstatus: None,
                body: PingBody::None,
            }),
            down_since: None,
            other_down: None,
        }
    }

    /// The attachment's fields as (title, value) pairs.
    pub(crate) fn fields(payload: &Value) -> Vec<(String, String)> {
        payload["attachments"][0]["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .map(|f| {
                (
                    f["title"].as_str().expect("title").to_owned(),
                    f["value"].as_str().expect("value").to_owned(),
                )
            })
            .collect()
    }

    fn field_value(payload: &Value, title: &str) -> Option<String> {
        fields(payload)
            .into_iter()
            .find(|(t, _)| t == title)
            .map(|(_, v)| v)
    }

    #[test]
    fn the_payload_names_the_check_and_the_reason() {
        let a = alert("slack", "https://example.org");
        let p = payload(&settings(), &a, now(), prefix_asterisks);
        let attachment = &p["attachments"][0];
        assert_eq!(attachment["fallback"], "The check \"Foobar\" is DOWN.");
        assert_eq!(attachment["title"], "\u{201c}Foobar\u{201d} is DOWN.");
        assert_eq!(attachment["color"], "danger");
        assert_eq!(
            attachment["text"],
            "Reason: success signal did not arrive on time, grace time passed."
        );
        assert_eq!(p["icon_url"], "http://testserver/static/img/logo.png");
        assert_eq!(p["username"], "Mychecks");
        assert_eq!(
            attachment["title_link"],
            format!("http://testserver/cloaked/{}/", a.check.unique_key())
        );
        assert!(!p.to_string().contains(&a.check.code.to_string()));
    }

    #[test]
    fn fields_show_period_and_last_ping() {
        let p = payload(&settings(), &alert("slack", "x"), now(), prefix_asterisks);
        assert_eq!(
            fields(&p),
            vec![
                ("Period".to_owned(), "1 day".to_owned()),
                ("Total Pings".to_owned(), "112233".to_owned()),
                ("Last Ping".to_owned(), "Success, 10 minutes ago".to_owned()),
            ]
        );
    }

    #[test]
    fn a_failure_reason_and_no_ping() {
        let mut a = alert("slack", "x");
        a.flip.reason = "fail".to_owned();
        a.last_ping = None;
        let p = payload(&settings(), &a, now(), prefix_asterisks);
        assert_eq!(
            p["attachments"][0]["text"],
            "Reason: received a failure signal."
        );
        assert_eq!(field_value(&p, "Total Pings").as_deref(), Some("0"));
        assert_eq!(field_value(&p, "Last Ping").as_deref(), Some("Never"));
    }

    #[test]
    fn up_flips_are_good_news() {
        let mut a = alert("slack", "x");
        a.flip.new_status = "up".to_owned();
        a.flip.reason = String::new();
        let p = payload(&settings(), &a, now(), prefix_asterisks);
        assert_eq!(p["attachments"][0]["color"], "good");
        assert_eq!(p["attachments"][0]["text"], Value::Null);
    }

    #[test]
    fn up_flips_after_a_down_flip_tell_the_downtime() {
        let mut a = alert("slack", "x");
        a.flip.old_status = "down".to_owned();
        a.flip.new_status = "up".to_owned();
        a.flip.reason = String::new();
        a.down_since = Some(now() - TimeDelta::minutes(61));
        let p = payload(&settings(), &a, now(), prefix_asterisks);
        assert_eq!(
            p["attachments"][0]["text"],
            "The downtime lasted 1 hour, 1 minute."
        );
    }

    #[test]
    fn cron_schedules_get_joined_asterisks() {
        let mut a = alert("slack", "x");
        a.check.kind = "cron".to_owned();
        a.check.schedule = "* * * * *".to_owned();
        a.check.tz = "Europe/Riga".to_owned();
        let p = payload(&settings(), &a, now(), prefix_asterisks);
        assert_eq!(
            field_value(&p, "Schedule").as_deref(),
            Some("\u{34f}* \u{34f}* \u{34f}* \u{34f}* \u{34f}*")
        );
        assert_eq!(field_value(&p, "Time Zone").as_deref(), Some("Europe/Riga"));
    }

    #[test]
    fn description_project_and_tags() {
        let mut a = alert("slack", "x");
        a.check.desc = "nightly".to_owned();
        a.check.tags = "foo  bar".to_owned();
        a.project.name = "Ops".to_owned();
        let p = payload(&settings(), &a, now(), prefix_asterisks);
        assert_eq!(field_value(&p, "Description").as_deref(), Some("nightly"));
        assert_eq!(field_value(&p, "Project").as_deref(), Some("Ops"));
        assert_eq!(field_value(&p, "Tags").as_deref(), Some("`foo` `bar`"));
        assert!(p["attachments"][0]["fields"][0].get("short").is_none());
        assert_eq!(p["attachments"][0]["fields"][1]["short"], true);
    }

    #[test]
    fn the_last_ping_body_is_fenced_truncated_or_left_out() {
        let mut a = alert("slack", "x");
        let set_body = |a: &mut Alert, body: &[u8]| {
            a.last_ping.as_mut().expect("ping").body = PingBody::Inline(body.to_vec());
        };
        set_body(&mut a, b"Hello World");
        let p = payload(&settings(), &a, now(), prefix_asterisks);
        assert_eq!(
            field_value(&p, "Last Ping Body").as_deref(),
            Some("```\nHello World\n```")
        );
        set_body(&mut a, "Hello World".repeat(1000).as_bytes());
        let p = payload(&settings(), &a, now(), prefix_asterisks);
        let body = field_value(&p, "Last Ping Body").expect("body field");
        assert!(body.ends_with("\n[truncated]\n```"));
        set_body(&mut a, b"Hello ``` World");
        let p = payload(&settings(), &a, now(), prefix_asterisks);
        assert_eq!(field_value(&p, "Last Ping Body"), None);
    }

    #[test]
    fn oauth_values_carry_the_url() {
        assert_eq!(
            webhook_url("https://hooks.example/1").expect("url"),
            "https://hooks.example/1"
        );
        let value = r##"{"team_name": "T", "incoming_webhook": {"url": "123", "channel": "#c"}}"##;
        assert_eq!(webhook_url(value).expect("url"), "123");
        assert!(webhook_url("{}").is_err());
    }
}
