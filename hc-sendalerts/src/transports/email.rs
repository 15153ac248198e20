//! The `email` kind (§3.8): one message per alert over SMTP to `EMAIL_HOST`, with a text and an
//! HTML part and `List-Unsubscribe` headers signed like the Django app's, so its unsubscribe view
//! accepts them.
//!
//! The message is composed by pure functions ([`compose()`]); [`notify`] looks up the account that
//! has the recipient's address, if any (its time zone, else the project owner's, and its projects
//! for the "Projects Overview"), sends the message and sorts SMTP failures into transient (4xx,
//! connection) and final (5xx) ones.
//!
//! When the last ping came by email, its original message is attached as `last-ping.eml`
//! (`message/rfc822`, nested messages cut out by [`eml`]) next to the text and HTML parts, and its
//! decoded subject is one of the details. A message still in object storage is not attached: this
//! service has no S3 client yet, so the alert says the body is being processed.
//!
//! This file is the transport: the settings, [`notify`], the recipient's account and the SMTP
//! conversation. The submodule `compose` owns the message content, `eml` the attachment.

mod compose;
mod eml;

use std::time::Duration;

use chrono::{DateTime, Utc};
use hc_core::config::{ConfigError, Secret, Vars};
use hc_core::status::{CheckTiming, Status};
use lettre::Address;
use lettre::message::Mailbox;
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Rcpt};
use lettre::transport::smtp::extension::ClientId;
use uuid::Uuid;

use super::{TransportError, Transports};
use crate::alert::Alert;

pub use compose::{Composed, compose, subject, unsubscribe_url};

/// How long one SMTP conversation may take (connect, TLS, delivery).
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest error message stored (`api_notification.error`).
const MAX_ERROR_CHARS: usize = 200;

/// SMTP settings, from Healthchecks' variable names.
#[derive(Debug, Clone)]
pub struct EmailSettings {
    /// `EMAIL_HOST`: empty means email cannot be sent.
    pub host: String,
    /// `EMAIL_PORT` (587).
    pub port: u16,
    /// `EMAIL_USE_TLS` (True): STARTTLS, required.
    pub use_tls: bool,
    /// `EMAIL_USE_SSL` (False): implicit TLS.
    pub use_ssl: bool,
    /// `EMAIL_HOST_USER`: empty means no authentication.
    pub user: String,
    /// `EMAIL_HOST_PASSWORD` (or `_FILE`).
    pub password: Option<Secret<String>>,
    /// `DEFAULT_FROM_EMAIL`: the `From` header, and the envelope sender unless
    /// [`EmailSettings::mail_from_tmpl`] is set.
    pub from: String,
    /// `EMAIL_MAIL_FROM_TMPL`: the envelope sender with `%s` standing for a signed bounce id
    /// (for example `bounces+%s@example.org`); empty means `DEFAULT_FROM_EMAIL`.
    pub mail_from_tmpl: String,
}

impl EmailSettings {
    /// Reads the settings; the first bad variable is the error.
    pub fn from_vars(vars: &impl Vars) -> Result<EmailSettings, ConfigError> {
        let settings = EmailSettings {
            host: hc_core::config::string_var(vars, "EMAIL_HOST", ""),
            port: hc_core::config::parse_var(vars, "EMAIL_PORT", 587)?,
            use_tls: hc_core::config::parse_bool(vars, "EMAIL_USE_TLS", true)?,
            use_ssl: hc_core::config::parse_bool(vars, "EMAIL_USE_SSL", false)?,
            user: hc_core::config::string_var(vars, "EMAIL_HOST_USER", ""),
            password: hc_core::config::secret(vars, "EMAIL_HOST_PASSWORD")?,
            from: hc_core::config::string_var(
                vars,
                "DEFAULT_FROM_EMAIL",
                "healthchecks@example.org",
            ),
            mail_from_tmpl: hc_core::config::string_var(vars, "EMAIL_MAIL_FROM_TMPL", ""),
        };
        if settings.use_tls && settings.use_ssl {
            // Django refuses the same combination.
            return Err(ConfigError(
                "EMAIL_USE_TLS and EMAIL_USE_SSL are mutually exclusive: set one to False".into(),
            ));
        }
        settings.from.parse::<Mailbox>().map_err(|err| {
            ConfigError(format!(
                "DEFAULT_FROM_EMAIL: \"{}\" is not an email address: {err}",
                settings.from
            ))
        })?;
        let tmpl = &settings.mail_from_tmpl;
        if !tmpl.is_empty() && (!tmpl.contains('@') || tmpl.contains(['<', '>', ' ', '\r', '\n'])) {
            return Err(ConfigError(format!(
                "EMAIL_MAIL_FROM_TMPL: \"{tmpl}\" is not an address template such as bounces+%s@example.org"
            )));
        }
        Ok(settings)
    }
}

