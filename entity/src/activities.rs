//! Activities: calls, WhatsApp messages, e-mails, meetings and tasks scheduled on deals
//! (see `docs/pipeline.md`, "Activities"). Completing one puts it on the deal's timeline
//! through the engine, like every other action.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, IntoActiveModel, QueryFilter, Set,
    TransactionTrait, sea_query::Query,
};

use crate::{
    Caller, DomainError, DomainResult, deals, groups, new_id, now_ms,
    page::{Cursor, Page, PageRequest},
    scope::{find_scoped, scoped},
    tables::{activity, deal, enums::ActivityKind},
    users,
    work::{self, Intent},
};

/// Most characters of an activity's title.
pub const MAX_TITLE: usize = 200;

#[derive(Debug, Clone, Default)]
pub struct ActivityFilter {
    pub assignee_id: Option<String>,
    pub deal_id: Option<String>,
    pub done: Option<bool>,
    pub due_before: Option<i64>,
    pub due_after: Option<i64>,
}

/// Schedules an activity on a deal the caller works (members: deals they own); the
/// assignee defaults to the caller.
pub async fn schedule(
    db: &impl ConnectionTrait,
    caller: &Caller,
    deal_id: &str,
    kind: ActivityKind,
    title: &str,
    due_at: i64,
    assignee_id: Option<&str>,
) -> DomainResult<activity::Model> {
    let deal = deals::get(db, caller, deal_id).await?;
    work::may_work(caller, &deal)?;
    let title = title.trim();
    if title.is_empty() || title.chars().count() > MAX_TITLE {
        return Err(DomainError::bad_input(
            "title",
            format!("must be 1 to {MAX_TITLE} characters"),
        ));
    }
    if title.chars().any(char::is_control) {
        return Err(DomainError::bad_input(
            "title",
            "must not hold control characters",
        ));
    }
    let assignee = match assignee_id {
        Some(id) => {
            users::resolve_ids(db, caller, "assigneeId", &[id.to_owned()])
                .await?
                .remove(0)
                .id
        }
        None => caller.user_id.clone(),
    };
    if !caller.is_admin() && assignee != caller.user_id {
        return Err(DomainError::forbidden(
            "members schedule activities for themselves",
        ));
    }
    Ok(activity::ActiveModel {
        id: Set(new_id()),
        account_id: Set(caller.account_id.clone()),
        group_id: Set(deal.group_id.clone()),
        deal_id: Set(deal.id.clone()),
        kind: Set(kind),
        title: Set(title.to_owned()),
        due_at: Set(due_at),
        done_at: Set(None),
        note: Set(None),
        assignee_id: Set(Some(assignee)),
        created_by: Set(Some(caller.user_id.clone())),
        canceled_at: Set(None),
        created_at: Set(now_ms()),
    }
    .insert(db)
    .await?)
}

/// Marks an activity done and puts it on its deal's timeline.
pub async fn complete<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    id: &str,
    note: Option<&str>,
) -> DomainResult<activity::Model> {
    let current = get(db, caller, id).await?;
    let deal = deals::get(db, caller, &current.deal_id).await?;
    may_touch(caller, &current, &deal)?;
    if current.done_at.is_some() {
        return Err(DomainError::Conflict("a atividade já foi concluída".into()));
    }
    let note = work::note_text("note", note)?;
    let intent = Intent::ActivityDone {
        title: current.title.clone(),
        note: note.clone(),
    };
    // The timeline entry first (it checks the deal again under its locks), then the row.
    work::act(db, caller, &deal.id, intent, None).await?;
    let mut model = current.into_active_model();
    model.done_at = Set(Some(now_ms()));
    model.note = Set(note);
    Ok(model.update(db).await?)
}

/// Cancels an activity not yet done.
pub async fn cancel(db: &impl ConnectionTrait, caller: &Caller, id: &str) -> DomainResult<bool> {
    let current = get(db, caller, id).await?;
    let deal = deals::get(db, caller, &current.deal_id).await?;
    may_touch(caller, &current, &deal)?;
    if current.done_at.is_some() {
        return Err(DomainError::Conflict("a atividade já foi concluída".into()));
    }
    let mut model = current.into_active_model();
    model.canceled_at = Set(Some(now_ms()));
    model.update(db).await?;
    Ok(true)
}

/// An activity (not canceled) of a deal the caller may see.
pub async fn get(
    db: &impl ConnectionTrait,
    caller: &Caller,
    id: &str,
) -> DomainResult<activity::Model> {
    let found = find_scoped::<activity::Entity>(db, caller, id).await?;
    if found.canceled_at.is_some() {
        return Err(DomainError::NotFound("activity"));
    }
    deals::get(db, caller, &found.deal_id)
        .await
        .map_err(|_| DomainError::NotFound("activity"))?;
    Ok(found)
}

/// The activities the caller may see, soonest first.
pub async fn page(
    db: &impl ConnectionTrait,
    caller: &Caller,
    filter: ActivityFilter,
    page: PageRequest,
) -> DomainResult<Page<activity::Model>> {
    use activity::Column;
    let visible_deals = Query::select()
        .column(deal::Column::Id)
        .from(deal::Entity)
        .and_where(deal::Column::AccountId.eq(caller.account_id.as_str()))
        .cond_where(groups::deal_condition(caller))
        .to_owned();
    let mut query = scoped::<activity::Entity>(caller)
        .filter(Column::CanceledAt.is_null())
        .filter(Column::DealId.in_subquery(visible_deals));
    if let Some(assignee) = &filter.assignee_id {
        query = query.filter(Column::AssigneeId.eq(assignee.as_str()));
    }
    if let Some(deal) = &filter.deal_id {
        query = query.filter(Column::DealId.eq(deal.as_str()));
    }
    match filter.done {
        Some(true) => query = query.filter(Column::DoneAt.is_not_null()),
        Some(false) => query = query.filter(Column::DoneAt.is_null()),
        None => {}
    }
    if let Some(before) = filter.due_before {
        query = query.filter(Column::DueAt.lt(before));
    }
    if let Some(after) = filter.due_after {
        query = query.filter(Column::DueAt.gte(after));
    }
    crate::page::fetch_soonest(db, query, Column::DueAt, Column::Id, page, |a| Cursor {
        at: a.due_at,
        id: a.id.clone(),
    })
    .await
}

/// Members complete and cancel their own activities, or those of deals they own.
fn may_touch(caller: &Caller, a: &activity::Model, deal: &deal::Model) -> DomainResult<()> {
    if a.assignee_id.as_deref() == Some(caller.user_id.as_str()) {
        return Ok(());
    }
    work::may_work(caller, deal)
}
