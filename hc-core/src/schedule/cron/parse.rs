//! Parsing the five cron fields into bit sets, with errors a user can act on.
//!
//! Work is bounded by the input length (capped at [`MAX_EXPR_LEN`]) and never by the numbers
//! written in it: `0-1000000000 * * * *` is rejected after reading its digits, with no allocation.

use super::Cron;
use crate::schedule::ScheduleError;
use crate::schedule::calendar;

/// The longest expression accepted; a cron line listing every value of every field is shorter.
pub(super) const MAX_EXPR_LEN: usize = 1000;

const MONTH_ABBREVIATIONS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAY_ABBREVIATIONS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

impl Field {
    const ALL: [Field; 5] = [
        Field::Minute,
        Field::Hour,
        Field::DayOfMonth,
        Field::Month,
        Field::DayOfWeek,
    ];

    fn name(self) -> &'static str {
        match self {
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "day-of-month",
            Field::Month => "month",
            Field::DayOfWeek => "day-of-week",
        }
    }

    /// The inclusive range of values; day of week allows 7 for Sunday, as Debian does.
    fn range(self) -> (u32, u32) {
        match self {
            Field::Minute => (0, 59),
            Field::Hour => (0, 23),
            Field::DayOfMonth => (1, 31),
            Field::Month => (1, 12),
            Field::DayOfWeek => (0, 7),
        }
    }
}

/// The values and extensions one field selects.
#[derive(Debug, Default)]
struct FieldSet {
    /// Bit `v` is set when value `v` is selected.
    values: u64,
    /// Day of month `L`.
    last: bool,
    /// Day of month `LW`.
    last_weekday: bool,
    /// Day of week `nL`: bit `n` (0 = Sunday).
    weekday_last: u8,
    /// Day of week `n#k`: bit `k` of entry `n`.
    weekday_nth: [u8; 7],
}

/// Parses a 5-field expression.
pub(super) fn parse(expr: &str) -> Result<Cron, ScheduleError> {
    if expr.len() > MAX_EXPR_LEN {
        return Err(ScheduleError::new(format!(
            "the expression is too long ({} bytes, at most {MAX_EXPR_LEN})",
            expr.len()
        )));
    }
    let mut texts = [""; 5];
    let mut count = 0;
    for (i, text) in expr.split_whitespace().enumerate() {
        if let Some(slot) = texts.get_mut(i) {
            *slot = text;
        }
        count += 1;
    }
    if count != 5 {
        let message = if count == 1 && texts[0].starts_with('@') {
            format!(
                "aliases like {:?} are not supported: write the 5 fields, e.g. \"0 0 * * *\"",
                texts[0]
            )
        } else if count == 6 {
            "expected 5 fields, got 6 (a seconds field is not supported)".to_owned()
        } else {
            format!("expected 5 fields, got {count}")
        };
        return Err(ScheduleError::new(message));
    }
    let mut sets: [FieldSet; 5] = Default::default();
    for ((field, text), set) in Field::ALL.into_iter().zip(texts).zip(&mut sets) {
        parse_field(field, text, set).map_err(|reason| {
            ScheduleError::new(format!("bad {} field {text:?}: {reason}", field.name()))
        })?;
    }
    let [minutes, hours, dom, months, dow] = sets;
    let day_rule = DayRule {
        // Debian cron: the day fields are ANDed when either one starts with `*`, ORed otherwise.
        and: texts[2].starts_with('*') || texts[4].starts_with('*'),
        dom: u32::try_from(dom.values).unwrap_or(0),
        last: dom.last,
        last_weekday: dom.last_weekday,
        // Both 0 and 7 are Sunday.
        dow: u8::try_from((dow.values | (dow.values >> 7)) & 0x7f).unwrap_or(0),
        weekday_last: dow.weekday_last,
        weekday_nth: dow.weekday_nth,
    };
    let mut day_masks = [0; 28];
    for (i, mask) in day_masks.iter_mut().enumerate() {
        // Index = (length - 28) * 7 + weekday of the 1st; both parts are small.
        let len = 28 + u32::try_from(i / 7).unwrap_or(0);
        let first = u32::try_from(i % 7).unwrap_or(0);
        *mask = day_rule.mask(len, first);
    }
    let cron = Cron {
        minutes: minutes.values,
        hours: u32::try_from(hours.values).unwrap_or(0),
        months: u16::try_from(months.values).unwrap_or(0),
        day_masks,
        // Debian's MIN_STAR/HR_STAR flags: set when the field's text starts with `*`.
        fixed_time: !texts[0].starts_with('*') && !texts[1].starts_with('*'),
    };
    if !cron.fires_in_some_month() {
        return Err(ScheduleError::new(never_fires_reason(
            &day_rule,
            cron.months,
        )));
    }
    Ok(cron)
}

