//! Outbound events against a real local receiver: one message per state change (none for
//! a duplicate), Standard Webhooks signatures the reference verifier accepts (both
//! secrets during a rotation), the retry schedule with the same `webhook-id`,
//! `Retry-After`, 410 and five days of failures disabling the endpoint, filters and the
//! contact-data opt-in, resend and recovery, the address guard, and a crash mid-send.

use std::time::Duration;

use sea_orm::{ConnectionTrait, EntityTrait, Statement};
use serde_json::{Value, json};
use tests::{
    Backend, TestApp,
    hotmart::purchase,
    on_both_backends,
    receiver::{Receiver, Reply},
};

const HOTTOK: &str = "hottok-secret-0001";
const WAIT: Duration = Duration::from_secs(20);

const ENDPOINT_FIELDS: &str =
    "id url enabled disabledReason eventTypes groupIds includeContactData secretHint";

async fn create_endpoint(app: &TestApp, input: Value) -> (String, String) {
    let data = app
        .ok(
            &app.admin,
            &format!("mutation($i: WebhookEndpointInput!) {{ createWebhookEndpoint(input: $i) {{ secret endpoint {{ {ENDPOINT_FIELDS} }} }} }}"),
            json!({"i": input}),
        )
        .await;
    let created = &data["createWebhookEndpoint"];
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(
        created["endpoint"]["secretHint"].as_str().unwrap(),
        &secret[secret.len() - 4..]
    );
    (
        created["endpoint"]["id"].as_str().unwrap().to_owned(),
        secret,
    )
}

async fn post(app: &TestApp, url: &str, body: &Value) {
    let (status, _) = app.post_webhook(url, Some(HOTTOK), body.to_string()).await;
    assert_eq!(status, 200);
    app.wait_until_processed().await;
}

/// Whether `secret` verifies the request with the reference Standard Webhooks library.
fn verifies(secret: &str, r: &tests::receiver::Received) -> bool {
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in &r.headers {
        headers.insert(
            reqwest::header::HeaderName::from_bytes(name.as_str().as_bytes()).unwrap(),
            reqwest::header::HeaderValue::from_bytes(value.as_bytes()).unwrap(),
        );
    }
    standardwebhooks::Webhook::new(secret)
        .unwrap()
        .verify(&r.body, &headers)
        .is_ok()
}

async fn messages(app: &TestApp, endpoint: &str) -> Vec<Value> {
    let data = app
        .ok(
            &app.admin,
            "query($id: ID!) { webhookEndpoint(id: $id) { messages(first: 100) { totalCount nodes { id type status payload nextAttemptAt attempts { httpStatus error trigger durationMs } } } } }",
            json!({"id": endpoint}),
        )
        .await;
    data["webhookEndpoint"]["messages"]["nodes"]
        .as_array()
        .unwrap()
        .clone()
}

async fn deal_of(app: &TestApp, email: &str) -> (String, Vec<String>) {
    let data = app
        .ok(
            &app.admin,
            "query($e: String) { contacts(filter: {email: $e}) { nodes { deals { id origin { stages { id } } } } } }",
            json!({"e": email}),
        )
        .await;
    let deal = &data["contacts"]["nodes"][0]["deals"][0];
    let stages = deal["origin"]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    (deal["id"].as_str().unwrap().to_owned(), stages)
}

/// The types received, sorted (messages are sent side by side, in no promised order).
fn types(received: &[tests::receiver::Received]) -> Vec<String> {
    let mut types: Vec<String> = received
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_owned())
        .collect();
    types.sort();
    types
}

