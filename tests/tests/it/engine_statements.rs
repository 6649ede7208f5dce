//! The deal engine applies a group with a number of statements that does not grow with
//! the group (see `docs/deal-engine.md`, "Persistence"): counted with sea-orm's metric
//! callback on the real connection, on SQLite and PostgreSQL.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use entity::{
    Caller, HotmartEvent, Role,
    engine::apply::{IncomingEvent, IntegrationSnapshot, apply_group},
    hotmart::payload::{self, HotmartPayload},
    integrations,
    products::{self, NewProduct},
    secrets::SecretKeys,
};
use sea_orm::{DatabaseConnection, TransactionTrait};
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
            hottok: "hottok-count-0001",
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
    let parsed: Vec<HotmartPayload> = bodies
        .iter()
        .map(|b| payload::payload(b).unwrap())
        .collect();
    let items: Vec<_> = parsed
        .iter()
        .map(|p| (snap, IncomingEvent::webhook(p, "count", 0).unwrap()))
        .collect();
    let txn = counting.begin().await.unwrap();
    let outcome = apply_group(&txn, &items).await.unwrap();
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
