//! `cargo xtask`: the project's automation — the CI gate, the test suite with its oracles, benchmarks and fuzzing.
//!
//! `cargo xtask ci` is exactly what `.ci/run` runs after installing system packages.

#![allow(
    clippy::disallowed_methods,
    clippy::print_stdout,
    reason = "a developer tool: it reads the developer's environment and prints results"
)]

mod bench;
mod dev;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The cargo-fuzz crates (outside the workspace) and the targets each holds.
const FUZZ_CRATES: &[(&str, &[&str])] = &[
    ("hc-core", &["cron", "oncalendar"]),
    ("hchk-ping", &["ping_route"]),
];

/// Python packages the oracle tests need, pinned to the versions the references were checked with.
const PYTHON_PACKAGES: &[&str] = &["cronsim==2.7", "Django==5.2.8"];

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  ci                 formatting, clippy, the fuzz targets' build, then the whole test suite (what CI runs)
  dev [--no-build]   a throw-away PostgreSQL with a demo project and hchk-ping on free loopback
                     ports, with curl lines to try; Ctrl-C stops both and removes the data
  test [ARGS...]     create the oracle venv if needed, then `cargo test --workspace ARGS...`
  bench schedule     time `hc-sendalerts schedule` on 20,000 generated requests (release build);
                     prints requests/s and requests per CPU second
  bench ping [SECS [PHASES]]
                     hchk-ping (release build) against a durable PostgreSQL (fsync on) started in
                     $CARGO_TARGET_DIR/bench-ping (/var/tmp if the postgres user cannot enter
                     that, as under /root), 300 checks, SECS per phase (default 10):
                     (a) baseline, one transaction per ping (HCHK_PING_WRITERS=1 BATCH_MAX=1) and
                     (b) defaults, under 200 keep-alive clients; (c) defaults at a steady 5,000
                     pings/s (open loop); (d) defaults with a 50 ms round trip to PostgreSQL
                     (delay proxy, 1,000 clients). Prints committed pings/s (counted in api_ping),
                     p50/p99 latency, peak RSS and CPU µs per committed ping (hchk-ping /
                     PostgreSQL / total) as a markdown table; takes about a minute.
                     PHASES picks some of abcd (default all); HCHK_PING_* variables set in the
                     environment are passed to hchk-ping (the baseline keeps its two)
  bench alerts [SCALE]
                     hc-sendalerts (release build) against a durable PostgreSQL (fsync on) started
                     in $CARGO_TARGET_DIR/bench-alerts (/var/tmp if the postgres user cannot enter
                     that; the sender's log is kept in the former), 100,000 checks in 500 projects
                     with one webhook channel each, pointing at a local sink: (a) 1,000 checks due
                     at one instant D, p50/p99/max of webhook arrival - D; (b) the sender's idle
                     CPU over 20 s; (c) 20,000 checks down at once, notifications/s from the first
                     webhook to the last; in (a) and (c) CPU ms per check flipped and notified
                     (hc-sendalerts / PostgreSQL / total). Prints a markdown table with the
                     targets; a few minutes.
                     SCALE divides the counts (10 for a quick run; default 1); with
                     HC_BENCH_STATEMENTS=1 it also prints the statements that took the most time;
                     SENDALERTS_* (but the metrics address) and DB_POOL_SIZE set in the
                     environment are passed to hc-sendalerts
  fuzz TARGET [SECS] run a cargo-fuzz target (cron, oncalendar, ping_route) for SECS seconds (default 60)

The benches' CPU time is utime + stime from /proc/<pid>/stat of the service and of every process
of the bench's PostgreSQL cluster (schedule: of the reaped child), from the start to the end of
each phase. Rates depend on the machine and on what else runs on it; CPU per unit of work is the
figure to compare between runs.

environment:
  CARGO_TARGET_DIR   build directory (default: target/ in the workspace); the venv lives in it too";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["ci"] => ci(),
        ["test", rest @ ..] => test(rest),
        ["dev"] => dev::dev(&target_dir(), true),
        ["dev", "--no-build"] => dev::dev(&target_dir(), false),
        ["bench", "schedule"] => bench::schedule(&target_dir()),
        ["bench", "ping"] => bench::ping(&target_dir(), None, None),
        ["bench", "ping", secs] => bench::ping(&target_dir(), Some(secs), None),
        ["bench", "ping", secs, phases] => bench::ping(&target_dir(), Some(secs), Some(phases)),
        ["bench", "alerts"] => bench::alerts(&target_dir(), None),
        ["bench", "alerts", scale] => bench::alerts(&target_dir(), Some(scale)),
        ["fuzz", target] => fuzz(target, "60"),
        ["fuzz", target, secs] => fuzz(target, secs),
        ["help" | "--help" | "-h"] | [] => {
            eprintln!("{USAGE}");
            Ok(())
        }
        _ => bail!("unknown command {args:?}\n\n{USAGE}"),
    }
}

