//! A brute-force reference for cron fire times: Debian cron's main loop, minute by minute.
//!
//! Written independently of `hc_core::schedule::cron`: its own small parser (valid input only),
//! its own matcher on `chrono` dates, and a literal replay of `cron.c`'s per-minute decision
//! (virtual time, `timeDiff`, wildcard versus fixed-time jobs). Slow by design; tests run it
//! on small windows only.

use chrono::{Datelike, NaiveDate, Timelike};
use hc_core::schedule::Zone;

/// A parsed job: plain `[bool]` tables, as in Debian's `entry` struct (`bit_test`).
#[derive(Debug, Clone)]
pub struct Job {
    minute: [bool; 60],
    hour: [bool; 24],
    dom: [bool; 32],
    dom_last: bool,
    dom_last_weekday: bool,
    month: [bool; 13],
    /// Index 0..=6, Sunday = 0 (7 is folded into 0).
    dow: [bool; 7],
    dow_last: [bool; 7],
    dow_nth: [[bool; 6]; 7],
    dom_star: bool,
    dow_star: bool,
    /// `MIN_STAR | HR_STAR`: the job is a "wildcard" job.
    wildcard: bool,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Job {
    /// Parses a valid 5-field expression; `None` for anything this reference does not understand.
    pub fn parse(expr: &str) -> Option<Job> {
        let upper = expr.to_ascii_uppercase();
        let fields: Vec<&str> = upper.split_whitespace().collect();
        let [min_f, hour_f, dom_f, mon_f, dow_f] = fields.as_slice() else {
            return None;
        };
        let mut job = Job {
            minute: [false; 60],
            hour: [false; 24],
            dom: [false; 32],
            dom_last: false,
            dom_last_weekday: false,
            month: [false; 13],
            dow: [false; 7],
            dow_last: [false; 7],
            dow_nth: [[false; 6]; 7],
            dom_star: dom_f.starts_with('*'),
            dow_star: dow_f.starts_with('*'),
            wildcard: min_f.starts_with('*') || hour_f.starts_with('*'),
        };
        for v in values(min_f, 0, 59, &[])? {
            job.minute[v] = true;
        }
        for v in values(hour_f, 0, 23, &[])? {
            job.hour[v] = true;
        }
        for v in values(mon_f, 1, 12, &MONTHS)? {
            job.month[v] = true;
        }
        let mut plain_dom = Vec::new();
        for item in dom_f.split(',') {
            match item {
                "L" => job.dom_last = true,
                "LW" => job.dom_last_weekday = true,
                _ => plain_dom.push(item),
            }
        }
        if !plain_dom.is_empty() {
            for v in values(&plain_dom.join(","), 1, 31, &[])? {
                job.dom[v] = true;
            }
        }
        let mut plain_dow = Vec::new();
        for item in dow_f.split(',') {
            if let Some((day, k)) = item.split_once('#') {
                let day = single(day, 7, &DAYS)?;
                let k: usize = k.parse().ok().filter(|k| (1..=5).contains(k))?;
                job.dow_nth[day % 7][k] = true;
            } else if let Some(day) = item.strip_suffix('L') {
                let day: usize = day.parse().ok().filter(|d| *d <= 7)?;
                job.dow_last[day % 7] = true;
            } else {
                plain_dow.push(item);
            }
        }
        if !plain_dow.is_empty() {
            for v in values(&plain_dow.join(","), 0, 7, &DAYS)? {
                job.dow[v % 7] = true;
            }
        }
        Some(job)
    }

    /// Whether the job is a Debian wildcard job (minute or hour field starts with `*`).
    pub fn is_wildcard(&self) -> bool {
        self.wildcard
    }

    /// Whether the job matches the wall-clock minute `wall` (local minutes since the epoch).
    fn matches(&self, wall: i64) -> bool {
        let Some(t) = chrono::DateTime::from_timestamp(wall * 60, 0) else {
            return false;
        };
        let t = t.naive_utc();
        let date = t.date();
        let day = date.day() as usize;
        let next_month = if date.month() == 12 {
            NaiveDate::from_ymd_opt(date.year() + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(date.year(), date.month() + 1, 1)
        };
        let Some(last) = next_month
            .and_then(|d| d.pred_opt())
            .map(|d| d.day() as usize)
        else {
            return false;
        };
        let weekday = date.weekday().num_days_from_sunday() as usize;
        let last_weekday = {
            let last_dow = NaiveDate::from_ymd_opt(date.year(), date.month(), last as u32)
                .map(|d| d.weekday().num_days_from_sunday());
            match last_dow {
                Some(6) => last - 1,
                Some(0) => last - 2,
                _ => last,
            }
        };
        let dom = self.dom[day]
            || (self.dom_last && day == last)
            || (self.dom_last_weekday && day == last_weekday);
        let dow = self.dow[weekday]
            || (self.dow_last[weekday] && day + 7 > last)
            || self.dow_nth[weekday][(day - 1) / 7 + 1];
        let day_ok = if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        };
        self.minute[t.minute() as usize]
            && self.hour[t.hour() as usize]
            && self.month[date.month() as usize]
            && day_ok
    }
}

/// The values of a list field (numbers, names, ranges, steps; `N/S` = `N-max/S`, `A-A/S` = A).
fn values(field: &str, min: usize, max: usize, names: &[&str]) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s.parse::<usize>().ok().filter(|s| *s > 0)?)),
            None => (item, None),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (single(a, max, names)?, single(b, max, names)?)
        } else {
            let a = single(range, max, names)?;
            (a, if step.is_some() { max } else { a })
        };
        if lo < min || lo > hi {
            return None;
        }
        out.extend((lo..=hi).step_by(step.unwrap_or(1)));
    }
    Some(out)
}

