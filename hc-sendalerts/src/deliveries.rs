//! Pending notifications (`api_notification.error = 'Sending'`): claim, send, record.
//!
//! A sender claims a notification with a PostgreSQL **session advisory lock** on its id, held
//! on one dedicated connection for as long as the delivery runs. Locks die with the session,
//! so a crashed sender's claims are free again at once, and only the deliveries it had in
//! flight can repeat. After taking a lock the row is read again: it is sent only if it is still
//! pending, and only if no earlier notification of the same check on the same channel is
//! pending (so a `down` and the `up` after it arrive in order). The result is committed before
//! the lock is released.
//!
//! Sending is concurrent, bounded overall and per channel, so a dead endpoint holds at most a
//! few of the slots. Transient failures are retried with backoff; a stop request during a
//! backoff leaves the row pending for the next start rather than recording a failure.
//!
//! This file is the orchestration ([`Deliveries::offer`], the slots, retries); [`claims`] owns the
//! locks and their connection, [`records`] writes the results.

mod claims;
mod records;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use deadpool_postgres::Pool;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::batch::Batcher;
use crate::codes::{notification_code, ours_sql};
use crate::loading::{Group, Loaded, load_many};
use crate::metrics::Metrics;
use crate::transports::{Failure, TransportError, Transports};
pub use claims::LOCK_CLASS;
use claims::{LockConnection, spawn_unlocker};
use records::{Record, spawn_recorder, truncate};

/// Results written (and claims released) per statement at most: the rows are small, and group
/// and broken notifications record without a global slot, so more than `concurrency` may wait.
const RESULT_BATCH: usize = 256;

/// How deliveries are paced.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Deliveries in flight at once (`SENDALERTS_CONCURRENCY`).
    pub concurrency: usize,
    /// Deliveries in flight at once on one channel (`SENDALERTS_CHANNEL_CONCURRENCY`).
    pub channel_concurrency: usize,
    /// Delays between tries of a transient failure; tries = delays + 1.
    pub backoff: Vec<Duration>,
    /// The longest one try may take before it counts as a transient failure.
    pub attempt_limit: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            concurrency: 32,
            channel_concurrency: 4,
            backoff: vec![Duration::from_secs(2), Duration::from_secs(10)],
            attempt_limit: Duration::from_secs(120),
        }
    }
}

/// The delivery side of one sender.
#[derive(Clone)]
pub struct Deliveries {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    pg: tokio_postgres::Config,
    transports: Transports,
    settings: DeliverySettings,
    locks: Arc<tokio::sync::Mutex<LockConnection>>,
    loader: Batcher<i32, Option<Loaded>>,
    recorder: Batcher<Record, bool>,
    unlocker: Batcher<(i32, u64), ()>,
    global: Arc<Semaphore>,
    channels: Mutex<HashMap<i32, Arc<Semaphore>>>,
    state: Mutex<State>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    metrics: Arc<Metrics>,
    finished: Notify,
}

#[derive(Default)]
struct State {
    /// Notifications this sender is delivering, with the lock connection's generation.
    in_flight: HashMap<i32, u64>,
    /// Notifications waiting for an earlier one of the same check and channel.
    deferred: BTreeSet<i32>,
}

/// How one delivery ended.
enum Ending {
    /// The result is recorded (or the row was gone).
    Done,
    /// Not ready yet (a group waiting for its members): try again later.
    Later,
    /// Stopped by shutdown before anything was recorded: the row stays pending.
    Abandoned,
}

