//! Bad input to the GraphQL API: every validation error is `BAD_USER_INPUT` naming the
//! field, nothing is written, and hostile requests (huge, deep, malformed) are refused.

use serde_json::{Value, json};
use tests::{Backend, TestApp, error_codes, on_both_backends};

async fn expect_bad_input(app: &TestApp, query: &str, variables: Value, field: &str) {
    let (code, message) = app.err(&app.admin, query, variables).await;
    assert_eq!(code, "BAD_USER_INPUT", "{query}: {message}");
    assert!(
        message.starts_with(&format!("{field}:")),
        "{query}: message {message:?} should name {field}"
    );
}

async fn each_validation_error_names_its_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let create =
        "mutation($i: CreateIntegrationInput!) { createHotmartIntegration(input: $i) { id } }";
    expect_bad_input(
        &app,
        create,
        json!({"i": {"name": "X", "events": []}}),
        "events",
    )
    .await;
    expect_bad_input(
        &app,
        create,
        json!({"i": {"name": "  ", "events": ["PURCHASE_APPROVED"]}}),
        "name",
    )
    .await;
    expect_bad_input(
        &app,
        create,
        json!({"i": {"name": "x".repeat(201), "events": ["PURCHASE_APPROVED"]}}),
        "name",
    )
    .await;
    assert_eq!(
        app.ok(&app.admin, "{ integrations { id } }", json!({}))
            .await["integrations"],
        json!([]),
        "nothing written"
    );

    let (id, group) = app.integration_with_product(&["PURCHASE_APPROVED"]).await;
    let add = "mutation($id: ID!, $i: AddProductInput!) { addHotmartProduct(integrationId: $id, input: $i) { id } }";
    expect_bad_input(
        &app,
        add,
        json!({"id": id, "i": {"hotmartProductId": "1234567", "hottok": "hottok-secret-0003"}}),
        "hotmartProductId",
    )
    .await;
    expect_bad_input(
        &app,
        add,
        json!({"id": id, "i": {"hotmartProductId": "0", "hottok": "hottok-secret-0003"}}),
        "hotmartProductId",
    )
    .await;
    expect_bad_input(&app, add, json!({"id": id, "i": {"hotmartProductId": "12; DROP TABLE", "hottok": "hottok-secret-0003"}}), "hotmartProductId").await;
    expect_bad_input(
        &app,
        add,
        json!({"id": id, "i": {"hotmartProductId": "7654321", "hottok": "short"}}),
        "hottok",
    )
    .await;
    expect_bad_input(
        &app,
        add,
        json!({"id": id, "i": {"hotmartProductId": "7654321", "hottok": "h".repeat(300)}}),
        "hottok",
    )
    .await;
    expect_bad_input(&app, add, json!({"id": id, "i": {"hotmartProductId": "7654321", "hottok": "hottok-secret-0003", "label": "l".repeat(65)}}), "label").await;

    let update = "mutation($id: ID!, $i: UpdateIntegrationInput!) { updateIntegration(id: $id, input: $i) { id } }";
    expect_bad_input(
        &app,
        update,
        json!({"id": id, "i": {"events": []}}),
        "events",
    )
    .await;
    expect_bad_input(&app, update, json!({"id": id, "i": {"name": ""}}), "name").await;

    expect_bad_input(
        &app,
        "mutation($id: ID!) { pauseIntegration(id: $id) { id } }",
        json!({"id": id}),
        "id",
    )
    .await;
    expect_bad_input(
        &app,
        "mutation($g: ID!) { setGroupVisibility(groupId: $g, input: {everyone: false, userIds: [\"nobody\"]}) { id } }",
        json!({"g": group}),
        "userIds",
    )
    .await;
    let origin = app
        .ok(
            &app.admin,
            "query($id: ID!) { integration(id: $id) { group { origins { id } } } }",
            json!({"id": id}),
        )
        .await["integration"]["group"]["origins"][0]["id"]
        .clone();
    expect_bad_input(
        &app,
        "mutation($o: ID!) { setOriginAssignees(originId: $o, userIds: [\"nobody\"]) { id } }",
        json!({"o": origin}),
        "userIds",
    )
    .await;
    expect_bad_input(
        &app,
        "mutation($o: ID!) { updateOrigin(originId: $o, input: {name: \" \"}) { id } }",
        json!({"o": origin}),
        "name",
    )
    .await;

    let user = "mutation($i: CreateUserInput!) { createUser(input: $i) { id } }";
    expect_bad_input(
        &app,
        user,
        json!({"i": {"name": "A", "email": "not-an-email", "role": "MEMBER"}}),
        "email",
    )
    .await;
    expect_bad_input(
        &app,
        user,
        json!({"i": {"name": "A", "email": "ADMIN@acme.test", "role": "MEMBER"}}),
        "email",
    )
    .await;
    expect_bad_input(
        &app,
        user,
        json!({"i": {"name": "", "email": "new@acme.test", "role": "MEMBER"}}),
        "name",
    )
    .await;

    app.ok(
        &app.admin,
        "mutation { createLabel(input: {name: \"Clientes\"}) { id } }",
        json!({}),
    )
    .await;
    let label = "mutation($i: CreateLabelInput!) { createLabel(input: $i) { id } }";
    expect_bad_input(&app, label, json!({"i": {"name": "CLIENTES"}}), "name").await;
    expect_bad_input(
        &app,
        label,
        json!({"i": {"name": "Cor", "color": "blue"}}),
        "color",
    )
    .await;

    let deliveries = "query($id: ID!, $first: Int, $after: String) { integration(id: $id) { deliveries(first: $first, after: $after) { totalCount } } }";
    expect_bad_input(&app, deliveries, json!({"id": id, "first": 201}), "first").await;
    expect_bad_input(
        &app,
        deliveries,
        json!({"id": id, "after": "garbage!"}),
        "after",
    )
    .await;

    // Unknown enum values and wrong types are input errors too.
    let (_, body) = app
        .post_graphql(
            Some(&app.admin),
            create,
            json!({"i": {"name": "X", "events": ["PURCHASE_REFUSED"]}}),
        )
        .await;
    assert_eq!(error_codes(&body), vec!["BAD_USER_INPUT"], "{body}");
}

