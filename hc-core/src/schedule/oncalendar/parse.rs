//! The OnCalendar parser: one line of text into a [`Spec`], accepting and rejecting what
//! `systemd-analyze calendar` (systemd 252) accepts and rejects.
//!
//! The grammar was learnt from `man systemd.time` and by running the oracle; the code is ours.

use super::{Comp, Spec, SpecZone, USEC_PER_SEC};
use crate::schedule::{ScheduleError, Zone};

/// The longest line we parse; systemd has no limit, but a schedule is typed by a person.
pub(super) const MAX_LINE: usize = 1024;

/// How many comma-separated items one field may hold (systemd's own limit on a chain).
const MAX_CHAIN: usize = 240;

/// The years systemd can represent (`MIN_YEAR`, `MAX_YEAR` in its calendar code).
pub(super) const MIN_YEAR: i64 = 1970;
pub(super) const MAX_YEAR: i64 = 2199;

/// Every shorthand systemd 252 knows (matched in any case), with the expression it stands for.
/// `anually` is systemd's old misspelling, still accepted for backwards compatibility.
const SHORTHANDS: [(&str, &str); 13] = [
    ("minutely", "*-*-* *:*:00"),
    ("hourly", "*-*-* *:00:00"),
    ("daily", "*-*-* 00:00:00"),
    ("monthly", "*-*-01 00:00:00"),
    ("weekly", "Mon *-*-* 00:00:00"),
    ("yearly", "*-01-01 00:00:00"),
    ("annually", "*-01-01 00:00:00"),
    ("anually", "*-01-01 00:00:00"),
    ("quarterly", "*-01,04,07,10-01 00:00:00"),
    ("semiannually", "*-01,07-01 00:00:00"),
    ("semi-annually", "*-01,07-01 00:00:00"),
    ("biannually", "*-01,07-01 00:00:00"),
    ("bi-annually", "*-01,07-01 00:00:00"),
];

/// The last day a `~` item may count back to: systemd refuses days more than 28 days from the
/// end of the month (`*-02~29`, `*-*~31`), because not every month has them.
const MAX_DAY_FROM_END: i64 = 28;

/// systemd 252 lowers that limit by 3 for each further item of a `~` chain (in sorted order), so
/// `*-*~16,23` is valid but `*-*~23,27` is not: its check subtracts 3 at every link of the chain.
const DAY_FROM_END_STEP: i64 = 3;

// Longer names first so that "Monday" is not read as "Mon" followed by "day".
const WEEKDAYS: [(&str, u8); 14] = [
    ("monday", 0),
    ("mon", 0),
    ("tuesday", 1),
    ("tue", 1),
    ("wednesday", 2),
    ("wed", 2),
    ("thursday", 3),
    ("thu", 3),
    ("friday", 4),
    ("fri", 4),
    ("saturday", 5),
    ("sat", 5),
    ("sunday", 6),
    ("sun", 6),
];

fn invalid(line: &str, why: &str) -> ScheduleError {
    ScheduleError::new(format!("invalid OnCalendar expression {line:?}: {why}"))
}

