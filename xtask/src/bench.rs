//! Benchmarks that print numbers; they assert nothing.

mod alerts;
mod cpu;
mod load;
mod ping;

pub use alerts::alerts;
pub use ping::ping;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

/// How many requests `bench schedule` sends; the foundation issue's target is 20,000 in under 5 s.
const SCHEDULE_REQUESTS: usize = 20_000;

/// Times `hc-sendalerts schedule` (release build) answering generated requests, and measures
/// the CPU time it spent (user + system, from this process's reaped children).
pub fn schedule(target: &Path) -> anyhow::Result<()> {
    crate::run(crate::cargo().args(["build", "--release", "--quiet", "-p", "hc-sendalerts"]))?;
    let input = schedule_requests(SCHEDULE_REQUESTS);
    let binary = target.join("release/hc-sendalerts");
    let cpu_before = cpu::reaped_children()?;
    let started = Instant::now();
    let mut child = Command::new(&binary)
        .arg("schedule")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    let mut stdin = child.stdin.take().context("no stdin")?;
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output()?;
    let elapsed = started.elapsed();
    let cpu = cpu::reaped_children()? - cpu_before;
    writer.join().expect("writer thread does not panic")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let answers = text.lines().count();
    let errors = text.lines().filter(|l| l.contains("\"error\"")).count();
    let secs = elapsed.as_secs_f64();
    println!("bench schedule: {answers} requests ({errors} with errors) in {secs:.3} s");
    println!(
        "bench schedule: {:.0} requests/s; {:.0} requests per CPU second ({cpu:.2} s of CPU)",
        answers as f64 / secs,
        answers as f64 / cpu
    );
    if answers != SCHEDULE_REQUESTS {
        bail!("expected {SCHEDULE_REQUESTS} answers, got {answers}");
    }
    Ok(())
}

/// A deterministic mix of cron and OnCalendar requests, starts spread around DST changes.
fn schedule_requests(count: usize) -> String {
    const CRON: &[&str] = &[
        "*/5 * * * *",
        "0 * * * *",
        "30 2 * * *",
        "15 1,2,3 * * *",
        "0 0 * * MON-FRI",
        "0 9 1 * *",
        "0 0 L * *",
        "0 18 * * 5L",
        "0 6 * * MON#2",
        "0 0 */100,1-7 * MON",
        "0 12 LW * *",
        "*/10 1-3 * * *",
        "0 0 29 2 *",
        "45 23 * * SUN",
        "0 0 1 JAN,JUL *",
    ];
    const ONCALENDAR: &[&str] = &[
        "daily",
        "hourly",
        "Mon..Fri 09:00",
        "*-*-* 02:30:00",
        "*:0/15",
        "weekly",
        "*-*~01 18:00",
        "Sat *-*-1..7 03:00",
        "monthly\n12:00 UTC",
    ];
    const ZONES: &[&str] = &[
        "UTC",
        "Europe/Dublin",
        "America/New_York",
        "Australia/Lord_Howe",
        "America/Santiago",
        "Pacific/Chatham",
        "Europe/Riga",
        "Asia/Kolkata",
    ];
    const STARTS: &[&str] = &[
        "2021-03-14T06:30:00Z",
        "2021-11-07T05:30:00Z",
        "2021-03-28T00:30:00Z",
        "2021-10-31T00:30:00Z",
        "2021-04-03T15:00:00Z",
        "2021-10-02T15:00:00Z",
        "2022-04-03T02:00:00Z",
        "2022-09-11T03:00:00Z",
        "2024-02-28T12:00:00Z",
    ];
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: usize| {
        rng = rng
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((rng >> 33) as usize) % n
    };
    let mut out = String::new();
    for id in 0..count {
        let (kind, expr) = if next(4) == 0 {
            ("oncalendar", ONCALENDAR[next(ONCALENDAR.len())])
        } else {
            ("cron", CRON[next(CRON.len())])
        };
        let request = format!(
            "{{\"id\": {id}, \"kind\": \"{kind}\", \"expr\": {expr:?}, \"tz\": \"{}\", \"start\": \"{}\", \"n\": 10}}\n",
            ZONES[next(ZONES.len())],
            STARTS[next(STARTS.len())],
        );
        out.push_str(&request);
    }
    out
}
