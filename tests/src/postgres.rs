//! Real PostgreSQL servers for tests: one shared cluster per test process with a template
//! database holding the project schema, a fresh database per test, and extra clusters (a
//! primary with a hot standby) for fail-over tests.
//!
//! Each cluster runs under the supervisor of [`crate::supervisor`], whose stdin is a pipe from the
//! test process. When the pipe closes (the [`Cluster`] is dropped, or the test process exits or
//! crashes) it stops PostgreSQL (fast shutdown) and removes the data directory, so nothing
//! outlives the run. As root, `initdb`, `postgres` and `pg_basebackup` run as the `postgres`
//! user (they refuse to run as root) through `setpriv`, so a cluster's directory must be one that
//! user can enter: [`cluster_parent`] picks it, for the tests and for every `cargo xtask` command.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use deadpool_postgres::Pool;
use hc_core::config::DbConfig;
use tokio::sync::OnceCell;
use tokio_postgres::{Client, NoTls};

use crate::eventually::eventually;
use crate::scratch::unique_path_in;
use crate::supervisor::spawn_supervised;

/// How long a cluster may take to accept connections after it was started.
const START_PATIENCE: Duration = Duration::from_secs(60);

/// The database in the shared cluster that holds the project schema; every [`TestDb`] is a copy.
const TEMPLATE: &str = "hc_template";

/// How [`Cluster::stop_keeping_data`] stops the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// `pg_ctl stop -m fast` (SIGINT): sessions are ended, a shutdown checkpoint is written, and
    /// standbys receive all WAL first.
    Fast,
    /// `pg_ctl stop -m immediate` (SIGQUIT): sessions are cut off without an answer, as in a crash;
    /// the next start runs crash recovery.
    Immediate,
}

/// How to start a [`Cluster`]; the default suits tests.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// Flush commits to disk as in production. Tests run with `-F` (no fsync) for speed; a
    /// benchmark that claims durable acknowledgements must not.
    pub fsync: bool,
    /// Where to create the cluster's directory (default: the temporary directory) if the
    /// `postgres` user can enter it; otherwise [`cluster_parent`] picks another.
    pub parent: Option<PathBuf>,
}

/// A running PostgreSQL cluster on `127.0.0.1` with trust authentication for user `postgres`.
#[derive(Debug)]
pub struct Cluster {
    port: u16,
    base: PathBuf,
    fsync: bool,
    supervisor: Mutex<Option<(Child, ChildStdin)>>,
}

impl Cluster {
    /// Creates and starts a new, empty cluster on a free port, under the temporary directory.
    pub async fn start() -> anyhow::Result<Cluster> {
        Cluster::start_with(ClusterOptions::default()).await
    }

    /// Creates and starts a new, empty cluster on a free port in a fresh directory under
    /// [`cluster_parent`]`(parent)`: `parent` itself unless the `postgres` user cannot enter it.
    pub async fn start_in(parent: &Path) -> anyhow::Result<Cluster> {
        Cluster::start_with(ClusterOptions {
            fsync: false,
            parent: Some(parent.to_owned()),
        })
        .await
    }

    /// Creates and starts a new, empty cluster on a free port as `options` say.
    pub async fn start_with(options: ClusterOptions) -> anyhow::Result<Cluster> {
        let preferred = options.parent.unwrap_or_else(std::env::temp_dir);
        let base = make_base_dir(&cluster_parent(&preferred)?)?;
        let data = base.join("data");
        let initdb = bin("initdb");
        let status = tokio::task::spawn_blocking({
            let (base, data) = (base.clone(), data.clone());
            move || {
                as_postgres(&initdb)
                    .args([
                        "-A",
                        "trust",
                        "-U",
                        "postgres",
                        "-E",
                        "UTF8",
                        "--no-sync",
                        "-D",
                    ])
                    .arg(&data)
                    .current_dir(&base)
                    .stdout(Stdio::null())
                    .output()
            }
        })
        .await?
        .context("cannot run initdb")?;
        if !status.status.success() {
            let _ = std::fs::remove_dir_all(&base);
            bail!(
                "initdb failed: {}",
                String::from_utf8_lossy(&status.stderr).trim()
            );
        }
        Cluster::run(base, options.fsync).await
    }

