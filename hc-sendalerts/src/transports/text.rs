//! Text helpers shared by the transports: Healthchecks' `format_duration`, the cloaked check
//! link, the ping-body excerpt that chat transports include, the "Last Ping" line
//! (`Success, 10 minutes ago`), and Django's HTML escaping ([`escape_html`]), the one copy every
//! transport uses.

use chrono::{DateTime, TimeDelta, Utc};

use super::Settings;
use crate::alert::{Check, Ping, PingBody};

/// The marker appended to a body excerpt that was cut (Healthchecks' `get_ping_body`).
pub const TRUNCATED: &str = "\n[truncated]";

/// Healthchecks' `hc.lib.date.format_duration`: whole weeks (only when the duration is a whole
/// number of weeks, so 8 days stay "8 days"), days, hours and minutes, singular or plural, joined
/// by spaces; seconds are dropped, and a duration under a minute gives "".
pub fn format_duration(duration: TimeDelta) -> String {
    const UNITS: [(&str, i64); 4] = [
        ("week", 7 * 24 * 3600),
        ("day", 24 * 3600),
        ("hour", 3600),
        ("minute", 60),
    ];
    let mut remaining = duration.num_seconds().max(0);
    let mut parts = Vec::new();
    for (index, (name, secs)) in UNITS.into_iter().enumerate() {
        if index == 0 && remaining % secs != 0 {
            continue;
        }
        let count = remaining / secs;
        remaining %= secs;
        match count {
            0 => {}
            1 => parts.push(format!("1 {name}")),
            n => parts.push(format!("{n} {name}s")),
        }
    }
    parts.join(" ")
}

/// The link to a check that notifications show: `SITE_ROOT/cloaked/<unique_key>/`, which never
/// reveals the ping UUID.
pub fn cloaked_url(settings: &Settings, check: &Check) -> String {
    format!("{}/cloaked/{}/", settings.site_root, check.unique_key())
}

/// The ping body as text (invalid UTF-8 replaced), cut to `max_chars` characters plus
/// [`TRUNCATED`] when longer; `None` when there is no body, it is empty, or it is in object
/// storage (not readable by this service yet).
pub fn body_excerpt(body: &PingBody, max_chars: usize) -> Option<String> {
    let PingBody::Inline(bytes) = body else {
        return None;
    };
    if bytes.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(bytes);
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => Some(format!("{}{TRUNCATED}", &text[..cut])),
        None => Some(text.into_owned()),
    }
}

/// Healthchecks' `Flip.reason_long`: why a flip happened, or `None` for flips without a reason.
pub fn reason_long(reason: &str) -> Option<&'static str> {
    match reason {
        "timeout" => Some("success signal did not arrive on time, grace time passed"),
        "fail" => Some("received a failure signal"),
        _ => None,
    }
}

/// Healthchecks' `Ping.get_kind_display`: `Success`, `Failure` (or `Exit status N` for a
/// failure with a non-zero exit status), `Start`, `Log` or `Ignored`.
pub fn kind_display(ping: &Ping) -> String {
    match ping.kind.as_deref() {
        Some("ign") => "Ignored".to_owned(),
        Some("fail") => match ping.exitstatus {
            Some(code) if code != 0 => format!("Exit status {code}"),
            _ => "Failure".to_owned(),
        },
        Some("start") => "Start".to_owned(),
        Some("log") => "Log".to_owned(),
        _ => "Success".to_owned(),
    }
}

/// The "Last Ping" value of chat notifications: the kind and how long ago, as
/// `Success, 10 minutes ago` (Healthchecks' `Ping.formatted_kind_created`), with plain spaces:
/// Healthchecks replaces `naturaltime`'s no-break spaces in every chat text.
pub fn formatted_kind_created(ping: &Ping, now: DateTime<Utc>) -> String {
    format!(
        "{}, {}",
        kind_display(ping),
        plain_naturaltime(ping.created, now)
    )
}

/// [`naturaltime`] with plain spaces, as Healthchecks' templated transports send it (their
/// `Transport.tmpl` replaces every no-break space of the rendered text).
pub fn plain_naturaltime(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    naturaltime(then, now).replace('\u{a0}', " ")
}

