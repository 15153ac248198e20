//! OnCalendar expressions with systemd's meaning (placeholder: the engine is being written).

use super::{ScheduleError, Zone};

/// One or more parsed OnCalendar expressions (one per line); the earliest next time wins.
#[derive(Debug, Clone)]
pub struct OnCalendar {}

impl OnCalendar {
    /// Parses one expression per line; lines without a zone use `default_zone`.
    pub fn parse(_text: &str, _default_zone: &Zone) -> Result<OnCalendar, ScheduleError> {
        Err(ScheduleError::new("oncalendar schedules are not supported yet"))
    }

    /// The first fire time (Unix seconds) strictly after `after`, within the horizon.
    pub fn next_after(&self, _after: i64) -> Option<i64> {
        None
    }
}
