//! What the chat and push kinds share: their settings ([`ChatSettings`], Healthchecks' variable
//! names) and the pieces of text their templates have in common (the reason, the last ping,
//! the downtime, the other checks that are down), plus the small encoders they need.
//!
//! Each kind lives in its own module (`msteamsw`, `googlechat`, `ntfy`, `gotify`, `pushover`,
//! `telegram`, `matrix`) and builds its request with a pure function.

use chrono::{DateTime, TimeDelta, Utc};
use hc_core::config::ConfigError;
use hc_core::config::{Secret, Vars};

use crate::alert::{Alert, OtherCheck, Ping};

use super::http::{HttpRequest, expect_success};
use super::text::escape_html;
use super::{Settings, TransportError, Transports, text};

/// Settings of the chat and push kinds.
#[derive(Debug, Clone)]
pub struct ChatSettings {
    /// `MSTEAMS_ENABLED` (default on).
    pub msteams_enabled: bool,
    /// `TELEGRAM_TOKEN`: without it Telegram notifications fail.
    pub telegram_token: Option<Secret<String>>,
    /// `SENDALERTS_TELEGRAM_API_URL`: the Bot API base (default `https://api.telegram.org`).
    pub telegram_api_url: String,
    /// `PUSHOVER_API_TOKEN`: without it Pushover notifications fail.
    pub pushover_api_token: Option<Secret<String>>,
    /// `SENDALERTS_PUSHOVER_API_URL`: the API base (default `https://api.pushover.net`).
    pub pushover_api_url: String,
    /// `PUSHOVER_EMERGENCY_RETRY_DELAY` in seconds (300).
    pub pushover_emergency_retry_delay: i64,
    /// `PUSHOVER_EMERGENCY_EXPIRATION` in seconds (86400).
    pub pushover_emergency_expiration: i64,
    /// `MATRIX_HOMESERVER` without a trailing slash: without it Matrix notifications fail.
    pub matrix_homeserver: Option<String>,
    /// `MATRIX_ACCESS_TOKEN`.
    pub matrix_access_token: Option<Secret<String>>,
    /// `NTFY_SH_TOKEN`: the bearer token for channels on `https://ntfy.sh` without their own.
    pub ntfy_sh_token: Option<Secret<String>>,
}

impl ChatSettings {
    /// Reads the settings; the first bad variable is the error.
    pub fn from_vars(vars: &impl Vars) -> Result<ChatSettings, ConfigError> {
        let base = |name: &str, default: &str| {
            hc_core::config::string_var(vars, name, default)
                .trim_end_matches('/')
                .to_owned()
        };
        let homeserver = hc_core::config::string_var(vars, "MATRIX_HOMESERVER", "");
        Ok(ChatSettings {
            msteams_enabled: hc_core::config::parse_bool(vars, "MSTEAMS_ENABLED", true)?,
            telegram_token: hc_core::config::secret(vars, "TELEGRAM_TOKEN")?,
            telegram_api_url: base("SENDALERTS_TELEGRAM_API_URL", "https://api.telegram.org"),
            pushover_api_token: hc_core::config::secret(vars, "PUSHOVER_API_TOKEN")?,
            pushover_api_url: base("SENDALERTS_PUSHOVER_API_URL", "https://api.pushover.net"),
            pushover_emergency_retry_delay: hc_core::config::parse_var(
                vars,
                "PUSHOVER_EMERGENCY_RETRY_DELAY",
                300,
            )?,
            pushover_emergency_expiration: hc_core::config::parse_var(
                vars,
                "PUSHOVER_EMERGENCY_EXPIRATION",
                86400,
            )?,
            matrix_homeserver: (!homeserver.is_empty())
                .then(|| homeserver.trim_end_matches('/').to_owned()),
            matrix_access_token: hc_core::config::secret(vars, "MATRIX_ACCESS_TOKEN")?,
            ntfy_sh_token: hc_core::config::secret(vars, "NTFY_SH_TOKEN")?,
        })
    }
}

/// The flip's reason in parentheses after a space (" (received a failure signal)"), or `""`.
pub fn reason_in_parens(alert: &Alert) -> String {
    text::reason_long(&alert.flip.reason)
        .map(|reason| format!(" ({reason})"))
        .unwrap_or_default()
}

