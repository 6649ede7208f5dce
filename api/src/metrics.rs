//! `GET /metrics`: Prometheus text. The process's counters (see `jobs::telemetry`) and a
//! few gauges read from the database at scrape time, each an index range over a small set
//! (deliveries waiting or failed, unfinished jobs): a scrape costs the same however many
//! deliveries are stored. The integrations' health is computed at most every
//! [`HEALTH_EVERY`] (one scrape computes it, others take the last figures).
//!
//! Who may read it (installation-wide volumes): on `METRICS_BIND`'s own listener, anyone
//! who reaches it (a private interface); beside the API, only a bearer of
//! `METRICS_TOKEN` when it is set, else only a loopback peer whose request came through
//! no proxy (no `X-Forwarded-For`/`Forwarded`). Everyone else gets 404.

use axum::{
    extract::State,
    http::{StatusCode, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
};
use entity::deliveries::{self, DeliveryStatus};
use jobs::telemetry::Readings;

use crate::state::HttpState;

/// How long the integrations' health figures are reused.
pub const HEALTH_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// `/metrics` beside the API: only for the token's bearer, or a local unproxied peer.
pub async fn metrics(State(state): State<HttpState>, request: axum::extract::Request) -> Response {
    if !may_read(&state, &request) {
        return StatusCode::NOT_FOUND.into_response();
    }
    render(&state).await
}

/// `/metrics` on its own listener (`METRICS_BIND`).
pub async fn metrics_apart(State(state): State<HttpState>) -> Response {
    render(&state).await
}

fn may_read(state: &HttpState, request: &axum::extract::Request) -> bool {
    let headers = request.headers();
    if let Some(token) = &state.metrics_token {
        use subtle::ConstantTimeEq;
        let presented = crate::auth::bearer(
            headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
        )
        .unwrap_or_default();
        return presented.as_bytes().ct_eq(token.as_bytes()).into();
    }
    let proxied = headers.contains_key("x-forwarded-for") || headers.contains_key("forwarded");
    let local = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .is_some_and(|info| info.0.ip().is_loopback());
    local && !proxied
}

async fn render(state: &HttpState) -> Response {
    match readings(state).await {
        Ok(readings) => (
            [(
                CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            state.telemetry.render(&readings),
        )
            .into_response(),
        Err(error) => {
            tracing::warn!(%error, "metrics: database unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
    }
}

async fn readings(state: &HttpState) -> Result<Readings, String> {
    let db = &state.app.db;
    let count = |status| deliveries::count_with_status(&db.conn, status);
    Ok(Readings {
        pending_deliveries: count(DeliveryStatus::Pending)
            .await
            .map_err(|e| e.to_string())? as i64,
        failed_deliveries: count(DeliveryStatus::Failed)
            .await
            .map_err(|e| e.to_string())? as i64,
        queue: jobs::queue::stats(db).await.map_err(|e| e.to_string())?,
        claims: jobs::queue::claim_stats(db, state.worker_lease)
            .await
            .map_err(|e| e.to_string())?,
        integrations_by_health: cached_health(state).await?,
        ..outbound_readings(&db.conn).await?
    })
}

/// The outbound gauges: disabled endpoints and the oldest pending message's age.
async fn outbound_readings(db: &sea_orm::DatabaseConnection) -> Result<Readings, String> {
    let (disabled, oldest) = entity::outbound::delivery::stats(db)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Readings {
        outbound_endpoints_disabled: disabled as i64,
        outbound_oldest_pending_secs: oldest.map_or(0, |at| (entity::now_ms() - at).max(0) / 1000),
        ..Readings::default()
    })
}

/// The health counts, computed again when older than [`HEALTH_EVERY`] (one at a time).
async fn cached_health(state: &HttpState) -> Result<Vec<(&'static str, i64)>, String> {
    let mut cache = state.health_cache.lock().await;
    if let Some((at, counts)) = cache.as_ref()
        && at.elapsed() < HEALTH_EVERY
    {
        return Ok(counts.clone());
    }
    let counts = by_health(&state.app.db.conn)
        .await
        .map_err(|e| e.to_string())?;
    *cache = Some((std::time::Instant::now(), counts.clone()));
    Ok(counts)
}

/// Active integrations by health (a few reads each).
async fn by_health(
    db: &sea_orm::DatabaseConnection,
) -> entity::DomainResult<Vec<(&'static str, i64)>> {
    use entity::{health::HealthStatus, integrations::IntegrationStatus, tables::integration};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let active = integration::Entity::find()
        .filter(integration::Column::Status.eq(IntegrationStatus::Active.as_str()))
        .all(db)
        .await?;
    let mut counts: Vec<(&'static str, i64)> =
        HealthStatus::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    for integration in &active {
        let status = entity::health::of(db, integration).await?.status;
        if let Some(count) = counts.iter_mut().find(|(s, _)| *s == status.as_str()) {
            count.1 += 1;
        }
    }
    Ok(counts)
}
