//! Property: for random sequences of events over a few contacts, products and transactions,
//! applying them shuffled and with duplicates gives the same deals as applying them once
//! in time order, one by one or in groups (see `docs/deal-engine.md`). The events come from
//! all three checkouts' adapters (Hotmart, Kiwify and Eduzz bodies, mixed). Runs the real
//! persistence step on a SQLite file and on PostgreSQL.

use entity::{
    Caller, HotmartEvent, Role,
    engine::apply::{IncomingEvent, IntegrationSnapshot, apply_event, apply_group},
    integrations,
    platform::Platform,
    products::{self, NewProduct},
    secrets::SecretKeys,
    tables::{deal, deal_event, deal_ref},
};
use proptest::prelude::*;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::Value;
use tests::{
    Backend, TestApp,
    hotmart::{Purchase, cart},
};

const EVENTS: [&str; 12] = [
    "PURCHASE_OUT_OF_SHOPPING_CART",
    "PURCHASE_BILLET_PRINTED",
    "PURCHASE_CANCELED",
    "PURCHASE_EXPIRED",
    "PURCHASE_APPROVED",
    "PURCHASE_COMPLETE",
    "PURCHASE_DELAYED",
    "PURCHASE_PROTEST",
    "PURCHASE_REFUNDED",
    "PURCHASE_CHARGEBACK",
    "SUBSCRIPTION_CANCELLATION",
    "CLUB_FIRST_ACCESS",
];
const PRODUCTS: [u64; 2] = [1_234_567, 7_654_321];
const EMAILS: [&str; 2] = ["a@x.test", "b@x.test"];

#[derive(Debug, Clone)]
struct Spec {
    /// 0 Hotmart, 1 Kiwify, 2 Eduzz (Hotmart where the platform does not send the event).
    platform: usize,
    event: usize,
    contact: usize,
    product: usize,
    transaction: usize,
    at: i64,
}

fn body(index: usize, spec: &Spec) -> Value {
    let other = match spec.platform {
        1 => kiwify_body(index, spec),
        2 => eduzz_body(index, spec),
        _ => None,
    };
    other.unwrap_or_else(|| hotmart_body(index, spec))
}

/// The event as Kiwify sends it (times zone-less, in São Paulo; the fraction of a second
/// makes each body's key its own).
fn kiwify_body(index: usize, spec: &Spec) -> Option<Value> {
    let at = 1_745_000_000_000 + spec.at * 60_000 - 3 * 3_600_000;
    let when = chrono::DateTime::from_timestamp_millis(at)
        .unwrap()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let when = format!("{when}.{index:03}");
    let email = EMAILS[spec.contact];
    let product = PRODUCTS[spec.product].to_string();
    let event = match EVENTS[spec.event] {
        "PURCHASE_OUT_OF_SHOPPING_CART" => {
            return Some(
                serde_json::json!({"id": format!("cart-{index}"), "status": "abandoned",
                "email": email, "product_id": product, "created_at": when}),
            );
        }
        "PURCHASE_BILLET_PRINTED" => "billet_created",
        "PURCHASE_CANCELED" => "order_rejected",
        "PURCHASE_APPROVED" => "order_approved",
        "PURCHASE_REFUNDED" => "order_refunded",
        "PURCHASE_CHARGEBACK" => "chargeback",
        "PURCHASE_DELAYED" => "subscription_late",
        "SUBSCRIPTION_CANCELLATION" => "subscription_canceled",
        "CLUB_FIRST_ACCESS" => "subscription_renewed",
        _ => return None,
    };
    Some(serde_json::json!({
        "order_id": format!("K{}", spec.transaction), "webhook_event_type": event, "updated_at": when,
        "Product": {"product_id": product}, "Customer": {"email": email},
        "Commissions": {"charge_amount": 1000 * (spec.transaction as i64 + 1), "currency": "BRL"},
        "subscription_id": (spec.transaction == 0).then_some("KS0"),
    }))
}

/// The event as Eduzz's webhook v3 sends it.
fn eduzz_body(index: usize, spec: &Spec) -> Option<Value> {
    let at = 1_745_000_000_000 + spec.at * 60_000;
    let sent = chrono::DateTime::from_timestamp_millis(at)
        .unwrap()
        .to_rfc3339();
    let email = EMAILS[spec.contact];
    let product = PRODUCTS[spec.product];
    let id = format!("evt-{index}");
    let (event, data) = match EVENTS[spec.event] {
        "PURCHASE_OUT_OF_SHOPPING_CART" => (
            "sun.cart_abandonment",
            serde_json::json!({"id": format!("cart-{index}"), "productId": [product], "customer": {"email": email}}),
        ),
        "SUBSCRIPTION_CANCELLATION" => (
            "myeduzz.contract_updated",
            serde_json::json!({"id": format!("C{}", spec.transaction), "status": "canceled",
                "product": {"id": product}, "buyer": {"email": email}}),
        ),
        other => {
            let event = match other {
                "PURCHASE_BILLET_PRINTED" => "myeduzz.invoice_waiting_payment",
                "PURCHASE_CANCELED" => "myeduzz.invoice_refused",
                "PURCHASE_EXPIRED" => "myeduzz.invoice_expired",
                "PURCHASE_APPROVED" => "myeduzz.invoice_paid",
                "PURCHASE_DELAYED" => "myeduzz.invoice_overdue",
                "PURCHASE_PROTEST" => "myeduzz.invoice_waiting_refund",
                "PURCHASE_REFUNDED" => "myeduzz.invoice_refunded",
                "PURCHASE_CHARGEBACK" => "myeduzz.invoice_chargeback",
                "CLUB_FIRST_ACCESS" => "myeduzz.invoice_scheduled",
                _ => return None,
            };
            (
                event,
                serde_json::json!({"id": format!("I{}", spec.transaction), "buyer": {"email": email},
                    "price": {"value": 10 * (spec.transaction + 1), "currency": "BRL"},
                    "items": [{"productId": product, "name": "P"}]}),
            )
        }
    };
    Some(serde_json::json!({"id": id, "event": event, "sentDate": sent, "data": data}))
}

