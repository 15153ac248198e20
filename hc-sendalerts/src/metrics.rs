//! The sender's Prometheus metrics and the small local HTTP server that exposes them at
//! `GET /metrics` (`SENDALERTS_METRICS_LISTEN`).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Counters and gauges of one sender.
#[derive(Debug, Default)]
pub struct Metrics {
    notifications: Mutex<BTreeMap<(String, &'static str), u64>>,
    pending: AtomicU64,
    unprocessed_flips: AtomicU64,
    in_flight: AtomicU64,
    iterations: AtomicU64,
    iteration_errors: AtomicU64,
    iteration_micros: AtomicU64,
    last_success: AtomicI64,
}

impl Metrics {
    /// Counts a recorded delivery of channel `kind` ending in `outcome` (`ok`, `error`,
    /// `disabled`).
    pub fn count_notification(&self, kind: &str, outcome: &'static str) {
        let mut map = self
            .notifications
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *map.entry((kind.to_owned(), outcome)).or_default() += 1;
    }

    /// Sets the pending notifications seen by the last recovery scan.
    pub fn set_pending(&self, pending: usize) {
        self.pending.store(pending as u64, Ordering::Relaxed);
    }

    /// Sets the unprocessed flips seen by the last count.
    pub fn set_unprocessed_flips(&self, flips: u64) {
        self.unprocessed_flips.store(flips, Ordering::Relaxed);
    }

    /// Sets the deliveries running on this sender.
    pub fn set_in_flight(&self, in_flight: usize) {
        self.in_flight.store(in_flight as u64, Ordering::Relaxed);
    }

    /// Records one loop iteration that took `took`, successful or not.
    pub fn iteration(&self, ok: bool, took: Duration) {
        self.iterations.fetch_add(1, Ordering::Relaxed);
        self.iteration_micros.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        if ok {
            self.last_success
                .store(chrono::Utc::now().timestamp(), Ordering::Relaxed);
        } else {
            self.iteration_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP hc_sendalerts_notifications_total Deliveries recorded, by channel kind and outcome.\n");
        out.push_str("# TYPE hc_sendalerts_notifications_total counter\n");
        for ((kind, outcome), count) in self
            .notifications
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "hc_sendalerts_notifications_total{{kind=\"{}\",outcome=\"{outcome}\"}} {count}",
                escape(kind)
            );
        }
        let gauges = [
            (
                "hc_sendalerts_unprocessed_flips",
                "Flips not yet processed (last count).",
                &self.unprocessed_flips,
            ),
            (
                "hc_sendalerts_pending_notifications",
                "Notifications recorded but not yet delivered (last recovery scan).",
                &self.pending,
            ),
            (
                "hc_sendalerts_in_flight",
                "Deliveries running on this sender.",
                &self.in_flight,
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        let micros = self.iteration_micros.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP hc_sendalerts_iterations_total Loop iterations.\n# TYPE hc_sendalerts_iterations_total counter\nhc_sendalerts_iterations_total {}\n\
             # HELP hc_sendalerts_iteration_errors_total Loop iterations that failed (database errors).\n# TYPE hc_sendalerts_iteration_errors_total counter\nhc_sendalerts_iteration_errors_total {}\n\
             # HELP hc_sendalerts_iteration_seconds_total Time spent in loop iterations.\n# TYPE hc_sendalerts_iteration_seconds_total counter\nhc_sendalerts_iteration_seconds_total {}\n\
             # HELP hc_sendalerts_last_success_timestamp_seconds When an iteration last succeeded.\n# TYPE hc_sendalerts_last_success_timestamp_seconds gauge\nhc_sendalerts_last_success_timestamp_seconds {}",
            self.iterations.load(Ordering::Relaxed),
            self.iteration_errors.load(Ordering::Relaxed),
            micros as f64 / 1e6,
            self.last_success.load(Ordering::Relaxed),
        );
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Serves `GET /metrics` on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, shutdown: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.cancelled() => return,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                    let metrics = metrics.clone();
                    async move {
                        let response = if request.uri().path() == "/metrics" {
                            Response::builder()
                                .header("content-type", "text/plain; version=0.0.4")
                                .body(Full::new(Bytes::from(metrics.render())))
                        } else {
                            Response::builder()
                                .status(StatusCode::NOT_FOUND)
                                .body(Full::new(Bytes::from_static(b"not found\n")))
                        };
                        Ok::<_, Infallible>(response.unwrap_or_default())
                    }
                });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .header_read_timeout(Duration::from_secs(10))
                .timer(hyper_util::rt::TokioTimer::new())
                .serve_connection(io, service)
                .await;
        });
    }
}
