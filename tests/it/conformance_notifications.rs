//! Differential test of every notification against the Healthchecks app itself: the same
//! generated database is given to Healthchecks' alert loop (`../shared/oracle/`, see
//! `hc_tests::healthchecks`) and to `hc-sendalerts --once`, and the HTTP requests, the mails and
//! the rows they leave must be the same.
//!
//! Scenarios come from a seeded generator (seed printed; `HC_NOTIFY_SEED` picks another): projects
//! with checks of every kind and status, names, tags, descriptions and bodies with HTML, Markdown,
//! Unicode and control characters, long bodies, email pings, registered and unregistered
//! recipients, other down checks, and one channel of every supported kind.
//! Values made at send time are normalised before comparing ([`normalise`] lists them); the
//! deliberate differences are in ARCHITECTURE.md ("Notifications as Healthchecks sends them").

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use chrono::{DateTime, TimeDelta, Utc};
use hc_core::config::{Env, Vars};
use hc_tests::factories::{
    ChannelSpec, CheckSpec, PingSpec, insert_channel, insert_check, insert_flip, insert_member,
    insert_ping, insert_profile, insert_project, insert_user,
};
use hc_tests::healthchecks;
use hc_tests::postgres::TestDb;
use hc_tests::recorder::{RecordedRequest, Recorder};
use hc_tests::smtp::SmtpSink;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio_postgres::Client;

use crate::sendalerts_loop::run_once;

/// The comparison keys' first words: channel kinds (and their group members' paths) and the
/// database rows.
const COMPARED: &[&str] = &[
    "email",
    "webhook",
    "webhook-up",
    "group-webhook",
    "slack",
    "group-slack",
    "mattermost",
    "rocketchat",
    "discord",
    "msteamsw",
    "googlechat",
    "ntfy",
    "gotify",
    "po",
    "telegram",
    "matrix",
    "database",
];

/// Projects per generated world.
const PROJECTS: usize = 14;

/// The settings both implementations get (besides the database, the SMTP sink and endpoints).
const SETTINGS: &[(&str, &str)] = &[
    ("SECRET_KEY", "conformance-secret"),
    ("SITE_ROOT", "http://hc.example.org"),
    ("SITE_NAME", "Mychecks"),
    ("DEFAULT_FROM_EMAIL", "alerts@example.org"),
    ("EMAIL_MAIL_FROM_TMPL", "bounces+%s@example.org"),
    ("INTEGRATIONS_ALLOW_PRIVATE_IPS", "True"),
    ("TELEGRAM_TOKEN", "bot-token"),
    ("PUSHOVER_API_TOKEN", "po-token"),
    ("MATRIX_ACCESS_TOKEN", "mx-token"),
    ("PING_EMAIL_DOMAIN", "hc.example.org"),
];

/// Check names: plain, HTML, Markdown, Unicode, control characters, long.
const NAMES: &[&str] = &[
    "backup",
    "nightly <db> & \"co\"",
    "*bold* _under_ `code` [link](http://x)",
    "Ünïcödé ✓ 日本語 🎉",
    "tab\there",
    "bell\u{7}char",
    "",
    "a very long check name that goes on and on to see how every channel kind copes with it",
    "<script>alert('x')</script>",
];

const TAGS: &[&str] = &["", "prod", "prod db-1 <eu>", "ünï & co"];

const DESCRIPTIONS: &[&str] = &[
    "",
    "Runs **nightly** from cron.\nSee <https://example.org/runbook>.",
    "<b>html</b> & 'quotes' \"double\"",
    "Ünïcödé line\n\nsecond paragraph",
];

/// Project names and recipients' time zones.
const PROJECT_NAMES: &[&str] = &["Project", "Ops & <Infra>", "Ünïcödé"];
const ZONES: &[&str] = &["UTC", "Europe/Riga", "America/New_York", "Asia/Kolkata"];

/// How long ago something happened: whole minutes and a second, so that the time from the
/// generator to the renders (a few seconds; both implementations run at once) has 59 seconds
/// before any rounded phrase ("59 minutes ago", "1 day, 2 hours ago") changes.
fn ago(now: DateTime<Utc>, minutes: i64) -> DateTime<Utc> {
    now - TimeDelta::minutes(minutes) - TimeDelta::seconds(1)
}

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items.choose(rng).copied().unwrap_or("")
}

/// An age in minutes: a few minutes to several days, with the boundaries of every unit.
fn age(rng: &mut StdRng) -> i64 {
    let choices = [
        3,
        59,
        61,
        90,
        120,
        179,
        1439,
        1441,
        1530,
        2 * 1440 + 3 * 60,
        9 * 1440,
    ];
    choices[rng.gen_range(0..choices.len())]
}

