//! Outbound messages as admins see and steer them: listed per endpoint with their
//! attempts, resent, recovered after an outage, and the test message; and the messages
//! written outside the engine (`contact.erased`).

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::Expr,
};
use serde_json::json;

use super::{FAILED, PENDING, TEST_TYPE, body, endpoints, new_message_id};
use crate::{
    Caller, DomainError, DomainResult, now_ms,
    page::{Cursor, Page, PageRequest},
    scope::{find_scoped, scoped},
    tables::{outbound_attempt, outbound_message, webhook_endpoint},
};

/// Most messages one recovery requeues.
pub const MAX_RECOVER: u64 = 10_000;

/// Rows per insert statement.
const CHUNK: usize = 500;

/// The enabled endpoints of some accounts.
pub async fn enabled_endpoints<'a>(
    db: &impl ConnectionTrait,
    accounts: impl Iterator<Item = &'a str>,
) -> DomainResult<Vec<webhook_endpoint::Model>> {
    Ok(webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::AccountId.is_in(accounts))
        .filter(webhook_endpoint::Column::Enabled.eq(true))
        .all(db)
        .await?)
}

/// A pending message for `endpoint`, due now.
pub fn new_row(
    endpoint: &webhook_endpoint::Model,
    event_type: &str,
    payload: String,
    now: i64,
) -> outbound_message::ActiveModel {
    use sea_orm::ActiveValue::Set;
    outbound_message::ActiveModel {
        id: Set(new_message_id()),
        account_id: Set(endpoint.account_id.clone()),
        endpoint_id: Set(endpoint.id.clone()),
        event_type: Set(event_type.to_owned()),
        payload: Set(payload),
        status: Set(PENDING.to_owned()),
        attempts: Set(0),
        next_attempt_at: Set(Some(now)),
        lease_until: Set(None),
        next_trigger: Set("AUTO".to_owned()),
        created_at: Set(now),
        delivered_at: Set(None),
    }
}

/// Inserts messages, a few hundred per statement.
pub async fn insert(
    db: &impl ConnectionTrait,
    rows: Vec<outbound_message::ActiveModel>,
) -> DomainResult<usize> {
    let total = rows.len();
    for chunk in rows.chunks(CHUNK) {
        outbound_message::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await?;
    }
    Ok(total)
}

/// An endpoint's messages, newest first, of one status or all.
pub async fn page(
    db: &impl ConnectionTrait,
    caller: &Caller,
    endpoint_id: &str,
    status: Option<&str>,
    page: PageRequest,
) -> DomainResult<Page<outbound_message::Model>> {
    caller.require_admin()?;
    let mut query = scoped::<outbound_message::Entity>(caller)
        .filter(outbound_message::Column::EndpointId.eq(endpoint_id));
    if let Some(status) = status {
        query = query.filter(outbound_message::Column::Status.eq(status));
    }
    crate::page::fetch(
        db,
        query,
        outbound_message::Column::CreatedAt,
        outbound_message::Column::Id,
        page,
        |m| Cursor {
            at: m.created_at,
            id: m.id.clone(),
        },
    )
    .await
}

/// The attempts of some messages, oldest first.
pub async fn attempts(
    db: &impl ConnectionTrait,
    message_ids: &[&str],
) -> DomainResult<Vec<outbound_attempt::Model>> {
    Ok(outbound_attempt::Entity::find()
        .filter(outbound_attempt::Column::MessageId.is_in(message_ids.iter().copied()))
        .order_by_asc(outbound_attempt::Column::At)
        .order_by_asc(outbound_attempt::Column::Id)
        .all(db)
        .await?)
}

/// One message of the caller's account.
pub async fn get(
    db: &impl ConnectionTrait,
    caller: &Caller,
    id: &str,
) -> DomainResult<outbound_message::Model> {
    caller.require_admin()?;
    find_scoped::<outbound_message::Entity>(db, caller, id).await
}