/// Which adapter reads a body, by its shape.
fn platform_of(body: &Value) -> Platform {
    if body.get("sentDate").is_some() {
        Platform::Eduzz
    } else if body.get("webhook_event_type").is_some() || body.get("status").is_some() {
        Platform::Kiwify
    } else {
        Platform::Hotmart
    }
}

/// A body's sale event and its deduplication key, as the inbox and workers read them.
fn parse(body: &Value) -> (entity::sale::event::SaleEvent, String) {
    let platform = platform_of(body);
    let key = platform.envelope(body).unwrap().id;
    (platform.sale_events(body).unwrap().remove(0), key)
}

fn hotmart_body(index: usize, spec: &Spec) -> Value {
    let id = format!("evt-{index}");
    let email = EMAILS[spec.contact];
    let product = PRODUCTS[spec.product];
    let at = 1_745_000_000_000 + spec.at * 60_000;
    let event = EVENTS[spec.event];
    match event {
        "PURCHASE_OUT_OF_SHOPPING_CART" => cart(&id, at, email, product),
        "CLUB_FIRST_ACCESS" | "SUBSCRIPTION_CANCELLATION" => serde_json::json!({
            "id": id, "creation_date": at, "event": event,
            "data": {"product": {"id": product}, "user": {"email": email}, "subscriber": {"code": format!("S{}", spec.transaction), "email": email}}
        }),
        _ => Purchase {
            id: &id,
            event,
            at,
            email,
            product,
            transaction: &format!("HP{}", spec.transaction),
            price: 10.0 * (spec.transaction as f64 + 1.0),
            subscriber: (spec.transaction == 0).then_some("S0"),
        }
        .body(),
    }
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        0..3usize,
        0..EVENTS.len(),
        0..2usize,
        0..2usize,
        0..3usize,
        0..20i64,
    )
        .prop_map(
            |(platform, event, contact, product, transaction, at)| Spec {
                platform,
                event,
                contact,
                product,
                transaction,
                at,
            },
        )
}

/// Deals of an integration, independent of ids: per contact and key, in creation order.
type Shape = Vec<(
    String,
    String,
    String,
    Option<i64>,
    Vec<String>,
    Vec<(String, Option<String>)>,
)>;

async fn shape(app: &TestApp, snap: &IntegrationSnapshot) -> Shape {
    let db = &app.db.conn;
    let mut deals = deal::Entity::find()
        .filter(deal::Column::GroupId.eq(snap.group.id.as_str()))
        .all(db)
        .await
        .unwrap();
    deals.sort_by_key(|d| {
        (
            d.contact_id.clone(),
            d.created_at,
            d.last_event_at,
            d.status.as_str(),
        )
    });
    let mut out = Vec::new();
    for d in deals {
        let origin = snap
            .origins
            .iter()
            .find(|o| o.id == d.origin_id)
            .unwrap()
            .checkout_event
            .map_or("HAND_MADE", |e| e.as_str())
            .to_owned();
        let mut refs: Vec<String> = deal_ref::Entity::find()
            .filter(deal_ref::Column::DealId.eq(d.id.as_str()))
            .all(db)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.reference)
            .collect();
        refs.sort();
        let mut timeline: Vec<(String, Option<String>)> = deal_event::Entity::find()
            .filter(deal_event::Column::DealId.eq(d.id.as_str()))
            .all(db)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.dedup_id, e.effect.map(|x| x.as_str().to_owned())))
            .collect();
        timeline.sort();
        // Contacts are per account, so both integrations share them.
        out.push((
            d.contact_id,
            origin,
            d.status.as_str().to_owned(),
            d.value_cents.map(|v| v / 100),
            refs,
            timeline,
        ));
    }
    out.sort();
    out
}

