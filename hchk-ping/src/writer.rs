//! The batching writer: takes queued pings, commits them in one transaction per batch, and only
//! then answers their requests.
//!
//! A batch is two pipelined round trips. The first (`BEGIN`, `txid_current()`, and the check rows
//! `ORDER BY id FOR UPDATE`) locks every check of the batch in id order, so concurrent batches,
//! here or on other hosts, never deadlock. The pure `plan` module then applies the pings in
//! memory, in queue order, with [`crate::pings::apply_ping`], exactly as one-by-one processing
//! would. The second round trip inserts all `api_ping` and `api_flip` rows with `unnest`, updates
//! each check once, and commits. This file is the shell around the plan: the statements, the
//! round trips and the sorting of errors into retries; `?create=1` lives in `provision`.
//!
//! When a commit's fate is unknown (the connection broke after `COMMIT` was sent), the writer asks
//! the server with `txid_status()` before answering: a committed batch is acknowledged, an aborted
//! one is written again, so a ping is never acknowledged and lost, nor recorded twice.
//! Pings that cannot be written within `db_wait` of their arrival get 503 and were not written.

mod plan;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use deadpool_postgres::{Object, Pool};
use hc_core::status::CheckTiming;
use tokio_postgres::Statement;
use tokio_postgres::error::{Severity, SqlState};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::metrics::Metrics;
use crate::pings::{CheckState, PingKind};
use crate::provision::{Provisioned, provision};
use crate::queue::{Job, Outcome, Queue};
use crate::routes::Target;
use plan::{LockedCheck, Plan, plan_batch};

const SELECT_CHECKS: &str = concat!(
    "SELECT c.id, c.code, p.ping_key, c.slug, ",
    hc_core::timing_columns!("c"),
    ", c.last_start_rid, \
    (EXTRACT(EPOCH FROM c.last_duration) * 1000000)::int8, \
    c.alert_after, c.n_pings, c.has_confirmation_link, c.methods, c.manual_resume, \
    c.filter_http_body, c.filter_default_fail, c.start_kw, c.success_kw, c.failure_kw \
FROM api_check c JOIN accounts_project p ON p.id = c.project_id \
WHERE c.id IN ( \
    SELECT id FROM api_check WHERE code = ANY($1::uuid[]) \
    UNION \
    SELECT c2.id FROM api_check c2 \
        JOIN accounts_project p2 ON p2.id = c2.project_id \
        JOIN unnest($2::text[], $3::text[]) AS t(k, s) ON p2.ping_key = t.k AND c2.slug = t.s) \
ORDER BY c.id \
FOR UPDATE OF c"
);

const INSERT_PINGS: &str = "\
INSERT INTO api_ping (n, owner_id, created, kind, scheme, remote_addr, method, ua, body_raw, \
    object_size, exitstatus, rid) \
SELECT * FROM unnest($1::int4[], $2::int4[], $3::timestamptz[], $4::text[], $5::text[], \
    $6::inet[], $7::text[], $8::text[], $9::bytea[], $10::int4[], $11::int2[], $12::uuid[])";

const INSERT_FLIPS: &str = "\
INSERT INTO api_flip (created, processed, old_status, new_status, owner_id, reason) \
SELECT f.created, NULL, f.old, f.new, f.owner, f.reason \
FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::int4[], $5::text[]) \
    AS f(created, old, new, owner, reason)";

const UPDATE_CHECKS: &str = "\
UPDATE api_check AS c SET last_ping = u.last_ping, last_start = u.last_start, \
    last_start_rid = u.last_start_rid, \
    last_duration = u.last_duration_us * interval '1 microsecond', status = u.status, \
    alert_after = u.alert_after, n_pings = u.n_pings, has_confirmation_link = u.hcl \
FROM unnest($1::int4[], $2::timestamptz[], $3::timestamptz[], $4::uuid[], $5::int8[], \
    $6::text[], $7::timestamptz[], $8::int4[], $9::bool[]) \
    AS u(id, last_ping, last_start, last_start_rid, last_duration_us, status, alert_after, \
        n_pings, hcl) \
WHERE c.id = u.id";

/// Settings of the writers.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Most pings in one transaction.
    pub batch_max: usize,
    /// How long a ping may wait for the database before it gets 503.
    pub db_wait: Duration,
}

