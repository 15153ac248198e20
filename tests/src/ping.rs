//! `hchk-ping` for tests: the real server, in-process on `127.0.0.1:0` over a test database
//! ([`PingServer`]), or the built binary as a process with a `NOTIFY_SOCKET` ([`PingProcess`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::net::UnixDatagram;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::binaries::binary;
use crate::eventually::eventually;
use crate::postgres::TestDb;
use crate::scratch::ScratchDir;

/// A running in-process `hchk-ping`; dropping it stops it.
pub struct PingServer {
    /// Where it listens.
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl PingServer {
    /// Starts `hchk-ping` on `db` with its default settings.
    pub async fn start(db: &TestDb) -> PingServer {
        PingServer::start_with(db, &[]).await
    }

    /// Starts `hchk-ping` on `db` with extra variables (`PING_BODY_LIMIT`, `SITE_ROOT`, …).
    pub async fn start_with(db: &TestDb, extra: &[(&str, &str)]) -> PingServer {
        let mut vars: HashMap<String, String> = db.vars();
        for (name, value) in extra {
            vars.insert((*name).to_owned(), (*value).to_owned());
        }
        PingServer::start_with_vars(&vars).await
    }

    /// Starts `hchk-ping` with exactly these variables (a database of another cluster, …).
    pub async fn start_with_vars(vars: &HashMap<String, String>) -> PingServer {
        let config = match hchk_ping::Config::from_vars(vars) {
            Ok(config) => config,
            Err(err) => panic!("bad hchk-ping test configuration: {}", err.0),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("can bind a loopback port");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(hchk_ping::serve(listener, config, shutdown.clone()));
        PingServer {
            addr,
            shutdown,
            task: Some(task),
        }
    }

    /// Stops the server (as SIGTERM would) and waits for it to finish.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        match self.task.take() {
            Some(task) => task.await?,
            None => Ok(()),
        }
    }
}

impl Drop for PingServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The built `hchk-ping` binary running as a child process, listening on a free loopback port,
/// with a `NOTIFY_SOCKET` bound by the test. Dropping it kills the process.
pub struct PingProcess {
    /// Where it listens.
    pub addr: SocketAddr,
    child: Child,
    notify: UnixDatagram,
    dir: ScratchDir,
}

impl PingProcess {
    /// Starts the binary with only `vars` (plus `HCHK_PING_LISTEN`, `NOTIFY_SOCKET` and
    /// `RUST_LOG`) in its environment; its log goes to a file, see [`PingProcess::log`].
    pub fn start(vars: &HashMap<String, String>) -> anyhow::Result<PingProcess> {
        let dir = ScratchDir::new("hc-ping-process")?;
        let socket = dir.path().join("notify");
        let notify = UnixDatagram::bind(&socket).context("cannot bind the notify socket")?;
        let addr = free_addr()?;
        let log = std::fs::File::create(dir.path().join("log"))?;
        let child = Command::new(binary("hchk-ping"))
            .env_clear()
            .envs(vars)
            .env("HCHK_PING_LISTEN", addr.to_string())
            .env("NOTIFY_SOCKET", &socket)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("cannot start hchk-ping")?;
        Ok(PingProcess {
            addr,
            child,
            notify,
            dir,
        })
    }

    /// Waits for `READY=1` on the notify socket; fails if the process exits first.
    pub async fn wait_ready(&mut self, patience: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + patience;
        let mut buf = vec![0_u8; 4096];
        loop {
            let received =
                tokio::time::timeout(Duration::from_millis(100), self.notify.recv(&mut buf)).await;
            if let Ok(n) = received {
                let message = String::from_utf8_lossy(&buf[..n?]).into_owned();
                if message.lines().any(|line| line == "READY=1") {
                    return Ok(());
                }
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "hchk-ping exited with {status} before READY=1: {}",
                    self.log()
                );
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "no READY=1 from hchk-ping within {patience:?}: {}",
                    self.log()
                );
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`TERM`, `KILL`, …) with kill(1), which needs no unsafe code.
    pub fn signal(&self, name: &str) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()
            .context("cannot run kill")?;
        anyhow::ensure!(status.success(), "kill -s {name} failed: {status}");
        Ok(())
    }

    /// SIGKILLs the process and reaps it.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Waits for the process to exit and returns its status.
    pub async fn wait_exit(&mut self, patience: Duration) -> anyhow::Result<ExitStatus> {
        let child = &mut self.child;
        let status = eventually(patience, || {
            let exited = child.try_wait();
            async move { exited?.context("still running") }
        })
        .await;
        status.with_context(|| format!("hchk-ping log: {}", self.log()))
    }

    /// The process's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

impl Drop for PingProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback address with a port nobody listens on right now.
fn free_addr() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?)
}
