//! What a transport is given to send: one notification of one flip on one channel, with the
//! check, its project, the channel and the check's last ping as they are when it is delivered.
//!
//! The delivery step (`deliveries`) loads an [`Alert`] from the database; transports only read it.

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

/// One notification to deliver.
#[derive(Debug, Clone)]
pub struct Alert {
    /// `api_notification.code` of this delivery (`$CODE` is the check's code, not this).
    pub notification: Uuid,
    /// The flip being announced.
    pub flip: Flip,
    /// The check the flip belongs to, as it is now.
    pub check: Check,
    /// The check's project.
    pub project: Project,
    /// The channel to deliver on.
    pub channel: Channel,
    /// The latest ping with `created <= flip.created` (§3.6 `last_ping(flip)`), if any.
    pub last_ping: Option<Ping>,
    /// For an up flip: when the check went down, if the previous flip was a down flip
    /// ("The downtime lasted …" is `flip.created - down_since`).
    pub down_since: Option<DateTime<Utc>>,
    /// The project's other checks that are down, in Healthchecks' order (`sortchecks(…,
    /// "name")`); `None` when the project has no other checks (§3.6 `down_checks`), and always
    /// `None` for webhooks, which do not list them (not loaded, for speed).
    pub other_down: Option<Vec<OtherCheck>>,
}

/// Another down check of the project, as the chat kinds list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherCheck {
    /// `api_check.name`.
    pub name: String,
    /// `api_check.code`.
    pub code: Uuid,
    /// `api_check.last_ping`.
    pub last_ping: Option<DateTime<Utc>>,
}

impl OtherCheck {
    /// The name, or the code when it has none (`name_then_code`).
    pub fn name_then_code(&self) -> String {
        if self.name.is_empty() {
            self.code.to_string()
        } else {
            self.name.clone()
        }
    }

    /// Healthchecks' `natural_name_key`: the name lowercased and stripped, every run of digits
    /// zero-padded to 8 (a sort by it is stable, so ties keep the database order).
    pub fn natural_name_key(&self) -> String {
        let name = self.name.trim().to_lowercase();
        let mut key = String::with_capacity(name.len());
        let mut chars = name.chars().peekable();
        while let Some(c) = chars.next() {
            if c.is_ascii_digit() {
                let mut run = String::from(c);
                while let Some(d) = chars.next_if(char::is_ascii_digit) {
                    run.push(d);
                }
                let digits = run.trim_start_matches('0');
                let digits = if digits.is_empty() { "0" } else { digits };
                key.push_str(&format!("{digits:0>8}"));
            } else {
                key.push(c);
            }
        }
        key
    }
}

/// A row of `api_flip`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flip {
    /// `id`.
    pub id: i32,
    /// `created`: when the status changed (for timeouts, the deadline, not the detection time).
    pub created: DateTime<Utc>,
    /// `old_status`.
    pub old_status: String,
    /// `new_status`: `up` or `down` for flips that notify.
    pub new_status: String,
    /// `reason`: `""`, `timeout` or `fail`.
    pub reason: String,
}

