//! Hotmart integrations and the set-up flow (`docs/webhooks.md`).

pub use crate::tables::enums::IntegrationStatus;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder, Set, TransactionSession, TransactionTrait,
};

use crate::{
    Caller, DomainError, DomainResult, HotmartEvent,
    hotmart_event::{decode_events, encode_events},
    labels, new_id, now_ms, origins,
    scope::{find_scoped, scoped},
    secrets::random_token,
    tables::{deal, deal_event, group, integration, product},
    values,
};

pub const PLATFORM_HOTMART: &str = "HOTMART";

/// 32 random bytes: the webhook URL token is well over the 128 bits the spec asks for.
const WEBHOOK_TOKEN_BYTES: usize = 32;

pub fn status(model: &integration::Model) -> IntegrationStatus {
    model.status
}

pub fn events(model: &integration::Model) -> DomainResult<Vec<HotmartEvent>> {
    decode_events(&model.events)
}

fn selected_events(field: &str, events: &[HotmartEvent]) -> DomainResult<Vec<HotmartEvent>> {
    if events.is_empty() {
        return Err(DomainError::bad_input(field, "select at least one event"));
    }
    let mut events = events.to_vec();
    events.sort();
    events.dedup();
    Ok(events)
}

pub async fn list(
    db: &impl ConnectionTrait,
    caller: &Caller,
) -> DomainResult<Vec<integration::Model>> {
    caller.require_admin()?;
    Ok(scoped::<integration::Entity>(caller)
        .order_by_asc(integration::Column::CreatedAt)
        .order_by_asc(integration::Column::Id)
        .all(db)
        .await?)
}

pub async fn get(
    db: &impl ConnectionTrait,
    caller: &Caller,
    id: &str,
) -> DomainResult<integration::Model> {
    caller.require_admin()?;
    find_scoped::<integration::Entity>(db, caller, id).await
}

/// Step 1: a `DRAFT` integration with its group and one origin per deal-moving event.
pub async fn create<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    name: &str,
    events: &[HotmartEvent],
) -> DomainResult<integration::Model> {
    caller.require_admin()?;
    let name = values::name("name", name)?;
    let events = selected_events("events", events)?;
    let now = now_ms();
    let txn = crate::database::begin_immediate(db).await?;
    let integration = integration::ActiveModel {
        id: Set(new_id()),
        account_id: Set(caller.account_id.clone()),
        platform: Set(PLATFORM_HOTMART.to_owned()),
        name: Set(name.clone()),
        label: Set(None),
        status: Set(IntegrationStatus::Draft),
        events: Set(encode_events(&events)),
        keep_deal_owner: Set(false),
        tag_contacts_with_product_name: Set(false),
        merge_products: Set(false),
        webhook_token: Set(random_token(WEBHOOK_TOKEN_BYTES)),
        credentials: Set(None),
        hottok_failures: Set(0),
        reconcile_enabled: Set(false),
        reconcile_every_minutes: Set(DEFAULT_RECONCILE_EVERY_MINUTES),
        reconcile_lookback_hours: Set(DEFAULT_RECONCILE_LOOKBACK_HOURS),
        reconcile_next_at: Set(None),
        previous_webhook_token: Set(None),
        previous_token_until: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    let group = group::ActiveModel {
        id: Set(new_id()),
        account_id: Set(caller.account_id.clone()),
        integration_id: Set(integration.id.clone()),
        name: Set(name),
        visible_to_everyone: Set(true),
        member_scope: Set(crate::tables::enums::DealScope::All),
        created_at: Set(now),
    }
    .insert(&txn)
    .await?;
    origins::sync_with_events(&txn, &group, &events).await?;
    txn.commit().await?;
    Ok(integration)
}

/// Step 3 (and later edits). `None` leaves a setting unchanged; a blank label clears it.
#[derive(Debug, Default, Clone)]
pub struct IntegrationChanges {
    pub name: Option<String>,
    pub label: Option<String>,
    pub events: Option<Vec<HotmartEvent>>,
    pub keep_deal_owner: Option<bool>,
    pub tag_contacts_with_product_name: Option<bool>,
    pub merge_products: Option<bool>,
}

pub async fn update<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    id: &str,
    changes: IntegrationChanges,
) -> DomainResult<integration::Model> {
    caller.require_admin()?;
    let name = changes
        .name
        .as_deref()
        .map(|n| values::name("name", n))
        .transpose()?;
    let label = changes
        .label
        .as_deref()
        .map(|l| labels::optional_label_name("label", Some(l)))
        .transpose()?;
    let events = changes
        .events
        .as_deref()
        .map(|e| selected_events("events", e))
        .transpose()?;

    let txn = crate::database::begin_immediate(db).await?;
    let current = find_scoped::<integration::Entity>(&txn, caller, id).await?;
    let group = group_of(&txn, &current).await?;
    let mut model = current.into_active_model();
    if let Some(name) = name {
        model.name = Set(name.clone());
        let mut group = group.clone().into_active_model();
        group.name = Set(name);
        group.update(&txn).await?;
    }
    if let Some(label) = label {
        model.label = Set(match label {
            Some(name) => Some(labels::ensure(&txn, caller, "label", &name).await?.name),
            None => None,
        });
    }
    if let Some(events) = events {
        origins::sync_with_events(&txn, &group, &events).await?;
        model.events = Set(encode_events(&events));
    }
    if let Some(on) = changes.keep_deal_owner {
        model.keep_deal_owner = Set(on);
    }
    if let Some(on) = changes.tag_contacts_with_product_name {
        model.tag_contacts_with_product_name = Set(on);
    }
    if let Some(on) = changes.merge_products {
        model.merge_products = Set(on);
    }
    model.updated_at = Set(now_ms());
    let updated = model.update(&txn).await?;
    txn.commit().await?;
    Ok(updated)
}