/// The SMTP sender: one connection per message to `EMAIL_HOST`, as Django's mail backend does,
/// or nothing when `EMAIL_HOST` is not set.
///
/// lettre's pooled transport would need the envelope sender as a lettre `Address`, which refuses
/// local parts over 64 characters; Healthchecks' bounce ids are 64 characters by themselves, so
/// the conversation is driven here on lettre's public connection type instead.
#[derive(Clone)]
pub struct Mailer {
    server: Option<Server>,
}

/// Where and how to connect.
#[derive(Clone)]
struct Server {
    host: String,
    port: u16,
    /// Implicit TLS (`EMAIL_USE_SSL`).
    implicit_tls: Option<TlsParameters>,
    /// STARTTLS, required (`EMAIL_USE_TLS`).
    starttls: Option<TlsParameters>,
    credentials: Option<Credentials>,
    hello_name: ClientId,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("host", &self.server.as_ref().map(|server| &server.host))
            .finish()
    }
}

impl Mailer {
    /// Builds the sender (no connection is made yet).
    pub fn new(settings: &EmailSettings) -> anyhow::Result<Mailer> {
        if settings.host.is_empty() {
            return Ok(Mailer { server: None });
        }
        let tls = || TlsParameters::new(settings.host.clone());
        let credentials = (!settings.user.is_empty()).then(|| {
            let password = settings
                .password
                .as_ref()
                .map(|secret| secret.expose().clone())
                .unwrap_or_default();
            Credentials::new(settings.user.clone(), password)
        });
        Ok(Mailer {
            server: Some(Server {
                host: settings.host.clone(),
                port: settings.port,
                implicit_tls: settings.use_ssl.then(tls).transpose()?,
                starttls: settings.use_tls.then(tls).transpose()?,
                credentials,
                hello_name: ClientId::default(),
            }),
        })
    }
}

impl Server {
    /// One SMTP conversation delivering `email` from `mail_from` to `to`.
    async fn deliver(&self, mail_from: &str, to: &Address, email: &[u8]) -> Result<(), SmtpError> {
        let mut connection = AsyncSmtpConnection::connect_tokio1(
            (self.host.as_str(), self.port),
            Some(SMTP_TIMEOUT),
            &self.hello_name,
            self.implicit_tls.clone(),
            None,
        )
        .await?;
        let result = self.converse(&mut connection, mail_from, to, email).await;
        match result {
            Ok(()) => {
                // The message is accepted; a failed QUIT changes nothing.
                let _ = connection.quit().await;
            }
            Err(_) => connection.abort().await,
        }
        result
    }

    async fn converse(
        &self,
        connection: &mut AsyncSmtpConnection,
        mail_from: &str,
        to: &Address,
        email: &[u8],
    ) -> Result<(), SmtpError> {
        if let Some(tls) = &self.starttls {
            connection.starttls(tls.clone(), &self.hello_name).await?;
        }
        if let Some(credentials) = &self.credentials {
            connection
                .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await?;
        }
        connection.command(MailFrom(mail_from)).await?;
        connection
            .command(Rcpt::new(to.clone(), Vec::new()))
            .await?;
        connection.command(Data).await?;
        connection.message(email).await?;
        Ok(())
    }
}

/// `MAIL FROM` with an address lettre's `Address` would refuse (see [`Mailer`]); the message is
/// 7-bit (lettre encodes non-ASCII parts), so no `BODY=8BITMIME` parameter is needed.
struct MailFrom<'a>(&'a str);

impl std::fmt::Display for MailFrom<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MAIL FROM:<{}>\r\n", self.0)
    }
}

/// Whether the channel's up/down flag is off for `new_status`.
pub fn is_noop(value: &str, new_status: &str) -> bool {
    let Ok(spec) = serde_json::from_str::<serde_json::Value>(value) else {
        return false;
    };
    spec.get(new_status)
        .and_then(|flag| flag.as_bool())
        .is_some_and(|on| !on)
}

