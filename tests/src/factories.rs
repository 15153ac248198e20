//! Factories: insert rows that read as specifications, supplying every NOT NULL column (the
//! schema has no database defaults, as in Healthchecks).
//!
//! `insert_check(&client, CheckSpec { status: "down", ..Default::default() })` creates the owner
//! and project too when no `project_id` is given.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use tokio_postgres::Client;
use uuid::Uuid;

/// A row of `auth_user`.
#[derive(Debug, Clone)]
pub struct User {
    /// `auth_user.id`.
    pub id: i32,
    /// Unique user name.
    pub username: String,
    /// Email address.
    pub email: String,
}

/// Inserts an active user with a unique name and email.
pub async fn insert_user(client: &Client) -> anyhow::Result<User> {
    let username = format!("user-{}", Uuid::new_v4().simple());
    let email = format!("{username}@example.org");
    let row = client
        .query_one(
            "INSERT INTO auth_user (password, last_login, is_superuser, username, first_name, \
                 last_name, email, is_staff, is_active, date_joined) \
             VALUES ('!', NULL, false, $1, '', '', $2, false, true, now()) RETURNING id",
            &[&username, &email],
        )
        .await
        .context("cannot insert auth_user")?;
    Ok(User {
        id: row.try_get(0)?,
        username,
        email,
    })
}

/// Inserts the user's `accounts_profile` with Healthchecks' defaults (no payments) and the given
/// ping log limit.
pub async fn insert_profile(
    client: &Client,
    user_id: i32,
    ping_log_limit: i32,
) -> anyhow::Result<i32> {
    let token = Uuid::new_v4().simple().to_string();
    let row = client
        .query_one(
            "INSERT INTO accounts_profile (next_report_date, user_id, ping_log_limit, token, \
                 check_limit, last_sms_date, sms_limit, sms_sent, sort, nag_period, \
                 next_nag_date, deletion_notice_date, last_active_date, call_limit, calls_sent, \
                 last_call_date, reports, tz, theme, totp, totp_created, \
                 deletion_scheduled_date, over_limit_date) \
             VALUES (NULL, $1, $2, $3, 10000, NULL, 10000, 0, 'created', interval '0', NULL, \
                 NULL, NULL, 10000, 0, NULL, 'monthly', 'UTC', NULL, NULL, NULL, NULL, NULL) \
             RETURNING id",
            &[&user_id, &ping_log_limit, &token],
        )
        .await
        .context("cannot insert accounts_profile")?;
    Ok(row.try_get(0)?)
}

/// A row of `accounts_project`.
#[derive(Debug, Clone)]
pub struct Project {
    /// `accounts_project.id`.
    pub id: i32,
    /// Public UUID.
    pub code: Uuid,
    /// Owner (`auth_user.id`).
    pub owner_id: i32,
    /// The key of ping-key URLs (`/ping/<ping_key>/<slug>`): 22 characters `[a-z0-9]`.
    pub ping_key: String,
}

/// Inserts a project owned by `owner_id`, with a fresh ping key and no API keys.
pub async fn insert_project(client: &Client, owner_id: i32) -> anyhow::Result<Project> {
    let code = Uuid::new_v4();
    let ping_key: String = Uuid::new_v4().simple().to_string()[..22].to_owned();
    let badge_key = Uuid::new_v4().to_string();
    let row = client
        .query_one(
            "INSERT INTO accounts_project (code, name, api_key, api_key_readonly, owner_id, \
                 badge_key, ping_key, show_slugs) \
             VALUES ($1, 'Project', '', '', $2, $3, $4, false) RETURNING id",
            &[&code, &owner_id, &badge_key, &ping_key],
        )
        .await
        .context("cannot insert accounts_project")?;
    Ok(Project {
        id: row.try_get(0)?,
        code,
        owner_id,
        ping_key,
    })
}

