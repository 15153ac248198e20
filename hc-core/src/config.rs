//! Typed configuration from the environment, using Healthchecks' variable names.
//!
//! This is the only module that reads the process environment ([`Env::capture`]);
//! everything else takes `&impl Vars`, so tests pass a map instead of calling `set_var`.
//! The parse helpers here follow Healthchecks' `hc/settings.py` rules and put the variable's
//! name in every error; secrets are in [`secret`], the database settings in [`database`].

pub mod database;
pub mod secret;

use std::collections::HashMap;
use std::fmt::Display;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

pub use database::{DbConfig, DbHost, SslMode, TargetSessionAttrs};
pub use secret::{Secret, secret};

/// An error that means the configuration is wrong, so restarting will not help (exit status
/// 78, see [`crate::exit`]); the message starts with the variable's name.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// A source of configuration variables.
pub trait Vars {
    /// The value of `name`, if set.
    fn get(&self, name: &str) -> Option<String>;
}

/// A snapshot of the process environment.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    /// Captures the process environment (variables that are not valid UTF-8 are skipped).
    #[allow(
        clippy::disallowed_methods,
        reason = "the one place that reads the environment"
    )]
    pub fn capture() -> Env {
        Env {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        }
    }
}

impl Vars for Env {
    fn get(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }
}

impl Vars for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned()
    }
}

impl Vars for HashMap<&str, &str> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).map(|v| (*v).to_owned())
    }
}

/// The value of `name`, or `default` when it is unset or empty.
pub fn string_var(vars: &impl Vars, name: &str, default: &str) -> String {
    match vars.get(name) {
        Some(value) if !value.is_empty() => value,
        _ => default.to_owned(),
    }
}

/// Parses `name` with [`FromStr`], or returns `default` when it is unset or empty.
///
/// Healthchecks would fail on an empty integer; systemd's `EnvironmentFile=` makes `X=` a
/// common way to say "use the default", so we accept it.
pub fn parse_var<T>(vars: &impl Vars, name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    match vars.get(name) {
        Some(value) if !value.is_empty() => value
            .trim()
            .parse()
            .map_err(|err| ConfigError(format!("{name}: cannot parse \"{value}\": {err}"))),
        _ => Ok(default),
    }
}

/// Parses an integer-like `name` that may be the literal `None` (Healthchecks' `envint`),
/// or returns `default` when it is unset or empty.
pub fn parse_optional_var<T>(
    vars: &impl Vars,
    name: &str,
    default: Option<T>,
) -> Result<Option<T>, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    match vars.get(name) {
        Some(value) if value == "None" => Ok(None),
        Some(value) if !value.is_empty() => value.trim().parse().map(Some).map_err(|err| {
            ConfigError(format!(
                "{name}: cannot parse \"{value}\": {err} (or use None)"
            ))
        }),
        _ => Ok(default),
    }
}

/// Parses a boolean exactly like Healthchecks' `envbool`: `True` is true, `False` and the
/// empty string are false, anything else is an error; unset gives `default`.
pub fn parse_bool(vars: &impl Vars, name: &str, default: bool) -> Result<bool, ConfigError> {
    match vars.get(name).as_deref() {
        None => Ok(default),
        Some("True") => Ok(true),
        Some("False" | "") => Ok(false),
        Some(other) => Err(ConfigError(format!(
            "{name}: \"{other}\" is not a boolean: use exactly True or False"
        ))),
    }
}

/// A positive number of seconds (fractions allowed) in `name`, or `default` seconds.
pub fn seconds(vars: &impl Vars, name: &str, default: f64) -> Result<Duration, ConfigError> {
    let value: f64 = parse_var(vars, name, default)?;
    positive_duration(value).ok_or_else(|| {
        ConfigError(format!(
            "{name}: expected a positive number of seconds, got {value}"
        ))
    })
}

