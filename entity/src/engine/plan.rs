//! From a key's fold to the deals to write: stable ids, owner plans and what changed (see
//! `docs/deal-engine.md`, "Persistence").

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};

use super::{
    fold::info_target,
    key::{DealKey, KeyProduct},
    log::{KeyLog, LogEntry},
    model::{Effect, FoldEvent, Journey},
};
use crate::{
    DomainResult,
    hotmart::details::DealDetails,
    new_id,
    tables::{deal, enums::DealStatus},
};

/// Who a deal's owner will be, decided before the owners are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum OwnerPlan {
    /// Stays as it is.
    Fixed(Option<String>),
    /// The next assignee of the origin's rotation; `fallback` when it has none.
    Rotate {
        origin_id: String,
        fallback: Option<String>,
    },
    /// `keepDealOwner`: the owner of the contact's deals in the group, else the rotation.
    OfContact { origin_id: String },
}

/// A deal to write (new, or changed, or unchanged) and its owner plan.
pub(super) struct PlannedDeal {
    pub model: deal::Model,
    /// Its sale references.
    pub refs: BTreeSet<String>,
    pub owner: OwnerPlan,
    pub is_new: bool,
    pub changed: bool,
    /// The deal as stored before the fold (`None` for a new one).
    pub previous: Option<deal::Model>,
}

/// The deals of the touched keys: as stored, and as they will be.
pub(super) struct DealPlan {
    /// Stored deals of every touched key, oldest first.
    pub stored: HashMap<String, Vec<deal::Model>>,
    /// Deals of the refolded keys, closed before open (so that the one open deal of a
    /// key is written after the one it replaces was closed).
    pub deals: Vec<PlannedDeal>,
    /// Stored deals no journey kept (two journeys merged by a late event).
    pub orphans: Vec<String>,
    /// Keys whose deals and references are rewritten.
    pub refolded: Vec<String>,
}

impl DealPlan {
    /// The deals written (new or changed), as written.
    pub(super) fn changed_deals(&self) -> Vec<deal::Model> {
        self.deals
            .iter()
            .filter(|d| d.changed)
            .map(|d| d.model.clone())
            .collect()
    }

    /// Folds every key that needs it and records where each event landed.
    pub(super) fn fold_keys(
        &mut self,
        logs: &mut BTreeMap<DealKey, KeyLog<'_>>,
        now: i64,
    ) -> DomainResult<()> {
        for log in logs.values_mut().filter(|l| l.refold) {
            let key = log.key.to_string();
            let stored = self.stored.remove(&key).unwrap_or_default();
            self.fold_key(log, &key, stored, now);
            self.refolded.push(key);
        }
        let mut closed_first: Vec<PlannedDeal> = std::mem::take(&mut self.deals);
        closed_first.sort_by_key(|d| d.model.status == DealStatus::Open);
        self.deals = closed_first;
        Ok(())
    }

    fn fold_key(&mut self, log: &mut KeyLog<'_>, key: &str, stored: Vec<deal::Model>, now: i64) {
        let events: Vec<FoldEvent> = log.entries.iter().map(LogEntry::fold_event).collect();
        let outcome = super::fold::fold(&events, |e| log.snap.origin_rule(e));
        // A journey any new event landed on changed, whatever the fold says of its columns.
        let mut touched: HashSet<usize> = HashSet::new();
        for (entry, (journey, _)) in log.entries.iter().zip(&outcome.events) {
            if let (None, Some(j)) = (&entry.stored, journey) {
                touched.insert(*j);
            }
        }
        // Stable ids: each journey keeps the stored deal that already held one of its events.
        let mut taken: HashSet<String> = HashSet::new();
        let mut ids = Vec::with_capacity(outcome.journeys.len());
        for (j, journey) in outcome.journeys.iter().enumerate() {
            let holders: HashSet<&str> = journey
                .events
                .iter()
                .filter_map(|&i| log.entries[i].stored.as_ref()?.0.as_deref())
                .collect();
            let pick = stored
                .iter()
                .find(|d| holders.contains(d.id.as_str()) && !taken.contains(&d.id));
            if let Some(d) = pick {
                taken.insert(d.id.clone());
            }
            let mut planned = plan_deal(log, key, journey, pick, now);
            if touched.contains(&j) && !planned.changed {
                planned.changed = true;
                planned.model.updated_at = now;
                planned.model.version += 1;
            }
            ids.push(planned.model.id.clone());
            self.deals.push(planned);
        }
        self.orphans.extend(
            stored
                .iter()
                .filter(|d| !taken.contains(&d.id))
                .map(|d| d.id.clone()),
        );
        for (entry, (journey, effect)) in log.entries.iter_mut().zip(&outcome.events) {
            entry.row.deal_id = journey.map(|j| ids[j].clone());
            entry.row.effect = Some(*effect);
        }
    }
}

/// The deal a journey becomes: the stored one updated, or a new one.
pub(super) fn plan_deal(
    log: &KeyLog<'_>,
    key: &str,
    journey: &Journey,
    existing: Option<&deal::Model>,
    now: i64,
) -> PlannedDeal {
    let snap = log.snap;
    let mut model = new_model(log, key, journey, now);
    let owner = owner_plan(existing, journey, snap.integration.keep_deal_owner);
    let Some(existing) = existing else {
        return PlannedDeal {
            model,
            refs: journey.refs.clone(),
            owner,
            is_new: true,
            changed: true,
            previous: None,
        };
    };
    if let Some(stage) = stored_stage(log, journey, existing) {
        model.stage_id = stage;
    }
    model.id = existing.id.clone();
    model.product_id = existing.product_id.clone();
    model.created_at = existing.created_at;
    model.owner_id = existing.owner_id.clone();
    let changed = differs(existing, &model);
    model.version = existing.version + i64::from(changed);
    if !changed {
        model.updated_at = existing.updated_at;
    }
    PlannedDeal {
        model,
        refs: journey.refs.clone(),
        owner,
        is_new: false,
        changed,
        previous: Some(existing.clone()),
    }
}

