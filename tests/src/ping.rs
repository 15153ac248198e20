//! `hchk-ping` for tests: the real server, in-process on `127.0.0.1:0` over a test database.

use std::collections::HashMap;
use std::net::SocketAddr;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::postgres::TestDb;

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
        let config = match hchk_ping::Config::from_vars(&vars) {
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
