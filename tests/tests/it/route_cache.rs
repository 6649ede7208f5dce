//! The webhook route cache follows the `routes` version stamp: a route mutation made by
//! another process (here: a second HTTP state on the same database, with a cache of its
//! own) is seen within a stamp check, while read-only GraphQL requests leave the cache
//! alone.

use std::time::{Duration, Instant};

use async_graphql::{Request, Variables};
use entity::{Caller, Role};
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
    let caller = Caller {
        user_id: app.admin_id.clone(),
        account_id: app.account_id.clone(),
        role: Role::Admin,
    };
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

#[test]
fn every_route_mutation_is_in_the_schema() {
    let sdl = checkout_crm::graphql::sdl();
    for name in checkout_crm::graphql::guard::ROUTE_MUTATIONS {
        assert!(
            sdl.contains(&format!("\t{name}(")),
            "{name} is not a mutation"
        );
    }
}

on_both_backends!(a_route_change_in_another_process_is_seen_and_queries_keep_the_cache);