/// A journey's deal as new.
fn new_model(log: &KeyLog<'_>, key: &str, journey: &Journey, now: i64) -> deal::Model {
    let snap = log.snap;
    let open = journey.status == DealStatus::Open;
    deal::Model {
        id: new_id(),
        account_id: snap.account_id().to_owned(),
        group_id: log.key.group_id.clone(),
        origin_id: journey.origin_id.clone(),
        stage_id: snap.live_stage(&journey.origin_id, &journey.stage_id),
        contact_id: log.key.contact_id.clone(),
        product_id: match &log.key.product {
            KeyProduct::Product(id) => Some(id.clone()),
            _ => log.product.map(|p| p.id.clone()),
        },
        deal_key: key.to_owned(),
        open_key: open.then(|| key.to_owned()),
        status: journey.status,
        paid: journey.paid,
        owner_id: None,
        value_cents: journey.value,
        currency: journey.currency.clone(),
        lost_reason: journey.lost_reason.clone(),
        details: details_of(log, journey),
        created_at: journey.created_at,
        closed_at: journey.closed_at,
        last_event_at: journey.last_event_at,
        updated_at: now,
        version: 1,
        began_pre_sale: journey.began_pre_sale,
        paid_at: journey.paid_at,
        first_action_at: journey.first_action_at,
    }
}

/// A stage set before this fold's new events stands as stored: an admin may have moved
/// the deal's stage away since (deleting the stage).
fn stored_stage(log: &KeyLog<'_>, journey: &Journey, existing: &deal::Model) -> Option<String> {
    let first_new = log
        .entries
        .iter()
        .filter(|e| e.stored.is_none())
        .map(|e| e.row.occurred_at)
        .min();
    let kept = existing.origin_id == journey.origin_id
        && first_new.is_none_or(|at| journey.stage_set_at < at);
    kept.then(|| log.snap.live_stage(&existing.origin_id, &existing.stage_id))
}

/// Who owns a journey's deal (see `docs/deal-engine.md`, "Owners"): a new deal takes the
/// contact's owner (`keepDealOwner`) or the rotation's next; a deal a checkout event moved
/// to another origin takes the new origin's next unless owners are kept (a person moving
/// it keeps its owner).
fn owner_plan(existing: Option<&deal::Model>, journey: &Journey, keep: bool) -> OwnerPlan {
    let origin_id = journey.origin_id.clone();
    match existing {
        None if keep => OwnerPlan::OfContact { origin_id },
        None => OwnerPlan::Rotate {
            origin_id,
            fallback: None,
        },
        Some(d) if d.origin_id != journey.origin_id && journey.auto_moved && !keep => {
            OwnerPlan::Rotate {
                origin_id,
                fallback: d.owner_id.clone(),
            }
        }
        Some(d) => OwnerPlan::Fixed(d.owner_id.clone()),
    }
}

/// Whether a fold changed what is stored of a deal (its owner is decided apart).
fn differs(stored: &deal::Model, folded: &deal::Model) -> bool {
    stored.origin_id != folded.origin_id
        || stored.status != folded.status
        || stored.value_cents != folded.value_cents
        || stored.currency != folded.currency
        || stored.closed_at != folded.closed_at
        || stored.last_event_at != folded.last_event_at
        || stored.paid != folded.paid
        || stored.lost_reason != folded.lost_reason
        || stored.details != folded.details
        || stored.open_key != folded.open_key
        || stored.stage_id != folded.stage_id
        || stored.began_pre_sale != folded.began_pre_sale
        || stored.paid_at != folded.paid_at
        || stored.first_action_at != folded.first_action_at
}

/// A deal's details: each part from the latest of its events (in fold order) that
/// carries it.
fn details_of(log: &KeyLog<'_>, journey: &Journey) -> Option<String> {
    let mut details = DealDetails::default();
    for &i in &journey.detail_events {
        details.overlay(&log.entries[i].data.details);
    }
    (!details.is_empty()).then(|| serde_json::to_string(&details).expect("details serialise"))
}

/// For an info event without a product: the deal it goes on, among the contact's deals
/// in the group (newest last, with their sale references).
pub(super) fn info_deal(
    deals: &[(String, BTreeSet<String>)],
    refs: &[String],
) -> (Option<String>, Effect) {
    let held: Vec<&BTreeSet<String>> = deals.iter().map(|(_, r)| r).collect();
    match info_target(&held, refs) {
        Some(i) => (Some(deals[i].0.clone()), Effect::TimelineOnly),
        None => (None, Effect::ContactTimeline),
    }
}

/// Reads the deals of `contact_ids`, in every group, newest activity last.
pub(super) async fn deals_of_contacts(
    db: &impl ConnectionTrait,
    contact_ids: &[&str],
) -> DomainResult<Vec<deal::Model>> {
    Ok(deal::Entity::find()
        .filter(deal::Column::ContactId.is_in(contact_ids.iter().copied()))
        .order_by_asc(deal::Column::LastEventAt)
        .order_by_asc(deal::Column::Id)
        .all(db)
        .await?)
}
