//! A buyer's data rights and the audit log: the access report holds what is stored about
//! the buyer; erasure leaves no trace of their e-mail, name, phone or CPF in any text
//! column of any table, old sales are never re-created, a new purchase is a new contact;
//! every set-up change has its audit entry, and no secret is in one.

use chrono::Utc;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use tests::{Backend, TestApp, hotmart::purchase, on_both_backends};

const EMAIL: &str = "joana.erasure@x.test";
const NAME: &str = "Joana Quitéria Lima";
const PHONE: &str = "11987650001";
const CPF: &str = "52998224725";
const HOTTOK: &str = "hottok-secret-0001";

/// What must be gone after the erasure, as stored (lower case for the scan).
const NEEDLES: [&str; 5] = [EMAIL, "quitéria", "joana", "987650001", CPF];

fn sale(id: &str, event: &str, at: i64, transaction: &str) -> Value {
    let mut body = purchase(id, event, at, EMAIL, transaction);
    body["data"]["buyer"]["name"] = json!(NAME);
    body["data"]["buyer"]["checkout_phone"] = json!(PHONE);
    body["data"]["buyer"]["document"] = json!(CPF);
    body
}

async fn post(app: &TestApp, url: &str, body: &Value) {
    let (status, _) = app.post_webhook(url, Some(HOTTOK), body.to_string()).await;
    assert_eq!(status, 200);
    app.wait_until_processed().await;
}

/// The buyer's deal and contact ids.
async fn deal_of(app: &TestApp, email: &str) -> Option<(String, String)> {
    let data = app
        .ok(
            &app.admin,
            "query($e: String) { contacts(filter: {email: $e}) { nodes { id deals { id } } } }",
            json!({"e": email}),
        )
        .await;
    let contact = data["contacts"]["nodes"].get(0)?;
    Some((
        contact["deals"][0]["id"].as_str()?.to_owned(),
        contact["id"].as_str()?.to_owned(),
    ))
}

/// Every text column of every table, with how many of its values hold `needle`.
async fn traces(app: &TestApp, needle: &str) -> Vec<String> {
    let db = &app.db.conn;
    let backend = db.get_database_backend();
    let columns_sql = match backend {
        sea_orm::DbBackend::Sqlite => {
            "SELECT m.name, p.name, p.type FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND (p.type LIKE '%TEXT%' OR p.type LIKE '%CHAR%' OR p.type = '' OR p.type LIKE '%BLOB%')"
        }
        _ => {
            "SELECT table_schema || '\".\"' || table_name, column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema NOT IN ('pg_catalog', 'information_schema') \
             AND data_type IN ('text', 'character varying', 'json', 'jsonb', 'bytea')"
        }
    };
    let columns = db
        .query_all_raw(Statement::from_string(backend, columns_sql))
        .await
        .unwrap();
    let mut found = Vec::new();
    for row in columns {
        let table: String = row.try_get_by_index(0).unwrap();
        let column: String = row.try_get_by_index(1).unwrap();
        let kind: String = row.try_get_by_index(2).unwrap();
        let holds = match backend {
            sea_orm::DbBackend::Sqlite => {
                format!("LOWER(CAST(\"{column}\" AS TEXT)) LIKE '%{needle}%'")
            }
            // Bytes as bytes: the export files (UTF-8), and others that are not text.
            _ if kind == "bytea" => {
                format!("position(convert_to('{needle}', 'UTF8') in \"{column}\") > 0")
            }
            _ => format!("LOWER(\"{column}\"::text) LIKE '%{needle}%'"),
        };
        let sql = format!("SELECT COUNT(*) FROM \"{table}\" WHERE {holds}");
        let count = db
            .query_one_raw(Statement::from_string(backend, sql))
            .await
            .unwrap()
            .unwrap();
        let n: i64 = count.try_get_by_index(0).unwrap();
        if n > 0 {
            found.push(format!("{table}.{column} ({n})"));
        }
    }
    found
}