/// Sends a message again, now: the same id and body, a fresh timestamp and signature,
/// one attempt (triggered `MANUAL`) whatever its status.
pub async fn resend(
    db: &impl ConnectionTrait,
    caller: &Caller,
    id: &str,
) -> DomainResult<outbound_message::Model> {
    let found = get(db, caller, id).await?;
    let endpoint = endpoints::get(db, caller, &found.endpoint_id).await?;
    if !endpoint.enabled {
        return Err(DomainError::bad_input(
            "id",
            "its endpoint is disabled: enable it first",
        ));
    }
    outbound_message::Entity::update_many()
        .col_expr(outbound_message::Column::Status, Expr::value(PENDING))
        .col_expr(
            outbound_message::Column::NextAttemptAt,
            Expr::value(now_ms()),
        )
        .col_expr(
            outbound_message::Column::LeaseUntil,
            Expr::value(Option::<i64>::None),
        )
        .col_expr(outbound_message::Column::NextTrigger, Expr::value("MANUAL"))
        .filter(outbound_message::Column::Id.eq(found.id.as_str()))
        .exec(db)
        .await?;
    get(db, caller, id).await
}

/// Requeues the endpoint's failed messages created in `[since, until)` (oldest first,
/// at most [`MAX_RECOVER`]), each with its retry schedule started over.
pub async fn recover(
    db: &impl ConnectionTrait,
    caller: &Caller,
    endpoint_id: &str,
    since: i64,
    until: Option<i64>,
) -> DomainResult<u64> {
    let endpoint = endpoints::get(db, caller, endpoint_id).await?;
    let until = until.unwrap_or(i64::MAX);
    if until <= since {
        return Err(DomainError::bad_input("until", "must be after since"));
    }
    let ids: Vec<String> = outbound_message::Entity::find()
        .select_only()
        .column(outbound_message::Column::Id)
        .filter(outbound_message::Column::EndpointId.eq(endpoint.id.as_str()))
        .filter(outbound_message::Column::Status.eq(FAILED))
        .filter(outbound_message::Column::CreatedAt.gte(since))
        .filter(outbound_message::Column::CreatedAt.lt(until))
        .order_by_asc(outbound_message::Column::CreatedAt)
        .limit(MAX_RECOVER)
        .into_tuple()
        .all(db)
        .await?;
    let now = now_ms();
    for chunk in ids.chunks(CHUNK) {
        outbound_message::Entity::update_many()
            .col_expr(outbound_message::Column::Status, Expr::value(PENDING))
            .col_expr(outbound_message::Column::Attempts, Expr::value(0))
            .col_expr(outbound_message::Column::NextAttemptAt, Expr::value(now))
            .col_expr(
                outbound_message::Column::LeaseUntil,
                Expr::value(Option::<i64>::None),
            )
            .col_expr(outbound_message::Column::NextTrigger, Expr::value("AUTO"))
            .filter(outbound_message::Column::Id.is_in(chunk.iter().map(String::as_str)))
            .exec(db)
            .await?;
    }
    Ok(ids.len() as u64)
}

/// A `webhook.test` message to one endpoint, sent once, now.
pub async fn send_test(
    db: &impl ConnectionTrait,
    caller: &Caller,
    endpoint_id: &str,
) -> DomainResult<outbound_message::Model> {
    let endpoint = endpoints::get(db, caller, endpoint_id).await?;
    let now = now_ms();
    let data = json!({"endpointId": endpoint.id, "message": "checkout-crm test event"});
    let mut row = new_row(&endpoint, TEST_TYPE, body(TEST_TYPE, now, data), now);
    row.next_trigger = sea_orm::ActiveValue::Set("MANUAL".to_owned());
    let id = row.id.clone().unwrap();
    insert(db, vec![row]).await?;
    get(db, caller, &id).await
}

/// `contact.erased` to the account's endpoints that want it: a receiver that holds the
/// buyer's data learns it must erase it too. The message names the contact by id only.
pub async fn contact_erased(
    db: &impl ConnectionTrait,
    account_id: &str,
    contact_id: &str,
    at: i64,
) -> DomainResult<usize> {
    let endpoints = enabled_endpoints(db, std::iter::once(account_id)).await?;
    let rows = endpoints
        .iter()
        .filter(|e| endpoints::wants(e, "contact.erased", None))
        .map(|e| {
            let data = json!({"contact": {"id": contact_id}, "erasedAt": super::iso(at)});
            new_row(e, "contact.erased", body("contact.erased", at, data), at)
        })
        .collect();
    insert(db, rows).await
}

/// The endpoints of some messages, by id.
pub async fn endpoints_of(
    db: &impl ConnectionTrait,
    ids: impl Iterator<Item = &str>,
) -> DomainResult<Vec<webhook_endpoint::Model>> {
    Ok(webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::Id.is_in(ids))
        .all(db)
        .await?)
}
