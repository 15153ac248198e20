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
}
