//! The cron engine against cronsim (Healthchecks' library) on generated cases, against a
//! brute-force replay of Debian cron where cronsim is known to deviate, and the
//! `hc-sendalerts schedule` command against the library.
//!
//! Starts cluster around clock changes; the seed is printed and `HC_CRON_SEED` overrides it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use chrono::{DateTime, FixedOffset, SecondsFormat};
use hc_core::config::{Env, Vars};
use hc_core::schedule::cron::Cron;
use hc_core::schedule::{Schedule, ScheduleKind, Zone};
use hc_tests::cronsim::{Answer, CronSim};
use hc_tests::debian_cron::{self, Job};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// Fire times compared per case.
const N: usize = 5;

/// Generated cases compared with cronsim.
const CASES: usize = 10_000;

/// The default seed, so a plain run is reproducible; `HC_CRON_SEED` explores others.
const DEFAULT_SEED: u64 = 20_240_331;

/// Zones with a clock change the contract names, and how often starts are put near one.
const ZONES: &[&str] = &[
    "Europe/Dublin",
    "America/New_York",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Pacific/Chatham",
    "America/Havana",
    "Europe/Riga",
    "Australia/Sydney",
    "Europe/London",
    "Asia/Kolkata",
    "America/Sao_Paulo",
    "UTC",
];

const MINUTES: &[&str] = &[
    "0", "30", "*/15", "*", "5-10", "0,30", "45", "15-45/10", "*/7", "10/20", "1-1/5", "0-59",
    "59", "*/30", "20",
];
const HOURS: &[&str] = &[
    "2", "1", "0", "*", "*/2", "1-3", "0,12", "2/5", "3-3/2", "23", "1,2", "0-5/2", "*/6", "12",
    "2,3", "0-2",
];
const DAYS_OF_MONTH: &[&str] = &[
    "*",
    "*",
    "*",
    "*",
    "1",
    "15",
    "L",
    "LW",
    "1-7",
    "*/7",
    "*/100,1-7",
    "31",
    "29",
    "13",
    "10-20/3",
    "5/10",
    "8-8/3",
    "30",
];
const MONTHS: &[&str] = &[
    "*", "*", "*", "*", "JAN", "3,10", "FEB", "2", "*/3", "MAR-NOV", "jun-aug", "11-11/4", "4,9",
    "oct",
];
const DAYS_OF_WEEK: &[&str] = &[
    "*", "*", "*", "*", "MON", "1-5", "5L", "MON#2", "0", "7", "SUN", "*/7", "fri#5", "6L",
    "sat,sun", "0#1", "*/2", "SUN#2",
];
const INVALID: &[&str] = &[
    "",
    "* * * *",
    "* * * * * *",
    "0 * * * * *",
    "* * * * * * *",
    "61 * * * *",
    "* 24 * * *",
    "* * 0 * *",
    "* * 32 * *",
    "* * * 13 * ",
    "* * * * 8",
    "5-1 * * * *",
    "*/0 * * * *",
    "1,,2 * * * *",
    "* * * * FRI-SUN",
    "* * ? * *",
    "* * 15W * *",
    "@daily",
    "@reboot",
    "* * * * MONL",
    "* * * JAN-MON *",
    "* * * * JAN",
    "* * * MON *",
    "0 0 31 2 *",
    "0 0 30 2 *",
    "0 0 31 4,6 *",
    "0-1000000000 * * * *",
    "* * * * MON#6",
    "* * * * 8L",
    "* * L/2 * *",
    "x * * * *",
    "*/ * * * *",
    "-5 * * * *",
    "1- * * * *",
    "0 0 30 2 MON",
    "0 0 31 2 */100,1",
    "* * LW,31 2 *",
    "0 0 */100,31 2 SUN#5",
];

/// One generated case.
#[derive(Debug, Clone)]
struct Case {
    expr: String,
    tz: &'static str,
    start: i64,
}

/// Why the engine may differ from cronsim (`cron-semantics.md`, "Differences from cronsim").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Deviation {
    /// `A-A/S`: cronsim reads `A-max/S`, Debian the single value A.
    SingleValueStep,
    /// A wildcard job across a clock change in a zone with a 30-minute shift or a shift at :45.
    WildcardOddShift,
    /// A clock change at midnight (Santiago, Havana; also São Paulo before 2019).
    MidnightGap,
    /// The start lies in the second pass of a repeated interval.
    SecondPassStart,
    /// cronsim rejects a day-of-month that never occurs in the chosen months even when the
    /// day-of-week field (ORed with it, by Debian's rule) makes the job fire: not listed in the
    /// contract, found by this test; the contract's "reject only what never fires" wins.
    CronsimRejectsOrDays,
}

