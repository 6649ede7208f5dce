//! Every checkout: Kiwify's and Eduzz's deliveries, verified by their signatures over the
//! raw bytes, land in the same engine as Hotmart's (fixtures in `tests/fixtures/kiwify`
//! and `tests/fixtures/eduzz`, written from the documented shapes).

use serde_json::{Value, json};
use tests::{Backend, TestApp, on_both_backends, workspace_root};

const SECRET: &str = "kiwify-token-w9i3pvutvxe";

/// The fixtures of one platform's folder, as `(file name, body)`.
fn fixtures_of(platform: &str) -> Vec<(String, String)> {
    let dir = workspace_root().join("tests/fixtures").join(platform);
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|f| f.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// The product ids a platform's fixtures name.
fn product_ids(platform: &str) -> Vec<String> {
    let mut ids: Vec<String> = fixtures_of(platform)
        .iter()
        .flat_map(|(_, body)| {
            let v: Value = serde_json::from_str(body).unwrap();
            let order = if v["order"].is_object() {
                &v["order"]
            } else {
                &v
            };
            let mut found: Vec<Value> = vec![
                order["Product"]["product_id"].clone(),
                order["product_id"].clone(),
                v["data"]["product"]["id"].clone(),
            ];
            for item in v["data"]["items"].as_array().into_iter().flatten() {
                found.push(item["productId"].clone());
            }
            for id in v["data"]["productId"].as_array().into_iter().flatten() {
                found.push(id.clone());
            }
            found
                .into_iter()
                .filter_map(|id| match id {
                    Value::String(s) => Some(s),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect::<Vec<_>>()
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// An active integration of `platform` for every event it sends, with the fixtures'
/// products and the webhook secret set: `(integration id, group id, webhook URL)`.
async fn signed_integration(app: &TestApp, platform: &str) -> (String, String, String) {
    let events: Vec<&str> = entity::sale::CheckoutEvent::ALL
        .iter()
        .filter(|e| {
            entity::platform::Platform::parse(platform)
                .unwrap()
                .sends(**e)
        })
        .map(|e| e.as_str())
        .collect();
    let created = app
        .ok(
            &app.admin,
            "mutation($i: CreateCheckoutIntegrationInput!) { createIntegration(input: $i) { id platform hasWebhookSecret group { id } } }",
            json!({"i": {"platform": platform, "name": format!("Loja {platform}"), "events": events}}),
        )
        .await;
    let id = created["createIntegration"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let group = created["createIntegration"]["group"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(created["createIntegration"]["platform"], platform);
    assert_eq!(created["createIntegration"]["hasWebhookSecret"], false);
    for product in product_ids(&platform.to_lowercase()) {
        app.ok(
            &app.admin,
            "mutation($id: ID!, $p: String!) { addProduct(integrationId: $id, input: {platformProductId: $p}) { platformProductId } }",
            json!({"id": id, "p": product}),
        )
        .await;
    }
    let (code, message) = app
        .err(
            &app.admin,
            "mutation($id: ID!) { activateIntegration(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT", "{message}");
    assert!(message.contains("setWebhookSecret"), "{message}");
    let set = app
        .ok(
            &app.admin,
            "mutation($id: ID!, $s: String!) { setWebhookSecret(integrationId: $id, secret: $s) { hasWebhookSecret } }",
            json!({"id": id, "s": SECRET}),
        )
        .await;
    assert_eq!(set["setWebhookSecret"]["hasWebhookSecret"], true);
    let url = app
        .ok(
            &app.admin,
            "mutation($id: ID!) { activateIntegration(id: $id) { webhookUrl } }",
            json!({"id": id}),
        )
        .await["activateIntegration"]["webhookUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        url.contains(&format!("/webhooks/{}/", platform.to_lowercase())),
        "{url}"
    );
    (id, group, url)
}

/// Posts raw bytes signed as the platform signs them (`signature` overrides).
async fn post_signed(
    app: &TestApp,
    url: &str,
    body: &str,
    signature: Option<&str>,
) -> (u16, Value) {
    let path = url.trim_start_matches("https://crm.example.com");
    let mut target = format!("{}{path}", app.base);
    let mut request;
    if path.starts_with("/webhooks/kiwify/") {
        let sig = signature
            .map(str::to_owned)
            .unwrap_or_else(|| entity::kiwify::webhook::sign(SECRET.as_bytes(), body.as_bytes()));
        if !sig.is_empty() {
            target.push_str(&format!("?signature={sig}"));
        }
        request = app.http.post(target);
    } else {
        let sig = signature
            .map(str::to_owned)
            .unwrap_or_else(|| entity::eduzz::webhook::sign(SECRET.as_bytes(), body.as_bytes()));
        request = app.http.post(target);
        if !sig.is_empty() {
            request = request.header("x-signature", sig);
        }
    }
    request = request
        .header("content-type", "application/json")
        .body(body.to_owned());
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn deliveries(app: &TestApp, id: &str) -> Vec<Value> {
    app.ok(
        &app.admin,
        "query($id: ID!) { integration(id: $id) { deliveries(first: 100) { nodes { event status reason } } } }",
        json!({"id": id}),
    )
    .await["integration"]["deliveries"]["nodes"]
        .as_array()
        .unwrap()
        .clone()
}

async fn deals_of(app: &TestApp, email: &str) -> Vec<Value> {
    app.ok(
        &app.admin,
        "query($s: String!) { deals(filter: {search: $s}, first: 20) { nodes { status value origin { name } product { platformProductId } timeline { event } payment { checkoutUrl refusalReason } } } }",
        json!({"s": email}),
    )
    .await["deals"]["nodes"]
        .as_array()
        .unwrap()
        .clone()
}

async fn every_kiwify_and_eduzz_fixture_is_accepted_and_processed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for platform in ["KIWIFY", "EDUZZ"] {
        let (id, _, url) = signed_integration(&app, platform).await;
        let files = fixtures_of(&platform.to_lowercase());
        assert!(files.len() >= 10, "{platform}: {} fixtures", files.len());
        for (name, body) in &files {
            let (status, reply) = post_signed(&app, &url, body, None).await;
            assert_eq!(status, 200, "{name}: {reply}");
            let expected = if name == "ping.json" {
                "test"
            } else {
                "accepted"
            };
            assert_eq!(reply["status"], expected, "{name}: {reply}");
        }
        app.wait_until_processed().await;
        let rows = deliveries(&app, &id).await;
        assert_eq!(rows.len(), files.len());
        for row in &rows {
            let status = row["status"].as_str().unwrap();
            assert!(
                status == "PROCESSED" || (status == "TEST" && row["event"] == "ping"),
                "{platform}: {row}"
            );
            assert!(
                row["reason"].is_null() || status == "TEST",
                "{platform}: {row}"
            );
        }
    }
    // What the deliveries carry shows on the deals.
    let cart = deals_of(&app, "luana.martins@exemplo.com.br").await;
    assert_eq!(cart.len(), 1, "{cart:#?}");
    assert_eq!(cart[0]["origin"]["name"], "Carrinho abandonado");
    assert!(
        cart[0]["payment"]["checkoutUrl"]
            .as_str()
            .unwrap()
            .starts_with("https://pay.kiwify.com.br/"),
        "{cart:#?}"
    );
    let refused = deals_of(&app, "carla.souza@exemplo.com.br").await;
    assert_eq!(
        refused[0]["payment"]["refusalReason"],
        "Cartão sem limite disponível"
    );
    // The Pix then its approval (one Kiwify order) is one won deal of R$ 497,00.
    let pix = deals_of(&app, "joao.pereira@exemplo.com.br").await;
    assert_eq!(pix.len(), 1, "{pix:#?}");
    assert_eq!(
        (pix[0]["status"].as_str(), pix[0]["value"].as_f64()),
        (Some("WON"), Some(497.0))
    );
    // Eduzz: opened → waiting → paid → refunded ends lost; two products are two deals.
    let refunded = deals_of(&app, "ana.ferreira@exemplo.com.br").await;
    assert_eq!(refunded.len(), 1, "{refunded:#?}");
    assert_eq!(refunded[0]["status"], "LOST");
    let events: Vec<&str> = refunded[0]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert!(events.contains(&"myeduzz.invoice_paid"), "{events:?}");
    let two = deals_of(&app, "sofia.carvalho@exemplo.com.br").await;
    assert_eq!(two.len(), 2, "{two:#?}");
    let mut values: Vec<f64> = two.iter().map(|d| d["value"].as_f64().unwrap()).collect();
    values.sort_by(f64::total_cmp);
    assert_eq!(values, vec![97.9, 497.0]);
}

async fn signatures_are_checked_on_the_raw_bytes_before_parsing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for platform in ["KIWIFY", "EDUZZ"] {
        let (id, _, url) = signed_integration(&app, platform).await;
        let body = &fixtures_of(&platform.to_lowercase())[0].1;
        // Wrong, missing, and over re-serialised JSON: 401, counted, nothing stored.
        let reserialised =
            serde_json::to_string(&serde_json::from_str::<Value>(body).unwrap()).unwrap();
        let sig_of_reserialised = if platform == "KIWIFY" {
            entity::kiwify::webhook::sign(SECRET.as_bytes(), reserialised.as_bytes())
        } else {
            entity::eduzz::webhook::sign(SECRET.as_bytes(), reserialised.as_bytes())
        };
        for (body, signature) in [
            (body.as_str(), Some("0".repeat(40))),
            (body.as_str(), Some(String::new())),
            (body.as_str(), Some(sig_of_reserialised.clone())),
            ("{not json", Some("ab".repeat(20))),
        ] {
            let (status, reply) = post_signed(&app, &url, body, signature.as_deref()).await;
            assert_eq!(status, 401, "{platform} {signature:?}: {reply}");
        }
        assert!(deliveries(&app, &id).await.is_empty());
        let health = app
            .ok(
                &app.admin,
                "query($id: ID!) { integration(id: $id) { health { refusedLastHour } } }",
                json!({"id": id}),
            )
            .await;
        assert_eq!(health["integration"]["health"]["refusedLastHour"], 4);
        // A signed body that is not JSON, or of another platform: 400, naming the platform.
        let (status, reply) = post_signed(&app, &url, "{not json", None).await;
        assert_eq!(status, 400, "{reply}");
        let hotmart =
            tests::hotmart::purchase("E1", "PURCHASE_APPROVED", 1, "a@x.com", "HP1").to_string();
        let (status, reply) = post_signed(&app, &url, &hotmart, None).await;
        assert_eq!(status, 400, "{reply}");
        let title = if platform == "KIWIFY" {
            "Kiwify"
        } else {
            "Eduzz"
        };
        let error = reply["error"].as_str().unwrap();
        assert!(
            error.contains(&format!("not a {title} delivery")),
            "{error}"
        );
        // The URL of one platform is unknown under another's path.
        let elsewhere = url.replace(&format!("/{}/", platform.to_lowercase()), "/hotmart/");
        let (status, _) = app.post_webhook(&elsewhere, Some("x"), body.clone()).await;
        assert_eq!(status, 404);
    }
}

async fn duplicates_unknown_events_and_late_events(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (id, _, url) = signed_integration(&app, "KIWIFY").await;
    let files = fixtures_of("kiwify");
    let find = |name: &str| files.iter().find(|(n, _)| n == name).unwrap().1.clone();
    // Approval before the Pix that preceded it: still one won deal.
    let (_, first) = post_signed(&app, &url, &find("order-approved.json"), None).await;
    assert_eq!(first["status"], "accepted");
    let (_, again) = post_signed(&app, &url, &find("order-approved.json"), None).await;
    assert_eq!(again["status"], "duplicate", "{again}");
    post_signed(&app, &url, &find("pix-created.json"), None).await;
    let mut unknown: Value = serde_json::from_str(&find("order-approved.json")).unwrap();
    unknown["webhook_event_type"] = json!("order_teleported");
    let (status, reply) = post_signed(&app, &url, &unknown.to_string(), None).await;
    assert_eq!(
        (status, reply["status"].as_str()),
        (200, Some("ignored")),
        "{reply}"
    );
    assert!(
        reply["reason"]
            .as_str()
            .unwrap()
            .contains("order_teleported")
    );
    app.wait_until_processed().await;
    let deals = deals_of(&app, "joao.pereira@exemplo.com.br").await;
    assert_eq!(deals.len(), 1, "{deals:#?}");
    assert_eq!(deals[0]["status"], "WON");
    let statuses: Vec<String> = deliveries(&app, &id)
        .await
        .iter()
        .map(|d| d["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| *s == "PROCESSED").count(),
        2,
        "{statuses:?}"
    );
    // Eduzz, reversed: refunded, paid, opened arrive in that order; the deal ends lost.
    let (_, _, eduzz) = signed_integration(&app, "EDUZZ").await;
    let files = fixtures_of("eduzz");
    for name in [
        "invoice-refunded.json",
        "invoice-paid.json",
        "invoice-opened.json",
    ] {
        let body = &files.iter().find(|(n, _)| n == name).unwrap().1;
        let (_, reply) = post_signed(&app, &eduzz, body, None).await;
        assert_eq!(reply["status"], "accepted", "{name}: {reply}");
    }
    app.wait_until_processed().await;
    let deals = deals_of(&app, "ana.ferreira@exemplo.com.br").await;
    assert_eq!(deals.len(), 1, "{deals:#?}");
    assert_eq!(deals[0]["status"], "LOST");
}

/// A new secret or a new product of an active integration takes effect from the next
/// delivery, in this process and others (the route cache follows the change at once).
async fn a_changed_secret_and_a_new_product_apply_to_the_next_delivery(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (id, _, url) = signed_integration(&app, "KIWIFY").await;
    let files = fixtures_of("kiwify");
    let body = &files
        .iter()
        .find(|(n, _)| n == "order-rejected.json")
        .unwrap()
        .1;
    let (_, reply) = post_signed(&app, &url, body, None).await;
    assert_eq!(reply["status"], "accepted", "{reply}");
    app.ok(
        &app.admin,
        "mutation($id: ID!, $s: String!) { setWebhookSecret(integrationId: $id, secret: $s) { id } }",
        json!({"id": id, "s": "a-new-kiwify-token"}),
    )
    .await;
    let (status, _) = post_signed(&app, &url, body, None).await;
    assert_eq!(status, 401, "the old token signs no more");
    let signature = entity::kiwify::webhook::sign(b"a-new-kiwify-token", body.as_bytes());
    let (status, reply) = post_signed(&app, &url, body, Some(&signature)).await;
    assert_eq!(
        (status, reply["status"].as_str()),
        (200, Some("duplicate")),
        "{reply}"
    );
    // A product added now routes the next delivery.
    let mut other: Value = serde_json::from_str(body).unwrap();
    other["Product"]["product_id"] = json!("c0ffee00-0000-4000-8000-000000000001");
    other["order_id"] = json!("c0ffee00-0000-4000-8000-0000000000aa");
    let other = other.to_string();
    let signature = entity::kiwify::webhook::sign(b"a-new-kiwify-token", other.as_bytes());
    let (_, reply) = post_signed(&app, &url, &other, Some(&signature)).await;
    assert_eq!(reply["status"], "ignored", "{reply}");
    app.ok(
        &app.admin,
        "mutation($id: ID!) { addProduct(integrationId: $id, input: {platformProductId: \"c0ffee00-0000-4000-8000-000000000001\"}) { id } }",
        json!({"id": id}),
    )
    .await;
    let mut again: Value = serde_json::from_str(&other).unwrap();
    again["updated_at"] = json!("2026-11-22 11:09");
    let again = again.to_string();
    let signature = entity::kiwify::webhook::sign(b"a-new-kiwify-token", again.as_bytes());
    let (_, reply) = post_signed(&app, &url, &again, Some(&signature)).await;
    assert_eq!(reply["status"], "accepted", "{reply}");
}

/// A Kiwify integration joins a Hotmart integration's group; its product is declared the
/// same as the Hotmart one: a cart abandoned on Kiwify and paid on Hotmart is one deal.
async fn one_group_unites_a_kiwify_and_a_hotmart_product(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (hotmart_id, hotmart_url) = app
        .active_integration(
            &["PURCHASE_OUT_OF_SHOPPING_CART", "PURCHASE_APPROVED"],
            json!({}),
        )
        .await;
    let group = app
        .ok(
            &app.admin,
            "query($id: ID!) { integration(id: $id) { group { id } products { id } } }",
            json!({"id": hotmart_id}),
        )
        .await;
    let group_id = group["integration"]["group"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let hotmart_product = group["integration"]["products"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let created = app
        .ok(
            &app.admin,
            "mutation($i: CreateCheckoutIntegrationInput!) { createIntegration(input: $i) { id group { id origins { name } integrations { platform } } } }",
            json!({"i": {"platform": "KIWIFY", "name": "Loja Kiwify", "events": ["CART_ABANDONED", "PURCHASE_APPROVED"], "groupId": group_id}}),
        )
        .await;
    let kiwify_id = created["createIntegration"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        created["createIntegration"]["group"]["id"],
        group_id.as_str()
    );
    let platforms = &created["createIntegration"]["group"]["integrations"];
    assert_eq!(
        platforms,
        &json!([{"platform": "HOTMART"}, {"platform": "KIWIFY"}])
    );
    let origins = created["createIntegration"]["group"]["origins"]
        .as_array()
        .unwrap();
    assert_eq!(
        origins.len(),
        2,
        "one origin per neutral event: {origins:?}"
    );
    let product = app
        .ok(
            &app.admin,
            "mutation($id: ID!) { addProduct(integrationId: $id, input: {platformProductId: \"5f0c7b2e-8a4d-4c1e-9b3a-2d6f1e8c7a90\"}) { id } }",
            json!({"id": kiwify_id}),
        )
        .await["addProduct"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let linked = app
        .ok(
            &app.admin,
            "mutation($id: ID!, $to: ID!) { updateProduct(productId: $id, input: {sameAs: $to}) { sameAs { id platformProductId } } }",
            json!({"id": product, "to": hotmart_product}),
        )
        .await;
    assert_eq!(
        linked["updateProduct"]["sameAs"]["platformProductId"],
        "1234567"
    );
    // Linking to a product that is itself linked is refused.
    let (code, _) = app
        .err(
            &app.admin,
            "mutation($id: ID!, $to: ID!) { updateProduct(productId: $id, input: {sameAs: $to}) { id } }",
            json!({"id": hotmart_product, "to": product}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    app.ok(
        &app.admin,
        "mutation($id: ID!, $s: String!) { setWebhookSecret(integrationId: $id, secret: $s) { id } }",
        json!({"id": kiwify_id, "s": SECRET}),
    )
    .await;
    let kiwify_url = app
        .ok(
            &app.admin,
            "mutation($id: ID!) { activateIntegration(id: $id) { webhookUrl } }",
            json!({"id": kiwify_id}),
        )
        .await["activateIntegration"]["webhookUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let cart =
        std::fs::read_to_string(workspace_root().join("tests/fixtures/kiwify/abandoned-cart.json"))
            .unwrap();
    let (_, reply) = post_signed(&app, &kiwify_url, &cart, None).await;
    assert_eq!(reply["status"], "accepted", "{reply}");
    app.wait_until_processed().await;
    let email = "luana.martins@exemplo.com.br";
    let approved = tests::hotmart::purchase(
        "HP-E-1",
        "PURCHASE_APPROVED",
        1_795_485_600_000,
        email,
        "HP0000001",
    );
    let (status, reply) = app
        .post_webhook(
            &hotmart_url,
            Some("hottok-secret-0001"),
            approved.to_string(),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    app.wait_until_processed().await;
    let deals = deals_of(&app, email).await;
    assert_eq!(deals.len(), 1, "one deal across both checkouts: {deals:#?}");
    assert_eq!(deals[0]["status"], "WON");
    assert_eq!(deals[0]["origin"]["name"], "Compra aprovada");
    // The Hotmart integration owns the group: it cannot go while the Kiwify one is in it.
    let (code, _) = app
        .err(
            &app.admin,
            "mutation($id: ID!) { deleteIntegration(id: $id) }",
            json!({"id": hotmart_id}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
}

/// Bad input on the set-up of other checkouts: events the platform never sends, secrets
/// with spaces, hottoks where there are none, and members.
async fn checkout_set_up_refuses_what_cannot_work(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let create =
        "mutation($i: CreateCheckoutIntegrationInput!) { createIntegration(input: $i) { id } }";
    let (code, message) = app
        .err(
            &app.admin,
            create,
            json!({"i": {"platform": "KIWIFY", "name": "K", "events": ["PURCHASE_COMPLETE"]}}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(
        message.contains("Kiwify does not send PURCHASE_COMPLETE"),
        "{message}"
    );
    let (code, _) = app
        .err(
            &app.admin,
            create,
            json!({"i": {"platform": "EDUZZ", "name": "E", "events": []}}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    let (code, _) = app
        .err(
            &app.admin,
            create,
            json!({"i": {"platform": "EDUZZ", "name": "E", "events": ["PURCHASE_APPROVED"], "groupId": "nope"}}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    let id = app
        .ok(
            &app.admin,
            create,
            json!({"i": {"platform": "EDUZZ", "name": "E", "events": ["PURCHASE_APPROVED"]}}),
        )
        .await["createIntegration"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let set = "mutation($id: ID!, $s: String!) { setWebhookSecret(integrationId: $id, secret: $s) { id } }";
    for bad in ["", "with space", &"x".repeat(600), "tab\there"] {
        let (code, _) = app.err(&app.admin, set, json!({"id": id, "s": bad})).await;
        assert_eq!(code, "BAD_USER_INPUT", "{bad:?}");
    }
    let (code, _) = app
        .err(
            &app.admin,
            "mutation($id: ID!) { addProduct(integrationId: $id, input: {platformProductId: \"1\", hottok: \"hottok-1234\"}) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    let (_, member) = app.user("seller@example.com", "MEMBER").await;
    let (code, _) = app.err(&member, set, json!({"id": id, "s": "abc"})).await;
    assert_eq!(code, "FORBIDDEN");
    // The secret is write-only: no field returns it.
    let sdl = checkout_crm::graphql::sdl();
    assert!(
        !sdl.contains("webhookSecret:"),
        "a field returns the secret"
    );
}

/// A Kiwify import against a local fake of its API: windows of at most 90 days, paging
/// by number, a token that expires, 429s; the sales land once, and a second import of the
/// same range changes nothing.
async fn a_kiwify_import_pages_through_windows_and_lands_each_sale_once(backend: Backend) {
    use tests::fake_kiwify::{ACCOUNT_ID, CLIENT_ID, CLIENT_SECRET, FakeKiwify, sale};
    let fake = FakeKiwify::start().await;
    let mut app =
        TestApp::spawn_configured(backend, |c| c.kiwify_api_url = fake.base.clone()).await;
    app.start_workers();
    let (id, _, _) = signed_integration(&app, "KIWIFY").await;
    let product = "5f0c7b2e-8a4d-4c1e-9b3a-2d6f1e8c7a90";
    let start = chrono::DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z").unwrap();
    {
        let mut sales = fake.state.sales.lock().unwrap();
        // 460 paid sales over 115 days (four a day): several windows, several pages each.
        for i in 0..460i64 {
            let at = (start + chrono::Duration::hours(6 * i)).to_rfc3339();
            sales.push(sale(
                &format!("order-{i:04}"),
                "paid",
                &at,
                &format!("buyer{i}@exemplo.com.br"),
                product,
            ));
        }
        let at = (start + chrono::Duration::days(3)).to_rfc3339();
        sales.push(sale(
            "order-other",
            "paid",
            &at,
            "other@exemplo.com.br",
            "unregistered",
        ));
        sales.push(sale(
            "order-processing",
            "processing",
            &at,
            "p@exemplo.com.br",
            product,
        ));
    }
    fake.state
        .rate_limited
        .store(2, std::sync::atomic::Ordering::SeqCst);
    fake.state
        .token_uses
        .store(3, std::sync::atomic::Ordering::SeqCst);
    let (code, message) = app
        .err(
            &app.admin,
            "mutation($id: ID!) { setCheckoutCredentials(integrationId: $id, input: {clientId: \"a\", clientSecret: \"b\"}) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT", "{message}");
    assert!(message.contains("account id"), "{message}");
    app.ok(
        &app.admin,
        "mutation($id: ID!, $i: PlatformCredentialsInput!) { setCheckoutCredentials(integrationId: $id, input: $i) { hasCredentials } }",
        json!({"id": id, "i": {"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET, "accountId": ACCOUNT_ID}}),
    )
    .await;
    let import = "mutation($id: ID!, $i: StartCheckoutImportInput!) { startImport(integrationId: $id, input: $i) { id checkoutEvents } }";
    let (code, _) = app
        .err(&app.admin, import, json!({"id": id, "i": {"from": "2026-02-25T00:00:00Z", "to": "2026-07-01T00:00:00Z", "events": ["CART_ABANDONED"]}}))
        .await;
    assert_eq!(
        code, "BAD_USER_INPUT",
        "a cart cannot be imported from Kiwify"
    );
    let input = json!({"from": "2026-02-25T00:00:00Z", "to": "2026-07-01T00:00:00Z", "events": ["PURCHASE_APPROVED"]});
    let run = app
        .ok(&app.admin, import, json!({"id": id, "i": input}))
        .await;
    assert_eq!(
        run["startImport"]["checkoutEvents"],
        json!(["PURCHASE_APPROVED"])
    );
    let first = finished_run(&app, run["startImport"]["id"].as_str().unwrap()).await;
    assert_eq!(first["status"], "SUCCEEDED", "{first}");
    assert_eq!(
        (first["salesSeen"].as_i64(), first["dealsCreated"].as_i64()),
        (Some(462), Some(460)),
        "{first}"
    );
    assert_eq!(first["skipped"], 2, "{first}");
    let deals = app
        .ok(
            &app.admin,
            "{ deals(filter: {status: WON}) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(deals["deals"]["totalCount"], 460);
    // Every query asked for at most 90 days, and windows were paged.
    let queries = fake.state.queries.lock().unwrap().clone();
    for (from, to, _) in &queries {
        let days = (chrono::NaiveDate::parse_from_str(to, "%Y-%m-%d").unwrap()
            - chrono::NaiveDate::parse_from_str(from, "%Y-%m-%d").unwrap())
        .num_days();
        assert!(days <= 90, "{from}..{to}");
    }
    assert!(queries.iter().any(|(_, _, page)| *page > 1), "{queries:?}");
    assert_eq!(
        fake.state
            .too_long
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    assert!(
        fake.state
            .tokens_issued
            .load(std::sync::atomic::Ordering::SeqCst)
            >= 2,
        "the expired token was renewed"
    );
    // Again: nothing new.
    let run = app
        .ok(&app.admin, import, json!({"id": id, "i": input}))
        .await;
    let second = finished_run(&app, run["startImport"]["id"].as_str().unwrap()).await;
    assert_eq!(
        (second["status"].as_str(), second["dealsCreated"].as_i64()),
        (Some("SUCCEEDED"), Some(0)),
        "{second}"
    );
    let deals = app
        .ok(&app.admin, "{ deals { totalCount } }", json!({}))
        .await;
    assert_eq!(deals["deals"]["totalCount"], 460);
}

/// Kiwify windows take turns between accounts too: one account's two long imports do not
/// keep another account's short one waiting until they end.
async fn kiwify_imports_of_two_accounts_take_turns(backend: Backend) {
    use std::sync::atomic::Ordering;
    /// Our sales, all inside the imported range.
    const OURS: usize = 1500;
    use tests::fake_kiwify::{ACCOUNT_ID, CLIENT_ID, CLIENT_SECRET, FakeKiwify, sale};
    let fake = FakeKiwify::start().await;
    let mut app =
        TestApp::spawn_configured(backend, |c| c.kiwify_api_url = fake.base.clone()).await;
    app.start_workers();
    let ours_product = "5f0c7b2e-8a4d-4c1e-9b3a-2d6f1e8c7a90";
    let theirs_product = "rival-product-0001";
    let march = chrono::DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z").unwrap();
    let may = chrono::DateTime::parse_from_rfc3339("2026-05-10T12:00:00Z").unwrap();
    {
        let mut sales = fake.state.sales.lock().unwrap();
        for i in 0..OURS as i64 {
            let at = (march + chrono::Duration::minutes(15 * i)).to_rfc3339();
            let email = format!("a{i}@exemplo.com.br");
            sales.push(sale(
                &format!("ours-{i:04}"),
                "paid",
                &at,
                &email,
                ours_product,
            ));
        }
        for i in 0..5i64 {
            let at = (may + chrono::Duration::hours(i)).to_rfc3339();
            let email = format!("b{i}@exemplo.com.br");
            sales.push(sale(
                &format!("theirs-{i}"),
                "paid",
                &at,
                &email,
                theirs_product,
            ));
        }
    }
    fake.state.latency_ms.store(300, Ordering::SeqCst);
    let credentials =
        json!({"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET, "accountId": ACCOUNT_ID});
    let set_credentials = "mutation($id: ID!, $i: PlatformCredentialsInput!) { setCheckoutCredentials(integrationId: $id, input: $i) { hasCredentials } }";
    let import = "mutation($id: ID!, $i: StartCheckoutImportInput!) { startImport(integrationId: $id, input: $i) { id } }";
    let (ours, _, _) = signed_integration(&app, "KIWIFY").await;
    app.ok(
        &app.admin,
        set_credentials,
        json!({"id": ours, "i": credentials}),
    )
    .await;
    let march_range = json!({"from": "2026-03-01T00:00:00Z", "to": "2026-03-20T00:00:00Z", "events": ["PURCHASE_APPROVED"]});
    let mut our_runs = Vec::new();
    for _ in 0..2 {
        let run = app
            .ok(&app.admin, import, json!({"id": ours, "i": march_range}))
            .await;
        our_runs.push(run["startImport"]["id"].as_str().unwrap().to_owned());
    }
    // Another account, with its own Kiwify integration and product.
    let rival = app.other_account().await;
    let created = app
        .ok(
            &rival,
            "mutation($i: CreateCheckoutIntegrationInput!) { createIntegration(input: $i) { id } }",
            json!({"i": {"platform": "KIWIFY", "name": "Rival", "events": ["PURCHASE_APPROVED"]}}),
        )
        .await;
    let theirs = created["createIntegration"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.ok(
        &rival,
        "mutation($id: ID!, $p: String!) { addProduct(integrationId: $id, input: {platformProductId: $p}) { id } }",
        json!({"id": theirs, "p": theirs_product}),
    )
    .await;
    app.ok(
        &rival,
        set_credentials,
        json!({"id": theirs, "i": credentials}),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let may_range = json!({"from": "2026-05-10T00:00:00Z", "to": "2026-05-11T00:00:00Z", "events": ["PURCHASE_APPROVED"]});
    let their_run = app
        .ok(&rival, import, json!({"id": theirs, "i": may_range}))
        .await["startImport"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let theirs_done = app
        .finished_import(&rival, &their_run, std::time::Duration::from_secs(60))
        .await;
    assert_eq!(theirs_done["status"], "SUCCEEDED", "{theirs_done}");
    assert_eq!(theirs_done["dealsCreated"], 5, "{theirs_done}");
    for run in &our_runs {
        let now = app
            .ok(
                &app.admin,
                "query($id: ID!) { importRun(id: $id) { status } }",
                json!({"id": run}),
            )
            .await;
        assert_ne!(
            now["importRun"]["status"], "SUCCEEDED",
            "the other account waited for a whole run: {now}"
        );
    }
    for run in &our_runs {
        let done = finished_run(&app, run).await;
        assert_eq!(done["status"], "SUCCEEDED", "{done}");
    }
    let deals = app
        .ok(
            &app.admin,
            "{ deals(filter: {status: WON}) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(deals["deals"]["totalCount"].as_u64(), Some(OURS as u64));
}

/// Waits for an import run to end (panics after 60 s).
async fn finished_run(app: &TestApp, run: &str) -> Value {
    app.finished_import(&app.admin, run, std::time::Duration::from_secs(60))
        .await
}

on_both_backends!(
    a_changed_secret_and_a_new_product_apply_to_the_next_delivery,
    a_kiwify_import_pages_through_windows_and_lands_each_sale_once,
    kiwify_imports_of_two_accounts_take_turns,
    every_kiwify_and_eduzz_fixture_is_accepted_and_processed,
    signatures_are_checked_on_the_raw_bytes_before_parsing,
    duplicates_unknown_events_and_late_events,
    one_group_unites_a_kiwify_and_a_hotmart_product,
    checkout_set_up_refuses_what_cannot_work,
);
