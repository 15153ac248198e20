//! Servers whose lifetime is tied to the test process: a small `sh` supervisor runs the server and
//! stops it when its stdin (a pipe from the test process) closes.
//!
//! The pipe closes when the handle is dropped, and also when the test process exits or crashes,
//! so no server outlives a run. Used by [`crate::postgres`] and [`crate::smtp`].

use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

use anyhow::Context;
use std::os::unix::process::CommandExt;

/// The supervisor: runs the server (`$3…`) with its log in `$1/log`, sends it signal `$2` when
/// stdin closes, then removes `$1` unless `$1/keep` exists (a stop meant to be followed by a
/// restart on the same directory). The server's log goes to stderr if it failed.
///
/// Background jobs of a non-interactive shell get `/dev/null` as stdin unless redirected
/// explicitly, hence `<&3`. The watcher job must not hold the supervisor's stderr: the test reads
/// it to the end when the server failed, and the watcher lives until the handle is dropped.
const SCRIPT: &str = r#"
exec 3<&0
base="$1"; signal="$2"; shift 2
"$@" </dev/null >>"$base/log" 2>&1 &
server=$!
( cat <&3 >/dev/null; kill -s "$signal" "$server" ) 2>/dev/null &
exec 3<&-
wait "$server"; status=$?
if [ "$status" -ne 0 ]; then cat "$base/log" >&2; fi
if [ -e "$base/keep" ]; then rm -f "$base/keep"; else rm -rf "$base"; fi
exit "$status"
"#;

/// Starts `server` (a program and its arguments) under the supervisor, with its log in
/// `base/log`; it gets `signal` (a name for `kill -s`, such as `INT` or `TERM`) when the returned
/// stdin is dropped, and `base` is removed once it has stopped.
///
/// The supervisor gets its own process group: a Ctrl-C meant for the test run must not kill it
/// before it has cleaned up.
pub fn spawn_supervised(
    name: &str,
    base: &Path,
    signal: &str,
    server: &[&std::ffi::OsStr],
) -> anyhow::Result<(Child, ChildStdin)> {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(SCRIPT)
        .arg(name)
        .arg(base)
        .arg(signal)
        .args(server)
        .current_dir(base)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start the {name} supervisor"))?;
    let stdin = child.stdin.take().context("supervisor has no stdin")?;
    Ok((child, stdin))
}
