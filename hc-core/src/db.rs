//! The PostgreSQL connection pool and the start-up schema check.
//!
//! [`create_pool`] turns a [`DbConfig`] into a `deadpool_postgres::Pool`. With several hosts and
//! `target_session_attrs=read-write` every new connection looks for the writable server again,
//! so after a fail-over the pool finds the promoted standby without a restart: connections to the
//! old primary close, are discarded on their next checkout, and their replacements go to the new
//! primary. Callers retry a failed unit of work (see [`Backoff`]).
//!
//! TLS is not supported yet: `DB_SSLMODE=require` and stricter modes are refused by
//! [`DbConfig::from_vars`], and `prefer` connects in plain text (as libpq does without OpenSSL).
//! Adding `tokio-postgres-rustls` is the way forward when a deployment needs TLS.

use std::fmt;
use std::time::Duration;

use deadpool_postgres::{Hook, HookError, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::config::{SslMode as PgSslMode, TargetSessionAttrs as PgTargetSessionAttrs};
use tokio_util::sync::CancellationToken;

use crate::config::ConfigError;
use crate::config::{DbConfig, DbHost, SslMode, TargetSessionAttrs};
use crate::schema::{INDEXES, TABLES};

/// How long a caller waits for a free pooled connection before getting an error.
pub const POOL_WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// The `tokio_postgres` connection settings for `config`; `application_name` shows in
/// `pg_stat_activity` (use the binary's name, as Healthchecks' sendalerts does).
pub fn pg_config(config: &DbConfig, application_name: &str) -> tokio_postgres::Config {
    let mut pg = tokio_postgres::Config::new();
    for host in &config.hosts {
        match host {
            DbHost::Tcp(name) => pg.host(name),
            DbHost::Socket(dir) => pg.host_path(dir),
        };
    }
    for port in &config.ports {
        pg.port(*port);
    }
    pg.dbname(&config.name)
        .user(&config.user)
        .application_name(application_name)
        .connect_timeout(config.connect_timeout)
        // Notice a silently dead server (a partition, a crashed VM) within about a minute.
        .keepalives_idle(Duration::from_secs(30))
        .ssl_mode(match config.ssl_mode {
            SslMode::Disable => PgSslMode::Disable,
            SslMode::Prefer => PgSslMode::Prefer,
        })
        .target_session_attrs(match config.target_session_attrs {
            TargetSessionAttrs::ReadWrite => PgTargetSessionAttrs::ReadWrite,
            TargetSessionAttrs::Any => PgTargetSessionAttrs::Any,
        });
    if let Some(password) = &config.password {
        pg.password(password.expose().as_bytes());
    }
    if let Some(timeout) = config.statement_timeout {
        pg.options(format!("-c statement_timeout={}", timeout.as_millis()));
    }
    pg
}

/// Builds the connection pool; no connection is opened until the first checkout.
pub fn create_pool(config: &DbConfig, application_name: &str) -> Result<Pool, ConfigError> {
    let manager = Manager::from_config(
        pg_config(config, application_name),
        NoTls,
        ManagerConfig {
            // A closed connection (the server went away) is noticed without a round trip.
            recycling_method: RecyclingMethod::Fast,
        },
    );
    // Connecting may try every host in turn, each with its own timeout.
    let create_timeout = config.connect_timeout * u32::try_from(config.hosts.len()).unwrap_or(1)
        + Duration::from_secs(1);
    let mut builder = Pool::builder(manager)
        .max_size(config.pool_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(POOL_WAIT_TIMEOUT))
        .create_timeout(Some(create_timeout))
        .recycle_timeout(Some(config.connect_timeout));
    if let Some(max_age) = config.conn_max_age {
        builder = builder.pre_recycle(Hook::sync_fn(move |_, metrics| {
            if metrics.age() > max_age {
                Err(HookError::message("connection reached DB_CONN_MAX_AGE"))
            } else {
                Ok(())
            }
        }));
    }
    builder
        .build()
        .map_err(|err| ConfigError(format!("cannot build the database pool: {err}")))
}

/// Capped exponential backoff for retrying database work: 250 ms, 500 ms, 1 s, … up to 10 s.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(Duration::from_millis(250), Duration::from_secs(10))
    }
}

