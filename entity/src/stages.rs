//! Stages and lost reasons of origins (see `docs/pipeline.md`, "Stages, hand-made origins,
//! lost reasons"): admins add, rename, reorder and delete stages; an origin keeps at
//! least one, and a stage holding deals goes only with a stage of the same origin to move
//! them to.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder, Set, TransactionSession, TransactionTrait,
    sea_query::{Expr, ExprTrait},
};

use crate::{
    Caller, DomainError, DomainResult, groups, new_id, now_ms,
    scope::find_scoped,
    tables::{deal, enums::DealStatus, lost_reason, origin, stage},
    values,
};

/// The stages a new origin gets.
pub const DEFAULT_STAGES: [&str; 3] = ["Novo", "Em contato", "Negociação"];
/// The lost reasons a new origin of a checkout event gets.
pub const DEFAULT_LOST_REASONS: [&str; 4] = [
    "Sem interesse",
    "Sem dinheiro no momento",
    "Comprou de concorrente",
    "Não responde",
];
/// Most stages (and lost reasons) of one origin.
pub const MAX_PER_ORIGIN: usize = 30;

/// Writes a new origin's default stages (and, when asked, lost reasons).
pub async fn create_defaults(
    db: &impl ConnectionTrait,
    origin: &origin::Model,
    with_reasons: bool,
) -> DomainResult<()> {
    let now = now_ms();
    let stages: Vec<stage::ActiveModel> = DEFAULT_STAGES
        .iter()
        .enumerate()
        .map(|(i, name)| stage::ActiveModel {
            id: Set(new_id()),
            account_id: Set(origin.account_id.clone()),
            origin_id: Set(origin.id.clone()),
            name: Set((*name).to_owned()),
            position: Set(i as i32),
            replaced_by: Set(None),
            deleted_at: Set(None),
            created_at: Set(now),
        })
        .collect();
    stage::Entity::insert_many(stages)
        .exec_without_returning(db)
        .await?;
    if with_reasons {
        let reasons: Vec<lost_reason::ActiveModel> = DEFAULT_LOST_REASONS
            .iter()
            .enumerate()
            .map(|(i, name)| lost_reason::ActiveModel {
                id: Set(new_id()),
                account_id: Set(origin.account_id.clone()),
                origin_id: Set(origin.id.clone()),
                name: Set((*name).to_owned()),
                position: Set(i as i32),
                created_at: Set(now),
            })
            .collect();
        lost_reason::Entity::insert_many(reasons)
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// The live stages of an origin, in order.
pub async fn of_origin(
    db: &impl ConnectionTrait,
    origin_id: &str,
) -> DomainResult<Vec<stage::Model>> {
    Ok(stage::Entity::find()
        .filter(stage::Column::OriginId.eq(origin_id))
        .filter(stage::Column::DeletedAt.is_null())
        .order_by_asc(stage::Column::Position)
        .order_by_asc(stage::Column::CreatedAt)
        .all(db)
        .await?)
}

/// A live stage the caller may see.
pub async fn get(
    db: &impl ConnectionTrait,
    caller: &Caller,
    id: &str,
) -> DomainResult<stage::Model> {
    let stage = find_scoped::<stage::Entity>(db, caller, id).await?;
    if stage.deleted_at.is_some() {
        return Err(DomainError::NotFound("stage"));
    }
    let origin = find_scoped::<origin::Entity>(db, caller, &stage.origin_id).await?;
    groups::get(db, caller, &origin.group_id)
        .await
        .map_err(|_| DomainError::NotFound("stage"))?;
    Ok(stage)
}

/// Adds a stage at `position` (default: last).
pub async fn create<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    origin_id: &str,
    name: Option<&str>,
    position: Option<i32>,
) -> DomainResult<stage::Model> {
    caller.require_admin()?;
    let origin = find_scoped::<origin::Entity>(db, caller, origin_id).await?;
    let name = values::name(
        "name",
        name.ok_or_else(|| DomainError::bad_input("name", "is required"))?,
    )?;
    let txn = crate::database::begin_immediate(db).await?;
    let mut stages = of_origin(&txn, &origin.id).await?;
    if stages.len() >= MAX_PER_ORIGIN {
        return Err(DomainError::bad_input(
            "originId",
            format!("an origin has at most {MAX_PER_ORIGIN} stages"),
        ));
    }
    unique_name(&stages, &name, None)?;
    let created = stage::ActiveModel {
        id: Set(new_id()),
        account_id: Set(caller.account_id.clone()),
        origin_id: Set(origin.id.clone()),
        name: Set(name),
        position: Set(stages.len() as i32),
        replaced_by: Set(None),
        deleted_at: Set(None),
        created_at: Set(now_ms()),
    }
    .insert(&txn)
    .await?;
    let at = clamp_position(position, stages.len())?;
    stages.insert(at, created.clone());
    renumber(&txn, &stages).await?;
    txn.commit().await?;
    Ok(stage::Model {
        position: at as i32,
        ..created
    })
}

/// Renames and/or moves a stage.
pub async fn update<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    id: &str,
    name: Option<&str>,
    position: Option<i32>,
) -> DomainResult<stage::Model> {
    caller.require_admin()?;
    let current = get(db, caller, id).await?;
    let txn = crate::database::begin_immediate(db).await?;
    let mut stages = of_origin(&txn, &current.origin_id).await?;
    let index = stages
        .iter()
        .position(|s| s.id == current.id)
        .ok_or(DomainError::NotFound("stage"))?;
    if let Some(name) = name {
        let name = values::name("name", name)?;
        unique_name(&stages, &name, Some(&current.id))?;
        let mut model = stages[index].clone().into_active_model();
        model.name = Set(name.clone());
        model.update(&txn).await?;
        stages[index].name = name;
    }
    if position.is_some() {
        let moved = stages.remove(index);
        let at = clamp_position(position, stages.len())?;
        stages.insert(at, moved);
    }
    renumber(&txn, &stages).await?;
    txn.commit().await?;
    let index = stages.iter().position(|s| s.id == current.id).unwrap_or(0);
    Ok(stage::Model {
        position: index as i32,
        ..stages.swap_remove(index)
    })
}