/// What the writers share with the HTTP side.
#[derive(Debug)]
pub struct Writers {
    pool: Pool,
    queue: Arc<Queue>,
    metrics: Arc<Metrics>,
    config: WriterConfig,
    /// Whether the last attempt reached the database: an outage is logged once at `warn`.
    db_ok: AtomicBool,
}

/// Where a body is kept: the single place to divert large bodies to object storage later.
/// Returns `api_ping.body_raw` and `api_ping.object_size`.
fn store_body(body: &[u8]) -> (Option<&[u8]>, Option<i32>) {
    (Some(body), None)
}

/// A batch that did not commit (or may have).
#[derive(Debug)]
enum Failure {
    /// Nothing was written; retrying is safe.
    NotCommitted(tokio_postgres::Error),
    /// The server rejected the data; retrying the same batch will fail again.
    Rejected(tokio_postgres::Error),
    /// `COMMIT` was sent and its answer lost: ask the server about transaction `xid`.
    InDoubt(i64, Box<Applied>, String),
    /// The attempt took too long before anything could commit.
    TimedOut,
}

/// The in-memory result of applying a batch, ready to be answered once committed.
#[derive(Debug)]
struct Applied {
    outcomes: Vec<Option<Outcome>>,
    /// The kind of each `api_ping` row written, for the metrics.
    kinds: Vec<PingKind>,
    /// The first `api_ping` row written: `owner_id`, `n`, `created`.
    first_ping: Option<(i32, i32, DateTime<Utc>)>,
}

impl Writers {
    /// Writers over `pool`, taking from `queue`.
    pub fn new(
        pool: Pool,
        queue: Arc<Queue>,
        metrics: Arc<Metrics>,
        config: WriterConfig,
    ) -> Writers {
        Writers {
            pool,
            queue,
            metrics,
            config,
            db_ok: AtomicBool::new(true),
        }
    }

    /// The pool (for health checks).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Writer `slot`'s loop: runs until `stop` is cancelled and the queue is empty.
    pub async fn run(self: Arc<Self>, slot: usize, stop: CancellationToken) {
        loop {
            let notified = self.queue.notified(slot);
            let jobs = self.queue.take(slot, self.config.batch_max);
            if jobs.is_empty() {
                if stop.is_cancelled() {
                    return;
                }
                tokio::select! {
                    () = notified => {}
                    () = stop.cancelled() => {}
                }
                continue;
            }
            self.write(jobs).await;
            self.queue.done(slot);
        }
    }

    /// Writes `jobs`, retrying until each is answered.
    async fn write(&self, mut jobs: Vec<Job>) {
        let mut backoff =
            hc_core::db::Backoff::new(Duration::from_millis(50), Duration::from_secs(1));
        loop {
            let now = Instant::now();
            jobs.retain_mut(|job| {
                let expired = now.duration_since(job.enqueued) >= self.config.db_wait;
                if expired {
                    job.answer(Outcome::Unavailable);
                }
                !expired
            });
            let Some(deadline) = jobs.iter().map(|j| j.enqueued + self.config.db_wait).min() else {
                return;
            };
            let remaining = deadline.saturating_duration_since(now);
            let client = match tokio::time::timeout(remaining, self.pool.get()).await {
                Ok(Ok(client)) => client,
                Ok(Err(err)) => {
                    self.db_failed(&format!("{err}"));
                    tokio::time::sleep(backoff.next_delay().min(remaining)).await;
                    continue;
                }
                Err(_) => continue,
            };
            let started = Instant::now();
            match self.attempt(client, &jobs, remaining).await {
                Ok(applied) => {
                    self.metrics.observe_batch(jobs.len(), started.elapsed());
                    self.db_ok.store(true, Ordering::Relaxed);
                    self.finish(jobs, *applied).await;
                    return;
                }
                Err(Failure::NotCommitted(err)) => {
                    self.db_failed(&format!("{err}"));
                    if !is_transient(&err) {
                        tokio::time::sleep(backoff.next_delay().min(remaining)).await;
                    }
                }
                Err(Failure::TimedOut) => self.db_failed("timed out"),
                Err(Failure::Rejected(err)) => {
                    self.metrics.count_db_error();
                    if jobs.len() == 1 {
                        tracing::error!(%err, "the database rejected a ping on its own; answering 500");
                        jobs[0].answer(Outcome::Internal);
                        return;
                    }
                    tracing::warn!(%err, pings = jobs.len(), "the database rejected a batch; writing its pings one by one");
                    for job in jobs {
                        Box::pin(self.write(vec![job])).await;
                    }
                    return;
                }
                Err(Failure::InDoubt(xid, applied, err)) => {
                    tracing::warn!(%err, xid, "lost the answer to COMMIT; asking the server whether it committed");
                    if self.committed(xid, applied.first_ping).await {
                        self.finish(jobs, *applied).await;
                        return;
                    }
                    self.metrics.count_db_error();
                }
            }
        }
    }