/// Waits until nothing is pending for the endpoint.
async fn settled(app: &TestApp, endpoint: &str) -> Vec<Value> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let found = messages(app, endpoint).await;
        if found.iter().all(|m| m["status"] != "PENDING") {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "messages still pending: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn each_change_emits_one_signed_message(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    let (endpoint, secret) =
        create_endpoint(&app, json!({"url": receiver.url, "description": "n8n"})).await;
    let (_, url) = app
        .active_integration(
            &[
                "PURCHASE_BILLET_PRINTED",
                "PURCHASE_APPROVED",
                "PURCHASE_REFUNDED",
            ],
            json!({}),
        )
        .await;
    let t0 = 1_764_000_000_000;
    let billet = purchase("evt-1", "PURCHASE_BILLET_PRINTED", t0, "ana@x.test", "HP1");
    post(&app, &url, &billet).await;
    let got = receiver.wait_for(2, WAIT).await;
    assert_eq!(types(&got), ["contact.created", "deal.created"]);
    // The same delivery again, and a late copy of it: nothing changes, nothing is sent.
    post(&app, &url, &billet).await;
    post(
        &app,
        &url,
        &purchase(
            "evt-1b",
            "PURCHASE_BILLET_PRINTED",
            t0 - 5,
            "ana@x.test",
            "HP1",
        ),
    )
    .await;
    post(
        &app,
        &url,
        &purchase("evt-2", "PURCHASE_APPROVED", t0 + 1000, "ana@x.test", "HP1"),
    )
    .await;
    let got = receiver.wait_for(3, WAIT).await;
    let won = got[2].json();
    assert_eq!(won["type"], "deal.won", "{won}");
    assert_eq!(won["data"]["deal"]["status"], "WON");
    assert_eq!(won["data"]["previous"]["status"], "OPEN");
    assert_eq!(
        won["data"]["cause"],
        json!({"source": "HOTMART", "event": "PURCHASE_APPROVED"})
    );
    assert_eq!(won["data"]["deal"]["value"], "97.00");
    assert_eq!(won["data"]["deal"]["currency"], "BRL");
    assert!(won["data"]["deal"]["group"]["name"].is_string(), "{won}");
    assert_eq!(
        won["data"]["deal"]["contact"],
        json!({"id": won["data"]["deal"]["contact"]["id"]}),
        "no contact data by default"
    );
    assert!(!String::from_utf8_lossy(&got[2].body).contains("ana@x.test"));
    // A seller's move of an open deal: deal.moved, caused by the person.
    post(
        &app,
        &url,
        &purchase("evt-3", "PURCHASE_BILLET_PRINTED", t0, "bea@x.test", "HP2"),
    )
    .await;
    receiver.wait_for(5, WAIT).await;
    let (deal, stages) = deal_of(&app, "bea@x.test").await;
    app.ok(
        &app.admin,
        "mutation($d: ID!, $s: ID!) { moveDeal(dealId: $d, input: {stageId: $s}) { id } }",
        json!({"d": deal, "s": stages[1]}),
    )
    .await;
    let got = receiver.wait_for(6, WAIT).await;
    let moved = got[5].json();
    assert_eq!(moved["type"], "deal.moved");
    assert_eq!(moved["data"]["deal"]["id"], deal.as_str());
    assert_eq!(moved["data"]["deal"]["stage"]["id"], stages[1].as_str());
    assert_eq!(moved["data"]["previous"]["stage"]["id"], stages[0].as_str());
    assert_eq!(moved["data"]["cause"]["source"], "USER");
    assert_eq!(moved["data"]["cause"]["user"]["id"], app.admin_id.as_str());
    // Every request verifies with the reference library; ids are distinct and listed.
    let listed = settled(&app, &endpoint).await;
    assert_eq!(listed.len(), 6, "{listed:?}");
    for r in &got {
        assert!(verifies(&secret, r), "{:?}", r.headers);
        assert!(r.header("webhook-id").starts_with("msg_"));
        assert!(
            listed
                .iter()
                .any(|m| m["id"] == r.header("webhook-id").as_str() && m["status"] == "DELIVERED")
        );
        assert!(r.body.len() < 20_000);
    }
    // The signature covers the exact bytes: one byte changed no longer verifies.
    let mut tampered = got[0].clone();
    let mut bytes = tampered.body.to_vec();
    bytes[10] ^= 1;
    tampered.body = bytes.into();
    assert!(!verifies(&secret, &tampered));
    assert!(!verifies("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &got[0]));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 6, "nothing more was sent");
}

async fn retries_keep_their_id_and_honour_retry_after(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    let (endpoint, _) = create_endpoint(
        &app,
        json!({"url": receiver.url, "eventTypes": ["deal.created"]}),
    )
    .await;
    let (_, url) = app
        .active_integration(&["PURCHASE_APPROVED"], json!({}))
        .await;
    // Schedule in the tests: 300, 600, 900 ms.
    receiver.answer_next(&[
        Reply::Status(500),
        Reply::Status(302),
        Reply::RetryAfter(429, 2),
        Reply::Status(200),
    ]);
    post(
        &app,
        &url,
        &purchase(
            "evt-1",
            "PURCHASE_APPROVED",
            1_764_000_000_000,
            "bia@x.test",
            "HP1",
        ),
    )
    .await;
    let got = receiver.wait_for(4, WAIT).await;
    let id = got[0].header("webhook-id");
    assert!(
        got.iter().all(|r| r.header("webhook-id") == id),
        "the same id on every attempt"
    );
    assert!(
        got.iter().all(|r| r.body == got[0].body),
        "the same body on every attempt"
    );
    let gap = |i: usize| got[i].at - got[i - 1].at;
    assert!(gap(1) >= Duration::from_millis(240), "{:?}", gap(1));
    assert!(gap(2) >= Duration::from_millis(480), "{:?}", gap(2));
    assert!(
        gap(3) >= Duration::from_millis(1_900),
        "Retry-After: 2 was honoured: {:?}",
        gap(3)
    );
    let listed = settled(&app, &endpoint).await;
    let attempts: Vec<Value> = listed[0]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["httpStatus"].clone())
        .collect();
    assert_eq!(attempts, [json!(500), json!(302), json!(429), json!(200)]);
    assert_eq!(listed[0]["status"], "DELIVERED");
    // Out of attempts: FAILED, with every attempt listed.
    receiver.answer_always(Reply::Status(503));
    post(
        &app,
        &url,
        &purchase(
            "evt-2",
            "PURCHASE_APPROVED",
            1_764_000_001_000,
            "caio@x.test",
            "HP2",
        ),
    )
    .await;
    receiver.wait_for(8, WAIT).await;
    let listed = settled(&app, &endpoint).await;
    let failed = listed
        .iter()
        .find(|m| m["status"] == "FAILED")
        .expect("a failed message");
    assert_eq!(
        failed["attempts"].as_array().unwrap().len(),
        4,
        "one attempt and three retries"
    );
    assert!(failed["nextAttemptAt"].is_null());
    // Resend: the same id, one MANUAL attempt.
    receiver.answer_always(Reply::Status(200));
    let resent_at = entity::now_ms() / 1000;
    let resent = app
        .ok(
            &app.admin,
            "mutation($id: ID!) { resendOutboundMessage(id: $id) { id status } }",
            json!({"id": failed["id"]}),
        )
        .await;
    assert_eq!(resent["resendOutboundMessage"]["id"], failed["id"]);
    let got = receiver.wait_for(9, WAIT).await;
    assert_eq!(got[8].header("webhook-id"), failed["id"].as_str().unwrap());
    let stamp: i64 = got[8].header("webhook-timestamp").parse().unwrap();
    assert!(
        stamp >= resent_at,
        "a fresh timestamp: {stamp} < {resent_at}"
    );
    let listed = settled(&app, &endpoint).await;
    let again = listed.iter().find(|m| m["id"] == failed["id"]).unwrap();
    assert_eq!(again["status"], "DELIVERED");
    assert_eq!(
        again["attempts"].as_array().unwrap().last().unwrap()["trigger"],
        "MANUAL"
    );
}

async fn endpoint_state(app: &TestApp, id: &str) -> Value {
    app.ok(
        &app.admin,
        &format!("query($id: ID!) {{ webhookEndpoint(id: $id) {{ {ENDPOINT_FIELDS} }} }}"),
        json!({"id": id}),
    )
    .await["webhookEndpoint"]
        .clone()
}

async fn gone_and_five_days_of_failures_disable(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    let (endpoint, _) = create_endpoint(
        &app,
        json!({"url": receiver.url, "eventTypes": ["deal.created"]}),
    )
    .await;
    let (_, url) = app
        .active_integration(&["PURCHASE_APPROVED"], json!({}))
        .await;
    receiver.answer_next(&[Reply::Status(410)]);
    post(
        &app,
        &url,
        &purchase(
            "evt-1",
            "PURCHASE_APPROVED",
            1_764_000_000_000,
            "d1@x.test",
            "HP1",
        ),
    )
    .await;
    receiver.wait_for(1, WAIT).await;
    let listed = settled(&app, &endpoint).await;
    assert_eq!(listed[0]["status"], "FAILED", "410: no retry");
    let state = endpoint_state(&app, &endpoint).await;
    assert_eq!(state["enabled"], false);
    assert!(
        state["disabledReason"].as_str().unwrap().contains("410"),
        "{state}"
    );
    // Disabled: nothing is written for it.
    post(
        &app,
        &url,
        &purchase(
            "evt-2",
            "PURCHASE_APPROVED",
            1_764_000_001_000,
            "d2@x.test",
            "HP2",
        ),
    )
    .await;
    assert_eq!(messages(&app, &endpoint).await.len(), 1);
    // Enabled again, failing since five days ago (the clock moved): the next failure disables.
    app.ok(
        &app.admin,
        "mutation($id: ID!) { enableWebhookEndpoint(id: $id) { enabled } }",
        json!({"id": endpoint}),
    )
    .await;
    let five_days_ago = entity::now_ms() - 5 * 24 * 3_600_000 - 60_000;
    let sql = format!(
        "UPDATE webhook_endpoints SET failing_since = {five_days_ago} WHERE id = '{endpoint}'"
    );
    app.db
        .conn
        .execute_raw(Statement::from_string(
            app.db.conn.get_database_backend(),
            sql,
        ))
        .await
        .unwrap();
    receiver.answer_always(Reply::Status(500));
    post(
        &app,
        &url,
        &purchase(
            "evt-3",
            "PURCHASE_APPROVED",
            1_764_000_002_000,
            "d3@x.test",
            "HP3",
        ),
    )
    .await;
    receiver.wait_for(2, WAIT).await;
    let listed = settled(&app, &endpoint).await;
    assert!(listed.iter().all(|m| m["status"] == "FAILED"), "{listed:?}");
    let state = endpoint_state(&app, &endpoint).await;
    assert_eq!(state["enabled"], false);
    assert!(
        state["disabledReason"].as_str().unwrap().contains("5 dias"),
        "{state}"
    );
    assert_eq!(receiver.received().len(), 2, "its retries stopped");
    // Recovery after the receiver is fixed: the failed messages go again, same ids.
    receiver.answer_always(Reply::Status(200));
    app.ok(
        &app.admin,
        "mutation($id: ID!) { enableWebhookEndpoint(id: $id) { enabled } }",
        json!({"id": endpoint}),
    )
    .await;
    let since = chrono::DateTime::from_timestamp_millis(entity::now_ms() - 3_600_000).unwrap();
    let requeued = app
        .ok(
            &app.admin,
            "mutation($id: ID!, $s: DateTime!) { recoverWebhookEndpoint(id: $id, since: $s) }",
            json!({"id": endpoint, "s": since}),
        )
        .await;
    assert_eq!(requeued["recoverWebhookEndpoint"], 2);
    let got = receiver.wait_for(4, WAIT).await;
    let ids: Vec<String> = listed
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        got[2..]
            .iter()
            .all(|r| ids.contains(&r.header("webhook-id")))
    );
    assert!(
        settled(&app, &endpoint)
            .await
            .iter()
            .all(|m| m["status"] == "DELIVERED")
    );
}

