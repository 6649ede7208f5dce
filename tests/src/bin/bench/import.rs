//! The `import` scenario: a retroactive import from the fake Hotmart API.

use std::{
    path::Path,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use serde_json::json;
use tests::fake_hotmart::{CLIENT_ID, CLIENT_SECRET, FakeHotmart, sale};

use crate::{
    Args,
    load::{PRODUCTS, Rng},
    report::{Report, Target},
    server::{FreshDatabase, Server},
};

const STATUSES: [(&str, u64); 5] = [
    ("APPROVED", 45),
    ("COMPLETE", 25),
    ("PRINTED_BILLET", 15),
    ("CANCELLED", 10),
    ("REFUNDED", 5),
];

const EVENTS: [&str; 5] = [
    "PURCHASE_APPROVED",
    "PURCHASE_COMPLETE",
    "PURCHASE_BILLET_PRINTED",
    "PURCHASE_CANCELED",
    "PURCHASE_REFUNDED",
];

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339()
}

pub async fn run(args: &Args, binary: &Path) -> Report {
    let mut report = Report::new(
        "import",
        format!(
            "{} sales from the fake Hotmart API, {}",
            args.sales,
            args.backend()
        ),
    );
    let hotmart = FakeHotmart::start().await;
    let from = 1_735_689_600_000i64; // 2025-01-01
    let span = 180 * 86_400_000i64;
    {
        let mut rng = Rng::new(3);
        let mut sales = hotmart.state.sales.lock().unwrap();
        for n in 0..args.sales {
            let mut pick = rng.below(100);
            let status = STATUSES
                .iter()
                .find(|(_, share)| {
                    let hit = pick < *share;
                    pick = pick.saturating_sub(*share);
                    hit
                })
                .map(|(s, _)| *s)
                .unwrap_or("APPROVED");
            let product: u64 = PRODUCTS[n.is_multiple_of(5) as usize].0.parse().unwrap();
            // Most buyers buy once; some twice.
            let buyer = n - (n % 7 == 6) as usize;
            sales.push(sale(
                &format!("HP{n:011}"),
                status,
                product,
                &format!("cliente{buyer}@exemplo.com.br"),
                from + (n as i64 * span) / args.sales as i64,
                if product == 4_100_001 { 497.0 } else { 1997.0 },
            ));
        }
    }
    let dir = args.run_dir();
    let database = FreshDatabase::create(args.database_url.as_deref(), dir.path()).await;
    let env = [
        ("HOTMART_API_URL", hotmart.base.clone()),
        ("HOTMART_AUTH_URL", hotmart.base.clone()),
        // The real API allows 480 requests a minute; the fake has no limit, so the server
        // is what is measured.
        ("HOTMART_REQUESTS_PER_MINUTE", "1000000".to_owned()),
    ];
    let server = Server::start(binary, dir.path(), &database.url, &env).await;
    let (integration, _, _) = server.integration(&PRODUCTS).await;
    server
        .graphql(
            "mutation($id: ID!, $i: CredentialsInput!) { setHotmartCredentials(integrationId: $id, input: $i) { hasCredentials } }",
            json!({"id": integration, "i": {"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET}}),
        )
        .await;
    let started = Instant::now();
    let run = server
        .graphql(
            "mutation($id: ID!, $i: StartImportInput!) { startHotmartImport(integrationId: $id, input: $i) { id } }",
            json!({"id": integration, "i": {"from": iso(from), "to": iso(from + span), "events": EVENTS}}),
        )
        .await["startHotmartImport"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let fields =
        "status salesSeen dealsCreated dealsUpdated skipped failedSales windowsTotal error";
    let deadline = Instant::now() + Duration::from_secs(1800);
    let last = loop {
        let state = server
            .graphql(
                &format!("query($id: ID!) {{ importRun(id: $id) {{ {fields} }} }}"),
                json!({"id": run}),
            )
            .await["importRun"]
            .clone();
        let status = state["status"].as_str().unwrap_or_default();
        if matches!(status, "SUCCEEDED" | "FAILED" | "CANCELED") || Instant::now() > deadline {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let elapsed = started.elapsed();
    let rss = server.peak_rss_mib().unwrap_or(0.0);
    drop(server);
    database.drop_database().await;
    let seen = last["salesSeen"].as_u64().unwrap_or(0);
    report.figure(
        "sales_per_sec",
        "sales imported per second",
        seen as f64 / elapsed.as_secs_f64(),
        "sales/s",
        Target::AtLeast(20_000.0),
    );
    report.figure(
        "elapsed_secs",
        "time from start to SUCCEEDED",
        elapsed.as_secs_f64(),
        "s",
        Target::None,
    );
    report.figure(
        "deals_created",
        "deals created",
        last["dealsCreated"].as_f64().unwrap_or(0.0),
        "",
        Target::None,
    );
    report.figure("peak_rss_mib", "server peak RSS", rss, "MiB", Target::None);
    report.fact("backend", json!(args.backend()));
    report.fact("run", last.clone());
    report.fact(
        "api_requests",
        json!(hotmart.state.sales_requests.load(Ordering::SeqCst)),
    );
    if last["status"] != "SUCCEEDED" || seen != args.sales as u64 {
        report.note(format!("the run ended {last}"));
    }
    report
}
