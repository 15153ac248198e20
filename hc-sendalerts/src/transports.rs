//! Notification transports: one module per channel kind, behind [`Transports::notify`].
//!
//! A transport makes **one attempt** and classifies its failure ([`Failure`]); the delivery step
//! (`deliveries`) retries transient failures with backoff, records the result in
//! `api_notification` and disables the channel on a permanent one. Whether a channel is a no-op
//! for a status ([`is_noop`]) is decided when a flip is processed, so a no-op channel gets no
//! notification row (§3.4).
//!
//! Most transports are network-only, but a few touch the database through [`Transports::pool`],
//! outside the transaction that records the result (so these writes stay even if the attempt
//! fails or is retried):
//! * `ntfy`, `po` (Pushover) and `telegram` take a token from Healthchecks' `api_tokenbucket`
//!   before sending (`tokenbucket::require`, an upsert); an empty bucket is the final error
//!   "Rate limit exceeded".
//! * `telegram` writes the new chat id into `api_channel.value` when Telegram says the group
//!   became a supergroup, then sends once more.
//! * `email` reads the recipient's account (`auth_user`, `accounts_profile`, `accounts_project`,
//!   `accounts_member`, `api_check`) for its time zone and the "Projects Overview".
//!
//! A database failure in any of these is a transient failure of the attempt.

pub mod chat;
pub mod discord;
pub mod email;
pub mod googlechat;
pub mod gotify;
pub mod http;
pub mod matrix;
pub mod mattermost;
pub mod msteamsw;
pub mod ntfy;
pub mod pushover;
pub mod rocketchat;
pub mod slack;
pub mod telegram;
pub mod text;
pub mod tokenbucket;
pub mod webhook;

use hc_core::config::ConfigError;
use hc_core::config::Vars;

use crate::alert::Alert;

/// How a delivery attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Worth another try later: a timeout, a refused connection, HTTP 5xx, SMTP 4xx.
    Transient,
    /// Recorded as the error at once; the channel stays enabled (HTTP 4xx, "Email not
    /// verified", an unsupported kind, a malformed value).
    Final,
    /// Recorded at once, and the channel is disabled (for example Slack's `invalid_token`).
    Permanent,
}

/// A failed delivery attempt: the message stored in `api_notification.error` (at most 200
/// characters) and `api_channel.last_error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError {
    /// Healthchecks' wording where it has one ("Received status code 500").
    pub message: String,
    /// Whether to retry, record, or record and disable.
    pub failure: Failure,
}

impl TransportError {
    /// A transient failure.
    pub fn transient(message: impl Into<String>) -> TransportError {
        TransportError {
            message: message.into(),
            failure: Failure::Transient,
        }
    }

    /// A final failure.
    pub fn fail(message: impl Into<String>) -> TransportError {
        TransportError {
            message: message.into(),
            failure: Failure::Final,
        }
    }

    /// A permanent failure (the channel gets disabled).
    pub fn permanent(message: impl Into<String>) -> TransportError {
        TransportError {
            message: message.into(),
            failure: Failure::Permanent,
        }
    }
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Settings shared by all transports, from Healthchecks' variable names.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `SITE_ROOT` without a trailing slash (links in notifications).
    pub site_root: String,
    /// `SITE_NAME`.
    pub site_name: String,
    /// `PING_ENDPOINT` (default `SITE_ROOT/ping/`), for `ping_url` in the webhook's `$JSON`.
    pub ping_endpoint: String,
    /// `SECRET_KEY`: signs unsubscribe links and keys token buckets.
    pub secret_key: hc_core::config::Secret<String>,
    /// HTTP client settings (`INTEGRATIONS_ALLOW_PRIVATE_IPS`, timeouts).
    pub http: http::HttpSettings,
    /// Email settings (`EMAIL_*`, `DEFAULT_FROM_EMAIL`).
    pub email: email::EmailSettings,
    /// `WEBHOOKS_ENABLED`.
    pub webhooks_enabled: bool,
    /// The chat and push kinds' settings (`MSTEAMS_ENABLED`, `TELEGRAM_TOKEN`, `PUSHOVER_*`,
    /// `MATRIX_*`, `NTFY_SH_TOKEN`).
    pub chat: chat::ChatSettings,
    /// `SLACK_ENABLED`.
    pub slack_enabled: bool,
    /// `MATTERMOST_ENABLED`.
    pub mattermost_enabled: bool,
    /// `ROCKETCHAT_ENABLED`.
    pub rocketchat_enabled: bool,
    /// The absolute URL of the site logo: `SITE_LOGO_URL`, or `SITE_ROOT/static/img/logo.png`
    /// (Healthchecks' `absolute_site_logo_url`); chat messages use it as the sender's icon.
    pub site_logo_url: String,
}

