//! The pipeline report (see `docs/pipeline.md`, "Finding and measuring"): what the deals
//! created in a window became, per origin and per seller, and the sales recovered.

use std::collections::BTreeMap;

use sea_orm::{ColumnTrait, ConnectionTrait, QueryFilter};

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

/// The report of a group over deals created in `[from, to)`, as far as the caller sees.
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
    let deals = scoped::<deal::Entity>(caller)
        .filter(deal::Column::GroupId.eq(group.id.as_str()))
        .filter(deal::Column::CreatedAt.gte(from))
        .filter(deal::Column::CreatedAt.lt(to))
        .filter(groups::deal_condition(caller))
        .all(db)
        .await?;
    let done = scoped::<activity::Entity>(caller)
        .filter(activity::Column::GroupId.eq(group.id.as_str()))
        .filter(activity::Column::DoneAt.gte(from))
        .filter(activity::Column::DoneAt.lt(to))
        .all(db)
        .await?;
    let origins = origins::of_group(db, &group.id).await?;
    Ok(figures(&deals, &done, origins))
}

/// The report's arithmetic, from the rows.
pub fn figures(
    deals: &[deal::Model],
    done: &[activity::Model],
    origins: Vec<origin::Model>,
) -> PipelineFigures {
    let won = |d: &&deal::Model| d.status == DealStatus::Won;
    let recovered: Vec<&deal::Model> = deals
        .iter()
        .filter(won)
        .filter(|d| d.began_pre_sale && d.paid)
        .collect();
    let by_team = recovered
        .iter()
        .filter(|d| matches!((d.first_action_at, d.paid_at), (Some(a), Some(p)) if a < p))
        .count() as u64;
    let mut currencies: BTreeMap<&str, usize> = BTreeMap::new();
    for d in deals.iter().filter(won) {
        *currencies
            .entry(d.currency.as_deref().unwrap_or("BRL"))
            .or_default() += 1;
    }
    let currency = currencies
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(c, _)| c.to_owned());
    let origins = origins
        .into_iter()
        .map(|origin| {
            let of: Vec<&deal::Model> = deals.iter().filter(|d| d.origin_id == origin.id).collect();
            let count = |s: DealStatus| of.iter().filter(|d| d.status == s).count() as u64;
            OriginFigures {
                entered: of.len() as u64,
                open: count(DealStatus::Open),
                won: count(DealStatus::Won),
                lost: count(DealStatus::Lost),
                won_cents: of
                    .iter()
                    .filter(|d| d.status == DealStatus::Won)
                    .filter_map(|d| d.value_cents)
                    .sum(),
                origin,
            }
        })
        .collect();
    PipelineFigures {
        currency,
        recovered_deals: recovered.len() as u64,
        recovered_cents: recovered.iter().filter_map(|d| d.value_cents).sum(),
        recovered_by_team: by_team,
        origins,
        sellers: sellers(deals, done),
    }
}

fn sellers(deals: &[deal::Model], done: &[activity::Model]) -> Vec<SellerFigures> {
    let mut by: BTreeMap<Option<String>, (SellerFigures, Vec<i64>)> = BTreeMap::new();
    for d in deals {
        let (s, waits) = by.entry(d.owner_id.clone()).or_default();
        match d.status {
            DealStatus::Won => {
                s.won += 1;
                s.won_cents += d.value_cents.unwrap_or(0);
            }
            DealStatus::Lost => s.lost += 1,
            DealStatus::Open => {}
        }
        if let Some(at) = d.first_action_at {
            waits.push(at - d.created_at);
        }
    }
    for a in done {
        by.entry(a.assignee_id.clone())
            .or_default()
            .0
            .activities_done += 1;
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
