//! Deploys and crashes at process level: SIGTERM drains and hands work back (a restart
//! resumes at once), a SIGKILLed worker's claims are taken over when its lease expires,
//! and a worker frozen past its lease (SIGSTOP) and then resumed causes no double effect.

use std::{
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use entity::database::{self, Database};
use sea_orm::{ConnectionTrait, Statement};
use tests::{
    Backend,
    fake_hotmart::FakeHotmart,
    on_both_backends,
    process::{
        Gql, Process, Store, assert_burst_applied_once, burst, cluster, crm, free_port,
        january_sales, post_until_acknowledged, wait_all_done, wait_healthy,
    },
};

/// Deliveries per burst (`DRAIN_DELIVERIES` overrides).
fn burst_size() -> usize {
    std::env::var("DRAIN_DELIVERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1200)
}

/// Sales the fake Hotmart has for the import that runs during a burst.
const IMPORTED: usize = 5000;

/// A fake Hotmart with January's sales, each Sales History page taking 500 ms: the import
/// window spans several seconds, so signals land mid-window.
async fn slow_hotmart() -> FakeHotmart {
    let hotmart = FakeHotmart::start().await;
    hotmart
        .state
        .sales
        .lock()
        .unwrap()
        .extend(january_sales(IMPORTED));
    hotmart
        .state
        .faults
        .history_latency_ms
        .store(500, Ordering::SeqCst);
    hotmart
}

/// Waits until `ready` holds (checked every 50 ms); panics after two minutes.
async fn wait_for<F, Fut>(what: &str, mut ready: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The import run's sales seen so far.
async fn sales_seen(gql: &Gql, run: &str) -> usize {
    gql.import_run(run).await["salesSeen"].as_u64().unwrap_or(0) as usize
}

/// The run ended with every sale imported once.
async fn assert_imported_once(gql: &Gql, run: &str) {
    let finished = gql.import_run(run).await;
    assert_eq!(finished["status"], "SUCCEEDED", "{finished}");
    assert_eq!(finished["salesSeen"].as_u64(), Some(IMPORTED as u64));
    assert_eq!(finished["dealsCreated"].as_u64(), Some(IMPORTED as u64));
    assert_eq!(finished["skipped"], 0, "{finished}");
}

async fn sigterm_mid_burst_hands_work_back_and_a_restart_resumes_at_once(backend: Backend) {
    let hotmart = slow_hotmart().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(backend, dir.path()).await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let bind = format!("127.0.0.1:{port}");
    // Leases and the sweeper far slower than the test: only work handed back on
    // shutdown can be taken at once by the next process.
    let env = [("WORKER_LEASE_SECS", "120"), ("WORKER_STALE_SECS", "600")];
    let serve = ["serve", "--bind", bind.as_str()];
    let mut server = crm(dir.path(), &store.url, &hotmart.base, &env, &serve);
    wait_healthy(&base).await;
    let gql = Gql::new(&base, dir.path());
    let db = database::connect(&store.url, 2).await.unwrap();
    let (integration, webhook) = gql.integration().await;
    let started = Instant::now();
    let run = gql.import_january(&integration).await;
    wait_for("500 imported sales", || async {
        sales_seen(&gql, &run).await >= 500
    })
    .await;
    let (bodies, unique) = burst(burst_size());
    let acked = Arc::new(AtomicUsize::new(0));
    let burst_started = Instant::now();
    let poster = post_until_acknowledged(webhook, bodies.clone(), 16, acked.clone());

    // SIGTERM mid-burst, mid-window.
    wait_for("a third of the burst, some of it processed", || async {
        acked.load(Ordering::SeqCst) >= bodies.len() / 3
            && store.deliveries(&db, "PROCESSED").await > 0
            && store.deliveries(&db, "PENDING").await > 0
    })
    .await;
    let (processed_before, seen_before) = (
        store.deliveries(&db, "PROCESSED").await as f64,
        sales_seen(&gql, &run).await as f64,
    );
    let (importing, bursting) = (started.elapsed(), burst_started.elapsed());
    server.signal("TERM");
    let stopping = Instant::now();
    let status = server.exited(Duration::from_secs(30)).await;
    let drained = stopping.elapsed();
    assert!(status.success(), "a clean exit on SIGTERM: {status}");
    assert_eq!(
        store.claims(&db).await,
        0,
        "nothing is left claimed by the stopped process"
    );
    assert_ne!(
        gql_status(&store, &db, &run).await,
        "SUCCEEDED",
        "stopped mid-import"
    );
    let pending = store.deliveries(&db, "PENDING").await;

    // The next process takes everything at once: processing time plus 5 s, where
    // processing time is what the remaining work took the first process.
    let restarted = Instant::now();
    let _server = crm(dir.path(), &store.url, &hotmart.base, &env, &serve);
    wait_healthy(&base).await;
    wait_all_done(&store, &db, &gql, Some(&run), Duration::from_secs(110)).await;
    let took = restarted.elapsed();
    poster.await.unwrap();
    let remaining_deliveries = unique.len() as f64 - processed_before;
    let remaining_sales = IMPORTED as f64 - seen_before;
    let processing = Duration::from_secs_f64(
        remaining_deliveries / (processed_before / bursting.as_secs_f64())
            + remaining_sales / (seen_before / importing.as_secs_f64()),
    );
    eprintln!(
        "SIGTERM ({backend:?}): exited in {drained:?}; {pending} deliveries pending and {} sales \
         to import at restart; all done {took:?} after the restart (processing time at the \
         first process's pace: {processing:?})",
        remaining_sales
    );
    assert!(
        took < processing + Duration::from_secs(5),
        "done {took:?} after the restart; processing takes {processing:?}"
    );
    // Claims left behind would wait for the 120 s lease.
    assert!(
        took < Duration::from_secs(60),
        "done {took:?} after the restart"
    );
    assert_burst_applied_once(&store, &db, burst_size(), &unique).await;
    assert_imported_once(&gql, &run).await;
    db.close().await;
}

/// The import run's status, from the database (no server may be up).
async fn gql_status(store: &Store, db: &Database, run: &str) -> String {
    let succeeded = store
        .count(
            db,
            &format!(
                "SELECT count(*) FROM import_runs WHERE id = '{run}' AND status = 'SUCCEEDED'"
            ),
        )
        .await;
    if succeeded == 1 {
        "SUCCEEDED"
    } else {
        "not finished"
    }
    .to_owned()
}

/// The process id in the name of the worker that holds the import window's job.
async fn window_holder(db: &Database) -> Option<u32> {
    let table = if db.is_sqlite() {
        "Jobs"
    } else {
        "apalis.jobs"
    };
    let row = db
        .conn
        .query_one_raw(Statement::from_string(
            db.conn.get_database_backend(),
            format!(
                "SELECT lock_by FROM {table} WHERE job_type = 'checkout-crm.hotmart' \
                 AND status IN ('Running', 'Queued') AND lock_by IS NOT NULL"
            ),
        ))
        .await
        .ok()??;
    let name: String = row.try_get_by_index(0).ok()?;
    name.split('-').nth(1)?.parse().ok()
}

async fn a_killed_worker_s_work_is_taken_over_within_30_s(backend: Backend) {
    let hotmart = slow_hotmart().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(backend, dir.path()).await;
    // Production intervals (heartbeat 5 s, lease 15 s).
    let (base, _server, workers) = cluster(dir.path(), &store.url, &hotmart.base, &[]).await;
    let gql = Gql::new(&base, dir.path());
    let db = database::connect(&store.url, 2).await.unwrap();
    let (integration, webhook) = gql.integration().await;
    let run = gql.import_january(&integration).await;
    wait_for("500 imported sales", || async {
        sales_seen(&gql, &run).await >= 500
    })
    .await;
    let (bodies, unique) = burst(burst_size());
    let acked = Arc::new(AtomicUsize::new(0));
    let poster = post_until_acknowledged(webhook, bodies.clone(), 16, acked.clone());

    // Kill the worker paging the import, mid-burst.
    wait_for("a third of the burst", || async {
        acked.load(Ordering::SeqCst) >= bodies.len() / 3
    })
    .await;
    wait_for("the window's worker", || async {
        window_holder(&db).await.is_some()
    })
    .await;
    let holder = window_holder(&db).await.expect("the window is claimed");
    let [first, second] = workers;
    let (mut victim, _survivor) = if first.pid() == holder {
        (first, second)
    } else {
        (second, first)
    };
    assert_eq!(
        victim.pid(),
        holder,
        "the window is held by one of the workers"
    );
    victim.signal("KILL");
    let killed = Instant::now();
    victim.exited(Duration::from_secs(5)).await;
    let claimed = store.claims_of(&db, holder).await;
    assert!(claimed >= 1, "the killed worker held work");

    // Its claims are taken over when its lease expires, well within 30 s.
    wait_for("the killed worker's claims to be taken over", || async {
        store.claims_of(&db, holder).await == 0
    })
    .await;
    let taken_over = killed.elapsed();
    wait_for("the last acknowledgement", || async {
        acked.load(Ordering::SeqCst) == bodies.len()
    })
    .await;
    let last_ack = Instant::now();
    let rest = wait_all_done(&store, &db, &gql, Some(&run), Duration::from_secs(110)).await;
    poster.await.unwrap();
    eprintln!(
        "SIGKILL ({backend:?}): {claimed} claimed jobs taken over {taken_over:?} after the kill; \
         all done {rest:?} after the last acknowledgement ({:?} after the kill)",
        killed.elapsed()
    );
    assert!(
        taken_over < Duration::from_secs(30),
        "taken over after {taken_over:?}"
    );
    assert!(last_ack.elapsed() >= rest);
    assert_burst_applied_once(&store, &db, burst_size(), &unique).await;
    assert_imported_once(&gql, &run).await;
    db.close().await;
}

/// Freezes `workers` at a moment the first one holds claims and none holds SQLite's
/// write lock (a frozen writer would stop every process, which is not what this test is
/// about): the claims held then.
async fn freeze(store: &Store, db: &Database, workers: &[&Process]) -> i64 {
    for _ in 0..200 {
        for worker in workers {
            worker.signal("STOP");
        }
        let claims = store.claims(db).await;
        if store.claims_of(db, workers[0].pid()).await > 0 && !sqlite_write_locked(store, db).await
        {
            return claims;
        }
        for worker in workers {
            worker.signal("CONT");
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    panic!("could not freeze the workers while they held claims");
}

async fn sqlite_write_locked(store: &Store, db: &Database) -> bool {
    use sqlx::{Connection, sqlite::SqliteConnectOptions};
    if !db.is_sqlite() {
        return false;
    }
    let options = SqliteConnectOptions::from_str(&store.url)
        .unwrap()
        .busy_timeout(Duration::from_millis(200));
    let mut connection = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    let locked = sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut connection)
        .await
        .is_err();
    if !locked {
        sqlx::query("ROLLBACK")
            .execute(&mut connection)
            .await
            .unwrap();
    }
    let _ = connection.close().await;
    locked
}

/// A gauge's value in `/metrics`.
async fn gauge(base: &str, name: &str) -> i64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{text}"))
        .parse()
        .unwrap()
}

async fn workers_frozen_past_their_lease_cause_no_double_effect(backend: Backend) {
    let hotmart = FakeHotmart::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(backend, dir.path()).await;
    let env = [
        ("WORKER_HEARTBEAT_SECS", "1"),
        ("WORKER_LEASE_SECS", "3"),
        ("WORKER_BACKOFF_SECS", "1"),
    ];
    let (base, _server, [a, b]) = cluster(dir.path(), &store.url, &hotmart.base, &env).await;
    let gql = Gql::new(&base, dir.path());
    let db = database::connect(&store.url, 2).await.unwrap();
    let (_, webhook) = gql.integration().await;
    let (bodies, unique) = burst(burst_size());
    let acked = Arc::new(AtomicUsize::new(0));
    let poster = post_until_acknowledged(webhook, bodies.clone(), 16, acked.clone());
    wait_for("a quarter of the burst", || async {
        acked.load(Ordering::SeqCst) >= bodies.len() / 4
            && store.deliveries(&db, "PROCESSED").await > 0
    })
    .await;

    // Both workers frozen past their lease: /metrics shows the expired claims.
    let claims = freeze(&store, &db, &[&a, &b]).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        gauge(&base, "checkout_crm_queue_claims_expired").await,
        claims,
        "every frozen claim counts as expired"
    );
    assert!(gauge(&base, "checkout_crm_queue_oldest_claim_seconds").await >= 3);

    // B wakes up and takes A's claims; then A wakes up too, mid-work.
    b.signal("CONT");
    let woke = Instant::now();
    wait_for("A's claims to move", || async {
        store.claims_of(&db, a.pid()).await == 0
    })
    .await;
    let taken_over = woke.elapsed();
    a.signal("CONT");
    wait_all_done(&store, &db, &gql, None, Duration::from_secs(110)).await;
    poster.await.unwrap();
    eprintln!(
        "SIGSTOP ({backend:?}): {claims} frozen claims; taken over {taken_over:?} after B resumed"
    );
    assert!(taken_over < Duration::from_secs(10), "{taken_over:?}");
    assert_burst_applied_once(&store, &db, burst_size(), &unique).await;
    assert_eq!(gauge(&base, "checkout_crm_queue_claims_expired").await, 0);
    db.close().await;
}

async fn a_slow_live_worker_keeps_its_work(backend: Backend) {
    // Every Sales History page takes longer than the lease: the window's worker is slow
    // but alive, and its lease is renewed apart from the work.
    let hotmart = FakeHotmart::start().await;
    hotmart
        .state
        .sales
        .lock()
        .unwrap()
        .extend(january_sales(400));
    hotmart
        .state
        .faults
        .history_latency_ms
        .store(4_000, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(backend, dir.path()).await;
    let env = [("WORKER_HEARTBEAT_SECS", "1"), ("WORKER_LEASE_SECS", "3")];
    let (base, _server, _workers) = cluster(dir.path(), &store.url, &hotmart.base, &env).await;
    let gql = Gql::new(&base, dir.path());
    let db = database::connect(&store.url, 2).await.unwrap();
    let (integration, _) = gql.integration().await;
    let run = gql.import_january(&integration).await;
    wait_for("the window's worker", || async {
        window_holder(&db).await.is_some()
    })
    .await;
    let holder = window_holder(&db).await.unwrap();
    let mut checks = 0;
    loop {
        let state = gql.import_run(&run).await;
        if state["status"] == "SUCCEEDED" || state["status"] == "FAILED" {
            break;
        }
        if let Some(now) = window_holder(&db).await {
            assert_eq!(now, holder, "the window moved to another worker: {state}");
            checks += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        checks > 30,
        "watched the window for over 3 s ({checks} checks)"
    );
    let finished = gql.import_run(&run).await;
    assert_eq!(finished["status"], "SUCCEEDED", "{finished}");
    assert_eq!(finished["salesSeen"].as_u64(), Some(400), "{finished}");
    assert_eq!(finished["dealsCreated"].as_u64(), Some(400), "{finished}");
    db.close().await;
}

on_both_backends!(
    a_slow_live_worker_keeps_its_work,
    sigterm_mid_burst_hands_work_back_and_a_restart_resumes_at_once,
    a_killed_worker_s_work_is_taken_over_within_30_s,
    workers_frozen_past_their_lease_cause_no_double_effect,
);
