//! Fail-over: a pool configured with a primary and its hot standby keeps writing, without a
//! restart, after the primary stops and the standby is promoted.

use std::collections::HashMap;
use std::time::Duration;

use hc_core::config::DbConfig;
use hc_core::db::create_pool;
use hc_tests::eventually::eventually;
use hc_tests::postgres::Cluster;

async fn insert_bucket(pool: &deadpool_postgres::Pool, value: &str) -> anyhow::Result<()> {
    let client = pool.get().await?;
    client
        .execute(
            "INSERT INTO api_tokenbucket (value, tokens, updated) VALUES ($1, 1.0, now())",
            &[&value],
        )
        .await?;
    Ok(())
}

#[tokio::test]
async fn pool_finds_the_promoted_standby() {
    let primary = Cluster::start().await.unwrap();
    primary.create_database("hc").await.unwrap();
    hc_core::schema::apply(&primary.connect("hc").await.unwrap())
        .await
        .unwrap();
    let standby = Cluster::start_standby(&primary).await.unwrap();

    let vars = HashMap::from([
        ("DB", "postgres".to_owned()),
        ("DB_HOST", "127.0.0.1,127.0.0.1".to_owned()),
        ("DB_PORT", format!("{},{}", primary.port(), standby.port())),
        ("DB_NAME", "hc".to_owned()),
        ("DB_SSLMODE", "disable".to_owned()),
        ("DB_TARGET_SESSION_ATTRS", "read-write".to_owned()),
        ("DB_POOL_SIZE", "4".to_owned()),
    ]);
    let vars: HashMap<&str, &str> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut config = DbConfig::from_vars(&vars).unwrap();
    config.connect_timeout = Duration::from_secs(2);
    let pool = create_pool(&config, "hc-tests-failover").unwrap();

    // The standby is up but read-only: every write goes to the primary.
    for n in 0..3 {
        insert_bucket(&pool, &format!("before-{n}")).await.unwrap();
    }
    // Keep idle connections to the primary in the pool, to be found dead later.
    let held: Vec<_> = hold_connections(&pool, 3).await;
    drop(held);

    primary.stop().unwrap();
    // Between the stop and the promotion there is no writable server at all.
    assert!(insert_bucket(&pool, "no-primary").await.is_err());
    standby.promote().await.unwrap();

    // The same pool, no restart: writes are retried until they land.
    for n in 0..3 {
        let value = format!("after-{n}");
        eventually(Duration::from_secs(30), || insert_bucket(&pool, &value))
            .await
            .unwrap();
    }

    let promoted = standby.connect("hc").await.unwrap();
    let in_recovery: bool = promoted
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!in_recovery);
    let values: Vec<String> = promoted
        .query("SELECT value FROM api_tokenbucket ORDER BY value", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(
        values,
        [
            "after-0", "after-1", "after-2", "before-0", "before-1", "before-2"
        ]
    );
}

/// Checks out `n` connections at once, so the pool holds that many.
async fn hold_connections(
    pool: &deadpool_postgres::Pool,
    n: usize,
) -> Vec<deadpool_postgres::Object> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        held.push(pool.get().await.expect("a connection to the primary"));
    }
    held
}
