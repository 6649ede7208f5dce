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

/// The best of a build's rounds: deliveries per second, PROCESSED, errors.
#[derive(Default, Clone, Copy)]
struct Best(f64, u64, usize);

impl Best {
    fn keep(&mut self, (rate, processed, errors): (f64, u64, usize)) {
        if rate > self.0 {
            *self = Best(rate, processed, errors);
        }
    }
}

pub async fn run(args: &Args, binary: &Path) -> Report {
    let hotmart = Arc::new(load::workload(args.deliveries, 0.0, 23));
    let kiwify = Arc::new(load::kiwify_workload(args.deliveries, 0.0, 23));
    let mut report = Report::new(
        "checkouts",
        format!(
            "{} Hotmart and {} Kiwify deliveries of the same journeys, {} in flight, {}, best of {} round(s)",
            hotmart.len(),
            kiwify.len(),
            args.concurrency,
            args.backend(),
            args.rounds.max(1)
        ),
    );
    let mut compared = vec![Best::default(); args.compare.len()];
    let (mut now, mut kiwi) = (Best::default(), Best::default());
    // Builds take turns within each round, so a slower minute of the machine is shared.
    for _ in 0..args.rounds.max(1) {
        for ((_, other), best) in args.compare.iter().zip(&mut compared) {
            best.keep(end_to_end(args, other, hotmart.clone(), false).await);
        }
        now.keep(end_to_end(args, binary, hotmart.clone(), false).await);
        kiwi.keep(end_to_end(args, binary, kiwify.clone(), true).await);
    }
    let target = |at_least: f64| Target::AtLeast(if args.smoke { 0.0 } else { at_least });
    report.figure(
        "hotmart_end_to_end_per_sec",
        "Hotmart: end to end (posted until all PROCESSED)",
        now.0,
        "ev/s",
        Target::None,
    );
    report.figure(
        "kiwify_end_to_end_per_sec",
        "Kiwify: end to end (posted until all PROCESSED)",
        kiwi.0,
        "ev/s",
        Target::None,
    );
    report.figure(
        "kiwify_to_hotmart",
        "Kiwify's rate over Hotmart's",
        kiwi.0 / now.0,
        "x",
        target(0.9),
    );
    let mut errors = now.2 + kiwi.2;
    for ((label, _), best) in args.compare.iter().zip(&compared) {
        compared_figures(&mut report, label, best, now, target(0.9));
        errors += best.2;
    }
    report.fact("hotmart_deliveries", json!(hotmart.len()));
    report.fact("kiwify_deliveries", json!(kiwify.len()));
    report.fact("hotmart_processed", json!(now.1));
    report.fact("kiwify_processed", json!(kiwi.1));
    report.fact("errors", json!(errors));
    report
}

/// The figures of the Hotmart journeys on build `label`, and this build's rate over it.
fn compared_figures(report: &mut Report, label: &str, best: &Best, now: Best, target: Target) {
    report.figure(
        &format!("hotmart_{label}_end_to_end_per_sec"),
        &format!("Hotmart on build {label:?}: end to end"),
        best.0,
        "ev/s",
        Target::None,
    );
    report.figure(
        &format!("hotmart_to_{label}"),
        &format!("Hotmart: this build's rate over {label:?}'s"),
        now.0 / best.0,
        "x",
        target,
    );
    report.fact(&format!("hotmart_{label}_processed"), json!(best.1));
}