    fn db_failed(&self, err: &str) {
        self.metrics.count_db_error();
        if self.db_ok.swap(false, Ordering::Relaxed) {
            tracing::warn!(err, "cannot write pings; retrying");
        } else {
            tracing::debug!(err, "cannot write pings; retrying");
        }
    }

    /// Answers the jobs of a committed batch and handles the ones that need a check created.
    async fn finish(&self, jobs: Vec<Job>, applied: Applied) {
        for &kind in &applied.kinds {
            self.metrics.count_ping(kind);
        }
        let mut to_provision = Vec::new();
        for (mut job, outcome) in jobs.into_iter().zip(applied.outcomes) {
            match outcome {
                Some(outcome) => job.answer(outcome),
                None => to_provision.push(job),
            }
        }
        let mut again = Vec::new();
        for mut job in to_provision {
            let Target::Slug { ping_key, slug } = &job.route.target else {
                job.answer(Outcome::NotFound);
                continue;
            };
            match provision(&self.pool, ping_key, slug).await {
                Ok(Provisioned::Created) => {
                    job.created = true;
                    again.push(job);
                }
                Ok(Provisioned::Exists) => again.push(job),
                Ok(Provisioned::Refused) => job.answer(Outcome::NotFound),
                Err(err) => {
                    // Written or not, the next round finds out: the check exists or it doesn't.
                    self.db_failed(&format!("{err}"));
                    again.push(job);
                }
            }
        }
        self.queue.push_front(again);
    }

    /// One attempt at a batch on `client`; the connection is dropped after any failure.
    async fn attempt(
        &self,
        client: Object,
        jobs: &[Job],
        limit: Duration,
    ) -> Result<Box<Applied>, Failure> {
        let result = commit_batch(&client, jobs, limit).await;
        if result.is_err() {
            // The session may be mid-transaction or broken: never hand it back to the pool.
            drop(Object::take(client));
        }
        result
    }