/// The recipient of a channel value: a plain address (legacy) or JSON `{"value": address, …}`.
pub fn recipient(value: &str) -> Option<String> {
    match serde_json::from_str::<serde_json::Value>(value) {
        Ok(serde_json::Value::Object(spec)) => spec
            .get("value")
            .and_then(|address| address.as_str())
            .map(str::to_owned),
        _ => Some(value.trim().to_owned()),
    }
}

/// Sends `alert` by email: one SMTP attempt.
pub async fn notify(transports: &Transports, alert: &Alert) -> Result<(), TransportError> {
    if !alert.channel.email_verified {
        return Err(TransportError::fail("Email not verified"));
    }
    if is_noop(&alert.channel.value, &alert.flip.new_status) {
        return Ok(());
    }
    let Some(server) = &transports.email.server else {
        return Err(TransportError::fail(
            "Email cannot be sent: EMAIL_HOST is not set",
        ));
    };
    let account = match recipient(&alert.channel.value) {
        Some(address) => recipient_account(&transports.pool, &address).await?,
        None => None,
    };
    let composed = compose(&transports.settings, alert, account.as_ref(), Utc::now())?;
    let delivery = server.deliver(&composed.mail_from, &composed.to, &composed.email);
    match tokio::time::timeout(SMTP_TIMEOUT, delivery).await {
        Ok(result) => result.map_err(classify),
        Err(_) => Err(TransportError::transient("SMTP timed out")),
    }
}

/// What the alert uses of the account whose email address is the recipient's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Account {
    /// The account's preferred time zone (`accounts_profile.tz`); `None` without a profile, and
    /// then the project owner's zone is used.
    pub tz: Option<String>,
    /// The projects the account owns or is a member of, ordered by name: the "Projects Overview".
    pub projects: Vec<ProjectOverview>,
}

/// One project of the "Projects Overview".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectOverview {
    /// The project's name, or its owner's address when it has none (Healthchecks' `str(project)`).
    pub name: String,
    /// `accounts_project.code`, for the link to its checks.
    pub code: Uuid,
    /// How many of its checks are down now.
    pub n_down: i64,
}

/// The account whose email address is `address`, if there is one, in one query: Healthchecks
/// shows datetimes in the recipient's preferred zone (the project owner's otherwise) and, to
/// registered users only, an overview of their projects.
///
/// A registered user is an `auth_user` with exactly this address (Django's `user__email=…` is
/// case-sensitive); with several, the oldest. Healthchecks looks for a profile, which Django
/// creates with every account; an account without one still gets the overview here, with the
/// owner's time zone.
pub async fn recipient_account(
    pool: &deadpool_postgres::Pool,
    address: &str,
) -> Result<Option<Account>, TransportError> {
    // One row per check of each project (NULLs for a project without checks, and for a user
    // without projects), none when no user has the address. Projects come in
    // `Profile.projects()` order, by lower-cased name.
    const SQL: &str = concat!(
        "SELECT p.tz, pr.id, pr.code, COALESCE(NULLIF(pr.name, ''), o.email) AS name, ",
        hc_core::timing_columns!("c"),
        " \
          FROM (SELECT id FROM auth_user WHERE email = $1 ORDER BY id LIMIT 1) u \
          LEFT JOIN accounts_profile p ON p.user_id = u.id \
          LEFT JOIN accounts_project pr \
                 ON pr.id IN (SELECT id FROM accounts_project WHERE owner_id = u.id \
                              UNION \
                              SELECT project_id FROM accounts_member WHERE user_id = u.id) \
          LEFT JOIN auth_user o ON o.id = pr.owner_id \
          LEFT JOIN api_check c ON c.project_id = pr.id \
         ORDER BY lower(pr.name), pr.id"
    );
    let lookup_failed = |err: &dyn std::fmt::Display| {
        TransportError::transient(format!("cannot look up the recipient's account: {err}"))
    };
    let client = pool.get().await.map_err(|err| lookup_failed(&err))?;
    let rows = client
        .query(SQL, &[&address])
        .await
        .map_err(|err| lookup_failed(&err))?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let mut account = Account {
        tz: first.try_get("tz").map_err(|err| lookup_failed(&err))?,
        projects: Vec::new(),
    };
    let now = Utc::now();
    let mut last_project = None;
    for row in &rows {
        let project: Option<i32> = row.try_get("id").map_err(|err| lookup_failed(&err))?;
        let Some(project) = project else { continue };
        if last_project != Some(project) {
            last_project = Some(project);
            account.projects.push(ProjectOverview {
                name: row.try_get("name").map_err(|err| lookup_failed(&err))?,
                code: row.try_get("code").map_err(|err| lookup_failed(&err))?,
                n_down: 0,
            });
        }
        if is_down(row, now).map_err(|err| lookup_failed(&err))? {
            if let Some(overview) = account.projects.last_mut() {
                overview.n_down += 1;
            }
        }
    }
    Ok(Some(account))
}

