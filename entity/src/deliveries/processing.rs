//! Processing stored deliveries through the deal engine, a group per write transaction.

use std::collections::HashMap;

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, sea_query::Expr,
};

use crate::{
    DomainError, DomainResult,
    database::Database,
    engine::apply::{Applied, IncomingEvent, IntegrationSnapshot, apply_group},
    now_ms,
    platform::Platform,
    sale::event::SaleEvent,
    secrets::SecretKeys,
    tables::webhook_delivery,
};

use super::DeliveryStatus;

/// Parses the `PENDING` deliveries among `ids` and applies them through the deal engine
/// as one group, in one write transaction: their effects and their `PROCESSED` marks
/// commit together, so a crash leaves either both or neither. When the group fails, it is
/// rolled back and processed again one delivery per transaction, so that one bad delivery
/// does not hold back the others: the failures are returned, for the caller to retry.
pub async fn process_batch(
    db: &Database,
    keys: &SecretKeys,
    ids: &[String],
) -> DomainResult<BatchOutcome> {
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
    match process_group(&*txn, keys, &parsed).await {
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
        match process_group(&*txn, keys, std::slice::from_ref(one)).await {
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
pub async fn process_in(
    txn: &impl ConnectionTrait,
    keys: &SecretKeys,
    delivery_id: &str,
) -> DomainResult<()> {
    let row = webhook_delivery::Entity::find_by_id(delivery_id.to_owned())
        .one(txn)
        .await?
        .ok_or(DomainError::NotFound("delivery"))?;
    let snap = IntegrationSnapshot::load(txn, &row.integration_id).await?;
    let parsed: Parsed<'_> = (&row, stored_events(&row, &snap), &snap);
    process_group(txn, keys, std::slice::from_ref(&parsed)).await
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
async fn process_group(
    txn: &impl ConnectionTrait,
    keys: &SecretKeys,
    group: &[Parsed<'_>],
) -> DomainResult<()> {
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
        applied_rows.push((*delivery, events));
    }
    let outcome = apply_group(txn, keys, &items).await?;
    // A delivery is applied when any of its events was.
    let mut best: Vec<Option<&Applied>> = vec![None; applied_rows.len()];
    for (owner, applied) in owners.into_iter().zip(&outcome.applied) {
        let slot = &mut best[owner];
        if slot.is_none() || matches!(applied, Applied::Applied { .. }) {
            *slot = Some(applied);
        }
    }
    let mut erased = Vec::new();
    for ((delivery, events), applied) in applied_rows.into_iter().zip(best) {
        if matches!(applied, Some(Applied::Erased)) {
            erased.push((delivery, events));
        }
        let reason = match applied {
            Some(Applied::Duplicate) => Some("event already in the deal log: no second effect"),
            Some(Applied::NoContact) => Some("no buyer e-mail in the delivery: nothing to attach"),
            Some(Applied::Erased) => Some(crate::privacy::BUYER_ERASED),
            Some(Applied::Applied { .. }) | None => None,
        };
        done.push((delivery, reason.map(str::to_owned)));
    }
    crate::privacy::redact_skipped(txn, &erased).await?;
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

/// Most deliveries one group processes, its own and those taken ahead.
pub const GROUP_LIMIT: usize = 64;

/// SQLite: deliveries accepted and never attempted yet, beyond a job's `own`, to fill
/// its group up to [`GROUP_LIMIT`]; none on PostgreSQL.
///
/// Under a steady trickle of webhooks each inbox commit holds one or two deliveries, so
/// each job carries one or two, and processing pays a group's fixed statements for every
/// delivery. Taking waiting deliveries ahead makes the groups full again; their own jobs
/// find them `PROCESSED` later and cost one read. Only deliveries never attempted are
/// taken, so a retry still waits for its backoff. On SQLite every write transaction goes
/// through the process's write gate, so two groups never apply the same delivery at once
/// (and if one commits first, the other's mark finds it processed and keeps nothing: see
/// [`process_batch`]). PostgreSQL runs jobs in parallel and keeps one job, one group.
pub async fn waiting_ahead(db: &Database, own: &[String]) -> DomainResult<Vec<String>> {
    let room = GROUP_LIMIT.saturating_sub(own.len());
    if room == 0 || !db.is_sqlite() {
        return Ok(Vec::new());
    }
    // No ORDER BY: the status index yields pending rows in insertion order and the query
    // stops after `room + own` of them instead of sorting every pending delivery.
    let found: Vec<String> = webhook_delivery::Entity::find()
        .select_only()
        .column(webhook_delivery::Column::Id)
        .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending.as_str()))
        .filter(webhook_delivery::Column::Attempts.eq(0))
        .limit((room + own.len()) as u64)
        .into_tuple()
        .all(&db.conn)
        .await?;
    Ok(found
        .into_iter()
        .filter(|id| !own.contains(id))
        .take(room)
        .collect())
}
