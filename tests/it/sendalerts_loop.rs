//! The alert loop end to end on a real PostgreSQL, with webhooks delivered to a local recorder:
//! flips become one notification per channel, silent flips stay silent, nag dates, order,
//! retries, groups, bad rows, and the process contract (READY, `/metrics`, SIGTERM).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use hc_tests::factories::{
    ChannelSpec, CheckSpec, assign_channel, insert_channel, insert_check, insert_flip,
    insert_owned_project,
};
use hc_tests::postgres::TestDb;
use hc_tests::recorder::{Recorder, Reply};
use hc_tests::service::ServiceProcess;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const PATIENCE: Duration = Duration::from_secs(30);

/// The sender's environment for `db`: webhooks to loopback allowed, fast retries, no metrics.
pub fn sender_vars(db: &TestDb, extra: &[(&str, &str)]) -> HashMap<String, String> {
    with_sender_settings(db.vars(), extra)
}

/// `vars` (a database's variables) plus the settings of [`sender_vars`] and `extra`.
pub(crate) fn with_sender_settings(
    mut vars: HashMap<String, String>,
    extra: &[(&str, &str)],
) -> HashMap<String, String> {
    for (name, value) in [
        ("SECRET_KEY", "test-secret"),
        ("SITE_ROOT", "http://hc.example.org"),
        ("INTEGRATIONS_ALLOW_PRIVATE_IPS", "True"),
        ("SENDALERTS_RETRY_DELAYS", "0.05,0.05"),
        ("SENDALERTS_METRICS_LISTEN", ""),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    {
        vars.insert(name.to_owned(), value.to_owned());
    }
    vars
}

/// Runs `hc-sendalerts --once` in-process.
pub async fn run_once(vars: &HashMap<String, String>) {
    let mut config = hc_sendalerts::Config::from_vars(vars).unwrap();
    config.once = true;
    tokio::time::timeout(
        PATIENCE,
        hc_sendalerts::run(config, CancellationToken::new()),
    )
    .await
    .expect("one pass ends")
    .unwrap();
}

/// A webhook value posting `$CODE $STATUS` to `path` on the recorder, for both statuses.
pub fn webhook(recorder: &Recorder, path: &str) -> String {
    json!({
        "method_down": "POST", "url_down": recorder.url(path), "body_down": "$CODE $STATUS",
        "headers_down": {},
        "method_up": "POST", "url_up": recorder.url(path), "body_up": "$CODE $STATUS",
        "headers_up": {},
    })
    .to_string()
}

/// An up check whose deadline passed an hour ago.
pub(crate) fn overdue(project_id: i32) -> CheckSpec {
    let last_ping = Utc::now() - TimeDelta::days(1) - TimeDelta::hours(2);
    CheckSpec {
        project_id: Some(project_id),
        name: "backup".into(),
        status: "up",
        last_ping: Some(last_ping),
        alert_after: Some(last_ping + TimeDelta::days(1) + TimeDelta::hours(1)),
        n_pings: 1,
        ..CheckSpec::default()
    }
}

async fn channel(
    client: &tokio_postgres::Client,
    project_id: i32,
    kind: &'static str,
    value: String,
    checks: Vec<i32>,
) -> i32 {
    insert_channel(
        client,
        ChannelSpec {
            project_id: Some(project_id),
            kind,
            value,
            checks,
            ..ChannelSpec::default()
        },
    )
    .await
    .unwrap()
    .id
}

/// `(channel_id, check_status, error)` of every notification, by id.
pub(crate) async fn notifications(client: &tokio_postgres::Client) -> Vec<(i32, String, String)> {
    client
        .query(
            "SELECT channel_id, check_status, error FROM api_notification ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[tokio::test]
async fn a_late_check_alerts_every_channel_once() {
    let db = TestDb::new().await;
    let client = db.client().await;
    let recorder = Recorder::start().await;
    let project = insert_owned_project(&client).await.unwrap();
    let check = insert_check(&client, overdue(project.id)).await.unwrap();
    let a = channel(
        &client,
        project.id,
        "webhook",
        webhook(&recorder, "/a"),
        vec![check.id],
    )
    .await;
    let b = channel(
        &client,
        project.id,
        "webhook",
        webhook(&recorder, "/b"),
        vec![check.id],
    )
    .await;
    let disabled = insert_channel(
        &client,
        ChannelSpec {
            project_id: Some(project.id),
            kind: "webhook",
            value: webhook(&recorder, "/disabled"),
            disabled: true,
            checks: vec![check.id],
            ..ChannelSpec::default()
        },
    )
    .await
    .unwrap();
    let noop = json!({"method_down": "POST", "url_down": "", "method_up": "POST", "url_up": recorder.url("/noop")});
    channel(
        &client,
        project.id,
        "webhook",
        noop.to_string(),
        vec![check.id],
    )
    .await;
    // A channel of the project that is not assigned to the check.
    channel(
        &client,
        project.id,
        "webhook",
        webhook(&recorder, "/other"),
        vec![],
    )
    .await;

    let vars = sender_vars(&db, &[]);
    run_once(&vars).await;

    let mut paths: Vec<String> = recorder.requests().iter().map(|r| r.path.clone()).collect();
    paths.sort();
    assert_eq!(paths, ["/a", "/b"]);
    for request in recorder.requests() {
        assert_eq!(request.text(), format!("{} down", check.code));
    }
    let mut rows = notifications(&client).await;
    rows.sort();
    assert_eq!(
        rows,
        [
            (a, "down".into(), String::new()),
            (b, "down".into(), String::new())
        ]
    );
    let flip = client
        .query_one(
            "SELECT processed IS NOT NULL, created, reason FROM api_flip",
            &[],
        )
        .await
        .unwrap();
    assert!(flip.get::<_, bool>(0));
    assert_eq!(flip.get::<_, String>(2), "timeout");
    let codes: Vec<Uuid> = client
        .query("SELECT code FROM api_notification", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(codes.iter().all(|c| c.get_version_num() == 8), "{codes:?}");
    let channel_row = client
        .query_one(
            "SELECT last_notify IS NOT NULL, last_notify_duration IS NOT NULL, last_error FROM api_channel WHERE id = $1",
            &[&a],
        )
        .await
        .unwrap();
    assert!(channel_row.get::<_, bool>(0) && channel_row.get::<_, bool>(1));
    assert_eq!(channel_row.get::<_, String>(2), "");
    let untouched = client
        .query_one(
            "SELECT last_notify IS NULL FROM api_channel WHERE id = $1",
            &[&disabled.id],
        )
        .await
        .unwrap();
    assert!(untouched.get::<_, bool>(0));

    // Nothing is sent twice.
    run_once(&vars).await;
    assert_eq!(recorder.requests().len(), 2);
    assert_eq!(notifications(&client).await.len(), 2);
}

#[tokio::test]
async fn first_ups_and_pauses_are_silent() {
    let db = TestDb::new().await;
    let client = db.client().await;
    let recorder = Recorder::start().await;
    let project = insert_owned_project(&client).await.unwrap();
    let now = Utc::now();
    for (old, new) in [
        ("new", "up"),
        ("paused", "up"),
        ("up", "paused"),
        ("paused", "new"),
    ] {
        let check = insert_check(
            &client,
            CheckSpec {
                project_id: Some(project.id),
                status: if new == "paused" { "paused" } else { "up" },
                ..CheckSpec::default()
            },
        )
        .await
        .unwrap();
        channel(
            &client,
            project.id,
            "webhook",
            webhook(&recorder, "/x"),
            vec![check.id],
        )
        .await;
        insert_flip(&client, check.id, now, (old, new), "", None)
            .await
            .unwrap();
    }
    run_once(&sender_vars(&db, &[])).await;
    let unprocessed: i64 = client
        .query_one("SELECT count(*) FROM api_flip WHERE processed IS NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(unprocessed, 0);
    assert_eq!(notifications(&client).await, []);
    assert_eq!(recorder.requests().len(), 0);
}

#[tokio::test]
async fn a_down_and_up_that_happened_while_stopped_arrive_in_order() {
    let db = TestDb::new().await;
    let client = db.client().await;
    let recorder = Recorder::start().await;
    // Slow answers, so an out-of-order send would overtake.
    recorder.respond_with(Reply::status(200).with_delay(Duration::from_millis(200)));
    let project = insert_owned_project(&client).await.unwrap();
    let now = Utc::now();
    let mut checks = Vec::new();
    for _ in 0..5 {
        let check = insert_check(
            &client,
            CheckSpec {
                project_id: Some(project.id),
                status: "up",
                last_ping: Some(now),
                alert_after: Some(now + TimeDelta::days(1)),
                ..CheckSpec::default()
            },
        )
        .await
        .unwrap();
        channel(
            &client,
            project.id,
            "webhook",
            webhook(&recorder, "/hook"),
            vec![check.id],
        )
        .await;
        insert_flip(
            &client,
            check.id,
            now - TimeDelta::minutes(10),
            ("up", "down"),
            "fail",
            None,
        )
        .await
        .unwrap();
        insert_flip(
            &client,
            check.id,
            now - TimeDelta::minutes(5),
            ("down", "up"),
            "",
            None,
        )
        .await
        .unwrap();
        checks.push(check.code);
    }
    run_once(&sender_vars(&db, &[])).await;
    let bodies: Vec<String> = recorder.requests().iter().map(|r| r.text()).collect();
    assert_eq!(bodies.len(), 10, "{bodies:?}");
    for code in checks {
        let mine: Vec<&String> = bodies
            .iter()
            .filter(|b| b.starts_with(&code.to_string()))
            .collect();
        assert_eq!(mine, [&format!("{code} down"), &format!("{code} up")]);
    }
}

#[tokio::test]
async fn nag_dates_follow_the_down_checks_of_owners_and_members() {
    let db = TestDb::new().await;
    let client = db.client().await;
    let project = insert_owned_project(&client).await.unwrap();
    let member = hc_tests::factories::insert_user(&client).await.unwrap();
    hc_tests::factories::insert_profile(&client, member.id, 100)
        .await
        .unwrap();
    hc_tests::factories::insert_member(&client, member.id, project.id)
        .await
        .unwrap();
    // The owner nags hourly, the member daily; an unrelated user with a nag date is untouched.
    client
        .execute(
            "UPDATE accounts_profile SET nag_period = CASE WHEN user_id = $1 THEN interval '1 hour' ELSE interval '1 day' END \
             WHERE user_id IN ($1, $2)",
            &[&project.owner_id, &member.id],
        )
        .await
        .unwrap();
    let check = insert_check(&client, overdue(project.id)).await.unwrap();
    run_once(&sender_vars(&db, &[])).await;
    let nag = |user: i32| {
        let client = &client;
        async move {
            client
                .query_one(
                    "SELECT EXTRACT(EPOCH FROM next_nag_date - now())::float8 FROM accounts_profile WHERE user_id = $1",
                    &[&user],
                )
                .await
                .unwrap()
                .get::<_, Option<f64>>(0)
        }
    };
    let owner_in = nag(project.owner_id).await.expect("owner nag date set");
    assert!((3500.0..=3600.0).contains(&owner_in), "{owner_in}");
    let member_in = nag(member.id).await.expect("member nag date set");
    assert!((86_300.0..=86_400.0).contains(&member_in), "{member_in}");

    // An already set date is not moved by another down flip.
    client
        .execute("UPDATE accounts_profile SET next_nag_date = now() + interval '5 minutes' WHERE user_id = $1", &[&project.owner_id])
        .await
        .unwrap();
    let second = insert_check(&client, overdue(project.id)).await.unwrap();
    run_once(&sender_vars(&db, &[])).await;
    let kept = nag(project.owner_id).await.unwrap();
    assert!(kept < 301.0, "{kept}");

    // Both checks up again: the dates are cleared.
    for id in [check.id, second.id] {
        client
            .execute("UPDATE api_check SET status = 'up', last_ping = now(), alert_after = now() + interval '1 day' WHERE id = $1", &[&id])
            .await
            .unwrap();
        insert_flip(&client, id, Utc::now(), ("down", "up"), "", None)
            .await
            .unwrap();
    }
    run_once(&sender_vars(&db, &[])).await;
    assert_eq!(nag(project.owner_id).await, None);
    assert_eq!(nag(member.id).await, None);
}

#[tokio::test]
async fn transient_errors_are_retried_then_recorded() {
    let db = TestDb::new().await;
    let client = db.client().await;
    let recorder = Recorder::start().await;
    let project = insert_owned_project(&client).await.unwrap();
    let check = insert_check(&client, overdue(project.id)).await.unwrap();
    let hook = channel(
        &client,
        project.id,
        "webhook",
        webhook(&recorder, "/flaky"),
        vec![check.id],
    )
    .await;
    recorder.enqueue(Reply::status(500));
    recorder.enqueue(Reply::status(503));
    run_once(&sender_vars(&db, &[])).await;
    assert_eq!(recorder.requests().len(), 3, "two failures, then success");
    assert_eq!(
        notifications(&client).await,
        [(hook, "down".into(), String::new())]
    );

    // Always failing: three tries, then the error is recorded; the channel stays enabled.
    recorder.respond_with(Reply::status(500));
    let second = insert_check(&client, overdue(project.id)).await.unwrap();
    assign_channel(&client, hook, second.id).await.unwrap();
    run_once(&sender_vars(&db, &[])).await;
    assert_eq!(recorder.requests().len(), 6);
    let rows = notifications(&client).await;
    assert_eq!(
        rows[1],
        (hook, "down".into(), "Received status code 500".into())
    );
    let channel_row = client
        .query_one(
            "SELECT last_error, disabled FROM api_channel WHERE id = $1",
            &[&hook],
        )
        .await
        .unwrap();
    assert_eq!(channel_row.get::<_, String>(0), "Received status code 500");
    assert!(!channel_row.get::<_, bool>(1));
}

#[tokio::test]
async fn a_group_fans_out_once_per_member_and_sums_up_failures() {
    let db = TestDb::new().await;
    let client = db.client().await;
    let ok = Recorder::start().await;
    let failing = Recorder::start().await;
    failing.respond_with(Reply::status(400));
    let project = insert_owned_project(&client).await.unwrap();
    let check = insert_check(&client, overdue(project.id)).await.unwrap();
    let a = insert_channel(
        &client,
        ChannelSpec {
            project_id: Some(project.id),
            kind: "webhook",
            value: webhook(&ok, "/a"),
            checks: vec![check.id],
            ..ChannelSpec::default()
        },
    )
    .await
    .unwrap();
    let b = insert_channel(
        &client,
        ChannelSpec {
            project_id: Some(project.id),
            kind: "webhook",
            value: webhook(&failing, "/b"),
            ..ChannelSpec::default()
        },
    )
    .await
    .unwrap();
    // A channel of another project is never a member.
    let stranger = insert_channel(
        &client,
        ChannelSpec {
            kind: "webhook",
            value: webhook(&ok, "/stranger"),
            ..ChannelSpec::default()
        },
    )
    .await
    .unwrap();
    let value = format!("{},{}, {},not-a-uuid", a.code, b.code, stranger.code);
    let group = channel(&client, project.id, "group", value, vec![check.id]).await;
    run_once(&sender_vars(&db, &[])).await;

    let ok_paths: Vec<String> = ok.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        ok_paths,
        ["/a"],
        "the direct and the group member are one delivery"
    );
    assert_eq!(failing.requests().len(), 1);
    let rows = notifications(&client).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.contains(&(a.id, "down".into(), String::new())));
    assert!(rows.contains(&(b.id, "down".into(), "Received status code 400".into())));
    assert!(rows.contains(&(
        group,
        "down".into(),
        "1 out of 2 notifications failed".into()
    )));
}

#[tokio::test]
async fn bad_rows_are_postponed_or_recorded_and_the_rest_is_alerted() {
    let db = TestDb::new().await;
    let client = db.client().await;
    let recorder = Recorder::start().await;
    let project = insert_owned_project(&client).await.unwrap();
    let now = Utc::now();
    let mut broken = Vec::new();
    for (schedule, tz) in [("garbage", "UTC"), ("0 0 * * *", "Mars/Olympus_Mons")] {
        let check = insert_check(
            &client,
            CheckSpec {
                kind: "cron",
                schedule: schedule.into(),
                tz: tz.into(),
                ..overdue(project.id)
            },
        )
        .await
        .unwrap();
        channel(
            &client,
            project.id,
            "webhook",
            webhook(&recorder, "/broken"),
            vec![check.id],
        )
        .await;
        broken.push(check.id);
    }
    // Never fires again: the check can never be late, so it is not alerted.
    let never = insert_check(
        &client,
        CheckSpec {
            kind: "cron",
            schedule: "0 0 31 2 *".into(),
            ..overdue(project.id)
        },
    )
    .await
    .unwrap();
    channel(
        &client,
        project.id,
        "webhook",
        webhook(&recorder, "/never"),
        vec![never.id],
    )
    .await;
    // Good checks with a bad channel beside a good one.
    let good = insert_check(&client, overdue(project.id)).await.unwrap();
    let unknown = channel(
        &client,
        project.id,
        "carrier-pigeon",
        "coo".into(),
        vec![good.id],
    )
    .await;
    let malformed = channel(
        &client,
        project.id,
        "webhook",
        "{not json".into(),
        vec![good.id],
    )
    .await;
    let fine = channel(
        &client,
        project.id,
        "webhook",
        webhook(&recorder, "/fine"),
        vec![good.id],
    )
    .await;

    run_once(&sender_vars(&db, &[])).await;

    let paths: Vec<String> = recorder.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/fine"]);
    for id in &broken {
        let row = client
            .query_one("SELECT status, EXTRACT(EPOCH FROM alert_after - $2::timestamptz)::float8 FROM api_check WHERE id = $1", &[id, &now])
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "up");
        let later = row.get::<_, f64>(1);
        assert!(
            (3590.0..3700.0).contains(&later),
            "postponed by an hour: {later}"
        );
    }
    let never_row = client
        .query_one(
            "SELECT status, alert_after FROM api_check WHERE id = $1",
            &[&never.id],
        )
        .await
        .unwrap();
    assert_eq!(never_row.get::<_, String>(0), "up");
    let mut rows = notifications(&client).await;
    rows.sort();
    let mut expected = vec![
        (
            unknown,
            "down".to_owned(),
            "unsupported channel kind: carrier-pigeon".to_owned(),
        ),
        (fine, "down".to_owned(), String::new()),
    ];
    expected.sort();
    let malformed_row = rows
        .iter()
        .find(|r| r.0 == malformed)
        .cloned()
        .expect("malformed value recorded");
    assert!(
        !malformed_row.2.is_empty() && malformed_row.2 != "Sending",
        "{malformed_row:?}"
    );
    rows.retain(|r| r.0 != malformed);
    assert_eq!(rows, expected);
}

#[tokio::test]
async fn the_process_says_ready_serves_metrics_and_stops_on_sigterm() {
    let db = TestDb::new().await;
    let client = db.client().await;
    let recorder = Recorder::start().await;
    let port = hc_tests::postgres::free_port().unwrap();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let listen = addr.to_string();
    let vars = sender_vars(&db, &[("SENDALERTS_METRICS_LISTEN", &listen)]);
    let mut sender = ServiceProcess::start("hc-sendalerts", &vars).unwrap();
    sender.wait_ready(PATIENCE).await.unwrap();

    let project = insert_owned_project(&client).await.unwrap();
    let check = insert_check(&client, overdue(project.id)).await.unwrap();
    channel(
        &client,
        project.id,
        "webhook",
        webhook(&recorder, "/live"),
        vec![check.id],
    )
    .await;
    let requests = recorder.wait_for(1).await.unwrap();
    assert_eq!(requests[0].text(), format!("{} down", check.code));

    let metrics = hc_tests::eventually::eventually(PATIENCE, || async move {
        let reply = hc_tests::http::get(addr, "/metrics").await?;
        let text = String::from_utf8_lossy(&reply.body).into_owned();
        anyhow::ensure!(
            text.contains("hc_sendalerts_notifications_total{kind=\"webhook\",outcome=\"ok\"} 1"),
            "{text}"
        );
        Ok(text)
    })
    .await
    .unwrap();
    assert!(metrics.contains("hc_sendalerts_last_success_timestamp_seconds"));

    sender.signal("TERM").unwrap();
    let status = sender.wait_exit(PATIENCE).await.unwrap();
    assert!(status.success(), "{status}: {}", sender.log());
}

#[tokio::test]
async fn an_endpoint_waiting_to_retry_holds_no_slot_of_the_others() {
    let db = TestDb::new().await;
    let client = db.client().await;
    let failing = Recorder::start().await;
    failing.respond_with(Reply::status(500));
    let healthy = Recorder::start().await;
    // One delivery at a time, and a long wait before the failing endpoint's retry.
    let vars = sender_vars(
        &db,
        &[
            ("SENDALERTS_CONCURRENCY", "1"),
            ("SENDALERTS_RETRY_DELAYS", "600"),
        ],
    );
    let mut sender = ServiceProcess::start("hc-sendalerts", &vars).unwrap();
    sender.wait_ready(PATIENCE).await.unwrap();

    let project = insert_owned_project(&client).await.unwrap();
    let late = insert_check(&client, overdue(project.id)).await.unwrap();
    channel(
        &client,
        project.id,
        "webhook",
        webhook(&failing, "/dead"),
        vec![late.id],
    )
    .await;
    failing.wait_for(1).await.unwrap();

    // The failing delivery now waits to retry; another check's alert still goes out.
    let other = insert_check(&client, overdue(project.id)).await.unwrap();
    channel(
        &client,
        project.id,
        "webhook",
        webhook(&healthy, "/alive"),
        vec![other.id],
    )
    .await;
    let requests = healthy.wait_for(1).await.unwrap();
    assert_eq!(requests[0].text(), format!("{} down", other.code));
    assert_eq!(failing.requests().len(), 1, "the retry is still ahead");
    // Its result is written right after the request: only the failing delivery is unfinished.
    let client = &client;
    hc_tests::eventually::eventually(PATIENCE, || async move {
        let pending: i64 = client
            .query_one(
                "SELECT count(*) FROM api_notification WHERE error = 'Sending'",
                &[],
            )
            .await?
            .get(0);
        anyhow::ensure!(pending == 1, "{pending} notifications pending");
        Ok(())
    })
    .await
    .unwrap();

    // Stopped during the backoff: the failing notification stays pending for the next start.
    sender.signal("TERM").unwrap();
    let status = sender.wait_exit(PATIENCE).await.unwrap();
    assert!(status.success(), "{status}: {}", sender.log());
}
