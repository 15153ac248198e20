//! PostgreSQL settings, read from the same variables as Healthchecks (`DB`, `DB_HOST`, …).
//!
//! | variable | default | notes |
//! |---|---|---|
//! | `DB` | (required) | must be `postgres`; unset is refused because Healthchecks would then use SQLite, and the services would write to a different database than the app |
//! | `DB_HOST` | `/var/run/postgresql` | comma-separated list; an entry starting with `/` is a Unix-socket directory. Empty means libpq's Debian default socket directory |
//! | `DB_PORT` | `5432` | one port for all hosts, or a comma-separated list with one port per host |
//! | `DB_NAME` | `hc` | |
//! | `DB_USER` | `postgres` | |
//! | `DB_PASSWORD` | none | a secret: also `DB_PASSWORD_FILE` or the systemd credential `db_password` |
//! | `DB_SSLMODE` | `prefer` | `disable`, `allow` and `prefer` connect without TLS; `require`, `verify-ca`, `verify-full` are refused (no TLS support yet) |
//! | `DB_TARGET_SESSION_ATTRS` | `read-write` | or `any`; with several hosts, `read-write` finds the primary again after a fail-over |
//! | `DB_CONN_MAX_AGE` | `0` | seconds a pooled connection lives; `0` and `None` mean no limit (Django's `0` means a connection per request, which a pool does not have) |
//! | `DB_POOL_SIZE` | `10` | connections per service process; our own variable, the same for every service |

use std::path::PathBuf;
use std::time::Duration;

use super::{Secret, Vars, parse_optional_var, parse_var, secret, string_var};
use crate::config::ConfigError;

/// Where a PostgreSQL server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbHost {
    /// A host name or IP address.
    Tcp(String),
    /// A directory holding the server's Unix socket (`DB_HOST` starting with `/`).
    Socket(PathBuf),
}

/// TLS use towards PostgreSQL; only the modes that work without a TLS connector exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Never use TLS.
    Disable,
    /// Use TLS if possible; as the services have no TLS support yet, this connects in plain text
    /// (like libpq built without OpenSSL) and fails if the server insists on TLS.
    Prefer,
}

/// Which server of a multi-host list a connection may use (libpq's `target_session_attrs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetSessionAttrs {
    /// Only a server that accepts writes (the primary).
    ReadWrite,
    /// Any server that answers.
    Any,
}

/// Everything needed to build a connection pool.
///
/// Built by [`DbConfig::from_vars`]; the timeouts have no variables and can be adjusted by a
/// service (or a test) after parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbConfig {
    /// Hosts to try in order.
    pub hosts: Vec<DbHost>,
    /// One port for all hosts, or one per host.
    pub ports: Vec<u16>,
    /// Database name (`DB_NAME`).
    pub name: String,
    /// Role name (`DB_USER`).
    pub user: String,
    /// Password (`DB_PASSWORD`), if any.
    pub password: Option<Secret<String>>,
    /// TLS mode (`DB_SSLMODE`).
    pub ssl_mode: SslMode,
    /// Which server to use (`DB_TARGET_SESSION_ATTRS`).
    pub target_session_attrs: TargetSessionAttrs,
    /// Maximum age of a pooled connection (`DB_CONN_MAX_AGE`); `None` means no limit.
    pub conn_max_age: Option<Duration>,
    /// Maximum number of pooled connections (`DB_POOL_SIZE`).
    pub pool_size: usize,
    /// Time allowed to open one connection (per host), default 5 s.
    pub connect_timeout: Duration,
    /// Server-side `statement_timeout` for every connection, default 60 s; `None` for no limit.
    pub statement_timeout: Option<Duration>,
}

/// Default `DB_POOL_SIZE`.
pub const DEFAULT_POOL_SIZE: usize = 10;
/// Default [`DbConfig::connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default [`DbConfig::statement_timeout`].
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);
/// The socket directory libpq uses on Debian when no host is given.
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

