//! The project's schema SQL against Healthchecks' own schema dump, the column list in
//! `hc_core::schema::TABLES`, and the start-up schema check.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use hc_core::db::{SchemaError, check_schema};
use hc_core::schema::{TABLES, apply};
use hc_tests::binaries::workspace_root;
use hc_tests::postgres::{TestDb, bin};
use tokio_postgres::Client;

/// Healthchecks' dump: `shared/reference/healthchecks-schema.sql` beside the repository (the
/// first one found walking up from the workspace root, so git worktrees find it too).
pub(crate) fn healthchecks_dump() -> PathBuf {
    let workspace = workspace_root();
    workspace
        .ancestors()
        .map(|dir| dir.join("../shared/reference/healthchecks-schema.sql"))
        .find(|path| path.exists())
        .unwrap_or_else(|| {
            panic!(
                "shared/reference/healthchecks-schema.sql not found beside {}",
                workspace.display()
            )
        })
}

fn table_names() -> Vec<&'static str> {
    TABLES.iter().map(|table| table.name).collect()
}

/// `table.column` → (type, nullable, identity) for every column of the toolkit's tables.
async fn columns(client: &Client) -> BTreeMap<String, (String, bool, String)> {
    client
        .query(
            "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod), \
                    NOT a.attnotnull, a.attidentity::text \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             WHERE c.relname = ANY($1) AND c.relkind = 'r' AND a.attnum > 0 \
               AND NOT a.attisdropped",
            &[&table_names()],
        )
        .await
        .expect("catalog query")
        .iter()
        .map(|row| {
            (
                format!("{}.{}", row.get::<_, String>(0), row.get::<_, String>(1)),
                (row.get(2), row.get(3), row.get(4)),
            )
        })
        .collect()
}

