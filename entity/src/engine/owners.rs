//! Owners of the deals a group writes (see `docs/deal-engine.md`, "Owners"): decided in
//! memory from one read of the origins' assignees (and, with `keepDealOwner`, one read of
//! the contacts' owners); the rotation cursors advance in one atomic statement.

use std::collections::{BTreeMap, HashMap};

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    sea_query::{CaseStatement, Expr, ExprTrait},
};

use super::plan::{OwnerPlan, PlannedDeal};
use crate::{
    DomainResult,
    tables::{deal, origin, origin_assignee},
};

/// An owner before the cursors moved: a known user, or the `k`-th pick of an origin's
/// rotation in this group.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    Known(Option<String>),
    Pick(String, i64),
}

/// Sets `owner_id` of every planned deal.
pub(super) async fn assign(
    db: &impl ConnectionTrait,
    deals: &mut [PlannedDeal],
) -> DomainResult<()> {
    let origins: Vec<&str> = deals
        .iter()
        .filter_map(|d| match &d.owner {
            OwnerPlan::Rotate { origin_id, .. } | OwnerPlan::OfContact { origin_id } => {
                Some(origin_id.as_str())
            }
            OwnerPlan::Fixed(_) => None,
        })
        .collect();
    if origins.is_empty() {
        for d in deals.iter_mut() {
            if let OwnerPlan::Fixed(owner) = &d.owner {
                d.model.owner_id = owner.clone();
            }
        }
        return Ok(());
    }
    let assignees = assignees_of(db, &origins).await?;
    let of_contact = contact_owners(db, deals).await?;
    let (owners, picks) = decide(deals, &assignees, of_contact);
    let starts = advance_cursors(db, &picks).await?;
    for (d, owner) in deals.iter_mut().zip(owners) {
        d.model.owner_id = match owner {
            Owner::Known(user) => user,
            // An origin deleted meanwhile has no cursor any more: no owner from it.
            Owner::Pick(origin_id, k) => starts.get(&origin_id).map(|start| {
                let users = &assignees[&origin_id];
                let at = (start + k).rem_euclid(users.len() as i64);
                users[at as usize].clone()
            }),
        };
    }
    Ok(())
}

/// Each deal's owner, in order, with the picks made of each origin's rotation.
fn decide(
    deals: &[PlannedDeal],
    assignees: &HashMap<String, Vec<String>>,
    mut of_contact: HashMap<(String, String), Owner>,
) -> (Vec<Owner>, BTreeMap<String, i64>) {
    let mut picks: BTreeMap<String, i64> = BTreeMap::new();
    let mut pick = |origin_id: &str, fallback: Option<String>| {
        if assignees.get(origin_id).is_none_or(|a| a.is_empty()) {
            return Owner::Known(fallback);
        }
        let next = picks.entry(origin_id.to_owned()).or_default();
        *next += 1;
        Owner::Pick(origin_id.to_owned(), *next - 1)
    };
    let mut owners = Vec::with_capacity(deals.len());
    for d in deals.iter() {
        owners.push(match &d.owner {
            OwnerPlan::Fixed(owner) => Owner::Known(owner.clone()),
            OwnerPlan::Rotate {
                origin_id,
                fallback,
            } => pick(origin_id, fallback.clone()),
            OwnerPlan::OfContact { origin_id } => {
                let contact = (d.model.group_id.clone(), d.model.contact_id.clone());
                match of_contact.get(&contact) {
                    Some(owner) => owner.clone(),
                    None => {
                        let owner = pick(origin_id, None);
                        if owner != Owner::Known(None) {
                            of_contact.insert(contact, owner.clone());
                        }
                        owner
                    }
                }
            }
        });
    }
    (owners, picks)
}

/// Each origin's assignees, in rotation order.
async fn assignees_of(
    db: &impl ConnectionTrait,
    origins: &[&str],
) -> DomainResult<HashMap<String, Vec<String>>> {
    let rows = origin_assignee::Entity::find()
        .filter(origin_assignee::Column::OriginId.is_in(origins.iter().copied()))
        .order_by_asc(origin_assignee::Column::OriginId)
        .order_by_asc(origin_assignee::Column::Position)
        .all(db)
        .await?;
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for row in rows {
        map.entry(row.origin_id).or_default().push(row.user_id);
    }
    Ok(map)
}

/// With `keepDealOwner`: the owner of each contact's most recently updated deal with an
/// owner, per group.
async fn contact_owners(
    db: &impl ConnectionTrait,
    deals: &[PlannedDeal],
) -> DomainResult<HashMap<(String, String), Owner>> {
    let contacts: Vec<&str> = deals
        .iter()
        .filter(|d| matches!(d.owner, OwnerPlan::OfContact { .. }))
        .map(|d| d.model.contact_id.as_str())
        .collect();
    let mut map = HashMap::new();
    if contacts.is_empty() {
        return Ok(map);
    }
    let owned = deal::Entity::find()
        .filter(deal::Column::ContactId.is_in(contacts))
        .filter(deal::Column::OwnerId.is_not_null())
        .order_by_asc(deal::Column::UpdatedAt)
        .all(db)
        .await?;
    for d in owned {
        map.insert((d.group_id, d.contact_id), Owner::Known(d.owner_id));
    }
    Ok(map)
}

/// Moves each origin's rotation cursor past the picks made, in one statement, and
/// returns where each one was: concurrent groups on PostgreSQL each get their own turns.
async fn advance_cursors(
    db: &impl ConnectionTrait,
    picks: &BTreeMap<String, i64>,
) -> DomainResult<HashMap<String, i64>> {
    if picks.is_empty() {
        return Ok(HashMap::new());
    }
    let mut case = CaseStatement::new();
    for (origin_id, n) in picks {
        case = case.case(origin::Column::Id.eq(origin_id.as_str()), Expr::val(*n));
    }
    let moved = origin::Entity::update_many()
        .col_expr(
            origin::Column::RotationCursor,
            Expr::col(origin::Column::RotationCursor).add(case.finally(Expr::val(0i64))),
        )
        .filter(origin::Column::Id.is_in(picks.keys().map(String::as_str)))
        .exec_with_returning(db)
        .await?;
    Ok(moved
        .into_iter()
        .map(|o| {
            let n = picks[&o.id];
            (o.id, o.rotation_cursor - n)
        })
        .collect())
}
