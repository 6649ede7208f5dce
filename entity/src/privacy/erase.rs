//! Erasure: the buyer's personal data redacted from the contact, its deals' details and
//! timelines, activities, and the stored deliveries and import data that name them; the
//! contact row kept as a tombstone (keyed hashes, the erasure time). One transaction.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, TransactionSession,
    TransactionTrait,
};
use serde_json::{Value, json};

use super::scrub::Scrubber;
use crate::{
    Caller, DomainError, DomainResult,
    audit::{self, Change},
    now_ms,
    scope::find_scoped,
    secrets::SecretKeys,
    tables::{activity, contact, deal, deal_event, export, export_chunk, webhook_delivery},
};

/// What an erasure did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureReceipt {
    pub contact_id: String,
    pub erased_at: i64,
    pub deals_redacted: i64,
    pub deliveries_redacted: i64,
}

const ACTION: &str = "contact.erased";

/// Payment parts that lead back to the buyer's own payment (a Pix code, a boleto).
const PAYMENT_KEYS: &[&str] = &[
    "pix_code",
    "pix_qr_code_url",
    "billet_url",
    "billet_barcode",
];

/// Erases the contact (admins). Erasing an erased contact returns its first receipt.
pub async fn erase<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    keys: &SecretKeys,
    caller: &Caller,
    contact_id: &str,
    reason: &str,
) -> DomainResult<ErasureReceipt> {
    caller.require_admin()?;
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(DomainError::bad_input(
            "reason",
            "must be between 1 and 500 characters",
        ));
    }
    let txn = db.begin().await?;
    let found = find_scoped::<contact::Entity>(&txn, caller, contact_id).await?;
    if let Some(at) = found.erased_at {
        return earlier_receipt(&txn, &found, at).await;
    }
    let scrub = Scrubber::new(
        Some(&found.email),
        found.name.as_deref(),
        found.phone.as_deref(),
        found.document.as_deref(),
    );
    let now = now_ms();
    let deals_redacted = redact_deals(&txn, &found, &scrub).await?;
    let deliveries = super::deliveries_naming(&txn, &found, Some(&found.email)).await?;
    let deliveries_redacted = redact_deliveries(&txn, &deliveries, &scrub).await?;
    withdraw_exports(&txn, &found.account_id, now).await?;
    redact_outbound(&txn, &found, &scrub).await?;
    crate::outbound::messages::contact_erased(&txn, &found.account_id, &found.id, now).await?;
    tombstone(&txn, keys, &found, now).await?;
    let receipt = ErasureReceipt {
        contact_id: found.id.clone(),
        erased_at: now,
        deals_redacted,
        deliveries_redacted,
    };
    let reason = scrub.text(reason).unwrap_or_else(|| reason.to_owned());
    let details = json!({
        "reason": reason,
        "dealsRedacted": deals_redacted,
        "deliveriesRedacted": deliveries_redacted,
    });
    audit::by(
        &txn,
        caller,
        Change::new(ACTION, "contact", &found.id).with(details),
    )
    .await?;
    txn.commit().await?;
    Ok(receipt)
}

async fn earlier_receipt(
    db: &impl ConnectionTrait,
    found: &contact::Model,
    erased_at: i64,
) -> DomainResult<ErasureReceipt> {
    let entry = audit::latest(db, &found.account_id, ACTION, &found.id).await?;
    let details: Value = entry
        .and_then(|e| e.details)
        .and_then(|d| serde_json::from_str(&d).ok())
        .unwrap_or(Value::Null);
    let count = |key: &str| details.get(key).and_then(Value::as_i64).unwrap_or(0);
    Ok(ErasureReceipt {
        contact_id: found.id.clone(),
        erased_at,
        deals_redacted: count("dealsRedacted"),
        deliveries_redacted: count("deliveriesRedacted"),
    })
}

/// The contact's deals (details, lost reason), their timeline entries (texts, stored
/// event data) and activities; returns how many deals.
async fn redact_deals(
    db: &impl ConnectionTrait,
    found: &contact::Model,
    scrub: &Scrubber,
) -> DomainResult<i64> {
    let deals = deal::Entity::find()
        .filter(deal::Column::AccountId.eq(found.account_id.as_str()))
        .filter(deal::Column::ContactId.eq(found.id.as_str()))
        .all(db)
        .await?;
    for d in &deals {
        let details = d.details.as_deref().and_then(|raw| redact_data(raw, scrub));
        let lost = d.lost_reason.as_deref().and_then(|r| scrub.text(r));
        if details.is_some() || lost.is_some() {
            deal::Entity::update(deal::ActiveModel {
                id: Set(d.id.clone()),
                details: Set(details.or_else(|| d.details.clone())),
                lost_reason: Set(lost.or_else(|| d.lost_reason.clone())),
                ..Default::default()
            })
            .exec(db)
            .await?;
        }
    }
    redact_events(db, found, scrub).await?;
    let ids: Vec<&str> = deals.iter().map(|d| d.id.as_str()).collect();
    redact_activities(db, &ids, scrub).await?;
    Ok(deals.len() as i64)
}

