//! The content of an alert email (§3.8): the text and HTML parts as Healthchecks' templates
//! write them, the headers (a signed `List-Unsubscribe`), the bounce-id envelope sender and the
//! `last-ping.eml` attachment, all pure functions of the alert, the recipient's account and the
//! time. The transport that sends it is [`super`].

use chrono::{DateTime, FixedOffset, Utc};
use hc_core::schedule::Zone;
use lettre::Address;
use lettre::message::header::{self, Header, HeaderName, HeaderValue, Headers};
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Attachment, Body, Mailbox, Mailboxes, MultiPart, SinglePart};
use uuid::Uuid;

use super::{Account, ProjectOverview, eml, recipient};
use crate::alert::{Alert, Ping, PingBody};
use crate::digest;
use crate::transports::chat;
use crate::transports::text::{
    cloaked_url, escape_html, format_duration, is_python_space, kind_display, naturaltime,
    reason_long,
};
use crate::transports::{Settings, TransportError};

/// How much of the last ping's body the message shows: the last this many characters.
const BODY_TAIL_CHARS: usize = 10_000;

/// Where the text part wraps long lines of the ping body (Django's `wordwrap:80`).
const WRAP_WIDTH: usize = 80;

/// A message ready to send, with its envelope.
#[derive(Debug, Clone)]
pub struct Composed {
    /// The message, formatted.
    pub email: Vec<u8>,
    /// The envelope sender (`MAIL FROM`), possibly with a bounce id longer than lettre's
    /// `Address` allows.
    pub mail_from: String,
    /// The envelope recipient.
    pub to: Address,
}

/// The message and its envelope for `alert`, composed at `now` for the recipient's `account`, if
/// the address has one (see [`super::recipient_account`]).
pub fn compose(
    settings: &Settings,
    alert: &Alert,
    account: Option<&Account>,
    now: DateTime<Utc>,
) -> Result<Composed, TransportError> {
    let email = &settings.email;
    let to: Mailbox = recipient(&alert.channel.value)
        .and_then(|address| address.parse().ok())
        .ok_or_else(|| TransportError::fail("Invalid email address"))?;
    let from: Mailbox = email
        .from
        .parse()
        .map_err(|_| TransportError::fail("DEFAULT_FROM_EMAIL is not an email address"))?;
    let mail_from = if email.mail_from_tmpl.is_empty() {
        from.email.to_string()
    } else {
        let bounce_id = digest::sign_bounce_id(
            &format!("n.{}", alert.notification),
            settings.secret_key.expose(),
            unix_seconds(now),
        );
        email.mail_from_tmpl.replace("%s", &bounce_id)
    };
    let envelope_to = to.email.clone();

    let content = Content::new(settings, alert, account, now);
    let alternative = MultiPart::alternative_plain_html(content.text(), content.html());
    let body = match &content.attachment {
        None => alternative,
        Some(eml) => MultiPart::mixed()
            .multipart(alternative)
            .singlepart(eml_attachment(eml)),
    };
    let mut headers = Headers::new();
    headers.set(header::Subject::from(subject(alert)));
    headers.set(header::From::from(Mailboxes::from(from.clone())));
    headers.set(header::To::from(Mailboxes::from(to)));
    headers.set(header::Date::new(now.into()));
    headers.set(ListUnsubscribe(format!("<{}>", content.unsubscribe)));
    headers.set(ListUnsubscribePost);
    headers.set(header::MessageId::from(format!(
        "<{}@{}>",
        alert.notification,
        from.email.domain()
    )));
    Ok(Composed {
        email: message_bytes(&headers, &body),
        mail_from,
        to: envelope_to,
    })
}

/// The message: the MIME headers first, then `headers`, in the order Django writes them
/// (`MIME-Version`, `Content-Type`, `Subject`, `From`, `To`, `Date`, the extra headers).
fn message_bytes(headers: &Headers, body: &MultiPart) -> Vec<u8> {
    let part = body.formatted();
    // The multipart's own header block (its `Content-Type`) ends at the first empty line.
    let split = part
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map_or(0, |at| at + 2);
    let mut out = b"MIME-Version: 1.0\r\n".to_vec();
    out.extend_from_slice(&part[..split]);
    out.extend_from_slice(headers.to_string().as_bytes());
    out.extend_from_slice(&part[split..]);
    out
}

/// `last-ping.eml`: the email ping's message as a `message/rfc822` attachment.
///
/// RFC 2046 allows only identity encodings for `message/rfc822`, so a 7-bit message is sent as
/// it is (line ends made CRLF). Anything else (8-bit text, NUL, bare CR, lines over 998 octets)
/// goes in base64, byte for byte: the conversation announces no 8BITMIME (see [`MailFrom`]), and
/// mail readers (mail-parser too) decode base64 message parts.
fn eml_attachment(eml: &[u8]) -> SinglePart {
    let content_type =
        ContentType::parse("message/rfc822").expect("message/rfc822 is a valid content type");
    let crlf = crlf_line_ends(eml);
    let body = if is_seven_bit(&crlf) {
        // Checked just above: ASCII without NUL or bare CR, CRLF lines of at most 998 octets.
        Body::dangerous_pre_encoded(crlf, ContentTransferEncoding::SevenBit)
    } else {
        Body::new_with_encoding(eml.to_vec(), ContentTransferEncoding::Base64)
            .expect("base64 carries any bytes")
    };
    Attachment::new("last-ping.eml".to_owned()).body(body, content_type)
}

/// `bytes` with every bare LF made CRLF.
fn crlf_line_ends(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 32);
    let mut previous = 0u8;
    for &byte in bytes {
        if byte == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        out.push(byte);
        previous = byte;
    }
    out
}

/// Whether CRLF-terminated `bytes` are valid 7bit data (RFC 2045 §2.7): ASCII, no NUL, CR only
/// before LF, lines of at most 998 octets.
fn is_seven_bit(bytes: &[u8]) -> bool {
    let mut line_length = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        match byte {
            0 | 0x80..=0xff => return false,
            b'\r' if bytes.get(index + 1) != Some(&b'\n') => return false,
            b'\r' => {}
            b'\n' => line_length = 0,
            _ => {
                line_length += 1;
                if line_length > 998 {
                    return false;
                }
            }
        }
    }
    true
}

