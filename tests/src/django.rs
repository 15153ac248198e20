//! Django's signing module as an oracle: what the Django app would sign, for the same value,
//! secret and time, so links and bounce ids built in Rust are checked against the real thing.
//!
//! Django comes from the test venv (see [`crate::venv`]); each call is one short Python run.

use std::process::Command;

use anyhow::{Context, bail};

/// Runs a Python snippet that configures Django with `secret_key` and freezes `time.time()` at
/// `timestamp`, then prints one line; returns that line.
fn run(secret_key: &str, timestamp: u64, body: &str, args: &[&str]) -> anyhow::Result<String> {
    let script = format!(
        r#"
import sys, time
from django.conf import settings
settings.configure(SECRET_KEY=sys.argv[1])
time.time = lambda: float(sys.argv[2])
args = sys.argv[3:]
{body}
"#
    );
    let output = Command::new(crate::venv::python())
        .arg("-c")
        .arg(script)
        .arg(secret_key)
        .arg(timestamp.to_string())
        .args(args)
        .output()
        .context("cannot run the Django oracle")?;
    if !output.status.success() {
        bail!(
            "the Django oracle failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

/// `TimestampSigner(salt=salt).sign(value)` at Unix time `timestamp`.
pub fn timestamp_sign(
    secret_key: &str,
    salt: &str,
    value: &str,
    timestamp: u64,
) -> anyhow::Result<String> {
    run(
        secret_key,
        timestamp,
        "from django.core.signing import TimestampSigner\n\
         print(TimestampSigner(salt=args[0]).sign(args[1]))",
        &[salt, value],
    )
}

/// `salted_hmac(key_salt, value, algorithm="sha256").hexdigest()` with the configured secret.
pub fn salted_hmac_hex(secret_key: &str, key_salt: &str, value: &str) -> anyhow::Result<String> {
    run(
        secret_key,
        0,
        "from django.utils.crypto import salted_hmac\n\
         print(salted_hmac(args[0], args[1], algorithm='sha256').hexdigest())",
        &[key_salt, value],
    )
}
