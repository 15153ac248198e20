//! `cargo xtask dev`: a throw-away PostgreSQL with the schema and a demo project, `hchk-ping` in
//! front of it and `hc-sendalerts` mailing alerts to a local OpenSMTPD sink, with copy-paste lines
//! to try pings and read the alerts; Ctrl-C (or SIGTERM) removes it all.
//!
//! PostgreSQL comes from the test harness ([`hc_tests::postgres::Cluster`]): its supervisor stops
//! the server and removes the data directory when this process goes away, even after a crash.
//! The services run under a similar supervisor of their own (see [`Service`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, bail};
use hc_tests::factories::{CheckSpec, Project, insert_check, insert_profile, insert_project};
use hc_tests::postgres::{Cluster, free_port};
use hc_tests::smtp::SmtpSink;
use tokio::signal::unix::{SignalKind, signal};
use uuid::Uuid;

/// The demo database's name.
const DBNAME: &str = "hc";

/// How long `hchk-ping` may take to answer `/health`.
const START_PATIENCE: Duration = Duration::from_secs(30);

/// The last line printed once everything runs; `tests/it/dev.rs` waits for it.
pub const READY_LINE: &str = "Press Ctrl-C to stop hchk-ping and PostgreSQL and remove the data.";

/// Builds `hchk-ping` (unless `build` is false), starts everything, prints the instructions, and
/// waits for SIGINT or SIGTERM (or `hchk-ping` exiting by itself, an error).
pub fn dev(target_dir: &Path, build: bool) -> anyhow::Result<()> {
    if build {
        crate::run(crate::cargo().args([
            "build",
            "--quiet",
            "--package",
            "hchk-ping",
            "--package",
            "hc-sendalerts",
        ]))?;
    }
    // `cargo xtask` runs the debug build of xtask, next to the debug builds of the services.
    let exe = std::env::current_exe().context("cannot find the xtask executable")?;
    let folder = exe.parent().context("the xtask executable has a folder")?;
    let binary = folder.join("hchk-ping");
    let sender = folder.join("hc-sendalerts");
    for built in [&binary, &sender] {
        if !built.exists() {
            bail!("{} is not built", built.display());
        }
    }
    let area = hc_tests::postgres::cluster_parent(&target_dir.join("dev"))?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        // Installed first: from here on SIGINT/SIGTERM only end the wait below, and everything
        // started so far is stopped by the destructors on the way out.
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let stop = async {
            tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            }
        };
        tokio::pin!(stop);
        let dev = tokio::select! {
            started = DevEnv::start(&area, &binary, &sender) => started?,
            signal = &mut stop => {
                eprintln!("xtask dev: {signal} during start-up; stopping");
                return Ok(());
            }
        };
        dev.print_instructions();
        tokio::select! {
            signal = &mut stop => {
                eprintln!("xtask dev: {signal}; stopping hchk-ping and PostgreSQL");
                dev.stop()
            }
            status = dev.ping.exited() => {
                let status = status?;
                dev.stop()?;
                bail!("hchk-ping exited by itself ({status}); everything is stopped")
            }
            status = dev.sendalerts.exited() => {
                let status = status?;
                dev.stop()?;
                bail!("hc-sendalerts exited by itself ({status}); everything is stopped")
            }
        }
    });
    // Dropping the runtime waits for blocking work: an `initdb` that a signal interrupted the
    // wait for has finished, and its directory (no server runs on it) can go.
    drop(runtime);
    remove_own_leftovers(&area);
    result
}

