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

on_both_backends!(the_queue_runs_jobs_written_in_our_transaction);
