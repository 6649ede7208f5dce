//! What `jobs::queue` relies on in apalis' tables, checked against the apalis version in
//! `Cargo.lock`: an upgrade that renames a column or a status, or stops running the rows
//! this project writes in the caller's transaction, fails here. (Claims, leases and their
//! release are exercised against real apalis workers by `drain.rs`.)

use std::time::{Duration, Instant};

use entity::database::Database;
use sea_orm::{ConnectionTrait, Statement};
use tests::{Backend, TestApp, on_both_backends};

async fn scalar(db: &Database, sql: &str) -> i64 {
    let row = db
        .conn
        .query_one_raw(Statement::from_string(db.conn.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

async fn the_queue_runs_jobs_written_in_our_transaction(backend: Backend) {
    let mut app = TestApp::spawn_without_workers(backend).await;
    let (jobs, workers) = if app.db.is_sqlite() {
        ("Jobs", "Workers")
    } else {
        ("apalis.jobs", "apalis.workers")
    };
    // The columns this project reads and writes.
    for sql in [
        format!(
            "SELECT count(*) FROM (SELECT id, job_type, job, status, attempts, max_attempts, \
             run_at, priority, lock_by, lock_at, done_at, last_result FROM {jobs}) AS j"
        ),
        format!("SELECT count(*) FROM (SELECT id, worker_type, last_seen FROM {workers}) AS w"),
    ] {
        scalar(&app.db, &sql).await;
    }

    // A job written the way intake writes it, in a transaction of ours.
    let ids = vec![
        "no-such-delivery-1".to_owned(),
        "no-such-delivery-2".to_owned(),
    ];
    let txn = app.db.begin_write().await.unwrap();
    jobs::queue::enqueue_deliveries_in(&*txn, &ids)
        .await
        .unwrap();
    txn.commit().await.unwrap();
    let waiting = jobs::queue::deliveries_in_unfinished_jobs(&app.db)
        .await
        .unwrap();
    assert!(ids.iter().all(|id| waiting.contains(id)), "{waiting:?}");
    assert_eq!(jobs::queue::stats(&app.db).await.unwrap().depth, 1);

    // apalis' workers run it to completion, with the status names this project reads.
    app.start_workers();
    let deadline = Instant::now() + Duration::from_secs(30);
    let done = format!(
        "SELECT count(*) FROM {jobs} WHERE job_type = '{}' AND status = 'Done'",
        jobs::queue::DELIVERY_QUEUE
    );
    while scalar(&app.db, &done).await != 1 {
        assert!(Instant::now() < deadline, "the job was not run");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        jobs::queue::deliveries_in_unfinished_jobs(&app.db)
            .await
            .unwrap()
            .is_empty()
    );
    let stats = jobs::queue::stats(&app.db).await.unwrap();
    assert_eq!((stats.depth, stats.oldest_due_age_secs), (0, 0));
    let claims = jobs::queue::claim_stats(&app.db, Duration::from_secs(15))
        .await
        .unwrap();
    assert_eq!((claims.expired, claims.oldest_age_secs), (0, 0));
    // The worker registered itself where leases are renewed.
    let live = format!("SELECT count(*) FROM {workers} WHERE id LIKE 'deliveries-%'");
    assert!(scalar(&app.db, &live).await >= 1);
}

async fn execute(db: &Database, sql: &str) {
    db.conn
        .execute_raw(Statement::from_string(db.conn.get_database_backend(), sql))
        .await
        .unwrap();
}

/// While `fault_injection` has a row, every claim of a job of `queue` fails in the
/// database, as a claim that meets a lost or locked database does.
async fn fail_claims_of(db: &Database, queue: &str) {
    execute(db, "CREATE TABLE fault_injection (active INTEGER)").await;
    if db.is_sqlite() {
        execute(
            db,
            &format!(
                "CREATE TRIGGER fail_claims BEFORE UPDATE OF status ON Jobs \
                 WHEN NEW.job_type = '{queue}' AND NEW.status IN ('Queued', 'Running') \
                 AND EXISTS (SELECT 1 FROM fault_injection) \
                 BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
            ),
        )
        .await;
    } else {
        execute(
            db,
            "CREATE FUNCTION fail_claims() RETURNS trigger AS $$ BEGIN \
             IF EXISTS (SELECT 1 FROM fault_injection) THEN RAISE EXCEPTION 'injected fault'; \
             END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
        )
        .await;
        execute(
            db,
            &format!(
                "CREATE TRIGGER fail_claims BEFORE UPDATE ON apalis.jobs FOR EACH ROW \
                 WHEN (NEW.job_type = '{queue}' AND NEW.status IN ('Queued', 'Running')) \
                 EXECUTE FUNCTION fail_claims()"
            ),
        )
        .await;
    }
    execute(db, "INSERT INTO fault_injection VALUES (1)").await;
}

/// apalis ends a worker whose claim failed and keeps running the process's other worker;
/// the process notices and starts its workers again, so the failed queue's jobs still run.
async fn a_worker_whose_claim_failed_is_started_again(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let jobs = if app.db.is_sqlite() {
        "Jobs"
    } else {
        "apalis.jobs"
    };
    fail_claims_of(&app.db, jobs::queue::IMPORT_QUEUE).await;
    let pending = format!(
        "SELECT count(*) FROM {jobs} WHERE job_type = '{}' AND status = 'Pending'",
        jobs::queue::IMPORT_QUEUE
    );
    // An export runs on the import queue: its claims fail while the fault lasts (several
    // polls meet it, they run every 25 ms), then the fault is lifted.
    let db = app.db.clone();
    let fault = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(scalar(&db, &pending).await, 1, "the fault held the claim");
        execute(&db, "DELETE FROM fault_injection").await;
    });
    let found = crate::exports::export(&app, &app.admin, "exportDeals").await;
    fault.await.unwrap();
    assert_eq!(
        found["status"], "SUCCEEDED",
        "the export ran after the fault: {found}"
    );
}

/// The watchdog's view of a queue: a job of the import queue (an export) that waits
/// unclaimed counts there once it has waited the given time, and nowhere else.
async fn the_watchdog_sees_waiting_jobs_of_each_queue(backend: Backend) {
    let app = TestApp::spawn_without_workers(backend).await;
    app.ok(
        &app.admin,
        "mutation { exportDeals { id } }",
        serde_json::json!({}),
    )
    .await;
    let waiting = |queue: &'static str, age: u64| {
        let db = app.db.clone();
        async move {
            jobs::queue::runnable_jobs_older_than(&db, queue, Duration::from_secs(age))
                .await
                .unwrap()
        }
    };
    // Due since it was written (run_at is to the second): older than 0 s once a second ends.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(waiting(jobs::queue::IMPORT_QUEUE, 0).await, 1);
    assert_eq!(
        waiting(jobs::queue::IMPORT_QUEUE, 3600).await,
        0,
        "not an hour old"
    );
    assert_eq!(
        waiting(jobs::queue::DELIVERY_QUEUE, 0).await,
        0,
        "another queue"
    );
}

on_both_backends!(
    the_watchdog_sees_waiting_jobs_of_each_queue,
    the_queue_runs_jobs_written_in_our_transaction,
    a_worker_whose_claim_failed_is_started_again,
);
