//! Cron expressions with Debian cron's meaning (placeholder: the engine is being written).

use super::{ScheduleError, Zone};

/// A parsed 5-field cron expression.
#[derive(Debug, Clone)]
pub struct Cron {}

impl Cron {
    /// Parses a 5-field cron expression.
    pub fn parse(_expr: &str) -> Result<Cron, ScheduleError> {
        Err(ScheduleError::new("cron schedules are not supported yet"))
    }

    /// The first fire time (Unix seconds) strictly after `after` in `zone`, within the horizon.
    pub fn next_after(&self, _zone: &Zone, _after: i64) -> Option<i64> {
        None
    }
}
