//! Integrations with the checkouts (Hotmart, Kiwify, Eduzz) and the set-up flow
//! (`docs/webhooks.md`).

pub use crate::tables::enums::IntegrationStatus;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder, Set, TransactionSession, TransactionTrait,
};

use crate::{
    Caller, DomainError, DomainResult, HotmartEvent,
    hotmart_event::{decode_events, encode_events},
    labels, new_id, now_ms, origins,
    platform::Platform,
    sale::{CheckoutEvent, SaleKind},
    scope::{find_scoped, scoped},
    secrets::{SecretKeys, random_token},
    stamps,
    tables::{deal, deal_event, group, integration, product},
    values,
};

pub const PLATFORM_HOTMART: &str = "HOTMART";

/// 32 random bytes: the webhook URL token is well over the 128 bits the spec asks for.
const WEBHOOK_TOKEN_BYTES: usize = 32;

pub fn status(model: &integration::Model) -> IntegrationStatus {
    model.status
}

/// A Hotmart integration's selected Hotmart events (other platforms store neutral events:
/// see [`checkout_events`]).
pub fn events(model: &integration::Model) -> DomainResult<Vec<HotmartEvent>> {
    match Platform::of(model) {
        Platform::Hotmart => decode_events(&model.events),
        _ => Ok(checkout_events(model)?
            .into_iter()
            .map(HotmartEvent::of_neutral)
            .collect()),
    }
}

/// The neutral events the integration receives (for Hotmart, the mapping of its events).
pub fn checkout_events(model: &integration::Model) -> DomainResult<Vec<CheckoutEvent>> {
    if Platform::of(model) == Platform::Hotmart {
        return Ok(decode_events(&model.events)?
            .into_iter()
            .filter_map(HotmartEvent::neutral)
            .collect());
    }
    let names: Vec<String> = serde_json::from_str(&model.events)
        .map_err(|err| DomainError::Internal(format!("stored event list is corrupt: {err}")))?;
    Ok(names
        .iter()
        .filter_map(|n| CheckoutEvent::parse(n))
        .collect())
}

/// Whether a delivery's event is one the integration receives. Hotmart's are chosen by
/// Hotmart name (its info events too); the other platforms' by neutral event, and their
/// info events go on timelines whenever the sale's product is registered.
pub fn receives(
    model: &integration::Model,
    event_name: &str,
    kind: SaleKind,
) -> DomainResult<bool> {
    Ok(match (Platform::of(model), kind) {
        (Platform::Hotmart, _) => HotmartEvent::parse(event_name)
            .is_some_and(|e| events(model).is_ok_and(|s| s.contains(&e))),
        (_, SaleKind::Info) => true,
        (_, SaleKind::Checkout(event)) => checkout_events(model)?.contains(&event),
    })
}

/// A platform's selection of neutral events, checked (§11.1: an event the platform never
/// sends is refused, by name) and in canonical order.
fn selected_checkout_events(
    platform: Platform,
    events: &[CheckoutEvent],
) -> DomainResult<Vec<CheckoutEvent>> {
    if events.is_empty() {
        return Err(DomainError::bad_input(
            "events",
            "select at least one event",
        ));
    }
    if let Some(never) = events.iter().find(|e| !platform.sends(**e)) {
        return Err(DomainError::bad_input(
            "events",
            format!("{} does not send {}", platform.title(), never.as_str()),
        ));
    }
    let mut events = events.to_vec();
    events.sort_by_key(|e| e.as_str());
    events.dedup();
    Ok(events)
}

fn encode_checkout_events(events: &[CheckoutEvent]) -> String {
    serde_json::to_string(&events.iter().map(|e| e.as_str()).collect::<Vec<_>>())
        .expect("a list of strings serialises")
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

/// Step 1 (Hotmart, by Hotmart events): a `DRAFT` integration with its group and one
/// origin per deal-moving event.
pub async fn create<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    name: &str,
    events: &[HotmartEvent],
) -> DomainResult<integration::Model> {
    let events = selected_events("events", events)?;
    let stored = encode_events(&events);
    let neutral: Vec<CheckoutEvent> = events.iter().filter_map(|e| e.neutral()).collect();
    insert(db, caller, Platform::Hotmart, name, stored, &neutral, None).await
}

/// Step 1, any platform: a `DRAFT` integration receiving `events`, in a new group or
/// joining `group_id` (the group's origins then serve both integrations).
pub async fn create_checkout<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    platform: Platform,
    name: &str,
    events: &[CheckoutEvent],
    group_id: Option<&str>,
) -> DomainResult<integration::Model> {
    let events = selected_checkout_events(platform, events)?;
    let stored = stored_form(platform, &events);
    insert(db, caller, platform, name, stored, &events, group_id).await
}