    /// Creates a hot standby of `primary` with `pg_basebackup -R`, starts it on its own port and
    /// waits until it streams from the primary: only a connected standby is sent the rest of the
    /// WAL when the primary shuts down, so a promotion right after a stop loses nothing.
    pub async fn start_standby(primary: &Cluster) -> anyhow::Result<Cluster> {
        // Next to the primary, whose parent the postgres user can enter.
        let parent = primary
            .base
            .parent()
            .context("a cluster directory has a parent")?;
        let base = make_base_dir(parent)?;
        let data = base.join("data");
        let port = primary.port.to_string();
        let output = tokio::task::spawn_blocking({
            let (base, data) = (base.clone(), data.clone());
            move || {
                as_postgres(&bin("pg_basebackup"))
                    .args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres"])
                    .args(["-R", "-X", "stream", "-c", "fast", "--no-sync", "-D"])
                    .arg(&data)
                    .current_dir(&base)
                    .output()
            }
        })
        .await?
        .context("cannot run pg_basebackup")?;
        if !output.status.success() {
            let _ = std::fs::remove_dir_all(&base);
            bail!(
                "pg_basebackup failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let standby = Cluster::run(base, false).await?;
        let client = standby.connect("postgres").await?;
        eventually(START_PATIENCE, || async {
            let streaming: i64 = client
                .query_one(
                    "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'",
                    &[],
                )
                .await?
                .get(0);
            anyhow::ensure!(streaming == 1, "the standby does not stream yet");
            Ok(())
        })
        .await?;
        Ok(standby)
    }

    /// Starts the server on the data directory `base/data`, retrying on another port if the one
    /// picked was taken in the meantime.
    async fn run(base: PathBuf, fsync: bool) -> anyhow::Result<Cluster> {
        let mut last_error = None;
        for _ in 0..3 {
            let port = free_port()?;
            let cluster = Cluster {
                port,
                base: base.clone(),
                fsync,
                supervisor: Mutex::new(Some(spawn_supervisor(&base, port, fsync)?)),
            };
            match cluster.wait_until_ready().await {
                Ok(()) => return Ok(cluster),
                Err(err) => last_error = Some(err),
            }
            if !base.exists() {
                // The server failed and the supervisor already cleaned up; nothing to retry with.
                break;
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("postgres did not start")))
    }

    /// Stops the server like [`Cluster::stop`], but keeps the data directory so that
    /// [`Cluster::start_again`] can bring the same cluster back.
    ///
    /// If the test process dies before then, the directory is swept by the next run.
    pub fn stop_keeping_data(&self, mode: Shutdown) -> anyhow::Result<()> {
        let keep = self.base.join("keep");
        std::fs::write(&keep, b"").with_context(|| format!("cannot create {}", keep.display()))?;
        if mode == Shutdown::Immediate {
            let pid_file = self.base.join("data").join("postmaster.pid");
            let pids = std::fs::read_to_string(&pid_file)
                .with_context(|| format!("cannot read {}", pid_file.display()))?;
            let pid = pids.lines().next().context("empty postmaster.pid")?;
            // kill(1) rather than libc::kill: no unsafe code.
            let status = Command::new("kill")
                .args(["-s", "QUIT", pid])
                .status()
                .context("cannot run kill")?;
            anyhow::ensure!(status.success(), "kill -s QUIT {pid} failed");
        }
        self.stop()
    }

    /// Starts a cluster stopped by [`Cluster::stop_keeping_data`] again, on the same data
    /// directory and port, and waits until it accepts connections.
    pub async fn start_again(&self) -> anyhow::Result<()> {
        {
            let mut guard = self
                .supervisor
                .lock()
                .map_err(|_| anyhow::anyhow!("supervisor lock poisoned"))?;
            if guard.is_some() {
                bail!("postgres on port {} is still running", self.port);
            }
            *guard = Some(spawn_supervisor(&self.base, self.port, self.fsync)?);
        }
        self.wait_until_ready().await
    }

    async fn wait_until_ready(&self) -> anyhow::Result<()> {
        let ready = eventually(START_PATIENCE, || async {
            if let Some(failure) = self.exited()? {
                // Stop waiting: report through the Ok channel, handled below.
                return Ok(Err(failure));
            }
            self.connect("postgres").await.map(|_| Ok(()))
        })
        .await
        .with_context(|| format!("postgres on port {} did not accept connections", self.port))?;
        ready.map_err(|failure| anyhow::anyhow!("postgres on port {} exited: {failure}", self.port))
    }

    /// `Some(log)` when the supervisor has exited.
    fn exited(&self) -> anyhow::Result<Option<String>> {
        let mut guard = self
            .supervisor
            .lock()
            .map_err(|_| anyhow::anyhow!("supervisor lock poisoned"))?;
        let Some((child, _)) = guard.as_mut() else {
            return Ok(Some("stopped".to_owned()));
        };
        match child.try_wait()? {
            None => Ok(None),
            Some(status) => {
                let mut log = String::new();
                if let Some(stderr) = child.stderr.as_mut() {
                    let _ = stderr.read_to_string(&mut log);
                }
                *guard = None;
                Ok(Some(format!("{status}: {}", log.trim())))
            }
        }
    }

    /// The TCP port the server listens on (on `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding the data directory, the Unix socket and the server log.
    pub fn base_dir(&self) -> &Path {
        &self.base
    }

    /// Opens a connection to `dbname` as `postgres`, driven by a task on the current runtime.
    ///
    /// Keep the client within one test: each `#[tokio::test]` has its own runtime.
    pub async fn connect(&self, dbname: &str) -> anyhow::Result<Client> {
        let (client, connection) = tokio_postgres::Config::new()
            .host("127.0.0.1")
            .port(self.port)
            .user("postgres")
            .dbname(dbname)
            .application_name("hc-tests")
            .connect_timeout(Duration::from_secs(5))
            .connect(NoTls)
            .await
            .with_context(|| format!("cannot connect to {dbname} on port {}", self.port))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// The variables a service would read to use `dbname` in this cluster.
    pub fn vars(&self, dbname: &str) -> HashMap<String, String> {
        HashMap::from(
            [
                ("DB", "postgres"),
                ("DB_HOST", "127.0.0.1"),
                ("DB_PORT", &self.port.to_string()),
                ("DB_NAME", dbname),
                ("DB_USER", "postgres"),
                ("DB_SSLMODE", "disable"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        )
    }

    /// Creates an empty database (no project schema).
    pub async fn create_database(&self, dbname: &str) -> anyhow::Result<()> {
        self.connect("postgres")
            .await?
            .batch_execute(&format!("CREATE DATABASE \"{dbname}\" TEMPLATE template0"))
            .await
            .with_context(|| format!("cannot create database {dbname}"))
    }

    /// Waits until nobody is connected to `dbname`: `CREATE DATABASE … TEMPLATE` fails while
    /// anyone is, and a closed connection's backend takes a moment to go.
    pub async fn wait_until_unused(&self, dbname: &str) -> anyhow::Result<()> {
        eventually(Duration::from_secs(10), || async {
            let n: i64 = self
                .connect("postgres")
                .await?
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1",
                    &[&dbname],
                )
                .await?
                .try_get(0)?;
            anyhow::ensure!(n == 0, "{n} sessions still on {dbname}");
            Ok(())
        })
        .await
    }

    /// Runs a SQL file (for example Healthchecks' schema dump) in `dbname` as one transaction.
    ///
    /// psql meta-commands (`\restrict` lines that newer `pg_dump` writes) are skipped, so this
    /// does not depend on the psql version.
    pub async fn load_sql_file(&self, dbname: &str, path: &Path) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let sql: String = text
            .lines()
            .filter(|line| !line.starts_with('\\'))
            .flat_map(|line| [line, "\n"])
            .collect();
        // A fresh connection: the dump empties search_path for its session.
        self.connect(dbname)
            .await?
            .batch_execute(&sql)
            .await
            .with_context(|| format!("cannot load {} into {dbname}", path.display()))
    }

    /// Promotes a hot standby to a primary and waits until it accepts writes.
    pub async fn promote(&self) -> anyhow::Result<()> {
        let client = self.connect("postgres").await?;
        let promoted: bool = client
            .query_one("SELECT pg_promote(true, 60)", &[])
            .await
            .context("pg_promote failed")?
            .try_get(0)?;
        if !promoted {
            bail!("pg_promote did not finish within 60 s");
        }
        Ok(())
    }

    /// Stops the server (fast shutdown: sessions are ended) and waits until it is gone; the
    /// supervisor removes the data directory.
    pub fn stop(&self) -> anyhow::Result<()> {
        let taken = self
            .supervisor
            .lock()
            .map_err(|_| anyhow::anyhow!("supervisor lock poisoned"))?
            .take();
        if let Some((mut child, stdin)) = taken {
            drop(stdin);
            child
                .wait()
                .context("cannot wait for the postgres supervisor")?;
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The shared cluster of this test process, started on first use, with [`TEMPLATE`] loaded.
pub async fn shared_cluster() -> &'static Cluster {
    static SHARED: OnceCell<Cluster> = OnceCell::const_new();
    let result = SHARED
        .get_or_try_init(|| async {
            let cluster = Cluster::start().await?;
            cluster.create_database(TEMPLATE).await?;
            let client = cluster.connect(TEMPLATE).await?;
            hc_core::schema::apply(&client).await?;
            drop(client);
            cluster.wait_until_unused(TEMPLATE).await?;
            anyhow::Ok(cluster)
        })
        .await;
    match result {
        Ok(cluster) => cluster,
        Err(err) => panic!("cannot start the test PostgreSQL: {err:#}"),
    }
}

/// A database of its own for one test, in the shared cluster.
///
/// Dropping it drops the database (`WITH (FORCE)`, ending the pool's sessions).
#[derive(Debug)]
pub struct TestDb {
    /// Database name.
    pub name: String,
    /// Configuration as a service would parse it from [`TestDb::vars`].
    pub config: DbConfig,
    /// A pool on this database (`application_name` `hc-tests`).
    pub pool: Pool,
    cluster: &'static Cluster,
}

impl TestDb {
    /// A database holding the project schema (a copy of the template), and no rows.
    pub async fn new() -> TestDb {
        TestDb::copy_of(TEMPLATE).await
    }

    /// A copy of the database `template` of the shared cluster, which nobody may be connected to
    /// (for example the Healthchecks app's migrated schema, see [`crate::healthchecks`]).
    pub async fn copy_of(template: &str) -> TestDb {
        let cluster = shared_cluster().await;
        let name = next_name();
        let create = format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\"");
        let created = async {
            cluster
                .connect("postgres")
                .await?
                .batch_execute(&create)
                .await
                .map_err(anyhow::Error::from)
        };
        if let Err(err) = created.await {
            panic!("cannot create test database {name}: {err:#}");
        }
        TestDb::open(cluster, name)
    }

    /// A database without any table.
    pub async fn empty() -> TestDb {
        let cluster = shared_cluster().await;
        let name = next_name();
        if let Err(err) = cluster.create_database(&name).await {
            panic!("{err:#}");
        }
        TestDb::open(cluster, name)
    }

    /// A database holding what the SQL file `path` creates (for example Healthchecks' dump).
    pub async fn from_sql_file(path: &Path) -> TestDb {
        let db = TestDb::empty().await;
        if let Err(err) = db.cluster.load_sql_file(&db.name, path).await {
            panic!("{err:#}");
        }
        db
    }

    fn open(cluster: &'static Cluster, name: String) -> TestDb {
        let vars = cluster.vars(&name);
        let config = DbConfig::from_vars(&vars).expect("the harness's variables are valid");
        let pool =
            hc_core::db::create_pool(&config, "hc-tests").expect("the harness's config is valid");
        TestDb {
            name,
            config,
            pool,
            cluster,
        }
    }

    /// A pooled connection.
    pub async fn client(&self) -> deadpool_postgres::Object {
        match self.pool.get().await {
            Ok(client) => client,
            Err(err) => panic!("cannot connect to test database {}: {err}", self.name),
        }
    }

    /// The variables a service would read to use this database (`DB`, `DB_HOST`, `DB_PORT`, …).
    pub fn vars(&self) -> HashMap<String, String> {
        self.cluster.vars(&self.name)
    }

    /// The cluster the database lives in.
    pub fn cluster(&self) -> &'static Cluster {
        self.cluster
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Async work in Drop: a thread with its own small runtime, because the test's runtime
        // may be shutting down (or panicking) right now.
        let cluster = self.cluster;
        let drop_sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                cluster
                    .connect("postgres")
                    .await?
                    .batch_execute(&drop_sql)
                    .await?;
                anyhow::Ok(())
            })
        });
        // A database left behind only costs disk space until the cluster goes away.
        let _ = dropper.join();
    }
}

