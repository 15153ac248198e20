//! The `email` transport through a real OpenSMTPD: headers, parts, body contents, unsubscribe
//! signatures, the envelope sender and failures, email pings' `last-ping.eml` attachment, the
//! "Projects Overview"; and the SMTP sink itself.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use hc_sendalerts::alert::{Alert, Channel, Check, Flip, Ping, PingBody, Project};
use hc_sendalerts::digest;
use hc_sendalerts::transports::{Failure, Settings, Transports};
use hc_tests::factories::{
    CheckSpec, insert_check, insert_member, insert_profile, insert_project, insert_user,
};
use hc_tests::postgres::{TestDb, free_port};
use hc_tests::smtp::{Message, SmtpSink};
use mail_parser::{MessageParser, MimeHeaders};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use uuid::Uuid;

const SECRET_KEY: &str = "test-secret";
const SITE_ROOT: &str = "https://hc.example.org";

/// Transports whose SMTP settings are `email_vars` (plus the site settings tests rely on).
async fn transports(db: &TestDb, email_vars: HashMap<String, String>) -> Transports {
    let mut vars = email_vars;
    for (name, value) in [
        ("SITE_ROOT", SITE_ROOT),
        ("SITE_NAME", "Mychecks"),
        ("SECRET_KEY", SECRET_KEY),
        ("DEFAULT_FROM_EMAIL", "alerts@example.org"),
    ] {
        vars.entry(name.to_owned())
            .or_insert_with(|| value.to_owned());
    }
    let settings = Settings::from_vars(&vars).unwrap();
    Transports::new(settings, db.pool.clone()).unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// A down flip (timeout) of "Daily Backup" on an email channel to alice@example.net, with a
/// last ping that has a short body.
fn down_alert() -> Alert {
    let created = Utc::now() - TimeDelta::minutes(5);
    Alert {
        notification: Uuid::new_v4(),
        flip: Flip {
            id: 1,
            created,
            old_status: "up".into(),
            new_status: "down".into(),
            reason: "timeout".into(),
        },
        check: Check {
            code: Uuid::new_v4(),
            name: "Daily Backup".into(),
            tags: "prod db".into(),
            desc: "Dumps the main database.".into(),
            kind: "simple".into(),
            timeout: TimeDelta::days(1),
            grace: TimeDelta::hours(1),
            tz: "UTC".into(),
            status: "down".into(),
            n_pings: 41,
            created: at("2025-03-04T00:00:00Z"),
            ..Check::default()
        },
        project: Project {
            code: Uuid::new_v4(),
            name: "Backups".into(),
            owner_tz: "Europe/Riga".into(),
            owner_email: "owner@example.net".into(),
        },
        channel: Channel {
            id: 1,
            code: Uuid::new_v4(),
            kind: "email".into(),
            value: r#"{"value": "alice@example.net", "up": true, "down": true}"#.into(),
            name: String::new(),
            email_verified: true,
        },
        last_ping: Some(Ping {
            n: Some(42),
            created: created - TimeDelta::days(1) - TimeDelta::hours(1),
            kind: None,
            scheme: "https".into(),
            remote_addr: Some("198.51.100.23".into()),
            method: "POST".into(),
            ua: "curl/8".into(),
            exitstatus: None,
            body: PingBody::Inline(b"backup finished: 1.2 GB".to_vec()),
        }),
        down_since: None,
        other_down: None,
    }
}

/// The text and HTML parts of a delivered multipart/alternative message.
pub(crate) fn parts(message: &Message) -> (String, String) {
    let parsed = MessageParser::default().parse(&message.raw).unwrap();
    let content_type = parsed.content_type().unwrap();
    assert_eq!(
        (content_type.ctype(), content_type.subtype()),
        ("multipart", Some("alternative"))
    );
    assert_eq!(parsed.text_body.len(), 1);
    assert_eq!(parsed.html_body.len(), 1);
    let text = parsed.body_text(0).unwrap().into_owned();
    let html = parsed.body_html(0).unwrap().into_owned();
    (text, html)
}

/// The text and HTML parts and the bytes of the `last-ping.eml` attachment of a delivered
/// multipart/mixed message, checking the attachment's name and type.
pub(crate) fn parts_and_attachment(message: &Message) -> (String, String, Vec<u8>) {
    let parsed = MessageParser::default().parse(&message.raw).unwrap();
    let content_type = parsed.content_type().unwrap();
    assert_eq!(
        (content_type.ctype(), content_type.subtype()),
        ("multipart", Some("mixed"))
    );
    assert_eq!(parsed.text_body.len(), 1);
    assert_eq!(parsed.html_body.len(), 1);
    assert_eq!(parsed.attachment_count(), 1);
    let attachment = parsed.attachment(0).unwrap();
    assert_eq!(attachment.attachment_name(), Some("last-ping.eml"));
    let content_type = attachment.content_type().unwrap();
    assert_eq!(
        (content_type.ctype(), content_type.subtype()),
        ("message", Some("rfc822"))
    );
    (
        parsed.body_text(0).unwrap().into_owned(),
        parsed.body_html(0).unwrap().into_owned(),
        attachment.contents().to_vec(),
    )
}

/// [`down_alert`] with an email ping whose stored message is `raw`.
fn email_ping_alert(raw: &[u8]) -> Alert {
    let mut alert = down_alert();
    let ping = alert.last_ping.as_mut().unwrap();
    ping.scheme = "email".into();
    ping.method = String::new();
    ping.ua = "Email from backup@example.com".into();
    ping.body = PingBody::Inline(raw.to_vec());
    alert
}

/// Sends `alert` and returns the one message the sink received.
async fn send(alert: &Alert, extra_vars: &[(&str, &str)]) -> Message {
    let sink = SmtpSink::start().await.unwrap();
    let db = TestDb::new().await;
    let mut vars = sink.vars();
    for (name, value) in extra_vars {
        vars.insert((*name).to_owned(), (*value).to_owned());
    }
    transports(&db, vars).await.notify(alert).await.unwrap();
    let mut messages = sink.wait_for_messages(1).await.unwrap();
    assert_eq!(messages.len(), 1);
    messages.remove(0)
}

#[track_caller]
pub(crate) fn assert_in_order(text: &str, expected: &[&str]) {
    let mut from = 0;
    for part in expected {
        match text[from..].find(part) {
            Some(found) => from += found + part.len(),
            None => panic!("{part:?} not found after byte {from} in:\n{text}"),
        }
    }
}

/// The signed value of a `List-Unsubscribe` header, checked to be a link under `site_root` for
/// `channel` signed with [`SECRET_KEY`]; returns the token and the signing time.
#[track_caller]
pub(crate) fn verify_unsubscribe(header: &str, site_root: &str, channel: Uuid) -> (String, u64) {
    let prefix = format!("<{site_root}/integrations/{channel}/unsub/");
    let signed = header
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix("/>"))
        .unwrap_or_else(|| panic!("unexpected List-Unsubscribe: {header}"));
    let [token, ts, _signature] = signed.split(':').collect::<Vec<_>>()[..] else {
        panic!("not value:timestamp:signature: {signed}");
    };
    assert_eq!(
        token,
        digest::sha256_hex(format!("{channel}{SECRET_KEY}").as_bytes())
    );
    let timestamp = base62_decode(ts);
    assert_eq!(
        signed,
        digest::timestamp_sign(token, "alerts", SECRET_KEY, timestamp)
    );
    (token.to_owned(), timestamp)
}

