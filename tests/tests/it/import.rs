//! Retroactive import against a fake Hotmart API (`docs/import.md`).

use std::{
    collections::BTreeMap,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tests::{
    Backend, TestApp,
    fake_hotmart::{CLIENT_ID, CLIENT_SECRET, FakeHotmart, sale},
    hotmart::purchase,
    on_both_backends,
};

const DAY: i64 = 86_400_000;
/// 2025-01-01T00:00:00Z
const FROM: i64 = 1_735_689_600_000;
const EVENTS: [&str; 5] = [
    "PURCHASE_APPROVED",
    "PURCHASE_COMPLETE",
    "PURCHASE_CANCELED",
    "PURCHASE_REFUNDED",
    "PURCHASE_BILLET_PRINTED",
];
const STATUSES: [(&str, &str, &str); 5] = [
    ("APPROVED", "Compra aprovada", "WON"),
    ("COMPLETE", "Compra completa", "WON"),
    ("CANCELLED", "Cartão recusado", "OPEN"),
    ("REFUNDED", "Reembolsado", "LOST"),
    ("PRINTED_BILLET", "Boleto/Pix pendente", "OPEN"),
];

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339()
}

async fn setup(app: &TestApp, events: &[&str]) -> String {
    let (id, _) = app.active_integration(events, json!({})).await;
    app.ok(
        &app.admin,
        "mutation($id: ID!, $i: CredentialsInput!) { setHotmartCredentials(integrationId: $id, input: $i) { hasCredentials } }",
        json!({"id": id, "i": {"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET}}),
    )
    .await;
    id
}

const RUN_FIELDS: &str = "id status windowsTotal windowsDone salesSeen dealsCreated dealsUpdated skipped failedSales error finishedAt label";

async fn start(
    app: &TestApp,
    integration: &str,
    from: i64,
    to: i64,
    events: &[&str],
    label: Option<&str>,
) -> Value {
    app.ok(
        &app.admin,
        &format!("mutation($id: ID!, $i: StartImportInput!) {{ startHotmartImport(integrationId: $id, input: $i) {{ {RUN_FIELDS} }} }}"),
        json!({"id": integration, "i": {"from": iso(from), "to": iso(to), "events": events, "label": label}}),
    )
    .await["startHotmartImport"]
        .clone()
}

async fn run(app: &TestApp, id: &Value) -> Value {
    app.ok(
        &app.admin,
        &format!("query($id: ID!) {{ importRun(id: $id) {{ {RUN_FIELDS} }} }}"),
        json!({"id": id}),
    )
    .await["importRun"]
        .clone()
}

async fn wait_finished(app: &TestApp, id: &Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let current = run(app, id).await;
        if ["SUCCEEDED", "FAILED", "CANCELED"].contains(&current["status"].as_str().unwrap()) {
            return current;
        }
        assert!(
            Instant::now() < deadline,
            "import did not finish: {current}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn a_three_month_import_lands_the_right_deals_through_faults_and_a_restart(backend: Backend) {
    let hotmart = FakeHotmart::start().await;
    let total: usize = 10_000;
    let mut expected: BTreeMap<&str, usize> = BTreeMap::new();
    {
        let mut sales = hotmart.state.sales.lock().unwrap();
        for n in 0..total {
            let (status, _, _) = STATUSES[n % STATUSES.len()];
            let at = FROM + (n as i64 * 90 * DAY) / total as i64;
            sales.push(sale(
                &format!("HP{n:08}"),
                status,
                1_234_567,
                &format!("buyer{n}@x.test"),
                at,
                97.0,
            ));
            *expected.entry(status).or_default() += 1;
        }
        // Another product's sale, and an unrequested status: not imported.
        sales.push(sale(
            "HPOTHER",
            "APPROVED",
            999,
            "other@x.test",
            FROM + DAY,
            1.0,
        ));
        sales.push(sale(
            "HPCHARGE",
            "CHARGEBACK",
            1_234_567,
            "cb@x.test",
            FROM + DAY,
            1.0,
        ));
    }
    hotmart.state.faults.rate_limited.store(3, Ordering::SeqCst);
    hotmart
        .state
        .faults
        .server_errors
        .store(2, Ordering::SeqCst);
    hotmart
        .state
        .faults
        .slow_window_ms
        .store((20 * DAY) as u64, Ordering::SeqCst);
    hotmart.state.faults.too_slow.store(1, Ordering::SeqCst);
    hotmart.state.faults.token_uses.store(9, Ordering::SeqCst);

    let mut app = TestApp::spawn_with_hotmart(backend, &hotmart.base).await;
    let integration = setup(&app, &EVENTS).await;
    let started = start(
        &app,
        &integration,
        FROM,
        FROM + 90 * DAY,
        &EVENTS,
        Some("Importados"),
    )
    .await;
    assert_eq!(started["status"], "QUEUED");
    assert_eq!(started["windowsTotal"], 3, "30-day windows");

    // Restart in the middle: stop the workers once some sales have landed.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let current = run(&app, &started["id"]).await;
        if current["salesSeen"].as_i64().unwrap() >= 1000
            || current["status"] != "QUEUED" && current["status"] != "RUNNING"
        {
            break;
        }
        assert!(Instant::now() < deadline, "no progress: {current}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop_workers();
    let paused = run(&app, &started["id"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.start_workers();

    let finished = wait_finished(&app, &started["id"]).await;
    assert_eq!(finished["status"], "SUCCEEDED", "{finished}");
    assert_eq!(
        finished["windowsTotal"], 4,
        "one window split after a 502: {finished}"
    );
    assert_eq!(finished["windowsDone"], 4);
    // The product filter keeps the other product's sale out; the chargeback was not asked for.
    assert_eq!(finished["salesSeen"].as_i64().unwrap(), total as i64);
    assert_eq!(finished["dealsCreated"].as_i64().unwrap(), total as i64);
    assert_eq!(finished["skipped"], 0);
    assert_eq!(finished["failedSales"], 0);
    assert!(
        paused["status"] != "SUCCEEDED" || paused["salesSeen"] == finished["salesSeen"],
        "the restart happened mid-run"
    );
    assert!(
        hotmart.state.tokens_issued.load(Ordering::SeqCst) >= 2,
        "the token expired and was renewed"
    );
    assert_eq!(
        hotmart.state.faults.rate_limited.load(Ordering::SeqCst),
        0,
        "429s were served and waited out"
    );

    // Deals per origin and status.
    let origins = app
        .ok(&app.admin, "query($id: ID!) { integration(id: $id) { group { origins { name won: dealCount(status: WON) open: dealCount(status: OPEN) lost: dealCount(status: LOST) } } } }", json!({"id": integration}))
        .await;
    for (status, origin, deal_status) in STATUSES {
        let row = origins["integration"]["group"]["origins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == origin)
            .unwrap();
        let key = match deal_status {
            "WON" => "won",
            "OPEN" => "open",
            _ => "lost",
        };
        assert_eq!(
            row[key].as_u64().unwrap() as usize,
            expected[status],
            "{origin}: {row}"
        );
    }
    let labelled = app
        .ok(&app.admin, "{ labels { id name } }", json!({}))
        .await;
    let label = labelled["labels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "Importados")
        .unwrap()["id"]
        .clone();
    let tagged = app
        .ok(
            &app.admin,
            "query($l: ID!) { contacts(filter: {labelId: $l}) { totalCount } }",
            json!({"l": label}),
        )
        .await;
    assert_eq!(
        tagged["contacts"]["totalCount"].as_u64().unwrap() as usize,
        total
    );
    let runs = app
        .ok(
            &app.admin,
            "query($id: ID!) { importRuns(integrationId: $id) { id } }",
            json!({"id": integration}),
        )
        .await;
    assert_eq!(runs["importRuns"].as_array().unwrap().len(), 1);
}

async fn webhooks_and_imports_of_the_same_sale_converge(backend: Backend) {
    let hotmart = FakeHotmart::start().await;
    let at = FROM + 5 * DAY;
    {
        let mut sales = hotmart.state.sales.lock().unwrap();
        sales.push(sale(
            "HPW1",
            "APPROVED",
            1_234_567,
            "first@x.test",
            at,
            97.0,
        ));
        sales.push(sale(
            "HPW2",
            "APPROVED",
            1_234_567,
            "second@x.test",
            at,
            97.0,
        ));
    }
    let app = TestApp::spawn_with_hotmart(backend, &hotmart.base).await;
    let integration = setup(&app, &["PURCHASE_APPROVED"]).await;
    let url = app
        .ok(
            &app.admin,
            "query($id: ID!) { integration(id: $id) { webhookUrl } }",
            json!({"id": integration}),
        )
        .await["integration"]["webhookUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    // First sale: webhook, then import. Second sale: import, then webhook.
    let mut webhook = purchase(
        "wh-1",
        "PURCHASE_APPROVED",
        at + 60_000,
        "first@x.test",
        "HPW1",
    );
    app.post_webhook(&url, Some("hottok-secret-0001"), webhook.to_string())
        .await;
    app.wait_until_processed().await;
    let first = start(
        &app,
        &integration,
        FROM,
        FROM + 10 * DAY,
        &["PURCHASE_APPROVED"],
        None,
    )
    .await;
    let finished = wait_finished(&app, &first["id"]).await;
    assert_eq!(finished["status"], "SUCCEEDED");
    assert_eq!(
        (
            finished["dealsCreated"].as_i64(),
            finished["skipped"].as_i64()
        ),
        (Some(1), Some(1)),
        "{finished}"
    );
    webhook = purchase(
        "wh-2",
        "PURCHASE_APPROVED",
        at + 60_000,
        "second@x.test",
        "HPW2",
    );
    app.post_webhook(&url, Some("hottok-secret-0001"), webhook.to_string())
        .await;
    app.wait_until_processed().await;
    for email in ["first@x.test", "second@x.test"] {
        let deals = app.ok(&app.admin, "query($e: String) { deals(filter: {contactEmail: $e}) { totalCount nodes { status timeline { source } } } }", json!({"e": email})).await;
        assert_eq!(deals["deals"]["totalCount"], 1, "{email}: {deals}");
        assert_eq!(
            deals["deals"]["nodes"][0]["timeline"],
            json!([{"source": "WEBHOOK"}]),
            "{email}"
        );
        assert_eq!(deals["deals"]["nodes"][0]["status"], "WON");
    }
    // A second import of the same range changes nothing.
    let again = start(
        &app,
        &integration,
        FROM,
        FROM + 10 * DAY,
        &["PURCHASE_APPROVED"],
        None,
    )
    .await;
    let again = wait_finished(&app, &again["id"]).await;
    assert_eq!(
        (again["dealsCreated"].as_i64(), again["skipped"].as_i64()),
        (Some(0), Some(2)),
        "{again}"
    );
}

async fn bad_import_input_is_refused_and_wrong_credentials_fail_the_run(backend: Backend) {
    let hotmart = FakeHotmart::start().await;
    let app = TestApp::spawn_with_hotmart(backend, &hotmart.base).await;
    let (bare, _) = app
        .active_integration(&["PURCHASE_APPROVED"], json!({}))
        .await;
    let integration = setup(&app, &["PURCHASE_APPROVED"]).await;
    let mutation = "mutation($id: ID!, $i: StartImportInput!) { startHotmartImport(integrationId: $id, input: $i) { id } }";
    let cases = [
        (
            &integration,
            json!({"from": iso(FROM + DAY), "to": iso(FROM), "events": ["PURCHASE_APPROVED"]}),
            "from",
        ),
        (
            &integration,
            json!({"from": iso(FROM - 6 * 366 * DAY), "to": iso(FROM), "events": ["PURCHASE_APPROVED"]}),
            "to",
        ),
        (
            &bare,
            json!({"from": iso(FROM), "to": iso(FROM + DAY), "events": ["PURCHASE_APPROVED"]}),
            "integrationId",
        ),
        (
            &integration,
            json!({"from": iso(FROM), "to": iso(FROM + DAY), "events": ["PURCHASE_APPROVED"], "hotmartProductIds": ["555"]}),
            "hotmartProductIds",
        ),
        (
            &integration,
            json!({"from": iso(FROM), "to": iso(FROM + DAY), "events": ["PURCHASE_OUT_OF_SHOPPING_CART"]}),
            "events",
        ),
        (
            &integration,
            json!({"from": iso(FROM), "to": iso(FROM + DAY), "events": ["SWITCH_PLAN"]}),
            "events",
        ),
        (
            &integration,
            json!({"from": iso(FROM), "to": iso(FROM + DAY), "events": []}),
            "events",
        ),
    ];
    for (id, input, field) in cases {
        let (code, message) = app
            .err(&app.admin, mutation, json!({"id": id, "i": input}))
            .await;
        assert_eq!(code, "BAD_USER_INPUT", "{input}: {message}");
        assert!(
            message.starts_with(&format!("{field}:")),
            "{input}: {message}"
        );
    }
    // Credentials are write-only and never logged or returned.
    let (code, _) = app
        .err(&app.admin, "mutation($id: ID!) { setHotmartCredentials(integrationId: $id, input: {clientId: \"\", clientSecret: \"x\"}) { id } }", json!({"id": integration}))
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    app.ok(
        &app.admin,
        "mutation($id: ID!) { setHotmartCredentials(integrationId: $id, input: {clientId: \"wrong\", clientSecret: \"credentials\"}) { hasCredentials } }",
        json!({"id": integration}),
    )
    .await;
    use sea_orm::EntityTrait;
    let stored = entity::tables::integration::Entity::find_by_id(integration.clone())
        .one(&app.db.conn)
        .await
        .unwrap()
        .unwrap()
        .credentials;
    assert!(!stored.unwrap().contains("credentials"), "sealed at rest");
    let failed = start(
        &app,
        &integration,
        FROM,
        FROM + DAY,
        &["PURCHASE_APPROVED"],
        None,
    )
    .await;
    let failed = wait_finished(&app, &failed["id"]).await;
    assert_eq!(failed["status"], "FAILED");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("rejected the API credentials"),
        "{failed}"
    );
    // Members cannot import; another account cannot see the run.
    let (_, member) = app.user("member@acme.test", "MEMBER").await;
    let (code, _) = app.err(&member, mutation, json!({"id": integration, "i": {"from": iso(FROM), "to": iso(FROM + DAY), "events": ["PURCHASE_APPROVED"]}})).await;
    assert_eq!(code, "FORBIDDEN");
    let rival = app.other_account().await;
    let (code, _) = app
        .err(
            &rival,
            "query($id: ID!) { importRun(id: $id) { id } }",
            json!({"id": failed["id"]}),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
    let (code, _) = app
        .err(
            &rival,
            "mutation($id: ID!) { cancelImport(id: $id) { id } }",
            json!({"id": failed["id"]}),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
}

async fn a_canceled_import_stops(backend: Backend) {
    let hotmart = FakeHotmart::start().await;
    {
        let mut sales = hotmart.state.sales.lock().unwrap();
        for n in 0..3000 {
            sales.push(sale(
                &format!("HPC{n}"),
                "APPROVED",
                1_234_567,
                &format!("c{n}@x.test"),
                FROM + n as i64 * 60_000,
                10.0,
            ));
        }
    }
    // Slow every request down a little, through rate limiting, so cancel lands mid-run.
    hotmart.state.faults.rate_limited.store(2, Ordering::SeqCst);
    let app = TestApp::spawn_with_hotmart(backend, &hotmart.base).await;
    let integration = setup(&app, &["PURCHASE_APPROVED"]).await;
    let started = start(
        &app,
        &integration,
        FROM,
        FROM + 60 * DAY,
        &["PURCHASE_APPROVED"],
        None,
    )
    .await;
    let canceled = app
        .ok(
            &app.admin,
            "mutation($id: ID!) { cancelImport(id: $id) { status finishedAt } }",
            json!({"id": started["id"]}),
        )
        .await;
    assert_eq!(canceled["cancelImport"]["status"], "CANCELED");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = run(&app, &started["id"]).await;
    assert_eq!(after["status"], "CANCELED");
    assert!(
        after["salesSeen"].as_i64().unwrap() < 3000,
        "stopped early: {after}"
    );
    let (code, _) = app
        .err(
            &app.admin,
            "mutation($id: ID!) { cancelImport(id: $id) { id } }",
            json!({"id": started["id"]}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
}

async fn product_refresh_fills_variations_and_reports_failures(backend: Backend) {
    let hotmart = FakeHotmart::start().await;
    {
        let mut products = hotmart.state.products.lock().unwrap();
        products.push(json!({"id": 1234567, "ucode": "uc-1", "name": "Curso Completo", "status": "ACTIVE", "is_subscription": true}));
        products.push(json!({"id": 7654321, "ucode": "uc-2", "name": "Ebook", "status": "ACTIVE", "is_subscription": false}));
        let mut offers = hotmart.state.offers.lock().unwrap();
        offers.insert("uc-1".into(), vec![json!({"code": "off1", "name": "À vista", "price": {"value": 497.0, "currency_code": "BRL"}, "payment_mode": "PAY_IN_FULL"})]);
        // More offers than one page holds: refresh must page through them.
        let many: Vec<_> = (0..250)
            .map(|i| json!({"code": format!("off2-{i:03}"), "name": format!("Oferta {i}"), "price": {"value": 29.9, "currency_code": "BRL"}}))
            .collect();
        offers.insert("uc-2".into(), many);
        hotmart.state.plans.lock().unwrap().insert("uc-1".into(), vec![json!({"code": "plan1", "name": "Mensal", "price": {"value": 49.0, "currency_code": "BRL"}, "periodicity": "MONTHLY"})]);
    }
    let app = TestApp::spawn_with_hotmart(backend, &hotmart.base).await;
    let integration = setup(&app, &["PURCHASE_APPROVED"]).await;
    for id in ["7654321", "5555555"] {
        app.ok(&app.admin, "mutation($id: ID!, $p: String!) { addHotmartProduct(integrationId: $id, input: {hotmartProductId: $p, hottok: \"hottok-secret-0002\"}) { id } }", json!({"id": integration, "p": id})).await;
    }
    let (code, message) = app
        .err(&app.admin, "mutation($id: ID!) { refreshHotmartProducts(integrationId: $id, input: {hotmartProductId: \"999\"}) { id } }", json!({"id": integration}))
        .await;
    assert_eq!(code, "BAD_USER_INPUT", "{message}");
    app.ok(&app.admin, "mutation($id: ID!) { refreshHotmartProducts(integrationId: $id, input: {label: \"Catálogo\"}) { id } }", json!({"id": integration})).await;
    let q = "query($id: ID!) { integration(id: $id) { products { hotmartProductId name label refreshedAt refreshError variations { kind code name price currency } } } }";
    let deadline = Instant::now() + Duration::from_secs(30);
    let products = loop {
        let data = app.ok(&app.admin, q, json!({"id": integration})).await;
        let products = data["integration"]["products"].as_array().unwrap().clone();
        if products
            .iter()
            .all(|p| !p["refreshedAt"].is_null() || !p["refreshError"].is_null())
        {
            break products;
        }
        assert!(Instant::now() < deadline, "refresh did not finish: {data}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let by_id = |id: &str| {
        products
            .iter()
            .find(|p| p["hotmartProductId"] == id)
            .unwrap()
            .clone()
    };
    let full = by_id("1234567");
    assert_eq!(full["name"], "Curso Completo");
    assert_eq!(full["label"], "Catálogo");
    assert_eq!(
        full["variations"],
        json!([
            {"kind": "OFFER", "code": "off1", "name": "À vista", "price": 497.0, "currency": "BRL"},
            {"kind": "PLAN", "code": "plan1", "name": "Mensal", "price": 49.0, "currency": "BRL"}
        ])
    );
    let no_plans = by_id("7654321");
    assert!(
        no_plans["refreshError"].is_null(),
        "a product without plans is fine: {no_plans}"
    );
    let codes: std::collections::BTreeSet<&str> = no_plans["variations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes.len(), 250, "every page of offers: {no_plans}");
    assert!(codes.contains("off2-249"));
    assert!(hotmart.state.requests.lock().unwrap()["/offers"] >= 4);
    let missing = by_id("5555555");
    assert!(missing["refreshedAt"].is_null());
    assert!(
        missing["refreshError"]
            .as_str()
            .unwrap()
            .contains("not in this Hotmart account"),
        "{missing}"
    );
}

/// However many subscriptions follow an import run, one poll reads it; every one of them
/// sees the run to its end, and the poll stops there.
async fn one_poll_serves_every_subscriber_of_an_import_run(backend: Backend) {
    use tests::counted::CountedSchema;
    let hotmart = FakeHotmart::start().await;
    {
        let mut sales = hotmart.state.sales.lock().unwrap();
        for n in 0..1200 {
            sales.push(sale(
                &format!("HPS{n}"),
                "APPROVED",
                1_234_567,
                &format!("s{n}@x.test"),
                FROM + n as i64 * 60_000,
                10.0,
            ));
        }
    }
    hotmart
        .state
        .faults
        .history_latency_ms
        .store(1_000, Ordering::SeqCst);
    let app = TestApp::spawn_with_hotmart(backend, &hotmart.base).await;
    let integration = setup(&app, &["PURCHASE_APPROVED"]).await;
    let started = start(
        &app,
        &integration,
        FROM,
        FROM + 40 * DAY,
        &["PURCHASE_APPROVED"],
        None,
    )
    .await;
    let schema = CountedSchema::new(&app);
    let query = "subscription($id: ID!) { importRunUpdated(id: $id) { status salesSeen } }";
    let vars = json!({"id": started["id"]});
    let admin = app.admin_caller();
    let mut followers = vec![schema.subscribe(&admin, query, vars.clone())];
    tokio::time::sleep(Duration::from_millis(200)).await;
    let one = schema.statements_during(Duration::from_secs(1)).await;
    for _ in 0..20 {
        followers.push(schema.subscribe(&admin, query, vars.clone()));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let many = schema.statements_during(Duration::from_secs(1)).await;
    let status = run(&app, &started["id"]).await["status"].clone();
    assert!(
        status == "QUEUED" || status == "RUNNING",
        "the run outlasts the measure: {status}"
    );
    assert!(one >= 2, "the run is polled: {one} statements in 1 s");
    assert!(
        many <= one + 2,
        "21 subscriptions cost {many} statements in 1 s, one cost {one}"
    );
    assert_eq!(schema.state.app.live.runs_polled(), 1);
    for follower in &mut followers {
        let mut last = Value::Null;
        while let Ok(Some(update)) =
            tokio::time::timeout(Duration::from_secs(60), follower.answers.recv()).await
        {
            last = update["importRunUpdated"].clone();
        }
        assert_eq!(last["status"], "SUCCEEDED", "{last}");
        assert_eq!(last["salesSeen"], 1200);
    }
    assert_eq!(
        schema.state.app.live.runs_polled(),
        0,
        "the poll ends with the run"
    );
}

async fn import_progress_streams_over_a_websocket_subscription(backend: Backend) {
    use futures::{SinkExt, StreamExt};
    let hotmart = FakeHotmart::start().await;
    {
        let mut sales = hotmart.state.sales.lock().unwrap();
        for n in 0..1200 {
            sales.push(sale(
                &format!("HPS{n}"),
                "APPROVED",
                1_234_567,
                &format!("s{n}@x.test"),
                FROM + n as i64 * 60_000,
                10.0,
            ));
        }
    }
    let app = TestApp::spawn_with_hotmart(backend, &hotmart.base).await;
    let integration = setup(&app, &["PURCHASE_APPROVED"]).await;
    let started = start(
        &app,
        &integration,
        FROM,
        FROM + 40 * DAY,
        &["PURCHASE_APPROVED"],
        None,
    )
    .await;
    let ws_url = format!("{}/graphql/ws", app.base.replace("http://", "ws://"));
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(ws_url)
            .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    use tokio_tungstenite::tungstenite::Message;
    socket.send(Message::text(json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {}", app.admin)}}).to_string())).await.unwrap();
    socket
        .send(Message::text(json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription($id: ID!) { importRunUpdated(id: $id) { status salesSeen windowsDone } }", "variables": {"id": started["id"]}}}).to_string()))
        .await
        .unwrap();
    let mut updates = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Ok(Some(Ok(message))) = tokio::time::timeout(
        deadline.saturating_duration_since(Instant::now()),
        socket.next(),
    )
    .await
    {
        let Message::Text(text) = message else {
            continue;
        };
        let value: Value = serde_json::from_str(&text).unwrap();
        match value["type"].as_str() {
            Some("next") => updates.push(value["payload"]["data"]["importRunUpdated"].clone()),
            Some("complete") => break,
            Some("error") => panic!("subscription error: {value}"),
            _ => {}
        }
    }
    assert!(!updates.is_empty());
    assert_eq!(
        updates.last().unwrap()["status"],
        "SUCCEEDED",
        "{updates:?}"
    );
    assert_eq!(updates.last().unwrap()["salesSeen"], 1200);
    let seen: Vec<i64> = updates
        .iter()
        .map(|u| u["salesSeen"].as_i64().unwrap())
        .collect();
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "progress only grows: {seen:?}"
    );
    // Without a token the subscription is refused.
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "{}/graphql/ws",
            app.base.replace("http://", "ws://")
        ))
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut anonymous, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    anonymous
        .send(Message::text(
            json!({"type": "connection_init", "payload": {}}).to_string(),
        ))
        .await
        .unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(5), anonymous.next())
        .await
        .unwrap();
    assert!(
        !matches!(reply, Some(Ok(Message::Text(ref t))) if t.contains("connection_ack")),
        "{reply:?}"
    );
}

/// The deal of a buyer: (status, origin name).
async fn deal_of(app: &TestApp, email: &str) -> (String, String) {
    let found = app
        .ok(
            &app.admin,
            "query($e: String) { deals(filter: {contactEmail: $e}) { totalCount nodes { status origin { name } } } }",
            json!({"e": email}),
        )
        .await;
    assert_eq!(found["deals"]["totalCount"], 1, "{email}: {found}");
    let node = &found["deals"]["nodes"][0];
    (
        node["status"].as_str().unwrap().to_owned(),
        node["origin"]["name"].as_str().unwrap().to_owned(),
    )
}

/// Sales History gives a sale's current status with no date for the change: an imported
/// refund or chargeback comes after what webhooks told of the sale, whichever came first.
async fn imported_after_sale_statuses_come_after_known_events(backend: Backend) {
    let hotmart = FakeHotmart::start().await;
    let at = FROM + 5 * DAY;
    {
        let mut sales = hotmart.state.sales.lock().unwrap();
        for (tx, status, email) in [
            ("HPR1", "REFUNDED", "refunded@x.test"),
            ("HPC1", "CHARGEBACK", "chargeback@x.test"),
            ("HPL1", "REFUNDED", "late@x.test"),
        ] {
            sales.push(sale(tx, status, 1_234_567, email, at, 97.0));
        }
    }
    let app = TestApp::spawn_with_hotmart(backend, &hotmart.base).await;
    let events = [
        "PURCHASE_APPROVED",
        "PURCHASE_PROTEST",
        "PURCHASE_REFUNDED",
        "PURCHASE_CHARGEBACK",
    ];
    let integration = setup(&app, &events).await;
    let url = app
        .ok(
            &app.admin,
            "query($id: ID!) { integration(id: $id) { webhookUrl } }",
            json!({"id": integration}),
        )
        .await["integration"]["webhookUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    // Webhooks told the approval (and a protest), minutes after the sale's own dates.
    for (id, event, minutes, email, tx) in [
        ("wh-r", "PURCHASE_APPROVED", 2, "refunded@x.test", "HPR1"),
        ("wh-c", "PURCHASE_APPROVED", 2, "chargeback@x.test", "HPC1"),
        ("wh-p", "PURCHASE_PROTEST", 60, "chargeback@x.test", "HPC1"),
    ] {
        let body = purchase(id, event, at + minutes * 60_000, email, tx);
        app.post_webhook(&url, Some("hottok-secret-0001"), body.to_string())
            .await;
    }
    app.wait_until_processed().await;
    assert_eq!(
        deal_of(&app, "chargeback@x.test").await,
        ("OPEN".to_owned(), "Reembolso solicitado".to_owned())
    );
    let imported = ["PURCHASE_REFUNDED", "PURCHASE_CHARGEBACK"];
    let first = start(&app, &integration, FROM, FROM + 10 * DAY, &imported, None).await;
    let finished = wait_finished(&app, &first["id"]).await;
    assert_eq!(finished["status"], "SUCCEEDED", "{finished}");
    let lost = |origin: &str| ("LOST".to_owned(), origin.to_owned());
    assert_eq!(deal_of(&app, "refunded@x.test").await, lost("Reembolsado"));
    assert_eq!(deal_of(&app, "chargeback@x.test").await, lost("Chargeback"));
    assert_eq!(deal_of(&app, "late@x.test").await, lost("Reembolsado"));
    // The approval of the third sale arrives by webhook only now: it is older than the
    // refund the import saw, so the deal stays refunded.
    let late = purchase(
        "wh-l",
        "PURCHASE_APPROVED",
        at + 120_000,
        "late@x.test",
        "HPL1",
    );
    app.post_webhook(&url, Some("hottok-secret-0001"), late.to_string())
        .await;
    app.wait_until_processed().await;
    assert_eq!(deal_of(&app, "late@x.test").await, lost("Reembolsado"));
    // Running the same import again changes nothing.
    let again = start(&app, &integration, FROM, FROM + 10 * DAY, &imported, None).await;
    let again = wait_finished(&app, &again["id"]).await;
    assert_eq!(
        (
            again["dealsCreated"].as_i64(),
            again["dealsUpdated"].as_i64(),
            again["skipped"].as_i64()
        ),
        (Some(0), Some(0), Some(3)),
        "{again}"
    );
    assert_eq!(deal_of(&app, "refunded@x.test").await, lost("Reembolsado"));
    assert_eq!(deal_of(&app, "chargeback@x.test").await, lost("Chargeback"));
    assert_eq!(deal_of(&app, "late@x.test").await, lost("Reembolsado"));
}

/// Hotmart refuses one `transaction_status` (the protest status has two spellings): that
/// status is reported on the run, and every other status is still imported.
async fn a_refused_status_fails_alone(backend: Backend) {
    let hotmart = FakeHotmart::start().await;
    {
        let mut sales = hotmart.state.sales.lock().unwrap();
        for n in 0..30 {
            let status = if n % 3 == 0 { "PROTESTED" } else { "APPROVED" };
            let email = format!("buyer{n}@x.test");
            let at = FROM + n as i64 * 40 * DAY / 30;
            sales.push(sale(
                &format!("HPS{n}"),
                status,
                1_234_567,
                &email,
                at,
                97.0,
            ));
        }
    }
    hotmart
        .state
        .refused_statuses
        .lock()
        .unwrap()
        .push("PROTESTED".into());
    let app = TestApp::spawn_with_hotmart(backend, &hotmart.base).await;
    let events = ["PURCHASE_APPROVED", "PURCHASE_PROTEST"];
    let integration = setup(&app, &events).await;
    let started = start(&app, &integration, FROM, FROM + 60 * DAY, &events, None).await;
    let finished = wait_finished(&app, &started["id"]).await;
    assert_eq!(finished["status"], "FAILED", "{finished}");
    let error = finished["error"].as_str().unwrap();
    assert!(error.contains("PROTESTED"), "{error}");
    assert_eq!(
        finished["windowsDone"], finished["windowsTotal"],
        "{finished}"
    );
    assert_eq!(
        finished["dealsCreated"], 20,
        "every approved sale landed: {finished}"
    );
}

/// The contact of a buyer: (name, phone, document).
async fn contact_of(app: &TestApp, email: &str) -> (Value, Value, Value) {
    let found = app
        .ok(
            &app.admin,
            "query($e: String) { contacts(filter: {search: $e}) { nodes { email name phone document } } }",
            json!({"e": email}),
        )
        .await;
    let node = found["contacts"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["email"] == email)
        .unwrap_or_else(|| panic!("{email}: {found}"))
        .clone();
    (
        node["name"].clone(),
        node["phone"].clone(),
        node["document"].clone(),
    )
}

/// Sales History has no phone or document: the import reads them from `/sales/users`,
/// page by page with the history (not one call per sale), and never blanks or replaces
/// what a webhook told.
async fn imported_buyers_get_phone_and_document(backend: Backend) {
    let hotmart = FakeHotmart::start().await;
    const SALES: usize = 1_200;
    {
        let mut sales = hotmart.state.sales.lock().unwrap();
        let mut buyers = hotmart.state.buyers.lock().unwrap();
        for n in 0..SALES {
            let tx = format!("HPB{n:04}");
            let email = format!("b{n}@x.test");
            // Several sales share an order date, as in a launch.
            let at = FROM + (n as i64 / 3) * 600_000;
            sales.push(sale(&tx, "APPROVED", 1_234_567, &email, at, 97.0));
            let (cellphone, phone) = match n % 3 {
                0 => (format!("(11) 9{:04}-{:04}", n, n), String::new()),
                1 => (String::new(), format!("11 3{:03}-{:04}", n % 1000, n)),
                _ => (String::new(), String::new()),
            };
            buyers.insert(
                tx,
                json!({"ucode": "u", "name": "Comprador", "email": email,
                "cellphone": cellphone, "phone": phone,
                "documents": [{"value": format!("{n:011}"), "type": "CPF"}],
                "address": {"city": "São Paulo", "state": "SP", "country": "Brasil"}}),
            );
        }
        // A buyer a webhook told of first: REST data neither blanks nor replaces it.
        sales.push(sale(
            "HPW1",
            "APPROVED",
            1_234_567,
            "web@x.test",
            FROM + DAY,
            97.0,
        ));
        buyers.insert(
            "HPW1".into(),
            json!({"email": "web@x.test", "name": "Outro Nome",
            "cellphone": "+55 21 98888-7777", "documents": []}),
        );
    }
    let app = TestApp::spawn_with_hotmart(backend, &hotmart.base).await;
    let integration = setup(&app, &["PURCHASE_APPROVED"]).await;
    let url = app.webhook_url(&integration).await;
    let body = purchase(
        "wh-w",
        "PURCHASE_APPROVED",
        FROM + DAY + 60_000,
        "web@x.test",
        "HPW1",
    );
    app.post_webhook(&url, Some("hottok-secret-0001"), body.to_string())
        .await;
    app.wait_until_processed().await;
    let before = contact_of(&app, "web@x.test").await;
    let started = start(
        &app,
        &integration,
        FROM,
        FROM + 10 * DAY,
        &["PURCHASE_APPROVED"],
        None,
    )
    .await;
    let finished = wait_finished(&app, &started["id"]).await;
    assert_eq!(finished["status"], "SUCCEEDED", "{finished}");
    assert_eq!(finished["dealsCreated"], SALES as i64, "{finished}");

    let (_, phone, document) = contact_of(&app, "b300@x.test").await;
    assert_eq!(phone, "+5511903000300", "cellphone first");
    assert_eq!(document, "00000000300");
    let (_, phone, _) = contact_of(&app, "b301@x.test").await;
    assert_eq!(phone, "+551133010301", "else phone");
    let (_, phone, document) = contact_of(&app, "b302@x.test").await;
    assert_eq!(phone, Value::Null, "no phone at all");
    assert_eq!(document, "00000000302");
    assert_eq!(
        contact_of(&app, "web@x.test").await,
        before,
        "the webhook's name, phone and document stand"
    );
    assert_eq!(before.1, "+5511999990000");

    let requests = hotmart.state.requests.lock().unwrap().clone();
    let (history, users) = (requests["/sales/history"], requests["/sales/users"]);
    assert!(
        users <= 2 * history,
        "buyers are read page by page, not per sale: {history} history, {users} users calls"
    );
}

/// A subscription bought before the import and cancelled after it by webhook is one deal;
/// its renewals too. Cancelled and overdue subscriptions are importable events.
async fn imported_subscriptions_keep_one_deal(backend: Backend) {
    use tests::fake_hotmart::subscription;
    let hotmart = FakeHotmart::start().await;
    let at = FROM + 2 * DAY;
    let subscription_sale = |tx: &str, email: &str, at: i64, recurrence: i64| {
        let mut s = sale(tx, "APPROVED", 1_234_567, email, at, 49.0);
        s["purchase"]["is_subscription"] = json!(true);
        s["purchase"]["recurrency_number"] = json!(recurrence);
        s
    };
    {
        let mut sales = hotmart.state.sales.lock().unwrap();
        sales.push(subscription_sale("HPS1", "sub@x.test", at, 1));
        sales.push(subscription_sale("HPS1R", "sub@x.test", at + 30 * DAY, 2));
        sales.push(subscription_sale("HPS2", "gone@x.test", at, 1));
        sales.push(subscription_sale("HPS3", "late@x.test", at, 1));
        let mut subs = hotmart.state.subscriptions.lock().unwrap();
        subs.push(subscription(
            "S-1",
            "HPS1",
            1_234_567,
            "sub@x.test",
            at,
            "ACTIVE",
        ));
        let mut gone = subscription(
            "S-2",
            "HPS2",
            1_234_567,
            "gone@x.test",
            at,
            "CANCELLED_BY_CUSTOMER",
        );
        gone["cancelation_date"] = json!(at + 10 * DAY);
        subs.push(gone);
        subs.push(subscription(
            "S-3",
            "HPS3",
            1_234_567,
            "late@x.test",
            at,
            "OVERDUE",
        ));
    }
    let app = TestApp::spawn_with_hotmart(backend, &hotmart.base).await;
    let events = [
        "PURCHASE_APPROVED",
        "SUBSCRIPTION_CANCELLATION",
        "PURCHASE_DELAYED",
    ];
    let integration = setup(&app, &events).await;
    let started = start(&app, &integration, FROM, FROM + 60 * DAY, &events, None).await;
    let finished = wait_finished(&app, &started["id"]).await;
    assert_eq!(finished["status"], "SUCCEEDED", "{finished}");
    let deals = |email: &'static str| {
        let app = &app;
        async move {
            app.ok(
                &app.admin,
                "query($e: String) { deals(filter: {contactEmail: $e}) { totalCount nodes { status origin { name } subscription { subscriberCode planName recurrenceNumber } } } }",
                json!({"e": email}),
            )
            .await["deals"]
                .clone()
        }
    };
    assert_eq!(
        hotmart.state.tokens_issued.load(Ordering::SeqCst),
        1,
        "one token for the credential, shared by the run's windows"
    );
    let sub = deals("sub@x.test").await;
    assert_eq!(sub["totalCount"], 1, "a renewal is the same deal: {sub}");
    assert_eq!(
        sub["nodes"][0]["subscription"]["subscriberCode"], "S-1",
        "{sub}"
    );
    assert_eq!(sub["nodes"][0]["subscription"]["planName"], "Plano mensal");
    assert_eq!(sub["nodes"][0]["subscription"]["recurrenceNumber"], 2);
    let gone = deals("gone@x.test").await;
    assert_eq!(gone["totalCount"], 1, "{gone}");
    assert_eq!(
        gone["nodes"][0]["origin"]["name"], "Assinatura cancelada",
        "{gone}"
    );
    let late = deals("late@x.test").await;
    assert_eq!(late["totalCount"], 1, "{late}");
    assert_eq!(
        late["nodes"][0]["origin"]["name"], "Pagamento atrasado",
        "{late}"
    );

    // The cancellation of S-1 arrives by webhook, with the subscriber code only.
    let url = app.webhook_url(&integration).await;
    let cancellation = json!({"id": "wh-cancel", "creation_date": at + 40 * DAY,
        "event": "SUBSCRIPTION_CANCELLATION", "version": "2.0.0",
        "data": {"product": {"id": 1_234_567, "name": "Curso"},
                 "subscriber": {"code": "S-1", "name": "Assinante", "email": "sub@x.test"},
                 "cancellation_date": at + 40 * DAY}});
    app.post_webhook(&url, Some("hottok-secret-0001"), cancellation.to_string())
        .await;
    app.wait_until_processed().await;
    let sub = deals("sub@x.test").await;
    assert_eq!(
        sub["totalCount"], 1,
        "import and webhook make one deal: {sub}"
    );
    assert_eq!(
        sub["nodes"][0]["origin"]["name"], "Assinatura cancelada",
        "{sub}"
    );

    // Again: nothing new.
    let again = start(&app, &integration, FROM, FROM + 60 * DAY, &events, None).await;
    let again = wait_finished(&app, &again["id"]).await;
    assert_eq!(
        (
            again["dealsCreated"].as_i64(),
            again["dealsUpdated"].as_i64()
        ),
        (Some(0), Some(0)),
        "{again}"
    );
}

/// Two long imports of one account do not keep another account's import waiting: a
/// window gives its slot up after a page when another account's window waits.
async fn imports_of_two_accounts_take_turns(backend: Backend) {
    let hotmart = FakeHotmart::start().await;
    {
        let mut sales = hotmart.state.sales.lock().unwrap();
        for n in 0..5000 {
            let at = FROM + n as i64 * 60_000;
            sales.push(sale(
                &format!("HPA{n}"),
                "APPROVED",
                1_234_567,
                &format!("a{n}@x.test"),
                at,
                10.0,
            ));
        }
        for n in 0..5 {
            let at = FROM + n as i64 * 60_000;
            sales.push(sale(
                &format!("HPB{n}"),
                "APPROVED",
                7_777_777,
                &format!("b{n}@x.test"),
                at,
                10.0,
            ));
        }
    }
    hotmart
        .state
        .faults
        .history_latency_ms
        .store(300, Ordering::SeqCst);
    let app = TestApp::spawn_with_hotmart(backend, &hotmart.base).await;
    let integration = setup(&app, &["PURCHASE_APPROVED"]).await;
    let range = (FROM, FROM + 10 * DAY);
    let mut ours = Vec::new();
    for _ in 0..2 {
        ours.push(
            start(
                &app,
                &integration,
                range.0,
                range.1,
                &["PURCHASE_APPROVED"],
                None,
            )
            .await,
        );
    }
    // Another account, with its own integration and product.
    let rival = app.other_account().await;
    let created = app
        .ok(&rival, "mutation { createHotmartIntegration(input: {name: \"Rival\", events: [PURCHASE_APPROVED]}) { id } }", json!({}))
        .await;
    let theirs = created["createHotmartIntegration"]["id"].clone();
    for mutation in [
        "mutation($id: ID!) { addHotmartProduct(integrationId: $id, input: {hotmartProductId: \"7777777\", hottok: \"rival-hottok-0001\"}) { id } }",
        "mutation($id: ID!) { activateIntegration(id: $id) { id } }",
        "mutation($id: ID!) { setHotmartCredentials(integrationId: $id, input: {clientId: \"fake-client-id\", clientSecret: \"fake-client-secret\"}) { hasCredentials } }",
    ] {
        app.ok(&rival, mutation, json!({"id": theirs})).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start_theirs = "mutation($id: ID!, $i: StartImportInput!) { startHotmartImport(integrationId: $id, input: $i) { id } }";
    let input = json!({"from": iso(range.0), "to": iso(range.1), "events": ["PURCHASE_APPROVED"]});
    let their_run = app
        .ok(&rival, start_theirs, json!({"id": theirs, "i": input}))
        .await["startHotmartImport"]["id"]
        .clone();
    let theirs_done = app
        .finished_import(&rival, their_run.as_str().unwrap(), Duration::from_secs(60))
        .await;
    assert_eq!(theirs_done["status"], "SUCCEEDED", "{theirs_done}");
    assert_eq!(theirs_done["salesSeen"], 5, "{theirs_done}");
    for ours in &ours {
        let now = run(&app, &ours["id"]).await;
        assert_ne!(
            now["status"], "SUCCEEDED",
            "the other account did not wait for a whole run: {now}"
        );
    }
    for ours in &ours {
        let done = wait_finished(&app, &ours["id"]).await;
        assert_eq!(done["status"], "SUCCEEDED", "{done}");
        assert_eq!(done["salesSeen"], 5000, "{done}");
    }
}

on_both_backends!(
    imports_of_two_accounts_take_turns,
    one_poll_serves_every_subscriber_of_an_import_run,
    the_request_budget_is_shared_by_processes,
    imported_buyers_get_phone_and_document,
    imported_subscriptions_keep_one_deal,
    a_refused_status_fails_alone,
    imported_after_sale_statuses_come_after_known_events,
    a_three_month_import_lands_the_right_deals_through_faults_and_a_restart,
    webhooks_and_imports_of_the_same_sale_converge,
    bad_import_input_is_refused_and_wrong_credentials_fail_the_run,
    a_canceled_import_stops,
    product_refresh_fills_variations_and_reports_failures,
    import_progress_streams_over_a_websocket_subscription,
);

/// The request budget of a credential holds across processes: two installations' worth of
/// connections (two pools on one database, as two worker processes have) asking at once
/// are scheduled at the credential's rate, with no more than a burst ahead of it.
async fn the_request_budget_is_shared_by_processes(backend: Backend) {
    let app = TestApp::spawn_without_workers(backend).await;
    let other = entity::database::connect(&app.config.database_url, 4)
        .await
        .unwrap();
    const PER_MINUTE: f64 = 600.0; // 10 a second, a burst of 20
    const REQUESTS: usize = 100;
    let started = Instant::now();
    let key = entity::api_limits::key_of("client-shared");
    let mut tasks = Vec::new();
    for n in 0..REQUESTS {
        let db = if n % 2 == 0 {
            app.db.conn.clone()
        } else {
            other.conn.clone()
        };
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let wait = entity::api_limits::take(&db, &key, PER_MINUTE)
                .await
                .unwrap();
            Instant::now() + wait
        }));
    }
    let mut sends: Vec<f64> = Vec::new();
    for task in tasks {
        sends.push(task.await.unwrap().duration_since(started).as_secs_f64());
    }
    sends.sort_by(f64::total_cmp);
    let burst = entity::api_limits::burst(PER_MINUTE);
    assert_eq!(burst, 20.0);
    // The last request goes out when the rate has paid for everything past the burst.
    let last = *sends.last().unwrap();
    let expected = (REQUESTS as f64 - burst) / (PER_MINUTE / 60.0);
    assert!(
        (expected - 0.5..expected + 2.0).contains(&last),
        "last request at {last:.2} s, expected about {expected} s"
    );
    // No second sees more than a burst plus a second's worth of requests.
    for (i, at) in sends.iter().enumerate() {
        let within = sends[i..].iter().take_while(|t| **t < at + 1.0).count();
        assert!(
            within <= 31,
            "{within} requests within a second from {at:.2} s"
        );
    }
}
