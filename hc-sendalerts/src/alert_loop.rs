//! The alert loop (§3.1): going down, then flips, then deliveries, over and over; busy passes
//! follow each other at once, an idle loop waits until the next check is due (at most
//! `SENDALERTS_IDLE_WAIT`, 2 s), and database failures are retried with capped backoff.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use deadpool_postgres::Pool;
use tokio_util::sync::CancellationToken;

use crate::deliveries::Deliveries;
use crate::flips::process_flips;
use crate::going_down::{handle_going_down_batch, next_deadline};
use crate::metrics::Metrics;

/// Due checks handled per transaction.
const GOING_DOWN_BATCH: i64 = 200;
/// Flips processed per transaction.
const FLIP_BATCH: i64 = 100;
/// No new flips are claimed while this many deliveries run on this sender.
const MAX_IN_FLIGHT: usize = 2000;
/// Passes `--once` tries before it gives up.
const ONCE_ATTEMPTS: u32 = 5;
/// The shortest idle wait, so a due check held by another sender does not make this one spin.
const MIN_IDLE_WAIT: Duration = Duration::from_millis(50);

/// The parts one loop needs.
pub struct AlertLoop {
    /// The database.
    pub pool: Pool,
    /// Sends notifications.
    pub deliveries: Deliveries,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// `SECRET_KEY`, for notification codes.
    pub secret: String,
    /// The longest idle wait.
    pub idle_wait: Duration,
    /// How often to look for notifications nobody delivers.
    pub recovery_interval: Duration,
}

impl AlertLoop {
    /// Runs until `shutdown` (or, with `once`, until there is nothing left to do), then waits
    /// for running deliveries to end. With `once`, a pass failing [`ONCE_ATTEMPTS`] times in a
    /// row is an error; otherwise failures are retried for ever.
    pub async fn run(&self, shutdown: &CancellationToken, once: bool) -> anyhow::Result<()> {
        let mut failures = 0;
        let mut backoff =
            hc_core::db::Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let mut next_recovery = Instant::now();
        let mut next_flip_count = Instant::now();
        let mut watchdog = hc_core::systemd::Watchdog::from_systemd();
        while !shutdown.is_cancelled() {
            watchdog.pet();
            let started = Instant::now();
            let recover = Instant::now() >= next_recovery;
            match self.pass(shutdown, recover).await {
                Ok(work) => {
                    failures = 0;
                    self.metrics.iteration(true, started.elapsed());
                    backoff.reset(Duration::from_millis(500));
                    if recover {
                        next_recovery = Instant::now() + self.recovery_interval;
                    }
                    if Instant::now() >= next_flip_count {
                        self.count_unprocessed_flips().await;
                        next_flip_count = Instant::now() + Duration::from_secs(10);
                    }
                    self.metrics.set_in_flight(self.deliveries.in_flight());
                    if work > 0 {
                        tracing::debug!(work, took = ?started.elapsed(), "pass");
                        continue;
                    }
                    if once {
                        if self.deliveries.in_flight() == 0 && self.deliveries.deferred() == 0 {
                            break;
                        }
                        self.deliveries
                            .wait_for_progress(Duration::from_millis(500))
                            .await;
                        continue;
                    }
                    self.idle(shutdown).await;
                }
                Err(err) => {
                    self.metrics.iteration(false, started.elapsed());
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %format!("{err:#}"), retry_in = ?delay, "alert loop pass failed");
                    failures += 1;
                    if once && failures >= ONCE_ATTEMPTS {
                        self.deliveries.wait_idle().await;
                        return Err(err.context(format!("the pass failed {ONCE_ATTEMPTS} times")));
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
            }
        }
        self.deliveries.wait_idle().await;
        Ok(())
    }

    /// One pass; returns how much work it did (checks handled, flips processed, deliveries
    /// started).
    async fn pass(&self, shutdown: &CancellationToken, recover: bool) -> anyhow::Result<usize> {
        let mut work = 0;
        let mut client = self.pool.get().await?;
        loop {
            let handled =
                handle_going_down_batch(&mut client, Utc::now(), GOING_DOWN_BATCH).await?;
            work += handled.len();
            // The flips of this batch go out before the next batch is looked at: in a burst,
            // the first alerts leave after one batch rather than after all of them.
            work += self.flips_to_deliveries(&mut client, shutdown).await?;
            if (handled.len() as i64) < GOING_DOWN_BATCH || shutdown.is_cancelled() {
                break;
            }
        }
        drop(client);
        work += self.deliveries.retry_deferred().await?;
        if recover {
            let recovered = self.deliveries.recover().await?;
            if recovered > 0 {
                tracing::info!(
                    recovered,
                    "took over pending notifications nobody was delivering"
                );
            }
            work += recovered;
        }
        Ok(work)
    }

    /// Turns unprocessed flips into deliveries, a batch at a time, while fewer than
    /// [`MAX_IN_FLIGHT`] deliveries run; returns how many flips it processed.
    async fn flips_to_deliveries(
        &self,
        client: &mut tokio_postgres::Client,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<usize> {
        let mut work = 0;
        while self.deliveries.in_flight() < MAX_IN_FLIGHT && !shutdown.is_cancelled() {
            let processed = process_flips(client, &self.secret, FLIP_BATCH).await?;
            work += processed.flips;
            if processed.flips > 0 {
                tracing::info!(
                    flips = processed.flips,
                    notifications = processed.notifications.len(),
                    "flips processed"
                );
            }
            self.deliveries.offer(&processed.notifications).await?;
            if (processed.flips as i64) < FLIP_BATCH {
                break;
            }
        }
        Ok(work)
    }

    /// Waits until the next check is due, a delivery ends (deferred ones may be ready), or
    /// `idle_wait` passes.
    async fn idle(&self, shutdown: &CancellationToken) {
        let mut wait = self.idle_wait;
        if let Ok(client) = self.pool.get().await {
            if let Ok(Some(deadline)) = next_deadline(&client).await {
                let until = (deadline - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                wait = wait.min(until.max(MIN_IDLE_WAIT));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = self.deliveries.wait_for_progress(wait), if self.deliveries.deferred() > 0 => {}
            _ = shutdown.cancelled() => {}
        }
    }

    async fn count_unprocessed_flips(&self) {
        let Ok(client) = self.pool.get().await else {
            return;
        };
        if let Ok(row) = client
            .query_one("SELECT count(*) FROM api_flip WHERE processed IS NULL", &[])
            .await
        {
            if let Ok(count) = row.try_get::<_, i64>(0) {
                self.metrics
                    .set_unprocessed_flips(u64::try_from(count).unwrap_or(0));
            }
        }
    }
}
