//! Checks whose `alert_after` has passed (`healthchecks-behaviour.md` §3.2): flip them down, or
//! store their new `alert_after`, or postpone a check whose schedule cannot be evaluated.
//!
//! Every write is the conditional update of ARCHITECTURE.md's down-flip contract (unchanged
//! `status`, `n_pings` and `alert_after`), and a down flip's `UPDATE` and `INSERT INTO api_flip`
//! commit together, so a ping committed meanwhile is never overwritten and a flip is never lost.
//! The row is taken with `FOR UPDATE SKIP LOCKED`, so several senders share the work.

use chrono::{DateTime, TimeDelta, Utc};
use hc_core::status::{CheckTiming, Status};
use tokio_postgres::Client;
use uuid::Uuid;

/// How long a check whose schedule cannot be evaluated is left alone.
pub const POSTPONE: TimeDelta = TimeDelta::hours(1);

/// A due check as read.
#[derive(Debug, Clone)]
pub struct DueCheck {
    /// `id`.
    pub id: i32,
    /// `code`.
    pub code: Uuid,
    /// `status` as stored (text: an unknown value is kept as read).
    pub status: String,
    /// The columns that decide the status.
    pub timing: CheckTiming,
    /// `alert_after` as read.
    pub alert_after: DateTime<Utc>,
    /// `n_pings` as read.
    pub n_pings: i32,
}

/// What to do with a due check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Not down yet: store the new `alert_after` (`None`: never).
    Reschedule(Option<DateTime<Utc>>),
    /// Down: flip with this `created` time.
    FlipDown(DateTime<Utc>),
    /// The schedule cannot be evaluated: look again at this time.
    Postpone(DateTime<Utc>, String),
}

/// What one call of [`handle_going_down`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// No check is due.
    Idle,
    /// A check got its decision applied.
    Applied(Uuid, Decision),
    /// The check changed since it was read (a ping, an edit): nothing written.
    Changed(Uuid),
}

/// Decides about `check` at `now` (pure).
pub fn decide(check: &DueCheck, now: DateTime<Utc>) -> Decision {
    let status = check
        .timing
        .status(now, false)
        .and_then(|status| Ok((status, check.timing.going_down_after()?)));
    match status {
        Err(err) => Decision::Postpone(now + POSTPONE, err.to_string()),
        Ok((Status::Down, after)) => Decision::FlipDown(after.unwrap_or(check.alert_after)),
        Ok((_, after)) => Decision::Reschedule(after),
    }
}

/// Handles the due check with the earliest `alert_after`, if any, in one transaction.
pub async fn handle_going_down(client: &mut Client, now: DateTime<Utc>) -> anyhow::Result<Handled> {
    Ok(handle_going_down_batch(client, now, 1)
        .await?
        .pop()
        .unwrap_or(Handled::Idle))
}

/// Handles up to `limit` due checks, earliest `alert_after` first, in one transaction; the
/// writes for different checks are pipelined. Returns what happened to each (empty: none due).
pub async fn handle_going_down_batch(
    client: &mut Client,
    now: DateTime<Utc>,
    limit: i64,
) -> anyhow::Result<Vec<Handled>> {
    let tx = client.transaction().await?;
    let select = format!(
        "SELECT {DUE_COLUMNS} FROM api_check WHERE alert_after < now() AND status <> 'down' \
         ORDER BY alert_after LIMIT $1 FOR UPDATE SKIP LOCKED"
    );
    let rows = tx.query(&select, &[&limit]).await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut checks = Vec::with_capacity(rows.len());
    for row in &rows {
        let check = read_due(row)?;
        let decision = decide(&check, now);
        if let Decision::Postpone(_, err) = &decision {
            tracing::warn!(check = %check.code, %err, "cannot evaluate the check's schedule; looking again in an hour");
        }
        checks.push((check, decision));
    }
    let applied = apply_decisions(&tx, &checks).await?;
    tx.commit().await?;
    Ok(checks
        .into_iter()
        .zip(applied)
        .map(|((check, decision), applied)| {
            if applied {
                Handled::Applied(check.code, decision)
            } else {
                Handled::Changed(check.code)
            }
        })
        .collect())
}

/// When the next not-down check is due (`None`: no check has a deadline).
pub async fn next_deadline(client: &Client) -> anyhow::Result<Option<DateTime<Utc>>> {
    Ok(client
        .query_one(
            "SELECT min(alert_after) FROM api_check WHERE status <> 'down'",
            &[],
        )
        .await?
        .try_get(0)?)
}

/// Writes `decision` for `check` if the row still is as read; returns whether it was.
pub async fn apply_decision(
    tx: &tokio_postgres::Transaction<'_>,
    check: &DueCheck,
    decision: &Decision,
) -> anyhow::Result<bool> {
    let applied = apply_decisions(tx, &[(check.clone(), decision.clone())]).await?;
    Ok(applied.first().copied().unwrap_or(false))
}

