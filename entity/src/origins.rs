//! Origins: the pipelines inside a group, one per selected deal-moving event (see
//! `docs/deal-engine.md`, "Events and origins").

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, TransactionSession, TransactionTrait,
};

use crate::{
    Caller, DomainResult, HotmartEvent, groups,
    hotmart_event::DealStatus,
    new_id, now_ms,
    scope::find_scoped,
    tables::{deal, group, origin, origin_assignee, user},
    users, values,
};

/// Adds an origin for every selected deal-moving event that lacks one, and removes origins
/// of deselected events that hold no deals (an origin with deals is never deleted).
pub async fn sync_with_events(
    db: &impl ConnectionTrait,
    group: &group::Model,
    events: &[HotmartEvent],
) -> DomainResult<()> {
    let existing = origin::Entity::find()
        .filter(origin::Column::GroupId.eq(group.id.as_str()))
        .all(db)
        .await?;
    let now = now_ms();
    for event in events {
        let Some((name, entry_status)) = event.default_origin() else {
            continue;
        };
        if existing.iter().any(|o| o.event == *event) {
            continue;
        }
        origin::ActiveModel {
            id: Set(new_id()),
            account_id: Set(group.account_id.clone()),
            group_id: Set(group.id.clone()),
            event: Set(*event),
            name: Set(name.to_owned()),
            entry_status: Set(entry_status),
            rotation_cursor: Set(0),
            created_at: Set(now),
        }
        .insert(db)
        .await?;
    }
    for stale in existing.iter().filter(|o| !events.contains(&o.event)) {
        let deals = deal::Entity::find()
            .filter(deal::Column::OriginId.eq(stale.id.as_str()))
            .count(db)
            .await?;
        if deals == 0 {
            origin::Entity::delete_by_id(stale.id.clone())
                .exec(db)
                .await?;
        }
    }
    Ok(())
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
    origins.sort_by_key(|o| o.event);
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
) -> DomainResult<origin::Model> {
    caller.require_admin()?;
    let current = find_scoped::<origin::Entity>(db, caller, id).await?;
    let mut model = current.into_active_model();
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

pub async fn deal_count(
    db: &impl ConnectionTrait,
    origin_id: &str,
    status: Option<DealStatus>,
) -> DomainResult<u64> {
    let mut query = deal::Entity::find().filter(deal::Column::OriginId.eq(origin_id));
    if let Some(status) = status {
        query = query.filter(deal::Column::Status.eq(status.as_str()));
    }
    Ok(query
        .select_only()
        .column(deal::Column::Id)
        .count(db)
        .await?)
}
