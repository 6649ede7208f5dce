//! The `exports` scenario: a CSV export of every deal of a large database, with webhooks
//! offered meanwhile, and the erasure of a buyer with many deliveries.
//!
//! Baselines in the same run: the webhooks' acknowledgement latency at the same offered
//! rate before the export starts, and the erasure of a buyer with a single delivery.

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use futures::StreamExt;
use serde_json::json;
use tests::hotmart::Purchase;

use crate::{
    Args,
    graphql::fill,
    load::{self, Delivery, PRODUCTS},
    report::{Report, Target},
    server::{FreshDatabase, Server},
};

/// The deliveries of [`load::workload`] under ids of their own (`tag`), so they are new
/// events for the server.
fn fresh_deliveries(total: usize, tag: &str, seed: u64) -> Vec<Delivery> {
    load::workload(total, 0.0, seed)
        .into_iter()
        .map(|mut d| {
            let text = std::str::from_utf8(&d.body)
                .unwrap()
                .replace("\"bench-", &format!("\"{tag}-"));
            d.body = text.into_bytes().into();
            d
        })
        .collect()
}

/// Waits until no delivery is pending.
async fn drained(server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while server
        .delivery_counts()
        .await
        .iter()
        .any(|(s, n)| s == "PENDING" && *n > 0)
    {
        assert!(Instant::now() < deadline, "deliveries not processed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts `exportDeals`, waits for it; returns the seconds it took and its download path.
async fn export_all(server: &Server) -> (f64, String, i64) {
    let started = Instant::now();
    let id = server
        .graphql("mutation { exportDeals { id } }", json!({}))
        .await["exportDeals"]["id"]
        .clone();
    loop {
        let found = server
            .graphql(
                "query($id: ID!) { export(id: $id) { status rows downloadPath error } }",
                json!({"id": id}),
            )
            .await["export"]
            .clone();
        match found["status"].as_str() {
            Some("SUCCEEDED") => {
                let path = found["downloadPath"].as_str().unwrap().to_owned();
                return (
                    started.elapsed().as_secs_f64(),
                    path,
                    found["rows"].as_i64().unwrap_or(0),
                );
            }
            Some("FAILED") => panic!("the export failed: {found}"),
            _ => {
                assert!(
                    started.elapsed() < Duration::from_secs(600),
                    "the export did not finish in 10 minutes: {found}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Downloads a file as a stream; returns its bytes and lines.
async fn download(server: &Server, path: &str) -> (u64, u64) {
    let response = reqwest::Client::new()
        .get(format!("{}{path}", server.base))
        .bearer_auth(&server.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let (mut bytes, mut lines) = (0u64, 0u64);
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        bytes += chunk.len() as u64;
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
    }
    (bytes, lines)
}

/// Posts `deliveries` approvals of one buyer, then erases them; the erasure's seconds.
async fn erase_buyer(server: &Server, url: &str, email: &str, deliveries: usize) -> f64 {
    let (product, hottok) = PRODUCTS[0];
    let product: u64 = product.parse().unwrap();
    let posted: Vec<Delivery> = (0..deliveries)
        .map(|n| {
            let id = format!("erase-{email}-{n}");
            let transaction = format!("HPE{n:09}");
            let mut body = Purchase {
                id: &id,
                event: "PURCHASE_APPROVED",
                at: 1_767_225_600_000 + n as i64 * 1_000,
                email,
                product,
                transaction: &transaction,
                price: 497.0,
                subscriber: None,
            }
            .body();
            body["data"]["buyer"]["name"] = json!("Titular Apagada");
            Delivery {
                body: serde_json::to_vec(&body).unwrap().into(),
                hottok,
                signature: None,
            }
        })
        .collect();
    let outcome = load::closed_loop(url, Arc::new(posted), 16).await;
    assert_eq!(
        outcome.errors, 0,
        "the erased buyer's deliveries were refused"
    );
    drained(server).await;
    let contact = server
        .graphql(
            "query($e: String) { contacts(filter: {email: $e}) { nodes { id } } }",
            json!({"e": email}),
        )
        .await["contacts"]["nodes"][0]["id"]
        .clone();
    let started = Instant::now();
    let receipt = server
        .graphql(
            "mutation($c: ID!) { eraseContact(contactId: $c, reason: \"bench\") { deliveriesRedacted } }",
            json!({"c": contact}),
        )
        .await;
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(
        receipt["eraseContact"]["deliveriesRedacted"],
        deliveries as i64
    );
    secs
}

pub async fn run(args: &Args, binary: &Path) -> Report {
    let mut report = Report::new(
        "exports",
        format!("{} deals, {}", args.deals, args.backend()),
    );
    let dir = args.run_dir();
    let database = FreshDatabase::create(args.database_url.as_deref(), dir.path()).await;
    let server = Server::start(binary, dir.path(), &database.url, &[]).await;
    let (_, _, url) = server.integration(&PRODUCTS).await;
    let seeded = load::closed_loop(
        &url,
        Arc::new(load::workload(args.deals.min(4_000), 0.0, 5)),
        16,
    )
    .await;
    assert_eq!(seeded.errors, 0, "seed deliveries failed");
    drained(&server).await;
    let first_base = server.base.clone();
    drop(server);
    let deals = fill(&database.url, args.deals).await;
    let server = Server::start(binary, dir.path(), &database.url, &[]).await;
    // The restarted server listens elsewhere; the integration's path stays.
    let url = url.replacen(&first_base, &server.base, 1);

    let rate = args.rate.min(200.0);
    let seconds = Duration::from_secs(args.seconds.min(15));
    let total = (rate * seconds.as_secs_f64()) as usize;
    let mut before = load::open_loop(
        &url,
        Arc::new(fresh_deliveries(total, "before", 7)),
        rate,
        seconds,
    )
    .await;
    drained(&server).await;
    let during = tokio::spawn({
        let url = url.clone();
        let deliveries = Arc::new(fresh_deliveries(total, "during", 9));
        async move { load::open_loop(&url, deliveries, rate, seconds).await }
    });
    let (export_secs, path, rows) = export_all(&server).await;
    let mut during = during.await.unwrap();
    let rss = server.peak_rss_mib().unwrap_or(0.0);
    let (bytes, lines) = download(&server, &path).await;
    drained(&server).await;
    let erase_one = erase_buyer(&server, &url, "uma.entrega@bench.test", 1).await;
    let erase_many = erase_buyer(
        &server,
        &url,
        "mil.entregas@bench.test",
        args.deals.min(1_000),
    )
    .await;
    drop(server);
    database.drop_database().await;

    report.figure(
        "export_secs",
        "exportDeals of every deal, until SUCCEEDED",
        export_secs,
        "s",
        Target::AtMost(30.0),
    );
    report.figure(
        "export_rows_per_sec",
        "rows written per second",
        rows as f64 / export_secs.max(1e-9),
        "rows/s",
        Target::None,
    );
    report.figure(
        "peak_rss_mib",
        "server peak RSS (whole run)",
        rss,
        "MiB",
        Target::AtMost(150.0),
    );
    report.latency(
        "ack_before",
        &format!("webhook ack at {rate}/s, no export (baseline)"),
        &mut before.latencies,
        Target::None,
    );
    report.latency(
        "ack_during",
        &format!("webhook ack at {rate}/s, during the export"),
        &mut during.latencies,
        Target::None,
    );
    report.figure(
        "erase_one_secs",
        "eraseContact, 1 delivery (baseline)",
        erase_one,
        "s",
        Target::None,
    );
    report.figure(
        "erase_many_secs",
        "eraseContact, 1,000 deliveries",
        erase_many,
        "s",
        Target::AtMost(2.0),
    );
    report.fact("deals", json!(deals));
    report.fact("rows", json!(rows));
    report.fact("file_bytes", json!(bytes));
    report.fact("file_lines", json!(lines));
    report.fact("ack_errors", json!(before.errors + during.errors));
    report.fact("backend", json!(args.backend()));
    report
}
