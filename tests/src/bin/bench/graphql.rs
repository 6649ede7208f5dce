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

/// Clones the server-made deals (and their events) until there are `total` deals, and
/// adds contacts with distinct names, e-mails and phones until there are `total` contacts
/// (each copied deal belongs to one of them, so searches find deals).
pub async fn fill(database_url: &str, total: usize) -> usize {
    let postgres = database_url.starts_with("postgres");
    let statements = if postgres {
        postgres_fill(total)
    } else {
        sqlite_fill(total)
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

/// The name, e-mail and phone of the contact copy `n` (SQL over a column `n`): searched
/// by the scenario as a seller would type them.
const CONTACT_COPY: &str =
    "'Cliente ' || n || ' Silva', 'n' || n || '.' || s.email, '+5511' || (900000000 + n)";

fn postgres_fill(total: usize) -> Vec<String> {
    vec![
        format!(
            "INSERT INTO contacts (id, account_id, name, email, phone, data_at, created_at, updated_at) \
             SELECT '00000000-0000-7000-9000-' || lpad(n::text, 12, '0'), s.account_id, {CONTACT_COPY}, \
             s.data_at, s.created_at - n * 31000, s.updated_at \
             FROM generate_series(0, {total} - 1 - (SELECT count(*) FROM contacts)) AS n \
             CROSS JOIN (SELECT * FROM contacts ORDER BY id LIMIT 1) s"
        ),
        "CREATE TEMP TABLE seed AS SELECT row_number() OVER (ORDER BY id) - 1 AS k, * FROM deals".into(),
        "CREATE INDEX ON seed (k)".into(),
        format!(
            "INSERT INTO deals (id, account_id, group_id, origin_id, stage_id, contact_id, product_id, deal_key, open_key, \
             status, paid, owner_id, value_cents, currency, lost_reason, created_at, closed_at, last_event_at, updated_at) \
             SELECT '00000000-0000-7000-8000-' || lpad(n::text, 12, '0'), s.account_id, s.group_id, s.origin_id, s.stage_id, \
             '00000000-0000-7000-9000-' || lpad((n % GREATEST(1, (SELECT count(*) FROM contacts \
             WHERE id LIKE '00000000-0000-7000-9000-%')))::text, 12, '0'), \
             s.product_id, s.deal_key || ':copy' || n, NULL, s.status, s.paid, s.owner_id, s.value_cents, \
             s.currency, s.lost_reason, s.created_at - (n * 31) * 1000, s.closed_at, s.last_event_at, s.updated_at \
             FROM generate_series(0, {total} - 1 - (SELECT count(*) FROM seed)) AS n \
             JOIN seed s ON s.k = n % (SELECT count(*) FROM seed)"
        ),
        "INSERT INTO deal_events (id, account_id, group_id, contact_id, deal_key, dedup_id, sale_key, event, source, \
         occurred_at, data, delivery_id, import_run_id, deal_id, effect, description, recorded_at) \
         SELECT gen_random_uuid()::text, e.account_id, e.group_id, d.contact_id, d.deal_key, e.dedup_id, e.sale_key, \
         e.event, e.source, e.occurred_at, e.data, e.delivery_id, e.import_run_id, d.id, e.effect, e.description, e.recorded_at \
         FROM deals d JOIN seed s ON s.k = (substr(d.id, 25)::bigint % (SELECT count(*) FROM seed)) \
         JOIN deal_events e ON e.deal_id = s.id WHERE d.id LIKE '00000000-0000-7000-8000-%'".into(),
        "ANALYZE".into(),
    ]
}

fn sqlite_fill(total: usize) -> Vec<String> {
    vec![
        format!(
            "WITH RECURSIVE m(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM m WHERE n + 1 < {total} - (SELECT count(*) FROM contacts)) \
             INSERT INTO contacts (id, account_id, name, email, phone, data_at, created_at, updated_at) \
             SELECT printf('00000000-0000-7000-9000-%012d', n), s.account_id, {CONTACT_COPY}, \
             s.data_at, s.created_at - n * 31000, s.updated_at \
             FROM m CROSS JOIN (SELECT * FROM contacts ORDER BY id LIMIT 1) s"
        ),
        "CREATE TEMP TABLE seed AS SELECT row_number() OVER (ORDER BY id) - 1 AS k, * FROM deals".into(),
        "CREATE INDEX temp.seed_k ON seed (k)".into(),
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {total} - (SELECT count(*) FROM seed)) \
             INSERT INTO deals (id, account_id, group_id, origin_id, stage_id, contact_id, product_id, deal_key, open_key, \
             status, paid, owner_id, value_cents, currency, lost_reason, created_at, closed_at, last_event_at, updated_at) \
             SELECT printf('00000000-0000-7000-8000-%012d', n.i), s.account_id, s.group_id, s.origin_id, s.stage_id, \
             printf('00000000-0000-7000-9000-%012d', n.i % max(1, (SELECT count(*) FROM contacts \
             WHERE id LIKE '00000000-0000-7000-9000-%'))), \
             s.product_id, s.deal_key || ':copy' || n.i, NULL, s.status, s.paid, s.owner_id, s.value_cents, \
             s.currency, s.lost_reason, s.created_at - (n.i * 31) * 1000, s.closed_at, s.last_event_at, s.updated_at \
             FROM n JOIN seed s ON s.k = n.i % (SELECT count(*) FROM seed)"
        ),
        "INSERT INTO deal_events (id, account_id, group_id, contact_id, deal_key, dedup_id, sale_key, event, source, \
         occurred_at, data, delivery_id, import_run_id, deal_id, effect, description, recorded_at) \
         SELECT lower(hex(randomblob(16))), e.account_id, e.group_id, d.contact_id, d.deal_key, e.dedup_id, e.sale_key, \
         e.event, e.source, e.occurred_at, e.data, e.delivery_id, e.import_run_id, d.id, e.effect, e.description, e.recorded_at \
         FROM deals d JOIN seed s ON s.k = (CAST(substr(d.id, 25) AS INTEGER) % (SELECT count(*) FROM seed)) \
         JOIN deal_events e ON e.deal_id = s.id WHERE d.id LIKE '00000000-0000-7000-8000-%'".into(),
        "ANALYZE".into(),
    ]
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

/// Latencies of `samples` sequential requests (after a short warm-up), the variables of
/// request `i` being `variables(i)`.
async fn sample(
    server: &Server,
    samples: usize,
    query: &str,
    variables: impl Fn(usize) -> Value,
) -> Vec<Duration> {
    for i in 0..samples.min(20) {
        server.graphql(query, variables(samples + i)).await;
    }
    let mut latencies = Vec::with_capacity(samples);
    for i in 0..samples {
        let vars = variables(i);
        let started = Instant::now();
        let data = server.graphql(query, vars).await;
        latencies.push(started.elapsed());
        assert!(!data.is_null());
    }
    latencies
}

/// The first row of `sql` (every column cast to text by the query).
async fn row(database_url: &str, sql: &str) -> Vec<String> {
    use sqlx::Row;
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    if database_url.starts_with("postgres") {
        let mut conn = sqlx::PgConnection::connect(database_url).await.unwrap();
        let row = sqlx::query(sql).fetch_one(&mut conn).await.unwrap();
        (0..row.len()).map(|i| row.get::<String, _>(i)).collect()
    } else {
        let mut conn = sqlx::SqliteConnection::connect(database_url).await.unwrap();
        let row = sqlx::query(sql).fetch_one(&mut conn).await.unwrap();
        (0..row.len()).map(|i| row.get::<String, _>(i)).collect()
    }
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
    let mut first = sample(&server, args.samples, PAGE, |_| json!({"f": filter})).await;
    let deep_cursor = position(&database.url, &group, status, listed as i64 / 2)
        .await
        .map(|(at, id)| Cursor { at, id }.encode());
    let mut deep = sample(
        &server,
        args.samples,
        PAGE,
        |_| json!({"f": filter, "after": deep_cursor}),
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
        |_| json!({"id": some_deal}),
    )
    .await;
    let mut pipeline = pipeline_figures(args, &server, &database.url, &group).await;
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
    pipeline.add_to(&mut report);
    report.figure("peak_rss_mib", "server peak RSS", rss, "MiB", Target::None);
    report.fact("backend", json!(args.backend()));
    report.fact("deals", json!(deals));
    report.fact("listed", json!(listed));
    report.fact("status", json!(status));
    report.fact("fill_secs", json!(fill_secs));
    report
}

/// The pipeline's reads at scale: a board column, searches and the report.
struct Pipeline {
    board: Vec<Duration>,
    by_name: Vec<Duration>,
    by_email: Vec<Duration>,
    by_phone: Vec<Duration>,
    common: Vec<Duration>,
    report: Vec<Duration>,
    board_deals: u64,
    contacts: u64,
}

const SEARCH: &str = "query($f: DealFilter) { deals(filter: $f, first: 50) { \
    nodes { id status value contact { name email phone } } pageInfo { hasNextPage } } }";

const REPORT: &str = "query($g: ID!, $from: DateTime!, $to: DateTime!) { \
    pipelineReport(groupId: $g, from: $from, to: $to) { currency recoveredDeals recoveredValue \
    recoveredByTeam origins { origin { id } entered open won lost wonValue } \
    sellers { user { id } won lost wonValue activitiesDone medianFirstActionMinutes } } }";

/// A contact copy's number for sample `i` (spread over all of them).
fn copy_number(i: usize, copies: u64) -> u64 {
    (i as u64 * 7_919 + 13) % copies.max(1)
}

async fn pipeline_figures(args: &Args, server: &Server, url: &str, group: &str) -> Pipeline {
    let column = row(
        url,
        "SELECT origin_id, stage_id, CAST(count(*) AS TEXT) FROM deals \
         GROUP BY origin_id, stage_id ORDER BY count(*) DESC LIMIT 1",
    )
    .await;
    let board_filter = json!({"originId": column[0], "stageId": column[1]});
    let board = sample(server, args.samples, PAGE, |_| json!({"f": board_filter})).await;
    let copies: u64 = row(
        url,
        "SELECT CAST(count(*) AS TEXT) FROM contacts WHERE id LIKE '00000000-0000-7000-9000-%'",
    )
    .await[0]
        .parse()
        .unwrap();
    let search = |term: String| json!({"f": {"groupId": group, "search": term}});
    let by_name = sample(server, args.samples, SEARCH, |i| {
        search(format!("cliente {}", copy_number(i, copies)))
    })
    .await;
    let by_email = sample(server, args.samples, SEARCH, |i| {
        search(format!("n{}.comprador", copy_number(i, copies)))
    })
    .await;
    let by_phone = sample(server, args.samples, SEARCH, |i| {
        let digits = format!("{:09}", 900_000_000 + copy_number(i, copies));
        search(format!("(11) {}-{}", &digits[..5], &digits[5..]))
    })
    .await;
    let common = sample(server, args.samples, SEARCH, |_| search("silva".into())).await;
    let window = row(
        url,
        "SELECT CAST(min(created_at) AS TEXT), CAST(max(created_at) + 1 AS TEXT) FROM deals",
    )
    .await;
    let iso = |ms: &str| {
        chrono::DateTime::from_timestamp_millis(ms.parse().unwrap())
            .unwrap()
            .to_rfc3339()
    };
    let vars = json!({"g": group, "from": iso(&window[0]), "to": iso(&window[1])});
    let report = sample(server, args.samples.min(20), REPORT, |_| vars.clone()).await;
    Pipeline {
        board,
        by_name,
        by_email,
        by_phone,
        common,
        report,
        board_deals: column[2].parse().unwrap_or(0),
        contacts: copies,
    }
}

impl Pipeline {
    fn add_to(&mut self, report: &mut Report) {
        let at_most = Target::AtMost;
        report.latency(
            "board_page",
            "deals(originId, stageId, first: 50): a board column",
            &mut self.board,
            at_most(20.0),
        );
        for (key, metric, samples) in [
            ("search_name", "search by part of a name", &mut self.by_name),
            (
                "search_email",
                "search by part of an e-mail",
                &mut self.by_email,
            ),
            (
                "search_phone",
                "search by a formatted phone",
                &mut self.by_phone,
            ),
            (
                "search_common",
                "search matching every contact",
                &mut self.common,
            ),
        ] {
            report.latency(key, metric, samples, at_most(50.0));
        }
        report.latency(
            "pipeline_report",
            "pipelineReport over the whole group",
            &mut self.report,
            at_most(500.0),
        );
        report.fact("board_column_deals", json!(self.board_deals));
        report.fact("contacts", json!(self.contacts));
    }
}
