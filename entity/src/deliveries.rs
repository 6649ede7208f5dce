//! The webhook inbox: every authentic delivery, as received (`docs/webhooks.md`).

pub use crate::tables::enums::DeliveryStatus;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};

use crate::{
    DomainResult,
    page::{Cursor, Page, PageRequest},
    tables::webhook_delivery,
};

/// Deliveries of one integration, newest first. The caller must already have been
/// allowed to see the integration.
pub async fn page_of_integration(
    db: &impl ConnectionTrait,
    integration_id: &str,
    status: Option<DeliveryStatus>,
    page: PageRequest,
) -> DomainResult<Page<webhook_delivery::Model>> {
    use webhook_delivery::Column;
    let mut query =
        webhook_delivery::Entity::find().filter(Column::IntegrationId.eq(integration_id));
    if let Some(status) = status {
        query = query.filter(Column::Status.eq(status.as_str()));
    }
    crate::page::fetch(db, query, Column::ReceivedAt, Column::Id, page, |row| {
        Cursor {
            at: row.received_at,
            id: row.id.clone(),
        }
    })
    .await
}

use std::collections::{HashMap, HashSet};

use sea_orm::{ActiveModelTrait, IntoActiveModel, Set, TryInsertResult, sea_query::Expr};

use crate::{
    Caller, DomainError, EventClass,
    database::Database,
    engine::apply::{Applied, IncomingEvent, IntegrationSnapshot, apply_group},
    integrations::{self, IntegrationStatus},
    new_id, now_ms,
    platform::Platform,
    sale::event::{Envelope, SaleEvent},
    scope::find_scoped,
    secrets::{SecretKeys, sha256_hex},
    tables::{integration, product},
};

/// The integration a webhook URL token names.
pub async fn integration_by_token(
    db: &impl ConnectionTrait,
    token: &str,
) -> DomainResult<Option<integration::Model>> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    if let Some(current) = integration::Entity::find()
        .filter(integration::Column::WebhookToken.eq(token))
        .one(db)
        .await?
    {
        return Ok(Some(current));
    }
    // A previous URL during its grace period (checked again on every delivery).
    Ok(integration::Entity::find()
        .filter(integration::Column::PreviousWebhookToken.eq(token))
        .one(db)
        .await?
        .filter(|model| crate::integrations::accepts_previous(model, token)))
}

/// Checks a presented hottok against every product of the integration. All comparisons
/// run (constant time each), so the timing does not tell which product matched.
pub fn hottok_is_valid(keys: &SecretKeys, products: &[product::Model], presented: &str) -> bool {
    products.iter().fold(false, |ok, p| {
        keys.hottok_matches(presented, &p.hottok_mac) | ok
    })
}

pub async fn record_hottok_failure(
    db: &impl ConnectionTrait,
    integration_id: &str,
) -> DomainResult<()> {
    integration::Entity::update_many()
        .col_expr(
            integration::Column::HottokFailures,
            sea_orm::sea_query::ExprTrait::add(Expr::col(integration::Column::HottokFailures), 1),
        )
        .filter(integration::Column::Id.eq(integration_id))
        .exec(db)
        .await?;
    // And in the integration's counter of the hour, for its health.
    count_refusal(db, integration_id).await
}

/// Counts a delivery refused for a wrong hottok, in the integration's counter of the
/// current hour (the health module reads it) (one row per integration and hour, not one per attempt).
async fn count_refusal(db: &impl ConnectionTrait, integration_id: &str) -> DomainResult<()> {
    use sea_orm::{DbBackend, Statement};
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "INSERT INTO hottok_refusals (integration_id, hour, refused) VALUES ($1, $2, 1) \
             ON CONFLICT (integration_id, hour) DO UPDATE SET refused = hottok_refusals.refused + 1"
        }
        _ => {
            "INSERT INTO hottok_refusals (integration_id, hour, refused) VALUES (?, ?, 1) \
             ON CONFLICT (integration_id, hour) DO UPDATE SET refused = hottok_refusals.refused + 1"
        }
    };
    let hour = now_ms() / 3_600_000;
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        sql,
        [integration_id.into(), hour.into()],
    ))
    .await?;
    Ok(())
}