impl Deliveries {
    /// A delivery side using `pool` for reads and writes and a connection of its own made from
    /// `pg` for the locks.
    pub fn new(
        pool: Pool,
        pg: tokio_postgres::Config,
        transports: Transports,
        settings: DeliverySettings,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> Deliveries {
        let locks = Arc::new(tokio::sync::Mutex::new(LockConnection::default()));
        let concurrency = settings.concurrency.max(1);
        Deliveries {
            inner: Arc::new(Inner {
                loader: spawn_loader(pool.clone(), shutdown.clone(), concurrency),
                recorder: spawn_recorder(pool.clone(), shutdown.clone(), RESULT_BATCH),
                unlocker: spawn_unlocker(locks.clone(), RESULT_BATCH),
                pool,
                pg,
                transports,
                global: Arc::new(Semaphore::new(concurrency)),
                settings,
                locks,
                channels: Mutex::new(HashMap::new()),
                state: Mutex::new(State::default()),
                tasks: TaskTracker::new(),
                shutdown,
                metrics,
                finished: Notify::new(),
            }),
        }
    }

    /// Deliveries running now.
    pub fn in_flight(&self) -> usize {
        self.inner.state().in_flight.len()
    }

    /// Notifications waiting behind an earlier one.
    pub fn deferred(&self) -> usize {
        self.inner.state().deferred.len()
    }

    /// Claims and starts the deliveries of the pending notifications `ids` that nobody else
    /// holds; returns how many started.
    pub async fn offer(&self, ids: &[i32]) -> anyhow::Result<usize> {
        self.inner.clone().offer(ids).await
    }

    /// Offers the deferred notifications again.
    pub async fn retry_deferred(&self) -> anyhow::Result<usize> {
        let ids: Vec<i32> = self.inner.state().deferred.iter().copied().collect();
        if ids.is_empty() {
            return Ok(0);
        }
        self.offer(&ids).await
    }

    /// Finds pending notifications of this service that nobody delivers (a sender crashed, or
    /// its database connection broke) and offers them; returns how many started.
    pub async fn recover(&self) -> anyhow::Result<usize> {
        let client = self.inner.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT n.id FROM api_notification n \
                     WHERE n.error = 'Sending' AND n.owner_id IS NOT NULL AND {} \
                     ORDER BY n.id LIMIT 10000",
                    ours_sql("n")
                ),
                &[],
            )
            .await?;
        drop(client);
        let ids = rows
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<Vec<i32>, _>>()?;
        self.inner.metrics.set_pending(ids.len());
        self.offer(&ids).await
    }

    /// Waits until a delivery finishes (or `timeout` passes).
    pub async fn wait_for_progress(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.inner.finished.notified()).await;
    }

    /// Waits for every running delivery to end.
    pub async fn wait_idle(&self) {
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
        self.inner.tasks.reopen();
    }
}

impl Inner {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn channel_slots(&self, channel_id: i32) -> Arc<Semaphore> {
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let limit = self.settings.channel_concurrency.max(1);
        channels
            .entry(channel_id)
            .or_insert_with(|| Arc::new(Semaphore::new(limit)))
            .clone()
    }

    async fn offer(self: Arc<Self>, ids: &[i32]) -> anyhow::Result<usize> {
        let candidates: Vec<i32> = {
            let state = self.state();
            ids.iter()
                .copied()
                .filter(|id| !state.in_flight.contains_key(id))
                .collect()
        };
        if candidates.is_empty() {
            return Ok(0);
        }
        let claims::Claimed {
            generation,
            ready,
            blocked,
        } = claims::claim(&self.locks, &self.pg, &candidates).await?;
        {
            let mut state = self.state();
            for id in &candidates {
                state.deferred.remove(id);
            }
            state.deferred.extend(blocked);
            for (id, _) in &ready {
                state.in_flight.insert(*id, generation);
            }
        }
        for (id, channel) in &ready {
            let inner = self.clone();
            let (id, channel) = (*id, *channel);
            self.tasks
                .spawn(async move { inner.run_delivery(id, channel).await });
        }
        Ok(ready.len())
    }