fn base62_decode(text: &str) -> u64 {
    const DIGITS: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    text.chars()
        .fold(0, |n, c| n * 62 + DIGITS.find(c).unwrap() as u64)
}

/// Speaks SMTP by hand: one command, one (possibly multi-line) reply whose code must be `code`.
async fn converse(stream: &mut BufReader<TcpStream>, command: &str, code: &str) {
    if !command.is_empty() {
        stream
            .get_mut()
            .write_all(command.as_bytes())
            .await
            .unwrap();
    }
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).await.unwrap();
        assert!(line.starts_with(code), "{command:?} got {line:?}");
        if line.as_bytes().get(3) == Some(&b' ') {
            break;
        }
    }
}

#[tokio::test]
async fn sink_delivers_any_recipient_and_cleans_up_when_dropped() {
    let sink = SmtpSink::start().await.unwrap();
    let stream = TcpStream::connect(("127.0.0.1", sink.port()))
        .await
        .unwrap();
    let mut stream = BufReader::new(stream);
    converse(&mut stream, "", "220").await;
    converse(&mut stream, "EHLO test\r\n", "250").await;
    converse(&mut stream, "MAIL FROM:<bounce@example.org>\r\n", "250").await;
    converse(&mut stream, "RCPT TO:<alice@example.net>\r\n", "250").await;
    converse(&mut stream, "DATA\r\n", "354").await;
    converse(
        &mut stream,
        "Subject: hello\r\nX-Folded: one\r\n two\r\n\r\nbody\r\n.\r\n",
        "250",
    )
    .await;
    converse(&mut stream, "QUIT\r\n", "221").await;

    let messages = sink.wait_for_messages(1).await.unwrap();
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert_eq!(message.header("subject"), Some("hello"));
    assert_eq!(message.header("X-Folded"), Some("one two"));
    assert_eq!(message.header("Return-Path"), Some("<bounce@example.org>"));
    assert_eq!(message.header("Delivered-To"), Some("alice@example.net"));

    let port = sink.port();
    drop(sink);
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
}