fn body(rng: &mut StdRng) -> Option<Vec<u8>> {
    match rng.gen_range(0..9) {
        0 => None,
        1 => Some(b"ok".to_vec()),
        2 => Some(b"<h1>done</h1>\n& more <b>bold</b> `code` *stars*".to_vec()),
        3 => Some("Ünïcödé ✓ 日本語\r\nsecond line\ttab".as_bytes().to_vec()),
        4 => Some(vec![b'x', 0xff, 0xfe, b'y', b'\n', 0xc3]),
        5 => Some(b"with\x00nul and \x1b[31mescape\x1b[0m".to_vec()),
        6 => Some(
            (0..400)
                .map(|i| format!("line {i} of a long log\n"))
                .collect::<String>()
                .into_bytes(),
        ),
        7 => Some(b"a".repeat(1500)),
        _ => Some(b"   \n".to_vec()),
    }
}

/// An email ping's stored message.
fn email_message(rng: &mut StdRng) -> Vec<u8> {
    let subject = pick(
        rng,
        &[
            "Backup finished",
            "=?utf-8?q?R=C3=A9sultat_=E2=9C=93?=",
            "Cron <root@nas> /usr/bin/backup",
        ],
    );
    format!(
        "From: Cron Daemon <root@nas.example.net>\r\nTo: check@hc.example.org\r\n\
         Subject: {subject}\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nbackup done: 1.2 GB\r\n"
    )
    .into_bytes()
}

/// What the generator made: the recorder paths and mail recipients are the comparison's keys.
struct World {
    description: Vec<String>,
}

/// Runs one statement of the generator.
async fn execute(
    client: &Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) {
    client.execute(sql, params).await.unwrap();
}

