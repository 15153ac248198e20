//! The ping API through real HTTP against a real PostgreSQL, as a conformance checklist of
//! `healthchecks-behaviour.md` §1.1–§1.5, §1.8 and §1.9 (Healthchecks' `test_ping.py` and
//! `test_ping_by_slug.py`), plus this project's deliberate differences (413 over the hard cap,
//! trusted proxies, lossy keyword matching, `PING_BODY_LIMIT` 100,000).
//!
//! Every test body is an `async fn(&TestDb)` run twice: on the project schema and on
//! Healthchecks' own schema dump.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use hc_tests::factories::{
    ChannelSpec, Check, CheckSpec, Project, insert_channel, insert_check, insert_owned_project,
    insert_project,
};
use hc_tests::http::{Reply, request};
use hc_tests::ping::PingServer;
use hc_tests::postgres::TestDb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_postgres::Client;
use uuid::Uuid;

/// Generates one `#[tokio::test]` per schema for each test body named.
macro_rules! on_both_schemas {
    ($($name:ident),* $(,)?) => {
        mod project_schema {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = hc_tests::postgres::TestDb::new().await;
                    super::$name(&db).await;
                }
            )*
        }
        mod reference_dump {
            $(
                #[tokio::test]
                async fn $name() {
                    let dump = crate::schema::healthchecks_dump();
                    let db = hc_tests::postgres::TestDb::from_sql_file(&dump).await;
                    super::$name(&db).await;
                }
            )*
        }
    };
}

on_both_schemas!(
    // §1.2: responses and headers.
    success_has_healthchecks_headers,
    every_action_answers_ok,
    unknown_uuid_is_404_with_never_cache_only,
    unrouted_urls_get_the_html_404_page,
    any_method_is_recorded,
    pings_on_one_kept_alive_connection,
    methods_are_uppercased_like_django,
    body_limit_defaults_to_100000,
    body_limit_is_configurable,
    unlimited_body_has_no_limit_header,
    body_over_the_hard_cap_is_413,
    body_over_the_default_hard_cap_is_413,
    chunked_body_over_the_hard_cap_is_413,
    hard_cap_is_at_least_the_body_limit,
    forwarded_headers_from_a_trusted_proxy,
    forwarded_headers_from_an_untrusted_peer_are_ignored,
    non_ip_forwarded_for_is_ignored,
    // §1.3: order of processing and input rules.
    unknown_uuid_wins_over_bad_exit_status_and_rid,
    exit_status_over_255_is_rejected_before_rid,
    exit_statuses_and_leading_zeros,
    invalid_rids_are_rejected,
    uppercase_and_dashless_uuids_are_not_found,
    user_agent_is_kept_up_to_200_chars,
    bodies_are_stored_as_bytes,
    site_root_path_prefixes_routes,
    // §1.4: what a ping writes.
    success_ping_writes_check_ping_and_flip,
    cron_check_alert_after_follows_the_schedule,
    concurrent_pings_are_numbered_in_order,
    concurrent_uuid_and_slug_pings_share_one_counter,
    fail_ping_goes_down,
    flips_only_on_status_change,
    start_ping_sets_last_start_only,
    start_does_not_change_a_paused_check,
    start_on_a_down_check_has_no_alert_after,
    log_ping_changes_nothing_but_counts,
    every_ping_recomputes_alert_after,
    paused_check_goes_up_on_success,
    manual_resume_keeps_a_paused_check_paused,
    n_continues_from_n_pings,
    confirmation_flag_is_overwritten_by_every_ping,
    // §1.5: run ids and durations.
    start_sets_last_start_rid_and_accepts_uppercase,
    success_after_start_sets_last_duration,
    success_with_other_rid_keeps_last_start,
    matching_rid_sets_duration_and_keeps_rid,
    success_without_rid_clears_last_start,
    fail_with_other_rid_clears_last_start,
    fail_with_matching_rid_sets_duration,
    success_without_start_clears_last_duration,
    // §1.8: filters.
    keyword_filters_pick_the_action,
    keyword_filters_replace_url_actions,
    keyword_miss_is_ignored_or_fails,
    keyword_filters_match_invalid_utf8_lossily,
    post_only_checks_ignore_other_methods,
    methods_and_manual_resume_beat_keywords,
    email_filters_are_ignored_for_http,
    // §1.9: slug pings.
    slug_pings_work,
    slug_actions,
    ambiguous_slug_is_409,
    unknown_slug_or_key_is_404,
    uppercase_slug_is_400,
    create_provisions_a_check,
    auto_provisioning_is_off_by_default,
    create_with_unknown_ping_key_is_404,
    create_without_a_profile_uses_the_default_limit,
    create_then_bad_exit_status_or_rid_is_400,
    create_respects_twice_the_check_limit,
    concurrent_creates_make_one_check,
);

const CACHE_CONTROL: &str = "max-age=0, no-cache, no-store, must-revalidate, private";
const HTML: &str = "text/html; charset=utf-8";
const MISSING: &str = "00000000-0000-4000-8000-000000000000";

// ---------------------------------------------------------------------------------------------
// Helpers

/// `/ping/<code><suffix>`.
fn url(code: Uuid, suffix: &str) -> String {
    format!("/ping/{code}{suffix}")
}

async fn send(
    server: &PingServer,
    method: &str,
    path: &str,
    headers: &[(&str, &[u8])],
    body: impl Into<Bytes>,
) -> Reply {
    match request(server.addr, method, path, headers, body).await {
        Ok(reply) => reply,
        Err(err) => panic!("{method} {path} failed: {err:#}"),
    }
}

async fn get(server: &PingServer, path: &str) -> Reply {
    send(server, "GET", path, &[], Bytes::new()).await
}

async fn post(server: &PingServer, path: &str, body: impl Into<Bytes>) -> Reply {
    send(server, "POST", path, &[], body).await
}

/// Sends raw bytes on a new connection and reads until the server closes it.
async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut answer = Vec::new();
    // The server may reset the connection after answering; what was read is enough.
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// `count` POSTs of `path` at once, each on its own connection, with bodies "0", "1", ….
async fn concurrently(addr: SocketAddr, path: &str, count: usize) -> Vec<Reply> {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let path = path.to_owned();
        tasks.spawn(async move { request(addr, "POST", &path, &[], format!("{i}")).await });
    }
    let mut replies = Vec::new();
    while let Some(reply) = tasks.join_next().await {
        replies.push(reply.unwrap().unwrap());
    }
    replies
}

#[track_caller]
fn assert_reply(reply: &Reply, status: u16, text: &str) {
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (status, text),
        "{reply:?}"
    );
    assert_eq!(reply.header("content-type").as_deref(), Some(HTML));
}

