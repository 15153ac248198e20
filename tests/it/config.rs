//! Secrets from files and systemd credentials, and database settings errors, through
//! `DbConfig::from_vars` as a service would call it.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use hc_core::config::{DbConfig, secret};
use hc_tests::scratch::ScratchDir;

fn write_secret(path: &Path, content: &str, mode: u32) {
    std::fs::write(path, content).expect("write the secret file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .expect("set the secret file's mode");
}

fn vars(pairs: &[(&str, String)]) -> HashMap<String, String> {
    let mut vars = HashMap::from([("DB".to_owned(), "postgres".to_owned())]);
    vars.extend(pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    vars
}

#[test]
fn file_takes_precedence_over_the_variable() {
    let dir = ScratchDir::new("hc-config").unwrap();
    let file = dir.path().join("db_password");
    write_secret(&file, "from-file\n", 0o600);
    let vars = vars(&[
        ("DB_PASSWORD", "from-env".to_owned()),
        ("DB_PASSWORD_FILE", file.display().to_string()),
    ]);
    let config = DbConfig::from_vars(&vars).unwrap();
    assert_eq!(config.password.unwrap().expose(), "from-file");
}

#[test]
fn only_trailing_newlines_are_stripped() {
    let dir = ScratchDir::new("hc-config").unwrap();
    let file = dir.path().join("secret");
    write_secret(&file, " pass word \r\n\n", 0o400);
    let vars = vars(&[("SECRET_KEY_FILE", file.display().to_string())]);
    let got = secret(&vars, "SECRET_KEY").unwrap().unwrap();
    assert_eq!(got.expose(), " pass word ");
}

#[test]
fn systemd_credential_lowercase_name() {
    let dir = ScratchDir::new("hc-config").unwrap();
    write_secret(&dir.path().join("db_password"), "from-credential", 0o400);
    let vars = vars(&[
        ("CREDENTIALS_DIRECTORY", dir.path().display().to_string()),
        ("DB_PASSWORD", "from-env".to_owned()),
    ]);
    let config = DbConfig::from_vars(&vars).unwrap();
    assert_eq!(config.password.unwrap().expose(), "from-credential");
}

#[test]
fn systemd_credential_name_as_is() {
    let dir = ScratchDir::new("hc-config").unwrap();
    write_secret(&dir.path().join("DB_PASSWORD"), "upper", 0o400);
    let vars = vars(&[("CREDENTIALS_DIRECTORY", dir.path().display().to_string())]);
    let config = DbConfig::from_vars(&vars).unwrap();
    assert_eq!(config.password.unwrap().expose(), "upper");
}

#[test]
fn file_takes_precedence_over_a_credential() {
    let dir = ScratchDir::new("hc-config").unwrap();
    write_secret(&dir.path().join("db_password"), "from-credential", 0o400);
    let file = dir.path().join("other");
    write_secret(&file, "from-file", 0o600);
    let vars = vars(&[
        ("CREDENTIALS_DIRECTORY", dir.path().display().to_string()),
        ("DB_PASSWORD_FILE", file.display().to_string()),
    ]);
    let config = DbConfig::from_vars(&vars).unwrap();
    assert_eq!(config.password.unwrap().expose(), "from-file");
}

#[test]
fn credentials_directory_without_the_credential_falls_back_to_the_variable() {
    let dir = ScratchDir::new("hc-config").unwrap();
    let vars = vars(&[
        ("CREDENTIALS_DIRECTORY", dir.path().display().to_string()),
        ("DB_PASSWORD", "from-env".to_owned()),
    ]);
    let config = DbConfig::from_vars(&vars).unwrap();
    assert_eq!(config.password.unwrap().expose(), "from-env");
}

#[test]
fn world_readable_secret_file_is_refused() {
    let dir = ScratchDir::new("hc-config").unwrap();
    let file = dir.path().join("db_password");
    write_secret(&file, "pw", 0o644);
    let vars = vars(&[("DB_PASSWORD_FILE", file.display().to_string())]);
    let err = DbConfig::from_vars(&vars).unwrap_err().to_string();
    assert!(err.starts_with("DB_PASSWORD_FILE: "), "{err}");
    assert!(
        err.contains("readable by group or others (mode 0644)"),
        "{err}"
    );
}

#[test]
fn group_readable_credential_is_refused() {
    let dir = ScratchDir::new("hc-config").unwrap();
    write_secret(&dir.path().join("db_password"), "pw", 0o640);
    let vars = vars(&[("CREDENTIALS_DIRECTORY", dir.path().display().to_string())]);
    let err = DbConfig::from_vars(&vars).unwrap_err().to_string();
    assert!(err.contains("DB_PASSWORD (systemd credential)"), "{err}");
    assert!(err.contains("mode 0640"), "{err}");
}

#[test]
fn the_password_never_shows_in_debug_output() {
    let vars = vars(&[("DB_PASSWORD", "hunter2".to_owned())]);
    let config = DbConfig::from_vars(&vars).unwrap();
    let shown = format!("{config:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("***"), "{shown}");
}

#[test]
fn bad_port_names_the_variable() {
    let vars = vars(&[("DB_PORT", "five".to_owned())]);
    let err = DbConfig::from_vars(&vars).unwrap_err();
    assert_eq!(
        err.to_string(),
        "DB_PORT: \"five\" is not a port number (1-65535)"
    );
}

#[test]
fn config_errors_exit_78() {
    let vars = vars(&[("DB_SSLMODE", "verify-full".to_owned())]);
    let err = anyhow::Error::new(DbConfig::from_vars(&vars).unwrap_err());
    let code = hc_core::exit::exit_code(Err(err));
    assert_eq!(code, std::process::ExitCode::from(hc_core::exit::CONFIG));
}

#[tokio::test]
async fn pool_settings_reach_the_server() {
    let db = hc_tests::postgres::TestDb::new().await;
    let pool = hc_core::db::create_pool(&db.config, "hc-sendalerts").unwrap();
    let client = pool.get().await.unwrap();
    let row = client
        .query_one(
            "SELECT current_setting('application_name'), current_setting('statement_timeout')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "hc-sendalerts");
    assert_eq!(row.get::<_, String>(1), "1min");
}

#[tokio::test]
async fn connections_older_than_conn_max_age_are_replaced() {
    let db = hc_tests::postgres::TestDb::new().await;
    let mut config = db.config.clone();
    config.conn_max_age = Some(std::time::Duration::from_nanos(1));
    config.pool_size = 1;
    let pool = hc_core::db::create_pool(&config, "hc-tests").unwrap();
    let mut pids = Vec::new();
    for _ in 0..2 {
        let client = pool.get().await.unwrap();
        let pid: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        pids.push(pid);
    }
    assert_ne!(pids[0], pids[1]);
}

#[tokio::test]
async fn wait_until_reachable_returns_a_connection() {
    let db = hc_tests::postgres::TestDb::new().await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let client = hc_core::db::wait_until_reachable(&db.pool, &shutdown)
        .await
        .unwrap();
    client.query_one("SELECT 1", &[]).await.unwrap();
}

#[tokio::test]
async fn wait_until_reachable_stops_on_shutdown() {
    // Nothing listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let vars = vars(&[
        ("DB_HOST", "127.0.0.1".to_owned()),
        ("DB_PORT", port.to_string()),
    ]);
    let pool = hc_core::db::create_pool(&DbConfig::from_vars(&vars).unwrap(), "hc-tests").unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    shutdown.cancel();
    let err = hc_core::db::wait_until_reachable(&pool, &shutdown)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("stopped while waiting for the database"),
        "{err}"
    );
}
