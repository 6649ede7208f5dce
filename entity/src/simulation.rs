//! `simulateDelivery`: what the webhook endpoint and the deal engine would do with a body,
//! without writing anything. The real intake and the real fold run inside a transaction
//! that is always rolled back, so the answer is exactly what posting the body would do
//! now (the key's stored events, the owner rotation, the tags), and nothing stays.

use std::sync::Arc;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use crate::{
    Caller, DomainError, DomainResult,
    database::Database,
    deliveries::{self, DeliveryStatus, Intake, Submission},
    integrations,
    platform::Platform,
    tables::enums::DealStatus,
    tables::{contact, deal, deal_event, origin, user, webhook_delivery},
};

/// What would happen.
#[derive(Debug, Clone, Default)]
pub struct Simulated {
    /// What the endpoint would answer: accepted, duplicate, ignored, test or rejected.
    pub answer: &'static str,
    pub reason: Option<String>,
    pub contact_email: Option<String>,
    pub origin: Option<origin::Model>,
    pub deal_status: Option<DealStatus>,
    pub owner: Option<user::Model>,
    /// The contact's tags after the delivery.
    pub tags: Vec<String>,
}

fn answer(answer: &'static str, reason: Option<String>) -> Simulated {
    Simulated {
        answer,
        reason,
        ..Simulated::default()
    }
}

/// Runs `body` through intake and the engine for `integration_id`, and rolls it all back.
pub async fn simulate(
    db: &Database,
    keys: &crate::secrets::SecretKeys,
    caller: &Caller,
    integration_id: &str,
    body: &str,
) -> DomainResult<Simulated> {
    caller.require_admin()?;
    let integration = integrations::get(&db.conn, caller, integration_id).await?;
    let products = crate::products::of_integration(&db.conn, &integration.id).await?;
    let envelope = match Platform::of(&integration).parse_body(body.as_bytes()) {
        Ok((_, envelope)) => envelope,
        Err(malformed) => return Ok(answer("rejected", Some(malformed.to_string()))),
    };
    let item = Submission {
        integration: Arc::new(integration),
        via_previous_url: false,
        products: Arc::new(products),
        envelope,
        body: body.to_owned(),
    };
    let txn = db.begin_write().await?;
    let simulated = run(&*txn, keys, &item).await;
    txn.rollback().await?;
    simulated
}

async fn run(
    txn: &impl ConnectionTrait,
    keys: &crate::secrets::SecretKeys,
    item: &Submission,
) -> DomainResult<Simulated> {
    let intake = deliveries::intake_many(txn, &[item])
        .await?
        .pop()
        .ok_or_else(|| DomainError::Internal("intake answered nothing".into()))?;
    let delivery_id = match intake {
        Intake::Accepted { delivery_id } => delivery_id,
        Intake::Duplicate { .. } => {
            return Ok(answer(
                "duplicate",
                Some("this event id was already received".into()),
            ));
        }
        Intake::Test { .. } => return Ok(answer("test", None)),
        Intake::Ignored { reason, .. } => return Ok(answer("ignored", Some(reason))),
    };
    deliveries::process_in(txn, keys, &delivery_id).await?;
    outcome(txn, &delivery_id).await
}

/// What processing the delivery did: its deal, the deal's origin and owner, the tags.
async fn outcome(txn: &impl ConnectionTrait, delivery_id: &str) -> DomainResult<Simulated> {
    let delivery = webhook_delivery::Entity::find_by_id(delivery_id.to_owned())
        .one(txn)
        .await?
        .ok_or(DomainError::NotFound("delivery"))?;
    let mut simulated = answer("accepted", delivery.reason.clone());
    if delivery.status != DeliveryStatus::Processed {
        return Ok(simulated);
    }
    let Some(event) = deal_event::Entity::find()
        .filter(deal_event::Column::DeliveryId.eq(delivery_id))
        .one(txn)
        .await?
    else {
        return Ok(simulated);
    };
    if let Some(contact) = contact::Entity::find_by_id(event.contact_id.clone())
        .one(txn)
        .await?
    {
        simulated.tags = crate::contacts::labels(txn, &contact.id)
            .await?
            .into_iter()
            .map(|label| label.name)
            .collect();
        simulated.contact_email = Some(contact.email);
    }
    let Some(deal_id) = &event.deal_id else {
        return Ok(simulated);
    };
    if let Some(deal) = deal::Entity::find_by_id(deal_id.clone()).one(txn).await? {
        simulated.deal_status = Some(deal.status);
        simulated.origin = origin::Entity::find_by_id(deal.origin_id.clone())
            .one(txn)
            .await?;
        if let Some(owner) = &deal.owner_id {
            simulated.owner = user::Entity::find_by_id(owner.clone()).one(txn).await?;
        }
    }
    Ok(simulated)
}
