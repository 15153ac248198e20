//! OnCalendar expressions with systemd 252's meaning: parsing ([`parse`]) and the next fire time.
//!
//! The engine walks the fields from the year down to the seconds, the way systemd's calendar code
//! does, and normalises the broken-down local time with a model of glibc's `mktime` (including its
//! "last offset used" guess), because systemd's DST behaviour falls out of exactly that:
//!
//! * A wall time skipped by a forward jump does not fire and is not moved (`02:30` in New York on
//!   the spring-forward day); wildcard hours carry on after the gap (`*:30` fires at 03:30).
//!   A time inside the gap normalises to the side whose DST flag is set, as glibc's `mktime`
//!   does: forward in most zones, backward in Europe/Dublin, whose winter time tzdata marks as
//!   the DST side (checked against glibc and `systemd-analyze calendar` on Debian 12).
//! * When normalisation sends the search back before its start, Debian's systemd 252 advances an
//!   hour and from then on keeps the DST flag `mktime` chose (its `invalidate_dst` step); the
//!   engine does the same (Pacific/Chatham's gap at 02:45: `*:16,48` from 02:28 gives 04:16).
//! * `~` items (last days of the month) are computed through `mktime` like systemd does, because
//!   that call moves glibc's remembered offset, which decides a later repeated wall time.
//! * A repeated interval fires only on its first pass, for wildcard expressions too (`*:0/20`
//!   leaves an 80-minute hole on the fall-back night), because an ambiguous wall time resolves
//!   to the offset used last; a start inside the second pass therefore gets second-pass times.
//!
//! systemd bugs, and what this engine does there:
//!
//! * **Step overshoot** (copied): a step that runs past the end of its field is normalised with a
//!   carry, and when that carry crosses two fields only the field right below the changed one is
//!   reset, so `*:0/45` from 23:50 fires at 00:45 (not 00:00) and `*:*:0/45` from 12:59:50 at
//!   13:00:45. systemd timers really fire at those times, so a monitor must expect them there.
//! * **Dublin's spring-forward day** (copied, as a consequence of the above): where a search
//!   lands in Dublin's gap it normalises back into winter time, so some expressions skip the
//!   whole day (`*-* 1..2:54..56,21..34/3,52:50` from 2023-03-25 20:56 next fires on the 27th).
//! * **Infinite loop** (partly copied): systemd gives up after 1000 search steps ("infinite loop
//!   in calendar calculation", seen for hour steps such as `14/7:29` in New York in the days
//!   before the spring-forward day) and the timer never elapses. The engine has the same
//!   1000-step limit and then returns `None`, but its model of glibc does not reproduce every
//!   loop: where it does not loop it returns the real next fire time (so a check still goes
//!   down if the job never runs, which is what a monitor should report).
//! * **Fractional seconds** (not a bug, a decision): systemd fires `12:00:05.5` half a second after
//!   12:00:05; fire times here are whole seconds, so a fire is reported as the second it falls in,
//!   several fires within one second count once, and a fire inside the start's own second is not
//!   "strictly after" it.
//! * **Zone abbreviations** (refused): systemd reads a trailing word equal to one of the local
//!   zone's own abbreviations (glibc's `tzname`, in any case: `EST`/`EDT` under New York,
//!   `IST`/`GMT` under Dublin, `+1030`/`+11` under Lord Howe) as a DST flag for local time, and
//!   its search with that flag set gives odd results (`12:00 EST` in New York in July never
//!   elapses). Here the check's zone plays the local zone, and such a line is refused with an
//!   error naming the zone to use instead; it is never read as a zone file (`EST` is a fixed
//!   −05:00 file). Which abbreviations glibc has in `tzname` depends on its state; we take the
//!   zone's current ones (its POSIX TZ string), so a line systemd reads as a zone file in a zone
//!   whose abbreviations changed in the past can be refused too.
//!
//! Trailing zones are otherwise systemd's: ` UTC` in any case, or a zone file name
//! (`Europe/Riga`, `Etc/GMT-5`); systemd 252 has no numeric offsets (`+05:00` is refused, with a
//! message saying so). A line is taken as systemd takes its argument: leading whitespace is
//! refused, and runs of spaces are allowed only where systemd skips them, after the weekdays and
//! after the date (so `Mon ` is valid, `12:00 ` and `daily ` are not); tabs are never blanks.
//! Empty lines between expressions are skipped.
//!
//! **`~` days** (copied): systemd refuses days more than 28 days from the end of the month, and
//! its check lowers that limit by 3 for each further item of the sorted chain, so `*-*~16,23` is
//! valid and `*-*~23,27` is not; the parser refuses exactly what systemd refuses.
//! Other deliberate limits: a line may hold at most 1024 characters and a schedule 64 lines.
//! The search goes as far as systemd's (fire times up to the end of 2199, within its 1000 search
//! steps), so `2100-02-28 00:00` fires once; cron keeps its 50-year horizon.

mod parse;

use super::zone::LocalInstants;
use super::{ScheduleError, Zone, calendar};

const USEC_PER_SEC: i64 = 1_000_000;

/// systemd's safety valve: search steps before it reports an infinite loop.
const MAX_SEARCH_STEPS: usize = 1000;

/// How many lines a schedule may hold.
const MAX_LINES: usize = 64;

/// One or more parsed OnCalendar expressions (one per line); the earliest next time wins.
#[derive(Debug, Clone)]
pub struct OnCalendar {
    specs: Vec<Spec>,
}

impl OnCalendar {
    /// Parses one expression per non-empty line; a line's trailing zone overrides `default_zone`.
    /// Lines are taken as they are: leading or trailing whitespace is an error, as in systemd.
    pub fn parse(text: &str, default_zone: &Zone) -> Result<OnCalendar, ScheduleError> {
        if text.len() > MAX_LINES * parse::MAX_LINE {
            return Err(ScheduleError::new("OnCalendar schedule is too long"));
        }
        let mut specs = Vec::new();
        for line in text.lines().filter(|l| !l.is_empty()) {
            if specs.len() == MAX_LINES {
                return Err(ScheduleError::new(format!(
                    "OnCalendar schedule has more than {MAX_LINES} lines"
                )));
            }
            specs.push(parse::parse_line(line, default_zone)?);
        }
        if specs.is_empty() {
            return Err(ScheduleError::new("empty OnCalendar schedule"));
        }
        Ok(OnCalendar { specs })
    }

