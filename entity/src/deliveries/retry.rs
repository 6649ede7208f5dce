//! After a failed attempt: the next one or `FAILED`; replays; the sweeper's claims.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, Set, sea_query::Expr,
};

use crate::{
    Caller, DomainError, DomainResult,
    integrations::{self},
    now_ms,
    platform::Platform,
    scope::find_scoped,
    tables::webhook_delivery,
};

use super::{DeliveryStatus, routing::routing_problem};

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

/// `PENDING` deliveries whose job was enqueued before `cutoff` (or never), oldest first:
/// the sweeper's candidates for a new job.
pub async fn stale_pending(
    db: &impl ConnectionTrait,
    cutoff: i64,
    limit: u64,
) -> DomainResult<Vec<webhook_delivery::Model>> {
    Ok(webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending.as_str()))
        .filter(
            Condition::any()
                .add(webhook_delivery::Column::EnqueuedAt.lt(cutoff))
                .add(webhook_delivery::Column::EnqueuedAt.is_null()),
        )
        .order_by_asc(webhook_delivery::Column::ReceivedAt)
        .limit(limit)
        .all(db)
        .await?)
}

/// Claims a stale delivery for a new job by moving its `enqueued_at`, so that two
/// sweepers enqueue it once: true for the one whose update found it unchanged.
pub async fn claim_for_requeue(
    db: &impl ConnectionTrait,
    delivery: &webhook_delivery::Model,
) -> DomainResult<bool> {
    let claimed = webhook_delivery::Entity::update_many()
        .col_expr(webhook_delivery::Column::EnqueuedAt, Expr::val(now_ms()))
        .filter(webhook_delivery::Column::Id.eq(delivery.id.as_str()))
        .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending.as_str()))
        .filter(match delivery.enqueued_at {
            Some(at) => webhook_delivery::Column::EnqueuedAt.eq(at),
            None => webhook_delivery::Column::EnqueuedAt.is_null(),
        })
        .exec(db)
        .await?;
    Ok(claimed.rows_affected == 1)
}