async fn integration(
    app: &TestApp,
    keys: &SecretKeys,
    caller: &Caller,
    merged: bool,
) -> IntegrationSnapshot {
    let events: Vec<HotmartEvent> = HotmartEvent::ALL.to_vec();
    let created = integrations::create(&app.db.conn, caller, "Prop", &events)
        .await
        .unwrap();
    for product in PRODUCTS {
        let id = product.to_string();
        products::add(
            &app.db.conn,
            keys,
            caller,
            &created.id,
            NewProduct {
                hotmart_product_id: &id,
                hottok: Some("hottok-prop-0001"),
                id_field: "hotmartProductId",
                name: None,
                label: None,
            },
        )
        .await
        .unwrap();
    }
    let changes = integrations::IntegrationChanges {
        merge_products: Some(merged),
        ..Default::default()
    };
    integrations::update(&app.db.conn, caller, &created.id, changes)
        .await
        .unwrap();
    IntegrationSnapshot::load(&app.db.conn, &created.id)
        .await
        .unwrap()
}

fn keys() -> SecretKeys {
    SecretKeys::new(tests::SECRET_KEY.as_bytes())
}

async fn apply_all(app: &TestApp, snap: &IntegrationSnapshot, bodies: &[Value]) {
    for body in bodies {
        let (parsed, id) = parse(body);
        let txn = app.db.conn.begin().await.unwrap();
        apply_event(
            &txn,
            &keys(),
            snap,
            IncomingEvent::webhook(&parsed, id, "prop", 0),
        )
        .await
        .unwrap();
        txn.commit().await.unwrap();
    }
}

/// Applies `bodies` in groups (sizes 1 to 6, from `seed`), each group in one transaction
/// with one call of the set-wise engine, as the workers do.
async fn apply_grouped(app: &TestApp, snap: &IntegrationSnapshot, bodies: &[Value], seed: u64) {
    let parsed: Vec<_> = bodies.iter().map(parse).collect();
    let mut rest: &[_] = &parsed;
    let mut state = seed | 1;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let size = (1 + (state % 6) as usize).min(rest.len());
        let (group, tail) = rest.split_at(size);
        rest = tail;
        let items: Vec<_> = group
            .iter()
            .map(|(p, id)| (snap, IncomingEvent::webhook(p, id.clone(), "prop", 0)))
            .collect();
        let txn = app.db.conn.begin().await.unwrap();
        apply_group(&txn, &keys(), &items).await.unwrap();
        txn.commit().await.unwrap();
    }
}

#[test]
fn shuffled_and_duplicated_events_converge_on_sqlite() {
    converge(Backend::Sqlite, 64);
}

#[test]
fn shuffled_and_duplicated_events_converge_on_postgres() {
    if tests::postgres_url().is_none() {
        tests::skip_notice("shuffled_and_duplicated_events_converge_on_postgres");
        return;
    }
    converge(Backend::Postgres, 24);
}

fn converge(backend: Backend, cases: u32) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = runtime.block_on(TestApp::spawn_without_workers(backend));
    let keys = SecretKeys::new(tests::SECRET_KEY.as_bytes());
    let caller = Caller {
        user_id: app.admin_id.clone(),
        account_id: app.account_id.clone(),
        role: Role::Admin,
    };
    let config = ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(specs in prop::collection::vec(spec(), 1..14), shuffle_seed in any::<u64>(), dup_mask in any::<u32>(), merged in any::<bool>())| {
        runtime.block_on(async {
            let bodies: Vec<Value> = specs.iter().enumerate().map(|(i, s)| body(i, s)).collect();
            let mut order: Vec<usize> = (0..bodies.len()).collect();
            order.sort_by_key(|&i| (specs[i].at, format!("evt-{i}")));
            let in_time_order: Vec<Value> = order.iter().map(|&i| bodies[i].clone()).collect();
            // A deterministic shuffle from the seed, plus duplicates of some events.
            let mut arrival = bodies.clone();
            let mut state = shuffle_seed | 1;
            for i in (1..arrival.len()).rev() {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                arrival.swap(i, (state % (i as u64 + 1)) as usize);
            }
            for (i, b) in bodies.iter().enumerate() {
                if dup_mask & (1 << (i % 32)) != 0 {
                    arrival.insert((i * 7) % (arrival.len() + 1), b.clone());
                }
            }
            let ordered = integration(&app, &keys, &caller, merged).await;
            let shuffled = integration(&app, &keys, &caller, merged).await;
            apply_all(&app, &ordered, &in_time_order).await;
            apply_all(&app, &shuffled, &arrival).await;
            let (a, b) = (shape(&app, &ordered).await, shape(&app, &shuffled).await);
            prop_assert_eq!(&a, &b);
            // The same arrival applied in groups (duplicates inside a group too).
            let grouped = integration(&app, &keys, &caller, merged).await;
            apply_grouped(&app, &grouped, &arrival, shuffle_seed.rotate_left(17)).await;
            prop_assert_eq!(&a, &shape(&app, &grouped).await);
            // At most one open deal per key.
            let open = deal::Entity::find()
                .filter(deal::Column::GroupId.is_in([ordered.group.id.as_str(), shuffled.group.id.as_str()]))
                .filter(deal::Column::Status.eq("OPEN"))
                .all(&app.db.conn).await.unwrap();
            let mut keys_seen = std::collections::HashSet::new();
            for d in open { prop_assert!(keys_seen.insert(d.deal_key.clone()), "two open deals for {}", d.deal_key); }
            Ok(())
        })?;
    });
}