/// A comma-separated list of seconds, zero or more each, in `name` (`2,10`; empty: none), or
/// `default`.
pub fn seconds_list(
    vars: &impl Vars,
    name: &str,
    default: &[Duration],
) -> Result<Vec<Duration>, ConfigError> {
    let Some(text) = vars.get(name) else {
        return Ok(default.to_vec());
    };
    list_items(&text)
        .into_iter()
        .map(|item| {
            item.parse()
                .ok()
                .and_then(|secs: f64| Duration::try_from_secs_f64(secs).ok())
                .ok_or_else(|| {
                    ConfigError(format!(
                        "{name}: expected comma-separated seconds like \"2,10\", got {text:?}"
                    ))
                })
        })
        .collect()
}

/// A count of at least 1 in `name`, or `default`.
pub fn positive(vars: &impl Vars, name: &str, default: usize) -> Result<usize, ConfigError> {
    match parse_var(vars, name, default)? {
        0 => Err(ConfigError(format!("{name}: must be at least 1"))),
        n => Ok(n),
    }
}

/// A listen address (`127.0.0.1:8000`, `[::1]:9611`) in `name`; unset gives `default`, and an
/// empty value means "do not listen" (`None`).
pub fn listen_addr(
    vars: &impl Vars,
    name: &str,
    default: Option<SocketAddr>,
) -> Result<Option<SocketAddr>, ConfigError> {
    match vars.get(name) {
        None => Ok(default),
        Some(text) if text.trim().is_empty() => Ok(None),
        Some(text) => text.trim().parse().map(Some).map_err(|err| {
            ConfigError(format!(
                "{name}: expected an address and port like 127.0.0.1:8000: {err}: {text:?}"
            ))
        }),
    }
}

/// A comma-separated list in `name` (items trimmed, empty ones dropped), or `default` when
/// unset; an empty value is an empty list.
pub fn list_var(vars: &impl Vars, name: &str, default: &[&str]) -> Vec<String> {
    match vars.get(name) {
        None => default.iter().map(|item| (*item).to_owned()).collect(),
        Some(text) => list_items(&text).into_iter().map(str::to_owned).collect(),
    }
}

fn list_items(text: &str) -> Vec<&str> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect()
}

