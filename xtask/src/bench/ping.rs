//! `cargo xtask bench ping`: throughput, latency and memory of the release `hchk-ping` binary
//! against one durable PostgreSQL (fsync on), next to a one-transaction-per-ping baseline.
//!
//! Phases, each on a fresh `hchk-ping` process after a short warm-up: (a) the baseline (one
//! writer, batches of one: each ping commits alone over one connection, like the original hosted
//! service), (b) the defaults, both under 200 closed-loop keep-alive clients; (c) the defaults at
//! a steady open-loop rate; (d) the defaults with a delay proxy adding a round trip between the
//! service and PostgreSQL. Committed pings are counted in `api_ping`, not in answers; the CPU
//! time of the service and of every PostgreSQL process is sampled at the start and the end of
//! each measured period and divided by them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hc_tests::delay_proxy::DelayProxy;
use hc_tests::factories::{CheckSpec, insert_check, insert_owned_project};
use hc_tests::postgres::{Cluster, ClusterOptions, cluster_parent};
use hyper::StatusCode;
use tokio_postgres::Client;

use super::cpu::{Cpu, Meter};
use super::load::{self, LoadResult, Pace};

/// Concurrent keep-alive clients in the closed-loop phases.
const CLIENTS: usize = 200;
/// Clients in the delay phase. By Little's law, N clients each waiting at least two round trips
/// (lock the checks, then write and commit) can do at most N / 100 ms: 200 clients could never
/// exceed 2,000 pings/s at 50 ms, whatever the service does.
const DELAY_CLIENTS: usize = 1000;
/// Checks the clients ping at random.
const CHECKS: usize = 300;
const WARM_UP: Duration = Duration::from_secs(2);
/// The open-loop phase's rate.
const STEADY_RATE: f64 = 5000.0;
/// Round trip the delay proxy adds between the service and PostgreSQL.
const ROUND_TRIP: Duration = Duration::from_millis(50);
const DB: &str = "hc_bench";

/// Runs the benchmark, phases of `secs` seconds each (default 10); `phases` picks some of
/// `abcd` (default all).
pub fn ping(target: &Path, secs: Option<&str>, phases: Option<&str>) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        // An unoptimised load generator would measure itself: run this command optimised.
        let mut cmd = crate::cargo();
        cmd.args(["run", "--release", "--quiet", "-p", "xtask", "--"])
            .args(["bench", "ping"])
            .args(secs)
            .args(phases);
        return crate::run(&mut cmd);
    }
    let phases = phases.unwrap_or("abcd");
    if phases.is_empty() || !phases.chars().all(|c| "abcd".contains(c)) {
        bail!("PHASES must be letters of abcd, got {phases:?}");
    }
    let secs: u64 = match secs {
        Some(secs) => secs.parse().context("SECS must be a whole number")?,
        None => 10,
    };
    crate::run(crate::cargo().args(["build", "--release", "--quiet", "-p", "hchk-ping"]))?;
    let binary = target.join("release/hchk-ping");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench(
        binary,
        target.join("bench-ping"),
        Duration::from_secs(secs),
        phases,
    ))
}

/// One row of the results.
struct Row {
    /// `(a)` to `(d)`, then a description.
    name: &'static str,
    clients: usize,
    committed_per_s: f64,
    result: LoadResult,
    rss_mb: f64,
    /// Spent by `hchk-ping` and PostgreSQL over the measured period.
    cpu: Cpu,
    committed: i64,
}

