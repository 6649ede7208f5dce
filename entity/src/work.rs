//! People working deals (see `docs/pipeline.md`, "What a seller does to a deal"): moving,
//! winning, losing, reopening, notes, claims and owner changes. Each is checked here
//! (rights, the deal's state, `expectedVersion`), then appended to the deal key's log and
//! folded by the engine like any checkout event, in one transaction.

use std::collections::BTreeMap;

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, TransactionSession,
    TransactionTrait, sea_query::Expr,
};

use crate::{
    Caller, DomainError, DomainResult,
    engine::{
        apply::{IntegrationSnapshot, PersonAction, apply_actions},
        model::Action,
    },
    groups,
    scope::scoped,
    tables::{deal, deal_event, enums::DealStatus, group, lost_reason, stage, user},
    users,
};

/// Most deals one bulk edit takes.
pub const MAX_BULK: usize = 500;
/// Most characters of a note.
pub const MAX_NOTE: usize = 5_000;

/// What a person asks of a deal.
#[derive(Debug, Clone)]
pub enum Intent {
    Move {
        stage_id: String,
    },
    Win {
        note: Option<String>,
    },
    Lose {
        lost_reason_id: Option<String>,
        note: Option<String>,
    },
    Reopen {
        stage_id: Option<String>,
    },
    Note {
        text: String,
    },
    Claim,
    /// A new owner (or none), set by an admin or by the deal's owner.
    Assign {
        user_id: Option<String>,
    },
    /// An activity of the deal was done (its title, and the note given).
    ActivityDone {
        title: String,
        note: Option<String>,
    },
}

impl Intent {
    fn is_bulk_allowed(&self) -> bool {
        matches!(self, Intent::Move { .. } | Intent::Assign { .. })
    }
}

/// Applies one intent to one deal; `expected_version` refuses a stale edit.
pub async fn act<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    deal_id: &str,
    intent: Intent,
    expected_version: Option<i64>,
) -> DomainResult<deal::Model> {
    let mut deals = act_on(db, caller, &[deal_id.to_owned()], intent, expected_version).await?;
    Ok(deals.remove(0))
}

/// An admin's bulk edit (moving or assigning up to [`MAX_BULK`] deals): all or nothing.
pub async fn act_many<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    deal_ids: &[String],
    intent: Intent,
) -> DomainResult<Vec<deal::Model>> {
    caller.require_admin()?;
    if deal_ids.is_empty() || deal_ids.len() > MAX_BULK {
        return Err(DomainError::bad_input(
            "dealIds",
            format!("must name between 1 and {MAX_BULK} deals"),
        ));
    }
    act_on(db, caller, deal_ids, intent, None).await
}

/// Adds a note; returns the timeline entry.
pub async fn add_note<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    deal_id: &str,
    text: &str,
) -> DomainResult<deal_event::Model> {
    let text = note_text("text", Some(text))?.unwrap_or_default();
    if text.is_empty() {
        return Err(DomainError::bad_input("text", "must not be empty"));
    }
    let deal = act(db, caller, deal_id, Intent::Note { text }, None).await?;
    deal_event::Entity::find()
        .filter(deal_event::Column::DealId.eq(deal.id.as_str()))
        .filter(deal_event::Column::Kind.eq("NOTE"))
        .order_by_desc(deal_event::Column::OccurredAt)
        .order_by_desc(deal_event::Column::RecordedAt)
        .one(db)
        .await?
        .ok_or_else(|| DomainError::Internal("the note was not written".into()))
}