/// Parses one expression (one non-empty line, as given); `default_zone` applies without a
/// trailing zone and is the zone whose abbreviations systemd would read as a DST flag.
pub(super) fn parse_line(line: &str, default_zone: &Zone) -> Result<Spec, ScheduleError> {
    if line.len() > MAX_LINE {
        return Err(ScheduleError::new(format!(
            "OnCalendar expression is longer than {MAX_LINE} characters"
        )));
    }
    let err = |why: &str| invalid(line, why);
    // systemd takes the text as it is: a leading blank is no weekday or number. Trailing spaces
    // are skipped after weekdays or a date (`Mon `), and are left over anywhere else.
    if line.starts_with(char::is_whitespace) {
        return Err(err("leading whitespace (systemd refuses it; remove it)"));
    }
    // The zone is the last word; systemd checks " UTC" (any case) first, then the local zone's
    // abbreviations, then a zone file name.
    let (body, zone) = split_zone(line, default_zone)?;
    if body.is_empty() {
        return Err(err("nothing before the time zone"));
    }
    let expanded;
    let mut text = body;
    if let Some((_, long)) = SHORTHANDS
        .iter()
        .find(|(short, _)| short.eq_ignore_ascii_case(body))
    {
        expanded = *long;
        text = expanded;
    }
    let mut spec = Spec {
        weekdays: None,
        end_of_month: false,
        year: None,
        month: None,
        day: None,
        hour: None,
        minute: None,
        usec: None,
        zone,
    };
    let mut p = Cursor {
        s: text.as_bytes(),
        i: 0,
    };
    let parsed = parse_fields(&mut p, &mut spec);
    if parsed.is_err() && line.ends_with(char::is_whitespace) {
        return Err(err(
            "trailing whitespace (systemd refuses it after a time or a zone; remove it)",
        ));
    }
    if let Err(why) = parsed {
        // A last word that could only have been meant as a zone (none was split off) deserves a
        // message saying so.
        let word = (body.len() == line.len())
            .then(|| body.rsplit_once(' '))
            .flatten()
            .map(|(_, w)| w)
            .filter(|w| looks_like_zone(w));
        return Err(match word {
            Some(w) if w.starts_with(['+', '-']) => err(&format!(
                "{w:?} is not a time zone: systemd 252 accepts no numeric UTC offsets; \
                 name a zone (Europe/Riga, Etc/GMT-5 for +05:00) or UTC"
            )),
            Some(w) => err(&format!(
                "unknown time zone {w:?} (a trailing zone is UTC or a zone name such as Europe/Riga)"
            )),
            None => err(why),
        });
    }
    // systemd fixes two-digit years before it normalises the chains.
    fix_two_digit_years(&mut spec.year);
    for chain in [
        &mut spec.year,
        &mut spec.month,
        &mut spec.day,
        &mut spec.hour,
        &mut spec.minute,
        &mut spec.usec,
    ] {
        normalize_chain(chain);
    }
    validate(&spec).map_err(&err)?;
    Ok(spec)
}

fn parse_fields(p: &mut Cursor<'_>, spec: &mut Spec) -> Result<(), Why> {
    parse_weekdays(p, spec)?;
    let done = parse_date(p, spec)?;
    if !done {
        parse_time(p, spec)?;
    }
    if !p.at_end() {
        return Err("unexpected text after the time");
    }
    Ok(())
}

/// A word no part of the grammar can be: it starts with a sign or holds a letter (weekday names
/// come first, so a letter in the last word is a zone or a typo).
fn looks_like_zone(word: &str) -> bool {
    word.starts_with(['+', '-']) || word.bytes().any(|b| b.is_ascii_alphabetic())
}

/// systemd normalises a stepped range to end on its last value, and a range holding one value
/// to that value; this matters for `~` days, which count the range from the month's end, and
/// for validation, which sees the normalised items.
fn normalize_chain(chain: &mut Option<Vec<Comp>>) {
    for c in chain.iter_mut().flatten() {
        if c.stop > c.start && c.repeat > 0 {
            c.stop -= (c.stop - c.start) % c.repeat;
        }
        if c.start == c.stop {
            c.stop = -1;
            c.repeat = 0;
        }
    }
}

fn split_zone<'a>(
    line: &'a str,
    default_zone: &Zone,
) -> Result<(&'a str, SpecZone), ScheduleError> {
    let tail = |n: usize| {
        line.len()
            .checked_sub(n)
            .and_then(|i| line.get(i..))
            .unwrap_or("")
    };
    if tail(4).eq_ignore_ascii_case(" utc") {
        return Ok((&line[..line.len() - 4], SpecZone::Utc));
    }
    // systemd reads the local zone's own abbreviations (glibc's tzname, e.g. "EST" or "EDT" under
    // New York, in any case) as a DST flag for local time, not as a zone. We refuse them rather
    // than read them as something else (see the module documentation).
    for abbr in default_zone.abbreviations() {
        let word = tail(abbr.len());
        let before = line.len() - word.len();
        if word.eq_ignore_ascii_case(abbr) && before > 0 && line.as_bytes()[before - 1] == b' ' {
            return Err(invalid(
                line,
                &format!(
                    "the time zone abbreviation {word:?} is not supported: systemd reads the \
                     local zone's abbreviations ({}) as a daylight-saving flag; name the zone \
                     ({}) or use UTC",
                    default_zone.abbreviations().join(", "),
                    default_zone.name()
                ),
            ));
        }
    }
    if let Some(space) = line.rfind(' ') {
        let word = &line[space + 1..];
        if !word.is_empty() {
            if let Ok(zone) = Zone::from_name(word) {
                return Ok((&line[..space], SpecZone::Tz(zone)));
            }
        }
    }
    Ok((line, SpecZone::Tz(default_zone.clone())))
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> u8 {
        self.s.get(self.i).copied().unwrap_or(0)
    }
    fn peek_at(&self, n: usize) -> u8 {
        self.s.get(self.i + n).copied().unwrap_or(0)
    }
    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }
    fn skip_spaces(&mut self) {
        while self.peek() == b' ' {
            self.i += 1;
        }
    }
}