async fn bench(
    binary: PathBuf,
    area: PathBuf,
    duration: Duration,
    phases: &str,
) -> anyhow::Result<()> {
    // As root under /root (CI's $HOME/.cache) the postgres user cannot enter the build area.
    let parent = cluster_parent(&area)?;
    eprintln!(
        "bench ping: starting PostgreSQL (fsync on) in {}",
        parent.display()
    );
    let cluster = Cluster::start_with(ClusterOptions {
        fsync: true,
        parent: Some(parent),
    })
    .await?;
    cluster.create_database(DB).await?;
    let db = cluster.connect(DB).await?;
    hc_core::schema::apply(&db).await?;
    let fsync: String = db.query_one("SHOW fsync", &[]).await?.try_get(0)?;
    let sync_commit: String = db
        .query_one("SHOW synchronous_commit", &[])
        .await?
        .try_get(0)?;
    if fsync != "on" || sync_commit != "on" {
        bail!("PostgreSQL must run with fsync and synchronous_commit on");
    }
    let paths = Arc::new(insert_checks(&cluster).await?);
    let vars = cluster.vars(DB);
    let per_phase = format!(
        "{} s after {} s warm-up",
        duration.as_secs(),
        WARM_UP.as_secs()
    );

    let baseline = [("HCHK_PING_WRITERS", "1"), ("HCHK_PING_BATCH_MAX", "1")];
    let mut rows = Vec::new();
    let closed_phases = [
        (
            'a',
            "(a) baseline: 1 writer, batches of 1",
            &baseline[..],
            Pace::Closed,
        ),
        ('b', "(b) defaults", &[][..], Pace::Closed),
        (
            'c',
            "(c) defaults, steady 5,000 pings/s",
            &[][..],
            Pace::Open { rate: STEADY_RATE },
        ),
    ];
    for (name, label, extra, pace) in closed_phases {
        if !phases.contains(name) {
            continue;
        }
        eprintln!("bench ping: {label}, {per_phase}");
        rows.push(
            phase(
                label,
                &binary,
                &vars,
                extra,
                &db,
                cluster.base_dir(),
                &paths,
                CLIENTS,
                pace,
                duration,
            )
            .await?,
        );
    }
    if phases.contains('d') {
        eprintln!(
            "bench ping: (d) {} ms round trip to PostgreSQL, {per_phase}",
            ROUND_TRIP.as_millis()
        );
        let upstream = SocketAddr::from(([127, 0, 0, 1], cluster.port()));
        let proxy = DelayProxy::start(upstream, ROUND_TRIP).await?;
        let mut delayed = vars.clone();
        delayed.insert("DB_PORT".to_owned(), proxy.port().to_string());
        rows.push(
            phase(
                "(d) defaults, 50 ms round trip to PostgreSQL",
                &binary,
                &delayed,
                &[],
                &db,
                cluster.base_dir(),
                &paths,
                DELAY_CLIENTS,
                Pace::Closed,
                duration,
            )
            .await?,
        );
        proxy.kill();
    }
    print_report(&rows);
    Ok(())
}

/// Inserts [`CHECKS`] checks in one project; returns their ping paths.
async fn insert_checks(cluster: &Cluster) -> anyhow::Result<Vec<String>> {
    let client = cluster.connect(DB).await?;
    // Only for this set-up session: the benchmark's own writes are durable.
    client.batch_execute("SET synchronous_commit = off").await?;
    let project = insert_owned_project(&client).await?;
    let mut paths = Vec::with_capacity(CHECKS);
    for _ in 0..CHECKS {
        let check = insert_check(
            &client,
            CheckSpec {
                project_id: Some(project.id),
                ..CheckSpec::default()
            },
        )
        .await?;
        paths.push(format!("/ping/{}", check.code));
    }
    Ok(paths)
}

#[allow(
    clippy::too_many_arguments,
    reason = "one call per phase, all spelled out"
)]
async fn phase(
    name: &'static str,
    binary: &Path,
    vars: &HashMap<String, String>,
    extra: &[(&str, &str)],
    db: &Client,
    cluster_base: &Path,
    paths: &Arc<Vec<String>>,
    clients: usize,
    pace: Pace,
    duration: Duration,
) -> anyhow::Result<Row> {
    // Each phase starts from the same state: the previous phase's rows vacuumed and analysed and
    // its dirty pages written, so no phase pays for another's clean-up.
    // (Two calls: VACUUM cannot run inside the implicit transaction of a multi-statement call.)
    db.batch_execute("VACUUM ANALYZE").await?;
    db.batch_execute("CHECKPOINT").await?;
    let service = Service::start(binary, vars, extra).await?;
    load::run(service.addr, paths.clone(), clients, pace, WARM_UP).await?;
    let before = count_pings(db).await?;
    let meter = Meter::new(service.pid()?, cluster_base)?;
    let cpu_before = meter.sample()?;
    let result = load::run(service.addr, paths.clone(), clients, pace, duration).await?;
    let cpu = meter.sample()?.since(cpu_before);
    // Every ping answered is committed; nothing is in flight any more.
    let after = count_pings(db).await?;
    let rss_mb = service.peak_rss_kb()? as f64 / 1024.0;
    let (_, metrics) = load::get(service.addr, "/metrics").await?;
    service.stop().await?;
    let committed = after - before;
    let mean = |metric: &str| {
        metric_value(&metrics, &format!("{metric}_sum"))
            / metric_value(&metrics, &format!("{metric}_count"))
    };
    eprintln!(
        "bench ping: {name}: p90 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms; mean batch {:.0} pings, {:.1} ms to commit",
        result.quantile_ms(0.90),
        result.quantile_ms(0.999),
        result.quantile_ms(1.0),
        mean("hchk_ping_batch_size"),
        mean("hchk_ping_commit_seconds") * 1000.0,
    );
    if committed != result.ok as i64 {
        eprintln!(
            "bench ping: {name}: {committed} rows committed but {} answers 200",
            result.ok
        );
    }
    Ok(Row {
        name,
        clients,
        committed_per_s: committed as f64 / result.elapsed.as_secs_f64(),
        result,
        rss_mb,
        cpu,
        committed,
    })
}

