//! The chat and push transports against the recorder: the requests they make (method, path,
//! headers, payload), which answers disable a channel, the `api_tokenbucket` rate limits, no-op
//! priorities and Telegram's chat migration.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use hc_sendalerts::alert::{Alert, Channel, Check, Flip, Ping, PingBody, Project};
use hc_sendalerts::transports::{Failure, Settings, TransportError, Transports, is_noop};
use hc_tests::factories::{ChannelSpec, insert_channel};
use hc_tests::postgres::TestDb;
use hc_tests::recorder::{Recorder, Reply};
use serde_json::{Value, json};
use uuid::Uuid;

/// Transports whose API base URLs all point at the recorder.
async fn transports(db: &TestDb, recorder: &Recorder, extra: &[(&str, &str)]) -> Transports {
    let base = recorder.url("");
    let mut vars: HashMap<String, String> = [
        ("SITE_ROOT", "https://hc.example.org"),
        ("SITE_NAME", "Mychecks"),
        ("SECRET_KEY", "test-secret"),
        ("INTEGRATIONS_ALLOW_PRIVATE_IPS", "True"),
        ("TELEGRAM_TOKEN", "bot-token"),
        ("SENDALERTS_TELEGRAM_API_URL", base.as_str()),
        ("PUSHOVER_API_TOKEN", "po-token"),
        ("SENDALERTS_PUSHOVER_API_URL", base.as_str()),
        ("MATRIX_HOMESERVER", base.as_str()),
        ("MATRIX_ACCESS_TOKEN", "mx-token"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in extra {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    let settings = Settings::from_vars(&vars).unwrap();
    let pool = hc_core::db::create_pool(&db.config, "hc-sendalerts").unwrap();
    Transports::new(settings, pool).unwrap()
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

/// A down alert of check "Foo" (timeout reason) on a channel of `kind` with `value`.
fn alert(kind: &str, value: &str) -> Alert {
    Alert {
        notification: Uuid::new_v4(),
        flip: Flip {
            id: 1,
            created: now(),
            old_status: "up".into(),
            new_status: "down".into(),
            reason: "timeout".into(),
        },
        check: Check {
            id: 1,
            code: Uuid::new_v4(),
            name: "Foo".into(),
            tags: "foo bar".into(),
            kind: "simple".into(),
            timeout: TimeDelta::days(1),
            grace: TimeDelta::hours(1),
            tz: "UTC".into(),
            status: "down".into(),
            created: now(),
            ..Check::default()
        },
        project: Project {
            name: "Alices Project".into(),
            ..Project::default()
        },
        channel: Channel {
            id: 0,
            code: Uuid::new_v4(),
            kind: kind.into(),
            value: value.into(),
            ..Channel::default()
        },
        last_ping: Some(Ping {
            n: Some(112233),
            created: now() - TimeDelta::minutes(10),
            kind: None,
            scheme: "http".into(),
            remote_addr: Some("1.2.3.4".into()),
            method: "GET".into(),
            ua: String::new(),
            exitstatus: None,
            body: PingBody::Inline(b"Hello World".to_vec()),
        }),
        down_since: None,
        other_down: Some(Vec::new()),
    }
}

fn up(mut alert: Alert) -> Alert {
    alert.flip.old_status = "down".into();
    alert.flip.new_status = "up".into();
    alert.flip.reason = String::new();
    alert.down_since = Some(alert.flip.created - TimeDelta::minutes(90));
    alert
}

fn json_body(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap()
}

fn form_body(body: &[u8]) -> HashMap<String, String> {
    let text = String::from_utf8(body.to_vec()).unwrap();
    text.split('&')
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap();
            (k.to_owned(), percent_decode(v))
        })
        .collect()
}

fn percent_decode(v: &str) -> String {
    let v = v.replace('+', " ");
    let bytes = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&v[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

async fn bucket_tokens(db: &TestDb, key: &str) -> Option<f64> {
    db.client()
        .await
        .query_opt(
            "SELECT tokens FROM api_tokenbucket WHERE value = $1",
            &[&key],
        )
        .await
        .unwrap()
        .map(|row| row.get(0))
}

fn ntfy_value(recorder: &Recorder, token: Option<&str>) -> String {
    json!({
        "topic": "foo",
        "url": recorder.url(""),
        "priority": 5,
        "priority_up": 0,
        "token": token,
    })
    .to_string()
}

#[tokio::test]
async fn ntfy_publishes_markdown_json_with_the_channel_token() {
    let db = TestDb::new().await;
    let recorder = Recorder::start().await;
    let transports = transports(&db, &recorder, &[]).await;
    let a = alert("ntfy", &ntfy_value(&recorder, Some("tk_test")));

    transports.notify(&a).await.unwrap();

    let requests = recorder.wait_for(1).await.unwrap();
    let r = &requests[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/");
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(r.header("authorization").as_deref(), Some("Bearer tk_test"));
    let p = json_body(&r.body);
    assert_eq!(p["topic"], "foo");
    assert_eq!(p["priority"], 5);
    // Healthchecks' title is the status only; the reason is in the message.
    assert_eq!(p["title"], "Foo is DOWN");
    assert_eq!(p["markdown"], true);
    assert_eq!(p["tags"], json!(["red_circle"]));
    assert_eq!(p["actions"][0]["action"], "view");
    assert_eq!(
        p["actions"][0]["url"],
        format!("https://hc.example.org/cloaked/{}/", a.check.unique_key())
    );
    let message = p["message"].as_str().unwrap();
    assert!(
        message.contains("Reason: success signal did not arrive on time, grace time passed."),
        "{message}"
    );
    assert!(message.contains("**Project:** Alices Project"), "{message}");
    assert!(
        message.contains("**Last Ping:** Success, 10 minutes ago"),
        "{message}"
    );
    assert!(
        message.contains("All the other checks are up."),
        "{message}"
    );
}

#[tokio::test]
async fn ntfy_priority_zero_is_a_noop() {
    let recorder = Recorder::start().await;
    let value = ntfy_value(&recorder, None);
    assert!(!is_noop("ntfy", &value, "down"));
    assert!(is_noop("ntfy", &value, "up"));
}

#[tokio::test]
async fn ntfy_refuses_the_seventh_message_within_a_minute() {
    let db = TestDb::new().await;
    let recorder = Recorder::start().await;
    let transports = transports(&db, &recorder, &[]).await;
    let a = alert("ntfy", &ntfy_value(&recorder, None));

    for _ in 0..6 {
        transports.notify(&a).await.unwrap();
    }
    let err = transports.notify(&a).await.unwrap_err();
    assert_eq!(err, TransportError::fail("Rate limit exceeded"));
    assert_eq!(recorder.requests().len(), 6);

    // The bucket is Healthchecks' row: sha1("<url>-<topic>-<SECRET_KEY>"), nearly empty.
    let key =
        hc_sendalerts::transports::tokenbucket::ntfy_key(&recorder.url(""), "foo", "test-secret");
    let tokens = bucket_tokens(&db, &key).await.expect("a bucket row");
    assert!(tokens < 1.0 / 6.0, "{tokens}");
}

#[tokio::test]
async fn concurrent_sends_never_overspend_a_bucket() {
    let db = TestDb::new().await;
    let pool = hc_core::db::create_pool(&db.config, "hc-sendalerts").unwrap();
    let attempts = (0..20).map(|_| {
        let pool = pool.clone();
        tokio::spawn(async move {
            hc_sendalerts::transports::tokenbucket::authorize(&pool, "tg-42", 6, 60.0)
                .await
                .unwrap()
        })
    });
    let mut granted = 0;
    for attempt in attempts.collect::<Vec<_>>() {
        if attempt.await.unwrap() {
            granted += 1;
        }
    }
    assert_eq!(granted, 6);
}

#[tokio::test]
async fn gotify_posts_to_message_with_the_token() {
    let db = TestDb::new().await;
    let recorder = Recorder::start().await;
    let transports = transports(&db, &recorder, &[]).await;
    let value =
        json!({"url": recorder.url("/sub"), "token": "abc", "priority": 9, "priority_up": 2})
            .to_string();

    transports.notify(&alert("gotify", &value)).await.unwrap();

    let r = &recorder.wait_for(1).await.unwrap()[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/sub/message?token=abc");
    let p = json_body(&r.body);
    assert_eq!(p["title"], "Foo is DOWN");
    assert_eq!(p["priority"], 9);
    assert_eq!(
        p["extras"]["client::display"]["contentType"],
        "text/markdown"
    );
}

#[tokio::test]
async fn msteamsw_posts_an_adaptive_card_unless_disabled() {
    let db = TestDb::new().await;
    let recorder = Recorder::start().await;
    let transports_on = transports(&db, &recorder, &[]).await;
    let a = alert("msteamsw", &recorder.url("/workflow"));

    transports_on.notify(&a).await.unwrap();

    let r = &recorder.wait_for(1).await.unwrap()[0];
    assert_eq!(r.path, "/workflow");
    let p = json_body(&r.body);
    let card = &p["attachments"][0]["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["version"], "1.2");
    assert_eq!(card["body"][1]["type"], "FactSet");
    assert_eq!(card["body"][3]["codeSnippet"], "Hello World");

    let transports_off = transports(&db, &recorder, &[("MSTEAMS_ENABLED", "False")]).await;
    assert_eq!(
        transports_off.notify(&a).await.unwrap_err(),
        TransportError::fail("MS Teams notifications are not enabled.")
    );
    assert_eq!(recorder.requests().len(), 1);
}

#[tokio::test]
async fn googlechat_posts_a_cards_v2_message() {
    let db = TestDb::new().await;
    let recorder = Recorder::start().await;
    let transports = transports(&db, &recorder, &[]).await;

    transports
        .notify(&up(alert(
            "googlechat",
            &recorder.url("/v1/spaces/x/messages?key=k"),
        )))
        .await
        .unwrap();

    let r = &recorder.wait_for(1).await.unwrap()[0];
    assert_eq!(r.path, "/v1/spaces/x/messages?key=k");
    let p = json_body(&r.body);
    // An object, not a list, as Healthchecks sends it.
    let widgets = &p["cardsV2"][0]["card"]["sections"]["widgets"];
    assert_eq!(
        widgets[0]["textParagraph"]["text"],
        "🟢 The check <b>Foo</b> is now <b>UP</b>.\nThe downtime lasted 1 hour, 30 minutes."
    );
    // The labelled facts, as Healthchecks' card has them.
    let facts: HashMap<String, String> = widgets
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w.get("decoratedText"))
        .map(|d| {
            (
                d["topLabel"].as_str().unwrap().to_owned(),
                d["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(facts["Total Pings"], "112233");
    assert_eq!(facts["Last Ping"], "Success, 10 minutes ago");
}

#[tokio::test]
async fn a_server_error_is_transient() {
    let db = TestDb::new().await;
    let recorder = Recorder::start().await;
    recorder.respond_with(Reply::status(502));
    let transports = transports(&db, &recorder, &[]).await;

    let err = transports
        .notify(&alert("googlechat", &recorder.url("/x")))
        .await
        .unwrap_err();
    assert_eq!(err, TransportError::transient("Received status code 502"));
}

#[tokio::test]
async fn pushover_sends_a_form_with_emergency_settings() {
    let db = TestDb::new().await;
    let recorder = Recorder::start().await;
    let transports = transports(&db, &recorder, &[]).await;
    let a = alert("po", "123|2|0");

    transports.notify(&a).await.unwrap();

    let r = &recorder.wait_for(1).await.unwrap()[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/1/messages.json");
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    let f = form_body(&r.body);
    assert_eq!(f["token"], "po-token");
    assert_eq!(f["user"], "123");
    assert_eq!(f["title"], "🔴 Foo is DOWN");
    assert_eq!(f["priority"], "2");
    assert_eq!(f["retry"], "300");
    assert_eq!(f["expire"], "86400");
    assert_eq!(f["tags"], a.check.unique_key());
    assert!(f["message"].contains("112233"));
    assert!(
        f["message"].contains("Reason: success signal did not arrive on time, grace time passed."),
        "{}",
        f["message"]
    );
}

#[tokio::test]
async fn pushover_up_after_an_emergency_cancels_it_first() {
    let db = TestDb::new().await;
    let recorder = Recorder::start().await;
    let transports = transports(&db, &recorder, &[]).await;
    let a = up(alert("po", "123|2|0"));

    transports.notify(&a).await.unwrap();

    let requests = recorder.wait_for(2).await.unwrap();
    assert_eq!(
        requests[0].path,
        format!("/1/receipts/cancel_by_tag/{}.json", a.check.unique_key())
    );
    assert_eq!(form_body(&requests[0].body)["token"], "po-token");
    assert_eq!(requests[1].path, "/1/messages.json");
    let f = form_body(&requests[1].body);
    assert_eq!(f["title"], "🟢 Foo is UP");
    assert!(
        f["message"].contains("The downtime lasted 1 hour, 30 minutes."),
        "{}",
        f["message"]
    );
    assert_eq!(f["priority"], "0");
}

#[tokio::test]
async fn pushover_invalid_user_is_permanent_and_other_400s_are_not() {
    let db = TestDb::new().await;
    let recorder = Recorder::start().await;
    let transports = transports(&db, &recorder, &[]).await;

    recorder.enqueue(Reply::status(400).with_body(r#"{"user": "invalid", "status": 0}"#));
    let err = transports.notify(&alert("po", "123|0")).await.unwrap_err();
    assert_eq!(
        err,
        TransportError::permanent("Received status code 400 (invalid user)")
    );

    recorder.enqueue(Reply::status(400).with_body("{}"));
    let err = transports.notify(&alert("po", "123|0")).await.unwrap_err();
    assert_eq!(err, TransportError::fail("Received status code 400"));
}

#[tokio::test]
async fn pushover_disabled_priority_is_a_noop_and_a_drained_bucket_refuses() {
    assert!(is_noop("po", "123|-3", "down"));
    assert!(is_noop("po", "123|0|-3", "up"));
    assert!(!is_noop("po", "123|0|-3", "down"));

    let db = TestDb::new().await;
    let recorder = Recorder::start().await;
    let transports = transports(&db, &recorder, &[]).await;
    // Healthchecks' own test row: sha1("123" + "test-secret"), empty.
    db.client()
        .await
        .execute(
            "INSERT INTO api_tokenbucket (value, tokens, updated) \
             VALUES ('po-c0ca2a9774952af32cabf86453f69e442c4ed0eb', 0, now())",
            &[],
        )
        .await
        .unwrap();
    let err = transports.notify(&alert("po", "123|0")).await.unwrap_err();
    assert_eq!(err.message, "Rate limit exceeded");
    assert_eq!(err.failure, Failure::Final);
    assert!(recorder.requests().is_empty());
}

#[tokio::test]
async fn telegram_sends_html_to_the_chat_and_thread() {
    let db = TestDb::new().await;
    let recorder = Recorder::start().await;
    let transports = transports(&db, &recorder, &[]).await;
    let a = alert(
        "telegram",
        r#"{"id": 123, "type": "group", "name": "Ops", "thread_id": 456}"#,
    );

    transports.notify(&a).await.unwrap();

    let r = &recorder.wait_for(1).await.unwrap()[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/botbot-token/sendMessage");
    let p = json_body(&r.body);
    assert_eq!(p["chat_id"], 123);
    assert_eq!(p["message_thread_id"], 456);
    assert_eq!(p["parse_mode"], "html");
    let text = p["text"].as_str().unwrap();
    assert!(text.contains(">Foo</a> is <b>DOWN</b>"), "{text}");
    assert!(
        text.contains("<b>Last Ping Body:</b>\n<pre>Hello World</pre>"),
        "{text}"
    );
}

#[tokio::test]
async fn telegram_follows_a_chat_migration_and_saves_the_new_id() {
    let db = TestDb::new().await;
    let recorder = Recorder::start().await;
    let transports = transports(&db, &recorder, &[]).await;
    let value = r#"{"id": 123, "type": "group", "name": "Ops"}"#;
    let client = db.client().await;
    let channel = insert_channel(
        &client,
        ChannelSpec {
            kind: "telegram",
            value: value.to_owned(),
            ..ChannelSpec::default()
        },
    )
    .await
    .unwrap();
    let mut a = alert("telegram", value);
    a.channel.id = channel.id;
    recorder.enqueue(Reply::status(400).with_body(
        r#"{"ok": false, "error_code": 400, "description": "Bad Request: group chat was upgraded to a supergroup chat", "parameters": {"migrate_to_chat_id": -234}}"#,
    ));

    transports.notify(&a).await.unwrap();

    let requests = recorder.wait_for(2).await.unwrap();
    assert_eq!(json_body(&requests[0].body)["chat_id"], 123);
    assert_eq!(json_body(&requests[1].body)["chat_id"], -234);
    let saved: String = db
        .client()
        .await
        .query_one(
            "SELECT value FROM api_channel WHERE id = $1",
            &[&channel.id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        serde_json::from_str::<Value>(&saved).unwrap(),
        json!({"id": -234, "type": "group", "name": "Ops"})
    );
}

#[tokio::test]
async fn telegram_blocked_bot_and_unknown_chat_are_permanent() {
    let db = TestDb::new().await;
    let recorder = Recorder::start().await;
    let transports = transports(&db, &recorder, &[]).await;

    for (status, description) in [
        (403, "Forbidden: bot was blocked by the user"),
        (400, "Bad Request: chat not found"),
    ] {
        recorder.enqueue(
            Reply::status(status)
                .with_body(json!({"ok": false, "description": description}).to_string()),
        );
        let err = transports
            .notify(&alert("telegram", r#"{"id": 123}"#))
            .await
            .unwrap_err();
        assert_eq!(err.failure, Failure::Permanent, "{description}");
        assert_eq!(
            err.message,
            format!("Received status code {status} with a message: \"{description}\"")
        );
    }

    recorder.enqueue(Reply::status(400).with_body(r#"{"description": "Hi"}"#));
    let err = transports
        .notify(&alert("telegram", r#"{"id": 123}"#))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        TransportError::fail("Received status code 400 with a message: \"Hi\"")
    );
}

#[tokio::test]
async fn telegram_refuses_the_seventh_message_to_a_chat() {
    let db = TestDb::new().await;
    let recorder = Recorder::start().await;
    let transports = transports(&db, &recorder, &[]).await;
    let a = alert("telegram", r#"{"id": 777}"#);

    for _ in 0..6 {
        transports.notify(&a).await.unwrap();
    }
    assert_eq!(
        transports.notify(&a).await.unwrap_err(),
        TransportError::fail("Rate limit exceeded")
    );
    assert_eq!(recorder.requests().len(), 6);
    assert!(bucket_tokens(&db, "tg-777").await.is_some());
    // Another chat has its own bucket.
    transports
        .notify(&alert("telegram", r#"{"id": 778}"#))
        .await
        .unwrap();
}

#[tokio::test]
async fn matrix_puts_the_message_with_the_notification_as_transaction_id() {
    let db = TestDb::new().await;
    let recorder = Recorder::start().await;
    let transports = transports(&db, &recorder, &[]).await;
    let a = alert("matrix", "!abc:example.org");

    transports.notify(&a).await.unwrap();
    // A retried delivery of the same notification reuses the transaction id.
    transports.notify(&a).await.unwrap();

    let requests = recorder.wait_for(2).await.unwrap();
    let expected = format!(
        "/_matrix/client/v3/rooms/%21abc%3Aexample.org/send/m.room.message/{}",
        a.notification.simple()
    );
    for r in &requests {
        assert_eq!(r.method, "PUT");
        assert_eq!(r.path, expected);
        assert_eq!(
            r.header("authorization").as_deref(),
            Some("Bearer mx-token")
        );
    }
    let p = json_body(&requests[0].body);
    assert_eq!(p["msgtype"], "m.text");
    assert_eq!(
        p["body"],
        "Foo is DOWN (success signal did not arrive on time, grace time passed)."
    );
    assert_eq!(p["format"], "org.matrix.custom.html");
    assert!(
        p["formatted_body"]
            .as_str()
            .unwrap()
            .contains("<b>DOWN</b>")
    );
}

#[tokio::test]
async fn matrix_up_tells_the_downtime_in_both_bodies() {
    let db = TestDb::new().await;
    let recorder = Recorder::start().await;
    let transports = transports(&db, &recorder, &[]).await;

    transports
        .notify(&up(alert("matrix", "!abc:example.org")))
        .await
        .unwrap();

    let r = &recorder.wait_for(1).await.unwrap()[0];
    let p = json_body(&r.body);
    assert_eq!(
        p["body"],
        "Foo is now UP. The downtime lasted 1 hour, 30 minutes."
    );
    let html = p["formatted_body"].as_str().unwrap();
    assert!(
        html.contains("is <b>UP</b>.\n<br>The downtime lasted 1 hour, 30 minutes."),
        "{html}"
    );
}
