//! The `outbound` scenario: what outbound events cost and how fast they go, in one run.
//!
//! 1. End-to-end webhook processing of the same deliveries without an endpoint and with
//!    one subscribed to everything (a local receiver answering 200): the ratio (≥ 0.8).
//! 2. Dispatch: messages written straight into the outbox, due at one instant, until all
//!    are delivered to a local receiver answering 200 (≥ 1,000 messages/s).
//! 3. The same with a second endpoint whose receiver hangs on every request: the healthy
//!    endpoint's rate beside the hanging one, over its rate alone (≥ 0.8).

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use entity::{outbound::messages, tables::webhook_endpoint};
use sea_orm::EntityTrait;
use serde_json::json;
use tests::receiver::{Receiver, Reply};

use crate::{
    Args,
    load::{self, PRODUCTS},
    report::{Report, Target},
    server::{FreshDatabase, Server},
    webhooks::drained,
};

fn env() -> Vec<(&'static str, String)> {
    vec![
        ("OUTBOUND_ALLOW_HTTP", "true".into()),
        ("OUTBOUND_ALLOWED_CIDRS", "127.0.0.0/8".into()),
    ]
}

async fn endpoint(server: &Server, url: &str) -> String {
    server
        .graphql(
            "mutation($u: String!) { createWebhookEndpoint(input: {url: $u}) { endpoint { id } } }",
            json!({"u": url}),
        )
        .await["createWebhookEndpoint"]["endpoint"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Posts the deliveries and waits until all are processed: deliveries per second, how
/// many messages the receiver got once the outbox drained, and how long after the last
/// delivery was processed the last of them arrived (s).
async fn end_to_end(
    args: &Args,
    binary: &Path,
    deliveries: Arc<Vec<load::Delivery>>,
    subscribed: bool,
) -> (f64, usize, f64) {
    let dir = args.run_dir();
    let database = FreshDatabase::create(args.database_url.as_deref(), dir.path()).await;
    let server = Server::start(binary, dir.path(), &database.url, &env()).await;
    let receiver = Receiver::start().await;
    if subscribed {
        endpoint(&server, &receiver.url).await;
    }
    let url = server.integration(&PRODUCTS).await.2;
    let total = deliveries.len();
    let started = Instant::now();
    load::closed_loop(&url, deliveries, args.concurrency).await;
    drained(&server, total as u64, Duration::from_secs(1800)).await;
    let rate = total as f64 / started.elapsed().as_secs_f64();
    let processed = Instant::now();
    // The messages keep arriving after the last fold; wait until they stop.
    let mut seen = usize::MAX;
    while subscribed && receiver.count() != seen {
        seen = receiver.count();
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    let last = receiver.received().iter().map(|r| r.at).max();
    let lag = last.map_or(0.0, |at| {
        at.saturating_duration_since(processed).as_secs_f64()
    });
    drop(server);
    database.drop_database().await;
    (rate, receiver.count(), lag)
}

/// Writes `n` messages for each endpoint, all due at one instant a moment from now.
async fn fill_outbox(database_url: &str, endpoints: &[&str], n: usize) -> i64 {
    let db = entity::database::connect(database_url, 2).await.unwrap();
    let due = entity::now_ms() + 2_000;
    for id in endpoints {
        let endpoint = webhook_endpoint::Entity::find_by_id(id.to_string())
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        let rows: Vec<_> = (0..n)
            .map(|i| {
                let body = entity::outbound::body(
                    "deal.moved",
                    due,
                    json!({"deal": {"id": format!("bench-{i}")}}),
                );
                messages::new_row(&endpoint, "deal.moved", body, due)
            })
            .collect();
        messages::insert(&db.conn, rows).await.unwrap();
    }
    due
}

/// Seconds from `due` until `receiver` has `n` requests.
async fn until_received(receiver: &Receiver, n: usize, due: i64, limit: Duration) -> f64 {
    let deadline = Instant::now() + limit;
    while receiver.count() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (entity::now_ms() - due) as f64 / 1000.0
}

/// Dispatch rate to a healthy receiver, alone and beside one that hangs: messages/s.
async fn dispatch(args: &Args, binary: &Path, n: usize, hanging: bool) -> f64 {
    let dir = args.run_dir();
    let database = FreshDatabase::create(args.database_url.as_deref(), dir.path()).await;
    let server = Server::start(binary, dir.path(), &database.url, &env()).await;
    let healthy = Receiver::start().await;
    let stuck = Receiver::start().await;
    stuck.answer_always(Reply::Hang(Duration::from_secs(15)));
    let mut ids = vec![endpoint(&server, &healthy.url).await];
    if hanging {
        ids.push(endpoint(&server, &stuck.url).await);
    }
    let names: Vec<&str> = ids.iter().map(String::as_str).collect();
    let due = fill_outbox(&database.url, &names, n).await;
    let secs = until_received(&healthy, n, due, Duration::from_secs(600)).await;
    let rate = healthy.count() as f64 / secs.max(0.001);
    drop(server);
    database.drop_database().await;
    rate
}

pub async fn run(args: &Args, binary: &Path) -> Report {
    let deliveries = Arc::new(load::workload(args.deliveries, 0.0, 29));
    let n = if args.smoke { 200 } else { 20_000 };
    let mut report = Report::new(
        "outbound",
        format!(
            "{} deliveries, {} in flight; dispatch of {n} messages; {}",
            deliveries.len(),
            args.concurrency,
            args.backend()
        ),
    );
    let (without, _, _) = end_to_end(args, binary, deliveries.clone(), false).await;
    let (with, received, lag) = end_to_end(args, binary, deliveries.clone(), true).await;
    let alone = dispatch(args, binary, n, false).await;
    let beside = dispatch(args, binary, n, true).await;
    let target = |at_least: f64| Target::AtLeast(if args.smoke { 0.0 } else { at_least });
    report.figure(
        "end_to_end_without_per_sec",
        "End to end, no endpoint (baseline)",
        without,
        "ev/s",
        Target::None,
    );
    report.figure(
        "end_to_end_with_per_sec",
        "End to end, one endpoint subscribed to all",
        with,
        "ev/s",
        Target::None,
    );
    report.figure(
        "with_to_without",
        "With an endpoint over without",
        with / without,
        "x",
        target(0.8),
    );
    report.figure(
        "last_message_after_processed_secs",
        "Last message received, after the last delivery was processed",
        lag,
        "s",
        Target::None,
    );
    report.figure(
        "dispatch_per_sec",
        "Dispatch to a receiver answering 200",
        alone,
        "msg/s",
        target(1_000.0),
    );
    report.figure(
        "dispatch_beside_hanging_per_sec",
        "The same beside an endpoint that hangs 15 s",
        beside,
        "msg/s",
        Target::None,
    );
    report.figure(
        "beside_hanging_to_alone",
        "Beside the hanging endpoint over alone",
        beside / alone,
        "x",
        target(0.8),
    );
    report.fact("messages_received", json!(received));
    report.fact("deliveries", json!(deliveries.len()));
    report
}
