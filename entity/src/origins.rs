//! Origins: the pipelines inside a group — one per selected checkout event (see
//! `docs/deal-engine.md`, "Events and origins"), and hand-made ones that only people
//! fill (see `docs/pipeline.md`).

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder, Set, TransactionSession, TransactionTrait,
};

use crate::{
    Caller, DomainError, DomainResult, groups, new_id, now_ms,
    sale::CheckoutEvent,
    scope::find_scoped,
    tables::enums::DealStatus,
    tables::{deal, group, lost_reason, origin, origin_assignee, stage, user},
    users, values,
};

/// Adds an origin for every selected deal-moving event that lacks one, and removes origins
/// of deselected events that hold no deals (an origin with deals is never deleted).
pub async fn sync_with_events(
    db: &impl ConnectionTrait,
    group: &group::Model,
    selected: &[CheckoutEvent],
) -> DomainResult<()> {
    let existing = origin::Entity::find()
        .filter(origin::Column::GroupId.eq(group.id.as_str()))
        .all(db)
        .await?;
    for event in selected {
        if existing.iter().any(|o| o.checkout_event == Some(*event)) {
            continue;
        }
        let (name, entry_status) = event.default_origin();
        insert(db, group, Some(*event), name, entry_status).await?;
    }
    let stale = existing
        .iter()
        .filter(|o| o.checkout_event.is_some_and(|e| !selected.contains(&e)));
    for stale in stale {
        let deals = deal::Entity::find()
            .filter(deal::Column::OriginId.eq(stale.id.as_str()))
            .count(db)
            .await?;
        if deals == 0 {
            remove(db, &stale.id).await?;
        }
    }
    Ok(())
}

/// A new origin with its default stages (and, for a checkout event, lost reasons).
async fn insert(
    db: &impl ConnectionTrait,
    group: &group::Model,
    event: Option<CheckoutEvent>,
    name: &str,
    entry_status: DealStatus,
) -> DomainResult<origin::Model> {
    let created = origin::ActiveModel {
        id: Set(new_id()),
        account_id: Set(group.account_id.clone()),
        group_id: Set(group.id.clone()),
        checkout_event: Set(event),
        name: Set(name.to_owned()),
        entry_status: Set(entry_status),
        rotation_cursor: Set(0),
        message_template: Set(None),
        created_at: Set(now_ms()),
    }
    .insert(db)
    .await?;
    crate::stages::create_defaults(db, &created, event.is_some()).await?;
    Ok(created)
}

/// Removes an origin that holds no deals, with its stages, reasons and rotation.
async fn remove(db: &impl ConnectionTrait, origin_id: &str) -> DomainResult<()> {
    stage::Entity::delete_many()
        .filter(stage::Column::OriginId.eq(origin_id))
        .exec(db)
        .await?;
    lost_reason::Entity::delete_many()
        .filter(lost_reason::Column::OriginId.eq(origin_id))
        .exec(db)
        .await?;
    origin_assignee::Entity::delete_many()
        .filter(origin_assignee::Column::OriginId.eq(origin_id))
        .exec(db)
        .await?;
    origin::Entity::delete_by_id(origin_id.to_owned())
        .exec(db)
        .await?;
    Ok(())
}

/// A hand-made origin in a group: no checkout event, entered only by people.
pub async fn create_hand_made<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    group_id: &str,
    name: &str,
) -> DomainResult<origin::Model> {
    caller.require_admin()?;
    let group = find_scoped::<group::Entity>(db, caller, group_id).await?;
    let name = values::name("name", name)?;
    let txn = crate::database::begin_immediate(db).await?;
    let count = origin::Entity::find()
        .filter(origin::Column::GroupId.eq(group.id.as_str()))
        .count(&txn)
        .await?;
    if count >= MAX_PER_GROUP {
        return Err(DomainError::bad_input(
            "groupId",
            format!("a group has at most {MAX_PER_GROUP} origins"),
        ));
    }
    let created = insert(&txn, &group, None, &name, DealStatus::Open).await?;
    txn.commit().await?;
    Ok(created)
}

/// Most origins of one group (checkout events and hand-made).
pub const MAX_PER_GROUP: u64 = 50;

