//! The deal engine applies a group — of checkout events, or of an admin's bulk edit — with a
//! number of statements that does not grow with the group (see `docs/deal-engine.md`, "Persistence"): counted with sea-orm's metric
//! callback on the real connection, on SQLite and PostgreSQL.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use entity::{
    Caller, HotmartEvent, Role,
    engine::apply::{IncomingEvent, IntegrationSnapshot, apply_group},
    hotmart::payload,
    integrations,
    products::{self, NewProduct},
    sale::event::SaleEvent,
    secrets::SecretKeys,
    tables::deal,
    work::{self, Intent},
};
use sea_orm::{DatabaseConnection, EntityTrait, TransactionTrait};
use serde_json::Value;
use tests::{
    Backend, TestApp,
    hotmart::{Purchase, cart},
};

const PRODUCT: u64 = 1_234_567;

async fn snapshot(app: &TestApp) -> IntegrationSnapshot {
    let caller = Caller {
        user_id: app.admin_id.clone(),
        account_id: app.account_id.clone(),
        role: Role::Admin,
    };
    let keys = SecretKeys::new(tests::SECRET_KEY.as_bytes());
    let created = integrations::create(&app.db.conn, &caller, "Count", &HotmartEvent::ALL)
        .await
        .unwrap();
    products::add(
        &app.db.conn,
        &keys,
        &caller,
        &created.id,
        NewProduct {
            hotmart_product_id: &PRODUCT.to_string(),
            hottok: Some("hottok-count-0001"),
            id_field: "hotmartProductId",
            name: Some("Curso"),
            label: Some("Alunos"),
        },
    )
    .await
    .unwrap();
    IntegrationSnapshot::load(&app.db.conn, &created.id)
        .await
        .unwrap()
}

fn purchase(n: usize, event: &str, at: i64) -> Value {
    Purchase {
        id: &format!("{event}-{n}"),
        event,
        at,
        email: &format!("buyer{n}@x.test"),
        product: PRODUCT,
        transaction: &format!("HP{n}"),
        price: 97.0,
        subscriber: None,
    }
    .body()
}

