//! Text helpers shared by the transports: Healthchecks' `format_duration`, the cloaked check
//! link, and the ping-body excerpt that chat transports include.

use chrono::TimeDelta;

use super::Settings;
use crate::alert::{Check, PingBody};

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
}
