//! Which integration a delivery is for and whether it is routed: the URL token, the
//! hottok, and the integration's events and products.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, sea_query::Expr};

use crate::{
    DomainResult, EventClass,
    integrations::{self, IntegrationStatus},
    now_ms,
    sale::event::Envelope,
    secrets::SecretKeys,
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
