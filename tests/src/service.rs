//! A service binary running as a child process for tests: only the given variables in its
//! environment, a `NOTIFY_SOCKET` bound by the test to see `READY=1`, its log in a file, and
//! signals by name. Dropping it kills the process.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::net::UnixDatagram;

use crate::binaries::binary;
use crate::eventually::eventually;
use crate::scratch::ScratchDir;

/// A built service binary running as a child process.
pub struct ServiceProcess {
    name: String,
    child: Child,
    notify: UnixDatagram,
    dir: ScratchDir,
}

impl ServiceProcess {
    /// Starts the binary `name` with only `vars` (plus `NOTIFY_SOCKET`, and `RUST_LOG=info`
    /// unless `vars` sets it) in its environment; its log goes to a file, see
    /// [`ServiceProcess::log`].
    pub fn start(name: &str, vars: &HashMap<String, String>) -> anyhow::Result<ServiceProcess> {
        ServiceProcess::start_path(&binary(name), vars)
    }

    /// [`ServiceProcess::start`] for the binary at `path` (a release build, say).
    pub fn start_path(
        path: &Path,
        vars: &HashMap<String, String>,
    ) -> anyhow::Result<ServiceProcess> {
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let dir = ScratchDir::new(&format!("{name}-process"))?;
        let socket = dir.path().join("notify");
        let notify = UnixDatagram::bind(&socket).context("cannot bind the notify socket")?;
        let log = std::fs::File::create(dir.path().join("log"))?;
        let child = Command::new(path)
            .env_clear()
            .env("RUST_LOG", "info")
            .envs(vars)
            .env("NOTIFY_SOCKET", &socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", path.display()))?;
        Ok(ServiceProcess {
            name,
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
                    "{} exited with {status} before READY=1: {}",
                    self.name,
                    self.log()
                );
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "no READY=1 from {} within {patience:?}: {}",
                    self.name,
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

    /// The exit status if the process has exited, `None` while it runs.
    pub fn exited(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Waits for the process to exit and returns its status.
    pub async fn wait_exit(&mut self, patience: Duration) -> anyhow::Result<ExitStatus> {
        let child = &mut self.child;
        let status = eventually(patience, || {
            let exited = child.try_wait();
            async move { exited?.context("still running") }
        })
        .await;
        status.with_context(|| format!("{} log: {}", self.name, self.log()))
    }

    /// The process's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
