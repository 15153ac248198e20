//! The `webhook` kind (§3.7, Healthchecks' `Webhook` transport): separate up and down method,
//! URL, body and headers, with Healthchecks' placeholders and encoding rules.
//!
//! Placeholders are replaced once, left to right, in the template only (`hc.lib.string.replace`),
//! so a check name containing `$TAG1` stays literal and `$$` is not an escape: it is a `$`
//! followed by whatever the next part is. Values are percent-encoded in the URL, forced to
//! Latin-1 in header values, and inserted as they are in the body.

use chrono::{DateTime, Utc};
use hc_core::status::{CheckKind, CheckTiming, Status};

use super::http::{self, HttpRequest};
use super::{Settings, TransportError, Transports, text};
use crate::alert::{Alert, Check, PingBody};

/// One direction (up or down) of a webhook channel's value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WebhookSpec {
    /// `method_<status>`: `GET`, `POST` or `PUT`.
    pub method: String,
    /// `url_<status>`: empty means nothing is sent for this status.
    pub url: String,
    /// `body_<status>`.
    pub body: String,
    /// `headers_<status>`, in the stored (sorted) order.
    pub headers: Vec<(String, String)>,
}

impl WebhookSpec {
    /// Reads the spec for `status` (`up` or `down`) from a channel value; keys that are missing
    /// read as empty (and the method as `GET`).
    pub fn parse(value: &str, status: &str) -> Result<WebhookSpec, TransportError> {
        let doc: serde_json::Value = serde_json::from_str(value)
            .map_err(|_| TransportError::fail("Invalid webhook configuration"))?;
        if !doc.is_object() {
            return Err(TransportError::fail("Invalid webhook configuration"));
        }
        let text = |key: &str| {
            doc.get(format!("{key}_{status}"))
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned()
        };
        let headers = doc
            .get(format!("headers_{status}"))
            .and_then(|v| v.as_object())
            .map(|map| {
                map.iter()
                    .map(|(name, value)| {
                        let value = match value {
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (name.clone(), value)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let method = match text("method") {
            m if m.is_empty() => "GET".to_owned(),
            m => m,
        };
        Ok(WebhookSpec {
            method,
            url: text("url"),
            body: text("body"),
            headers,
        })
    }
}

/// Whether the channel has no URL for `new_status`.
pub fn is_noop(value: &str, new_status: &str) -> bool {
    let status = if new_status == "up" { "up" } else { "down" };
    WebhookSpec::parse(value, status).is_ok_and(|spec| spec.url.is_empty())
}

/// Delivers `alert` to the webhook.
pub async fn notify(transports: &Transports, alert: &Alert) -> Result<(), TransportError> {
    let request = prepare_request(&transports.settings, alert, Utc::now())?;
    let response = transports.http.send(request).await?;
    http::expect_success(response).map(|_| ())
}

/// The request for `alert`, with placeholders filled in as of `now` (for `$JSON`'s status).
pub fn prepare_request(
    settings: &Settings,
    alert: &Alert,
    now: DateTime<Utc>,
) -> Result<HttpRequest, TransportError> {
    if !settings.webhooks_enabled {
        return Err(TransportError::fail(
            "Webhook notifications are not enabled.",
        ));
    }
    let status = if alert.flip.new_status == "up" {
        "up"
    } else {
        "down"
    };
    let spec = WebhookSpec::parse(&alert.channel.value, status)?;
    if spec.url.is_empty() {
        return Err(TransportError::fail("Empty webhook URL"));
    }
    let values = Values::new(settings, alert, now);

    let url = substitute(&spec.url, &values.context(Target::Url, &spec.url));
    let headers = spec
        .headers
        .iter()
        .map(|(name, value)| {
            let value = substitute(value, &values.context(Target::Header, value));
            (name.clone(), to_latin1(&value))
        })
        .collect();
    // Healthchecks compares the method as stored (upper case) for the body, and lower-cases it
    // for curl, which sends anything but post and put as GET.
    let body = (!spec.body.is_empty() && matches!(spec.method.as_str(), "POST" | "PUT"))
        .then(|| substitute(&spec.body, &values.context(Target::Body, &spec.body)).into_bytes());
    let method = match spec.method.to_ascii_lowercase().as_str() {
        "post" => "POST",
        "put" => "PUT",
        _ => "GET",
    };
    let body = match method {
        "GET" => None,
        _ => Some(body.unwrap_or_default()),
    };
    Ok(HttpRequest {
        method: method.to_owned(),
        url,
        headers,
        body,
    })
}

/// Where a template's result goes, which decides how values are encoded and which placeholders
/// exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// Values percent-encoded (except `$CODE`, `$STATUS`, `$SLUG`, `$EXITSTATUS`, as upstream).
    Url,
    /// Values as they are; the result is forced to Latin-1 afterwards.
    Header,
    /// Values as they are, plus `$BODY` and `$BODY_JSON`.
    Body,
}

/// The placeholder values of one alert.
struct Values {
    code: String,
    status: String,
    now: String,
    name: String,
    slug: String,
    tags: String,
    tag_list: Vec<String>,
    json: String,
    exit_status: String,
    body: String,
}

impl Values {
    fn new(settings: &Settings, alert: &Alert, now: DateTime<Utc>) -> Values {
        let check = &alert.check;
        let body = match alert.last_ping.as_ref().map(|ping| &ping.body) {
            Some(PingBody::Inline(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
            // Not readable from object storage by this service yet: sent as empty.
            Some(PingBody::InObjectStorage(_)) | Some(PingBody::None) | None => String::new(),
        };
        Values {
            code: check.code.to_string(),
            status: alert.flip.new_status.clone(),
            now: isostring(alert.flip.created),
            name: check.name.clone(),
            slug: check.slug.clone(),
            tags: check.tags.clone(),
            tag_list: text::tags_list(&check.tags)
                .into_iter()
                .map(str::to_owned)
                .collect(),
            json: check_dict(settings, check, now).dumps(),
            exit_status: alert
                .last_ping
                .as_ref()
                .and_then(|ping| ping.exitstatus)
                .map_or_else(|| "-1".to_owned(), |code| code.to_string()),
            body,
        }
    }

    /// The placeholders in Healthchecks' order: the first one that prefixes a `$…` part wins, so
    /// `$NAME_JSON` comes before `$NAME`, and `$TAG10` reads as `$TAG1` followed by `0`.
    fn context(&self, target: Target, template: &str) -> Vec<(String, String)> {
        let safe = |value: &str| {
            if target == Target::Url {
                quote(value)
            } else {
                value.to_owned()
            }
        };
        let mut context = vec![
            ("$CODE".to_owned(), self.code.clone()),
            ("$STATUS".to_owned(), self.status.clone()),
            ("$NOW".to_owned(), safe(&self.now)),
            (
                "$NAME_JSON".to_owned(),
                safe(&PyJson::Str(self.name.clone()).dumps()),
            ),
            ("$NAME".to_owned(), safe(&self.name)),
            ("$SLUG".to_owned(), self.slug.clone()),
            ("$TAGS".to_owned(), safe(&self.tags)),
            ("$JSON".to_owned(), safe(&self.json)),
        ];
        if target == Target::Body && template.contains("$BODY") {
            context.push((
                "$BODY_JSON".to_owned(),
                PyJson::Str(self.body.clone()).dumps(),
            ));
            context.push(("$BODY".to_owned(), self.body.clone()));
        }
        if template.contains("$EXITSTATUS") {
            context.push(("$EXITSTATUS".to_owned(), self.exit_status.clone()));
        }
        for (index, tag) in self.tag_list.iter().enumerate() {
            context.push((format!("$TAG{}", index + 1), safe(tag)));
        }
        context
    }
}

/// Healthchecks' `hc.lib.string.replace`: the template is split at each `$`, and each part
/// starting with a placeholder has that placeholder replaced once; text that a value brings in is
/// never looked at again.
fn substitute(template: &str, context: &[(String, String)]) -> String {
    let mut parts = template.split('$');
    let mut result = parts.next().unwrap_or("").to_owned();
    for part in parts {
        let part = format!("${part}");
        match context
            .iter()
            .find(|(placeholder, _)| part.starts_with(placeholder.as_str()))
        {
            Some((placeholder, value)) => {
                result.push_str(value);
                result.push_str(&part[placeholder.len()..]);
            }
            None => result.push_str(&part),
        }
    }
    result
}

/// Python's `urllib.parse.quote(value)`: UTF-8, with letters, digits, `_.-~` and `/` kept.
fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'-' | b'~' | b'/') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Latin-1 bytes of `value`; characters outside Latin-1 become XML character references
/// (`&#257;`), as Python's `encode("latin-1", "xmlcharrefreplace")`.
fn to_latin1(value: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    for c in value.chars() {
        match u8::try_from(u32::from(c)) {
            Ok(byte) => out.push(byte),
            Err(_) => out.extend_from_slice(format!("&#{};", u32::from(c)).as_bytes()),
        }
    }
    out
}

/// Python's `datetime.replace(microsecond=0).isoformat()` for a UTC time.
fn isostring(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

/// A JSON value printed like Python's `json.dumps` with default arguments: `", "` and `": "`
/// separators, keys in insertion order, non-ASCII escaped as `\uXXXX`.
#[derive(Debug, Clone, PartialEq)]
enum PyJson {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Object(Vec<(&'static str, PyJson)>),
}

impl PyJson {
    fn dumps(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            PyJson::Null => out.push_str("null"),
            PyJson::Bool(true) => out.push_str("true"),
            PyJson::Bool(false) => out.push_str("false"),
            PyJson::Int(n) => out.push_str(&n.to_string()),
            PyJson::Str(s) => write_py_string(s, out),
            PyJson::Object(fields) => {
                out.push('{');
                for (index, (key, value)) in fields.iter().enumerate() {
                    if index > 0 {
                        out.push_str(", ");
                    }
                    write_py_string(key, out);
                    out.push_str(": ");
                    value.write(out);
                }
                out.push('}');
            }
        }
    }
}

fn write_py_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            '\u{7f}' => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

fn optional_time(time: Option<DateTime<Utc>>) -> PyJson {
    time.map_or(PyJson::Null, |t| PyJson::Str(isostring(t)))
}

/// Healthchecks' `Check.to_dict()` (API v3, not read-only), which `$JSON` prints.
fn check_dict(settings: &Settings, check: &Check, now: DateTime<Utc>) -> PyJson {
    let kind = CheckKind::from_db(&check.kind);
    let timing = CheckTiming {
        timeout: check.timeout,
        grace: check.grace,
        schedule: check.schedule.clone(),
        tz: check.tz.clone(),
        last_ping: check.last_ping,
        last_start: check.last_start,
        ..CheckTiming::from_stored(&check.status, &check.kind)
    };
    // A schedule that cannot be evaluated shows the stored status and no next ping, rather than
    // failing the delivery.
    let status = match timing.status(now, false) {
        Ok(Status::New) => "new",
        Ok(Status::Paused) => "paused",
        Ok(Status::Up) => "up",
        Ok(Status::Grace) => "grace",
        Ok(Status::Down) => "down",
        Ok(Status::Started) => "started",
        Err(_) => timing.status.as_db(),
    };
    let next_ping = timing.grace_start(true).ok().flatten();
    let mut fields: Vec<(&'static str, PyJson)> = vec![
        ("name", PyJson::Str(check.name.clone())),
        ("slug", PyJson::Str(check.slug.clone())),
        ("tags", PyJson::Str(check.tags.clone())),
        ("desc", PyJson::Str(check.desc.clone())),
        ("grace", PyJson::Int(check.grace.num_seconds())),
        ("n_pings", PyJson::Int(i64::from(check.n_pings))),
        ("status", PyJson::Str(status.to_owned())),
        ("started", PyJson::Bool(check.last_start.is_some())),
        ("last_ping", optional_time(check.last_ping)),
        ("next_ping", optional_time(next_ping)),
        ("manual_resume", PyJson::Bool(check.manual_resume)),
        ("methods", PyJson::Str(check.methods.clone())),
        (
            "subject",
            PyJson::Str(if check.filter_subject {
                check.success_kw.clone()
            } else {
                String::new()
            }),
        ),
        (
            "subject_fail",
            PyJson::Str(if check.filter_subject {
                check.failure_kw.clone()
            } else {
                String::new()
            }),
        ),
        ("start_kw", PyJson::Str(check.start_kw.clone())),
        ("success_kw", PyJson::Str(check.success_kw.clone())),
        ("failure_kw", PyJson::Str(check.failure_kw.clone())),
        ("filter_subject", PyJson::Bool(check.filter_subject)),
        ("filter_body", PyJson::Bool(check.filter_body)),
        ("filter_http_body", PyJson::Bool(check.filter_http_body)),
        (
            "filter_default_fail",
            PyJson::Bool(check.filter_default_fail),
        ),
        (
            "badge_url",
            PyJson::Str(format!(
                "{}/b/2/{}.svg",
                settings.site_root, check.badge_key
            )),
        ),
    ];
    if let Some(duration) = check.last_duration.filter(|d| !d.is_zero()) {
        fields.push(("last_duration", PyJson::Int(duration.num_seconds())));
    }
    // Keys in the order `to_dict` inserts them: `uuid` after the optional `last_duration`.
    fields.push(("uuid", PyJson::Str(check.code.to_string())));
    let update_url = format!("{}/api/v3/checks/{}", settings.site_root, check.code);
    fields.push((
        "ping_url",
        PyJson::Str(format!("{}{}", settings.ping_endpoint, check.code)),
    ));
    fields.push(("update_url", PyJson::Str(update_url.clone())));
    fields.push(("pause_url", PyJson::Str(format!("{update_url}/pause"))));
    fields.push(("resume_url", PyJson::Str(format!("{update_url}/resume"))));
    let mut channels: Vec<String> = check.channels.iter().map(|c| c.to_string()).collect();
    channels.sort();
    fields.push(("channels", PyJson::Str(channels.join(","))));
    match kind {
        Some(CheckKind::Simple) => {
            fields.push(("timeout", PyJson::Int(check.timeout.num_seconds())));
        }
        Some(CheckKind::Cron | CheckKind::OnCalendar) => {
            fields.push(("schedule", PyJson::Str(check.schedule.clone())));
            fields.push(("tz", PyJson::Str(check.tz.clone())));
        }
        None => {}
    }
    PyJson::Object(fields)
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::alert::{Channel, Flip, Ping, Project};

    fn settings() -> Settings {
        let vars: std::collections::HashMap<&str, &str> =
            [("SITE_ROOT", "http://hc.example")].into_iter().collect();
        Settings::from_vars(&vars).expect("settings parse")
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("test time parses")
    }

    fn alert(value: serde_json::Value) -> Alert {
        Alert {
            notification: uuid::Uuid::nil(),
            flip: Flip {
                id: 1,
                created: at("2024-05-06T07:08:09.123456Z"),
                old_status: "up".to_owned(),
                new_status: "down".to_owned(),
                reason: "timeout".to_owned(),
            },
            check: Check {
                code: "0f0e0d0c-0b0a-4908-8706-050403020100"
                    .parse()
                    .expect("uuid"),
                name: "Backup".to_owned(),
                slug: "backup".to_owned(),
                tags: "foo bar".to_owned(),
                kind: "simple".to_owned(),
                timeout: TimeDelta::days(1),
                grace: TimeDelta::hours(1),
                status: "down".to_owned(),
                n_pings: 3,
                ..Check::default()
            },
            project: Project::default(),
            channel: Channel {
                kind: "webhook".to_owned(),
                value: value.to_string(),
                ..Channel::default()
            },
            last_ping: Some(Ping {
                n: Some(3),
                created: at("2024-05-06T06:00:00Z"),
                kind: None,
                scheme: "http".to_owned(),
                remote_addr: None,
                method: "POST".to_owned(),
                ua: String::new(),
                exitstatus: Some(123),
                body: PingBody::Inline(b"Body Line 1\nBody Line 2".to_vec()),
            }),
            down_since: None,
            other_down: None,
        }
    }

    fn down(method: &str, url: &str, body: &str, headers: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "method_down": method, "url_down": url, "body_down": body, "headers_down": headers,
            "method_up": "GET", "url_up": "", "body_up": "", "headers_up": {},
        })
    }

    fn prepare(alert: &Alert) -> HttpRequest {
        prepare_request(&settings(), alert, at("2024-05-06T08:00:00Z")).expect("request")
    }

    #[test]
    fn variables_in_the_url_are_percent_encoded() {
        let mut a = alert(down(
            "GET",
            "http://host/$CODE/$SLUG/$STATUS/$TAG1/$TAG2/?name=$NAME",
            "",
            serde_json::json!({}),
        ));
        a.check.name = "Hello World".to_owned();
        let request = prepare(&a);
        assert_eq!(
            request.url,
            format!(
                "http://host/{}/backup/down/foo/bar/?name=Hello%20World",
                a.check.code
            )
        );
        assert_eq!(request.method, "GET");
        assert_eq!(request.body, None);
    }

    #[test]
    fn variable_variables_are_not_expanded() {
        let mut a = alert(down(
            "GET",
            "http://host/$$NAMETAG1",
            "",
            serde_json::json!({}),
        ));
        a.check.name = String::new();
        assert_eq!(prepare(&a).url, "http://host/$TAG1");
    }

    #[test]
    fn a_name_that_looks_like_a_placeholder_stays_literal() {
        let mut a = alert(down("GET", "http://host/$NAME", "", serde_json::json!({})));
        a.check.name = "$TAG1".to_owned();
        a.check.tags = "foo".to_owned();
        assert_eq!(prepare(&a).url, "http://host/%24TAG1");
    }

    #[test]
    fn quote_keeps_slashes_like_python() {
        assert_eq!(quote("a b/c?d=é"), "a%20b/c%3Fd%3D%C3%A9");
        assert_eq!(
            quote("2024-05-06T07:08:09+00:00"),
            "2024-05-06T07%3A08%3A09%2B00%3A00"
        );
    }

    #[test]
    fn now_is_the_flip_time_without_microseconds() {
        let a = alert(down(
            "POST",
            "http://host",
            "The Time Is $NOW",
            serde_json::json!({}),
        ));
        assert_eq!(
            prepare(&a).body.as_deref(),
            Some(&b"The Time Is 2024-05-06T07:08:09+00:00"[..])
        );
    }

    #[test]
    fn body_and_body_json_are_the_last_ping_body() {
        let a = alert(down(
            "POST",
            "http://host",
            "$BODY|$BODY_JSON",
            serde_json::json!({}),
        ));
        assert_eq!(
            prepare(&a).text_body(),
            "Body Line 1\nBody Line 2|\"Body Line 1\\nBody Line 2\""
        );
    }

    #[test]
    fn body_is_not_available_in_url_and_headers() {
        let a = alert(down(
            "POST",
            "http://host/$BODY",
            "",
            serde_json::json!({"User-Agent": "$BODY"}),
        ));
        let request = prepare(&a);
        assert!(request.url.ends_with("$BODY"));
        assert_eq!(
            request.headers,
            vec![("User-Agent".to_owned(), b"$BODY".to_vec())]
        );
    }

    #[test]
    fn exit_status_is_minus_one_when_unknown() {
        let mut a = alert(down(
            "POST",
            "http://host",
            "Exit status $EXITSTATUS",
            serde_json::json!({}),
        ));
        assert_eq!(prepare(&a).text_body(), "Exit status 123");
        a.last_ping.as_mut().expect("ping").exitstatus = None;
        assert_eq!(prepare(&a).text_body(), "Exit status -1");
        a.last_ping = None;
        assert_eq!(prepare(&a).text_body(), "Exit status -1");
    }

    #[test]
    fn name_is_not_escaped_and_name_json_is() {
        let mut a = alert(down(
            "POST",
            "http://host",
            "$NAME $NAME_JSON",
            serde_json::json!({}),
        ));
        a.check.name = "Project \"Foo\" ā".to_owned();
        assert_eq!(
            prepare(&a).text_body(),
            "Project \"Foo\" ā \"Project \\\"Foo\\\" \\u0101\""
        );
    }

    #[test]
    fn header_values_are_latin1_with_xml_char_refs() {
        let a = alert(down(
            "GET",
            "http://host",
            "",
            serde_json::json!({"X-Foo": "bār", "X-Half": "½", "X-Msg": "$NAME is DOWN"}),
        ));
        let request = prepare(&a);
        assert_eq!(
            request.headers,
            vec![
                ("X-Foo".to_owned(), b"b&#257;r".to_vec()),
                ("X-Half".to_owned(), vec![0xbd]),
                ("X-Msg".to_owned(), b"Backup is DOWN".to_vec()),
            ]
        );
    }

    #[test]
    fn the_body_is_sent_only_for_post_and_put() {
        let a = alert(down("GET", "http://host", "data", serde_json::json!({})));
        assert_eq!(prepare(&a).body, None);
        let a = alert(down("PUT", "http://host", "data", serde_json::json!({})));
        let request = prepare(&a);
        assert_eq!(request.method, "PUT");
        assert_eq!(request.body.as_deref(), Some(&b"data"[..]));
    }

    #[test]
    fn unicode_bodies_are_utf8() {
        let a = alert(down(
            "POST",
            "http://host",
            "(╯°□°）╯︵ ┻━┻",
            serde_json::json!({}),
        ));
        assert_eq!(prepare(&a).text_body(), "(╯°□°）╯︵ ┻━┻");
    }

    #[test]
    fn up_flips_use_the_up_spec() {
        let mut a = alert(serde_json::json!({
            "method_down": "GET", "url_down": "", "body_down": "", "headers_down": {},
            "method_up": "GET", "url_up": "http://bar/$STATUS", "body_up": "", "headers_up": {},
        }));
        a.flip.new_status = "up".to_owned();
        assert_eq!(prepare(&a).url, "http://bar/up");
    }

    #[test]
    fn an_empty_url_is_a_noop() {
        let value = down("GET", "http://host", "", serde_json::json!({})).to_string();
        assert!(!is_noop(&value, "down"));
        assert!(is_noop(&value, "up"));
        assert!(!is_noop("not json", "up"));
    }

    #[test]
    fn webhooks_can_be_disabled() {
        let a = alert(down("GET", "http://host", "", serde_json::json!({})));
        let mut settings = settings();
        settings.webhooks_enabled = false;
        let err = prepare_request(&settings, &a, Utc::now()).expect_err("disabled");
        assert_eq!(err.message, "Webhook notifications are not enabled.");
        assert_eq!(err.failure, super::super::Failure::Final);
    }

    #[test]
    fn json_is_the_api_v3_check_dict() {
        let mut a = alert(down("POST", "http://host", "$JSON", serde_json::json!({})));
        a.check.status = "up".to_owned();
        a.check.last_ping = Some(at("2024-05-06T07:30:00Z"));
        a.check.channels = vec![uuid::Uuid::nil()];
        let code = a.check.code;
        let expected = format!(
            "{{\"name\": \"Backup\", \"slug\": \"backup\", \"tags\": \"foo bar\", \"desc\": \"\", \
             \"grace\": 3600, \"n_pings\": 3, \"status\": \"up\", \"started\": false, \
             \"last_ping\": \"2024-05-06T07:30:00+00:00\", \"next_ping\": \"2024-05-07T07:30:00+00:00\", \
             \"manual_resume\": false, \"methods\": \"\", \"subject\": \"\", \"subject_fail\": \"\", \
             \"start_kw\": \"\", \"success_kw\": \"\", \"failure_kw\": \"\", \"filter_subject\": false, \
             \"filter_body\": false, \"filter_http_body\": false, \"filter_default_fail\": false, \
             \"badge_url\": \"http://hc.example/b/2/00000000-0000-0000-0000-000000000000.svg\", \
             \"uuid\": \"{code}\", \"ping_url\": \"http://hc.example/ping/{code}\", \
             \"update_url\": \"http://hc.example/api/v3/checks/{code}\", \
             \"pause_url\": \"http://hc.example/api/v3/checks/{code}/pause\", \
             \"resume_url\": \"http://hc.example/api/v3/checks/{code}/resume\", \
             \"channels\": \"00000000-0000-0000-0000-000000000000\", \"timeout\": 86400}}"
        );
        assert_eq!(prepare(&a).text_body(), expected);
    }

    #[test]
    fn json_has_last_duration_before_uuid_and_the_check_badge() {
        let mut a = alert(down("POST", "http://host", "$JSON", serde_json::json!({})));
        a.check.last_duration = Some(TimeDelta::milliseconds(90_900));
        a.check.badge_key = uuid::Uuid::from_u128(1);
        a.check.filter_http_body = true;
        let body = prepare(&a).text_body();
        let code = a.check.code;
        assert!(
            body.contains(
                "\"filter_http_body\": true, \"filter_default_fail\": false, \
                 \"badge_url\": \"http://hc.example/b/2/00000000-0000-0000-0000-000000000001.svg\", \
                 \"last_duration\": 90, \"uuid\": \""
            ),
            "{body}"
        );
        assert!(body.contains(&format!("\"uuid\": \"{code}\", \"ping_url\"")));
    }

    #[test]
    fn json_shows_the_schedule_of_cron_checks() {
        let mut a = alert(down("POST", "http://host", "$JSON", serde_json::json!({})));
        a.check.kind = "cron".to_owned();
        a.check.schedule = "0 * * * *".to_owned();
        a.check.tz = "Europe/Riga".to_owned();
        let body = prepare(&a).text_body();
        assert!(
            body.ends_with("\"schedule\": \"0 * * * *\", \"tz\": \"Europe/Riga\"}"),
            "{body}"
        );
    }

    #[test]
    fn python_json_escapes_like_python() {
        assert_eq!(
            PyJson::Str("a\"b\\c\n\u{1}é😀".to_owned()).dumps(),
            "\"a\\\"b\\\\c\\n\\u0001\\u00e9\\ud83d\\ude00\""
        );
    }

    #[test]
    fn tags_beyond_nine_read_as_tag1_and_a_digit() {
        let mut a = alert(down("GET", "http://host/$TAG10", "", serde_json::json!({})));
        a.check.tags = "a b c d e f g h i j".to_owned();
        assert_eq!(prepare(&a).url, "http://host/a0");
    }

    impl HttpRequest {
        fn text_body(&self) -> String {
            String::from_utf8(self.body.clone().unwrap_or_default()).expect("utf-8 body")
        }
    }
}
