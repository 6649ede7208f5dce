//! Processing webhook deliveries: the job handler, its retry bookkeeping, and the sweeper
//! that re-enqueues `PENDING` deliveries whose job vanished.

use entity::{
    deliveries::{self, AfterFailure},
    now_ms,
};

pub use crate::context::{HotmartEndpoints, JobContext, WorkerSettings};

/// Runs one attempt for deliveries, with a deadline, and schedules the next attempt (or
/// marks the delivery `FAILED`) for each one that failed.
pub async fn handle_deliveries(ctx: &JobContext, delivery_ids: &[String]) {
    let ahead = waiting_deliveries(ctx, delivery_ids).await;
    let group: Vec<String> = delivery_ids.iter().chain(&ahead).cloned().collect();
    let attempt = tokio::time::timeout(
        ctx.settings.deadline,
        deliveries::process_batch(&ctx.db, &ctx.keys, &group),
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

/// The deliveries taken ahead of this job's own (see
/// [`deliveries::waiting_ahead`]); none when the look fails.
async fn waiting_deliveries(ctx: &JobContext, own: &[String]) -> Vec<String> {
    match deliveries::waiting_ahead(&ctx.db, own).await {
        Ok(ids) => ids,
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
    let stale = deliveries::stale_pending(&ctx.db.conn, cutoff, 500).await?;
    if stale.is_empty() {
        return Ok(0);
    }
    let covered = crate::queue::deliveries_in_unfinished_jobs(&ctx.db).await?;
    let mut requeued = 0;
    for delivery in stale.into_iter().filter(|d| !covered.contains(&d.id)) {
        if deliveries::claim_for_requeue(&ctx.db.conn, &delivery).await? {
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