type Why = &'static str;

fn parse_weekdays(p: &mut Cursor<'_>, spec: &mut Spec) -> Result<(), Why> {
    let mut bits: u8 = 0;
    let mut range_from: Option<u8> = None;
    let mut first = true;
    loop {
        let rest = &p.s[p.i..];
        let found = WEEKDAYS.iter().find(|(name, _)| {
            rest.len() >= name.len() && rest[..name.len()].eq_ignore_ascii_case(name.as_bytes())
        });
        let Some(&(name, nr)) = found else {
            if first {
                return Ok(());
            }
            return Err("expected a weekday name");
        };
        if !matches!(p.peek_at(name.len()), 0 | b'-' | b'.' | b',' | b' ') {
            return Err("unknown weekday name");
        }
        bits |= 1 << nr;
        if let Some(from) = range_from {
            if from > nr {
                return Err("weekday ranges cannot wrap around the week");
            }
            for d in from..nr {
                bits |= 1 << d;
            }
        }
        p.i += name.len();
        spec.weekdays = Some(bits);
        match p.peek() {
            0 => return Ok(()),
            b' ' => {
                p.skip_spaces();
                return Ok(());
            }
            b'.' => {
                if range_from.is_some() || p.peek_at(1) != b'.' {
                    return Err("bad weekday range");
                }
                range_from = Some(nr);
                p.i += 2;
            }
            // systemd still accepts "Mon-Fri" for backwards compatibility.
            b'-' => {
                if range_from.is_some() {
                    return Err("bad weekday range");
                }
                range_from = Some(nr);
                p.i += 1;
            }
            b',' => {
                range_from = None;
                p.i += 1;
            }
            _ => return Err("bad weekday list"),
        }
        // A trailing comma is allowed, an open range is not.
        if matches!(p.peek(), 0 | b' ') {
            p.skip_spaces();
            return if range_from.is_none() {
                Ok(())
            } else {
                Err("open weekday range")
            };
        }
        first = false;
    }
}

/// Returns `true` when the date part was a complete `@seconds` timestamp (no time part follows).
fn parse_date(p: &mut Cursor<'_>, spec: &mut Spec) -> Result<bool, Why> {
    if p.at_end() {
        return Ok(false);
    }
    if p.peek() == b'@' {
        return parse_epoch(p, spec).map(|()| true);
    }
    let start = p.i;
    let first = parse_chain(p, false)?;
    // A ':' (or the end) right after the first field means this was a time, not a date.
    if matches!(p.peek(), 0 | b':') {
        p.i = start;
        return Ok(false);
    }
    match p.peek() {
        b'~' => spec.end_of_month = true,
        b'-' => {}
        _ => return Err("bad date"),
    }
    p.i += 1;
    let second = parse_chain(p, false)?;
    if matches!(p.peek(), 0 | b' ') {
        p.skip_spaces();
        spec.month = first;
        spec.day = second;
        return Ok(false);
    }
    if spec.end_of_month {
        return Err("'~' must come right before the day");
    }
    match p.peek() {
        b'~' => spec.end_of_month = true,
        b'-' => {}
        _ => return Err("bad date"),
    }
    p.i += 1;
    let third = parse_chain(p, false)?;
    if !matches!(p.peek(), 0 | b' ') {
        return Err("bad date");
    }
    p.skip_spaces();
    spec.year = first;
    spec.month = second;
    spec.day = third;
    Ok(false)
}

