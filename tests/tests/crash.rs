//! Crash safety at process level: the real binary is killed with SIGKILL at arbitrary
//! moments while Hotmart keeps (re)posting deliveries; after restarts every event is
//! applied exactly once and no job is left running. `CRASH_DELIVERIES` sets the size
//! (default 300 in CI; try 5000 locally).

use std::{
    collections::BTreeSet,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use entity::database;
use serde_json::json;
use tests::{
    Backend, binary,
    hotmart::purchase,
    on_both_backends,
    process::{Store, wait_healthy},
};

fn start_server(dir: &std::path::Path, port: u16, database_url: &str) -> Child {
    let mut command = Command::new(binary());
    command.current_dir(dir).env("DATABASE_URL", database_url);
    for var in [
        "JWT_SECRET",
        "CRM_SECRET_KEY",
        "CHECKOUT_CRM_ENV",
        "CHECKOUT_CRM_DATA_DIR",
    ] {
        command.env_remove(var);
    }
    command
        .env("RUST_LOG", "error")
        .env("WORKER_HEARTBEAT_SECS", "1")
        .env("WORKER_LEASE_SECS", "3")
        .env("WORKER_SWEEP_SECS", "1")
        .env("WORKER_STALE_SECS", "3")
        .env("WORKER_POLL_MS", "20")
        .env("WORKER_BACKOFF_SECS", "1")
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start checkout-crm")
}

async fn sigkill_at_random_moments_loses_nothing_and_applies_each_event_once(backend: Backend) {
    let total: usize = std::env::var("CRASH_DELIVERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(backend, dir.path()).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start_server(dir.path(), port, &store.url);
    wait_healthy(&base).await;
    let token = std::fs::read_to_string(dir.path().join("data/admin.jwt")).unwrap();
    let http = reqwest::Client::new();
    let gql = |query: String| {
        let http = http.clone();
        let (url, token) = (format!("{base}/graphql"), token.clone());
        async move {
            let response = http
                .post(url)
                .bearer_auth(token.trim())
                .json(&json!({"query": query}))
                .send()
                .await
                .unwrap();
            response.json::<serde_json::Value>().await.unwrap()
        }
    };
    let created = gql("mutation { createHotmartIntegration(input: {name: \"Crash\", events: [PURCHASE_APPROVED, PURCHASE_OUT_OF_SHOPPING_CART]}) { id } }".into()).await;
    let id = created["data"]["createHotmartIntegration"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    gql(format!("mutation {{ addHotmartProduct(integrationId: \"{id}\", input: {{hotmartProductId: \"1234567\", hottok: \"hottok-secret-0001\"}}) {{ id }} }}")).await;
    let active = gql(format!(
        "mutation {{ activateIntegration(id: \"{id}\") {{ webhookUrl }} }}"
    ))
    .await;
    let webhook = active["data"]["activateIntegration"]["webhookUrl"]
        .as_str()
        .unwrap()
        .to_owned();

    // Each contact: a cart then an approval; about 10 % of deliveries are sent twice.
    let mut bodies = Vec::new();
    for n in 0..total {
        let email = format!("c{}@x.test", n / 2);
        let at = 1_745_952_631_331 + n as i64;
        bodies.push(if n % 2 == 0 {
            tests::hotmart::cart(&format!("e{n}"), at, &email, 1_234_567)
        } else {
            purchase(
                &format!("e{n}"),
                "PURCHASE_APPROVED",
                at,
                &email,
                &format!("HP{n}"),
            )
        });
        if n % 10 == 3 {
            bodies.push(bodies.last().unwrap().clone());
        }
    }
    let unique: BTreeSet<String> = bodies
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_owned())
        .collect();

    // Hotmart's side: retry every delivery until it gets a 2xx.
    let done = Arc::new(AtomicBool::new(false));
    let poster = {
        let (http, webhook, done) = (http.clone(), webhook.clone(), done.clone());
        tokio::spawn(async move {
            for body in bodies {
                loop {
                    let sent = http
                        .post(&webhook)
                        .header("X-HOTMART-HOTTOK", "hottok-secret-0001")
                        .header("content-type", "application/json")
                        .body(body.to_string())
                        .timeout(Duration::from_secs(10))
                        .send()
                        .await;
                    if sent.is_ok_and(|r| r.status().is_success()) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(30)).await;
                }
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    // Kill the whole server at pseudo-random moments, and start it again.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut kills = 0;
    while !done.load(Ordering::SeqCst) && kills < 4 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_millis(150 + seed % 600)).await;
        server.kill().unwrap();
        server.wait().unwrap();
        kills += 1;
        server = start_server(dir.path(), port, &store.url);
        wait_healthy(&base).await;
    }
    poster.await.unwrap();
    let posted = Instant::now();
    assert!(kills >= 1, "the server was killed at least once");

    // Recovery: everything processed, within a few heartbeat/sweep periods.
    let db = database::connect(&store.url, 2).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let pending = store
            .count(
                &db,
                "SELECT count(*) FROM webhook_deliveries WHERE status = 'PENDING'",
            )
            .await;
        let unfinished = store
            .count(
                &db,
                "SELECT count(*) FROM {jobs} WHERE status IN ('Running', 'Queued', 'Pending')",
            )
            .await;
        if pending == 0 && unfinished == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not recovered: {pending} pending deliveries, {unfinished} unfinished jobs"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Heartbeat 1 s, lease 3 s, sweeper 1 s, stale after 3 s: well within 30 s.
    assert!(
        posted.elapsed() < Duration::from_secs(30),
        "recovered in {:?}",
        posted.elapsed()
    );
    let processed = store
        .count(
            &db,
            "SELECT count(*) FROM webhook_deliveries WHERE status = 'PROCESSED'",
        )
        .await;
    let failed = store.count(&db, "SELECT count(*) FROM webhook_deliveries WHERE status IN ('FAILED', 'REJECTED', 'IGNORED')").await;
    let events = store
        .count(
            &db,
            "SELECT count(*) FROM deal_events WHERE source = 'WEBHOOK'",
        )
        .await;
    let distinct = store
        .count(
            &db,
            "SELECT count(DISTINCT dedup_id) FROM deal_events WHERE source = 'WEBHOOK'",
        )
        .await;
    let deals = store.count(&db, "SELECT count(*) FROM deals").await;
    let won = store
        .count(&db, "SELECT count(*) FROM deals WHERE status = 'WON'")
        .await;
    assert_eq!(
        processed as usize,
        unique.len(),
        "every event id processed once"
    );
    assert_eq!(failed, 0);
    assert_eq!(
        (events as usize, distinct as usize),
        (unique.len(), unique.len()),
        "each event applied exactly once"
    );
    let contacts = total.div_ceil(2);
    assert_eq!(deals as usize, contacts, "one deal per contact");
    assert_eq!(won as usize, total / 2, "every approved contact is won");
    db.close().await;
    server.kill().unwrap();
    let _ = server.wait();
}

async fn an_import_killed_mid_window_resumes_with_exact_counters(backend: Backend) {
    use tests::fake_hotmart::{CLIENT_ID, CLIENT_SECRET, FakeHotmart, sale};
    let total = 4000usize;
    let hotmart = FakeHotmart::start().await;
    let from = 1_735_689_600_000i64;
    {
        let mut sales = hotmart.state.sales.lock().unwrap();
        for n in 0..total {
            sales.push(sale(
                &format!("HPK{n}"),
                if n % 3 == 0 { "REFUNDED" } else { "APPROVED" },
                1_234_567,
                &format!("k{n}@x.test"),
                from + n as i64 * 600_000,
                10.0,
            ));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(backend, dir.path()).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let start = |dir: &std::path::Path| {
        let mut command = Command::new(binary());
        command
            .current_dir(dir)
            .env("DATABASE_URL", &store.url)
            .env("HOTMART_API_URL", &hotmart.base)
            .env("HOTMART_AUTH_URL", &hotmart.base)
            .env("RUST_LOG", "error")
            .env("WORKER_HEARTBEAT_SECS", "1")
            .env("WORKER_LEASE_SECS", "3")
            .env("WORKER_SWEEP_SECS", "1")
            // Longer than a page takes on a loaded machine, so a live window is not re-run.
            .env("WORKER_STALE_SECS", "10")
            .env("WORKER_POLL_MS", "20")
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command.spawn().unwrap()
    };
    let mut server = start(dir.path());
    wait_healthy(&base).await;
    let token = std::fs::read_to_string(dir.path().join("data/admin.jwt"))
        .unwrap()
        .trim()
        .to_owned();
    let http = reqwest::Client::new();
    let gql = |query: &str, vars: serde_json::Value| {
        let request = http
            .post(format!("{base}/graphql"))
            .bearer_auth(&token)
            .json(&json!({"query": query, "variables": vars}));
        async move {
            request
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let id = gql("mutation { createHotmartIntegration(input: {name: \"K\", events: [PURCHASE_APPROVED, PURCHASE_REFUNDED]}) { id } }", json!({})).await["data"]["createHotmartIntegration"]["id"].as_str().unwrap().to_owned();
    gql("mutation($id: ID!) { addHotmartProduct(integrationId: $id, input: {hotmartProductId: \"1234567\", hottok: \"hottok-secret-0001\"}) { id } }", json!({"id": id})).await;
    gql("mutation($id: ID!, $c: String!, $s: String!) { setHotmartCredentials(integrationId: $id, input: {clientId: $c, clientSecret: $s}) { id } }", json!({"id": id, "c": CLIENT_ID, "s": CLIENT_SECRET})).await;
    let run = gql("mutation($id: ID!) { startHotmartImport(integrationId: $id, input: {from: \"2025-01-01T00:00:00Z\", to: \"2025-02-01T00:00:00Z\", events: [PURCHASE_APPROVED, PURCHASE_REFUNDED]}) { id } }", json!({"id": id})).await;
    let run_id = run["data"]["startHotmartImport"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let progress = "query($id: ID!) { importRun(id: $id) { status salesSeen dealsCreated skipped windowsDone windowsTotal } }";
    // Kill the server mid-window.
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let run = gql(progress, json!({"id": run_id})).await;
        let seen = run["data"]["importRun"]["salesSeen"].as_i64().unwrap_or(0);
        if seen >= 500 {
            assert_ne!(
                run["data"]["importRun"]["status"], "SUCCEEDED",
                "killed before the end: {run}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no progress: {run}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill().unwrap();
    server.wait().unwrap();
    server = start(dir.path());
    wait_healthy(&base).await;
    let deadline = Instant::now() + Duration::from_secs(180);
    let finished = loop {
        let run = gql(progress, json!({"id": run_id})).await["data"]["importRun"].clone();
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
    let deals = gql("{ deals { totalCount } }", json!({})).await;
    assert_eq!(
        deals["data"]["deals"]["totalCount"].as_u64().unwrap() as usize,
        total
    );
    server.kill().unwrap();
    let _ = server.wait();
}

on_both_backends!(
    sigkill_at_random_moments_loses_nothing_and_applies_each_event_once,
    an_import_killed_mid_window_resumes_with_exact_counters,
);
