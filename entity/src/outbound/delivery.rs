//! The dispatcher's side of the outbox (see `docs/outbound.md`, "Delivery"): claiming the
//! messages that are due, recording each attempt and what follows from it (the next try
//! on the retry schedule, a delivered or failed message, an endpoint disabled), and
//! pruning old rows. Each outbox row is one (message, endpoint) delivery job, so a dead
//! endpoint's retries delay no one else's messages.

use std::collections::BTreeSet;

use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionSession, TransactionTrait,
    sea_query::{Expr, ExprTrait},
};

use super::{DELIVERED, FAILED, PENDING};
use crate::{
    DomainResult, new_id,
    tables::{outbound_attempt, outbound_message, webhook_endpoint},
};

/// Messages kept this long (ms).
pub const KEEP_MESSAGES_MS: i64 = 30 * 24 * 3_600_000;
/// Attempts kept this long (ms).
pub const KEEP_ATTEMPTS_MS: i64 = 90 * 24 * 3_600_000;

/// When failures disable an endpoint and how retries are spaced.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Delays after the first, second… failed attempt (ms); one attempt more than delays.
    pub schedule_ms: Vec<i64>,
    /// An endpoint failing without a success for this long is disabled (ms).
    pub disable_after_ms: i64,
    /// Longest `Retry-After` honoured (ms).
    pub max_retry_after_ms: i64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            schedule_ms: [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000]
                .iter()
                .map(|s| s * 1000)
                .collect(),
            disable_after_ms: 5 * 24 * 3_600_000,
            max_retry_after_ms: 24 * 3_600_000,
        }
    }
}

impl RetryPolicy {
    /// The delay after failed attempt number `attempt` (1-based), ±20 % jitter; `None`
    /// when the message is out of attempts.
    pub fn delay_after(&self, attempt: i32) -> Option<i64> {
        let base = *self.schedule_ms.get(usize::try_from(attempt - 1).ok()?)?;
        let jitter = 0.8 + 0.4 * rand::random::<f64>();
        Some((base as f64 * jitter).round() as i64)
    }
}

/// Claims up to `limit` due messages of enabled endpoints for `lease_ms`: each endpoint's
/// oldest, at most `per_endpoint` of any one, leaving out `busy` endpoints (those with as
/// many requests in flight as they may have); endpoints in a random order, so none is
/// always served last. One statement, an index probe per endpoint (`endpoint_id, status,
/// next_attempt_at`) whatever the backlog. On PostgreSQL rows other dispatchers are
/// claiming are skipped, not waited for.
pub async fn claim_due(
    db: &impl ConnectionTrait,
    now: i64,
    limit: u64,
    per_endpoint: u64,
    lease_ms: i64,
    busy: &[String],
) -> DomainResult<Vec<outbound_message::Model>> {
    let backend = db.get_database_backend();
    let mut values: Vec<sea_orm::Value> = Vec::new();
    let mut param = |v: sea_orm::Value| {
        values.push(v);
        match backend {
            DbBackend::Postgres => format!("${}", values.len()),
            _ => "?".to_owned(),
        }
    };
    let lease = param((now + lease_ms).into());
    let (due, fresh) = (param(now.into()), param(now.into()));
    let share = param((per_endpoint as i64).into());
    let busy_sql = if busy.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = busy.iter().map(|id| param(id.clone().into())).collect();
        format!(" AND e.id NOT IN ({})", list.join(", "))
    };
    let most = param((limit as i64).into());
    let pending = format!(
        "d.status = '{PENDING}' AND d.next_attempt_at <= {due} \
         AND (d.lease_until IS NULL OR d.lease_until < {fresh})"
    );
    let sql = claim_sql(backend, &lease, &pending, &share, &busy_sql, &most);
    if backend == DbBackend::Sqlite && !any_due(db, &pending, now).await? {
        return Ok(Vec::new());
    }
    let statement = sea_orm::Statement::from_sql_and_values(backend, sql, values);
    let mut claimed = outbound_message::Entity::find()
        .from_raw_sql(statement)
        .all(db)
        .await?;
    claimed.sort_by_key(|m| m.next_attempt_at);
    Ok(claimed)
}

