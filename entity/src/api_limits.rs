//! A request budget per Hotmart credential, shared through the database by every process
//! of an installation: Hotmart limits each credential, not each process.
//!
//! A token bucket per credential in one row, taken with one atomic statement: the bucket
//! refills at `per_minute / 60` tokens a second up to `burst`, and each request takes one.
//! A request that finds the bucket empty still takes its token (the balance goes negative)
//! and waits until the refill pays it back, so waiting requests queue in the order they
//! asked and the rate holds across processes.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use sha2::{Digest, Sha256};

use crate::{DomainResult, now_ms};

/// The bucket size for a rate: two seconds of requests, at least one. With Hotmart's
/// 500 a minute and the default 480, no 60 seconds ever see more than 480 + 16.
pub fn burst(per_minute: f64) -> f64 {
    (per_minute / 30.0).max(1.0)
}

/// The row key of a credential: a hash of its client id (the id itself is not stored).
pub fn key_of(client_id: &str) -> String {
    let digest = Sha256::digest(client_id.as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Takes one request from the credential's budget; how long to wait before sending it.
pub async fn take(db: &impl ConnectionTrait, key: &str, per_minute: f64) -> DomainResult<Duration> {
    let backend = db.get_database_backend();
    let (least, greatest) = match backend {
        DbBackend::Postgres => ("LEAST", "GREATEST"),
        _ => ("MIN", "MAX"),
    };
    let per_ms = per_minute / 60_000.0;
    let sql = format!(
        "INSERT INTO api_limits (key, tokens, at) VALUES ($1, $2 - 1, $3) \
         ON CONFLICT (key) DO UPDATE SET \
           tokens = {least}($2, api_limits.tokens + {greatest}(0, $3 - api_limits.at) * $4) - 1, \
           at = {greatest}(api_limits.at, $3) \
         RETURNING tokens"
    );
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [
                key.into(),
                burst(per_minute).into(),
                now_ms().into(),
                per_ms.into(),
            ],
        ))
        .await?
        .ok_or_else(|| sea_orm::DbErr::RecordNotFound("api_limits row".into()))?;
    let tokens: f64 = row.try_get_by_index(0)?;
    Ok(if tokens >= 0.0 {
        Duration::ZERO
    } else {
        Duration::from_secs_f64((-tokens / per_ms) / 1000.0)
    })
}
