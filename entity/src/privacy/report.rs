//! The access report (LGPD art. 18): one JSON document with everything held about a
//! buyer — the contact, its labels, its deals with their timelines and activities, and
//! the stored deliveries (with import data, kept on the timeline) that name them.

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, TransactionSession,
    TransactionTrait,
};
use serde_json::{Value, json};

use crate::{
    Caller, DomainResult,
    audit::{self, Change},
    contacts, now_ms,
    scope::find_scoped,
    tables::{activity, contact, deal, deal_event, webhook_delivery},
};

fn iso(ms: i64) -> Value {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)))
        .unwrap_or(Value::Null)
}

fn iso_opt(ms: Option<i64>) -> Value {
    ms.map(iso).unwrap_or(Value::Null)
}

/// Stored JSON text as JSON (or as the text it is, when it is not JSON).
fn parsed(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
}

/// The report on one contact of the caller's account (admins), recorded in the audit log.
pub async fn report<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    contact_id: &str,
) -> DomainResult<String> {
    caller.require_admin()?;
    let txn = db.begin().await?;
    let found = find_scoped::<contact::Entity>(&txn, caller, contact_id).await?;
    let labels: Vec<String> = contacts::labels(&txn, &found.id)
        .await?
        .into_iter()
        .map(|l| l.name)
        .collect();
    let deals = deals_of(&txn, &found).await?;
    let email = found.erased_at.is_none().then_some(found.email.as_str());
    let deliveries: Vec<Value> = super::deliveries_naming(&txn, &found, email)
        .await?
        .iter()
        .map(delivery_json)
        .collect();
    let document = json!({
        "generatedAt": iso(now_ms()),
        "contact": contact_json(&found),
        "labels": labels,
        "deals": deals,
        "deliveries": deliveries,
    });
    let details = json!({"deals": document["deals"].as_array().map_or(0, Vec::len),
        "deliveries": document["deliveries"].as_array().map_or(0, Vec::len)});
    let change = Change::new("contact.data_reported", "contact", &found.id).with(details);
    audit::by(&txn, caller, change).await?;
    txn.commit().await?;
    Ok(serde_json::to_string_pretty(&document).expect("a JSON value serialises"))
}

fn contact_json(c: &contact::Model) -> Value {
    json!({
        "id": c.id,
        "email": if c.erased_at.is_some() { Value::Null } else { Value::String(c.email.clone()) },
        "name": c.name,
        "phone": c.phone,
        "document": c.document,
        "createdAt": iso(c.created_at),
        "updatedAt": iso(c.updated_at),
        "erasedAt": iso_opt(c.erased_at),
    })
}

/// Every deal of the contact, with its timeline (events not on a deal under `null`)
/// and its activities.
async fn deals_of(db: &impl ConnectionTrait, c: &contact::Model) -> DomainResult<Vec<Value>> {
    let deals = deal::Entity::find()
        .filter(deal::Column::AccountId.eq(c.account_id.as_str()))
        .filter(deal::Column::ContactId.eq(c.id.as_str()))
        .order_by_asc(deal::Column::CreatedAt)
        .all(db)
        .await?;
    let events = deal_event::Entity::find()
        .filter(deal_event::Column::AccountId.eq(c.account_id.as_str()))
        .filter(deal_event::Column::ContactId.eq(c.id.as_str()))
        .order_by_asc(deal_event::Column::OccurredAt)
        .all(db)
        .await?;
    let ids: Vec<&str> = deals.iter().map(|d| d.id.as_str()).collect();
    let mut activities = Vec::new();
    for chunk in ids.chunks(500) {
        activities.extend(
            activity::Entity::find()
                .filter(activity::Column::DealId.is_in(chunk.iter().copied()))
                .order_by_asc(activity::Column::DueAt)
                .all(db)
                .await?,
        );
    }
    let timeline = |deal: Option<&str>| -> Vec<Value> {
        events
            .iter()
            .filter(|e| e.deal_id.as_deref() == deal)
            .map(event_json)
            .collect()
    };
    let mut out: Vec<Value> = deals
        .iter()
        .map(|d| {
            let mut value = deal_json(d);
            value["timeline"] = Value::Array(timeline(Some(&d.id)));
            value["activities"] = activities
                .iter()
                .filter(|a| a.deal_id == d.id)
                .map(activity_json)
                .collect();
            value
        })
        .collect();
    let loose = timeline(None);
    if !loose.is_empty() {
        out.push(json!({"id": null, "timeline": loose}));
    }
    Ok(out)
}

fn deal_json(d: &deal::Model) -> Value {
    json!({
        "id": d.id,
        "groupId": d.group_id,
        "originId": d.origin_id,
        "stageId": d.stage_id,
        "productId": d.product_id,
        "status": format!("{:?}", d.status).to_uppercase(),
        "valueCents": d.value_cents,
        "currency": d.currency,
        "ownerId": d.owner_id,
        "lostReason": d.lost_reason,
        "details": d.details.as_deref().map(parsed),
        "createdAt": iso(d.created_at),
        "closedAt": iso_opt(d.closed_at),
    })
}

fn event_json(e: &deal_event::Model) -> Value {
    json!({
        "id": e.id,
        "event": e.event,
        "source": format!("{:?}", e.source).to_uppercase(),
        "occurredAt": iso(e.occurred_at),
        "recordedAt": iso(e.recorded_at),
        "description": e.description,
        "authorId": e.author_id,
        "deliveryId": e.delivery_id,
        "importRunId": e.import_run_id,
        "data": parsed(&e.data),
    })
}

fn activity_json(a: &activity::Model) -> Value {
    json!({
        "id": a.id,
        "kind": format!("{:?}", a.kind).to_uppercase(),
        "title": a.title,
        "note": a.note,
        "dueAt": iso(a.due_at),
        "doneAt": iso_opt(a.done_at),
        "canceledAt": iso_opt(a.canceled_at),
        "assigneeId": a.assignee_id,
    })
}

fn delivery_json(d: &webhook_delivery::Model) -> Value {
    json!({
        "id": d.id,
        "integrationId": d.integration_id,
        "event": d.event,
        "status": format!("{:?}", d.status).to_uppercase(),
        "reason": d.reason,
        "receivedAt": iso(d.received_at),
        "processedAt": iso_opt(d.processed_at),
        "payload": parsed(&d.payload),
    })
}