/// Why an authentic delivery will not be processed now (it stays replayable).
pub fn routing_problem(
    integration: &integration::Model,
    products: &[product::Model],
    envelope: &Envelope,
) -> DomainResult<Option<String>> {
    if integrations::status(integration) != IntegrationStatus::Active {
        return Ok(Some(format!(
            "integration is {}",
            integration.status.as_str().to_lowercase()
        )));
    }
    let Some(kind) = envelope.kind else {
        return Ok(Some(format!("unknown event {:?}", envelope.event_name)));
    };
    if !integrations::receives(integration, &envelope.event_name, kind)? {
        return Ok(Some(format!(
            "event {} is not selected",
            envelope.event_name
        )));
    }
    let registered = |id: &String| products.iter().any(|p| &p.hotmart_product_id == id);
    match envelope.product_ids.as_slice() {
        // Info events may come without a product (plan changes, billing dates).
        [] if kind.class() != EventClass::Info => Ok(Some("no product id in the delivery".into())),
        [] => Ok(None),
        ids if !ids.iter().any(registered) => Ok(Some(format!(
            "product {} is not registered",
            ids.join(", ")
        ))),
        _ => Ok(None),
    }
}

/// What the inbox did with an authentic, well-formed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intake {
    /// Stored `PENDING`: to be processed (the caller enqueues it in the same transaction).
    Accepted {
        delivery_id: String,
    },
    Duplicate {
        delivery_id: String,
    },
    Test {
        delivery_id: String,
    },
    Ignored {
        delivery_id: String,
        reason: String,
    },
}

/// An authentic, well-formed delivery to store.
pub struct IntakeItem<'a> {
    pub integration: &'a integration::Model,
    /// Came in on the previous URL of a rotation with grace.
    pub via_previous_url: bool,
    pub products: &'a [product::Model],
    pub envelope: &'a Envelope,
    pub body: &'a str,
}

/// What becomes of an authentic delivery: a test, ignored (with the reason), or pending.
fn status_of(item: &IntakeItem<'_>) -> DomainResult<(DeliveryStatus, Option<String>)> {
    if item.envelope.is_test {
        let platform = Platform::of(item.integration);
        return Ok((
            DeliveryStatus::Test,
            Some(format!("{} test event", platform.title())),
        ));
    }
    Ok(
        match routing_problem(item.integration, item.products, item.envelope)? {
            Some(reason) => (DeliveryStatus::Ignored, Some(reason)),
            None => (DeliveryStatus::Pending, None),
        },
    )
}

/// The inbox row of a delivery.
fn new_row(
    item: &IntakeItem<'_>,
    status: DeliveryStatus,
    reason: Option<String>,
    now: i64,
) -> webhook_delivery::ActiveModel {
    let pending = status == DeliveryStatus::Pending;
    webhook_delivery::ActiveModel {
        id: Set(new_id()),
        account_id: Set(item.integration.account_id.clone()),
        integration_id: Set(item.integration.id.clone()),
        event_id: Set(Some(item.envelope.id.clone())),
        dedup_event_id: Set(Some(item.envelope.id.clone())),
        event: Set(Some(item.envelope.event_name.clone())),
        status: Set(status),
        reason: Set(reason),
        attempts: Set(0),
        payload: Set(item.body.to_owned()),
        payload_sha256: Set(sha256_hex(item.body.as_bytes())),
        body_differs: Set(false),
        via_previous_url: Set(item.via_previous_url),
        received_at: Set(now),
        processed_at: Set((!pending).then_some(now)),
        enqueued_at: Set(pending.then_some(now)),
    }
}

/// Inserts the rows whose event id the integration has not received yet; the ids of
/// those inserted.
async fn insert_new<C: ConnectionTrait>(
    db: &C,
    rows: &[webhook_delivery::ActiveModel],
) -> DomainResult<HashSet<String>> {
    if rows.is_empty() {
        return Ok(HashSet::new());
    }
    Ok(
        match webhook_delivery::Entity::insert_many(rows.to_vec())
            .on_conflict_do_nothing_on([
                webhook_delivery::Column::IntegrationId,
                webhook_delivery::Column::DedupEventId,
            ])
            .exec_with_returning_keys(db)
            .await?
        {
            TryInsertResult::Inserted(ids) => ids.into_iter().collect(),
            TryInsertResult::Empty | TryInsertResult::Conflicted => HashSet::new(),
        },
    )
}