/// Step 4: needs at least one product and one event.
pub async fn activate(
    db: &impl ConnectionTrait,
    caller: &Caller,
    id: &str,
) -> DomainResult<integration::Model> {
    let current = get(db, caller, id).await?;
    let products = product::Entity::find()
        .filter(product::Column::IntegrationId.eq(current.id.as_str()))
        .count(db)
        .await?;
    if products == 0 {
        return Err(DomainError::bad_input(
            "products",
            "add at least one product before activating the integration",
        ));
    }
    if events(&current)?.is_empty() {
        return Err(DomainError::bad_input(
            "events",
            "select at least one event before activating the integration",
        ));
    }
    set_status(db, current, IntegrationStatus::Active).await
}

/// Stops processing; deliveries are still received and stored.
pub async fn pause(
    db: &impl ConnectionTrait,
    caller: &Caller,
    id: &str,
) -> DomainResult<integration::Model> {
    let current = get(db, caller, id).await?;
    match status(&current) {
        IntegrationStatus::Active => set_status(db, current, IntegrationStatus::Paused).await,
        IntegrationStatus::Paused => Ok(current),
        IntegrationStatus::Draft => Err(DomainError::bad_input(
            "id",
            "only an ACTIVE integration can be paused; activate it first",
        )),
    }
}

async fn set_status(
    db: &impl ConnectionTrait,
    current: integration::Model,
    status: IntegrationStatus,
) -> DomainResult<integration::Model> {
    let mut model = current.into_active_model();
    model.status = Set(status);
    model.updated_at = Set(now_ms());
    Ok(model.update(db).await?)
}