impl Backoff {
    /// A backoff starting at `first` and doubling up to `max`.
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff { next: first, max }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next.min(self.max);
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// Back to the first delay, after a success.
    pub fn reset(&mut self, first: Duration) {
        self.next = first;
    }
}

/// Checks out a connection, retrying with [`Backoff`] until the database answers or `shutdown`
/// is cancelled; for start-up, where the database may still be coming up.
pub async fn wait_until_reachable(
    pool: &Pool,
    shutdown: &CancellationToken,
) -> anyhow::Result<deadpool_postgres::Object> {
    let mut backoff = Backoff::default();
    loop {
        match pool.get().await {
            Ok(client) => return Ok(client),
            Err(err) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %err, retry_in = ?delay, "database not reachable yet");
                tokio::select! {
                    () = shutdown.cancelled() => {
                        anyhow::bail!("stopped while waiting for the database: {err}");
                    }
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// One way in which the database differs from what the services need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaProblem {
    /// The table does not exist (in the search path).
    MissingTable {
        /// Table name.
        table: String,
    },
    /// The column does not exist.
    MissingColumn {
        /// Table name.
        table: String,
        /// Column name.
        column: String,
    },
    /// The column's type is not one the services can read and write.
    WrongType {
        /// Table name.
        table: String,
        /// Column name.
        column: String,
        /// The type the services expect.
        expected: String,
        /// The type in the database.
        found: String,
    },
    /// The column is nullable where the services expect NOT NULL, or the other way round.
    WrongNullability {
        /// Table name.
        table: String,
        /// Column name.
        column: String,
        /// Whether the services expect NULLs.
        expected_nullable: bool,
    },
    /// The key column has neither an identity nor a default, so INSERTs without it fail.
    NotGenerated {
        /// Table name.
        table: String,
        /// Column name.
        column: String,
    },
    /// A NOT NULL column without default that the services do not know, in a table they
    /// insert into: their INSERTs would fail.
    UnknownRequiredColumn {
        /// Table name.
        table: String,
        /// Column name.
        column: String,
    },
}

impl fmt::Display for SchemaProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaProblem::MissingTable { table } => write!(f, "table {table} is missing"),
            SchemaProblem::MissingColumn { table, column } => {
                write!(f, "column {table}.{column} is missing")
            }
            SchemaProblem::WrongType {
                table,
                column,
                expected,
                found,
            } => write!(f, "column {table}.{column} is {found}, expected {expected}"),
            SchemaProblem::WrongNullability {
                table,
                column,
                expected_nullable: true,
            } => write!(f, "column {table}.{column} is NOT NULL, expected nullable"),
            SchemaProblem::WrongNullability {
                table,
                column,
                expected_nullable: false,
            } => write!(f, "column {table}.{column} is nullable, expected NOT NULL"),
            SchemaProblem::NotGenerated { table, column } => write!(
                f,
                "column {table}.{column} has no identity or default, expected a generated key"
            ),
            SchemaProblem::UnknownRequiredColumn { table, column } => write!(
                f,
                "column {table}.{column} is NOT NULL without a default and unknown to these \
                 services, so their inserts would fail"
            ),
        }
    }
}

/// Why [`check_schema`] failed.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The schema does not match: bad configuration, restarting will not help (exit 78).
    #[error(
        "the database schema does not match what these services need (apply \
         hc-core/sql/schema.sql or Healthchecks' migrations, or check DB_NAME): {}",
        .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    Mismatch(Vec<SchemaProblem>),
    /// The catalog could not be read (a runtime failure, exit 1).
    #[error("cannot read the database catalog")]
    Query(#[from] tokio_postgres::Error),
}

impl SchemaError {
    /// Converts to `anyhow`, wrapping a [`SchemaError::Mismatch`] in a [`ConfigError`] so that
    /// [`crate::exit::exit_code`] maps it to exit 78.
    pub fn into_anyhow(self) -> anyhow::Error {
        match self {
            SchemaError::Mismatch(_) => anyhow::Error::new(ConfigError(self.to_string())),
            SchemaError::Query(_) => anyhow::Error::new(self),
        }
    }
}