#[tokio::test]
async fn down_alert_headers() {
    let alert = down_alert();
    let message = send(&alert, &[]).await;
    assert_eq!(message.header("Subject"), Some("DOWN | Daily Backup"));
    assert_eq!(message.header("From"), Some("alerts@example.org"));
    assert_eq!(message.header("To"), Some("alice@example.net"));
    assert_eq!(
        message.header("Message-ID"),
        Some(format!("<{}@example.org>", alert.notification).as_str())
    );
    // Without EMAIL_MAIL_FROM_TMPL the envelope sender is DEFAULT_FROM_EMAIL.
    assert_eq!(message.header("Return-Path"), Some("<alerts@example.org>"));
    assert_eq!(message.header("X-Bounce-ID"), None);
    assert_eq!(
        message.header("List-Unsubscribe-Post"),
        Some("List-Unsubscribe=One-Click")
    );
    let (_, timestamp) = verify_unsubscribe(
        message.header("List-Unsubscribe").unwrap(),
        SITE_ROOT,
        alert.channel.code,
    );
    let now = u64::try_from(Utc::now().timestamp()).unwrap();
    assert!(
        timestamp <= now && timestamp + 600 > now,
        "signed at {timestamp}"
    );
}

#[tokio::test]
async fn down_alert_body() {
    let alert = down_alert();
    let message = send(&alert, &[]).await;
    let (text, html) = parts(&message);
    let key = alert.check.unique_key();
    assert_in_order(
        &text,
        &[
            "The check \"Daily Backup\" has gone down.",
            "Reason: success signal did not arrive on time, grace time passed.",
            &format!("View on Mychecks:\n{SITE_ROOT}/cloaked/{key}/"),
            "Description:\n------------\nDumps the main database.",
            "Details:",
            "Project: Backups",
            "Tags: prod db",
            "Period: 1 day",
            "Total pings: 42 (since Mar 4, 2025)",
            "Last ping: 1 day, 1 hour ago, from 198.51.100.23",
            "Last ping type: Success",
            "Status changed to down at: ",
            "Last Ping Body:\n---------------\nbackup finished: 1.2 GB",
            &format!(
                "Unsubscribe: {SITE_ROOT}/integrations/{}/unsub/",
                alert.channel.code
            ),
            "Regards, Mychecks",
        ],
    );
    // Times are on the owner's wall clock (Europe/Riga is UTC+2 or UTC+3).
    let riga = alert.flip.created.with_timezone(
        &chrono::FixedOffset::east_opt(if text.contains("+0300") {
            3 * 3600
        } else {
            2 * 3600
        })
        .unwrap(),
    );
    assert!(
        text.contains(&format!(
            "Status changed to down at: {}",
            riga.format("%a, %d %b %Y %H:%M:%S %z")
        )),
        "{text}"
    );
    assert!(
        !text.contains(&alert.check.code.to_string()),
        "the ping URL stays hidden"
    );
    assert!(!text.contains("downtime"));

    for fact in [
        "\"Daily Backup\" is DOWN (success signal did not arrive on time, grace time passed).",
        &format!("<a href=\"{SITE_ROOT}/cloaked/{key}/\">View on Mychecks&hellip;</a>"),
        "<b>Description</b><br>\n    Dumps the main database.",
        "<b>Project</b><br>\nBackups",
        "<b>Total Pings</b><br>\n42\n(since Mar 4, 2025)",
        "198.51.100.23",
        "backup finished: 1.2 GB",
    ] {
        assert!(
            html.contains(fact),
            "{fact:?} missing from the HTML part:\n{html}"
        );
    }
}