    /// Asks the server whether transaction `xid`, which wrote `first_ping`, committed, until it
    /// can tell.
    ///
    /// `txid_status` alone is not enough: a transaction id whose only WAL was lost (a crash, or a
    /// fail-over to a standby that never received it) is handed out again after the restart or
    /// promotion, and may then belong to another transaction that committed. So a "committed"
    /// answer counts only if the batch's first `api_ping` row is there, created by `xid`.
    async fn committed(&self, xid: i64, first_ping: Option<(i32, i32, DateTime<Utc>)>) -> bool {
        let mut backoff =
            hc_core::db::Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        loop {
            let answer = match self.pool.get().await {
                Ok(client) => ask_status(&client, xid, first_ping).await,
                Err(err) => {
                    tracing::debug!(%err, xid, "cannot ask about the transaction yet");
                    tokio::time::sleep(backoff.next_delay()).await;
                    continue;
                }
            };
            match answer.as_ref().map(|s| s.as_deref()) {
                Ok(Some("committed")) => return true,
                Ok(Some("in progress")) => tokio::time::sleep(Duration::from_millis(50)).await,
                // Aborted, unknown to this server (a promoted standby that never saw it), or
                // committed by another transaction that got the same id.
                Ok(_) => return false,
                Err(err) if err.code() == Some(&SqlState::INVALID_PARAMETER_VALUE) => return false,
                Err(err) => {
                    tracing::debug!(%err, xid, "cannot ask about the transaction yet");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }
}

/// Serialization failures and deadlocks: retry at once.
fn is_transient(err: &tokio_postgres::Error) -> bool {
    matches!(
        err.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

/// Whether the server refused the statement for its data (a bug here, or a row we misread).
fn is_rejection(err: &tokio_postgres::Error) -> bool {
    err.code().is_some_and(|code| {
        let class = &code.code()[..2];
        matches!(class, "22" | "23" | "42")
    })
}

/// One batch in one transaction: locks its checks, plans it with [`plan_batch`], writes the
/// planned rows and commits, sorting any error into a [`Failure`].
async fn commit_batch(
    client: &Object,
    jobs: &[Job],
    limit: Duration,
) -> Result<Box<Applied>, Failure> {
    let (xid, checks) = lock_checks(client, jobs, limit).await?;
    let mut plan = plan_batch(jobs, checks);
    let applied = Box::new(Applied {
        outcomes: std::mem::take(&mut plan.outcomes),
        kinds: plan.pings.iter().map(|p| p.kind).collect(),
        first_ping: plan.pings.first().map(|p| (p.owner_id, p.n, p.created)),
    });

    let commit = client
        .prepare_cached("COMMIT")
        .await
        .map_err(Failure::NotCommitted)?;
    if plan.pings.is_empty() {
        // Nothing to write: end the transaction and answer.
        return match client.execute(&commit, &[]).await {
            Ok(_) => Ok(applied),
            Err(err) => Err(Failure::NotCommitted(err)),
        };
    }
    let written = write_rows(client, &plan, &commit, limit).await?;
    settle(xid, applied, written)
}

/// The first round trip: `BEGIN`, the transaction id, and the batch's check rows, locked in id
/// order.
async fn lock_checks(
    client: &Object,
    jobs: &[Job],
    limit: Duration,
) -> Result<(i64, Vec<LockedCheck>), Failure> {
    let begin = client
        .prepare_cached("BEGIN")
        .await
        .map_err(Failure::NotCommitted)?;
    let txid = client
        .prepare_cached("SELECT txid_current()")
        .await
        .map_err(Failure::NotCommitted)?;
    let select = client
        .prepare_cached(SELECT_CHECKS)
        .await
        .map_err(Failure::NotCommitted)?;

    let mut codes: Vec<Uuid> = Vec::new();
    let mut keys: Vec<&str> = Vec::new();
    let mut slugs: Vec<&str> = Vec::new();
    for job in jobs {
        match &job.route.target {
            Target::Code(code) => codes.push(*code),
            Target::Slug { ping_key, slug } => {
                keys.push(ping_key);
                slugs.push(slug);
            }
        }
    }

    let locked = tokio::time::timeout(limit, async {
        let (_, xid_row, rows) = futures_util::future::try_join3(
            client.execute(&begin, &[]),
            client.query_one(&txid, &[]),
            client.query(&select, &[&codes, &keys, &slugs]),
        )
        .await?;
        Ok::<_, tokio_postgres::Error>((xid_row.get::<_, i64>(0), rows))
    })
    .await;
    let (xid, rows) = match locked {
        Ok(Ok(locked)) => locked,
        Ok(Err(err)) if is_rejection(&err) => return Err(Failure::Rejected(err)),
        Ok(Err(err)) => return Err(Failure::NotCommitted(err)),
        Err(_) => return Err(Failure::TimedOut),
    };

    let mut checks: Vec<LockedCheck> = Vec::with_capacity(rows.len());
    for row in &rows {
        checks.push(read_check(row).map_err(Failure::Rejected)?);
    }
    Ok((xid, checks))
}

/// The answers to the second round trip.
struct Written {
    /// `INSERT INTO api_ping`, `INSERT INTO api_flip`, `UPDATE api_check`.
    writes: [Result<u64, tokio_postgres::Error>; 3],
    /// `COMMIT`.
    commit: Result<u64, tokio_postgres::Error>,
}

/// The second round trip: the planned rows as `unnest` columns and `COMMIT`, all sent before any
/// answer is read. `None`: no answer in time.
async fn write_rows(
    client: &Object,
    plan: &Plan<'_>,
    commit: &Statement,
    limit: Duration,
) -> Result<Option<Written>, Failure> {
    let insert_pings = client
        .prepare_cached(INSERT_PINGS)
        .await
        .map_err(Failure::NotCommitted)?;
    let insert_flips = client
        .prepare_cached(INSERT_FLIPS)
        .await
        .map_err(Failure::NotCommitted)?;
    let update_checks = client
        .prepare_cached(UPDATE_CHECKS)
        .await
        .map_err(Failure::NotCommitted)?;

    // api_ping columns.
    let pings = &plan.pings;
    let n: Vec<i32> = pings.iter().map(|p| p.n).collect();
    let owner: Vec<i32> = pings.iter().map(|p| p.owner_id).collect();
    let created: Vec<DateTime<Utc>> = pings.iter().map(|p| p.created).collect();
    let kind: Vec<Option<&str>> = pings.iter().map(|p| p.kind.as_db()).collect();
    let scheme: Vec<&str> = pings.iter().map(|p| p.scheme).collect();
    let remote_addr: Vec<Option<IpAddr>> = pings.iter().map(|p| p.remote_addr).collect();
    let method: Vec<&str> = pings.iter().map(|p| p.method).collect();
    let ua: Vec<&str> = pings.iter().map(|p| p.ua).collect();
    let (body_raw, object_size): (Vec<Option<&[u8]>>, Vec<Option<i32>>) =
        pings.iter().map(|p| store_body(p.body)).unzip();
    let exitstatus: Vec<Option<i16>> = pings.iter().map(|p| p.exitstatus).collect();
    let rid: Vec<Option<Uuid>> = pings.iter().map(|p| p.rid).collect();
    // api_flip columns.
    let flips = &plan.flips;
    let flip_created: Vec<DateTime<Utc>> = flips.iter().map(|f| f.created).collect();
    let flip_old: Vec<&str> = flips.iter().map(|f| f.old_status).collect();
    let flip_new: Vec<&str> = flips.iter().map(|f| f.new_status).collect();
    let flip_owner: Vec<i32> = flips.iter().map(|f| f.owner_id).collect();
    let flip_reason: Vec<&str> = flips.iter().map(|f| f.reason).collect();
    // api_check columns, once per pinged check.
    let updates = &plan.checks;
    let c_id: Vec<i32> = updates.iter().map(|c| c.id).collect();
    let c_last_ping: Vec<Option<DateTime<Utc>>> = updates.iter().map(|c| c.last_ping).collect();
    let c_last_start: Vec<Option<DateTime<Utc>>> = updates.iter().map(|c| c.last_start).collect();
    let c_rid: Vec<Option<Uuid>> = updates.iter().map(|c| c.last_start_rid).collect();
    let c_duration: Vec<Option<i64>> = updates.iter().map(|c| c.last_duration_us).collect();
    let c_status: Vec<&str> = updates.iter().map(|c| c.status.as_ref()).collect();
    let c_alert_after: Vec<Option<DateTime<Utc>>> = updates.iter().map(|c| c.alert_after).collect();
    let c_n: Vec<i32> = updates.iter().map(|c| c.n_pings).collect();
    let c_hcl: Vec<bool> = updates.iter().map(|c| c.has_confirmation_link).collect();

    let ping_params: [&(dyn tokio_postgres::types::ToSql + Sync); 12] = [
        &n,
        &owner,
        &created,
        &kind,
        &scheme,
        &remote_addr,
        &method,
        &ua,
        &body_raw,
        &object_size,
        &exitstatus,
        &rid,
    ];
    let flip_params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] = [
        &flip_created,
        &flip_old,
        &flip_new,
        &flip_owner,
        &flip_reason,
    ];
    let check_params: [&(dyn tokio_postgres::types::ToSql + Sync); 9] = [
        &c_id,
        &c_last_ping,
        &c_last_start,
        &c_rid,
        &c_duration,
        &c_status,
        &c_alert_after,
        &c_n,
        &c_hcl,
    ];
    // All four are sent before any answer is read; `join` (not `try_join`) waits for every
    // answer, because an early error must not hide whether COMMIT went through.
    let written = tokio::time::timeout(
        limit.max(Duration::from_secs(5)),
        futures_util::future::join4(
            client.execute(&insert_pings, &ping_params),
            async {
                if flip_owner.is_empty() {
                    Ok(0)
                } else {
                    client.execute(&insert_flips, &flip_params).await
                }
            },
            client.execute(&update_checks, &check_params),
            client.execute(commit, &[]),
        ),
    )
    .await;
    Ok(written.ok().map(|(pings, flips, updates, commit)| Written {
        writes: [pings, flips, updates],
        commit,
    }))
}

/// Sorts the answers to the second round trip of transaction `xid`: committed (`applied` is
/// answered), rolled back (retried or split), or in doubt (the server is asked).
fn settle(
    xid: i64,
    applied: Box<Applied>,
    written: Option<Written>,
) -> Result<Box<Applied>, Failure> {
    let Some(Written { writes, commit }) = written else {
        return Err(Failure::InDoubt(
            xid,
            applied,
            "no answer to COMMIT in time".into(),
        ));
    };
    // A statement the server refused aborted the transaction, and COMMIT then rolled back.
    let mut refused = None;
    let mut lost = None;
    for result in writes {
        match result {
            Err(err) if err.as_db_error().is_some() => {
                refused.get_or_insert(err);
            }
            Err(err) => {
                lost.get_or_insert(err);
            }
            Ok(_) => {}
        }
    }
    if let Some(err) = refused {
        return Err(refused_failure(err));
    }
    match commit {
        Ok(_) if lost.is_none() => Ok(applied),
        // COMMIT itself failed with an ERROR (a deferred constraint): rolled back.
        Err(err) if is_statement_error(&err) => Err(refused_failure(err)),
        // Anything else, a FATAL error included, leaves the outcome open: a session terminated
        // right after its commit went through (for example when a synchronous standby's answer
        // and pg_terminate_backend cross) reports FATAL in place of COMMIT's answer.
        Err(err) => Err(Failure::InDoubt(xid, applied, err.to_string())),
        Ok(_) => Err(Failure::InDoubt(
            xid,
            applied,
            lost.map(|e| e.to_string()).unwrap_or_default(),
        )),
    }
}

/// `txid_status(xid)`, with "committed" turned into "not ours" when the row `first_ping` that
/// transaction `xid` wrote is missing.
async fn ask_status(
    client: &Object,
    xid: i64,
    first_ping: Option<(i32, i32, DateTime<Utc>)>,
) -> Result<Option<String>, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT txid_status($1), txid_visible_in_snapshot($1, txid_current_snapshot())",
            &[&xid],
        )
        .await?;
    let status: Option<String> = row.get(0);
    if status.as_deref() != Some("committed") {
        return Ok(status);
    }
    // The commit is recorded before it becomes visible (for example while it waits for a
    // synchronous standby): until then its rows cannot be seen.
    if !row.get::<_, bool>(1) {
        return Ok(Some("in progress".to_owned()));
    }
    let Some((owner, n, created)) = first_ping else {
        return Ok(status);
    };
    // xmin holds the low 32 bits of the 64-bit transaction id.
    let ours: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM api_ping WHERE owner_id = $1 AND n = $2 \
                AND created = $3 AND xmin::text::int8 = $4)",
            &[&owner, &n, &created, &(xid & 0xFFFF_FFFF)],
        )
        .await?
        .get(0);
    if !ours {
        tracing::warn!(
            xid,
            "the transaction id committed, but not our batch: it was reused after a crash or fail-over"
        );
    }
    Ok(Some(if ours { "committed" } else { "not ours" }.to_owned()))
}