/// `DOWN | <name>` or `UP | <name>`.
pub fn subject(alert: &Alert) -> String {
    // Healthchecks strips the rendered subject template.
    format!(
        "{} | {}",
        alert.flip.new_status.to_uppercase(),
        alert.check.name_then_code()
    )
    .trim_matches(is_python_space)
    .to_owned()
}

/// The one-click unsubscribe link of a channel: `SITE_ROOT/integrations/<code>/unsub/<signed>/`
/// where the signed value is `sha256(code + SECRET_KEY)` under Django's
/// `TimestampSigner(salt="alerts")` at `now`.
pub fn unsubscribe_url(settings: &Settings, channel_code: Uuid, now: DateTime<Utc>) -> String {
    let secret = settings.secret_key.expose();
    let token = digest::sha256_hex(format!("{channel_code}{secret}").as_bytes());
    let signed = digest::timestamp_sign(&token, "alerts", secret, unix_seconds(now));
    format!(
        "{}/integrations/{channel_code}/unsub/{signed}/",
        settings.site_root
    )
}

fn unix_seconds(t: DateTime<Utc>) -> u64 {
    u64::try_from(t.timestamp()).unwrap_or(0)
}

/// `List-Unsubscribe` (RFC 2369).
#[derive(Debug, Clone)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribe(s.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058).
#[derive(Debug, Clone)]
struct ListUnsubscribePost;

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribePost)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".to_owned())
    }
}

/// What the last ping's body section shows (Healthchecks shows it when the ping has a body).
#[derive(Debug, Clone, PartialEq, Eq)]
enum BodySection {
    /// No body: no section.
    None,
    /// The body as text (invalid UTF-8 replaced): its length in characters and its last
    /// [`BODY_TAIL_CHARS`] characters.
    Text { length: usize, tail: String },
    /// In object storage, not readable yet (Healthchecks' `body is None`).
    Pending,
    /// An email ping: its message is attached.
    Attached,
}

/// The last ping as the details show it.
#[derive(Debug, Clone)]
struct LastPing {
    /// `ping.n`, `None` as Python prints it.
    n: String,
    /// `naturaltime`, with Django's no-break spaces.
    ago: String,
    remote_addr: String,
    /// `Ping.get_kind_display` (the text part).
    kind: String,
    /// The HTML part's badge: background colour and label.
    badge: (&'static str, String),
}

/// The facts of one message, as Healthchecks' alert templates use them; the text and the HTML
/// part render them.
#[derive(Debug, Clone)]
struct Content {
    site_name: String,
    name: String,
    new_status: String,
    /// `flip.reason_long` when the flip has a reason (`None` as Python prints it when the
    /// reason is unknown).
    reason: Option<String>,
    downtime: Option<String>,
    link: String,
    /// `check.desc`, shown when not empty.
    description: String,
    project_name: String,
    /// `check.tags` as stored (the text part) and split (the HTML part).
    tags: String,
    /// `Period` of a simple check, or the schedule and time zone of the others.
    period: Option<String>,
    schedule: Option<(String, String)>,
    total_pings: String,
    since: String,
    ping: Option<LastPing>,
    subject: Option<String>,
    status_changed: String,
    body: BodySection,
    /// The email ping's message, for `last-ping.eml`.
    attachment: Option<Vec<u8>>,
    /// The recipient account's projects; empty for addresses without an account.
    projects: Vec<ProjectOverview>,
    site_root: String,
    unsubscribe: String,
}

impl Content {
    fn new(
        settings: &Settings,
        alert: &Alert,
        account: Option<&Account>,
        now: DateTime<Utc>,
    ) -> Content {
        let tz = account
            .and_then(|account| account.tz.as_deref())
            .unwrap_or(&alert.project.owner_tz);
        let zone = Zone::from_name(tz).unwrap_or_else(|_| Zone::utc());
        let check = &alert.check;
        let flip = &alert.flip;
        let reason = (!flip.reason.is_empty())
            .then(|| reason_long(&flip.reason).unwrap_or("None").to_owned());
        let downtime = chat::down_duration(alert)
            .filter(|down| !down.is_zero())
            .map(chat::format_duration_for_sentence);
        let (period, schedule) = match check.kind.as_str() {
            "simple" => (Some(format_duration(check.timeout)), None),
            "cron" | "oncalendar" => (None, Some((check.schedule.clone(), check.tz.clone()))),
            _ => (None, None),
        };
        // An email ping's message is read only when it is in the row: one in object storage
        // stays "being processed" like any other body.
        let email_ping = alert
            .last_ping
            .as_ref()
            .filter(|ping| ping.scheme == "email")
            .and_then(|ping| match &ping.body {
                PingBody::Inline(bytes) if !bytes.is_empty() => Some(eml::read_email_ping(bytes)),
                _ => None,
            });
        let body = match alert.last_ping.as_ref().map(|ping| &ping.body) {
            _ if email_ping.is_some() => BodySection::Attached,
            Some(PingBody::Inline(bytes)) if !bytes.is_empty() => body_tail(bytes),
            Some(PingBody::InObjectStorage(_)) => BodySection::Pending,
            _ => BodySection::None,
        };
        let ping = alert.last_ping.as_ref().map(|ping| LastPing {
            n: ping.n.map_or("None".to_owned(), |n| n.to_string()),
            ago: naturaltime(ping.created, now),
            remote_addr: ping.remote_addr.clone().unwrap_or_default(),
            kind: kind_display(ping),
            badge: kind_badge(ping),
        });
        Content {
            site_name: settings.site_name.clone(),
            name: check.name_then_code(),
            new_status: flip.new_status.clone(),
            reason,
            downtime,
            link: cloaked_url(settings, check),
            description: check.desc.clone(),
            project_name: alert.project.name.clone(),
            tags: check.tags.clone(),
            period,
            schedule,
            total_pings: ping.as_ref().map_or("0".to_owned(), |ping| ping.n.clone()),
            since: local(&zone, check.created).format("%b %-d, %Y").to_string(),
            ping,
            subject: email_ping.as_ref().and_then(|read| read.subject.clone()),
            status_changed: rfc5322(&local(&zone, flip.created)),
            body,
            attachment: email_ping.map(|read| read.eml),
            projects: account
                .map(|account| account.projects.clone())
                .unwrap_or_default(),
            site_root: settings.site_root.clone(),
            unsubscribe: unsubscribe_url(settings, alert.channel.code, now),
        }
    }

