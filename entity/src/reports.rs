//! The pipeline report (see `docs/pipeline.md`, "Finding and measuring"): what the deals
//! created in a window became, per origin and per seller, and the sales recovered.

use std::collections::BTreeMap;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, FromQueryResult, QueryFilter, QuerySelect, Select,
    Statement,
    sea_query::{Expr, ExprTrait},
};

use crate::{
    Caller, DomainError, DomainResult, groups, origins,
    scope::scoped,
    tables::{activity, deal, enums::DealStatus, origin},
};

/// Longest window one report covers.
pub const MAX_WINDOW_MS: i64 = 366 * 24 * 3_600_000;

#[derive(Debug, Clone)]
pub struct OriginFigures {
    pub origin: origin::Model,
    pub entered: u64,
    pub open: u64,
    pub won: u64,
    pub lost: u64,
    pub won_cents: i64,
}

#[derive(Debug, Clone, Default)]
pub struct SellerFigures {
    pub user_id: Option<String>,
    pub won: u64,
    pub lost: u64,
    pub won_cents: i64,
    pub activities_done: u64,
    pub median_first_action_minutes: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct PipelineFigures {
    pub currency: Option<String>,
    pub recovered_deals: u64,
    pub recovered_cents: i64,
    pub recovered_by_team: u64,
    pub origins: Vec<OriginFigures>,
    pub sellers: Vec<SellerFigures>,
}

/// One aggregate row of the report's query: the deals of one origin, owner, status and
/// currency, split by whether they are recovered sales (and recovered by the team).
#[derive(Debug, Clone, PartialEq, Eq, sea_orm::FromQueryResult)]
pub struct Tally {
    pub origin_id: String,
    pub owner_id: Option<String>,
    pub status: DealStatus,
    pub currency: Option<String>,
    /// 1 when these deals began in a pre-sale origin and were paid.
    pub recovered: i64,
    /// 1 when a person acted on these deals before their payment.
    pub by_team: i64,
    pub deals: i64,
    pub cents: i64,
}

/// The report of a group over deals created in `[from, to)`, as far as the caller sees.
///
/// The database adds the deals up (one aggregate query, whatever the group's size); only
/// the waits before a first action, which need a median, come back one per deal.
pub async fn pipeline(
    db: &impl ConnectionTrait,
    caller: &Caller,
    group_id: &str,
    from: i64,
    to: i64,
) -> DomainResult<PipelineFigures> {
    let group = groups::get(db, caller, group_id).await?;
    if to <= from || to - from > MAX_WINDOW_MS {
        return Err(DomainError::bad_input(
            "to",
            "must be after `from`, at most 366 days later",
        ));
    }
    let window = || window(caller, &group.id, from, to);
    let tallies = tallies(db, caller, &group.id, from, to).await?;
    let waits: Vec<(Option<String>, i64)> = window()
        .column(deal::Column::OwnerId)
        .column_as(
            Expr::col(deal::Column::FirstActionAt).sub(Expr::col(deal::Column::CreatedAt)),
            "wait",
        )
        .filter(deal::Column::FirstActionAt.is_not_null())
        .into_tuple()
        .all(db)
        .await?;
    let done: Vec<(Option<String>, i64)> = scoped::<activity::Entity>(caller)
        .select_only()
        .column(activity::Column::AssigneeId)
        .column_as(Expr::col(activity::Column::Id).count(), "done")
        .filter(activity::Column::GroupId.eq(group.id.as_str()))
        .filter(activity::Column::DoneAt.gte(from))
        .filter(activity::Column::DoneAt.lt(to))
        .group_by(activity::Column::AssigneeId)
        .into_tuple()
        .all(db)
        .await?;
    let origins = origins::of_group(db, &group.id).await?;
    Ok(figures(&tallies, waits, &done, origins))
}

/// The deals of a group created in `[from, to)` the caller sees, no columns selected.
fn window(caller: &Caller, group_id: &str, from: i64, to: i64) -> Select<deal::Entity> {
    scoped::<deal::Entity>(caller)
        .select_only()
        .filter(deal::Column::GroupId.eq(group_id))
        .filter(deal::Column::CreatedAt.gte(from))
        .filter(deal::Column::CreatedAt.lt(to))
        .filter(groups::deal_condition(caller))
}

const DAY_MS: i64 = 86_400_000;

/// The report's aggregate rows. On SQLite, for an admin, whole UTC days come from the
/// daily totals its triggers keep (`deal_rollups`) and only the window's partial first
/// and last days from the deals; otherwise one aggregate query over the deals.
async fn tallies(
    db: &impl ConnectionTrait,
    caller: &Caller,
    group_id: &str,
    from: i64,
    to: i64,
) -> DomainResult<Vec<Tally>> {
    let direct = |from, to| {
        tally(window(caller, group_id, from, to))
            .into_model::<Tally>()
            .all(db)
    };
    let first_day = from.div_euclid(DAY_MS) + i64::from(from.rem_euclid(DAY_MS) != 0);
    let end_day = to.div_euclid(DAY_MS);
    if db.get_database_backend() != DbBackend::Sqlite || !caller.is_admin() || first_day >= end_day
    {
        return Ok(direct(from, to).await?);
    }
    let mut all = Tally::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Sqlite,
        "SELECT origin_id, owner_id, status, currency, recovered, by_team, \
         CAST(sum(deals) AS BIGINT) AS deals, CAST(sum(cents) AS BIGINT) AS cents \
         FROM deal_rollups WHERE account_id = ? AND group_id = ? AND day >= ? AND day < ? \
         GROUP BY origin_id, owner_id, status, currency, recovered, by_team HAVING sum(deals) > 0",
        [
            caller.account_id.as_str().into(),
            group_id.into(),
            first_day.into(),
            end_day.into(),
        ],
    ))
    .all(db)
    .await?;
    if from < first_day * DAY_MS {
        all.extend(direct(from, first_day * DAY_MS).await?);
    }
    if end_day * DAY_MS < to {
        all.extend(direct(end_day * DAY_MS, to).await?);
    }
    Ok(all)
}

