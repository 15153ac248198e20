//! The pure half of a ping batch: from the batch's jobs and its locked check rows, decides each
//! job's outcome in Healthchecks' order and applies the pings in queue order with
//! [`apply_ping`], giving the `api_ping` and `api_flip` rows to insert and the `api_check` rows
//! to update. No I/O: the writer's shell reads the rows, sends the statements and commits.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use hc_core::status::StoredStatus;
use uuid::Uuid;

use crate::pings::{CheckState, PingKind, PingSignal, apply_ping};
use crate::queue::{Job, Outcome};
use crate::routes::{ExitStatus, Target};

/// A check row as locked by the batch's `SELECT … FOR UPDATE`.
#[derive(Debug, Clone)]
pub struct LockedCheck {
    /// The columns `apply_ping` reads and writes.
    pub state: CheckState,
    /// The project's `ping_key`.
    pub ping_key: Option<String>,
    /// `slug`.
    pub slug: String,
    /// `status` as stored (text: an unknown value is kept as read).
    pub status_raw: String,
}

/// What a batch writes, and how each of its jobs is answered once it committed.
#[derive(Debug)]
pub struct Plan<'a> {
    /// One per job, in order; `None`: the check must be created first (`?create=1`).
    pub outcomes: Vec<Option<Outcome>>,
    /// The `api_ping` rows, in processing order.
    pub pings: Vec<PingRow<'a>>,
    /// The `api_flip` rows, in processing order.
    pub flips: Vec<FlipRow>,
    /// The `api_check` rows to update, once per pinged check, with its final columns.
    pub checks: Vec<CheckUpdate>,
}

/// One `api_ping` row; the body's storage is decided by the shell.
#[derive(Debug, Clone, PartialEq)]
pub struct PingRow<'a> {
    /// `n`.
    pub n: i32,
    /// `owner_id`: the check's id.
    pub owner_id: i32,
    /// `created`.
    pub created: DateTime<Utc>,
    /// `kind`.
    pub kind: PingKind,
    /// `scheme`.
    pub scheme: &'static str,
    /// `remote_addr`.
    pub remote_addr: Option<IpAddr>,
    /// `method`.
    pub method: &'a str,
    /// `ua`.
    pub ua: &'a str,
    /// The body as received.
    pub body: &'a [u8],
    /// `exitstatus`.
    pub exitstatus: Option<i16>,
    /// `rid`.
    pub rid: Option<Uuid>,
}

/// One `api_flip` row (`processed` is `NULL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlipRow {
    /// `created`.
    pub created: DateTime<Utc>,
    /// `old_status`.
    pub old_status: &'static str,
    /// `new_status`.
    pub new_status: &'static str,
    /// `owner_id`: the check's id.
    pub owner_id: i32,
    /// `reason`.
    pub reason: &'static str,
}

/// The final columns of a pinged check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckUpdate {
    /// `id`.
    pub id: i32,
    /// `last_ping`.
    pub last_ping: Option<DateTime<Utc>>,
    /// `last_start`.
    pub last_start: Option<DateTime<Utc>>,
    /// `last_start_rid`.
    pub last_start_rid: Option<Uuid>,
    /// `last_duration` in microseconds.
    pub last_duration_us: Option<i64>,
    /// `status`.
    pub status: Cow<'static, str>,
    /// `alert_after`.
    pub alert_after: Option<DateTime<Utc>>,
    /// `n_pings`.
    pub n_pings: i32,
    /// `has_confirmation_link`.
    pub has_confirmation_link: bool,
}