/// Index name → definition, for every index on the toolkit's tables.
async fn indexes(client: &Client) -> BTreeMap<String, String> {
    client
        .query(
            "SELECT i.relname::text, pg_get_indexdef(i.oid) \
             FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
             JOIN pg_class t ON t.oid = x.indrelid WHERE t.relname = ANY($1)",
            &[&table_names()],
        )
        .await
        .expect("catalog query")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

/// Constraint name → definition (primary keys, unique, foreign keys with their deferral).
async fn constraints(client: &Client) -> BTreeMap<String, String> {
    client
        .query(
            "SELECT co.conname::text, t.relname || ': ' || pg_get_constraintdef(co.oid) \
             FROM pg_constraint co JOIN pg_class t ON t.oid = co.conrelid \
             WHERE t.relname = ANY($1) AND co.contype <> 'n'",
            &[&table_names()],
        )
        .await
        .expect("catalog query")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

/// Everything about the public schema's relations, including each catalog row's `xmin`, which
/// changes whenever anything (even an added index) modifies the relation.
async fn catalog_snapshot(client: &Client) -> Vec<String> {
    client
        .query(
            "SELECT c.relname || ' ' || c.relkind::text || ' xmin=' || c.xmin::text \
                    || ' file=' || c.relfilenode::text \
                    || ' cols=' || coalesce((SELECT string_agg(a.attname || ':' \
                        || format_type(a.atttypid, a.atttypmod) || ':' || a.attnotnull::text \
                        || ':' || a.xmin::text, ',' ORDER BY a.attnum) \
                        FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0), '') \
                    || ' cons=' || coalesce((SELECT string_agg(co.conname || ':' \
                        || co.xmin::text, ',' ORDER BY co.conname) \
                        FROM pg_constraint co WHERE co.conrelid = c.oid), '') \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public' ORDER BY c.relname",
            &[],
        )
        .await
        .expect("catalog query")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

fn expected_columns() -> BTreeMap<String, (String, bool, String)> {
    TABLES
        .iter()
        .flat_map(|table| {
            table.columns.iter().map(|c| {
                let identity = if c.generated { "d" } else { "" };
                (
                    format!("{}.{}", table.name, c.name),
                    (c.sql_type.to_owned(), c.nullable, identity.to_owned()),
                )
            })
        })
        .collect()
}

#[tokio::test]
async fn project_schema_has_exactly_the_listed_columns() {
    let db = TestDb::new().await;
    let client = db.client().await;
    assert_eq!(columns(&client).await, expected_columns());
}

#[tokio::test]
async fn healthchecks_dump_has_exactly_the_listed_columns() {
    let db = TestDb::from_sql_file(&healthchecks_dump()).await;
    let client = db.client().await;
    assert_eq!(columns(&client).await, expected_columns());
}

#[tokio::test]
async fn indexes_and_constraints_match_the_dump() {
    let ours = TestDb::new().await;
    let theirs = TestDb::from_sql_file(&healthchecks_dump()).await;
    let (ours, theirs) = (ours.client().await, theirs.client().await);
    let our_indexes = indexes(&ours).await;
    assert_eq!(our_indexes, indexes(&theirs).await);
    assert_eq!(constraints(&ours).await, constraints(&theirs).await);
    // The partial indexes the services rely on, spelled out.
    assert_eq!(
        our_indexes["api_check_aa_not_down"],
        "CREATE INDEX api_check_aa_not_down ON public.api_check USING btree (alert_after) \
         WHERE (NOT ((status)::text = 'down'::text))"
    );
    assert_eq!(
        our_indexes["api_flip_not_processed"],
        "CREATE INDEX api_flip_not_processed ON public.api_flip USING btree (processed) \
         WHERE (processed IS NULL)"
    );
    for index in hc_core::schema::INDEXES {
        assert!(our_indexes.contains_key(index.name), "{}", index.name);
    }
}

#[tokio::test]
async fn applying_twice_changes_nothing() {
    let db = TestDb::new().await;
    let client = db.client().await;
    let before = catalog_snapshot(&client).await;
    apply(&client).await.unwrap();
    assert_eq!(catalog_snapshot(&client).await, before);
}

#[tokio::test]
async fn applying_to_healthchecks_changes_nothing() {
    let db = TestDb::from_sql_file(&healthchecks_dump()).await;
    let client = db.client().await;
    let before = catalog_snapshot(&client).await;
    assert!(
        before.len() > 50,
        "the dump has many relations: {}",
        before.len()
    );
    apply(&client).await.unwrap();
    assert_eq!(catalog_snapshot(&client).await, before);
}

#[tokio::test]
async fn operator_command_applies_the_file_twice() {
    let db = TestDb::empty().await;
    let sql_file = workspace_root().join("hc-core/sql/schema.sql");
    let conninfo = format!(
        "host=127.0.0.1 port={} user=postgres dbname={}",
        db.cluster().port(),
        db.name
    );
    for _ in 0..2 {
        let output = Command::new(bin("psql"))
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-f"])
            .arg(&sql_file)
            .arg(&conninfo)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let client = db.client().await;
    check_schema(&client).await.unwrap();
}

#[tokio::test]
async fn check_schema_passes_on_the_project_schema() {
    let db = TestDb::new().await;
    let client = db.client().await;
    check_schema(&client).await.unwrap();
}

#[tokio::test]
async fn check_schema_passes_on_healthchecks() {
    let db = TestDb::from_sql_file(&healthchecks_dump()).await;
    let client = db.client().await;
    check_schema(&client).await.unwrap();
}

async fn mismatch_after(alter: &str) -> String {
    let db = TestDb::new().await;
    let client = db.client().await;
    client.batch_execute(alter).await.expect("alter the schema");
    match check_schema(&client).await {
        Err(err @ SchemaError::Mismatch(_)) => {
            let message = err.to_string();
            let as_anyhow = err.into_anyhow();
            assert!(as_anyhow.is::<hc_core::config::ConfigError>(), "exit 78");
            message
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn check_schema_names_a_dropped_column() {
    let message = mismatch_after("ALTER TABLE api_check DROP COLUMN kind").await;
    assert!(
        message.contains("column api_check.kind is missing"),
        "{message}"
    );
}

#[tokio::test]
async fn check_schema_names_a_wrong_type() {
    let message = mismatch_after("ALTER TABLE api_ping ALTER COLUMN id TYPE integer").await;
    assert!(
        message.contains("column api_ping.id is integer, expected bigint"),
        "{message}"
    );
}

#[tokio::test]
async fn check_schema_names_everything_wrong() {
    let message = mismatch_after(
        "ALTER TABLE api_flip ALTER COLUMN processed SET NOT NULL; \
         ALTER TABLE api_check ALTER COLUMN tz TYPE varchar(10); \
         DROP TABLE api_tokenbucket; \
         ALTER TABLE api_notification ADD COLUMN urgency integer NOT NULL",
    )
    .await;
    for expected in [
        "column api_flip.processed is NOT NULL, expected nullable",
        "column api_check.tz is character varying(10), expected character varying(36)",
        "table api_tokenbucket is missing",
        "column api_notification.urgency is NOT NULL without a default",
    ] {
        assert!(message.contains(expected), "{expected:?} not in {message}");
    }
}

#[tokio::test]
async fn check_schema_accepts_a_wider_varchar() {
    let db = TestDb::new().await;
    let client = db.client().await;
    client
        .batch_execute("ALTER TABLE api_check ALTER COLUMN name TYPE varchar(200)")
        .await
        .unwrap();
    check_schema(&client).await.unwrap();
}

#[tokio::test]
async fn check_schema_names_every_table_of_an_empty_database() {
    let db = TestDb::empty().await;
    let client = db.client().await;
    let err = check_schema(&client).await.unwrap_err();
    let message = err.to_string();
    for table in TABLES {
        assert!(
            message.contains(&format!("table {} is missing", table.name)),
            "{message}"
        );
    }
}

/// The factories fill every NOT NULL column, on our schema and on Healthchecks' alike.
async fn factories_work_on(db: &TestDb) -> anyhow::Result<()> {
    use hc_tests::factories::{ChannelSpec, CheckSpec, insert_channel, insert_check};
    let client = db.client().await;
    let down = insert_check(
        &client,
        CheckSpec {
            status: "down",
            kind: "cron",
            schedule: "0 3 * * *".to_owned(),
            tz: "Europe/Riga".to_owned(),
            last_ping: Some(chrono::Utc::now()),
            ..Default::default()
        },
    )
    .await?;
    let up = insert_check(
        &client,
        CheckSpec {
            project_id: Some(down.project_id),
            status: "up",
            ..Default::default()
        },
    )
    .await?;
    let channel = insert_channel(
        &client,
        ChannelSpec {
            project_id: Some(down.project_id),
            checks: vec![down.id, up.id],
            ..Default::default()
        },
    )
    .await?;
    let row = client
        .query_one(
            "SELECT c.status, c.kind, c.tz, extract(epoch FROM c.timeout)::float8, \
                    extract(epoch FROM c.grace)::float8, \
                    (SELECT count(*) FROM api_channel_checks WHERE channel_id = $2) \
             FROM api_check c WHERE c.code = $1",
            &[&down.code, &channel.id],
        )
        .await?;
    assert_eq!(row.get::<_, String>(0), "down");
    assert_eq!(row.get::<_, String>(1), "cron");
    assert_eq!(row.get::<_, String>(2), "Europe/Riga");
    assert_eq!(row.get::<_, f64>(3), 86_400.0);
    assert_eq!(row.get::<_, f64>(4), 3_600.0);
    assert_eq!(row.get::<_, i64>(5), 2);
    Ok(())
}

#[tokio::test]
async fn factories_fill_every_required_column_of_the_project_schema() {
    factories_work_on(&TestDb::new().await).await.unwrap();
}

#[tokio::test]
async fn factories_fill_every_required_column_of_healthchecks() {
    factories_work_on(&TestDb::from_sql_file(&healthchecks_dump()).await)
        .await
        .unwrap();
}

#[tokio::test]
async fn two_services_applying_at_once_both_succeed() {
    let db = TestDb::empty().await;
    let (first, second) = (db.client().await, db.client().await);
    let (a, b) = tokio::join!(apply(&first), apply(&second));
    a.unwrap();
    b.unwrap();
    check_schema(&first).await.unwrap();
}