/// One generated project: its owner (a registered user), maybe a member, checks, pings, flips and
/// a channel of every kind the toolkit supports (some of them groups of the others).
async fn add_project(
    client: &Client,
    rng: &mut StdRng,
    recorder: &Recorder,
    index: usize,
    now: DateTime<Utc>,
    world: &mut World,
) {
    let owner = insert_user(client).await.unwrap();
    insert_profile(client, owner.id, 100).await.unwrap();
    let zone = pick(rng, ZONES);
    execute(
        client,
        "UPDATE accounts_profile SET tz = $1 WHERE user_id = $2",
        &[&zone, &owner.id],
    )
    .await;
    let project = insert_project(client, owner.id).await.unwrap();
    let project_name = pick(rng, PROJECT_NAMES);
    execute(
        client,
        "UPDATE accounts_project SET name = $1 WHERE id = $2",
        &[&project_name, &project.id],
    )
    .await;
    let member = if rng.gen_bool(0.4) {
        let member = insert_user(client).await.unwrap();
        insert_profile(client, member.id, 100).await.unwrap();
        insert_member(client, member.id, project.id).await.unwrap();
        Some(member)
    } else {
        None
    };

    // Up to three checks that flip (rate limits allow six messages a minute per channel), and
    // some that are down already or quietly up.
    let mut checks = Vec::new();
    // Names differ within a project: Healthchecks lists other down checks of the same name in
    // whatever order the database returns them.
    let mut names = NAMES.to_vec();
    names.shuffle(rng);
    let flipping = rng.gen_range(1..=3);
    let quiet = rng.gen_range(usize::from(index == 0)..=3);
    for (c, name) in names.iter().copied().enumerate().take(flipping + quiet) {
        let kind = pick(rng, &["simple", "simple", "cron", "oncalendar"]);
        let (schedule, tz) = match kind {
            "cron" => ("*/5 * * * *", pick(rng, ZONES)),
            "oncalendar" => ("Mon..Fri 09:00", pick(rng, ZONES)),
            _ => ("* * * * *", "UTC"),
        };
        let last_ping = ago(now, age(rng));
        let mut spec = CheckSpec {
            project_id: Some(project.id),
            name: name.to_owned(),
            slug: if rng.gen_bool(0.5) {
                format!("slug-{index}-{c}")
            } else {
                String::new()
            },
            tags: pick(rng, TAGS).to_owned(),
            kind,
            schedule: schedule.to_owned(),
            tz: tz.to_owned(),
            created: Some(ago(now, 20 * 1440)),
            last_ping: Some(last_ping),
            n_pings: 2,
            timeout: std::time::Duration::from_secs(3600),
            grace: std::time::Duration::from_secs(1800),
            methods: if rng.gen_bool(0.2) {
                "POST".into()
            } else {
                String::new()
            },
            manual_resume: rng.gen_bool(0.2),
            last_duration: rng
                .gen_bool(0.3)
                .then(|| std::time::Duration::from_secs(rng.gen_range(1..100_000))),
            filter_subject: rng.gen_bool(0.2),
            filter_body: rng.gen_bool(0.2),
            filter_http_body: rng.gen_bool(0.2),
            filter_default_fail: rng.gen_bool(0.2),
            success_kw: if rng.gen_bool(0.2) {
                "ok,done".into()
            } else {
                String::new()
            },
            failure_kw: if rng.gen_bool(0.2) {
                "FAIL".into()
            } else {
                String::new()
            },
            start_kw: if rng.gen_bool(0.2) {
                "begin".into()
            } else {
                String::new()
            },
            ..CheckSpec::default()
        };
        // The first projects pin what every world must reach (asserted at the end): an up flip
        // with another check down, an exit status, a check never pinged, an email ping.
        let pinned = c == 0 && index < 4;
        let story = if pinned {
            [2, 1, 1, 0][index]
        } else if index == 0 && c == flipping {
            4
        } else if c < flipping {
            // 0: goes down now (overdue); 1: down with an unprocessed flip (a fail ping);
            // 2: back up after being down; 3: started, then down; 6: new to up and 7: paused to
            // up, which Healthchecks does not notify.
            *[0, 1, 2, 3, 0, 1, 2, 3, 6, 7].choose(rng).unwrap()
        } else {
            // Quiet: down without a flip, up, or paused.
            *[4, 4, 5, 8].choose(rng).unwrap()
        };
        match story {
            0 => {
                // Simple checks go down at last ping + timeout + grace, in the past.
                spec.status = "up";
                spec.timeout = std::time::Duration::from_secs(60);
                spec.grace = std::time::Duration::from_secs(60);
                spec.kind = "simple";
                spec.alert_after = Some(last_ping + TimeDelta::minutes(2));
            }
            1 | 3 => {
                spec.status = "down";
                if story == 3 {
                    spec.last_start = Some(ago(now, 2));
                }
            }
            4 => spec.status = "down",
            8 => spec.status = "paused",
            _ => spec.status = "up",
        }
        // Down checks may have no ping at all ("Last Ping: Never").
        let never_pinged = matches!(story, 1 | 3 | 4) && rng.gen_bool(0.2);
        let pings = if (pinned && index == 2) || (!pinned && never_pinged) {
            0
        } else {
            2
        };
        spec.n_pings = pings;
        if pings == 0 {
            spec.last_ping = None;
        }
        let desc = pick(rng, DESCRIPTIONS);
        let check = insert_check(client, spec.clone()).await.unwrap();
        execute(
            client,
            "UPDATE api_check SET \"desc\" = $1 WHERE id = $2",
            &[&desc, &check.id],
        )
        .await;
        // Two pings: an earlier success and the last one, which the alerts show.
        let email_ping = (pinned && index == 3) || (pings > 0 && rng.gen_bool(0.25));
        if pings > 0 {
            insert_ping(
                client,
                PingSpec {
                    check_id: check.id,
                    n: 1,
                    created: last_ping - TimeDelta::hours(25),
                    body: Some(b"earlier".to_vec()),
                    ..PingSpec::default()
                },
            )
            .await
            .unwrap();
            insert_ping(
                client,
                PingSpec {
                    check_id: check.id,
                    n: 2,
                    created: last_ping,
                    kind: match story {
                        1 => Some("fail"),
                        _ => *[
                            None,
                            None,
                            Some("log"),
                            Some("fail"),
                            Some("start"),
                            Some("ign"),
                        ]
                        .choose(rng)
                        .unwrap(),
                    },
                    scheme: if email_ping {
                        "email"
                    } else {
                        pick(rng, &["http", "https"])
                    },
                    body: if email_ping {
                        Some(email_message(rng))
                    } else {
                        body(rng)
                    },
                    ..PingSpec::default()
                },
            )
            .await
            .unwrap();
            if (pinned && index == 1) || rng.gen_bool(0.2) {
                // An exit status: "Exit status 3" for a failure, nothing shown for the others.
                execute(
                    client,
                    "UPDATE api_ping SET exitstatus = $1 WHERE owner_id = $2 AND n = 2",
                    &[&if pinned { 3 } else { rng.gen_range(0i16..4) }, &check.id],
                )
                .await;
            }
        }
        match story {
            1 => {
                insert_flip(client, check.id, last_ping, ("up", "down"), "fail", None)
                    .await
                    .unwrap();
            }
            2 => {
                let went_down = last_ping - TimeDelta::minutes(age(rng));
                insert_flip(
                    client,
                    check.id,
                    went_down,
                    ("up", "down"),
                    "timeout",
                    Some(went_down),
                )
                .await
                .unwrap();
                insert_flip(client, check.id, last_ping, ("down", "up"), "", None)
                    .await
                    .unwrap();
            }
            3 => {
                insert_flip(
                    client,
                    check.id,
                    ago(now, 1),
                    ("up", "down"),
                    "timeout",
                    None,
                )
                .await
                .unwrap();
            }
            6 | 7 => {
                let old = if story == 6 { "new" } else { "paused" };
                insert_flip(client, check.id, last_ping, (old, "up"), "", None)
                    .await
                    .unwrap();
            }
            _ => {}
        }
        writeln!(
            world.description[index],
            "  check {} {name:?} kind={kind} story={story} email_ping={email_ping}",
            check.id
        )
        .unwrap();
        checks.push(check.id);
    }

    if index % 5 == 1 {
        // More than ten other down checks: the templates give their number instead of a list.
        for n in 0..11 {
            insert_check(
                client,
                CheckSpec {
                    project_id: Some(project.id),
                    name: format!("extra {n}"),
                    status: "down",
                    last_ping: Some(ago(now, 600 + n)),
                    n_pings: 1,
                    ..CheckSpec::default()
                },
            )
            .await
            .unwrap();
        }
    }

    // One channel of every kind, on every check, each on its own recorder path.
    let path = |kind: &str| recorder.url(&format!("/p{index}/{kind}"));
    let registered = match &member {
        Some(member) if rng.gen_bool(0.5) => member.email.clone(),
        _ if rng.gen_bool(0.5) => owner.email.clone(),
        _ => format!("ops-{index}@example.net"),
    };
    let webhook_method = pick(rng, &["GET", "POST", "PUT"]);
    let kinds: Vec<(&'static str, String)> = vec![
        (
            "email",
            json!({"value": registered, "up": rng.gen_bool(0.8), "down": true}).to_string(),
        ),
        (
            "webhook",
            json!({
                "method_down": webhook_method,
                "url_down": format!("{}?code=$CODE&status=$STATUS&name=$NAME&tags=$TAGS&json=$JSON&slug=$SLUG&now=$NOW&t=$TAG1,$TAG2,$TAG3&nj=$NAME_JSON&x=$EXITSTATUS&b=$BODY", path("webhook")),
                "body_down": if webhook_method == "GET" { String::new() } else { "$NAME is $STATUS ($TAG1, $TAGS) at $NOW: $BODY | $JSON | $NAME_JSON $BODY_JSON $SLUG $TAG2 $TAG3 $EXITSTATUS $$NAME $CODE".to_owned() },
                "headers_down": {"X-Check": "$NAME", "X-Json": "$JSON", "X-More": "$NAME_JSON $NOW $TAG1 $TAG2 $SLUG $STATUS $EXITSTATUS"},
                "method_up": "POST",
                "url_up": path("webhook-up"),
                "body_up": "$JSON",
                "headers_up": {"Content-Type": "application/json"},
            })
            .to_string(),
        ),
        ("slack", path("slack")),
        ("mattermost", path("mattermost")),
        ("rocketchat", path("rocketchat")),
        ("discord", json!({"webhook": {"url": path("discord")}}).to_string()),
        ("msteamsw", path("msteamsw")),
        ("googlechat", path("googlechat")),
        (
            "ntfy",
            json!({"topic": format!("t{index}"), "url": recorder.url(&format!("/p{index}/ntfy")), "priority": 4, "priority_up": 2, "token": if rng.gen_bool(0.5) { "tk_abc" } else { "" }})
                .to_string(),
        ),
        (
            "gotify",
            json!({"url": recorder.url(&format!("/p{index}/gotify")), "token": format!("g{index}")}).to_string(),
        ),
        ("po", format!("user{index}|{}|{}", rng.gen_range(-1..=1), rng.gen_range(-1..=0))),
        (
            "telegram",
            json!({"id": 1000 + index, "type": "group", "name": "Ops", "thread_id": if rng.gen_bool(0.5) { Some(7) } else { None }}).to_string(),
        ),
        ("matrix", format!("!room{index}:example.org")),
    ];
    let mut codes = Vec::new();
    for (kind, value) in kinds {
        let channel = insert_channel(
            client,
            ChannelSpec {
                project_id: Some(project.id),
                kind,
                value,
                name: format!("{kind} channel"),
                checks: checks.clone(),
                ..ChannelSpec::default()
            },
        )
        .await
        .unwrap();
        codes.push(channel.code.to_string());
    }
    if rng.gen_bool(0.3) {
        // A group of two channels that are not on the checks themselves (so nothing is sent
        // twice to one rate-limited channel).
        let mut group_members = Vec::new();
        for kind in ["slack", "webhook"] {
            let kind: &'static str = kind;
            let value = if kind == "slack" {
                path("group-slack")
            } else {
                json!({"method_down": "POST", "url_down": path("group-webhook"), "body_down": "$NAME $STATUS", "headers_down": {},
                       "method_up": "POST", "url_up": path("group-webhook"), "body_up": "$NAME $STATUS", "headers_up": {}})
                .to_string()
            };
            let channel = insert_channel(
                client,
                ChannelSpec {
                    project_id: Some(project.id),
                    kind,
                    value,
                    ..ChannelSpec::default()
                },
            )
            .await
            .unwrap();
            group_members.push(channel.code.to_string());
        }
        insert_channel(
            client,
            ChannelSpec {
                project_id: Some(project.id),
                kind: "group",
                value: group_members.join(","),
                name: "group".into(),
                checks: checks.clone(),
                ..ChannelSpec::default()
            },
        )
        .await
        .unwrap();
    }
}

