//! Tenant isolation and roles (`docs/webhooks.md`, "Who sees what"): another account's ids are `NOT_FOUND` for
//! every query and mutation; members get `FORBIDDEN` for management operations and see
//! only the groups visible to them.

use serde_json::{Value, json};
use tests::{Backend, TestApp, on_both_backends};

/// Ids of everything one account set up.
struct Fixture {
    integration: String,
    group: String,
    origin: String,
    product: String,
    label: String,
    user: String,
}

async fn fixture(app: &TestApp) -> Fixture {
    let (integration, group) = app.integration_with_product(&["PURCHASE_APPROVED"]).await;
    let data = app
        .ok(
            &app.admin,
            "query($id: ID!) { integration(id: $id) { products { id } group { origins { id } } } }",
            json!({"id": integration}),
        )
        .await;
    let label = app
        .ok(
            &app.admin,
            "mutation { createLabel(input: {name: \"VIP\"}) { id } }",
            json!({}),
        )
        .await["createLabel"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (user, _) = app.user("seller@acme.test", "MEMBER").await;
    Fixture {
        product: data["integration"]["products"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned(),
        origin: data["integration"]["group"]["origins"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned(),
        integration,
        group,
        label,
        user,
    }
}

/// Every operation of the set-up API that names an id, with variables pointing at `f`.
fn operations_on(f: &Fixture) -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "integration",
            "query($id: ID!) { integration(id: $id) { id } }",
            json!({"id": f.integration}),
        ),
        (
            "addHotmartProduct",
            "mutation($id: ID!) { addHotmartProduct(integrationId: $id, input: {hotmartProductId: \"999\", hottok: \"hottok-secret-0002\"}) { id } }",
            json!({"id": f.integration}),
        ),
        (
            "updateProduct",
            "mutation($id: ID!) { updateProduct(productId: $id, input: {name: \"x\"}) { id } }",
            json!({"id": f.product}),
        ),
        (
            "removeProduct",
            "mutation($id: ID!) { removeProduct(productId: $id) }",
            json!({"id": f.product}),
        ),
        (
            "updateIntegration",
            "mutation($id: ID!) { updateIntegration(id: $id, input: {name: \"x\"}) { id } }",
            json!({"id": f.integration}),
        ),
        (
            "setGroupVisibility",
            "mutation($id: ID!) { setGroupVisibility(groupId: $id, input: {everyone: false}) { id } }",
            json!({"id": f.group}),
        ),
        (
            "activateIntegration",
            "mutation($id: ID!) { activateIntegration(id: $id) { id } }",
            json!({"id": f.integration}),
        ),
        (
            "pauseIntegration",
            "mutation($id: ID!) { pauseIntegration(id: $id) { id } }",
            json!({"id": f.integration}),
        ),
        (
            "rotateWebhookToken",
            "mutation($id: ID!) { rotateWebhookToken(id: $id) { id } }",
            json!({"id": f.integration}),
        ),
        (
            "deleteIntegration",
            "mutation($id: ID!) { deleteIntegration(id: $id) }",
            json!({"id": f.integration}),
        ),
        (
            "updateOrigin",
            "mutation($id: ID!) { updateOrigin(originId: $id, input: {name: \"x\"}) { id } }",
            json!({"id": f.origin}),
        ),
        (
            "setOriginAssignees",
            "mutation($id: ID!) { setOriginAssignees(originId: $id, userIds: []) { id } }",
            json!({"id": f.origin}),
        ),
        (
            "deleteLabel",
            "mutation($id: ID!) { deleteLabel(id: $id) }",
            json!({"id": f.label}),
        ),
    ]
}

