//! The HTTP layer under pressure: beyond its concurrency limit the server answers 503 at
//! once and recovers; slow requests are cut off; introspection can be switched off.

use std::time::{Duration, Instant};

use serde_json::json;
use tests::{Backend, TestApp, hotmart::purchase, on_both_backends};

type Feed = tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>;

/// Starts a webhook request whose body arrives only when the returned sender is dropped.
fn stalled_request(app: &TestApp, url: &str) -> (Feed, tokio::task::JoinHandle<u16>) {
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    let stream = futures::stream::unfold(
        receiver,
        |mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>| async move {
            rx.recv().await.map(|item| (item, rx))
        },
    );
    let request = app
        .http
        .post(format!(
            "{}{}",
            app.base,
            url.trim_start_matches("https://crm.example.com")
        ))
        .header("content-type", "application/json")
        .header("X-HOTMART-HOTTOK", "hottok-secret-0001")
        .body(reqwest::Body::wrap_stream(stream));
    let handle = tokio::spawn(async move {
        request
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    });
    (sender, handle)
}

async fn beyond_capacity_the_server_sheds_load_and_recovers(backend: Backend) {
    let app = TestApp::spawn_configured(backend, |config| {
        config.http_max_concurrency = 3;
        config.webhook_body_timeout = Duration::from_secs(20);
    })
    .await;
    let (_, url) = app
        .active_integration(&["PURCHASE_APPROVED"], json!({}))
        .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let (sender, handle) = stalled_request(&app, &url);
        sender.send(Ok(b"{\"id\":".to_vec())).await.unwrap();
        held.push((sender, handle));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Past the limit: 503 at once for webhooks.
    for _ in 0..10 {
        let started = Instant::now();
        let (status, _) = app
            .post_webhook(
                &url,
                Some("hottok-secret-0001"),
                purchase("x", "PURCHASE_APPROVED", 1, "a@x.test", "HP1").to_string(),
            )
            .await;
        assert_eq!(status, 503);
        assert!(started.elapsed() < Duration::from_secs(2), "shed quickly");
    }
    // GraphQL has slots of its own: held webhooks do not take them.
    let (status, _) = app
        .post_graphql(Some(&app.admin), "{ me { id } }", json!({}))
        .await;
    assert_eq!(status, 200);
    // Health checks stay outside the limit.
    assert_eq!(
        app.http
            .get(format!("{}/healthz", app.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Release the held requests: the server recovers.
    for (sender, handle) in held {
        drop(sender);
        assert!([400, 503].contains(&handle.await.unwrap()));
    }
    let (status, reply) = app
        .post_webhook(
            &url,
            Some("hottok-secret-0001"),
            purchase(
                "after",
                "PURCHASE_APPROVED",
                1_745_952_631_331,
                "a@x.test",
                "HP1",
            )
            .to_string(),
        )
        .await;
    assert_eq!(
        (status, reply["status"].as_str()),
        (200, Some("accepted")),
        "{reply}"
    );
    assert_eq!(
        app.post_graphql(Some(&app.admin), "{ me { id } }", json!({}))
            .await
            .0,
        200
    );
}

async fn a_request_that_takes_too_long_is_cut_off(backend: Backend) {
    let app = TestApp::spawn_configured(backend, |config| {
        config.http_request_timeout = Duration::from_secs(1);
        config.webhook_body_timeout = Duration::from_secs(20);
    })
    .await;
    let (_, url) = app
        .active_integration(&["PURCHASE_APPROVED"], json!({}))
        .await;
    let (sender, handle) = stalled_request(&app, &url);
    sender.send(Ok(b"{".to_vec())).await.unwrap();
    let started = Instant::now();
    let status = handle.await.unwrap();
    assert_eq!(status, 503);
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(sender);
}

async fn introspection_can_be_switched_off(backend: Backend) {
    let app =
        TestApp::spawn_configured(backend, |config| config.graphql_introspection = false).await;
    let (_, body) = app
        .post_graphql(
            Some(&app.admin),
            "{ __schema { types { name } } }",
            json!({}),
        )
        .await;
    assert!(
        body["data"].is_null() || body["data"]["__schema"].is_null(),
        "no schema revealed: {body}"
    );
    assert_eq!(
        app.ok(&app.admin, "{ me { email } }", json!({})).await["me"]["email"],
        "admin@acme.test"
    );
    let open = TestApp::spawn_without_workers(backend).await;
    let schema = open
        .ok(
            &open.admin,
            "{ __schema { queryType { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(schema["__schema"]["queryType"]["name"], "Query");
}

on_both_backends!(
    beyond_capacity_the_server_sheds_load_and_recovers,
    a_request_that_takes_too_long_is_cut_off,
    introspection_can_be_switched_off,
);