/// Deletes a stage; its deals (open or closed) move to `move_to`, a stage of the same
/// origin, required when it holds any. The stage is kept, marked deleted with its
/// successor, so the log's actions that named it still resolve.
pub async fn delete<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    id: &str,
    move_to: Option<&str>,
) -> DomainResult<bool> {
    caller.require_admin()?;
    let current = get(db, caller, id).await?;
    let txn = crate::database::begin_immediate(db).await?;
    let mut stages = of_origin(&txn, &current.origin_id).await?;
    if stages.len() <= 1 {
        return Err(DomainError::bad_input(
            "stageId",
            "an origin keeps at least one stage",
        ));
    }
    let holding = deal::Entity::find()
        .filter(deal::Column::StageId.eq(current.id.as_str()))
        .count(&txn)
        .await?;
    let target = successor(&stages, &current, move_to, holding)?;
    let now = now_ms();
    let mut model = current.clone().into_active_model();
    model.deleted_at = Set(Some(now));
    model.replaced_by = Set(Some(target.id.clone()));
    model.update(&txn).await?;
    deal::Entity::update_many()
        .col_expr(deal::Column::StageId, Expr::value(target.id.clone()))
        .col_expr(
            deal::Column::Version,
            Expr::col(deal::Column::Version).add(1),
        )
        .col_expr(deal::Column::UpdatedAt, Expr::value(now))
        .filter(deal::Column::StageId.eq(current.id.as_str()))
        .exec(&txn)
        .await?;
    stages.retain(|s| s.id != current.id);
    renumber(&txn, &stages).await?;
    txn.commit().await?;
    Ok(true)
}

/// The stage a deleted stage's deals go to: `move_to` (another stage of the origin),
/// required when it holds deals; else the origin's first other stage.
fn successor(
    stages: &[stage::Model],
    current: &stage::Model,
    move_to: Option<&str>,
    holding: u64,
) -> DomainResult<stage::Model> {
    Ok(match move_to {
        Some(target) => stages
            .iter()
            .find(|s| s.id == target && s.id != current.id)
            .ok_or_else(|| {
                DomainError::bad_input("moveDealsTo", "must be another stage of the same origin")
            })?
            .clone(),
        None if holding > 0 => {
            return Err(DomainError::bad_input(
                "moveDealsTo",
                format!(
                    "the stage holds {holding} deals: choose a stage of the origin to move them to"
                ),
            ));
        }
        None => stages
            .iter()
            .find(|s| s.id != current.id)
            .expect("an origin with two stages has another")
            .clone(),
    })
}