async fn act_on<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    deal_ids: &[String],
    intent: Intent,
    expected_version: Option<i64>,
) -> DomainResult<Vec<deal::Model>> {
    if deal_ids.len() > 1 && !intent.is_bulk_allowed() {
        return Err(DomainError::bad_input("dealIds", "name one deal"));
    }
    let txn = crate::database::begin_immediate(db).await?;
    let deals = locked_deals(&txn, caller, deal_ids, expected_version).await?;
    // Resolved once for the whole edit, whatever its size.
    let owner = owner_of(&txn, caller, &intent).await?;
    let owner_line = owner_line(&txn, caller, &intent).await?;
    let mut by_group: BTreeMap<String, Vec<PersonAction>> = BTreeMap::new();
    let mut snapshots: BTreeMap<String, IntegrationSnapshot> = BTreeMap::new();
    for deal in deals {
        if !snapshots.contains_key(&deal.group_id) {
            let group = group::Entity::find_by_id(deal.group_id.clone())
                .one(&txn)
                .await?
                .ok_or(DomainError::NotFound("group"))?;
            let snapshot = IntegrationSnapshot::load(&txn, &group.integration_id).await?;
            snapshots.insert(deal.group_id.clone(), snapshot);
        }
        let snap = &snapshots[&deal.group_id];
        check_rights(caller, &deal, &intent)?;
        let mut action = plan(&txn, caller, snap, &deal, &intent).await?;
        action.owner = owner.clone();
        if let Some(line) = &owner_line {
            action.description = line.clone();
        }
        by_group
            .entry(deal.group_id.clone())
            .or_default()
            .push(action);
    }
    let mut written: Vec<deal::Model> = Vec::new();
    for (group_id, actions) in &by_group {
        set_owners(&txn, actions).await?;
        written.extend(apply_actions(&txn, &snapshots[group_id], actions).await?);
    }
    txn.commit().await?;
    Ok(deal_ids
        .iter()
        .filter_map(|id| written.iter().find(|d| &d.id == id).cloned())
        .collect())
}

/// The named deals under their contacts' locks (taken as the engine takes them), checked
/// against the version the caller saw.
async fn locked_deals(
    txn: &impl ConnectionTrait,
    caller: &Caller,
    deal_ids: &[String],
    expected_version: Option<i64>,
) -> DomainResult<Vec<deal::Model>> {
    let seen = read_deals(txn, caller, deal_ids).await?;
    let contacts = seen.iter().map(|d| d.contact_id.as_str());
    let deals = if crate::engine::apply::lock_contacts(txn, contacts).await? {
        read_deals(txn, caller, deal_ids).await?
    } else {
        seen
    };
    if let Some(expected) = expected_version
        && deals.iter().any(|d| d.version != expected)
    {
        return Err(DomainError::Conflict(
            "o negócio mudou desde que você o abriu: recarregue e tente de novo".into(),
        ));
    }
    Ok(deals)
}

/// The named deals, as the caller may see them; `NOT_FOUND` if any is not visible.
async fn read_deals(
    db: &impl ConnectionTrait,
    caller: &Caller,
    ids: &[String],
) -> DomainResult<Vec<deal::Model>> {
    let found = scoped::<deal::Entity>(caller)
        .filter(deal::Column::Id.is_in(ids.iter().map(String::as_str)))
        .filter(groups::deal_condition(caller))
        .all(db)
        .await?;
    let mut deals = Vec::with_capacity(ids.len());
    for id in ids {
        let deal = found
            .iter()
            .find(|d| &d.id == id)
            .ok_or(DomainError::NotFound("deal"))?;
        if !deals.iter().any(|d: &deal::Model| &d.id == id) {
            deals.push(deal.clone());
        }
    }
    Ok(deals)
}

/// Members work the deals they own (admins all).
pub fn may_work(caller: &Caller, deal: &deal::Model) -> DomainResult<()> {
    if caller.is_admin() || deal.owner_id.as_deref() == Some(caller.user_id.as_str()) {
        return Ok(());
    }
    Err(DomainError::forbidden(
        "members act only on the deals they own (claim an unowned one first)",
    ))
}

/// Members act on the deals they own and claim unowned ones; admins act on all.
fn check_rights(caller: &Caller, deal: &deal::Model, intent: &Intent) -> DomainResult<()> {
    if caller.is_admin() {
        return Ok(());
    }
    match intent {
        // The activity's rules say who completes it (its assignee, or the deal's owner).
        Intent::ActivityDone { .. } => Ok(()),
        Intent::Claim if deal.owner_id.is_none() => Ok(()),
        Intent::Claim => Err(DomainError::Conflict(
            "este negócio já tem um responsável".into(),
        )),
        _ => may_work(caller, deal),
    }
}

