//! The load generator of `bench ping`: keep-alive HTTP/1.1 clients (hyper) on the current tokio
//! runtime, each pinging random checks of a set, either closed-loop (the next request when the
//! answer arrives) or open-loop (requests at scheduled times, latency counted from the schedule so
//! a stalled server cannot hide its stalls).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// How clients pace their requests.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// Each client sends its next request as soon as the previous one is answered.
    Closed,
    /// All clients together send `rate` requests per second at fixed times.
    Open {
        /// Requests per second, over all clients.
        rate: f64,
    },
}

/// What a load run saw.
#[derive(Debug, Default)]
pub struct LoadResult {
    /// Answers with 200.
    pub ok: u64,
    /// Other answers and broken connections.
    pub failed: u64,
    /// Latency of every answer, in microseconds.
    pub latencies_us: Vec<u32>,
    /// From the first request until the last answer.
    pub elapsed: Duration,
}

impl LoadResult {
    /// The `p`-quantile (0..=1) of the latencies, in milliseconds.
    pub fn quantile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((p * self.latencies_us.len() as f64) as usize).min(self.latencies_us.len() - 1);
        f64::from(self.latencies_us[i]) / 1000.0
    }
}

/// Opens `clients` connections to `addr`, then runs them for `duration` and waits for every
/// answer in flight. Latencies come back sorted.
pub async fn run(
    addr: SocketAddr,
    paths: Arc<Vec<String>>,
    clients: usize,
    pace: Pace,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    let mut senders = Vec::with_capacity(clients);
    for _ in 0..clients {
        senders.push(connect(addr).await?);
    }
    let start = Instant::now();
    let end = start + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for (k, sender) in senders.into_iter().enumerate() {
        let client = Client {
            sender,
            paths: paths.clone(),
            rng: 0x9e37_79b9_7f4a_7c15 ^ (k as u64).wrapping_mul(0xbf58_476d_1ce4_e5b9),
        };
        tasks.spawn(client.run(k, clients, pace, start, end));
    }
    let mut total = LoadResult::default();
    while let Some(result) = tasks.join_next().await {
        let result = result.context("a load client panicked")?;
        total.ok += result.ok;
        total.failed += result.failed;
        total.latencies_us.extend(result.latencies_us);
    }
    total.elapsed = start.elapsed();
    total.latencies_us.sort_unstable();
    Ok(total)
}

/// One GET on a fresh connection; the status and the body.
pub async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<(StatusCode, String)> {
    let mut sender = connect(addr).await?;
    let response = sender.send_request(request(path)?).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Empty<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

fn request(path: &str) -> anyhow::Result<Request<Empty<Bytes>>> {
    Ok(Request::get(path)
        .header(header::HOST, "127.0.0.1")
        .header(header::USER_AGENT, "hc-bench")
        .body(Empty::new())?)
}

struct Client {
    sender: SendRequest<Empty<Bytes>>,
    paths: Arc<Vec<String>>,
    rng: u64,
}

impl Client {
    /// Client `k` of `clients`: in open loop, its requests are numbers `k`, `k + clients`, … of
    /// the whole schedule.
    async fn run(
        mut self,
        k: usize,
        clients: usize,
        pace: Pace,
        start: Instant,
        end: Instant,
    ) -> LoadResult {
        let mut result = LoadResult::default();
        for n in 0u64.. {
            let scheduled = match pace {
                Pace::Closed => Instant::now(),
                Pace::Open { rate } => {
                    let slot = n * clients as u64 + k as u64;
                    let at = start + Duration::from_secs_f64(slot as f64 / rate);
                    if at >= end {
                        break;
                    }
                    tokio::time::sleep_until(at).await;
                    at
                }
            };
            if scheduled >= end {
                break;
            }
            let index = self.next_random() % self.paths.len();
            let paths = self.paths.clone();
            let path = &paths[index];
            let answered = async {
                self.sender.ready().await?;
                let response = self.sender.send_request(request(path)?).await?;
                let status = response.status();
                response.into_body().collect().await?;
                anyhow::Ok(status)
            }
            .await;
            let latency = u32::try_from(scheduled.elapsed().as_micros()).unwrap_or(u32::MAX);
            match answered {
                Ok(StatusCode::OK) => {
                    result.ok += 1;
                    result.latencies_us.push(latency);
                }
                Ok(_) => {
                    result.failed += 1;
                    result.latencies_us.push(latency);
                }
                Err(_) => {
                    // The connection is gone; this client stops.
                    result.failed += 1;
                    break;
                }
            }
        }
        result
    }

    /// A PCG step: cheap, and deterministic per client.
    fn next_random(&mut self) -> usize {
        self.rng = self
            .rng
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.rng >> 33) as usize
    }
}
