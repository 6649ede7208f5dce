//! The `webhooks` (throughput, with the baseline) and `latency` scenarios.

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::json;

use crate::{
    Args,
    baseline::Baseline,
    load::{self, Delivery, PRODUCTS},
    moves,
    report::{Report, Target},
    server::{FreshDatabase, Server},
};

/// Waits until no delivery is `PENDING` and `expected` are stored; returns the counts.
pub async fn drained(server: &Server, expected: u64, limit: Duration) -> Vec<(String, u64)> {
    let deadline = Instant::now() + limit;
    loop {
        let counts = server.delivery_counts().await;
        let total: u64 = counts.iter().map(|(_, n)| n).sum();
        let pending = counts
            .iter()
            .find(|(s, _)| s == "PENDING")
            .map(|(_, n)| *n)
            .unwrap_or(0);
        if total >= expected && pending == 0 {
            return counts;
        }
        if Instant::now() > deadline {
            eprintln!("gave up waiting: {pending} deliveries still pending");
            return counts;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn deal_count(server: &Server) -> u64 {
    server
        .graphql("{ deals(first: 0) { totalCount } }", json!({}))
        .await["deals"]["totalCount"]
        .as_u64()
        .unwrap_or(0)
}

fn count(counts: &[(String, u64)], status: &str) -> u64 {
    counts
        .iter()
        .find(|(s, _)| s == status)
        .map(|(_, n)| *n)
        .unwrap_or(0)
}

pub async fn throughput(args: &Args, binary: &Path) -> Report {
    let deliveries: Arc<Vec<Delivery>> =
        Arc::new(load::workload(args.deliveries, args.duplicates, 7));
    let total = deliveries.len();
    let mut report = Report::new(
        "webhooks",
        format!(
            "{total} deliveries ({} unique + {:.0} % re-sends), {} in flight, {}",
            args.deliveries,
            args.duplicates * 100.0,
            args.concurrency,
            args.backend()
        ),
    );
    let dir = args.run_dir();

    // The baseline first, on the same machine, with the same client and deliveries.
    let baseline = Baseline::start(dir.path(), 1).await;
    let mut base = load::closed_loop(&baseline.url, deliveries.clone(), args.concurrency).await;
    let stored = baseline.rows().await;
    baseline.stop().await;
    assert_eq!(stored as usize, base.ok, "the baseline lost rows");

    let database = FreshDatabase::create(args.database_url.as_deref(), dir.path()).await;
    let server = Server::start(binary, dir.path(), &database.url, &[]).await;
    let (_, _, url) = server.integration(&PRODUCTS).await;
    let started = Instant::now();
    let mut ours = load::closed_loop(&url, deliveries.clone(), args.concurrency).await;
    let counts = drained(&server, total as u64, Duration::from_secs(1800)).await;
    let end_to_end = started.elapsed();
    let deals = deal_count(&server).await;
    let rss = server.peak_rss_mib().unwrap_or(0.0);
    let stored: u64 = counts.iter().map(|(_, n)| n).sum();
    drop(server);
    database.drop_database().await;

    let ratio = ours.per_sec() / base.per_sec();
    let postgres = args.database_url.is_some();
    report.figure(
        "baseline_per_sec",
        "baseline: durable 1-row commit per request",
        base.per_sec(),
        "req/s",
        Target::None,
    );
    report.figure(
        "baseline_p99_ms",
        "baseline ack p99",
        base.percentile_ms(99.0),
        "ms",
        Target::None,
    );
    report.figure(
        "accepted_per_sec",
        "webhooks acknowledged per second",
        ours.per_sec(),
        "req/s",
        Target::AtLeast(if postgres { 0.0 } else { 8_000.0 }),
    );
    report.figure(
        "ratio_to_baseline",
        "ratio to the baseline",
        ratio,
        "x",
        Target::AtLeast(if postgres { 0.0 } else { 0.8 }),
    );
    report.figure(
        "ack_p50_ms",
        "ack latency p50",
        ours.percentile_ms(50.0),
        "ms",
        Target::None,
    );
    report.figure(
        "ack_p99_ms",
        "ack latency p99",
        ours.percentile_ms(99.0),
        "ms",
        Target::None,
    );
    report.figure(
        "ack_max_ms",
        "ack latency max",
        ours.percentile_ms(100.0),
        "ms",
        Target::None,
    );
    report.figure(
        "end_to_end_per_sec",
        "end to end (posted until all PROCESSED)",
        total as f64 / end_to_end.as_secs_f64(),
        "ev/s",
        Target::AtLeast(if postgres { 2_000.0 } else { 3_000.0 }),
    );
    report.figure(
        "end_to_end_secs",
        "time until every delivery was processed",
        end_to_end.as_secs_f64(),
        "s",
        Target::None,
    );
    report.figure("deals", "deals created", deals as f64, "", Target::None);
    report.figure(
        "peak_rss_mib",
        "server peak RSS",
        rss,
        "MiB",
        Target::AtMost(150.0),
    );
    report.fact("backend", json!(args.backend()));
    report.fact("deliveries", json!(total));
    report.fact("concurrency", json!(args.concurrency));
    report.fact("errors", json!(ours.errors));
    report.fact("stored", json!(stored));
    report.fact(
        "statuses",
        json!(
            counts
                .iter()
                .cloned()
                .collect::<std::collections::BTreeMap<_, _>>()
        ),
    );
    if ours.errors > 0 || stored != total as u64 {
        report.note(format!(
            "{} requests failed; {stored} of {total} deliveries stored",
            ours.errors
        ));
    }
    if count(&counts, "FAILED") > 0 {
        report.note(format!("{} deliveries FAILED", count(&counts, "FAILED")));
    }
    report
}

pub async fn latency(args: &Args, binary: &Path) -> Report {
    let requests = (args.rate * args.seconds as f64).ceil() as usize;
    let deliveries: Arc<Vec<Delivery>> = Arc::new(load::workload(requests, 0.0, 11));
    let mut report = Report::new(
        "latency",
        format!(
            "{:.0} req/s offered for {} s (open model), {}",
            args.rate,
            args.seconds,
            args.backend()
        ),
    );
    let dir = args.run_dir();
    let database = FreshDatabase::create(args.database_url.as_deref(), dir.path()).await;
    let server = Server::start(binary, dir.path(), &database.url, &[]).await;
    let (_, _, url) = server.integration(&PRODUCTS).await;
    let until = Instant::now() + Duration::from_secs(args.seconds);
    let (mut outcome, mut moves) = tokio::join!(
        load::open_loop(
            &url,
            deliveries,
            args.rate,
            Duration::from_secs(args.seconds),
        ),
        moves::during(&server, until),
    );
    report.latency(
        "move_deal",
        "moveDeal meanwhile (50 a second)",
        &mut moves.latencies,
        Target::AtMost(20.0),
    );
    report.fact("moves_refused", json!(moves.refused));
    if moves.latencies.is_empty() {
        report.note("no moveDeal was measured (no open deals in time)".into());
    }
    let handler = server
        .histogram("checkout_crm_webhook_handler_seconds")
        .await;
    let inbox = server.histogram("checkout_crm_webhook_inbox_seconds").await;
    let counts = drained(&server, outcome.ok as u64, Duration::from_secs(600)).await;
    drop(server);
    database.drop_database().await;
    // Inside the server (its own histograms): how much of the latency the client saw
    // was the handler's, and how much of that was the inbox (the write and its commit).
    report.figure(
        "server_handler_p99_bound_ms",
        "in the server: handler p99 at most (bucket bound)",
        handler.percentile_bound_ms(99.0),
        "ms",
        Target::None,
    );
    report.figure(
        "server_handler_within_10ms_pct",
        "in the server: handlers done within 10 ms",
        handler.share_within_pct(10.0),
        "%",
        Target::None,
    );
    report.figure(
        "server_inbox_p99_bound_ms",
        "in the server: inbox wait + commit p99 at most (bucket bound)",
        inbox.percentile_bound_ms(99.0),
        "ms",
        Target::None,
    );
    // The same offered load on a server that only acknowledges (no workers): how much of
    // the latency is the acknowledgement itself, and how much is sharing the machine
    // and the SQLite writer with processing.
    let quiet_dir = args.run_dir();
    let quiet_database =
        FreshDatabase::create(args.database_url.as_deref(), quiet_dir.path()).await;
    let quiet = Server::start_with_args(
        binary,
        quiet_dir.path(),
        &quiet_database.url,
        &[],
        &["serve", "--no-workers"],
    )
    .await;
    let (_, _, quiet_url) = quiet.integration(&PRODUCTS).await;
    let mut alone = load::open_loop(
        &quiet_url,
        Arc::new(load::workload(requests, 0.0, 11)),
        args.rate,
        Duration::from_secs(args.seconds),
    )
    .await;
    let quiet_handler = quiet
        .histogram("checkout_crm_webhook_handler_seconds")
        .await;
    report.figure(
        "server_handler_p99_bound_without_processing_ms",
        "in the server, no processing: handler p99 at most (bucket bound)",
        quiet_handler.percentile_bound_ms(99.0),
        "ms",
        Target::None,
    );
    drop(quiet);
    quiet_database.drop_database().await;
    report.figure(
        "ack_p99_without_processing_ms",
        "ack latency p99, same load, no processing (same run)",
        alone.percentile_ms(99.0),
        "ms",
        Target::None,
    );
    report.figure(
        "ack_p50_without_processing_ms",
        "ack latency p50, same load, no processing (same run)",
        alone.percentile_ms(50.0),
        "ms",
        Target::None,
    );
    report.figure(
        "answered_per_sec",
        "answered per second",
        outcome.per_sec(),
        "req/s",
        Target::None,
    );
    report.figure(
        "ack_p50_ms",
        "ack latency p50",
        outcome.percentile_ms(50.0),
        "ms",
        Target::None,
    );
    report.figure(
        "ack_p99_ms",
        "ack latency p99",
        outcome.percentile_ms(99.0),
        "ms",
        Target::AtMost(10.0),
    );
    report.figure(
        "ack_max_ms",
        "ack latency max",
        outcome.percentile_ms(100.0),
        "ms",
        Target::None,
    );
    report.fact("backend", json!(args.backend()));
    report.fact("requests", json!(requests));
    report.fact("errors", json!(outcome.errors));
    report.fact("failed_deliveries", json!(count(&counts, "FAILED")));
    if outcome.errors > 0 {
        report.note(format!("{} requests failed", outcome.errors));
    }
    report
}