/// Stores authentic deliveries, in order, with one multi-row insert (a burst is stored
/// in a few statements). Returns what happened to each; the `Accepted` ones are to be
/// processed (the caller enqueues them, in the same transaction).
pub async fn intake_many<C: ConnectionTrait>(
    db: &C,
    items: &[IntakeItem<'_>],
) -> DomainResult<Vec<Intake>> {
    let now = now_ms();
    let mut rows = Vec::with_capacity(items.len());
    let mut reasons = Vec::with_capacity(items.len());
    for item in items {
        let (status, reason) = status_of(item)?;
        rows.push(new_row(item, status, reason.clone(), now));
        reasons.push((status, reason));
    }
    let inserted = insert_new(db, &rows).await?;
    let mut outcomes = Vec::with_capacity(items.len());
    for ((item, row), (status, reason)) in items.iter().zip(rows).zip(reasons) {
        let id = row.id.clone().unwrap();
        if inserted.contains(&id) {
            outcomes.push(match status {
                DeliveryStatus::Pending => Intake::Accepted { delivery_id: id },
                DeliveryStatus::Test => Intake::Test { delivery_id: id },
                _ => Intake::Ignored {
                    delivery_id: id,
                    reason: reason.unwrap_or_default(),
                },
            });
        } else {
            outcomes.push(store_duplicate(db, item, row, now).await?);
        }
    }
    Ok(outcomes)
}

/// An event id seen before: this copy is kept too (nothing Hotmart sent is dropped),
/// flagged when its body differs from the first one.
async fn store_duplicate<C: ConnectionTrait>(
    db: &C,
    item: &IntakeItem<'_>,
    row: webhook_delivery::ActiveModel,
    now: i64,
) -> DomainResult<Intake> {
    let original = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::IntegrationId.eq(item.integration.id.as_str()))
        .filter(webhook_delivery::Column::DedupEventId.eq(item.envelope.id.as_str()))
        .one(db)
        .await?;
    let sha = row.payload_sha256.clone().unwrap();
    let id = row.id.clone().unwrap();
    let differs = original.as_ref().is_some_and(|o| o.payload_sha256 != sha);
    let mut duplicate = row;
    duplicate.dedup_event_id = Set(None);
    duplicate.status = Set(DeliveryStatus::Duplicate);
    duplicate.reason = Set(Some(match (&original, differs) {
        (Some(o), true) => format!(
            "event id already received in delivery {}, with a different body",
            o.id
        ),
        (Some(o), false) => format!("event id already received in delivery {}", o.id),
        (None, _) => "event id already received".to_owned(),
    }));
    duplicate.body_differs = Set(differs);
    duplicate.processed_at = Set(Some(now));
    duplicate.enqueued_at = Set(None);
    duplicate.insert(db).await?;
    Ok(Intake::Duplicate { delivery_id: id })
}

/// Stores a body that failed validation after the hottok header authenticated it.
pub async fn record_rejected(
    db: &impl ConnectionTrait,
    integration: &integration::Model,
    body: &[u8],
    reason: &str,
) -> DomainResult<()> {
    let now = now_ms();
    webhook_delivery::ActiveModel {
        id: Set(new_id()),
        account_id: Set(integration.account_id.clone()),
        integration_id: Set(integration.id.clone()),
        event_id: Set(None),
        dedup_event_id: Set(None),
        event: Set(None),
        status: Set(DeliveryStatus::Rejected),
        reason: Set(Some(reason.to_owned())),
        attempts: Set(0),
        payload: Set(String::from_utf8_lossy(body).into_owned()),
        payload_sha256: Set(sha256_hex(body)),
        body_differs: Set(false),
        via_previous_url: Set(false),
        received_at: Set(now),
        processed_at: Set(Some(now)),
        enqueued_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Parses the `PENDING` deliveries among `ids` and applies them through the deal engine
/// as one group, in one write transaction: their effects and their `PROCESSED` marks
/// commit together, so a crash leaves either both or neither. When the group fails, it is
/// rolled back and processed again one delivery per transaction, so that one bad delivery
/// does not hold back the others: the failures are returned, for the caller to retry.
pub async fn process_batch(db: &Database, ids: &[String]) -> DomainResult<BatchOutcome> {
    // By id alone: with `status = 'PENDING'` in the query, SQLite would walk the status
    // index over every pending delivery instead of looking the ids up.
    let mut rows = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::Id.is_in(ids.iter().map(String::as_str)))
        .all(&db.conn)
        .await?;
    rows.retain(|row| row.status == DeliveryStatus::Pending);
    if rows.is_empty() {
        return Ok(BatchOutcome::default());
    }
    let mut snapshots: HashMap<String, IntegrationSnapshot> = HashMap::new();
    for row in &rows {
        if !snapshots.contains_key(&row.integration_id) {
            let snap = IntegrationSnapshot::load(&db.conn, &row.integration_id).await?;
            snapshots.insert(row.integration_id.clone(), snap);
        }
    }
    let parsed: Vec<Parsed<'_>> = rows
        .iter()
        .map(|row| {
            let snap = &snapshots[&row.integration_id];
            (row, stored_events(row, snap), snap)
        })
        .collect();
    let txn = db.begin_write().await?;
    match process_group(&*txn, &parsed).await {
        Ok(()) => {
            txn.commit().await?;
            return Ok(BatchOutcome {
                processed: parsed.len(),
                failures: Vec::new(),
            });
        }
        Err(_) => txn.rollback().await?,
    }
    let mut outcome = BatchOutcome::default();
    for one in &parsed {
        let txn = db.begin_write().await?;
        match process_group(&*txn, std::slice::from_ref(one)).await {
            Ok(()) => {
                txn.commit().await?;
                outcome.processed += 1;
            }
            // Processed by another run meanwhile: nothing of this run may stay.
            Err(DomainError::Conflict(_)) => txn.rollback().await?,
            Err(err) => {
                txn.rollback().await?;
                outcome.failures.push((one.0.id.clone(), err));
            }
        }
    }
    Ok(outcome)
}

/// What [`process_batch`] did.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// Deliveries this call applied and marked `PROCESSED`.
    pub processed: usize,
    /// Deliveries that failed, with why.
    pub failures: Vec<(String, DomainError)>,
}

