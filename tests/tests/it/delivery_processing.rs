//! Processing deliveries: retries with backoff, `FAILED` after the last attempt, replay,
//! and the sweeper that re-enqueues deliveries whose job vanished.

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use tests::{Backend, TestApp, hotmart::purchase, on_both_backends};

const HOTTOK: &str = "hottok-secret-0001";
const T0: i64 = 1_745_952_631_331;

async fn delivery(app: &TestApp, id: &Value) -> Value {
    let data = app
        .ok(
            &app.admin,
            "{ integrations { deliveries { nodes { id status attempts reason processedAt } } } }",
            json!({}),
        )
        .await;
    data["integrations"][0]["deliveries"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| &d["id"] == id)
        .cloned()
        .unwrap()
}

async fn wait_for(app: &TestApp, id: &Value, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let d = delivery(app, id).await;
        if done(&d) {
            return d;
        }
        assert!(Instant::now() < deadline, "timed out: {d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn a_failure_that_heals_is_retried_with_backoff_and_processed_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, url) = app
        .active_integration(&["PURCHASE_APPROVED"], json!({}))
        .await;
    app.break_processing().await;
    let started = Instant::now();
    let (_, reply) = app
        .post_webhook(
            &url,
            Some(HOTTOK),
            purchase("h1", "PURCHASE_APPROVED", T0, "ana@x.test", "HP1").to_string(),
        )
        .await;
    let id = reply["deliveryId"].clone();
    let failed_once = wait_for(&app, &id, |d| d["attempts"].as_i64() >= Some(1)).await;
    assert_eq!(failed_once["status"], "PENDING");
    assert!(
        failed_once["reason"]
            .as_str()
            .unwrap()
            .contains("injected failure"),
        "{failed_once}"
    );
    app.heal_processing().await;
    let done = wait_for(&app, &id, |d| d["status"] == "PROCESSED").await;
    assert_eq!(done["attempts"], 2, "one failure, then success: {done}");
    // The retry waited for the backoff (1 s in tests) instead of spinning.
    assert!(started.elapsed() >= Duration::from_secs(1));
    let deals = app
        .ok(
            &app.admin,
            "{ deals { totalCount nodes { timeline { event } } } }",
            json!({}),
        )
        .await;
    assert_eq!(deals["deals"]["totalCount"], 1);
    assert_eq!(
        deals["deals"]["nodes"][0]["timeline"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

async fn a_permanent_failure_ends_failed_and_replay_recovers_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, url) = app
        .active_integration(&["PURCHASE_APPROVED"], json!({}))
        .await;
    app.break_processing().await;
    let (_, reply) = app
        .post_webhook(
            &url,
            Some(HOTTOK),
            purchase("p1", "PURCHASE_APPROVED", T0, "ana@x.test", "HP1").to_string(),
        )
        .await;
    let id = reply["deliveryId"].clone();
    let failed = wait_for(&app, &id, |d| d["status"] == "FAILED").await;
    assert_eq!(failed["attempts"], 3, "bounded attempts: {failed}");
    assert!(
        failed["reason"]
            .as_str()
            .unwrap()
            .contains("injected failure")
    );
    assert_eq!(
        app.ok(&app.admin, "{ deals { totalCount } }", json!({}))
            .await["deals"]["totalCount"],
        0
    );
    app.heal_processing().await;
    let replayed = app
        .ok(
            &app.admin,
            "mutation($id: ID!) { replayDelivery(id: $id) { status } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(replayed["replayDelivery"]["status"], "PENDING");
    wait_for(&app, &id, |d| d["status"] == "PROCESSED").await;
    assert_eq!(
        app.ok(&app.admin, "{ deals { totalCount } }", json!({}))
            .await["deals"]["totalCount"],
        1
    );
    // Replaying a processed delivery again has no second effect.
    app.ok(
        &app.admin,
        "mutation($id: ID!) { replayDelivery(id: $id) { status } }",
        json!({"id": id}),
    )
    .await;
    app.wait_until_processed().await;
    let deals = app
        .ok(
            &app.admin,
            "{ deals { totalCount nodes { timeline { event } } } }",
            json!({}),
        )
        .await;
    assert_eq!(deals["deals"]["totalCount"], 1);
    assert_eq!(
        deals["deals"]["nodes"][0]["timeline"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

async fn the_sweeper_re_enqueues_a_delivery_whose_job_vanished(backend: Backend) {
    let mut app = TestApp::spawn_without_workers(backend).await;
    let (_, url) = app
        .active_integration(&["PURCHASE_APPROVED"], json!({}))
        .await;
    let (status, _) = app
        .post_webhook(
            &url,
            Some(HOTTOK),
            purchase("s1", "PURCHASE_APPROVED", T0, "ana@x.test", "HP1").to_string(),
        )
        .await;
    assert_eq!(status, 200);
    // The job is lost (as if the queue row never made it), the delivery is still PENDING.
    let sql = match backend {
        Backend::Sqlite => "DELETE FROM Jobs",
        Backend::Postgres => "DELETE FROM apalis.jobs",
    };
    let backend_kind = app.db.conn.get_database_backend();
    app.db
        .conn
        .execute_raw(Statement::from_string(backend_kind, sql))
        .await
        .unwrap();
    app.start_workers();
    app.wait_until_processed().await;
    assert_eq!(
        app.ok(&app.admin, "{ deals { totalCount } }", json!({}))
            .await["deals"]["totalCount"],
        1
    );
}

async fn members_see_and_work_only_deals_of_visible_groups(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (member_id, member) = app.user("member@acme.test", "MEMBER").await;
    let (hidden_id, hidden_url) = app
        .active_integration(&["PURCHASE_APPROVED"], json!({}))
        .await;
    let (_, open_url) = app
        .active_integration(&["PURCHASE_APPROVED"], json!({}))
        .await;
    let group = app
        .ok(
            &app.admin,
            "query($id: ID!) { integration(id: $id) { group { id } } }",
            json!({"id": hidden_id}),
        )
        .await["integration"]["group"]["id"]
        .clone();
    app.ok(
        &app.admin,
        "mutation($g: ID!) { setGroupVisibility(groupId: $g, input: {everyone: false}) { id } }",
        json!({"g": group}),
    )
    .await;
    app.post_webhook(
        &hidden_url,
        Some(HOTTOK),
        purchase("v1", "PURCHASE_APPROVED", T0, "secret@x.test", "HP1").to_string(),
    )
    .await;
    app.post_webhook(
        &open_url,
        Some(HOTTOK),
        purchase("v2", "PURCHASE_APPROVED", T0, "open@x.test", "HP2").to_string(),
    )
    .await;
    app.wait_until_processed().await;
    let all = app
        .ok(
            &app.admin,
            "{ deals { totalCount nodes { id contact { id email } } } }",
            json!({}),
        )
        .await;
    assert_eq!(all["deals"]["totalCount"], 2);
    let seen = app.ok(&member, "{ deals { totalCount nodes { id contact { email } } } contacts { totalCount nodes { email } } }", json!({})).await;
    assert_eq!(seen["deals"]["totalCount"], 1);
    assert_eq!(seen["deals"]["nodes"][0]["contact"]["email"], "open@x.test");
    assert_eq!(seen["contacts"]["nodes"], json!([{"email": "open@x.test"}]));
    let hidden = all["deals"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["contact"]["email"] == "secret@x.test")
        .unwrap()
        .clone();
    let (code, _) = app
        .err(
            &member,
            "query($id: ID!) { deal(id: $id) { id } }",
            json!({"id": hidden["id"]}),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
    let (code, _) = app
        .err(
            &member,
            "query($id: ID!) { contact(id: $id) { id } }",
            json!({"id": hidden["contact"]["id"]}),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
    // Members may reassign only deals they own.
    let visible = seen["deals"]["nodes"][0]["id"].clone();
    let (code, _) = app
        .err(
            &member,
            "mutation($d: ID!, $u: ID) { assignDeal(dealId: $d, userId: $u) { id } }",
            json!({"d": visible, "u": member_id}),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
    app.ok(
        &app.admin,
        "mutation($d: ID!, $u: ID) { assignDeal(dealId: $d, userId: $u) { id } }",
        json!({"d": visible, "u": member_id}),
    )
    .await;
    let passed = app
        .ok(
            &member,
            "mutation($d: ID!) { assignDeal(dealId: $d, userId: null) { owner { id } } }",
            json!({"d": visible}),
        )
        .await;
    assert!(passed["assignDeal"]["owner"].is_null());
    // Another account sees none of it.
    let rival = app.other_account().await;
    let (code, _) = app
        .err(
            &rival,
            "query($id: ID!) { deal(id: $id) { id } }",
            json!({"id": visible}),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
    assert_eq!(
        app.ok(
            &rival,
            "{ deals { totalCount } contacts { totalCount } }",
            json!({})
        )
        .await,
        json!({"deals": {"totalCount": 0}, "contacts": {"totalCount": 0}})
    );
    let label = app
        .ok(
            &rival,
            "mutation { createLabel(input: {name: \"R\"}) { id } }",
            json!({}),
        )
        .await["createLabel"]["id"]
        .clone();
    for (query, vars) in [
        (
            "mutation($c: ID!, $l: ID!) { labelContact(contactId: $c, labelId: $l) { id } }",
            json!({"c": hidden["contact"]["id"], "l": label}),
        ),
        (
            "mutation($c: ID!, $l: ID!) { unlabelContact(contactId: $c, labelId: $l) { id } }",
            json!({"c": hidden["contact"]["id"], "l": label}),
        ),
        (
            "mutation($d: ID!) { assignDeal(dealId: $d, userId: null) { id } }",
            json!({"d": visible}),
        ),
        (
            "mutation($d: ID!) { replayDelivery(id: $d) { id } }",
            json!({"d": visible}),
        ),
    ] {
        let (code, message) = app.err(&rival, query, vars).await;
        assert_eq!(code, "NOT_FOUND", "{query}: {message}");
    }
}

async fn metrics(app: &TestApp) -> String {
    let response = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

async fn metrics_show_deliveries_and_the_queue(backend: Backend) {
    let mut app = TestApp::spawn_without_workers(backend).await;
    let (_, url) = app
        .active_integration(&["PURCHASE_APPROVED"], json!({}))
        .await;
    for i in 0..3 {
        let body = purchase(
            &format!("m{i}"),
            "PURCHASE_APPROVED",
            T0,
            "ana@x.test",
            &format!("HP{i}"),
        );
        app.post_webhook(&url, Some(HOTTOK), body.to_string()).await;
    }
    let before = metrics(&app).await;
    assert!(
        before.contains("checkout_crm_webhook_deliveries{status=\"PENDING\"} 3"),
        "{before}"
    );
    assert!(before.contains("checkout_crm_queue_depth 3"), "{before}");
    assert!(
        before.contains("checkout_crm_webhooks_total{outcome=\"accepted\"} 3"),
        "{before}"
    );
    assert!(before.contains("# TYPE checkout_crm_queue_oldest_pending_seconds gauge"));
    // Every request is timed, and so is its delivery's stay in the inbox.
    for histogram in [
        "checkout_crm_webhook_handler_seconds",
        "checkout_crm_webhook_inbox_seconds",
    ] {
        assert!(before.contains(&format!("{histogram}_count 3")), "{before}");
        assert!(
            before.contains(&format!("{histogram}_bucket{{le=\"+Inf\"}} 3")),
            "{before}"
        );
    }
    app.start_workers();
    app.wait_until_processed().await;
    let after = metrics(&app).await;
    assert!(
        after.contains("checkout_crm_delivery_attempts_total{outcome=\"processed\"} 3"),
        "{after}"
    );
    assert!(
        after.contains("checkout_crm_webhook_deliveries{status=\"PENDING\"} 0"),
        "{after}"
    );
    assert!(after.contains("checkout_crm_queue_depth 0"), "{after}");
}

on_both_backends!(
    metrics_show_deliveries_and_the_queue,
    a_failure_that_heals_is_retried_with_backoff_and_processed_once,
    a_permanent_failure_ends_failed_and_replay_recovers_it,
    the_sweeper_re_enqueues_a_delivery_whose_job_vanished,
    members_see_and_work_only_deals_of_visible_groups,
);

/// On SQLite a job with few deliveries fills its group with deliveries that wait and were
/// never attempted: under a steady trickle of webhooks (one delivery per job) processing
/// keeps up instead of paying a whole group's statements per delivery.
#[tokio::test]
async fn small_jobs_fill_their_group_with_waiting_deliveries() {
    let mut app = TestApp::spawn_without_workers(Backend::Sqlite).await;
    let (_, url) = app
        .active_integration(&["PURCHASE_APPROVED"], json!({}))
        .await;
    // One request at a time: each commit, and so each job, holds one delivery.
    for i in 0..30 {
        let body = purchase(
            &format!("t{i}"),
            "PURCHASE_APPROVED",
            T0,
            &format!("buyer{i}@x.test"),
            &format!("HPT{i}"),
        );
        let (status, _) = app.post_webhook(&url, Some(HOTTOK), body.to_string()).await;
        assert_eq!(status, 200);
    }
    app.start_workers();
    app.wait_until_processed().await;
    let data = app
        .ok(
            &app.admin,
            "{ integrations { deliveries(first: 100) { nodes { status attempts processedAt } } } deals { totalCount } }",
            json!({}),
        )
        .await;
    let nodes = data["integrations"][0]["deliveries"]["nodes"]
        .as_array()
        .unwrap();
    assert_eq!(nodes.len(), 30);
    assert!(
        nodes
            .iter()
            .all(|d| d["status"] == "PROCESSED" && d["attempts"] == 1),
        "{nodes:?}"
    );
    assert_eq!(data["deals"]["totalCount"], 30, "each sale applied once");
    // Deliveries of one group are marked in one statement, with one time.
    let groups: std::collections::BTreeSet<&str> = nodes
        .iter()
        .map(|d| d["processedAt"].as_str().unwrap())
        .collect();
    assert!(
        groups.len() <= 6,
        "30 one-delivery jobs took {} groups",
        groups.len()
    );
}