/// One outgoing item, normalised, keyed for comparison.
type Items = BTreeMap<String, Vec<String>>;

/// What one implementation did: requests by recorder path, mails by recipient, and rows.
#[derive(Debug, Default)]
struct Outcome {
    requests: Items,
    mails: Items,
    rows: Vec<String>,
}

/// Notification codes made at send time (uuid4 by Healthchecks, uuid8 by us), named by what they
/// stand for: `(code, label)`.
async fn notification_labels(client: &Client) -> Vec<(String, String)> {
    client
        .query(
            "SELECT n.code::text, n.owner_id, n.channel_id, n.check_status \
             FROM api_notification n",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| {
            let code: String = row.get(0);
            let owner: Option<i32> = row.get(1);
            let channel: i32 = row.get(2);
            let status: String = row.get(3);
            (
                code,
                format!("<notification of check {owner:?} on channel {channel} {status}>"),
            )
        })
        .collect()
}

/// The normalisations: values made at send time, the same in meaning on both sides.
/// * each implementation's recorder address → `<recorder>`;
/// * notification codes → what they stand for (check, channel, status), in either spelling;
/// * Matrix transaction ids (random in Healthchecks) → `<transaction id>`;
/// * JSON request bodies are compared as JSON values (the serialiser's spacing, escapes and
///   key order carry no meaning; `$JSON` inside a webhook's own template is compared as text),
///   and Matrix's `formatted_body` is HTML, compared after [`html_layout`] as mails are;
/// * `Content-Length` (the body is compared) and connection management headers are dropped;
/// * mail headers set by the transport or the sink: `Message-ID`, `Date`, `Received`, MIME
///   boundaries.
fn normalise(text: &str, labels: &[(String, String)]) -> String {
    let mut out = text.to_owned();
    for (code, label) in labels {
        out = out.replace(code, label);
        out = out.replace(&code.replace('-', ""), label);
    }
    out
}

