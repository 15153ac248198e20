//! A first look at `hchk-ping` end to end: a success ping is committed, counted and answered.

use hc_tests::factories::{CheckSpec, insert_check};
use hc_tests::http::{get, request};
use hc_tests::ping::PingServer;
use hc_tests::postgres::TestDb;

#[tokio::test]
async fn a_success_ping_is_recorded() {
    let db = TestDb::new().await;
    let client = db.client().await;
    let check = insert_check(&client, CheckSpec::default()).await.unwrap();
    let server = PingServer::start(&db).await;

    let reply = get(server.addr, &format!("/ping/{}", check.code))
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "OK");
    assert_eq!(
        reply.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert_eq!(reply.header("ping-body-limit").as_deref(), Some("100000"));

    let row = client
        .query_one(
            "SELECT status, n_pings, alert_after = last_ping + interval '1 day 1 hour' FROM api_check WHERE id = $1",
            &[&check.id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "up");
    assert_eq!(row.get::<_, i32>(1), 1);
    assert!(row.get::<_, bool>(2));
    let ping = client
        .query_one(
            "SELECT n, kind, scheme, method, host(remote_addr) FROM api_ping WHERE owner_id = $1",
            &[&check.id],
        )
        .await
        .unwrap();
    assert_eq!(ping.get::<_, Option<i32>>(0), Some(1));
    assert_eq!(ping.get::<_, Option<String>>(1), None);
    assert_eq!(ping.get::<_, String>(2), "http");
    assert_eq!(ping.get::<_, String>(3), "GET");
    assert_eq!(ping.get::<_, String>(4), "127.0.0.1");

    let missing = request(
        server.addr,
        "POST",
        "/ping/00000000-0000-4000-8000-000000000000/fail",
        &[],
        "x",
    )
    .await
    .unwrap();
    assert_eq!(missing.status, 404);
    assert_eq!(missing.text(), "not found");

    let health = get(server.addr, "/health").await.unwrap();
    assert_eq!(health.status, 200);
    let metrics = get(server.addr, "/metrics").await.unwrap();
    assert!(
        metrics
            .text()
            .contains("hchk_ping_pings_total{kind=\"success\"} 1"),
        "{}",
        metrics.text()
    );
    server.stop().await.unwrap();
}