    /// The text part: Healthchecks' `alert-body-text.html`, one line per `{% line %}`, values
    /// escaped where the template does not mark them safe (Django autoescapes text emails too),
    /// no-break spaces made plain as `hc.lib.emails` does.
    fn text(&self) -> String {
        let mut lines: Vec<String> = Vec::new();
        let mut line = |text: String| lines.push(text);
        line(format!(
            "The check \"{}\" has gone {}.",
            self.name,
            escape_html(&self.new_status)
        ));
        if let Some(reason) = &self.reason {
            line(format!("Reason: {}.", escape_html(reason)));
        }
        if let Some(downtime) = &self.downtime {
            line(format!("The downtime lasted {}.", escape_html(downtime)));
        }
        line(String::new());
        line(format!("View on {}:", escape_html(&self.site_name)));
        line(escape_html(&self.link));
        if !self.description.is_empty() {
            line(String::new());
            line("Description:".into());
            line("------------".into());
            line(self.description.clone());
        }
        line(String::new());
        line("Details:".into());
        line("--------".into());
        if !self.project_name.is_empty() {
            line(format!("Project: {}", self.project_name));
        }
        if !self.tags.is_empty() {
            line(format!("Tags: {}", self.tags));
        }
        if let Some(period) = &self.period {
            line(format!("Period: {}", escape_html(period)));
        }
        if let Some((schedule, tz)) = &self.schedule {
            line(format!("Schedule: {}", escape_html(schedule)));
            line(format!("Time zone: {}", escape_html(tz)));
        }
        line(format!(
            "Total pings: {} (since {})",
            escape_html(&self.total_pings),
            self.since
        ));
        if let Some(ping) = &self.ping {
            let mut last = format!("Last ping: {}", escape_html(&ping.ago));
            if !ping.remote_addr.is_empty() {
                last.push_str(&format!(", from {}", escape_html(&ping.remote_addr)));
            }
            line(last);
            line(format!("Last ping type: {}", escape_html(&ping.kind)));
            if let Some(subject) = &self.subject {
                line(format!("Last ping subject: {}", escape_html(subject)));
            }
        }
        line(format!(
            "Status changed to {} at: {}",
            escape_html(&self.new_status),
            self.status_changed
        ));
        if self.body != BodySection::None {
            line(String::new());
            line("Last Ping Body:".into());
            if let BodySection::Text { length, .. } = &self.body {
                if *length > BODY_TAIL_CHARS {
                    line(format!(
                        "Showing the last {BODY_TAIL_CHARS} bytes of {length} bytes total."
                    ));
                }
            }
            line("---------------".into());
            match &self.body {
                BodySection::Text { tail, .. } => line(django_wordwrap(tail, WRAP_WIDTH)),
                BodySection::Attached => line("See the attachment.".into()),
                _ => {
                    line(
                        "The request body data is being processed and will be available for \
                         viewing shortly."
                            .into(),
                    );
                    line("Please view it on the website.".into());
                }
            }
        }
        if !self.projects.is_empty() {
            line(String::new());
            line("Projects Overview:".into());
            line("------------------".into());
            for project in &self.projects {
                line(format!(
                    "* {}: {}",
                    project.name,
                    project_status(project.n_down)
                ));
            }
        }
        line(String::new());
        line("--".into());
        line(format!("Unsubscribe: {}", escape_html(&self.unsubscribe)));
        line(format!("Regards, {}", escape_html(&self.site_name)));
        mime_lines(&lines.join("\n")).replace('\u{a0}', " ")
    }