    /// The first fire time (Unix seconds) strictly after `after`, or `None` when systemd would
    /// say "never" (nothing before 2200) or give up (its 1000 search steps).
    pub fn next_after(&self, after: i64) -> Option<i64> {
        self.specs.iter().filter_map(|s| s.next_after(after)).min()
    }
}

/// One item of a field: `start`, `start..stop` or `start[..stop]/repeat` (`stop` < 0: open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Comp {
    start: i64,
    stop: i64,
    repeat: i64,
}

#[derive(Debug, Clone)]
enum SpecZone {
    Utc,
    Tz(Zone),
}

/// One parsed expression; a `None` field is a wildcard. Seconds are kept in microseconds.
#[derive(Debug, Clone)]
struct Spec {
    /// Bit 0 = Monday .. bit 6 = Sunday.
    weekdays: Option<u8>,
    end_of_month: bool,
    year: Option<Vec<Comp>>,
    month: Option<Vec<Comp>>,
    day: Option<Vec<Comp>>,
    hour: Option<Vec<Comp>>,
    minute: Option<Vec<Comp>>,
    usec: Option<Vec<Comp>>,
    zone: SpecZone,
}

/// A broken-down local time like C's `struct tm`: fields may be out of range until normalised.
/// `mon` is 0-based as in C, because systemd's carries (`tm_mon++`) are done on that form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tm {
    year: i64,
    mon: i64,
    mday: i64,
    hour: i64,
    min: i64,
    sec: i64,
    /// -1 unknown, 0 standard, 1 daylight-saving: the hint `mktime` is given.
    isdst: i8,
}

/// The time-zone side of the search: glibc's `mktime` with its remembered offset.
struct Clock<'a> {
    zone: Option<&'a Zone>,
    /// glibc's `localtime_offset`: the offset the last `mktime` call settled on.
    guess: i64,
}

impl Clock<'_> {
    fn offset(&self, t: i64) -> i64 {
        self.zone.map_or(0, |z| i64::from(z.offset_at(t)))
    }

    fn is_dst(&self, t: i64) -> bool {
        self.zone.is_some_and(|z| z.is_dst_at(t))
    }

    fn local_tm(&self, t: i64) -> Tm {
        let local = t + self.offset(t);
        let (year, month, mday) = calendar::civil_from_days(local.div_euclid(86_400));
        let (month, mday) = (i64::from(month), i64::from(mday));
        let tod = local.rem_euclid(86_400);
        Tm {
            year,
            mon: month - 1,
            mday,
            hour: tod / 3600,
            min: tod / 60 % 60,
            sec: tod % 60,
            isdst: i8::from(self.is_dst(t)),
        }
    }

    /// `mktime`: the instant for a (possibly denormalised) local time, and its normalised form.
    fn mktime(&mut self, tm: &Tm) -> (i64, Tm) {
        let local = local_seconds(tm);
        let Some(zone) = self.zone else {
            return (local, self.local_tm(local));
        };
        let t = match zone.from_local(local) {
            LocalInstants::Single(t) => self.honour_hint(local, t, tm.isdst),
            LocalInstants::Ambiguous(first, second) => match tm.isdst {
                1 if self.is_dst(first) != self.is_dst(second) => {
                    if self.is_dst(first) {
                        first
                    } else {
                        second
                    }
                }
                0 if self.is_dst(first) != self.is_dst(second) => {
                    if self.is_dst(first) {
                        second
                    } else {
                        first
                    }
                }
                // glibc starts from the offset it used last and keeps the first exact match.
                _ => {
                    if local - self.guess == second {
                        second
                    } else if local - self.guess == first {
                        first
                    } else {
                        let probe = local - self.guess;
                        let t = local - self.offset(probe);
                        if t == second { second } else { first }
                    }
                }
            },
            LocalInstants::None => {
                let before = self.offset(local - 86_400);
                let after = self.offset(local + 86_400);
                let forward = local - before;
                let backward = local - after;
                match tm.isdst {
                    // With a hint, glibc prefers the side whose DST flag differs from it.
                    0 | 1 => {
                        let hint = tm.isdst == 1;
                        if self.is_dst(forward) != hint {
                            forward
                        } else if self.is_dst(backward) != hint {
                            backward
                        } else {
                            forward
                        }
                    }
                    // Without a hint glibc prefers the side whose DST flag is set: forward in
                    // most zones, backward in Europe/Dublin, whose winter time tzdata marks as
                    // daylight-saving (checked against glibc's own mktime on Debian 12).
                    _ => {
                        if self.is_dst(backward) && !self.is_dst(forward) {
                            backward
                        } else {
                            forward
                        }
                    }
                }
            }
        };
        self.guess = local - t;
        (t, self.local_tm(t))
    }

    /// The day of `tm`'s month that is `back` days before the next month's first (`~` items),
    /// or -1 when that is not in `tm`'s month. Computed as systemd does, through `mktime` on `tm`
    /// with the date shifted, because that call moves glibc's remembered offset, which decides
    /// later repeated wall times (Berlin's fall-back day with `*-*~02 *:48:54.5`).
    fn end_of_month_day(&mut self, tm: &Tm, back: i64) -> i64 {
        let shifted = Tm {
            mon: tm.mon + 1,
            mday: 1 - back,
            ..*tm
        };
        let (_, norm) = self.mktime(&shifted);
        if norm.mon == tm.mon { norm.mday } else { -1 }
    }

    /// glibc honours an explicit DST flag that disagrees with the zone by borrowing the offset
    /// of the nearest instant (searched week by week) that has the requested flag.
    fn honour_hint(&self, local: i64, t: i64, hint: i8) -> i64 {
        if hint < 0 || self.is_dst(t) == (hint == 1) {
            return t;
        }
        const STRIDE: i64 = 601_200;
        const LIMIT: i64 = 536_454_000;
        let mut delta = STRIDE;
        while delta < LIMIT {
            for probe in [t - delta, t + delta] {
                if self.is_dst(probe) == (hint == 1) {
                    return local - self.offset(probe);
                }
            }
            delta += STRIDE;
        }
        t
    }
}

