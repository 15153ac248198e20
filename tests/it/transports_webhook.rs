//! The webhook transport and the HTTP client under it, against the harness's recorder: methods,
//! bodies, headers as raw bytes, placeholders, status codes, redirects, the private-address rule,
//! time limits and connection errors, each with the failure class the delivery step acts on.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use hc_sendalerts::alert::{Alert, Channel, Check, Flip, Ping, PingBody, Project};
use hc_sendalerts::transports::{Failure, Settings, Transports, is_noop};
use hc_tests::recorder::{Recorder, Reply};
use serde_json::json;

/// Transports built from `extra` variables on top of a site root; private addresses are allowed
/// unless `extra` says otherwise, because the recorder listens on loopback.
pub(crate) fn transports(extra: &[(&str, &str)]) -> Transports {
    let mut vars: HashMap<String, String> = HashMap::from(
        [
            ("SITE_ROOT", "http://hc.example"),
            ("INTEGRATIONS_ALLOW_PRIVATE_IPS", "True"),
            ("DB", "postgres"),
            ("DB_HOST", "127.0.0.1"),
            ("DB_PORT", "1"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    for (k, v) in extra {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    let settings = Settings::from_vars(&vars).unwrap();
    // The webhook transport never touches the database; the pool connects lazily, so it is
    // never opened here.
    let db = hc_core::config::DbConfig::from_vars(&vars).unwrap();
    let pool = hc_core::db::create_pool(&db, "hc-tests").unwrap();
    Transports::new(settings, pool).unwrap()
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

/// A down alert of check "Backup" (tags "foo bar", last ping with exit status 7 and a body) on
/// a webhook channel with `value`.
fn alert(value: serde_json::Value) -> Alert {
    alert_on("webhook", &value.to_string())
}

/// The same alert on a channel of `kind` with `value`.
pub(crate) fn alert_on(kind: &str, value: &str) -> Alert {
    Alert {
        notification: uuid::Uuid::new_v4(),
        flip: Flip {
            id: 1,
            created: at("2024-05-06T07:08:09.5Z"),
            old_status: "up".to_owned(),
            new_status: "down".to_owned(),
            reason: "timeout".to_owned(),
        },
        check: Check {
            code: uuid::Uuid::new_v4(),
            name: "Backup".to_owned(),
            slug: "backup".to_owned(),
            tags: "foo bar".to_owned(),
            kind: "simple".to_owned(),
            timeout: TimeDelta::days(1),
            grace: TimeDelta::hours(1),
            status: "down".to_owned(),
            n_pings: 7,
            ..Check::default()
        },
        project: Project::default(),
        channel: Channel {
            kind: kind.to_owned(),
            value: value.to_owned(),
            ..Channel::default()
        },
        last_ping: Some(Ping {
            n: Some(7),
            created: at("2024-05-06T06:00:00Z"),
            kind: Some("fail".to_owned()),
            scheme: "http".to_owned(),
            remote_addr: Some("192.0.2.1".to_owned()),
            method: "POST".to_owned(),
            ua: "curl".to_owned(),
            exitstatus: Some(7),
            body: PingBody::Inline(b"disk full".to_vec()),
        }),
        down_since: None,
        other_down: None,
    }
}

/// A webhook value whose down direction is `method url body headers` and whose up direction is
/// empty.
fn down_spec(method: &str, url: &str, body: &str, headers: serde_json::Value) -> serde_json::Value {
    json!({
        "method_down": method, "url_down": url, "body_down": body, "headers_down": headers,
        "method_up": "GET", "url_up": "", "body_up": "", "headers_up": {},
    })
}

fn get(url: &str) -> serde_json::Value {
    down_spec("GET", url, "", json!({}))
}

#[tokio::test]
async fn a_get_webhook_reaches_the_endpoint_with_placeholders_filled_in() {
    let recorder = Recorder::start().await;
    let a = alert(get(
        &recorder.url("/hook/$CODE/$STATUS?name=$NAME&tag=$TAG2&now=$NOW")
    ));
    transports(&[]).notify(&a).await.unwrap();

    let requests = recorder.wait_for(1).await.unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "GET");
    assert_eq!(
        requests[0].path,
        format!(
            "/hook/{}/down?name=Backup&tag=bar&now=2024-05-06T07%3A08%3A09%2B00%3A00",
            a.check.code
        )
    );
    assert_eq!(
        requests[0].header("user-agent").as_deref(),
        Some("healthchecks.io")
    );
    assert!(requests[0].body.is_empty());
}

#[tokio::test]
async fn a_post_webhook_sends_its_body_and_headers_as_bytes() {
    let recorder = Recorder::start().await;
    let a = alert(down_spec(
        "POST",
        &recorder.url("/post"),
        "$NAME is $STATUS, exit $EXITSTATUS: $BODY ($BODY_JSON) ä",
        json!({"Content-Type": "text/plain", "X-Foo": "bār", "X-Half": "½", "X-Msg": "$NAME is DOWN"}),
    ));
    transports(&[]).notify(&a).await.unwrap();

    let request = &recorder.wait_for(1).await.unwrap()[0];
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.text(),
        "Backup is down, exit 7: disk full (\"disk full\") ä"
    );
    assert_eq!(
        request.header("content-type").as_deref(),
        Some("text/plain")
    );
    assert_eq!(request.header_bytes("x-foo"), Some(&b"b&#257;r"[..]));
    assert_eq!(request.header_bytes("x-half"), Some(&[0xbd][..]));
    assert_eq!(request.header("x-msg").as_deref(), Some("Backup is DOWN"));
}

#[tokio::test]
async fn a_put_webhook_sends_its_body() {
    let recorder = Recorder::start().await;
    let a = alert(down_spec("PUT", &recorder.url("/put"), "$JSON", json!({})));
    transports(&[]).notify(&a).await.unwrap();

    let request = &recorder.wait_for(1).await.unwrap()[0];
    assert_eq!(request.method, "PUT");
    let doc: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(doc["name"], "Backup");
    assert_eq!(doc["status"], "down");
    assert_eq!(doc["timeout"], 86400);
    assert_eq!(
        doc["ping_url"],
        format!("http://hc.example/ping/{}", a.check.code)
    );
}

#[tokio::test]
async fn a_get_webhook_sends_no_body() {
    let recorder = Recorder::start().await;
    let a = alert(down_spec(
        "GET",
        &recorder.url("/get"),
        "ignored $NAME",
        json!({}),
    ));
    transports(&[]).notify(&a).await.unwrap();

    let request = &recorder.wait_for(1).await.unwrap()[0];
    assert_eq!(request.method, "GET");
    assert!(request.body.is_empty());
}

#[tokio::test]
async fn the_user_agent_can_be_overridden() {
    let recorder = Recorder::start().await;
    let a = alert(down_spec(
        "GET",
        &recorder.url("/ua"),
        "",
        json!({"User-Agent": "My-Agent"}),
    ));
    transports(&[]).notify(&a).await.unwrap();

    let request = &recorder.wait_for(1).await.unwrap()[0];
    assert_eq!(request.header_count("user-agent"), 1);
    assert_eq!(request.header("user-agent").as_deref(), Some("My-Agent"));
}

#[tokio::test]
async fn up_flips_use_the_up_url_and_an_empty_url_is_a_noop() {
    let recorder = Recorder::start().await;
    let value = json!({
        "method_down": "GET", "url_down": "", "body_down": "", "headers_down": {},
        "method_up": "POST", "url_up": recorder.url("/up"), "body_up": "$STATUS", "headers_up": {},
    });
    assert!(is_noop("webhook", &value.to_string(), "down"));
    assert!(!is_noop("webhook", &value.to_string(), "up"));

    let mut a = alert(value);
    a.flip.new_status = "up".to_owned();
    transports(&[]).notify(&a).await.unwrap();
    let request = &recorder.wait_for(1).await.unwrap()[0];
    assert_eq!(request.path, "/up");
    assert_eq!(request.text(), "up");
}

#[tokio::test]
async fn a_500_is_a_transient_failure() {
    let recorder = Recorder::start().await;
    recorder.respond_with(Reply::status(500).with_body("oops"));
    let err = transports(&[])
        .notify(&alert(get(&recorder.url("/500"))))
        .await
        .unwrap_err();
    assert_eq!(err.message, "Received status code 500");
    assert_eq!(err.failure, Failure::Transient);
}

#[tokio::test]
async fn a_404_is_a_final_failure() {
    let recorder = Recorder::start().await;
    recorder.respond_with(Reply::status(404));
    let err = transports(&[])
        .notify(&alert(get(&recorder.url("/404"))))
        .await
        .unwrap_err();
    assert_eq!(err.message, "Received status code 404");
    assert_eq!(err.failure, Failure::Final);
}

#[tokio::test]
async fn three_redirects_are_followed() {
    let recorder = Recorder::start().await;
    recorder.enqueue(Reply::redirect(301, "/one"));
    recorder.enqueue(Reply::redirect(302, &recorder.url("/two")));
    recorder.enqueue(Reply::redirect(307, "three?x=1"));
    let a = alert(down_spec(
        "POST",
        &recorder.url("/start"),
        "payload",
        json!({}),
    ));
    transports(&[]).notify(&a).await.unwrap();

    let requests = recorder.requests();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/start", "/one", "/two", "/three?x=1"]);
    // 301, 302 and 307 keep the method and body, like curl with a custom request method.
    assert!(
        requests
            .iter()
            .all(|r| r.method == "POST" && r.text() == "payload")
    );
}

#[tokio::test]
async fn a_303_redirect_turns_into_a_get() {
    let recorder = Recorder::start().await;
    recorder.enqueue(Reply::redirect(303, "/see-other"));
    let a = alert(down_spec(
        "POST",
        &recorder.url("/start"),
        "payload",
        json!({}),
    ));
    transports(&[]).notify(&a).await.unwrap();

    let requests = recorder.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].method, "GET");
    assert!(requests[1].body.is_empty());
}

#[tokio::test]
async fn a_fourth_redirect_is_refused() {
    let recorder = Recorder::start().await;
    recorder.respond_with(Reply::redirect(302, "/again"));
    let err = transports(&[])
        .notify(&alert(get(&recorder.url("/loop"))))
        .await
        .unwrap_err();
    assert_eq!(err.message, "Too many redirects");
    assert_eq!(err.failure, Failure::Final);
    assert_eq!(recorder.requests().len(), 4);
}

#[tokio::test]
async fn private_addresses_are_refused_unless_allowed() {
    let recorder = Recorder::start().await;
    let strict = transports(&[("INTEGRATIONS_ALLOW_PRIVATE_IPS", "False")]);
    let port = recorder.addr().port();
    for url in [
        recorder.url("/private"),
        format!("http://localhost:{port}/private"),
        format!("http://[::ffff:127.0.0.1]:{port}/private"),
    ] {
        let err = strict.notify(&alert(get(&url))).await.unwrap_err();
        assert_eq!(
            err.message, "Connections to private IP addresses are not allowed",
            "{url}"
        );
        assert_eq!(err.failure, Failure::Final);
    }
    assert!(recorder.requests().is_empty());

    transports(&[("INTEGRATIONS_ALLOW_PRIVATE_IPS", "True")])
        .notify(&alert(get(&recorder.url("/private"))))
        .await
        .unwrap();
    assert_eq!(recorder.wait_for(1).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_slow_endpoint_times_out() {
    let recorder = Recorder::start().await;
    recorder.respond_with(Reply::status(200).with_delay(Duration::from_secs(300)));
    let err = transports(&[("SENDALERTS_HTTP_TIMEOUT", "1")])
        .notify(&alert(get(&recorder.url("/slow"))))
        .await
        .unwrap_err();
    assert_eq!(err.message, "Connection timed out");
    assert_eq!(err.failure, Failure::Transient);
    assert_eq!(recorder.requests().len(), 1);
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let err = transports(&[])
        .notify(&alert(get(&format!("http://127.0.0.1:{port}/"))))
        .await
        .unwrap_err();
    assert_eq!(err.message, "Connection failed");
    assert_eq!(err.failure, Failure::Transient);
}

#[tokio::test]
async fn an_unknown_host_is_transient() {
    let err = transports(&[])
        .notify(&alert(get("http://no-such-host.invalid/")))
        .await
        .unwrap_err();
    assert_eq!(err.message, "Could not resolve host");
    assert_eq!(err.failure, Failure::Transient);
}

#[tokio::test]
async fn https_to_a_plain_http_server_fails_the_handshake() {
    let recorder = Recorder::start().await;
    let url = format!("https://{}/tls", recorder.addr());
    let err = transports(&[]).notify(&alert(get(&url))).await.unwrap_err();
    assert_eq!(err.message, "TLS handshake failed");
}

#[tokio::test]
async fn other_schemes_are_refused() {
    let err = transports(&[])
        .notify(&alert(get("ftp://example.org/file")))
        .await
        .unwrap_err();
    assert_eq!(err.failure, Failure::Final);
}

#[tokio::test]
async fn disabled_webhooks_send_nothing() {
    let recorder = Recorder::start().await;
    let err = transports(&[("WEBHOOKS_ENABLED", "False")])
        .notify(&alert(get(&recorder.url("/disabled"))))
        .await
        .unwrap_err();
    assert_eq!(err.message, "Webhook notifications are not enabled.");
    assert_eq!(err.failure, Failure::Final);
    assert!(recorder.requests().is_empty());
}