/// Why no day ever matches, for a schedule that [`Cron::fires_in_some_month`] rejected.
fn never_fires_reason(rule: &DayRule, months: u16) -> String {
    let prefix = "no fire time within 50 years";
    let first_day = rule.dom.trailing_zeros();
    let longest = (1..=12)
        .filter(|m| months & (1 << m) != 0)
        .map(|m| calendar::days_in_month(2000, m))
        .max()
        .unwrap_or(31);
    if !rule.last && !rule.last_weekday && first_day <= 31 && first_day > longest {
        let names: Vec<&str> = (1..=12usize)
            .filter(|m| months & (1 << m) != 0)
            .map(|m| MONTH_NAMES[m - 1])
            .collect();
        let list = match names.split_last() {
            Some((last, [])) => (*last).to_owned(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        };
        format!("{prefix}: day-of-month {first_day} never occurs in {list}")
    } else {
        format!("{prefix}: no day matches both the day-of-month and the day-of-week field")
    }
}

/// The day-of-month and day-of-week fields together.
struct DayRule {
    and: bool,
    dom: u32,
    last: bool,
    last_weekday: bool,
    dow: u8,
    weekday_last: u8,
    weekday_nth: [u8; 7],
}

impl DayRule {
    /// The matching days (bit `d` for day `d`) of a month of `len` days whose 1st is weekday `first`.
    fn mask(&self, len: u32, first: u32) -> u32 {
        let valid = ((1u64 << (len + 1)) - 2) as u32;
        let mut dom = self.dom & valid;
        if self.last {
            dom |= 1 << len;
        }
        if self.last_weekday {
            // Saturday (6) and Sunday (0) fall back to the Friday before.
            dom |= 1
                << match (first + len - 1) % 7 {
                    6 => len - 1,
                    0 => len - 2,
                    _ => len,
                };
        }
        let mut dow = 0u32;
        for day in 1..=len {
            let weekday = (first + day - 1) % 7;
            let bit = 1u8 << weekday;
            let nth = (day - 1) / 7 + 1;
            if self.dow & bit != 0
                || (self.weekday_last & bit != 0 && day + 7 > len)
                || self.weekday_nth[weekday as usize] & (1 << nth) != 0
            {
                dow |= 1 << day;
            }
        }
        if self.and { dom & dow } else { dom | dow }
    }
}

fn parse_field(field: Field, text: &str, set: &mut FieldSet) -> Result<(), String> {
    for item in text.split(',') {
        parse_item(field, item, set)?;
    }
    Ok(())
}

fn parse_item(field: Field, item: &str, set: &mut FieldSet) -> Result<(), String> {
    if item.is_empty() {
        return Err("empty list item".into());
    }
    if item.contains('?') {
        return Err("\"?\" is not supported: use \"*\"".into());
    }
    match field {
        Field::DayOfMonth => {
            if item.eq_ignore_ascii_case("L") {
                set.last = true;
                return Ok(());
            }
            if item.eq_ignore_ascii_case("LW") {
                set.last_weekday = true;
                return Ok(());
            }
            if item.contains(['W', 'w']) {
                return Err(
                    "\"W\" (nearest weekday) is not supported; only \"LW\" (last weekday of the month) is"
                        .into(),
                );
            }
            if item.contains(['L', 'l']) {
                return Err("\"L\" stands alone: \"L\" (last day) or \"LW\" (last weekday)".into());
            }
        }
        Field::DayOfWeek => {
            if let Some((day, nth)) = item.split_once('#') {
                let day = value(field, day)?;
                let nth = number(nth).filter(|k| (1..=5).contains(k)).ok_or_else(|| {
                    format!("in {item:?} the week number after \"#\" must be 1-5")
                })?;
                set.weekday_nth[(day % 7) as usize] |= 1 << nth;
                return Ok(());
            }
            if let Some(day) = item.strip_suffix(['L', 'l']) {
                if day.bytes().all(|b| b.is_ascii_alphabetic()) && !day.is_empty() {
                    return Err(format!(
                        "in {item:?} write the day as a number before \"L\", e.g. \"5L\" for the last Friday"
                    ));
                }
                let day = number(day).ok_or_else(|| {
                    format!("in {item:?} \"L\" must follow a day number 0-7, e.g. \"5L\"")
                })?;
                if day > 7 {
                    return Err(format!("{day} is out of range 0-7"));
                }
                set.weekday_last |= 1 << (day % 7);
                return Ok(());
            }
        }
        _ => {}
    }
    let (range, step) = match item.split_once('/') {
        Some((range, step)) => {
            let step = number(step).ok_or_else(|| format!("step {step:?} is not a number"))?;
            if step == 0 {
                return Err("step 0 is not allowed".into());
            }
            (range, Some(step))
        }
        None => (item, None),
    };
    let (min, max) = field.range();
    let (low, high) = if range == "*" {
        (min, max)
    } else if let Some((low_text, high_text)) = range.split_once('-') {
        let low = value(field, low_text)?;
        let high = value(field, high_text)?;
        if low > high {
            return Err(format!(
                "range {range:?} runs backwards (ranges cannot wrap around; use a list, e.g. \"{low_text}-{max},{min}-{high_text}\")"
            ));
        }
        (low, high)
    } else {
        let low = value(field, range)?;
        // `N/S` means `N-max/S` (Healthchecks' reading; Debian rejects it).
        (low, if step.is_some() { max } else { low })
    };
    // `A-A/S` is the single value A, as in Debian: the step loop below gives exactly that.
    let step = step.unwrap_or(1);
    let mut v = low;
    while v <= high {
        set.values |= 1 << v;
        v = v.saturating_add(step);
    }
    Ok(())
}

/// A decimal number, saturating far above any field's range so huge numbers cost nothing.
fn number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0u32, |n, b| {
        n.saturating_mul(10)
            .saturating_add(u32::from(b - b'0'))
            .min(1_000_000_000)
    }))
}