/// Local seconds (wall time written as if UTC) for a possibly denormalised `Tm`.
fn local_seconds(tm: &Tm) -> i64 {
    let year = tm.year + tm.mon.div_euclid(12);
    let month = tm.mon.rem_euclid(12) + 1;
    // `month` is normalised to 1..=12 above, so the conversion cannot fail.
    let month = u32::try_from(month).unwrap_or(1);
    let days = calendar::days_from_civil(year, month, 1) + tm.mday - 1;
    days * 86_400 + tm.hour * 3600 + tm.min * 60 + tm.sec
}

/// Why a field search moved on.
enum Bounds {
    /// The time is a real, normalised time.
    Good,
    /// Normalisation moved it forward; search again from there.
    Moved,
    /// Out of range for good (past systemd's last year, or normalisation went backwards).
    Fail,
}

impl Spec {
    fn next_after(&self, after: i64) -> Option<i64> {
        let zone = match &self.zone {
            SpecZone::Utc => None,
            SpecZone::Tz(z) => Some(z),
        };
        // Whole seconds: search from the next second, inclusive (see the module docs).
        let start = after.checked_add(1)?;
        let mut clock = Clock { zone, guess: 0 };
        clock.guess = clock.offset(start);
        let first = clock.local_tm(start);
        // The microseconds are dropped: a fire at x.5 s is reported as second x, which is never
        // before `start` because the search only moves forward from it.
        let (tm, _usec) = self.find_next(&mut clock, first)?;
        let (t, _) = clock.mktime(&tm);
        (t > after).then_some(t)
    }

    /// systemd's field-by-field search. Returns the local time and its microseconds.
    /// It ends at systemd's last year (`within_bounds`) or after its 1000 steps, whichever first.
    fn find_next(&self, clock: &mut Clock<'_>, first: Tm) -> Option<(Tm, i64)> {
        let mut c = first;
        let mut usec: i64 = 0;
        // Debian's systemd 252 (252.38 and later) carries the fix for searches that DST
        // normalisation sends back before the start: once that happened, it stops forgetting the
        // DST flag that `mktime` settled on, so the next normalisation moves forward.
        let mut invalidate_dst = false;
        for _ in 0..MAX_SEARCH_STEPS {
            // Normalise the current time, then forget its DST flag (systemd sets tm_isdst = -1)
            // unless the search got stuck before.
            let (_, norm) = clock.mktime(&c);
            c = if invalidate_dst {
                norm
            } else {
                Tm { isdst: -1, ..norm }
            };

            let (r, v) = find_matching(self.year.as_deref(), c.year, None)?;
            c.year = v;
            if r {
                c.mon = 0;
                c.mday = 1;
                (c.hour, c.min, c.sec, usec) = (0, 0, 0, 0);
            }
            if !matches!(within_bounds(clock, &mut c), Bounds::Good) {
                return None;
            }

            let found = find_matching(self.month.as_deref(), c.mon + 1, None);
            if let Some((r, v)) = found {
                c.mon = v - 1;
                if r {
                    c.mday = 1;
                    (c.hour, c.min, c.sec, usec) = (0, 0, 0, 0);
                }
            }
            match found.map(|_| within_bounds(clock, &mut c)) {
                None | Some(Bounds::Fail) => {
                    c.year += 1;
                    c.mon = 0;
                    c.mday = 1;
                    (c.hour, c.min, c.sec, usec) = (0, 0, 0, 0);
                    continue;
                }
                Some(Bounds::Moved) => continue,
                Some(Bounds::Good) => {}
            }

            let tm = c;
            let eom = self.end_of_month.then_some((&mut *clock, &tm));
            let found = find_matching(self.day.as_deref(), c.mday, eom);
            if let Some((r, v)) = found {
                c.mday = v;
                if r {
                    (c.hour, c.min, c.sec, usec) = (0, 0, 0, 0);
                }
            }
            match found.map(|_| within_bounds(clock, &mut c)) {
                None | Some(Bounds::Fail) => {
                    c.mon += 1;
                    c.mday = 1;
                    (c.hour, c.min, c.sec, usec) = (0, 0, 0, 0);
                    continue;
                }
                Some(Bounds::Moved) => continue,
                Some(Bounds::Good) => {}
            }

            if !self.matches_weekday(clock, &c) {
                c.mday += 1;
                (c.hour, c.min, c.sec, usec) = (0, 0, 0, 0);
                continue;
            }

            let found = find_matching(self.hour.as_deref(), c.hour, None);
            if let Some((r, v)) = found {
                c.hour = v;
                if r {
                    (c.min, c.sec, usec) = (0, 0, 0);
                }
            }
            match found.map(|_| within_bounds(clock, &mut c)) {
                None | Some(Bounds::Fail) => {
                    c.mday += 1;
                    (c.hour, c.min, c.sec, usec) = (0, 0, 0, 0);
                    continue;
                }
                // The hour may be missing because of a zone change: retry from the normalised time.
                Some(Bounds::Moved) => continue,
                Some(Bounds::Good) => {}
            }

            let found = find_matching(self.minute.as_deref(), c.min, None);
            if let Some((r, v)) = found {
                c.min = v;
                if r {
                    (c.sec, usec) = (0, 0);
                }
            }
            match found.map(|_| within_bounds(clock, &mut c)) {
                None | Some(Bounds::Fail) => {
                    c.hour += 1;
                    (c.min, c.sec, usec) = (0, 0, 0);
                    continue;
                }
                Some(Bounds::Moved) => continue,
                Some(Bounds::Good) => {}
            }

            let found = find_matching(self.usec.as_deref(), c.sec * USEC_PER_SEC + usec, None);
            if let Some((_, v)) = found {
                usec = v % USEC_PER_SEC;
                c.sec = v / USEC_PER_SEC;
            }
            match found.map(|_| within_bounds(clock, &mut c)) {
                None | Some(Bounds::Fail) => {
                    c.min += 1;
                    (c.sec, usec) = (0, 0);
                    continue;
                }
                Some(Bounds::Moved) => continue,
                Some(Bounds::Good) => {}
            }
            // A candidate that is not after the start ("stuck", systemd's word) can only come from
            // a DST normalisation that went backwards: advance an hour and let `mktime` decide.
            // The start has no microseconds, so a candidate in the start's own second is fine.
            let key = |t: &Tm| (t.year, t.mon, t.mday, t.hour, t.min, t.sec);
            if key(&c) < key(&first) {
                invalidate_dst = true;
                c.hour += 1;
                continue;
            }
            return Some((c, usec));
        }
        None
    }

