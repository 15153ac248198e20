//! `hc-sendalerts --once` end to end with real transports behind the loop: email through a real
//! OpenSMTPD (down, then up with the downtime; which ping the message shows; email pings attached,
//! and the owner's "Projects Overview"), and Slack's
//! permanent errors disabling a channel while the check's other channels are still delivered.

use chrono::{DateTime, TimeDelta, Utc};
use hc_tests::factories::{
    ChannelSpec, CheckSpec, PingSpec, assign_channel, insert_channel, insert_check, insert_flip,
    insert_owned_project, insert_ping,
};
use hc_tests::postgres::TestDb;
use hc_tests::recorder::{Recorder, Reply};
use hc_tests::smtp::{Message, SmtpSink};
use serde_json::json;

use crate::sendalerts_loop::{notifications, overdue, run_once, sender_vars, webhook};
use crate::transports_email::{assert_in_order, parts, parts_and_attachment, verify_unsubscribe};

/// `SITE_ROOT` as `sender_vars` sets it.
const SITE_ROOT: &str = "http://hc.example.org";

/// The sender's variables for `db`, sending mail through `sink`.
fn email_vars(db: &TestDb, sink: &SmtpSink) -> std::collections::HashMap<String, String> {
    let mut vars = sender_vars(
        db,
        &[
            ("DEFAULT_FROM_EMAIL", "alerts@example.org"),
            ("SITE_NAME", "Mychecks"),
        ],
    );
    vars.extend(sink.vars());
    vars
}

/// An email channel of `project_id` to `address` for both statuses, assigned to `checks`.
async fn email_channel(
    client: &tokio_postgres::Client,
    project_id: i32,
    address: &str,
    checks: Vec<i32>,
) -> hc_tests::factories::Channel {
    insert_channel(
        client,
        ChannelSpec {
            project_id: Some(project_id),
            kind: "email",
            value: json!({"value": address, "up": true, "down": true}).to_string(),
            checks,
            ..ChannelSpec::default()
        },
    )
    .await
    .unwrap()
}

/// The one message of `messages` whose subject is `subject`.
#[track_caller]
fn with_subject<'a>(messages: &'a [Message], subject: &str) -> &'a Message {
    let mut found = messages
        .iter()
        .filter(|message| message.header("Subject") == Some(subject));
    let message = found
        .next()
        .unwrap_or_else(|| panic!("no message with subject {subject:?}"));
    assert!(found.next().is_none(), "two messages {subject:?}");
    message
}

/// Whole seconds, so a value stored in PostgreSQL (microseconds) compares equal to its source.
fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap()
}