/// "Success, 10 minutes ago" (Healthchecks' `formatted_kind_created`), or "Never".
pub fn last_ping_text(ping: Option<&Ping>, now: DateTime<Utc>) -> String {
    ping.map_or_else(
        || "Never".to_owned(),
        |ping| text::formatted_kind_created(ping, now),
    )
}

/// The total shown next to the last ping: the ping's number, or 0 without a ping.
pub fn total_pings(ping: Option<&Ping>) -> String {
    ping.and_then(|ping| ping.n).unwrap_or(0).to_string()
}

/// Healthchecks' `hc_duration_for_sentence` for a downtime: the two largest units of days,
/// hours, minutes and seconds, the second even when zero ("1 day, 0 hours", "1 hour, 30
/// minutes", "59 minutes, 0 seconds", "5 seconds").
pub fn format_duration_for_sentence(duration: TimeDelta) -> String {
    let secs = duration.num_seconds().max(0);
    let counted = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    let (mins, secs) = (secs / 60, secs % 60);
    let (hours, mins) = (mins / 60, mins % 60);
    let (days, hours) = (hours / 24, hours % 24);
    if days > 0 {
        format!("{}, {}", counted(days, "day"), counted(hours, "hour"))
    } else if hours > 0 {
        format!("{}, {}", counted(hours, "hour"), counted(mins, "minute"))
    } else if mins > 0 {
        format!("{}, {}", counted(mins, "minute"), counted(secs, "second"))
    } else {
        counted(secs, "second")
    }
}

/// The last ping's body for the chat kinds: at most 1000 characters plus "\n[truncated]"
/// (§3.9).
pub fn ping_body(ping: Option<&Ping>) -> Option<String> {
    text::body_excerpt(&ping?.body, 1000)
}

/// The check's cloaked link.
pub fn check_url(settings: &Settings, alert: &Alert) -> String {
    text::cloaked_url(settings, &alert.check)
}

/// The check's tags, as Healthchecks' `Check.tags_list` splits them.
pub fn tags_list(alert: &Alert) -> Vec<&str> {
    text::tags_list(&alert.check.tags)
}

/// For an up flip after a down flip: how long the check was down.
pub fn down_duration(alert: &Alert) -> Option<TimeDelta> {
    if alert.flip.new_status != "up" {
        return None;
    }
    alert.down_since.map(|since| alert.flip.created - since)
}

/// "The downtime lasted 1 hour, 30 minutes." for an up flip after a down flip.
pub fn downtime_sentence(alert: &Alert) -> Option<String> {
    down_duration(alert).map(|down| {
        format!(
            "The downtime lasted {}.",
            format_duration_for_sentence(down)
        )
    })
}

/// The HTML detail lines of the Telegram and Pushover messages: project, tags, period or
/// schedule (wrapped by `schedule`) and time zone, total pings and the last ping.
pub fn html_details(
    alert: &Alert,
    now: DateTime<Utc>,
    schedule: impl Fn(&str) -> String,
) -> Vec<String> {
    let check = &alert.check;
    let mut lines = Vec::new();
    if !alert.project.name.is_empty() {
        lines.push(format!(
            "<b>Project:</b> {}",
            escape_html(&alert.project.name)
        ));
    }
    let tags = tags_list(alert);
    if !tags.is_empty() {
        lines.push(format!("<b>Tags:</b> {}", escape_html(&tags.join(", "))));
    }
    if check.kind == "simple" {
        lines.push(format!(
            "<b>Period:</b> {}",
            text::format_duration(check.timeout)
        ));
    }
    if check.kind == "cron" || check.kind == "oncalendar" {
        lines.push(format!(
            "<b>Schedule:</b> {}",
            schedule(&escape_html(&check.schedule))
        ));
        lines.push(format!("<b>Time Zone:</b> {}", escape_html(&check.tz)));
    }
    let ping = alert.last_ping.as_ref();
    lines.push(format!("<b>Total Pings:</b> {}", total_pings(ping)));
    lines.push(format!("<b>Last Ping:</b> {}", last_ping_text(ping, now)));
    lines
}

