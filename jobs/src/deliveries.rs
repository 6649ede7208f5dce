//! Processing webhook deliveries: the job handler, its retry bookkeeping, and the sweeper
//! that re-enqueues `PENDING` deliveries whose job vanished.

use entity::{
    deliveries::{self, AfterFailure, DeliveryStatus},
    now_ms,
    tables::webhook_delivery,
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, sea_query::Expr};

pub use crate::context::{HotmartEndpoints, JobContext, WorkerSettings};

/// Runs one attempt for deliveries, with a deadline, and schedules the next attempt (or
/// marks the delivery `FAILED`) for each one that failed.
pub async fn handle_deliveries(ctx: &JobContext, delivery_ids: &[String]) {
    let ahead = waiting_deliveries(ctx, delivery_ids).await;
    let group: Vec<String> = delivery_ids.iter().chain(&ahead).cloned().collect();
    let attempt = tokio::time::timeout(
        ctx.settings.deadline,
        deliveries::process_batch(&ctx.db, &group),
    )
    .await;
    let mut processed = 0;
    let failures: Vec<(String, String)> = match attempt {
        Ok(Ok(outcome)) => {
            processed = outcome.processed;
            // A delivery taken ahead that failed stays as it was: its own job attempts
            // it, with the usual retries and backoff.
            outcome
                .failures
                .into_iter()
                .filter(|(id, _)| delivery_ids.contains(id))
                .map(|(id, err)| (id, err.to_string()))
                .collect()
        }
        Ok(Err(err)) => delivery_ids
            .iter()
            .map(|id| (id.clone(), err.to_string()))
            .collect(),
        Err(_) => delivery_ids
            .iter()
            .map(|id| {
                let error = format!("processing took longer than {:?}", ctx.settings.deadline);
                (id.clone(), error)
            })
            .collect(),
    };
    ctx.telemetry.attempts("processed", processed as u64);
    for (delivery_id, error) in failures {
        retry_later(ctx, &delivery_id, error).await;
    }
}

/// Most deliveries one group processes, its own and those taken ahead.
pub const GROUP_LIMIT: usize = 64;

/// SQLite: deliveries accepted and never attempted yet, beyond this job's own, to fill
/// the group up to [`GROUP_LIMIT`].
///
/// Under a steady trickle of webhooks each inbox commit holds one or two deliveries, so
/// each job carries one or two, and processing pays a group's fixed statements for every
/// delivery, far behind intake (figures in `docs/performance.md`).
/// Taking waiting deliveries ahead makes the groups full again; their own jobs find them
/// `PROCESSED` later and cost one read. Only deliveries never attempted are taken, so a
/// retry still waits for its backoff. On SQLite every write transaction goes through the
/// process's write gate, so two groups never apply the same delivery at once (and if one
/// commits first, the other's mark finds it processed and keeps nothing: see
/// `deliveries::process_batch`). PostgreSQL runs jobs in parallel and keeps one job, one
/// group.
async fn waiting_deliveries(ctx: &JobContext, own: &[String]) -> Vec<String> {
    let room = GROUP_LIMIT.saturating_sub(own.len());
    if room == 0 || !ctx.db.is_sqlite() {
        return Vec::new();
    }
    // No ORDER BY: the status index yields pending rows in insertion order and the query
    // stops after `room + own` of them instead of sorting every pending delivery.
    let found: Result<Vec<String>, _> = webhook_delivery::Entity::find()
        .select_only()
        .column(webhook_delivery::Column::Id)
        .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending.as_str()))
        .filter(webhook_delivery::Column::Attempts.eq(0))
        .limit((room + own.len()) as u64)
        .into_tuple()
        .all(&ctx.db.conn)
        .await;
    match found {
        Ok(ids) => ids
            .into_iter()
            .filter(|id| !own.contains(id))
            .take(room)
            .collect(),
        Err(err) => {
            tracing::warn!(error = %err, "cannot look for waiting deliveries");
            Vec::new()
        }
    }
}

/// Records a failed attempt and enqueues the next one after the backoff, or leaves the
/// delivery `FAILED` when it is out of attempts.
async fn retry_later(ctx: &JobContext, delivery_id: &str, error: String) {
    let policy = &ctx.settings;
    let after =
        deliveries::record_failure(&ctx.db.conn, delivery_id, &error, |a| policy.retry_in(a)).await;
    match after {
        Ok(AfterFailure::RetryAfter { attempt, delay }) => {
            ctx.telemetry.attempts("retry", 1);
            tracing::warn!(delivery = delivery_id, attempt, delay_secs = delay.as_secs(), error = %error, "delivery failed; will retry");
            if let Err(err) = ctx.queue.enqueue_delivery(delivery_id, Some(delay)).await {
                tracing::error!(delivery = delivery_id, error = %err, "cannot enqueue retry; the sweeper will");
            }
        }
        Ok(AfterFailure::Failed) => {
            ctx.telemetry.attempts("failed", 1);
            tracing::error!(delivery = delivery_id, error = %error, "delivery failed for good");
        }
        Ok(AfterFailure::Nothing) => {}
        Err(err) => tracing::error!(delivery = delivery_id, error = %err, "cannot record failure"),
    }
}

/// One pass of the sweeper; returns how many deliveries were re-enqueued.
pub async fn sweep_once(ctx: &JobContext) -> Result<usize, entity::DomainError> {
    let cutoff = now_ms() - ctx.settings.stale_after.as_millis() as i64;
    let stale = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending.as_str()))
        .filter(
            sea_orm::Condition::any()
                .add(webhook_delivery::Column::EnqueuedAt.lt(cutoff))
                .add(webhook_delivery::Column::EnqueuedAt.is_null()),
        )
        .order_by_asc(webhook_delivery::Column::ReceivedAt)
        .limit(500)
        .all(&ctx.db.conn)
        .await?;
    if stale.is_empty() {
        return Ok(0);
    }
    let covered = crate::queue::deliveries_in_unfinished_jobs(&ctx.db).await?;
    let mut requeued = 0;
    for delivery in stale.into_iter().filter(|d| !covered.contains(&d.id)) {
        // Claimed by moving `enqueued_at`, so that two sweepers enqueue it once.
        let claimed = webhook_delivery::Entity::update_many()
            .col_expr(webhook_delivery::Column::EnqueuedAt, Expr::val(now_ms()))
            .filter(webhook_delivery::Column::Id.eq(delivery.id.as_str()))
            .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending.as_str()))
            .filter(match delivery.enqueued_at {
                Some(at) => webhook_delivery::Column::EnqueuedAt.eq(at),
                None => webhook_delivery::Column::EnqueuedAt.is_null(),
            })
            .exec(&ctx.db.conn)
            .await?;
        if claimed.rows_affected == 1 {
            ctx.queue
                .enqueue_delivery(&delivery.id, None)
                .await
                .map_err(|err| entity::DomainError::Internal(err.to_string()))?;
            tracing::info!(delivery = %delivery.id, "re-enqueued a pending delivery whose job was gone");
            requeued += 1;
        }
    }
    Ok(requeued)
}