#[tokio::test]
async fn up_alert_tells_the_downtime() {
    let mut alert = down_alert();
    alert.flip.new_status = "up".into();
    alert.flip.reason = String::new();
    alert.down_since = Some(alert.flip.created - TimeDelta::hours(3) - TimeDelta::minutes(20));
    let message = send(&alert, &[]).await;
    assert_eq!(message.header("Subject"), Some("UP | Daily Backup"));
    let (text, html) = parts(&message);
    assert_in_order(
        &text,
        &[
            "The check \"Daily Backup\" has gone up.",
            "The downtime lasted 3 hours, 20 minutes.",
            "Status changed to up at: ",
        ],
    );
    assert!(!text.contains("Reason:"));
    assert!(html.contains("The downtime lasted 3 hours, 20 minutes."));
}

#[tokio::test]
async fn datetimes_use_the_recipients_time_zone_when_they_have_an_account() {
    let sink = SmtpSink::start().await.unwrap();
    let db = TestDb::new().await;
    let client = db.client().await;
    // alice@example.net has an account preferring Tokyo (UTC+9, no DST); the owner's zone is
    // Europe/Riga (UTC+2 or +3), and bob@example.net has no account.
    let alice = insert_user(&client).await.unwrap();
    insert_profile(&client, alice.id, 100).await.unwrap();
    client
        .execute(
            "UPDATE auth_user SET email = 'alice@example.net' WHERE id = $1",
            &[&alice.id],
        )
        .await
        .unwrap();
    client
        .execute(
            "UPDATE accounts_profile SET tz = 'Asia/Tokyo' WHERE user_id = $1",
            &[&alice.id],
        )
        .await
        .unwrap();
    let transports = transports(&db, sink.vars()).await;
    let alert = down_alert();
    transports.notify(&alert).await.unwrap();
    let mut bobs = down_alert();
    bobs.channel.value = "bob@example.net".into();
    bobs.check.name = "For Bob".into();
    transports.notify(&bobs).await.unwrap();

    let messages = sink.wait_for_messages(2).await.unwrap();
    let text_to = |to: &str| {
        let message = messages
            .iter()
            .find(|m| m.header("To") == Some(to))
            .unwrap_or_else(|| panic!("no message to {to}"));
        parts(message).0
    };
    let tokyo = alert
        .flip
        .created
        .with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).unwrap());
    let text = text_to("alice@example.net");
    assert!(
        text.contains(&format!(
            "Status changed to down at: {}",
            tokyo.format("%a, %d %b %Y %H:%M:%S %z")
        )),
        "{text}"
    );
    let text = text_to("bob@example.net");
    assert!(!text.contains("+0900"), "{text}");
    assert!(
        text.contains("+0200") || text.contains("+0300"),
        "the owner's zone: {text}"
    );
}

#[tokio::test]
async fn unnamed_check_and_cron_schedule() {
    let mut alert = down_alert();
    alert.check.name = String::new();
    alert.check.kind = "cron".into();
    alert.check.schedule = "0 5 * * *".into();
    alert.check.tz = "Europe/Riga".into();
    alert.flip.reason = "fail".into();
    let message = send(&alert, &[]).await;
    assert_eq!(
        message.header("Subject"),
        Some(format!("DOWN | {}", alert.check.code).as_str())
    );
    let (text, _) = parts(&message);
    assert_in_order(
        &text,
        &[
            "Reason: received a failure signal.",
            "Schedule: 0 5 * * *",
            "Time zone: Europe/Riga",
        ],
    );
    assert!(!text.contains("Period:"));
}