/// Deals in a stage the caller may see.
pub async fn deal_count(
    db: &impl ConnectionTrait,
    caller: &Caller,
    stage_id: &str,
    status: Option<DealStatus>,
) -> DomainResult<u64> {
    crate::deals::count_where(db, caller, deal::Column::StageId, stage_id, status).await
}

/// The lost reasons of an origin, in order.
pub async fn lost_reasons(
    db: &impl ConnectionTrait,
    origin_id: &str,
) -> DomainResult<Vec<lost_reason::Model>> {
    Ok(lost_reason::Entity::find()
        .filter(lost_reason::Column::OriginId.eq(origin_id))
        .order_by_asc(lost_reason::Column::Position)
        .order_by_asc(lost_reason::Column::CreatedAt)
        .all(db)
        .await?)
}

pub async fn create_lost_reason(
    db: &impl ConnectionTrait,
    caller: &Caller,
    origin_id: &str,
    name: &str,
) -> DomainResult<lost_reason::Model> {
    caller.require_admin()?;
    let origin = find_scoped::<origin::Entity>(db, caller, origin_id).await?;
    let name = values::name("name", name)?;
    let existing = lost_reasons(db, &origin.id).await?;
    if existing.len() >= MAX_PER_ORIGIN {
        return Err(DomainError::bad_input(
            "originId",
            format!("an origin has at most {MAX_PER_ORIGIN} lost reasons"),
        ));
    }
    if existing
        .iter()
        .any(|r| r.name.to_lowercase() == name.to_lowercase())
    {
        return Err(DomainError::bad_input(
            "name",
            "the origin already has this reason",
        ));
    }
    Ok(lost_reason::ActiveModel {
        id: Set(new_id()),
        account_id: Set(caller.account_id.clone()),
        origin_id: Set(origin.id),
        name: Set(name),
        position: Set(existing.last().map_or(0, |r| r.position + 1)),
        created_at: Set(now_ms()),
    }
    .insert(db)
    .await?)
}

/// Deletes a lost reason; deals lost with it keep its name.
pub async fn delete_lost_reason(
    db: &impl ConnectionTrait,
    caller: &Caller,
    id: &str,
) -> DomainResult<bool> {
    caller.require_admin()?;
    let reason = find_scoped::<lost_reason::Entity>(db, caller, id).await?;
    lost_reason::Entity::delete_by_id(reason.id)
        .exec(db)
        .await?;
    Ok(true)
}

fn unique_name(stages: &[stage::Model], name: &str, except: Option<&str>) -> DomainResult<()> {
    let taken = stages
        .iter()
        .any(|s| Some(s.id.as_str()) != except && s.name.to_lowercase() == name.to_lowercase());
    if taken {
        return Err(DomainError::bad_input(
            "name",
            "the origin already has a stage with this name",
        ));
    }
    Ok(())
}

/// A position among `len` other stages: 0..=len (default: last).
fn clamp_position(position: Option<i32>, len: usize) -> DomainResult<usize> {
    match position {
        None => Ok(len),
        Some(p) if p < 0 => Err(DomainError::bad_input("position", "must be 0 or more")),
        Some(p) => Ok((p as usize).min(len)),
    }
}

/// Writes positions 0.. in the given order, for the stages whose position changed.
async fn renumber(db: &impl ConnectionTrait, stages: &[stage::Model]) -> DomainResult<()> {
    for (i, s) in stages.iter().enumerate() {
        if s.position != i as i32 {
            stage::Entity::update_many()
                .col_expr(stage::Column::Position, Expr::value(i as i32))
                .filter(stage::Column::Id.eq(s.id.as_str()))
                .exec(db)
                .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_clamp_to_the_list() {
        assert_eq!(clamp_position(None, 3).unwrap(), 3);
        assert_eq!(clamp_position(Some(0), 3).unwrap(), 0);
        assert_eq!(clamp_position(Some(99), 3).unwrap(), 3);
        assert!(clamp_position(Some(-1), 3).is_err());
    }
}