/// Writes each check's decision if its row still is as read, in one statement: the updates and
/// the down flips' inserts are set-based, one statement per batch instead of two per check.
/// Returns, for each check in order, whether it was written.
pub async fn apply_decisions(
    tx: &tokio_postgres::Transaction<'_>,
    checks: &[(DueCheck, Decision)],
) -> anyhow::Result<Vec<bool>> {
    let mut ids = Vec::with_capacity(checks.len());
    let mut statuses = Vec::with_capacity(checks.len());
    let mut n_pings = Vec::with_capacity(checks.len());
    let mut alert_afters = Vec::with_capacity(checks.len());
    let mut new_afters: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(checks.len());
    let mut flips_at: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(checks.len());
    for (check, decision) in checks {
        ids.push(check.id);
        statuses.push(check.status.as_str());
        n_pings.push(check.n_pings);
        alert_afters.push(check.alert_after);
        let (after, flip) = match decision {
            Decision::Reschedule(after) => (*after, None),
            Decision::Postpone(at, _) => (Some(*at), None),
            Decision::FlipDown(created) => (None, Some(*created)),
        };
        new_afters.push(after);
        flips_at.push(flip);
    }
    // The down-flip contract: only a row with unchanged `status`, `n_pings` and `alert_after` is
    // written, and a down flip's row is inserted by the same statement.
    let rows = tx
        .query(
            "WITH d AS ( \
                 SELECT * FROM unnest($1::int4[], $2::text[], $3::int4[], $4::timestamptz[], \
                     $5::timestamptz[], $6::timestamptz[]) \
                     AS d(id, status, n_pings, alert_after, new_after, flip_at)), \
             u AS ( \
                 UPDATE api_check c \
                 SET status = CASE WHEN d.flip_at IS NULL THEN c.status ELSE 'down' END, \
                     alert_after = d.new_after \
                 FROM d \
                 WHERE c.id = d.id AND c.status = d.status AND c.n_pings = d.n_pings \
                   AND c.alert_after = d.alert_after \
                 RETURNING c.id, d.status AS old_status, d.flip_at), \
             f AS ( \
                 INSERT INTO api_flip (created, processed, old_status, new_status, owner_id, reason) \
                 SELECT flip_at, NULL, old_status, 'down', id, 'timeout' FROM u \
                 WHERE flip_at IS NOT NULL ORDER BY flip_at, id) \
             SELECT id FROM u",
            &[&ids, &statuses, &n_pings, &alert_afters, &new_afters, &flips_at],
        )
        .await?;
    let written = rows
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<std::collections::HashSet<i32>, _>>()?;
    Ok(ids.iter().map(|id| written.contains(id)).collect())
}

/// Reads a row selected with [`DUE_COLUMNS`].
pub fn read_due(row: &tokio_postgres::Row) -> anyhow::Result<DueCheck> {
    Ok(DueCheck {
        id: row.try_get("id")?,
        code: row.try_get("code")?,
        timing: CheckTiming::from_row(row)?,
        status: row.try_get("timing_status")?,
        alert_after: row.try_get("alert_after")?,
        n_pings: row.try_get("n_pings")?,
    })
}

/// The columns [`read_due`] expects, for a query of the caller's own.
pub const DUE_COLUMNS: &str = concat!(
    "api_check.id, api_check.code, ",
    hc_core::timing_columns!("api_check"),
    ", api_check.alert_after, api_check.n_pings"
);

#[cfg(test)]
mod tests {
    use super::*;
    use hc_core::status::{CheckKind, StoredStatus};

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn due(timing: CheckTiming) -> DueCheck {
        DueCheck {
            id: 1,
            code: Uuid::nil(),
            status: timing.status.as_db().to_owned(),
            timing,
            alert_after: t("2024-01-02T01:00:00Z"),
            n_pings: 1,
        }
    }

    fn up(last_ping: &str) -> CheckTiming {
        CheckTiming {
            status: StoredStatus::Up,
            last_ping: Some(t(last_ping)),
            ..CheckTiming::default()
        }
    }

    #[test]
    fn past_grace_flips_down_at_the_deadline() {
        let check = due(up("2024-01-01T00:00:00Z"));
        assert_eq!(
            decide(&check, t("2024-01-02T01:00:05Z")),
            Decision::FlipDown(t("2024-01-02T01:00:00Z"))
        );
    }

    #[test]
    fn a_stale_alert_after_is_moved() {
        let check = due(up("2024-01-01T12:00:00Z"));
        assert_eq!(
            decide(&check, t("2024-01-02T01:00:05Z")),
            Decision::Reschedule(Some(t("2024-01-02T13:00:00Z")))
        );
    }

    #[test]
    fn an_expired_start_on_a_paused_check_goes_down() {
        let check = due(CheckTiming {
            status: StoredStatus::Paused,
            last_start: Some(t("2024-01-01T00:00:00Z")),
            ..CheckTiming::default()
        });
        assert_eq!(
            decide(&check, t("2024-01-01T01:00:01Z")),
            Decision::FlipDown(t("2024-01-01T01:00:00Z"))
        );
    }

    #[test]
    fn a_broken_schedule_is_postponed_by_an_hour() {
        let check = due(CheckTiming {
            kind: CheckKind::Cron,
            schedule: "garbage".into(),
            ..up("2024-01-01T00:00:00Z")
        });
        let now = t("2024-01-02T01:00:05Z");
        assert!(matches!(decide(&check, now), Decision::Postpone(at, _) if at == now + POSTPONE));
    }
}
