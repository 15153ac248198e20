//! Counters and histograms for `GET /metrics`, rendered in the Prometheus text format.
//!
//! Plain atomics: the hot path increments a counter or two per ping and never takes a lock.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::pings::PingKind;

const KINDS: [PingKind; 5] = [
    PingKind::Success,
    PingKind::Start,
    PingKind::Fail,
    PingKind::Log,
    PingKind::Ign,
];
const STATUSES: [u16; 10] = [200, 201, 400, 404, 405, 408, 409, 413, 500, 503];
const BATCH_BUCKETS: [f64; 11] = [
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0,
];
const SECONDS_BUCKETS: [f64; 12] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
];

/// A cumulative histogram with fixed buckets.
#[derive(Debug)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    fn observe(&self, value: f64) {
        if let Some(i) = self.bounds.iter().position(|b| value <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros
            .fetch_add((value * 1e6) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// The service's metrics.
#[derive(Debug)]
pub struct Metrics {
    pings: [AtomicU64; 5],
    responses: [AtomicU64; 10],
    batches: Histogram,
    commit: Histogram,
    db_errors: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            pings: Default::default(),
            responses: Default::default(),
            batches: Histogram::new(&BATCH_BUCKETS),
            commit: Histogram::new(&SECONDS_BUCKETS),
            db_errors: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// A committed ping of `kind`.
    pub fn count_ping(&self, kind: PingKind) {
        if let Some(i) = KINDS.iter().position(|k| *k == kind) {
            self.pings[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A response with `status`.
    pub fn count_response(&self, status: u16) {
        if let Some(i) = STATUSES.iter().position(|s| *s == status) {
            self.responses[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A committed batch of `size` pings that took `latency` from BEGIN to COMMIT.
    pub fn observe_batch(&self, size: usize, latency: Duration) {
        self.batches.observe(size as f64);
        self.commit.observe(latency.as_secs_f64());
    }

    /// A failed attempt to write a batch.
    pub fn count_db_error(&self) {
        self.db_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The text exposition, with the queue's current state.
    pub fn render(&self, queue_length: usize, dwell: Duration) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP hchk_ping_pings_total Pings committed, by kind.\n# TYPE hchk_ping_pings_total counter\n");
        for (kind, count) in KINDS.iter().zip(&self.pings) {
            let _ = writeln!(
                out,
                "hchk_ping_pings_total{{kind=\"{}\"}} {}",
                kind.label(),
                count.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP hchk_ping_responses_total Responses to ping requests, by status code.\n# TYPE hchk_ping_responses_total counter\n");
        for (status, count) in STATUSES.iter().zip(&self.responses) {
            let _ = writeln!(
                out,
                "hchk_ping_responses_total{{status=\"{status}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP hchk_ping_queue_length Pings waiting for a batch.\n# TYPE hchk_ping_queue_length gauge\nhchk_ping_queue_length {queue_length}"
        );
        let _ = writeln!(
            out,
            "# HELP hchk_ping_dwell_seconds Age of the oldest ping not yet committed.\n# TYPE hchk_ping_dwell_seconds gauge\nhchk_ping_dwell_seconds {}",
            dwell.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "# HELP hchk_ping_db_errors_total Failed attempts to write a batch.\n# TYPE hchk_ping_db_errors_total counter\nhchk_ping_db_errors_total {}",
            self.db_errors.load(Ordering::Relaxed)
        );
        self.batches.render(
            &mut out,
            "hchk_ping_batch_size",
            "Pings per committed batch.",
        );
        self.commit.render(
            &mut out,
            "hchk_ping_commit_seconds",
            "Time from BEGIN to COMMIT of a batch.",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let metrics = Metrics::default();
        metrics.count_ping(PingKind::Fail);
        metrics.count_response(200);
        metrics.count_response(200);
        metrics.observe_batch(3, Duration::from_millis(4));
        metrics.observe_batch(1, Duration::from_millis(1));
        let text = metrics.render(7, Duration::from_millis(1500));
        assert!(text.contains("hchk_ping_pings_total{kind=\"fail\"} 1\n"));
        assert!(text.contains("hchk_ping_responses_total{status=\"200\"} 2\n"));
        assert!(text.contains("hchk_ping_queue_length 7\n"));
        assert!(text.contains("hchk_ping_dwell_seconds 1.5\n"));
        assert!(text.contains("hchk_ping_batch_size_bucket{le=\"1\"} 1\n"));
        assert!(text.contains("hchk_ping_batch_size_bucket{le=\"5\"} 2\n"));
        assert!(text.contains("hchk_ping_batch_size_count 2\n"));
    }
}