/// The columns of `api_check` that notifications show.
#[derive(Debug, Clone, Default)]
pub struct Check {
    /// `id`.
    pub id: i32,
    /// `code`: the ping URL's UUID.
    pub code: Uuid,
    /// `name` (may be empty: then templates show the code).
    pub name: String,
    /// `slug`.
    pub slug: String,
    /// `tags`: space-separated.
    pub tags: String,
    /// `desc`.
    pub desc: String,
    /// `kind`: `simple`, `cron` or `oncalendar` (as stored).
    pub kind: String,
    /// `timeout`.
    pub timeout: TimeDelta,
    /// `grace`.
    pub grace: TimeDelta,
    /// `schedule`.
    pub schedule: String,
    /// `tz`.
    pub tz: String,
    /// `status` as stored now (may differ from the flip's new status by delivery time).
    pub status: String,
    /// `n_pings`.
    pub n_pings: i32,
    /// `last_ping`.
    pub last_ping: Option<DateTime<Utc>>,
    /// `last_start`.
    pub last_start: Option<DateTime<Utc>>,
    /// `last_duration`.
    pub last_duration: Option<TimeDelta>,
    /// `created`.
    pub created: DateTime<Utc>,
    /// `manual_resume`.
    pub manual_resume: bool,
    /// `methods`: `""` or `POST`.
    pub methods: String,
    /// `start_kw`, `success_kw`, `failure_kw`: keyword filters.
    pub start_kw: String,
    /// See [`Check::start_kw`].
    pub success_kw: String,
    /// See [`Check::start_kw`].
    pub failure_kw: String,
    /// `filter_subject`.
    pub filter_subject: bool,
    /// `filter_body`.
    pub filter_body: bool,
    /// `filter_default_fail`.
    pub filter_default_fail: bool,
    /// `filter_http_body`.
    pub filter_http_body: bool,
    /// `badge_key`, for `badge_url` in `$JSON`.
    pub badge_key: Uuid,
    /// Codes of the channels assigned to the check (`api_channel_checks`), for `channels` in the
    /// webhook's `$JSON` (any order: it is sorted when printed).
    pub channels: Vec<Uuid>,
}

impl Check {
    /// The check's name, or its code when it has none (Healthchecks' `name_then_code`).
    pub fn name_then_code(&self) -> String {
        if self.name.is_empty() {
            self.code.to_string()
        } else {
            self.name.clone()
        }
    }

    /// `unique_key`: sha1 of the first 16 hex digits of the code (§3.7), used in cloaked links
    /// so notifications never reveal the ping UUID.
    pub fn unique_key(&self) -> String {
        unique_key(&self.code)
    }
}

/// `unique_key` of the check with `code`: sha1 of the first 16 hex digits of the code (§3.7).
pub fn unique_key(code: &Uuid) -> String {
    let hex = code.simple().to_string();
    crate::digest::sha1_hex(&hex.as_bytes()[..16])
}

/// The project of a check, and its owner's preferences.
#[derive(Debug, Clone, Default)]
pub struct Project {
    /// `accounts_project.code`.
    pub code: Uuid,
    /// `accounts_project.name`.
    pub name: String,
    /// The owner's `accounts_profile.tz` (`UTC` when there is no profile).
    pub owner_tz: String,
    /// The owner's `auth_user.email`.
    pub owner_email: String,
}

/// A row of `api_channel`.
#[derive(Debug, Clone, Default)]
pub struct Channel {
    /// `id`.
    pub id: i32,
    /// `code`.
    pub code: Uuid,
    /// `kind`.
    pub kind: String,
    /// `value`: the kind-specific configuration, exactly as stored.
    pub value: String,
    /// `name`.
    pub name: String,
    /// `email_verified`.
    pub email_verified: bool,
}

/// The body of a ping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PingBody {
    /// The ping had no body.
    None,
    /// Stored in the row (`body_raw`).
    Inline(Vec<u8>),
    /// Offloaded to object storage (`object_size` bytes), not readable by this service yet.
    InObjectStorage(i32),
}

/// A row of `api_ping`.
#[derive(Debug, Clone)]
pub struct Ping {
    /// `n`.
    pub n: Option<i32>,
    /// `created`.
    pub created: DateTime<Utc>,
    /// `kind`: `None` (success), `start`, `fail`, `ign` or `log`.
    pub kind: Option<String>,
    /// `scheme`: `http`, `https` or `email`.
    pub scheme: String,
    /// `remote_addr`.
    pub remote_addr: Option<String>,
    /// `method`.
    pub method: String,
    /// `ua`.
    pub ua: String,
    /// `exitstatus`.
    pub exitstatus: Option<i16>,
    /// The body.
    pub body: PingBody,
}
