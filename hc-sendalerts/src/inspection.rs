//! `hc-sendalerts schedule`: the JSON-lines inspection command of `cron-semantics.md`.
//!
//! One request per input line, one answer per output line, in order; a bad line gets an
//! `error` answer and the command goes on. Other tools replay whole corpora through it.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use chrono::{DateTime, FixedOffset, NaiveDateTime, SecondsFormat, Utc};
use hc_core::schedule::{Schedule, ScheduleKind, Zone, zone::LocalInstants};
use serde_json::{Value, json};

/// The largest `n` one request may ask for, so one line cannot keep the command busy for long.
pub const MAX_N: u64 = 10_000;

/// The `n` used when a request leaves it out.
const DEFAULT_N: u64 = 10;

/// Answers every request line on stdin; exit status 1 only if stdin or stdout fails.
pub fn answer_stdin() -> ExitCode {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    match answer_lines(stdin.lock(), stdout.lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(err) => {
            // Logging is not set up for this command: stderr is its only channel.
            eprintln!("hc-sendalerts schedule: {err}");
            ExitCode::from(hc_core::exit::FAILURE)
        }
    }
}

/// Reads request lines from `input` and writes one answer line per request to `output`.
pub fn answer_lines(mut input: impl BufRead, output: impl Write) -> std::io::Result<()> {
    let mut output = std::io::BufWriter::new(output);
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&line);
        if text.trim().is_empty() {
            continue;
        }
        let answer = answer(&text);
        serde_json::to_writer(&mut output, &answer)?;
        output.write_all(b"\n")?;
        // Flush when no more input is buffered, so an interactive user sees each answer at once.
        if input.fill_buf()?.is_empty() {
            output.flush()?;
        }
    }
    output.flush()
}

/// The answer to one request line.
pub fn answer(line: &str) -> Value {
    let request: Value = match serde_json::from_str(line) {
        Ok(value) => value,
        Err(err) => return json!({"id": Value::Null, "error": format!("malformed request: {err}")}),
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    match next_times(&request) {
        // Each engine has its horizon: cron's 50 years, OnCalendar's systemd's last year.
        Ok((ScheduleKind::Cron, next)) if next.is_empty() => {
            json!({"id": id, "error": "no fire time within 50 years"})
        }
        Ok((ScheduleKind::OnCalendar, next)) if next.is_empty() => {
            json!({"id": id, "error": "no fire time before 2200 (where systemd stops searching)"})
        }
        Ok((_, next)) => json!({"id": id, "next": next}),
        Err(error) => json!({"id": id, "error": error}),
    }
}

fn next_times(request: &Value) -> Result<(ScheduleKind, Vec<String>), String> {
    let Some(object) = request.as_object() else {
        return Err("malformed request: not a JSON object".into());
    };
    let expr = match object.get("expr") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err("\"expr\" must be a string".into()),
        None => return Err("missing \"expr\"".into()),
    };
    let tz = match object.get("tz") {
        Some(Value::String(s)) => s.as_str(),
        None | Some(Value::Null) => "UTC",
        Some(_) => return Err("\"tz\" must be a string".into()),
    };
    let kind = match object.get("kind") {
        None | Some(Value::Null) => ScheduleKind::Cron,
        Some(Value::String(s)) if s == "cron" => ScheduleKind::Cron,
        Some(Value::String(s)) if s == "oncalendar" => ScheduleKind::OnCalendar,
        Some(other) => {
            return Err(format!(
                "unknown kind {other}: use \"cron\" or \"oncalendar\""
            ));
        }
    };
    let n = match object.get("n") {
        None | Some(Value::Null) => DEFAULT_N,
        Some(value) => match value.as_u64() {
            Some(n) if n <= MAX_N => n,
            _ => return Err(format!("\"n\" must be an integer from 0 to {MAX_N}")),
        },
    };
    let schedule = Schedule::parse(kind, expr, tz).map_err(|err| err.to_string())?;
    let start = match object.get("start") {
        Some(Value::String(s)) => parse_start(s, schedule.zone())?,
        None | Some(Value::Null) => Utc::now(),
        Some(_) => return Err("\"start\" must be an RFC 3339 string".into()),
    };
    let zone = schedule.zone();
    let next = schedule
        .iter_after(start)
        .take(usize::try_from(n).unwrap_or(usize::MAX))
        .map(|t| format_in_zone(t, zone))
        .collect();
    Ok((kind, next))
}

