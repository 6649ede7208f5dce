//! Never miss a sale: scheduled reconciliation heals sales no webhook delivered, health
//! tells a broken integration, a rotation with grace keeps the old URL working, and
//! `simulateDelivery` answers what posting would do without writing anything.

use std::time::{Duration, Instant};

use entity::database::Database;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use tests::{
    Backend, TestApp,
    fake_hotmart::{CLIENT_ID, CLIENT_SECRET, FakeHotmart, sale},
    hotmart::purchase,
    on_both_backends,
};

const HOTTOK: &str = "hottok-secret-0001";

async fn scalar(db: &Database, sql: &str) -> i64 {
    let row = db
        .conn
        .query_one_raw(Statement::from_string(db.conn.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

async fn set_credentials(app: &TestApp, integration: &str) {
    app.ok(
        &app.admin,
        "mutation($id: ID!, $c: String!, $s: String!) { setHotmartCredentials(integrationId: $id, input: {clientId: $c, clientSecret: $s}) { id } }",
        json!({"id": integration, "c": CLIENT_ID, "s": CLIENT_SECRET}),
    )
    .await;
}

/// Waits for the integration's reconciliation runs to number `count`, all ended.
async fn reconciliations(app: &TestApp, integration: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let runs = app
            .ok(
                &app.admin,
                "query($id: ID!) { importRuns(integrationId: $id) { id kind status healed salesSeen error } }",
                json!({"id": integration}),
            )
            .await["importRuns"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["kind"] == "RECONCILIATION")
            .cloned()
            .collect::<Vec<_>>();
        let ended = runs
            .iter()
            .all(|r| r["status"] == "SUCCEEDED" || r["status"] == "FAILED");
        if runs.len() >= count && ended {
            return runs;
        }
        assert!(Instant::now() < deadline, "runs: {runs:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn health(app: &TestApp, integration: &str) -> Value {
    app.ok(
        &app.admin,
        "query($id: ID!) { integration(id: $id) { health { status reasons refusedLastHour failedDeliveries lastReconciledAt healedLastDay } } }",
        json!({"id": integration}),
    )
    .await["integration"]["health"]
        .clone()
}

async fn reconciliation_heals_sales_no_webhook_delivered(backend: Backend) {
    let hotmart = FakeHotmart::start().await;
    let now = entity::now_ms();
    {
        let mut sales = hotmart.state.sales.lock().unwrap();
        for n in 0..5 {
            let at = now - 3_600_000 - n * 60_000;
            sales.push(sale(
                &format!("HPH{n}"),
                "APPROVED",
                1_234_567,
                &format!("h{n}@x.test"),
                at,
                97.0,
            ));
        }
    }
    let app = TestApp::spawn_with_hotmart(backend, &hotmart.base).await;
    let (id, url) = app
        .active_integration(&["PURCHASE_APPROVED"], json!({}))
        .await;
    set_credentials(&app, &id).await;
    // One of the five sales did arrive by webhook.
    let at = now - 3_600_000;
    let body = purchase("evt-h0", "PURCHASE_APPROVED", at, "h0@x.test", "HPH0");
    let (status, _) = app.post_webhook(&url, Some(HOTTOK), body.to_string()).await;
    assert_eq!(status, 200);
    app.wait_until_processed().await;
    assert_eq!(health(&app, &id).await["status"], "OK");

    let set = app
        .ok(
            &app.admin,
            "mutation($id: ID!) { setReconciliation(integrationId: $id, input: {enabled: true}) { reconciliation { enabled everyMinutes lookbackHours } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        set["setReconciliation"]["reconciliation"],
        json!({"enabled": true, "everyMinutes": 60, "lookbackHours": 72})
    );
    // The first run is due at once; the workers' scheduler starts it.
    let runs = reconciliations(&app, &id, 1).await;
    assert_eq!(runs.len(), 1, "one run per due time: {runs:?}");
    assert_eq!(runs[0]["status"], "SUCCEEDED", "{runs:?}");
    assert_eq!(runs[0]["healed"], 4, "{runs:?}");
    let deals = app
        .ok(&app.admin, "{ deals(first: 20) { totalCount } }", json!({}))
        .await;
    assert_eq!(deals["deals"]["totalCount"], 5);
    let timeline = app
        .ok(
            &app.admin,
            "{ deals(filter: {contactEmail: \"h3@x.test\"}) { nodes { status timeline { source description } } } }",
            json!({}),
        )
        .await;
    let entry = &timeline["deals"]["nodes"][0]["timeline"][0];
    assert_eq!(entry["source"], "IMPORT", "{timeline}");
    assert!(
        entry["description"]
            .as_str()
            .unwrap()
            .contains("recovered by reconciliation"),
        "{timeline}"
    );
    // Webhooks arrive, but some are lost: a warning that says so.
    let health = health(&app, &id).await;
    assert_eq!(health["status"], "WARNING", "{health}");
    assert_eq!(health["healedLastDay"], 4);
    assert!(!health["lastReconciledAt"].is_null());
    assert!(
        health["reasons"][0]
            .as_str()
            .unwrap()
            .contains("recovered 4 sales"),
        "{health}"
    );
    let metrics = reqwest::get(format!("{}/metrics", app.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("checkout_crm_healed_sales_total 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("checkout_crm_integrations{health=\"WARNING\"} 1"),
        "{metrics}"
    );

    // A second run finds nothing left to heal.
    let again = app
        .ok(
            &app.admin,
            "mutation($id: ID!) { reconcileNow(integrationId: $id) { id kind } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(again["reconcileNow"]["kind"], "RECONCILIATION");
    let runs = reconciliations(&app, &id, 2).await;
    let second = runs
        .iter()
        .find(|r| r["id"] == again["reconcileNow"]["id"])
        .unwrap();
    assert_eq!(second["status"], "SUCCEEDED", "{second}");
    assert_eq!(second["healed"], 0, "{second}");
    assert_eq!(second["salesSeen"], 5, "{second}");
}

async fn reconciliation_settings_are_checked(backend: Backend) {
    let app = TestApp::spawn_without_workers(backend).await;
    let (id, _) = app
        .active_integration(&["PURCHASE_APPROVED"], json!({}))
        .await;
    let set = "mutation($id: ID!, $i: ReconciliationInput!) { setReconciliation(integrationId: $id, input: $i) { id } }";
    let (code, message) = app
        .err(&app.admin, set, json!({"id": id, "i": {"enabled": true}}))
        .await;
    assert_eq!(code, "BAD_USER_INPUT", "{message}");
    assert!(message.contains("credentials"), "{message}");
    set_credentials(&app, &id).await;
    for (input, field) in [
        (json!({"enabled": true, "everyMinutes": 5}), "everyMinutes"),
        (
            json!({"enabled": true, "everyMinutes": 2000}),
            "everyMinutes",
        ),
        (
            json!({"enabled": true, "lookbackHours": 0}),
            "lookbackHours",
        ),
        (
            json!({"enabled": true, "lookbackHours": 721}),
            "lookbackHours",
        ),
    ] {
        let (code, message) = app
            .err(&app.admin, set, json!({"id": id, "i": input}))
            .await;
        assert_eq!(code, "BAD_USER_INPUT", "{input}: {message}");
        assert!(message.contains(field), "{message}");
    }
    let (_, member) = app.user("vendedor@acme.test", "MEMBER").await;
    let (code, _) = app
        .err(&member, set, json!({"id": id, "i": {"enabled": false}}))
        .await;
    assert_eq!(code, "FORBIDDEN");
    // simulateDelivery: admins only; a malformed body is what the endpoint would reject.
    let simulate = "mutation($id: ID!, $p: String!) { simulateDelivery(integrationId: $id, payload: $p) { answer reason } }";
    let (code, _) = app
        .err(&member, simulate, json!({"id": id, "p": "{}"}))
        .await;
    assert_eq!(code, "FORBIDDEN");
    for body in ["not json", "{\"id\": 1}", "[]", &"x".repeat(10_000)] {
        let simulated = app
            .ok(&app.admin, simulate, json!({"id": id, "p": body}))
            .await;
        assert_eq!(
            simulated["simulateDelivery"]["answer"], "rejected",
            "{body:.40}"
        );
        assert!(simulated["simulateDelivery"]["reason"].is_string());
    }
    let other = app.other_account().await;
    let (code, _) = app
        .err(&other, simulate, json!({"id": id, "p": "{}"}))
        .await;
    assert_eq!(code, "NOT_FOUND");
    let ok = app
        .ok(
            &app.admin,
            "mutation($id: ID!) { setReconciliation(integrationId: $id, input: {enabled: true, everyMinutes: 15, lookbackHours: 720}) { reconciliation { enabled everyMinutes lookbackHours } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        ok["setReconciliation"]["reconciliation"],
        json!({"enabled": true, "everyMinutes": 15, "lookbackHours": 720})
    );
}

async fn a_wrong_hottok_makes_the_integration_failing(backend: Backend) {
    let app = TestApp::spawn_without_workers(backend).await;
    let (id, url) = app
        .active_integration(&["PURCHASE_APPROVED"], json!({}))
        .await;
    let before = health(&app, &id).await;
    assert_eq!(before["status"], "OK", "{before}");
    assert_eq!(before["reasons"], json!([]));
    let body = purchase(
        "evt-w",
        "PURCHASE_APPROVED",
        entity::now_ms(),
        "w@x.test",
        "HPW",
    );
    for _ in 0..2 {
        let (status, _) = app
            .post_webhook(&url, Some("the-old-hottok-0000"), body.to_string())
            .await;
        assert_eq!(status, 401);
    }
    let after = health(&app, &id).await;
    assert_eq!(after["status"], "FAILING", "{after}");
    assert_eq!(after["refusedLastHour"], 2);
    assert!(
        after["reasons"][0].as_str().unwrap().contains("hottok"),
        "{after}"
    );
}

/// Wrong guesses while Hotmart's own deliveries pass are someone else's: a milder reason.
/// A hottok sent in the body is not stored; members do not see hottok hints.
async fn refusals_from_others_and_body_hottoks(backend: Backend) {
    let app = TestApp::spawn_without_workers(backend).await;
    let (id, url) = app
        .active_integration(&["PURCHASE_APPROVED"], json!({}))
        .await;
    let mut body = purchase(
        "evt-b",
        "PURCHASE_APPROVED",
        entity::now_ms(),
        "b@x.test",
        "HPB",
    );
    body["hottok"] = json!("hottok-secret-0001");
    let (status, _) = app.post_webhook(&url, None, body.to_string()).await;
    assert_eq!(status, 200);
    let stored = scalar_text(&app.db, "SELECT payload FROM webhook_deliveries").await;
    assert!(!stored.contains("hottok-secret-0001"), "{stored}");
    assert!(stored.contains("\"hottok\":\"\""), "{stored}");
    assert!(stored.contains("b@x.test"), "the rest is kept");
    for _ in 0..3 {
        let (status, _) = app
            .post_webhook(&url, Some("a-guess-at-the-hottok"), body.to_string())
            .await;
        assert_eq!(status, 401);
    }
    let now = health(&app, &id).await;
    assert_eq!(now["status"], "WARNING", "{now}");
    assert!(
        now["reasons"][0]
            .as_str()
            .unwrap()
            .contains("someone else is posting"),
        "{now}"
    );
    let (_, member) = app.user("seller@acme.test", "MEMBER").await;
    let (code, _) = app
        .err(
            &member,
            "{ integrations { products { hottokHint } } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
}

async fn a_rotation_with_grace_accepts_both_urls_until_it_ends(backend: Backend) {
    let app = TestApp::spawn_without_workers(backend).await;
    let (id, old) = app
        .active_integration(&["PURCHASE_APPROVED"], json!({}))
        .await;
    let rotate = "mutation($id: ID!, $g: Int) { rotateWebhookToken(id: $id, graceHours: $g) { webhookUrl } }";
    let (code, _) = app
        .err(&app.admin, rotate, json!({"id": id, "g": 1000}))
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    let new = app.ok(&app.admin, rotate, json!({"id": id, "g": 2})).await["rotateWebhookToken"]
        ["webhookUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new, old);
    let post = |url: String, n: usize| {
        let body = purchase(
            &format!("evt-r{n}"),
            "PURCHASE_APPROVED",
            entity::now_ms(),
            &format!("r{n}@x.test"),
            &format!("HPR{n}"),
        );
        let app = &app;
        async move { app.post_webhook(&url, Some(HOTTOK), body.to_string()).await }
    };
    let (status, on_old) = post(old.clone(), 1).await;
    assert_eq!((status, on_old["status"].as_str()), (200, Some("accepted")));
    let (status, on_new) = post(new.clone(), 2).await;
    assert_eq!((status, on_new["status"].as_str()), (200, Some("accepted")));
    let deliveries = app
        .ok(
            &app.admin,
            "query($id: ID!) { integration(id: $id) { deliveries { nodes { id viaPreviousUrl } } } }",
            json!({"id": id}),
        )
        .await;
    let via = |delivery: &Value| {
        deliveries["integration"]["deliveries"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == delivery["deliveryId"])
            .unwrap()["viaPreviousUrl"]
            .clone()
    };
    assert_eq!((via(&on_old), via(&on_new)), (json!(true), json!(false)));

    // The grace ends: the old URL is refused, the new one keeps working.
    let sql = format!("UPDATE integrations SET previous_token_until = 1 WHERE id = '{id}'");
    app.db
        .conn
        .execute_raw(Statement::from_string(
            app.db.conn.get_database_backend(),
            sql,
        ))
        .await
        .unwrap();
    app.ok(
        &app.admin,
        "mutation($id: ID!) { updateIntegration(id: $id, input: {}) { id } }",
        json!({"id": id}),
    )
    .await;
    assert_eq!(post(old.clone(), 3).await.0, 404);
    assert_eq!(post(new.clone(), 4).await.0, 200);

    // Without grace (a leaked URL), the old URL stops at once.
    let newest = app.ok(&app.admin, rotate, json!({"id": id, "g": 0})).await["rotateWebhookToken"]
        ["webhookUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(post(new, 5).await.0, 404);
    assert_eq!(post(newest, 6).await.0, 200);
}

/// Row counts of every table a delivery can touch.
async fn footprint(db: &Database) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in [
        "webhook_deliveries",
        "deals",
        "deal_events",
        "contacts",
        "contact_labels",
        "labels",
        "deal_refs",
    ] {
        counts.push(scalar(db, &format!("SELECT count(*) FROM {table}")).await);
    }
    counts
}

async fn simulating_each_real_fixture_matches_posting_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (id, url) = app.fixture_integration().await;
    let simulate = "mutation($id: ID!, $p: String!) { simulateDelivery(integrationId: $id, payload: $p) { answer reason contactEmail dealStatus origin { name } owner { email } tags } }";
    let mut accepted = 0;
    for (name, body) in tests::fixtures() {
        let before = footprint(&app.db).await;
        let simulated = app
            .ok(&app.admin, simulate, json!({"id": id, "p": body}))
            .await["simulateDelivery"]
            .clone();
        assert_eq!(
            footprint(&app.db).await,
            before,
            "{name}: the simulation wrote"
        );
        let (status, reply) = app
            .post_webhook(&url, Some(tests::FIXTURE_HOTTOK), body.clone())
            .await;
        assert_eq!(status, 200, "{name}");
        assert_eq!(reply["status"], simulated["answer"], "{name}: {simulated}");
        app.wait_until_processed().await;
        if simulated["answer"] != "accepted" || simulated["dealStatus"].is_null() {
            continue;
        }
        accepted += 1;
        let delivery = reply["deliveryId"].as_str().unwrap();
        let deal = scalar_text(
            &app.db,
            &format!(
                "SELECT d.status || '|' || o.name || '|' || c.email FROM deal_events e \
                 JOIN deals d ON d.id = e.deal_id JOIN origins o ON o.id = d.origin_id \
                 JOIN contacts c ON c.id = d.contact_id WHERE e.delivery_id = '{delivery}'"
            ),
        )
        .await;
        let expected = format!(
            "{}|{}|{}",
            simulated["dealStatus"].as_str().unwrap(),
            simulated["origin"]["name"].as_str().unwrap(),
            simulated["contactEmail"].as_str().unwrap()
        );
        assert_eq!(deal, expected, "{name}");
    }
    assert!(accepted >= 20, "{accepted} fixtures made deals");
}

async fn scalar_text(db: &Database, sql: &str) -> String {
    let row = db
        .conn
        .query_one_raw(Statement::from_string(db.conn.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<String>(0).unwrap()
}

/// Two worker processes share the schedule: one run per due time, and a time that comes
/// while the run is still going does not start another.
async fn two_workers_start_one_reconciliation_per_due_time(backend: Backend) {
    use std::sync::atomic::Ordering;
    use tests::process::{Gql, Store, cluster};
    let hotmart = FakeHotmart::start().await;
    let now = entity::now_ms();
    hotmart.state.sales.lock().unwrap().extend((0..50).map(|n| {
        sale(
            &format!("HPT{n}"),
            "APPROVED",
            1_234_567,
            &format!("t{n}@x.test"),
            now - 7_200_000 - n * 60_000,
            10.0,
        )
    }));
    // Each Sales History page takes 2 s: the run lasts several seconds.
    hotmart
        .state
        .faults
        .history_latency_ms
        .store(2_000, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(backend, dir.path()).await;
    let env = [("WORKER_SWEEP_SECS", "1")];
    let (base, _server, _workers) = cluster(dir.path(), &store.url, &hotmart.base, &env).await;
    let gql = Gql::new(&base, dir.path());
    let db = entity::database::connect(&store.url, 2).await.unwrap();
    let (id, _) = gql.integration().await;
    let set = gql
        .call(
            "mutation($id: ID!) { setReconciliation(integrationId: $id, input: {enabled: true}) { id } }",
            json!({"id": id}),
        )
        .await;
    assert!(set["errors"].is_null(), "{set}");
    let runs = "SELECT count(*) FROM import_runs WHERE kind = 'RECONCILIATION'";
    let deadline = Instant::now() + Duration::from_secs(30);
    while scalar(&db, runs).await == 0 {
        assert!(Instant::now() < deadline, "no reconciliation started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Both workers' schedulers look every second.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(scalar(&db, runs).await, 1, "one run per due time");

    // Due again while the run still goes: the time is taken, no second run starts.
    let sql = format!("UPDATE integrations SET reconcile_next_at = 0 WHERE id = '{id}'");
    db.conn
        .execute_raw(Statement::from_string(db.conn.get_database_backend(), sql))
        .await
        .unwrap();
    let taken =
        format!("SELECT count(*) FROM integrations WHERE id = '{id}' AND reconcile_next_at > 0");
    let deadline = Instant::now() + Duration::from_secs(10);
    while scalar(&db, &taken).await == 0 {
        assert!(Instant::now() < deadline, "the due time was not taken");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let still_running = "SELECT count(*) FROM import_runs WHERE kind = 'RECONCILIATION' \
                         AND status IN ('QUEUED', 'RUNNING')";
    assert_eq!(
        scalar(&db, still_running).await,
        1,
        "the run was still going"
    );
    assert_eq!(scalar(&db, runs).await, 1, "not doubled");
    db.close().await;
}

on_both_backends!(
    refusals_from_others_and_body_hottoks,
    reconciliation_heals_sales_no_webhook_delivered,
    reconciliation_settings_are_checked,
    a_wrong_hottok_makes_the_integration_failing,
    a_rotation_with_grace_accepts_both_urls_until_it_ends,
    simulating_each_real_fixture_matches_posting_it,
    two_workers_start_one_reconciliation_per_due_time,
);