/// Whether the server answered the statement with an ERROR (the statement failed, the session
/// lives on), as opposed to a FATAL or PANIC that ends the session, or no answer at all.
fn is_statement_error(err: &tokio_postgres::Error) -> bool {
    err.as_db_error()
        .is_some_and(|db| db.parsed_severity() == Some(Severity::Error))
}

fn refused_failure(err: tokio_postgres::Error) -> Failure {
    if is_rejection(&err) {
        Failure::Rejected(err)
    } else {
        Failure::NotCommitted(err)
    }
}

fn read_check(row: &tokio_postgres::Row) -> Result<LockedCheck, tokio_postgres::Error> {
    let status_raw: String = row.try_get("timing_status")?;
    let timing = CheckTiming::from_row(row)?;
    Ok(LockedCheck {
        state: CheckState {
            id: row.try_get(0)?,
            code: row.try_get(1)?,
            timing,
            last_start_rid: row.try_get(12)?,
            last_duration: row
                .try_get::<_, Option<i64>>(13)?
                .map(TimeDelta::microseconds),
            alert_after: row.try_get(14)?,
            n_pings: row.try_get(15)?,
            has_confirmation_link: row.try_get(16)?,
            methods: row.try_get(17)?,
            manual_resume: row.try_get(18)?,
            filter_http_body: row.try_get(19)?,
            filter_default_fail: row.try_get(20)?,
            start_kw: row.try_get(21)?,
            success_kw: row.try_get(22)?,
            failure_kw: row.try_get(23)?,
        },
        ping_key: row.try_get(2)?,
        slug: row.try_get(3)?,
        status_raw,
    })
}