/// The action an intent becomes on one deal, with its timeline line.
async fn plan(
    db: &impl ConnectionTrait,
    caller: &Caller,
    snap: &IntegrationSnapshot,
    deal: &deal::Model,
    intent: &Intent,
) -> DomainResult<PersonAction> {
    let open = deal.status == DealStatus::Open;
    let (action, description) = match intent {
        Intent::Move { stage_id } => {
            require(open, "only an open deal moves (reopen it first)")?;
            move_action(snap, stage_id)?
        }
        Intent::Win { note } => {
            require(open, "only an open deal is won")?;
            let note = note_text("note", note.as_deref())?;
            (Action::Win, with_note("Marcado como ganho".into(), note))
        }
        Intent::Lose {
            lost_reason_id,
            note,
        } => {
            require(open, "only an open deal is lost")?;
            lose_action(db, deal, lost_reason_id.as_deref(), note.as_deref()).await?
        }
        Intent::Reopen { stage_id } => {
            require(!open, "the deal is already open")?;
            reopen_action(db, snap, deal, stage_id.as_deref()).await?
        }
        Intent::Note { text } => (Action::Note, text.clone()),
        // Their line is the edit's, written once by `act_on`.
        Intent::Claim => (Action::OwnerChanged { claim: true }, String::new()),
        Intent::Assign { .. } => (Action::OwnerChanged { claim: false }, String::new()),
        Intent::ActivityDone { title, note } => (
            Action::ActivityDone,
            with_note(format!("Atividade concluída: {title}"), note.clone()),
        ),
    };
    Ok(PersonAction {
        deal: deal.clone(),
        action,
        author_id: Some(caller.user_id.clone()),
        description,
        owner: None,
    })
}

/// The owner a claim or an assignment sets; `None` for other intents.
async fn owner_of(
    db: &impl ConnectionTrait,
    caller: &Caller,
    intent: &Intent,
) -> DomainResult<Option<Option<String>>> {
    Ok(match intent {
        Intent::Claim => Some(Some(caller.user_id.clone())),
        Intent::Assign { user_id } => {
            let user = match user_id {
                Some(id) => Some(
                    users::resolve_ids(db, caller, "userId", std::slice::from_ref(id))
                        .await?
                        .remove(0)
                        .id,
                ),
                None => None,
            };
            Some(user)
        }
        _ => None,
    })
}

async fn reopen_action(
    db: &impl ConnectionTrait,
    snap: &IntegrationSnapshot,
    deal: &deal::Model,
    stage_id: Option<&str>,
) -> DomainResult<(Action, String)> {
    let other_open = deal::Entity::find()
        .filter(deal::Column::OpenKey.eq(deal.deal_key.as_str()))
        .filter(deal::Column::Id.ne(deal.id.as_str()))
        .one(db)
        .await?;
    if other_open.is_some() {
        return Err(DomainError::Conflict(
            "o contato já tem um negócio aberto neste funil: trabalhe nele".into(),
        ));
    }
    let stage = match stage_id {
        Some(id) => live_stage(snap, id, "stageId")?,
        None => {
            let first = snap.first_stage(&deal.origin_id).unwrap_or(&deal.stage_id);
            live_stage(snap, first, "stageId")?
        }
    };
    let action = Action::Reopen {
        origin_id: stage.origin_id.clone(),
        stage_id: stage.id.clone(),
    };
    Ok((action, format!("Reaberto em {}", stage_label(snap, stage))))
}

fn move_action(snap: &IntegrationSnapshot, stage_id: &str) -> DomainResult<(Action, String)> {
    let stage = live_stage(snap, stage_id, "stageId")?;
    let line = format!("Movido para {}", stage_label(snap, stage));
    let action = Action::Move {
        origin_id: stage.origin_id.clone(),
        stage_id: stage.id.clone(),
    };
    Ok((action, line))
}

async fn lose_action(
    db: &impl ConnectionTrait,
    deal: &deal::Model,
    lost_reason_id: Option<&str>,
    note: Option<&str>,
) -> DomainResult<(Action, String)> {
    let note = note_text("note", note)?;
    let reason = lost_reason(db, deal, lost_reason_id).await?;
    let line = match &reason {
        Some(r) => format!("Marcado como perdido: {r}"),
        None => "Marcado como perdido".to_owned(),
    };
    Ok((Action::Lose { reason }, with_note(line, note)))
}

/// A live stage of the snapshot's group.
fn live_stage<'s>(
    snap: &'s IntegrationSnapshot,
    id: &str,
    field: &str,
) -> DomainResult<&'s stage::Model> {
    snap.stages
        .iter()
        .find(|s| s.id == id && s.deleted_at.is_none())
        .ok_or_else(|| DomainError::bad_input(field, "is not a stage of the deal's group"))
}

