//! From wall-clock matches to real instants, following Debian cron's main loop around clock jumps.
//!
//! Debian cron (`cron.c`) keeps a "virtual" local time `V` in minutes and, each real minute,
//! compares it with the wall clock `W`; with `d = W - V`:
//!
//! * `d == 1`: normal, every job matching `W` runs;
//! * `2..=5`: every job runs for each wall minute `V+1..=W`;
//! * `6..=180`: wildcard jobs run for `W`, fixed-time jobs for each wall minute `V+1..=W`;
//! * `-179..=0`: only wildcard jobs run (for `W`), `V` stays until the wall clock catches up;
//! * otherwise the jump is too large: `V = W` and every job matching `W` runs.
//!
//! Between offset changes the wall clock advances one minute per real minute, so those rules only
//! act in the first minutes after an offset change: the engine searches wall times within each
//! stretch of constant offset and applies the rules at the stretch's start. It assumes, as tzdata
//! does for every modern rule, that offset changes are more than 3 hours apart.

use super::Cron;
use crate::schedule::calendar;
use crate::schedule::{HORIZON_YEARS, Zone};

/// Debian's limit for "small" jumps, in minutes (`3 * MINUTE_COUNT`).
const BIG_JUMP: i64 = 180;

/// Two days in minutes: more than any difference between two offsets of one zone (at most 26 hours)
/// plus Debian's catch-up window.
const SLACK: i64 = 2 * 1440;

/// The earliest instant searched from (0001-01-01T00:00:00Z); earlier starts are moved up to it.
const MIN_INSTANT: i64 = -62_135_596_800;

/// The latest start answered (9000-01-01T00:00:00Z), far beyond any check but inside every calendar type.
const MAX_INSTANT: i64 = 221_845_392_000;

/// How the offset change at the start of a stretch affects Debian cron's loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Jump {
    /// The wall clock skipped the minutes `from..to` (local minutes); at the first real minute
    /// after the change, jobs matching them run (fixed-time jobs only, unless `all`).
    Forward { from: i64, to: i64, all: bool },
    /// The wall clock went back; until the real minute `until` (Unix seconds) only wildcard jobs run.
    Backward { until: i64 },
}

/// The first fire time strictly after `after`; see [`Cron::next_after`].
pub(super) fn next_after(cron: &Cron, zone: &Zone, after: i64) -> Option<i64> {
    if after >= MAX_INSTANT {
        return None;
    }
    let after = after.max(MIN_INSTANT);
    // cronsim's horizon: it gives up once the candidate's local year passes the start's local
    // year (of the start plus one second) by more than HORIZON_YEARS.
    let (start_year, _, _) = calendar::civil_from_days(zone.to_local(after + 1).div_euclid(86_400));
    let horizon = calendar::days_from_civil(start_year + i64::from(HORIZON_YEARS) + 1, 1, 1) * 1440;

    let mut t = (after.div_euclid(60) + 1) * 60;
    loop {
        let shift = i64::from(zone.offset_at(t)).div_euclid(60);
        let wall = t / 60 + shift;
        if wall >= horizon {
            return None;
        }
        // Leap over long stretches without any matching wall time (February 29 on a Monday)
        // instead of visiting every offset change on the way. A fire at real minute T needs a
        // matching wall minute at most BIG_JUMP minutes before wall(T), and one zone's offsets
        // differ by far less than SLACK, so no fire can come before `skip`.
        let w = cron.next_wall_match(wall - SLACK, horizon)?;
        let skip = (w - shift - SLACK) * 60;
        if skip > t {
            t = skip;
            continue;
        }
        match recent_jump(zone, t) {
            // Jobs matching a skipped wall time run at the first real minute after the jump.
            Some((start, Jump::Forward { from, to, all }))
                if start == t
                    && (all || cron.fixed_time)
                    && cron.next_wall_match(from, to).is_some() =>
            {
                return Some(t);
            }
            Some((_, Jump::Backward { until })) if cron.fixed_time && t < until => {
                // Fixed-time jobs already ran on the first pass through these wall times.
                t = until;
                continue;
            }
            _ => {}
        }
        // The stretch of constant offset from `t` to the next change (exclusive), in wall minutes.
        let end = zone.next_offset_change(t).map(first_minute_at_or_after);
        let limit = end.map_or(horizon, |end| (end / 60 + shift).min(horizon));
        if let Some(w) = cron.next_wall_match(wall, limit) {
            return Some((w - shift) * 60);
        }
        t = end?;
    }
}

/// The latest offset change whose aftermath (at most [`BIG_JUMP`] minutes) can reach the real
/// minute `t`, with the first real minute it applies to.
fn recent_jump(zone: &Zone, t: i64) -> Option<(i64, Jump)> {
    let mut found = None;
    let mut probe = t - (BIG_JUMP + 1) * 60;
    while let Some(change) = zone.next_offset_change(probe) {
        if change > t {
            break;
        }
        found = Some(change);
        probe = change;
    }
    let change = found?;
    let start = first_minute_at_or_after(change);
    let old = i64::from(zone.offset_at(change - 1));
    let new = i64::from(zone.offset_at(change));
    // Debian's virtual time is the wall minute of the last real minute before the change.
    let virtual_time = (start - 60 + old).div_euclid(60);
    let landing = (start + new).div_euclid(60);
    let d = landing - virtual_time;
    match d {
        2..=BIG_JUMP => Some((
            start,
            Jump::Forward {
                from: virtual_time + 1,
                to: landing,
                all: d <= 5,
            },
        )),
        _ if d > -BIG_JUMP && d <= 0 => Some((
            start,
            Jump::Backward {
                until: start + (1 - d) * 60,
            },
        )),
        _ => None,
    }
}

/// The first whole minute at or after `t`: the first minute cron sees the new offset.
fn first_minute_at_or_after(t: i64) -> i64 {
    t.div_euclid(60) * 60 + if t.rem_euclid(60) == 0 { 0 } else { 60 }
}
