//! The `checkouts` scenario: the same buyer journeys posted as Hotmart deliveries and as
//! Kiwify's (signed, flat), each on a fresh database, in one run: end-to-end processing of
//! both, and their ratio (the neutral event costs no platform more than another).

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::json;

use crate::{
    Args,
    load::{self, Delivery, KIWIFY_PRODUCTS, KIWIFY_TOKEN, PRODUCTS},
    report::{Report, Target},
    server::{FreshDatabase, Server},
    webhooks::drained,
};

/// Posts `deliveries` to a fresh server and waits until every one is processed: the
/// deliveries per second end to end, and the PROCESSED count.
async fn end_to_end(
    args: &Args,
    binary: &Path,
    deliveries: Arc<Vec<Delivery>>,
    kiwify: bool,
) -> (f64, u64, usize) {
    let dir = args.run_dir();
    let database = FreshDatabase::create(args.database_url.as_deref(), dir.path()).await;
    let server = Server::start(binary, dir.path(), &database.url, &[]).await;
    let url = if kiwify {
        server
            .kiwify_integration(&KIWIFY_PRODUCTS, KIWIFY_TOKEN)
            .await
    } else {
        server.integration(&PRODUCTS).await.2
    };
    let total = deliveries.len();
    let started = Instant::now();
    let outcome = load::closed_loop(&url, deliveries, args.concurrency).await;
    let counts = drained(&server, total as u64, Duration::from_secs(1800)).await;
    let elapsed = started.elapsed();
    let processed = counts
        .iter()
        .find(|(s, _)| s == "PROCESSED")
        .map_or(0, |(_, n)| *n);
    drop(server);
    database.drop_database().await;
    (
        total as f64 / elapsed.as_secs_f64(),
        processed,
        outcome.errors,
    )
}

pub async fn run(args: &Args, binary: &Path) -> Report {
    let hotmart = Arc::new(load::workload(args.deliveries, 0.0, 23));
    let kiwify = Arc::new(load::kiwify_workload(args.deliveries, 0.0, 23));
    let mut report = Report::new(
        "checkouts",
        format!(
            "{} Hotmart and {} Kiwify deliveries of the same journeys, {} in flight, {}",
            hotmart.len(),
            kiwify.len(),
            args.concurrency,
            args.backend()
        ),
    );
    let (hotmart_rate, hotmart_processed, hotmart_errors) =
        end_to_end(args, binary, hotmart.clone(), false).await;
    let (kiwify_rate, kiwify_processed, kiwify_errors) =
        end_to_end(args, binary, kiwify.clone(), true).await;
    report.figure(
        "hotmart_end_to_end_per_sec",
        "Hotmart: end to end (posted until all PROCESSED)",
        hotmart_rate,
        "ev/s",
        Target::None,
    );
    report.figure(
        "kiwify_end_to_end_per_sec",
        "Kiwify: end to end (posted until all PROCESSED)",
        kiwify_rate,
        "ev/s",
        Target::None,
    );
    report.figure(
        "kiwify_to_hotmart",
        "Kiwify's rate over Hotmart's",
        kiwify_rate / hotmart_rate,
        "x",
        Target::AtLeast(if args.smoke { 0.0 } else { 0.9 }),
    );
    report.fact("hotmart_deliveries", json!(hotmart.len()));
    report.fact("kiwify_deliveries", json!(kiwify.len()));
    report.fact("hotmart_processed", json!(hotmart_processed));
    report.fact("kiwify_processed", json!(kiwify_processed));
    report.fact("errors", json!(hotmart_errors + kiwify_errors));
    report
}