/// Removes cluster directories this process created that are still there: every cluster it
/// started has stopped by now, and its supervisor removed its own directory.
fn remove_own_leftovers(area: &Path) {
    let prefix = format!("hc-pg-{}-", std::process::id());
    let Ok(entries) = std::fs::read_dir(area) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The running environment; dropping it stops `hc-sendalerts` and `hchk-ping`, then the mail
/// sink and PostgreSQL.
struct DevEnv {
    // Field order is drop order: the services go before the database they write to.
    sendalerts: Service,
    ping: Service,
    mail: Option<SmtpSink>,
    cluster: Cluster,
    addr: SocketAddr,
    project: Project,
    checks: Vec<(&'static str, Uuid)>,
}

impl DevEnv {
    async fn start(area: &Path, binary: &Path, sender: &Path) -> anyhow::Result<DevEnv> {
        eprintln!("xtask dev: starting PostgreSQL in {}", area.display());
        let cluster = Cluster::start_in(area)
            .await
            .with_context(|| format!("cannot start PostgreSQL in {}", area.display()))?;
        cluster.create_database(DBNAME).await?;
        let client = cluster.connect(DBNAME).await?;
        hc_core::schema::apply(&client).await?;
        let (project, checks) = insert_demo_rows(&client).await?;
        drop(client);

        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let mut vars = cluster.vars(DBNAME);
        vars.insert("HCHK_PING_LISTEN".to_owned(), addr.to_string());
        vars.insert("SITE_ROOT".to_owned(), format!("http://{addr}"));
        eprintln!("xtask dev: starting {} on {addr}", binary.display());
        let ping = Service::spawn("hchk-ping", binary, &vars)?;
        // OpenSMTPD drops privileges itself and so must be started as root.
        let mail = if hc_tests::postgres::is_root() {
            Some(
                SmtpSink::start()
                    .await
                    .context("cannot start the mail sink")?,
            )
        } else {
            eprintln!(
                "xtask dev: not root, so no local mail sink (OpenSMTPD needs root); email alerts will fail"
            );
            None
        };
        let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let mut sender_vars = cluster.vars(DBNAME);
        sender_vars.extend(mail.as_ref().map(SmtpSink::vars).unwrap_or_default());
        for (name, value) in [
            ("SITE_ROOT", format!("http://{addr}")),
            ("SITE_NAME", "hc dev".to_owned()),
            ("SECRET_KEY", "dev-only-secret".to_owned()),
            ("DEFAULT_FROM_EMAIL", "alerts@localhost".to_owned()),
            ("SENDALERTS_METRICS_LISTEN", metrics.to_string()),
        ] {
            sender_vars.insert(name.to_owned(), value);
        }
        eprintln!("xtask dev: starting {}", sender.display());
        let sendalerts = Service::spawn("hc-sendalerts", sender, &sender_vars)?;
        let dev = DevEnv {
            sendalerts,
            ping,
            mail,
            cluster,
            addr,
            project,
            checks,
        };
        dev.wait_until_healthy().await?;
        Ok(dev)
    }

    async fn wait_until_healthy(&self) -> anyhow::Result<()> {
        let healthy = hc_tests::eventually::eventually(START_PATIENCE, || async {
            if let Some(status) = self.ping.try_status()? {
                // Stop waiting: reported through the Ok channel, handled below.
                return Ok(Err(status));
            }
            let reply = hc_tests::http::get(self.addr, "/health").await?;
            anyhow::ensure!(reply.status == 200, "/health says {}", reply.status);
            Ok(Ok(()))
        })
        .await
        .context("hchk-ping did not answer /health")?;
        healthy.map_err(|status| anyhow::anyhow!("hchk-ping exited at start-up ({status})"))?;
        if let Some(status) = self.sendalerts.try_status()? {
            bail!("hc-sendalerts exited at start-up ({status})");
        }
        Ok(())
    }

    fn print_instructions(&self) {
        let base = format!("http://{}", self.addr);
        let code = |name: &str| {
            self.checks
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, code)| code.to_string())
                .unwrap_or_default()
        };
        let simple = format!("{base}/ping/{}", code("simple"));
        let cron = format!("{base}/ping/{}", code("cron"));
        let key = &self.project.ping_key;
        let curl = "curl -fsS -m 10 --retry 5";
        let connection = format!(
            "host=127.0.0.1 port={} dbname={DBNAME} user=postgres",
            self.cluster.port()
        );
        let lines = [
            String::new(),
            format!(
                "hchk-ping listens on {base} (health: {base}/health, metrics: {base}/metrics)."
            ),
            format!(
                "PostgreSQL: {connection}, data in {}",
                self.cluster.base_dir().display()
            ),
            format!(
                "Demo project ping key {key}; checks: \"simple\" (every day), \"cron\" (*/5 * * * *), \"backup\" (slug backup)."
            ),
            String::new(),
            "# a success ping".to_owned(),
            format!("{curl} {simple}"),
            "# a start signal, then a failure: the check goes down".to_owned(),
            format!("{curl} {cron}/start"),
            format!("{curl} {cron}/fail"),
            "# an exit status: 0 is success, 1-255 a failure".to_owned(),
            format!("{curl} {cron}/1"),
            "# by slug: /ping/<ping_key>/<slug>".to_owned(),
            format!("{curl} {base}/ping/{key}/backup"),
            "# a slug that does not exist yet, created by the ping".to_owned(),
            format!("{curl} '{base}/ping/{key}/new-job?create=1'"),
            "# a POST body is stored with the ping".to_owned(),
            format!("{curl} --data-raw 'backup done: 42 files' {simple}"),
            "# hc-sendalerts emails the alert (\"DOWN | cron\") to the demo channel within seconds:".to_owned(),
            match &self.mail {
                Some(mail) => format!("ls {0}/new && cat {0}/new/*", mail.maildir().display()),
                None => "# (no mail sink: run as root for one)".to_owned(),
            },
            "# what was recorded".to_owned(),
            format!(
                "psql \"{connection}\" -c 'SELECT id, name, slug, status, n_pings, last_ping FROM api_check ORDER BY id' \
                 -c \"SELECT p.id, c.name, p.kind, p.exitstatus, p.method, p.created, convert_from(p.body_raw, 'UTF8') AS body FROM api_ping p JOIN api_check c ON c.id = p.owner_id ORDER BY p.id\""
            ),
            String::new(),
            READY_LINE.to_owned(),
        ];
        // Instructions are the command's output: stdout, so they can be piped or read by a test.
        let mut out = String::new();
        for line in lines {
            out.push_str(&line);
            out.push('\n');
        }
        print!("{out}");
    }

    /// Stops `hchk-ping` (SIGTERM: it answers what is in flight), then PostgreSQL (the
    /// supervisor removes the data directory).
    fn stop(self) -> anyhow::Result<()> {
        let DevEnv {
            sendalerts,
            ping,
            mail,
            cluster,
            ..
        } = self;
        let sent = sendalerts.stop()?;
        let status = ping.stop()?;
        if let Some(mail) = mail {
            mail.stop()?;
        }
        cluster.stop()?;
        eprintln!(
            "xtask dev: stopped (hchk-ping: {status}, hc-sendalerts: {sent}); the data directory is removed"
        );
        Ok(())
    }
}

