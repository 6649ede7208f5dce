//! Groups (pipeline folders) and who may see them (`docs/webhooks.md`, "Who sees what").

use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, Set, TransactionSession, TransactionTrait,
    sea_query::Query,
};

use crate::{
    Caller, DomainError, DomainResult,
    scope::{find_scoped, scoped},
    tables::{deal, enums::DealScope, group, group_viewer, user},
    users,
};

/// The condition "visible to this caller" on `groups`: everything for admins; for members,
/// groups open to everyone or listing them as viewers.
pub fn visible_condition(caller: &Caller) -> Condition {
    if caller.is_admin() {
        return Condition::all();
    }
    Condition::any()
        .add(group::Column::VisibleToEveryone.eq(true))
        .add(
            group::Column::Id.in_subquery(
                Query::select()
                    .column(group_viewer::Column::GroupId)
                    .from(group_viewer::Entity)
                    .and_where(group_viewer::Column::UserId.eq(caller.user_id.as_str()))
                    .to_owned(),
            ),
        )
}

/// The condition "a deal this caller may see" on `deals` (see `docs/pipeline.md`, "Who
/// works what"): admins see every deal; members the deals of visible groups that the
/// group's `member_scope` lets them see (all, their own, or their own and unowned ones).
pub fn deal_condition(caller: &Caller) -> Condition {
    if caller.is_admin() {
        return Condition::all();
    }
    let groups_with = |scopes: &[DealScope]| {
        deal::Column::GroupId.in_subquery(
            Query::select()
                .column(group::Column::Id)
                .from(group::Entity)
                .and_where(group::Column::AccountId.eq(caller.account_id.as_str()))
                .and_where(group::Column::MemberScope.is_in(scopes.iter().map(|s| s.as_str())))
                .cond_where(visible_condition(caller))
                .to_owned(),
        )
    };
    Condition::any()
        .add(groups_with(&[DealScope::All]))
        .add(
            Condition::all()
                .add(deal::Column::OwnerId.eq(caller.user_id.as_str()))
                .add(groups_with(&[DealScope::Own, DealScope::OwnAndUnowned])),
        )
        .add(
            Condition::all()
                .add(deal::Column::OwnerId.is_null())
                .add(groups_with(&[DealScope::OwnAndUnowned])),
        )
}

/// Who may see which deals of one group, read once and checked in memory: a shared live
/// feed (one poll for every subscriber of a board) filters each subscriber's deals with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupAccess {
    pub member_scope: DealScope,
    pub visible_to_everyone: bool,
    /// Members the group is shown to when it is not visible to everyone.
    pub viewers: std::collections::HashSet<String>,
}

impl GroupAccess {
    /// Whether `caller` may see `deal` of this group: the same rule as
    /// [`deal_condition`], in memory.
    pub fn may_see(&self, caller: &Caller, deal: &deal::Model) -> bool {
        if caller.is_admin() {
            return true;
        }
        if !self.visible_to_everyone && !self.viewers.contains(&caller.user_id) {
            return false;
        }
        let own = deal.owner_id.as_deref() == Some(caller.user_id.as_str());
        match self.member_scope {
            DealScope::All => true,
            DealScope::Own => own,
            DealScope::OwnAndUnowned => own || deal.owner_id.is_none(),
        }
    }
}

/// The access rule of a group of `account_id` (`None` once it is gone).
pub async fn access(
    db: &impl ConnectionTrait,
    account_id: &str,
    group_id: &str,
) -> DomainResult<Option<GroupAccess>> {
    let Some(group) = group::Entity::find_by_id(group_id)
        .filter(group::Column::AccountId.eq(account_id))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let viewers = group_viewer::Entity::find()
        .filter(group_viewer::Column::GroupId.eq(group_id))
        .filter(group_viewer::Column::AccountId.eq(account_id))
        .all(db)
        .await?;
    Ok(Some(GroupAccess {
        member_scope: group.member_scope,
        visible_to_everyone: group.visible_to_everyone,
        viewers: viewers.into_iter().map(|v| v.user_id).collect(),
    }))
}

pub async fn list(db: &impl ConnectionTrait, caller: &Caller) -> DomainResult<Vec<group::Model>> {
    Ok(scoped::<group::Entity>(caller)
        .filter(visible_condition(caller))
        .order_by_asc(group::Column::CreatedAt)
        .order_by_asc(group::Column::Id)
        .all(db)
        .await?)
}

/// Ids of the groups the caller may see; `None` means all groups of the account.
pub async fn visible_ids(
    db: &impl ConnectionTrait,
    caller: &Caller,
) -> DomainResult<Option<Vec<String>>> {
    if caller.is_admin() {
        return Ok(None);
    }
    let ids: Vec<String> = scoped::<group::Entity>(caller)
        .filter(visible_condition(caller))
        .select_only()
        .column(group::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    Ok(Some(ids))
}

/// A group the caller may see; hidden groups are `NOT_FOUND` to members.
pub async fn get(
    db: &impl ConnectionTrait,
    caller: &Caller,
    id: &str,
) -> DomainResult<group::Model> {
    scoped::<group::Entity>(caller)
        .filter(group::Column::Id.eq(id))
        .filter(visible_condition(caller))
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("group"))
}

pub async fn set_visibility<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    id: &str,
    everyone: bool,
    user_ids: &[String],
    member_scope: Option<DealScope>,
) -> DomainResult<group::Model> {
    caller.require_admin()?;
    let current = find_scoped::<group::Entity>(db, caller, id).await?;
    let viewers = users::resolve_ids(db, caller, "userIds", user_ids).await?;
    let txn = crate::database::begin_immediate(db).await?;
    group_viewer::Entity::delete_many()
        .filter(group_viewer::Column::GroupId.eq(current.id.as_str()))
        .exec(&txn)
        .await?;
    for viewer in &viewers {
        group_viewer::ActiveModel {
            group_id: Set(current.id.clone()),
            user_id: Set(viewer.id.clone()),
            account_id: Set(caller.account_id.clone()),
        }
        .insert(&txn)
        .await?;
    }
    let mut model = current.into_active_model();
    model.visible_to_everyone = Set(everyone);
    if let Some(scope) = member_scope {
        model.member_scope = Set(scope);
    }
    let updated = model.update(&txn).await?;
    txn.commit().await?;
    Ok(updated)
}

/// The users listed as viewers of a group.
pub async fn viewers(db: &impl ConnectionTrait, group_id: &str) -> DomainResult<Vec<user::Model>> {
    Ok(user::Entity::find()
        .filter(
            user::Column::Id.in_subquery(
                Query::select()
                    .column(group_viewer::Column::UserId)
                    .from(group_viewer::Entity)
                    .and_where(group_viewer::Column::GroupId.eq(group_id))
                    .to_owned(),
            ),
        )
        .order_by_asc(user::Column::Name)
        .all(db)
        .await?)
}