impl Settings {
    /// Reads the settings; the first bad variable is the error.
    pub fn from_vars(vars: &impl Vars) -> Result<Settings, ConfigError> {
        let site_root = hc_core::config::string_var(vars, "SITE_ROOT", "http://localhost:8000")
            .trim_end_matches('/')
            .to_owned();
        let site_logo_url =
            hc_core::config::string_var(vars, "SITE_LOGO_URL", "/static/img/logo.png");
        let site_logo_url = if site_logo_url.starts_with('/') {
            format!("{site_root}{site_logo_url}")
        } else {
            site_logo_url
        };
        let ping_endpoint =
            hc_core::config::string_var(vars, "PING_ENDPOINT", &format!("{site_root}/ping/"));
        Ok(Settings {
            ping_endpoint,
            site_root,
            site_name: hc_core::config::string_var(vars, "SITE_NAME", "Mychecks"),
            // Healthchecks' default, so links signed by a default install still verify.
            secret_key: hc_core::config::secret(vars, "SECRET_KEY")?
                .unwrap_or_else(|| hc_core::config::Secret::new("---".to_owned())),
            http: http::HttpSettings::from_vars(vars)?,
            email: email::EmailSettings::from_vars(vars)?,
            webhooks_enabled: hc_core::config::parse_bool(vars, "WEBHOOKS_ENABLED", true)?,
            chat: chat::ChatSettings::from_vars(vars)?,
            slack_enabled: hc_core::config::parse_bool(vars, "SLACK_ENABLED", true)?,
            mattermost_enabled: hc_core::config::parse_bool(vars, "MATTERMOST_ENABLED", true)?,
            rocketchat_enabled: hc_core::config::parse_bool(vars, "ROCKETCHAT_ENABLED", true)?,
            site_logo_url,
        })
    }
}

/// Everything transports share at run time: settings, the HTTP client, the mailer, and the
/// database pool (for the transports that touch the database; see the module doc).
pub struct Transports {
    /// The settings.
    pub settings: Settings,
    /// The HTTP client every HTTP transport uses.
    pub http: http::HttpClient,
    /// The SMTP sender.
    pub email: email::Mailer,
    /// The database: rate limits, Telegram's chat migration, the email recipient's account.
    pub pool: deadpool_postgres::Pool,
}

impl Transports {
    /// Builds the clients from `settings`.
    pub fn new(settings: Settings, pool: deadpool_postgres::Pool) -> anyhow::Result<Transports> {
        Ok(Transports {
            http: http::HttpClient::new(&settings.http)?,
            email: email::Mailer::new(&settings.email)?,
            settings,
            pool,
        })
    }

    /// Makes one delivery attempt of `alert` on its channel.
    pub async fn notify(&self, alert: &Alert) -> Result<(), TransportError> {
        match alert.channel.kind.as_str() {
            "email" => email::notify(self, alert).await,
            "webhook" => webhook::notify(self, alert).await,
            "msteamsw" => msteamsw::notify(self, alert).await,
            "googlechat" => googlechat::notify(self, alert).await,
            "ntfy" => ntfy::notify(self, alert).await,
            "gotify" => gotify::notify(self, alert).await,
            "po" => pushover::notify(self, alert).await,
            "telegram" => telegram::notify(self, alert).await,
            "matrix" => matrix::notify(self, alert).await,
            "slack" => slack::notify(self, alert).await,
            "mattermost" => mattermost::notify(self, alert).await,
            "rocketchat" => rocketchat::notify(self, alert).await,
            "discord" => discord::notify(self, alert).await,
            kind => Err(unsupported(kind)),
        }
    }
}

/// The error of a channel kind this service cannot deliver to.
pub fn unsupported(kind: &str) -> TransportError {
    TransportError::fail(format!("unsupported channel kind: {kind}"))
}

/// Whether a channel of `kind` with `value` sends nothing for `new_status` (`up` or `down`), so
/// that no notification row is created for it (Healthchecks' `Transport.is_noop`).
///
/// A value that cannot be parsed is not a no-op: the delivery records why it failed.
pub fn is_noop(kind: &str, value: &str, new_status: &str) -> bool {
    match kind {
        "email" => email::is_noop(value, new_status),
        "webhook" => webhook::is_noop(value, new_status),
        "ntfy" => ntfy::is_noop(value, new_status),
        "gotify" => gotify::is_noop(value, new_status),
        "po" => pushover::is_noop(value, new_status),
        // Chat webhooks announce both directions.
        "slack" | "mattermost" | "rocketchat" | "discord" => false,
        _ => false,
    }
}