/// Applies `bodies` as one group on a counting connection; returns the statements run.
async fn count(conn: &DatabaseConnection, snap: &IntegrationSnapshot, bodies: &[Value]) -> usize {
    let statements = Arc::new(AtomicUsize::new(0));
    let mut counting = conn.clone();
    let seen = statements.clone();
    counting.set_metric_callback(move |_| {
        seen.fetch_add(1, Ordering::Relaxed);
    });
    let parsed: Vec<(SaleEvent, String)> = bodies
        .iter()
        .map(|b| {
            (
                payload::sale_event(b).unwrap(),
                b["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let items: Vec<_> = parsed
        .iter()
        .map(|(p, id)| (snap, IncomingEvent::webhook(p, id.clone(), "count", 0)))
        .collect();
    let txn = counting.begin().await.unwrap();
    let keys = SecretKeys::new(tests::SECRET_KEY.as_bytes());
    let outcome = apply_group(&txn, &keys, &items).await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!(outcome.applied.len(), bodies.len());
    statements.load(Ordering::Relaxed)
}

async fn statements_do_not_grow_with_the_group(backend: Backend) {
    let app = TestApp::spawn_without_workers(backend).await;
    let snap = snapshot(&app).await;
    let conn = &app.db.conn;
    let t0 = 1_745_000_000_000;
    // New buyers' approvals: one, then a hundred.
    let one = count(conn, &snap, &[purchase(0, "PURCHASE_APPROVED", t0)]).await;
    let many: Vec<Value> = (1..=100)
        .map(|n| purchase(n, "PURCHASE_APPROVED", t0))
        .collect();
    let hundred = count(conn, &snap, &many).await;
    assert_eq!(one, hundred, "a group of 100 new sales costs what one does");
    // Refunds of known sales (existing contacts, deals that move): one, then a hundred.
    let one = count(conn, &snap, &[purchase(0, "PURCHASE_REFUNDED", t0 + 1)]).await;
    let many: Vec<Value> = (1..=100)
        .map(|n| purchase(n, "PURCHASE_REFUNDED", t0 + 1))
        .collect();
    let hundred = count(conn, &snap, &many).await;
    assert_eq!(one, hundred, "a group of 100 refunds costs what one does");
    // A mixed group of 300: carts of new buyers, duplicates, re-purchases, info events.
    let mut mixed: Vec<Value> = (200..300)
        .map(|n| {
            cart(
                &format!("cart-{n}"),
                t0,
                &format!("buyer{n}@x.test"),
                PRODUCT,
            )
        })
        .collect();
    mixed.extend((1..=100).map(|n| purchase(n, "PURCHASE_REFUNDED", t0 + 1)));
    mixed.extend((1..=100).map(|n| purchase(n + 1000, "PURCHASE_APPROVED", t0 + 2)));
    let mixed_count = count(conn, &snap, &mixed).await;
    println!("statements per group: one or 100 events {hundred}; mixed 300 {mixed_count}");
    assert!(
        mixed_count <= 24,
        "a mixed group of 300 events took {mixed_count} statements"
    );
}

/// Runs an admin's bulk edit on a counting connection; returns the statements run.
async fn count_edit(app: &TestApp, ids: &[String], intent: Intent) -> usize {
    let statements = Arc::new(AtomicUsize::new(0));
    let mut counting = app.db.conn.clone();
    let seen = statements.clone();
    counting.set_metric_callback(move |_| {
        seen.fetch_add(1, Ordering::Relaxed);
    });
    let caller = Caller {
        user_id: app.admin_id.clone(),
        account_id: app.account_id.clone(),
        role: Role::Admin,
    };
    let edited = work::act_many(&counting, &caller, ids, intent)
        .await
        .unwrap();
    assert_eq!(edited.len(), ids.len());
    statements.load(Ordering::Relaxed)
}

async fn sellers_edits_do_not_grow_with_their_size(backend: Backend) {
    let app = TestApp::spawn_without_workers(backend).await;
    let snap = snapshot(&app).await;
    let conn = &app.db.conn;
    let t0 = 1_745_000_000_000;
    let carts: Vec<Value> = (0..101)
        .map(|n| {
            cart(
                &format!("cart-{n}"),
                t0,
                &format!("buyer{n}@x.test"),
                PRODUCT,
            )
        })
        .collect();
    count(conn, &snap, &carts).await;
    let ids: Vec<String> = deal::Entity::find()
        .all(conn)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(ids.len(), 101);
    let stage = snap.stages[1].id.clone();
    let move_to = || Intent::Move {
        stage_id: stage.clone(),
    };
    let one = count_edit(&app, &ids[..1], move_to()).await;
    let hundred = count_edit(&app, &ids[1..], move_to()).await;
    assert_eq!(one, hundred, "moving 100 deals costs what moving one does");
    let assign = || Intent::Assign {
        user_id: Some(app.admin_id.clone()),
    };
    let one = count_edit(&app, &ids[..1], assign()).await;
    let hundred = count_edit(&app, &ids[1..], assign()).await;
    assert_eq!(
        one, hundred,
        "assigning 100 deals costs what assigning one does"
    );
    println!("statements per bulk edit: {hundred}");
}

#[tokio::test]
async fn sqlite_edit_statements_are_constant() {
    sellers_edits_do_not_grow_with_their_size(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_edit_statements_are_constant() {
    if tests::postgres_url().is_none() {
        tests::skip_notice("postgres_edit_statements_are_constant");
        return;
    }
    sellers_edits_do_not_grow_with_their_size(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_group_statements_are_constant() {
    statements_do_not_grow_with_the_group(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_group_statements_are_constant() {
    if tests::postgres_url().is_none() {
        tests::skip_notice("postgres_group_statements_are_constant");
        return;
    }
    statements_do_not_grow_with_the_group(Backend::Postgres).await;
}

/// Messages written so far.
async fn outbox_rows(conn: &DatabaseConnection) -> u64 {
    use sea_orm::PaginatorTrait;
    entity::tables::outbound_message::Entity::find()
        .count(conn)
        .await
        .unwrap()
}

/// With an endpoint subscribed to everything (contact data on, so every read the outbox
/// can make is made), a group still costs the same whatever its size, and the messages
/// are written: a new sale emits `contact.created` and `deal.created`, a refund `deal.lost`.
async fn the_outbox_does_not_grow_with_the_group(backend: Backend) {
    let app = TestApp::spawn_without_workers(backend).await;
    let snap = snapshot(&app).await;
    let conn = &app.db.conn;
    let keys = SecretKeys::new(tests::SECRET_KEY.as_bytes());
    let input = entity::outbound::endpoints::EndpointInput {
        url: "https://hooks.invalid/all".into(),
        include_contact_data: true,
        ..Default::default()
    };
    let secret = jobs::standard_webhooks::new_secret();
    entity::outbound::endpoints::create(conn, &keys, &app.admin_caller(), &input, &secret)
        .await
        .unwrap();
    let t0 = 1_745_000_000_000;
    let one = count(conn, &snap, &[purchase(0, "PURCHASE_APPROVED", t0)]).await;
    assert_eq!(outbox_rows(conn).await, 2);
    let many: Vec<Value> = (1..=100)
        .map(|n| purchase(n, "PURCHASE_APPROVED", t0))
        .collect();
    let hundred = count(conn, &snap, &many).await;
    assert_eq!(outbox_rows(conn).await, 202);
    assert_eq!(one, hundred, "a group of 100 new sales costs what one does");
    let one = count(conn, &snap, &[purchase(0, "PURCHASE_REFUNDED", t0 + 1)]).await;
    let many: Vec<Value> = (1..=100)
        .map(|n| purchase(n, "PURCHASE_REFUNDED", t0 + 1))
        .collect();
    let hundred = count(conn, &snap, &many).await;
    assert_eq!(one, hundred, "a group of 100 refunds costs what one does");
    assert_eq!(outbox_rows(conn).await, 303);
    // The same refunds again change nothing: no statement for the outbox, no message.
    count(conn, &snap, &many).await;
    assert_eq!(outbox_rows(conn).await, 303);
    println!("statements per group with an endpoint: {hundred}");
}

#[tokio::test]
async fn sqlite_outbox_statements_are_constant() {
    the_outbox_does_not_grow_with_the_group(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_outbox_statements_are_constant() {
    if tests::postgres_url().is_none() {
        tests::skip_notice("postgres_outbox_statements_are_constant");
        return;
    }
    the_outbox_does_not_grow_with_the_group(Backend::Postgres).await;
}
