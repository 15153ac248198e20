//! `hchk-ping` under load and under failure: concurrent pings replay to the same state, and an
//! acknowledged ping is recorded exactly once whether the process is killed, PostgreSQL stops
//! and comes back, or the primary fails over to a standby; the process contract (READY=1,
//! SIGTERM drains, a huge body costs no memory).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use hc_core::status::{CheckKind, CheckTiming, StoredStatus};
use hc_tests::eventually::eventually;
use hc_tests::factories::{CheckSpec, insert_check, insert_owned_project};
use hc_tests::http::{Connection, get};
use hc_tests::ping::{PingProcess, PingServer};
use hc_tests::postgres::{Cluster, Shutdown, TestDb};
use hchk_ping::pings::{CheckState, PingSignal, apply_ping};
use hchk_ping::routes::UrlAction;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;
use tokio_postgres::Client;
use uuid::Uuid;

const PATIENCE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Concurrency: the committed rows are what sequential processing would have written.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pings_replay_to_the_committed_state() {
    let db = TestDb::new().await;
    let client = db.client().await;
    let project = insert_owned_project(&client).await.unwrap();
    let mut checks = Vec::new();
    for n in 0..5 {
        let spec = CheckSpec {
            project_id: Some(project.id),
            ..CheckSpec::default()
        };
        // One cron check, so alert_after comes from a schedule too.
        let spec = if n == 0 {
            CheckSpec {
                kind: "cron",
                schedule: "*/5 * * * *".into(),
                tz: "Europe/Riga".into(),
                ..spec
            }
        } else {
            spec
        };
        checks.push(insert_check(&client, spec).await.unwrap());
    }
    let mut initial = HashMap::new();
    for check in &checks {
        initial.insert(check.id, read_state(&client, check.id).await);
    }
    let server = PingServer::start(&db).await;

    // A few run ids per check, so that starts and ends sometimes match and sometimes not.
    let rids: Arc<Vec<Uuid>> = Arc::new((0..3).map(|_| Uuid::new_v4()).collect());
    let codes: Arc<Vec<Uuid>> = Arc::new(checks.iter().map(|c| c.code).collect());
    let mut clients = JoinSet::new();
    for c in 0..50_usize {
        let (rids, codes, addr) = (rids.clone(), codes.clone(), server.addr);
        clients.spawn(async move {
            let mut connection = Connection::open(addr).await.unwrap();
            let mut answered = Vec::new();
            for i in 0..8_usize {
                let k = c * 8 + i;
                let check = (c + i) % codes.len();
                let suffix = ["", "/start", "/fail", "/log", "/0", "/1"][(c * 3 + i * 5) % 6];
                let query = match k % 4 {
                    0 => String::new(),
                    r => format!("?rid={}", rids[r - 1]),
                };
                let path = format!("/ping/{}{suffix}{query}", codes[check]);
                let reply = if k % 5 == 0 {
                    connection.send("POST", &path, &[], "please confirm").await
                } else {
                    connection.send("GET", &path, &[], "").await
                };
                answered.push((check, reply.unwrap().status));
            }
            answered
        });
    }
    let mut acknowledged = vec![0_i32; checks.len()];
    while let Some(answered) = clients.join_next().await {
        for (check, status) in answered.unwrap() {
            assert_eq!(status, 200);
            acknowledged[check] += 1;
        }
    }
    assert_eq!(acknowledged.iter().sum::<i32>(), 400);
    server.stop().await.unwrap();

    for (check, acknowledged) in checks.iter().zip(acknowledged) {
        let pings = client
            .query(
                "SELECT n, kind, exitstatus, rid, created, body_raw, method FROM api_ping \
                 WHERE owner_id = $1 ORDER BY n",
                &[&check.id],
            )
            .await
            .unwrap();
        let ns: Vec<i32> = pings.iter().map(|row| row.get(0)).collect();
        assert_eq!(
            ns,
            (1..=acknowledged).collect::<Vec<_>>(),
            "check {}",
            check.id
        );

        let mut state = initial[&check.id].clone();
        let mut flips = Vec::new();
        for row in &pings {
            let kind: Option<String> = row.get(1);
            let exitstatus: Option<i16> = row.get(2);
            let action = match kind.as_deref() {
                None => UrlAction::Success,
                Some("start") => UrlAction::Start,
                Some("fail") => UrlAction::Fail,
                Some("log") => UrlAction::Log,
                Some(other) => panic!("unexpected kind {other}"),
            };
            if exitstatus.is_some_and(|code| code > 0) {
                assert_eq!(action, UrlAction::Fail);
            }
            let body: Vec<u8> = row.get(5);
            let method: String = row.get(6);
            let signal = PingSignal {
                action,
                method: &method,
                body: &body,
                rid: row.get(3),
            };
            let effect = apply_ping(&mut state, &signal, row.get(4));
            assert_eq!(effect.n, row.get::<_, i32>(0));
            assert_eq!(effect.kind.as_db(), kind.as_deref());
            if let Some(flip) = effect.flip {
                flips.push((
                    flip.old_status.as_db().to_owned(),
                    flip.new_status.as_db().to_owned(),
                    flip.reason.to_owned(),
                    flip.created,
                ));
            }
        }
        assert_eq!(
            read_state(&client, check.id).await,
            state,
            "check {}",
            check.id
        );
        let stored_flips: Vec<(String, String, String, DateTime<Utc>)> = client
            .query(
                "SELECT old_status, new_status, reason, created FROM api_flip \
                 WHERE owner_id = $1 ORDER BY id",
                &[&check.id],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
            .collect();
        assert_eq!(stored_flips, flips, "check {}", check.id);
    }
}

/// The columns of a check that [`apply_ping`] reads and writes.
async fn read_state(client: &Client, id: i32) -> CheckState {
    let row = client
        .query_one(
            "SELECT id, code, status, kind, (EXTRACT(EPOCH FROM timeout) * 1000000)::int8, \
                 (EXTRACT(EPOCH FROM grace) * 1000000)::int8, schedule, tz, last_ping, \
                 last_start, last_start_rid, (EXTRACT(EPOCH FROM last_duration) * 1000000)::int8, \
                 alert_after, n_pings, has_confirmation_link, methods, manual_resume, \
                 filter_http_body, filter_default_fail, start_kw, success_kw, failure_kw \
             FROM api_check WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    CheckState {
        id: row.get(0),
        code: row.get(1),
        timing: CheckTiming {
            status: StoredStatus::from_db(row.get(2)).unwrap(),
            kind: CheckKind::from_db(row.get(3)).unwrap(),
            timeout: TimeDelta::microseconds(row.get(4)),
            grace: TimeDelta::microseconds(row.get(5)),
            schedule: row.get(6),
            tz: row.get(7),
            last_ping: row.get(8),
            last_start: row.get(9),
        },
        last_start_rid: row.get(10),
        last_duration: row.get::<_, Option<i64>>(11).map(TimeDelta::microseconds),
        alert_after: row.get(12),
        n_pings: row.get(13),
        has_confirmation_link: row.get(14),
        methods: row.get(15),
        manual_resume: row.get(16),
        filter_http_body: row.get(17),
        filter_default_fail: row.get(18),
        start_kw: row.get(19),
        success_kw: row.get(20),
        failure_kw: row.get(21),
    }
}

// ---------------------------------------------------------------------------------------------
// Failures under load: every ping answered 2xx is in api_ping exactly once.

/// One request of a [`Load`]: its run id, its status (`None`: no response), and the phase of the
/// test when it was sent.
#[derive(Debug, Clone, Copy)]
struct Sent {
    rid: Uuid,
    status: Option<u16>,
    phase: usize,
}

/// Clients sending success pings with unique run ids, round robin over some checks, each on its
/// own kept-alive connection, until stopped. A client whose connection breaks stops.
struct Load {
    stop: Arc<AtomicBool>,
    phase: Arc<AtomicUsize>,
    sent: Arc<Mutex<Vec<Sent>>>,
    clients: JoinSet<()>,
}

impl Load {
    fn start(addr: std::net::SocketAddr, codes: &[Uuid], clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let phase = Arc::new(AtomicUsize::new(0));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let mut set = JoinSet::new();
        for c in 0..clients {
            let (stop, phase, sent) = (stop.clone(), phase.clone(), sent.clone());
            let codes = codes.to_vec();
            set.spawn(async move {
                let Ok(mut connection) = Connection::open(addr).await else {
                    return;
                };
                let mut i = c;
                while !stop.load(Ordering::SeqCst) {
                    let rid = Uuid::new_v4();
                    let at = phase.load(Ordering::SeqCst);
                    let path = format!("/ping/{}?rid={rid}", codes[i % codes.len()]);
                    i += 1;
                    let reply = connection.send("GET", &path, &[], "").await;
                    let status = reply.as_ref().ok().map(|r| r.status);
                    sent.lock().unwrap().push(Sent {
                        rid,
                        status,
                        phase: at,
                    });
                    if status.is_none() {
                        return;
                    }
                }
            });
        }
        Load {
            stop,
            phase,
            sent,
            clients: set,
        }
    }

    /// Requests sent at `phase` or later that got `status`.
    fn count(&self, status: u16, phase: usize) -> usize {
        let sent = self.sent.lock().unwrap();
        sent.iter()
            .filter(|s| s.status == Some(status) && s.phase >= phase)
            .count()
    }

    /// Waits until at least `n` requests sent at `phase` or later got `status`.
    async fn wait_for(&self, n: usize, status: u16, phase: usize) {
        eventually(PATIENCE, || async {
            let seen = self.count(status, phase);
            anyhow::ensure!(seen >= n, "{seen} of {n} responses {status} so far");
            Ok(())
        })
        .await
        .unwrap();
    }

    /// Marks the requests sent from now on with the next phase.
    fn next_phase(&self) -> usize {
        self.phase.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Stops the clients and returns every request.
    async fn finish(mut self) -> Vec<Sent> {
        self.stop.store(true, Ordering::SeqCst);
        while let Some(joined) = self.clients.join_next().await {
            joined.unwrap();
        }
        self.sent.lock().unwrap().clone()
    }
}

/// How often each run id is in `api_ping`.
async fn recorded_rids(client: &Client) -> HashMap<Uuid, i64> {
    client
        .query(
            "SELECT rid, count(*) FROM api_ping WHERE rid IS NOT NULL GROUP BY rid",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

/// Every 2xx is recorded exactly once, nothing twice, and nothing that got another answer
/// (other than no answer at all) is recorded.
fn assert_exactly_once(sent: &[Sent], recorded: &HashMap<Uuid, i64>) {
    let twice: Vec<_> = recorded.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "recorded more than once: {twice:?}");
    for s in sent {
        match s.status {
            Some(200..=299) => assert_eq!(
                recorded.get(&s.rid),
                Some(&1),
                "acknowledged but not recorded: {s:?}"
            ),
            Some(_) => assert_eq!(recorded.get(&s.rid), None, "refused but recorded: {s:?}"),
            None => {}
        }
    }
}

async fn insert_checks(client: &Client, n: usize) -> Vec<Uuid> {
    let project = insert_owned_project(client).await.unwrap();
    let mut codes = Vec::new();
    for _ in 0..n {
        let spec = CheckSpec {
            project_id: Some(project.id),
            ..CheckSpec::default()
        };
        codes.push(insert_check(client, spec).await.unwrap().code);
    }
    codes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_loses_no_acknowledged_ping() {
    let db = TestDb::new().await;
    let client = db.client().await;
    let codes = insert_checks(&client, 3).await;
    let mut process = PingProcess::start(&db.vars()).unwrap();
    process.wait_ready(PATIENCE).await.unwrap();

    let load = Load::start(process.addr, &codes, 20);
    load.wait_for(300, 200, 0).await;
    process.kill().unwrap();
    let sent = load.finish().await;

    let recorded = recorded_rids(&client).await;
    assert_exactly_once(&sent, &recorded);
    assert!(sent.iter().all(|s| matches!(s.status, Some(200) | None)));
    assert!(
        sent.iter().any(|s| s.status.is_none()),
        "some requests were in flight when the process died"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_fast_restart_answers_503_or_records_once() {
    restart_postgres_under_load(Shutdown::Fast).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_crash_answers_503_or_records_once() {
    // Sessions cut off without an answer: a COMMIT in flight is in doubt until the restart.
    restart_postgres_under_load(Shutdown::Immediate).await;
}

/// Stops PostgreSQL under load until every client got a 503, starts it again, and checks
/// that every request got 200 or 503 and that exactly the 200s are recorded, once.
async fn restart_postgres_under_load(mode: Shutdown) {
    let cluster = Cluster::start().await.unwrap();
    cluster.create_database("hc").await.unwrap();
    let codes = {
        let client = cluster.connect("hc").await.unwrap();
        hc_core::schema::apply(&client).await.unwrap();
        insert_checks(&client, 3).await
    };
    let mut vars = cluster.vars("hc");
    vars.insert("HCHK_PING_DB_WAIT".into(), "2".into());
    let server = PingServer::start_with_vars(&vars).await;

    let load = Load::start(server.addr, &codes, 20);
    load.wait_for(100, 200, 0).await;
    tokio::task::block_in_place(|| cluster.stop_keeping_data(mode)).unwrap();
    // The outage lasts until every client has been turned away at least once.
    load.wait_for(20, 503, 0).await;
    cluster.start_again().await.unwrap();
    let after = load.next_phase();
    load.wait_for(100, 200, after).await;
    let sent = load.finish().await;
    server.stop().await.unwrap();

    assert!(
        sent.iter().all(|s| matches!(s.status, Some(200 | 503))),
        "every request got 200 or 503: {:?}",
        sent.iter()
            .filter(|s| !matches!(s.status, Some(200 | 503)))
            .collect::<Vec<_>>()
    );
    let client = cluster.connect("hc").await.unwrap();
    assert_exactly_once(&sent, &recorded_rids(&client).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failover_under_load_records_every_acknowledged_ping_once() {
    let primary = Cluster::start().await.unwrap();
    primary.create_database("hc").await.unwrap();
    let codes = {
        let client = primary.connect("hc").await.unwrap();
        hc_core::schema::apply(&client).await.unwrap();
        insert_checks(&client, 3).await
    };
    let standby = Cluster::start_standby(&primary).await.unwrap();
    let vars: HashMap<String, String> = [
        ("DB", "postgres".to_owned()),
        ("DB_HOST", "127.0.0.1,127.0.0.1".to_owned()),
        ("DB_PORT", format!("{},{}", primary.port(), standby.port())),
        ("DB_NAME", "hc".to_owned()),
        ("DB_USER", "postgres".to_owned()),
        ("DB_SSLMODE", "disable".to_owned()),
        ("DB_TARGET_SESSION_ATTRS", "read-write".to_owned()),
        ("HCHK_PING_DB_WAIT", "2".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let server = PingServer::start_with_vars(&vars).await;

    let load = Load::start(server.addr, &codes, 20);
    load.wait_for(100, 200, 0).await;
    // A fast shutdown streams all WAL to the standby before the primary exits.
    tokio::task::block_in_place(|| primary.stop()).unwrap();
    standby.promote().await.unwrap();
    let after = load.next_phase();
    load.wait_for(100, 200, after).await;
    let sent = load.finish().await;
    server.stop().await.unwrap();

    assert!(
        sent.iter().all(|s| matches!(s.status, Some(200 | 503))),
        "every request got 200 or 503"
    );
    let client = standby.connect("hc").await.unwrap();
    assert_exactly_once(&sent, &recorded_rids(&client).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_commit_cut_off_while_waiting_for_a_standby_is_acknowledged_once() {
    // PostgreSQL sends a warning and closes the connection: COMMIT gets no answer.
    commit_then_terminate(Cutoff::WhileWaiting).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_commit_answered_fatal_after_it_went_through_is_acknowledged_once() {
    // The wait ends normally, then the pending termination answers COMMIT with FATAL.
    commit_then_terminate(Cutoff::AfterWaiting).await;
}

/// When [`commit_then_terminate`] ends the writer's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cutoff {
    WhileWaiting,
    AfterWaiting,
}

/// A ping whose COMMIT went through but whose session is terminated around its wait for a
/// synchronous standby (that never comes) is answered 200 and recorded once.
async fn commit_then_terminate(cutoff: Cutoff) {
    let cluster = Cluster::start().await.unwrap();
    cluster.create_database("hc").await.unwrap();
    let codes = {
        let client = cluster.connect("hc").await.unwrap();
        hc_core::schema::apply(&client).await.unwrap();
        insert_checks(&client, 1).await
    };
    let server = PingServer::start_with_vars(&cluster.vars("hc")).await;
    // Every COMMIT commits locally, then waits for the standby.
    let admin = cluster.connect("postgres").await.unwrap();
    set_synchronous_standby(&admin, "'nobody'").await;

    let rid = Uuid::new_v4();
    let path = format!("/ping/{}?rid={rid}", codes[0]);
    let addr = server.addr;
    let request = tokio::spawn(async move {
        let mut connection = Connection::open(addr).await.unwrap();
        connection.send("GET", &path, &[], "").await.unwrap().status
    });
    let pid = eventually(PATIENCE, || async {
        let row = admin
            .query_opt(
                "SELECT pid FROM pg_stat_activity \
                 WHERE application_name = 'hchk-ping' AND wait_event = 'SyncRep'",
                &[],
            )
            .await?;
        row.map(|row| row.get::<_, i32>(0))
            .ok_or_else(|| anyhow::anyhow!("no COMMIT waits for the standby yet"))
    })
    .await
    .unwrap();
    match cutoff {
        Cutoff::WhileWaiting => {
            terminate(&admin, pid).await;
            eventually(PATIENCE, || async {
                let gone = admin
                    .query_opt("SELECT 1 FROM pg_stat_activity WHERE pid = $1", &[&pid])
                    .await?
                    .is_none();
                anyhow::ensure!(gone, "session {pid} still there");
                Ok(())
            })
            .await
            .unwrap();
            set_synchronous_standby(&admin, "DEFAULT").await;
        }
        Cutoff::AfterWaiting => {
            // Frozen, the session gets the termination and the end of its wait at once; on
            // waking it sees the wait ended first, finishes the commit, then dies.
            signal_process(pid, "STOP");
            terminate(&admin, pid).await;
            set_synchronous_standby(&admin, "DEFAULT").await;
            // A commit that does not wait for the standby shows its waiters were released.
            let cluster = &cluster;
            eventually(PATIENCE, || async {
                let probe = cluster.connect("postgres").await?;
                let committed = tokio::time::timeout(
                    Duration::from_millis(500),
                    probe.batch_execute("CREATE TEMP TABLE probe (x int)"),
                )
                .await;
                anyhow::ensure!(matches!(committed, Ok(Ok(()))), "COMMIT still waits");
                Ok(())
            })
            .await
            .unwrap();
            signal_process(pid, "CONT");
        }
    }
    assert_eq!(request.await.unwrap(), 200);
    server.stop().await.unwrap();

    let client = cluster.connect("hc").await.unwrap();
    assert_eq!(recorded_rids(&client).await.get(&rid), Some(&1));
}

async fn terminate(admin: &Client, pid: i32) {
    let done: bool = admin
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap()
        .get(0);
    assert!(done, "cannot terminate {pid}");
}

/// Sends a signal by name to a process with kill(1), which needs no unsafe code.
fn signal_process(pid: i32, name: &str) {
    let status = std::process::Command::new("kill")
        .args(["-s", name, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -s {name} {pid}");
}

/// Sets `synchronous_standby_names` for the whole cluster (`DEFAULT`: none).
async fn set_synchronous_standby(admin: &Client, value: &str) {
    // ALTER SYSTEM refuses to run in a transaction, as a multi-statement query would be.
    admin
        .batch_execute(&format!(
            "ALTER SYSTEM SET synchronous_standby_names = {value}"
        ))
        .await
        .unwrap();
    admin
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// The process contract.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_answers_and_commits_requests_in_flight() {
    let db = TestDb::new().await;
    let client = db.client().await;
    let codes = insert_checks(&client, 1).await;
    let mut vars = db.vars();
    // One writer taking one ping at a time: the others wait in the queue, where /metrics sees them.
    vars.insert("HCHK_PING_WRITERS".into(), "1".into());
    vars.insert("HCHK_PING_BATCH_MAX".into(), "1".into());
    let mut process = PingProcess::start(&vars).unwrap();
    process.wait_ready(PATIENCE).await.unwrap();
    // Listening and ready as soon as READY=1 arrived.
    let health = get(process.addr, "/health").await.unwrap();
    assert_eq!(health.status, 200, "{}", health.text());

    // Hold the check's row so that no ping can commit.
    let blocker = db.cluster().connect(&db.name).await.unwrap();
    blocker
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM api_check WHERE code = '{}' FOR UPDATE",
            codes[0]
        ))
        .await
        .unwrap();
    let mut requests = JoinSet::new();
    let mut rids = Vec::new();
    for _ in 0..10 {
        let rid = Uuid::new_v4();
        rids.push(rid);
        let path = format!("/ping/{}?rid={rid}", codes[0]);
        let addr = process.addr;
        requests.spawn(async move {
            let mut connection = Connection::open(addr).await.unwrap();
            connection.send("GET", &path, &[], "").await.unwrap().status
        });
    }
    // One ping is in the writer's batch, waiting for the lock; nine wait in the queue.
    eventually(PATIENCE, || async {
        let metrics = get(process.addr, "/metrics").await?.text();
        anyhow::ensure!(
            metrics.contains("hchk_ping_queue_length 9\n"),
            "not all pings queued yet"
        );
        Ok(())
    })
    .await
    .unwrap();

    process.signal("TERM").unwrap();
    // The listener closes at once; the requests in flight stay.
    eventually(PATIENCE, || async {
        anyhow::ensure!(
            tokio::net::TcpStream::connect(process.addr).await.is_err(),
            "still accepting connections"
        );
        Ok(())
    })
    .await
    .unwrap();
    blocker.batch_execute("ROLLBACK").await.unwrap();

    while let Some(status) = requests.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    let status = process.wait_exit(PATIENCE).await.unwrap();
    assert_eq!(status.code(), Some(0), "{}", process.log());
    let recorded = recorded_rids(&client).await;
    for rid in rids {
        assert_eq!(recorded.get(&rid), Some(&1), "{rid}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_one_gigabyte_body_gets_413_in_little_memory() {
    let db = TestDb::new().await;
    let client = db.client().await;
    let codes = insert_checks(&client, 1).await;
    let mut process = PingProcess::start(&db.vars()).unwrap();
    process.wait_ready(PATIENCE).await.unwrap();

    for chunked in [false, true] {
        let status = send_huge_body(process.addr, codes[0], chunked).await;
        assert_eq!(status, 413, "chunked: {chunked}");
    }
    let peak_kb = peak_rss_kb(process.pid());
    assert!(peak_kb < 64 * 1024, "peak RSS {peak_kb} kB");
    // Still serving.
    let reply = get(process.addr, &format!("/ping/{}", codes[0]))
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
}

/// Sends a 1 GiB body (declared with Content-Length, or chunked) in 1 MiB writes, stops as soon
/// as the response's status line arrives, and returns its status.
async fn send_huge_body(addr: std::net::SocketAddr, code: Uuid, chunked: bool) -> u16 {
    const CHUNK: usize = 1 << 20;
    const CHUNKS: usize = 1024;
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        format!("Content-Length: {}", CHUNK * CHUNKS)
    };
    let head = format!("POST /ping/{code} HTTP/1.1\r\nHost: test\r\n{framing}\r\n\r\n");
    let sender = tokio::spawn(async move {
        write.write_all(head.as_bytes()).await?;
        let chunk = vec![b'x'; CHUNK];
        for _ in 0..CHUNKS {
            if chunked {
                write.write_all(format!("{CHUNK:x}\r\n").as_bytes()).await?;
                write.write_all(&chunk).await?;
                write.write_all(b"\r\n").await?;
            } else {
                write.write_all(&chunk).await?;
            }
        }
        if chunked {
            write.write_all(b"0\r\n\r\n").await?;
        }
        anyhow::Ok(write)
    });
    let mut response = Vec::new();
    let mut buf = [0_u8; 4096];
    while !response.windows(2).any(|w| w == b"\r\n") {
        let n = read.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed without a response");
        response.extend_from_slice(&buf[..n]);
    }
    // Writes fail once the server closes the connection; the rest of the body does not matter.
    sender.abort();
    let line = String::from_utf8_lossy(&response).into_owned();
    line.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {line}"))
}

/// `VmHWM` of a process: its peak resident set size, in kB.
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in {status}"))
}