    /// The HTML part: Healthchecks' `alert-body-html.html` (its layout whitespace aside).
    fn html(&self) -> String {
        const CELL: &str =
            "<td style=\"padding-right: 32px; padding-bottom: 8px; vertical-align: top;\">";
        let mut out = String::from("<!DOCTYPE html>\n\n<p>\n");
        let name = escape_html(&self.name);
        if self.new_status == "down" {
            out.push_str(&format!("    \"{name}\" is DOWN"));
            if let Some(reason) = &self.reason {
                out.push_str(&format!(" ({})", escape_html(reason)));
            }
            out.push_str(".\n");
        } else {
            out.push_str(&format!("    \"{name}\" is UP.\n"));
            if let Some(downtime) = &self.downtime {
                out.push_str(&format!(
                    "    The downtime lasted {}.\n",
                    escape_html(downtime)
                ));
            }
        }
        out.push_str(&format!(
            "    <a href=\"{}\">View on {}&hellip;</a>\n</p>\n",
            escape_html(&self.link),
            escape_html(&self.site_name)
        ));
        if !self.description.is_empty() {
            out.push_str(&format!(
                "<p>\n    <b>Description</b><br>\n    {}\n</p>\n",
                linebreaksbr(&self.description)
            ));
        }
        // The cells of the first rows, two to a row (the template's `{% cycle %}`), then
        // "Total Pings".
        let mut cells: Vec<String> = Vec::new();
        if !self.project_name.is_empty() {
            cells.push(format!(
                "<b>Project</b><br>\n{}",
                escape_html(&self.project_name)
            ));
        }
        let tags: Vec<&str> = self
            .tags
            .split(' ')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        if !tags.is_empty() {
            let mut cell = String::from("<b>Tags</b><br>\n");
            for tag in tags {
                cell.push_str(&format!(
                    "<code style=\"background-color: #eeeeee; padding: 2px 4px; border-radius: 2px;\">{}</code>\n",
                    escape_html(tag)
                ));
            }
            cells.push(cell);
        }
        if let Some(period) = &self.period {
            cells.push(format!("<b>Period</b><br>\n{}", escape_html(period)));
        }
        if let Some((schedule, tz)) = &self.schedule {
            cells.push(format!(
                "<b>Schedule</b><br>\n<code>{}</code>",
                escape_html(schedule)
            ));
            cells.push(format!("<b>Time Zone</b><br>\n{}", escape_html(tz)));
        }
        out.push_str("<table>\n<tr>\n");
        for (index, cell) in cells.iter().enumerate() {
            out.push_str(&format!("{CELL}\n{cell}\n</td>\n"));
            if index % 2 == 1 {
                out.push_str("</tr><tr> \n");
            }
        }
        out.push_str(&format!(
            "{CELL}\n<b>Total Pings</b><br>\n{}\n(since {})\n</td>\n</tr>\n",
            escape_html(&self.total_pings),
            self.since
        ));
        if let Some(ping) = &self.ping {
            let mut last = escape_html(&ping.ago);
            if !ping.remote_addr.is_empty() {
                last.push_str(&format!(", from {}", escape_html(&ping.remote_addr)));
            }
            let (colour, label) = &ping.badge;
            out.push_str(&format!(
                "<tr>\n{CELL}\n<b>Last Ping</b><br>\n{last}\n</td>\n\
                 {CELL}\n<b>Last Ping Type</b><br>\n\
                 <span style=\"background-color: {colour}; color: #333333; padding-left: 4px; padding-right: 4px; border-radius: 2px;\">\n\
                 {}\n</span>\n</td>\n</tr>\n",
                escape_html(label)
            ));
        }
        out.push_str(&format!(
            "<tr>\n{CELL}\n<b>Status Changed to {} at</b><br>\n{}\n</td>\n</tr>\n</table>\n",
            escape_html(&title(&self.new_status)),
            self.status_changed
        ));
        if let Some(subject) = &self.subject {
            out.push_str(&format!(
                "<p><b>Last Ping Subject</b><br>{}</p>\n",
                escape_html(subject)
            ));
        }
        let ping_n = self.ping.as_ref().map_or("", |ping| ping.n.as_str());
        let full_body = format!("{}#ping-{}", escape_html(&self.link), escape_html(ping_n));
        if self.body != BodySection::None {
            out.push_str("<p><b>Last Ping Body</b>\n");
            if let BodySection::Text { length, .. } = &self.body {
                if *length > BODY_TAIL_CHARS {
                    out.push_str(&format!(
                        "<br>\nShowing the last {BODY_TAIL_CHARS} bytes of {length} bytes total.\n\
                         <a href=\"{full_body}\">View full body</a>.\n"
                    ));
                }
            }
            out.push_str("</p>\n");
            match &self.body {
                BodySection::Text { tail, .. } => out.push_str(&format!(
                    "<pre style=\"font-family: monospace; line-height: 1em;\">{}</pre>\n",
                    linebreaksbr(tail)
                )),
                BodySection::Attached => out.push_str("<p>See the attachment.</p>\n"),
                _ => out.push_str(&format!(
                    "<p>\nThe request body data is being processed and will be available for viewing shortly.\n\
                     Please <a href=\"{full_body}\">view it on the website</a>.\n</p>\n"
                )),
            }
        }
        if !self.projects.is_empty() {
            out.push_str("<p><b>Projects Overview</b></p>\n<table>\n");
            for project in &self.projects {
                let status = match project.n_down {
                    0 => "OK, all checks up".to_owned(),
                    n => format!("<b>{}</b>", project_status(n)),
                };
                out.push_str(&format!(
                    "<tr>\n<td style=\"padding-right: 32px; padding-bottom: 4px;\">\n\
                     <a href=\"{}/projects/{}/checks/\">{}</a>\n</td>\n\
                     <td style=\"padding-right: 32px; padding-bottom: 4px;\">\n{status}\n</td>\n</tr>\n",
                    escape_html(&self.site_root),
                    project.code,
                    escape_html(&project.name)
                ));
            }
            out.push_str("</table>\n");
        }
        let for_project = if self.project_name.is_empty() {
            String::new()
        } else {
            format!(" for project \"{}\"", escape_html(&self.project_name))
        };
        out.push_str(&format!(
            "\n<br>\n<p style=\"color: #666666; font-size: 90%\">\n&mdash;<br>\n\
             You are receiving this email because you are subscribed to {} monitoring\n\
             notifications{for_project}.<br>\n\
             Don't want to receive these notifications?\n\
             <a href=\"{}\" target=\"_blank\" style=\"color: #666666; text-decoration: underline;\">Unsubscribe</a>.\n\
             </p>\n",
            escape_html(&self.site_name),
            escape_html(&self.unsubscribe)
        ));
        mime_lines(&out)
    }
}

/// A project's status in the "Projects Overview": "OK, all checks up" or "N check(s) down".
fn project_status(n_down: i64) -> String {
    match n_down {
        0 => "OK, all checks up".to_owned(),
        1 => "1 check down".to_owned(),
        n => format!("{n} checks down"),
    }
}

/// The HTML part's "Last Ping Type" badge, whose order of tests differs from
/// `get_kind_display`: an exit status wins over the kind, and "Exit status 0" shows too.
fn kind_badge(ping: &Ping) -> (&'static str, String) {
    const GREY: &str = "#eeeeee";
    const RED: &str = "#f2dede";
    const GREEN: &str = "#dff0d8";
    match (ping.kind.as_deref(), ping.exitstatus) {
        (Some("ign"), _) => (GREY, "Ignored".to_owned()),
        (_, Some(code)) if code > 0 => (RED, format!("Exit status {code}")),
        (_, Some(0)) => (GREEN, "Exit status 0".to_owned()),
        (Some("fail"), _) => (RED, "Failure".to_owned()),
        (Some("start"), _) => (GREEN, "Started".to_owned()),
        (Some("log"), _) => (GREY, "Log".to_owned()),
        _ => (GREEN, "Success".to_owned()),
    }
}

/// Django's `title` for a status word.
fn title(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map_or_else(String::new, |first| {
        first
            .to_uppercase()
            .chain(chars.flat_map(char::to_lowercase))
            .collect()
    })
}

/// Django's `date:"r"` (`email.utils.format_datetime`): `Thu, 03 Dec 2026 10:00:00 +0000`.
fn rfc5322(t: &DateTime<FixedOffset>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S %z").to_string()
}

/// `t` on the wall clock of `zone`, with its offset.
fn local(zone: &Zone, t: DateTime<Utc>) -> DateTime<FixedOffset> {
    let offset = FixedOffset::east_opt(zone.offset_at(t.timestamp()))
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero is a valid offset"));
    t.with_timezone(&offset)
}

/// The body's length in characters and its last [`BODY_TAIL_CHARS`] characters (invalid UTF-8
/// replaced): Healthchecks' `body|length` and `body|slice:"-10000:"`.
fn body_tail(bytes: &[u8]) -> BodySection {
    let text = String::from_utf8_lossy(bytes);
    let length = text.chars().count();
    let tail = match text
        .char_indices()
        .nth(length.saturating_sub(BODY_TAIL_CHARS))
    {
        Some((cut, _)) => text[cut..].to_owned(),
        None => text.into_owned(),
    };
    BodySection::Text { length, tail }
}

/// A body as Python's email package writes a text part: its lines (split at CR, LF or CRLF,
/// as `bytes.splitlines` does) joined by LF, with a final line break.
fn mime_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 1);
    for line in eml::split_bytes_lines(text) {
        out.push_str(line);
        out.push('\n');
    }
    if out.is_empty() {
        out.push('\n');
    }
    out
}

