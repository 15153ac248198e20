//! Time zones read from the system's zoneinfo database (`/usr/share/zoneinfo`), the same files
//! Debian cron, systemd and Python's `zoneinfo` read, so every engine and oracle agrees on the rules.
//!
//! Instants are Unix seconds (`i64`); "local seconds" are the wall-clock time written as if it were UTC.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::ScheduleError;

/// Where the zone files live on Debian.
const ZONEINFO_DIR: &str = "/usr/share/zoneinfo";

/// The longest zone name Healthchecks can store (`api_check.tz` is varchar(36)); we allow a little more.
const MAX_ZONE_NAME: usize = 64;

/// A loaded time zone; cheap to clone.
#[derive(Clone)]
pub struct Zone {
    name: Arc<str>,
    tz: Arc<tz::TimeZone>,
}

/// The UTC instants that show a given local wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalInstants {
    /// The wall time is skipped by a forward jump.
    None,
    /// The wall time occurs once.
    Single(i64),
    /// The wall time occurs twice (a backward jump): first pass, then second pass.
    Ambiguous(i64, i64),
}

impl Zone {
    /// Loads a zone by its IANA name (`Europe/Riga`, `UTC`), caching loaded zones for the process.
    pub fn from_name(name: &str) -> Result<Zone, ScheduleError> {
        static CACHE: OnceLock<Mutex<HashMap<String, Zone>>> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        if let Some(zone) = cache
            .lock()
            .expect("zone cache lock is never poisoned")
            .get(name)
        {
            return Ok(zone.clone());
        }
        let zone = Self::load(name)?;
        cache
            .lock()
            .expect("zone cache lock is never poisoned")
            .insert(name.to_owned(), zone.clone());
        Ok(zone)
    }

    fn load(name: &str) -> Result<Zone, ScheduleError> {
        let unknown = || ScheduleError::new(format!("unknown time zone {name:?}"));
        // Names come from users: refuse anything that could leave the zoneinfo directory.
        let valid = !name.is_empty()
            && name.len() <= MAX_ZONE_NAME
            && !name.starts_with('/')
            && name
                .split('/')
                .all(|part| !part.is_empty() && !part.starts_with('.'))
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/_+-".contains(&b));
        if !valid {
            return Err(unknown());
        }
        let path = format!("{ZONEINFO_DIR}/{name}");
        let bytes = std::fs::read(&path).map_err(|_| unknown())?;
        let tz = tz::TimeZone::from_tz_data(&bytes).map_err(|_| unknown())?;
        Ok(Zone {
            name: name.into(),
            tz: Arc::new(tz),
        })
    }

    /// UTC, without touching the file system.
    pub fn utc() -> Zone {
        Zone {
            name: "UTC".into(),
            tz: Arc::new(tz::TimeZone::utc()),
        }
    }

    /// The name the zone was loaded by.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The offset from UTC, in seconds, in force at the instant `t`.
    pub fn offset_at(&self, t: i64) -> i32 {
        self.tz
            .find_local_time_type(t)
            .map(|ltt| ltt.ut_offset())
            // tz-rs only fails outside the representable range of years; no schedule reaches it.
            .unwrap_or(0)
    }

    /// Whether the zone's data marks the instant `t` as daylight-saving time (`tm_isdst`).
    pub fn is_dst_at(&self, t: i64) -> bool {
        self.tz
            .find_local_time_type(t)
            .map(|ltt| ltt.is_dst())
            .unwrap_or(false)
    }

    /// The local wall-clock time at the instant `t`, as local seconds.
    pub fn to_local(&self, t: i64) -> i64 {
        t + i64::from(self.offset_at(t))
    }

    /// The instants at which the wall clock shows `local` (local seconds).
    pub fn from_local(&self, local: i64) -> LocalInstants {
        const DAY: i64 = 86_400;
        let mut found: [i64; 3] = [0; 3];
        let mut n = 0;
        for probe in [local - DAY, local, local + DAY] {
            let t = local - i64::from(self.offset_at(probe));
            if self.to_local(t) == local && !found[..n].contains(&t) {
                found[n] = t;
                n += 1;
            }
        }
        found[..n].sort_unstable();
        match n {
            0 => LocalInstants::None,
            1 => LocalInstants::Single(found[0]),
            _ => LocalInstants::Ambiguous(found[0], found[n - 1]),
        }
    }
}