async fn another_accounts_ids_are_not_found_for_every_operation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let f = fixture(&app).await;
    let rival = app.other_account().await;
    for (name, query, variables) in operations_on(&f) {
        let (code, message) = app.err(&rival, query, variables).await;
        assert_eq!(code, "NOT_FOUND", "{name}: {message}");
    }
    // Ids of users of another account are unknown input, never a way in.
    let rival_integration = {
        let data = app
            .ok(
                &rival,
                "mutation { createHotmartIntegration(input: {name: \"R\", events: [PURCHASE_APPROVED]}) { group { id origins { id } } } }",
                json!({}),
            )
            .await;
        data["createHotmartIntegration"]["group"].clone()
    };
    let (code, message) = app
        .err(
            &rival,
            "mutation($g: ID!, $u: [ID!]) { setGroupVisibility(groupId: $g, input: {everyone: false, userIds: $u}) { id } }",
            json!({"g": rival_integration["id"], "u": [f.user]}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.starts_with("userIds:"), "{message}");
    let (code, _) = app
        .err(
            &rival,
            "mutation($o: ID!, $u: [ID!]!) { setOriginAssignees(originId: $o, userIds: $u) { id } }",
            json!({"o": rival_integration["origins"][0]["id"], "u": [f.user]}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");

    // Lists show only the caller's own rows.
    let lists = app
        .ok(
            &rival,
            "{ users { email } labels { id } integrations { id } groups { id } }",
            json!({}),
        )
        .await;
    let text = lists.to_string();
    for id in [&f.integration, &f.group, &f.label, &f.user] {
        assert!(!text.contains(id.as_str()), "{id} leaked into {text}");
    }
    assert_eq!(lists["users"], json!([{"email": "admin@rival.test"}]));

    // And nothing of the first account changed.
    let still = app
        .ok(
            &app.admin,
            "query($id: ID!) { integration(id: $id) { name products { name } } }",
            json!({"id": f.integration}),
        )
        .await;
    assert_eq!(
        still["integration"],
        json!({"name": "Curso X", "products": [{"name": null}]})
    );
}

async fn members_are_forbidden_to_manage(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let f = fixture(&app).await;
    let (_, member) = app.user("member@acme.test", "MEMBER").await;
    let mut operations = operations_on(&f);
    operations.push(("integrations", "{ integrations { id } }", json!({})));
    operations.push((
        "createHotmartIntegration",
        "mutation { createHotmartIntegration(input: {name: \"M\", events: [PURCHASE_APPROVED]}) { id } }",
        json!({}),
    ));
    operations.push((
        "createUser",
        "mutation { createUser(input: {name: \"x\", email: \"x@acme.test\", role: ADMIN}) { id } }",
        json!({}),
    ));
    operations.push((
        "createLabel",
        "mutation { createLabel(input: {name: \"M\"}) { id } }",
        json!({}),
    ));
    for (name, query, variables) in operations {
        let (code, message) = app.err(&member, query, variables).await;
        assert_eq!(code, "FORBIDDEN", "{name}: {message}");
    }
    // What members may read.
    let data = app
        .ok(
            &member,
            "{ me { role } users { email } labels { name } }",
            json!({}),
        )
        .await;
    assert_eq!(data["me"]["role"], "MEMBER");
    assert_eq!(data["labels"], json!([{"name": "VIP"}]));
}

async fn members_see_only_groups_visible_to_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let f = fixture(&app).await;
    let (viewer_id, viewer) = app.user("viewer@acme.test", "MEMBER").await;
    let (_, outsider) = app.user("outsider@acme.test", "MEMBER").await;
    let groups = "{ groups { id name origins { name } } }";
    // Visible to everyone by default.
    assert_eq!(
        app.ok(&outsider, groups, json!({})).await["groups"][0]["id"],
        f.group.as_str()
    );
    app.ok(
        &app.admin,
        "mutation($g: ID!, $u: [ID!]) { setGroupVisibility(groupId: $g, input: {everyone: false, userIds: $u}) { id } }",
        json!({"g": f.group, "u": [viewer_id]}),
    )
    .await;
    assert_eq!(
        app.ok(&outsider, groups, json!({})).await["groups"],
        json!([])
    );
    let seen = app.ok(&viewer, groups, json!({})).await;
    assert_eq!(seen["groups"][0]["id"], f.group.as_str());
    assert_eq!(
        seen["groups"][0]["origins"],
        json!([{"name": "Compra aprovada"}])
    );
    // Admins see every group.
    assert_eq!(
        app.ok(&app.admin, groups, json!({})).await["groups"][0]["id"],
        f.group.as_str()
    );
}

on_both_backends!(
    another_accounts_ids_are_not_found_for_every_operation,
    members_are_forbidden_to_manage,
    members_see_only_groups_visible_to_them,
);