#[tokio::test]
async fn long_body_shows_its_last_10000_characters() {
    let mut alert = down_alert();
    // Lines of 99 characters, numbered, so the cut is visible; the text part wraps each one at
    // 80 columns after its number.
    let body: String = (0..200)
        .map(|i| format!("{i:04} {}\n", "y".repeat(94)))
        .collect();
    assert_eq!(body.chars().count(), 20_000);
    alert.last_ping.as_mut().unwrap().body = PingBody::Inline(body.clone().into_bytes());
    let message = send(&alert, &[]).await;
    let (text, html) = parts(&message);
    assert_in_order(
        &text,
        &[
            "Last Ping Body:\nShowing the last 10000 bytes of 20000 bytes total.\n---------------\n0100\nyyy",
            "0199\nyyy",
        ],
    );
    assert!(!text.contains("0099"), "only the tail is shown");
    assert!(html.contains("Showing the last 10000 bytes of 20000 bytes total."));
    assert!(html.contains(&body[10_000..].replace('\n', "<br>")));
}

#[tokio::test]
async fn body_in_object_storage_is_being_processed() {
    let mut alert = down_alert();
    alert.last_ping.as_mut().unwrap().body = PingBody::InObjectStorage(20_000);
    let message = send(&alert, &[]).await;
    let (text, _) = parts(&message);
    assert_in_order(
        &text,
        &["Last Ping Body:\n---------------\nThe request body data is being processed"],
    );
}

#[tokio::test]
async fn email_ping_is_attached_without_nested_messages() {
    // A message with an RFC 2047 subject forwarding another message (Healthchecks' test of the
    // same name has the same shape).
    let raw = "MIME-Version: 1.0\r\n\
        From: backup@example.com\r\n\
        Subject: =?UTF-8?B?TmlnaHRseSBiYWNrdXAg4pyTIGdhdGF2cw==?=\r\n\
        Content-Type: multipart/mixed; boundary=\"00000000000068ccbb0650421339\"\r\n\
        \r\n\
        --00000000000068ccbb0650421339\r\n\
        Content-Type: text/plain; charset=\"UTF-8\"\r\n\
        \r\n\
        Hello 456\r\n\
        \r\n\
        --00000000000068ccbb0650421339\r\n\
        Content-Type: message/rfc822; name=\"Hello.eml\"\r\n\
        Content-Disposition: attachment; filename=\"Hello.eml\"\r\n\
        \r\n\
        MIME-Version: 1.0\r\n\
        Subject: Inner subject\r\n\
        Content-Type: text/plain; charset=\"UTF-8\"\r\n\
        \r\n\
        Hello 123\r\n\
        \r\n\
        \r\n\
        --00000000000068ccbb0650421339--\r\n";
    let alert = email_ping_alert(raw.as_bytes());
    let message = send(&alert, &[]).await;
    let (text, html, eml) = parts_and_attachment(&message);
    assert_in_order(
        &text,
        &[
            "Last ping type: Success",
            "Last ping subject: Nightly backup ✓ gatavs",
            "Last Ping Body:\n---------------\nSee the attachment.\n",
            "Unsubscribe: ",
        ],
    );
    assert!(html.contains("Nightly backup ✓ gatavs"), "{html}");
    assert!(html.contains("See the attachment."), "{html}");
    for part in [&text, &html] {
        assert!(
            !part.contains("Hello 456"),
            "the body is only attached: {part}"
        );
    }

    let attached = MessageParser::default().parse(&eml).unwrap();
    assert_eq!(attached.subject(), Some("Nightly backup ✓ gatavs"));
    assert_eq!(attached.body_text(0).as_deref(), Some("Hello 456\n"));
    assert_eq!(attached.attachment_count(), 0);
    let eml = String::from_utf8(eml).unwrap();
    assert!(!eml.contains("Inner subject"), "{eml}");
    assert!(!eml.contains("Hello 123"), "{eml}");
}