/// Plans the batch `jobs` over the rows `checks` locked for it (pure).
///
/// Jobs are taken in queue order, so the result equals processing the pings one at a time.
pub fn plan_batch(jobs: &[Job], checks: Vec<LockedCheck>) -> Plan<'_> {
    let mut checks: Vec<Locked> = checks
        .into_iter()
        .map(|row| Locked {
            row,
            touched: false,
            flipped: false,
        })
        .collect();
    let mut by_code: HashMap<Uuid, usize> = HashMap::new();
    let mut by_slug: HashMap<(String, String), Vec<usize>> = HashMap::new();
    for (i, check) in checks.iter().enumerate() {
        by_code.insert(check.row.state.code, i);
        if let Some(key) = &check.row.ping_key {
            by_slug
                .entry((key.clone(), check.row.slug.clone()))
                .or_default()
                .push(i);
        }
    }

    let mut plan = Plan {
        outcomes: Vec::with_capacity(jobs.len()),
        pings: Vec::with_capacity(jobs.len()),
        flips: Vec::new(),
        checks: Vec::new(),
    };
    for job in jobs {
        let (outcome, index) = decide(job, &by_code, &by_slug);
        plan.outcomes.push(outcome);
        let Some(index) = index else {
            continue;
        };
        let rid = match job.route.rid {
            Some(Ok(rid)) => Some(rid),
            _ => None,
        };
        let check = &mut checks[index];
        let signal = PingSignal {
            action: job.route.action,
            method: &job.meta.method,
            body: &job.meta.body,
            rid,
        };
        let effect = apply_ping(&mut check.row.state, &signal, micros(job.meta.received));
        check.touched = true;
        check.flipped |= effect.flip.is_some();
        let owner_id = check.row.state.id;
        if let Some(flip) = &effect.flip {
            plan.flips.push(FlipRow {
                created: flip.created,
                old_status: flip.old_status.as_db(),
                new_status: flip.new_status.as_db(),
                owner_id,
                reason: flip.reason,
            });
        }
        plan.pings.push(PingRow {
            n: effect.n,
            owner_id,
            created: effect.created,
            kind: effect.kind,
            scheme: job.meta.scheme,
            remote_addr: job.meta.remote_addr,
            method: &job.meta.method,
            ua: &job.meta.ua,
            body: &job.meta.body,
            exitstatus: match job.route.exit_status {
                Some(ExitStatus::Valid(code)) => Some(i16::from(code)),
                _ => None,
            },
            rid,
        });
    }
    plan.checks = checks
        .into_iter()
        .filter(|c| c.touched)
        .map(Locked::into_update)
        .collect();
    plan
}

/// A locked row while the batch is applied.
struct Locked {
    row: LockedCheck,
    touched: bool,
    flipped: bool,
}

impl Locked {
    fn into_update(self) -> CheckUpdate {
        let state = self.row.state;
        // An unknown stored status is written back as it was unless a ping changed it.
        let status = if self.flipped || StoredStatus::from_db(&self.row.status_raw).is_some() {
            Cow::Borrowed(state.timing.status.as_db())
        } else {
            Cow::Owned(self.row.status_raw)
        };
        CheckUpdate {
            id: state.id,
            last_ping: state.timing.last_ping,
            last_start: state.timing.last_start,
            last_start_rid: state.last_start_rid,
            last_duration_us: state.last_duration.and_then(|d| d.num_microseconds()),
            status,
            alert_after: state.alert_after,
            n_pings: state.n_pings,
            has_confirmation_link: state.has_confirmation_link,
        }
    }
}

/// A job's outcome and, when it is a ping to record, the index of its check, in Healthchecks'
/// order: the lookup, then the exit status, then `rid`.
fn decide(
    job: &Job,
    by_code: &HashMap<Uuid, usize>,
    by_slug: &HashMap<(String, String), Vec<usize>>,
) -> (Option<Outcome>, Option<usize>) {
    let index = match &job.route.target {
        Target::Code(code) => by_code.get(code).copied(),
        Target::Slug { ping_key, slug } => match by_slug.get(&(ping_key.clone(), slug.clone())) {
            Some(found) if found.len() > 1 => return (Some(Outcome::AmbiguousSlug), None),
            Some(found) => found.first().copied(),
            None => None,
        },
    };
    let Some(index) = index else {
        if job.route.create && !job.created {
            // No outcome yet: the shell creates the check and queues the ping again.
            return (None, None);
        }
        return (Some(Outcome::NotFound), None);
    };
    if job.route.exit_status == Some(ExitStatus::TooLarge) {
        return (Some(Outcome::InvalidUrl), None);
    }
    if job.route.rid == Some(Err(())) {
        return (Some(Outcome::InvalidRid), None);
    }
    let outcome = if job.created {
        Outcome::Created
    } else {
        Outcome::Recorded
    };
    (Some(outcome), Some(index))
}

fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;
    use std::time::Instant;

    use super::*;
    use crate::queue::PingMeta;
    use crate::routes::{PingRoute, UrlAction};

    const KEY: &str = "key";

    fn received() -> DateTime<Utc> {
        DateTime::from_timestamp(1_704_067_200, 0).expect("a valid time")
    }

    /// The check with id `id`, code `id` and slug `slug` in project `KEY`, status `new`.
    fn row(id: i32, slug: &str) -> LockedCheck {
        LockedCheck {
            state: CheckState {
                id,
                code: Uuid::from_u128(id as u128),
                ..crate::pings::tests::new_check()
            },
            ping_key: Some(KEY.to_owned()),
            slug: slug.to_owned(),
            status_raw: "new".to_owned(),
        }
    }

    fn job(target: Target, action: UrlAction) -> Job {
        Job {
            route: PingRoute {
                target,
                action,
                exit_status: None,
                rid: None,
                create: false,
            },
            meta: PingMeta {
                received: received(),
                scheme: "http",
                remote_addr: None,
                method: "GET".to_owned(),
                ua: String::new(),
                body: Default::default(),
            },
            created: false,
            enqueued: Instant::now(),
            reply: None,
        }
    }

    /// A ping to the check with code `id`.
    fn by_code(id: u128, action: UrlAction) -> Job {
        job(Target::Code(Uuid::from_u128(id)), action)
    }

    /// A ping to `slug` in project `KEY`.
    fn by_slug(slug: &str, action: UrlAction) -> Job {
        let target = Target::Slug {
            ping_key: KEY.to_owned(),
            slug: slug.to_owned(),
        };
        job(target, action)
    }

    /// The plan as lines: the outcomes, then each row written.
    fn render(plan: &Plan<'_>) -> String {
        let mut out = String::new();
        for outcome in &plan.outcomes {
            match outcome {
                Some(outcome) => writeln!(out, "answer {outcome:?}"),
                None => writeln!(out, "answer after provisioning"),
            }
            .expect("writing to a string");
        }
        for p in &plan.pings {
            write!(
                out,
                "ping check={} n={} {}",
                p.owner_id,
                p.n,
                p.kind.label()
            )
            .expect("writing to a string");
            if let Some(code) = p.exitstatus {
                write!(out, " exit={code}").expect("writing to a string");
            }
            if let Some(rid) = p.rid {
                write!(out, " rid={}", rid.as_u128()).expect("writing to a string");
            }
            out.push('\n');
        }
        for f in &plan.flips {
            writeln!(
                out,
                "flip check={} {} -> {} {:?}",
                f.owner_id, f.old_status, f.new_status, f.reason
            )
            .expect("writing to a string");
        }
        for c in &plan.checks {
            writeln!(
                out,
                "update check={} {} n_pings={}",
                c.id, c.status, c.n_pings
            )
            .expect("writing to a string");
        }
        out
    }

    #[track_caller]
    fn check(checks: Vec<LockedCheck>, jobs: Vec<Job>, expected: &str) {
        let plan = plan_batch(&jobs, checks);
        let expected: Vec<&str> = expected
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let actual = render(&plan);
        assert_eq!(actual.lines().collect::<Vec<_>>(), expected, "\n{actual}");
    }

    #[test]
    fn a_success_on_a_new_check_records_it_and_flips_it_up() {
        check(
            vec![row(1, "a")],
            vec![by_code(1, UrlAction::Success)],
            "
            answer Recorded
            ping check=1 n=1 success
            flip check=1 new -> up \"\"
            update check=1 up n_pings=1
            ",
        );
    }

    #[test]
    fn pings_to_one_check_are_numbered_in_queue_order_and_update_it_once() {
        check(
            vec![row(1, "a"), row(2, "b")],
            vec![
                by_code(1, UrlAction::Start),
                by_slug("b", UrlAction::Fail),
                by_slug("a", UrlAction::Success),
                by_code(1, UrlAction::Log),
            ],
            "
            answer Recorded
            answer Recorded
            answer Recorded
            answer Recorded
            ping check=1 n=1 start
            ping check=2 n=1 fail
            ping check=1 n=2 success
            ping check=1 n=3 log
            flip check=2 new -> down \"fail\"
            flip check=1 new -> up \"\"
            update check=1 up n_pings=3
            update check=2 down n_pings=1
            ",
        );
    }

    #[test]
    fn an_unknown_code_or_slug_is_not_found_and_writes_nothing() {
        check(
            vec![row(1, "a")],
            vec![
                by_code(2, UrlAction::Success),
                by_slug("b", UrlAction::Success),
            ],
            "
            answer NotFound
            answer NotFound
            ",
        );
    }

    #[test]
    fn a_slug_in_another_project_is_not_found() {
        let mut job = by_slug("a", UrlAction::Success);
        job.route.target = Target::Slug {
            ping_key: "other".to_owned(),
            slug: "a".to_owned(),
        };
        check(vec![row(1, "a")], vec![job], "answer NotFound");
    }

    #[test]
    fn a_slug_shared_by_two_checks_is_ambiguous_and_writes_nothing() {
        check(
            vec![row(1, "a"), row(2, "a")],
            vec![
                by_slug("a", UrlAction::Success),
                by_code(2, UrlAction::Success),
            ],
            "
            answer AmbiguousSlug
            answer Recorded
            ping check=2 n=1 success
            flip check=2 new -> up \"\"
            update check=2 up n_pings=1
            ",
        );
    }

    #[test]
    fn an_invalid_rid_is_refused_after_the_lookup() {
        let mut found = by_code(1, UrlAction::Success);
        found.route.rid = Some(Err(()));
        let mut missing = by_code(2, UrlAction::Success);
        missing.route.rid = Some(Err(()));
        check(
            vec![row(1, "a")],
            vec![found, missing],
            "
            answer InvalidRid
            answer NotFound
            ",
        );
    }

    #[test]
    fn a_valid_rid_and_exit_status_are_written_with_the_ping() {
        let mut job = by_code(1, UrlAction::Start);
        job.route.rid = Some(Ok(Uuid::from_u128(7)));
        job.route.exit_status = Some(ExitStatus::Valid(0));
        check(
            vec![row(1, "a")],
            vec![job],
            "
            answer Recorded
            ping check=1 n=1 start exit=0 rid=7
            update check=1 new n_pings=1
            ",
        );
    }

    #[test]
    fn an_exit_status_over_255_is_an_invalid_url_after_the_lookup() {
        let mut found = by_code(1, UrlAction::Fail);
        found.route.exit_status = Some(ExitStatus::TooLarge);
        let mut missing = by_code(2, UrlAction::Fail);
        missing.route.exit_status = Some(ExitStatus::TooLarge);
        check(
            vec![row(1, "a")],
            vec![found, missing],
            "
            answer InvalidUrl
            answer NotFound
            ",
        );
    }

    #[test]
    fn a_missing_slug_with_create_waits_for_provisioning() {
        let mut job = by_slug("new", UrlAction::Success);
        job.route.create = true;
        check(vec![], vec![job], "answer after provisioning");
    }

    #[test]
    fn a_ping_whose_request_created_the_check_is_answered_created() {
        let mut job = by_slug("new", UrlAction::Success);
        job.route.create = true;
        job.created = true;
        check(
            vec![row(3, "new")],
            vec![job],
            "
            answer Created
            ping check=3 n=1 success
            flip check=3 new -> up \"\"
            update check=3 up n_pings=1
            ",
        );
    }

    #[test]
    fn a_created_check_that_went_away_again_is_not_found() {
        let mut job = by_slug("new", UrlAction::Success);
        job.route.create = true;
        job.created = true;
        check(vec![], vec![job], "answer NotFound");
    }

    #[test]
    fn an_unknown_stored_status_is_kept_unless_a_ping_flips_it() {
        let mut weird = row(1, "a");
        weird.status_raw = "weird".to_owned();
        check(
            vec![weird.clone()],
            vec![by_code(1, UrlAction::Log)],
            "
            answer Recorded
            ping check=1 n=1 log
            update check=1 weird n_pings=1
            ",
        );
        check(
            vec![weird],
            vec![by_code(1, UrlAction::Success)],
            "
            answer Recorded
            ping check=1 n=1 success
            flip check=1 new -> up \"\"
            update check=1 up n_pings=1
            ",
        );
    }
}