fn single(text: &str, max: usize, names: &[&str]) -> Option<usize> {
    if let Some(i) = names.iter().position(|n| *n == text) {
        // Month names count from 1, day names from 0.
        return Some(if names.len() == 12 { i + 1 } else { i });
    }
    text.parse().ok().filter(|v| *v <= max)
}

/// The first `n` fire times strictly after `after` and no later than `until` (Unix seconds),
/// from a literal replay of Debian cron's loop over every real minute.
///
/// The replay starts 4 hours before `after` so that Debian's virtual time is settled.
pub fn fire_times(job: &Job, zone: &Zone, after: i64, n: usize, until: i64) -> Vec<i64> {
    let mut out = Vec::new();
    let mut real = (after - 4 * 3600).div_euclid(60) * 60;
    let wall = |real: i64| (real + i64::from(zone.offset_at(real))).div_euclid(60);
    let mut virtual_time = wall(real) - 1;
    while real <= until && out.len() < n {
        let time_running = wall(real);
        let diff = time_running - virtual_time;
        // Whether a job of this kind runs for wall minute `minute` (wildcard or fixed-time jobs).
        let runs = |minute: i64, wildcard: bool, fixed: bool| {
            (if job.wildcard { wildcard } else { fixed }) && job.matches(minute)
        };
        let mut fires = false;
        if diff == 1 {
            virtual_time = time_running;
            fires = runs(time_running, true, true);
        } else if (2..=5).contains(&diff) {
            // wakeupKind 1: run everything for each virtual minute until caught up.
            while virtual_time < time_running {
                virtual_time += 1;
                fires |= runs(virtual_time, true, true);
            }
        } else if (6..=180).contains(&diff) {
            // wakeupKind 2: wildcard jobs for now, fixed-time jobs for each minute missed.
            fires = runs(time_running, true, false);
            while virtual_time < time_running {
                virtual_time += 1;
                fires |= runs(virtual_time, false, true);
            }
        } else if diff > -180 && diff <= 0 {
            // wakeupKind 0: the clock went back; wildcard jobs only, virtual time stays.
            fires = runs(time_running, true, false);
        } else {
            // A huge jump: start over at the current time.
            virtual_time = time_running;
            fires = runs(time_running, true, true);
        }
        if fires && real > after {
            out.push(real);
        }
        real += 60;
    }
    out
}