#[tokio::test]
async fn eight_bit_email_ping_arrives_as_healthchecks_writes_it_again() {
    let raw = "Subject: testing\n\nglāžšķūņu rūķīši\n".as_bytes();
    let message = send(&email_ping_alert(raw), &[]).await;
    let (text, _, eml) = parts_and_attachment(&message);
    assert!(text.contains("Last ping subject: testing\n"), "{text}");
    assert_eq!(
        String::from_utf8(eml).unwrap(),
        "Subject: testing\r\nContent-Type: text/plain; charset=\"utf-8\"\r\n\
         Content-Transfer-Encoding: 8bit\r\nMIME-Version: 1.0\r\n\r\nglāžšķūņu rūķīši\r\n"
    );
}

#[tokio::test]
async fn malformed_email_ping_is_attached_as_stored() {
    // Not UTF-8, a NUL, no header the parser recognises: the alert still goes, with the bytes
    // attached unchanged and no subject line.
    let raw = b"\xff\xfe\x00 not a message\r\n--\r\n\xc3\x28 broken\r\n";
    let message = send(&email_ping_alert(raw), &[]).await;
    assert_eq!(message.header("Subject"), Some("DOWN | Daily Backup"));
    let (text, _, eml) = parts_and_attachment(&message);
    assert!(!text.contains("Last ping subject"), "{text}");
    assert!(text.contains("See the attachment."), "{text}");
    assert_eq!(eml, raw);

    // A header section with a non-UTF-8 subject and a multipart without a boundary.
    let raw = b"Subject: caf\xe9 ok\r\nContent-Type: multipart/mixed\r\n\r\n--x\r\n\xff\r\n";
    let message = send(&email_ping_alert(raw), &[]).await;
    let (text, _, eml) = parts_and_attachment(&message);
    assert!(text.contains("Last ping subject: caf"), "{text}");
    assert_eq!(eml, raw);
}

#[tokio::test]
async fn email_ping_in_object_storage_is_being_processed() {
    let mut alert = email_ping_alert(b"");
    alert.last_ping.as_mut().unwrap().body = PingBody::InObjectStorage(20_000);
    let message = send(&alert, &[]).await;
    let (text, _) = parts(&message);
    assert_in_order(
        &text,
        &["Last Ping Body:\n---------------\nThe request body data is being processed"],
    );
    assert!(!text.contains("See the attachment"), "{text}");
}