/// Processes one stored `PENDING` delivery inside the caller's transaction (the path of
/// `simulateDelivery`; workers use [`process_batch`]).
pub async fn process_in(txn: &impl ConnectionTrait, delivery_id: &str) -> DomainResult<()> {
    let row = webhook_delivery::Entity::find_by_id(delivery_id.to_owned())
        .one(txn)
        .await?
        .ok_or(DomainError::NotFound("delivery"))?;
    let snap = IntegrationSnapshot::load(txn, &row.integration_id).await?;
    let parsed: Parsed<'_> = (&row, stored_events(&row, &snap), &snap);
    process_group(txn, std::slice::from_ref(&parsed)).await
}

/// A stored delivery, its parsed body, and its integration.
type Parsed<'a> = (
    &'a webhook_delivery::Model,
    DomainResult<Vec<SaleEvent>>,
    &'a IntegrationSnapshot,
);

/// A stored delivery's sale events, read by its integration's platform. Products of an
/// Eduzz invoice that are not registered are left out (each registered one is its own
/// event).
fn stored_events(
    delivery: &webhook_delivery::Model,
    snap: &IntegrationSnapshot,
) -> DomainResult<Vec<SaleEvent>> {
    let value: serde_json::Value = serde_json::from_str(&delivery.payload)
        .map_err(|err| DomainError::Internal(format!("stored payload is not JSON: {err}")))?;
    let platform = Platform::of(&snap.integration);
    let mut events = platform
        .sale_events(&value)
        .map_err(|err| DomainError::Internal(err.to_string()))?;
    if events.len() > 1 {
        events.retain(|e| snap.product(e.product_id.as_deref()).is_some());
    }
    Ok(events)
}

/// The log's deduplication id of one of a delivery's events: the delivery's key, and the
/// product when the delivery carries several.
fn dedup_id(delivery: &webhook_delivery::Model, sale: &SaleEvent, several: bool) -> String {
    let key = delivery
        .dedup_event_id
        .clone()
        .or_else(|| delivery.event_id.clone())
        .unwrap_or_else(|| delivery.id.clone());
    match (several, &sale.product_id) {
        (true, Some(product)) => format!("{key}:{product}"),
        _ => key,
    }
}