fn next_name() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!("test_{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// The directory of PostgreSQL's server programs: Debian's `/usr/lib/postgresql/<newest>/bin`,
/// else whatever `PATH` finds.
fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// The path of a PostgreSQL program.
pub fn bin(program: &str) -> PathBuf {
    match bin_dir() {
        Some(dir) => dir.join(program),
        None => PathBuf::from(program),
    }
}

/// Where clusters for `preferred` go: `preferred` itself (created if missing) when the server's
/// user can enter it, else [`FALLBACK_PARENT`]. Every cluster the harness creates goes through
/// here, so tests, `cargo xtask dev` and the benchmarks all get a directory that works.
///
/// As root the server runs as `postgres`, which cannot pass a private home such as `/root`
/// (mode 0700): a build area under `$HOME/.cache`, as on CI, or a `TMPDIR` under `/root` would
/// make `initdb` fail with "Permission denied".
pub fn cluster_parent(preferred: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(preferred)
        .with_context(|| format!("cannot create {}", preferred.display()))?;
    if !is_root() || reachable_by_postgres(preferred)? {
        return Ok(preferred.to_owned());
    }
    let fallback = Path::new(FALLBACK_PARENT);
    if reachable_by_postgres(fallback)? {
        Ok(fallback.to_owned())
    } else {
        bail!(
            "the postgres user can enter neither {} nor {FALLBACK_PARENT}",
            preferred.display()
        )
    }
}

/// Where clusters go when the postgres user cannot enter the preferred directory.
///
/// `/var/tmp` rather than `/tmp`: it is kept across reboots and so on disk even where `/tmp` is a
/// tmpfs, and a benchmark that runs PostgreSQL with fsync on must really write to a disk.
pub const FALLBACK_PARENT: &str = "/var/tmp";

/// Whether the `postgres` user may search every directory from `/` down to `dir`.
fn reachable_by_postgres(dir: &Path) -> anyhow::Result<bool> {
    let (uid, gid) = postgres_ids()?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?;
    for ancestor in dir.ancestors() {
        let meta = std::fs::metadata(ancestor)
            .with_context(|| format!("cannot read {}", ancestor.display()))?;
        let mode = meta.mode();
        let bit = if meta.uid() == uid {
            0o100
        } else if meta.gid() == gid {
            0o010
        } else {
            0o001
        };
        if mode & bit == 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether this process runs as root (servers then run as `postgres`, and OpenSMTPD can start).
pub fn is_root() -> bool {
    // The owner of /proc/self is the effective user: no unsafe geteuid() needed.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn setpriv_args() -> [&'static str; 4] {
    [
        "setpriv",
        "--reuid=postgres",
        "--regid=postgres",
        "--init-groups",
    ]
}

/// A command for a program that refuses to run as root: as root it runs as `postgres`.
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let [setpriv, rest @ ..] = setpriv_args();
        let mut command = Command::new(setpriv);
        command.args(rest).arg("--").arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// A fresh directory for one cluster under `parent`, owned by the user the server runs as,
/// mode 0700.
fn make_base_dir(parent: &Path) -> anyhow::Result<PathBuf> {
    static SWEPT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    if let Ok(mut swept) = SWEPT.lock() {
        if !swept.iter().any(|dir| dir == parent) {
            sweep_dead_runs(parent);
            swept.push(parent.to_owned());
        }
    }
    let base = unique_path_in(parent, "hc-pg");
    std::fs::create_dir(&base).with_context(|| format!("cannot create {}", base.display()))?;
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o700))?;
    if is_root() {
        let (uid, gid) = postgres_ids()?;
        std::os::unix::fs::chown(&base, Some(uid), Some(gid))
            .with_context(|| format!("cannot give {} to postgres", base.display()))?;
    }
    Ok(base)
}

/// Removes cluster directories of test processes that no longer exist.
///
/// A running cluster's supervisor removes its own directory, even after a crash of the test
/// process; only a run killed during `initdb` or `pg_basebackup` leaves one behind.
fn sweep_dead_runs(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix("hc-pg-"))
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Starts the supervisor running `postgres` on the data directory `base/data` and `port`
/// (without fsync unless `fsync`); SIGINT is PostgreSQL's fast shutdown.
fn spawn_supervisor(base: &Path, port: u16, fsync: bool) -> anyhow::Result<(Child, ChildStdin)> {
    let postgres = bin("postgres");
    let data = base.join("data");
    let port = port.to_string();
    let mut server: Vec<&OsStr> = Vec::new();
    if is_root() {
        server.extend(setpriv_args().map(OsStr::new));
    }
    server.extend([postgres.as_os_str(), OsStr::new("-D"), data.as_os_str()]);
    server.extend([OsStr::new("-k"), base.as_os_str()]);
    server.extend(["-c", "listen_addresses=127.0.0.1", "-p", &port].map(OsStr::new));
    server.extend(["-c", "max_connections=200"].map(OsStr::new));
    if !fsync {
        server.push(OsStr::new("-F"));
    }
    spawn_supervised("hc-test-postgres", base, "INT", &server)
}

/// The `postgres` user's uid and gid, from `/etc/passwd`.
fn postgres_ids() -> anyhow::Result<(u32, u32)> {
    user_ids("postgres")
        .context("install PostgreSQL (apt-get install postgresql), which creates the user")
}

/// A user's uid and gid, from `/etc/passwd`.
pub(crate) fn user_ids(user: &str) -> anyhow::Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").context("cannot read /etc/passwd")?;
    for line in passwd.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        if let [name, _, uid, gid, ..] = fields[..] {
            if name == user {
                return Ok((uid.parse()?, gid.parse()?));
            }
        }
    }
    bail!("there is no user {user}")
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}