/// One value of `field`: a number in range, or a name of the field's own kind.
fn value(field: Field, text: &str) -> Result<u32, String> {
    let (min, max) = field.range();
    if let Some(n) = number(text) {
        return if (min..=max).contains(&n) {
            Ok(n)
        } else {
            Err(format!("{text} is out of range {min}-{max}"))
        };
    }
    let position = |names: &[&str]| names.iter().position(|n| n.eq_ignore_ascii_case(text));
    let month = position(&MONTH_ABBREVIATIONS);
    let day = position(&DAY_ABBREVIATIONS);
    match (field, month, day) {
        // Positions are below 12, so the casts cannot truncate.
        (Field::Month, Some(i), _) => Ok(i as u32 + 1),
        (Field::DayOfWeek, _, Some(i)) => Ok(i as u32),
        (_, Some(_), _) => Err(format!(
            "{text:?} is a month name, allowed only in the month field"
        )),
        (_, _, Some(_)) => Err(format!(
            "{text:?} is a day name, allowed only in the day-of-week field"
        )),
        _ if text.is_empty() => Err("a number is missing".into()),
        (Field::Month, ..) => Err(format!(
            "{text:?} is not a number or a three-letter month name"
        )),
        (Field::DayOfWeek, ..) => Err(format!(
            "{text:?} is not a number or a three-letter day name"
        )),
        _ => Err(format!("{text:?} is not a number")),
    }
}
