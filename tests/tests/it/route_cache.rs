//! The webhook route cache follows the `routes` version stamp: a route mutation made by
//! another process (here: a second HTTP state on the same database, with a cache of its
//! own) is seen within a stamp check, while read-only GraphQL requests leave the cache
//! alone.

use std::time::{Duration, Instant};

use async_graphql::{Request, Variables};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use tests::{Backend, TestApp, hotmart::purchase, on_both_backends};

fn body(n: usize) -> String {
    purchase(
        &format!("r{n}"),
        "PURCHASE_APPROVED",
        1_745_000_000_000 + n as i64,
        &format!("r{n}@x.test"),
        &format!("HPR{n}"),
    )
    .to_string()
}

async fn answer(app: &TestApp, url: &str, n: usize) -> Value {
    let (status, answer) = app
        .post_webhook(url, Some("hottok-secret-0001"), body(n))
        .await;
    assert_eq!(status, 200, "{answer}");
    answer
}

async fn a_route_change_in_another_process_is_seen_and_queries_keep_the_cache(backend: Backend) {
    let app = TestApp::spawn_without_workers(backend).await;
    let (integration, url) = app
        .active_integration(&["PURCHASE_APPROVED"], json!({}))
        .await;
    assert_eq!(answer(&app, &url, 0).await["status"], "accepted");

    // Paused behind the cache's back (no stamp): a read-only query does not drop the
    // cached route, so deliveries are still accepted.
    let sql = format!("UPDATE integrations SET status = 'PAUSED' WHERE id = '{integration}'");
    app.db
        .conn
        .execute_raw(Statement::from_string(
            app.db.conn.get_database_backend(),
            sql,
        ))
        .await
        .unwrap();
    app.ok(&app.admin, "{ integrations { id status } }", json!({}))
        .await;
    assert_eq!(answer(&app, &url, 1).await["status"], "accepted");

    // Another process (its own cache) activates it again and then pauses it through the
    // API: this process sees the stamp move and routes the next deliveries afresh.
    let other = checkout_crm::app::http_state(&app.config, app.db.clone());
    let caller = app.admin_caller();
    for mutation in ["activateIntegration", "pauseIntegration"] {
        let query = format!("mutation($id: ID!) {{ {mutation}(id: $id) {{ status }} }}");
        let response = other
            .schema
            .execute(
                Request::new(query)
                    .variables(Variables::from_json(json!({"id": integration})))
                    .data(caller.clone()),
            )
            .await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
    }
    let changed = Instant::now();
    let mut n = 2;
    loop {
        let answer = answer(&app, &url, n).await;
        if answer["status"] == "ignored" {
            break;
        }
        assert_eq!(answer["status"], "accepted", "{answer}");
        assert!(
            changed.elapsed() < Duration::from_secs(2),
            "the change was not seen in 2 s"
        );
        n += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A route change made outside GraphQL — any domain call, as a new CLI command or job
/// would make — is seen without the guard knowing of it; one made through this process's
/// API holds from the very next delivery.
async fn route_changes_need_no_list_of_mutations(backend: Backend) {
    let app = TestApp::spawn_without_workers(backend).await;
    let (integration, url) = app
        .active_integration(&["PURCHASE_APPROVED"], json!({}))
        .await;
    assert_eq!(answer(&app, &url, 0).await["status"], "accepted");
    let caller = app.admin_caller();
    entity::integrations::pause(&app.db.conn, &caller, &integration)
        .await
        .unwrap();
    let changed = Instant::now();
    let mut n = 1;
    while answer(&app, &url, n).await["status"] == "accepted" {
        assert!(
            changed.elapsed() < Duration::from_secs(2),
            "the domain call's change was not seen in 2 s"
        );
        n += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(answer(&app, &url, n + 1).await["status"], "ignored");
    // Through this process's API: the next delivery already sees it, with no wait.
    app.ok(
        &app.admin,
        "mutation($id: ID!) { activateIntegration(id: $id) { status } }",
        json!({"id": integration}),
    )
    .await;
    assert_eq!(answer(&app, &url, n + 2).await["status"], "accepted");
    let rotated = app
        .ok(
            &app.admin,
            "mutation($id: ID!) { rotateWebhookToken(id: $id) { webhookUrl } }",
            json!({"id": integration}),
        )
        .await;
    let (status, _) = app
        .post_webhook(&url, Some("hottok-secret-0001"), body(n + 3))
        .await;
    assert_eq!(status, 404, "the old URL stops at once: {rotated}");
}

on_both_backends!(
    a_route_change_in_another_process_is_seen_and_queries_keep_the_cache,
    route_changes_need_no_list_of_mutations,
);
