//! The `graphql` scenario: deal lists and timelines on a database with many deals.
//!
//! A few thousand deals are made by the server itself from webhook deliveries; the
//! rest are copies of those (with their timelines) written straight into the database, so
//! a million-deal database takes seconds to build instead of minutes.

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use entity::page::Cursor;
use serde_json::{Value, json};
use sqlx::{Connection, Executor};

use crate::{
    Args,
    load::{self, PRODUCTS},
    report::{Report, Target},
    server::{FreshDatabase, Server},
};

/// Clones the server-made deals (and their events) until there are `total` deals.
pub async fn fill(database_url: &str, total: usize) -> usize {
    let postgres = database_url.starts_with("postgres");
    let statements: Vec<String> = if postgres {
        vec![
            "CREATE TEMP TABLE seed AS SELECT row_number() OVER (ORDER BY id) - 1 AS k, * FROM deals".into(),
            "CREATE INDEX ON seed (k)".into(),
            format!(
                "INSERT INTO deals (id, account_id, group_id, origin_id, stage_id, contact_id, product_id, deal_key, open_key, \
                 status, paid, owner_id, value_cents, currency, lost_reason, created_at, closed_at, last_event_at, updated_at) \
                 SELECT '00000000-0000-7000-8000-' || lpad(n::text, 12, '0'), s.account_id, s.group_id, s.origin_id, s.stage_id, \
                 s.contact_id, s.product_id, s.deal_key || ':copy' || n, NULL, s.status, s.paid, s.owner_id, s.value_cents, \
                 s.currency, s.lost_reason, s.created_at - (n * 31) * 1000, s.closed_at, s.last_event_at, s.updated_at \
                 FROM generate_series(0, {total} - 1 - (SELECT count(*) FROM seed)) AS n \
                 JOIN seed s ON s.k = n % (SELECT count(*) FROM seed)"
            ),
            "INSERT INTO deal_events (id, account_id, group_id, contact_id, deal_key, dedup_id, sale_key, event, source, \
             occurred_at, data, delivery_id, import_run_id, deal_id, effect, description, recorded_at) \
             SELECT gen_random_uuid()::text, e.account_id, e.group_id, e.contact_id, d.deal_key, e.dedup_id, e.sale_key, \
             e.event, e.source, e.occurred_at, e.data, e.delivery_id, e.import_run_id, d.id, e.effect, e.description, e.recorded_at \
             FROM deals d JOIN seed s ON s.k = (substr(d.id, 25)::bigint % (SELECT count(*) FROM seed)) \
             JOIN deal_events e ON e.deal_id = s.id WHERE d.id LIKE '00000000-0000-7000-8000-%'".into(),
            "ANALYZE".into(),
        ]
    } else {
        vec![
            "CREATE TEMP TABLE seed AS SELECT row_number() OVER (ORDER BY id) - 1 AS k, * FROM deals".into(),
            "CREATE INDEX temp.seed_k ON seed (k)".into(),
            format!(
                "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {total} - (SELECT count(*) FROM seed)) \
                 INSERT INTO deals (id, account_id, group_id, origin_id, stage_id, contact_id, product_id, deal_key, open_key, \
                 status, paid, owner_id, value_cents, currency, lost_reason, created_at, closed_at, last_event_at, updated_at) \
                 SELECT printf('00000000-0000-7000-8000-%012d', n.i), s.account_id, s.group_id, s.origin_id, s.stage_id, \
                 s.contact_id, s.product_id, s.deal_key || ':copy' || n.i, NULL, s.status, s.paid, s.owner_id, s.value_cents, \
                 s.currency, s.lost_reason, s.created_at - (n.i * 31) * 1000, s.closed_at, s.last_event_at, s.updated_at \
                 FROM n JOIN seed s ON s.k = n.i % (SELECT count(*) FROM seed)"
            ),
            "INSERT INTO deal_events (id, account_id, group_id, contact_id, deal_key, dedup_id, sale_key, event, source, \
             occurred_at, data, delivery_id, import_run_id, deal_id, effect, description, recorded_at) \
             SELECT lower(hex(randomblob(16))), e.account_id, e.group_id, e.contact_id, d.deal_key, e.dedup_id, e.sale_key, \
             e.event, e.source, e.occurred_at, e.data, e.delivery_id, e.import_run_id, d.id, e.effect, e.description, e.recorded_at \
             FROM deals d JOIN seed s ON s.k = (CAST(substr(d.id, 25) AS INTEGER) % (SELECT count(*) FROM seed)) \
             JOIN deal_events e ON e.deal_id = s.id WHERE d.id LIKE '00000000-0000-7000-8000-%'".into(),
            "ANALYZE".into(),
        ]
    };
    let count = "SELECT count(*) FROM deals";
    if postgres {
        let mut conn = sqlx::PgConnection::connect(database_url).await.unwrap();
        for statement in &statements {
            conn.execute(sqlx::AssertSqlSafe(statement.clone()))
                .await
                .expect(statement);
        }
        let n: i64 = sqlx::query_scalar(count)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        n as usize
    } else {
        let mut conn = sqlx::SqliteConnection::connect(database_url).await.unwrap();
        conn.execute("PRAGMA busy_timeout = 30000").await.unwrap();
        for statement in &statements {
            conn.execute(sqlx::AssertSqlSafe(statement.clone()))
                .await
                .expect(statement);
        }
        let n: i64 = sqlx::query_scalar(count)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        n as usize
    }
}

