//! Webhook endpoints: created, changed, enabled and disabled, deleted and their secrets
//! rotated by admins, each change in the audit log. The URL's network checks (scheme,
//! address) are the caller's: this module keeps the rules that need the database.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, QueryOrder,
};
use serde_json::json;

use super::EVENT_TYPES;
use crate::{
    Caller, DomainError, DomainResult,
    audit::{self, Change},
    new_id, now_ms,
    scope::{find_scoped, scoped},
    secrets::SecretKeys,
    tables::{group, outbound_attempt, outbound_message, webhook_endpoint},
};

/// Most endpoints per account.
pub const MAX_ENDPOINTS: u64 = 50;
/// Longest URL accepted.
pub const MAX_URL: usize = 2_000;
/// Longest rotation grace, in hours.
pub const MAX_GRACE_HOURS: i64 = 7 * 24;

/// What an admin sets on an endpoint.
#[derive(Debug, Clone, Default)]
pub struct EndpointInput {
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    pub group_ids: Vec<String>,
    pub include_contact_data: bool,
}

/// The endpoint's subscribed types (empty = all).
pub fn event_types(endpoint: &webhook_endpoint::Model) -> Vec<String> {
    serde_json::from_str(&endpoint.event_types).unwrap_or_default()
}

/// The endpoint's groups (empty = all).
pub fn group_ids(endpoint: &webhook_endpoint::Model) -> Vec<String> {
    serde_json::from_str(&endpoint.group_ids).unwrap_or_default()
}

/// Whether `endpoint` wants a message of `event_type` about a deal or contact of
/// `group_id` (`None`: not tied to a group, like an erasure).
pub fn wants(endpoint: &webhook_endpoint::Model, event_type: &str, group_id: Option<&str>) -> bool {
    let types = event_types(endpoint);
    let groups = group_ids(endpoint);
    (types.is_empty() || types.iter().any(|t| t == event_type))
        && (groups.is_empty() || group_id.is_none_or(|g| groups.iter().any(|id| id == g)))
}

/// The account's endpoints, oldest first.
pub async fn list(
    db: &impl ConnectionTrait,
    caller: &Caller,
) -> DomainResult<Vec<webhook_endpoint::Model>> {
    caller.require_admin()?;
    Ok(scoped::<webhook_endpoint::Entity>(caller)
        .order_by_asc(webhook_endpoint::Column::CreatedAt)
        .order_by_asc(webhook_endpoint::Column::Id)
        .all(db)
        .await?)
}

/// One endpoint of the caller's account.
pub async fn get(
    db: &impl ConnectionTrait,
    caller: &Caller,
    id: &str,
) -> DomainResult<webhook_endpoint::Model> {
    caller.require_admin()?;
    find_scoped::<webhook_endpoint::Entity>(db, caller, id).await
}

async fn checked(
    db: &impl ConnectionTrait,
    caller: &Caller,
    input: &EndpointInput,
) -> DomainResult<()> {
    checked_text(input)?;
    if input.group_ids.len() > 200 {
        return Err(DomainError::bad_input(
            "input.groupIds",
            "names too many groups",
        ));
    }
    let found = scoped::<group::Entity>(caller)
        .filter(group::Column::Id.is_in(input.group_ids.iter().map(String::as_str)))
        .all(db)
        .await?;
    if let Some(missing) = input
        .group_ids
        .iter()
        .find(|id| !found.iter().any(|g| &g.id == *id))
    {
        return Err(DomainError::bad_input(
            "input.groupIds",
            format!("{missing:?} is not a group of this account"),
        ));
    }
    Ok(())
}

