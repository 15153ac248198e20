//! A TCP proxy that delays every byte by a fixed time, to put a network round trip between a
//! service and PostgreSQL on one machine (the kernel here has no `netem`).
//!
//! Per direction, each chunk read is stamped with `now + round_trip / 2` and written when due, so
//! order and bandwidth are preserved and only latency is added. [`DelayProxy::kill`] (or dropping
//! the proxy) closes the listener and every connection at once, like a partition.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Bytes read at most per chunk.
const CHUNK: usize = 64 * 1024;

/// A running delay proxy on `127.0.0.1`, driven by tasks on the runtime that started it.
#[derive(Debug)]
pub struct DelayProxy {
    addr: SocketAddr,
    stop: CancellationToken,
}

impl DelayProxy {
    /// Listens on a free loopback port and forwards each connection to `upstream`, adding
    /// `round_trip / 2` in each direction.
    pub async fn start(upstream: SocketAddr, round_trip: Duration) -> io::Result<DelayProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let one_way = round_trip / 2;
        tokio::spawn({
            let stop = stop.clone();
            async move {
                loop {
                    let accepted = tokio::select! {
                        accepted = listener.accept() => accepted,
                        () = stop.cancelled() => return,
                    };
                    let Ok((client, _)) = accepted else {
                        continue;
                    };
                    tokio::spawn(proxy_connection(client, upstream, one_way, stop.clone()));
                }
            }
        });
        Ok(DelayProxy { addr, stop })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port clients connect to (on `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Stops accepting and cuts every connection: a network partition.
    pub fn kill(&self) {
        self.stop.cancel();
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn proxy_connection(
    client: TcpStream,
    upstream: SocketAddr,
    one_way: Duration,
    stop: CancellationToken,
) {
    let server = tokio::select! {
        server = TcpStream::connect(upstream) => server,
        () = stop.cancelled() => return,
    };
    let Ok(server) = server else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::spawn(delay_direction(
        client_read,
        server_write,
        one_way,
        stop.clone(),
    ));
    tokio::spawn(delay_direction(server_read, client_write, one_way, stop));
}

/// Copies `from` to `to`, each chunk `delay` after it was read; ends on EOF, an error or `stop`.
async fn delay_direction(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    delay: Duration,
    stop: CancellationToken,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Bytes)>();
    let reader = async move {
        loop {
            let mut buf = BytesMut::with_capacity(CHUNK);
            match from.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    if tx.send((Instant::now() + delay, buf.freeze())).is_err() {
                        return;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        // The reader saw EOF and everything before it was delivered: pass the EOF on.
        let _ = to.shutdown().await;
    };
    let both = async {
        // The reader ends first on EOF; the writer still delivers what is queued.
        tokio::join!(reader, writer);
    };
    tokio::select! {
        () = both => {}
        () = stop.cancelled() => {}
    }
}
