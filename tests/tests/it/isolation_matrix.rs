//! Generated from the live schema: every query and mutation that takes an id is called with
//! another account's ids (`NOT_FOUND`), and every management operation is called by a member
//! (`FORBIDDEN`). A new operation is covered without editing this file; one whose arguments
//! the generator cannot build fails the test until it can.

use std::collections::BTreeMap;

use async_graphql::parser::{
    parse_schema,
    types::{BaseType, TypeKind, TypeSystemDefinition},
};
use serde_json::{Value, json};
use tests::{
    Backend, TestApp,
    fake_hotmart::{CLIENT_ID, CLIENT_SECRET},
    hotmart::purchase,
    on_both_backends,
};

/// One id of every kind an operation can name, all in one account.
struct Ids(BTreeMap<&'static str, String>);

async fn victim_ids(app: &TestApp, token: &str) -> Ids {
    let (integration, url) = {
        let data = app
            .ok(token, "mutation { createHotmartIntegration(input: {name: \"V\", events: [PURCHASE_APPROVED]}) { id group { id origins { id } } } }", json!({}))
            .await["createHotmartIntegration"]
            .clone();
        let id = data["id"].as_str().unwrap().to_owned();
        app.ok(token, "mutation($id: ID!) { addHotmartProduct(integrationId: $id, input: {hotmartProductId: \"1234567\", hottok: \"hottok-secret-0001\"}) { id } }", json!({"id": id})).await;
        app.ok(token, "mutation($id: ID!, $c: String!, $s: String!) { setHotmartCredentials(integrationId: $id, input: {clientId: $c, clientSecret: $s}) { id } }", json!({"id": id, "c": CLIENT_ID, "s": CLIENT_SECRET})).await;
        let url = app
            .ok(
                token,
                "mutation($id: ID!) { activateIntegration(id: $id) { webhookUrl } }",
                json!({"id": id}),
            )
            .await["activateIntegration"]["webhookUrl"]
            .as_str()
            .unwrap()
            .to_owned();
        (id, url)
    };
    let (_, reply) = app
        .post_webhook(
            &url,
            Some("hottok-secret-0001"),
            purchase(
                "v-1",
                "PURCHASE_APPROVED",
                1_745_952_631_331,
                "victim@x.test",
                "HPV",
            )
            .to_string(),
        )
        .await;
    let delivery = reply["deliveryId"].as_str().unwrap().to_owned();
    app.wait_until_processed().await;
    let data = app
        .ok(token, "query($id: ID!) { integration(id: $id) { products { id } group { id origins { id stages { id } lostReasons { id } } } } deals { nodes { id contact { id } } } users { id } }", json!({"id": integration}))
        .await;
    let label = app
        .ok(
            token,
            "mutation { createLabel(input: {name: \"Victim\"}) { id } }",
            json!({}),
        )
        .await["createLabel"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let run = app
        .ok(token, "mutation($id: ID!) { startHotmartImport(integrationId: $id, input: {from: \"2025-01-01T00:00:00Z\", to: \"2025-01-02T00:00:00Z\", events: [PURCHASE_APPROVED]}) { id } }", json!({"id": integration}))
        .await["startHotmartImport"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let s = |v: &Value| v.as_str().unwrap().to_owned();
    let origin = &data["integration"]["group"]["origins"][0];
    let activity = app
        .ok(token, "mutation($d: ID!) { scheduleActivity(dealId: $d, input: {kind: CALL, title: \"Ligar\", dueAt: \"2030-01-01T12:00:00Z\"}) { id } }", json!({"d": data["deals"]["nodes"][0]["id"]}))
        .await["scheduleActivity"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let export = app
        .ok(token, "mutation { exportDeals { id } }", json!({}))
        .await["exportDeals"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A reserved name that never resolves: nothing is sent anywhere.
    let endpoint = app
        .ok(token, "mutation { createWebhookEndpoint(input: {url: \"https://hooks.invalid/x\"}) { endpoint { id } } }", json!({}))
        .await["createWebhookEndpoint"]["endpoint"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let message = app
        .ok(
            token,
            "mutation($id: ID!) { sendTestWebhook(id: $id) { id } }",
            json!({"id": endpoint}),
        )
        .await["sendTestWebhook"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    Ids(BTreeMap::from([
        ("endpoint", endpoint),
        ("message", message),
        ("export", export),
        ("stage", s(&origin["stages"][0]["id"])),
        ("lost_reason", s(&origin["lostReasons"][0]["id"])),
        ("activity", activity),
        ("integration", integration),
        ("product", s(&data["integration"]["products"][0]["id"])),
        ("group", s(&data["integration"]["group"]["id"])),
        (
            "origin",
            s(&data["integration"]["group"]["origins"][0]["id"]),
        ),
        ("deal", s(&data["deals"]["nodes"][0]["id"])),
        ("contact", s(&data["deals"]["nodes"][0]["contact"]["id"])),
        ("user", s(&data["users"][0]["id"])),
        ("label", label),
        ("delivery", delivery),
        ("run", run),
    ]))
}

/// Which kind of id an argument names.
fn kind_of(field: &str, arg: &str) -> Option<&'static str> {
    Some(match arg {
        "integrationId" => "integration",
        "productId" => "product",
        "groupId" => "group",
        "originId" => "origin",
        "dealId" | "dealIds" => "deal",
        "stageId" | "moveDealsTo" => "stage",
        "contactId" => "contact",
        "labelId" => "label",
        "userId" | "userIds" => "user",
        "id" => match field {
            "integration"
            | "updateIntegration"
            | "activateIntegration"
            | "pauseIntegration"
            | "rotateWebhookToken"
            | "deleteIntegration" => "integration",
            "deal" => "deal",
            "contact" => "contact",
            "importRun" | "cancelImport" => "run",
            "replayDelivery" => "delivery",
            "deleteLabel" => "label",
            "deleteLostReason" => "lost_reason",
            "completeActivity" | "cancelActivity" => "activity",
            "export" => "export",
            "webhookEndpoint"
            | "updateWebhookEndpoint"
            | "deleteWebhookEndpoint"
            | "enableWebhookEndpoint"
            | "disableWebhookEndpoint"
            | "rotateWebhookEndpointSecret"
            | "sendTestWebhook"
            | "recoverWebhookEndpoint" => "endpoint",
            "resendOutboundMessage" | "outboundMessage" => "message",
            _ => return None,
        },
        _ => return None,
    })
}

/// A valid value for a non-id argument, by its type.
fn value_for(ty: &str) -> Option<Value> {
    Some(match ty {
        "CreateUserInput!" => json!({"name": "X", "email": "new-user@x.test", "role": "MEMBER"}),
        "CreateIntegrationInput!" => json!({"name": "X", "events": ["PURCHASE_APPROVED"]}),
        "AddProductInput!" => {
            json!({"hotmartProductId": "7777777", "hottok": "hottok-secret-0009"})
        }
        "UpdateProductInput!" => json!({"name": "X"}),
        "CreateCheckoutIntegrationInput!" => {
            json!({"platform": "KIWIFY", "name": "X", "events": ["PURCHASE_APPROVED"]})
        }
        "ProductInput!" => json!({"platformProductId": "7777778"}),
        "PlatformCredentialsInput!" => json!({"clientId": "a", "clientSecret": "b"}),
        "StartCheckoutImportInput!" => {
            json!({"from": "2025-01-01T00:00:00Z", "to": "2025-01-02T00:00:00Z", "events": ["PURCHASE_APPROVED"]})
        }
        "UpdateIntegrationInput!" => json!({"name": "X"}),
        "GroupVisibilityInput!" => json!({"everyone": true}),
        "Role!" => json!("MEMBER"),
        "UpdateOriginInput!" => json!({"name": "X"}),
        "CreateLabelInput!" => json!({"name": "Another"}),
        "CredentialsInput!" => json!({"clientId": "a", "clientSecret": "b"}),
        "RefreshProductsInput" => json!({}),
        "StartImportInput!" => {
            json!({"from": "2025-01-01T00:00:00Z", "to": "2025-01-02T00:00:00Z", "events": ["PURCHASE_APPROVED"]})
        }
        "DealFilter" | "ContactFilter" | "ActivityFilter" | "AuditFilter" => json!({}),
        "CreateOriginInput!" => json!({"name": "Prospecção"}),
        "StageInput!" => json!({"name": "Outra etapa"}),
        "MoveDealInput!" => json!({"stageId": "x"}),
        "LoseDealInput!" => json!({}),
        "ScheduleActivityInput!" => {
            json!({"kind": "CALL", "title": "Ligar", "dueAt": "2030-01-01T12:00:00Z"})
        }
        "DateTime!" => json!("2025-01-01T00:00:00Z"),
        "DateTime" => Value::Null,
        "WebhookEndpointInput!" => json!({"url": "https://hooks.invalid/y"}),
        "ReconciliationInput!" => json!({"enabled": false}),
        // simulateDelivery's body; sign-in's e-mail and passwords.
        "String!" => json!("{}"),
        "Int" => json!(10),
        "String" => Value::Null,
        "DeliveryStatus" => Value::Null,
        _ => return None,
    })
}

struct Operation {
    root: &'static str,
    field: String,
    /// `(argument, type, value)`.
    args: Vec<(String, String, Value)>,
    names_an_id: bool,
    returns_object: bool,
}

fn operations(ids: &Ids) -> Vec<Operation> {
    let sdl = parse_schema(checkout_crm::graphql::sdl()).unwrap();
    let scalars = ["Boolean", "Int", "String", "ID", "Float", "DateTime"];
    let mut out = Vec::new();
    for definition in &sdl.definitions {
        let TypeSystemDefinition::Type(ty) = definition else {
            continue;
        };
        let root = match ty.node.name.node.as_str() {
            "Query" => "query",
            "Mutation" => "mutation",
            _ => continue,
        };
        let TypeKind::Object(object) = &ty.node.kind else {
            continue;
        };
        for field in &object.fields {
            let name = field.node.name.node.to_string();
            let mut args = Vec::new();
            let mut names_an_id = false;
            for arg in &field.node.arguments {
                let arg_name = arg.node.name.node.to_string();
                let arg_type = arg.node.ty.node.to_string();
                let value = if arg_type.contains("ID") {
                    let kind = kind_of(&name, &arg_name)
                        .unwrap_or_else(|| panic!("{name}({arg_name}): unknown id kind"));
                    names_an_id = true;
                    let id = ids.0[kind].clone();
                    if arg_type.starts_with('[') {
                        json!([id])
                    } else {
                        json!(id)
                    }
                } else {
                    value_for(&arg_type)
                        .unwrap_or_else(|| panic!("{name}({arg_name}: {arg_type}): no value"))
                };
                args.push((arg_name, arg_type, value));
            }
            let base = match &field.node.ty.node.base {
                BaseType::Named(n) => n.to_string(),
                BaseType::List(inner) => inner
                    .to_string()
                    .trim_matches(|c| c == '[' || c == ']' || c == '!')
                    .to_owned(),
            };
            out.push(Operation {
                root,
                field: name,
                args,
                names_an_id,
                returns_object: !scalars.contains(&base.as_str()),
            });
        }
    }
    out
}

async fn call(app: &TestApp, token: &str, op: &Operation) -> (String, String) {
    let decl: Vec<String> = op
        .args
        .iter()
        .map(|(n, t, _)| format!("${n}: {t}"))
        .collect();
    let pass: Vec<String> = op
        .args
        .iter()
        .map(|(n, _, _)| format!("{n}: ${n}"))
        .collect();
    let vars: serde_json::Map<String, Value> = op
        .args
        .iter()
        .map(|(n, _, v)| (n.clone(), v.clone()))
        .collect();
    let head = if decl.is_empty() {
        op.root.to_owned()
    } else {
        format!("{}({})", op.root, decl.join(", "))
    };
    let call = if pass.is_empty() {
        op.field.clone()
    } else {
        format!("{}({})", op.field, pass.join(", "))
    };
    let selection = if op.returns_object {
        " { __typename }"
    } else {
        ""
    };
    app.err(
        token,
        &format!("{head} {{ {call}{selection} }}"),
        Value::Object(vars),
    )
    .await
}

async fn every_operation_on_another_accounts_ids_is_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let victim = victim_ids(&app, &app.admin).await;
    let rival = app.other_account().await;
    let ops = operations(&victim);
    let with_ids: Vec<&Operation> = ops.iter().filter(|o| o.names_an_id).collect();
    assert!(
        with_ids.len() >= 25,
        "covers the id-taking operations: {}",
        with_ids.len()
    );
    for op in with_ids {
        let (code, message) = call(&app, &rival, op).await;
        // Ids of users of another account are unknown input; everything else is NOT_FOUND.
        // (`setUserPassword` and `setUserRole` name their target user: NOT_FOUND.)
        let only_user_ids = !["setUserPassword", "setUserRole"].contains(&op.field.as_str())
            && op
                .args
                .iter()
                .filter(|(_, t, _)| t.contains("ID"))
                .all(|(n, _, _)| n.starts_with("user"));
        let expected = if only_user_ids {
            "BAD_USER_INPUT"
        } else {
            "NOT_FOUND"
        };
        assert_eq!(code, expected, "{}: {message}", op.field);
    }
}

async fn every_management_operation_is_forbidden_to_members(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ids = victim_ids(&app, &app.admin).await;
    let (_, member) = app.user("member@acme.test", "MEMBER").await;
    let allowed = [
        "me",
        "users",
        "labels",
        "groups",
        "deals",
        "deal",
        "contacts",
        "contact",
        "assignDeal",
        // Sellers work the deals they own (and claim unowned ones).
        "moveDeal",
        "winDeal",
        "loseDeal",
        "reopenDeal",
        "addDealNote",
        "claimDeal",
        "scheduleActivity",
        "completeActivity",
        "cancelActivity",
        "activities",
        "pipelineReport",
        "labelContact",
        "unlabelContact",
        // Everyone exports what they may see, and reads their own exports only (another's
        // is NOT_FOUND, as if it did not exist).
        "exportDeals",
        "exportContacts",
        "export",
        // Everyone's own session and password.
        "login",
        "logout",
        "changePassword",
    ];
    let mut checked = 0;
    for op in operations(&ids)
        .iter()
        .filter(|o| !allowed.contains(&o.field.as_str()))
    {
        let (code, message) = call(&app, &member, op).await;
        assert_eq!(code, "FORBIDDEN", "{}: {message}", op.field);
        checked += 1;
    }
    assert!(checked >= 20, "{checked} operations checked");
}

on_both_backends!(
    every_operation_on_another_accounts_ids_is_not_found,
    every_management_operation_is_forbidden_to_members
);