/// Makes `user_id` a member of `project_id` (`accounts_member`, role `w`: a team member).
pub async fn insert_member(client: &Client, user_id: i32, project_id: i32) -> anyhow::Result<i32> {
    let row = client
        .query_one(
            "INSERT INTO accounts_member (user_id, project_id, transfer_request_date, role) \
             VALUES ($1, $2, NULL, 'w') RETURNING id",
            &[&user_id, &project_id],
        )
        .await
        .context("cannot insert accounts_member")?;
    Ok(row.try_get(0)?)
}

/// Inserts a user (with a profile) and a project they own.
pub async fn insert_owned_project(client: &Client) -> anyhow::Result<Project> {
    let user = insert_user(client).await?;
    insert_profile(client, user.id, 100).await?;
    insert_project(client, user.id).await
}

/// What a check should look like; the defaults are Healthchecks' model defaults.
#[derive(Debug, Clone)]
pub struct CheckSpec {
    /// Project; `None` creates a user, profile and project.
    pub project_id: Option<i32>,
    /// Public UUID; `None` makes a random one.
    pub code: Option<Uuid>,
    /// Name.
    pub name: String,
    /// Slug (not unique).
    pub slug: String,
    /// Space-separated tags.
    pub tags: String,
    /// `new`, `up`, `down` or `paused`.
    pub status: &'static str,
    /// `simple`, `cron` or `oncalendar`.
    pub kind: &'static str,
    /// Period of a simple check.
    pub timeout: Duration,
    /// Grace time.
    pub grace: Duration,
    /// Cron or OnCalendar expression.
    pub schedule: String,
    /// Time zone of the schedule.
    pub tz: String,
    /// Creation time; `None` means now.
    pub created: Option<DateTime<Utc>>,
    /// Time of the last success/fail ping.
    pub last_ping: Option<DateTime<Utc>>,
    /// Time of the last start ping.
    pub last_start: Option<DateTime<Utc>>,
    /// When the check goes down if no ping arrives.
    pub alert_after: Option<DateTime<Utc>>,
    /// Number of pings so far.
    pub n_pings: i32,
    /// Allowed HTTP methods: `""` (any) or `POST`.
    pub methods: String,
    /// Stay paused after a ping until resumed by hand.
    pub manual_resume: bool,
    /// Run id of the last start ping.
    pub last_start_rid: Option<Uuid>,
    /// Duration of the last run.
    pub last_duration: Option<Duration>,
    /// Whether the last ping's body held a confirmation link.
    pub has_confirmation_link: bool,
    /// Apply the keyword filters to email subjects.
    pub filter_subject: bool,
    /// Apply the keyword filters to email bodies.
    pub filter_body: bool,
    /// Apply the keyword filters to HTTP request bodies.
    pub filter_http_body: bool,
    /// With filters on, a ping matching no keyword is a failure (else it is ignored).
    pub filter_default_fail: bool,
    /// Comma-separated start keywords.
    pub start_kw: String,
    /// Comma-separated success keywords.
    pub success_kw: String,
    /// Comma-separated failure keywords.
    pub failure_kw: String,
}

impl Default for CheckSpec {
    fn default() -> Self {
        CheckSpec {
            project_id: None,
            code: None,
            name: String::new(),
            slug: String::new(),
            tags: String::new(),
            status: "new",
            kind: "simple",
            timeout: Duration::from_secs(86_400),
            grace: Duration::from_secs(3_600),
            schedule: "* * * * *".to_owned(),
            tz: "UTC".to_owned(),
            created: None,
            last_ping: None,
            last_start: None,
            alert_after: None,
            n_pings: 0,
            methods: String::new(),
            manual_resume: false,
            last_start_rid: None,
            last_duration: None,
            has_confirmation_link: false,
            filter_subject: false,
            filter_body: false,
            filter_http_body: false,
            filter_default_fail: false,
            start_kw: String::new(),
            success_kw: String::new(),
            failure_kw: String::new(),
        }
    }
}

