//! The Python library cronsim (Healthchecks' cron engine) as an oracle, in one long-lived process.
//!
//! Requests and answers are JSON lines over the child's stdin and stdout, one at a time, so
//! thousands of cases cost one interpreter start-up. The child exits when its stdin closes.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{Value, json};

/// The Python side: reads `{"expr", "tz", "start", "n"}`, answers `{"next": [unix seconds]}`,
/// `{"error": "..."}` (CronSimError) or `{"crash": "..."}` (any other exception).
const SCRIPT: &str = r#"
import sys, json
from datetime import datetime
from zoneinfo import ZoneInfo
from cronsim import CronSim, CronSimError
for line in sys.stdin:
    req = json.loads(line)
    try:
        it = CronSim(req["expr"], datetime.fromtimestamp(req["start"], ZoneInfo(req["tz"])))
        out = []
        for _ in range(req["n"]):
            try:
                out.append(int(next(it).timestamp()))
            except StopIteration:
                break
        ans = {"next": out}
    except CronSimError as e:
        ans = {"error": str(e)}
    except Exception as e:
        ans = {"crash": repr(e)}
    sys.stdout.write(json.dumps(ans) + "\n")
    sys.stdout.flush()
"#;

/// What cronsim says about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Fire times (Unix seconds), fewer than asked when cronsim hit its 50-year limit.
    Times(Vec<i64>),
    /// cronsim rejected the expression (`CronSimError`).
    Rejected(String),
    /// cronsim raised something else (a bug on its side for odd input).
    Crashed(String),
}

/// A running cronsim process.
pub struct CronSim {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl CronSim {
    /// Starts the oracle with the test venv's Python (see [`crate::venv::python`]).
    pub fn start() -> CronSim {
        let mut child = Command::new(crate::venv::python())
            .args(["-c", SCRIPT])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the cronsim oracle");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        CronSim {
            child,
            stdin,
            stdout,
        }
    }

    /// The first `n` fire times of `expr` in zone `tz` strictly after `start` (Unix seconds).
    pub fn next(&mut self, expr: &str, tz: &str, start: i64, n: usize) -> Answer {
        let request = json!({"expr": expr, "tz": tz, "start": start, "n": n});
        writeln!(self.stdin, "{request}").expect("write to cronsim");
        self.stdin.flush().expect("flush to cronsim");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read from cronsim");
        let answer: Value = serde_json::from_str(&line)
            .unwrap_or_else(|err| panic!("cronsim answered {line:?}: {err}"));
        if let Some(times) = answer["next"].as_array() {
            Answer::Times(times.iter().filter_map(Value::as_i64).collect())
        } else if let Some(error) = answer["error"].as_str() {
            Answer::Rejected(error.to_owned())
        } else {
            Answer::Crashed(answer["crash"].to_string())
        }
    }
}

impl Drop for CronSim {
    fn drop(&mut self) {
        // The child would also stop when its stdin closes; kill and reap it so none outlives the test.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
