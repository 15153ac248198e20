//! The Healthchecks app itself (`../shared/oracle/healthchecks`, the version the toolkit is
//! compatible with) as a test oracle: its migrated schema as a template database, and its alert
//! loop run once over a test database.
//!
//! The app runs from the `HC_ORACLE_VENV` venv (Python 3.13, its `requirements.txt`), which
//! `cargo xtask test` creates; each call is one Python process with a clean environment.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Output};

use anyhow::{Context, bail};
use tokio::sync::OnceCell;

use crate::binaries::workspace_root;
use crate::postgres::shared_cluster;

/// The database of the shared cluster that holds Healthchecks' schema, made by its migrations.
pub const TEMPLATE: &str = "hc_oracle_template";

/// The driver that runs Healthchecks' `sendalerts` steps until nothing is left.
const SENDALERTS: &str = include_str!("healthchecks_sendalerts.py");

/// The Healthchecks source tree beside the repository.
pub fn source_dir() -> PathBuf {
    workspace_root().join("../shared/oracle/healthchecks")
}

/// Creates [`TEMPLATE`] on first use with `manage.py migrate` and returns its name; copy it with
/// [`crate::postgres::TestDb::copy_of`].
pub async fn template() -> &'static str {
    static DONE: OnceCell<()> = OnceCell::const_new();
    let result = DONE
        .get_or_try_init(|| async {
            let cluster = shared_cluster().await;
            cluster.create_database(TEMPLATE).await?;
            let vars = cluster.vars(TEMPLATE);
            let output = tokio::task::spawn_blocking(move || {
                manage(&vars, &["migrate", "--no-input", "-v", "0"])
            })
            .await??;
            check(&output, "manage.py migrate")?;
            cluster.wait_until_unused(TEMPLATE).await
        })
        .await;
    if let Err(err) = result {
        panic!("cannot create the Healthchecks template database: {err:#}");
    }
    TEMPLATE
}

/// Runs Healthchecks' alert loop over the database in `vars` (the `DB_*` variables and its other
/// settings: `SITE_ROOT`, `SECRET_KEY`, `EMAIL_*`, …) until no check is going down and no flip is
/// unprocessed; Telegram's and Pushover's fixed hosts become `recorder_url`. Returns what it
/// printed (one block per flip).
pub async fn sendalerts(
    vars: &HashMap<String, String>,
    recorder_url: &str,
) -> anyhow::Result<String> {
    let vars = vars.clone();
    let recorder_url = recorder_url.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        python(&vars)
            .arg("-c")
            .arg(SENDALERTS)
            .arg(recorder_url)
            .output()
            .context("cannot run the Healthchecks oracle")
    })
    .await??;
    check(&output, "Healthchecks' sendalerts")?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `manage.py` with `args`, in the source directory.
fn manage(vars: &HashMap<String, String>, args: &[&str]) -> anyhow::Result<Output> {
    python(vars)
        .arg("manage.py")
        .args(args)
        .output()
        .context("cannot run the Healthchecks oracle's manage.py")
}

/// The venv's Python in the source directory, with a clean environment holding `vars`.
fn python(vars: &HashMap<String, String>) -> Command {
    let mut command = Command::new(crate::venv::healthchecks_python());
    command
        .current_dir(source_dir())
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("DJANGO_SETTINGS_MODULE", "hc.settings")
        .env("PYTHONPATH", source_dir())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("DEBUG", "False")
        .env("SECRET_KEY", "oracle-secret")
        .envs(vars);
    command
}

fn check(output: &Output, what: &str) -> anyhow::Result<()> {
    if !output.status.success() {
        bail!(
            "{what} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}