fn request_text(r: &RecordedRequest) -> String {
    let path = match r.path.rsplit_once("/m.room.message/") {
        // Matrix transaction ids: random in Healthchecks, the notification code here (so a
        // retried delivery is not shown twice).
        Some((room, _)) => format!("{room}/m.room.message/<transaction id>"),
        None => r.path.clone(),
    };
    let mut text = format!("{} {path}\n", r.method);
    let mut headers: Vec<(String, String)> = r
        .headers
        .iter()
        .filter(|(name, _)| {
            !matches!(
                name.to_ascii_lowercase().as_str(),
                "connection" | "keep-alive" | "expect" | "accept-encoding" | "content-length"
            )
        })
        .map(|(name, value)| {
            (
                name.to_ascii_lowercase(),
                String::from_utf8_lossy(value).into_owned(),
            )
        })
        .collect();
    headers.sort();
    for (name, value) in headers {
        writeln!(text, "{name}: {value}").unwrap();
    }
    text.push('\n');
    let json = r
        .header("content-type")
        .is_some_and(|t| t.starts_with("application/json"));
    match serde_json::from_slice::<serde_json::Value>(&r.body) {
        Ok(mut value) if json => {
            // Matrix's HTML body: its layout whitespace as in mails.
            if let Some(html) = value.get_mut("formatted_body") {
                if let Some(text) = html.as_str() {
                    *html = serde_json::Value::String(html_layout(text));
                }
            }
            text.push_str(&serde_json::to_string_pretty(&value).unwrap());
        }
        _ => text.push_str(&String::from_utf8_lossy(&r.body)),
    }
    text
}