fn ci() -> anyhow::Result<()> {
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The fuzz crates are outside the workspace; checking them keeps the targets compiling.
    for (krate, _) in FUZZ_CRATES {
        run(cargo()
            .args(["check", "--quiet", "--manifest-path"])
            .arg(format!("{krate}/fuzz/Cargo.toml")))?;
    }
    test(&[])
}

fn test(extra: &[&str]) -> anyhow::Result<()> {
    let venv = ensure_venv(&target_dir())?;
    let oracle_venv = ensure_oracle_venv(&target_dir())?;
    // Process tests run the real binaries; `cargo test` alone does not build them all.
    run(cargo().args(["build", "--workspace", "--bins"]))?;
    run(cargo()
        .args(["test", "--workspace"])
        .args(extra)
        .env("HC_TEST_VENV", &venv)
        .env("HC_ORACLE_VENV", &oracle_venv))
}

fn fuzz(target: &str, secs: &str) -> anyhow::Result<()> {
    let Some((krate, _)) = FUZZ_CRATES
        .iter()
        .find(|(_, targets)| targets.contains(&target))
    else {
        let known: Vec<&str> = FUZZ_CRATES
            .iter()
            .flat_map(|(_, t)| t.iter().copied())
            .collect();
        bail!(
            "unknown fuzz target {target:?}; known: {}",
            known.join(", ")
        );
    };
    run(cargo()
        .args([
            "fuzz",
            "run",
            target,
            "--",
            &format!("-max_total_time={secs}"),
        ])
        .current_dir(workspace_root().join(krate))
        // cargo-fuzz needs nightly flags; the machines have one stable toolchain.
        .env("RUSTC_BOOTSTRAP", "1"))
    .context("is cargo-fuzz installed? `cargo install cargo-fuzz`")
}

/// Creates (or reuses) the venv with the oracle packages; returns its directory.
fn ensure_venv(target: &Path) -> anyhow::Result<PathBuf> {
    let venv = target.join("hc-test-venv");
    let stamp = venv.join("hc-packages.txt");
    let wanted = PYTHON_PACKAGES.join("\n");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(venv);
    }
    eprintln!("xtask: creating the oracle venv in {}", venv.display());
    std::fs::create_dir_all(target)?;
    run(Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(&venv))?;
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(PYTHON_PACKAGES))?;
    std::fs::write(&stamp, wanted)?;
    Ok(venv)
}

/// Creates (or reuses) the venv that runs the Healthchecks app beside the repository
/// (`../shared/oracle/healthchecks`, see its README) as an oracle; returns its directory.
///
/// Django 6.1 needs Python 3.12 or later: `python3.13` from `PATH`, else pyenv's.
fn ensure_oracle_venv(target: &Path) -> anyhow::Result<PathBuf> {
    let requirements = oracle_dir().join("requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).with_context(|| {
        format!(
            "cannot read {} (the Healthchecks oracle is expected beside the repository)",
            requirements.display()
        )
    })?;
    let venv = target.join("hc-oracle-venv");
    let stamp = venv.join("hc-requirements.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(venv);
    }
    eprintln!(
        "xtask: creating the Healthchecks oracle venv in {}",
        venv.display()
    );
    std::fs::create_dir_all(target)?;
    run(Command::new(python313()?)
        .args(["-m", "venv", "--clear"])
        .arg(&venv))?;
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(&requirements))?;
    std::fs::write(&stamp, wanted)?;
    Ok(venv)
}

/// A Python 3.13 interpreter: `python3.13` if it runs (a pyenv shim may not), else the newest
/// pyenv 3.13 installation.
fn python313() -> anyhow::Result<PathBuf> {
    let on_path = Command::new("python3.13")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if on_path {
        return Ok(PathBuf::from("python3.13"));
    }
    let root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".pyenv")))
        .unwrap_or_default();
    let mut found: Vec<PathBuf> = std::fs::read_dir(root.join("versions"))
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let name = entry.file_name().into_string().ok()?;
            let python = entry.path().join("bin/python3.13");
            (name.starts_with("3.13") && python.exists()).then_some(python)
        })
        .collect();
    found.sort();
    found
        .pop()
        .context("no python3.13 found (on PATH or under pyenv): the Healthchecks oracle needs it")
}

/// The Healthchecks source used as an oracle, beside the repository.
fn oracle_dir() -> PathBuf {
    workspace_root().join("../shared/oracle/healthchecks")
}

/// `cargo` (the one running xtask) in the workspace root.
pub(crate) fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

/// Runs a command to completion; a non-zero exit is an error.
pub(crate) fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        })
        .unwrap_or_else(|| workspace_root().join("target"))
}
