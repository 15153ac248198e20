//! hc-sendalerts as processes under concurrency and failure: several senders on one database
//! deliver each (flip, channel) once and in order, a SIGKILLed sender's work is taken over with
//! at most its in-flight deliveries repeated, flips made while no sender runs are delivered in
//! order, and the loop survives a PostgreSQL restart without being restarted itself.
//!
//! Every webhook posts `$CODE $STATUS` to a path of its own, so one recorded request names its
//! (check, status, channel), that is its (flip, channel).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use hc_tests::eventually::eventually;
use hc_tests::factories::{
    ChannelSpec, CheckSpec, insert_channel, insert_check, insert_flip, insert_owned_project,
};
use hc_tests::postgres::{Cluster, Shutdown, TestDb};
use hc_tests::recorder::{RecordedRequest, Recorder, Reply};
use hc_tests::service::ServiceProcess;
use tokio_postgres::Client;
use uuid::Uuid;

use crate::sendalerts_loop::{overdue, sender_vars, webhook, with_sender_settings};

/// How long a process may take to start or stop.
const PATIENCE: Duration = Duration::from_secs(30);
/// How long thousands of deliveries may take on a slow machine.
const LONG_PATIENCE: Duration = Duration::from_secs(120);

/// Inserts `n` checks of `project_id` whose deadline passed an hour ago (as [`overdue`]), in
/// one statement; returns their ids and codes.
async fn insert_overdue_checks(client: &Client, project_id: i32, n: i32) -> Vec<(i32, Uuid)> {
    client
        .query(
            "INSERT INTO api_check (code, last_ping, alert_after, status, timeout, name, created, \
                 grace, tags, n_pings, kind, schedule, tz, has_confirmation_link, \"desc\", \
                 last_start, project_id, last_duration, methods, manual_resume, slug, failure_kw, \
                 filter_body, filter_subject, success_kw, last_start_rid, start_kw, badge_key, \
                 filter_default_fail, filter_http_body) \
             SELECT gen_random_uuid(), now() - interval '26 hours', now() - interval '1 hour', \
                 'up', interval '1 day', 'bulk-' || i, now() - interval '2 days', \
                 interval '1 hour', '', 1, 'simple', '* * * * *', 'UTC', false, '', \
                 NULL, $1, NULL, '', false, '', '', \
                 false, false, '', NULL, '', gen_random_uuid(), \
                 false, false \
             FROM generate_series(1, $2) AS i \
             RETURNING id, code",
            &[&project_id, &n],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

/// A webhook channel of `project_id` posting to `path`, assigned to `checks` in one statement.
async fn webhook_channel(
    client: &Client,
    recorder: &Recorder,
    project_id: i32,
    path: &str,
    checks: &[i32],
) -> i32 {
    let channel = insert_channel(
        client,
        ChannelSpec {
            project_id: Some(project_id),
            kind: "webhook",
            value: webhook(recorder, path),
            ..ChannelSpec::default()
        },
    )
    .await
    .unwrap();
    client
        .execute(
            "INSERT INTO api_channel_checks (channel_id, check_id) \
             SELECT $1, unnest($2::int4[])",
            &[&channel.id, &checks],
        )
        .await
        .unwrap();
    channel.id
}

/// Waits until every flip is processed and exactly `expected` notifications exist, none of
/// them pending; returns their `error` values.
async fn wait_until_all_delivered(client: &Client, expected: i64) -> Vec<String> {
    eventually(LONG_PATIENCE, || async {
        let unprocessed: i64 = client
            .query_one("SELECT count(*) FROM api_flip WHERE processed IS NULL", &[])
            .await?
            .get(0);
        let errors: Vec<String> = client
            .query("SELECT error FROM api_notification", &[])
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        let sending = errors.iter().filter(|e| *e == "Sending").count();
        anyhow::ensure!(
            unprocessed == 0 && errors.len() as i64 == expected && sending == 0,
            "{unprocessed} flips unprocessed, {} notifications of {expected}, {sending} sending",
            errors.len()
        );
        Ok(errors)
    })
    .await
    .unwrap()
}

/// Waits until the recorder got at least `n` requests, with [`LONG_PATIENCE`].
async fn wait_for_requests(recorder: &Recorder, n: usize) -> Vec<RecordedRequest> {
    eventually(LONG_PATIENCE, || async {
        let requests = recorder.requests();
        anyhow::ensure!(requests.len() >= n, "{} of {n} requests", requests.len());
        Ok(requests)
    })
    .await
    .unwrap()
}

/// `(body, path)` of a request: `("<code> <status>", "/channel")`.
fn key(request: &RecordedRequest) -> (String, String) {
    (request.text(), request.path.clone())
}

/// The arrival indexes of each `(body, path)`.
fn arrivals(requests: &[RecordedRequest]) -> HashMap<(String, String), Vec<usize>> {
    let mut seen: HashMap<(String, String), Vec<usize>> = HashMap::new();
    for (index, request) in requests.iter().enumerate() {
        seen.entry(key(request)).or_default().push(index);
    }
    seen
}

/// Starts a sender process and waits for its `READY=1`.
async fn start_sender(vars: &HashMap<String, String>) -> ServiceProcess {
    let mut sender = ServiceProcess::start("hc-sendalerts", vars).unwrap();
    sender.wait_ready(PATIENCE).await.unwrap();
    sender
}

/// SIGTERM, then exit 0.
async fn stop_sender(mut sender: ServiceProcess) {
    sender.signal("TERM").unwrap();
    let status = sender.wait_exit(PATIENCE).await.unwrap();
    assert!(status.success(), "{status}: {}", sender.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_senders_deliver_each_flip_once_on_each_channel() {
    const PROJECTS: usize = 10;
    const CHECKS_PER_PROJECT: i32 = 200;
    let db = TestDb::new().await;
    let client = db.client().await;
    let recorder = Recorder::start().await;
    // Two channels per project, each shared by the project's checks.
    let mut expected_down = HashSet::new();
    let mut expected_up = HashSet::new();
    let mut check_ids = Vec::new();
    for p in 0..PROJECTS {
        let project = insert_owned_project(&client).await.unwrap();
        let checks = insert_overdue_checks(&client, project.id, CHECKS_PER_PROJECT).await;
        let ids: Vec<i32> = checks.iter().map(|(id, _)| *id).collect();
        for side in ["a", "b"] {
            let path = format!("/p{p}/{side}");
            webhook_channel(&client, &recorder, project.id, &path, &ids).await;
            for (_, code) in &checks {
                expected_down.insert((format!("{code} down"), path.clone()));
                expected_up.insert((format!("{code} up"), path.clone()));
            }
        }
        check_ids.extend(ids);
    }
    assert_eq!(expected_down.len(), 4_000);

    let vars = sender_vars(&db, &[("SENDALERTS_IDLE_WAIT", "0.2")]);
    let mut senders = Vec::new();
    for _ in 0..3 {
        senders.push(start_sender(&vars).await);
    }

    wait_for_requests(&recorder, 4_000).await;
    wait_until_all_delivered(&client, 4_000).await;
    let downs: HashSet<(String, String)> = recorder.requests().iter().map(key).collect();
    assert_eq!(downs, expected_down);

    // Every check back up, as hchk-ping records a success ping of a down check.
    let flipped = client
        .execute(
            "WITH up AS ( \
                 UPDATE api_check SET status = 'up', last_ping = now(), n_pings = n_pings + 1, \
                     alert_after = now() + interval '1 day' \
                 WHERE id = ANY($1) AND status = 'down' RETURNING id) \
             INSERT INTO api_flip (created, processed, old_status, new_status, owner_id, reason) \
             SELECT now(), NULL, 'down', 'up', id, '' FROM up",
            &[&check_ids],
        )
        .await
        .unwrap();
    assert_eq!(flipped, 2_000);

    wait_for_requests(&recorder, 8_000).await;
    let errors = wait_until_all_delivered(&client, 8_000).await;
    assert!(
        errors.iter().all(String::is_empty),
        "every delivery succeeded"
    );

    let requests = recorder.requests();
    let seen = arrivals(&requests);
    let doubled: Vec<_> = seen.iter().filter(|(_, at)| at.len() > 1).collect();
    assert!(doubled.is_empty(), "delivered more than once: {doubled:?}");
    let keys: HashSet<(String, String)> = seen.keys().cloned().collect();
    let expected: HashSet<(String, String)> = expected_down.union(&expected_up).cloned().collect();
    assert_eq!(keys.len(), 8_000);
    assert_eq!(keys, expected, "one request per (check, status, channel)");
    for (body, path) in &expected_down {
        let code = body.trim_end_matches(" down");
        let down = seen[&(body.clone(), path.clone())][0];
        let up = seen[&(format!("{code} up"), path.clone())][0];
        assert!(
            down < up,
            "{code} on {path}: up (#{up}) before down (#{down})"
        );
    }
    for sender in senders {
        stop_sender(sender).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sender_killed_while_delivering_loses_nothing() {
    const CHECKS: usize = 200;
    const CONCURRENCY: usize = 32;
    let db = TestDb::new().await;
    let client = db.client().await;
    let recorder = Recorder::start().await;
    // Slow answers: deliveries are in flight when the sender dies.
    recorder.respond_with(Reply::status(200).with_delay(Duration::from_millis(300)));
    let project = insert_owned_project(&client).await.unwrap();
    let checks = insert_overdue_checks(&client, project.id, CHECKS as i32).await;
    for (i, (id, _)) in checks.iter().enumerate() {
        webhook_channel(&client, &recorder, project.id, &format!("/n{i}"), &[*id]).await;
    }
    let vars = sender_vars(&db, &[("SENDALERTS_CONCURRENCY", &CONCURRENCY.to_string())]);

    let mut first = start_sender(&vars).await;
    wait_for_requests(&recorder, 40).await;
    first.kill().unwrap();
    // Requests the dead sender had written are read once its connections are closed.
    hc_tests::eventually::eventually(Duration::from_secs(30), || {
        let open = recorder.open_connections();
        async move {
            anyhow::ensure!(open == 0, "{open} connections still open");
            Ok(())
        }
    })
    .await
    .unwrap();
    let at_kill = recorder.requests().len();
    assert!(
        at_kill < CHECKS,
        "the sender was killed half-way: {at_kill}"
    );

    let second = start_sender(&vars).await;
    let errors = wait_until_all_delivered(&client, CHECKS as i64).await;
    assert!(errors.iter().all(String::is_empty), "{errors:?}");
    let requests = recorder.requests();
    let seen = arrivals(&requests);
    let codes: HashSet<String> = checks
        .iter()
        .map(|(_, code)| format!("{code} down"))
        .collect();
    let bodies: HashSet<String> = seen.keys().map(|(body, _)| body.clone()).collect();
    assert_eq!(bodies, codes, "every check alerted");
    let duplicated: Vec<(&(String, String), &Vec<usize>)> =
        seen.iter().filter(|(_, at)| at.len() > 1).collect();
    eprintln!(
        "killed after {at_kill} requests; {} requests in all; {} delivered twice",
        requests.len(),
        duplicated.len()
    );
    for (key, at) in &duplicated {
        assert_eq!(at.len(), 2, "{key:?} at most twice: {at:?}");
        assert!(
            at[0] < at_kill,
            "{key:?}: only a delivery in flight at the kill repeats ({at:?}, kill at {at_kill})"
        );
    }
    assert!(
        duplicated.len() <= CONCURRENCY,
        "{} repeats, more than the {CONCURRENCY} deliveries in flight",
        duplicated.len()
    );
    stop_sender(second).await;
}

#[tokio::test]
async fn a_down_and_up_while_no_sender_runs_arrive_in_order_when_one_starts() {
    let db = TestDb::new().await;
    let client = db.client().await;
    let recorder = Recorder::start().await;
    // Slow answers, so an up sent before its down finished would overtake it.
    recorder.respond_with(Reply::status(200).with_delay(Duration::from_millis(200)));
    let project = insert_owned_project(&client).await.unwrap();
    let now = Utc::now();
    // Up again now: the down flip came from going down, the up flip from a ping.
    let check = insert_check(
        &client,
        CheckSpec {
            project_id: Some(project.id),
            status: "up",
            last_ping: Some(now),
            alert_after: Some(now + TimeDelta::days(1)),
            n_pings: 2,
            ..CheckSpec::default()
        },
    )
    .await
    .unwrap();
    webhook_channel(&client, &recorder, project.id, "/hook", &[check.id]).await;
    insert_flip(
        &client,
        check.id,
        now - TimeDelta::minutes(10),
        ("up", "down"),
        "timeout",
        None,
    )
    .await
    .unwrap();
    insert_flip(
        &client,
        check.id,
        now - TimeDelta::minutes(1),
        ("down", "up"),
        "",
        None,
    )
    .await
    .unwrap();

    let sender = start_sender(&sender_vars(&db, &[])).await;
    let errors = wait_until_all_delivered(&client, 2).await;
    assert_eq!(errors, ["", ""]);
    let bodies: Vec<String> = recorder.requests().iter().map(|r| r.text()).collect();
    assert_eq!(
        bodies,
        [format!("{} down", check.code), format!("{} up", check.code)]
    );
    stop_sender(sender).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_recovers_when_postgresql_restarts() {
    let cluster = Cluster::start().await.unwrap();
    cluster.create_database("hc").await.unwrap();
    let client = cluster.connect("hc").await.unwrap();
    hc_core::schema::apply(&client).await.unwrap();
    let recorder = Recorder::start().await;
    let project = insert_owned_project(&client).await.unwrap();
    let before = insert_check(&client, overdue(project.id)).await.unwrap();
    webhook_channel(&client, &recorder, project.id, "/before", &[before.id]).await;
    drop(client);

    let vars = with_sender_settings(cluster.vars("hc"), &[("SENDALERTS_IDLE_WAIT", "0.2")]);
    let mut sender = start_sender(&vars).await;
    wait_for_requests(&recorder, 1).await;

    tokio::task::block_in_place(|| cluster.stop_keeping_data(Shutdown::Fast)).unwrap();
    // The sender notices the outage and keeps running.
    eventually(PATIENCE, || {
        let log = sender.log();
        async move {
            anyhow::ensure!(log.contains("alert loop pass failed"), "no failed pass yet");
            Ok(())
        }
    })
    .await
    .unwrap();
    assert!(
        sender.exited().unwrap().is_none(),
        "the sender survives the outage: {}",
        sender.log()
    );
    cluster.start_again().await.unwrap();

    let client = cluster.connect("hc").await.unwrap();
    let after = insert_check(&client, overdue(project.id)).await.unwrap();
    webhook_channel(&client, &recorder, project.id, "/after", &[after.id]).await;
    let requests = eventually(Duration::from_secs(60), || async {
        let requests = recorder.requests();
        anyhow::ensure!(requests.len() >= 2, "{} requests", requests.len());
        Ok(requests)
    })
    .await
    .unwrap_or_else(|err| panic!("{err:#}: {}", sender.log()));
    let bodies: Vec<(String, String)> = requests.iter().map(key).collect();
    assert_eq!(
        bodies,
        [
            (format!("{} down", before.code), "/before".to_owned()),
            (format!("{} down", after.code), "/after".to_owned()),
        ]
    );
    assert!(sender.exited().unwrap().is_none(), "{}", sender.log());
    stop_sender(sender).await;
}