async fn insert<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    platform: Platform,
    name: &str,
    stored_events: String,
    events: &[CheckoutEvent],
    group_id: Option<&str>,
) -> DomainResult<integration::Model> {
    caller.require_admin()?;
    let name = values::name("name", name)?;
    let now = now_ms();
    let txn = crate::database::begin_immediate(db).await?;
    let id = new_id();
    // The integration row first: a new group names it (a foreign key).
    let joined = match group_id {
        Some(group_id) => Some(
            find_scoped::<group::Entity>(&txn, caller, group_id)
                .await
                .map_err(|_| DomainError::bad_input("groupId", "no such group"))?,
        ),
        None => None,
    };
    let group_id = joined.as_ref().map_or_else(new_id, |g| g.id.clone());
    let integration = new_row(caller, id, platform, name, stored_events, &group_id, now)
        .insert(&txn)
        .await?;
    let group = match joined {
        Some(group) => group,
        None => {
            group::ActiveModel {
                id: Set(group_id),
                account_id: Set(caller.account_id.clone()),
                integration_id: Set(integration.id.clone()),
                name: Set(integration.name.clone()),
                visible_to_everyone: Set(true),
                member_scope: Set(crate::tables::enums::DealScope::All),
                created_at: Set(now),
            }
            .insert(&txn)
            .await?
        }
    };
    sync_group_origins(&txn, &group, Some((&integration.id, events))).await?;
    stamps::bump(&txn, stamps::ROUTES).await?;
    txn.commit().await?;
    Ok(integration)
}

/// An edit's new event selection, when it has one: the stored form and the neutral
/// events. Hotmart integrations may choose by Hotmart name or by neutral event.
fn new_selection(
    platform: Platform,
    changes: &IntegrationChanges,
) -> DomainResult<Option<(String, Vec<CheckoutEvent>)>> {
    Ok(match (&changes.events, &changes.checkout_events) {
        (Some(_), Some(_)) => {
            return Err(DomainError::bad_input(
                "checkoutEvents",
                "give events or checkoutEvents, not both",
            ));
        }
        (Some(hotmart), None) if platform == Platform::Hotmart => {
            let events = selected_events("events", hotmart)?;
            let neutral: Vec<CheckoutEvent> = events.iter().filter_map(|e| e.neutral()).collect();
            Some((encode_events(&events), neutral))
        }
        (Some(_), None) => {
            return Err(DomainError::bad_input(
                "events",
                format!("{} integrations choose checkoutEvents", platform.title()),
            ));
        }
        (None, Some(neutral)) => {
            let events = selected_checkout_events(platform, neutral)?;
            Some((stored_form(platform, &events), events))
        }
        (None, None) => None,
    })
}

/// How a platform's selection is stored: Hotmart's by Hotmart name, the others' neutral.
fn stored_form(platform: Platform, events: &[CheckoutEvent]) -> String {
    match platform {
        Platform::Hotmart => encode_events(
            &events
                .iter()
                .map(|e| HotmartEvent::of_neutral(*e))
                .collect::<Vec<_>>(),
        ),
        _ => encode_checkout_events(events),
    }
}

/// A new `DRAFT` integration's row.
fn new_row(
    caller: &Caller,
    id: String,
    platform: Platform,
    name: String,
    stored_events: String,
    group_id: &str,
    now: i64,
) -> integration::ActiveModel {
    integration::ActiveModel {
        id: Set(id),
        account_id: Set(caller.account_id.clone()),
        platform: Set(platform.as_str().to_owned()),
        name: Set(name),
        label: Set(None),
        status: Set(IntegrationStatus::Draft),
        events: Set(stored_events),
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
        webhook_secret: Set(None),
        group_id: Set(Some(group_id.to_owned())),
    }
}

/// Gives the group an origin for every event any of its integrations receives (with
/// `changed`, one integration's new selection, not yet stored).
async fn sync_group_origins(
    db: &impl ConnectionTrait,
    group: &group::Model,
    changed: Option<(&str, &[CheckoutEvent])>,
) -> DomainResult<()> {
    let mut all: Vec<CheckoutEvent> = changed.map(|(_, e)| e.to_vec()).unwrap_or_default();
    for member in members(db, &group.id).await? {
        if changed.is_some_and(|(id, _)| id == member.id) {
            continue;
        }
        all.extend(checkout_events(&member)?);
    }
    all.sort_by_key(|e| e.as_str());
    all.dedup();
    origins::sync_with_events(db, group, &all).await
}

/// The integrations whose deals go to a group.
pub async fn members(
    db: &impl ConnectionTrait,
    group_id: &str,
) -> DomainResult<Vec<integration::Model>> {
    Ok(integration::Entity::find()
        .filter(integration::Column::GroupId.eq(group_id))
        .order_by_asc(integration::Column::CreatedAt)
        .order_by_asc(integration::Column::Id)
        .all(db)
        .await?)
}

