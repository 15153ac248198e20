//! The Slack-family transports (Slack, Mattermost, Rocket.Chat, Discord) against the harness's
//! recorder: where they POST, the JSON they send, and which answers disable the channel.

use hc_sendalerts::transports::{Failure, TransportError, is_noop};
use hc_tests::recorder::{RecordedRequest, Recorder, Reply};
use serde_json::{Value, json};

use crate::transports_webhook::{alert_on, transports};

/// Sends a down alert of check "Backup" on a `kind` channel with `value`.
async fn notify(kind: &str, value: &str, extra: &[(&str, &str)]) -> Result<(), TransportError> {
    transports(extra).notify(&alert_on(kind, value)).await
}

/// The one request the recorder got, with its JSON body.
async fn only_request(recorder: &Recorder) -> (RecordedRequest, Value) {
    let requests = recorder.wait_for(1).await.unwrap();
    assert_eq!(requests.len(), 1);
    let request = requests[0].clone();
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        request.header("user-agent").as_deref(),
        Some("healthchecks.io")
    );
    let body = serde_json::from_slice(&request.body).unwrap();
    (request, body)
}

fn field<'a>(payload: &'a Value, title: &str) -> Option<&'a str> {
    payload["attachments"][0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["title"] == title)
        .and_then(|f| f["value"].as_str())
}

#[tokio::test]
async fn slack_posts_the_attachment_to_the_webhook_url() {
    let recorder = Recorder::start().await;
    notify("slack", &recorder.url("/services/T/B/x"), &[])
        .await
        .unwrap();

    let (request, payload) = only_request(&recorder).await;
    assert_eq!(request.path, "/services/T/B/x");
    let attachment = &payload["attachments"][0];
    assert_eq!(attachment["title"], "\u{201c}Backup\u{201d} is DOWN.");
    assert_eq!(attachment["fallback"], "The check \"Backup\" is DOWN.");
    assert_eq!(
        attachment["text"],
        "Reason: success signal did not arrive on time, grace time passed."
    );
    assert_eq!(field(&payload, "Period"), Some("1 day"));
    assert_eq!(field(&payload, "Tags"), Some("`foo` `bar`"));
    assert_eq!(field(&payload, "Total Pings"), Some("7"));
    assert_eq!(
        field(&payload, "Last Ping Body"),
        Some("```\ndisk full\n```")
    );
    assert!(
        field(&payload, "Last Ping")
            .unwrap()
            .starts_with("Exit status 7, ")
    );
    assert_eq!(payload["icon_url"], "http://hc.example/static/img/logo.png");
}

#[tokio::test]
async fn slack_oauth_values_post_to_their_incoming_webhook() {
    let recorder = Recorder::start().await;
    let value = json!({
        "team_name": "Team",
        "incoming_webhook": {"url": recorder.url("/oauth-hook"), "channel": "#alerts"},
    });
    notify("slack", &value.to_string(), &[]).await.unwrap();
    let (request, _) = only_request(&recorder).await;
    assert_eq!(request.path, "/oauth-hook");
}

#[tokio::test]
async fn slack_404_and_invalid_token_disable_the_channel() {
    let recorder = Recorder::start().await;
    recorder.enqueue(Reply::status(404));
    recorder.enqueue(Reply::status(400).with_body("invalid_token"));
    recorder.enqueue(Reply::status(400).with_body("surprise"));
    recorder.enqueue(Reply::status(500));
    let url = recorder.url("/hook");

    let err = notify("slack", &url, &[]).await.unwrap_err();
    assert_eq!(
        (err.message.as_str(), err.failure),
        ("Received status code 404", Failure::Permanent)
    );
    let err = notify("slack", &url, &[]).await.unwrap_err();
    assert_eq!(
        (err.message.as_str(), err.failure),
        ("Received status code 400", Failure::Permanent)
    );
    let err = notify("slack", &url, &[]).await.unwrap_err();
    assert_eq!(
        (err.message.as_str(), err.failure),
        ("Received status code 400", Failure::Final)
    );
    let err = notify("slack", &url, &[]).await.unwrap_err();
    assert_eq!(
        (err.message.as_str(), err.failure),
        ("Received status code 500", Failure::Transient)
    );
}

#[tokio::test]
async fn disabled_integrations_send_nothing() {
    let recorder = Recorder::start().await;
    let url = recorder.url("/hook");
    for (kind, variable, message) in [
        (
            "slack",
            "SLACK_ENABLED",
            "Slack notifications are not enabled.",
        ),
        (
            "mattermost",
            "MATTERMOST_ENABLED",
            "Mattermost notifications are not enabled.",
        ),
        (
            "rocketchat",
            "ROCKETCHAT_ENABLED",
            "Rocket.Chat notifications are not enabled.",
        ),
    ] {
        let err = notify(kind, &url, &[(variable, "False")])
            .await
            .unwrap_err();
        assert_eq!(
            (err.message.as_str(), err.failure),
            (message, Failure::Final)
        );
    }
    assert!(recorder.requests().is_empty());
}

#[tokio::test]
async fn mattermost_posts_the_slack_payload() {
    let recorder = Recorder::start().await;
    notify("mattermost", &recorder.url("/hooks/mm"), &[])
        .await
        .unwrap();
    let (request, payload) = only_request(&recorder).await;
    assert_eq!(request.path, "/hooks/mm");
    assert_eq!(payload["attachments"][0]["color"], "danger");
    assert_eq!(payload["username"], "Mychecks");

    recorder.respond_with(Reply::status(404));
    let err = notify("mattermost", &recorder.url("/hooks/mm"), &[])
        .await
        .unwrap_err();
    assert_eq!(err.failure, Failure::Final);
}

#[tokio::test]
async fn rocketchat_links_the_check_and_the_body() {
    let recorder = Recorder::start().await;
    notify("rocketchat", &recorder.url("/hooks/rc"), &[])
        .await
        .unwrap();
    let (request, payload) = only_request(&recorder).await;
    assert_eq!(request.path, "/hooks/rc");
    let text = payload["text"].as_str().unwrap();
    assert!(
        text.starts_with("[Backup](http://hc.example/cloaked/"),
        "{text}"
    );
    assert!(
        text.ends_with(") is DOWN (success signal did not arrive on time, grace time passed)."),
        "{text}"
    );
    assert_eq!(payload["attachments"][0]["color"], "#d9534f");
    assert!(
        field(&payload, "Last Ping Body")
            .unwrap()
            .starts_with("9 bytes, [show body](")
    );
}

#[tokio::test]
async fn discord_posts_to_the_slack_endpoint_and_404_disables() {
    let recorder = Recorder::start().await;
    let value = json!({"webhook": {"url": recorder.url("/api/webhooks/1/token")}}).to_string();
    notify("discord", &value, &[]).await.unwrap();
    let (request, payload) = only_request(&recorder).await;
    assert_eq!(request.path, "/api/webhooks/1/token/slack");
    assert_eq!(
        payload["attachments"][0]["title"],
        "\u{201c}Backup\u{201d} is DOWN."
    );

    recorder.respond_with(Reply::status(404));
    let err = notify("discord", &value, &[]).await.unwrap_err();
    assert_eq!(
        (err.message.as_str(), err.failure),
        ("Received status code 404", Failure::Permanent)
    );
}

#[test]
fn chat_channels_are_never_noops() {
    for kind in ["slack", "mattermost", "rocketchat", "discord"] {
        assert!(!is_noop(kind, "https://chat.example/hook", "up"));
        assert!(!is_noop(kind, "https://chat.example/hook", "down"));
    }
}
