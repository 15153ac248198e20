//! Cron expressions with Debian cron's meaning, including its daylight-saving rules.
//!
//! [`Cron::parse`] turns the five fields into bit sets ([`parse`]); [`Cron::next_after`] walks
//! wall-clock time by month, day, hour and minute over those sets (never minute by minute) and
//! maps the matches to real instants the way Debian cron's main loop does ([`dst`]).
//! The contract is `cron-semantics.md`.

mod calendar;
mod dst;
mod parse;

use super::{ScheduleError, Zone};

/// A parsed 5-field cron expression.
#[derive(Debug, Clone)]
pub struct Cron {
    /// Bit `m` for each matching minute.
    minutes: u64,
    /// Bit `h` for each matching hour.
    hours: u32,
    /// Bit `m` (1..=12) for each matching month.
    months: u16,
    /// The matching days (bit `d` for day `d`) of a month, by its shape: index
    /// `(length - 28) * 7 + weekday of the 1st` (0 = Sunday). The day fields only ever depend on
    /// the month's length and first weekday, so this table is all the day logic iteration needs.
    day_masks: [u32; 28],
    /// Debian's "fixed-time" job: neither the minute nor the hour field starts with `*`.
    fixed_time: bool,
}

impl Cron {
    /// Parses a 5-field cron expression (see `cron-semantics.md` for the accepted syntax).
    ///
    /// Rejects, with a message naming the field and the reason, anything outside that syntax and
    /// any expression that can never fire (`0 0 31 2 *`).
    pub fn parse(expr: &str) -> Result<Cron, ScheduleError> {
        parse::parse(expr)
    }

    /// The first fire time (Unix seconds, a whole minute) strictly after `after` in `zone`.
    ///
    /// `None` when the horizon ends the search: like cronsim, the search gives up when it reaches
    /// a local year more than [`HORIZON_YEARS`](super::HORIZON_YEARS) after the local year of
    /// `after + 1s`; fire times up to the end of that last year are still found.
    /// Starts from year 9000 on also give `None`; starts before year 1 are treated as year 1.
    pub fn next_after(&self, zone: &Zone, after: i64) -> Option<i64> {
        dst::next_after(self, zone, after)
    }

    /// Whether this is a Debian "fixed-time" job (neither minute nor hour field starts with `*`),
    /// which runs once for wall times repeated or skipped by a clock change.
    pub fn is_fixed_time(&self) -> bool {
        self.fixed_time
    }

    /// Whether some month (of some year) has a matching day.
    fn fires_in_some_month(&self) -> bool {
        (1..=12u32)
            .filter(|m| self.months & (1 << m) != 0)
            .any(|m| {
                let lengths = match m {
                    2 => 28..=29,
                    4 | 6 | 9 | 11 => 30..=30,
                    _ => 31..=31,
                };
                lengths
                    .flat_map(|len| (0..7).map(move |first| shape_index(len, first)))
                    .any(|i| self.day_masks[i] != 0)
            })
    }

    /// The matching days of `month` in `year`, bit `d` for day `d`.
    fn day_mask(&self, year: i64, month: u32) -> u32 {
        let len = calendar::days_in_month(year, month);
        let first = calendar::weekday(calendar::days_from_civil(year, month, 1));
        self.day_masks[shape_index(len, first)]
    }

    /// The first matching wall-clock minute in `from..limit` (local minutes since the epoch).
    ///
    /// Walks months, then days, then hours, then minutes, jumping over whole non-matching units,
    /// so a sparse schedule (February 29 on a Monday) costs a few steps per month searched.
    fn next_wall_match(&self, from: i64, limit: i64) -> Option<i64> {
        let (mut year, mut month, mut day) = calendar::civil_from_days(from.div_euclid(1440));
        let minute_of_day = from.rem_euclid(1440);
        // Both are below 60 / 24 after rem_euclid.
        let mut hour = (minute_of_day / 60) as u32;
        let mut minute = (minute_of_day % 60) as u32;
        loop {
            let day_start = calendar::days_from_civil(year, month, 1) + i64::from(day) - 1;
            if day_start * 1440 >= limit {
                return None;
            }
            let days = if self.months & (1 << month) != 0 {
                self.day_mask(year, month).checked_shr(day).unwrap_or(0)
            } else {
                0
            };
            if days == 0 {
                // Nothing left this month: start over on the 1st of the next one.
                (year, month) = if month == 12 {
                    (year + 1, 1)
                } else {
                    (year, month + 1)
                };
                (day, hour, minute) = (1, 0, 0);
                continue;
            }
            let skip = days.trailing_zeros();
            if skip > 0 {
                (day, hour, minute) = (day + skip, 0, 0);
                continue;
            }
            let hours = if hour < 24 { self.hours >> hour } else { 0 };
            if hours == 0 {
                (day, hour, minute) = (day + 1, 0, 0);
                continue;
            }
            let skip = hours.trailing_zeros();
            if skip > 0 {
                (hour, minute) = (hour + skip, 0);
                continue;
            }
            let minutes = if minute < 60 {
                self.minutes >> minute
            } else {
                0
            };
            if minutes == 0 {
                (hour, minute) = (hour + 1, 0);
                continue;
            }
            let found = (day_start * 24 + i64::from(hour)) * 60
                + i64::from(minute + minutes.trailing_zeros());
            return (found < limit).then_some(found);
        }
    }
}

/// The index into [`Cron::day_masks`] of a month of `len` days whose 1st is weekday `first`.
fn shape_index(len: u32, first: u32) -> usize {
    ((len - 28) * 7 + first) as usize
}
