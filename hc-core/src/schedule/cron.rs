//! Cron expressions with Debian cron's meaning, including its daylight-saving rules.
//!
//! [`Cron::parse`] turns the five fields into bit sets ([`parse`]); [`Cron::next_after`] walks
//! wall-clock time by month, day, hour and minute over those sets (never minute by minute) and
//! maps the matches to real instants the way Debian cron's main loop does ([`dst`]).
//! The contract is `cron-semantics.md`.

mod dst;
mod parse;

use super::{ScheduleError, Zone, calendar};

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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, FixedOffset, SecondsFormat};
    use proptest::prelude::*;

    fn instant(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().timestamp()
    }

    fn show(t: i64, zone: &Zone) -> String {
        let offset = FixedOffset::east_opt(zone.offset_at(t)).unwrap();
        DateTime::from_timestamp(t, 0)
            .unwrap()
            .with_timezone(&offset)
            .to_rfc3339_opts(SecondsFormat::Secs, false)
    }

    /// The first fire times of `expr` in `tz` strictly after `start`, as RFC 3339 with offsets.
    #[track_caller]
    fn check(expr: &str, tz: &str, start: &str, expected: &[&str]) {
        let zone = Zone::from_name(tz).unwrap();
        let cron = Cron::parse(expr).unwrap();
        let got: Vec<String> = std::iter::successors(cron.next_after(&zone, instant(start)), |t| {
            cron.next_after(&zone, *t)
        })
        .take(expected.len())
        .map(|t| show(t, &zone))
        .collect();
        assert_eq!(got, expected, "{expr} in {tz} after {start}");
    }

    #[track_caller]
    fn check_error(expr: &str, expected: &str) {
        match Cron::parse(expr) {
            Ok(cron) => panic!("{expr:?} parsed: {cron:?}"),
            Err(err) => assert_eq!(err.message(), expected, "{expr:?}"),
        }
    }

    // Parsing errors.

    #[test]
    fn field_count() {
        check_error("* * * *", "expected 5 fields, got 4");
        check_error(
            "0 * * * * *",
            "expected 5 fields, got 6 (a seconds field is not supported)",
        );
        check_error("* * * * * * *", "expected 5 fields, got 7");
        check_error("", "expected 5 fields, got 0");
        check_error(
            "@daily",
            "aliases like \"@daily\" are not supported: write the 5 fields, e.g. \"0 0 * * *\"",
        );
    }

    #[test]
    fn out_of_range() {
        check_error(
            "61 * * * *",
            "bad minute field \"61\": 61 is out of range 0-59",
        );
        check_error(
            "* 24 * * *",
            "bad hour field \"24\": 24 is out of range 0-23",
        );
        check_error(
            "* * 0 * *",
            "bad day-of-month field \"0\": 0 is out of range 1-31",
        );
        check_error(
            "* * * 13 *",
            "bad month field \"13\": 13 is out of range 1-12",
        );
        check_error(
            "* * * * 8",
            "bad day-of-week field \"8\": 8 is out of range 0-7",
        );
    }

    #[test]
    fn huge_numbers_are_rejected_cheaply() {
        check_error(
            "0-1000000000 * * * *",
            "bad minute field \"0-1000000000\": 1000000000 is out of range 0-59",
        );
        let digits = "9".repeat(900);
        assert!(Cron::parse(&format!("{digits} * * * *")).is_err());
        // A huge step is allowed (Debian has no upper bound): it selects the first value only.
        check(
            "0/99999999999 0 * * *",
            "UTC",
            "2024-01-01T00:00:00Z",
            &["2024-01-02T00:00:00+00:00"],
        );
    }

    #[test]
    fn input_length_is_capped() {
        let long = format!("{} * * * *", vec!["1"; 600].join(","));
        check_error(
            &long,
            "the expression is too long (1207 bytes, at most 1000)",
        );
    }

    #[test]
    fn reversed_and_wrapping_ranges() {
        check_error(
            "5-1 * * * *",
            "bad minute field \"5-1\": range \"5-1\" runs backwards (ranges cannot wrap around; use a list, e.g. \"5-59,0-1\")",
        );
        check_error(
            "* * * * FRI-SUN",
            "bad day-of-week field \"FRI-SUN\": range \"FRI-SUN\" runs backwards (ranges cannot wrap around; use a list, e.g. \"FRI-7,0-SUN\")",
        );
    }

    #[test]
    fn steps_and_lists() {
        check_error(
            "*/0 * * * *",
            "bad minute field \"*/0\": step 0 is not allowed",
        );
        check_error("1,,2 * * * *", "bad minute field \"1,,2\": empty list item");
        check_error(
            "*/ * * * *",
            "bad minute field \"*/\": step \"\" is not a number",
        );
    }

    #[test]
    fn unsupported_extensions() {
        check_error(
            "* * ? * *",
            "bad day-of-month field \"?\": \"?\" is not supported: use \"*\"",
        );
        check_error(
            "* * 15W * *",
            "bad day-of-month field \"15W\": \"W\" (nearest weekday) is not supported; only \"LW\" (last weekday of the month) is",
        );
        check_error(
            "* * * * FRIL",
            "bad day-of-week field \"FRIL\": in \"FRIL\" write the day as a number before \"L\", e.g. \"5L\" for the last Friday",
        );
        check_error(
            "* * * * MON#6",
            "bad day-of-week field \"MON#6\": in \"MON#6\" the week number after \"#\" must be 1-5",
        );
        check_error(
            "* * L/2 * *",
            "bad day-of-month field \"L/2\": \"L\" stands alone: \"L\" (last day) or \"LW\" (last weekday)",
        );
    }

    #[test]
    fn names_only_in_their_own_field() {
        check_error(
            "* * * * JAN",
            "bad day-of-week field \"JAN\": \"JAN\" is a month name, allowed only in the month field",
        );
        check_error(
            "* * * MON *",
            "bad month field \"MON\": \"MON\" is a day name, allowed only in the day-of-week field",
        );
        check_error(
            "* * * JANUARY *",
            "bad month field \"JANUARY\": \"JANUARY\" is not a number or a three-letter month name",
        );
    }

    #[test]
    fn never_fires() {
        check_error(
            "0 0 31 2 *",
            "no fire time within 50 years: day-of-month 31 never occurs in February",
        );
        check_error(
            "0 0 30 2 *",
            "no fire time within 50 years: day-of-month 30 never occurs in February",
        );
        check_error(
            "0 0 31 4,jun *",
            "no fire time within 50 years: day-of-month 31 never occurs in April or June",
        );
        check_error(
            "0 0 */100,1-7 * MON#2",
            "no fire time within 50 years: no day matches both the day-of-month and the day-of-week field",
        );
        check_error(
            "0 0 LW * */7",
            "no fire time within 50 years: no day matches both the day-of-month and the day-of-week field",
        );
    }

    // Fields, names and the day-of-month / day-of-week rule.

    #[test]
    fn strictly_after_and_whole_minutes() {
        check(
            "*/5 * * * *",
            "UTC",
            "2024-01-01T00:00:00Z",
            &["2024-01-01T00:05:00+00:00"],
        );
        check(
            "*/5 * * * *",
            "UTC",
            "2024-01-01T00:04:59Z",
            &["2024-01-01T00:05:00+00:00"],
        );
        check(
            "* * * * *",
            "UTC",
            "2024-01-01T00:00:30Z",
            &["2024-01-01T00:01:00+00:00"],
        );
    }

    #[test]
    fn names_any_case() {
        check(
            "0 0 * jan,Mar sun",
            "UTC",
            "2024-01-01T00:00:00Z",
            &["2024-01-07T00:00:00+00:00"],
        );
        check(
            "0 0 * * mon-Fri/2",
            "UTC",
            "2024-01-06T00:00:00Z",
            &[
                "2024-01-08T00:00:00+00:00",
                "2024-01-10T00:00:00+00:00",
                "2024-01-12T00:00:00+00:00",
                "2024-01-15T00:00:00+00:00",
            ],
        );
    }

    #[test]
    fn sunday_is_0_and_7() {
        check(
            "0 0 * * 7",
            "UTC",
            "2024-01-01T00:00:00Z",
            &["2024-01-07T00:00:00+00:00"],
        );
        check(
            "0 0 * * 0",
            "UTC",
            "2024-01-01T00:00:00Z",
            &["2024-01-07T00:00:00+00:00"],
        );
        check(
            "0 0 * * 5-7",
            "UTC",
            "2024-01-01T00:00:00Z",
            &[
                "2024-01-05T00:00:00+00:00",
                "2024-01-06T00:00:00+00:00",
                "2024-01-07T00:00:00+00:00",
            ],
        );
    }

    #[test]
    fn number_with_step_runs_to_the_end() {
        check(
            "50/5 0 * * *",
            "UTC",
            "2024-01-01T00:00:00Z",
            &[
                "2024-01-01T00:50:00+00:00",
                "2024-01-01T00:55:00+00:00",
                "2024-01-02T00:50:00+00:00",
            ],
        );
    }

    #[test]
    fn single_value_range_with_step_is_one_value() {
        // Debian's reading; cronsim would also give 00:25, 00:40 and 00:55.
        check(
            "10-10/15 0 * * *",
            "UTC",
            "2024-01-01T00:00:00Z",
            &["2024-01-01T00:10:00+00:00", "2024-01-02T00:10:00+00:00"],
        );
    }

    #[test]
    fn restricted_day_fields_are_ored() {
        // The 13th or any Friday.
        check(
            "0 0 13 * FRI",
            "UTC",
            "2024-09-01T00:00:00Z",
            &[
                "2024-09-06T00:00:00+00:00",
                "2024-09-13T00:00:00+00:00",
                "2024-09-20T00:00:00+00:00",
            ],
        );
        check(
            "0 0 30 2 MON",
            "UTC",
            "2024-02-01T00:00:00Z",
            &["2024-02-05T00:00:00+00:00"],
        );
    }

    #[test]
    fn star_prefixed_day_field_means_and() {
        check(
            "0 0 */100,1-7 * MON",
            "UTC",
            "2024-01-01T00:00:00Z",
            &["2024-02-05T00:00:00+00:00", "2024-03-04T00:00:00+00:00"],
        );
        check(
            "0 0 1-7 * */7",
            "UTC",
            "2024-01-01T00:00:00Z",
            &["2024-01-07T00:00:00+00:00", "2024-02-04T00:00:00+00:00"],
        );
        check(
            "0 0 13 * */1",
            "UTC",
            "2024-01-01T00:00:00Z",
            &["2024-01-13T00:00:00+00:00"],
        );
    }

    #[test]
    fn last_day_and_last_weekday() {
        check(
            "0 0 L * *",
            "UTC",
            "2024-01-31T00:00:00Z",
            &["2024-02-29T00:00:00+00:00", "2024-03-31T00:00:00+00:00"],
        );
        // 2024-03-31 is a Sunday and 2024-08-31 a Saturday: both fall back to the Friday.
        check(
            "0 0 LW 3,8 *",
            "UTC",
            "2024-01-01T00:00:00Z",
            &["2024-03-29T00:00:00+00:00", "2024-08-30T00:00:00+00:00"],
        );
    }

    #[test]
    fn last_and_nth_weekday() {
        check(
            "0 0 * * 5L",
            "UTC",
            "2024-01-01T00:00:00Z",
            &["2024-01-26T00:00:00+00:00", "2024-02-23T00:00:00+00:00"],
        );
        check(
            "0 0 * * MON#2",
            "UTC",
            "2024-01-01T00:00:00Z",
            &["2024-01-08T00:00:00+00:00", "2024-02-12T00:00:00+00:00"],
        );
        check(
            "0 0 * 2 MON#5",
            "UTC",
            "2024-01-01T00:00:00Z",
            &["2044-02-29T00:00:00+00:00"],
        );
        check(
            "0 0 * * 7L",
            "UTC",
            "2024-01-01T00:00:00Z",
            &["2024-01-28T00:00:00+00:00"],
        );
    }

    #[test]
    fn sparse_days_are_found_across_centuries() {
        check(
            "0 0 29 2 */7",
            "UTC",
            "2024-01-01T00:00:00Z",
            &[
                "2032-02-29T00:00:00+00:00",
                "2060-02-29T00:00:00+00:00",
                "2088-02-29T00:00:00+00:00",
                "2128-02-29T00:00:00+00:00",
            ],
        );
    }

    #[test]
    fn horizon_covers_the_longest_gap() {
        // A satisfiable day rule recurs within 40 years (Sunday Feb 29: 2088, then 2128, as 2100
        // is not a leap year), inside cronsim's limit of the start's year + 50, so parsing's
        // "never fires" check is the only way iteration ends early.
        let cron = Cron::parse("0 0 29 2 */7").unwrap();
        let zone = Zone::utc();
        assert_eq!(
            cron.next_after(&zone, instant("2089-01-01T00:00:00Z")),
            Some(instant("2128-02-29T00:00:00Z"))
        );
    }

    #[test]
    fn extreme_starts_end_or_clamp() {
        let cron = Cron::parse("0 0 * * *").unwrap();
        let zone = Zone::utc();
        assert_eq!(cron.next_after(&zone, i64::MAX), None);
        assert_eq!(
            cron.next_after(&zone, i64::MIN),
            Some(instant("0001-01-02T00:00:00Z"))
        );
    }

    // Daylight saving time (Debian's rules).

    #[test]
    fn riga_example_of_the_contract() {
        check(
            "30 2 * * 1-5",
            "Europe/Riga",
            "2021-03-28T01:30:00+02:00",
            &["2021-03-29T02:30:00+03:00"],
        );
    }

    #[test]
    fn new_york_fixed_time_in_the_gap_runs_after_the_jump() {
        check(
            "30 2 * * *",
            "America/New_York",
            "2021-03-13T12:00:00-05:00",
            &["2021-03-14T03:00:00-04:00", "2021-03-15T02:30:00-04:00"],
        );
        // Several skipped times collapse into one instant.
        check(
            "0,15,30 2 * * *",
            "America/New_York",
            "2021-03-13T12:00:00-05:00",
            &["2021-03-14T03:00:00-04:00", "2021-03-15T02:00:00-04:00"],
        );
    }

    #[test]
    fn new_york_fixed_time_in_the_repeat_runs_once() {
        check(
            "30 1 * * *",
            "America/New_York",
            "2021-11-06T12:00:00-04:00",
            &["2021-11-07T01:30:00-04:00", "2021-11-08T01:30:00-05:00"],
        );
    }

    #[test]
    fn new_york_wildcard_runs_in_both_passes_and_not_in_the_gap() {
        check(
            "*/20 1 * * *",
            "America/New_York",
            "2021-11-07T00:50:00-04:00",
            &[
                "2021-11-07T01:00:00-04:00",
                "2021-11-07T01:20:00-04:00",
                "2021-11-07T01:40:00-04:00",
                "2021-11-07T01:00:00-05:00",
                "2021-11-07T01:20:00-05:00",
                "2021-11-07T01:40:00-05:00",
                "2021-11-08T01:00:00-05:00",
            ],
        );
        check(
            "*/30 * * * *",
            "America/New_York",
            "2021-03-14T01:00:00-05:00",
            &["2021-03-14T01:30:00-05:00", "2021-03-14T03:00:00-04:00"],
        );
        check(
            "15 */2 * * *",
            "America/New_York",
            "2021-03-14T01:00:00-05:00",
            &["2021-03-14T04:15:00-04:00"],
        );
    }

    #[test]
    fn start_in_the_second_pass_never_goes_back() {
        // 01:10 EST is the second pass; the fixed-time 01:30 already ran at 01:30 EDT.
        check(
            "30 1 * * *",
            "America/New_York",
            "2021-11-07T01:10:00-05:00",
            &["2021-11-08T01:30:00-05:00"],
        );
        check(
            "*/30 1 * * *",
            "America/New_York",
            "2021-11-07T01:10:00-05:00",
            &["2021-11-07T01:30:00-05:00", "2021-11-08T01:00:00-05:00"],
        );
    }

    #[test]
    fn dublin_negative_dst() {
        check(
            "30 1 * * *",
            "Europe/Dublin",
            "2021-03-27T12:00:00Z",
            &["2021-03-28T02:00:00+01:00", "2021-03-29T01:30:00+01:00"],
        );
        check(
            "30 1 * * *",
            "Europe/Dublin",
            "2021-10-30T12:00:00+01:00",
            &["2021-10-31T01:30:00+01:00", "2021-11-01T01:30:00+00:00"],
        );
    }

    #[test]
    fn lord_howe_half_hour_shift() {
        // 2021-10-03 02:00 +10:30 becomes 02:30 +11:00.
        check(
            "15 2 * * *",
            "Australia/Lord_Howe",
            "2021-10-02T12:00:00+10:30",
            &["2021-10-03T02:30:00+11:00", "2021-10-04T02:15:00+11:00"],
        );
        check(
            "*/15 2 * * *",
            "Australia/Lord_Howe",
            "2021-10-03T01:50:00+10:30",
            &["2021-10-03T02:30:00+11:00", "2021-10-03T02:45:00+11:00"],
        );
        // 2022-04-03 02:00 +11:00 becomes 01:30 +10:30: 01:30-01:59 repeats.
        check(
            "45 1 * * *",
            "Australia/Lord_Howe",
            "2022-04-02T12:00:00+11:00",
            &["2022-04-03T01:45:00+11:00", "2022-04-04T01:45:00+10:30"],
        );
        check(
            "*/15 1 * * *",
            "Australia/Lord_Howe",
            "2022-04-03T01:20:00+11:00",
            &[
                "2022-04-03T01:30:00+11:00",
                "2022-04-03T01:45:00+11:00",
                "2022-04-03T01:30:00+10:30",
                "2022-04-03T01:45:00+10:30",
                "2022-04-04T01:00:00+10:30",
            ],
        );
    }

    #[test]
    fn chatham_shift_at_quarter_to() {
        // 2021-09-26 02:45 +12:45 becomes 03:45 +13:45.
        check(
            "0 3 * * *",
            "Pacific/Chatham",
            "2021-09-25T12:00:00+12:45",
            &["2021-09-26T03:45:00+13:45", "2021-09-27T03:00:00+13:45"],
        );
        check(
            "*/30 * * * *",
            "Pacific/Chatham",
            "2021-09-26T02:20:00+12:45",
            &["2021-09-26T02:30:00+12:45", "2021-09-26T04:00:00+13:45"],
        );
        // 2022-04-03 03:45 +13:45 becomes 02:45 +12:45.
        check(
            "0 3 * * *",
            "Pacific/Chatham",
            "2022-04-02T12:00:00+13:45",
            &["2022-04-03T03:00:00+13:45", "2022-04-04T03:00:00+12:45"],
        );
        check(
            "0 * * * *",
            "Pacific/Chatham",
            "2022-04-03T02:30:00+13:45",
            &[
                "2022-04-03T03:00:00+13:45",
                "2022-04-03T03:00:00+12:45",
                "2022-04-03T04:00:00+12:45",
            ],
        );
    }

    #[test]
    fn santiago_midnight_jump() {
        // 2022-09-11 00:00 -04 becomes 01:00 -03: the day starts at 01:00.
        check(
            "0 0 * * *",
            "America/Santiago",
            "2022-09-10T12:00:00-04:00",
            &["2022-09-11T01:00:00-03:00", "2022-09-12T00:00:00-03:00"],
        );
        check(
            "30 5 * * SUN",
            "America/Santiago",
            "2022-09-10T12:00:00-04:00",
            &["2022-09-11T05:30:00-03:00"],
        );
        check(
            "*/30 * * * *",
            "America/Santiago",
            "2022-09-10T23:40:00-04:00",
            &["2022-09-11T01:00:00-03:00"],
        );
        // 2022-04-03 00:00 -03 becomes 23:00 -04 on April 2: 23:00-23:59 repeats.
        check(
            "30 23 * * *",
            "America/Santiago",
            "2022-04-02T12:00:00-03:00",
            &["2022-04-02T23:30:00-03:00", "2022-04-03T23:30:00-04:00"],
        );
    }

    #[test]
    fn havana_midnight_jump() {
        // 2022-03-13 00:00 -05 becomes 01:00 -04.
        check(
            "0 0 * * *",
            "America/Havana",
            "2022-03-12T12:00:00-05:00",
            &["2022-03-13T01:00:00-04:00", "2022-03-14T00:00:00-04:00"],
        );
        // 2022-11-06 01:00 -04 becomes 00:00 -05: 00:00-00:59 repeats.
        check(
            "30 0 * * *",
            "America/Havana",
            "2022-11-05T12:00:00-04:00",
            &["2022-11-06T00:30:00-04:00", "2022-11-07T00:30:00-05:00"],
        );
        check(
            "30 0 * * *",
            "America/Havana",
            "2022-11-06T00:10:00-05:00",
            &["2022-11-07T00:30:00-05:00"],
        );
    }

    // Properties: no panics, bounded work, increasing whole minutes.

    const TOKENS: &[&str] = &[
        "*",
        "/",
        "-",
        ",",
        " ",
        "0",
        "1",
        "5",
        "7",
        "15",
        "23",
        "31",
        "59",
        "60",
        "99999999999",
        "L",
        "LW",
        "W",
        "#",
        "?",
        "MON",
        "sun",
        "JAN",
        "dec",
        "@",
        "\t",
        "5L",
        "MON#2",
    ];

    fn cronish() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(TOKENS), 0..40).prop_map(|t| t.concat())
    }

    fn fieldwise() -> impl Strategy<Value = String> {
        let field =
            prop::collection::vec(prop::sample::select(TOKENS), 1..5).prop_map(|t| t.concat());
        prop::collection::vec(field, 5).prop_map(|f| f.join(" "))
    }

    fn zone_name() -> impl Strategy<Value = &'static str> {
        prop::sample::select(
            &[
                "UTC",
                "Europe/Dublin",
                "America/New_York",
                "Australia/Lord_Howe",
                "America/Santiago",
                "Pacific/Chatham",
                "America/Havana",
            ][..],
        )
    }

    #[track_caller]
    fn check_iteration(expr: &str, tz: &str, start: i64) {
        let Ok(cron) = Cron::parse(expr) else { return };
        let zone = Zone::from_name(tz).unwrap();
        let mut previous = start;
        for _ in 0..5 {
            let Some(t) = cron.next_after(&zone, previous) else {
                break;
            };
            assert!(t > previous, "{expr} in {tz}: {t} after {previous}");
            assert_eq!(t % 60, 0, "{expr} in {tz}: {t}");
            previous = t;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn any_string_parses_or_errors(expr in ".{0,2000}") {
            let _ = Cron::parse(&expr);
        }

        #[test]
        fn cronish_strings_never_panic(expr in cronish(), tz in zone_name(), start in -5_000_000_000i64..5_000_000_000) {
            check_iteration(&expr, tz, start);
        }

        #[test]
        fn fieldwise_strings_iterate_upwards(expr in fieldwise(), tz in zone_name(), start in 1_400_000_000i64..2_100_000_000) {
            check_iteration(&expr, tz, start);
        }

        #[test]
        fn extreme_starts(expr in fieldwise(), start in prop::sample::select(&[i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX, 221_845_391_999][..])) {
            check_iteration(&expr, "America/New_York", start);
        }
    }
}