fn stage_label(snap: &IntegrationSnapshot, stage: &stage::Model) -> String {
    match snap.origins.iter().find(|o| o.id == stage.origin_id) {
        Some(origin) => format!("{} › {}", origin.name, stage.name),
        None => stage.name.clone(),
    }
}

/// The reason's name; required when the deal's origin has reasons.
async fn lost_reason(
    db: &impl ConnectionTrait,
    deal: &deal::Model,
    id: Option<&str>,
) -> DomainResult<Option<String>> {
    let reasons = lost_reason::Entity::find()
        .filter(lost_reason::Column::OriginId.eq(deal.origin_id.as_str()))
        .all(db)
        .await?;
    match id {
        Some(id) => reasons
            .into_iter()
            .find(|r| r.id == id)
            .map(|r| Some(r.name))
            .ok_or_else(|| {
                DomainError::bad_input("lostReasonId", "is not a lost reason of the deal's origin")
            }),
        None if reasons.is_empty() => Ok(None),
        None => Err(DomainError::bad_input(
            "lostReasonId",
            "is required: choose one of the origin's lost reasons",
        )),
    }
}

/// The timeline line of a claim or an assignment.
async fn owner_line(
    db: &impl ConnectionTrait,
    caller: &Caller,
    intent: &Intent,
) -> DomainResult<Option<String>> {
    Ok(match intent {
        Intent::Claim => Some(format!(
            "Assumido por {}",
            user_name(db, &caller.user_id).await?
        )),
        Intent::Assign { user_id: Some(id) } => {
            Some(format!("Atribuído a {}", user_name(db, id).await?))
        }
        Intent::Assign { user_id: None } => Some("Responsável removido".to_owned()),
        _ => None,
    })
}

async fn user_name(db: &impl ConnectionTrait, id: &str) -> DomainResult<String> {
    Ok(user::Entity::find_by_id(id.to_owned())
        .one(db)
        .await?
        .map(|u| u.name)
        .unwrap_or_default())
}

/// Writes the owners that claims and assignments set, before the fold (which keeps them).
async fn set_owners(db: &impl ConnectionTrait, actions: &[PersonAction]) -> DomainResult<()> {
    // One statement per owner set, not per deal (a bulk assignment sets one).
    let mut by_owner: BTreeMap<Option<String>, Vec<&str>> = BTreeMap::new();
    for a in actions {
        if let Some(owner) = &a.owner {
            by_owner
                .entry(owner.clone())
                .or_default()
                .push(a.deal.id.as_str());
        }
    }
    for (owner, ids) in by_owner {
        for chunk in ids.chunks(MAX_BULK) {
            deal::Entity::update_many()
                .col_expr(deal::Column::OwnerId, Expr::value(owner.clone()))
                .filter(deal::Column::Id.is_in(chunk.iter().copied()))
                .exec(db)
                .await?;
        }
    }
    Ok(())
}

/// A deal whose state does not allow the action is bad input for it.
fn require(ok: bool, message: &str) -> DomainResult<()> {
    if ok {
        Ok(())
    } else {
        Err(DomainError::bad_input("dealId", message))
    }
}

/// A note: trimmed, at most [`MAX_NOTE`] characters; `None` when empty.
pub fn note_text(field: &str, text: Option<&str>) -> DomainResult<Option<String>> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > MAX_NOTE {
        return Err(DomainError::bad_input(
            field,
            format!("must be at most {MAX_NOTE} characters"),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(DomainError::bad_input(
            field,
            "must not hold control characters",
        ));
    }
    Ok(Some(text.to_owned()))
}

fn with_note(line: String, note: Option<String>) -> String {
    match note {
        Some(note) => format!("{line} — {note}"),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_bounded_and_clean() {
        assert_eq!(
            note_text("n", Some("  oi  ")).unwrap().as_deref(),
            Some("oi")
        );
        assert_eq!(note_text("n", Some("   ")).unwrap(), None);
        assert!(note_text("n", Some(&"a".repeat(MAX_NOTE + 1))).is_err());
        assert!(note_text("n", Some(&"a".repeat(MAX_NOTE))).is_ok());
        assert!(note_text("n", Some("bad\u{0}byte")).is_err());
        assert!(note_text("n", Some("linha 1\nlinha 2")).is_ok());
    }
}