    async fn run_delivery(self: Arc<Self>, id: i32, channel_id: i32) {
        let ending = {
            // Channel slot first: a task waiting for a busy channel holds no global slot.
            let slots = self.channel_slots(channel_id);
            let _channel = slots.acquire_owned().await;
            self.deliver(id).await
        };
        // The result is committed (or nothing was written): the claim can go.
        let generation = self.state().in_flight.get(&id).copied();
        if let Some(generation) = generation {
            self.unlocker.call((id, generation)).await;
        }
        {
            let mut state = self.state();
            state.in_flight.remove(&id);
            if matches!(ending, Ending::Later) {
                state.deferred.insert(id);
            }
        }
        self.finished.notify_waiters();
    }

    /// Loads, sends and records notification `id`.
    ///
    /// A global slot is held from loading until the result is written, except during a retry's
    /// backoff: a few dead endpoints waiting to retry do not take the slots of the others, and
    /// at most `concurrency` deliveries are ever sent but not yet recorded (the most a crash can
    /// repeat).
    async fn deliver(&self, id: i32) -> Ending {
        let mut slot = self.global.clone().acquire_owned().await.ok();
        let Some(Some(loaded)) = self.loader.call(id).await else {
            return Ending::Abandoned;
        };
        if !matches!(loaded, Loaded::Alert(_)) {
            drop(slot.take());
        }
        match loaded {
            Loaded::Gone => Ending::Done,
            Loaded::Broken(channel, message) => {
                tracing::warn!(notification = id, %message, "notification cannot be sent");
                self.record(
                    id,
                    channel,
                    "?",
                    Utc::now(),
                    Duration::ZERO,
                    Err(TransportError::fail(message)),
                )
                .await
            }
            Loaded::Group(group) => self.finish_group(id, group).await,
            Loaded::Alert(alert) => {
                let started = Utc::now();
                let clock = Instant::now();
                let mut delays = self.settings.backoff.iter();
                let result = loop {
                    if slot.is_none() {
                        slot = self.global.clone().acquire_owned().await.ok();
                    }
                    let attempt = tokio::time::timeout(
                        self.settings.attempt_limit,
                        self.transports.notify(&alert),
                    )
                    .await
                    .unwrap_or_else(|_| Err(TransportError::transient("Connection timed out")));
                    match attempt {
                        Err(err) if err.failure == Failure::Transient => {
                            let Some(delay) = delays.next() else {
                                break Err(err);
                            };
                            drop(slot.take());
                            tracing::info!(notification = %alert.notification, kind = %alert.channel.kind,
                                error = %err, retry_in = ?delay, "delivery failed; retrying");
                            tokio::select! {
                                _ = tokio::time::sleep(*delay) => {}
                                _ = self.shutdown.cancelled() => return Ending::Abandoned,
                            }
                        }
                        other => break other,
                    }
                };
                let ending = self
                    .record(
                        id,
                        alert.channel.id,
                        &alert.channel.kind,
                        started,
                        clock.elapsed(),
                        result.clone(),
                    )
                    .await;
                drop(slot);
                match &result {
                    Ok(()) => {
                        tracing::info!(notification = %alert.notification, check = %alert.check.code,
                        kind = %alert.channel.kind, status = %alert.flip.new_status,
                        took = ?clock.elapsed(), "notification sent")
                    }
                    Err(err) => {
                        tracing::warn!(notification = %alert.notification, check = %alert.check.code,
                        kind = %alert.channel.kind, status = %alert.flip.new_status, error = %err,
                        "notification failed")
                    }
                }
                ending
            }
        }
    }