fn parse_epoch(p: &mut Cursor<'_>, spec: &mut Spec) -> Result<(), Why> {
    p.i += 1;
    let digits = &p.s[p.i..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) || digits.len() > 15 {
        return Err("bad @timestamp");
    }
    let mut secs: i64 = 0;
    for d in digits {
        secs = secs * 10 + i64::from(d - b'0');
    }
    p.i = p.s.len();
    let (y, m, d) = crate::schedule::calendar::civil_from_days(secs.div_euclid(86_400));
    let (m, d) = (i64::from(m), i64::from(d));
    let tod = secs.rem_euclid(86_400);
    let fixed = |v: i64| {
        Some(vec![Comp {
            start: v,
            stop: -1,
            repeat: 0,
        }])
    };
    spec.year = fixed(y);
    spec.month = fixed(m);
    spec.day = fixed(d);
    spec.hour = fixed(tod / 3600);
    spec.minute = fixed(tod / 60 % 60);
    spec.usec = fixed(tod % 60 * USEC_PER_SEC);
    spec.zone = SpecZone::Utc;
    Ok(())
}

fn parse_time(p: &mut Cursor<'_>, spec: &mut Spec) -> Result<(), Why> {
    let zero = || {
        Some(vec![Comp {
            start: 0,
            stop: -1,
            repeat: 0,
        }])
    };
    if p.at_end() {
        // No time at all means midnight.
        spec.hour = zero();
        spec.minute = zero();
        spec.usec = zero();
        return Ok(());
    }
    spec.hour = parse_chain(p, false)?;
    if p.peek() != b':' {
        return Err("expected ':' after the hour");
    }
    p.i += 1;
    spec.minute = parse_chain(p, false)?;
    if p.at_end() {
        spec.usec = zero();
        return Ok(());
    }
    if p.peek() != b':' {
        return Err("expected ':' after the minute");
    }
    p.i += 1;
    spec.usec = parse_chain(p, true)?;
    Ok(())
}

/// `None` is a wildcard; seconds (`usec`) turn `*` into "every whole second".
fn parse_chain(p: &mut Cursor<'_>, usec: bool) -> Result<Option<Vec<Comp>>, Why> {
    if p.peek() == b'*' {
        p.i += 1;
        return Ok(if usec {
            Some(vec![Comp {
                start: 0,
                stop: -1,
                repeat: USEC_PER_SEC,
            }])
        } else {
            None
        });
    }
    let mut chain = Vec::new();
    loop {
        if chain.len() >= MAX_CHAIN {
            return Err("too many items in one field");
        }
        chain.push(parse_component(p, usec)?);
        if p.peek() != b',' {
            return Ok(Some(chain));
        }
        p.i += 1;
    }
}

const INT_MAX: i64 = i32::MAX as i64;

fn parse_component(p: &mut Cursor<'_>, usec: bool) -> Result<Comp, Why> {
    let start = parse_number(p, usec)?;
    let mut stop = -1;
    let mut repeat = 0;
    if p.peek() == b'.' && p.peek_at(1) == b'.' {
        p.i += 2;
        stop = parse_number(p, usec)?;
        repeat = if usec { USEC_PER_SEC } else { 1 };
    }
    if p.peek() == b'/' {
        p.i += 1;
        repeat = parse_number(p, usec)?;
        if repeat == 0 {
            return Err("a step of 0");
        }
    } else {
        if start > INT_MAX - repeat {
            return Err("number out of range");
        }
        // A range of seconds narrower than its default 1 s step is refused (as systemd does).
        if usec && stop >= 0 && start + repeat > stop {
            return Err("range of seconds narrower than one second");
        }
    }
    if !matches!(p.peek(), 0 | b' ' | b',' | b'-' | b'~' | b':') {
        return Err("unexpected character");
    }
    Ok(Comp {
        start,
        stop,
        repeat,
    })
}

/// A decimal number; for seconds, in microseconds with up to 6 fractional digits (rounded).
fn parse_number(p: &mut Cursor<'_>, usec: bool) -> Result<i64, Why> {
    if !p.peek().is_ascii_digit() {
        return Err("expected a number");
    }
    let mut value: i64 = 0;
    while p.peek().is_ascii_digit() {
        // Saturate instead of allocating or overflowing: anything this big is out of range.
        value = value
            .saturating_mul(10)
            .saturating_add(i64::from(p.peek() - b'0'));
        p.i += 1;
    }
    if usec {
        value = value.saturating_mul(USEC_PER_SEC);
        // One '.' is a decimal point, two are a range.
        if p.peek() == b'.' && p.peek_at(1) != b'.' {
            p.i += 1;
            if !p.peek().is_ascii_digit() {
                return Err("expected digits after the decimal point");
            }
            let mut frac: i64 = 0;
            let mut digits = 0;
            let mut round_up = false;
            while p.peek().is_ascii_digit() {
                let d = i64::from(p.peek() - b'0');
                if digits < 6 {
                    frac = frac * 10 + d;
                } else if digits == 6 {
                    round_up = d >= 5;
                }
                digits += 1;
                p.i += 1;
            }
            while digits < 6 {
                frac *= 10;
                digits += 1;
            }
            value = value.saturating_add(frac + i64::from(round_up));
        }
    }
    if value > INT_MAX {
        return Err("number out of range");
    }
    Ok(value)
}

