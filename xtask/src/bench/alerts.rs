//! `cargo xtask bench alerts`: how fast the release `hc-sendalerts` notices deadlines and
//! delivers webhooks, and what it costs when idle, on one durable PostgreSQL (fsync on).
//!
//! One sender runs for all three phases against 100,000 checks in 500 projects (one webhook
//! channel each, pointing at a local sink that only timestamps arrivals): (a) 1,000 checks share
//! one deadline a few seconds ahead, and the delay from that deadline to each webhook's arrival is
//! measured; (b) with nothing due, the sender's CPU use over 20 s; (c) 20,000 checks go down at
//! once, and the rate from the first to the last webhook is measured. A scale divides every count.
//! In (a) and (c) the CPU time of the sender and of every PostgreSQL process, from the update
//! that makes the checks due to the last webhook, is divided by the checks flipped (each with its
//! one webhook).

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bytes::Bytes;
use hc_tests::postgres::{Cluster, ClusterOptions, Shutdown, cluster_parent};
use hc_tests::service::ServiceProcess;

use super::cpu::{self, Cpu, Meter};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_postgres::Client;

const DB: &str = "hc_bench";
/// Checks in the database at scale 1.
const CHECKS: usize = 100_000;
/// Checks per project; each project has one webhook channel assigned to all its checks.
const CHECKS_PER_PROJECT: usize = 200;
/// Checks sharing one deadline in (a), at scale 1.
const DUE: usize = 1_000;
/// Checks going down at once in (c), at scale 1.
const BURST: usize = 20_000;
/// How far ahead of the update the shared deadline of (a) lies: more than the sender's longest
/// idle wait (2 s), so it has looked at the new deadline before it passes.
const LEAD: Duration = Duration::from_secs(4);
/// The idle phase's length at scale 1.
const IDLE: Duration = Duration::from_secs(20);
/// How long a phase may wait for its webhooks.
const PATIENCE: Duration = Duration::from_secs(300);

/// Runs the benchmark with every count divided by `scale` (default 1).
pub fn alerts(target: &Path, scale: Option<&str>) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        // An unoptimised sink and set-up would measure themselves: run this command optimised.
        let mut cmd = crate::cargo();
        cmd.args(["run", "--release", "--quiet", "-p", "xtask", "--"])
            .args(["bench", "alerts"])
            .args(scale);
        return crate::run(&mut cmd);
    }
    let scale: usize = match scale {
        Some(text) => text
            .parse()
            .ok()
            .filter(|s| (1..=DUE).contains(s))
            .with_context(|| format!("SCALE must be a whole number from 1 to {DUE}"))?,
        None => 1,
    };
    crate::run(crate::cargo().args(["build", "--release", "--quiet", "-p", "hc-sendalerts"]))?;
    let binary = target.join("release/hc-sendalerts");
    let sizes = Sizes {
        checks: CHECKS / scale,
        projects: (CHECKS / scale).div_ceil(CHECKS_PER_PROJECT),
        due: DUE / scale,
        burst: BURST / scale,
        idle: (IDLE / scale as u32).max(Duration::from_secs(5)),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench(binary, target.join("bench-alerts"), sizes))
}

/// The counts of one run.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    checks: usize,
    projects: usize,
    due: usize,
    burst: usize,
    idle: Duration,
}

