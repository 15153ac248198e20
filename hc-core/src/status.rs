//! Check status computation: Healthchecks' `get_grace_start`, `going_down_after` and `get_status`
//! (`healthchecks-behaviour.md` §2), as pure functions of a check's timing columns.
//!
//! Two deliberate differences from Healthchecks, both about not crashing the alert loop:
//! a cron schedule with no future fire time means "never goes down on schedule" (Healthchecks only
//! does that for OnCalendar and raises StopIteration for cron), and a schedule that cannot be
//! evaluated is an `Err` value for the caller to handle, never a panic.

use chrono::{DateTime, TimeDelta, Utc};

use crate::schedule::{Schedule, ScheduleError, ScheduleKind};

/// `api_check.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckKind {
    /// Period (`timeout`) and grace.
    #[default]
    Simple,
    /// A cron expression in `schedule`, evaluated in `tz`.
    Cron,
    /// OnCalendar expressions in `schedule`, one per line.
    OnCalendar,
}

impl CheckKind {
    /// Parses the database value (`simple`, `cron`, `oncalendar`).
    pub fn from_db(value: &str) -> Option<CheckKind> {
        match value {
            "simple" => Some(CheckKind::Simple),
            "cron" => Some(CheckKind::Cron),
            "oncalendar" => Some(CheckKind::OnCalendar),
            _ => None,
        }
    }

    /// The database value.
    pub fn as_db(self) -> &'static str {
        match self {
            CheckKind::Simple => "simple",
            CheckKind::Cron => "cron",
            CheckKind::OnCalendar => "oncalendar",
        }
    }
}

/// The status stored in `api_check.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoredStatus {
    /// Never pinged (the default).
    #[default]
    New,
    /// Last signal was a success.
    Up,
    /// A failure signal arrived, or the deadline passed.
    Down,
    /// Paused by the user.
    Paused,
}

impl StoredStatus {
    /// Parses the database value (`new`, `up`, `down`, `paused`).
    pub fn from_db(value: &str) -> Option<StoredStatus> {
        match value {
            "new" => Some(StoredStatus::New),
            "up" => Some(StoredStatus::Up),
            "down" => Some(StoredStatus::Down),
            "paused" => Some(StoredStatus::Paused),
            _ => None,
        }
    }

    /// The database value.
    pub fn as_db(self) -> &'static str {
        match self {
            StoredStatus::New => "new",
            StoredStatus::Up => "up",
            StoredStatus::Down => "down",
            StoredStatus::Paused => "paused",
        }
    }
}

/// The displayed status, computed from the stored one and the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Never pinged.
    New,
    /// Paused by the user.
    Paused,
    /// On time.
    Up,
    /// Late, but within the grace time.
    Grace,
    /// Late beyond the grace time, or failed.
    Down,
    /// A run has started and not finished (only when asked for `with_started`).
    Started,
}

/// The columns of `api_check` that decide its status, as a query selects them: `alias` is the
/// check's table (`timing_columns!("c")` for `FROM api_check c`), and
/// [`CheckTiming::from_row`] reads them back by name. Usable inside `concat!` for a `const`.
#[macro_export]
macro_rules! timing_columns {
    ($alias:literal) => {
        concat!(
            $alias,
            ".status AS timing_status, ",
            $alias,
            ".kind AS timing_kind, ",
            "(EXTRACT(EPOCH FROM ",
            $alias,
            ".timeout) * 1000000)::int8 AS timing_timeout, ",
            "(EXTRACT(EPOCH FROM ",
            $alias,
            ".grace) * 1000000)::int8 AS timing_grace, ",
            $alias,
            ".schedule AS timing_schedule, ",
            $alias,
            ".tz AS timing_tz, ",
            $alias,
            ".last_ping AS timing_last_ping, ",
            $alias,
            ".last_start AS timing_last_start"
        )
    };
}

/// The columns of `api_check` that decide its status.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckTiming {
    /// `status`.
    pub status: StoredStatus,
    /// `kind`.
    pub kind: CheckKind,
    /// `timeout` (simple checks).
    pub timeout: TimeDelta,
    /// `grace`.
    pub grace: TimeDelta,
    /// `schedule` (cron and OnCalendar checks).
    pub schedule: String,
    /// `tz` (cron and OnCalendar checks).
    pub tz: String,
    /// `last_ping`.
    pub last_ping: Option<DateTime<Utc>>,
    /// `last_start`.
    pub last_start: Option<DateTime<Utc>>,
}