#[tokio::test]
async fn email_goes_down_then_up_with_the_downtime() {
    let db = TestDb::new().await;
    let client = db.client().await;
    let sink = SmtpSink::start().await.unwrap();
    let project = insert_owned_project(&client).await.unwrap();
    // Its deadline (last ping + 1 day + 1 hour of grace) passed two hours ago.
    let last_ping = whole_seconds(Utc::now()) - TimeDelta::days(1) - TimeDelta::hours(3);
    let check = insert_check(
        &client,
        CheckSpec {
            project_id: Some(project.id),
            name: "nightly-backup".into(),
            status: "up",
            last_ping: Some(last_ping),
            alert_after: Some(last_ping + TimeDelta::days(1) + TimeDelta::hours(1)),
            n_pings: 1,
            ..CheckSpec::default()
        },
    )
    .await
    .unwrap();
    insert_ping(
        &client,
        PingSpec {
            check_id: check.id,
            n: 1,
            created: last_ping,
            body: Some(b"dump finished: 1.2 GB".to_vec()),
            ..PingSpec::default()
        },
    )
    .await
    .unwrap();
    let channel = email_channel(&client, project.id, "ops@example.net", vec![check.id]).await;
    let vars = email_vars(&db, &sink);

    run_once(&vars).await;
    let messages = sink.wait_for_messages(1).await.unwrap();
    assert_eq!(messages.len(), 1);
    let down = with_subject(&messages, "DOWN | nightly-backup");
    assert_eq!(down.header("To"), Some("ops@example.net"));
    assert_eq!(down.header("Delivered-To"), Some("ops@example.net"));
    assert_eq!(down.header("From"), Some("alerts@example.org"));
    assert_eq!(
        down.header("List-Unsubscribe-Post"),
        Some("List-Unsubscribe=One-Click")
    );
    verify_unsubscribe(
        down.header("List-Unsubscribe").unwrap(),
        SITE_ROOT,
        channel.code,
    );
    let (text, html) = parts(down);
    assert_in_order(
        &text,
        &[
            "The check \"nightly-backup\" has gone down.",
            "Reason: success signal did not arrive on time, grace time passed.",
            "Total pings: 1 ",
            "Last ping: ",
            ", from 198.51.100.7",
            "Status changed to down at: ",
            "Last Ping Body:\n---------------\ndump finished: 1.2 GB",
            &format!(
                "Unsubscribe: {SITE_ROOT}/integrations/{}/unsub/",
                channel.code
            ),
        ],
    );
    assert!(!text.contains("downtime"), "{text}");
    assert!(html.contains("nightly-backup"), "{html}");
    assert!(html.contains("dump finished: 1.2 GB"), "{html}");
    let status: String = client
        .query_one("SELECT status FROM api_check WHERE id = $1", &[&check.id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "down");

    // A success ping 90 minutes after the deadline brings it back up, written as hchk-ping
    // writes it: the ping, the check's columns and an unprocessed down → up flip.
    let down_at: DateTime<Utc> = client
        .query_one(
            "SELECT created FROM api_flip WHERE owner_id = $1 AND new_status = 'down'",
            &[&check.id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        down_at,
        last_ping + TimeDelta::days(1) + TimeDelta::hours(1)
    );
    let up_at = down_at + TimeDelta::minutes(90);
    insert_ping(
        &client,
        PingSpec {
            check_id: check.id,
            n: 2,
            created: up_at,
            body: Some(b"second try: dump finished".to_vec()),
            ..PingSpec::default()
        },
    )
    .await
    .unwrap();
    client
        .execute(
            "UPDATE api_check SET status = 'up', last_ping = $2, n_pings = 2, \
                 alert_after = $2::timestamptz + interval '1 day 1 hour' WHERE id = $1",
            &[&check.id, &up_at],
        )
        .await
        .unwrap();
    insert_flip(&client, check.id, up_at, ("down", "up"), "", None)
        .await
        .unwrap();

    run_once(&vars).await;
    let messages = sink.wait_for_messages(2).await.unwrap();
    assert_eq!(messages.len(), 2);
    let up = with_subject(&messages, "UP | nightly-backup");
    verify_unsubscribe(
        up.header("List-Unsubscribe").unwrap(),
        SITE_ROOT,
        channel.code,
    );
    let (text, html) = parts(up);
    assert_in_order(
        &text,
        &[
            "The check \"nightly-backup\" has gone up.",
            "The downtime lasted 1 hour, 30 minutes.",
            "Total pings: 2 ",
            "Status changed to up at: ",
            "Last Ping Body:\n---------------\nsecond try: dump finished",
        ],
    );
    assert!(!text.contains("Reason:"), "{text}");
    assert!(!text.contains("dump finished: 1.2 GB"), "{text}");
    assert!(
        html.contains("The downtime lasted 1 hour, 30 minutes."),
        "{html}"
    );
    assert_eq!(
        notifications(&client).await,
        [
            (channel.id, "down".into(), String::new()),
            (channel.id, "up".into(), String::new()),
        ]
    );
}

#[tokio::test]
async fn email_shows_the_last_ping_at_the_flip_time() {
    let db = TestDb::new().await;
    let client = db.client().await;
    let sink = SmtpSink::start().await.unwrap();
    let project = insert_owned_project(&client).await.unwrap();
    let flip_at = whole_seconds(Utc::now()) - TimeDelta::minutes(10);
    let mut checks = Vec::new();
    for (name, pings) in [
        // A ping after the flip (here a late one, recorded while the alert waited) is not shown.
        (
            "after-the-flip",
            vec![
                (flip_at - TimeDelta::hours(1), Some("before the flip"), None),
                (
                    flip_at + TimeDelta::minutes(1),
                    Some("after the flip"),
                    None,
                ),
            ],
        ),
        // A ping at the very instant of the flip is the last ping (the fail ping that caused it).
        (
            "same-instant",
            vec![
                (flip_at - TimeDelta::hours(1), Some("an hour earlier"), None),
                (flip_at, Some("at the flip"), None),
            ],
        ),
        // A body offloaded to object storage (object_size set, body_raw NULL): this service has
        // no S3 client yet, so the message says it is being processed.
        (
            "in-object-storage",
            vec![(flip_at - TimeDelta::minutes(1), None, Some(5000))],
        ),
    ] {
        let check = insert_check(
            &client,
            CheckSpec {
                project_id: Some(project.id),
                name: name.into(),
                status: "down",
                last_ping: Some(flip_at),
                n_pings: i32::try_from(pings.len()).unwrap(),
                ..CheckSpec::default()
            },
        )
        .await
        .unwrap();
        for (n, (created, body, object_size)) in pings.into_iter().enumerate() {
            insert_ping(
                &client,
                PingSpec {
                    check_id: check.id,
                    n: i32::try_from(n + 1).unwrap(),
                    created,
                    kind: Some("fail"),
                    body: body.map(|text| text.as_bytes().to_vec()),
                    object_size,
                    ..PingSpec::default()
                },
            )
            .await
            .unwrap();
        }
        insert_flip(&client, check.id, flip_at, ("up", "down"), "fail", None)
            .await
            .unwrap();
        checks.push(check.id);
    }
    email_channel(&client, project.id, "ops@example.net", checks).await;

    run_once(&email_vars(&db, &sink)).await;
    let messages = sink.wait_for_messages(3).await.unwrap();
    assert_eq!(messages.len(), 3);

    let (text, html) = parts(with_subject(&messages, "DOWN | after-the-flip"));
    assert_in_order(
        &text,
        &[
            "Reason: received a failure signal.",
            "Total pings: 1 ",
            "Last ping type: Failure",
            "Last Ping Body:\n---------------\nbefore the flip",
        ],
    );
    assert!(!text.contains("after the flip"), "{text}");
    assert!(!html.contains("after the flip"), "{html}");

    let (text, _) = parts(with_subject(&messages, "DOWN | same-instant"));
    assert_in_order(
        &text,
        &[
            "Total pings: 2 ",
            "Last Ping Body:\n---------------\nat the flip",
        ],
    );
    assert!(!text.contains("an hour earlier"), "{text}");

    let (text, html) = parts(with_subject(&messages, "DOWN | in-object-storage"));
    assert_in_order(
        &text,
        &[
            "Total pings: 1 ",
            "Last Ping Body:\n---------------\nThe request body data is being processed",
        ],
    );
    assert!(
        html.contains("The request body data is being processed"),
        "{html}"
    );
}

#[tokio::test]
async fn email_pings_are_attached_and_the_owner_sees_the_projects_overview() {
    let db = TestDb::new().await;
    let client = db.client().await;
    let sink = SmtpSink::start().await.unwrap();
    let project = insert_owned_project(&client).await.unwrap();
    let owner_email: String = client
        .query_one(
            "SELECT email FROM auth_user WHERE id = $1",
            &[&project.owner_id],
        )
        .await
        .unwrap()
        .get(0);
    let flip_at = whole_seconds(Utc::now()) - TimeDelta::minutes(10);
    let mut checks = Vec::new();
    for (name, body, object_size) in [
        (
            "mailed",
            Some(&b"Subject: =?UTF-8?Q?Backup_=E2=9C=93?=\r\n\r\nall done\r\n"[..]),
            None,
        ),
        // Over 100 bytes with S3 configured: in object storage, not readable by this service.
        ("mailed-offloaded", None, Some(5000)),
    ] {
        let check = insert_check(
            &client,
            CheckSpec {
                project_id: Some(project.id),
                name: name.into(),
                status: "down",
                last_ping: Some(flip_at),
                n_pings: 1,
                ..CheckSpec::default()
            },
        )
        .await
        .unwrap();
        insert_ping(
            &client,
            PingSpec {
                check_id: check.id,
                created: flip_at - TimeDelta::minutes(1),
                kind: Some("fail"),
                scheme: "email",
                body: body.map(<[u8]>::to_vec),
                object_size,
                ..PingSpec::default()
            },
        )
        .await
        .unwrap();
        insert_flip(&client, check.id, flip_at, ("up", "down"), "fail", None)
            .await
            .unwrap();
        checks.push(check.id);
    }
    email_channel(&client, project.id, &owner_email, checks).await;

    run_once(&email_vars(&db, &sink)).await;
    let messages = sink.wait_for_messages(2).await.unwrap();
    assert_eq!(messages.len(), 2);

    let (text, html, eml) = parts_and_attachment(with_subject(&messages, "DOWN | mailed"));
    assert_in_order(
        &text,
        &[
            "Last ping type: Failure",
            "Last ping subject: Backup ✓",
            "Last Ping Body:\n---------------\nSee the attachment.",
            "Projects Overview:\n------------------\n* Project: 2 checks down\n",
        ],
    );
    assert!(html.contains("Projects Overview"), "{html}");
    assert!(String::from_utf8(eml).unwrap().contains("all done"));

    let (text, _) = parts(with_subject(&messages, "DOWN | mailed-offloaded"));
    assert_in_order(
        &text,
        &[
            "Last Ping Body:\n---------------\nThe request body data is being processed",
            "Projects Overview:\n------------------\n* Project: 2 checks down\n",
        ],
    );
    assert!(!text.contains("Last ping subject"), "{text}");
}

#[tokio::test]
async fn slack_permanent_errors_disable_the_channel_and_the_rest_is_delivered() {
    let db = TestDb::new().await;
    let client = db.client().await;
    let gone = Recorder::start().await;
    gone.respond_with(Reply::status(404));
    let revoked = Recorder::start().await;
    revoked.respond_with(Reply::status(400).with_body("invalid_token"));
    let refused = Recorder::start().await;
    refused.respond_with(Reply::status(400).with_body("invalid_payload"));
    let hook = Recorder::start().await;
    let project = insert_owned_project(&client).await.unwrap();
    let check = insert_check(&client, overdue(project.id)).await.unwrap();
    let slack_channel = |url: String| {
        let client = &client;
        let checks = vec![check.id];
        async move {
            insert_channel(
                client,
                ChannelSpec {
                    project_id: Some(project.id),
                    kind: "slack",
                    value: url,
                    checks,
                    ..ChannelSpec::default()
                },
            )
            .await
            .unwrap()
            .id
        }
    };
    let gone_id = slack_channel(gone.url("/services/T0/B0/gone")).await;
    // The value Slack's OAuth flow stores.
    let revoked_id = slack_channel(
        json!({
            "team_name": "Team",
            "incoming_webhook": {"url": revoked.url("/services/T1/B1/revoked"), "channel": "#ops"},
        })
        .to_string(),
    )
    .await;
    let refused_id = slack_channel(refused.url("/services/T2/B2/refused")).await;
    let hook_id = insert_channel(
        &client,
        ChannelSpec {
            project_id: Some(project.id),
            kind: "webhook",
            value: webhook(&hook, "/hook"),
            checks: vec![check.id],
            ..ChannelSpec::default()
        },
    )
    .await
    .unwrap()
    .id;
    let vars = sender_vars(&db, &[]);

    run_once(&vars).await;
    // Errors that are not transient are not retried.
    for recorder in [&gone, &revoked, &refused, &hook] {
        assert_eq!(recorder.requests().len(), 1);
    }
    let slack_request = &revoked.requests()[0];
    assert_eq!(slack_request.path, "/services/T1/B1/revoked");
    let payload: serde_json::Value = serde_json::from_slice(&slack_request.body).unwrap();
    assert_eq!(
        payload["attachments"][0]["title"],
        "\u{201c}backup\u{201d} is DOWN."
    );
    assert_eq!(hook.requests()[0].text(), format!("{} down", check.code));
    let mut rows = notifications(&client).await;
    rows.sort();
    let mut expected = vec![
        (
            gone_id,
            "down".to_owned(),
            "Received status code 404".to_owned(),
        ),
        (
            revoked_id,
            "down".to_owned(),
            "Received status code 400".to_owned(),
        ),
        (
            refused_id,
            "down".to_owned(),
            "Received status code 400".to_owned(),
        ),
        (hook_id, "down".to_owned(), String::new()),
    ];
    expected.sort();
    assert_eq!(rows, expected);
    let channel_state = |id: i32| {
        let client = &client;
        async move {
            let row = client
                .query_one(
                    "SELECT disabled, last_error FROM api_channel WHERE id = $1",
                    &[&id],
                )
                .await
                .unwrap();
            (row.get::<_, bool>(0), row.get::<_, String>(1))
        }
    };
    assert_eq!(
        channel_state(gone_id).await,
        (true, "Received status code 404".to_owned())
    );
    assert_eq!(
        channel_state(revoked_id).await,
        (true, "Received status code 400".to_owned())
    );
    // Any other 400 is recorded, but the channel stays enabled.
    assert_eq!(
        channel_state(refused_id).await,
        (false, "Received status code 400".to_owned())
    );
    assert_eq!(channel_state(hook_id).await, (false, String::new()));

    // The next alert skips the disabled channels and reaches the others.
    let second = insert_check(&client, overdue(project.id)).await.unwrap();
    for id in [gone_id, revoked_id, refused_id, hook_id] {
        assign_channel(&client, id, second.id).await.unwrap();
    }
    run_once(&vars).await;
    assert_eq!(gone.requests().len(), 1);
    assert_eq!(revoked.requests().len(), 1);
    assert_eq!(refused.requests().len(), 2);
    assert_eq!(hook.requests().len(), 2);
    assert_eq!(notifications(&client).await.len(), 6);
}
