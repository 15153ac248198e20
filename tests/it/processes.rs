//! Every binary as a process: `--help`, `--version`, and services that do not exist yet refusing to run.

use std::process::Command;

use hc_tests::binaries::{BINARIES, binary};

#[test]
fn every_binary_answers_help_and_version() {
    for name in BINARIES {
        let help = Command::new(binary(name)).arg("--help").output().unwrap();
        assert!(help.status.success(), "{name} --help: {help:?}");
        let text = String::from_utf8(help.stdout).unwrap();
        assert!(
            text.contains("Usage:"),
            "{name} --help says how to use it: {text}"
        );

        let version = Command::new(binary(name))
            .arg("--version")
            .output()
            .unwrap();
        assert!(version.status.success(), "{name} --version: {version:?}");
        let text = String::from_utf8(version.stdout).unwrap();
        assert_eq!(text.trim(), format!("{name} {}", env!("CARGO_PKG_VERSION")));
    }
}

#[test]
fn services_not_built_yet_say_so_and_fail() {
    for name in ["hc-prune", "hc-backup", "hc-metrics"] {
        let help = Command::new(binary(name)).arg("--help").output().unwrap();
        let text = String::from_utf8(help.stdout).unwrap();
        assert!(
            text.contains("NOT IMPLEMENTED YET"),
            "{name} --help: {text}"
        );

        let run = Command::new(binary(name))
            .env_clear()
            .env("RUST_LOG", "info")
            .env("DB", "postgres")
            .output()
            .unwrap();
        assert_eq!(
            run.status.code(),
            Some(1),
            "{name} exits 1 when asked to run"
        );
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains("not implemented yet"), "{name}: {stderr}");
    }
}

#[test]
fn unknown_arguments_are_usage_errors() {
    let out = Command::new(binary("hc-prune"))
        .arg("--frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--frobnicate"));
}

#[test]
fn a_bad_variable_exits_78_naming_it() {
    for name in BINARIES {
        let run = Command::new(binary(name))
            .env_clear()
            .env("DB", "postgres")
            .env("DB_PORT", "54x32")
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(78), "{name}: {run:?}");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(
            stderr.contains("DB_PORT"),
            "{name} names the variable: {stderr}"
        );
    }
}

#[test]
fn sqlite_configuration_is_refused() {
    // Healthchecks falls back to SQLite without DB; the services must not run against another database.
    let run = Command::new(binary("hc-prune"))
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(78), "{run:?}");
    assert!(String::from_utf8_lossy(&run.stderr).contains("DB"));
}