/// The demo user, profile and project, and three checks; returns the project and the checks'
/// codes by name.
async fn insert_demo_rows(
    client: &tokio_postgres::Client,
) -> anyhow::Result<(Project, Vec<(&'static str, Uuid)>)> {
    let user = hc_tests::factories::insert_user(client).await?;
    client
        .execute(
            "UPDATE auth_user SET username = 'demo', email = 'demo@example.org' WHERE id = $1",
            &[&user.id],
        )
        .await?;
    insert_profile(client, user.id, 100).await?;
    let project = insert_project(client, user.id).await?;
    let specs = [
        (
            "simple",
            CheckSpec {
                name: "simple".to_owned(),
                kind: "simple",
                timeout: Duration::from_secs(86_400),
                ..CheckSpec::default()
            },
        ),
        (
            "cron",
            CheckSpec {
                name: "cron".to_owned(),
                kind: "cron",
                schedule: "*/5 * * * *".to_owned(),
                grace: Duration::from_secs(60),
                ..CheckSpec::default()
            },
        ),
        (
            "backup",
            CheckSpec {
                name: "backup".to_owned(),
                slug: "backup".to_owned(),
                ..CheckSpec::default()
            },
        ),
    ];
    let mut checks = Vec::new();
    let mut ids = Vec::new();
    for (name, spec) in specs {
        let check = insert_check(
            client,
            CheckSpec {
                project_id: Some(project.id),
                ..spec
            },
        )
        .await?;
        checks.push((name, check.code));
        ids.push(check.id);
    }
    hc_tests::factories::insert_channel(
        client,
        hc_tests::factories::ChannelSpec {
            project_id: Some(project.id),
            kind: "email",
            value: r#"{"value": "demo@example.org", "up": true, "down": true}"#.to_owned(),
            email_verified: true,
            checks: ids,
            ..Default::default()
        },
    )
    .await?;
    Ok((project, checks))
}

/// A service under a small `sh` supervisor whose stdin is a pipe from this process: when the
/// pipe closes (on [`Service::stop`], on drop, or when xtask dies) it sends SIGTERM.
///
/// Its own process group, so a Ctrl-C reaches only xtask, which then stops things in order.
struct Service {
    name: &'static str,
    child: Mutex<Child>,
    stdin: Option<ChildStdin>,
}

/// Background jobs of a non-interactive shell get `/dev/null` as stdin unless redirected
/// explicitly, hence `<&3`.
const SUPERVISOR: &str = r#"
exec 3<&0
"$@" </dev/null &
pid=$!
( cat <&3 >/dev/null; kill -TERM "$pid" 2>/dev/null ) &
exec 3<&-
wait "$pid"
"#;

impl Service {
    fn spawn(
        name: &'static str,
        binary: &Path,
        vars: &HashMap<String, String>,
    ) -> anyhow::Result<Service> {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(SUPERVISOR)
            .arg(format!("{name}-supervisor"))
            .arg(binary);
        // The developer's own DB_* settings would point it elsewhere; the rest (RUST_LOG,
        // PING_BODY_LIMIT, …) passes through.
        for (name, _) in std::env::vars_os() {
            let drop = name.to_str().is_some_and(|name| {
                name.starts_with("DB_")
                    || ["DB", "NOTIFY_SOCKET", "CREDENTIALS_DIRECTORY"].contains(&name)
            });
            if drop {
                command.env_remove(name);
            }
        }
        let mut child = command
            .envs(vars)
            .stdin(Stdio::piped())
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        let stdin = child.stdin.take();
        Ok(Service {
            name,
            child: Mutex::new(child),
            stdin,
        })
    }

    /// The exit status, if it has exited.
    fn try_status(&self) -> anyhow::Result<Option<ExitStatus>> {
        let mut child = self
            .child
            .lock()
            .map_err(|_| anyhow::anyhow!("{} lock poisoned", self.name))?;
        child
            .try_wait()
            .with_context(|| format!("cannot check on {}", self.name))
    }

    /// Resolves once the supervisor (and so the service) has exited, with its status.
    async fn exited(&self) -> anyhow::Result<ExitStatus> {
        loop {
            if let Some(status) = self.try_status()? {
                return Ok(status);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Closes the pipe (the supervisor sends SIGTERM) and waits for the exit.
    fn stop(mut self) -> anyhow::Result<ExitStatus> {
        drop(self.stdin.take());
        let mut child = self
            .child
            .lock()
            .map_err(|_| anyhow::anyhow!("{} lock poisoned", self.name))?;
        child
            .wait()
            .with_context(|| format!("cannot wait for {}", self.name))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if let Ok(child) = self.child.get_mut() {
            let _ = child.wait();
        }
    }
}