#[test]
fn cron_matches_cronsim_and_debian() {
    let seed = Env::capture()
        .get("HC_CRON_SEED")
        .map(|s| s.parse().expect("HC_CRON_SEED must be an integer"))
        .unwrap_or(DEFAULT_SEED);
    println!("cron differential test: seed {seed} (set HC_CRON_SEED to change it)");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut cronsim = CronSim::start();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut deviations: BTreeMap<Deviation, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut sampled = 0;

    for i in 0..CASES {
        let case = generate(&mut rng);
        let zone = Zone::from_name(case.tz).expect("test zones exist");
        let engine = Cron::parse(&case.expr).map(|cron| fire_times(&cron, &zone, case.start, N));
        let oracle = cronsim.next(&case.expr, case.tz, case.start, N);
        *counts.entry("cases").or_default() += 1;
        let outcome = match (&engine, &oracle) {
            (Err(_), Answer::Rejected(_)) => Ok("both reject"),
            // cronsim searched 50 years and found nothing; the contract rejects such expressions.
            (Err(_), Answer::Times(times)) if times.is_empty() => Ok("both: never fires"),
            (Err(err), Answer::Times(_)) => contract_rejects(&case.expr)
                .map(|_| "contract rejects what cronsim accepts")
                .ok_or_else(|| format!("engine rejects ({err}), cronsim accepts")),
            (Ok(_), Answer::Crashed(crash)) | (Err(_), Answer::Crashed(crash)) => {
                Err(format!("cronsim crashed: {crash}"))
            }
            (Ok(times), Answer::Rejected(error)) => {
                let job = Job::parse(&case.expr);
                if error == "Bad day-of-month" && is_or_day_rule(&case.expr) {
                    check_against_debian(&case, &zone, times, &[], job.as_ref())
                        .map(|()| record(&mut deviations, Deviation::CronsimRejectsOrDays))
                } else {
                    Err(format!("engine accepts, cronsim rejects: {error}"))
                }
            }
            (Ok(times), Answer::Times(expected)) if times == expected => {
                // Validate the brute-force reference itself on a sample of ordinary cases.
                let short = times
                    .last()
                    .is_none_or(|last| last - case.start < 3 * 86_400);
                if short && sampled < 400 && i % 3 == 0 {
                    sampled += 1;
                    check_against_debian(
                        &case,
                        &zone,
                        times,
                        expected,
                        Job::parse(&case.expr).as_ref(),
                    )
                    .map(|()| "agree")
                    .map_err(|e| format!("brute-force reference disagrees with both: {e}"))
                } else {
                    Ok("agree")
                }
            }
            (Ok(times), Answer::Times(expected)) => {
                explain(&case, &zone, times, expected, &mut cronsim)
                    .map(|kind| record(&mut deviations, kind))
            }
        };
        match outcome {
            Ok(label) => *counts.entry(label).or_default() += 1,
            Err(why) => failures.push(format!(
                "{case:?}: {why}\n  engine  {}\n  cronsim {oracle:?}",
                show(&engine, &zone)
            )),
        }
    }
    println!("cron differential test: {counts:?}");
    println!("cron differential test: deviations by kind {deviations:?}");
    println!("cron differential test: brute-force reference checked on {sampled} ordinary cases");
    assert!(
        failures.is_empty(),
        "{} of {CASES} cases failed (seed {seed}); the first ones:\n{}",
        failures.len(),
        failures[..failures.len().min(15)].join("\n")
    );
    assert!(
        sampled >= 200,
        "too few cases validated the reference: {sampled}"
    );
    for kind in [
        Deviation::SingleValueStep,
        Deviation::WildcardOddShift,
        Deviation::MidnightGap,
        Deviation::SecondPassStart,
    ] {
        assert!(deviations.contains_key(&kind), "no case exercised {kind:?}");
    }
}

fn record(deviations: &mut BTreeMap<Deviation, usize>, kind: Deviation) -> &'static str {
    *deviations.entry(kind).or_default() += 1;
    "documented deviation, engine agrees with Debian"
}