/// A row of `api_check`.
#[derive(Debug, Clone)]
pub struct Check {
    /// `api_check.id`.
    pub id: i32,
    /// Public UUID (the ping URL).
    pub code: Uuid,
    /// Project.
    pub project_id: i32,
}

/// Inserts a check as `spec` describes, every other column at Healthchecks' default.
pub async fn insert_check(client: &Client, spec: CheckSpec) -> anyhow::Result<Check> {
    let project_id = match spec.project_id {
        Some(id) => id,
        None => insert_owned_project(client).await?.id,
    };
    let code = spec.code.unwrap_or_else(Uuid::new_v4);
    let badge_key = Uuid::new_v4();
    let created = spec.created.unwrap_or_else(Utc::now);
    let row = client
        .query_one(
            "INSERT INTO api_check (code, last_ping, alert_after, status, timeout, name, created, \
                 grace, tags, n_pings, kind, schedule, tz, has_confirmation_link, \"desc\", \
                 last_start, project_id, last_duration, methods, manual_resume, slug, failure_kw, \
                 filter_body, filter_subject, success_kw, last_start_rid, start_kw, badge_key, \
                 filter_default_fail, filter_http_body) \
             VALUES ($1, $2, $3, $4, make_interval(secs => $5), $6, $7, \
                 make_interval(secs => $8), $9, $10, $11, $12, $13, $20, '', \
                 $14, $15, make_interval(secs => $21), $16, $17, $18, $22, \
                 $23, $24, $25, $26, $27, $19, \
                 $28, $29) \
             RETURNING id",
            &[
                &code,
                &spec.last_ping,
                &spec.alert_after,
                &spec.status,
                &spec.timeout.as_secs_f64(),
                &spec.name,
                &created,
                &spec.grace.as_secs_f64(),
                &spec.tags,
                &spec.n_pings,
                &spec.kind,
                &spec.schedule,
                &spec.tz,
                &spec.last_start,
                &project_id,
                &spec.methods,
                &spec.manual_resume,
                &spec.slug,
                &badge_key,
                &spec.has_confirmation_link,
                &spec.last_duration.map(|d| d.as_secs_f64()),
                &spec.failure_kw,
                &spec.filter_body,
                &spec.filter_subject,
                &spec.success_kw,
                &spec.last_start_rid,
                &spec.start_kw,
                &spec.filter_default_fail,
                &spec.filter_http_body,
            ],
        )
        .await
        .context("cannot insert api_check")?;
    Ok(Check {
        id: row.try_get(0)?,
        code,
        project_id,
    })
}

/// What a notification channel should look like.
#[derive(Debug, Clone)]
pub struct ChannelSpec {
    /// Project; `None` creates a user, profile and project.
    pub project_id: Option<i32>,
    /// Integration kind (`email`, `webhook`, …).
    pub kind: &'static str,
    /// Kind-specific value (an address, JSON, …).
    pub value: String,
    /// Display name.
    pub name: String,
    /// Whether an email channel's address is confirmed.
    pub email_verified: bool,
    /// Disabled after repeated failures.
    pub disabled: bool,
    /// Checks (`api_check.id`) to assign the channel to.
    pub checks: Vec<i32>,
}

impl Default for ChannelSpec {
    fn default() -> Self {
        ChannelSpec {
            project_id: None,
            kind: "email",
            value: "alerts@example.org".to_owned(),
            name: String::new(),
            email_verified: true,
            disabled: false,
            checks: Vec::new(),
        }
    }
}

/// A row of `api_channel`.
#[derive(Debug, Clone)]
pub struct Channel {
    /// `api_channel.id`.
    pub id: i32,
    /// Public UUID.
    pub code: Uuid,
    /// Project.
    pub project_id: i32,
}