#[tokio::test]
async fn projects_overview_only_for_registered_recipients() {
    let sink = SmtpSink::start().await.unwrap();
    let db = TestDb::new().await;
    let client = db.client().await;
    let set_email = async |user_id: i32, email: &str| {
        client
            .execute(
                "UPDATE auth_user SET email = $2 WHERE id = $1",
                &[&user_id, &email],
            )
            .await
            .unwrap();
    };
    let name_project = async |project_id: i32, name: &str| {
        client
            .execute(
                "UPDATE accounts_project SET name = $2 WHERE id = $1",
                &[&project_id, &name],
            )
            .await
            .unwrap();
    };
    // alice@example.net owns "Web" (all up) and is a member of carol's "Backups" (one check
    // stored down, one late beyond its grace time that the sender has not flipped yet, one
    // up); carol's "Private" is not hers. Down means down as the dashboard computes it
    // (`Check.get_status`), from the last ping and the period.
    let alice = insert_user(&client).await.unwrap();
    insert_profile(&client, alice.id, 100).await.unwrap();
    set_email(alice.id, "alice@example.net").await;
    let carol = insert_user(&client).await.unwrap();
    let web = insert_project(&client, alice.id).await.unwrap();
    name_project(web.id, "Web").await;
    let backups = insert_project(&client, carol.id).await.unwrap();
    name_project(backups.id, "Backups").await;
    insert_member(&client, alice.id, backups.id).await.unwrap();
    let private = insert_project(&client, carol.id).await.unwrap();
    name_project(private.id, "Private").await;
    let in_an_hour = Utc::now() + TimeDelta::hours(1);
    let (now, days_ago) = (Some(Utc::now()), Some(Utc::now() - TimeDelta::days(3)));
    for (project, status, alert_after, last_ping) in [
        (web.id, "up", Some(in_an_hour), now),
        (web.id, "new", None, None),
        (backups.id, "down", None, days_ago),
        (
            backups.id,
            "up",
            Some(Utc::now() - TimeDelta::minutes(1)),
            days_ago,
        ),
        (backups.id, "up", Some(in_an_hour), now),
        (private.id, "down", None, days_ago),
    ] {
        insert_check(
            &client,
            CheckSpec {
                project_id: Some(project),
                status,
                alert_after,
                last_ping,
                ..CheckSpec::default()
            },
        )
        .await
        .unwrap();
    }

    let transports = transports(&db, sink.vars()).await;
    transports.notify(&down_alert()).await.unwrap();
    let mut unregistered = down_alert();
    unregistered.channel.value = "ops@example.net".into();
    transports.notify(&unregistered).await.unwrap();

    let messages = sink.wait_for_messages(2).await.unwrap();
    let parts_to = |to: &str| {
        let message = messages
            .iter()
            .find(|m| m.header("To") == Some(to))
            .unwrap_or_else(|| panic!("no message to {to}"));
        parts(message)
    };
    let (text, html) = parts_to("alice@example.net");
    assert_in_order(
        &text,
        &[
            "Details:",
            "\nProjects Overview:\n------------------\n* Backups: 2 checks down\n* Web: OK, all checks up\n",
            "Unsubscribe: ",
        ],
    );
    assert!(!text.contains("Private"), "{text}");
    assert_in_order(
        &html,
        &[
            "<p><b>Projects Overview</b></p>",
            &format!("/projects/{}/checks/\">Backups</a>", backups.code),
            "<b>2 checks down</b>",
            &format!("/projects/{}/checks/\">Web</a>", web.code),
            "OK, all checks up",
        ],
    );

    let (text, html) = parts_to("ops@example.net");
    assert!(!text.contains("Projects Overview"), "{text}");
    assert!(!html.contains("Projects Overview"), "{html}");
}

#[tokio::test]
async fn custom_mail_from_carries_a_signed_bounce_id() {
    let alert = down_alert();
    let message = send(
        &alert,
        &[("EMAIL_MAIL_FROM_TMPL", "bounces+%s@example.org")],
    )
    .await;
    let return_path = message.header("Return-Path").unwrap();
    let bounce_id = return_path
        .strip_prefix("<bounces+")
        .and_then(|rest| rest.strip_suffix("@example.org>"))
        .unwrap_or_else(|| panic!("unexpected Return-Path: {return_path}"));
    assert_eq!(bounce_id.len(), 64);
    let value = format!("n.{}", alert.notification);
    let hex_ts = bounce_id
        .strip_prefix(&format!("{value}."))
        .and_then(|rest| rest.split('.').next())
        .unwrap();
    let timestamp = u64::from_str_radix(hex_ts, 16).unwrap();
    assert_eq!(
        bounce_id,
        digest::sign_bounce_id(&value, SECRET_KEY, timestamp)
    );
    // The From header is still DEFAULT_FROM_EMAIL, and no bounce id header is left behind.
    assert_eq!(message.header("From"), Some("alerts@example.org"));
    assert_eq!(message.header("X-Bounce-ID"), None);
}

#[tokio::test]
async fn unverified_email_is_a_final_error_and_sends_nothing() {
    let sink = SmtpSink::start().await.unwrap();
    let db = TestDb::new().await;
    let mut alert = down_alert();
    alert.channel.email_verified = false;
    let err = transports(&db, sink.vars())
        .await
        .notify(&alert)
        .await
        .unwrap_err();
    assert_eq!(err.message, "Email not verified");
    assert_eq!(err.failure, Failure::Final);
    assert!(sink.messages().unwrap().is_empty());
}