/// The claim statement of [`claim_due`], from its parts.
fn claim_sql(
    backend: DbBackend,
    lease: &str,
    pending: &str,
    share: &str,
    busy_sql: &str,
    most: &str,
) -> String {
    // PostgreSQL walks the endpoints and takes each one's share by a lateral index probe;
    // SQLite (no LATERAL) runs the same probe as a correlated subquery.
    if backend == DbBackend::Postgres {
        format!(
            "UPDATE outbound_messages SET lease_until = {lease} WHERE id IN (\
               SELECT d.id FROM webhook_endpoints e CROSS JOIN LATERAL (\
                 SELECT d.id FROM outbound_messages d WHERE d.endpoint_id = e.id AND {pending} \
                 ORDER BY d.next_attempt_at LIMIT {share} FOR UPDATE SKIP LOCKED\
               ) d WHERE e.enabled{busy_sql} ORDER BY RANDOM() LIMIT {most}\
             ) RETURNING *"
        )
    } else {
        format!(
            "UPDATE outbound_messages SET lease_until = {lease} WHERE id IN (\
               SELECT m.id FROM webhook_endpoints e JOIN outbound_messages m ON m.id IN (\
                 SELECT d.id FROM outbound_messages d WHERE d.endpoint_id = e.id AND {pending} \
                 ORDER BY d.next_attempt_at LIMIT {share}\
               ) WHERE e.enabled{busy_sql} ORDER BY RANDOM() LIMIT {most}\
             ) RETURNING *"
        )
    }
}

/// Whether any enabled endpoint has a message due under `pending` (the claim's own
/// condition, with SQLite's two `?` for `now`): a read, so on SQLite an idle dispatcher's
/// polls never take the write lock (an `UPDATE` takes it even when it matches no row, and
/// waits for the engine's transactions to get it).
async fn any_due(db: &impl ConnectionTrait, pending: &str, now: i64) -> DomainResult<bool> {
    let sql = format!(
        "SELECT 1 FROM webhook_endpoints e WHERE e.enabled AND EXISTS (\
           SELECT 1 FROM outbound_messages d WHERE d.endpoint_id = e.id AND {pending}) LIMIT 1"
    );
    let statement =
        sea_orm::Statement::from_sql_and_values(DbBackend::Sqlite, sql, [now.into(), now.into()]);
    Ok(db.query_one_raw(statement).await?.is_some())
}

/// Hands claimed messages back unsent (due again at once).
pub async fn release(db: &impl ConnectionTrait, ids: &[String]) -> DomainResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    outbound_message::Entity::update_many()
        .col_expr(
            outbound_message::Column::LeaseUntil,
            Expr::value(Option::<i64>::None),
        )
        .filter(outbound_message::Column::Id.is_in(ids.iter().map(String::as_str)))
        .exec(db)
        .await?;
    Ok(())
}

/// What one attempt got.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub message: outbound_message::Model,
    pub at: i64,
    pub http_status: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i32,
    /// At most 1 KiB of the response body.
    pub response: Option<String>,
    /// A `Retry-After` the receiver asked for (429 and 503 only), in ms.
    pub retry_after_ms: Option<i64>,
}

impl AttemptResult {
    pub fn delivered(&self) -> bool {
        self.http_status.is_some_and(|s| (200..300).contains(&s)) && self.error.is_none()
    }
}

/// Why an endpoint is disabled.
pub fn gone_reason() -> String {
    "o receptor respondeu 410 Gone: desativado na hora".to_owned()
}

fn failing_reason(policy: &RetryPolicy) -> String {
    format!(
        "falhou sem nenhum sucesso por {} dias",
        policy.disable_after_ms / (24 * 3_600_000)
    )
}

/// Records a batch of attempts in one transaction; returns the endpoints it disabled.
pub async fn record<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    results: &[AttemptResult],
    policy: &RetryPolicy,
    now: i64,
) -> DomainResult<Vec<String>> {
    if results.is_empty() {
        return Ok(Vec::new());
    }
    let txn = db.begin().await?;
    insert_attempts(&txn, results).await?;
    let (ok, failed): (Vec<&AttemptResult>, Vec<&AttemptResult>) =
        results.iter().partition(|r| r.delivered());
    mark_delivered(&txn, &ok, now).await?;
    for r in &failed {
        schedule_retry(&txn, r, policy, now).await?;
    }
    let disabled = disable_failing(&txn, &ok, &failed, policy, now).await?;
    txn.commit().await?;
    Ok(disabled)
}

