//! `hchk-ping` for tests: the real server, in-process on `127.0.0.1:0` over a test database
//! ([`PingServer`]), or the built binary as a process with a `NOTIFY_SOCKET` ([`PingProcess`]).

use std::collections::HashMap;
use std::net::SocketAddr;

use anyhow::Context;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::postgres::TestDb;
use crate::service::ServiceProcess;

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
    process: ServiceProcess,
}

impl PingProcess {
    /// Starts the binary with only `vars` (plus `HCHK_PING_LISTEN`, `NOTIFY_SOCKET` and
    /// `RUST_LOG`) in its environment; its log goes to a file, see [`ServiceProcess::log`].
    pub fn start(vars: &HashMap<String, String>) -> anyhow::Result<PingProcess> {
        let addr = free_addr()?;
        let mut vars = vars.clone();
        vars.insert("HCHK_PING_LISTEN".to_owned(), addr.to_string());
        Ok(PingProcess {
            addr,
            process: ServiceProcess::start("hchk-ping", &vars)?,
        })
    }
}

impl std::ops::Deref for PingProcess {
    type Target = ServiceProcess;

    fn deref(&self) -> &ServiceProcess {
        &self.process
    }
}

impl std::ops::DerefMut for PingProcess {
    fn deref_mut(&mut self) -> &mut ServiceProcess {
        &mut self.process
    }
}

/// A loopback address with a port nobody listens on right now.
fn free_addr() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?)
}