/// Django's `naturaltime` for a moment in the past: `now`, `a second ago`, `N minutes ago`, `an
/// hour ago`, and from one day on the two largest adjacent units of `timesince` (`1 day, 2
/// hours ago`, with Django's non-breaking spaces inside each unit).
pub fn naturaltime(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - then).num_seconds().max(0);
    let counted = |n: i64, one: &str, many: &str| {
        if n == 1 {
            format!("{one} ago")
        } else {
            format!("{n} {many} ago")
        }
    };
    match secs {
        0 => "now".to_owned(),
        1..60 => counted(secs, "a second", "seconds"),
        60..3600 => counted(secs / 60, "a minute", "minutes"),
        3600..86400 => counted(secs / 3600, "an hour", "hours"),
        _ => format!("{} ago", timesince(secs)),
    }
}

/// Django's `timesince` with depth 2: the first non-zero unit and, when it is not zero, the next.
fn timesince(secs: i64) -> String {
    const UNITS: [(&str, &str, i64); 6] = [
        ("year", "years", 365 * 86400),
        ("month", "months", 30 * 86400),
        ("week", "weeks", 7 * 86400),
        ("day", "days", 86400),
        ("hour", "hours", 3600),
        ("minute", "minutes", 60),
    ];
    let Some(first) = UNITS.iter().position(|(_, _, unit)| secs / unit > 0) else {
        return "0\u{a0}minutes".to_owned();
    };
    let mut remaining = secs;
    let mut parts = Vec::new();
    for (one, many, unit) in &UNITS[first..(first + 2).min(UNITS.len())] {
        let count = remaining / unit;
        if count == 0 {
            break;
        }
        remaining -= count * unit;
        let name = if count == 1 { one } else { many };
        parts.push(format!("{count}\u{a0}{name}"));
    }
    parts.join(", ")
}

/// Healthchecks' `Check.tags_list`: split at single spaces, each part stripped, empty ones
/// dropped (so a tab inside a tag stays in it).
pub fn tags_list(tags: &str) -> Vec<&str> {
    tags.split(' ')
        .map(python_strip)
        .filter(|tag| !tag.is_empty())
        .collect()
}

/// Python's `str.strip()`: its whitespace includes the separators U+001C..U+001F.
pub fn python_strip(text: &str) -> &str {
    text.trim_matches(is_python_space)
}