async fn insert_attempts(db: &impl ConnectionTrait, results: &[AttemptResult]) -> DomainResult<()> {
    let rows = results.iter().map(|r| outbound_attempt::ActiveModel {
        id: Set(new_id()),
        message_id: Set(r.message.id.clone()),
        endpoint_id: Set(r.message.endpoint_id.clone()),
        at: Set(r.at),
        http_status: Set(r.http_status),
        error: Set(r.error.clone()),
        duration_ms: Set(r.duration_ms),
        trigger: Set(r.message.next_trigger.clone()),
        response: Set(r.response.clone()),
    });
    let rows: Vec<_> = rows.collect();
    for chunk in rows.chunks(500) {
        outbound_attempt::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

async fn mark_delivered(
    db: &impl ConnectionTrait,
    ok: &[&AttemptResult],
    now: i64,
) -> DomainResult<()> {
    use outbound_message::Column as M;
    if ok.is_empty() {
        return Ok(());
    }
    for chunk in ok.chunks(500) {
        outbound_message::Entity::update_many()
            .col_expr(M::Status, Expr::value(DELIVERED))
            .col_expr(M::Attempts, Expr::col(M::Attempts).add(1))
            .col_expr(M::NextAttemptAt, Expr::value(Option::<i64>::None))
            .col_expr(M::LeaseUntil, Expr::value(Option::<i64>::None))
            .col_expr(M::DeliveredAt, Expr::value(now))
            .filter(M::Id.is_in(chunk.iter().map(|r| r.message.id.as_str())))
            .exec(db)
            .await?;
    }
    let endpoints: BTreeSet<&str> = ok.iter().map(|r| r.message.endpoint_id.as_str()).collect();
    // The last success is kept to the second: a busy endpoint's row is not written on
    // every batch (on PostgreSQL each write of that one row waits for the one before).
    use webhook_endpoint::Column as E;
    webhook_endpoint::Entity::update_many()
        .filter(
            sea_orm::Condition::any()
                .add(E::LastSuccessAt.is_null())
                .add(E::LastSuccessAt.lt(now - 1000))
                .add(E::FailingSince.is_not_null()),
        )
        .col_expr(webhook_endpoint::Column::LastSuccessAt, Expr::value(now))
        .col_expr(
            webhook_endpoint::Column::FailingSince,
            Expr::value(Option::<i64>::None),
        )
        .filter(webhook_endpoint::Column::Id.is_in(endpoints))
        .exec(db)
        .await?;
    Ok(())
}

/// A failed attempt: the next try on the schedule (or the receiver's `Retry-After`), or
/// `FAILED` when out of attempts, after a 410, or for a manual resend (one attempt).
async fn schedule_retry(
    db: &impl ConnectionTrait,
    r: &AttemptResult,
    policy: &RetryPolicy,
    now: i64,
) -> DomainResult<()> {
    use outbound_message::Column as M;
    let attempt = r.message.attempts + 1;
    let gone = r.http_status == Some(410);
    let next = if gone || r.message.next_trigger == "MANUAL" {
        None
    } else {
        policy.delay_after(attempt).map(|delay| {
            let asked = r
                .retry_after_ms
                .map(|a| a.clamp(0, policy.max_retry_after_ms));
            now + asked.unwrap_or(delay)
        })
    };
    outbound_message::Entity::update_many()
        .col_expr(
            M::Status,
            Expr::value(if next.is_some() { PENDING } else { FAILED }),
        )
        .col_expr(M::Attempts, Expr::value(attempt))
        .col_expr(M::NextAttemptAt, Expr::value(next))
        .col_expr(M::LeaseUntil, Expr::value(Option::<i64>::None))
        .col_expr(M::NextTrigger, Expr::value("AUTO"))
        .filter(M::Id.eq(r.message.id.as_str()))
        .exec(db)
        .await?;
    Ok(())
}

/// Starts the failure clock of endpoints that failed, and disables those that answered
/// 410 or have failed without a success for the policy's time; their pending messages
/// fail (a recovery requeues them once the endpoint is enabled again).
async fn disable_failing(
    db: &impl ConnectionTrait,
    ok: &[&AttemptResult],
    failed: &[&AttemptResult],
    policy: &RetryPolicy,
    now: i64,
) -> DomainResult<Vec<String>> {
    use webhook_endpoint::Column as E;
    let succeeded: BTreeSet<&str> = ok.iter().map(|r| r.message.endpoint_id.as_str()).collect();
    let failing: BTreeSet<&str> = failed
        .iter()
        .map(|r| r.message.endpoint_id.as_str())
        .filter(|e| !succeeded.contains(e))
        .collect();
    if failing.is_empty() {
        return Ok(Vec::new());
    }
    webhook_endpoint::Entity::update_many()
        .col_expr(E::FailingSince, Expr::value(now))
        .filter(E::Id.is_in(failing.iter().copied()))
        .filter(E::FailingSince.is_null())
        .exec(db)
        .await?;
    let gone: BTreeSet<&str> = failed
        .iter()
        .filter(|r| r.http_status == Some(410))
        .map(|r| r.message.endpoint_id.as_str())
        .collect();
    let mut disabled = Vec::new();
    for (ids, reason, stale) in [
        (gone, gone_reason(), false),
        (failing, failing_reason(policy), true),
    ] {
        if ids.is_empty() {
            continue;
        }
        let mut update = webhook_endpoint::Entity::update_many()
            .col_expr(E::Enabled, Expr::value(false))
            .col_expr(E::DisabledReason, Expr::value(reason))
            .col_expr(E::UpdatedAt, Expr::value(now))
            .filter(E::Id.is_in(ids))
            .filter(E::Enabled.eq(true));
        if stale {
            update = update.filter(E::FailingSince.lte(now - policy.disable_after_ms));
        }
        disabled.extend(
            update
                .exec_with_returning(db)
                .await?
                .into_iter()
                .map(|e| e.id),
        );
    }
    fail_pending(db, &disabled).await?;
    Ok(disabled)
}

/// The pending messages of disabled endpoints fail.
pub async fn fail_pending(db: &impl ConnectionTrait, endpoint_ids: &[String]) -> DomainResult<()> {
    use outbound_message::Column as M;
    if endpoint_ids.is_empty() {
        return Ok(());
    }
    outbound_message::Entity::update_many()
        .col_expr(M::Status, Expr::value(FAILED))
        .col_expr(M::NextAttemptAt, Expr::value(Option::<i64>::None))
        .filter(M::EndpointId.is_in(endpoint_ids.iter().map(String::as_str)))
        .filter(M::Status.eq(PENDING))
        .exec(db)
        .await?;
    Ok(())
}

/// Deletes messages older than 30 days and attempts older than 90.
pub async fn prune(db: &impl ConnectionTrait, now: i64) -> DomainResult<u64> {
    let messages = outbound_message::Entity::delete_many()
        .filter(outbound_message::Column::CreatedAt.lt(now - KEEP_MESSAGES_MS))
        .exec(db)
        .await?;
    let attempts = outbound_attempt::Entity::delete_many()
        .filter(outbound_attempt::Column::At.lt(now - KEEP_ATTEMPTS_MS))
        .exec(db)
        .await?;
    Ok(messages.rows_affected + attempts.rows_affected)
}

/// When the oldest pending message was made: read from the partial index of pending
/// messages, whatever the delivered history kept.
pub fn oldest_pending() -> sea_orm::Select<outbound_message::Entity> {
    outbound_message::Entity::find()
        .select_only()
        .column(outbound_message::Column::CreatedAt)
        // Written out, not bound: only a literal lets the planners use the partial index
        // of pending messages (`ix_outbound_messages_pending`).
        .filter(Expr::cust(format!("status = '{PENDING}'")))
        .order_by_asc(outbound_message::Column::CreatedAt)
        .limit(1)
}

/// For `/metrics`: disabled endpoints, and when the oldest pending message was made.
pub async fn stats(db: &impl ConnectionTrait) -> DomainResult<(u64, Option<i64>)> {
    use sea_orm::PaginatorTrait;
    let disabled = webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::Enabled.eq(false))
        .count(db)
        .await?;
    let oldest: Option<i64> = oldest_pending().into_tuple().one(db).await?;
    Ok((disabled, oldest))
}
