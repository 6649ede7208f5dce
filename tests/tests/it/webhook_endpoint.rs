//! `POST /webhooks/hotmart/{token}`: every row of the table in `docs/webhooks.md`.

use entity::tables::webhook_delivery;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};
use tests::{Backend, TestApp, hotmart::purchase, on_both_backends};

const HOTTOK: &str = "hottok-secret-0001";
const T0: i64 = 1_745_952_631_331;

async fn stored(app: &TestApp) -> u64 {
    webhook_delivery::Entity::find()
        .count(&app.db.conn)
        .await
        .unwrap()
}

async fn deliveries(app: &TestApp, id: &str) -> Vec<Value> {
    app.ok(
        &app.admin,
        "query($id: ID!) { integration(id: $id) { deliveries(first: 200) { nodes { eventId status reason payload } } } }",
        json!({"id": id}),
    )
    .await["integration"]["deliveries"]["nodes"]
        .as_array()
        .unwrap()
        .clone()
}

async fn every_row_of_the_webhook_table(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (id, url) = app
        .active_integration(
            &["PURCHASE_APPROVED", "PURCHASE_OUT_OF_SHOPPING_CART"],
            json!({}),
        )
        .await;
    let body = purchase("evt-1", "PURCHASE_APPROVED", T0, "ana@x.test", "HP1").to_string();
    let path = url.trim_start_matches("https://crm.example.com");
    let endpoint = format!("{}{path}", app.base);

    // Unknown token: 404, nothing stored.
    let (status, _) = app
        .post_webhook(
            "https://crm.example.com/webhooks/hotmart/unknown-token",
            Some(HOTTOK),
            body.clone(),
        )
        .await;
    assert_eq!(status, 404);
    // Over 256 KiB: 413, whether declared up front or streamed.
    let huge = format!(
        "{{\"id\":\"big\",\"event\":\"PURCHASE_APPROVED\",\"pad\":\"{}\"}}",
        "x".repeat(300 * 1024)
    );
    let headers = [
        ("X-HOTMART-HOTTOK", HOTTOK),
        ("Content-Type", "application/json"),
    ];
    assert_eq!(
        tests::raw_post_status(&app.base, path, &headers, huge.clone().into_bytes(), false).await,
        413
    );
    // Streamed without a declared length: the server answers 413 once the limit is passed,
    // before the client has finished sending (so the client writes raw HTTP and reads the
    // answer even though its remaining writes fail).
    let headers = [
        ("X-HOTMART-HOTTOK", HOTTOK),
        ("Content-Type", "application/json"),
    ];
    assert_eq!(
        tests::raw_post_status(&app.base, path, &headers, huge.into_bytes(), true).await,
        413
    );
    // Webhook version 1.0 (form-encoded): 415 with a message about version 2.0.
    let response = app
        .http
        .post(&endpoint)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("hottok=hottok-secret-0001&status=approved")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    assert!(response.text().await.unwrap().contains("2.0"));
    // Hottok missing or wrong: 401, nothing stored, counted.
    assert_eq!(app.post_webhook(&url, None, body.clone()).await.0, 401);
    assert_eq!(
        app.post_webhook(&url, Some("wrong-hottok-xxxx"), body.clone())
            .await
            .0,
        401
    );
    let mut with_body_hottok: Value = serde_json::from_str(&body).unwrap();
    with_body_hottok["hottok"] = json!("wrong-hottok-xxxx");
    assert_eq!(
        app.post_webhook(&url, None, with_body_hottok.to_string())
            .await
            .0,
        401
    );
    assert_eq!(stored(&app).await, 0, "nothing stored so far");
    let failures = app
        .ok(
            &app.admin,
            "query($id: ID!) { integration(id: $id) { hottokFailures } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(failures["integration"]["hottokFailures"], 3);

    // Not JSON / no id / no event / id too long / too deep: 400, stored REJECTED (header hottok valid).
    for bad in [
        "not json".to_owned(),
        json!({"event": "PURCHASE_APPROVED"}).to_string(),
        json!({"id": "x"}).to_string(),
        json!({"id": "i".repeat(129), "event": "PURCHASE_APPROVED"}).to_string(),
        format!("{}{}", "[".repeat(40), "]".repeat(40)),
    ] {
        let (status, reply) = app.post_webhook(&url, Some(HOTTOK), bad.clone()).await;
        assert_eq!(status, 400, "{bad:.60}: {reply}");
        assert!(reply["error"].is_string());
    }
    let rejected = deliveries(&app, &id).await;
    assert_eq!(rejected.len(), 5);
    assert!(
        rejected
            .iter()
            .all(|d| d["status"] == "REJECTED" && d["reason"].is_string())
    );

    // Accepted: 200 with the delivery id; the hottok may also come in the body.
    let (status, reply) = app.post_webhook(&url, Some(HOTTOK), body.clone()).await;
    assert_eq!(
        (status, reply["status"].as_str()),
        (200, Some("accepted")),
        "{reply}"
    );
    assert!(reply["deliveryId"].is_string());
    let mut body_auth = purchase(
        "evt-2",
        "PURCHASE_OUT_OF_SHOPPING_CART",
        T0,
        "bia@x.test",
        "HP2",
    );
    body_auth["hottok"] = json!(HOTTOK);
    let (status, reply) = app.post_webhook(&url, None, body_auth.to_string()).await;
    assert_eq!(
        (status, reply["status"].as_str()),
        (200, Some("accepted")),
        "{reply}"
    );
    // The same event id again: 200 duplicate, kept and flagged when the body differs.
    let (status, reply) = app.post_webhook(&url, Some(HOTTOK), body.clone()).await;
    assert_eq!((status, reply["status"].as_str()), (200, Some("duplicate")));
    let changed = purchase("evt-1", "PURCHASE_APPROVED", T0, "ana@x.test", "HP-other").to_string();
    let (status, reply) = app.post_webhook(&url, Some(HOTTOK), changed).await;
    assert_eq!((status, reply["status"].as_str()), (200, Some("duplicate")));
    // Test events (product 0, or the known test transaction): 200, TEST, lastTestEventAt.
    let mut test_event = purchase(
        "evt-test",
        "PURCHASE_APPROVED",
        1_511_783_344_000,
        "testeComprador271101postman15@example.com",
        "HP16015479281022",
    );
    test_event["data"]["product"]["id"] = json!(0);
    let (status, reply) = app
        .post_webhook(&url, Some(HOTTOK), test_event.to_string())
        .await;
    assert_eq!((status, reply["status"].as_str()), (200, Some("test")));
    // Event not selected, product not registered, unknown event: 200 IGNORED with a reason.
    let not_selected = purchase("evt-3", "PURCHASE_REFUNDED", T0, "ana@x.test", "HP1");
    let mut other_product = purchase("evt-4", "PURCHASE_APPROVED", T0, "ana@x.test", "HP9");
    other_product["data"]["product"]["id"] = json!(999);
    let unknown =
        json!({"id": "evt-5", "event": "ORDER_FULFILLMENT", "data": {"product": {"id": 1234567}}});
    for ignored in [not_selected, other_product, unknown] {
        let (status, reply) = app
            .post_webhook(&url, Some(HOTTOK), ignored.to_string())
            .await;
        assert_eq!(
            (status, reply["status"].as_str()),
            (200, Some("ignored")),
            "{reply}"
        );
        assert!(reply["reason"].is_string());
    }
    app.wait_until_processed().await;
    let all = deliveries(&app, &id).await;
    let count = |status: &str| all.iter().filter(|d| d["status"] == status).count();
    assert_eq!(
        (
            count("PROCESSED"),
            count("DUPLICATE"),
            count("TEST"),
            count("IGNORED"),
            count("REJECTED")
        ),
        (2, 2, 1, 3, 5)
    );
    let flagged: Vec<&Value> = all.iter().filter(|d| d["status"] == "DUPLICATE").collect();
    assert!(
        flagged
            .iter()
            .any(|d| d["reason"].as_str().unwrap().contains("different body"))
    );
    let reasons: Vec<&str> = all
        .iter()
        .filter(|d| d["status"] == "IGNORED")
        .map(|d| d["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("not selected")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("not registered")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("unknown event")),
        "{reasons:?}"
    );
    let times = app
        .ok(
            &app.admin,
            "query($id: ID!) { integration(id: $id) { lastEventAt lastTestEventAt } }",
            json!({"id": id}),
        )
        .await;
    assert!(!times["integration"]["lastEventAt"].is_null());
    assert!(!times["integration"]["lastTestEventAt"].is_null());
    // The stored payload is the body exactly as received, except that a body hottok is
    // never shown back.
    assert!(all.iter().any(|d| d["payload"] == body.as_str()));
    assert!(
        !serde_json::to_string(&all).unwrap().contains(HOTTOK),
        "hottoks are write-only"
    );
    assert!(
        all.iter()
            .any(|d| d["payload"].as_str().unwrap().contains(r#""hottok":"***""#))
    );
    let deals = app
        .ok(&app.admin, "{ deals { totalCount } }", json!({}))
        .await;
    assert_eq!(
        deals["deals"]["totalCount"], 2,
        "the test event made no deal"
    );

    // A paused integration stores and ignores; replay processes it once active again.
    app.ok(
        &app.admin,
        "mutation($id: ID!) { pauseIntegration(id: $id) { id } }",
        json!({"id": id}),
    )
    .await;
    let paused = purchase("evt-6", "PURCHASE_APPROVED", T0 + 5, "carla@x.test", "HP6");
    let (status, reply) = app
        .post_webhook(&url, Some(HOTTOK), paused.to_string())
        .await;
    assert_eq!((status, reply["status"].as_str()), (200, Some("ignored")));
    let delivery = reply["deliveryId"].clone();
    app.ok(
        &app.admin,
        "mutation($id: ID!) { activateIntegration(id: $id) { id } }",
        json!({"id": id}),
    )
    .await;
    let replayed = app
        .ok(
            &app.admin,
            "mutation($d: ID!) { replayDelivery(id: $d) { status } }",
            json!({"d": delivery}),
        )
        .await;
    assert_eq!(replayed["replayDelivery"]["status"], "PENDING");
    app.wait_until_processed().await;
    let deals = app
        .ok(
            &app.admin,
            "{ deals(filter: {contactEmail: \"carla@x.test\"}) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(deals["deals"]["totalCount"], 1);
}

async fn database_down_answers_503_and_stores_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, url) = app
        .active_integration(&["PURCHASE_APPROVED"], json!({}))
        .await;
    let body = purchase("evt-down", "PURCHASE_APPROVED", T0, "ana@x.test", "HP1").to_string();
    let outage = app.database_outage().await;
    let (status, _) = app.post_webhook(&url, Some(HOTTOK), body.clone()).await;
    assert_eq!(status, 503);
    drop(outage);
    assert_eq!(stored(&app).await, 0, "nothing half-written");
    // Hotmart retries: processed once.
    let (status, reply) = app.post_webhook(&url, Some(HOTTOK), body.clone()).await;
    assert_eq!(
        (status, reply["status"].as_str()),
        (200, Some("accepted")),
        "{reply}"
    );
    let (_, again) = app.post_webhook(&url, Some(HOTTOK), body).await;
    assert_eq!(again["status"], "duplicate");
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

on_both_backends!(
    every_row_of_the_webhook_table,
    database_down_answers_503_and_stores_nothing,
    origins_with_deals_survive_and_rotated_urls_stop,
);

/// Set-up: deselecting an event never deletes an origin that holds deals, and a
/// rotated webhook URL stops working at once.
async fn origins_with_deals_survive_and_rotated_urls_stop(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (id, url) = app
        .active_integration(&["PURCHASE_APPROVED", "PURCHASE_CANCELED"], json!({}))
        .await;
    let body = purchase("keep-1", "PURCHASE_APPROVED", T0, "ana@x.test", "HP1").to_string();
    assert_eq!(app.post_webhook(&url, Some(HOTTOK), body).await.0, 200);
    app.wait_until_processed().await;
    let updated = app
        .ok(
            &app.admin,
            "mutation($id: ID!) { updateIntegration(id: $id, input: {events: [PURCHASE_CANCELED]}) { events group { origins { event dealCount } } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        updated["updateIntegration"]["events"],
        json!(["PURCHASE_CANCELED"])
    );
    let origins = updated["updateIntegration"]["group"]["origins"]
        .as_array()
        .unwrap();
    assert!(
        origins
            .iter()
            .any(|o| o["event"] == "PURCHASE_APPROVED" && o["dealCount"] == 1),
        "the origin holding a deal is kept: {origins:?}"
    );
    let rotated = app
        .ok(
            &app.admin,
            "mutation($id: ID!) { rotateWebhookToken(id: $id) { webhookUrl } }",
            json!({"id": id}),
        )
        .await["rotateWebhookToken"]["webhookUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = purchase("keep-2", "PURCHASE_CANCELED", T0, "bia@x.test", "HP2").to_string();
    assert_eq!(
        app.post_webhook(&url, Some(HOTTOK), body.clone()).await.0,
        404,
        "the old URL is gone"
    );
    assert_eq!(app.post_webhook(&rotated, Some(HOTTOK), body).await.0, 200);
}