/// The value of an unlabelled metric in Prometheus text (NaN when absent).
fn metric_value(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(f64::NAN)
}

async fn count_pings(db: &Client) -> anyhow::Result<i64> {
    Ok(db
        .query_one("SELECT count(*) FROM api_ping", &[])
        .await?
        .try_get(0)?)
}

/// A running `hchk-ping` process.
struct Service {
    child: tokio::process::Child,
    addr: SocketAddr,
}

impl Service {
    /// Starts the binary with the database `vars` and `extra`, and waits until `/health` is 200.
    async fn start(
        binary: &Path,
        vars: &HashMap<String, String>,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Service> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut command = tokio::process::Command::new(binary);
        // HCHK_PING_* from the developer's environment apply (for tuning), the phase's own win.
        let tuning = std::env::vars().filter(|(name, _)| name.starts_with("HCHK_PING_"));
        command
            .env_clear()
            .envs(vars)
            .envs(tuning)
            .envs(extra.iter().copied())
            .env("HCHK_PING_LISTEN", addr.to_string())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                bail!("hchk-ping exited during start-up: {status}");
            }
            if let Ok((StatusCode::OK, _)) = load::get(addr, "/health").await {
                return Ok(Service { child, addr });
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("hchk-ping did not become healthy within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn pid(&self) -> anyhow::Result<u32> {
        self.child.id().context("hchk-ping has exited")
    }

    /// `VmHWM`: the process's peak resident set so far, in KiB.
    fn peak_rss_kb(&self) -> anyhow::Result<u64> {
        let pid = self.pid()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmHWM in /proc/<pid>/status")
    }

    /// SIGTERM, then waits for the exit.
    async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            tokio::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await?;
        }
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .context("hchk-ping did not stop within 30 s of SIGTERM")??;
        if !status.success() {
            bail!("hchk-ping exited with {status}");
        }
        Ok(())
    }
}

fn print_report(rows: &[Row]) {
    println!();
    println!(
        "| phase | clients | committed pings/s | p50 ms | p99 ms | peak RSS MB | CPU µs/ping: service / PostgreSQL / total | answers 200 / other |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        println!(
            "| {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {} / {} |",
            row.name,
            row.clients,
            row.committed_per_s,
            row.result.quantile_ms(0.50),
            row.result.quantile_ms(0.99),
            row.rss_mb,
            row.cpu.per(row.committed as f64, 1e6, 0),
            row.result.ok,
            row.result.failed,
        );
    }
    let phase = |letter: &str| rows.iter().find(|r| r.name.starts_with(letter));
    let (Some(a), Some(b), Some(c), Some(d)) =
        (phase("(a)"), phase("(b)"), phase("(c)"), phase("(d)"))
    else {
        return;
    };
    let ratio = b.committed_per_s / a.committed_per_s;
    let rss = [b, c, d].iter().map(|r| r.rss_mb).fold(0.0, f64::max);
    let c_p99 = c.result.quantile_ms(0.99);
    println!();
    println!("(b)/(a) = {ratio:.1}×");
    println!();
    println!("| target | measured | met |");
    println!("|---|---:|---|");
    let targets = [
        (
            "(b) ≥ 20,000 committed pings/s",
            format!("{:.0}", b.committed_per_s),
            b.committed_per_s >= 20_000.0,
        ),
        ("(b)/(a) ≥ 10×", format!("{ratio:.1}×"), ratio >= 10.0),
        (
            "(c) p99 ≤ 25 ms at 5,000 pings/s",
            format!("{c_p99:.1} ms"),
            c_p99 <= 25.0,
        ),
        (
            "peak RSS ≤ 64 MB (b, c, d)",
            format!("{rss:.1} MB"),
            rss <= 64.0,
        ),
        (
            "(d) ≥ 5,000 pings/s at 50 ms round trip",
            format!("{:.0}", d.committed_per_s),
            d.committed_per_s >= 5_000.0,
        ),
    ];
    for (target, measured, met) in targets {
        println!(
            "| {target} | {measured} | {} |",
            if met { "yes" } else { "NO" }
        );
    }
}