/// Python's `str.splitlines` separators.
fn py_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r'
            | '\u{b}'
            | '\u{c}'
            | '\u{1c}'
            | '\u{1d}'
            | '\u{1e}'
            | '\u{85}'
            | '\u{2028}'
            | '\u{2029}'
    )
}

/// Django's `wordwrap` (`django.utils.text.wrap`): each line through Python's
/// `textwrap.TextWrapper(width, break_long_words=False, break_on_hyphens=False,
/// replace_whitespace=False)`: tabs expanded to 8 columns, words kept whole, the whitespace
/// where a line breaks dropped; a line of only whitespace is kept as it is.
fn django_wordwrap(text: &str, width: usize) -> String {
    let mut lines: Vec<String> = Vec::new();
    for line in eml::split_lines(text, py_line_break) {
        let wrapped = textwrap_line(line, width);
        if wrapped.is_empty() {
            lines.push(line.to_owned());
        } else {
            lines.extend(wrapped);
        }
    }
    if text.ends_with('\n') {
        lines.push(String::new());
    }
    lines.join("\n")
}

/// `TextWrapper.wrap` of one line (see [`django_wordwrap`]).
fn textwrap_line(line: &str, width: usize) -> Vec<String> {
    // expandtabs(8)
    let mut expanded = String::with_capacity(line.len());
    let mut column = 0;
    for c in line.chars() {
        if c == '\t' {
            let spaces = 8 - column % 8;
            expanded.extend(std::iter::repeat_n(' ', spaces));
            column += spaces;
        } else {
            expanded.push(c);
            column += 1;
        }
    }
    // Chunks: runs of textwrap's whitespace and runs of anything else.
    let ws = |c: char| matches!(c, '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ');
    let mut chunks: Vec<&str> = Vec::new();
    let mut start = 0;
    let mut previous: Option<bool> = None;
    for (index, c) in expanded.char_indices() {
        let kind = ws(c);
        if previous.is_some_and(|p| p != kind) {
            chunks.push(&expanded[start..index]);
            start = index;
        }
        previous = Some(kind);
    }
    if start < expanded.len() {
        chunks.push(&expanded[start..]);
    }
    let blank = |chunk: &str| chunk.chars().all(is_python_space);
    let len = |chunk: &str| chunk.chars().count();
    chunks.reverse();
    let mut lines = Vec::new();
    while !chunks.is_empty() {
        let mut current: Vec<&str> = Vec::new();
        let mut current_len = 0;
        if chunks.last().is_some_and(|c| blank(c)) && !lines.is_empty() {
            chunks.pop();
        }
        while let Some(chunk) = chunks.last() {
            if current_len + len(chunk) <= width {
                current_len += len(chunk);
                current.push(chunk);
                chunks.pop();
            } else {
                break;
            }
        }
        if chunks.last().is_some_and(|c| len(c) > width) && current.is_empty() {
            if let Some(chunk) = chunks.pop() {
                current.push(chunk);
            }
        }
        if current.last().is_some_and(|c| blank(c)) {
            current.pop();
        }
        if !current.is_empty() {
            lines.push(current.concat());
        }
    }
    lines
}