impl Zone {
    /// The zone's current standard and daylight-saving abbreviations (`EST`, `EDT`), as glibc puts
    /// them in `tzname` after `tzset`: from the file's POSIX TZ string, else from its latest
    /// transitions. systemd reads a trailing word equal to one of them as a DST flag.
    pub fn abbreviations(&self) -> Vec<&str> {
        let tz = tz::TimeZone::as_ref(&self.tz);
        let mut names: Vec<&str> = match tz.extra_rule() {
            Some(tz::timezone::TransitionRule::Fixed(ltt)) => vec![ltt.time_zone_designation()],
            Some(tz::timezone::TransitionRule::Alternate(rule)) => vec![
                rule.std().time_zone_designation(),
                rule.dst().time_zone_designation(),
            ],
            None => {
                // The latest transition to a standard and to a daylight-saving type.
                let types = tz.local_time_types();
                let mut found: [Option<&str>; 2] = [None, None];
                for tr in tz.transitions().iter().rev() {
                    if let Some(ltt) = types.get(tr.local_time_type_index()) {
                        let slot = &mut found[usize::from(ltt.is_dst())];
                        slot.get_or_insert(ltt.time_zone_designation());
                    }
                    if found.iter().all(Option::is_some) {
                        break;
                    }
                }
                if found.iter().all(Option::is_none) {
                    found[0] = types.first().map(|ltt| ltt.time_zone_designation());
                }
                found.into_iter().flatten().collect()
            }
        };
        names.retain(|n| !n.is_empty());
        names.dedup();
        names
    }

    /// The first instant strictly after `after` at which the UTC offset changes, if any.
    ///
    /// Transitions that only flip `is_dst` or rename the zone, without moving the clock, are skipped:
    /// the cron engine needs to know where wall-clock time jumps, to apply Debian cron's rules there
    /// without probing every minute.
    pub fn next_offset_change(&self, after: i64) -> Option<i64> {
        let tz = tz::TimeZone::as_ref(&self.tz);
        let transitions = tz.transitions();
        let first = transitions.partition_point(|tr| tr.unix_leap_time() <= after);
        for tr in &transitions[first..] {
            let t = tr.unix_leap_time();
            if self.offset_at(t - 1) != self.offset_at(t) {
                return Some(t);
            }
        }
        // After the last listed transition the file's POSIX TZ string (the "extra rule") applies.
        let Some(tz::timezone::TransitionRule::Alternate(rule)) = tz.extra_rule() else {
            return None;
        };
        if rule.std().ut_offset() == rule.dst().ut_offset() {
            return None;
        }
        let from = transitions
            .last()
            .map_or(after, |tr| after.max(tr.unix_leap_time()));
        // The rule's day times are local (standard time for the start, daylight time for the end).
        let start_utc = i64::from(rule.dst_start_time()) - i64::from(rule.std().ut_offset());
        let end_utc = i64::from(rule.dst_end_time()) - i64::from(rule.dst().ut_offset());
        let year = from.div_euclid(86_400 * 365_2425 / 10_000) + 1970;
        // Rule times may lie outside [0h, 24h], so neighbouring years can hold the next change.
        (year - 1..=year + 2)
            .flat_map(|y| {
                [
                    rule_day_start(rule.dst_start(), y) * 86_400 + start_utc,
                    rule_day_start(rule.dst_end(), y) * 86_400 + end_utc,
                ]
            })
            .filter(|&t| t > from && self.offset_at(t - 1) != self.offset_at(t))
            .min()
    }
}