/// The URL's length, the description and the event types.
fn checked_text(input: &EndpointInput) -> DomainResult<()> {
    if input.url.len() > MAX_URL {
        return Err(DomainError::bad_input(
            "input.url",
            format!("must be at most {MAX_URL} characters"),
        ));
    }
    if input
        .description
        .as_deref()
        .is_some_and(|d| d.chars().count() > 500)
    {
        return Err(DomainError::bad_input(
            "input.description",
            "must be at most 500 characters",
        ));
    }
    if input.event_types.len() > EVENT_TYPES.len() {
        return Err(DomainError::bad_input(
            "input.eventTypes",
            "names a type twice",
        ));
    }
    if let Some(unknown) = input
        .event_types
        .iter()
        .find(|t| !EVENT_TYPES.contains(&t.as_str()))
    {
        return Err(DomainError::bad_input(
            "input.eventTypes",
            format!(
                "{unknown:?} is not an event type; known types: {}",
                EVENT_TYPES.join(", ")
            ),
        ));
    }
    Ok(())
}

fn list_json(values: &[String]) -> String {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted.dedup();
    serde_json::to_string(&sorted).expect("strings serialise")
}

fn hint(secret: &str) -> String {
    secret
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect()
}

/// Creates an endpoint signing with `secret` (a fresh `whsec_…`), sealed at rest.
pub async fn create(
    db: &impl ConnectionTrait,
    keys: &SecretKeys,
    caller: &Caller,
    input: &EndpointInput,
    secret: &str,
) -> DomainResult<webhook_endpoint::Model> {
    caller.require_admin()?;
    checked(db, caller, input).await?;
    let count = scoped::<webhook_endpoint::Entity>(caller).count(db).await?;
    if count >= MAX_ENDPOINTS {
        return Err(DomainError::bad_input(
            "input",
            format!("an account has at most {MAX_ENDPOINTS} endpoints"),
        ));
    }
    let now = now_ms();
    let model = webhook_endpoint::ActiveModel {
        id: Set(new_id()),
        account_id: Set(caller.account_id.clone()),
        url: Set(input.url.clone()),
        description: Set(input.description.clone().filter(|d| !d.trim().is_empty())),
        event_types: Set(list_json(&input.event_types)),
        group_ids: Set(list_json(&input.group_ids)),
        include_contact_data: Set(input.include_contact_data),
        enabled: Set(true),
        disabled_reason: Set(None),
        secret: Set(keys.seal(secret.as_bytes())),
        secret_hint: Set(hint(secret)),
        previous_secret: Set(None),
        previous_secret_until: Set(None),
        failing_since: Set(None),
        last_success_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?;
    audit::by(
        db,
        caller,
        Change::new("webhook_endpoint.created", "webhook_endpoint", &model.id)
            .with(settings(&model)),
    )
    .await?;
    Ok(model)
}

/// What the audit log records of an endpoint's settings (never its secret).
fn settings(m: &webhook_endpoint::Model) -> serde_json::Value {
    json!({
        "url": m.url,
        "eventTypes": event_types(m),
        "groupIds": group_ids(m),
        "includeContactData": m.include_contact_data,
    })
}

/// Changes an endpoint's settings.
pub async fn update(
    db: &impl ConnectionTrait,
    caller: &Caller,
    id: &str,
    input: &EndpointInput,
) -> DomainResult<webhook_endpoint::Model> {
    let found = get(db, caller, id).await?;
    checked(db, caller, input).await?;
    let mut model = found.into_active_model();
    model.url = Set(input.url.clone());
    model.description = Set(input.description.clone().filter(|d| !d.trim().is_empty()));
    model.event_types = Set(list_json(&input.event_types));
    model.group_ids = Set(list_json(&input.group_ids));
    model.include_contact_data = Set(input.include_contact_data);
    model.updated_at = Set(now_ms());
    let model = model.update(db).await?;
    audit::by(
        db,
        caller,
        Change::new("webhook_endpoint.updated", "webhook_endpoint", id).with(settings(&model)),
    )
    .await?;
    Ok(model)
}

/// Deletes an endpoint with its messages and their attempts.
pub async fn delete(db: &impl ConnectionTrait, caller: &Caller, id: &str) -> DomainResult<()> {
    let found = get(db, caller, id).await?;
    outbound_attempt::Entity::delete_many()
        .filter(outbound_attempt::Column::EndpointId.eq(found.id.as_str()))
        .exec(db)
        .await?;
    outbound_message::Entity::delete_many()
        .filter(outbound_message::Column::EndpointId.eq(found.id.as_str()))
        .exec(db)
        .await?;
    webhook_endpoint::Entity::delete_by_id(found.id.clone())
        .exec(db)
        .await?;
    audit::by(
        db,
        caller,
        Change::new("webhook_endpoint.deleted", "webhook_endpoint", id)
            .with(json!({"url": found.url})),
    )
    .await?;
    Ok(())
}

/// Enables an endpoint (again): its failure clock starts over.
pub async fn enable(
    db: &impl ConnectionTrait,
    caller: &Caller,
    id: &str,
) -> DomainResult<webhook_endpoint::Model> {
    let found = get(db, caller, id).await?;
    let mut model = found.into_active_model();
    model.enabled = Set(true);
    model.disabled_reason = Set(None);
    model.failing_since = Set(None);
    model.updated_at = Set(now_ms());
    let model = model.update(db).await?;
    audit::by(
        db,
        caller,
        Change::new("webhook_endpoint.enabled", "webhook_endpoint", id),
    )
    .await?;
    Ok(model)
}

/// Disables an endpoint by hand: nothing is sent to it until it is enabled.
pub async fn disable(
    db: &impl ConnectionTrait,
    caller: &Caller,
    id: &str,
) -> DomainResult<webhook_endpoint::Model> {
    let found = get(db, caller, id).await?;
    let mut model = found.into_active_model();
    model.enabled = Set(false);
    model.disabled_reason = Set(Some("desativado por um administrador".into()));
    model.updated_at = Set(now_ms());
    let model = model.update(db).await?;
    super::delivery::fail_pending(db, std::slice::from_ref(&model.id)).await?;
    audit::by(
        db,
        caller,
        Change::new("webhook_endpoint.disabled", "webhook_endpoint", id),
    )
    .await?;
    Ok(model)
}

/// Replaces the signing secret with `secret`; the old one keeps signing too for
/// `grace_hours` (both signatures are sent), so receivers can switch without a gap.
pub async fn rotate(
    db: &impl ConnectionTrait,
    keys: &SecretKeys,
    caller: &Caller,
    id: &str,
    grace_hours: i64,
    secret: &str,
) -> DomainResult<webhook_endpoint::Model> {
    if !(0..=MAX_GRACE_HOURS).contains(&grace_hours) {
        return Err(DomainError::bad_input(
            "graceHours",
            format!("must be between 0 and {MAX_GRACE_HOURS}"),
        ));
    }
    let found = get(db, caller, id).await?;
    let now = now_ms();
    let old = found.secret.clone();
    let mut model = found.into_active_model();
    model.previous_secret = Set((grace_hours > 0).then_some(old));
    model.previous_secret_until = Set((grace_hours > 0).then_some(now + grace_hours * 3_600_000));
    model.secret = Set(keys.seal(secret.as_bytes()));
    model.secret_hint = Set(hint(secret));
    model.updated_at = Set(now);
    let model = model.update(db).await?;
    audit::by(
        db,
        caller,
        Change::new("webhook_endpoint.secret_rotated", "webhook_endpoint", id)
            .with(json!({"graceHours": grace_hours})),
    )
    .await?;
    Ok(model)
}

/// The secrets an attempt at `now` signs with: the current one, and the previous one
/// during its grace.
pub fn signing_secrets(
    keys: &SecretKeys,
    endpoint: &webhook_endpoint::Model,
    now: i64,
) -> DomainResult<Vec<String>> {
    let open = |sealed: &str| -> DomainResult<String> {
        String::from_utf8(keys.open(sealed)?)
            .map_err(|_| DomainError::Internal("a webhook secret is not text".into()))
    };
    let mut secrets = vec![open(&endpoint.secret)?];
    if let (Some(previous), Some(until)) =
        (&endpoint.previous_secret, endpoint.previous_secret_until)
        && now < until
    {
        secrets.push(open(previous)?);
    }
    Ok(secrets)
}