/// systemd reads years below 70 as 20xx and 70..99 as 19xx.
fn fix_two_digit_years(chain: &mut Option<Vec<Comp>>) {
    let fix = |v: &mut i64| {
        if (0..70).contains(v) {
            *v += 2000;
        } else if (70..100).contains(v) {
            *v += 1900;
        }
    };
    for c in chain.iter_mut().flatten() {
        fix(&mut c.start);
        if c.stop >= 0 {
            fix(&mut c.stop);
        }
    }
}

fn validate(spec: &Spec) -> Result<(), Why> {
    check_chain(&spec.year, MIN_YEAR, MAX_YEAR, "year")?;
    check_chain(&spec.month, 1, 12, "month")?;
    if spec.end_of_month {
        check_days_from_end(&spec.day)?;
    } else {
        check_chain(&spec.day, 1, 31, "day")?;
    }
    check_chain(&spec.hour, 0, 23, "hour")?;
    check_chain(&spec.minute, 0, 59, "minute")?;
    check_chain(&spec.usec, 0, 60 * USEC_PER_SEC - 1, "second")
}

/// systemd's rule for (normalised) items: values in range, a step no longer than the field, a
/// range at least one step wide, and an open step that fires at least twice.
fn item_ok(c: &Comp, from: i64, to: i64) -> bool {
    (from..=to).contains(&c.start)
        && c.repeat <= to - from
        && if c.stop >= 0 {
            (from..=to).contains(&c.stop) && c.start + c.repeat <= c.stop
        } else {
            // Only an open step is checked: systemd refuses `*:50/20` but not `*:54..55/18`.
            c.repeat == 0 || c.start + c.repeat <= to
        }
}

fn check_chain(chain: &Option<Vec<Comp>>, from: i64, to: i64, what: Why) -> Result<(), Why> {
    if chain.iter().flatten().all(|c| item_ok(c, from, to)) {
        return Ok(());
    }
    Err(match what {
        "year" => "year out of range (1970..2199) or step past the end",
        "month" => "month out of range (1..12) or step past the end",
        "day" => "day out of range (1..31) or step past the end",
        "hour" => "hour out of range (0..23) or step past the end",
        "minute" => "minute out of range (0..59) or step past the end",
        _ => "second out of range (0..59) or step past the end",
    })
}

/// `~` items count back from the month's end: at most 28 days back (less for later items, see
/// [`DAY_FROM_END_STEP`]), and an open step counts backwards, so it must not step past day 1.
fn check_days_from_end(chain: &Option<Vec<Comp>>) -> Result<(), Why> {
    let mut items: Vec<Comp> = chain.iter().flatten().copied().collect();
    // systemd sorts the chain and drops duplicates before it checks it.
    items.sort_by_key(|c| (c.start, c.stop, c.repeat));
    items.dedup();
    for (k, c) in items.iter().enumerate() {
        let k = i64::try_from(k).unwrap_or(i64::MAX);
        let to = MAX_DAY_FROM_END.saturating_sub(DAY_FROM_END_STEP.saturating_mul(k));
        let in_range = (1..=to).contains(&c.start)
            && c.stop <= to
            && (c.stop < 0 || item_ok(c, 1, to))
            && c.repeat < to;
        if !in_range && k == 0 {
            return Err("a day counted from the end of the month ('~') must be 1..28");
        }
        if !in_range {
            return Err(
                "'~' days out of range: systemd allows 28 days back for the first item \
                 and 3 fewer for each further one",
            );
        }
        if c.stop < 0 && c.repeat > 0 && c.start - c.repeat < 1 {
            return Err("a step from the end of the month must be smaller than its start");
        }
    }
    Ok(())
}
