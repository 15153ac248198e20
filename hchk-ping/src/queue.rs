//! The queue between HTTP requests and the batching writers, with what `/health` and `/metrics`
//! need to know about it: its length and the dwell time (the age of the oldest ping not yet
//! committed, whether it still waits in the queue or is in a batch being written).

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::sync::futures::Notified;
use tokio::sync::{Notify, oneshot};

use crate::routes::{PingRoute, Target};

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

/// The queue of jobs: one FIFO lane per writer, a check's pings always in the same lane.
///
/// Writers lock the checks of their batch until `COMMIT` has been flushed to disk. With one
/// shared FIFO, concurrent batches nearly always share a check, so each waited for the previous
/// one's fsync and the writers ran one after another. Lanes keyed by the check make concurrent
/// batches disjoint: they run side by side and their commits share fsyncs (PostgreSQL's group
/// commit). It also keeps each check's pings in arrival order. A check pinged both by UUID and
/// by slug can sit in two lanes; its batches then simply wait for each other's locks.
#[derive(Debug)]
pub struct Queue {
    lanes: Vec<Lane>,
}

#[derive(Debug, Default)]
struct Lane {
    jobs: Mutex<VecDeque<Job>>,
    /// When the oldest job of the batch being written entered the queue.
    in_flight: Mutex<Option<Instant>>,
    /// Woken when jobs arrive.
    notify: Notify,
}

impl Queue {
    /// An empty queue for `writers` writers.
    pub fn new(writers: usize) -> Queue {
        Queue {
            lanes: (0..writers.max(1)).map(|_| Lane::default()).collect(),
        }
    }

    /// Appends a job to its check's lane and wakes that lane's writer.
    pub fn push(&self, job: Job) {
        let lane = &self.lanes[self.lane_of(&job.route.target)];
        lock(&lane.jobs).push_back(job);
        lane.notify.notify_one();
    }

    /// Puts jobs back at the front of their lanes (in their order), for another round.
    pub fn push_front(&self, jobs: Vec<Job>) {
        let mut woken = vec![false; self.lanes.len()];
        for job in jobs.into_iter().rev() {
            let slot = self.lane_of(&job.route.target);
            lock(&self.lanes[slot].jobs).push_front(job);
            woken[slot] = true;
        }
        for (lane, woken) in self.lanes.iter().zip(woken) {
            if woken {
                lane.notify.notify_one();
            }
        }
    }