/// Applies a group of parsed deliveries and marks them `PROCESSED`, with the reason when
/// one had no effect.
async fn process_group(txn: &impl ConnectionTrait, group: &[Parsed<'_>]) -> DomainResult<()> {
    let mut done: Vec<(&webhook_delivery::Model, Option<String>)> = Vec::new();
    let mut items = Vec::with_capacity(group.len());
    // Per event, the index of its delivery in `applied_rows`.
    let mut owners = Vec::with_capacity(group.len());
    let mut applied_rows = Vec::with_capacity(group.len());
    for (delivery, parsed, snap) in group {
        let events = parsed.as_ref().map_err(Clone::clone)?;
        if events.is_empty() {
            done.push((
                delivery,
                Some("no sale of a registered product in the delivery".into()),
            ));
            continue;
        }
        let several = events.len() > 1;
        for sale in events {
            let dedup = dedup_id(delivery, sale, several);
            let incoming = IncomingEvent::webhook(sale, dedup, &delivery.id, delivery.received_at);
            items.push((*snap, incoming));
            owners.push(applied_rows.len());
        }
        applied_rows.push(*delivery);
    }
    let outcome = apply_group(txn, &items).await?;
    // A delivery is applied when any of its events was.
    let mut best: Vec<Option<&Applied>> = vec![None; applied_rows.len()];
    for (owner, applied) in owners.into_iter().zip(&outcome.applied) {
        let slot = &mut best[owner];
        if slot.is_none() || matches!(applied, Applied::Applied { .. }) {
            *slot = Some(applied);
        }
    }
    for (delivery, applied) in applied_rows.into_iter().zip(best) {
        let reason = match applied {
            Some(Applied::Duplicate) => Some("event already in the deal log: no second effect"),
            Some(Applied::NoContact) => Some("no buyer e-mail in the delivery: nothing to attach"),
            Some(Applied::Applied { .. }) | None => None,
        };
        done.push((delivery, reason.map(str::to_owned)));
    }
    mark_processed(txn, &done).await
}

/// Marks deliveries `PROCESSED`: one statement per distinct reason.
async fn mark_processed(
    db: &impl ConnectionTrait,
    done: &[(&webhook_delivery::Model, Option<String>)],
) -> DomainResult<()> {
    use sea_orm::sea_query::ExprTrait;
    let mut by_reason: std::collections::BTreeMap<&Option<String>, Vec<&str>> = Default::default();
    for (delivery, reason) in done {
        by_reason
            .entry(reason)
            .or_default()
            .push(delivery.id.as_str());
    }
    let now = now_ms();
    for (reason, ids) in by_reason {
        let result = webhook_delivery::Entity::update_many()
            .col_expr(
                webhook_delivery::Column::Status,
                Expr::val(DeliveryStatus::Processed),
            )
            .col_expr(webhook_delivery::Column::Reason, Expr::val(reason.clone()))
            .col_expr(webhook_delivery::Column::ProcessedAt, Expr::val(now))
            .col_expr(
                webhook_delivery::Column::Attempts,
                Expr::col(webhook_delivery::Column::Attempts).add(1),
            )
            .filter(webhook_delivery::Column::Id.is_in(ids.iter().copied()))
            .filter(still_pending())
            .exec(db)
            .await?;
        if result.rows_affected != ids.len() as u64 {
            // Another run finished one first; this transaction's effects must not commit.
            return Err(DomainError::Conflict(
                "delivery was processed concurrently".into(),
            ));
        }
    }
    Ok(())
}

/// `status = 'PENDING'`, written so that neither backend answers it from the status index:
/// next to `id IN (…)`, SQLite would otherwise walk every pending delivery.
fn still_pending() -> sea_orm::sea_query::Expr {
    Expr::cust(format!(
        "\"status\" || '' = '{}'",
        DeliveryStatus::Pending.as_str()
    ))
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterFailure {
    /// Try again after `delay` (the caller enqueues the next attempt).
    RetryAfter {
        attempt: i32,
        delay: std::time::Duration,
    },
    /// Out of attempts: the delivery is `FAILED`.
    Failed,
    /// The delivery is not pending any more.
    Nothing,
}

/// Records a failed attempt. `retry_in(attempt)` is the retry policy: the delay before
/// the next attempt, or `None` when the delivery is out of attempts (it becomes
/// `FAILED`). A retried delivery stays `PENDING`, due after the delay.
pub async fn record_failure(
    db: &impl ConnectionTrait,
    delivery_id: &str,
    error: &str,
    retry_in: impl FnOnce(i32) -> Option<std::time::Duration>,
) -> DomainResult<AfterFailure> {
    let Some(delivery) = webhook_delivery::Entity::find_by_id(delivery_id.to_owned())
        .one(db)
        .await?
    else {
        return Ok(AfterFailure::Nothing);
    };
    if delivery.status != DeliveryStatus::Pending {
        return Ok(AfterFailure::Nothing);
    }
    let attempt = delivery.attempts + 1;
    let mut model = delivery.into_active_model();
    model.attempts = Set(attempt);
    model.reason = Set(Some(format!("attempt {attempt}: {error}")));
    let Some(delay) = retry_in(attempt) else {
        model.status = Set(DeliveryStatus::Failed);
        model.processed_at = Set(Some(now_ms()));
        model.update(db).await?;
        return Ok(AfterFailure::Failed);
    };
    model.enqueued_at = Set(Some(now_ms() + delay.as_millis() as i64));
    model.update(db).await?;
    Ok(AfterFailure::RetryAfter { attempt, delay })
}

/// Re-runs a delivery: the routing rules are checked again (an `IGNORED` delivery whose
/// product or event was added since is accepted now) and it becomes `PENDING` for
/// processing again. Returns the delivery and whether it is to be processed (enqueued).
pub async fn replay(
    db: &impl ConnectionTrait,
    caller: &Caller,
    id: &str,
) -> DomainResult<(webhook_delivery::Model, bool)> {
    caller.require_admin()?;
    let delivery = find_scoped::<webhook_delivery::Entity>(db, caller, id).await?;
    let status = delivery.status;
    if matches!(
        status,
        DeliveryStatus::Rejected | DeliveryStatus::Duplicate | DeliveryStatus::Test
    ) {
        return Err(DomainError::bad_input(
            "id",
            format!("a {} delivery cannot be replayed", status.as_str()),
        ));
    }
    let integration = integrations::get(db, caller, &delivery.integration_id).await?;
    let products = crate::products::of_integration(db, &integration.id).await?;
    let value: serde_json::Value = serde_json::from_str(&delivery.payload)
        .map_err(|_| DomainError::bad_input("id", "the stored body is not JSON"))?;
    let envelope = Platform::of(&integration)
        .envelope(&value)
        .map_err(|err| DomainError::bad_input("id", err.to_string()))?;
    let mut model = delivery.into_active_model();
    let accepted = match routing_problem(&integration, &products, &envelope)? {
        Some(reason) => {
            model.status = Set(DeliveryStatus::Ignored);
            model.reason = Set(Some(reason));
            model.processed_at = Set(Some(now_ms()));
            false
        }
        None => {
            model.status = Set(DeliveryStatus::Pending);
            model.reason = Set(Some("replayed".into()));
            model.attempts = Set(0);
            model.processed_at = Set(None);
            model.enqueued_at = Set(Some(now_ms()));
            true
        }
    };
    Ok((model.update(db).await?, accepted))
}

/// When the integration last received an authentic delivery, and a test event.
pub async fn last_received(
    db: &impl ConnectionTrait,
    integration_id: &str,
    test: bool,
) -> DomainResult<Option<i64>> {
    let mut query = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::IntegrationId.eq(integration_id));
    query = if test {
        query.filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Test))
    } else {
        query.filter(webhook_delivery::Column::Status.is_not_in([
            DeliveryStatus::Test.as_str(),
            DeliveryStatus::Rejected.as_str(),
        ]))
    };
    Ok(query
        .order_by_desc(webhook_delivery::Column::ReceivedAt)
        .one(db)
        .await?
        .map(|d| d.received_at))
}

