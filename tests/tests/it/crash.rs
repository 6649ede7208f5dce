//! Crash safety at process level: the real binary is killed with SIGKILL at arbitrary
//! moments while Hotmart keeps (re)posting deliveries; after restarts every event is
//! applied exactly once and no job is left running. `CRASH_DELIVERIES` sets the size
//! (default 300 in CI; try 5000 locally).

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use entity::database;
use serde_json::json;
use tests::{
    Backend, on_both_backends,
    process::{
        Gql, Process, Store, assert_burst_applied_once, burst, crm, january_sales,
        post_until_acknowledged, wait_all_done, wait_healthy,
    },
};

/// The whole server (HTTP and workers) with short intervals: heartbeat 1 s, lease 3 s,
/// sweeper 1 s, stale after 3 s.
fn start_server(dir: &std::path::Path, port: u16, database_url: &str) -> Process {
    let env = [
        ("WORKER_HEARTBEAT_SECS", "1"),
        ("WORKER_LEASE_SECS", "3"),
        ("WORKER_SWEEP_SECS", "1"),
        ("WORKER_STALE_SECS", "3"),
        ("WORKER_BACKOFF_SECS", "1"),
    ];
    let bind = format!("127.0.0.1:{port}");
    crm(
        dir,
        database_url,
        "http://127.0.0.1:9",
        &env,
        &["serve", "--bind", &bind],
    )
}

async fn sigkill_at_random_moments_loses_nothing_and_applies_each_event_once(backend: Backend) {
    let total: usize = std::env::var("CRASH_DELIVERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(backend, dir.path()).await;
    let port = tests::process::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start_server(dir.path(), port, &store.url);
    wait_healthy(&base).await;
    let gql = Gql::new(&base, dir.path());
    let (_, webhook) = gql.integration().await;
    // Each contact: a cart then an approval; about 10 % of deliveries are sent twice.
    // Hotmart's side retries every delivery until it gets a 2xx, one at a time.
    let (bodies, unique) = burst(total);
    let acked = Arc::new(AtomicUsize::new(0));
    let poster = post_until_acknowledged(webhook, bodies.clone(), 1, acked.clone());
    let done = || acked.load(Ordering::SeqCst) == bodies.len();
    // Kill the whole server at pseudo-random moments, and start it again.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut kills = 0;
    while !done() && kills < 4 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_millis(150 + seed % 600)).await;
        server.0.kill().unwrap();
        server.0.wait().unwrap();
        kills += 1;
        server = start_server(dir.path(), port, &store.url);
        wait_healthy(&base).await;
    }
    poster.await.unwrap();
    let posted = Instant::now();
    assert!(kills >= 1, "the server was killed at least once");

    // Recovery: everything processed, within a few heartbeat/sweep periods.
    let db = database::connect(&store.url, 2).await.unwrap();
    wait_all_done(&store, &db, &gql, None, Duration::from_secs(120)).await;
    // Heartbeat 1 s, lease 3 s, sweeper 1 s, stale after 3 s: well within 30 s.
    assert!(
        posted.elapsed() < Duration::from_secs(30),
        "recovered in {:?}",
        posted.elapsed()
    );
    assert_burst_applied_once(&store, &db, total, &unique).await;
    db.close().await;
    server.0.kill().unwrap();
    let _ = server.0.wait();
}

async fn an_import_killed_mid_window_resumes_with_exact_counters(backend: Backend) {
    let total = 4000usize;
    let hotmart = tests::fake_hotmart::FakeHotmart::start().await;
    hotmart
        .state
        .sales
        .lock()
        .unwrap()
        .extend(january_sales(total));
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(backend, dir.path()).await;
    let port = tests::process::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let bind = format!("127.0.0.1:{port}");
    let env = [
        ("WORKER_HEARTBEAT_SECS", "1"),
        ("WORKER_LEASE_SECS", "3"),
        ("WORKER_SWEEP_SECS", "1"),
        // Longer than a page takes on a loaded machine, so a live window is not re-run.
        ("WORKER_STALE_SECS", "10"),
    ];
    let start = |dir: &std::path::Path| {
        crm(
            dir,
            &store.url,
            &hotmart.base,
            &env,
            &["serve", "--bind", &bind],
        )
    };
    let mut server = start(dir.path());
    wait_healthy(&base).await;
    let gql = Gql::new(&base, dir.path());
    let (id, _) = gql.integration().await;
    let run_id = gql.import_january(&id).await;
    // Kill the server mid-window.
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let run = gql.import_run(&run_id).await;
        let seen = run["salesSeen"].as_i64().unwrap_or(0);
        if seen >= 500 {
            assert_ne!(run["status"], "SUCCEEDED", "killed before the end: {run}");
            break;
        }
        assert!(Instant::now() < deadline, "no progress: {run}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    server = start(dir.path());
    wait_healthy(&base).await;
    let deadline = Instant::now() + Duration::from_secs(180);
    let finished = loop {
        let run = gql.import_run(&run_id).await;
        if run["status"] == "SUCCEEDED" || run["status"] == "FAILED" {
            break run;
        }
        assert!(Instant::now() < deadline, "did not resume: {run}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(finished["status"], "SUCCEEDED", "{finished}");
    assert_eq!(
        finished["salesSeen"].as_u64().unwrap() as usize,
        total,
        "{finished}"
    );
    assert_eq!(
        finished["dealsCreated"].as_u64().unwrap() as usize,
        total,
        "{finished}"
    );
    assert_eq!(finished["skipped"], 0);
    let deals = gql.call("{ deals { totalCount } }", json!({})).await;
    assert_eq!(
        deals["data"]["deals"]["totalCount"].as_u64().unwrap() as usize,
        total
    );
    server.0.kill().unwrap();
    let _ = server.0.wait();
}

on_both_backends!(
    sigkill_at_random_moments_loses_nothing_and_applies_each_event_once,
    an_import_killed_mid_window_resumes_with_exact_counters,
);
