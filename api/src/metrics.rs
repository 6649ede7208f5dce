//! `GET /metrics`: Prometheus text. The process's counters (see `jobs::telemetry`) and a
//! few gauges read from the database at scrape time, each an index range over a small set
//! (deliveries waiting or failed, unfinished jobs): a scrape costs the same however many
//! deliveries are stored. No tenant data; expose it on a private network.

use axum::{
    extract::State,
    http::{StatusCode, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
};
use entity::deliveries::{self, DeliveryStatus};
use jobs::telemetry::Readings;

use crate::state::HttpState;

pub async fn metrics(State(state): State<HttpState>) -> Response {
    match readings(&state).await {
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
        integrations_by_health: by_health(&db.conn).await.map_err(|e| e.to_string())?,
    })
}

/// Active integrations by health (a few reads each; integrations are few).
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