/// The first `n` fire times, fewer at the horizon.
fn fire_times(cron: &Cron, zone: &Zone, start: i64, n: usize) -> Vec<i64> {
    std::iter::successors(cron.next_after(zone, start), |t| cron.next_after(zone, *t))
        .take(n)
        .collect()
}

/// Which documented deviation explains a disagreement, checked: for `A-A/S`, cronsim agrees once
/// it is written `A`; for the clock-change kinds, the engine agrees with the Debian replay.
fn explain(
    case: &Case,
    zone: &Zone,
    engine: &[i64],
    cronsim: &[i64],
    oracle: &mut CronSim,
) -> Result<Deviation, String> {
    let mut cronsim = cronsim.to_vec();
    if has_single_value_step(&case.expr) {
        let rewritten = rewrite_single_value_steps(&case.expr);
        match oracle.next(&rewritten, case.tz, case.start, N) {
            Answer::Times(times) if times == engine => return Ok(Deviation::SingleValueStep),
            // Another deviation on top: judge the rest with cronsim's reading of the plain value.
            Answer::Times(times) => cronsim = times,
            other => return Err(format!("cronsim on {rewritten:?} gives {other:?}")),
        }
    }
    let kind = clock_change_kind(case, zone, engine, &cronsim)
        .ok_or_else(|| "unexplained disagreement".to_owned())?;
    check_against_debian(
        case,
        zone,
        engine,
        &cronsim,
        Job::parse(&case.expr).as_ref(),
    )?;
    Ok(kind)
}

/// Which clock-change deviation of cronsim can explain a disagreement, if any.
fn clock_change_kind(
    case: &Case,
    zone: &Zone,
    engine: &[i64],
    cronsim: &[i64],
) -> Option<Deviation> {
    if second_pass(zone, case.start) {
        return Some(Deviation::SecondPassStart);
    }
    let last = latest(engine, cronsim, case.start);
    let changes = offset_changes(zone, case.start - 3 * 3600, last + 60);
    let wildcard = Job::parse(&case.expr).is_some_and(|job| job.is_wildcard());
    let odd_shift = |c: i64| {
        let (before, after) = (zone.offset_at(c - 1), zone.offset_at(c));
        (before - after) % 3600 != 0 || (c + i64::from(after)).rem_euclid(3600) != 0
    };
    let at_midnight = |c: i64| {
        let before = c + i64::from(zone.offset_at(c - 1));
        let after = c + i64::from(zone.offset_at(c));
        before.div_euclid(86_400) != after.div_euclid(86_400)
            || before.rem_euclid(86_400) == 0
            || after.rem_euclid(86_400) == 0
    };
    if wildcard && changes.iter().any(|&c| odd_shift(c)) {
        return Some(Deviation::WildcardOddShift);
    }
    if changes.iter().any(|&c| at_midnight(c)) {
        return Some(Deviation::MidnightGap);
    }
    None
}

/// Whether `t` lies in the second pass of an interval repeated by a backward clock change.
fn second_pass(zone: &Zone, t: i64) -> bool {
    offset_changes(zone, t - 4 * 3600, t).into_iter().any(|c| {
        let back = i64::from(zone.offset_at(c - 1)) - i64::from(zone.offset_at(c));
        back > 0 && t < c + back
    })
}

fn offset_changes(zone: &Zone, from: i64, to: i64) -> Vec<i64> {
    let mut out = Vec::new();
    let mut t = from;
    while let Some(c) = zone.next_offset_change(t).filter(|c| *c <= to) {
        out.push(c);
        t = c;
    }
    out
}

/// The engine's times must equal the brute-force replay up to the last time either side gave.
fn check_against_debian(
    case: &Case,
    zone: &Zone,
    engine: &[i64],
    cronsim: &[i64],
    job: Option<&Job>,
) -> Result<(), String> {
    let job = job.ok_or("the reference cannot parse the expression")?;
    let last = latest(engine, cronsim, case.start);
    // The replay is minute by minute: bound its window to a week, or up to the first time the
    // engine and cronsim disagree on when that is later.
    let first_difference = (0..engine.len().max(cronsim.len()))
        .find(|&i| engine.get(i) != cronsim.get(i))
        .and_then(|i| {
            engine
                .get(i)
                .into_iter()
                .chain(cronsim.get(i))
                .copied()
                .min()
        })
        .unwrap_or(case.start);
    let until = last.min((case.start + 7 * 86_400).max(first_difference));
    let reference = debian_cron::fire_times(job, zone, case.start, N, until);
    let engine: Vec<i64> = engine.iter().copied().filter(|t| *t <= until).collect();
    if engine == reference {
        Ok(())
    } else {
        Err(format!(
            "Debian replay gives {}",
            show_times(&reference, zone)
        ))
    }
}