async fn bench(binary: PathBuf, area: PathBuf, sizes: Sizes) -> anyhow::Result<()> {
    // The sender's log stays in `area`, written by root; the cluster goes where the postgres
    // user can enter, which the build area is not as root under /root (CI's $HOME/.cache).
    let parent = cluster_parent(&area)?;
    eprintln!(
        "bench alerts: starting PostgreSQL (fsync on) in {}",
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
    let statements = std::env::var_os("HC_BENCH_STATEMENTS").is_some();
    let db = if statements {
        // Which SQL dominates: pg_stat_statements needs a restart to load.
        db.batch_execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
            .await?;
        drop(db);
        cluster.stop_keeping_data(Shutdown::Fast)?;
        cluster.start_again().await?;
        let db = cluster.connect(DB).await?;
        db.batch_execute("CREATE EXTENSION pg_stat_statements")
            .await?;
        db
    } else {
        db
    };
    let fsync: String = db.query_one("SHOW fsync", &[]).await?.try_get(0)?;
    if fsync != "on" {
        bail!("PostgreSQL must run with fsync on");
    }
    let sink = Sink::start().await?;
    let started = Instant::now();
    insert_checks(&db, &sink.url(), sizes).await?;
    eprintln!(
        "bench alerts: {} checks in {} projects inserted in {:.1} s",
        sizes.checks,
        sizes.projects,
        started.elapsed().as_secs_f64()
    );
    db.batch_execute("VACUUM ANALYZE").await?;
    db.batch_execute("CHECKPOINT").await?;

    let mut vars = cluster.vars(DB);
    vars.extend(
        [
            ("SECRET_KEY", "bench-secret"),
            ("INTEGRATIONS_ALLOW_PRIVATE_IPS", "True"),
            ("SENDALERTS_METRICS_LISTEN", ""),
            ("RUST_LOG", "info"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    // SENDALERTS_* and DB_POOL_SIZE from the developer's environment apply, for tuning.
    vars.extend(std::env::vars().filter(|(name, _)| {
        name.starts_with("SENDALERTS_") && name != "SENDALERTS_METRICS_LISTEN"
            || name == "DB_POOL_SIZE"
    }));
    let mut sender = ServiceProcess::start_path(&binary, &vars)?;
    sender.wait_ready(Duration::from_secs(30)).await?;
    // Let the start-up passes (recovery, the first idle wait) go by.
    tokio::time::sleep(Duration::from_secs(1)).await;

    eprintln!(
        "bench alerts: (a) {} checks due at one instant {} s ahead",
        sizes.due,
        LEAD.as_secs()
    );
    let meter = Meter::new(sender.pid(), cluster.base_dir())?;
    let deadline = epoch_secs(SystemTime::now() + LEAD);
    make_due(&db, 1, sizes.due, deadline).await?;
    // After the update: its own cost is the benchmark's, not the sender's.
    let cpu_before = meter.sample()?;
    let arrivals = sink.wait_for(sizes.due, &mut sender).await?;
    let due_cpu = meter.sample()?.since(cpu_before);
    let delays = delays_after(&arrivals, deadline);
    let deadline_row = DeadlineRow {
        p50: quantile(&delays, 0.50),
        p99: quantile(&delays, 0.99),
        max: quantile(&delays, 1.0),
        cpu: due_cpu,
    };

    eprintln!("bench alerts: (b) idle CPU over {} s", sizes.idle.as_secs());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_cpu = cpu_share(sender.pid(), sizes.idle).await?;

    eprintln!(
        "bench alerts: (c) {} checks down at once, {} s ahead",
        sizes.burst,
        LEAD.as_secs()
    );
    sink.clear();
    let deadline = epoch_secs(SystemTime::now() + LEAD);
    make_due(&db, sizes.due + 1, sizes.burst, deadline).await?;
    let cpu_before = meter.sample()?;
    let arrivals = sink.wait_for(sizes.burst, &mut sender).await?;
    let burst_cpu = meter.sample()?.since(cpu_before);
    let times: Vec<f64> = arrivals.iter().map(|a| a.at).collect();
    let first = times.iter().copied().fold(f64::INFINITY, f64::min);
    let last = times.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let rate = (times.len() - 1) as f64 / (last - first);
    let burst_last = last - deadline;

    let failed: i64 = db
        .query_one(
            "SELECT count(*) FROM api_notification WHERE error <> ''",
            &[],
        )
        .await?
        .try_get(0)?;
    sender.signal("TERM")?;
    let status = sender.wait_exit(Duration::from_secs(30)).await?;
    // Kept for a look at what the sender did.
    std::fs::write(area.join("sendalerts.log"), sender.log())?;
    if !status.success() {
        bail!(
            "hc-sendalerts exited with {status}; see {}",
            area.join("sendalerts.log").display()
        );
    }
    if statements {
        print_statements(&db).await?;
    }
    let burst_row = BurstRow {
        rate,
        last: burst_last,
        cpu: burst_cpu,
    };
    print_report(sizes, &deadline_row, idle_cpu, &burst_row, failed);
    Ok(())
}

/// Inserts users, profiles, projects, one webhook channel per project and the healthy checks,
/// each statement set-based. Check `i` (id `i`, counting from 1) is in project `1 + (i - 1) %
/// projects`, so a range of ids spreads evenly over the channels.
async fn insert_checks(db: &Client, url: &str, sizes: Sizes) -> anyhow::Result<()> {
    // Only for this set-up session: the sender's own writes are durable.
    db.batch_execute("SET synchronous_commit = off").await?;
    let projects = i32::try_from(sizes.projects)?;
    let checks = i32::try_from(sizes.checks)?;
    db.execute(
        "INSERT INTO auth_user (id, password, last_login, is_superuser, username, first_name, \
             last_name, email, is_staff, is_active, date_joined) \
         OVERRIDING SYSTEM VALUE \
         SELECT i, '!', NULL, false, 'bench-' || i, '', '', 'bench-' || i || '@example.org', \
             false, true, now() FROM generate_series(1, $1::int4) AS i",
        &[&projects],
    )
    .await
    .context("cannot insert auth_user")?;
    db.execute(
        "INSERT INTO accounts_profile (next_report_date, user_id, ping_log_limit, token, \
             check_limit, last_sms_date, sms_limit, sms_sent, sort, nag_period, \
             next_nag_date, deletion_notice_date, last_active_date, call_limit, calls_sent, \
             last_call_date, reports, tz, theme, totp, totp_created, \
             deletion_scheduled_date, over_limit_date) \
         SELECT NULL, u.id, 100, md5(u.username), 10000, NULL, 10000, 0, 'created', \
             interval '0', NULL, NULL, NULL, 10000, 0, NULL, 'monthly', 'UTC', NULL, NULL, NULL, \
             NULL, NULL FROM auth_user u",
        &[],
    )
    .await
    .context("cannot insert accounts_profile")?;
    db.execute(
        "INSERT INTO accounts_project (id, code, name, api_key, api_key_readonly, owner_id, \
             badge_key, ping_key, show_slugs) \
         OVERRIDING SYSTEM VALUE \
         SELECT u.id, gen_random_uuid(), 'Project ' || u.id, '', '', u.id, \
             gen_random_uuid()::text, substr(md5(u.username), 1, 22), false FROM auth_user u",
        &[],
    )
    .await
    .context("cannot insert accounts_project")?;
    let value = format!(
        "{{\"method_down\":\"POST\",\"url_down\":\"{url}\",\"body_down\":\"$CODE $STATUS\",\
          \"headers_down\":{{}},\"method_up\":\"POST\",\"url_up\":\"{url}\",\
          \"body_up\":\"$CODE $STATUS\",\"headers_up\":{{}}}}"
    );
    db.execute(
        "INSERT INTO api_channel (code, created, kind, value, email_verified, name, project_id, \
             last_error, last_notify, disabled, last_notify_duration) \
         SELECT gen_random_uuid(), now(), 'webhook', $1, true, '', p.id, '', NULL, false, NULL \
         FROM accounts_project p",
        &[&value],
    )
    .await
    .context("cannot insert api_channel")?;
    // Healthy: pinged now, a day's period and an hour's grace.
    db.execute(
        "INSERT INTO api_check (id, code, last_ping, alert_after, status, timeout, name, created, \
             grace, tags, n_pings, kind, schedule, tz, has_confirmation_link, \"desc\", \
             last_start, project_id, last_duration, methods, manual_resume, slug, failure_kw, \
             filter_body, filter_subject, success_kw, last_start_rid, start_kw, badge_key, \
             filter_default_fail, filter_http_body) \
         OVERRIDING SYSTEM VALUE \
         SELECT i, gen_random_uuid(), now(), now() + interval '1 day 1 hour', 'up', \
             interval '1 day', 'check ' || i, now(), interval '1 hour', '', 1, 'simple', \
             '* * * * *', 'UTC', false, '', NULL, 1 + (i - 1) % $2::int4, NULL, '', false, \
             'check-' || i, '', false, false, '', NULL, '', gen_random_uuid(), false, false \
         FROM generate_series(1, $1::int4) AS i",
        &[&checks, &projects],
    )
    .await
    .context("cannot insert api_check")?;
    db.execute(
        "INSERT INTO api_channel_checks (channel_id, check_id) \
         SELECT ch.id, c.id FROM api_check c JOIN api_channel ch ON ch.project_id = c.project_id",
        &[],
    )
    .await
    .context("cannot insert api_channel_checks")?;
    // Later inserts by the services take ids after ours.
    db.batch_execute(
        "SELECT setval(pg_get_serial_sequence(t, 'id'), (SELECT max(id) FROM auth_user)) \
             FROM (VALUES ('auth_user'), ('accounts_project')) AS v(t); \
         SELECT setval(pg_get_serial_sequence('api_check', 'id'), (SELECT max(id) FROM api_check)); \
         RESET synchronous_commit",
    )
    .await
    .context("cannot advance the id sequences")?;
    Ok(())
}

/// Makes checks `first..first + count` (by id) go down at `deadline` (Unix seconds): their last
/// ping a period and a grace before it, as a ping at that time would have left them.
async fn make_due(db: &Client, first: usize, count: usize, deadline: f64) -> anyhow::Result<()> {
    let (first, last) = (i32::try_from(first)?, i32::try_from(first + count - 1)?);
    let updated = db
        .execute(
            "UPDATE api_check SET last_ping = to_timestamp($3) - (timeout + grace), \
                 alert_after = to_timestamp($3) \
             WHERE id BETWEEN $1 AND $2",
            &[&first, &last, &deadline],
        )
        .await?;
    if updated != count as u64 {
        bail!("expected to update {count} checks, updated {updated}");
    }
    Ok(())
}

fn epoch_secs(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs_f64()
}

/// Each arrival's delay after `deadline`, in seconds, sorted.
fn delays_after(arrivals: &[Arrival], deadline: f64) -> Vec<f64> {
    let mut delays: Vec<f64> = arrivals.iter().map(|a| a.at - deadline).collect();
    delays.sort_by(f64::total_cmp);
    delays
}

/// The `p`-quantile (0..=1) of sorted `values`.
fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// One webhook as the sink saw it.
#[derive(Debug, Clone)]
struct Arrival {
    /// Unix seconds when its request head arrived.
    at: f64,
    /// The body: `<check code> <status>`.
    body: String,
}

/// A webhook endpoint on loopback that answers 200 at once and timestamps every request.
struct Sink {
    addr: SocketAddr,
    arrivals: Arc<Mutex<Vec<Arrival>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Sink {
    async fn start() -> anyhow::Result<Sink> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let accept = tokio::spawn(accept_loop(listener, arrivals.clone()));
        Ok(Sink {
            addr,
            arrivals,
            accept,
        })
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn clear(&self) {
        lock(&self.arrivals).clear();
    }

    /// Waits until `n` webhooks arrived (failing if the sender exits or [`PATIENCE`] runs out),
    /// then a moment more for duplicates; returns them, checking each check's status arrived
    /// once.
    async fn wait_for(
        &self,
        n: usize,
        sender: &mut ServiceProcess,
    ) -> anyhow::Result<Vec<Arrival>> {
        let started = Instant::now();
        while lock(&self.arrivals).len() < n {
            if let Some(status) = sender.exited()? {
                bail!("hc-sendalerts exited with {status}: {}", sender.log());
            }
            if started.elapsed() > PATIENCE {
                bail!(
                    "{} of {n} webhooks arrived within {PATIENCE:?}",
                    lock(&self.arrivals).len()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let arrivals = lock(&self.arrivals).clone();
        let distinct: HashSet<&str> = arrivals.iter().map(|a| a.body.as_str()).collect();
        if arrivals.len() != n || distinct.len() != n {
            bail!(
                "expected {n} webhooks, got {} ({} distinct)",
                arrivals.len(),
                distinct.len()
            );
        }
        if let Some(other) = arrivals.iter().find(|a| !a.body.ends_with(" down")) {
            bail!("unexpected webhook body {:?}", other.body);
        }
        Ok(arrivals)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn accept_loop(listener: TcpListener, arrivals: Arc<Mutex<Vec<Arrival>>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let arrivals = arrivals.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: hyper::Request<Incoming>| {
                let arrivals = arrivals.clone();
                async move {
                    let at = epoch_secs(SystemTime::now());
                    let body = request
                        .into_body()
                        .collect()
                        .await
                        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                        .unwrap_or_default();
                    lock(&arrivals).push(Arrival { at, body });
                    Ok::<_, Infallible>(hyper::Response::new(Empty::<Bytes>::new()))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The CPU time (user + system) of process `pid` over `period`, as a share of one core.
async fn cpu_share(pid: u32, period: Duration) -> anyhow::Result<f64> {
    let before = (cpu::process_secs(pid)?, Instant::now());
    tokio::time::sleep(period).await;
    let after = (cpu::process_secs(pid)?, Instant::now());
    Ok((after.0 - before.0) / (after.1 - before.1).as_secs_f64())
}

/// The statements that took the most time, from `pg_stat_statements`, on stderr.
async fn print_statements(db: &Client) -> anyhow::Result<()> {
    let rows = db
        .query(
            "SELECT calls, total_exec_time, mean_exec_time, \
                 left(regexp_replace(query, '\\s+', ' ', 'g'), 110) \
             FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 12",
            &[],
        )
        .await?;
    eprintln!("bench alerts: statements by total time (calls, total ms, mean ms, query):");
    for row in &rows {
        let (calls, total, mean, query): (i64, f64, f64, String) = (
            row.try_get(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
        );
        eprintln!("{calls:>8} {total:>10.0} {mean:>8.3}  {query}");
    }
    Ok(())
}

/// Phase (a)'s results: delays in seconds.
struct DeadlineRow {
    p50: f64,
    p99: f64,
    max: f64,
    cpu: Cpu,
}

/// Phase (c)'s results.
struct BurstRow {
    /// Notifications per second, first to last webhook.
    rate: f64,
    /// The last webhook's arrival after the deadline, in seconds.
    last: f64,
    cpu: Cpu,
}

fn print_report(
    sizes: Sizes,
    deadline: &DeadlineRow,
    idle_cpu: f64,
    burst: &BurstRow,
    failed: i64,
) {
    let rate = burst.rate;
    println!();
    println!(
        "{} checks in {} projects (one webhook channel each); {} failed notifications",
        sizes.checks, sizes.projects, failed
    );
    println!();
    println!(
        "| phase | measured | CPU ms per check flipped and notified: service / PostgreSQL / total |"
    );
    println!("|---|---:|---:|");
    println!(
        "| (a) {} checks due at one instant D: webhook arrival − D, p50 / p99 / max | {:.3} / {:.3} / {:.3} s | {} |",
        sizes.due,
        deadline.p50,
        deadline.p99,
        deadline.max,
        deadline.cpu.per(sizes.due as f64, 1e3, 2)
    );
    println!(
        "| (b) idle CPU over {} s | {:.2} % of a core | — |",
        sizes.idle.as_secs(),
        idle_cpu * 100.0
    );
    println!(
        "| (c) {} checks down at once: first → last webhook | {:.0} notifications/s (last at D + {:.1} s) | {} |",
        sizes.burst,
        rate,
        burst.last,
        burst.cpu.per(sizes.burst as f64, 1e3, 2)
    );
    println!();
    println!("| target | measured | met |");
    println!("|---|---:|---|");
    let targets = [
        (
            "(a) p99 deadline → webhook ≤ 2 s",
            format!("{:.3} s", deadline.p99),
            deadline.p99 <= 2.0,
        ),
        (
            "(b) idle CPU ≤ 2 % of a core",
            format!("{:.2} %", idle_cpu * 100.0),
            idle_cpu <= 0.02,
        ),
        (
            "(c) ≥ 1,000 notifications/s",
            format!("{rate:.0}/s"),
            rate >= 1000.0,
        ),
    ];
    for (target, measured, met) in targets {
        println!(
            "| {target} | {measured} | {} |",
            if met { "PASS" } else { "FAIL" }
        );
    }
}