/// Python's `str.isspace`: Unicode whitespace and the separators U+001C..U+001F.
pub fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Django's HTML escaping (`&`, `<`, `>`, `"`, `'`), as its templates apply to every value.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_duration(secs: i64, expected: &str) {
        assert_eq!(format_duration(TimeDelta::seconds(secs)), expected);
    }

    #[test]
    fn one_minute_is_singular() {
        check_duration(60, "1 minute");
    }

    #[test]
    fn minutes_are_plural() {
        check_duration(5 * 60, "5 minutes");
    }

    #[test]
    fn hours_and_minutes() {
        check_duration(3600 + 60, "1 hour 1 minute");
        check_duration(2 * 3600 + 30 * 60, "2 hours 30 minutes");
    }

    #[test]
    fn one_day() {
        check_duration(86400, "1 day");
    }

    #[test]
    fn whole_weeks_are_weeks() {
        check_duration(7 * 86400, "1 week");
        check_duration(14 * 86400, "2 weeks");
    }

    #[test]
    fn eight_days_are_not_a_week_and_a_day() {
        check_duration(8 * 86400, "8 days");
    }

    #[test]
    fn days_hours_minutes() {
        check_duration(86400 + 2 * 3600 + 3 * 60, "1 day 2 hours 3 minutes");
    }

    #[test]
    fn seconds_are_dropped() {
        check_duration(90, "1 minute");
        check_duration(59, "");
        check_duration(0, "");
    }

    #[test]
    fn tags_split_at_spaces_like_python() {
        assert_eq!(tags_list(" a  b\tc \u{1f}"), vec!["a", "b\tc"]);
    }

    #[test]
    fn cloaked_url_uses_the_unique_key() {
        let vars: std::collections::HashMap<&str, &str> =
            [("SITE_ROOT", "https://hc.example.org/")]
                .into_iter()
                .collect();
        let settings = Settings::from_vars(&vars).expect("settings parse");
        let check = Check {
            code: "7bd7e6c4-08b2-4ed6-9a65-7b23d6e4a6a5"
                .parse()
                .expect("uuid"),
            ..Check::default()
        };
        assert_eq!(
            cloaked_url(&settings, &check),
            format!("https://hc.example.org/cloaked/{}/", check.unique_key())
        );
    }

    #[track_caller]
    fn check_excerpt(body: PingBody, max: usize, expected: Option<&str>) {
        assert_eq!(body_excerpt(&body, max).as_deref(), expected);
    }

    #[test]
    fn no_body_gives_none() {
        check_excerpt(PingBody::None, 10, None);
        check_excerpt(PingBody::Inline(Vec::new()), 10, None);
        check_excerpt(PingBody::InObjectStorage(500), 10, None);
    }

    #[test]
    fn short_bodies_are_whole() {
        check_excerpt(PingBody::Inline(b"hello".to_vec()), 5, Some("hello"));
    }

    #[test]
    fn long_bodies_are_cut_at_characters() {
        check_excerpt(
            PingBody::Inline("ääääää".as_bytes().to_vec()),
            3,
            Some("äää\n[truncated]"),
        );
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        check_excerpt(PingBody::Inline(b"a\xe9b".to_vec()), 10, Some("a\u{fffd}b"));
    }

    fn ping(kind: Option<&str>, exitstatus: Option<i16>) -> Ping {
        Ping {
            n: Some(1),
            created: "2024-01-01T00:00:00Z".parse().expect("time"),
            kind: kind.map(str::to_owned),
            scheme: "http".to_owned(),
            remote_addr: None,
            method: "GET".to_owned(),
            ua: String::new(),
            exitstatus,
            body: PingBody::None,
        }
    }

    #[test]
    fn kinds_are_displayed_like_healthchecks() {
        assert_eq!(kind_display(&ping(None, None)), "Success");
        assert_eq!(kind_display(&ping(Some("fail"), None)), "Failure");
        assert_eq!(kind_display(&ping(Some("fail"), Some(0))), "Failure");
        assert_eq!(
            kind_display(&ping(Some("fail"), Some(123))),
            "Exit status 123"
        );
        assert_eq!(kind_display(&ping(Some("ign"), Some(123))), "Ignored");
        assert_eq!(kind_display(&ping(Some("start"), None)), "Start");
        assert_eq!(kind_display(&ping(Some("log"), None)), "Log");
    }

    #[track_caller]
    fn check_naturaltime(secs: i64, expected: &str) {
        let then: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().expect("time");
        assert_eq!(naturaltime(then, then + TimeDelta::seconds(secs)), expected);
    }

    #[test]
    fn naturaltime_under_a_day() {
        check_naturaltime(0, "now");
        check_naturaltime(1, "a second ago");
        check_naturaltime(30, "30 seconds ago");
        check_naturaltime(60, "a minute ago");
        check_naturaltime(600, "10 minutes ago");
        check_naturaltime(3600, "an hour ago");
        check_naturaltime(5 * 3600 + 59, "5 hours ago");
    }

    #[test]
    fn naturaltime_from_a_day_on_uses_two_units() {
        check_naturaltime(86400, "1\u{a0}day ago");
        check_naturaltime(86400 + 2 * 3600, "1\u{a0}day, 2\u{a0}hours ago");
        check_naturaltime(15 * 86400, "2\u{a0}weeks, 1\u{a0}day ago");
        check_naturaltime(7 * 86400 + 3600, "1\u{a0}week ago");
    }

    #[test]
    fn last_ping_line() {
        let p = ping(Some("fail"), Some(3));
        let now = p.created + TimeDelta::minutes(10);
        assert_eq!(
            formatted_kind_created(&p, now),
            "Exit status 3, 10 minutes ago"
        );
    }

    #[test]
    fn reasons() {
        assert_eq!(reason_long("fail"), Some("received a failure signal"));
        assert_eq!(reason_long(""), None);
    }

    #[test]
    fn html_is_escaped_like_django() {
        assert_eq!(escape_html("A & <B>"), "A &amp; &lt;B&gt;");
        assert_eq!(escape_html("\"it's\""), "&quot;it&#x27;s&quot;");
    }
}