    /// Resolves when a job may have arrived in lane `slot`; create it before [`Queue::take`] so
    /// no wake-up is missed.
    pub fn notified(&self, slot: usize) -> Notified<'_> {
        self.lanes[slot].notify.notified()
    }

    /// Takes up to `max` jobs from the front of lane `slot` and records the oldest as in flight.
    pub fn take(&self, slot: usize, max: usize) -> Vec<Job> {
        let lane = &self.lanes[slot];
        let mut queue = lock(&lane.jobs);
        let n = queue.len().min(max);
        let jobs: Vec<Job> = queue.drain(..n).collect();
        drop(queue);
        if let Some(oldest) = jobs.iter().map(|j| j.enqueued).min() {
            *lock(&lane.in_flight) = Some(oldest);
        }
        jobs
    }

    /// Answers 503 to every waiting job that entered the queue `wait` or longer before `now`,
    /// and returns how many there were.
    ///
    /// A writer checks its own batch, but a lane waits behind its writer: while the writer asks
    /// the server about a COMMIT whose answer was lost (which can last as long as an outage),
    /// only this sweep keeps the promise that a ping waits at most `HCHK_PING_DB_WAIT`.
    pub fn expire(&self, now: Instant, wait: Duration) -> usize {
        let mut expired = Vec::new();
        for lane in &self.lanes {
            let mut jobs = lock(&lane.jobs);
            if jobs
                .iter()
                .all(|j| now.saturating_duration_since(j.enqueued) < wait)
            {
                continue;
            }
            let (old, young): (VecDeque<Job>, VecDeque<Job>) = jobs
                .drain(..)
                .partition(|j| now.saturating_duration_since(j.enqueued) >= wait);
            *jobs = young;
            drop(jobs);
            expired.extend(old);
        }
        let n = expired.len();
        for mut job in expired {
            job.answer(Outcome::Unavailable);
        }
        n
    }

    /// Writer `slot` finished its batch.
    pub fn done(&self, slot: usize) {
        *lock(&self.lanes[slot].in_flight) = None;
    }

    /// The number of jobs waiting (not counting batches in flight).
    pub fn len(&self) -> usize {
        self.lanes.iter().map(|lane| lock(&lane.jobs).len()).sum()
    }

    /// Whether no job waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The age of the oldest ping not yet committed.
    pub fn dwell(&self, now: Instant) -> Duration {
        self.lanes
            .iter()
            .flat_map(|lane| {
                let waiting = lock(&lane.jobs).front().map(|j| j.enqueued);
                let in_flight = *lock(&lane.in_flight);
                [waiting, in_flight]
            })
            .flatten()
            .min()
            .map_or(Duration::ZERO, |oldest| {
                now.saturating_duration_since(oldest)
            })
    }

    /// The lane of a check: by its UUID, or by project key and slug.
    fn lane_of(&self, target: &Target) -> usize {
        let n = self.lanes.len() as u64;
        let hash = match target {
            Target::Code(code) => {
                let (high, low) = code.as_u64_pair();
                high ^ low
            }
            Target::Slug { ping_key, slug } => {
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                (ping_key, slug).hash(&mut hasher);
                hasher.finish()
            }
        };
        (hash % n) as usize
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::UrlAction;
    use uuid::Uuid;

    fn job(code: u128, enqueued: Instant) -> (Job, oneshot::Receiver<Outcome>) {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            route: PingRoute {
                target: Target::Code(Uuid::from_u128(code)),
                action: UrlAction::Success,
                exit_status: None,
                rid: None,
                create: false,
            },
            meta: PingMeta {
                received: Utc::now(),
                scheme: "http",
                remote_addr: None,
                method: "GET".into(),
                ua: String::new(),
                body: Bytes::new(),
            },
            created: false,
            enqueued,
            reply: Some(reply),
        };
        (job, answer)
    }

    #[test]
    fn expire_answers_only_jobs_that_waited_too_long() {
        let queue = Queue::new(2);
        let start = Instant::now();
        let wait = Duration::from_secs(10);
        let (old, mut old_answer) = job(1, start);
        let (young, mut young_answer) = job(2, start + Duration::from_secs(5));
        queue.push(old);
        queue.push(young);
        assert_eq!(queue.expire(start + Duration::from_secs(9), wait), 0);
        assert_eq!(queue.len(), 2);
        assert_eq!(
            queue.dwell(start + Duration::from_secs(9)),
            Duration::from_secs(9)
        );
        assert_eq!(queue.expire(start + Duration::from_secs(10), wait), 1);
        assert_eq!(old_answer.try_recv(), Ok(Outcome::Unavailable));
        assert!(young_answer.try_recv().is_err());
        assert_eq!(queue.len(), 1);
        assert_eq!(
            queue.dwell(start + Duration::from_secs(10)),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn a_checks_pings_stay_in_one_lane_in_order() {
        let queue = Queue::new(4);
        let start = Instant::now();
        for i in 0..3 {
            queue.push(job(7, start + Duration::from_millis(i)).0);
        }
        let taken: Vec<Vec<Job>> = (0..4).map(|slot| queue.take(slot, 10)).collect();
        let lanes: Vec<usize> = taken.iter().map(Vec::len).collect();
        assert_eq!(lanes.iter().sum::<usize>(), 3);
        assert!(lanes.contains(&3), "{lanes:?}");
        let lane = taken.iter().find(|jobs| jobs.len() == 3).unwrap();
        assert!(lane.windows(2).all(|w| w[0].enqueued < w[1].enqueued));
    }
}
