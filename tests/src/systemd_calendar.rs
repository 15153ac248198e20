//! The OnCalendar oracle: `systemd-analyze calendar` (Debian 12, systemd 252), run as a process.
//!
//! Several expressions share one invocation (same zone, same base time); the answers are matched
//! back to the expressions by their text, which systemd echoes on stdout ("Original form:") and
//! quotes in its error messages on stderr.

use std::collections::HashMap;
use std::process::Command;

use chrono::NaiveDateTime;

/// What systemd says about one expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// "Failed to parse calendar specification": the expression is invalid.
    Invalid(String),
    /// The next fire times (Unix seconds, floored to whole seconds as systemd prints them),
    /// then why the list ended early, if it did (e.g. "infinite loop in calendar calculation").
    Times {
        /// Fire times in order, at most `iterations` of them; fewer means "never" after the last.
        times: Vec<i64>,
        /// A calculation error that cut the list short.
        error: Option<String>,
    },
}

/// Asks systemd for up to `iterations` fire times after `base` of each expression, with the
/// process's `TZ` set to `tz` (the zone expressions without their own zone are read in).
///
/// Panics when `systemd-analyze` cannot be run or prints something unexpected.
pub fn next_elapses(
    tz: &str,
    base: i64,
    iterations: usize,
    exprs: &[String],
) -> HashMap<String, Verdict> {
    let mut answers = HashMap::new();
    // Keep command lines well below the kernel's limit.
    for batch in exprs.chunks(200) {
        let output = Command::new("systemd-analyze")
            .arg("calendar")
            .arg(format!("--base-time=@{base}"))
            .arg(format!("--iterations={iterations}"))
            .args(batch)
            .env("TZ", tz)
            .env("SYSTEMD_COLORS", "0")
            .env("SYSTEMD_PAGER", "")
            .output()
            .expect("systemd-analyze runs (Debian package systemd)");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let mut errors = HashMap::new();
        parse_stderr(&stderr, &mut errors);
        let blocks = parse_stdout(&stdout);
        // systemd prints one block per accepted expression, in argument order.
        let accepted: Vec<&String> = batch
            .iter()
            .filter(|e| {
                !errors.contains_key(&format!("parse:{e}"))
                    && !errors.contains_key(&format!("next:{e}"))
            })
            .collect();
        assert_eq!(
            blocks.len(),
            accepted.len(),
            "systemd-analyze printed {} blocks for {} accepted expressions:\n{stdout}\n{stderr}",
            blocks.len(),
            accepted.len()
        );
        for (expr, times) in accepted.into_iter().zip(blocks) {
            answers.insert(expr.clone(), Verdict::Times { times, error: None });
        }
        // A failed calculation suppresses the whole block, so no times are known for it.
        for (key, why) in errors {
            if let Some(expr) = key.strip_prefix("parse:") {
                answers.insert(expr.to_owned(), Verdict::Invalid(why));
            } else if let Some(expr) = key.strip_prefix("next:") {
                let times = Vec::new();
                answers.insert(
                    expr.to_owned(),
                    Verdict::Times {
                        times,
                        error: Some(why),
                    },
                );
            }
        }
    }
    answers
}

/// The fire times of each block of output, in order. A block starts with "Original form:" (or
/// "Normalized form:" when systemd omits an original identical to it).
fn parse_stdout(stdout: &str) -> Vec<Vec<i64>> {
    let mut blocks: Vec<Vec<i64>> = Vec::new();
    let mut after_original = false;
    // The local line comes first; its "(in UTC)" twin (absent when the zone is UTC) wins.
    let mut pending: Option<i64> = None;
    for line in stdout.lines() {
        let line = line.trim_start();
        let starts_block = line.starts_with("Original form: ")
            || (line.starts_with("Normalized form: ") && !after_original);
        after_original = line.starts_with("Original form: ");
        if starts_block {
            if let (Some(t), Some(b)) = (pending.take(), blocks.last_mut()) {
                b.push(t);
            }
            blocks.push(Vec::new());
        } else if let Some(rest) = line.strip_prefix("Next elapse: ").or_else(|| {
            line.strip_prefix("Iter. #")
                .and_then(|r| r.split_once(": ").map(|x| x.1))
        }) {
            if let (Some(t), Some(b)) = (pending.take(), blocks.last_mut()) {
                b.push(t);
            }
            if rest != "never" {
                pending = parse_utc_line(rest);
            }
        } else if let Some(rest) = line.strip_prefix("(in UTC): ") {
            let t = parse_utc_line(rest).unwrap_or_else(|| panic!("bad UTC line {line:?}"));
            pending = None;
            if let Some(b) = blocks.last_mut() {
                b.push(t);
            }
        }
    }
    if let (Some(t), Some(b)) = (pending.take(), blocks.last_mut()) {
        b.push(t);
    }
    blocks
}

/// "Sun 2021-03-28 01:00:00 UTC" → Unix seconds; `None` when the zone shown is not UTC.
fn parse_utc_line(text: &str) -> Option<i64> {
    let mut parts = text.split_whitespace();
    let _weekday = parts.next()?;
    let date = parts.next()?;
    let time = parts.next()?;
    if parts.next()? != "UTC" {
        return None;
    }
    let dt = NaiveDateTime::parse_from_str(&format!("{date} {time}"), "%Y-%m-%d %H:%M:%S").ok()?;
    Some(dt.and_utc().timestamp())
}

/// Errors by kind and expression: `parse:EXPR` (rejected) and `next:EXPR` (calculation failed).
fn parse_stderr(stderr: &str, errors: &mut HashMap<String, String>) {
    for line in stderr.lines() {
        for (prefix, kind) in [
            ("Failed to parse calendar specification '", "parse"),
            ("Failed to determine next elapse for '", "next"),
        ] {
            if let Some((expr, why)) = line.strip_prefix(prefix).and_then(|r| r.rsplit_once("': "))
            {
                errors.insert(format!("{kind}:{expr}"), why.to_owned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_blocks_and_errors() {
        let stdout = "  Original form: daily\nNormalized form: *-*-* 00:00:00\n    Next elapse: Mon 2021-03-29 00:00:00 IST\n       (in UTC): Sun 2021-03-28 23:00:00 UTC\n       From now: x\n       Iter. #2: Tue 2021-03-30 00:00:00 IST\n       (in UTC): Mon 2021-03-29 23:00:00 UTC\n\nNormalized form: *-*-* *:00:00 UTC\n    Next elapse: Sun 2021-03-28 02:00:00 UTC\n       From now: x\n\n  Original form: 2020-01-01\nNormalized form: 2020-01-01 00:00:00\n    Next elapse: never\n";
        assert_eq!(
            parse_stdout(stdout),
            vec![
                vec![1_616_972_400, 1_617_058_800],
                vec![1_616_896_800],
                vec![]
            ]
        );
        let mut errors = HashMap::new();
        parse_stderr(
            "Failed to parse calendar specification 'bo'gus': Invalid argument\nFailed to determine next elapse for 'x': Resource deadlock avoided\n",
            &mut errors,
        );
        assert_eq!(errors["parse:bo'gus"], "Invalid argument");
        assert_eq!(errors["next:x"], "Resource deadlock avoided");
    }
}