fn positive_duration(value: f64) -> Option<Duration> {
    (value > 0.0 && value < 1e9)
        .then(|| Duration::try_from_secs_f64(value).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&'static str, &'static str)]) -> HashMap<&'static str, &'static str> {
        pairs.iter().copied().collect()
    }

    #[track_caller]
    fn check_bool(value: Option<&'static str>, default: bool, expected: Result<bool, &str>) {
        let map = match value {
            Some(value) => vars(&[("FLAG", value)]),
            None => vars(&[]),
        };
        let got = parse_bool(&map, "FLAG", default).map_err(|err| err.0);
        match (got, expected) {
            (Ok(got), Ok(expected)) => assert_eq!(got, expected),
            (Err(got), Err(expected)) => assert!(got.contains(expected), "{got}"),
            (got, expected) => panic!("got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn bool_true() {
        check_bool(Some("True"), false, Ok(true));
    }

    #[test]
    fn bool_false() {
        check_bool(Some("False"), true, Ok(false));
    }

    #[test]
    fn bool_empty_is_false_like_healthchecks() {
        check_bool(Some(""), true, Ok(false));
    }

    #[test]
    fn bool_unset_is_default() {
        check_bool(None, true, Ok(true));
    }

    #[test]
    fn bool_lowercase_is_refused() {
        check_bool(Some("true"), false, Err("FLAG: \"true\" is not a boolean"));
    }

    #[test]
    fn bool_one_is_refused() {
        check_bool(Some("1"), false, Err("FLAG"));
    }

    #[test]
    fn int_parses() {
        assert_eq!(parse_var(&vars(&[("N", "42")]), "N", 7_u32).unwrap(), 42);
    }

    #[test]
    fn int_unset_and_empty_give_default() {
        assert_eq!(parse_var(&vars(&[]), "N", 7_u32).unwrap(), 7);
        assert_eq!(parse_var(&vars(&[("N", "")]), "N", 7_u32).unwrap(), 7);
    }

    #[test]
    fn int_error_names_the_variable() {
        let err = parse_var(
            &vars(&[("PING_BODY_LIMIT", "ten")]),
            "PING_BODY_LIMIT",
            7_u32,
        )
        .unwrap_err();
        assert!(err.0.starts_with("PING_BODY_LIMIT: "), "{err}");
        assert!(err.0.contains("\"ten\""), "{err}");
    }

    #[test]
    fn optional_int_accepts_none() {
        let got = parse_optional_var(&vars(&[("N", "None")]), "N", Some(10_u64)).unwrap();
        assert_eq!(got, None);
    }

    #[test]
    fn optional_int_parses_and_defaults() {
        assert_eq!(
            parse_optional_var(&vars(&[("N", "5")]), "N", Some(10_u64)).unwrap(),
            Some(5)
        );
        assert_eq!(
            parse_optional_var(&vars(&[]), "N", Some(10_u64)).unwrap(),
            Some(10)
        );
    }

    #[test]
    fn optional_int_error_names_the_variable() {
        let err = parse_optional_var(&vars(&[("N", "none")]), "N", Some(10_u64)).unwrap_err();
        assert!(err.0.starts_with("N: "), "{err}");
    }

    #[test]
    fn string_default_when_empty() {
        assert_eq!(string_var(&vars(&[("DB_NAME", "")]), "DB_NAME", "hc"), "hc");
        assert_eq!(string_var(&vars(&[("DB_NAME", "x")]), "DB_NAME", "hc"), "x");
    }

    #[test]
    fn seconds_must_be_positive() {
        let got = |v: &'static str| seconds(&vars(&[("T", v)]), "T", 2.0).map_err(|e| e.0);
        assert_eq!(got("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(
            seconds(&vars(&[]), "T", 2.0).ok(),
            Some(Duration::from_secs(2))
        );
        assert_eq!(got(""), Ok(Duration::from_secs(2)));
        for bad in ["0", "-1", "NaN", "inf", "1e10"] {
            assert!(got(bad).is_err_and(|e| e.starts_with("T: ")), "{bad}");
        }
    }

    #[test]
    fn seconds_lists() {
        let got = |v: &'static str| seconds_list(&vars(&[("D", v)]), "D", &[]).map_err(|e| e.0);
        assert_eq!(
            got("2, 10"),
            Ok(vec![Duration::from_secs(2), Duration::from_secs(10)])
        );
        assert_eq!(got(""), Ok(vec![]));
        assert!(got("2,x").is_err_and(|e| e.starts_with("D: ")));
        assert!(got("-1").is_err());
        assert_eq!(got("0"), Ok(vec![Duration::ZERO]));
        assert_eq!(
            seconds_list(&vars(&[]), "D", &[Duration::from_secs(1)]).ok(),
            Some(vec![Duration::from_secs(1)])
        );
    }

    #[test]
    fn positive_counts_and_listen_addresses() {
        assert!(positive(&vars(&[("N", "0")]), "N", 4).is_err_and(|e| e.0.starts_with("N: ")));
        assert_eq!(positive(&vars(&[]), "N", 4).ok(), Some(4));
        let default = Some(SocketAddr::from(([127, 0, 0, 1], 9611)));
        assert_eq!(listen_addr(&vars(&[]), "L", default).ok(), Some(default));
        assert_eq!(
            listen_addr(&vars(&[("L", " ")]), "L", default).ok(),
            Some(None)
        );
        assert_eq!(
            listen_addr(&vars(&[("L", "[::1]:80")]), "L", None).ok(),
            Some(Some(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 80))))
        );
        assert!(
            listen_addr(&vars(&[("L", "nope")]), "L", None).is_err_and(|e| e.0.starts_with("L: "))
        );
        assert_eq!(
            list_var(&vars(&[("X", " a, ,b ")]), "X", &["z"]),
            ["a", "b"]
        );
        assert_eq!(list_var(&vars(&[]), "X", &["z"]), ["z"]);
    }
}