impl DbConfig {
    /// Parses the `DB_*` variables; the first bad one fails, with its name in the message.
    pub fn from_vars(vars: &impl Vars) -> Result<DbConfig, ConfigError> {
        match vars.get("DB").as_deref() {
            Some("postgres") => {}
            None | Some("") => {
                return Err(ConfigError(
                    "DB: not set; Healthchecks would use sqlite, which these services do not \
                     support: set DB=postgres"
                        .to_owned(),
                ));
            }
            Some(other) => {
                return Err(ConfigError(format!(
                    "DB: \"{other}\" is not supported: these services work only with DB=postgres"
                )));
            }
        }
        let hosts = parse_hosts(&string_var(vars, "DB_HOST", DEFAULT_SOCKET_DIR))?;
        let ports = parse_ports(&string_var(vars, "DB_PORT", "5432"), hosts.len())?;
        let name = string_var(vars, "DB_NAME", "hc");
        let user = string_var(vars, "DB_USER", "postgres");
        let password = secret(vars, "DB_PASSWORD")?;
        let ssl_mode = match string_var(vars, "DB_SSLMODE", "prefer").as_str() {
            "disable" => SslMode::Disable,
            // libpq's `allow` tries plain text first; without TLS support that is all we do.
            "allow" | "prefer" => SslMode::Prefer,
            mode @ ("require" | "verify-ca" | "verify-full") => {
                return Err(ConfigError(format!(
                    "DB_SSLMODE: \"{mode}\" is not supported yet: these services are built \
                     without TLS support for PostgreSQL; use disable or prefer (for example over \
                     a Unix socket or a trusted network)"
                )));
            }
            other => {
                return Err(ConfigError(format!(
                    "DB_SSLMODE: \"{other}\" is not a libpq sslmode: use disable or prefer"
                )));
            }
        };
        let target_session_attrs =
            match string_var(vars, "DB_TARGET_SESSION_ATTRS", "read-write").as_str() {
                "read-write" => TargetSessionAttrs::ReadWrite,
                "any" => TargetSessionAttrs::Any,
                other => {
                    return Err(ConfigError(format!(
                        "DB_TARGET_SESSION_ATTRS: \"{other}\" is not supported: use read-write \
                         or any"
                    )));
                }
            };
        let conn_max_age = match parse_optional_var::<u64>(vars, "DB_CONN_MAX_AGE", Some(0))? {
            None | Some(0) => None,
            Some(secs) => Some(Duration::from_secs(secs)),
        };
        let pool_size = parse_var(vars, "DB_POOL_SIZE", DEFAULT_POOL_SIZE)?;
        if pool_size == 0 {
            return Err(ConfigError("DB_POOL_SIZE: must be at least 1".to_owned()));
        }
        Ok(DbConfig {
            hosts,
            ports,
            name,
            user,
            password,
            ssl_mode,
            target_session_attrs,
            conn_max_age,
            pool_size,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            statement_timeout: Some(DEFAULT_STATEMENT_TIMEOUT),
        })
    }
}

fn parse_hosts(value: &str) -> Result<Vec<DbHost>, ConfigError> {
    value
        .split(',')
        .map(str::trim)
        .map(|host| match host {
            "" => Err(ConfigError(format!(
                "DB_HOST: \"{value}\" has an empty entry"
            ))),
            path if path.starts_with('/') => Ok(DbHost::Socket(PathBuf::from(path))),
            name => Ok(DbHost::Tcp(name.to_owned())),
        })
        .collect()
}