/// The WhatsApp message of an origin: its own, else its event's default.
pub fn message_template(origin: &origin::Model) -> String {
    match (&origin.message_template, origin.checkout_event) {
        (Some(own), _) => own.clone(),
        (None, Some(event)) => event.default_message().to_owned(),
        (None, None) => crate::sale::checkout_event::HAND_MADE_MESSAGE.to_owned(),
    }
}

/// Origins of a group, in the order of the Hotmart journey (the order of the events table
/// in `docs/deal-engine.md`).
pub async fn of_group(
    db: &impl ConnectionTrait,
    group_id: &str,
) -> DomainResult<Vec<origin::Model>> {
    let mut origins = origin::Entity::find()
        .filter(origin::Column::GroupId.eq(group_id))
        .all(db)
        .await?;
    // Checkout events in journey order, then hand-made origins oldest first.
    origins.sort_by_key(|o| (o.checkout_event.is_none(), o.checkout_event, o.created_at));
    Ok(origins)
}

/// An origin the caller may see (members: only in visible groups).
pub async fn get(
    db: &impl ConnectionTrait,
    caller: &Caller,
    id: &str,
) -> DomainResult<origin::Model> {
    let origin = find_scoped::<origin::Entity>(db, caller, id).await?;
    groups::get(db, caller, &origin.group_id).await?;
    Ok(origin)
}

pub async fn update(
    db: &impl ConnectionTrait,
    caller: &Caller,
    id: &str,
    name: Option<&str>,
    entry_status: Option<DealStatus>,
    message_template: Option<&str>,
) -> DomainResult<origin::Model> {
    caller.require_admin()?;
    let current = find_scoped::<origin::Entity>(db, caller, id).await?;
    let mut model = current.into_active_model();
    if let Some(template) = message_template {
        let template = template.trim();
        if template.chars().count() > 2_000 {
            return Err(DomainError::bad_input(
                "messageTemplate",
                "must be at most 2000 characters",
            ));
        }
        // An empty message goes back to the default.
        model.message_template = Set((!template.is_empty()).then(|| template.to_owned()));
    }
    if let Some(name) = name {
        model.name = Set(values::name("name", name)?);
    }
    if let Some(status) = entry_status {
        model.entry_status = Set(status);
    }
    Ok(model.update(db).await?)
}

/// Replaces the owner rotation of an origin; the order given is the rotation order.
pub async fn set_assignees<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    id: &str,
    user_ids: &[String],
) -> DomainResult<origin::Model> {
    caller.require_admin()?;
    let current = find_scoped::<origin::Entity>(db, caller, id).await?;
    let users = users::resolve_ids(db, caller, "userIds", user_ids).await?;
    let txn = crate::database::begin_immediate(db).await?;
    origin_assignee::Entity::delete_many()
        .filter(origin_assignee::Column::OriginId.eq(current.id.as_str()))
        .exec(&txn)
        .await?;
    for (position, user) in users.iter().enumerate() {
        origin_assignee::ActiveModel {
            origin_id: Set(current.id.clone()),
            user_id: Set(user.id.clone()),
            account_id: Set(caller.account_id.clone()),
            position: Set(position as i32),
            weight: Set(1),
        }
        .insert(&txn)
        .await?;
    }
    let mut model = current.into_active_model();
    model.rotation_cursor = Set(0);
    let updated = model.update(&txn).await?;
    txn.commit().await?;
    Ok(updated)
}

/// The rotation of an origin, in order.
pub async fn assignees(
    db: &impl ConnectionTrait,
    origin_id: &str,
) -> DomainResult<Vec<user::Model>> {
    let rows = origin_assignee::Entity::find()
        .filter(origin_assignee::Column::OriginId.eq(origin_id))
        .order_by_asc(origin_assignee::Column::Position)
        .all(db)
        .await?;
    let ids: Vec<&str> = rows.iter().map(|r| r.user_id.as_str()).collect();
    let found = user::Entity::find()
        .filter(user::Column::Id.is_in(ids.clone()))
        .all(db)
        .await?;
    Ok(ids
        .iter()
        .filter_map(|id| found.iter().find(|u| u.id == *id).cloned())
        .collect())
}

/// Deals in an origin the caller may see.
pub async fn deal_count(
    db: &impl ConnectionTrait,
    caller: &Caller,
    origin_id: &str,
    status: Option<DealStatus>,
) -> DomainResult<u64> {
    crate::deals::count_where(db, caller, deal::Column::OriginId, origin_id, status).await
}
