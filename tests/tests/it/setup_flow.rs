//! The Hotmart set-up flow (`docs/webhooks.md`), end to end over HTTP.

use serde_json::json;
use tests::{Backend, TestApp, on_both_backends};

const INTEGRATION_FIELDS: &str = "id name label status events keepDealOwner tagContactsWithProductName
    mergeProducts webhookUrl hasCredentials lastEventAt lastTestEventAt
    products { id hotmartProductId name label hottokHint variations { code } refreshedAt refreshError }
    group { id name visibility { everyone users { email } } origins { id name event entryStatus dealCount assignees { email } } }
    deliveries { totalCount nodes { id } pageInfo { hasNextPage endCursor } }";

async fn wizard_creates_an_active_integration_with_group_origins_and_webhook_url(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (seller, _) = app.user("seller@acme.test", "MEMBER").await;
    let (viewer, _) = app.user("viewer@acme.test", "MEMBER").await;

    // 1. Events: info events are selectable but get no origin.
    let created = app
        .ok(
            &app.admin,
            &format!("mutation($i: CreateIntegrationInput!) {{ createHotmartIntegration(input: $i) {{ {INTEGRATION_FIELDS} }} }}"),
            json!({"i": {"name": "Curso X", "events": [
                "PURCHASE_OUT_OF_SHOPPING_CART", "PURCHASE_BILLET_PRINTED", "PURCHASE_APPROVED",
                "PURCHASE_REFUNDED", "CLUB_FIRST_ACCESS"]}}),
        )
        .await["createHotmartIntegration"]
        .clone();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["status"], "DRAFT");
    assert_eq!(created["hasCredentials"], false);
    assert_eq!(created["products"], json!([]));
    assert_eq!(created["group"]["name"], "Curso X");
    assert_eq!(created["group"]["visibility"]["everyone"], true);
    let origins: Vec<(String, String, String)> = created["group"]["origins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["event"].as_str().unwrap().to_owned(),
                o["name"].as_str().unwrap().to_owned(),
                o["entryStatus"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        (
            "PURCHASE_OUT_OF_SHOPPING_CART",
            "Carrinho abandonado",
            "OPEN",
        ),
        ("PURCHASE_BILLET_PRINTED", "Boleto/Pix pendente", "OPEN"),
        ("PURCHASE_APPROVED", "Compra aprovada", "WON"),
        ("PURCHASE_REFUNDED", "Reembolsado", "LOST"),
    ];
    assert_eq!(
        origins,
        expected
            .iter()
            .map(|(e, n, s)| (e.to_string(), n.to_string(), s.to_string()))
            .collect::<Vec<_>>()
    );
    assert!(
        created["group"]["origins"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["dealCount"] == 0)
    );

    // 2. Product: the hottok is write-only.
    let product = app
        .ok(
            &app.admin,
            "mutation($id: ID!, $i: AddProductInput!) { addHotmartProduct(integrationId: $id, input: $i) { id hotmartProductId name label hottokHint } }",
            json!({"id": id, "i": {"hotmartProductId": "1234567", "hottok": "sEcReT-hottok-XYZ9", "name": "Curso X", "label": "Alunos"}}),
        )
        .await["addHotmartProduct"]
        .clone();
    assert_eq!(product["hotmartProductId"], "1234567");
    assert_eq!(product["hottokHint"], "XYZ9");
    assert_eq!(product["label"], "Alunos");
    assert!(
        !product.to_string().contains("sEcReT"),
        "hottok leaked: {product}"
    );

    // 3. Settings and visibility.
    let updated = app
        .ok(
            &app.admin,
            "mutation($id: ID!, $i: UpdateIntegrationInput!) { updateIntegration(id: $id, input: $i) { label keepDealOwner tagContactsWithProductName mergeProducts events group { origins { event } } } }",
            json!({"id": id, "i": {"label": "Hotmart", "keepDealOwner": true, "tagContactsWithProductName": true, "mergeProducts": true,
                   "events": ["PURCHASE_OUT_OF_SHOPPING_CART", "PURCHASE_BILLET_PRINTED", "PURCHASE_APPROVED", "PURCHASE_REFUNDED", "PURCHASE_CANCELED"]}}),
        )
        .await["updateIntegration"]
        .clone();
    assert_eq!(updated["label"], "Hotmart");
    assert_eq!(updated["keepDealOwner"], true);
    assert_eq!(updated["tagContactsWithProductName"], true);
    assert_eq!(updated["mergeProducts"], true);
    let events: Vec<&str> = updated["group"]["origins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["event"].as_str().unwrap())
        .collect();
    assert!(
        events.contains(&"PURCHASE_CANCELED"),
        "new origin added: {events:?}"
    );
    // Labels named in the set-up exist as account labels.
    let labels = app.ok(&app.admin, "{ labels { name } }", json!({})).await;
    let names: Vec<&str> = labels["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Alunos", "Hotmart"]);

    let group_id = created["group"]["id"].as_str().unwrap();
    let group = app
        .ok(
            &app.admin,
            "mutation($g: ID!, $i: GroupVisibilityInput!) { setGroupVisibility(groupId: $g, input: $i) { id visibility { everyone users { id } } } }",
            json!({"g": group_id, "i": {"everyone": false, "userIds": [viewer]}}),
        )
        .await["setGroupVisibility"]
        .clone();
    assert_eq!(
        group["visibility"],
        json!({"everyone": false, "users": [{"id": viewer}]})
    );

    let approved_origin = created["group"]["origins"][2]["id"].as_str().unwrap();
    let origin = app
        .ok(
            &app.admin,
            "mutation($o: ID!, $u: [ID!]!) { setOriginAssignees(originId: $o, userIds: $u) { assignees { id } } }",
            json!({"o": approved_origin, "u": [seller, viewer]}),
        )
        .await;
    assert_eq!(
        origin["setOriginAssignees"]["assignees"],
        json!([{"id": seller}, {"id": viewer}])
    );
    let renamed = app
        .ok(
            &app.admin,
            "mutation($o: ID!) { updateOrigin(originId: $o, input: {name: \"Vendas\", entryStatus: OPEN}) { name entryStatus } }",
            json!({"o": approved_origin}),
        )
        .await;
    assert_eq!(
        renamed["updateOrigin"],
        json!({"name": "Vendas", "entryStatus": "OPEN"})
    );

    // 4. Webhook.
    let active = app
        .ok(
            &app.admin,
            "mutation($id: ID!) { activateIntegration(id: $id) { status webhookUrl } }",
            json!({"id": id}),
        )
        .await["activateIntegration"]
        .clone();
    assert_eq!(active["status"], "ACTIVE");
    let url = active["webhookUrl"].as_str().unwrap();
    let token = url
        .strip_prefix("https://crm.example.com/webhooks/hotmart/")
        .unwrap_or_else(|| panic!("webhook URL {url}"));
    assert!(
        token.len() >= 22,
        "token carries at least 128 bits: {token}"
    );
    assert!(
        token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    );

    let paused = app
        .ok(
            &app.admin,
            "mutation($id: ID!) { pauseIntegration(id: $id) { status } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(paused["pauseIntegration"]["status"], "PAUSED");
    let rotated = app
        .ok(
            &app.admin,
            "mutation($id: ID!) { rotateWebhookToken(id: $id) { webhookUrl } }",
            json!({"id": id}),
        )
        .await;
    assert_ne!(
        rotated["rotateWebhookToken"]["webhookUrl"],
        active["webhookUrl"]
    );

    // The whole integration reads back through the queries.
    let listed = app
        .ok(
            &app.admin,
            "{ integrations { id status products { hotmartProductId } } groups { id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        listed["integrations"],
        json!([{"id": id, "status": "PAUSED", "products": [{"hotmartProductId": "1234567"}]}])
    );
    assert_eq!(listed["groups"], json!([{"id": group_id}]));
    let one = app
        .ok(
            &app.admin,
            &format!("query($id: ID!) {{ integration(id: $id) {{ {INTEGRATION_FIELDS} }} }}"),
            json!({"id": id}),
        )
        .await;
    assert_eq!(one["integration"]["deliveries"]["totalCount"], 0);
}

async fn product_updates_and_removal(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (id, _) = app.integration_with_product(&["PURCHASE_APPROVED"]).await;
    let product_id = app
        .ok(
            &app.admin,
            "query($id: ID!) { integration(id: $id) { products { id } } }",
            json!({"id": id}),
        )
        .await["integration"]["products"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let updated = app
        .ok(
            &app.admin,
            "mutation($p: ID!) { updateProduct(productId: $p, input: {name: \"Novo nome\", hottok: \"another-hottok-ABCD\"}) { name hottokHint } }",
            json!({"p": product_id}),
        )
        .await;
    assert_eq!(
        updated["updateProduct"],
        json!({"name": "Novo nome", "hottokHint": "ABCD"})
    );
    let removed = app
        .ok(
            &app.admin,
            "mutation($p: ID!) { removeProduct(productId: $p) }",
            json!({"p": product_id}),
        )
        .await;
    assert_eq!(removed["removeProduct"], true);
    let (code, message) = app
        .err(
            &app.admin,
            "mutation($id: ID!) { activateIntegration(id: $id) { status } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("products"), "{message}");
}

async fn deselecting_an_event_removes_its_empty_origin_and_delete_removes_everything(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let (id, group) = app
        .integration_with_product(&["PURCHASE_APPROVED", "PURCHASE_CANCELED"])
        .await;
    let updated = app
        .ok(
            &app.admin,
            "mutation($id: ID!) { updateIntegration(id: $id, input: {events: [PURCHASE_APPROVED]}) { events group { origins { event } } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        updated["updateIntegration"]["events"],
        json!(["PURCHASE_APPROVED"])
    );
    assert_eq!(
        updated["updateIntegration"]["group"]["origins"],
        json!([{"event": "PURCHASE_APPROVED"}])
    );

    let deleted = app
        .ok(
            &app.admin,
            "mutation($id: ID!) { deleteIntegration(id: $id) }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(deleted["deleteIntegration"], true);
    let (code, _) = app
        .err(
            &app.admin,
            "query($id: ID!) { integration(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
    let groups = app.ok(&app.admin, "{ groups { id } }", json!({})).await;
    assert!(!groups.to_string().contains(&group));
}

async fn labels_are_created_listed_and_deleted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app
        .ok(&app.admin, "mutation { createLabel(input: {name: \"VIP\", color: \"#FF0000\"}) { id name color } }", json!({}))
        .await["createLabel"]
        .clone();
    assert_eq!(created["color"], "#ff0000");
    let (code, message) = app
        .err(
            &app.admin,
            "mutation { createLabel(input: {name: \"vip\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.starts_with("name:"), "{message}");
    let deleted = app
        .ok(
            &app.admin,
            "mutation($id: ID!) { deleteLabel(id: $id) }",
            json!({"id": created["id"]}),
        )
        .await;
    assert_eq!(deleted["deleteLabel"], true);
    assert_eq!(
        app.ok(&app.admin, "{ labels { id } }", json!({})).await["labels"],
        json!([])
    );
}

async fn users_are_created_and_listed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (member, token) = app.user("Maria@Acme.test", "MEMBER").await;
    let me = app.ok(&token, "{ me { id email role } }", json!({})).await;
    assert_eq!(
        me["me"],
        json!({"id": member, "email": "maria@acme.test", "role": "MEMBER"})
    );
    let users = app
        .ok(&app.admin, "{ users { email role } }", json!({}))
        .await;
    assert_eq!(
        users["users"],
        json!([{"email": "admin@acme.test", "role": "ADMIN"}, {"email": "maria@acme.test", "role": "MEMBER"}])
    );
}

async fn healthz_reports_the_database(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    app.db.clone().close().await;
    let response = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
}

on_both_backends!(
    wizard_creates_an_active_integration_with_group_origins_and_webhook_url,
    product_updates_and_removal,
    deselecting_an_event_removes_its_empty_origin_and_delete_removes_everything,
    labels_are_created_listed_and_deleted,
    users_are_created_and_listed,
    healthz_reports_the_database,
);