/// Step 3 (and later edits). `None` leaves a setting unchanged; a blank label clears it.
#[derive(Debug, Default, Clone)]
pub struct IntegrationChanges {
    pub name: Option<String>,
    pub label: Option<String>,
    pub events: Option<Vec<HotmartEvent>>,
    /// The neutral events, for any platform (instead of `events`).
    pub checkout_events: Option<Vec<CheckoutEvent>>,
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
    let txn = crate::database::begin_immediate(db).await?;
    let current = find_scoped::<integration::Entity>(&txn, caller, id).await?;
    let platform = Platform::of(&current);
    let events = new_selection(platform, &changes)?;
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
    if let Some((stored, neutral)) = events {
        sync_group_origins(&txn, &group, Some((id, &neutral))).await?;
        model.events = Set(stored);
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
    stamps::bump(&txn, stamps::ROUTES).await?;
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
    let platform = Platform::of(&current);
    if platform.signs() && current.webhook_secret.is_none() {
        return Err(DomainError::bad_input(
            "webhookSecret",
            format!(
                "set the {} first (setWebhookSecret): without it deliveries cannot be verified",
                secret_name(platform)
            ),
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
    let updated = model.update(db).await?;
    stamps::bump(db, stamps::ROUTES).await?;
    Ok(updated)
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
    let updated = model.update(db).await?;
    stamps::bump(db, stamps::ROUTES).await?;
    Ok(updated)
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
/// import runs. Contacts stay: they belong to the account. An integration that joined
/// another's group leaves the group's deals in place.
pub async fn delete<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    id: &str,
) -> DomainResult<bool> {
    let current = get(db, caller, id).await?;
    let txn = crate::database::begin_immediate(db).await?;
    let owned = group::Entity::find()
        .filter(group::Column::IntegrationId.eq(current.id.as_str()))
        .one(&txn)
        .await?;
    if let Some(group) = owned {
        let others = members(&txn, &group.id)
            .await?
            .into_iter()
            .filter(|m| m.id != current.id)
            .count();
        if others > 0 {
            return Err(DomainError::bad_input(
                "id",
                format!(
                    "{others} other integration(s) send their sales to this integration's group: \
                     delete them first"
                ),
            ));
        }
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
    stamps::bump(&txn, stamps::ROUTES).await?;
    txn.commit().await?;
    Ok(true)
}

/// The group an integration's deals go to (its own, or the one it joined).
pub async fn group_of(
    db: &impl ConnectionTrait,
    integration: &integration::Model,
) -> DomainResult<group::Model> {
    let query = match &integration.group_id {
        Some(id) => group::Entity::find_by_id(id.clone()),
        None => {
            group::Entity::find().filter(group::Column::IntegrationId.eq(integration.id.as_str()))
        }
    };
    query.one(db).await?.ok_or_else(|| {
        DomainError::Internal(format!("integration {} has no group", integration.id))
    })
}

/// What the platform calls the secret its deliveries are signed with.
pub fn secret_name(platform: Platform) -> &'static str {
    match platform {
        Platform::Kiwify => "Kiwify webhook token",
        Platform::Eduzz => "Eduzz signing key (chave de acesso)",
        Platform::Hotmart => "Hotmart hottok",
    }
}

/// Most bytes of a webhook secret.
const MAX_SECRET_LEN: usize = 512;

/// Sets the secret a Kiwify or Eduzz integration's deliveries are signed with: sealed at
/// rest, never returned.
pub async fn set_webhook_secret(
    db: &impl ConnectionTrait,
    keys: &SecretKeys,
    caller: &Caller,
    id: &str,
    secret: &str,
) -> DomainResult<integration::Model> {
    let current = get(db, caller, id).await?;
    let platform = Platform::of(&current);
    if !platform.signs() {
        return Err(DomainError::bad_input(
            "integrationId",
            "Hotmart deliveries are authenticated by each product's hottok: set it on the product",
        ));
    }
    let secret = secret.trim();
    if secret.is_empty()
        || secret.len() > MAX_SECRET_LEN
        || secret.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(DomainError::bad_input(
            "secret",
            format!(
                "must be the {} exactly as shown in {} (no spaces, at most {MAX_SECRET_LEN} characters)",
                secret_name(platform),
                platform.title()
            ),
        ));
    }
    let mut model = current.into_active_model();
    model.webhook_secret = Set(Some(keys.seal(secret.as_bytes())));
    model.updated_at = Set(now_ms());
    let updated = model.update(db).await?;
    stamps::bump(db, stamps::ROUTES).await?;
    Ok(updated)
}

/// The integration's webhook secret, opened; `None` when not set.
pub fn webhook_secret(
    keys: &SecretKeys,
    integration: &integration::Model,
) -> DomainResult<Option<Vec<u8>>> {
    integration
        .webhook_secret
        .as_deref()
        .map(|sealed| keys.open(sealed))
        .transpose()
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
            webhook_secret: None,
            group_id: None,
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