    fn matches_weekday(&self, clock: &mut Clock<'_>, c: &Tm) -> bool {
        let Some(bits) = self.weekdays else {
            return true;
        };
        if bits >= 0x7f {
            return true;
        }
        let (_, norm) = clock.mktime(c);
        // 1970-01-01 was a Thursday (bit 3).
        let days = local_seconds(&norm).div_euclid(86_400);
        let weekday = (days + 3).rem_euclid(7);
        bits & (1 << weekday) != 0
    }
}

/// Checks that `c` is a real local time. When normalising moves it forward, `c` becomes the
/// normalised time with the field right below the first changed one reset (systemd 252 resets
/// only that one field, which is the source of its step-overshoot bug).
fn within_bounds(clock: &mut Clock<'_>, c: &mut Tm) -> Bounds {
    if c.year > parse::MAX_YEAR {
        return Bounds::Fail;
    }
    let (_, mut t) = clock.mktime(c);
    use std::cmp::Ordering::{Equal, Greater, Less};
    let mut ord = t.year.cmp(&c.year);
    if ord != Equal {
        t.mon = 0;
    } else {
        ord = t.mon.cmp(&c.mon);
        if ord != Equal {
            t.mday = 1;
        } else {
            ord = t.mday.cmp(&c.mday);
            if ord != Equal {
                t.hour = 0;
            } else {
                ord = t.hour.cmp(&c.hour);
                if ord != Equal {
                    t.min = 0;
                } else {
                    ord = t.min.cmp(&c.min);
                    if ord != Equal {
                        t.sec = 0;
                    } else {
                        ord = t.sec.cmp(&c.sec);
                    }
                }
            }
        }
    }
    match ord {
        Less => Bounds::Fail,
        Greater => {
            *c = t;
            Bounds::Moved
        }
        Equal => Bounds::Good,
    }
}