/// Parses an RFC 3339 start; a time without an offset is read as wall time in `zone`
/// (its first occurrence when the wall time happens twice).
fn parse_start(text: &str, zone: &Zone) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f"))
        .map_err(|_| format!("\"start\" is not an RFC 3339 time: {text:?}"))?;
    let local = naive.and_utc().timestamp();
    let t = match zone.from_local(local) {
        LocalInstants::Single(t) | LocalInstants::Ambiguous(t, _) => t,
        LocalInstants::None => {
            return Err(format!(
                "\"start\" {text:?} does not exist in {}",
                zone.name()
            ));
        }
    };
    DateTime::from_timestamp(t, naive.and_utc().timestamp_subsec_nanos())
        .ok_or_else(|| format!("\"start\" is out of range: {text:?}"))
}

/// RFC 3339 with the zone's offset at that instant, e.g. `2021-03-29T02:30:00+03:00`.
pub fn format_in_zone(t: DateTime<Utc>, zone: &Zone) -> String {
    let offset = FixedOffset::east_opt(zone.offset_at(t.timestamp()))
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero is a valid offset"));
    t.with_timezone(&offset)
        .to_rfc3339_opts(SecondsFormat::Secs, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(line: &str, expected: Value) {
        assert_eq!(answer(line), expected);
    }

    #[test]
    fn malformed_json_gets_an_error_line() {
        let got = answer("{not json");
        assert_eq!(got["id"], Value::Null);
        assert!(
            got["error"]
                .as_str()
                .unwrap()
                .starts_with("malformed request")
        );
    }

    #[test]
    fn missing_expr() {
        check(
            r#"{"id": 3}"#,
            json!({"id": 3, "error": "missing \"expr\""}),
        );
    }

    #[test]
    fn unknown_kind() {
        let got = answer(r#"{"id": 4, "expr": "* * * * *", "kind": "at"}"#);
        assert!(got["error"].as_str().unwrap().contains("unknown kind"));
    }

    #[test]
    fn n_is_bounded() {
        let got = answer(r#"{"id": 5, "expr": "* * * * *", "n": 10000000}"#);
        assert!(got["error"].as_str().unwrap().contains("\"n\""));
    }

    #[test]
    fn unknown_zone() {
        let got = answer(r#"{"id": 6, "expr": "* * * * *", "tz": "Mars/Base"}"#);
        assert!(
            got["error"].as_str().unwrap().contains("time zone"),
            "{got}"
        );
    }

    #[test]
    fn blank_lines_are_skipped_and_order_is_kept() {
        let input = b"{\"id\":1,\"expr\":1}\n\n{\"id\":2}\n";
        let mut out = Vec::new();
        answer_lines(&input[..], &mut out).unwrap();
        let lines: Vec<Value> = out
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["id"], 1);
        assert_eq!(lines[1]["id"], 2);
    }

    #[test]
    fn each_engine_says_where_its_search_ended() {
        check(
            r#"{"id": 7, "expr": "0 0 1 1 *", "start": "2024-01-01T00:00:00Z", "n": 1}"#,
            json!({"id": 7, "next": ["2025-01-01T00:00:00+00:00"]}),
        );
        check(
            r#"{"id": 8, "expr": "2020-01-01", "kind": "oncalendar", "start": "2024-01-01T00:00:00Z"}"#,
            json!({"id": 8, "error": "no fire time before 2200 (where systemd stops searching)"}),
        );
        // OnCalendar searches as far as systemd does.
        check(
            r#"{"id": 9, "expr": "2100-02-28 00:00", "kind": "oncalendar", "start": "2024-01-01T00:00:00Z"}"#,
            json!({"id": 9, "next": ["2100-02-28T00:00:00+00:00"]}),
        );
    }

    #[test]
    fn formats_with_the_zones_offset() {
        let riga = Zone::from_name("Europe/Riga").unwrap();
        let t = DateTime::parse_from_rfc3339("2021-03-29T02:30:00+03:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(format_in_zone(t, &riga), "2021-03-29T02:30:00+03:00");
        assert_eq!(format_in_zone(t, &Zone::utc()), "2021-03-28T23:30:00+00:00");
    }
}
