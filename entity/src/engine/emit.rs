//! From a group's plan to the outbox (see `docs/outbound.md`, "Messages from state
//! changes"): each written deal with what it was before and what caused the change.

use std::collections::{BTreeMap, HashMap};

use super::{
    key::DealKey,
    log::KeyLog,
    outbox::{Cause, DealChange},
    plan::DealPlan,
};
use crate::{
    platform::Platform,
    tables::{deal, enums::EventSource},
};

/// The deals a plan writes, with what each was before (`previous`, overriding the stored
/// one: an action that set the owner before the fold names the owner it replaced).
pub(super) fn changes<'s>(
    plan: &DealPlan,
    logs: &BTreeMap<DealKey, KeyLog<'s>>,
    previous: &HashMap<String, deal::Model>,
) -> Vec<DealChange<'s>> {
    let snaps: HashMap<String, &KeyLog<'s>> =
        logs.values().map(|l| (l.key.to_string(), l)).collect();
    let mut causes: HashMap<&str, (i64, Cause)> = HashMap::new();
    for log in logs.values() {
        for entry in log.entries.iter().filter(|e| e.stored.is_none()) {
            let Some(deal_id) = entry.row.deal_id.as_deref() else {
                continue;
            };
            let at = entry.row.occurred_at;
            if causes.get(deal_id).is_some_and(|(seen, _)| *seen > at) {
                continue;
            }
            let source = match entry.row.source {
                EventSource::Webhook => Platform::of(&log.snap.integration).as_str(),
                EventSource::Import => "IMPORT",
                EventSource::User => "USER",
            };
            let cause = Cause {
                source,
                event: Some(entry.row.event.clone()),
                user_id: entry.row.author_id.clone(),
                import_run_id: entry.row.import_run_id.clone(),
            };
            causes.insert(deal_id, (at, cause));
        }
    }
    plan.deals
        .iter()
        .filter(|d| d.changed)
        .filter_map(|d| {
            let log = snaps.get(&d.model.deal_key)?;
            Some(DealChange {
                snap: log.snap,
                previous: previous
                    .get(&d.model.id)
                    .cloned()
                    .or_else(|| d.previous.clone()),
                deal: d.model.clone(),
                cause: causes
                    .get(d.model.id.as_str())
                    .map(|(_, c)| c.clone())
                    .unwrap_or_default(),
            })
        })
        .collect()
}
