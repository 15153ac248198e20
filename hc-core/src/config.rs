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
use std::str::FromStr;

use crate::exit::ConfigError;

pub use database::{DbConfig, DbHost, SslMode, TargetSessionAttrs};
pub use secret::{Secret, secret};

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
}