/// The "other checks" part of the templates, one line each (`item` formats one check):
/// nothing when the project has no other checks, "All the other checks are up.", more than ten
/// as a count, else a heading and one line per check.
pub fn other_down_lines(alert: &Alert, item: impl Fn(&OtherCheck) -> String) -> Vec<String> {
    let Some(others) = &alert.other_down else {
        return Vec::new();
    };
    let word = if alert.flip.new_status == "down" {
        "also"
    } else {
        "still"
    };
    if others.is_empty() {
        vec!["All the other checks are up.".to_owned()]
    } else if others.len() > 10 {
        vec![format!("{} other checks are {word} down.", others.len())]
    } else {
        let mut lines = vec![format!("The following checks are {word} down:")];
        lines.extend(others.iter().map(item));
        lines
    }
}

/// An other check's "last ping" phrase: `naturaltime` with plain spaces, or "never".
pub fn other_last_ping(other: &OtherCheck, now: DateTime<Utc>) -> String {
    other
        .last_ping
        .map_or_else(|| "never".to_owned(), |t| text::plain_naturaltime(t, now))
}

/// An other check's cloaked link.
pub fn other_url(settings: &Settings, other: &OtherCheck) -> String {
    format!(
        "{}/cloaked/{}/",
        settings.site_root,
        crate::alert::unique_key(&other.code)
    )
}