/// The smallest value of `chain` at or after `val`: `None` when there is none, otherwise
/// whether it differs from `val` and the value (which may run past the field's end).
/// `eom` = (year, month 1-12) turns day items into "days before the end of that month".
fn find_matching(
    chain: Option<&[Comp]>,
    val: i64,
    mut eom: Option<(&mut Clock<'_>, &Tm)>,
) -> Option<(bool, i64)> {
    let Some(chain) = chain else {
        return Some((false, val));
    };
    let mut best: Option<i64> = None;
    for comp in chain {
        let (mut start, mut stop) = (comp.start, comp.stop);
        if let Some((clock, tm)) = eom.as_mut() {
            start = clock.end_of_month_day(tm, start);
            stop = clock.end_of_month_day(tm, stop);
            if stop > 0 {
                std::mem::swap(&mut start, &mut stop);
            }
        }
        if start >= val {
            if best.is_none_or(|b| start < b) {
                best = Some(start);
            }
        } else if comp.repeat > 0 {
            let steps = (val - start + comp.repeat - 1) / comp.repeat;
            let k = start + comp.repeat * steps;
            if best.is_none_or(|b| k < b) && (stop < 0 || k <= stop) {
                best = Some(k);
            }
        }
    }
    best.map(|d| (d != val, d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, FixedOffset};
    use proptest::prelude::*;

    fn instant(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }

    fn rfc3339(zone: &Zone, t: i64) -> String {
        let offset = FixedOffset::east_opt(zone.offset_at(t)).unwrap();
        DateTime::from_timestamp(t, 0)
            .unwrap()
            .with_timezone(&offset)
            .to_rfc3339()
    }

    /// The next fire times of `text` in zone `tz` after `start`, compared as RFC 3339 strings
    /// in that zone; every expected value was taken from `systemd-analyze calendar` (252).
    #[track_caller]
    fn check(tz: &str, text: &str, start: &str, expected: &[&str]) {
        let zone = Zone::from_name(tz).unwrap();
        let cal = OnCalendar::parse(text, &zone).unwrap();
        let mut t = instant(start);
        let mut got = Vec::new();
        for _ in 0..expected.len() {
            let Some(next) = cal.next_after(t) else { break };
            got.push(rfc3339(&zone, next));
            t = next;
        }
        assert_eq!(got, expected, "{text:?} in {tz} after {start}");
    }

    #[track_caller]
    fn check_never(text: &str, start: &str) {
        let cal = OnCalendar::parse(text, &Zone::utc()).unwrap();
        assert_eq!(cal.next_after(instant(start)), None, "{text:?}");
    }

    #[track_caller]
    fn check_rejected(text: &str) {
        let err = OnCalendar::parse(text, &Zone::utc()).unwrap_err();
        assert!(!err.message().is_empty());
    }

    /// `text` in zone `tz` is refused with a message containing `why`.
    #[track_caller]
    fn check_error(tz: &str, text: &str, why: &str) {
        let zone = Zone::from_name(tz).unwrap();
        let err = OnCalendar::parse(text, &zone).unwrap_err();
        assert!(err.message().contains(why), "{text:?} in {tz}: {err}");
    }

    #[track_caller]
    fn check_accepted(text: &str) {
        OnCalendar::parse(text, &Zone::utc()).unwrap();
    }

    #[test]
    fn rejects_what_systemd_rejects() {
        for text in [
            "*/5:00",
            "*-*-*/10",
            "12",
            "5..1:00",
            "*-*-31/2",
            "*:0/60",
            "*:50/20",
            "12:00:60",
            "1969-12-31",
            "2300-01-01",
            "*-*~0",
            "*-*~4/4",
            "12:00:05.",
            "*:0.5",
            "12:00:1.5..2",
            "1,,2:00",
            "1,2,:00",
            "12:00,",
            "Mon..",
            "Fri..Mon 12:00",
            "Mond 12:00",
            "UTC",
            "12:00  UTC",
            "1/0:00",
            "@1.5",
            "2022-01-01T12:00",
            "12:00 Mars/Olympus",
            "",
            "  \n ",
            "12:00 +05:00",
            "12:00 +0500",
            "12:00 Z",
            "secondly",
            "annualy",
            "semiannual",
        ] {
            check_rejected(text);
        }
    }

    #[test]
    fn accepts_what_systemd_accepts() {
        for text in [
            "Mon-Fri 12:00",
            "mon,WED..fri 1:2:3",
            "Mon,",
            "Mon",
            "*:59..59",
            "*:54..55/18",
            "*-*-* 1..2/5:00",
            "*-05~07/1",
            "*~01",
            "@1700000000",
            "12:00:0.5/0.25",
            "2024-1-1 00:00:00.1234567",
            "Daily",
            "12:00 utc",
            "daily GMT",
            "hourly Europe/Riga",
            "*-*~20/15",
            "*-*~2..28/27",
            "10..2011/7-01-01",
            "Mon  12:00",
            "Mon 2024-01-01  12:00",
            "12:00 EST",
        ] {
            check_accepted(text);
        }
    }

    #[test]
    fn refuses_huge_numbers_without_allocating() {
        check_rejected("*-*-* 0..1000000000:00");
        check_rejected("99999999999999999999999999:00");
        check_rejected(&"1,".repeat(300));
        check_rejected(&"x".repeat(2000));
    }

    #[test]
    fn two_digit_years_are_this_century_below_70() {
        check(
            "UTC",
            "22-01-01 12:00",
            "2021-06-01T00:00:00Z",
            &["2022-01-01T12:00:00+00:00"],
        );
        check(
            "UTC",
            "99-01-01",
            "1998-06-01T00:00:00Z",
            &["1999-01-01T00:00:00+00:00"],
        );
    }

    #[test]
    fn every_shorthand_spelling_in_any_case() {
        // systemd 252's whole list, `anually` (its old misspelling) included.
        for (text, first) in [
            ("minutely", "2024-01-01T00:01:00+00:00"),
            ("HOURLY", "2024-01-01T01:00:00+00:00"),
            ("Daily", "2024-01-02T00:00:00+00:00"),
            ("monthly", "2024-02-01T00:00:00+00:00"),
            ("weekly", "2024-01-08T00:00:00+00:00"),
            ("yearly", "2025-01-01T00:00:00+00:00"),
            ("annually", "2025-01-01T00:00:00+00:00"),
            ("anually", "2025-01-01T00:00:00+00:00"),
            ("ANUALLY", "2025-01-01T00:00:00+00:00"),
            ("quarterly", "2024-04-01T00:00:00+00:00"),
            ("semiannually", "2024-07-01T00:00:00+00:00"),
            ("Semi-Annually", "2024-07-01T00:00:00+00:00"),
            ("biannually", "2024-07-01T00:00:00+00:00"),
            ("bi-annually", "2024-07-01T00:00:00+00:00"),
            ("semi-annually UTC", "2024-07-01T00:00:00+00:00"),
        ] {
            check("UTC", text, "2024-01-01T00:00:00Z", &[first]);
        }
        check(
            "America/New_York",
            "BiAnnually",
            "2024-01-01T05:00:00Z",
            &["2024-07-01T00:00:00-04:00", "2025-01-01T00:00:00-05:00"],
        );
    }

    #[test]
    fn shorthands() {
        check(
            "UTC",
            "weekly",
            "2024-01-01T00:00:00Z",
            &["2024-01-08T00:00:00+00:00"],
        );
        check(
            "UTC",
            "quarterly",
            "2024-01-01T00:00:00Z",
            &["2024-04-01T00:00:00+00:00", "2024-07-01T00:00:00+00:00"],
        );
        check(
            "UTC",
            "minutely",
            "2024-01-01T00:00:30Z",
            &["2024-01-01T00:01:00+00:00"],
        );
    }

    #[test]
    fn next_is_strictly_after() {
        check(
            "UTC",
            "00:00",
            "2024-01-01T00:00:00Z",
            &["2024-01-02T00:00:00+00:00"],
        );
        check(
            "UTC",
            "*-*-1/10",
            "2024-01-31T12:00:00Z",
            &["2024-02-01T00:00:00+00:00", "2024-02-11T00:00:00+00:00"],
        );
    }

    #[test]
    fn days_from_the_end_stop_at_28() {
        // systemd refuses `~` days more than 28 days from the end of the month.
        for text in [
            "*-02~29",
            "*-*~31",
            "*~29",
            "2024-02~29",
            "*-*~1..29",
            "*-*~29..30",
            "*-*~28,29",
            "*-*~28/28",
            "*-*~15/15",
            "*-*~0..5",
            "*-*~2..29/27",
        ] {
            check_error("UTC", text, "");
        }
        check_error("UTC", "*-*~31", "must be 1..28");
        // systemd's check lowers the limit by 3 for each further item, in sorted order.
        for text in [
            "*-*~23,27",
            "*-*~27,16,23",
            "*-*~1,28",
            "*-*~1,2,3,4,5,6,7,8,9",
            "*-*~1,2..27",
            "*-*~5,5,27",
            "*-*~1,25/25",
            "*-*~1,3,23",
        ] {
            check_error("UTC", text, "3 fewer for each further one");
        }
        for text in [
            "*-*~16,23",
            "*-*~1,2,3,4,5,6,7",
            "*-*~1..28,2",
            "*-*~1,2..25",
            "*-*~1,25/24",
            "*-*~1,3,22",
            "*-*~5..9,5/2",
        ] {
            check_accepted(text);
        }
        check(
            "UTC",
            "*-*~16,23",
            "2024-01-01T00:00:00Z",
            &["2024-01-09T00:00:00+00:00", "2024-01-16T00:00:00+00:00"],
        );
        check(
            "UTC",
            "*-02~28",
            "2024-01-01T00:00:00Z",
            &["2024-02-02T00:00:00+00:00", "2025-02-01T00:00:00+00:00"],
        );
        // An open step counts forward from the day counted back (systemd's answers).
        check(
            "UTC",
            "*-*~20/15",
            "2024-01-01T00:00:00Z",
            &[
                "2024-01-12T00:00:00+00:00",
                "2024-01-27T00:00:00+00:00",
                "2024-02-10T00:00:00+00:00",
            ],
        );
        check(
            "UTC",
            "*-*~2..28/27",
            "2024-01-01T00:00:00Z",
            &["2024-01-30T00:00:00+00:00", "2024-02-28T00:00:00+00:00"],
        );
        check(
            "UTC",
            "*-02~1..28/9",
            "2024-01-01T00:00:00Z",
            &[
                "2024-02-02T00:00:00+00:00",
                "2024-02-11T00:00:00+00:00",
                "2024-02-20T00:00:00+00:00",
            ],
        );
    }

    #[test]
    fn whitespace_is_systemds() {
        for text in [
            " daily",
            "daily ",
            "12:00 ",
            " 12:00",
            "12:00\t",
            "daily  UTC",
            "Mon\t",
        ] {
            check_error("UTC", text, "");
        }
        check_error("UTC", " daily", "leading whitespace");
        check_error("UTC", "08:00\n  09:00", "leading whitespace");
        check_error("UTC", "12:00\r", "trailing whitespace");
        check_error("UTC", "daily ", "trailing whitespace");
        check_error("UTC", "Mon UTC ", "trailing whitespace");
        check_error("UTC", "2024-01-05 12:00 ", "trailing whitespace");
        // systemd skips spaces after weekdays and after a date, also at the end.
        check(
            "UTC",
            "Mon ",
            "2024-01-01T00:00:00Z",
            &["2024-01-08T00:00:00+00:00", "2024-01-15T00:00:00+00:00"],
        );
        check(
            "UTC",
            "Mon,  ",
            "2024-01-01T00:00:00Z",
            &["2024-01-08T00:00:00+00:00"],
        );
        check(
            "UTC",
            "2024-01-05  ",
            "2024-01-01T00:00:00Z",
            &["2024-01-05T00:00:00+00:00"],
        );
        // Runs of spaces are allowed after the weekdays and after the date, nowhere else.
        check_error("UTC", "Mon,  Tue 12:00", "");
        check_error("UTC", "daily  Europe/Riga", "");
        check(
            "UTC",
            "Mon  2024-01-01  12:00",
            "2023-12-01T00:00:00Z",
            &["2024-01-01T12:00:00+00:00"],
        );
        // Windows line ends are line ends.
        check(
            "UTC",
            "12:00\r\n08:00\r\n",
            "2024-01-01T00:00:00Z",
            &["2024-01-01T08:00:00+00:00", "2024-01-01T12:00:00+00:00"],
        );
    }

    #[test]
    fn zone_forms() {
        // systemd 252 has no numeric offsets.
        check_error("UTC", "12:00 +05:00", "numeric UTC offsets");
        check_error("UTC", "12:00 -0330", "numeric UTC offsets");
        check_error(
            "UTC",
            "12:00 Mars/Olympus",
            "unknown time zone \"Mars/Olympus\"",
        );
        // The local zone's abbreviations are systemd's DST flag: refused, in any case.
        check_error("America/New_York", "12:00 EST", "abbreviation \"EST\"");
        check_error("America/New_York", "12:00 est", "abbreviation");
        check_error("America/New_York", "daily EDT", "America/New_York");
        check_error("Europe/Dublin", "12:00 GMT", "abbreviation");
        check_error("Australia/Lord_Howe", "12:00 +11", "abbreviation");
        // Only a whole last word counts, and only the local zone's.
        check_error("America/New_York", "12:00 xEST", "unknown time zone");
        check(
            "America/New_York",
            "12:00 Etc/GMT+5",
            "2024-01-01T05:00:00Z",
            &["2024-01-01T12:00:00-05:00"],
        );
        check(
            "UTC",
            "12:00 EST",
            "2024-01-01T00:00:00Z",
            &["2024-01-01T17:00:00+00:00"],
        );
        check(
            "Europe/Berlin",
            "12:00 GMT",
            "2024-01-01T00:00:00Z",
            &["2024-01-01T13:00:00+01:00"],
        );
        check(
            "UTC",
            "12:00 UtC",
            "2024-01-01T00:00:00Z",
            &["2024-01-01T12:00:00+00:00"],
        );
    }

    #[test]
    fn last_days_of_month() {
        check(
            "UTC",
            "*-*~03",
            "2024-01-01T00:00:00Z",
            &["2024-01-29T00:00:00+00:00", "2024-02-27T00:00:00+00:00"],
        );
        check(
            "UTC",
            "Mon *-05~07/1",
            "2024-01-01T00:00:00Z",
            &["2024-05-27T00:00:00+00:00", "2025-05-26T00:00:00+00:00"],
        );
        // A stepped range is cut to its last value before it is counted from the month's end.
        check(
            "UTC",
            "*-06~2..5/2",
            "2026-06-01T00:00:00Z",
            &["2026-06-27T00:00:00+00:00", "2026-06-29T00:00:00+00:00"],
        );
        check(
            "UTC",
            "*-06~4..5/4",
            "2026-06-01T00:00:00Z",
            &["2026-06-27T00:00:00+00:00"],
        );
    }

    #[test]
    fn systemd_step_overshoot_is_copied() {
        // A step running past the end of the hour on the day's last hour: systemd keeps the
        // carried minute, so 00:00 is skipped (timers really fire at 00:45).
        check(
            "UTC",
            "*:0/45",
            "2024-01-01T23:50:00Z",
            &["2024-01-02T00:45:00+00:00", "2024-01-02T01:00:00+00:00"],
        );
        check(
            "UTC",
            "*:10/35",
            "2024-01-01T23:50:00Z",
            &["2024-01-02T00:45:00+00:00"],
        );
        check(
            "UTC",
            "*:*:0/45",
            "2024-01-01T12:59:50Z",
            &["2024-01-01T13:00:45+00:00"],
        );
        check(
            "UTC",
            "0/15:00",
            "2024-01-31T16:00:00Z",
            &["2024-02-01T15:00:00+00:00"],
        );
        check(
            "UTC",
            "*-*-1/20",
            "2024-12-22T00:00:00Z",
            &["2025-01-21T00:00:00+00:00"],
        );
        // One field of carry is handled correctly.
        check(
            "UTC",
            "*:0/45",
            "2024-01-01T00:46:00Z",
            &["2024-01-01T01:00:00+00:00"],
        );
        check(
            "UTC",
            "*:*:0/45",
            "2024-01-01T12:30:50Z",
            &["2024-01-01T12:31:00+00:00"],
        );
        check(
            "UTC",
            "0/15:00",
            "2024-01-01T16:00:00Z",
            &["2024-01-02T00:00:00+00:00"],
        );
    }

    #[test]
    fn a_search_sent_back_before_the_start_moves_on() {
        // Chatham springs forward at 02:45 (+12:45 to +13:45). From 02:28, `:48` lands in the gap,
        // normalises to 03:48, and the reset 03:00 (still in the gap, DST flag kept) reads back as
        // 02:00: Debian's systemd 252 then advances an hour with the flag kept (answers from
        // `systemd-analyze calendar`, 252.38). It skips 03:48, as systemd does.
        check(
            "Pacific/Chatham",
            "*:16,48",
            "2022-09-25T02:28:12+12:45",
            &["2022-09-25T04:16:00+13:45", "2022-09-25T04:48:00+13:45"],
        );
        check(
            "Pacific/Chatham",
            "*:0,48",
            "2022-09-25T02:28:12+12:45",
            &["2022-09-25T04:00:00+13:45", "2022-09-25T04:48:00+13:45"],
        );
        check(
            "Pacific/Chatham",
            "*:44,48",
            "2022-09-25T02:28:12+12:45",
            &["2022-09-25T02:44:00+12:45", "2022-09-25T03:48:00+13:45"],
        );
    }

    #[test]
    fn skipped_times_do_not_fire() {
        check(
            "America/New_York",
            "02:30",
            "2021-03-13T12:00:00-05:00",
            &["2021-03-15T02:30:00-04:00"],
        );
        check(
            "America/New_York",
            "*:30",
            "2021-03-14T01:45:00-05:00",
            &["2021-03-14T03:30:00-04:00"],
        );
        check(
            "Australia/Lord_Howe",
            "*:15",
            "2021-10-03T01:00:00+10:30",
            &["2021-10-03T01:15:00+10:30", "2021-10-03T03:15:00+11:00"],
        );
        check(
            "Australia/Lord_Howe",
            "*:45",
            "2021-10-03T01:50:00+10:30",
            &["2021-10-03T02:45:00+11:00"],
        );
    }

    #[test]
    fn dublin_spring_forward_day_is_skipped_where_systemd_skips_it() {
        // Answers of `systemd-analyze calendar` (Debian 12, systemd 252.38).
        check(
            "Europe/Dublin",
            "*-* 1..2:54..56,21..34/3,52:50",
            "2023-03-25T19:56:42+00:00",
            &["2023-03-27T01:21:50+01:00"],
        );
        check(
            "Europe/Dublin",
            "Sunday..Sunday 22,01:*:35",
            "2025-03-28T02:59:50+00:00",
            &["2025-04-06T01:00:35+01:00"],
        );
        check(
            "Europe/Dublin",
            "02,17,5/10:19",
            "2023-03-25T17:19:00+00:00",
            &["2023-03-26T02:19:00+01:00"],
        );
    }

    #[test]
    fn dublin_gap_moves_forward() {
        check(
            "Europe/Dublin",
            "*:00",
            "2021-03-28T00:30:00+00:00",
            &["2021-03-28T02:00:00+01:00", "2021-03-28T03:00:00+01:00"],
        );
        check(
            "Europe/Dublin",
            "0,1,2,3:15",
            "2021-03-28T00:30:00+00:00",
            &["2021-03-28T02:15:00+01:00"],
        );
        check(
            "Europe/Dublin",
            "12:00",
            "2021-03-27T23:00:00+00:00",
            &["2021-03-28T12:00:00+01:00"],
        );
        check(
            "Europe/Dublin",
            "01:30",
            "2021-03-27T23:00:00+00:00",
            &["2021-03-29T01:30:00+01:00"],
        );
    }

    #[test]
    fn repeated_hour_fires_on_first_pass_only() {
        check(
            "America/New_York",
            "*:0/20",
            "2021-11-07T00:50:00-04:00",
            &[
                "2021-11-07T01:00:00-04:00",
                "2021-11-07T01:20:00-04:00",
                "2021-11-07T01:40:00-04:00",
                "2021-11-07T02:00:00-05:00",
            ],
        );
        check(
            "America/New_York",
            "01:30",
            "2021-11-06T12:00:00-04:00",
            &["2021-11-07T01:30:00-04:00", "2021-11-08T01:30:00-05:00"],
        );
    }

    #[test]
    fn start_in_second_pass_gets_second_pass_times() {
        check(
            "America/New_York",
            "*:0/20",
            "2021-11-07T01:10:00-05:00",
            &["2021-11-07T01:20:00-05:00", "2021-11-07T01:40:00-05:00"],
        );
    }

    #[test]
    fn where_systemd_loops_forever_we_give_the_real_next_time() {
        // systemd 252: "Infinite loop in calendar calculation" from this start.
        check(
            "America/New_York",
            "14/7:29",
            "2022-03-11T22:29:07-05:00",
            &["2022-03-12T14:29:00-05:00", "2022-03-12T21:29:00-05:00"],
        );
    }

    #[test]
    fn fractional_seconds_fire_in_their_whole_second() {
        check(
            "UTC",
            "12:00:05.5",
            "2024-01-01T12:00:04Z",
            &["2024-01-01T12:00:05+00:00"],
        );
        // The fire at 12:00:05.5 is inside the start's own second: not strictly after it.
        check(
            "UTC",
            "12:00:05.5",
            "2024-01-01T12:00:05Z",
            &["2024-01-02T12:00:05+00:00"],
        );
        // 12:00:00.5 and 12:00:00.75 count once, then 12:00:01.0 and 12:00:01.25 once.
        check(
            "UTC",
            "12:00:0.5/0.25",
            "2024-01-01T11:00:00Z",
            &["2024-01-01T12:00:00+00:00", "2024-01-01T12:00:01+00:00"],
        );
    }

    #[test]
    fn each_line_has_its_own_zone_and_the_earliest_wins() {
        check(
            "Europe/Riga",
            "12:00 UTC\n\n09:00\n",
            "2024-01-01T00:00:00Z",
            &["2024-01-01T09:00:00+02:00", "2024-01-01T14:00:00+02:00"],
        );
        check(
            "UTC",
            "08:00 America/New_York\n12:00",
            "2024-01-01T00:00:00Z",
            &["2024-01-01T12:00:00+00:00", "2024-01-01T13:00:00+00:00"],
        );
    }

    #[test]
    fn epoch_timestamps_fire_once() {
        check(
            "UTC",
            "@1700000000",
            "2023-01-01T00:00:00Z",
            &["2023-11-14T22:13:20+00:00"],
        );
        check_never("@1700000000", "2024-01-01T00:00:00Z");
    }

    #[test]
    fn the_horizon_is_systemds_last_year() {
        // systemd searches up to the end of 2199 (answers of `systemd-analyze calendar`).
        check_never("*-02-30", "2024-01-01T00:00:00Z");
        check_never("2020-01-01", "2024-01-01T00:00:00Z");
        check(
            "UTC",
            "2100-02-28 00:00",
            "2024-01-01T00:00:00Z",
            &["2100-02-28T00:00:00+00:00"],
        );
        check_never("2100-02-28 00:00", "2100-02-28T00:00:00Z");
        check(
            "UTC",
            "2090-01-01",
            "2024-01-01T00:00:00Z",
            &["2090-01-01T00:00:00+00:00"],
        );
        check(
            "UTC",
            "2199-12-31 23:59:59",
            "2024-01-01T00:00:00Z",
            &["2199-12-31T23:59:59+00:00"],
        );
        check(
            "UTC",
            "Mon *-02-29",
            "2024-01-01T00:00:00Z",
            &["2044-02-29T00:00:00+00:00", "2072-02-29T00:00:00+00:00"],
        );
        check(
            "UTC",
            "2199-*-* 00:00",
            "2024-01-01T00:00:00Z",
            &["2199-01-01T00:00:00+00:00", "2199-01-02T00:00:00+00:00"],
        );
        check_never("*-*-* 00:00", "2199-12-31T00:00:00Z");
        check(
            "America/New_York",
            "2150-07-01 12:00",
            "2024-01-01T00:00:00Z",
            &["2150-07-01T12:00:00-04:00"],
        );
    }

    #[test]
    fn end_of_month_days() {
        let mut clock = Clock {
            zone: None,
            guess: 0,
        };
        let feb = Tm {
            year: 2024,
            mon: 1,
            mday: 10,
            hour: 12,
            min: 0,
            sec: 0,
            isdst: -1,
        };
        assert_eq!(clock.end_of_month_day(&feb, 1), 29);
        assert_eq!(clock.end_of_month_day(&feb, 29), 1);
        assert_eq!(clock.end_of_month_day(&feb, 30), -1);
        assert_eq!(clock.end_of_month_day(&feb, -1), -1);
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,80}") {
            if let Ok(cal) = OnCalendar::parse(&text, &Zone::utc()) {
                let _ = cal.next_after(1_700_000_000);
            }
        }

        #[test]
        fn calendar_like_text_gives_increasing_times(
            text in "(Mon|fri|Sat\\.\\.Sun )?([0-9*]{1,4}(\\.\\.[0-9]{1,2})?(/[0-9])?-)?([0-9*]{1,2}[-~])?[0-9*]{1,2} [0-9*]{1,2}(/[0-9]{1,2})?:[0-9*]{1,2}(,[0-9]{1,2})?(:[0-9*.]{1,4})?",
            tz in prop::sample::select(vec!["UTC", "America/New_York", "Europe/Dublin", "Australia/Lord_Howe", "America/Santiago"]),
            start in 1_500_000_000i64..2_000_000_000,
        ) {
            let zone = Zone::from_name(tz).unwrap();
            if let Ok(cal) = OnCalendar::parse(&text, &zone) {
                let mut t = start;
                for _ in 0..5 {
                    let Some(next) = cal.next_after(t) else { break };
                    prop_assert!(next > t);
                    t = next;
                }
            }
        }
    }
}
