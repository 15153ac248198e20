//! What one ping does to its check (`healthchecks-behaviour.md` §1.3 steps 7–9, §1.4, §1.5), as
//! pure functions: the locked check row and the ping go in, the changed row, the `api_ping` kind
//! and maybe a flip come out. The batching writer calls [`apply_ping`] once per ping, in order.

use chrono::{DateTime, TimeDelta, Utc};
use hc_core::status::{CheckTiming, StoredStatus};
use uuid::Uuid;

use crate::routes::UrlAction;

/// The columns of a locked `api_check` row that a ping reads or writes.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckState {
    /// `id`.
    pub id: i32,
    /// `code`.
    pub code: Uuid,
    /// `status`, `kind`, `timeout`, `grace`, `schedule`, `tz`, `last_ping`, `last_start`.
    pub timing: CheckTiming,
    /// `last_start_rid`.
    pub last_start_rid: Option<Uuid>,
    /// `last_duration`.
    pub last_duration: Option<TimeDelta>,
    /// `alert_after`.
    pub alert_after: Option<DateTime<Utc>>,
    /// `n_pings`.
    pub n_pings: i32,
    /// `has_confirmation_link`.
    pub has_confirmation_link: bool,
    /// `methods`: `""` or `"POST"`.
    pub methods: String,
    /// `manual_resume`.
    pub manual_resume: bool,
    /// `filter_http_body`.
    pub filter_http_body: bool,
    /// `filter_default_fail`.
    pub filter_default_fail: bool,
    /// `start_kw`.
    pub start_kw: String,
    /// `success_kw`.
    pub success_kw: String,
    /// `failure_kw`.
    pub failure_kw: String,
}

/// The kind recorded in `api_ping.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingKind {
    /// Stored as NULL.
    Success,
    /// `start`.
    Start,
    /// `fail`.
    Fail,
    /// `log`.
    Log,
    /// `ign`: recorded, changes nothing.
    Ign,
}

impl PingKind {
    /// The `api_ping.kind` value.
    pub fn as_db(self) -> Option<&'static str> {
        match self {
            PingKind::Success => None,
            PingKind::Start => Some("start"),
            PingKind::Fail => Some("fail"),
            PingKind::Log => Some("log"),
            PingKind::Ign => Some("ign"),
        }
    }

    /// A label for metrics.
    pub fn label(self) -> &'static str {
        self.as_db().unwrap_or("success")
    }
}

/// What a ping carries that decides its effect.
#[derive(Debug, Clone, Copy)]
pub struct PingSignal<'a> {
    /// The action from the URL (exit status already folded in).
    pub action: UrlAction,
    /// The HTTP method.
    pub method: &'a str,
    /// The stored (truncated) body.
    pub body: &'a [u8],
    /// The validated run id.
    pub rid: Option<Uuid>,
}

/// A flip to insert into `api_flip` (unprocessed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFlip {
    /// `created`.
    pub created: DateTime<Utc>,
    /// `old_status`.
    pub old_status: StoredStatus,
    /// `new_status`.
    pub new_status: StoredStatus,
    /// `reason`: `fail` or `""`.
    pub reason: &'static str,
}

/// The effect of one ping.
#[derive(Debug, Clone, PartialEq)]
pub struct PingEffect {
    /// `api_ping.n`.
    pub n: i32,
    /// `api_ping.kind`.
    pub kind: PingKind,
    /// `api_ping.created`.
    pub created: DateTime<Utc>,
    /// A status change, if any.
    pub flip: Option<NewFlip>,
}

/// The action after the POST-only rule and the keyword filters (§1.3 steps 8–9), before the
/// pause rule of §1.4.
pub fn resolve_kind(check: &CheckState, signal: &PingSignal<'_>) -> PingKind {
    let mut kind = match signal.action {
        UrlAction::Success => PingKind::Success,
        UrlAction::Start => PingKind::Start,
        UrlAction::Fail => PingKind::Fail,
        UrlAction::Log => PingKind::Log,
    };
    if check.methods == "POST" && signal.method != "POST" {
        kind = PingKind::Ign;
    }
    if kind != PingKind::Ign && check.filter_http_body {
        // Healthchecks decodes strictly and answers 500 on invalid UTF-8; we match lossily.
        let text = String::from_utf8_lossy(signal.body);
        kind = if match_keywords(&text, &check.failure_kw) {
            PingKind::Fail
        } else if match_keywords(&text, &check.success_kw) {
            PingKind::Success
        } else if match_keywords(&text, &check.start_kw) {
            PingKind::Start
        } else if check.filter_default_fail {
            PingKind::Fail
        } else {
            PingKind::Ign
        };
    }
    kind
}