/// 200 "OK" (or 201 "Created") with Healthchecks' success headers.
#[track_caller]
fn assert_success(reply: &Reply, status: u16, text: &str, body_limit: Option<&str>) {
    assert_reply(reply, status, text);
    assert_eq!(
        reply.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert_eq!(reply.header("ping-body-limit").as_deref(), body_limit);
    assert_eq!(
        reply.header("cache-control").as_deref(),
        Some(CACHE_CONTROL)
    );
    let expires = reply.header("expires").expect("an Expires header");
    let expires = DateTime::parse_from_rfc2822(&expires)
        .unwrap_or_else(|err| panic!("Expires {expires:?} is not an HTTP date: {err}"));
    let skew = (expires.with_timezone(&Utc) - Utc::now()).abs();
    assert!(
        skew < TimeDelta::seconds(60),
        "Expires {expires} is not now"
    );
}

#[track_caller]
fn assert_ok(reply: &Reply) {
    assert_success(reply, 200, "OK", Some("100000"));
}

/// Neither the success headers nor a recorded ping.
#[track_caller]
fn assert_rejected(reply: &Reply, status: u16, text: &str) {
    assert_reply(reply, status, text);
    assert_eq!(reply.header("access-control-allow-origin"), None);
    assert_eq!(reply.header("ping-body-limit"), None);
}

/// A check in a fresh project with everything else at Healthchecks' defaults.
async fn new_check(client: &Client) -> Check {
    insert_check(client, CheckSpec::default()).await.unwrap()
}

#[derive(Debug)]
struct PingRow {
    n: Option<i32>,
    created: DateTime<Utc>,
    kind: Option<String>,
    scheme: String,
    remote_addr: Option<String>,
    method: String,
    ua: String,
    body: Option<Vec<u8>>,
    object_size: Option<i32>,
    exitstatus: Option<i16>,
    rid: Option<Uuid>,
}

/// The check's `api_ping` rows in insertion order.
async fn pings(client: &Client, check_id: i32) -> Vec<PingRow> {
    client
        .query(
            "SELECT n, created, kind, scheme, host(remote_addr), method, ua, body_raw, \
                 object_size, exitstatus, rid \
             FROM api_ping WHERE owner_id = $1 ORDER BY id",
            &[&check_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| PingRow {
            n: row.get(0),
            created: row.get(1),
            kind: row.get(2),
            scheme: row.get(3),
            remote_addr: row.get(4),
            method: row.get(5),
            ua: row.get(6),
            body: row.get(7),
            object_size: row.get(8),
            exitstatus: row.get(9),
            rid: row.get(10),
        })
        .collect()
}

/// The check's only ping.
async fn only_ping(client: &Client, check_id: i32) -> PingRow {
    let mut rows = pings(client, check_id).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows.remove(0)
}

async fn count(client: &Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

#[derive(Debug)]
struct CheckRow {
    name: String,
    slug: String,
    status: String,
    n_pings: i32,
    last_ping: Option<DateTime<Utc>>,
    last_start: Option<DateTime<Utc>>,
    last_start_rid: Option<Uuid>,
    /// `last_duration` in seconds.
    last_duration: Option<f64>,
    alert_after: Option<DateTime<Utc>>,
    has_confirmation_link: bool,
}

async fn check_row(client: &Client, check_id: i32) -> CheckRow {
    let row = client
        .query_one(
            "SELECT name, slug, status, n_pings, last_ping, last_start, last_start_rid, \
                 extract(epoch FROM last_duration)::float8, alert_after, has_confirmation_link \
             FROM api_check WHERE id = $1",
            &[&check_id],
        )
        .await
        .unwrap();
    CheckRow {
        name: row.get(0),
        slug: row.get(1),
        status: row.get(2),
        n_pings: row.get(3),
        last_ping: row.get(4),
        last_start: row.get(5),
        last_start_rid: row.get(6),
        last_duration: row.get(7),
        alert_after: row.get(8),
        has_confirmation_link: row.get(9),
    }
}

/// The check's flips as `(old_status, new_status, reason, processed is NULL)`.
async fn flips(client: &Client, check_id: i32) -> Vec<(String, String, String, bool)> {
    client
        .query(
            "SELECT old_status, new_status, reason, processed IS NULL FROM api_flip \
             WHERE owner_id = $1 ORDER BY id",
            &[&check_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
        .collect()
}

fn flip(old: &str, new: &str, reason: &str) -> (String, String, String, bool) {
    (old.to_owned(), new.to_owned(), reason.to_owned(), true)
}

fn ago(seconds: i64) -> DateTime<Utc> {
    Utc::now() - TimeDelta::seconds(seconds)
}

// ---------------------------------------------------------------------------------------------
// §1.2: responses and headers

async fn success_has_healthchecks_headers(db: &TestDb) {
    let client = db.client().await;
    let check = new_check(&client).await;
    let server = PingServer::start(db).await;
    let reply = get(&server, &url(check.code, "")).await;
    assert_ok(&reply);
    // The trailing-slash form is the same route.
    assert_ok(&get(&server, &url(check.code, "/")).await);
    assert_eq!(pings(&client, check.id).await.len(), 2);
}

async fn every_action_answers_ok(db: &TestDb) {
    let client = db.client().await;
    let check = new_check(&client).await;
    let post_only = insert_check(
        &client,
        CheckSpec {
            methods: "POST".to_owned(),
            ..CheckSpec::default()
        },
    )
    .await
    .unwrap();
    let server = PingServer::start(db).await;
    for suffix in ["", "/start", "/fail", "/log", "/0", "/7"] {
        assert_ok(&get(&server, &url(check.code, suffix)).await);
    }
    // An ignored ping answers like any other.
    assert_ok(&get(&server, &url(post_only.code, "")).await);
    assert_eq!(
        only_ping(&client, post_only.id).await.kind.as_deref(),
        Some("ign")
    );
    let kinds: Vec<Option<String>> = pings(&client, check.id)
        .await
        .into_iter()
        .map(|p| p.kind)
        .collect();
    let expected = [
        None,
        Some("start"),
        Some("fail"),
        Some("log"),
        None,
        Some("fail"),
    ];
    assert_eq!(kinds, expected.map(|k| k.map(str::to_owned)));
}

async fn unknown_uuid_is_404_with_never_cache_only(db: &TestDb) {
    let server = PingServer::start(db).await;
    for suffix in ["", "/", "/start", "/fail", "/log", "/3"] {
        let reply = get(&server, &format!("/ping/{MISSING}{suffix}")).await;
        assert_rejected(&reply, 404, "not found");
        assert_eq!(
            reply.header("cache-control").as_deref(),
            Some(CACHE_CONTROL)
        );
        assert!(reply.header("expires").is_some());
    }
    let client = db.client().await;
    assert_eq!(count(&client, "SELECT count(*) FROM api_ping").await, 0);
}

async fn unrouted_urls_get_the_html_404_page(db: &TestDb) {
    let client = db.client().await;
    let project = insert_owned_project(&client).await.unwrap();
    let check = insert_check(
        &client,
        CheckSpec {
            project_id: Some(project.id),
            slug: "backup".to_owned(),
            ..CheckSpec::default()
        },
    )
    .await
    .unwrap();
    let server = PingServer::start(db).await;
    let key = &project.ping_key;
    for path in [
        url(check.code, "/fail/"),
        url(check.code, "/start/"),
        url(check.code, "/0/"),
        format!("/ping/{key}/backup/"),
        format!("/ping/{key}/backup/fail/"),
        "/ping/not-uuid/".to_owned(),
        format!("/ping/{}", check.code.simple()),
        "/ping/".to_owned(),
        "/".to_owned(),
        format!("/pings/{}", check.code),
    ] {
        let reply = get(&server, &path).await;
        assert_eq!(reply.status, 404, "{path}");
        assert!(reply.text().contains("<h1>Not Found</h1>"), "{path}");
        assert_eq!(reply.header("content-type").as_deref(), Some(HTML));
        assert_eq!(reply.header("access-control-allow-origin"), None);
    }
    assert_eq!(count(&client, "SELECT count(*) FROM api_ping").await, 0);
}

async fn any_method_is_recorded(db: &TestDb) {
    let client = db.client().await;
    let check = new_check(&client).await;
    let server = PingServer::start(db).await;
    let methods = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "PROPFIND",
    ];
    for method in methods {
        let reply = send(&server, method, &url(check.code, ""), &[], Bytes::new()).await;
        assert_eq!(reply.status, 200, "{method}");
        assert_eq!(
            reply.header("access-control-allow-origin").as_deref(),
            Some("*")
        );
        if method != "HEAD" {
            assert_ok(&reply);
        }
    }
    let recorded: Vec<String> = pings(&client, check.id)
        .await
        .into_iter()
        .map(|p| p.method)
        .collect();
    assert_eq!(recorded, methods);
    assert_eq!(check_row(&client, check.id).await.n_pings, 8);
    // api_ping.method is varchar(10): a longer verb is refused, where Django would fail with 500.
    let reply = send(
        &server,
        "VERYLONGVERB",
        &url(check.code, ""),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.status, 405);
    assert_eq!(pings(&client, check.id).await.len(), 8);
}

async fn methods_are_uppercased_like_django(db: &TestDb) {
    let client = db.client().await;
    let check = insert_check(
        &client,
        CheckSpec {
            methods: "POST".to_owned(),
            ..CheckSpec::default()
        },
    )
    .await
    .unwrap();
    let server = PingServer::start(db).await;
    // Django's WSGIRequest upper-cases REQUEST_METHOD, so `post` is a POST.
    for method in ["post", "Get"] {
        let reply = send(&server, method, &url(check.code, ""), &[], Bytes::new()).await;
        assert_ok(&reply);
    }
    let rows: Vec<(String, Option<String>)> = pings(&client, check.id)
        .await
        .into_iter()
        .map(|p| (p.method, p.kind))
        .collect();
    assert_eq!(
        rows,
        [
            ("POST".to_owned(), None),
            ("GET".to_owned(), Some("ign".to_owned()))
        ]
    );
}

async fn pings_on_one_kept_alive_connection(db: &TestDb) {
    let client = db.client().await;
    let check = new_check(&client).await;
    let server = PingServer::start(db).await;
    let mut connection = hc_tests::http::Connection::open(server.addr).await.unwrap();
    for suffix in ["/start", "/log", ""] {
        let reply = connection
            .send("POST", &url(check.code, suffix), &[], suffix.to_owned())
            .await
            .unwrap();
        assert_ok(&reply);
    }
    let bodies: Vec<Option<Vec<u8>>> = pings(&client, check.id)
        .await
        .into_iter()
        .map(|p| p.body)
        .collect();
    assert_eq!(
        bodies,
        [
            Some(b"/start".to_vec()),
            Some(b"/log".to_vec()),
            Some(vec![])
        ]
    );
    assert!(check_row(&client, check.id).await.last_duration.is_some());
}

async fn body_limit_defaults_to_100000(db: &TestDb) {
    let client = db.client().await;
    let check = new_check(&client).await;
    let server = PingServer::start(db).await;
    let body = vec![b'x'; 100_001];
    assert_ok(&post(&server, &url(check.code, ""), body).await);
    let ping = only_ping(&client, check.id).await;
    assert_eq!(ping.body.map(|b| b.len()), Some(100_000));
    assert_eq!(ping.object_size, None);
}

async fn body_limit_is_configurable(db: &TestDb) {
    let client = db.client().await;
    let check = new_check(&client).await;
    let server = PingServer::start_with(db, &[("PING_BODY_LIMIT", "5")]).await;
    let reply = post(&server, &url(check.code, ""), "hello world").await;
    assert_success(&reply, 200, "OK", Some("5"));
    assert_eq!(
        only_ping(&client, check.id).await.body.as_deref(),
        Some(&b"hello"[..])
    );
}

async fn unlimited_body_has_no_limit_header(db: &TestDb) {
    let client = db.client().await;
    let check = new_check(&client).await;
    let server = PingServer::start_with(db, &[("PING_BODY_LIMIT", "None")]).await;
    let body = vec![b'x'; 200_000];
    let reply = post(&server, &url(check.code, ""), body).await;
    assert_success(&reply, 200, "OK", None);
    let ping = only_ping(&client, check.id).await;
    assert_eq!(ping.body.map(|b| b.len()), Some(200_000));
}

async fn body_over_the_hard_cap_is_413(db: &TestDb) {
    let client = db.client().await;
    let check = new_check(&client).await;
    let server = PingServer::start_with(
        db,
        &[
            ("PING_BODY_LIMIT", "10"),
            ("HCHK_PING_BODY_HARD_LIMIT", "1000"),
        ],
    )
    .await;
    let path = url(check.code, "");
    assert_success(
        &post(&server, &path, vec![b'a'; 1000]).await,
        200,
        "OK",
        Some("10"),
    );
    let reply = post(&server, &path, vec![b'b'; 1001]).await;
    assert_eq!(reply.status, 413, "{reply:?}");
    assert_eq!(reply.header("access-control-allow-origin"), None);
    let ping = only_ping(&client, check.id).await;
    assert_eq!(ping.body.as_deref(), Some(&[b'a'; 10][..]));
}

async fn body_over_the_default_hard_cap_is_413(db: &TestDb) {
    let client = db.client().await;
    let check = new_check(&client).await;
    let server = PingServer::start(db).await;
    let path = url(check.code, "");
    // 2,621,440 bytes is Django's DATA_UPLOAD_MAX_MEMORY_SIZE: still accepted.
    assert_ok(&post(&server, &path, vec![b'x'; 2_621_440]).await);
    // One more byte, declared up front, is refused before the body is read.
    let answer = raw(
        server.addr,
        format!(
            "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Length: 2621441\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(pings(&client, check.id).await.len(), 1);
}

async fn chunked_body_over_the_hard_cap_is_413(db: &TestDb) {
    let client = db.client().await;
    let check = new_check(&client).await;
    let server = PingServer::start_with(
        db,
        &[
            ("PING_BODY_LIMIT", "10"),
            ("HCHK_PING_BODY_HARD_LIMIT", "1000"),
        ],
    )
    .await;
    let path = url(check.code, "");
    let chunked = |size: usize| {
        let mut bytes = format!(
            "POST {path} HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{size:x}\r\n"
        )
        .into_bytes();
        bytes.extend(std::iter::repeat_n(b'c', size));
        bytes.extend_from_slice(b"\r\n0\r\n\r\n");
        bytes
    };
    let answer = raw(server.addr, &chunked(1001)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(pings(&client, check.id).await.is_empty());
    let answer = raw(server.addr, &chunked(1000)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(
        only_ping(&client, check.id).await.body.as_deref(),
        Some(&[b'c'; 10][..])
    );
}

async fn hard_cap_is_at_least_the_body_limit(db: &TestDb) {
    let client = db.client().await;
    let check = new_check(&client).await;
    // A hard cap below PING_BODY_LIMIT (100,000 by default) is raised to it.
    let server = PingServer::start_with(db, &[("HCHK_PING_BODY_HARD_LIMIT", "1000")]).await;
    let path = url(check.code, "");
    assert_ok(&post(&server, &path, vec![b'x'; 100_000]).await);
    let reply = post(&server, &path, vec![b'x'; 100_001]).await;
    assert_eq!(reply.status, 413, "{reply:?}");
    assert_eq!(pings(&client, check.id).await.len(), 1);
}

async fn forwarded_headers_from_a_trusted_proxy(db: &TestDb) {
    let client = db.client().await;
    let check = new_check(&client).await;
    // The default TRUSTED_PROXIES is loopback, where the test client is.
    let server = PingServer::start(db).await;
    // Only http and https are taken from X-Forwarded-Proto (Healthchecks stores any value).
    for (proto, scheme) in [
        (&b"HTTPS"[..], "https"),
        (b"gopher", "http"),
        (b"http", "http"),
    ] {
        let other = new_check(&client).await;
        let headers: &[(&str, &[u8])] = &[("x-forwarded-proto", proto)];
        assert_ok(&send(&server, "GET", &url(other.code, ""), headers, Bytes::new()).await);
        assert_eq!(only_ping(&client, other.id).await.scheme, scheme);
    }
    let cases: &[(&[u8], &str)] = &[
        (b"1.1.1.1", "1.1.1.1"),
        (b"1.1.1.1, 2.2.2.2", "1.1.1.1"),
        (b"1.1.1.1:1234", "1.1.1.1"),
        (b"2001::1", "2001::1"),
        (b"::ffff:1.1.1.1", "::ffff:1.1.1.1"),
        (b"[2001::1]:443", "2001::1"),
    ];
    for (xff, _) in cases {
        let headers: &[(&str, &[u8])] =
            &[("x-forwarded-for", xff), ("x-forwarded-proto", b"https")];
        assert_ok(&send(&server, "GET", &url(check.code, ""), headers, Bytes::new()).await);
    }
    let rows = pings(&client, check.id).await;
    let stored: Vec<(Option<String>, String)> = rows
        .into_iter()
        .map(|p| (p.remote_addr, p.scheme))
        .collect();
    let expected: Vec<(Option<String>, String)> = cases
        .iter()
        .map(|(_, ip)| (Some((*ip).to_owned()), "https".to_owned()))
        .collect();
    assert_eq!(stored, expected);
}

async fn forwarded_headers_from_an_untrusted_peer_are_ignored(db: &TestDb) {
    let client = db.client().await;
    let check = new_check(&client).await;
    let server = PingServer::start_with(db, &[("TRUSTED_PROXIES", "")]).await;
    let headers: &[(&str, &[u8])] = &[
        ("x-forwarded-for", b"1.1.1.1"),
        ("x-forwarded-proto", b"https"),
    ];
    assert_ok(&send(&server, "GET", &url(check.code, ""), headers, Bytes::new()).await);
    let ping = only_ping(&client, check.id).await;
    assert_eq!(ping.remote_addr.as_deref(), Some("127.0.0.1"));
    assert_eq!(ping.scheme, "http");
}

async fn non_ip_forwarded_for_is_ignored(db: &TestDb) {
    let client = db.client().await;
    let check = new_check(&client).await;
    let server = PingServer::start(db).await;
    // Healthchecks answers 500 here (the inet cast fails); we store the peer address.
    let headers: &[(&str, &[u8])] = &[("x-forwarded-for", b"garbage")];
    assert_ok(&send(&server, "GET", &url(check.code, ""), headers, Bytes::new()).await);
    let ping = only_ping(&client, check.id).await;
    assert_eq!(ping.remote_addr.as_deref(), Some("127.0.0.1"));
    assert_eq!(ping.scheme, "http");
}

// ---------------------------------------------------------------------------------------------
// §1.3: order of processing and input rules

async fn unknown_uuid_wins_over_bad_exit_status_and_rid(db: &TestDb) {
    let server = PingServer::start(db).await;
    for path in [
        format!("/ping/{MISSING}/256"),
        format!("/ping/{MISSING}?rid=garbage"),
        format!("/ping/{MISSING}/999?rid="),
    ] {
        assert_rejected(&get(&server, &path).await, 404, "not found");
    }
}

async fn exit_status_over_255_is_rejected_before_rid(db: &TestDb) {
    let client = db.client().await;
    let check = new_check(&client).await;
    let server = PingServer::start(db).await;
    for suffix in [
        "/256",
        "/999999999999999999999999999999",
        "/256?rid=garbage",
    ] {
        let reply = get(&server, &url(check.code, suffix)).await;
        assert_rejected(&reply, 400, "invalid url format");
        assert_eq!(
            reply.header("cache-control").as_deref(),
            Some(CACHE_CONTROL)
        );
    }
    assert!(pings(&client, check.id).await.is_empty());
    let row = check_row(&client, check.id).await;
    assert_eq!((row.status.as_str(), row.n_pings), ("new", 0));
}

async fn exit_statuses_and_leading_zeros(db: &TestDb) {
    let client = db.client().await;
    let check = new_check(&client).await;
    let server = PingServer::start(db).await;
    for suffix in [
        "/0",
        "/123",
        "/007",
        "/000",
        "/255",
        "/0000000000000000000000000001",
    ] {
        assert_ok(&get(&server, &url(check.code, suffix)).await);
    }
    let rows: Vec<(Option<String>, Option<i16>)> = pings(&client, check.id)
        .await
        .into_iter()
        .map(|p| (p.kind, p.exitstatus))
        .collect();
    let fail = || Some("fail".to_owned());
    assert_eq!(
        rows,
        [
            (None, Some(0)),
            (fail(), Some(123)),
            (fail(), Some(7)),
            (None, Some(0)),
            (fail(), Some(255)),
            (fail(), Some(1)),
        ]
    );
    assert_eq!(check_row(&client, check.id).await.status, "down");
}

async fn invalid_rids_are_rejected(db: &TestDb) {
    let client = db.client().await;
    let check = new_check(&client).await;
    let server = PingServer::start(db).await;
    let long = format!("{}0", Uuid::new_v4());
    for query in [
        "?rid=12345".to_owned(),
        "?rid=".to_owned(),
        "?rid=garbage".to_owned(),
        format!("?rid={long}"),
        format!("?rid={}", Uuid::new_v4().simple()),
    ] {
        for suffix in ["", "/start", "/fail", "/log", "/0"] {
            let reply = get(&server, &url(check.code, &format!("{suffix}{query}"))).await;
            assert_rejected(&reply, 400, "invalid uuid format");
        }
    }
    assert!(pings(&client, check.id).await.is_empty());
}

async fn uppercase_and_dashless_uuids_are_not_found(db: &TestDb) {
    let client = db.client().await;
    let check = new_check(&client).await;
    let server = PingServer::start(db).await;
    let upper = check.code.to_string().to_uppercase();
    for path in [
        format!("/ping/{upper}"),
        format!("/ping/{upper}/"),
        format!("/ping/{}", check.code.simple()),
    ] {
        let reply = get(&server, &path).await;
        assert_eq!(reply.status, 404, "{path}");
        assert!(reply.text().contains("Not Found"), "{path}");
    }
    // `/<UPPERCASE UUID>/start` is a slug route whose ping key does not exist.
    let reply = get(&server, &format!("/ping/{upper}/start")).await;
    assert_rejected(&reply, 404, "not found");
    assert!(pings(&client, check.id).await.is_empty());
}

async fn user_agent_is_kept_up_to_200_chars(db: &TestDb) {
    let client = db.client().await;
    let check = new_check(&client).await;
    let server = PingServer::start(db).await;
    let path = url(check.code, "");
    let ua120 = "u".repeat(120);
    let ua250: String = ('a'..='z').cycle().take(250).collect();
    for ua in [&ua120, &ua250] {
        let headers: &[(&str, &[u8])] = &[("user-agent", ua.as_bytes())];
        assert_ok(&send(&server, "GET", &path, headers, Bytes::new()).await);
    }
    assert_ok(&get(&server, &path).await);
    let stored: Vec<String> = pings(&client, check.id)
        .await
        .into_iter()
        .map(|p| p.ua)
        .collect();
    assert_eq!(stored, [ua120, ua250[..200].to_owned(), String::new()]);
}

async fn bodies_are_stored_as_bytes(db: &TestDb) {
    let client = db.client().await;
    let check = new_check(&client).await;
    let server = PingServer::start(db).await;
    let path = url(check.code, "");
    assert_ok(&post(&server, &path, "hello world").await);
    assert_ok(&post(&server, &path, &b"\xe9t\xe9"[..]).await);
    assert_ok(&get(&server, &path).await);
    let bodies: Vec<Option<Vec<u8>>> = pings(&client, check.id)
        .await
        .into_iter()
        .map(|p| p.body)
        .collect();
    // An empty body is an empty bytea, not NULL.
    assert_eq!(
        bodies,
        [
            Some(b"hello world".to_vec()),
            Some(b"\xe9t\xe9".to_vec()),
            Some(Vec::new())
        ]
    );
}

async fn site_root_path_prefixes_routes(db: &TestDb) {
    let client = db.client().await;
    let project = insert_owned_project(&client).await.unwrap();
    let check = insert_check(
        &client,
        CheckSpec {
            project_id: Some(project.id),
            slug: "backup".to_owned(),
            ..CheckSpec::default()
        },
    )
    .await
    .unwrap();
    let server = PingServer::start_with(db, &[("SITE_ROOT", "http://x/hc")]).await;
    assert_ok(&get(&server, &format!("/hc{}", url(check.code, "/fail"))).await);
    assert_ok(&get(&server, &format!("/hc/ping/{}/backup", project.ping_key)).await);
    for path in [
        url(check.code, ""),
        format!("/ping/{}/backup", project.ping_key),
        format!("/hc/hc{}", url(check.code, "")),
    ] {
        let reply = get(&server, &path).await;
        assert_eq!(reply.status, 404, "{path}");
        assert!(reply.text().contains("Not Found"), "{path}");
    }
    let kinds: Vec<Option<String>> = pings(&client, check.id)
        .await
        .into_iter()
        .map(|p| p.kind)
        .collect();
    assert_eq!(kinds, [Some("fail".to_owned()), None]);
}

// ---------------------------------------------------------------------------------------------
// §1.4: what a ping writes

async fn success_ping_writes_check_ping_and_flip(db: &TestDb) {
    let client = db.client().await;
    let check = new_check(&client).await;
    let server = PingServer::start(db).await;
    let headers: &[(&str, &[u8])] = &[("user-agent", b"curl/8.0")];
    assert_ok(&send(&server, "GET", &url(check.code, ""), headers, Bytes::new()).await);
    let row = check_row(&client, check.id).await;
    assert_eq!((row.status.as_str(), row.n_pings), ("up", 1));
    let last_ping = row.last_ping.expect("last_ping is set");
    assert_eq!(
        row.alert_after,
        Some(last_ping + TimeDelta::days(1) + TimeDelta::hours(1))
    );
    assert_eq!((row.last_start, row.last_duration), (None, None));
    let ping = only_ping(&client, check.id).await;
    assert_eq!(ping.n, Some(1));
    assert_eq!(ping.created, last_ping);
    assert_eq!(ping.kind, None);
    assert_eq!(ping.scheme, "http");
    assert_eq!(ping.remote_addr.as_deref(), Some("127.0.0.1"));
    assert_eq!(ping.method, "GET");
    assert_eq!(ping.ua, "curl/8.0");
    assert_eq!(ping.body.as_deref(), Some(&b""[..]));
    assert_eq!(
        (ping.object_size, ping.exitstatus, ping.rid),
        (None, None, None)
    );
    assert_eq!(flips(&client, check.id).await, [flip("new", "up", "")]);
    let flip_after_ping = count(
        &client,
        &format!(
            "SELECT count(*) FROM api_flip f JOIN api_check c ON c.id = f.owner_id \
             WHERE c.id = {} AND f.created >= c.last_ping",
            check.id
        ),
    )
    .await;
    assert_eq!(flip_after_ping, 1);
}

async fn cron_check_alert_after_follows_the_schedule(db: &TestDb) {
    let client = db.client().await;
    let check = insert_check(
        &client,
        CheckSpec {
            kind: "cron",
            schedule: "0 0 * * *".to_owned(),
            tz: "UTC".to_owned(),
            grace: Duration::from_secs(600),
            ..CheckSpec::default()
        },
    )
    .await
    .unwrap();
    let server = PingServer::start(db).await;
    assert_ok(&get(&server, &url(check.code, "")).await);
    let row = check_row(&client, check.id).await;
    let last_ping = row.last_ping.unwrap();
    let next_midnight = (last_ping.date_naive() + TimeDelta::days(1))
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    assert_eq!(
        row.alert_after,
        Some(next_midnight + TimeDelta::minutes(10))
    );
}

async fn concurrent_pings_are_numbered_in_order(db: &TestDb) {
    let client = db.client().await;
    let check = new_check(&client).await;
    let server = PingServer::start(db).await;
    let path = url(check.code, "");
    let replies = concurrently(server.addr, &path, 50).await;
    for reply in &replies {
        assert_ok(reply);
    }
    let rows = pings(&client, check.id).await;
    let ns: Vec<Option<i32>> = rows.iter().map(|p| p.n).collect();
    assert_eq!(ns, (1..=50).map(Some).collect::<Vec<_>>());
    assert!(rows.windows(2).all(|w| w[0].created <= w[1].created));
    let row = check_row(&client, check.id).await;
    assert_eq!(row.n_pings, 50);
    assert_eq!(row.last_ping, rows.last().map(|p| p.created));
    assert_eq!(flips(&client, check.id).await.len(), 1);
}

async fn concurrent_uuid_and_slug_pings_share_one_counter(db: &TestDb) {
    let client = db.client().await;
    let (project, checks) = project_with_slugs(&client, &["both"]).await;
    let server = PingServer::start(db).await;
    let by_uuid = url(checks[0].code, "");
    let by_slug = format!("/ping/{}/both", project.ping_key);
    let (uuid_replies, slug_replies) = tokio::join!(
        concurrently(server.addr, &by_uuid, 20),
        concurrently(server.addr, &by_slug, 20)
    );
    for reply in uuid_replies.iter().chain(&slug_replies) {
        assert_ok(reply);
    }
    let ns: Vec<Option<i32>> = pings(&client, checks[0].id)
        .await
        .into_iter()
        .map(|p| p.n)
        .collect();
    assert_eq!(ns, (1..=40).map(Some).collect::<Vec<_>>());
    assert_eq!(check_row(&client, checks[0].id).await.n_pings, 40);
}

async fn fail_ping_goes_down(db: &TestDb) {
    let client = db.client().await;
    let check = new_check(&client).await;
    let server = PingServer::start(db).await;
    assert_ok(&post(&server, &url(check.code, "/fail"), "oops").await);
    let row = check_row(&client, check.id).await;
    assert_eq!(row.status, "down");
    assert_eq!(row.alert_after, None);
    let ping = only_ping(&client, check.id).await;
    assert_eq!(ping.kind.as_deref(), Some("fail"));
    assert_eq!(ping.exitstatus, None);
    assert_eq!(Some(ping.created), row.last_ping);
    assert_eq!(
        flips(&client, check.id).await,
        [flip("new", "down", "fail")]
    );
}

async fn flips_only_on_status_change(db: &TestDb) {
    let client = db.client().await;
    let check = new_check(&client).await;
    let server = PingServer::start(db).await;
    for suffix in ["", "", "/fail", "/1", "/0", "/log", "/start", ""] {
        assert_ok(&get(&server, &url(check.code, suffix)).await);
    }
    assert_eq!(
        flips(&client, check.id).await,
        [
            flip("new", "up", ""),
            flip("up", "down", "fail"),
            flip("down", "up", "")
        ]
    );
    let ns: Vec<Option<i32>> = pings(&client, check.id)
        .await
        .into_iter()
        .map(|p| p.n)
        .collect();
    assert_eq!(ns, (1..=8).map(Some).collect::<Vec<_>>());
}

async fn start_ping_sets_last_start_only(db: &TestDb) {
    let client = db.client().await;
    let last_ping = ago(3600);
    let check = insert_check(
        &client,
        CheckSpec {
            status: "up",
            last_ping: Some(last_ping),
            ..CheckSpec::default()
        },
    )
    .await
    .unwrap();
    let server = PingServer::start(db).await;
    assert_ok(&get(&server, &url(check.code, "/start")).await);
    let row = check_row(&client, check.id).await;
    assert_eq!(row.status, "up");
    assert_eq!(
        row.last_ping.map(|t| t.timestamp_micros()),
        Some(last_ping.timestamp_micros())
    );
    let ping = only_ping(&client, check.id).await;
    assert_eq!(ping.kind.as_deref(), Some("start"));
    assert_eq!(row.last_start, Some(ping.created));
    assert_eq!(row.last_start_rid, None);
    // A running check goes down at last_start + grace unless its period ends first.
    assert_eq!(row.alert_after, Some(ping.created + TimeDelta::hours(1)));
    assert!(flips(&client, check.id).await.is_empty());
}

async fn start_does_not_change_a_paused_check(db: &TestDb) {
    let client = db.client().await;
    let check = insert_check(
        &client,
        CheckSpec {
            status: "paused",
            ..CheckSpec::default()
        },
    )
    .await
    .unwrap();
    let server = PingServer::start(db).await;
    assert_ok(&get(&server, &url(check.code, "/start")).await);
    let row = check_row(&client, check.id).await;
    assert_eq!(row.status, "paused");
    assert!(row.last_start.is_some());
    assert_eq!(row.last_ping, None);
    assert_eq!(
        row.alert_after,
        row.last_start.map(|t| t + TimeDelta::hours(1))
    );
    assert!(flips(&client, check.id).await.is_empty());
}

async fn start_on_a_down_check_has_no_alert_after(db: &TestDb) {
    let client = db.client().await;
    let check = insert_check(
        &client,
        CheckSpec {
            status: "down",
            last_ping: Some(ago(90_000)),
            ..CheckSpec::default()
        },
    )
    .await
    .unwrap();
    let server = PingServer::start(db).await;
    assert_ok(&get(&server, &url(check.code, "/start")).await);
    let row = check_row(&client, check.id).await;
    assert_eq!(row.status, "down");
    assert!(row.last_start.is_some());
    assert_eq!(row.alert_after, None);
}

async fn log_ping_changes_nothing_but_counts(db: &TestDb) {
    let client = db.client().await;
    let check = new_check(&client).await;
    let server = PingServer::start(db).await;
    let rid = Uuid::new_v4();
    assert_ok(
        &post(
            &server,
            &url(check.code, &format!("/log?rid={rid}")),
            "note",
        )
        .await,
    );
    let row = check_row(&client, check.id).await;
    assert_eq!((row.status.as_str(), row.n_pings), ("new", 1));
    assert_eq!(
        (row.last_ping, row.last_start, row.alert_after),
        (None, None, None)
    );
    let ping = only_ping(&client, check.id).await;
    assert_eq!(ping.kind.as_deref(), Some("log"));
    assert_eq!(ping.rid, Some(rid));
    assert_eq!(ping.body.as_deref(), Some(&b"note"[..]));
    assert!(flips(&client, check.id).await.is_empty());
}

async fn every_ping_recomputes_alert_after(db: &TestDb) {
    let client = db.client().await;
    let last_ping = ago(3600);
    let check = insert_check(
        &client,
        CheckSpec {
            status: "up",
            last_ping: Some(last_ping),
            // Stale: not what going_down_after() gives.
            alert_after: Some(ago(60)),
            ..CheckSpec::default()
        },
    )
    .await
    .unwrap();
    let server = PingServer::start(db).await;
    assert_ok(&get(&server, &url(check.code, "/log")).await);
    let row = check_row(&client, check.id).await;
    let expected = last_ping + TimeDelta::days(1) + TimeDelta::hours(1);
    assert_eq!(
        row.alert_after.map(|t| t.timestamp_micros()),
        Some(expected.timestamp_micros())
    );
    assert_eq!(row.status, "up");
}

async fn paused_check_goes_up_on_success(db: &TestDb) {
    let client = db.client().await;
    let check = insert_check(
        &client,
        CheckSpec {
            status: "paused",
            ..CheckSpec::default()
        },
    )
    .await
    .unwrap();
    let server = PingServer::start(db).await;
    assert_ok(&get(&server, &url(check.code, "")).await);
    assert_eq!(check_row(&client, check.id).await.status, "up");
    assert_eq!(flips(&client, check.id).await, [flip("paused", "up", "")]);
}

async fn manual_resume_keeps_a_paused_check_paused(db: &TestDb) {
    let client = db.client().await;
    let check = insert_check(
        &client,
        CheckSpec {
            status: "paused",
            manual_resume: true,
            ..CheckSpec::default()
        },
    )
    .await
    .unwrap();
    let server = PingServer::start(db).await;
    for suffix in ["", "/fail", "/start", "/log", "/3"] {
        assert_ok(&get(&server, &url(check.code, suffix)).await);
    }
    let row = check_row(&client, check.id).await;
    assert_eq!((row.status.as_str(), row.n_pings), ("paused", 5));
    assert_eq!(
        (row.last_ping, row.last_start, row.alert_after),
        (None, None, None)
    );
    let kinds: Vec<Option<String>> = pings(&client, check.id)
        .await
        .into_iter()
        .map(|p| p.kind)
        .collect();
    assert_eq!(kinds, vec![Some("ign".to_owned()); 5]);
    // The exit status is recorded even on an ignored ping.
    let last = pings(&client, check.id).await.pop().unwrap();
    assert_eq!(last.exitstatus, Some(3));
    assert!(flips(&client, check.id).await.is_empty());
}

async fn n_continues_from_n_pings(db: &TestDb) {
    let client = db.client().await;
    let check = insert_check(
        &client,
        CheckSpec {
            n_pings: 41,
            ..CheckSpec::default()
        },
    )
    .await
    .unwrap();
    let server = PingServer::start(db).await;
    assert_ok(&get(&server, &url(check.code, "")).await);
    assert_eq!(only_ping(&client, check.id).await.n, Some(42));
    assert_eq!(check_row(&client, check.id).await.n_pings, 42);
}

async fn confirmation_flag_is_overwritten_by_every_ping(db: &TestDb) {
    let client = db.client().await;
    let check = new_check(&client).await;
    let server = PingServer::start(db).await;
    let path = url(check.code, "/log");
    assert_ok(&post(&server, &path, "Please Confirm your subscription").await);
    assert!(check_row(&client, check.id).await.has_confirmation_link);
    // An ignored or empty ping clears it too.
    assert_ok(&get(&server, &path).await);
    assert!(!check_row(&client, check.id).await.has_confirmation_link);
    assert_ok(&post(&server, &path, &b"\xff CONFIRM \xfe"[..]).await);
    assert!(check_row(&client, check.id).await.has_confirmation_link);
}

// ---------------------------------------------------------------------------------------------
// §1.5: run ids and durations

async fn start_sets_last_start_rid_and_accepts_uppercase(db: &TestDb) {
    let client = db.client().await;
    let check = new_check(&client).await;
    let server = PingServer::start(db).await;
    let rid = Uuid::new_v4();
    let upper = rid.to_string().to_uppercase();
    assert_ok(&get(&server, &url(check.code, &format!("/start?rid={upper}"))).await);
    assert_eq!(check_row(&client, check.id).await.last_start_rid, Some(rid));
    assert_eq!(only_ping(&client, check.id).await.rid, Some(rid));
    // A start without rid clears it.
    assert_ok(&get(&server, &url(check.code, "/start")).await);
    assert_eq!(check_row(&client, check.id).await.last_start_rid, None);
}

async fn success_after_start_sets_last_duration(db: &TestDb) {
    let client = db.client().await;
    let check = insert_check(
        &client,
        CheckSpec {
            last_start: Some(ago(10)),
            ..CheckSpec::default()
        },
    )
    .await
    .unwrap();
    let server = PingServer::start(db).await;
    assert_ok(&get(&server, &url(check.code, "")).await);
    let row = check_row(&client, check.id).await;
    let duration = row.last_duration.expect("a duration");
    assert!((10.0..3600.0).contains(&duration), "{duration}");
    assert_eq!(row.last_start, None);
}

async fn success_with_other_rid_keeps_last_start(db: &TestDb) {
    let client = db.client().await;
    let started = ago(10);
    let check = insert_check(
        &client,
        CheckSpec {
            last_start: Some(started),
            last_start_rid: Some(Uuid::new_v4()),
            ..CheckSpec::default()
        },
    )
    .await
    .unwrap();
    let server = PingServer::start(db).await;
    let other = Uuid::new_v4();
    assert_ok(&get(&server, &url(check.code, &format!("?rid={other}"))).await);
    let row = check_row(&client, check.id).await;
    assert_eq!(
        row.last_start.map(|t| t.timestamp_micros()),
        Some(started.timestamp_micros())
    );
    assert_eq!(row.last_duration, None);
    assert!(row.last_ping.is_some());
    assert_eq!(row.status, "up");
}

async fn matching_rid_sets_duration_and_keeps_rid(db: &TestDb) {
    let client = db.client().await;
    let rid = Uuid::new_v4();
    let check = insert_check(
        &client,
        CheckSpec {
            last_start: Some(ago(10)),
            last_start_rid: Some(rid),
            ..CheckSpec::default()
        },
    )
    .await
    .unwrap();
    let server = PingServer::start(db).await;
    // The rid is compared as a UUID: case does not matter.
    let upper = rid.to_string().to_uppercase();
    assert_ok(&get(&server, &url(check.code, &format!("?rid={upper}"))).await);
    let row = check_row(&client, check.id).await;
    assert!(row.last_duration.is_some_and(|d| d >= 10.0), "{row:?}");
    assert_eq!(row.last_start, None);
    // last_start_rid is never cleared by a success or fail.
    assert_eq!(row.last_start_rid, Some(rid));
}

async fn success_without_rid_clears_last_start(db: &TestDb) {
    let client = db.client().await;
    let check = insert_check(
        &client,
        CheckSpec {
            last_start: Some(ago(10)),
            last_start_rid: Some(Uuid::new_v4()),
            ..CheckSpec::default()
        },
    )
    .await
    .unwrap();
    let server = PingServer::start(db).await;
    assert_ok(&get(&server, &url(check.code, "")).await);
    let row = check_row(&client, check.id).await;
    assert_eq!((row.last_start, row.last_duration), (None, None));
}

async fn fail_with_other_rid_clears_last_start(db: &TestDb) {
    let client = db.client().await;
    let check = insert_check(
        &client,
        CheckSpec {
            last_start: Some(ago(10)),
            last_start_rid: Some(Uuid::new_v4()),
            ..CheckSpec::default()
        },
    )
    .await
    .unwrap();
    let server = PingServer::start(db).await;
    let other = Uuid::new_v4();
    assert_ok(&get(&server, &url(check.code, &format!("/fail?rid={other}"))).await);
    let row = check_row(&client, check.id).await;
    assert_eq!((row.last_start, row.last_duration), (None, None));
    assert_eq!(row.status, "down");
}

async fn fail_with_matching_rid_sets_duration(db: &TestDb) {
    let client = db.client().await;
    let rid = Uuid::new_v4();
    let check = insert_check(
        &client,
        CheckSpec {
            last_start: Some(ago(10)),
            last_start_rid: Some(rid),
            ..CheckSpec::default()
        },
    )
    .await
    .unwrap();
    let server = PingServer::start(db).await;
    assert_ok(&get(&server, &url(check.code, &format!("/5?rid={rid}"))).await);
    let row = check_row(&client, check.id).await;
    assert!(row.last_duration.is_some_and(|d| d >= 10.0), "{row:?}");
    assert_eq!((row.last_start, row.last_start_rid), (None, Some(rid)));
    assert_eq!(row.status, "down");
}

async fn success_without_start_clears_last_duration(db: &TestDb) {
    let client = db.client().await;
    let check = insert_check(
        &client,
        CheckSpec {
            status: "up",
            last_ping: Some(ago(60)),
            last_duration: Some(Duration::from_secs(5)),
            ..CheckSpec::default()
        },
    )
    .await
    .unwrap();
    let server = PingServer::start(db).await;
    // A log ping leaves it; a success without a start clears it.
    assert_ok(&get(&server, &url(check.code, "/log")).await);
    assert_eq!(check_row(&client, check.id).await.last_duration, Some(5.0));
    assert_ok(&get(&server, &url(check.code, "")).await);
    assert_eq!(check_row(&client, check.id).await.last_duration, None);
}

// ---------------------------------------------------------------------------------------------
// §1.8: filters

/// A check filtering HTTP bodies with these keywords.
fn filtering(success: &str, failure: &str, start: &str) -> CheckSpec {
    CheckSpec {
        filter_http_body: true,
        success_kw: success.to_owned(),
        failure_kw: failure.to_owned(),
        start_kw: start.to_owned(),
        ..CheckSpec::default()
    }
}

async fn kinds_of(client: &Client, check_id: i32) -> Vec<Option<String>> {
    pings(client, check_id)
        .await
        .into_iter()
        .map(|p| p.kind)
        .collect()
}

fn kinds(expected: &[Option<&str>]) -> Vec<Option<String>> {
    expected.iter().map(|k| k.map(str::to_owned)).collect()
}

async fn keyword_filters_pick_the_action(db: &TestDb) {
    let client = db.client().await;
    let spec = filtering(" SUCCESS , DONE,", "ERROR,FAIL", "STARTED");
    let check = insert_check(&client, spec).await.unwrap();
    let server = PingServer::start(db).await;
    let path = url(check.code, "");
    for body in [
        "all DONE",
        "job STARTED",
        "an ERROR occurred",
        // Failure wins over success.
        "SUCCESS, mostly; one FAIL",
        // Case-sensitive.
        "success",
    ] {
        assert_ok(&post(&server, &path, body).await);
    }
    assert_eq!(
        kinds_of(&client, check.id).await,
        kinds(&[None, Some("start"), Some("fail"), Some("fail"), Some("ign")])
    );
    assert_eq!(check_row(&client, check.id).await.status, "down");
}

async fn keyword_filters_replace_url_actions(db: &TestDb) {
    let client = db.client().await;
    let check = insert_check(&client, filtering("SUCCESS", "", ""))
        .await
        .unwrap();
    let server = PingServer::start(db).await;
    for suffix in ["/fail", "/start", "/log", "/1"] {
        assert_ok(&post(&server, &url(check.code, suffix), "SUCCESS").await);
    }
    assert_eq!(kinds_of(&client, check.id).await, kinds(&[None; 4]));
    let last = pings(&client, check.id).await.pop().unwrap();
    assert_eq!(last.exitstatus, Some(1));
    assert_eq!(check_row(&client, check.id).await.status, "up");
}

async fn keyword_miss_is_ignored_or_fails(db: &TestDb) {
    let client = db.client().await;
    let ignoring = insert_check(&client, filtering("SUCCESS", "", ""))
        .await
        .unwrap();
    let failing = insert_check(
        &client,
        CheckSpec {
            filter_default_fail: true,
            ..filtering("SUCCESS", "", "")
        },
    )
    .await
    .unwrap();
    let server = PingServer::start(db).await;
    for check in [&ignoring, &failing] {
        assert_ok(&post(&server, &url(check.code, ""), "nothing to see").await);
    }
    assert_eq!(kinds_of(&client, ignoring.id).await, kinds(&[Some("ign")]));
    let row = check_row(&client, ignoring.id).await;
    assert_eq!((row.status.as_str(), row.last_ping), ("new", None));
    assert_eq!(kinds_of(&client, failing.id).await, kinds(&[Some("fail")]));
    assert_eq!(check_row(&client, failing.id).await.status, "down");
}

async fn keyword_filters_match_invalid_utf8_lossily(db: &TestDb) {
    let client = db.client().await;
    let check = insert_check(&client, filtering("OK", "abcd", ""))
        .await
        .unwrap();
    let server = PingServer::start_with(db, &[("PING_BODY_LIMIT", "5")]).await;
    let path = url(check.code, "");
    // Healthchecks answers 500 for both (strict decoding); we match what decodes.
    let reply = post(&server, &path, &b"\xe9OK\xff"[..]).await;
    assert_success(&reply, 200, "OK", Some("5"));
    // "abcdé" cut to 5 bytes splits the "é".
    let reply = post(&server, &path, "abcdé").await;
    assert_success(&reply, 200, "OK", Some("5"));
    let rows = pings(&client, check.id).await;
    assert_eq!(rows[0].kind, None);
    assert_eq!(rows[0].body.as_deref(), Some(&b"\xe9OK\xff"[..]));
    assert_eq!(rows[1].kind.as_deref(), Some("fail"));
    assert_eq!(rows[1].body.as_deref(), Some(&b"abcd\xc3"[..]));
}

async fn post_only_checks_ignore_other_methods(db: &TestDb) {
    let client = db.client().await;
    let check = insert_check(
        &client,
        CheckSpec {
            methods: "POST".to_owned(),
            ..CheckSpec::default()
        },
    )
    .await
    .unwrap();
    let server = PingServer::start(db).await;
    for method in ["GET", "HEAD", "PUT"] {
        let reply = send(
            &server,
            method,
            &url(check.code, "/fail"),
            &[],
            Bytes::new(),
        )
        .await;
        assert_eq!(reply.status, 200, "{method}");
    }
    let row = check_row(&client, check.id).await;
    assert_eq!((row.status.as_str(), row.last_ping), ("new", None));
    assert_ok(&post(&server, &url(check.code, ""), "").await);
    assert_eq!(
        kinds_of(&client, check.id).await,
        kinds(&[Some("ign"), Some("ign"), Some("ign"), None])
    );
    assert_eq!(check_row(&client, check.id).await.status, "up");
}

async fn methods_and_manual_resume_beat_keywords(db: &TestDb) {
    let client = db.client().await;
    let post_only = insert_check(
        &client,
        CheckSpec {
            methods: "POST".to_owned(),
            filter_default_fail: true,
            ..filtering("SUCCESS", "", "")
        },
    )
    .await
    .unwrap();
    let paused = insert_check(
        &client,
        CheckSpec {
            status: "paused",
            manual_resume: true,
            filter_default_fail: true,
            ..filtering("SUCCESS", "FAIL", "")
        },
    )
    .await
    .unwrap();
    let server = PingServer::start(db).await;
    let reply = send(&server, "PUT", &url(post_only.code, ""), &[], "SUCCESS").await;
    assert_ok(&reply);
    for body in ["SUCCESS", "FAIL", "other"] {
        assert_ok(&post(&server, &url(paused.code, ""), body).await);
    }
    assert_eq!(kinds_of(&client, post_only.id).await, kinds(&[Some("ign")]));
    assert_eq!(kinds_of(&client, paused.id).await, kinds(&[Some("ign"); 3]));
    assert_eq!(check_row(&client, paused.id).await.status, "paused");
}

async fn email_filters_are_ignored_for_http(db: &TestDb) {
    let client = db.client().await;
    let check = insert_check(
        &client,
        CheckSpec {
            filter_subject: true,
            filter_body: true,
            success_kw: "SUCCESS".to_owned(),
            failure_kw: "FAIL".to_owned(),
            ..CheckSpec::default()
        },
    )
    .await
    .unwrap();
    let server = PingServer::start(db).await;
    assert_ok(&post(&server, &url(check.code, ""), "FAIL").await);
    assert_ok(&post(&server, &url(check.code, "/fail"), "SUCCESS").await);
    assert_eq!(
        kinds_of(&client, check.id).await,
        kinds(&[None, Some("fail")])
    );
}

// ---------------------------------------------------------------------------------------------
// §1.9: slug pings

/// A project with a check per slug.
async fn project_with_slugs(client: &Client, slugs: &[&str]) -> (Project, Vec<Check>) {
    let project = insert_owned_project(client).await.unwrap();
    let mut checks = Vec::new();
    for slug in slugs {
        let spec = CheckSpec {
            project_id: Some(project.id),
            name: (*slug).to_owned(),
            slug: (*slug).to_owned(),
            ..CheckSpec::default()
        };
        checks.push(insert_check(client, spec).await.unwrap());
    }
    (project, checks)
}

async fn slug_pings_work(db: &TestDb) {
    let client = db.client().await;
    let (project, checks) = project_with_slugs(&client, &["backup", "db-dump_2"]).await;
    // The same slug in another project is another check.
    let (_, others) = project_with_slugs(&client, &["backup"]).await;
    let server = PingServer::start(db).await;
    let key = &project.ping_key;
    assert_ok(&get(&server, &format!("/ping/{key}/backup")).await);
    // The path is percent-decoded before routing, as in Django.
    assert_ok(&post(&server, &format!("/ping/{key}/db%2Ddump_2"), "hi").await);
    let reply = send(
        &server,
        "HEAD",
        &format!("/ping/{key}/backup"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.status, 200);
    let methods: Vec<String> = pings(&client, checks[0].id)
        .await
        .into_iter()
        .map(|p| p.method)
        .collect();
    assert_eq!(methods, ["GET", "HEAD"]);
    let ping = only_ping(&client, checks[1].id).await;
    assert_eq!(ping.body.as_deref(), Some(&b"hi"[..]));
    assert!(pings(&client, others[0].id).await.is_empty());
    assert_eq!(check_row(&client, checks[0].id).await.status, "up");
}

async fn slug_actions(db: &TestDb) {
    let client = db.client().await;
    let (project, checks) = project_with_slugs(&client, &["job"]).await;
    let server = PingServer::start(db).await;
    let key = &project.ping_key;
    let rid = Uuid::new_v4();
    for suffix in [
        format!("/start?rid={rid}"),
        format!("?rid={rid}"),
        "/fail".to_owned(),
        "/0".to_owned(),
        "/123".to_owned(),
        "/log".to_owned(),
    ] {
        assert_ok(&get(&server, &format!("/ping/{key}/job{suffix}")).await);
    }
    let rows: Vec<(Option<String>, Option<i16>)> = pings(&client, checks[0].id)
        .await
        .into_iter()
        .map(|p| (p.kind, p.exitstatus))
        .collect();
    let kind = |k: &str| Some(k.to_owned());
    assert_eq!(
        rows,
        [
            (kind("start"), None),
            (None, None),
            (kind("fail"), None),
            (None, Some(0)),
            (kind("fail"), Some(123)),
            (kind("log"), None),
        ]
    );
    let row = check_row(&client, checks[0].id).await;
    assert_eq!(row.last_start_rid, Some(rid));
    assert_eq!(row.status, "down");
    for (suffix, text) in [
        ("/256", "invalid url format"),
        ("?rid=nope", "invalid uuid format"),
    ] {
        let reply = get(&server, &format!("/ping/{key}/job{suffix}")).await;
        assert_rejected(&reply, 400, text);
        // These come from the never_cache ping view.
        assert_eq!(
            reply.header("cache-control").as_deref(),
            Some(CACHE_CONTROL)
        );
    }
}

async fn ambiguous_slug_is_409(db: &TestDb) {
    let client = db.client().await;
    let (project, checks) = project_with_slugs(&client, &["dup", "dup"]).await;
    let server = PingServer::start(db).await;
    for suffix in ["", "/fail", "?create=1"] {
        let reply = get(&server, &format!("/ping/{}/dup{suffix}", project.ping_key)).await;
        assert_rejected(&reply, 409, "ambiguous slug");
        assert_eq!(reply.header("cache-control"), None);
    }
    for check in &checks {
        assert!(pings(&client, check.id).await.is_empty());
    }
}

async fn unknown_slug_or_key_is_404(db: &TestDb) {
    let client = db.client().await;
    let (project, checks) = project_with_slugs(&client, &["backup"]).await;
    let server = PingServer::start(db).await;
    for path in [
        format!("/ping/{}/other", project.ping_key),
        "/ping/wrong-key/backup".to_owned(),
        format!("/ping/{}/backup", "x".repeat(22)),
        // A uuid followed by an unknown word falls through to the slug route.
        url(checks[0].code, "/other"),
    ] {
        let reply = get(&server, &path).await;
        assert_rejected(&reply, 404, "not found");
        // The slug view is not never_cache.
        assert_eq!(reply.header("cache-control"), None, "{path}");
    }
    assert_eq!(count(&client, "SELECT count(*) FROM api_ping").await, 0);
    assert_eq!(count(&client, "SELECT count(*) FROM api_check").await, 1);
}

async fn uppercase_slug_is_400(db: &TestDb) {
    let client = db.client().await;
    let (project, _) = project_with_slugs(&client, &["backup"]).await;
    let server = PingServer::start(db).await;
    for path in [
        format!("/ping/{}/Backup", project.ping_key),
        format!("/ping/{}/BACKUP/fail?create=1", project.ping_key),
        // Checked before the lookup: the key does not matter.
        "/ping/no-such-key/Backup".to_owned(),
    ] {
        let reply = get(&server, &path).await;
        assert_rejected(&reply, 400, "invalid url format");
        // Rejected by the slug view before the never_cache ping view runs.
        assert_eq!(reply.header("cache-control"), None, "{path}");
    }
    assert_eq!(count(&client, "SELECT count(*) FROM api_ping").await, 0);
    assert_eq!(count(&client, "SELECT count(*) FROM api_check").await, 1);
}

async fn create_provisions_a_check(db: &TestDb) {
    let client = db.client().await;
    let project = insert_owned_project(&client).await.unwrap();
    let mut channels = Vec::new();
    for _ in 0..2 {
        let spec = ChannelSpec {
            project_id: Some(project.id),
            ..ChannelSpec::default()
        };
        channels.push(insert_channel(&client, spec).await.unwrap().id);
    }
    // A channel of another project is not assigned.
    insert_channel(&client, ChannelSpec::default())
        .await
        .unwrap();
    let server = PingServer::start(db).await;
    let path = format!("/ping/{}/foo?create=1", project.ping_key);
    assert_success(&get(&server, &path).await, 201, "Created", Some("100000"));
    let check_id: i32 = client
        .query_one(
            "SELECT id FROM api_check WHERE project_id = $1",
            &[&project.id],
        )
        .await
        .unwrap()
        .get(0);
    let row = check_row(&client, check_id).await;
    assert_eq!((row.name.as_str(), row.slug.as_str()), ("foo", "foo"));
    assert_eq!((row.status.as_str(), row.n_pings), ("up", 1));
    assert_eq!(only_ping(&client, check_id).await.n, Some(1));
    let assigned: Vec<i32> = client
        .query(
            "SELECT channel_id FROM api_channel_checks WHERE check_id = $1 ORDER BY channel_id",
            &[&check_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(assigned, channels);
    // Once it exists, ?create=1 is an ordinary ping.
    assert_ok(&get(&server, &path).await);
    let created = count(
        &client,
        &format!(
            "SELECT count(*) FROM api_check WHERE project_id = {}",
            project.id
        ),
    )
    .await;
    assert_eq!(created, 1);
    assert_eq!(check_row(&client, check_id).await.n_pings, 2);
}

async fn auto_provisioning_is_off_by_default(db: &TestDb) {
    let client = db.client().await;
    let project = insert_owned_project(&client).await.unwrap();
    let server = PingServer::start(db).await;
    let key = &project.ping_key;
    for query in ["", "?create=0", "?create=true", "?create=1&create=0"] {
        let reply = get(&server, &format!("/ping/{key}/foo{query}")).await;
        assert_rejected(&reply, 404, "not found");
    }
    assert_eq!(count(&client, "SELECT count(*) FROM api_check").await, 0);
}

async fn create_with_unknown_ping_key_is_404(db: &TestDb) {
    let client = db.client().await;
    insert_owned_project(&client).await.unwrap();
    let server = PingServer::start(db).await;
    let reply = get(&server, &format!("/ping/{}/foo?create=1", "k".repeat(22))).await;
    assert_rejected(&reply, 404, "not found");
    assert_eq!(count(&client, "SELECT count(*) FROM api_check").await, 0);
}

async fn create_then_bad_exit_status_or_rid_is_400(db: &TestDb) {
    let client = db.client().await;
    let project = insert_owned_project(&client).await.unwrap();
    let server = PingServer::start(db).await;
    let key = &project.ping_key;
    // As in Healthchecks, the check is created first and the ping view then rejects the URL.
    let reply = get(&server, &format!("/ping/{key}/a/256?create=1")).await;
    assert_rejected(&reply, 400, "invalid url format");
    let reply = get(&server, &format!("/ping/{key}/b?create=1&rid=x")).await;
    assert_rejected(&reply, 400, "invalid uuid format");
    let slugs: Vec<String> = client
        .query("SELECT slug FROM api_check ORDER BY slug", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(slugs, ["a", "b"]);
    assert_eq!(count(&client, "SELECT count(*) FROM api_ping").await, 0);
}

async fn create_without_a_profile_uses_the_default_limit(db: &TestDb) {
    let client = db.client().await;
    // Django creates a missing profile with the default check limit.
    let user = hc_tests::factories::insert_user(&client).await.unwrap();
    let project = insert_project(&client, user.id).await.unwrap();
    let server = PingServer::start(db).await;
    let reply = get(&server, &format!("/ping/{}/new?create=1", project.ping_key)).await;
    assert_success(&reply, 201, "Created", Some("100000"));
    assert_eq!(count(&client, "SELECT count(*) FROM api_ping").await, 1);
}

async fn create_respects_twice_the_check_limit(db: &TestDb) {
    let client = db.client().await;
    let (project, _) = project_with_slugs(&client, &["one"]).await;
    client
        .execute(
            "UPDATE accounts_profile SET check_limit = 1 WHERE user_id = $1",
            &[&project.owner_id],
        )
        .await
        .unwrap();
    let server = PingServer::start(db).await;
    let key = &project.ping_key;
    // One check of a limit of 1: a second is allowed (the limit is doubled here).
    let reply = get(&server, &format!("/ping/{key}/two?create=1")).await;
    assert_success(&reply, 201, "Created", Some("100000"));
    let reply = get(&server, &format!("/ping/{key}/three?create=1")).await;
    assert_rejected(&reply, 404, "not found");
    assert_eq!(count(&client, "SELECT count(*) FROM api_check").await, 2);

    // Checks in all of the owner's projects count, and only theirs.
    let owner = project.owner_id;
    let second = insert_project(&client, owner).await.unwrap();
    client
        .execute(
            "UPDATE accounts_profile SET check_limit = 2 WHERE user_id = $1",
            &[&owner],
        )
        .await
        .unwrap();
    let (_, _) = project_with_slugs(&client, &["someone-elses"]).await;
    let in_second = CheckSpec {
        project_id: Some(second.id),
        ..CheckSpec::default()
    };
    insert_check(&client, in_second).await.unwrap();
    // The owner has 3 checks (another user's check does not count): a fourth is allowed.
    let reply = get(&server, &format!("/ping/{}/four?create=1", second.ping_key)).await;
    assert_success(&reply, 201, "Created", Some("100000"));
    // Now 4 (only 2 of them in this project): no fifth.
    let reply = get(&server, &format!("/ping/{}/five?create=1", second.ping_key)).await;
    assert_rejected(&reply, 404, "not found");
    assert_eq!(count(&client, "SELECT count(*) FROM api_check").await, 5);
}

async fn concurrent_creates_make_one_check(db: &TestDb) {
    let client = db.client().await;
    let project = insert_owned_project(&client).await.unwrap();
    let channel = insert_channel(
        &client,
        ChannelSpec {
            project_id: Some(project.id),
            ..ChannelSpec::default()
        },
    )
    .await
    .unwrap();
    let server = PingServer::start(db).await;
    let path = format!("/ping/{}/race?create=1", project.ping_key);
    let replies = concurrently(server.addr, &path, 20).await;
    let mut statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    statuses.sort_unstable();
    // Healthchecks can create duplicates here (then 409 forever); we create exactly one.
    let mut expected = vec![200; 19];
    expected.push(201);
    assert_eq!(statuses, expected);
    let ids: Vec<i32> = client
        .query("SELECT id FROM api_check WHERE slug = 'race'", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(check_row(&client, ids[0]).await.n_pings, 20);
    let assigned = count(
        &client,
        &format!(
            "SELECT count(*) FROM api_channel_checks WHERE check_id = {} AND channel_id = {}",
            ids[0], channel.id
        ),
    )
    .await;
    assert_eq!(assigned, 1);
}