impl Default for CheckTiming {
    /// Healthchecks' defaults for a new check.
    fn default() -> Self {
        CheckTiming {
            status: StoredStatus::New,
            kind: CheckKind::Simple,
            timeout: TimeDelta::days(1),
            grace: TimeDelta::hours(1),
            schedule: "* * * * *".to_owned(),
            tz: "UTC".to_owned(),
            last_ping: None,
            last_start: None,
        }
    }
}

impl CheckTiming {
    /// The timing of a check whose stored `status` and `kind` are these, the other columns at
    /// Healthchecks' defaults (fill them in with struct update syntax): the one place that says how
    /// unknown values read, an unknown status as `new` and an unknown kind as `simple`
    /// (Healthchecks gives it no schedule).
    pub fn from_stored(status: &str, kind: &str) -> CheckTiming {
        CheckTiming {
            status: StoredStatus::from_db(status).unwrap_or(StoredStatus::New),
            kind: CheckKind::from_db(kind).unwrap_or(CheckKind::Simple),
            ..CheckTiming::default()
        }
    }

    /// Reads the columns [`timing_columns!`] selected (NULL intervals, as a LEFT JOIN without
    /// a check gives, read as zero).
    pub fn from_row(row: &tokio_postgres::Row) -> Result<CheckTiming, tokio_postgres::Error> {
        let micros = |name: &str| -> Result<TimeDelta, tokio_postgres::Error> {
            let value: Option<i64> = row.try_get(name)?;
            Ok(TimeDelta::microseconds(value.unwrap_or_default()))
        };
        let status: Option<String> = row.try_get("timing_status")?;
        let kind: Option<String> = row.try_get("timing_kind")?;
        Ok(CheckTiming {
            timeout: micros("timing_timeout")?,
            grace: micros("timing_grace")?,
            schedule: row
                .try_get::<_, Option<String>>("timing_schedule")?
                .unwrap_or_default(),
            tz: row
                .try_get::<_, Option<String>>("timing_tz")?
                .unwrap_or_default(),
            last_ping: row.try_get("timing_last_ping")?,
            last_start: row.try_get("timing_last_start")?,
            ..CheckTiming::from_stored(
                status.as_deref().unwrap_or_default(),
                kind.as_deref().unwrap_or_default(),
            )
        })
    }

    /// When the check is next expected: the start of its grace period, or `None` for "never".
    ///
    /// Only an `up` check has a schedule-based deadline; with `with_started`, a running job
    /// (not on a `down` check) makes `last_start` the deadline if it is earlier.
    pub fn grace_start(&self, with_started: bool) -> Result<Option<DateTime<Utc>>, ScheduleError> {
        let mut deadline = None;
        if self.status == StoredStatus::Up {
            if let Some(last_ping) = self.last_ping {
                deadline = match self.kind {
                    CheckKind::Simple => last_ping.checked_add_signed(self.timeout),
                    CheckKind::Cron => self.next_fire(ScheduleKind::Cron, last_ping)?,
                    CheckKind::OnCalendar => self.next_fire(ScheduleKind::OnCalendar, last_ping)?,
                };
            }
        }
        if with_started && self.status != StoredStatus::Down {
            if let Some(last_start) = self.last_start {
                deadline = Some(deadline.map_or(last_start, |d| d.min(last_start)));
            }
        }
        Ok(deadline)
    }

    /// When the check goes down if nothing arrives: grace start plus grace (`alert_after`).
    pub fn going_down_after(&self) -> Result<Option<DateTime<Utc>>, ScheduleError> {
        Ok(self
            .grace_start(true)?
            .and_then(|start| start.checked_add_signed(self.grace)))
    }

    /// The displayed status at `now`; `with_started` reports running jobs as [`Status::Started`].
    pub fn status(&self, now: DateTime<Utc>, with_started: bool) -> Result<Status, ScheduleError> {
        if let Some(last_start) = self.last_start {
            // An expired start means down whatever the stored status, even paused or new.
            if last_start
                .checked_add_signed(self.grace)
                .is_some_and(|t| now >= t)
            {
                return Ok(Status::Down);
            } else if with_started {
                return Ok(Status::Started);
            }
        }
        match self.status {
            StoredStatus::New => return Ok(Status::New),
            StoredStatus::Paused => return Ok(Status::Paused),
            StoredStatus::Down => return Ok(Status::Down),
            StoredStatus::Up => {}
        }
        let Some(grace_start) = self.grace_start(false)? else {
            // The schedule never fires again: the check can never be late.
            return Ok(Status::Up);
        };
        Ok(match grace_start.checked_add_signed(self.grace) {
            Some(down_at) if now >= down_at => Status::Down,
            _ if now >= grace_start => Status::Grace,
            _ => Status::Up,
        })
    }