/// Healthchecks' `match_keywords`: comma-separated, stripped, non-empty keywords, any of which is
/// a case-sensitive substring of `haystack`.
pub fn match_keywords(haystack: &str, keywords: &str) -> bool {
    keywords
        .split(',')
        .map(strip)
        .filter(|kw| !kw.is_empty())
        .any(|kw| haystack.contains(kw))
}

/// Python's `str.strip()`: its whitespace is Rust's plus the separators U+001C..U+001F.
fn strip(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

/// Whether the body holds a confirmation link (`"confirm" in body.lower()`).
pub fn has_confirmation_link(body: &[u8]) -> bool {
    String::from_utf8_lossy(body)
        .to_lowercase()
        .contains("confirm")
}

/// Applies one ping, received at `received`, to the locked `check` (`Check.ping`).
///
/// The ping's time is `received`, but never earlier than the check's `last_ping` or
/// `last_start`, so that times and durations never run backwards within a check.
/// A schedule that cannot be evaluated leaves `alert_after` at the ping's time, handing the
/// check to `hc-sendalerts`, whose rule for broken schedules then applies.
pub fn apply_ping(
    check: &mut CheckState,
    signal: &PingSignal<'_>,
    received: DateTime<Utc>,
) -> PingEffect {
    let mut now = received;
    for earlier in [check.timing.last_ping, check.timing.last_start]
        .into_iter()
        .flatten()
    {
        now = now.max(earlier);
    }
    let mut kind = resolve_kind(check, signal);
    if check.timing.status == StoredStatus::Paused && check.manual_resume {
        kind = PingKind::Ign;
    }
    let mut flip = None;
    match kind {
        PingKind::Start => {
            check.timing.last_start = Some(now);
            check.last_start_rid = signal.rid;
        }
        PingKind::Success | PingKind::Fail => {
            check.timing.last_ping = Some(now);
            check.last_duration = None;
            if let Some(last_start) = check.timing.last_start {
                if check.last_start_rid == signal.rid {
                    check.last_duration = Some(now - last_start);
                    check.timing.last_start = None;
                } else if kind == PingKind::Fail || signal.rid.is_none() {
                    check.timing.last_start = None;
                }
            }
            let new_status = if kind == PingKind::Fail {
                StoredStatus::Down
            } else {
                StoredStatus::Up
            };
            if new_status != check.timing.status {
                flip = Some(NewFlip {
                    created: now,
                    old_status: check.timing.status,
                    new_status,
                    reason: if kind == PingKind::Fail { "fail" } else { "" },
                });
                check.timing.status = new_status;
            }
        }
        PingKind::Log | PingKind::Ign => {}
    }
    check.alert_after = match check.timing.going_down_after() {
        Ok(after) => after,
        Err(err) => {
            tracing::warn!(check = %check.code, %err, "cannot evaluate the schedule; hc-sendalerts will look at the check now");
            Some(now)
        }
    };
    check.n_pings += 1;
    check.has_confirmation_link = has_confirmation_link(signal.body);
    PingEffect {
        n: check.n_pings,
        kind,
        created: now,
        flip,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use hc_core::status::CheckKind;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// A new check (id 1, nil code) with Healthchecks' defaults.
    pub(crate) fn new_check() -> CheckState {
        CheckState {
            id: 1,
            code: Uuid::nil(),
            timing: CheckTiming::default(),
            last_start_rid: None,
            last_duration: None,
            alert_after: None,
            n_pings: 0,
            has_confirmation_link: false,
            methods: String::new(),
            manual_resume: false,
            filter_http_body: false,
            filter_default_fail: false,
            start_kw: String::new(),
            success_kw: String::new(),
            failure_kw: String::new(),
        }
    }

    fn signal(action: UrlAction) -> PingSignal<'static> {
        PingSignal {
            action,
            method: "GET",
            body: b"",
            rid: None,
        }
    }

    const T0: &str = "2024-01-01T00:00:00Z";

    #[test]
    fn success_on_a_new_check() {
        let mut check = new_check();
        let effect = apply_ping(&mut check, &signal(UrlAction::Success), t(T0));
        assert_eq!(effect.n, 1);
        assert_eq!(effect.kind, PingKind::Success);
        assert_eq!(check.timing.status, StoredStatus::Up);
        assert_eq!(check.timing.last_ping, Some(t(T0)));
        assert_eq!(check.alert_after, Some(t("2024-01-02T01:00:00Z")));
        let flip = effect.flip.unwrap();
        assert_eq!(
            (flip.old_status, flip.new_status, flip.reason),
            (StoredStatus::New, StoredStatus::Up, "")
        );
    }

    #[test]
    fn fail_goes_down_with_a_fail_flip() {
        let mut check = new_check();
        let effect = apply_ping(&mut check, &signal(UrlAction::Fail), t(T0));
        assert_eq!(check.timing.status, StoredStatus::Down);
        assert_eq!(check.alert_after, None);
        assert_eq!(effect.flip.unwrap().reason, "fail");
    }

    #[test]
    fn start_then_success_sets_the_duration() {
        let mut check = new_check();
        apply_ping(&mut check, &signal(UrlAction::Start), t(T0));
        assert_eq!(check.timing.last_start, Some(t(T0)));
        assert_eq!(check.timing.last_ping, None);
        assert_eq!(check.timing.status, StoredStatus::New);
        // A new check that started goes down at last_start + grace.
        assert_eq!(check.alert_after, Some(t("2024-01-01T01:00:00Z")));
        apply_ping(
            &mut check,
            &signal(UrlAction::Success),
            t("2024-01-01T00:00:10Z"),
        );
        assert_eq!(check.last_duration, Some(TimeDelta::seconds(10)));
        assert_eq!(check.timing.last_start, None);
    }

    #[test]
    fn rid_mismatch_keeps_the_start_for_success_but_not_for_fail() {
        let a = Some(Uuid::from_u128(1));
        let b = Some(Uuid::from_u128(2));
        let mut check = new_check();
        apply_ping(
            &mut check,
            &PingSignal {
                rid: a,
                ..signal(UrlAction::Start)
            },
            t(T0),
        );
        apply_ping(
            &mut check,
            &PingSignal {
                rid: b,
                ..signal(UrlAction::Success)
            },
            t("2024-01-01T00:00:05Z"),
        );
        assert_eq!(check.timing.last_start, Some(t(T0)));
        assert_eq!(check.last_duration, None);
        assert_eq!(check.last_start_rid, a);
        apply_ping(
            &mut check,
            &PingSignal {
                rid: b,
                ..signal(UrlAction::Fail)
            },
            t("2024-01-01T00:00:06Z"),
        );
        assert_eq!(check.timing.last_start, None);
        assert_eq!(check.last_duration, None);
        // last_start_rid is never cleared by success or fail.
        assert_eq!(check.last_start_rid, a);
    }

    #[test]
    fn success_without_rid_clears_a_start_with_rid() {
        let mut check = new_check();
        let rid = Some(Uuid::from_u128(7));
        apply_ping(
            &mut check,
            &PingSignal {
                rid,
                ..signal(UrlAction::Start)
            },
            t(T0),
        );
        apply_ping(
            &mut check,
            &signal(UrlAction::Success),
            t("2024-01-01T00:00:05Z"),
        );
        assert_eq!(check.timing.last_start, None);
        assert_eq!(check.last_duration, None);
    }

    #[test]
    fn log_and_ign_change_nothing_but_the_counter() {
        let mut check = new_check();
        let effect = apply_ping(&mut check, &signal(UrlAction::Log), t(T0));
        assert_eq!(effect.kind, PingKind::Log);
        assert_eq!(check.timing.status, StoredStatus::New);
        assert_eq!(check.timing.last_ping, None);
        assert_eq!(check.alert_after, None);
        assert_eq!(check.n_pings, 1);
        assert_eq!(effect.flip, None);
    }

    #[test]
    fn post_only_checks_ignore_other_methods() {
        let mut check = CheckState {
            methods: "POST".into(),
            ..new_check()
        };
        let effect = apply_ping(&mut check, &signal(UrlAction::Success), t(T0));
        assert_eq!(effect.kind, PingKind::Ign);
        assert_eq!(check.timing.status, StoredStatus::New);
        let effect = apply_ping(
            &mut check,
            &PingSignal {
                method: "POST",
                ..signal(UrlAction::Success)
            },
            t(T0),
        );
        assert_eq!(effect.kind, PingKind::Success);
    }

    #[test]
    fn manual_resume_beats_everything() {
        let mut check = CheckState {
            manual_resume: true,
            ..new_check()
        };
        check.timing.status = StoredStatus::Paused;
        let effect = apply_ping(&mut check, &signal(UrlAction::Fail), t(T0));
        assert_eq!(effect.kind, PingKind::Ign);
        assert_eq!(check.timing.status, StoredStatus::Paused);
        // Without manual_resume a paused check goes up.
        let mut check = new_check();
        check.timing.status = StoredStatus::Paused;
        apply_ping(&mut check, &signal(UrlAction::Success), t(T0));
        assert_eq!(check.timing.status, StoredStatus::Up);
    }

    #[track_caller]
    fn filtered(check: &CheckState, action: UrlAction, body: &[u8], expected: PingKind) {
        let signal = PingSignal {
            body,
            ..signal(action)
        };
        assert_eq!(resolve_kind(check, &signal), expected);
    }

    #[test]
    fn keyword_filters_replace_the_url_action() {
        let check = CheckState {
            filter_http_body: true,
            success_kw: "SUCCESS, all good".into(),
            failure_kw: "ERROR,FAIL".into(),
            start_kw: "STARTING".into(),
            ..new_check()
        };
        filtered(&check, UrlAction::Fail, b"SUCCESS", PingKind::Success);
        filtered(
            &check,
            UrlAction::Success,
            b"it is all good",
            PingKind::Success,
        );
        filtered(
            &check,
            UrlAction::Success,
            b"SUCCESS but ERROR",
            PingKind::Fail,
        );
        filtered(&check, UrlAction::Success, b"STARTING now", PingKind::Start);
        filtered(&check, UrlAction::Success, b"success", PingKind::Ign);
        filtered(&check, UrlAction::Log, b"nothing", PingKind::Ign);
        filtered(
            &check,
            UrlAction::Success,
            b"\xe9 FAIL \xff",
            PingKind::Fail,
        );
        let default_fail = CheckState {
            filter_default_fail: true,
            ..check.clone()
        };
        filtered(
            &default_fail,
            UrlAction::Success,
            b"nothing",
            PingKind::Fail,
        );
        let post_only = CheckState {
            methods: "POST".into(),
            ..check
        };
        filtered(&post_only, UrlAction::Success, b"SUCCESS", PingKind::Ign);
    }

    #[test]
    fn empty_keywords_never_match() {
        assert!(!match_keywords("anything", ""));
        assert!(!match_keywords("anything", " , ,"));
        assert!(match_keywords("a,b", " b "));
    }

    #[test]
    fn keywords_are_stripped_like_python() {
        assert!(match_keywords("xFOOx", "\u{1f}FOO\u{1c}"));
        assert!(match_keywords("xFOOx", "\u{a0}\tFOO\u{3000}\n"));
        assert!(!match_keywords("anything", "\u{1d},\u{1e}"));
        // Not whitespace to Python either: kept, so it must match.
        assert!(!match_keywords("xFOOx", "\u{200b}FOO"));
    }

    #[test]
    fn confirmation_links() {
        assert!(has_confirmation_link(b"Please Confirm ..."));
        assert!(has_confirmation_link(b"\xffCONFIRM"));
        assert!(!has_confirmation_link(b""));
    }

    #[test]
    fn times_never_run_backwards() {
        let mut check = new_check();
        apply_ping(
            &mut check,
            &signal(UrlAction::Start),
            t("2024-01-01T00:00:10Z"),
        );
        let effect = apply_ping(&mut check, &signal(UrlAction::Success), t(T0));
        assert_eq!(effect.created, t("2024-01-01T00:00:10Z"));
        assert_eq!(check.last_duration, Some(TimeDelta::zero()));
    }

    #[test]
    fn a_broken_schedule_hands_the_check_to_sendalerts() {
        let mut check = new_check();
        check.timing.kind = CheckKind::Cron;
        check.timing.schedule = "garbage".into();
        apply_ping(&mut check, &signal(UrlAction::Success), t(T0));
        assert_eq!(check.alert_after, Some(t(T0)));
        assert_eq!(check.timing.status, StoredStatus::Up);
    }

    #[test]
    fn cron_alert_after_uses_the_schedule() {
        let mut check = new_check();
        check.timing.kind = CheckKind::Cron;
        check.timing.schedule = "0 * * * *".into();
        apply_ping(
            &mut check,
            &signal(UrlAction::Success),
            t("2024-01-01T00:30:00Z"),
        );
        assert_eq!(check.alert_after, Some(t("2024-01-01T02:00:00Z")));
    }
}
