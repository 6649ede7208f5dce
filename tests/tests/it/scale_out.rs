//! Scale-out on PostgreSQL: two `serve --no-workers` and two `worker` processes share one
//! database; deliveries posted to both servers and an import run concurrently, with
//! exactly-once effects. `SCALE_DELIVERIES` sets the size (default 1500 in CI; 10000 locally).

use std::{
    process::{Child, Command, Stdio},
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use futures::StreamExt;
use serde_json::{Value, json};
use tests::{
    Backend, TestDatabase, binary,
    fake_hotmart::{CLIENT_ID, CLIENT_SECRET, FakeHotmart, sale},
    hotmart::purchase,
    postgres_url, skip_notice,
};

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn crm(dir: &std::path::Path, database_url: &str, hotmart: &str, args: &[&str]) -> Command {
    let mut command = Command::new(binary());
    command
        .current_dir(dir)
        .env("DATABASE_URL", database_url)
        .env("JWT_SECRET", "scale-out-jwt-secret-0123456789abcdef")
        .env("CRM_SECRET_KEY", "scale-out-crm-secret-0123456789abcdef")
        .env("HOTMART_API_URL", hotmart)
        .env("HOTMART_AUTH_URL", hotmart)
        .env("RUST_LOG", "error")
        .env("WORKER_POLL_MS", "20")
        .env("WORKER_CONCURRENCY", "8")
        .env_remove("CHECKOUT_CRM_DATA_DIR")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

async fn healthy(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while reqwest::get(format!("{base}/healthz"))
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "{base} did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_and_two_workers_process_deliveries_and_an_import_exactly_once() {
    if postgres_url().is_none() {
        skip_notice("two_servers_and_two_workers_process_deliveries_and_an_import_exactly_once");
        return;
    }
    let total: usize = std::env::var("SCALE_DELIVERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500);
    let imported = 1000;
    let database = TestDatabase::create(Backend::Postgres).await;
    let hotmart = FakeHotmart::start().await;
    let from = 1_735_689_600_000i64;
    {
        let mut sales = hotmart.state.sales.lock().unwrap();
        for n in 0..imported {
            sales.push(sale(
                &format!("HPI{n}"),
                "APPROVED",
                1_234_567,
                &format!("imp{n}@x.test"),
                from + n as i64 * 60_000,
                10.0,
            ));
        }
    }
    hotmart.state.faults.rate_limited.store(2, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let status = crm(dir.path(), &database.url, &hotmart.base, &["migrate"])
        .status()
        .unwrap();
    assert!(status.success());
    let ports: Vec<u16> = (0..2).map(|_| tests::process::free_port()).collect();
    let mut processes = Vec::new();
    for port in &ports {
        processes.push(Process(
            crm(
                dir.path(),
                &database.url,
                &hotmart.base,
                &[
                    "serve",
                    "--no-workers",
                    "--bind",
                    &format!("127.0.0.1:{port}"),
                ],
            )
            .spawn()
            .unwrap(),
        ));
        healthy(&format!("http://127.0.0.1:{port}")).await;
    }
    // Each worker process serves its own counters on METRICS_BIND.
    let metrics: Vec<String> = (0..2)
        .map(|_| {
            let port = tests::process::free_port();
            format!("127.0.0.1:{port}")
        })
        .collect();
    for bind in &metrics {
        processes.push(Process(
            crm(dir.path(), &database.url, &hotmart.base, &["worker"])
                .env("METRICS_BIND", bind)
                .spawn()
                .unwrap(),
        ));
    }
    let bases: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let token = std::fs::read_to_string(dir.path().join("data/admin.jwt"))
        .unwrap()
        .trim()
        .to_owned();
    let http = reqwest::Client::new();
    let gql = |base: &str, query: &str, vars: Value| {
        let request = http
            .post(format!("{base}/graphql"))
            .bearer_auth(&token)
            .json(&json!({"query": query, "variables": vars}));
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let created = gql(&bases[0], "mutation { createHotmartIntegration(input: {name: \"Scale\", events: [PURCHASE_APPROVED, PURCHASE_OUT_OF_SHOPPING_CART]}) { id } }", json!({})).await;
    let id = created["data"]["createHotmartIntegration"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    gql(&bases[0], "mutation($id: ID!) { addHotmartProduct(integrationId: $id, input: {hotmartProductId: \"1234567\", hottok: \"hottok-secret-0001\"}) { id } }", json!({"id": id})).await;
    gql(&bases[1], "mutation($id: ID!, $c: String!, $s: String!) { setHotmartCredentials(integrationId: $id, input: {clientId: $c, clientSecret: $s}) { id } }", json!({"id": id, "c": CLIENT_ID, "s": CLIENT_SECRET})).await;
    let active = gql(
        &bases[1],
        "mutation($id: ID!) { activateIntegration(id: $id) { webhookUrl } }",
        json!({"id": id}),
    )
    .await;
    let path = active["data"]["activateIntegration"]["webhookUrl"]
        .as_str()
        .unwrap()
        .split("/webhooks/")
        .nth(1)
        .unwrap()
        .to_owned();
    let run = gql(&bases[1], "mutation($id: ID!) { startHotmartImport(integrationId: $id, input: {from: \"2025-01-01T00:00:00Z\", to: \"2025-02-15T00:00:00Z\", events: [PURCHASE_APPROVED]}) { id } }", json!({"id": id})).await;
    let run_id = run["data"]["startHotmartImport"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Deliveries to both servers at once, 10 % of them twice.
    let mut bodies = Vec::new();
    for n in 0..total {
        let email = format!("w{}@x.test", n / 2);
        let body = if n % 2 == 0 {
            tests::hotmart::cart(
                &format!("s{n}"),
                1_745_952_631_331 + n as i64,
                &email,
                1_234_567,
            )
        } else {
            purchase(
                &format!("s{n}"),
                "PURCHASE_APPROVED",
                1_745_952_631_331 + n as i64,
                &email,
                &format!("HPS{n}"),
            )
        };
        bodies.push((n % 2, body.to_string()));
        if n % 10 == 5 {
            bodies.push(((n + 1) % 2, body.to_string()));
        }
    }
    let results: Vec<u16> = futures::stream::iter(bodies.into_iter().map(|(server, body)| {
        let url = format!("{}/webhooks/{path}", bases[server]);
        let http = http.clone();
        async move {
            let response = http
                .post(url)
                .header("X-HOTMART-HOTTOK", "hottok-secret-0001")
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            response.status().as_u16()
        }
    }))
    .buffer_unordered(16)
    .collect()
    .await;
    assert!(
        results.iter().all(|s| *s == 200),
        "every delivery acknowledged"
    );

    let db = entity::database::connect(&database.url, 2).await.unwrap();
    let entity::database::Pool::Postgres(pool) = &db.pool else {
        unreachable!()
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries WHERE status = 'PENDING'")
                .fetch_one(pool)
                .await
                .unwrap();
        let status: String = sqlx::query_scalar("SELECT status FROM import_runs WHERE id = $1")
            .bind(&run_id)
            .fetch_one(pool)
            .await
            .unwrap();
        if pending == 0 && status != "QUEUED" && status != "RUNNING" {
            assert_eq!(status, "SUCCEEDED");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} pending, import {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let count = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(pool)
            .await
            .unwrap()
    };
    assert_eq!(
        count("SELECT count(*) FROM webhook_deliveries WHERE status = 'PROCESSED'").await as usize,
        total
    );
    assert_eq!(
        count("SELECT count(*) FROM deal_events WHERE source = 'WEBHOOK'").await as usize,
        total,
        "each event once"
    );
    assert_eq!(
        count("SELECT count(*) FROM deal_events WHERE source = 'IMPORT'").await as usize,
        imported
    );
    assert_eq!(
        count("SELECT count(*) FROM deals").await as usize,
        total.div_ceil(2) + imported
    );
    assert_eq!(
        count("SELECT count(*) FROM deals WHERE status = 'WON'").await as usize,
        total / 2 + imported
    );
    let counters: (i64, i64) =
        sqlx::query_as("SELECT sales_seen, deals_created FROM import_runs WHERE id = $1")
            .bind(&run_id)
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(counters, (imported as i64, imported as i64));
    // The workers' own counters add up to the work done.
    let mut processed = 0;
    let mut sales = 0;
    for bind in &metrics {
        let text = reqwest::get(format!("http://{bind}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let value = |prefix: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix(prefix))
                .map_or(0, |v| v.trim().parse().unwrap())
        };
        processed += value("checkout_crm_delivery_attempts_total{outcome=\"processed\"} ");
        sales += value("checkout_crm_imported_sales_total ");
    }
    assert!(processed as usize >= total, "{processed} processed");
    assert!(sales as usize >= imported, "{sales} sales imported");
    db.close().await;
}