fn parse_ports(value: &str, hosts: usize) -> Result<Vec<u16>, ConfigError> {
    let ports = value
        .split(',')
        .map(str::trim)
        .map(|port| match port.parse::<u16>() {
            Ok(port) if port > 0 => Ok(port),
            _ => Err(ConfigError(format!(
                "DB_PORT: \"{port}\" is not a port number (1-65535)"
            ))),
        })
        .collect::<Result<Vec<u16>, ConfigError>>()?;
    if ports.len() != 1 && ports.len() != hosts {
        return Err(ConfigError(format!(
            "DB_PORT: {} ports for {hosts} hosts in DB_HOST: give one port, or one per host",
            ports.len()
        )));
    }
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn parse(pairs: &[(&'static str, &'static str)]) -> Result<DbConfig, String> {
        let mut vars: HashMap<&str, &str> = HashMap::from([("DB", "postgres")]);
        vars.extend(pairs.iter().copied());
        DbConfig::from_vars(&vars).map_err(|err| err.0)
    }

    #[track_caller]
    fn check_err(pairs: &[(&'static str, &'static str)], expected_start: &str) {
        match parse(pairs) {
            Ok(config) => panic!("expected an error, got {config:?}"),
            Err(err) => assert!(
                err.starts_with(expected_start),
                "{err:?} does not start with {expected_start:?}"
            ),
        }
    }

    #[test]
    fn defaults() {
        let config = parse(&[]).unwrap();
        assert_eq!(
            config,
            DbConfig {
                hosts: vec![DbHost::Socket(PathBuf::from("/var/run/postgresql"))],
                ports: vec![5432],
                name: "hc".to_owned(),
                user: "postgres".to_owned(),
                password: None,
                ssl_mode: SslMode::Prefer,
                target_session_attrs: TargetSessionAttrs::ReadWrite,
                conn_max_age: None,
                pool_size: 10,
                connect_timeout: DEFAULT_CONNECT_TIMEOUT,
                statement_timeout: Some(DEFAULT_STATEMENT_TIMEOUT),
            }
        );
    }

    #[test]
    fn everything_set() {
        let config = parse(&[
            ("DB_HOST", "db1.example.org, db2.example.org"),
            ("DB_PORT", "5433,5434"),
            ("DB_NAME", "checks"),
            ("DB_USER", "hc"),
            ("DB_PASSWORD", "pw"),
            ("DB_SSLMODE", "disable"),
            ("DB_TARGET_SESSION_ATTRS", "any"),
            ("DB_CONN_MAX_AGE", "600"),
            ("DB_POOL_SIZE", "3"),
        ])
        .unwrap();
        assert_eq!(
            config.hosts,
            vec![
                DbHost::Tcp("db1.example.org".to_owned()),
                DbHost::Tcp("db2.example.org".to_owned())
            ]
        );
        assert_eq!(config.ports, vec![5433, 5434]);
        assert_eq!(config.name, "checks");
        assert_eq!(config.user, "hc");
        assert_eq!(config.password.unwrap().expose(), "pw");
        assert_eq!(config.ssl_mode, SslMode::Disable);
        assert_eq!(config.target_session_attrs, TargetSessionAttrs::Any);
        assert_eq!(config.conn_max_age, Some(Duration::from_secs(600)));
        assert_eq!(config.pool_size, 3);
    }

    #[test]
    fn socket_directory() {
        let config = parse(&[("DB_HOST", "/tmp")]).unwrap();
        assert_eq!(config.hosts, vec![DbHost::Socket(PathBuf::from("/tmp"))]);
    }

    #[test]
    fn one_port_for_several_hosts() {
        let config = parse(&[("DB_HOST", "a,b"), ("DB_PORT", "6000")]).unwrap();
        assert_eq!(config.ports, vec![6000]);
    }

    #[test]
    fn conn_max_age_none_and_zero_mean_no_limit() {
        assert_eq!(
            parse(&[("DB_CONN_MAX_AGE", "None")]).unwrap().conn_max_age,
            None
        );
        assert_eq!(
            parse(&[("DB_CONN_MAX_AGE", "0")]).unwrap().conn_max_age,
            None
        );
    }

    #[test]
    fn allow_is_plain_text_like_prefer() {
        assert_eq!(
            parse(&[("DB_SSLMODE", "allow")]).unwrap().ssl_mode,
            SslMode::Prefer
        );
    }

    #[test]
    fn db_unset_is_refused() {
        let err = DbConfig::from_vars(&HashMap::<&str, &str>::new()).unwrap_err();
        assert!(err.0.starts_with("DB: not set"), "{err}");
        assert!(err.0.contains("sqlite"), "{err}");
    }

    #[test]
    fn db_sqlite_is_refused() {
        check_err(&[("DB", "sqlite")], "DB: \"sqlite\" is not supported");
    }

    #[test]
    fn db_mysql_is_refused() {
        check_err(&[("DB", "mysql")], "DB: \"mysql\" is not supported");
    }

    #[test]
    fn bad_port() {
        check_err(&[("DB_PORT", "54x32")], "DB_PORT: \"54x32\"");
    }

    #[test]
    fn port_zero() {
        check_err(&[("DB_PORT", "0")], "DB_PORT: \"0\"");
    }

    #[test]
    fn port_too_large() {
        check_err(&[("DB_PORT", "65536")], "DB_PORT: \"65536\"");
    }

    #[test]
    fn port_count_mismatch() {
        check_err(
            &[("DB_HOST", "a,b,c"), ("DB_PORT", "1,2")],
            "DB_PORT: 2 ports for 3 hosts",
        );
    }

    #[test]
    fn empty_host_entry() {
        check_err(&[("DB_HOST", "a,,b")], "DB_HOST: ");
    }

    #[test]
    fn sslmode_require_is_refused_not_downgraded() {
        check_err(
            &[("DB_SSLMODE", "require")],
            "DB_SSLMODE: \"require\" is not supported yet",
        );
    }

    #[test]
    fn sslmode_verify_full_is_refused() {
        check_err(
            &[("DB_SSLMODE", "verify-full")],
            "DB_SSLMODE: \"verify-full\" is not supported yet",
        );
    }

    #[test]
    fn sslmode_unknown() {
        check_err(
            &[("DB_SSLMODE", "on")],
            "DB_SSLMODE: \"on\" is not a libpq sslmode",
        );
    }

    #[test]
    fn target_session_attrs_unknown() {
        check_err(
            &[("DB_TARGET_SESSION_ATTRS", "standby")],
            "DB_TARGET_SESSION_ATTRS: ",
        );
    }

    #[test]
    fn conn_max_age_bad() {
        check_err(&[("DB_CONN_MAX_AGE", "forever")], "DB_CONN_MAX_AGE: ");
    }

    #[test]
    fn pool_size_zero() {
        check_err(&[("DB_POOL_SIZE", "0")], "DB_POOL_SIZE: ");
    }

    #[test]
    fn first_bad_variable_fails() {
        // DB_HOST is parsed before DB_PORT, DB_PORT before DB_SSLMODE.
        check_err(&[("DB_PORT", "x"), ("DB_SSLMODE", "bogus")], "DB_PORT: ");
    }
}
