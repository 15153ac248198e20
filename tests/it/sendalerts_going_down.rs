//! `hc-sendalerts`' first step: due checks flip down (flip at the deadline, in one transaction),
//! stale deadlines move, broken schedules are postponed, and a ping committed after the read
//! wins over the down flip (the contract in ARCHITECTURE.md).

use chrono::{DateTime, TimeDelta, Utc};
use hc_sendalerts::going_down::{
    DUE_COLUMNS, Decision, Handled, POSTPONE, apply_decision, handle_going_down, read_due,
};
use hc_tests::factories::{CheckSpec, insert_check};
use hc_tests::http::get;
use hc_tests::ping::PingServer;
use hc_tests::postgres::TestDb;

fn ago(secs: i64) -> DateTime<Utc> {
    let t = Utc::now() - TimeDelta::seconds(secs);
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap()
}

/// An up check whose last ping was `secs` ago, with its `alert_after` from Healthchecks' rule.
fn up_since(secs: i64) -> CheckSpec {
    let last_ping = ago(secs);
    CheckSpec {
        status: "up",
        last_ping: Some(last_ping),
        alert_after: Some(last_ping + TimeDelta::days(1) + TimeDelta::hours(1)),
        n_pings: 1,
        ..CheckSpec::default()
    }
}

async fn flips(
    client: &tokio_postgres::Client,
    check_id: i32,
) -> Vec<(DateTime<Utc>, String, String, String)> {
    client
        .query(
            "SELECT created, old_status, new_status, reason FROM api_flip WHERE owner_id = $1 ORDER BY id",
            &[&check_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

#[tokio::test]
async fn a_late_check_flips_down_at_its_deadline() {
    let db = TestDb::new().await;
    let mut client = db.client().await;
    let spec = up_since(90_000 + 3_600);
    let deadline = spec.alert_after.unwrap();
    let check = insert_check(&client, spec).await.unwrap();

    let handled = handle_going_down(&mut client, Utc::now()).await.unwrap();
    assert_eq!(
        handled,
        Handled::Applied(check.code, Decision::FlipDown(deadline))
    );
    let row = client
        .query_one(
            "SELECT status, alert_after FROM api_check WHERE id = $1",
            &[&check.id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "down");
    assert_eq!(row.get::<_, Option<DateTime<Utc>>>(1), None);
    assert_eq!(
        flips(&client, check.id).await,
        vec![(deadline, "up".into(), "down".into(), "timeout".into())]
    );
    // Nothing is due any more.
    assert_eq!(
        handle_going_down(&mut client, Utc::now()).await.unwrap(),
        Handled::Idle
    );
}

#[tokio::test]
async fn a_stale_deadline_moves_without_a_flip() {
    let db = TestDb::new().await;
    let mut client = db.client().await;
    let mut spec = up_since(60);
    spec.alert_after = Some(ago(1));
    let last_ping = spec.last_ping.unwrap();
    let check = insert_check(&client, spec).await.unwrap();

    let expected = last_ping + TimeDelta::days(1) + TimeDelta::hours(1);
    let handled = handle_going_down(&mut client, Utc::now()).await.unwrap();
    assert_eq!(
        handled,
        Handled::Applied(check.code, Decision::Reschedule(Some(expected)))
    );
    let row = client
        .query_one(
            "SELECT status, alert_after FROM api_check WHERE id = $1",
            &[&check.id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "up");
    assert_eq!(row.get::<_, Option<DateTime<Utc>>>(1), Some(expected));
    assert!(flips(&client, check.id).await.is_empty());
}

#[tokio::test]
async fn a_broken_schedule_is_postponed_and_the_others_still_flip() {
    let db = TestDb::new().await;
    let mut client = db.client().await;
    let mut broken = up_since(90_000 + 7_200);
    broken.kind = "cron";
    broken.schedule = "garbage".into();
    let broken = insert_check(&client, broken).await.unwrap();
    let late = insert_check(&client, up_since(90_000 + 3_600))
        .await
        .unwrap();

    let now = Utc::now();
    match handle_going_down(&mut client, now).await.unwrap() {
        Handled::Applied(code, Decision::Postpone(at, _)) => {
            assert_eq!(code, broken.code);
            assert_eq!(at, now + POSTPONE);
        }
        other => panic!("the broken check comes first and is postponed: {other:?}"),
    }
    match handle_going_down(&mut client, Utc::now()).await.unwrap() {
        Handled::Applied(code, Decision::FlipDown(_)) => assert_eq!(code, late.code),
        other => panic!("the late check flips next: {other:?}"),
    }
    assert_eq!(
        handle_going_down(&mut client, Utc::now()).await.unwrap(),
        Handled::Idle
    );
    let status: String = client
        .query_one("SELECT status FROM api_check WHERE id = $1", &[&broken.id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "up");
}

#[tokio::test]
async fn a_ping_committed_after_the_read_wins_over_the_down_flip() {
    let db = TestDb::new().await;
    let mut client = db.client().await;
    let check = insert_check(&client, up_since(90_000 + 3_600))
        .await
        .unwrap();
    // The sender reads the check and decides it is down...
    let row = client
        .query_one(
            &format!("SELECT {DUE_COLUMNS} FROM api_check WHERE id = $1"),
            &[&check.id],
        )
        .await
        .unwrap();
    let seen = read_due(&row).unwrap();
    let Decision::FlipDown(created) = hc_sendalerts::going_down::decide(&seen, Utc::now()) else {
        panic!("the check is late");
    };
    // ...then hchk-ping commits a success ping...
    let server = PingServer::start(&db).await;
    let reply = get(server.addr, &format!("/ping/{}", check.code))
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    // ...so the conditional update changes nothing and no flip is written.
    let tx = client.transaction().await.unwrap();
    let applied = apply_decision(&tx, &seen, &Decision::FlipDown(created))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(!applied);
    let row = client
        .query_one(
            "SELECT status, n_pings, alert_after > now() FROM api_check WHERE id = $1",
            &[&check.id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "up");
    assert_eq!(row.get::<_, i32>(1), 2);
    assert!(row.get::<_, bool>(2));
    assert!(flips(&client, check.id).await.is_empty());
    server.stop().await.unwrap();
}