#[tokio::test]
async fn switched_off_status_sends_nothing() {
    let sink = SmtpSink::start().await.unwrap();
    let db = TestDb::new().await;
    let transports = transports(&db, sink.vars()).await;
    let mut alert = down_alert();
    alert.channel.value = r#"{"value": "alice@example.net", "up": true, "down": false}"#.into();
    transports.notify(&alert).await.unwrap();
    // A second alert that is sent proves the first one would have arrived by now.
    alert.flip.new_status = "up".into();
    transports.notify(&alert).await.unwrap();
    let messages = sink.wait_for_messages(1).await.unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].header("Subject"), Some("UP | Daily Backup"));
}

#[tokio::test]
async fn plain_address_value_works() {
    let mut alert = down_alert();
    alert.channel.value = "bob@example.net".into();
    let message = send(&alert, &[]).await;
    assert_eq!(message.header("To"), Some("bob@example.net"));
    assert_eq!(message.header("Delivered-To"), Some("bob@example.net"));
}

#[tokio::test]
async fn dead_smtp_port_is_transient() {
    let db = TestDb::new().await;
    let port = free_port().unwrap().to_string();
    let vars = HashMap::from(
        [
            ("EMAIL_HOST", "127.0.0.1"),
            ("EMAIL_PORT", port.as_str()),
            ("EMAIL_USE_TLS", "False"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let err = transports(&db, vars)
        .await
        .notify(&down_alert())
        .await
        .unwrap_err();
    assert_eq!(err.failure, Failure::Transient, "{err}");
}

#[tokio::test]
async fn rejected_recipient_is_final() {
    let sink = SmtpSink::start_rejecting(&["alice@example.net"])
        .await
        .unwrap();
    let db = TestDb::new().await;
    let err = transports(&db, sink.vars())
        .await
        .notify(&down_alert())
        .await
        .unwrap_err();
    assert_eq!(err.failure, Failure::Final, "{err}");
    assert!(err.message.contains("550"), "{err}");
    assert!(err.message.chars().count() <= 200);
}

#[tokio::test]
async fn without_email_host_email_cannot_be_sent() {
    let db = TestDb::new().await;
    let err = transports(&db, HashMap::new())
        .await
        .notify(&down_alert())
        .await
        .unwrap_err();
    assert_eq!(err.failure, Failure::Final);
    assert!(err.message.contains("EMAIL_HOST"), "{err}");
}

#[tokio::test]
async fn starttls_required_but_not_offered_fails_without_sending() {
    // OpenSMTPD here has no certificate, so it offers no STARTTLS: EMAIL_USE_TLS=True must not
    // fall back to plain text.
    let sink = SmtpSink::start().await.unwrap();
    let db = TestDb::new().await;
    let mut vars = sink.vars();
    vars.insert("EMAIL_USE_TLS".into(), "True".into());
    let err = transports(&db, vars)
        .await
        .notify(&down_alert())
        .await
        .unwrap_err();
    assert!(err.message.contains("STARTTLS"), "{err}");
    assert!(sink.messages().unwrap().is_empty());
}

#[test]
fn unsubscribe_signature_matches_django() {
    let channel = Uuid::new_v4();
    let token = digest::sha256_hex(format!("{channel}{SECRET_KEY}").as_bytes());
    for timestamp in [0, 61, 1_700_000_000, 1_795_248_574] {
        assert_eq!(
            digest::timestamp_sign(&token, "alerts", SECRET_KEY, timestamp),
            hc_tests::django::timestamp_sign(SECRET_KEY, "alerts", &token, timestamp).unwrap(),
            "at {timestamp}"
        );
    }
}

#[test]
fn bounce_id_mac_matches_django_salted_hmac() {
    let value = format!("n.{}.{:x}", Uuid::new_v4(), 1_795_248_574_u64);
    let django = hc_tests::django::salted_hmac_hex(
        SECRET_KEY,
        "hc.lib.signing.ShortHexTimestampSignersigner",
        &value,
    )
    .unwrap();
    assert_eq!(
        digest::sign_bounce_id(
            &value[..value.rfind('.').unwrap()],
            SECRET_KEY,
            1_795_248_574
        ),
        format!("{value}.{}", &django[..16])
    );
}