/// A new webhook URL; the old one stops working at once.
/// A new webhook URL. With `grace_hours` > 0 the old URL keeps accepting deliveries until
/// the grace ends (so the producer can update Hotmart without a gap); with 0 it stops at
/// once (a leaked URL).
pub async fn rotate_webhook_token(
    db: &impl ConnectionTrait,
    caller: &Caller,
    id: &str,
    grace_hours: i32,
) -> DomainResult<integration::Model> {
    caller.require_admin()?;
    if !(0..=MAX_GRACE_HOURS).contains(&grace_hours) {
        return Err(DomainError::bad_input(
            "graceHours",
            format!("must be between 0 and {MAX_GRACE_HOURS}"),
        ));
    }
    let current = get(db, caller, id).await?;
    let now = now_ms();
    let old = current.webhook_token.clone();
    let mut model = current.into_active_model();
    model.webhook_token = Set(random_token(WEBHOOK_TOKEN_BYTES));
    if grace_hours > 0 {
        model.previous_webhook_token = Set(Some(old));
        model.previous_token_until = Set(Some(now + i64::from(grace_hours) * 3_600_000));
    } else {
        model.previous_webhook_token = Set(None);
        model.previous_token_until = Set(None);
    }
    model.updated_at = Set(now);
    Ok(model.update(db).await?)
}

/// Reconciliation intervals of a new integration (scheduled reconciliation, `docs/import.md`).
pub const DEFAULT_RECONCILE_EVERY_MINUTES: i32 = 60;
pub const DEFAULT_RECONCILE_LOOKBACK_HOURS: i32 = 72;

/// Longest grace period of a rotation: a week.
pub const MAX_GRACE_HOURS: i32 = 168;

/// Whether `token` is the integration's previous URL, still in its grace period.
pub fn accepts_previous(model: &integration::Model, token: &str) -> bool {
    model.previous_webhook_token.as_deref() == Some(token)
        && model
            .previous_token_until
            .is_some_and(|until| until > now_ms())
}

/// Deletes the integration with its group, origins, products, deals, deliveries and
/// import runs. Contacts stay: they belong to the account.
pub async fn delete<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    id: &str,
) -> DomainResult<bool> {
    let current = get(db, caller, id).await?;
    let txn = crate::database::begin_immediate(db).await?;
    if let Some(group) = group::Entity::find()
        .filter(group::Column::IntegrationId.eq(current.id.as_str()))
        .one(&txn)
        .await?
    {
        deal_event::Entity::delete_many()
            .filter(deal_event::Column::GroupId.eq(group.id.as_str()))
            .exec(&txn)
            .await?;
        deal::Entity::delete_many()
            .filter(deal::Column::GroupId.eq(group.id.as_str()))
            .exec(&txn)
            .await?;
    }
    integration::Entity::delete_by_id(current.id)
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(true)
}

/// The group an integration owns (created with it).
pub async fn group_of(
    db: &impl ConnectionTrait,
    integration: &integration::Model,
) -> DomainResult<group::Model> {
    group::Entity::find()
        .filter(group::Column::IntegrationId.eq(integration.id.as_str()))
        .one(db)
        .await?
        .ok_or_else(|| {
            DomainError::Internal(format!("integration {} has no group", integration.id))
        })
}

#[cfg(test)]
mod grace_tests {
    use super::*;

    fn model(previous: Option<&str>, until: Option<i64>) -> integration::Model {
        integration::Model {
            id: "i".into(),
            account_id: "a".into(),
            platform: PLATFORM_HOTMART.into(),
            name: "n".into(),
            label: None,
            status: IntegrationStatus::Active,
            events: "[]".into(),
            keep_deal_owner: false,
            tag_contacts_with_product_name: false,
            merge_products: false,
            webhook_token: "new".into(),
            credentials: None,
            hottok_failures: 0,
            reconcile_enabled: false,
            reconcile_every_minutes: 60,
            reconcile_lookback_hours: 72,
            reconcile_next_at: None,
            previous_webhook_token: previous.map(str::to_owned),
            previous_token_until: until,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn the_previous_url_works_only_during_its_grace() {
        let later = now_ms() + 60_000;
        assert!(accepts_previous(&model(Some("old"), Some(later)), "old"));
        assert!(!accepts_previous(
            &model(Some("old"), Some(now_ms() - 1)),
            "old"
        ));
        assert!(!accepts_previous(&model(Some("old"), None), "old"));
        assert!(!accepts_previous(&model(Some("old"), Some(later)), "other"));
        assert!(!accepts_previous(&model(None, Some(later)), "old"));
    }
}