/// Checks that every table and column in [`crate::schema::TABLES`] exists with a compatible type
/// and nullability; every problem found is named in the error.
///
/// Missing indexes from [`crate::schema::INDEXES`] are logged as warnings (queries get slow,
/// but stay correct). At start-up use `check_schema(&client).await.map_err(SchemaError::into_anyhow)?`.
pub async fn check_schema(client: &tokio_postgres::Client) -> Result<(), SchemaError> {
    let names: Vec<&str> = TABLES.iter().map(|table| table.name).collect();
    // Resolve names through the search path, as the services' unqualified queries do.
    let rows = client
        .query(
            "SELECT t.name, a.attname::text, format_type(a.atttypid, a.atttypmod), \
                    NOT a.attnotnull, (a.attidentity <> '' OR a.atthasdef) \
             FROM unnest($1::text[]) AS t(name) \
             LEFT JOIN pg_attribute a \
               ON a.attrelid = to_regclass(t.name) AND a.attnum > 0 AND NOT a.attisdropped",
            &[&names],
        )
        .await?;
    let mut found: Vec<FoundColumn> = Vec::with_capacity(rows.len());
    for row in rows {
        found.push(FoundColumn {
            table: row.try_get(0)?,
            column: row.try_get(1)?,
            sql_type: row.try_get(2)?,
            nullable: row.try_get(3)?,
            generated: row.try_get(4)?,
        });
    }
    let problems = compare(&found);

    let index_names: Vec<&str> = INDEXES.iter().map(|index| index.name).collect();
    let rows = client
        .query(
            "SELECT i.name FROM unnest($1::text[]) AS i(name) WHERE to_regclass(i.name) IS NULL",
            &[&index_names],
        )
        .await?;
    for row in rows {
        let name: String = row.try_get(0)?;
        if let Some(index) = INDEXES.iter().find(|index| index.name == name) {
            tracing::warn!(
                index = index.name,
                table = index.table,
                needed_for = index.why,
                "index missing"
            );
        }
    }

    if problems.is_empty() {
        Ok(())
    } else {
        Err(SchemaError::Mismatch(problems))
    }
}

/// A column as the catalog describes it; `column` is `None` for a table that does not exist.
#[derive(Debug)]
struct FoundColumn {
    table: String,
    column: Option<String>,
    sql_type: Option<String>,
    nullable: Option<bool>,
    generated: Option<bool>,
}

fn compare(found: &[FoundColumn]) -> Vec<SchemaProblem> {
    let mut problems = Vec::new();
    for table in TABLES {
        let columns: Vec<&FoundColumn> = found
            .iter()
            .filter(|f| f.table == table.name && f.column.is_some())
            .collect();
        if columns.is_empty() {
            problems.push(SchemaProblem::MissingTable {
                table: table.name.to_owned(),
            });
            continue;
        }
        for expected in table.columns {
            let Some(actual) = columns
                .iter()
                .find(|f| f.column.as_deref() == Some(expected.name))
            else {
                problems.push(SchemaProblem::MissingColumn {
                    table: table.name.to_owned(),
                    column: expected.name.to_owned(),
                });
                continue;
            };
            let found_type = actual.sql_type.as_deref().unwrap_or_default();
            if !type_compatible(expected.sql_type, found_type) {
                problems.push(SchemaProblem::WrongType {
                    table: table.name.to_owned(),
                    column: expected.name.to_owned(),
                    expected: expected.sql_type.to_owned(),
                    found: found_type.to_owned(),
                });
            }
            if actual.nullable != Some(expected.nullable) {
                problems.push(SchemaProblem::WrongNullability {
                    table: table.name.to_owned(),
                    column: expected.name.to_owned(),
                    expected_nullable: expected.nullable,
                });
            }
            if expected.generated && actual.generated != Some(true) {
                problems.push(SchemaProblem::NotGenerated {
                    table: table.name.to_owned(),
                    column: expected.name.to_owned(),
                });
            }
        }
        if table.toolkit_inserts {
            for actual in &columns {
                let name = actual.column.as_deref().unwrap_or_default();
                let known = table.columns.iter().any(|c| c.name == name);
                if !known && actual.nullable == Some(false) && actual.generated == Some(false) {
                    problems.push(SchemaProblem::UnknownRequiredColumn {
                        table: table.name.to_owned(),
                        column: name.to_owned(),
                    });
                }
            }
        }
    }
    problems
}