/// Django's `linebreaksbr` with autoescaping: line ends normalised, text escaped, `\n` → `<br>`.
fn linebreaksbr(text: &str) -> String {
    escape_html(&text.replace("\r\n", "\n").replace('\r', "\n")).replace('\n', "<br>")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use chrono::TimeDelta;

    use super::*;
    use crate::alert::{Channel, Check, Flip, Project};

    fn settings_with(pairs: &[(&'static str, &'static str)]) -> Settings {
        let mut vars: HashMap<&str, &str> = HashMap::from([
            ("SITE_ROOT", "https://hc.example.org"),
            ("SITE_NAME", "Mychecks"),
            ("SECRET_KEY", "abc"),
            ("DEFAULT_FROM_EMAIL", "alerts@example.org"),
        ]);
        vars.extend(pairs.iter().copied());
        Settings::from_vars(&vars).expect("test settings parse")
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("test timestamp")
    }

    fn alert() -> Alert {
        Alert {
            notification: "00000000-0000-4000-8000-000000000001"
                .parse()
                .expect("uuid"),
            flip: Flip {
                id: 1,
                created: at("2026-01-15T10:00:00Z"),
                old_status: "up".into(),
                new_status: "down".into(),
                reason: "timeout".into(),
            },
            check: Check {
                code: "00000000-0000-4000-8000-0000000000cc"
                    .parse()
                    .expect("uuid"),
                name: "Daily Backup".into(),
                kind: "simple".into(),
                timeout: TimeDelta::days(1),
                tz: "UTC".into(),
                created: at("2025-12-01T00:00:00Z"),
                n_pings: 7,
                ..Check::default()
            },
            project: Project {
                name: "Backups".into(),
                owner_tz: "UTC".into(),
                ..Project::default()
            },
            channel: Channel {
                code: "00000000-0000-4000-8000-0000000000aa"
                    .parse()
                    .expect("uuid"),
                kind: "email".into(),
                value: "alice@example.net".into(),
                email_verified: true,
                ..Channel::default()
            },
            last_ping: Some(Ping {
                n: Some(42),
                created: at("2026-01-14T08:00:00Z"),
                kind: None,
                scheme: "http".into(),
                remote_addr: Some("192.0.2.7".into()),
                method: "GET".into(),
                ua: String::new(),
                exitstatus: None,
                body: PingBody::None,
            }),
            down_since: None,
            other_down: None,
        }
    }

    fn text_of(alert: &Alert) -> String {
        let now = at("2026-01-15T10:05:00Z");
        Content::new(&settings_with(&[]), alert, None, now).text()
    }
    #[test]
    fn subject_down_and_up() {
        let mut alert = alert();
        assert_eq!(subject(&alert), "DOWN | Daily Backup");
        alert.flip.new_status = "up".into();
        alert.check.name = String::new();
        assert_eq!(subject(&alert), "UP | 00000000-0000-4000-8000-0000000000cc");
    }

    #[test]
    fn unsubscribe_url_is_signed_like_django() {
        let settings = settings_with(&[]);
        let code: Uuid = "00000000-0000-4000-8000-0000000000aa"
            .parse()
            .expect("uuid");
        let url = unsubscribe_url(&settings, code, at("2023-11-14T22:13:20Z"));
        let token = digest::sha256_hex(format!("{code}abc").as_bytes());
        let signed = digest::timestamp_sign(&token, "alerts", "abc", 1_700_000_000);
        assert_eq!(
            url,
            format!("https://hc.example.org/integrations/{code}/unsub/{signed}/")
        );
        assert!(signed.starts_with(&format!("{token}:1r31eq:")));
    }

    #[test]
    fn text_down_in_order() {
        let text = text_of(&alert());
        let expected_order = [
            "The check \"Daily Backup\" has gone down.\n",
            "Reason: success signal did not arrive on time, grace time passed.\n",
            "\nView on Mychecks:\nhttps://hc.example.org/cloaked/",
            "\nDetails:\n--------\n",
            "Project: Backups\n",
            "Period: 1 day\n",
            "Total pings: 42 (since Dec 1, 2025)\n",
            "Last ping: 1 day, 2 hours ago, from 192.0.2.7\n",
            "Last ping type: Success\n",
            "Status changed to down at: Thu, 15 Jan 2026 10:00:00 +0000\n",
            "\n--\nUnsubscribe: https://hc.example.org/integrations/",
            "Regards, Mychecks\n",
        ];
        let mut from = 0;
        for part in expected_order {
            let found = text[from..]
                .find(part)
                .unwrap_or_else(|| panic!("{part:?} not after byte {from} in:\n{text}"));
            from += found + part.len();
        }
        assert!(!text.contains("downtime"));
        assert!(!text.contains("Last Ping Body"));
        assert!(
            !text.contains('\u{a0}'),
            "no-break spaces are plain in text"
        );
        assert!(!text.contains("0000000000cc"), "the code never shows");
    }

    #[test]
    fn text_up_with_downtime() {
        let mut alert = alert();
        alert.flip.new_status = "up".into();
        alert.flip.reason = String::new();
        alert.down_since = Some(at("2026-01-15T07:30:00Z"));
        let text = text_of(&alert);
        assert!(
            text.starts_with(
                "The check \"Daily Backup\" has gone up.\nThe downtime lasted 2 hours, 30 minutes.\n\n"
            ),
            "{text}"
        );
        assert!(!text.contains("Reason:"));
    }

    #[test]
    fn text_fail_reason() {
        let mut alert = alert();
        alert.flip.reason = "fail".into();
        assert!(text_of(&alert).contains("Reason: received a failure signal.\n"));
    }

    #[test]
    fn text_cron_schedule_and_description_and_tags() {
        let mut alert = alert();
        alert.check.kind = "cron".into();
        alert.check.schedule = "0 5 * * *".into();
        alert.check.tz = "Europe/Riga".into();
        alert.check.desc = "Backs up the database.".into();
        alert.check.tags = "prod  db".into();
        let text = text_of(&alert);
        assert!(
            text.contains("\nDescription:\n------------\nBacks up the database.\n"),
            "{text}"
        );
        assert!(text.contains("Tags: prod  db\n"), "{text}");
        assert!(
            text.contains("Schedule: 0 5 * * *\nTime zone: Europe/Riga\n"),
            "{text}"
        );
        assert!(!text.contains("Period:"));
    }

    #[test]
    fn datetimes_use_the_owner_time_zone() {
        let mut alert = alert();
        alert.project.owner_tz = "Europe/Riga".into();
        let text = text_of(&alert);
        assert!(
            text.contains("Status changed to down at: Thu, 15 Jan 2026 12:00:00 +0200\n"),
            "{text}"
        );
        assert!(
            text.contains("Total pings: 42 (since Dec 1, 2025)"),
            "{text}"
        );
    }

    #[test]
    fn ping_kinds_with_exit_status() {
        let mut alert = alert();
        let ping = alert.last_ping.as_mut().expect("ping");
        ping.kind = Some("fail".into());
        ping.exitstatus = Some(3);
        assert!(text_of(&alert).contains("Last ping type: Exit status 3\n"));
    }

    #[test]
    fn no_last_ping() {
        let mut alert = alert();
        alert.last_ping = None;
        let text = text_of(&alert);
        assert!(
            text.contains("Total pings: 0 (since Dec 1, 2025)\nStatus changed"),
            "{text}"
        );
    }

    #[test]
    fn short_body_whole() {
        let mut alert = alert();
        alert.last_ping.as_mut().expect("ping").body = PingBody::Inline(b"all good".to_vec());
        let text = text_of(&alert);
        assert!(
            text.contains("\nLast Ping Body:\n---------------\nall good\n"),
            "{text}"
        );
        assert!(!text.contains("Showing the last"));
    }

    #[test]
    fn long_body_keeps_the_last_10000_characters() {
        let body: String = "x".repeat(500) + &"ä".repeat(10_000);
        assert_eq!(
            body_tail(body.as_bytes()),
            BodySection::Text {
                length: 10_500,
                tail: "ä".repeat(10_000),
            }
        );
    }

    #[test]
    fn body_in_object_storage_is_pending() {
        let mut alert = alert();
        alert.last_ping.as_mut().expect("ping").body = PingBody::InObjectStorage(123);
        let text = text_of(&alert);
        assert!(
            text.contains(
                "\nLast Ping Body:\n---------------\nThe request body data is being processed"
            ),
            "{text}"
        );
    }

    #[track_caller]
    fn check_wrap(text: &str, width: usize, expected: &str) {
        assert_eq!(django_wordwrap(text, width), expected);
    }

    #[test]
    fn wrap_short_lines_unchanged() {
        check_wrap("a b c\nd", 10, "a b c\nd");
    }

    #[test]
    fn wrap_at_last_space_that_fits() {
        check_wrap("aaa bbb ccc", 7, "aaa bbb\nccc");
    }

    #[test]
    fn wrap_keeps_long_words() {
        check_wrap("aaaaaaaaaa b", 5, "aaaaaaaaaa\nb");
    }

    #[test]
    fn wrap_expands_tabs_and_keeps_crlf_lines_and_final_newline() {
        check_wrap("a\r\nsecond line\ttab\n", 80, "a\nsecond line     tab\n");
    }

    #[test]
    fn wrap_keeps_lines_of_only_spaces() {
        check_wrap("   \n", 80, "   \n");
    }

    #[test]
    fn wrap_drops_the_spaces_where_it_breaks() {
        check_wrap("aaa    bbb", 5, "aaa\nbbb");
    }

    #[test]
    fn html_badges_prefer_the_exit_status() {
        let mut ping = alert().last_ping.expect("ping");
        ping.exitstatus = Some(0);
        assert_eq!(kind_badge(&ping).1, "Exit status 0");
        ping.kind = Some("fail".into());
        ping.exitstatus = Some(2);
        assert_eq!(kind_badge(&ping).1, "Exit status 2");
        ping.exitstatus = None;
        assert_eq!(kind_badge(&ping).1, "Failure");
        ping.kind = Some("start".into());
        assert_eq!(kind_badge(&ping).1, "Started");
    }

    #[test]
    fn html_is_escaped() {
        let mut alert = alert();
        alert.check.name = "<b>&\"x\"".into();
        alert.last_ping.as_mut().expect("ping").body = PingBody::Inline(b"<script>".to_vec());
        let html = Content::new(
            &settings_with(&[]),
            &alert,
            None,
            at("2026-01-15T10:05:00Z"),
        )
        .html();
        assert!(html.contains("&lt;b&gt;&amp;&quot;x&quot;"), "{html}");
        assert!(html.contains("1em;\">&lt;script&gt;</pre>"), "{html}");
        assert!(!html.contains("<script>"));
    }

    #[test]
    fn compose_headers_and_envelope() {
        let settings = settings_with(&[("EMAIL_MAIL_FROM_TMPL", "bounces+%s@example.org")]);
        let alert = alert();
        let now = at("2023-11-14T22:13:20Z");
        let composed = compose(&settings, &alert, None, now).expect("compose");
        let raw = String::from_utf8(composed.email.clone()).expect("ascii headers");
        assert!(raw.contains("From: alerts@example.org\r\n"), "{raw}");
        assert!(raw.contains("To: alice@example.net\r\n"), "{raw}");
        assert!(raw.contains("Subject: DOWN | Daily Backup\r\n"), "{raw}");
        assert!(raw.contains(&format!(
            "Message-ID: <{}@example.org>\r\n",
            alert.notification
        )));
        assert!(raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
        assert!(raw.contains(&format!(
            "List-Unsubscribe: <{}>\r\n",
            unsubscribe_url(&settings, alert.channel.code, now)
        )));
        assert!(raw.contains("multipart/alternative"));
        assert!(!raw.to_ascii_lowercase().contains("x-bounce-id"));
        let bounce =
            digest::sign_bounce_id(&format!("n.{}", alert.notification), "abc", 1_700_000_000);
        assert_eq!(composed.mail_from, format!("bounces+{bounce}@example.org"));
        assert_eq!(composed.to.to_string(), "alice@example.net");
    }

    #[test]
    fn envelope_sender_defaults_to_the_from_address() {
        let composed = compose(
            &settings_with(&[]),
            &alert(),
            None,
            at("2026-01-15T10:05:00Z"),
        )
        .expect("compose");
        assert_eq!(composed.mail_from, "alerts@example.org");
    }

    fn email_ping(raw: &[u8]) -> Alert {
        let mut alert = alert();
        let ping = alert.last_ping.as_mut().expect("ping");
        ping.scheme = "email".into();
        ping.body = PingBody::Inline(raw.to_vec());
        alert
    }

    #[test]
    fn email_ping_shows_its_subject_and_points_to_the_attachment() {
        let alert = email_ping(b"Subject: =?UTF-8?Q?Backup_=C5=A1odien?=\r\n\r\nLorem ipsum\r\n");
        let text = text_of(&alert);
        assert!(
            text.contains("Last ping type: Success\nLast ping subject: Backup šodien\n"),
            "{text}"
        );
        assert!(
            text.contains("\nLast Ping Body:\n---------------\nSee the attachment.\n"),
            "{text}"
        );
        assert!(!text.contains("Lorem"), "{text}");
    }

    #[test]
    fn http_ping_body_is_shown_even_if_it_looks_like_a_message() {
        let mut alert = email_ping(b"Subject: hello\r\n\r\nLorem ipsum\r\n");
        alert.last_ping.as_mut().expect("ping").scheme = "https".into();
        let text = text_of(&alert);
        assert!(text.contains("Lorem ipsum"), "{text}");
        assert!(!text.contains("Last ping subject"), "{text}");
    }

    #[test]
    fn email_ping_in_object_storage_is_pending_without_attachment() {
        let mut alert = email_ping(b"");
        alert.last_ping.as_mut().expect("ping").body = PingBody::InObjectStorage(5000);
        let text = text_of(&alert);
        assert!(text.contains("being processed"), "{text}");
        assert!(!text.contains("attachment"), "{text}");
        let composed = compose(
            &settings_with(&[]),
            &alert,
            None,
            at("2026-01-15T10:05:00Z"),
        )
        .expect("compose");
        let raw = String::from_utf8(composed.email.clone()).expect("ascii");
        assert!(!raw.contains("multipart/mixed"), "{raw}");
    }

    #[test]
    fn email_ping_message_is_attached() {
        let alert = email_ping(b"Subject: hi\n\nLorem ipsum\n");
        let composed = compose(
            &settings_with(&[]),
            &alert,
            None,
            at("2026-01-15T10:05:00Z"),
        )
        .expect("compose");
        let raw = String::from_utf8(composed.email.clone()).expect("ascii");
        assert!(raw.contains("Content-Type: multipart/mixed"), "{raw}");
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(raw.contains("Content-Type: message/rfc822\r\n"), "{raw}");
        assert!(
            raw.contains("Content-Disposition: attachment; filename=\"last-ping.eml\""),
            "{raw}"
        );
        assert!(raw.contains("Content-Transfer-Encoding: 7bit\r\n"), "{raw}");
        assert!(
            raw.contains(
                "\r\n\r\nSubject: hi\r\nContent-Type: text/plain; charset=\"utf-8\"\r\n\
                 Content-Transfer-Encoding: 7bit\r\nMIME-Version: 1.0\r\n\r\nLorem ipsum\r\n"
            ),
            "{raw}"
        );
    }

    #[track_caller]
    fn check_seven_bit(eml: &[u8], expected: bool) {
        assert_eq!(is_seven_bit(&crlf_line_ends(eml)), expected);
    }

    #[test]
    fn seven_bit_ascii_lines() {
        check_seven_bit(b"Subject: a\n\nb\r\nc", true);
    }

    #[test]
    fn seven_bit_refuses_eight_bit_nul_bare_cr_and_long_lines() {
        check_seven_bit("Subject: ā\n".as_bytes(), false);
        check_seven_bit(b"a\0b\n", false);
        check_seven_bit(b"a\rb\n", false);
        check_seven_bit(&[b'x'; 999], false);
        check_seven_bit(&[b'x'; 998], true);
    }

    #[test]
    fn crlf_keeps_existing_crlf() {
        assert_eq!(crlf_line_ends(b"a\nb\r\nc\n"), b"a\r\nb\r\nc\r\n");
    }

    #[test]
    fn eight_bit_message_is_attached_in_base64() {
        let alert = email_ping("Subject: testing\n\nglāžšķūņu rūķīši\n".as_bytes());
        let composed = compose(
            &settings_with(&[]),
            &alert,
            None,
            at("2026-01-15T10:05:00Z"),
        )
        .expect("compose");
        let raw = String::from_utf8(composed.email.clone()).expect("7-bit message");
        assert!(raw.contains("Content-Type: message/rfc822\r\n"), "{raw}");
        assert!(
            raw.contains("Content-Transfer-Encoding: base64\r\n"),
            "{raw}"
        );
    }

    #[test]
    fn account_time_zone_wins_over_the_owner() {
        let alert = alert();
        let account = Account {
            tz: Some("Europe/Riga".into()),
            projects: Vec::new(),
        };
        let text = Content::new(
            &settings_with(&[]),
            &alert,
            Some(&account),
            at("2026-01-15T10:05:00Z"),
        )
        .text();
        assert!(
            text.contains("Status changed to down at: Thu, 15 Jan 2026 12:00:00 +0200\n"),
            "{text}"
        );
        assert!(!text.contains("Projects Overview"), "{text}");
    }

    #[test]
    fn projects_overview_for_an_account() {
        let alert = alert();
        let account = Account {
            tz: None,
            projects: vec![
                ProjectOverview {
                    name: "Backups & <Jobs>".into(),
                    code: Uuid::nil(),
                    n_down: 2,
                },
                ProjectOverview {
                    name: "Cron".into(),
                    code: Uuid::nil(),
                    n_down: 1,
                },
                ProjectOverview {
                    name: "Web".into(),
                    code: Uuid::nil(),
                    n_down: 0,
                },
            ],
        };
        let content = Content::new(
            &settings_with(&[]),
            &alert,
            Some(&account),
            at("2026-01-15T10:05:00Z"),
        );
        let text = content.text();
        assert!(
            text.contains(
                "\nProjects Overview:\n------------------\n* Backups & <Jobs>: 2 checks down\n\
                 * Cron: 1 check down\n* Web: OK, all checks up\n\n--\nUnsubscribe: "
            ),
            "{text}"
        );
        let html = content.html();
        assert!(html.contains("<p><b>Projects Overview</b></p>"), "{html}");
        assert!(
            html.contains(&format!(
                "<a href=\"https://hc.example.org/projects/{}/checks/\">Backups &amp; &lt;Jobs&gt;</a>\n</td>\n\
                 <td style=\"padding-right: 32px; padding-bottom: 4px;\">\n<b>2 checks down</b>",
                Uuid::nil()
            )),
            "{html}"
        );
        assert!(html.contains(">Web</a>"), "{html}");
        assert!(html.contains("\nOK, all checks up\n"), "{html}");
    }

    #[test]
    fn invalid_recipient_is_final() {
        let mut alert = alert();
        alert.channel.value = "not an address".into();
        let err = compose(
            &settings_with(&[]),
            &alert,
            None,
            at("2026-01-15T10:05:00Z"),
        )
        .expect_err("bad address");
        assert_eq!(err, TransportError::fail("Invalid email address"));
    }
}