    /// A group's notification is done when its members' are: "k out of n notifications failed".
    async fn finish_group(&self, id: i32, group: Group) -> Ending {
        let secret = self.transports.settings.secret_key.expose();
        let members = crate::flips::group_members(&group.value);
        let counts = self
            .with_db("read a group's member notifications", |client| {
                let (group, members) = (&group, &members);
                async move {
                    let rows = client
                        .query(
                            "SELECT id FROM api_channel WHERE project_id = $1 AND code = ANY($2) \
                             AND kind <> 'group'",
                            &[&group.project_id, members],
                        )
                        .await?;
                    let mut codes = Vec::with_capacity(rows.len());
                    for row in &rows {
                        codes.push(notification_code(secret, group.flip_id, row.try_get(0)?));
                    }
                    let row = client
                        .query_one(
                            "SELECT count(*) FILTER (WHERE error = 'Sending'), \
                                    count(*) FILTER (WHERE error NOT IN ('', 'Sending')), count(*) \
                             FROM api_notification WHERE code = ANY($1)",
                            &[&codes],
                        )
                        .await?;
                    Ok((
                        row.try_get::<_, i64>(0)?,
                        row.try_get::<_, i64>(1)?,
                        row.try_get::<_, i64>(2)?,
                    ))
                }
            })
            .await;
        let Some((pending, failed, total)) = counts else {
            return Ending::Abandoned;
        };
        if pending > 0 {
            return Ending::Later;
        }
        let result = if failed > 0 {
            Err(TransportError::fail(format!(
                "{failed} out of {total} notifications failed"
            )))
        } else {
            Ok(())
        };
        self.record(
            id,
            group.channel_id,
            "group",
            Utc::now(),
            Duration::ZERO,
            result,
        )
        .await
    }

    /// Records a delivery's result on the notification and the channel, in one transaction.
    async fn record(
        &self,
        id: i32,
        channel_id: i32,
        kind: &str,
        started: chrono::DateTime<Utc>,
        took: Duration,
        result: Result<(), TransportError>,
    ) -> Ending {
        let (error, disable) = match &result {
            Ok(()) => (String::new(), false),
            Err(err) => (
                truncate(&err.message, 200),
                err.failure == Failure::Permanent,
            ),
        };
        let record = Record {
            id,
            channel_id,
            started,
            seconds: took.as_secs_f64(),
            error: error.clone(),
            disable,
        };
        let recorded = self.recorder.call(record).await.unwrap_or(false);
        if !recorded {
            return Ending::Abandoned;
        }
        let outcome = match &result {
            Ok(()) => "ok",
            Err(_) if disable => "disabled",
            Err(_) => "error",
        };
        self.metrics.count_notification(kind, outcome);
        if disable {
            tracing::warn!(channel = channel_id, %error, "channel disabled after a permanent error");
        }
        Ending::Done
    }

    /// Runs `work` with a pooled connection, retrying database failures with backoff until it
    /// succeeds; `None` if shutdown was requested while the database was unreachable.
    async fn with_db<T, F, Fut>(&self, what: &str, work: F) -> Option<T>
    where
        F: Fn(deadpool_postgres::Object) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<T>>,
    {
        retry_db(&self.shutdown, what, || async {
            work(self.pool.get().await?).await
        })
        .await
    }
}

/// Loads notifications for deliveries, many per query; `None` for each if shutdown was requested
/// while the database was unreachable.
fn spawn_loader(
    pool: Pool,
    shutdown: CancellationToken,
    max: usize,
) -> Batcher<i32, Option<Loaded>> {
    Batcher::spawn(max, move |ids: Vec<i32>| {
        let (pool, shutdown) = (pool.clone(), shutdown.clone());
        async move {
            let loaded = retry_db(&shutdown, "load notifications", || async {
                let client = pool.get().await?;
                load_many(&**client, &ids).await
            })
            .await;
            match loaded {
                Some(mut loaded) => ids
                    .iter()
                    .map(|id| Some(loaded.remove(id).unwrap_or(Loaded::Gone)))
                    .collect(),
                None => ids.iter().map(|_| None).collect(),
            }
        }
    })
}

/// Runs `work` until it succeeds, retrying database failures with backoff; `None` if shutdown
/// was requested meanwhile.
async fn retry_db<T, F, Fut>(shutdown: &CancellationToken, what: &str, work: F) -> Option<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut backoff =
        hc_core::db::Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    loop {
        match work().await {
            Ok(value) => return Some(value),
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "cannot {what}; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff.next_delay()) => {}
                    _ = shutdown.cancelled() => return None,
                }
            }
        }
    }
}