/// `getIntrospectionQuery({ inputValueDeprecation: true })` of graphql-js 16, as GraphiQL
/// and code generators send it.
const INTROSPECTION_QUERY: &str = r#"
    query IntrospectionQuery {
      __schema {
        queryType { name }
        mutationType { name }
        subscriptionType { name }
        types {
          ...FullType
        }
        directives {
          name
          description
          locations
          args(includeDeprecated: true) {
            ...InputValue
          }
        }
      }
    }

    fragment FullType on __Type {
      kind
      name
      description
      fields(includeDeprecated: true) {
        name
        description
        args(includeDeprecated: true) {
          ...InputValue
        }
        type {
          ...TypeRef
        }
        isDeprecated
        deprecationReason
      }
      inputFields(includeDeprecated: true) {
        ...InputValue
      }
      interfaces {
        ...TypeRef
      }
      enumValues(includeDeprecated: true) {
        name
        description
        isDeprecated
        deprecationReason
      }
      possibleTypes {
        ...TypeRef
      }
    }

    fragment InputValue on __InputValue {
      name
      description
      type { ...TypeRef }
      defaultValue
      isDeprecated
      deprecationReason
    }

    fragment TypeRef on __Type {
      kind
      name
      ofType {
        kind
        name
        ofType {
          kind
          name
          ofType {
            kind
            name
            ofType {
              kind
              name
              ofType {
                kind
                name
                ofType {
                  kind
                  name
                  ofType {
                    kind
                    name
                    ofType {
                      kind
                      name
                      ofType {
                        kind
                        name
                      }
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
"#;

/// The standard introspection query passes (GraphiQL shows its docs, clients can be
/// generated) while user queries keep the depth limit of 12.
async fn the_standard_introspection_query_passes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, body) = app
        .post_graphql(Some(&app.admin), INTROSPECTION_QUERY, json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{}", body["errors"]);
    let types = body["data"]["__schema"]["types"].as_array().unwrap();
    assert!(types.iter().any(|t| t["name"] == "DealPayment"));
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
    // Twelve levels of user fields pass; thirteen do not.
    for (levels, passes) in [(12usize, true), (13, false), (14, false)] {
        // deals { nodes { contact { deals { contact { … id } } } } }: `levels` fields deep.
        let mut query = String::from("id");
        for level in (2..levels).rev() {
            let field = match level {
                1 => "deals(first: 1)",
                2 => "nodes",
                n if n % 2 == 1 => "contact",
                _ => "deals",
            };
            query = format!("{field} {{ {query} }}");
        }
        let query = format!("{{ deals(first: 1) {{ {query} }} }}");
        let (_, body) = app.post_graphql(Some(&app.admin), &query, json!({})).await;
        let refused = body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("nested too deep"));
        assert_eq!(!refused, passes, "{levels} levels: {query}: {body}");
    }
}

async fn hostile_requests_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let url = format!("{}/graphql", app.base);

    // Deeper than the introspection limit (introspection types nest without end).
    let mut deep = String::from("name");
    for _ in 0..24 {
        deep = format!("ofType {{ {deep} }}");
    }
    let (_, body) = app
        .post_graphql(
            Some(&app.admin),
            &format!("{{ __schema {{ types {{ {deep} }} }} }}"),
            json!({}),
        )
        .await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nested too deep"),
        "{body}"
    );

    // Too many fields (aliases).
    let wide: String = (0..6000).map(|i| format!("a{i}: me {{ id }} ")).collect();
    let (status, body) = app
        .post_graphql(Some(&app.admin), &format!("{{ {wide} }}"), json!({}))
        .await;
    assert!(
        status == 413
            || body["errors"][0]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("limite 10.000"),
        "{status} {body}"
    );

    // Over the body limit.
    let huge = json!({"query": format!("{{ me {{ id }} }} #{}", "x".repeat(300 * 1024))});
    let response = app
        .http
        .post(&url)
        .bearer_auth(&app.admin)
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);

    // Not JSON, and batches.
    let response = app
        .http
        .post(&url)
        .bearer_auth(&app.admin)
        .header("content-type", "application/json")
        .body("{\"query\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = app
        .http
        .post(&url)
        .bearer_auth(&app.admin)
        .json(&json!([{"query": "{ me { id } }"}, {"query": "{ me { id } }"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    // Syntax errors.
    let (_, body) = app
        .post_graphql(Some(&app.admin), "{ me { id ", json!({}))
        .await;
    assert_eq!(error_codes(&body), vec!["BAD_USER_INPUT"], "{body}");

    // The server still answers.
    assert_eq!(
        app.ok(&app.admin, "{ me { email } }", json!({})).await["me"]["email"],
        "admin@acme.test"
    );
}

on_both_backends!(
    the_standard_introspection_query_passes,
    each_validation_error_names_its_field,
    hostile_requests_are_refused
);