/// Days since 1970-01-01 of the date a POSIX TZ rule names in `year`.
fn rule_day_start(day: &tz::timezone::RuleDay, year: i64) -> i64 {
    use tz::timezone::RuleDay;
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let jan1 = days_from_civil(year, 1, 1);
    match day {
        // `Jn`: 1..=365, February 29 is never counted.
        RuleDay::Julian1WithoutLeap(j) => {
            let j = i64::from(j.get());
            jan1 + j - 1 + i64::from(leap && j >= 60)
        }
        // `n`: 0..=365, February 29 counted.
        RuleDay::Julian0WithLeap(j) => jan1 + i64::from(j.get()),
        // `Mm.w.d`: day d (0 = Sunday) of week w (5 = last) of month m.
        RuleDay::MonthWeekDay(mwd) => {
            let month = i64::from(mwd.month());
            let first = days_from_civil(year, month, 1);
            let len = days_from_civil(year + i64::from(month == 12), month % 12 + 1, 1) - first;
            let first_weekday = (first + 4).rem_euclid(7);
            let mut day = (i64::from(mwd.week_day()) - first_weekday).rem_euclid(7)
                + (i64::from(mwd.week()) - 1) * 7;
            if day >= len {
                day -= 7;
            }
            first + day
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl std::fmt::Debug for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Zone").field(&self.name).finish()
    }
}

impl PartialEq for Zone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }

    #[test]
    fn refuses_paths_outside_zoneinfo() {
        for name in [
            "../etc/passwd",
            "/etc/passwd",
            "Europe/../../etc",
            "",
            "Europe//Riga",
        ] {
            assert!(Zone::from_name(name).is_err(), "{name}");
        }
        assert!(Zone::from_name("Mars/Olympus").is_err());
    }

    #[test]
    fn finds_gaps_and_folds() {
        let ny = Zone::from_name("America/New_York").unwrap();
        // 2021-03-14 02:30 does not exist in New York.
        assert_eq!(
            ny.from_local(utc("2021-03-14T02:30:00Z")),
            LocalInstants::None
        );
        // 2021-11-07 01:30 happens twice.
        assert_eq!(
            ny.from_local(utc("2021-11-07T01:30:00Z")),
            LocalInstants::Ambiguous(utc("2021-11-07T05:30:00Z"), utc("2021-11-07T06:30:00Z"))
        );
        assert_eq!(
            ny.from_local(utc("2021-07-01T12:00:00Z")),
            LocalInstants::Single(utc("2021-07-01T16:00:00Z"))
        );
    }

    #[test]
    fn half_hour_shifts() {
        let lh = Zone::from_name("Australia/Lord_Howe").unwrap();
        // Lord Howe moves from +10:30 to +11:00 at 02:00 local on 2021-10-03.
        assert_eq!(
            lh.from_local(utc("2021-10-03T02:15:00Z")),
            LocalInstants::None
        );
        assert!(matches!(
            lh.from_local(utc("2021-10-03T02:30:00Z")),
            LocalInstants::Single(_)
        ));
    }

    #[test]
    fn abbreviations_are_the_current_ones() {
        #[track_caller]
        fn check(name: &str, expected: &[&str]) {
            let zone = Zone::from_name(name).unwrap();
            assert_eq!(zone.abbreviations(), expected, "{name}");
        }
        check("America/New_York", &["EST", "EDT"]);
        // tzdata marks Irish winter time as the daylight-saving side.
        check("Europe/Dublin", &["IST", "GMT"]);
        check("Australia/Lord_Howe", &["+1030", "+11"]);
        check("Asia/Kolkata", &["IST"]);
        check("UTC", &["UTC"]);
    }

    #[test]
    fn next_offset_change_matches_a_scan() {
        // Across the listed transitions and well into the POSIX-rule years, every zone the cron
        // engine is tested in: scan hour by hour, then find the exact second by bisection.
        for name in [
            "America/New_York",
            "Europe/Dublin",
            "Australia/Lord_Howe",
            "Pacific/Chatham",
            "America/Santiago",
            "America/Havana",
            "Europe/Riga",
            "Asia/Tokyo",
        ] {
            let zone = Zone::from_name(name).unwrap();
            let mut t = utc("2015-01-01T00:00:00Z");
            let end = utc("2060-01-01T00:00:00Z");
            let mut expected = Vec::new();
            while t < end {
                if zone.offset_at(t) != zone.offset_at(t + 3600) {
                    let (mut lo, mut hi) = (t, t + 3600);
                    while hi - lo > 1 {
                        let mid = (lo + hi) / 2;
                        if zone.offset_at(mid) == zone.offset_at(t) {
                            lo = mid
                        } else {
                            hi = mid
                        }
                    }
                    expected.push(hi);
                }
                t += 3600;
            }
            let mut got = Vec::new();
            let mut t = utc("2015-01-01T00:00:00Z");
            while let Some(c) = zone.next_offset_change(t) {
                if c >= end {
                    break;
                }
                got.push(c);
                t = c;
            }
            assert_eq!(got, expected, "{name}");
        }
        assert_eq!(Zone::utc().next_offset_change(0), None);
    }
}
