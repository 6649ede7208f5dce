//! Reading the inbox: pages, last arrivals, counts, and stored bodies for display.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};

use crate::{
    DomainResult,
    page::{Cursor, Page, PageRequest},
    tables::webhook_delivery,
};

use super::DeliveryStatus;

/// Deliveries of one integration, newest first. The caller must already have been
/// allowed to see the integration.
pub async fn page_of_integration(
    db: &impl ConnectionTrait,
    integration_id: &str,
    status: Option<DeliveryStatus>,
    page: PageRequest,
) -> DomainResult<Page<webhook_delivery::Model>> {
    use webhook_delivery::Column;
    let mut query =
        webhook_delivery::Entity::find().filter(Column::IntegrationId.eq(integration_id));
    if let Some(status) = status {
        query = query.filter(Column::Status.eq(status.as_str()));
    }
    crate::page::fetch(db, query, Column::ReceivedAt, Column::Id, page, |row| {
        Cursor {
            at: row.received_at,
            id: row.id.clone(),
        }
    })
    .await
}

/// When the integration last received an authentic delivery, and a test event.
pub async fn last_received(
    db: &impl ConnectionTrait,
    integration_id: &str,
    test: bool,
) -> DomainResult<Option<i64>> {
    let mut query = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::IntegrationId.eq(integration_id));
    query = if test {
        query.filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Test))
    } else {
        query.filter(webhook_delivery::Column::Status.is_not_in([
            DeliveryStatus::Test.as_str(),
            DeliveryStatus::Rejected.as_str(),
        ]))
    };
    Ok(query
        .order_by_desc(webhook_delivery::Column::ReceivedAt)
        .one(db)
        .await?
        .map(|d| d.received_at))
}

/// Deliveries with `status` (an index range: use it for the small sets, `PENDING` and
/// `FAILED`).
pub async fn count_with_status(
    db: &impl ConnectionTrait,
    status: DeliveryStatus,
) -> DomainResult<u64> {
    Ok(webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::Status.eq(status.as_str()))
        .count(db)
        .await?)
}

/// A stored body for display: a top-level `hottok` is shown as `***` (bodies are stored
/// with it emptied already; older rows may still hold one), everything else is kept
/// exactly; a body that mentions a hottok and is not JSON is withheld whole.
pub fn redacted_payload(payload: &str) -> String {
    if !payload.contains("hottok") {
        return payload.to_owned();
    }
    match serde_json::from_str::<serde_json::Value>(payload) {
        Ok(serde_json::Value::Object(mut map)) if map.contains_key("hottok") => {
            map.insert("hottok".into(), serde_json::Value::String("***".into()));
            serde_json::Value::Object(map).to_string()
        }
        // Not JSON (a rejected body): where the hottok ends cannot be told; withhold it.
        Err(_) => "[body withheld: it mentions a hottok and is not valid JSON]".to_owned(),
        _ => payload.to_owned(),
    }
}

#[cfg(test)]
mod redaction_tests {
    use super::redacted_payload;

    #[test]
    fn body_hottoks_are_masked() {
        let shown = redacted_payload(r#"{"id":"a","hottok":"secret-123","event":"X"}"#);
        assert!(!shown.contains("secret-123"));
        assert!(shown.contains(r#""hottok":"***""#));
        assert_eq!(redacted_payload(r#"{"id":"a"}"#), r#"{"id":"a"}"#);
        assert!(!redacted_payload(r#"{"hottok":"secret-123""#).contains("secret-123"));
    }
}