/// A delivered mail as compared: its header fields (decoded; those the transport or the sink
/// makes at send time left out, MIME boundaries too), then each part's type and decoded content,
/// HTML with [`html_layout`] normalised. The transfer encodings and header folding chosen by the
/// two mail libraries are not compared: a mail reader shows the same either way.
///
/// One deliberate difference (ARCHITECTURE.md): `List-Unsubscribe` is compared as decoded text.
/// Python's email package writes a header longer than a line with no place to fold as RFC 2047
/// encoded-words, so Healthchecks' one-click link arrives as `=?utf-8?q?=3Chttp…?=`, which is
/// not an RFC 2369 URL; we send the `<URL>` itself. Decoded, both read `<URL>`.
fn mail_text(raw: &[u8]) -> String {
    use mail_parser::{HeaderValue, MessageParser, MimeHeaders, PartType};
    let parsed = MessageParser::default().parse(raw).unwrap();
    let mut out = String::new();
    let render = |value: &HeaderValue<'_>| -> String {
        match value {
            HeaderValue::Text(text) => text.to_string(),
            HeaderValue::TextList(list) => list.join(", "),
            HeaderValue::Address(address) => address
                .iter()
                .map(|a| {
                    format!(
                        "{:?} <{}>",
                        a.name().unwrap_or(""),
                        a.address().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
            HeaderValue::ContentType(ct) => {
                let mut text = format!("{}/{}", ct.c_type, ct.c_subtype.as_deref().unwrap_or(""));
                for attribute in ct.attributes().unwrap_or_default() {
                    if attribute.name != "boundary" {
                        write!(text, "; {}={}", attribute.name, attribute.value).unwrap();
                    }
                }
                text
            }
            other => format!("{other:?}"),
        }
    };
    for header in parsed.headers() {
        let name = header.name();
        if matches!(
            name.to_ascii_lowercase().as_str(),
            "received" | "message-id" | "date" | "content-transfer-encoding" | "mime-version"
        ) {
            continue;
        }
        let value = if name.eq_ignore_ascii_case("list-unsubscribe") {
            // Decoded as unstructured text (a Subject), see above.
            let field = &raw[header.offset_start as usize..header.offset_end as usize];
            let probe = [b"Subject:", field, b"\r\n"].concat();
            let probe = MessageParser::default().parse(&probe).unwrap();
            probe.subject().unwrap_or_default().trim().to_owned()
        } else {
            render(header.value())
        };
        writeln!(out, "{name}: {}", signatures(&value)).unwrap();
    }
    for part in &parsed.parts {
        let ct = part
            .content_type()
            .map(|ct| format!("{}/{}", ct.c_type, ct.c_subtype.as_deref().unwrap_or("")))
            .unwrap_or_default();
        writeln!(out, "\n--- part {ct} {:?}", part.attachment_name()).unwrap();
        match &part.body {
            PartType::Text(text) => out.push_str(&signatures(text)),
            PartType::Html(html) => out.push_str(&signatures(&html_layout(html))),
            PartType::Binary(bytes) | PartType::InlineBinary(bytes) => {
                out.push_str(&String::from_utf8_lossy(bytes));
            }
            PartType::Message(message) => {
                out.push_str(&String::from_utf8_lossy(message.raw_message()))
            }
            PartType::Multipart(_) => {}
        }
    }
    out
}

/// HTML with its layout whitespace made uniform: runs of whitespace become one space and
/// whitespace between tags goes, except inside `<pre>`, where it is content.
fn html_layout(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while !rest.is_empty() {
        let (plain, pre) = match rest.find("<pre") {
            Some(start) => {
                let end = rest[start..]
                    .find("</pre>")
                    .map_or(rest.len(), |e| start + e + 6);
                (&rest[..start], &rest[start..end])
            }
            None => (rest, ""),
        };
        let collapsed = plain.split_whitespace().collect::<Vec<_>>().join(" ");
        out.push_str(&collapsed.replace("> ", ">").replace(" <", "<"));
        out.push_str(pre);
        rest = &rest[plain.len() + pre.len()..];
    }
    out
}

/// Django `TimestampSigner` values (`value:timestamp:signature`, in unsubscribe links) and
/// signed bounce ids (`…<notification>.<hex time>.<hex signature>@`) keep their value; the
/// timestamp and the signature covering it are made at send time.
fn signatures(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    let b62 = |c: u8| c.is_ascii_alphanumeric();
    let b64 = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
    while i < bytes.len() {
        if bytes[i] == b':' {
            let ts = bytes[i + 1..].iter().take_while(|c| b62(**c)).count();
            let after = i + 1 + ts;
            if (5..=7).contains(&ts) && bytes.get(after) == Some(&b':') {
                let sig = bytes[after + 1..].iter().take_while(|c| b64(**c)).count();
                if sig >= 27 {
                    out.push_str(":<time>:<signature>");
                    i = after + 1 + sig;
                    continue;
                }
            }
        }
        if bytes[i] == b'.' {
            let hex = |c: &u8| c.is_ascii_hexdigit();
            let ts = bytes[i + 1..].iter().take_while(|c| hex(c)).count();
            let after = i + 1 + ts;
            if ts == 8 && bytes.get(after) == Some(&b'.') {
                let sig = bytes[after + 1..].iter().take_while(|c| hex(c)).count();
                if sig == 16 && bytes.get(after + 1 + sig) == Some(&b'@') {
                    out.push_str(".<time>.<signature>");
                    i = after + 1 + sig;
                    continue;
                }
            }
        }
        let ch = text[i..].chars().next().unwrap();
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// The channel kind and destination a request went to: the comparison's key.
fn request_key(r: &RecordedRequest) -> String {
    let path = r.path.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.split('/').collect();
    let field = |name: &str| -> String {
        let value = serde_json::from_slice::<serde_json::Value>(&r.body)
            .ok()
            .and_then(|v| v.get(name).map(ToString::to_string));
        value.unwrap_or_else(|| form_value(&r.body, name).unwrap_or_default())
    };
    if path.ends_with("/sendMessage") {
        format!("telegram chat {}", field("chat_id"))
    } else if path == "/1/messages.json" {
        format!("po user {}", field("user"))
    } else if path.starts_with("/_matrix/") {
        format!("matrix {}", segments.get(5).unwrap_or(&""))
    } else {
        // /p<project>/<kind>[/…]
        format!("{} {path}", segments.get(2).unwrap_or(&""))
    }
}

/// A field of a form-encoded body (only to tell destinations apart).
fn form_value(body: &[u8], name: &str) -> Option<String> {
    String::from_utf8_lossy(body)
        .split('&')
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")).map(str::to_owned))
}

async fn outcome(
    client: &Client,
    recorder: &Recorder,
    sink: &SmtpSink,
    expected_mails: usize,
) -> Outcome {
    let mut labels = notification_labels(client).await;
    // Each implementation has its own recorder: its address is not part of the comparison.
    labels.push((recorder.addr().to_string(), "<recorder>".to_owned()));
    let requests = recorder.requests();
    let mut result = Outcome::default();
    for r in &requests {
        result
            .requests
            .entry(request_key(r))
            .or_default()
            .push(normalise(&request_text(r), &labels));
    }
    let messages = sink.wait_for_messages(expected_mails).await.unwrap();
    for m in &messages {
        let to = m.header("To").unwrap_or_default().to_owned();
        result
            .mails
            .entry(format!("email {to}"))
            .or_default()
            .push(normalise(&mail_text(&m.raw), &labels));
    }
    for items in result
        .requests
        .values_mut()
        .chain(result.mails.values_mut())
    {
        items.sort();
    }
    let rows = client
        .query(
            "SELECT format('notification check=%s channel=%s status=%s error=%L', \
                 n.owner_id, n.channel_id, n.check_status, n.error) \
             FROM api_notification n \
             UNION ALL \
             SELECT format('channel %s %s disabled=%s last_error=%L', id, kind, disabled, last_error) \
             FROM api_channel \
             UNION ALL \
             SELECT format('check %s status=%s alert_after=%s', id, status, alert_after) \
             FROM api_check \
             UNION ALL \
             SELECT format('flip %s %s->%s processed=%s', id, old_status, new_status, processed IS NOT NULL) \
             FROM api_flip \
             ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    result.rows = rows.iter().map(|row| row.get(0)).collect();
    result
}

/// Rows with the deliberate differences (ARCHITECTURE.md) made equal: a webhook header value
/// that HTTP does not allow (a control character from a check's name) is refused before it is
/// sent, with a message that says so, where Healthchecks sends it and records the server's 400.
fn deliberate(rows: &[String]) -> Vec<String> {
    rows.iter()
        .map(|row| {
            let refused = row.find("'Invalid value of header ");
            match refused {
                Some(at) => format!("{}'<a header value HTTP does not allow>'", &row[..at]),
                None => row.replace(
                    "'Received status code 400'",
                    "'<a header value HTTP does not allow>'",
                ),
            }
        })
        .collect()
}

/// Mails the database says were sent: email notifications without an error, one per address.
async fn sent_mails(client: &Client) -> usize {
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM api_notification n JOIN api_channel c ON c.id = n.channel_id \
             WHERE c.kind = 'email' AND n.error = ''",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    usize::try_from(n).unwrap()
}

/// A readable account of every difference between `ours` and `theirs`, or empty; only keys
/// starting with one of `kinds` count when it is not empty.
fn differences(theirs: &Items, ours: &Items, kinds: &[String]) -> String {
    let mut out = String::new();
    let keys: std::collections::BTreeSet<&String> = theirs.keys().chain(ours.keys()).collect();
    for key in keys {
        let kind = key.split(' ').next().unwrap_or_default();
        if !kinds.is_empty() && !kinds.iter().any(|k| k == kind) {
            continue;
        }
        let empty = Vec::new();
        let mut t = theirs.get(key).unwrap_or(&empty).clone();
        let mut o = ours.get(key).unwrap_or(&empty).clone();
        // Equal items pair up first; the rest pair in sorted order.
        let mut i = 0;
        while i < t.len() {
            if let Some(j) = o.iter().position(|item| item == &t[i]) {
                t.remove(i);
                o.remove(j);
            } else {
                i += 1;
            }
        }
        if t.is_empty() && o.is_empty() {
            continue;
        }
        writeln!(
            out,
            "=== {key}: {} sent only by Healthchecks, {} only by us",
            t.len(),
            o.len()
        )
        .unwrap();
        for (t, o) in t.iter().zip(o.iter()) {
            writeln!(out, "--- Healthchecks (-) and ours (+):").unwrap();
            out.push_str(&line_diff(t, o));
        }
        for extra in t.iter().skip(o.len()) {
            writeln!(out, "--- only Healthchecks:\n{extra}").unwrap();
        }
        for extra in o.iter().skip(t.len()) {
            writeln!(out, "--- only ours:\n{extra}").unwrap();
        }
    }
    out
}

/// The lines of `theirs` (-) and `ours` (+) that differ, with a line of context: a longest
/// common subsequence diff, enough for texts of a few hundred lines.
fn line_diff(theirs: &str, ours: &str) -> String {
    let t: Vec<&str> = theirs.split('\n').collect();
    let o: Vec<&str> = ours.split('\n').collect();
    // lcs[i][j]: the longest common subsequence of t[i..] and o[j..].
    let mut lcs = vec![vec![0usize; o.len() + 1]; t.len() + 1];
    for i in (0..t.len()).rev() {
        for j in (0..o.len()).rev() {
            lcs[i][j] = if t[i] == o[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut lines: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < t.len() || j < o.len() {
        if i < t.len() && j < o.len() && t[i] == o[j] {
            lines.push((' ', t[i]));
            i += 1;
            j += 1;
        } else if j < o.len() && (i == t.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            lines.push(('+', o[j]));
            j += 1;
        } else {
            lines.push(('-', t[i]));
            i += 1;
        }
    }
    let mut out = String::new();
    for (k, (mark, line)) in lines.iter().enumerate() {
        let near = |d: usize| lines.get(d).is_some_and(|(m, _)| *m != ' ');
        if *mark != ' ' || near(k + 1) || (k > 0 && near(k - 1)) {
            writeln!(out, "{mark} {line:?}").unwrap();
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_match_healthchecks() {
    let seed: u64 = Env::capture()
        .get("HC_NOTIFY_SEED")
        .map(|s| s.parse().expect("HC_NOTIFY_SEED is a number"))
        .unwrap_or(1);
    eprintln!("conformance_notifications seed {seed} (HC_NOTIFY_SEED picks another)");
    let mut rng = StdRng::seed_from_u64(seed);

    let template = healthchecks::template().await;
    let theirs_db = TestDb::copy_of(template).await;
    let (their_recorder, our_recorder) = (Recorder::start().await, Recorder::start().await);
    let (their_sink, our_sink) = (
        SmtpSink::start().await.unwrap(),
        SmtpSink::start().await.unwrap(),
    );
    let now = Utc::now();
    let mut world = World {
        description: vec![String::new(); PROJECTS],
    };
    {
        let client = theirs_db.client().await;
        for index in 0..PROJECTS {
            add_project(&client, &mut rng, &their_recorder, index, now, &mut world).await;
        }
    }
    theirs_db.pool.close();
    theirs_db
        .cluster()
        .wait_until_unused(&theirs_db.name)
        .await
        .unwrap();
    let ours_db = TestDb::copy_of(&theirs_db.name).await;
    let ours_client = ours_db.client().await;
    execute(
        &ours_client,
        "UPDATE api_channel SET value = replace(value, $1, $2)",
        &[
            &their_recorder.addr().to_string(),
            &our_recorder.addr().to_string(),
        ],
    )
    .await;

    let settings: HashMap<String, String> = SETTINGS
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let mut their_vars = theirs_db.vars();
    their_vars.extend(settings.clone());
    their_vars.extend(their_sink.vars());
    their_vars.insert("MATRIX_HOMESERVER".into(), their_recorder.url(""));
    let mut our_vars = ours_db.vars();
    our_vars.extend(settings);
    our_vars.extend(our_sink.vars());
    for name in [
        "MATRIX_HOMESERVER",
        "SENDALERTS_TELEGRAM_API_URL",
        "SENDALERTS_PUSHOVER_API_URL",
    ] {
        our_vars.insert(name.into(), our_recorder.url(""));
    }
    our_vars.insert("SENDALERTS_METRICS_LISTEN".into(), String::new());

    // Both at once, right after the generator, so both render the same "… ago" phrases.
    let their_endpoints = their_recorder.url("");
    let (log, ()) = tokio::join!(
        healthchecks::sendalerts(&their_vars, &their_endpoints),
        run_once(&our_vars),
    );
    eprintln!("Healthchecks' sendalerts:\n{}", log.unwrap());
    let theirs_client = theirs_db.cluster().connect(&theirs_db.name).await.unwrap();
    let theirs = outcome(
        &theirs_client,
        &their_recorder,
        &their_sink,
        sent_mails(&theirs_client).await,
    )
    .await;
    let ours = outcome(
        &ours_client,
        &our_recorder,
        &our_sink,
        sent_mails(&ours_client).await,
    )
    .await;

    // HC_NOTIFY_KINDS=slack,email limits the comparison to some kinds (while working on them).
    let kinds: Vec<String> = match Env::capture().get("HC_NOTIFY_KINDS") {
        Some(list) => list.split(',').map(str::to_owned).collect(),
        None => COMPARED.iter().map(|k| (*k).to_owned()).collect(),
    };
    let mut report = String::new();
    report.push_str(&differences(&theirs.requests, &ours.requests, &kinds));
    report.push_str(&differences(&theirs.mails, &ours.mails, &kinds));
    let rows = |rows: &[String]| -> Items {
        BTreeMap::from([("database rows".to_owned(), deliberate(rows))])
    };
    if kinds.iter().any(|k| k == "database") {
        report.push_str(&differences(&rows(&theirs.rows), &rows(&ours.rows), &[]));
    }
    // The generated world must reach every branch of the templates, or the comparison would
    // prove less than it says.
    let all: String = theirs
        .requests
        .values()
        .chain(theirs.mails.values())
        .flatten()
        .map(String::as_str)
        .collect();
    for phrase in [
        "other checks are also down.",
        "The following checks are still down:",
        "All the other checks are up.",
        "Last Ping:** Never",
        "Exit status",
        "The downtime lasted",
        "received a failure signal",
        "grace time passed",
        "last-ping.eml",
        "Last Ping Body",
    ] {
        assert!(
            all.contains(phrase),
            "seed {seed}: no scenario sent {phrase:?}"
        );
    }

    if !report.is_empty() {
        panic!(
            "seed {seed}: hc-sendalerts differs from Healthchecks\nscenarios:\n{}\n{report}",
            world.description.join("\n")
        );
    }
}