async fn delivery_reasons(app: &TestApp, integration: &str) -> Vec<(String, Option<String>)> {
    let data = app
        .ok(
            &app.admin,
            "query($id: ID!) { integration(id: $id) { deliveries(first: 50) { nodes { id reason } } } }",
            json!({"id": integration}),
        )
        .await;
    data["integration"]["deliveries"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap().to_owned(),
                d["reason"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// Exports the deals (holding the buyer) and waits for the file; its download path.
async fn exported(app: &TestApp) -> String {
    let started = app
        .ok(&app.admin, "mutation { exportDeals { id } }", json!({}))
        .await;
    let id = started["exportDeals"]["id"].clone();
    for _ in 0..600 {
        let found = app
            .ok(
                &app.admin,
                "query($id: ID!) { export(id: $id) { status downloadPath } }",
                json!({"id": id}),
            )
            .await;
        if found["export"]["status"] == "SUCCEEDED" {
            return found["export"]["downloadPath"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the export did not finish");
}

const REPORT: &str = "query($c: ID!) { contactDataReport(contactId: $c) }";
const ERASE: &str = "mutation($c: ID!, $r: String!) { eraseContact(contactId: $c, reason: $r) { contactId erasedAt dealsRedacted deliveriesRedacted } }";

/// The buyer's sale, a note and an activity that quote them: the report holds them all.
async fn a_buyer_with_history(app: &TestApp) -> (String, String, String, i64) {
    let (integration, url) = app
        .active_integration(&["PURCHASE_BILLET_PRINTED", "PURCHASE_APPROVED"], json!({}))
        .await;
    let t0 = Utc::now().timestamp_millis() - 600_000;
    post(
        app,
        &url,
        &sale("old-1", "PURCHASE_BILLET_PRINTED", t0, "HP-OLD"),
    )
    .await;
    post(
        app,
        &url,
        &sale("old-2", "PURCHASE_APPROVED", t0 + 1_000, "HP-OLD"),
    )
    .await;
    let (deal, contact) = deal_of(app, EMAIL).await.expect("the buyer's deal");
    app.ok(
        &app.admin,
        "mutation($d: ID!, $t: String!) { addDealNote(dealId: $d, text: $t) { description } }",
        json!({"d": deal, "t": format!("Falei com {NAME}, tel (11) 98765-0001")}),
    )
    .await;
    app.ok(
        &app.admin,
        "mutation($d: ID!, $i: ScheduleActivityInput!) { scheduleActivity(dealId: $d, input: $i) { id } }",
        json!({"d": deal, "i": {"kind": "CALL", "title": format!("Ligar para {NAME}"), "dueAt": "2030-01-01T12:00:00Z"}}),
    )
    .await;
    let report = app.ok(&app.admin, REPORT, json!({"c": contact})).await;
    let report: Value =
        serde_json::from_str(report["contactDataReport"].as_str().unwrap()).unwrap();
    assert_eq!(report["contact"]["email"], EMAIL);
    assert_eq!(report["contact"]["name"], NAME);
    assert_eq!(report["contact"]["document"], CPF);
    let deals = report["deals"].as_array().unwrap();
    assert_eq!(deals.len(), 1, "{report}");
    assert_eq!(deals[0]["id"], deal.as_str());
    let timeline = deals[0]["timeline"].as_array().unwrap();
    assert!(
        timeline
            .iter()
            .any(|e| e["description"].as_str().unwrap_or("").contains(NAME))
    );
    assert_eq!(
        timeline
            .iter()
            .filter(|e| e["deliveryId"].is_string())
            .count(),
        2
    );
    assert_eq!(
        deals[0]["activities"][0]["title"],
        format!("Ligar para {NAME}")
    );
    let deliveries = report["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 2, "both deliveries name the buyer");
    assert!(
        deliveries
            .iter()
            .all(|d| d["payload"]["data"]["buyer"]["email"] == EMAIL)
    );
    (integration, url, contact, t0)
}

async fn erasure_leaves_no_trace_and_old_sales_stay_erased(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (integration, url, contact, t0) = a_buyer_with_history(&app).await;
    // Someone else's sale stays as it was.
    let mut other = purchase(
        "other-1",
        "PURCHASE_APPROVED",
        t0,
        "carlos@x.test",
        "HP-CARLOS",
    );
    other["data"]["buyer"]["name"] = json!("Carlos Neto");
    post(&app, &url, &other).await;
    let export = exported(&app).await;
    for needle in NEEDLES {
        assert!(
            !traces(&app, needle).await.is_empty(),
            "{needle} is stored before"
        );
    }
    let reason = format!("Pedido da titular {NAME} por e-mail");
    let receipt = app
        .ok(&app.admin, ERASE, json!({"c": contact, "r": reason}))
        .await["eraseContact"]
        .clone();
    assert_eq!(receipt["contactId"], contact.as_str());
    assert_eq!(receipt["dealsRedacted"], 1);
    assert_eq!(receipt["deliveriesRedacted"], 2);
    for needle in NEEDLES {
        assert_eq!(
            traces(&app, needle).await,
            Vec::<String>::new(),
            "{needle} is left"
        );
    }
    assert!(
        !traces(&app, "carlos neto").await.is_empty(),
        "another buyer is untouched"
    );
    let response = app
        .http
        .get(format!("{}{export}", app.base))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        404,
        "an export made before is withdrawn"
    );
    // Counts and money stay: the deal is still won, with its value.
    let kept = app
        .ok(
            &app.admin,
            "query { deals(first: 10) { totalCount nodes { status value contact { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(kept["deals"]["totalCount"], 2);
    let erased_deal = kept["deals"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["contact"]["id"] == contact.as_str())
        .unwrap()
        .clone();
    assert_eq!(erased_deal["status"], "WON");
    assert_eq!(erased_deal["value"], 97.0);
    // Erasing again: the same receipt, nothing more.
    let again = app
        .ok(&app.admin, ERASE, json!({"c": contact, "r": "again"}))
        .await["eraseContact"]
        .clone();
    assert_eq!(again, receipt);
    old_sales_are_skipped(&app, &integration, &url, t0).await;
    // A new purchase after the erasure is a new contact.
    let later = Utc::now().timestamp_millis() + 1_000;
    post(
        &app,
        &url,
        &sale("new-1", "PURCHASE_APPROVED", later, "HP-NEW"),
    )
    .await;
    let (_, fresh) = deal_of(&app, EMAIL).await.expect("a new contact");
    assert_ne!(fresh, contact);
    let report = app.ok(&app.admin, REPORT, json!({"c": fresh})).await;
    let report: Value =
        serde_json::from_str(report["contactDataReport"].as_str().unwrap()).unwrap();
    assert_eq!(
        report["deals"].as_array().unwrap().len(),
        1,
        "only the new sale: {report}"
    );
}

/// A replay of an old delivery and a late delivery of an old sale skip the buyer.
async fn old_sales_are_skipped(app: &TestApp, integration: &str, url: &str, t0: i64) {
    let (first, _) = delivery_reasons(app, integration).await.pop().unwrap();
    app.ok(
        &app.admin,
        "mutation($id: ID!) { replayDelivery(id: $id) { status } }",
        json!({"id": first}),
    )
    .await;
    app.wait_until_processed().await;
    post(
        app,
        url,
        &sale("late-1", "PURCHASE_APPROVED", t0 + 2_000, "HP-OLD"),
    )
    .await;
    assert!(
        deal_of(app, EMAIL).await.is_none(),
        "the buyer is not re-created"
    );
    let reasons = delivery_reasons(app, integration).await;
    let erased: Vec<_> = reasons
        .iter()
        .filter(|(_, r)| r.as_deref() == Some("buyer erased"))
        .map(|(id, _)| id.clone())
        .collect();
    assert!(erased.contains(&first), "the replay: {reasons:?}");
    assert_eq!(
        erased.len(),
        2,
        "the replay and the late delivery: {reasons:?}"
    );
    for needle in NEEDLES {
        let left = traces(app, needle).await;
        assert_eq!(
            left,
            Vec::<String>::new(),
            "{needle}: the skipped ones are redacted too"
        );
    }
}

async fn rights_are_admins_and_ids_are_checked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, _, contact, _) = a_buyer_with_history(&app).await;
    let (_, member) = app.user("seller@x.test", "MEMBER").await;
    for (query, vars) in [
        (REPORT, json!({"c": contact})),
        (ERASE, json!({"c": contact, "r": "x"})),
        ("query { auditLog { totalCount } }", json!({})),
    ] {
        assert_eq!(
            app.err(&member, query, vars).await.0,
            "FORBIDDEN",
            "{query}"
        );
    }
    let rival = app.other_account().await;
    for (query, vars) in [
        (REPORT, json!({"c": contact})),
        (ERASE, json!({"c": contact, "r": "x"})),
        (REPORT, json!({"c": "no-such-contact"})),
    ] {
        assert_eq!(app.err(&rival, query, vars).await.0, "NOT_FOUND", "{query}");
    }
    for reason in ["", "   ", &"x".repeat(501)] {
        let (code, _) = app
            .err(&app.admin, ERASE, json!({"c": contact, "r": reason}))
            .await;
        assert_eq!(code, "BAD_USER_INPUT");
    }
    assert!(
        !traces(&app, EMAIL).await.is_empty(),
        "refusals erased nothing"
    );
}

/// Set-up changes, each with its audit entry (actor, target), newest first; no secret
/// value in any entry.
async fn setup_changes_are_audited_without_secrets(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (integration, _) = app
        .active_integration(&["PURCHASE_APPROVED"], json!({}))
        .await;
    let product = app
        .ok(
            &app.admin,
            "query($id: ID!) { integration(id: $id) { products { id } group { id } } }",
            json!({"id": integration}),
        )
        .await["integration"]
        .clone();
    let (product_id, group) = (
        product["products"][0]["id"].clone(),
        product["group"]["id"].clone(),
    );
    let steps: [(&str, Value); 8] = [
        (
            "mutation($p: ID!) { updateProduct(productId: $p, input: {hottok: \"new-hottok-secret-77\"}) { id } }",
            json!({"p": product_id}),
        ),
        (
            "mutation($id: ID!) { setHotmartCredentials(integrationId: $id, input: {clientId: \"cid-secret-88\", clientSecret: \"csecret-99\"}) { id } }",
            json!({"id": integration}),
        ),
        (
            "mutation($g: ID!) { setGroupVisibility(groupId: $g, input: {everyone: true, memberScope: OWN}) { id } }",
            json!({"g": group}),
        ),
        (
            "mutation($id: ID!) { pauseIntegration(id: $id) { id } }",
            json!({"id": integration}),
        ),
        (
            "mutation($id: ID!) { rotateWebhookToken(id: $id, graceHours: 2) { id } }",
            json!({"id": integration}),
        ),
        (
            "mutation { createUser(input: {name: \"Bea\", email: \"bea@x.test\", role: MEMBER, password: \"pass-secret-12345\"}) { id } }",
            json!({}),
        ),
        ("mutation { exportDeals { id } }", json!({})),
        (
            "mutation($id: ID!) { deleteIntegration(id: $id) }",
            json!({"id": integration}),
        ),
    ];
    for (query, vars) in steps {
        app.ok(&app.admin, query, vars).await;
    }
    let log = app
        .ok(&app.admin, "query { auditLog(first: 100) { totalCount nodes { action targetType targetId details actor { id } } } }", json!({}))
        .await["auditLog"].clone();
    let actions: Vec<&str> = log["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "integration.deleted",
            "export.started",
            "user.created",
            "integration.url_rotated",
            "integration.paused",
            "visibility.changed",
            "credentials.set",
            "product.hottok_changed",
            "integration.activated",
            "product.added",
            "integration.created",
        ],
        "newest first"
    );
    assert_eq!(log["totalCount"], actions.len());
    for entry in log["nodes"].as_array().unwrap() {
        assert_eq!(entry["actor"]["id"], app.admin_id.as_str(), "{entry}");
    }
    assert_eq!(log["nodes"][5]["targetId"], group);
    let text = log.to_string();
    for secret in [
        HOTTOK,
        "new-hottok-secret-77",
        "cid-secret-88",
        "csecret-99",
        "pass-secret-12345",
    ] {
        assert!(!text.contains(secret), "{secret} in the audit log");
    }
    let filtered = app
        .ok(&app.admin, "query { auditLog(filter: {action: \"integration.paused\"}) { totalCount nodes { action } } }", json!({}))
        .await;
    assert_eq!(filtered["auditLog"]["totalCount"], 1);
    let (code, _) = app
        .err(
            &app.admin,
            "query { auditLog(after: \"not-a-cursor\") { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
}

/// Entries are kept a year: the sweeper's prune removes older ones and nothing newer.
async fn audit_entries_are_pruned_after_a_year(backend: Backend) {
    let app = TestApp::spawn_without_workers(backend).await;
    app.ok(
        &app.admin,
        "mutation { createLabel(input: {name: \"Recente\"}) { id } }",
        json!({}),
    )
    .await;
    let old = entity::audit::Change::new("label.created", "label", "old-label");
    entity::audit::record(
        &app.db.conn,
        &app.account_id,
        entity::audit::Actor::System,
        old,
    )
    .await
    .unwrap();
    let now = Utc::now().timestamp_millis();
    // Seen from now, no entry is old; from a year and a day later, both are.
    assert_eq!(entity::audit::prune(&app.db.conn, now).await.unwrap(), 0);
    let later = now + entity::audit::KEEP_MS + 86_400_000;
    assert_eq!(entity::audit::prune(&app.db.conn, later).await.unwrap(), 2);
    let left = app
        .ok(&app.admin, "query { auditLog { totalCount } }", json!({}))
        .await;
    assert_eq!(left["auditLog"]["totalCount"], 0);
}

/// Many contacts with no hash beside one tombstone, statistics taken (`ANALYZE`): the
/// engine's erased-buyer lookup still finds the tombstone, and reads it by the partial
/// index of tombstones. (With an index of every contact, SQLite's planner judged it useless
/// once the statistics showed nearly all hashes NULL, and scanned the contacts table in
/// every engine group.)
async fn erased_buyers_are_looked_up_by_the_tombstone_index(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, _, contact, _) = a_buyer_with_history(&app).await;
    app.ok(&app.admin, ERASE, json!({"c": contact, "r": "pedido"}))
        .await;
    let db = &app.db.conn;
    let kind = db.get_database_backend();
    let copies = match kind {
        sea_orm::DbBackend::Sqlite => {
            "WITH RECURSIVE m(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM m WHERE n < 4999) \
             INSERT INTO contacts (id, account_id, name, email, phone, data_at, created_at, updated_at) \
             SELECT 'copy-' || n, account_id, 'Cópia ' || n, 'copy' || n || '@x.test', NULL, data_at, created_at, updated_at \
             FROM m CROSS JOIN (SELECT * FROM contacts LIMIT 1)"
        }
        _ => {
            "INSERT INTO contacts (id, account_id, name, email, phone, data_at, created_at, updated_at) \
             SELECT 'copy-' || n, account_id, 'Cópia ' || n, 'copy' || n || '@x.test', NULL, data_at, created_at, updated_at \
             FROM generate_series(0, 4999) AS n CROSS JOIN (SELECT * FROM contacts LIMIT 1) s"
        }
    };
    db.execute_unprepared(copies).await.unwrap();
    db.execute_unprepared("ANALYZE").await.unwrap();

    let keys = entity::secrets::SecretKeys::new(tests::SECRET_KEY.as_bytes());
    let found = entity::privacy::erasures(db, &keys, &[(&app.account_id, EMAIL)])
        .await
        .unwrap();
    assert!(
        found.contains_key(&(app.account_id.clone(), EMAIL.to_owned())),
        "the erased buyer is found: {found:?}"
    );
    let none = entity::privacy::erasures(db, &keys, &[(&app.account_id, "copy7@x.test")])
        .await
        .unwrap();
    assert!(none.is_empty(), "a buyer never erased is not: {none:?}");

    let hash = keys.buyer_hash(EMAIL);
    let query = sea_orm::QueryTrait::build(
        &entity::privacy::tombstones([app.account_id.as_str()], [hash.as_str()]),
        kind,
    );
    let plan = tests::query_plan(db, query).await;
    assert!(
        plan.contains("ix_contacts_tombstones"),
        "the lookup reads the tombstone index:\n{plan}"
    );
    assert!(
        !plan.contains("SCAN contacts") && !plan.contains("Seq Scan on contacts"),
        "the lookup does not scan the contacts:\n{plan}"
    );
}

on_both_backends!(
    audit_entries_are_pruned_after_a_year,
    erased_buyers_are_looked_up_by_the_tombstone_index,
    erasure_leaves_no_trace_and_old_sales_stay_erased,
    rights_are_admins_and_ids_are_checked,
    setup_changes_are_audited_without_secrets,
);
