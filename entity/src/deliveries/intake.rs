//! Storing authentic deliveries: new, duplicate, test, ignored or rejected, in the
//! caller's transaction.

use std::{collections::HashSet, sync::Arc};

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, TryInsertResult,
};

use crate::{
    DomainResult, new_id, now_ms,
    platform::Platform,
    sale::event::Envelope,
    secrets::sha256_hex,
    tables::{integration, product, webhook_delivery},
};

use super::{DeliveryStatus, routing::routing_problem};

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

/// An authentic, well-formed delivery to store, as the webhook endpoint (or a
/// simulation) hands it over: its integration and products as routed, its envelope as
/// parsed, its body as it will be kept.
pub struct Submission {
    pub integration: Arc<integration::Model>,
    /// Came in on the previous URL of a rotation with grace.
    pub via_previous_url: bool,
    pub products: Arc<Vec<product::Model>>,
    pub envelope: Envelope,
    pub body: String,
}

/// What becomes of an authentic delivery: a test, ignored (with the reason), or pending.
fn status_of(item: &Submission) -> DomainResult<(DeliveryStatus, Option<String>)> {
    if item.envelope.is_test {
        let platform = Platform::of(&item.integration);
        return Ok((
            DeliveryStatus::Test,
            Some(format!("{} test event", platform.title())),
        ));
    }
    Ok(
        match routing_problem(&item.integration, &item.products, &item.envelope)? {
            Some(reason) => (DeliveryStatus::Ignored, Some(reason)),
            None => (DeliveryStatus::Pending, None),
        },
    )
}

/// The inbox row of a delivery.
fn new_row(
    item: &Submission,
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
    items: &[&Submission],
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
    item: &Submission,
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