/// Percent-encodes everything but RFC 3986's unreserved characters (Python's `quote` with no
/// safe characters), for a path segment or a query value.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An `application/x-www-form-urlencoded` body (spaces as `+`, like Python's `urlencode`).
pub fn form_encode(fields: &[(&str, String)]) -> String {
    let encode = |text: &str| percent_encode(text).replace("%20", "+");
    fields
        .iter()
        .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A request with a JSON body (`Content-Type: application/json`) and extra `headers`.
pub fn json_request(
    method: &str,
    url: String,
    payload: &serde_json::Value,
    headers: Vec<(String, Vec<u8>)>,
) -> HttpRequest {
    let mut all = vec![("Content-Type".to_owned(), b"application/json".to_vec())];
    all.extend(headers);
    HttpRequest {
        method: method.to_owned(),
        url,
        headers: all,
        body: Some(payload.to_string().into_bytes()),
    }
}

/// A POST with a form body.
pub fn form_request(url: String, fields: &[(&str, String)]) -> HttpRequest {
    HttpRequest {
        method: "POST".to_owned(),
        url,
        headers: vec![(
            "Content-Type".to_owned(),
            b"application/x-www-form-urlencoded".to_vec(),
        )],
        body: Some(form_encode(fields).into_bytes()),
    }
}

/// Sends `request` once and accepts only Healthchecks' success statuses.
pub async fn send(transports: &Transports, request: HttpRequest) -> Result<(), TransportError> {
    expect_success(transports.http.send(request).await?).map(drop)
}

/// The error for a channel value this kind cannot read.
pub fn malformed_value(kind: &str) -> TransportError {
    TransportError::fail(format!("malformed {kind} channel value"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::alert::{Channel, Check, Flip, PingBody, Project};
    use uuid::Uuid;

    /// A fixed "now" for the tests.
    pub(crate) fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).expect("a valid timestamp")
    }

    /// A down alert of check "Foo" in "Alices Project", last ping 10 minutes ago (n 112233).
    pub(crate) fn alert(kind: &str, value: &str) -> Alert {
        Alert {
            notification: Uuid::from_u128(0x1234),
            flip: Flip {
                id: 1,
                created: now(),
                old_status: "up".into(),
                new_status: "down".into(),
                reason: "timeout".into(),
            },
            check: Check {
                id: 1,
                code: Uuid::from_u128(0xabcdef),
                name: "Foo".into(),
                tags: "foo bar".into(),
                kind: "simple".into(),
                timeout: TimeDelta::days(1),
                grace: TimeDelta::hours(1),
                schedule: "* * * * *".into(),
                tz: "UTC".into(),
                status: "paused".into(),
                created: now(),
                ..Check::default()
            },
            project: Project {
                name: "Alices Project".into(),
                ..Project::default()
            },
            channel: Channel {
                id: 1,
                kind: kind.into(),
                value: value.into(),
                ..Channel::default()
            },
            last_ping: Some(Ping {
                n: Some(112233),
                created: now() - TimeDelta::minutes(10),
                kind: None,
                scheme: "http".into(),
                remote_addr: Some("1.2.3.4".into()),
                method: "GET".into(),
                ua: String::new(),
                exitstatus: None,
                body: PingBody::None,
            }),
            down_since: None,
            other_down: None,
        }
    }

    /// Another down check named `name`, last pinged an hour before [`now`].
    pub(crate) fn other(name: &str) -> OtherCheck {
        OtherCheck {
            name: name.to_owned(),
            code: uuid::Uuid::from_u128(0x5f1d_0000_0000_4000_8000_0000_0000_0001),
            last_ping: Some(now() - TimeDelta::hours(1)),
        }
    }

    /// Turns `alert` into an up alert after 90 minutes of downtime.
    pub(crate) fn up(mut alert: Alert) -> Alert {
        alert.flip.old_status = "down".into();
        alert.flip.new_status = "up".into();
        alert.flip.reason = String::new();
        alert.down_since = Some(now() - TimeDelta::minutes(90));
        alert
    }

    /// Settings as the tests use them.
    pub(crate) fn settings() -> crate::transports::Settings {
        let vars: std::collections::HashMap<&str, &str> = [
            ("SITE_ROOT", "https://hc.example.org"),
            ("SITE_NAME", "Mychecks"),
            ("SECRET_KEY", "test-secret"),
            ("TELEGRAM_TOKEN", "bot-token"),
            ("PUSHOVER_API_TOKEN", "po-token"),
            ("MATRIX_HOMESERVER", "https://matrix.example.org/"),
            ("MATRIX_ACCESS_TOKEN", "mx-token"),
        ]
        .into_iter()
        .collect();
        crate::transports::Settings::from_vars(&vars).expect("valid test settings")
    }

    #[test]
    fn durations() {
        let check = |d: TimeDelta, expected: &str| {
            assert_eq!(format_duration_for_sentence(d), expected);
        };
        check(TimeDelta::days(8), "8 days, 0 hours");
        check(TimeDelta::days(1) + TimeDelta::minutes(90), "1 day, 1 hour");
        check(TimeDelta::minutes(90), "1 hour, 30 minutes");
        check(TimeDelta::hours(2), "2 hours, 0 minutes");
        check(TimeDelta::seconds(59 * 60), "59 minutes, 0 seconds");
        check(TimeDelta::seconds(61), "1 minute, 1 second");
        check(TimeDelta::seconds(1), "1 second");
        check(TimeDelta::zero(), "0 seconds");
    }

    #[test]
    fn exit_status_display() {
        let mut ping = alert("x", "").last_ping.expect("a ping");
        ping.kind = Some("fail".into());
        ping.exitstatus = Some(123);
        assert_eq!(
            last_ping_text(Some(&ping), now()),
            "Exit status 123, 10 minutes ago"
        );
    }

    #[test]
    fn ping_body_truncates() {
        let mut ping = alert("x", "").last_ping.expect("a ping");
        ping.body = PingBody::Inline("Hello World".repeat(100).into_bytes());
        let body = ping_body(Some(&ping)).expect("a body");
        assert!(body.ends_with("\n[truncated]"));
        assert_eq!(body.chars().count(), 1000 + "\n[truncated]".len());
    }

    #[test]
    fn other_down_variants() {
        let mut a = alert("x", "");
        let name = |o: &OtherCheck| o.name.clone();
        assert!(other_down_lines(&a, name).is_empty());
        a.other_down = Some(vec![]);
        assert_eq!(other_down_lines(&a, name), ["All the other checks are up."]);
        a.other_down = Some((0..11).map(|i| other(&format!("Foobar #{i}"))).collect());
        assert_eq!(
            other_down_lines(&a, name),
            ["11 other checks are also down."]
        );
    }

    #[test]
    fn encoders() {
        assert_eq!(percent_encode("!abc:example.org"), "%21abc%3Aexample.org");
        assert_eq!(
            form_encode(&[("a", "x y&z".into()), ("b", "1".into())]),
            "a=x+y%26z&b=1"
        );
    }
}