    fn next_fire(
        &self,
        kind: ScheduleKind,
        after: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, ScheduleError> {
        Ok(Schedule::parse(kind, &self.schedule, &self.tz)?.next_after(after))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn up_at(last_ping: &str) -> CheckTiming {
        CheckTiming {
            status: StoredStatus::Up,
            last_ping: Some(t(last_ping)),
            ..Default::default()
        }
    }

    fn cron(schedule: &str, tz: &str, last_ping: &str) -> CheckTiming {
        CheckTiming {
            kind: CheckKind::Cron,
            schedule: schedule.to_owned(),
            tz: tz.to_owned(),
            ..up_at(last_ping)
        }
    }

    fn oncalendar(schedule: &str, tz: &str, last_ping: &str) -> CheckTiming {
        CheckTiming {
            kind: CheckKind::OnCalendar,
            ..cron(schedule, tz, last_ping)
        }
    }

    #[track_caller]
    fn check_status(check: &CheckTiming, now: &str, expected: Status) {
        assert_eq!(check.status(t(now), false).unwrap(), expected, "at {now}");
    }

    #[track_caller]
    fn check_started(check: &CheckTiming, now: &str, expected: Status) {
        assert_eq!(check.status(t(now), true).unwrap(), expected, "at {now}");
    }

    // get_status: test_check_model.py

    #[test]
    fn new_check_is_new() {
        check_status(&CheckTiming::default(), "2020-01-01T00:00:00Z", Status::New);
    }

    #[test]
    fn paused_check_is_paused() {
        let check = CheckTiming {
            status: StoredStatus::Paused,
            ..up_at("2020-01-01T00:00:00Z")
        };
        check_status(&check, "2020-03-01T00:00:00Z", Status::Paused);
    }

    #[test]
    fn simple_check_up_then_grace_then_down() {
        let check = up_at("2020-01-01T00:00:00Z");
        check_status(&check, "2020-01-01T23:59:59Z", Status::Up);
        // test_get_status_handles_grace: 1 day 30 minutes after the ping.
        check_status(&check, "2020-01-02T00:30:00Z", Status::Grace);
        check_status(&check, "2020-01-02T00:59:59Z", Status::Grace);
        check_status(&check, "2020-01-02T01:00:00Z", Status::Down);
    }

    #[test]
    fn stored_down_wins() {
        let check = CheckTiming {
            status: StoredStatus::Down,
            ..up_at("2020-01-01T00:00:00Z")
        };
        check_status(&check, "2020-01-01T00:00:01Z", Status::Down);
    }

    #[test]
    fn cron_daily_up_grace_down() {
        let check = cron("0 0 * * *", "UTC", "2020-01-01T00:00:00Z");
        check_status(&check, "2020-01-01T23:59:00Z", Status::Up);
        check_status(&check, "2020-01-02T00:30:00Z", Status::Grace);
        check_status(&check, "2020-01-02T01:00:00Z", Status::Down);
    }

    #[test]
    fn oncalendar_daily_up_grace_down() {
        let check = oncalendar("00:00", "UTC", "2020-01-01T00:00:00Z");
        check_status(&check, "2020-01-01T23:59:00Z", Status::Up);
        check_status(&check, "2020-01-02T00:30:00Z", Status::Grace);
        check_status(&check, "2020-01-02T01:00:00Z", Status::Down);
    }

    #[test]
    fn oncalendar_without_future_occurrence_stays_up() {
        // test_status_handles_stopiteration.
        let check = oncalendar("2020-01-01 00:00", "UTC", "2021-01-01T00:00:00Z");
        assert_eq!(check.grace_start(false).unwrap(), None);
        check_status(&check, "2030-01-01T00:00:00Z", Status::Up);
        assert_eq!(check.going_down_after().unwrap(), None);
    }

    #[test]
    fn oncalendar_fires_as_far_ahead_as_systemd() {
        // systemd finds `2100-02-28 00:00` from 2024; the check is up until then.
        let check = oncalendar("2100-02-28 00:00", "UTC", "2024-01-01T00:00:00Z");
        assert_eq!(
            check.grace_start(false).unwrap(),
            Some(t("2100-02-28T00:00:00Z"))
        );
        check_status(&check, "2099-01-01T00:00:00Z", Status::Up);
        check_status(&check, "2100-02-28T01:00:00Z", Status::Down);
    }

    #[test]
    fn cron_uses_the_checks_zone() {
        // Australia/Brisbane is UTC+10 all year: midnight there is 14:00 UTC.
        let check = cron("0 0 * * *", "Australia/Brisbane", "2020-01-01T00:00:00Z");
        assert_eq!(
            check.grace_start(false).unwrap(),
            Some(t("2020-01-01T14:00:00Z"))
        );
        check_status(&check, "2020-01-01T14:30:00Z", Status::Grace);
        check_status(&check, "2020-01-01T15:00:00Z", Status::Down);
    }

    #[test]
    fn cron_next_ping_is_the_next_hour() {
        let check = cron("0 * * * *", "UTC", "2020-01-01T00:00:00Z");
        assert_eq!(
            check.grace_start(false).unwrap(),
            Some(t("2020-01-01T01:00:00Z"))
        );
    }

    #[test]
    fn grace_start_is_utc_in_a_zone_with_an_offset() {
        // test_get_grace_start_returns_utc: the next 09:00 in Riga (winter, UTC+2) is 07:00 UTC.
        let check = cron("0 9 * * *", "Europe/Riga", "2020-01-01T08:00:00Z");
        assert_eq!(
            check.grace_start(false).unwrap(),
            Some(t("2020-01-02T07:00:00Z"))
        );
    }

    #[test]
    fn autumn_dst_transition() {
        // test_get_status_handles_autumn_dst_transition: Riga leaves summer time at 01:00 UTC on
        // 2019-10-27; after a ping at 00:55 UTC, `15 * * * *` is next due at 01:15 UTC.
        let check = cron("15 * * * *", "Europe/Riga", "2019-10-27T00:55:00Z");
        assert_eq!(
            check.grace_start(false).unwrap(),
            Some(t("2019-10-27T01:15:00Z"))
        );
        check_status(&check, "2019-10-27T01:05:00Z", Status::Up);
    }

    #[test]
    fn started_is_reported_only_when_asked() {
        let check = CheckTiming {
            last_start: Some(t("2020-01-01T00:00:00Z")),
            ..up_at("2019-12-31T12:00:00Z")
        };
        check_started(&check, "2020-01-01T00:10:00Z", Status::Started);
        check_status(&check, "2020-01-01T00:10:00Z", Status::Up);
    }

    #[test]
    fn started_wins_for_every_stored_status() {
        for status in [
            StoredStatus::New,
            StoredStatus::Up,
            StoredStatus::Down,
            StoredStatus::Paused,
        ] {
            let check = CheckTiming {
                status,
                last_start: Some(t("2020-01-01T00:00:00Z")),
                ..up_at("2019-12-31T12:00:00Z")
            };
            check_started(&check, "2020-01-01T00:10:00Z", Status::Started);
        }
    }

    #[test]
    fn expired_start_is_down_for_every_stored_status() {
        for status in [
            StoredStatus::New,
            StoredStatus::Up,
            StoredStatus::Down,
            StoredStatus::Paused,
        ] {
            let check = CheckTiming {
                status,
                last_start: Some(t("2020-01-01T00:00:00Z")),
                ..up_at("2019-12-31T12:00:00Z")
            };
            check_status(&check, "2020-01-01T01:00:00Z", Status::Down);
            check_started(&check, "2020-01-01T01:00:00Z", Status::Down);
        }
    }

    #[test]
    fn running_up_check_shows_its_schedule_status_without_started() {
        // A start that has not expired is ignored by get_status(): the schedule decides.
        let check = CheckTiming {
            last_start: Some(t("2020-01-02T00:40:00Z")),
            ..up_at("2020-01-01T00:00:00Z")
        };
        check_status(&check, "2020-01-02T00:45:00Z", Status::Grace);
    }

    // going_down_after: test_check_going_down_after.py

    #[test]
    fn going_down_after_new_is_none() {
        assert_eq!(CheckTiming::default().going_down_after().unwrap(), None);
    }

    #[test]
    fn going_down_after_paused_is_none() {
        let check = CheckTiming {
            status: StoredStatus::Paused,
            ..up_at("2020-01-01T00:00:00Z")
        };
        assert_eq!(check.going_down_after().unwrap(), None);
    }

    #[test]
    fn going_down_after_up_is_ping_plus_timeout_plus_grace() {
        let check = up_at("2020-01-01T00:00:00Z");
        assert_eq!(
            check.going_down_after().unwrap(),
            Some(t("2020-01-02T01:00:00Z"))
        );
    }

    #[test]
    fn going_down_after_paused_then_started_is_start_plus_grace() {
        let check = CheckTiming {
            status: StoredStatus::Paused,
            last_start: Some(t("2020-01-01T00:00:00Z")),
            ..Default::default()
        };
        assert_eq!(
            check.going_down_after().unwrap(),
            Some(t("2020-01-01T01:00:00Z"))
        );
    }

    #[test]
    fn going_down_after_new_then_started_is_start_plus_grace() {
        let check = CheckTiming {
            last_start: Some(t("2020-01-01T00:00:00Z")),
            ..Default::default()
        };
        assert_eq!(
            check.going_down_after().unwrap(),
            Some(t("2020-01-01T01:00:00Z"))
        );
        check_status(&check, "2020-01-01T01:00:00Z", Status::Down);
    }

    #[test]
    fn going_down_after_down_is_none() {
        let check = CheckTiming {
            status: StoredStatus::Down,
            ..up_at("2020-01-01T00:00:00Z")
        };
        assert_eq!(check.going_down_after().unwrap(), None);
    }

    #[test]
    fn going_down_after_down_then_started_is_none() {
        let check = CheckTiming {
            status: StoredStatus::Down,
            last_start: Some(t("2020-01-01T00:00:00Z")),
            ..up_at("2019-12-31T00:00:00Z")
        };
        assert_eq!(check.going_down_after().unwrap(), None);
    }

    #[test]
    fn going_down_after_up_and_running_takes_the_earlier_deadline() {
        let check = CheckTiming {
            last_start: Some(t("2020-01-01T12:00:00Z")),
            ..up_at("2020-01-01T00:00:00Z")
        };
        assert_eq!(
            check.going_down_after().unwrap(),
            Some(t("2020-01-01T13:00:00Z"))
        );
        let check = CheckTiming {
            last_start: Some(t("2020-01-03T12:00:00Z")),
            ..up_at("2020-01-01T00:00:00Z")
        };
        assert_eq!(
            check.going_down_after().unwrap(),
            Some(t("2020-01-02T01:00:00Z"))
        );
    }

    // Errors never panic.

    #[test]
    fn unparsable_schedule_is_an_error_value() {
        let check = cron("0 0 31 2 *", "UTC", "2020-01-01T00:00:00Z");
        assert!(check.status(t("2020-01-02T00:00:00Z"), false).is_err());
        assert!(check.going_down_after().is_err());
        let check = cron("not a schedule", "UTC", "2020-01-01T00:00:00Z");
        assert!(check.going_down_after().is_err());
        let check = cron("0 0 * * *", "Not/AZone", "2020-01-01T00:00:00Z");
        assert!(check.going_down_after().is_err());
    }

    #[test]
    fn stored_states_do_not_evaluate_the_schedule() {
        // Healthchecks only evaluates the schedule of an up check; a paused check with a broken
        // schedule still shows paused.
        let check = CheckTiming {
            status: StoredStatus::Paused,
            ..cron("bogus", "UTC", "2020-01-01T00:00:00Z")
        };
        check_status(&check, "2020-01-02T00:00:00Z", Status::Paused);
    }

    #[test]
    fn db_values_round_trip() {
        for s in ["new", "up", "down", "paused"] {
            assert_eq!(StoredStatus::from_db(s).unwrap().as_db(), s);
        }
        for k in ["simple", "cron", "oncalendar"] {
            assert_eq!(CheckKind::from_db(k).unwrap().as_db(), k);
        }
        assert_eq!(StoredStatus::from_db("grace"), None);
    }

    #[test]
    fn unknown_stored_values_read_as_healthchecks_reads_them() {
        let timing = CheckTiming::from_stored("bogus", "weird");
        assert_eq!(timing.status, StoredStatus::New);
        assert_eq!(timing.kind, CheckKind::Simple);
        let timing = CheckTiming::from_stored("paused", "oncalendar");
        assert_eq!(timing.status, StoredStatus::Paused);
        assert_eq!(timing.kind, CheckKind::OnCalendar);
    }

    #[test]
    fn the_timing_columns_name_every_field_from_row_reads() {
        let columns = crate::timing_columns!("c");
        for name in [
            "timing_status",
            "timing_kind",
            "timing_timeout",
            "timing_grace",
            "timing_schedule",
            "timing_tz",
            "timing_last_ping",
            "timing_last_start",
        ] {
            assert!(columns.contains(&format!("AS {name}")), "{name}");
        }
        assert!(columns.starts_with("c.status AS timing_status, "));
    }
}