/// `(created_at, id)` of the deal at `offset` in the list order of a group and status.
async fn position(
    database_url: &str,
    group: &str,
    status: &str,
    offset: i64,
) -> Option<(i64, String)> {
    let (sql, postgres) = if database_url.starts_with("postgres") {
        (
            "SELECT created_at, id FROM deals WHERE group_id = $1 AND status = $2 \
             ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET $3",
            true,
        )
    } else {
        (
            "SELECT created_at, id FROM deals WHERE group_id = ?1 AND status = ?2 \
             ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET ?3",
            false,
        )
    };
    if postgres {
        let mut conn = sqlx::PgConnection::connect(database_url).await.ok()?;
        sqlx::query_as(sql)
            .bind(group)
            .bind(status)
            .bind(offset)
            .fetch_optional(&mut conn)
            .await
            .ok()?
    } else {
        let mut conn = sqlx::SqliteConnection::connect(database_url).await.ok()?;
        sqlx::query_as(sql)
            .bind(group)
            .bind(status)
            .bind(offset)
            .fetch_optional(&mut conn)
            .await
            .ok()?
    }
}

/// Latencies of `samples` sequential requests (after a short warm-up).
async fn sample(server: &Server, samples: usize, query: &str, variables: Value) -> Vec<Duration> {
    for _ in 0..samples.min(20) {
        server.graphql(query, variables.clone()).await;
    }
    let mut latencies = Vec::with_capacity(samples);
    for _ in 0..samples {
        let started = Instant::now();
        let data = server.graphql(query, variables.clone()).await;
        latencies.push(started.elapsed());
        assert!(!data.is_null());
    }
    latencies
}

const PAGE: &str = "query($f: DealFilter, $after: String) { deals(filter: $f, first: 50, after: $after) { \
    nodes { id status value currency createdAt owner { id } contact { email name } } \
    pageInfo { endCursor hasNextPage } } }";

pub async fn run(args: &Args, binary: &Path) -> Report {
    let mut report = Report::new(
        "graphql",
        format!("{} deals, {}", args.deals, args.backend()),
    );
    let dir = args.run_dir();
    let database = FreshDatabase::create(args.database_url.as_deref(), dir.path()).await;
    let server = Server::start(binary, dir.path(), &database.url, &[]).await;
    let (_, group, url) = server.integration(&PRODUCTS).await;
    // Deals made by the engine, from deliveries.
    let seed = load::workload(args.deals.min(4_000), 0.0, 5);
    let seeded = load::closed_loop(&url, Arc::new(seed), 16).await;
    assert_eq!(seeded.errors, 0, "seed deliveries failed");
    let deadline = Instant::now() + Duration::from_secs(300);
    while server
        .delivery_counts()
        .await
        .iter()
        .any(|(s, n)| s == "PENDING" && *n > 0)
    {
        assert!(Instant::now() < deadline, "seed deliveries not processed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The copies are written with the server stopped (one long bulk transaction would
    // only make its workers wait), and measured after a fresh start.
    drop(server);
    let filled_at = Instant::now();
    let deals = fill(&database.url, args.deals).await;
    let fill_secs = filled_at.elapsed().as_secs_f64();
    let server = Server::start(binary, dir.path(), &database.url, &[]).await;

    // The most common status in the group is the longest list.
    let mut best = ("OPEN", 0u64);
    for status in ["OPEN", "WON", "LOST"] {
        let n = server
            .graphql(
                "query($f: DealFilter) { deals(filter: $f, first: 0) { totalCount } }",
                json!({"f": {"groupId": group, "status": status}}),
            )
            .await["deals"]["totalCount"]
            .as_u64()
            .unwrap_or(0);
        if n > best.1 {
            best = (status, n);
        }
    }
    let (status, listed) = best;
    let filter = json!({"groupId": group, "status": status});
    let mut first = sample(&server, args.samples, PAGE, json!({"f": filter})).await;
    let deep_cursor = position(&database.url, &group, status, listed as i64 / 2)
        .await
        .map(|(at, id)| Cursor { at, id }.encode());
    let mut deep = sample(
        &server,
        args.samples,
        PAGE,
        json!({"f": filter, "after": deep_cursor}),
    )
    .await;
    let some_deal = server.graphql(PAGE, json!({"f": filter})).await["deals"]["nodes"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut timeline = sample(
        &server,
        args.samples,
        "query($id: ID!) { deal(id: $id) { id status timeline { at event source effect description } } }",
        json!({"id": some_deal}),
    )
    .await;
    let rss = server.peak_rss_mib().unwrap_or(0.0);
    drop(server);
    database.drop_database().await;

    report.latency(
        "first_page",
        "deals(groupId, status, first: 50)",
        &mut first,
        Target::AtMost(20.0),
    );
    report.latency(
        "deep_page",
        "same, page in the middle of the list",
        &mut deep,
        Target::AtMost(20.0),
    );
    report.latency(
        "timeline",
        "deal(id) { timeline }",
        &mut timeline,
        Target::None,
    );
    report.figure("peak_rss_mib", "server peak RSS", rss, "MiB", Target::None);
    report.fact("backend", json!(args.backend()));
    report.fact("deals", json!(deals));
    report.fact("listed", json!(listed));
    report.fact("status", json!(status));
    report.fact("fill_secs", json!(fill_secs));
    report
}