/// Whether the check of an overview row is down as the dashboard shows it
/// (`Project.get_n_down` uses `Check.get_status`); `false` for a row without a check, and for a
/// check whose schedule cannot be evaluated.
fn is_down(row: &tokio_postgres::Row, now: DateTime<Utc>) -> Result<bool, tokio_postgres::Error> {
    let status: Option<String> = row.try_get("timing_status")?;
    if status.is_none() {
        return Ok(false);
    }
    let timing = CheckTiming::from_row(row)?;
    Ok(matches!(timing.status(now, false), Ok(Status::Down)))
}

/// Sorts an SMTP failure: a 5xx reply is final, anything else (4xx, refused or dropped
/// connections, timeouts, TLS) is worth another try.
fn classify(err: SmtpError) -> TransportError {
    let mut message = format!("SMTP error: {err}");
    if let Some((cut, _)) = message.char_indices().nth(MAX_ERROR_CHARS) {
        message.truncate(cut);
    }
    if err.is_permanent() {
        TransportError::fail(message)
    } else {
        TransportError::transient(message)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn email_settings_defaults() {
        let settings = EmailSettings::from_vars(&HashMap::<&str, &str>::new()).expect("parse");
        assert_eq!(settings.host, "");
        assert_eq!(settings.port, 587);
        assert!(settings.use_tls);
        assert!(!settings.use_ssl);
        assert_eq!(settings.from, "healthchecks@example.org");
        assert_eq!(settings.mail_from_tmpl, "");
    }

    #[test]
    fn tls_and_ssl_are_exclusive() {
        let vars = HashMap::from([("EMAIL_USE_TLS", "True"), ("EMAIL_USE_SSL", "True")]);
        let err = EmailSettings::from_vars(&vars).expect_err("both set");
        assert!(err.0.contains("mutually exclusive"), "{}", err.0);
    }

    #[test]
    fn booleans_are_healthchecks_booleans() {
        let vars = HashMap::from([("EMAIL_USE_TLS", "yes")]);
        let err = EmailSettings::from_vars(&vars).expect_err("not a boolean");
        assert!(err.0.starts_with("EMAIL_USE_TLS"), "{}", err.0);
    }

    #[test]
    fn bad_from_address_is_a_config_error() {
        let vars = HashMap::from([("DEFAULT_FROM_EMAIL", "not an address")]);
        let err = EmailSettings::from_vars(&vars).expect_err("bad address");
        assert!(err.0.starts_with("DEFAULT_FROM_EMAIL"), "{}", err.0);
    }

    #[test]
    fn password_is_a_secret() {
        let vars = HashMap::from([("EMAIL_HOST_USER", "u"), ("EMAIL_HOST_PASSWORD", "p")]);
        let settings = EmailSettings::from_vars(&vars).expect("parse");
        assert!(!format!("{settings:?}").contains("\"p\""));
        assert_eq!(settings.password.expect("set").expose(), "p");
    }

    #[track_caller]
    fn check_recipient(value: &str, expected: Option<&str>) {
        assert_eq!(recipient(value).as_deref(), expected);
    }

    #[test]
    fn recipient_plain() {
        check_recipient("alice@example.org", Some("alice@example.org"));
    }

    #[test]
    fn recipient_json() {
        check_recipient(
            r#"{"value": "bob@example.org", "up": true, "down": true}"#,
            Some("bob@example.org"),
        );
    }

    #[test]
    fn recipient_json_without_value() {
        check_recipient(r#"{"up": true}"#, None);
    }

    #[test]
    fn noop_follows_the_flags() {
        let value = r#"{"value": "a@example.org", "up": false, "down": true}"#;
        assert!(is_noop(value, "up"));
        assert!(!is_noop(value, "down"));
        assert!(!is_noop("a@example.org", "up"));
    }
}