async fn redact_events(
    db: &impl ConnectionTrait,
    found: &contact::Model,
    scrub: &Scrubber,
) -> DomainResult<()> {
    let events = deal_event::Entity::find()
        .filter(deal_event::Column::AccountId.eq(found.account_id.as_str()))
        .filter(deal_event::Column::ContactId.eq(found.id.as_str()))
        .all(db)
        .await?;
    for e in events {
        let data = redact_data(&e.data, scrub);
        let description = e.description.as_deref().and_then(|t| scrub.text(t));
        if data.is_none() && description.is_none() {
            continue;
        }
        deal_event::Entity::update(deal_event::ActiveModel {
            id: Set(e.id.clone()),
            data: Set(data.unwrap_or(e.data)),
            description: Set(description.or(e.description)),
            ..Default::default()
        })
        .exec(db)
        .await?;
    }
    Ok(())
}

async fn redact_activities(
    db: &impl ConnectionTrait,
    deal_ids: &[&str],
    scrub: &Scrubber,
) -> DomainResult<()> {
    for chunk in deal_ids.chunks(500) {
        let rows = activity::Entity::find()
            .filter(activity::Column::DealId.is_in(chunk.iter().copied()))
            .all(db)
            .await?;
        for a in rows {
            let title = scrub.text(&a.title);
            let note = a.note.as_deref().and_then(|n| scrub.text(n));
            if title.is_none() && note.is_none() {
                continue;
            }
            activity::Entity::update(activity::ActiveModel {
                id: Set(a.id.clone()),
                title: Set(title.unwrap_or(a.title)),
                note: Set(note.or(a.note)),
                ..Default::default()
            })
            .exec(db)
            .await?;
        }
    }
    Ok(())
}

/// Stored event data or deal details (JSON) without the buyer's payment codes or any
/// mention of them; `None` when nothing changed.
fn redact_data(raw: &str, scrub: &Scrubber) -> Option<String> {
    let mut value: Value = serde_json::from_str(raw).ok()?;
    let dropped = drop_keys(&mut value);
    let scrubbed = scrub.json(&mut value);
    (dropped || scrubbed).then(|| value.to_string())
}

fn drop_keys(value: &mut Value) -> bool {
    match value {
        Value::Object(map) => {
            let before = map.len();
            map.retain(|k, _| !PAYMENT_KEYS.contains(&k.as_str()));
            let mut changed = map.len() != before;
            for v in map.values_mut() {
                changed |= drop_keys(v);
            }
            changed
        }
        Value::Array(items) => items.iter_mut().fold(false, |c, v| drop_keys(v) | c),
        _ => false,
    }
}

/// Redacts the payloads in place; returns how many deliveries.
async fn redact_deliveries(
    db: &impl ConnectionTrait,
    deliveries: &[webhook_delivery::Model],
    scrub: &Scrubber,
) -> DomainResult<i64> {
    for d in deliveries {
        let payload = scrub.payload(&d.payload);
        let reason = d.reason.as_deref().and_then(|r| scrub.text(r));
        if payload.is_none() && reason.is_none() {
            continue;
        }
        webhook_delivery::Entity::update(webhook_delivery::ActiveModel {
            id: Set(d.id.clone()),
            payload: Set(payload.unwrap_or_else(|| d.payload.clone())),
            reason: Set(reason.or_else(|| d.reason.clone())),
            ..Default::default()
        })
        .exec(db)
        .await?;
    }
    Ok(deliveries.len() as i64)
}

/// Outbound messages that carried the buyer's data (endpoints with contact data on) are
/// redacted in place: a resend sends the redacted body.
async fn redact_outbound(
    db: &impl ConnectionTrait,
    found: &contact::Model,
    scrub: &Scrubber,
) -> DomainResult<()> {
    use crate::tables::outbound_message;
    let naming = outbound_message::Entity::find()
        .filter(outbound_message::Column::AccountId.eq(found.account_id.as_str()))
        .filter(outbound_message::Column::Payload.contains(found.id.as_str()))
        .all(db)
        .await?;
    for m in naming {
        if let Some(payload) = scrub.payload(&m.payload) {
            outbound_message::Entity::update(outbound_message::ActiveModel {
                id: Set(m.id.clone()),
                payload: Set(payload),
                ..Default::default()
            })
            .exec(db)
            .await?;
        }
    }
    Ok(())
}

/// Export files made before the erasure may hold the buyer: they are withdrawn.
async fn withdraw_exports(
    db: &impl ConnectionTrait,
    account_id: &str,
    now: i64,
) -> DomainResult<()> {
    use sea_orm::sea_query::Query;
    let made_before = Query::select()
        .column(export::Column::Id)
        .from(export::Entity)
        .and_where(export::Column::AccountId.eq(account_id))
        .and_where(export::Column::CreatedAt.lte(now))
        .to_owned();
    export_chunk::Entity::delete_many()
        .filter(export_chunk::Column::ExportId.in_subquery(made_before))
        .exec(db)
        .await?;
    export::Entity::delete_many()
        .filter(export::Column::AccountId.eq(account_id))
        .filter(export::Column::CreatedAt.lte(now))
        .exec(db)
        .await?;
    Ok(())
}

/// The contact row keeps only keyed hashes of the e-mail and phone and the time.
async fn tombstone(
    db: &impl ConnectionTrait,
    keys: &SecretKeys,
    found: &contact::Model,
    now: i64,
) -> DomainResult<()> {
    contact::Entity::update(contact::ActiveModel {
        id: Set(found.id.clone()),
        email: Set(format!("erased-{}@erased.invalid", found.id)),
        name: Set(None),
        phone: Set(None),
        document: Set(None),
        email_hash: Set(Some(keys.buyer_hash(&found.email))),
        phone_hash: Set(found.phone.as_deref().map(|p| keys.buyer_hash(p))),
        erased_at: Set(Some(now)),
        data_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec(db)
    .await?;
    Ok(())
}