/// The aggregate columns of [`Tally`] over `window`.
fn tally(window: Select<deal::Entity>) -> Select<deal::Entity> {
    use deal::Column as C;
    // Plain SQL without parameters, so that PostgreSQL sees the grouped expressions and
    // the selected ones as the same (a comparison with a missing time is not true).
    let recovered = || {
        Expr::cust(
            "CAST(CASE WHEN began_pre_sale = TRUE AND paid = TRUE THEN 1 ELSE 0 END AS BIGINT)",
        )
    };
    let by_team =
        || Expr::cust("CAST(CASE WHEN first_action_at < paid_at THEN 1 ELSE 0 END AS BIGINT)");
    window
        .column(C::OriginId)
        .column(C::OwnerId)
        .column(C::Status)
        .column(C::Currency)
        .column_as(recovered(), "recovered")
        .column_as(by_team(), "by_team")
        .column_as(Expr::col(C::Id).count(), "deals")
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(value_cents), 0) AS BIGINT)"),
            "cents",
        )
        .group_by(C::OriginId)
        .group_by(C::OwnerId)
        .group_by(C::Status)
        .group_by(C::Currency)
        .group_by(recovered())
        .group_by(by_team())
}

/// The report's arithmetic, from the aggregate rows, each owner's waits before a first
/// action (ms) and each assignee's activities done.
pub fn figures(
    tallies: &[Tally],
    waits: Vec<(Option<String>, i64)>,
    done: &[(Option<String>, i64)],
    origins: Vec<origin::Model>,
) -> PipelineFigures {
    let won: Vec<&Tally> = tallies
        .iter()
        .filter(|t| t.status == DealStatus::Won)
        .collect();
    let recovered = || won.iter().filter(|t| t.recovered == 1);
    let mut currencies: BTreeMap<&str, i64> = BTreeMap::new();
    for t in &won {
        *currencies
            .entry(t.currency.as_deref().unwrap_or("BRL"))
            .or_default() += t.deals;
    }
    let currency = currencies
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(c, _)| c.to_owned());
    let origins = origins
        .into_iter()
        .map(|origin| {
            let of = || tallies.iter().filter(|t| t.origin_id == origin.id);
            let count =
                |s: DealStatus| of().filter(|t| t.status == s).map(|t| t.deals).sum::<i64>() as u64;
            OriginFigures {
                entered: of().map(|t| t.deals).sum::<i64>() as u64,
                open: count(DealStatus::Open),
                won: count(DealStatus::Won),
                lost: count(DealStatus::Lost),
                won_cents: of()
                    .filter(|t| t.status == DealStatus::Won)
                    .map(|t| t.cents)
                    .sum(),
                origin,
            }
        })
        .collect();
    PipelineFigures {
        currency,
        recovered_deals: recovered().map(|t| t.deals).sum::<i64>() as u64,
        recovered_cents: recovered().map(|t| t.cents).sum(),
        recovered_by_team: recovered()
            .filter(|t| t.by_team == 1)
            .map(|t| t.deals)
            .sum::<i64>() as u64,
        origins,
        sellers: sellers(tallies, waits, done),
    }
}

fn sellers(
    tallies: &[Tally],
    waits: Vec<(Option<String>, i64)>,
    done: &[(Option<String>, i64)],
) -> Vec<SellerFigures> {
    let mut by: BTreeMap<Option<String>, (SellerFigures, Vec<i64>)> = BTreeMap::new();
    for t in tallies {
        let (s, _) = by.entry(t.owner_id.clone()).or_default();
        match t.status {
            DealStatus::Won => {
                s.won += t.deals as u64;
                s.won_cents += t.cents;
            }
            DealStatus::Lost => s.lost += t.deals as u64,
            DealStatus::Open => {}
        }
    }
    for (owner, wait) in waits {
        by.entry(owner).or_default().1.push(wait);
    }
    for (assignee, n) in done {
        by.entry(assignee.clone()).or_default().0.activities_done += *n as u64;
    }
    by.into_iter()
        .map(|(user_id, (mut s, mut waits))| {
            s.user_id = user_id;
            s.median_first_action_minutes = median(&mut waits).map(|ms| ms / 60_000.0);
            s
        })
        .collect()
}

fn median(values: &mut [i64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let n = values.len();
    Some(if !n.is_multiple_of(2) {
        values[n / 2] as f64
    } else {
        (values[n / 2 - 1] as f64 + values[n / 2] as f64) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3, 1, 2]), Some(2.0));
        assert_eq!(median(&mut [4, 1, 2, 3]), Some(2.5));
    }
}
