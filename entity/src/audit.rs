//! The audit log: who changed what in an account's set-up and people (see
//! `docs/privacy.md`, "Audit log"). Entries are written by the service that makes the
//! change, in the same transaction, so a change and its entry land together or not at
//! all; nothing updates or deletes them except the yearly prune. Details never hold a
//! secret's value: a changed hottok is recorded as changed, not what it became.

use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::Value;

use crate::{
    Caller, DomainError, DomainResult, new_id, now_ms,
    page::{Cursor, Page, PageRequest},
    scope::scoped,
    tables::audit_entry::{self, Column},
};

/// How long entries are kept.
pub const KEEP_MS: i64 = 365 * 24 * 3600 * 1000;

/// Who acted.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    User(&'a Caller),
    /// The command line, run by whoever operates the installation.
    Cli,
    /// The system itself (a sign-in lockout, an automatic pause).
    System,
}

impl Actor<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Actor::User(_) => "USER",
            Actor::Cli => "CLI",
            Actor::System => "SYSTEM",
        }
    }
}

/// One change, as the log records it.
#[derive(Debug, Clone)]
pub struct Change {
    pub action: &'static str,
    pub target_type: &'static str,
    pub target_id: Option<String>,
    pub details: Option<Value>,
}

impl Change {
    pub fn new(action: &'static str, target_type: &'static str, target_id: &str) -> Self {
        Change {
            action,
            target_type,
            target_id: Some(target_id.to_owned()),
            details: None,
        }
    }

    pub fn with(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
}

/// Appends one entry to `account_id`'s log.
pub async fn record(
    db: &impl ConnectionTrait,
    account_id: &str,
    actor: Actor<'_>,
    change: Change,
) -> DomainResult<()> {
    let actor_id = match actor {
        Actor::User(caller) if !caller.user_id.is_empty() => Some(caller.user_id.clone()),
        _ => None,
    };
    audit_entry::Entity::insert(audit_entry::ActiveModel {
        id: Set(new_id()),
        account_id: Set(account_id.to_owned()),
        at: Set(now_ms()),
        actor_id: Set(actor_id),
        actor_kind: Set(actor.kind().to_owned()),
        action: Set(change.action.to_owned()),
        target_type: Set(change.target_type.to_owned()),
        target_id: Set(change.target_id),
        details: Set(change.details.map(|d| d.to_string())),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Appends an entry for a change the caller made in their own account.
pub async fn by(db: &impl ConnectionTrait, caller: &Caller, change: Change) -> DomainResult<()> {
    record(db, &caller.account_id, Actor::User(caller), change).await
}

/// Which entries to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub actor_id: Option<String>,
    pub action: Option<String>,
}

/// The caller's account's entries, newest first (admins only).
pub async fn page(
    db: &impl ConnectionTrait,
    caller: &Caller,
    filter: &Filter,
    page: PageRequest,
) -> DomainResult<Page<audit_entry::Model>> {
    caller.require_admin()?;
    let mut query = scoped::<audit_entry::Entity>(caller);
    if let Some(actor) = &filter.actor_id {
        query = query.filter(Column::ActorId.eq(actor.as_str()));
    }
    if let Some(action) = &filter.action {
        if action.len() > 100 {
            return Err(DomainError::bad_input("filter.action", "is too long"));
        }
        query = query.filter(Column::Action.eq(action.as_str()));
    }
    crate::page::fetch(db, query, Column::At, Column::Id, page, |e| Cursor {
        at: e.at,
        id: e.id.clone(),
    })
    .await
}

/// The newest entry of `action` on one target, if any.
pub async fn latest(
    db: &impl ConnectionTrait,
    account_id: &str,
    action: &str,
    target_id: &str,
) -> DomainResult<Option<audit_entry::Model>> {
    use sea_orm::QueryOrder;
    Ok(audit_entry::Entity::find()
        .filter(Column::AccountId.eq(account_id))
        .filter(Column::Action.eq(action))
        .filter(Column::TargetId.eq(target_id))
        .order_by_desc(Column::At)
        .one(db)
        .await?)
}

/// Deletes entries older than a year; returns how many.
pub async fn prune(db: &impl ConnectionTrait, now: i64) -> DomainResult<u64> {
    Ok(audit_entry::Entity::delete_many()
        .filter(Column::At.lt(now - KEEP_MS))
        .exec(db)
        .await?
        .rows_affected)
}