/// Whether a column of type `found` can hold what the services write as `expected`: the same
/// type, or for `character varying(n)` a longer varchar or `text` (a later Healthchecks
/// migration may widen a column).
fn type_compatible(expected: &str, found: &str) -> bool {
    if expected == found {
        return true;
    }
    let Some(expected_len) = varchar_len(expected) else {
        return false;
    };
    found == "text" || varchar_len(found).is_some_and(|found_len| found_len >= expected_len)
}

fn varchar_len(sql_type: &str) -> Option<u32> {
    sql_type
        .strip_prefix("character varying(")?
        .strip_suffix(')')?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_type(expected: &str, found: &str, compatible: bool) {
        assert_eq!(
            type_compatible(expected, found),
            compatible,
            "{expected} vs {found}"
        );
    }

    #[test]
    fn same_type() {
        check_type("bigint", "bigint", true);
    }

    #[test]
    fn narrower_integer() {
        check_type("bigint", "integer", false);
    }

    #[test]
    fn wider_integer_is_not_readable_as_i32() {
        check_type("integer", "bigint", false);
    }

    #[test]
    fn longer_varchar() {
        check_type("character varying(100)", "character varying(200)", true);
    }

    #[test]
    fn shorter_varchar() {
        check_type("character varying(100)", "character varying(50)", false);
    }

    #[test]
    fn text_for_varchar() {
        check_type("character varying(100)", "text", true);
    }

    #[test]
    fn varchar_for_text() {
        check_type("text", "character varying(100)", false);
    }

    fn healthy() -> Vec<FoundColumn> {
        TABLES
            .iter()
            .flat_map(|table| {
                table.columns.iter().map(|c| FoundColumn {
                    table: table.name.to_owned(),
                    column: Some(c.name.to_owned()),
                    sql_type: Some(c.sql_type.to_owned()),
                    nullable: Some(c.nullable),
                    generated: Some(c.generated),
                })
            })
            .collect()
    }

    #[test]
    fn healthy_catalog_has_no_problems() {
        assert_eq!(compare(&healthy()), vec![]);
    }

    #[test]
    fn missing_table() {
        let mut found = healthy();
        found.retain(|f| f.table != "api_flip");
        found.push(FoundColumn {
            table: "api_flip".to_owned(),
            column: None,
            sql_type: None,
            nullable: None,
            generated: None,
        });
        assert_eq!(
            compare(&found),
            vec![SchemaProblem::MissingTable {
                table: "api_flip".to_owned()
            }]
        );
    }

    #[test]
    fn several_problems_are_all_named() {
        let mut found = healthy();
        found.retain(|f| !(f.table == "api_check" && f.column.as_deref() == Some("kind")));
        for f in &mut found {
            if f.table == "api_ping" && f.column.as_deref() == Some("id") {
                f.sql_type = Some("integer".to_owned());
            }
        }
        found.push(FoundColumn {
            table: "api_ping".to_owned(),
            column: Some("new_required".to_owned()),
            sql_type: Some("text".to_owned()),
            nullable: Some(false),
            generated: Some(false),
        });
        let message = SchemaError::Mismatch(compare(&found)).to_string();
        assert!(
            message.contains("column api_check.kind is missing"),
            "{message}"
        );
        assert!(
            message.contains("column api_ping.id is integer, expected bigint"),
            "{message}"
        );
        assert!(message.contains("api_ping.new_required"), "{message}");
    }

    #[test]
    fn mismatch_becomes_a_config_error() {
        let err = SchemaError::Mismatch(vec![SchemaProblem::MissingTable {
            table: "api_ping".to_owned(),
        }])
        .into_anyhow();
        assert!(err.is::<ConfigError>());
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(1));
        let delays: Vec<Duration> = (0..5).map(|_| backoff.next_delay()).collect();
        assert_eq!(
            delays,
            [250, 500, 1000, 1000, 1000].map(Duration::from_millis)
        );
    }
}