/// Expressions the contract rejects although cronsim accepts them.
fn contract_rejects(expr: &str) -> Option<&'static str> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if fields.len() == 6 {
        return Some("6 fields (cronsim reads a leading seconds field)");
    }
    if fields.len() == 5
        && fields[2]
            .split(',')
            .any(|item| item.contains('L') && item.contains('/'))
    {
        return Some("a step on L or LW (cronsim ignores it)");
    }
    None
}

/// Both day fields restricted (neither starts with `*`): Debian ORs them.
fn is_or_day_rule(expr: &str) -> bool {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    fields.len() == 5 && !fields[2].starts_with('*') && !fields[4].starts_with('*')
}

fn single_value_step_items(expr: &str) -> impl Iterator<Item = &str> {
    expr.split([' ', ',']).filter(|item| {
        item.split_once('/')
            .and_then(|(range, _)| range.split_once('-'))
            .is_some_and(|(a, b)| a.eq_ignore_ascii_case(b))
    })
}

fn has_single_value_step(expr: &str) -> bool {
    single_value_step_items(expr).next().is_some()
}

/// `A-A/S` written as `A`.
fn rewrite_single_value_steps(expr: &str) -> String {
    expr.split(' ')
        .map(|field| {
            field
                .split(',')
                .map(
                    |item| match item.split_once('/').and_then(|(r, _)| r.split_once('-')) {
                        Some((a, b)) if a.eq_ignore_ascii_case(b) => a.to_owned(),
                        _ => item.to_owned(),
                    },
                )
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn generate(rng: &mut StdRng) -> Case {
    let tz = *ZONES.choose(rng).expect("zones");
    let zone = Zone::from_name(tz).expect("test zones exist");
    let expr = if rng.gen_bool(0.08) {
        if rng.gen_bool(0.7) {
            (*INVALID.choose(rng).expect("invalid")).to_owned()
        } else {
            // Random tokens: mostly invalid, sometimes valid by chance.
            let tokens = [
                "*", "1", "L", "#", "/", "-", ",", "MON", "JAN", "7", "60", "W", "?", " ",
            ];
            (0..rng.gen_range(1..16))
                .map(|_| *tokens.choose(rng).expect("tokens"))
                .collect()
        }
    } else {
        [MINUTES, HOURS, DAYS_OF_MONTH, MONTHS, DAYS_OF_WEEK]
            .iter()
            .map(|choices| *choices.choose(rng).expect("choices"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let year_start = rng.gen_range(1_420_070_400..1_988_150_400); // 2015..2033
    let start = match zone.next_offset_change(year_start) {
        // Most starts within a few hours of a clock change, to the second.
        Some(change) if rng.gen_bool(0.75) => change + rng.gen_range(-6 * 3600..6 * 3600),
        _ => year_start,
    };
    // Some starts on a whole minute, the way a previous fire time is passed back in.
    let start = if rng.gen_bool(0.3) {
        start - start.rem_euclid(60)
    } else {
        start
    };
    Case { expr, tz, start }
}

fn show(result: &Result<Vec<i64>, hc_core::schedule::ScheduleError>, zone: &Zone) -> String {
    match result {
        Ok(times) => show_times(times, zone),
        Err(err) => format!("error: {err}"),
    }
}

fn show_times(times: &[i64], zone: &Zone) -> String {
    let shown: Vec<String> = times.iter().map(|t| rfc3339(*t, zone)).collect();
    format!("[{}]", shown.join(", "))
}

fn rfc3339(t: i64, zone: &Zone) -> String {
    let offset = FixedOffset::east_opt(zone.offset_at(t)).expect("zone offsets are valid");
    DateTime::from_timestamp(t, 0)
        .expect("fire times are in range")
        .with_timezone(&offset)
        .to_rfc3339_opts(SecondsFormat::Secs, false)
}

#[test]
fn contract_rejections_hold_even_where_cronsim_accepts() {
    let mut cronsim = CronSim::start();
    for expr in ["0 * * * * *", "* * * * * *", "0 0 L/2 * *"] {
        assert!(Cron::parse(expr).is_err(), "{expr}");
        assert!(
            matches!(
                cronsim.next(expr, "UTC", 1_700_000_000, 1),
                Answer::Times(_)
            ),
            "cronsim accepts {expr}"
        );
    }
    let err = Cron::parse("* * * * * *").unwrap_err();
    assert!(
        err.message().starts_with("expected 5 fields, got 6"),
        "{err}"
    );
}

#[test]
fn schedule_command_agrees_with_the_library() {
    let mut rng = StdRng::seed_from_u64(DEFAULT_SEED ^ 0x5c4e_d01e);
    let mut requests = vec![
        json!({"id": 17, "expr": "30 2 * * 1-5", "tz": "Europe/Riga", "start": "2021-03-28T01:30:00+02:00", "n": 10}),
        json!({"id": 18, "expr": "0 0 31 2 *", "tz": "UTC", "start": "2024-01-01T00:00:00Z", "n": 10}),
    ];
    let mut cases = Vec::new();
    for id in 0..400 {
        let case = generate(&mut rng);
        let zone = Zone::from_name(case.tz).expect("test zones exist");
        let n = rng.gen_range(0..12);
        requests.push(json!({"id": id, "expr": case.expr, "tz": case.tz, "start": rfc3339(case.start, &zone), "n": n}));
        cases.push((case, n));
    }
    let answers = run_schedule_command(&requests);
    assert_eq!(answers.len(), requests.len());

    assert_eq!(answers[0]["id"], 17);
    assert_eq!(answers[0]["next"][0], "2021-03-29T02:30:00+03:00");
    assert_eq!(answers[0]["next"].as_array().map(Vec::len), Some(10));
    assert_eq!(answers[1]["id"], 18);
    let error = answers[1]["error"]
        .as_str()
        .expect("an error for 0 0 31 2 *");
    assert!(error.starts_with("no fire time within 50 years"), "{error}");

    for ((case, n), answer) in cases.iter().zip(&answers[2..]) {
        let zone = Zone::from_name(case.tz).expect("test zones exist");
        let start = DateTime::from_timestamp(case.start, 0).expect("in range");
        let expected = match Schedule::parse(ScheduleKind::Cron, &case.expr, case.tz) {
            Err(err) => json!({"id": answer["id"], "error": err.message()}),
            Ok(schedule) => {
                let times: Vec<String> = schedule
                    .iter_after(start)
                    .take(*n)
                    .map(|t| rfc3339(t.timestamp(), &zone))
                    .collect();
                if times.is_empty() {
                    // Also for n = 0: the command reports an empty answer as an exhausted schedule.
                    json!({"id": answer["id"], "error": "no fire time within 50 years"})
                } else {
                    json!({"id": answer["id"], "next": times})
                }
            }
        };
        assert_eq!(answer, &expected, "{case:?} n={n}");
    }
}

/// Runs the real `hc-sendalerts schedule` binary (built next to this test binary) on `requests`.
fn run_schedule_command(requests: &[Value]) -> Vec<Value> {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/it-<hash> → target/<profile>/hc-sendalerts
    let binary = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary lives in target/<profile>/deps")
        .join("hc-sendalerts");
    assert!(
        binary.exists(),
        "{} is missing: build hc-sendalerts",
        binary.display()
    );
    let mut child = Command::new(&binary)
        .arg("schedule")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start hc-sendalerts schedule");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input: String = requests.iter().map(|r| format!("{r}\n")).collect();
    // Write from another thread: the answers could fill the stdout pipe before all input is in.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let answers: Vec<Value> = stdout
        .lines()
        .map(|line| {
            serde_json::from_str(&line.expect("read an answer")).expect("an answer is JSON")
        })
        .collect();
    writer
        .join()
        .expect("writer thread")
        .expect("write requests");
    assert!(child.wait().expect("wait for the command").success());
    answers
}

/// The latest fire time either side gave, or `start` when neither gave one.
fn latest(engine: &[i64], cronsim: &[i64], start: i64) -> i64 {
    engine.iter().chain(cronsim).copied().max().unwrap_or(start)
}
