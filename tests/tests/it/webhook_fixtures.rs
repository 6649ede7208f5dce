//! Every real Hotmart delivery in `tests/fixtures/hotmart` is accepted and processed.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use tests::{Backend, TestApp, fixtures, on_both_backends};

const HOTTOK: &str = tests::FIXTURE_HOTTOK;

async fn every_real_fixture_is_accepted_and_processed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let files = fixtures();
    assert!(files.len() >= 40, "fixtures present: {}", files.len());
    let (id, url) = app.fixture_integration().await;
    // The real set holds Hotmart redeliveries (same event id twice): those are duplicates.
    let mut seen = BTreeSet::new();
    let mut duplicates = 0;
    for (name, body) in &files {
        let event_id = serde_json::from_str::<Value>(body).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (status, reply) = app.post_webhook(&url, Some(HOTTOK), body.clone()).await;
        assert_eq!(status, 200, "{name}: {reply}");
        let expected = if seen.insert(event_id) {
            "accepted"
        } else {
            "duplicate"
        };
        duplicates += usize::from(expected == "duplicate");
        assert_eq!(reply["status"], expected, "{name}: {reply}");
    }
    app.wait_until_processed().await;
    let data = app
        .ok(
            &app.admin,
            "query($id: ID!) { integration(id: $id) { lastEventAt deliveries(first: 200) { totalCount nodes { eventId event status reason } } } }",
            json!({"id": id}),
        )
        .await;
    let deliveries = data["integration"]["deliveries"]["nodes"]
        .as_array()
        .unwrap();
    assert_eq!(deliveries.len(), files.len());
    let processed = deliveries
        .iter()
        .filter(|d| d["status"] == "PROCESSED")
        .count();
    let duplicate = deliveries
        .iter()
        .filter(|d| d["status"] == "DUPLICATE")
        .count();
    assert_eq!(
        (processed, duplicate),
        (files.len() - duplicates, duplicates),
        "{deliveries:#?}"
    );
    assert!(!data["integration"]["lastEventAt"].is_null());
    // Deal-moving deliveries made deals; info events did not.
    let deals = app
        .ok(
            &app.admin,
            "{ deals(first: 200) { totalCount } }",
            json!({}),
        )
        .await;
    assert!(
        deals["deals"]["totalCount"].as_i64().unwrap() > 0,
        "{deals}"
    );
    deals_show_what_the_real_deliveries_carry(&app, &files).await;
}

/// A real Pix delivery's deal shows its Pix code and expiry; a real refused card's deal
/// its refusal reason.
async fn deals_show_what_the_real_deliveries_carry(app: &TestApp, files: &[(String, String)]) {
    let deals = app
        .ok(
            &app.admin,
            "{ deals(first: 200) { nodes { transactions payment { method pixCode pixExpiresAt refusalReason installments } } } }",
            json!({}),
        )
        .await;
    let nodes = deals["deals"]["nodes"].as_array().unwrap().clone();
    let payment_of = |tx: &str| -> Value {
        nodes
            .iter()
            .find(|d| {
                d["transactions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|t| t == tx)
            })
            .map(|d| d["payment"].clone())
            .unwrap_or(Value::Null)
    };
    let (mut pix, mut refused) = (0, 0);
    for (name, body) in files {
        let body: Value = serde_json::from_str(body).unwrap();
        let purchase = &body["data"]["purchase"];
        let Some(tx) = purchase["transaction"].as_str() else {
            continue;
        };
        let payment = payment_of(tx);
        let sent = &purchase["payment"];
        if body["event"] == "PURCHASE_BILLET_PRINTED" && sent["type"] == "PIX" {
            // The deal's payment is that of its latest event carrying one: the same Pix
            // code unless a later event of the sale (an approval) told another payment.
            if payment["pixCode"] == sent["pix_code"] {
                let expiry = chrono::DateTime::from_timestamp_millis(
                    sent["pix_expiration_date"].as_i64().unwrap(),
                )
                .unwrap();
                let shown: chrono::DateTime<chrono::Utc> =
                    payment["pixExpiresAt"].as_str().unwrap().parse().unwrap();
                assert_eq!(shown, expiry, "{name}");
                assert_eq!(payment["method"], "PIX", "{name}");
                pix += 1;
            }
        }
        if body["event"] == "PURCHASE_CANCELED"
            && let Some(reason) = sent["refusal_reason"].as_str()
            && payment["refusalReason"] == reason
        {
            refused += 1;
        }
    }
    assert!(pix > 0, "no deal shows a real Pix code: {nodes:#?}");
    assert!(
        refused > 0,
        "no deal shows a real refusal reason: {nodes:#?}"
    );
}

on_both_backends!(every_real_fixture_is_accepted_and_processed);