/// Inserts a channel and assigns it to `spec.checks`.
pub async fn insert_channel(client: &Client, spec: ChannelSpec) -> anyhow::Result<Channel> {
    let project_id = match spec.project_id {
        Some(id) => id,
        None => insert_owned_project(client).await?.id,
    };
    let code = Uuid::new_v4();
    let row = client
        .query_one(
            "INSERT INTO api_channel (code, created, kind, value, email_verified, name, \
                 project_id, last_error, last_notify, disabled, last_notify_duration) \
             VALUES ($1, now(), $2, $3, $4, $5, $6, '', NULL, $7, NULL) RETURNING id",
            &[
                &code,
                &spec.kind,
                &spec.value,
                &spec.email_verified,
                &spec.name,
                &project_id,
                &spec.disabled,
            ],
        )
        .await
        .context("cannot insert api_channel")?;
    let channel = Channel {
        id: row.try_get(0)?,
        code,
        project_id,
    };
    for check_id in spec.checks {
        assign_channel(client, channel.id, check_id).await?;
    }
    Ok(channel)
}

/// Assigns a channel to a check (`api_channel_checks`).
pub async fn assign_channel(client: &Client, channel_id: i32, check_id: i32) -> anyhow::Result<()> {
    client
        .execute(
            "INSERT INTO api_channel_checks (channel_id, check_id) VALUES ($1, $2)",
            &[&channel_id, &check_id],
        )
        .await
        .context("cannot insert api_channel_checks")?;
    Ok(())
}

/// Inserts a flip of check `check_id` from `old` to `new` status at `created`; `processed`
/// `None` leaves it for `hc-sendalerts`.
pub async fn insert_flip(
    client: &Client,
    check_id: i32,
    created: DateTime<Utc>,
    (old, new): (&str, &str),
    reason: &str,
    processed: Option<DateTime<Utc>>,
) -> anyhow::Result<i32> {
    let row = client
        .query_one(
            "INSERT INTO api_flip (created, processed, old_status, new_status, owner_id, reason) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[&created, &processed, &old, &new, &check_id, &reason],
        )
        .await
        .context("cannot insert api_flip")?;
    Ok(row.try_get(0)?)
}

/// What a ping should look like: a success over HTTP from 198.51.100.7 without a body unless
/// said otherwise.
#[derive(Debug, Clone)]
pub struct PingSpec {
    /// The check (`api_check.id`).
    pub check_id: i32,
    /// `n`: the ping's number within its check.
    pub n: i32,
    /// `created`.
    pub created: DateTime<Utc>,
    /// `kind`: `None` (success), `start`, `fail`, `ign` or `log`.
    pub kind: Option<&'static str>,
    /// `scheme`: `http`, `https` or `email`.
    pub scheme: &'static str,
    /// `body_raw`.
    pub body: Option<Vec<u8>>,
    /// `object_size`: set (with no `body_raw`) for a body offloaded to object storage.
    pub object_size: Option<i32>,
}

impl Default for PingSpec {
    fn default() -> Self {
        PingSpec {
            check_id: 0,
            n: 1,
            created: Utc::now(),
            kind: None,
            scheme: "http",
            body: None,
            object_size: None,
        }
    }
}

/// Inserts a ping as `spec` describes (the check's own columns are left as they are).
pub async fn insert_ping(client: &Client, spec: PingSpec) -> anyhow::Result<i64> {
    let row = client
        .query_one(
            "INSERT INTO api_ping (created, remote_addr, method, ua, owner_id, scheme, n, kind, \
                 exitstatus, body_raw, object_size, rid) \
             VALUES ($1, '198.51.100.7', 'POST', 'curl/8.0', $2, $3, $4, $5, NULL, $6, $7, NULL) \
             RETURNING id",
            &[
                &spec.created,
                &spec.check_id,
                &spec.scheme,
                &spec.n,
                &spec.kind,
                &spec.body,
                &spec.object_size,
            ],
        )
        .await
        .context("cannot insert api_ping")?;
    Ok(row.try_get(0)?)
}