async fn rotation_signs_with_both_secrets(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    let (endpoint, old) = create_endpoint(&app, json!({"url": receiver.url})).await;
    let rotate = "mutation($id: ID!, $g: Int) { rotateWebhookEndpointSecret(id: $id, graceHours: $g) { secret endpoint { secretHint } } }";
    let data = app
        .ok(&app.admin, rotate, json!({"id": endpoint, "g": 1}))
        .await;
    let new = data["rotateWebhookEndpointSecret"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new, old);
    let test = "mutation($id: ID!) { sendTestWebhook(id: $id) { id type status } }";
    let sent = app.ok(&app.admin, test, json!({"id": endpoint})).await;
    assert_eq!(sent["sendTestWebhook"]["type"], "webhook.test");
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(
        got[0].header("webhook-signature").split(' ').count(),
        2,
        "both secrets sign"
    );
    assert!(verifies(&new, &got[0]) && verifies(&old, &got[0]));
    // No grace: only the new secret signs.
    let data = app
        .ok(&app.admin, rotate, json!({"id": endpoint, "g": 0}))
        .await;
    let newest = data["rotateWebhookEndpointSecret"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    app.ok(&app.admin, test, json!({"id": endpoint})).await;
    let got = receiver.wait_for(2, WAIT).await;
    assert!(verifies(&newest, &got[1]));
    assert!(!verifies(&new, &got[1]) && !verifies(&old, &got[1]));
    // Secrets are never readable again: not in the API, not in the database as written.
    let sql = "SELECT secret FROM webhook_endpoints";
    let rows = app
        .db
        .conn
        .query_all_raw(Statement::from_string(
            app.db.conn.get_database_backend(),
            sql,
        ))
        .await
        .unwrap();
    let stored: String = rows[0].try_get_by_index(0).unwrap();
    assert!(!stored.contains(&newest[6..]), "sealed at rest");
}

async fn filters_and_contact_data(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, url) = app
        .active_integration(&["PURCHASE_APPROVED"], json!({}))
        .await;
    let (_, other_group) = app.integration_with_product(&["PURCHASE_APPROVED"]).await;
    let all = Receiver::start().await;
    let won_only = Receiver::start().await;
    let elsewhere = Receiver::start().await;
    let full = Receiver::start().await;
    create_endpoint(&app, json!({"url": all.url})).await;
    create_endpoint(
        &app,
        json!({"url": won_only.url, "eventTypes": ["deal.won", "deal.lost"]}),
    )
    .await;
    create_endpoint(
        &app,
        json!({"url": elsewhere.url, "groupIds": [other_group]}),
    )
    .await;
    create_endpoint(
        &app,
        json!({"url": full.url, "includeContactData": true, "eventTypes": ["contact.created"]}),
    )
    .await;
    post(
        &app,
        &url,
        &purchase(
            "evt-1",
            "PURCHASE_APPROVED",
            1_764_000_000_000,
            "eva@x.test",
            "HP1",
        ),
    )
    .await;
    all.wait_for(2, WAIT).await;
    let got = full.wait_for(1, WAIT).await;
    let contact = &got[0].json()["data"]["contact"];
    assert_eq!(contact["email"], "eva@x.test", "{contact}");
    assert_eq!(contact["name"], "Ana Souza");
    assert!(!String::from_utf8_lossy(&all.received()[0].body).contains("eva@x.test"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(types(&all.received()), ["contact.created", "deal.created"]);
    assert!(
        won_only.received().is_empty(),
        "an approval is deal.created: not subscribed"
    );
    assert!(elsewhere.received().is_empty(), "another group");
    assert_eq!(full.received().len(), 1);
}

async fn bad_input_is_refused(backend: Backend) {
    let app = TestApp::spawn_without_workers(backend).await;
    let create =
        "mutation($i: WebhookEndpointInput!) { createWebhookEndpoint(input: $i) { secret } }";
    for (url, why) in [
        ("ftp://hooks.invalid/x", "http(s)"),
        ("https://user:pw@hooks.invalid/x", "credentials"),
        ("https://169.254.169.254/latest", "address"),
        ("not a url", "URL"),
    ] {
        let (code, message) = app
            .err(&app.admin, create, json!({"i": {"url": url}}))
            .await;
        assert_eq!(code, "BAD_USER_INPUT", "{url}");
        assert!(message.contains(why), "{url}: {message}");
    }
    let long = format!("https://hooks.invalid/{}", "a".repeat(3000));
    assert_eq!(
        app.err(&app.admin, create, json!({"i": {"url": long}}))
            .await
            .0,
        "BAD_USER_INPUT"
    );
    let (code, message) = app
        .err(
            &app.admin,
            create,
            json!({"i": {"url": "https://hooks.invalid/x", "eventTypes": ["deal.exploded"]}}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(
        message.contains("deal.won") && message.contains("contact.created"),
        "lists the known types: {message}"
    );
    let (code, _) = app
        .err(
            &app.admin,
            create,
            json!({"i": {"url": "https://hooks.invalid/x", "groupIds": ["nope"]}}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    let data = app
        .ok(
            &app.admin,
            create.replace("{ secret }", "{ endpoint { id } }").as_str(),
            json!({"i": {"url": "https://hooks.invalid/x"}}),
        )
        .await;
    let id = data["createWebhookEndpoint"]["endpoint"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Members: FORBIDDEN; another account: NOT_FOUND.
    let (_, member) = app.user("mel@acme.test", "MEMBER").await;
    assert_eq!(
        app.err(
            &member,
            create,
            json!({"i": {"url": "https://hooks.invalid/y"}})
        )
        .await
        .0,
        "FORBIDDEN"
    );
    assert_eq!(
        app.err(&member, "{ webhookEndpoints { id } }", json!({}))
            .await
            .0,
        "FORBIDDEN"
    );
    let other = app.other_account().await;
    for query in [
        "query($id: ID!) { webhookEndpoint(id: $id) { id } }",
        "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }",
        "mutation($id: ID!) { sendTestWebhook(id: $id) { id } }",
        "mutation($id: ID!) { rotateWebhookEndpointSecret(id: $id) { secret } }",
    ] {
        assert_eq!(
            app.err(&other, query, json!({"id": id})).await.0,
            "NOT_FOUND",
            "{query}"
        );
    }
    let listed = app
        .ok(&other, "{ webhookEndpoints { id } }", json!({}))
        .await;
    assert_eq!(listed["webhookEndpoints"], json!([]));
    let (code, _) = app
        .err(&app.admin, "mutation($id: ID!) { rotateWebhookEndpointSecret(id: $id, graceHours: 100000) { secret } }", json!({"id": id}))
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    // The audit log has the endpoint's creation, without its secret.
    let log = app
        .ok(
            &app.admin,
            "{ auditLog(first: 50) { nodes { action details } } }",
            json!({}),
        )
        .await;
    let text = log.to_string();
    assert!(text.contains("webhook_endpoint.created"), "{text}");
    assert!(!text.contains("whsec_"));
}

/// Loopback is refused unless allowed: by address, by a name that resolves there when
/// saved, and at connect time for an endpoint whose name resolved elsewhere when saved.
async fn the_address_guard_holds_at_connect_time(backend: Backend) {
    let mut app = TestApp::spawn_configured(backend, |config| {
        config.workers.outbound.policy = std::sync::Arc::new(jobs::outbound_net::AddressPolicy {
            allow_http: true,
            allowed: Vec::new(),
        });
    })
    .await;
    app.start_workers();
    let receiver = Receiver::start().await;
    let create =
        "mutation($i: WebhookEndpointInput!) { createWebhookEndpoint(input: $i) { secret } }";
    for url in [
        receiver.url.clone(),
        format!("http://localhost:{}/hook", receiver.port),
        format!("http://[::1]:{}/hook", receiver.port),
    ] {
        let (code, message) = app
            .err(&app.admin, create, json!({"i": {"url": url}}))
            .await;
        assert_eq!(code, "BAD_USER_INPUT", "{url}: {message}");
        assert!(message.contains("loopback"), "{message}");
    }
    // Saved when the name pointed elsewhere (a rebinding): the connection is refused.
    let keys = entity::secrets::SecretKeys::new(tests::SECRET_KEY.as_bytes());
    let input = entity::outbound::endpoints::EndpointInput {
        url: format!("http://localhost:{}/hook", receiver.port),
        ..Default::default()
    };
    let saved = entity::outbound::endpoints::create(
        &app.db.conn,
        &keys,
        &app.admin_caller(),
        &input,
        &jobs::standard_webhooks::new_secret(),
    )
    .await
    .unwrap();
    app.ok(
        &app.admin,
        "mutation($id: ID!) { sendTestWebhook(id: $id) { id } }",
        json!({"id": saved.id}),
    )
    .await;
    let listed = settled(&app, &saved.id).await;
    let attempt = &listed[0]["attempts"][0];
    assert!(
        attempt["error"].as_str().unwrap().contains("refused"),
        "{attempt}"
    );
    assert!(attempt["httpStatus"].is_null());
    assert!(receiver.received().is_empty(), "the receiver got nothing");
}

/// The process dies while a message is in flight: its attempt is never recorded, and the
/// next process sends it again with the same id once the claim expires.
async fn a_crash_mid_send_loses_no_message(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    let (endpoint, secret) = create_endpoint(
        &app,
        json!({"url": receiver.url, "eventTypes": ["deal.created"]}),
    )
    .await;
    let (_, url) = app
        .active_integration(&["PURCHASE_APPROVED"], json!({}))
        .await;
    receiver.answer_next(&[Reply::Hang(Duration::from_secs(30))]);
    post(
        &app,
        &url,
        &purchase(
            "evt-1",
            "PURCHASE_APPROVED",
            1_764_000_000_000,
            "f1@x.test",
            "HP1",
        ),
    )
    .await;
    let first = receiver.wait_for(1, WAIT).await;
    app.stop_workers();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pending = messages(&app, &endpoint).await;
    assert_eq!(pending[0]["status"], "PENDING");
    assert!(
        pending[0]["attempts"].as_array().unwrap().is_empty(),
        "the lost attempt left no record"
    );
    app.start_workers();
    let got = receiver.wait_for(2, WAIT).await;
    assert_eq!(got[1].header("webhook-id"), first[0].header("webhook-id"));
    assert!(verifies(&secret, &got[1]));
    let listed = settled(&app, &endpoint).await;
    assert_eq!(listed[0]["status"], "DELIVERED");
    assert_eq!(listed[0]["attempts"].as_array().unwrap().len(), 1);
}

/// A seller's claim, a loss with its reason, a reopening and a win each emit their type
/// once; an erasure emits `contact.erased` and redacts the buyer from messages already
/// written; `/metrics` counts what was sent.
async fn sellers_actions_and_erasure_emit_their_types(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let all = Receiver::start().await;
    let full = Receiver::start().await;
    let (endpoint, _) = create_endpoint(&app, json!({"url": all.url})).await;
    let (full_id, _) =
        create_endpoint(&app, json!({"url": full.url, "includeContactData": true})).await;
    let (_, url) = app
        .active_integration(&["PURCHASE_BILLET_PRINTED"], json!({}))
        .await;
    post(
        &app,
        &url,
        &purchase(
            "evt-1",
            "PURCHASE_BILLET_PRINTED",
            1_764_000_000_000,
            "gil@x.test",
            "HP1",
        ),
    )
    .await;
    all.wait_for(2, WAIT).await;
    let (deal, _) = deal_of(&app, "gil@x.test").await;
    let (seller, sara) = app.user("sara@acme.test", "MEMBER").await;
    let step = |n: usize| all.wait_for(n, WAIT);
    app.ok(
        &sara,
        "mutation($d: ID!) { claimDeal(dealId: $d) { id } }",
        json!({"d": deal}),
    )
    .await;
    let got = step(3).await;
    let claimed = got[2].json();
    assert_eq!(claimed["type"], "deal.owner_changed");
    assert_eq!(claimed["data"]["deal"]["owner"]["id"], seller.as_str());
    assert_eq!(claimed["data"]["deal"]["owner"]["email"], "sara@acme.test");
    assert!(claimed["data"]["previous"]["owner"].is_null());
    assert_eq!(claimed["data"]["cause"]["user"]["id"], seller.as_str());
    let reasons = app
        .ok(
            &app.admin,
            "query($d: ID!) { deal(id: $d) { origin { lostReasons { id name } } } }",
            json!({"d": deal}),
        )
        .await;
    let reason = &reasons["deal"]["origin"]["lostReasons"][0];
    app.ok(
        &sara,
        "mutation($d: ID!, $r: ID) { loseDeal(dealId: $d, input: {lostReasonId: $r}) { id } }",
        json!({"d": deal, "r": reason["id"]}),
    )
    .await;
    let lost = step(4).await[3].json();
    assert_eq!(lost["type"], "deal.lost");
    assert_eq!(lost["data"]["deal"]["lostReason"], reason["name"]);
    app.ok(
        &sara,
        "mutation($d: ID!) { reopenDeal(dealId: $d) { id } }",
        json!({"d": deal}),
    )
    .await;
    let reopened = step(5).await[4].json();
    assert_eq!(reopened["type"], "deal.reopened");
    assert_eq!(reopened["data"]["previous"]["status"], "LOST");
    app.ok(
        &sara,
        "mutation($d: ID!) { winDeal(dealId: $d) { id } }",
        json!({"d": deal}),
    )
    .await;
    let won = step(6).await[5].json();
    assert_eq!(won["type"], "deal.won");
    assert!(
        won["data"]["deal"]["version"].as_i64().unwrap()
            > reopened["data"]["deal"]["version"].as_i64().unwrap()
    );
    // A note changes none of the four: nothing is sent.
    app.ok(
        &sara,
        "mutation($d: ID!) { addDealNote(dealId: $d, text: \"ligou\") { description } }",
        json!({"d": deal}),
    )
    .await;
    // The erasure: contact.erased to both, and no trace of the buyer in the outbox.
    full.wait_for(6, WAIT).await;
    assert!(String::from_utf8_lossy(&full.received()[0].body).contains("gil@x.test"));
    let contact = won["data"]["deal"]["contact"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.ok(&app.admin, "mutation($c: ID!) { eraseContact(contactId: $c, reason: \"pedido do titular\") { erasedAt } }", json!({"c": contact})).await;
    let got = all.wait_for(7, WAIT).await;
    let erased = got[6].json();
    assert_eq!(erased["type"], "contact.erased");
    assert_eq!(erased["data"]["contact"], json!({"id": contact}));
    full.wait_for(7, WAIT).await;
    for id in [&endpoint, &full_id] {
        let listed = settled(&app, id).await;
        assert_eq!(listed.len(), 7, "{listed:?}");
        assert!(
            listed
                .iter()
                .all(|m| !m["payload"].as_str().unwrap().contains("gil@x.test")),
            "redacted: {listed:?}"
        );
    }
    let text = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let sent = text
        .lines()
        .find(|l| l.starts_with("checkout_crm_outbound_attempts_total{outcome=\"sent\"}"))
        .unwrap_or_else(|| panic!("no sent counter in:\n{text}"));
    assert!(sent.ends_with(" 14"), "{sent}");
    assert!(
        text.contains("checkout_crm_outbound_oldest_pending_seconds 0"),
        "{text}"
    );
}

/// Messages are kept 30 days and attempts 90, then the sweeper's prune removes them.
async fn old_messages_and_attempts_are_pruned(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    let (endpoint, _) = create_endpoint(&app, json!({"url": receiver.url})).await;
    for _ in 0..3 {
        app.ok(
            &app.admin,
            "mutation($id: ID!) { sendTestWebhook(id: $id) { id } }",
            json!({"id": endpoint}),
        )
        .await;
    }
    receiver.wait_for(3, WAIT).await;
    let listed = settled(&app, &endpoint).await;
    let day = 24 * 3_600_000i64;
    let now = entity::now_ms();
    let ids: Vec<&str> = listed.iter().map(|m| m["id"].as_str().unwrap()).collect();
    let db = &app.db.conn;
    let run = |sql: String| async move {
        db.execute_raw(Statement::from_string(db.get_database_backend(), sql))
            .await
            .unwrap();
    };
    // One message 31 days old (its attempt 31 days old too); one 29 days old with an
    // attempt of 91 days (kept, the attempt goes); one new.
    run(format!(
        "UPDATE outbound_messages SET created_at = {} WHERE id = '{}'",
        now - 31 * day,
        ids[0]
    ))
    .await;
    run(format!(
        "UPDATE outbound_attempts SET at = {} WHERE message_id = '{}'",
        now - 31 * day,
        ids[0]
    ))
    .await;
    run(format!(
        "UPDATE outbound_messages SET created_at = {} WHERE id = '{}'",
        now - 29 * day,
        ids[1]
    ))
    .await;
    run(format!(
        "UPDATE outbound_attempts SET at = {} WHERE message_id = '{}'",
        now - 91 * day,
        ids[1]
    ))
    .await;
    let removed = entity::outbound::delivery::prune(db, now).await.unwrap();
    assert_eq!(removed, 2, "one message and one attempt");
    let left = messages(&app, &endpoint).await;
    let left_ids: Vec<&str> = left.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(left_ids.len(), 2);
    assert!(!left_ids.contains(&ids[0]));
    let attempts = |id: &str| {
        left.iter().find(|m| m["id"] == id).unwrap()["attempts"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(attempts(ids[1]), 0, "the 91-day-old attempt went");
    assert_eq!(attempts(ids[2]), 1);
}

/// `/metrics`' oldest pending message, beside thousands of delivered ones (statistics
/// taken): found, and read from the partial index of pending messages, not by walking the
/// delivered history.
async fn the_oldest_pending_message_is_read_by_its_index(backend: Backend) {
    let app = TestApp::spawn_without_workers(backend).await;
    let receiver = Receiver::start().await;
    let (endpoint, _) = create_endpoint(&app, json!({"url": receiver.url})).await;
    let db = &app.db.conn;
    let found = entity::tables::webhook_endpoint::Entity::find_by_id(endpoint.clone())
        .one(db)
        .await
        .unwrap()
        .unwrap();
    let rows: Vec<_> = (0..3_000)
        .map(|i| {
            let body = entity::outbound::body("deal.moved", i, json!({"deal": {"id": i}}));
            entity::outbound::messages::new_row(&found, "deal.moved", body, i)
        })
        .collect();
    entity::outbound::messages::insert(db, rows).await.unwrap();
    let run = |sql: &'static str| async move {
        db.execute_unprepared(sql).await.unwrap();
    };
    // All delivered but the newest, made last.
    run("UPDATE outbound_messages SET status = 'DELIVERED', created_at = 1000").await;
    run(
        "UPDATE outbound_messages SET status = 'PENDING', created_at = 2000 \
         WHERE id = (SELECT max(id) FROM outbound_messages)",
    )
    .await;
    run("ANALYZE").await;
    let (_, oldest) = entity::outbound::delivery::stats(db).await.unwrap();
    assert_eq!(
        oldest,
        Some(2000),
        "the pending message, not a delivered one"
    );
    let query = sea_orm::QueryTrait::build(
        &entity::outbound::delivery::oldest_pending(),
        db.get_database_backend(),
    );
    let plan = tests::query_plan(db, query).await;
    assert!(
        plan.contains("ix_outbound_messages_pending"),
        "read from the index of pending messages:\n{plan}"
    );
}

/// The endpoint's last success is written at most once a second, but a success always
/// stops the failure clock: an endpoint that failed right after a success (under a second
/// ago) and then succeeds again is not left failing (it would be disabled after 5 days).
async fn a_success_stops_the_failure_clock_even_within_a_second(backend: Backend) {
    use entity::{outbound::delivery, tables::webhook_endpoint};
    let app = TestApp::spawn_without_workers(backend).await;
    let receiver = Receiver::start().await;
    let (endpoint, _) = create_endpoint(&app, json!({"url": receiver.url})).await;
    let db = &app.db.conn;
    let found = webhook_endpoint::Entity::find_by_id(endpoint.clone())
        .one(db)
        .await
        .unwrap()
        .unwrap();
    let now = entity::now_ms();
    let row = entity::outbound::messages::new_row(&found, "deal.moved", "{}".into(), now);
    entity::outbound::messages::insert(db, vec![row])
        .await
        .unwrap();
    let message = entity::tables::outbound_message::Entity::find()
        .one(db)
        .await
        .unwrap()
        .unwrap();
    db.execute_unprepared(&format!(
        "UPDATE webhook_endpoints SET last_success_at = {}, failing_since = {} WHERE id = '{endpoint}'",
        now - 300,
        now - 200
    ))
    .await
    .unwrap();
    let ok = delivery::AttemptResult {
        message,
        at: now,
        http_status: Some(200),
        error: None,
        duration_ms: 3,
        response: None,
        retry_after_ms: None,
    };
    let disabled = delivery::record(db, &[ok], &delivery::RetryPolicy::default(), now)
        .await
        .unwrap();
    assert!(disabled.is_empty());
    let after = webhook_endpoint::Entity::find_by_id(endpoint)
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.failing_since, None, "the success stopped the clock");
    assert_eq!(after.last_success_at, Some(now));
}

on_both_backends!(
    a_success_stops_the_failure_clock_even_within_a_second,
    the_oldest_pending_message_is_read_by_its_index,
    each_change_emits_one_signed_message,
    retries_keep_their_id_and_honour_retry_after,
    gone_and_five_days_of_failures_disable,
    rotation_signs_with_both_secrets,
    filters_and_contact_data,
    bad_input_is_refused,
    the_address_guard_holds_at_connect_time,
    a_crash_mid_send_loses_no_message,
    sellers_actions_and_erasure_emit_their_types,
    old_messages_and_attempts_are_pruned,
);
