//! `?create=1`: creates a missing check in its own short transaction, race-free on every host
//! (see ARCHITECTURE.md, "Ping writes"). The ping itself is written afterwards by a normal batch.

use deadpool_postgres::Pool;
use uuid::Uuid;

/// What [`provision`] found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provisioned {
    /// This call created the check.
    Created,
    /// The check exists (another request created it meanwhile).
    Exists,
    /// No project has the ping key, or its owner is at twice the check limit.
    Refused,
}

/// Creates the check `slug` in the project with `ping_key` (`?create=1`), race-free: the
/// project row is locked while its checks are counted and the slug is looked up again.
pub async fn provision(pool: &Pool, ping_key: &str, slug: &str) -> anyhow::Result<Provisioned> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let Some(project) = tx
        .query_opt(
            "SELECT id, owner_id FROM accounts_project WHERE ping_key = $1 FOR UPDATE",
            &[&ping_key],
        )
        .await?
    else {
        return Ok(Provisioned::Refused);
    };
    let project_id: i32 = project.get(0);
    let owner_id: i32 = project.get(1);
    let existing: i64 = tx
        .query_one(
            "SELECT count(*) FROM api_check WHERE project_id = $1 AND slug = $2",
            &[&project_id, &slug],
        )
        .await?
        .get(0);
    if existing > 0 {
        return Ok(Provisioned::Exists);
    }
    // A missing profile counts as Healthchecks' auto-created one (no payments: 10,000).
    let row = tx
        .query_one(
            "SELECT COALESCE((SELECT check_limit FROM accounts_profile WHERE user_id = $1), 10000), \
                (SELECT count(*) FROM api_check c JOIN accounts_project p ON p.id = c.project_id \
                 WHERE p.owner_id = $1)",
            &[&owner_id],
        )
        .await?;
    let check_limit: i32 = row.get(0);
    let used: i64 = row.get(1);
    if used >= i64::from(check_limit) * 2 {
        return Ok(Provisioned::Refused);
    }
    let check_id: i32 = tx
        .query_one(
            "INSERT INTO api_check (code, name, slug, tags, \"desc\", project_id, created, kind, \
                timeout, grace, schedule, tz, filter_subject, filter_body, filter_http_body, \
                filter_default_fail, start_kw, success_kw, failure_kw, methods, manual_resume, \
                badge_key, n_pings, last_ping, last_start, last_start_rid, last_duration, \
                has_confirmation_link, alert_after, status) \
             VALUES ($1, $2, $2, '', '', $3, now(), 'simple', interval '1 day', interval '1 hour', \
                '* * * * *', 'UTC', false, false, false, false, '', '', '', '', false, $4, 0, \
                NULL, NULL, NULL, NULL, false, NULL, 'new') RETURNING id",
            &[&Uuid::new_v4(), &slug, &project_id, &Uuid::new_v4()],
        )
        .await?
        .get(0);
    tx.execute(
        "INSERT INTO api_channel_checks (channel_id, check_id) \
         SELECT id, $2 FROM api_channel WHERE project_id = $1",
        &[&project_id, &check_id],
    )
    .await?;
    tx.commit().await?;
    tracing::info!(
        slug,
        project = project_id,
        check = check_id,
        "created a check for ?create=1"
    );
    Ok(Provisioned::Created)
}
