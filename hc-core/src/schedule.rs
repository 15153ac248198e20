//! When is a check due: cron (Debian cron's meaning) and OnCalendar (systemd's meaning) schedules.
//!
//! [`Schedule`] is the one entry point the services use; the engines live in [`cron`] and
//! [`oncalendar`], and both read time zones through [`zone`].
//! Parsing and iteration never panic and take bounded time and memory for any input.

mod calendar;
pub mod cron;
pub mod oncalendar;
pub mod zone;

use chrono::{DateTime, Utc};

pub use zone::Zone;

/// How far ahead cron iteration looks before it concludes a schedule never fires again
/// (cronsim's limit). OnCalendar searches as far as systemd does: up to the end of 2199.
pub const HORIZON_YEARS: i32 = 50;

/// An error a user can act on: why an expression was rejected or cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ScheduleError {
    message: String,
}

impl ScheduleError {
    /// An error with the given user-facing message (lowercase, no trailing period).
    pub fn new(message: impl Into<String>) -> Self {
        ScheduleError {
            message: message.into(),
        }
    }

    /// The user-facing message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The kind of a check's schedule, as stored in `api_check.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleKind {
    /// A 5-field cron expression.
    Cron,
    /// One or more systemd OnCalendar expressions, one per line.
    OnCalendar,
}

/// A parsed schedule with its time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    zone: Zone,
    engine: Engine,
}

#[derive(Debug, Clone)]
enum Engine {
    Cron(cron::Cron),
    OnCalendar(oncalendar::OnCalendar),
}

impl Schedule {
    /// Parses `text` as a schedule of `kind` evaluated in the zone named `tz`.
    pub fn parse(kind: ScheduleKind, text: &str, tz: &str) -> Result<Schedule, ScheduleError> {
        let zone = Zone::from_name(tz)?;
        let engine = match kind {
            ScheduleKind::Cron => Engine::Cron(cron::Cron::parse(text)?),
            ScheduleKind::OnCalendar => {
                Engine::OnCalendar(oncalendar::OnCalendar::parse(text, &zone)?)
            }
        };
        Ok(Schedule { zone, engine })
    }

    /// The zone the schedule is evaluated in (the check's `tz`).
    pub fn zone(&self) -> &Zone {
        &self.zone
    }

    /// The first fire time strictly after `after`, or `None` when there is none within the
    /// engine's horizon (cron: 50 years; OnCalendar: systemd's, the end of 2199).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Fire times are whole seconds: flooring the start keeps "strictly after" exact.
        let t = after.timestamp();
        let next = match &self.engine {
            Engine::Cron(c) => c.next_after(&self.zone, t),
            Engine::OnCalendar(o) => o.next_after(t),
        }?;
        DateTime::from_timestamp(next, 0)
    }

    /// The fire times strictly after `after`, ascending, ending at the horizon.
    pub fn iter_after(&self, after: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        std::iter::successors(self.next_after(after), move |prev| self.next_after(*prev))
    }
}
