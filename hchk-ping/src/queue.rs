//! The queue between HTTP requests and the batching writers, with what `/health` and `/metrics`
//! need to know about it: its length and the dwell time (the age of the oldest ping not yet
//! committed, whether it still waits in the queue or is in a batch being written).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::sync::{Notify, oneshot};

use crate::routes::PingRoute;

/// How a ping request ends, decided by the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Committed: 200 `OK`.
    Recorded,
    /// Committed to a check this request created (`?create=1`): 201 `Created`.
    Created,
    /// No such check: 404 `not found`.
    NotFound,
    /// The slug matches several checks: 409 `ambiguous slug`.
    AmbiguousSlug,
    /// Exit status over 255: 400 `invalid url format`.
    InvalidUrl,
    /// `rid` is not a UUID: 400 `invalid uuid format`.
    InvalidRid,
    /// The database could not be reached in time; nothing was written: 503.
    Unavailable,
    /// A bug: the ping could not be written even on its own; nothing was written: 500.
    Internal,
}

/// What the HTTP layer knows about a ping besides its route.
#[derive(Debug, Clone)]
pub struct PingMeta {
    /// When the request (with its body) was read, truncated to microseconds.
    pub received: DateTime<Utc>,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// The client's address.
    pub remote_addr: Option<IpAddr>,
    /// The HTTP method (at most 10 characters).
    pub method: String,
    /// The User-Agent, at most 200 characters.
    pub ua: String,
    /// The first `PING_BODY_LIMIT` bytes of the body.
    pub body: Bytes,
}

/// One ping waiting for its batch.
#[derive(Debug)]
pub struct Job {
    /// The routed URL.
    pub route: PingRoute,
    /// The request's facts.
    pub meta: PingMeta,
    /// Set when this request's `?create=1` created the check.
    pub created: bool,
    /// When the job entered the queue the first time.
    pub enqueued: Instant,
    /// Where the outcome goes; the request may have gone away.
    pub reply: Option<oneshot::Sender<Outcome>>,
}

impl Job {
    /// Sends the outcome to the waiting request, if it still waits.
    pub fn answer(&mut self, outcome: Outcome) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(outcome);
        }
    }
}

/// The shared queue of jobs, FIFO, with per-writer records of batches in flight.
#[derive(Debug)]
pub struct Queue {
    jobs: Mutex<VecDeque<Job>>,
    in_flight: Mutex<Vec<Option<Instant>>>,
    /// Woken when jobs arrive.
    pub notify: Notify,
}

impl Queue {
    /// An empty queue for `writers` writers.
    pub fn new(writers: usize) -> Queue {
        Queue {
            jobs: Mutex::new(VecDeque::new()),
            in_flight: Mutex::new(vec![None; writers]),
            notify: Notify::new(),
        }
    }

    /// Appends a job and wakes a writer.
    pub fn push(&self, job: Job) {
        self.lock_jobs().push_back(job);
        self.notify.notify_one();
    }

    /// Puts jobs back at the front (in their order), for another round.
    pub fn push_front(&self, jobs: Vec<Job>) {
        if jobs.is_empty() {
            return;
        }
        let mut queue = self.lock_jobs();
        for job in jobs.into_iter().rev() {
            queue.push_front(job);
        }
        drop(queue);
        self.notify.notify_one();
    }

    /// Takes up to `max` jobs from the front; writer `slot` records the oldest as in flight.
    pub fn take(&self, slot: usize, max: usize) -> Vec<Job> {
        let mut queue = self.lock_jobs();
        let n = queue.len().min(max);
        let jobs: Vec<Job> = queue.drain(..n).collect();
        let more = !queue.is_empty();
        drop(queue);
        if let Some(oldest) = jobs.iter().map(|j| j.enqueued).min() {
            self.lock_in_flight()[slot] = Some(oldest);
        }
        if more {
            // Another writer can start on the rest right away.
            self.notify.notify_one();
        }
        jobs
    }

    /// Writer `slot` finished its batch.
    pub fn done(&self, slot: usize) {
        self.lock_in_flight()[slot] = None;
    }

    /// The number of jobs waiting (not counting batches in flight).
    pub fn len(&self) -> usize {
        self.lock_jobs().len()
    }

    /// Whether no job waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The age of the oldest ping not yet committed.
    pub fn dwell(&self, now: Instant) -> Duration {
        let waiting = self.lock_jobs().front().map(|j| j.enqueued);
        let in_flight = self.lock_in_flight().iter().flatten().min().copied();
        [waiting, in_flight]
            .into_iter()
            .flatten()
            .min()
            .map_or(Duration::ZERO, |oldest| {
                now.saturating_duration_since(oldest)
            })
    }

    fn lock_jobs(&self) -> std::sync::MutexGuard<'_, VecDeque<Job>> {
        self.jobs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_in_flight(&self) -> std::sync::MutexGuard<'_, Vec<Option<Instant>>> {
        self.in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
