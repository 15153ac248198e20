//! Secrets: values that must never reach a log line, read from a file, a systemd credential or
//! the environment.
//!
//! Lookup order for a secret `NAME` (for example `DB_PASSWORD`):
//! 1. `NAME_FILE`, a path to a file holding the value (takes precedence, like Healthchecks);
//! 2. a systemd credential: the file `$CREDENTIALS_DIRECTORY/NAME` (the variable's name as-is),
//!    or failing that `$CREDENTIALS_DIRECTORY/name` (lowercase, systemd's usual style, for
//!    `LoadCredential=db_password:/etc/hc/db_password`);
//! 3. `NAME` itself (an empty value counts as unset).
//!
//! A file that its group or others can read (mode `& 0o044`) is refused, and trailing newline
//! characters (`\n`, `\r`) are stripped from a file's content.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::Vars;
use crate::config::ConfigError;

/// A value whose `Debug` and `Display` print `***`; call [`Secret::expose`] to use it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Secret<T> {
        Secret(value)
    }

    /// The wrapped value, for the one place that needs it (a connection string, a header).
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Reads the secret `name` from `NAME_FILE`, a systemd credential or `NAME`, in that order
/// (see the module docs); `Ok(None)` when none of them is set.
pub fn secret(vars: &impl Vars, name: &str) -> Result<Option<Secret<String>>, ConfigError> {
    let file_var = format!("{name}_FILE");
    if let Some(path) = vars.get(&file_var).filter(|path| !path.is_empty()) {
        return read_secret_file(&file_var, Path::new(&path)).map(Some);
    }
    if let Some(dir) = vars
        .get("CREDENTIALS_DIRECTORY")
        .filter(|dir| !dir.is_empty())
    {
        let dir = PathBuf::from(dir);
        for candidate in [dir.join(name), dir.join(name.to_lowercase())] {
            if candidate.exists() {
                let what = format!("{name} (systemd credential)");
                return read_secret_file(&what, &candidate).map(Some);
            }
        }
    }
    Ok(vars
        .get(name)
        .filter(|value| !value.is_empty())
        .map(Secret::new))
}

fn read_secret_file(what: &str, path: &Path) -> Result<Secret<String>, ConfigError> {
    let shown = path.display();
    let metadata = std::fs::metadata(path)
        .map_err(|err| ConfigError(format!("{what}: cannot read {shown}: {err}")))?;
    let mode = metadata.permissions().mode();
    if mode & 0o044 != 0 {
        return Err(ConfigError(format!(
            "{what}: {shown} is readable by group or others (mode {:04o}): \
             restrict it, e.g. chmod 600 {shown}",
            mode & 0o7777
        )));
    }
    let bytes = std::fs::read(path)
        .map_err(|err| ConfigError(format!("{what}: cannot read {shown}: {err}")))?;
    let mut text = String::from_utf8(bytes)
        .map_err(|_| ConfigError(format!("{what}: {shown} is not valid UTF-8")))?;
    let kept = text.trim_end_matches(['\n', '\r']).len();
    text.truncate(kept);
    Ok(Secret::new(text))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let secret = Secret::new("hunter2".to_owned());
        assert_eq!(format!("{secret:?}"), "***");
        assert_eq!(format!("{secret}"), "***");
        assert_eq!(format!("{:?}", Some(secret.clone())), "Some(***)");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn plain_variable() {
        let vars = HashMap::from([("DB_PASSWORD", "pw")]);
        let got = secret(&vars, "DB_PASSWORD").unwrap().unwrap();
        assert_eq!(got.expose(), "pw");
    }

    #[test]
    fn empty_variable_is_unset() {
        let vars = HashMap::from([("DB_PASSWORD", "")]);
        assert!(secret(&vars, "DB_PASSWORD").unwrap().is_none());
    }

    #[test]
    fn missing_file_names_the_variable() {
        let vars = HashMap::from([("DB_PASSWORD_FILE", "/nonexistent/hc-secret")]);
        let err = secret(&vars, "DB_PASSWORD").unwrap_err();
        assert!(err.0.starts_with("DB_PASSWORD_FILE: "), "{err}");
    }
}