/// Deliveries with `status` (an index range: use it for the small sets, `PENDING` and
/// `FAILED`).
pub async fn count_with_status(
    db: &impl ConnectionTrait,
    status: DeliveryStatus,
) -> DomainResult<u64> {
    Ok(webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::Status.eq(status.as_str()))
        .count(db)
        .await?)
}

/// A stored body for display: a top-level `hottok` is shown as `***` (bodies are stored
/// with it emptied already; older rows may still hold one), everything else is kept
/// exactly; a body that mentions a hottok and is not JSON is withheld whole.
pub fn redacted_payload(payload: &str) -> String {
    if !payload.contains("hottok") {
        return payload.to_owned();
    }
    match serde_json::from_str::<serde_json::Value>(payload) {
        Ok(serde_json::Value::Object(mut map)) if map.contains_key("hottok") => {
            map.insert("hottok".into(), serde_json::Value::String("***".into()));
            serde_json::Value::Object(map).to_string()
        }
        // Not JSON (a rejected body): where the hottok ends cannot be told; withhold it.
        Err(_) => "[body withheld: it mentions a hottok and is not valid JSON]".to_owned(),
        _ => payload.to_owned(),
    }
}

#[cfg(test)]
mod redaction_tests {
    use super::redacted_payload;

    #[test]
    fn body_hottoks_are_masked() {
        let shown = redacted_payload(r#"{"id":"a","hottok":"secret-123","event":"X"}"#);
        assert!(!shown.contains("secret-123"));
        assert!(shown.contains(r#""hottok":"***""#));
        assert_eq!(redacted_payload(r#"{"id":"a"}"#), r#"{"id":"a"}"#);
        assert!(!redacted_payload(r#"{"hottok":"secret-123""#).contains("secret-123"));
    }
}
