//! The persistence step around the fold, set-wise: a group of events (a batch of webhook
//! deliveries, or a page of an import) is applied with a fixed number of statements,
//! whatever its size (see `docs/deal-engine.md`, "Persistence"):
//!
//! 1. upsert the group's contacts in one statement (and write merged data back in one);
//! 2. read the logs and the deals of every touched key, one query each;
//! 3. in memory: drop duplicates, date imported statuses, append the new events, fold
//!    every touched key with the pure [`fold`](super::fold::fold), and diff the result
//!    against the stored deals;
//! 4. assign owners from one read of the assignees (and of the contacts' owners) and one
//!    atomic advance of the rotation cursors;
//! 5. write deals, references, events and tags with multi-row statements.
//!
//! Runs inside the caller's transaction. Its first statement locks the group's contacts
//! (on PostgreSQL, in e-mail order), so events of one contact are applied by one group at
//! a time; SQLite has one writer anyway.

pub use crate::tables::enums::EventSource;
use std::collections::{BTreeMap, HashMap, HashSet};

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};

use super::{
    fold::{Effect, FoldEvent, OriginRule, info_target},
    key::{DealKey, KeyProduct},
    store,
};
use crate::{
    DomainError, DomainResult, EventClass, HotmartEvent,
    hotmart::{details::DealDetails, payload::HotmartPayload},
    hotmart_event::DealStatus,
    new_id, now_ms,
    tables::{deal, deal_event, group, integration, origin, product},
    values,
};

/// What the engine needs to know about an integration, loaded once per group.
#[derive(Debug, Clone)]
pub struct IntegrationSnapshot {
    pub integration: integration::Model,
    pub group: group::Model,
    pub origins: Vec<origin::Model>,
    pub products: Vec<product::Model>,
    rules: HashMap<HotmartEvent, OriginRule>,
}

impl IntegrationSnapshot {
    pub async fn load(db: &impl ConnectionTrait, integration_id: &str) -> DomainResult<Self> {
        let integration = integration::Entity::find_by_id(integration_id.to_owned())
            .one(db)
            .await?
            .ok_or(DomainError::NotFound("integration"))?;
        let group = crate::integrations::group_of(db, &integration).await?;
        let origins = origin::Entity::find()
            .filter(origin::Column::GroupId.eq(group.id.as_str()))
            .all(db)
            .await?;
        let products = crate::products::of_integration(db, &integration.id).await?;
        let rules = origins
            .iter()
            .map(|o| {
                let rule = OriginRule {
                    origin_id: o.id.clone(),
                    entry_status: o.entry_status,
                };
                (o.event, rule)
            })
            .collect();
        Ok(Self {
            integration,
            group,
            origins,
            products,
            rules,
        })
    }

    pub fn origin_rule(&self, event: HotmartEvent) -> Option<OriginRule> {
        self.rules.get(&event).cloned()
    }

    pub fn product(&self, hotmart_product_id: Option<&str>) -> Option<&product::Model> {
        let id = hotmart_product_id?;
        self.products.iter().find(|p| p.hotmart_product_id == id)
    }

    fn account_id(&self) -> &str {
        &self.integration.account_id
    }
}

/// Where an event came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Webhook {
        delivery_id: String,
    },
    Import {
        run_id: String,
        label: Option<String>,
        /// A scheduled reconciliation run: what it applies, no webhook had delivered.
        reconciliation: bool,
    },
}

impl Source {
    pub fn kind(&self) -> EventSource {
        match self {
            Source::Webhook { .. } => EventSource::Webhook,
            Source::Import { .. } => EventSource::Import,
        }
    }
}

/// How an event's time is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dating {
    /// Hotmart dated it.
    Exact,
    /// A status the import observed at `occurred_at` with no date of its own: it sorts
    /// after every event already known of its sale, so it never goes back in time.
    Observed,
}

/// One event to apply.
#[derive(Debug, Clone)]
pub struct IncomingEvent<'a> {
    pub payload: &'a HotmartPayload,
    pub event: HotmartEvent,
    /// The log's deduplication id: the Hotmart event id, or `import:{tx}:{status}`.
    pub dedup_id: String,
    pub occurred_at: i64,
    pub dating: Dating,
    pub source: Source,
}

impl<'a> IncomingEvent<'a> {
    /// A webhook delivery as an event: deduplicated by Hotmart's event id, at its
    /// `creation_date` (when absent, when it was received). `None` for an unknown event.
    pub fn webhook(
        payload: &'a HotmartPayload,
        delivery_id: &str,
        received_at: i64,
    ) -> Option<Self> {
        Some(IncomingEvent {
            payload,
            event: payload.envelope.event?,
            dedup_id: payload.envelope.id.clone(),
            occurred_at: payload.occurred_at.unwrap_or(received_at),
            dating: Dating::Exact,
            source: Source::Webhook {
                delivery_id: delivery_id.to_owned(),
            },
        })
    }
}

/// What became of one event of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The key's log already had this event: no second effect.
    Duplicate,
    /// No usable e-mail: nobody to attach the event to.
    NoContact,
    Applied {
        contact_id: String,
    },
}

/// What a group did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupOutcome {
    /// Per input event, in order.
    pub applied: Vec<Applied>,
    pub deals_created: usize,
    pub deals_updated: usize,
}

/// The part of an event the fold needs, kept in `deal_events.data`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StoredEvent {
    pub refs: Vec<String>,
    /// In cents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_cents: Option<i64>,
    /// Written before money was kept in cents: read, never written.
    #[serde(default, rename = "price", skip_serializing)]
    pub legacy_price: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "DealDetails::is_empty")]
    pub details: DealDetails,
}

/// One event of a key's log, stored or new, with its decoded data.
pub(super) struct LogEntry {
    pub row: deal_event::Model,
    pub data: StoredEvent,
    pub event: HotmartEvent,
    /// Stored before this group (its `deal_id`/`effect` as stored).
    pub stored: Option<(Option<String>, Option<Effect>)>,
}

impl LogEntry {
    pub fn from_row(row: deal_event::Model) -> DomainResult<Self> {
        let corrupt = |what: &str| {
            DomainError::Internal(format!("deal event {} has {what}", row.id.as_str()))
        };
        let data: StoredEvent =
            serde_json::from_str(&row.data).map_err(|_| corrupt("unreadable data"))?;
        let event = HotmartEvent::parse(&row.event).ok_or_else(|| corrupt("an unknown event"))?;
        let stored = Some((row.deal_id.clone(), row.effect));
        Ok(Self {
            row,
            data,
            event,
            stored,
        })
    }

    fn fold_event(&self) -> FoldEvent {
        FoldEvent {
            dedup_id: self.row.dedup_id.clone(),
            event: self.event,
            occurred_at: self.row.occurred_at,
            refs: self.data.refs.clone(),
            price: self
                .data
                .price_cents
                .or_else(|| self.data.legacy_price.map(|p| (p * 100.0).round() as i64)),
            currency: self.data.currency.clone(),
        }
    }
}

/// A touched key: its log as it will be after the group, and what to do with it.
pub(super) struct KeyLog<'s> {
    pub key: DealKey,
    pub snap: &'s IntegrationSnapshot,
    pub product: Option<&'s product::Model>,
    pub entries: Vec<LogEntry>,
    /// A deal-moving event (or one with a product) was appended: fold the whole log.
    pub refold: bool,
    /// New info events without a product: they attach to a deal of the contact.
    pub attach: Vec<usize>,
    /// Stored events that go: imported copies of sale events a webhook now told.
    pub removed: Vec<String>,
}

/// Applies one event (a group of one).
pub async fn apply_event(
    db: &impl ConnectionTrait,
    snap: &IntegrationSnapshot,
    incoming: IncomingEvent<'_>,
) -> DomainResult<Applied> {
    let mut outcome = apply_group(db, &[(snap, incoming)]).await?;
    Ok(outcome.applied.remove(0))
}

/// Applies a group of events with a fixed number of statements (see the module docs).
pub async fn apply_group(
    db: &impl ConnectionTrait,
    items: &[(&IntegrationSnapshot, IncomingEvent<'_>)],
) -> DomainResult<GroupOutcome> {
    let now = now_ms();
    let emails: Vec<Option<String>> = items
        .iter()
        .map(|(_, e)| {
            let email = e.payload.contact.email.as_deref()?;
            values::email("email", email).ok()
        })
        .collect();
    let contacts = store::upsert_contacts(db, items, &emails, now).await?;
    let keys: Vec<Option<DealKey>> = items
        .iter()
        .zip(&contacts)
        .map(|((snap, e), contact)| Some(key_of(snap, e, contact.as_deref()?)))
        .collect();
    let mut logs = store::read_logs(db, &keys, items).await?;
    let applied = append(&mut logs, items, &keys)?;
    let mut plan = store::read_deals(db, &logs).await?;
    plan.fold_keys(&mut logs, now)?;
    super::owners::assign(db, &mut plan.deals).await?;
    store::write_deals(db, &plan).await?;
    store::attach_info(db, &mut logs).await?;
    store::write_events(db, &logs).await?;
    store::tag_contacts(db, items, &applied, now).await?;
    Ok(GroupOutcome {
        deals_created: plan.deals.iter().filter(|d| d.is_new).count(),
        deals_updated: plan.deals.iter().filter(|d| !d.is_new && d.changed).count(),
        applied,
    })
}

fn key_of(snap: &IntegrationSnapshot, e: &IncomingEvent<'_>, contact_id: &str) -> DealKey {
    let product = snap.product(e.payload.envelope.product_id.as_deref());
    DealKey::of_event(
        &snap.group.id,
        contact_id,
        product.map(|p| p.id.as_str()),
        e.event.class() == EventClass::Info,
        snap.integration.merge_products,
    )
}

/// Appends the group's events to their logs, in order: duplicates (the same event, or a
/// sale already known when the event is imported) are dropped; a live event replaces the
/// imported copy of the same sale event.
fn append(
    logs: &mut BTreeMap<DealKey, KeyLog<'_>>,
    items: &[(&IntegrationSnapshot, IncomingEvent<'_>)],
    keys: &[Option<DealKey>],
) -> DomainResult<Vec<Applied>> {
    let mut applied = Vec::with_capacity(items.len());
    for ((snap, e), key) in items.iter().zip(keys) {
        let Some(key) = key else {
            applied.push(Applied::NoContact);
            continue;
        };
        let log = logs.get_mut(key).expect("every key's log was read");
        let sale_key = e
            .payload
            .transaction
            .as_ref()
            .map(|tx| format!("{tx}:{}", e.event.as_str()));
        let imported = matches!(e.source, Source::Import { .. });
        let known = log.entries.iter().any(|x| {
            x.row.dedup_id == e.dedup_id
                || (imported && sale_key.is_some() && x.row.sale_key == sale_key)
        });
        if known {
            applied.push(Applied::Duplicate);
            continue;
        }
        if !imported && sale_key.is_some() {
            let copies =
                |x: &LogEntry| x.row.sale_key == sale_key && x.row.source == EventSource::Import;
            for copy in log.entries.iter().filter(|x| copies(x)) {
                if copy.stored.is_some() {
                    log.removed.push(copy.row.id.clone());
                }
            }
            log.entries.retain(|x| !copies(x));
        }
        let entry = new_entry(snap, e, key, sale_key, occurred_at(log, e));
        let attach_only = e.event.class() == EventClass::Info && log.product.is_none();
        if attach_only {
            log.attach.push(log.entries.len());
        } else {
            log.refold = true;
        }
        log.entries.push(entry);
        applied.push(Applied::Applied {
            contact_id: key.contact_id.clone(),
        });
    }
    Ok(applied)
}

/// The event's time in the log: an observed status sorts after the known events of its
/// sale.
fn occurred_at(log: &KeyLog<'_>, e: &IncomingEvent<'_>) -> i64 {
    if e.dating == Dating::Exact {
        return e.occurred_at;
    }
    let references = e.payload.references();
    log.entries
        .iter()
        .filter(|x| x.data.refs.iter().any(|r| references.contains(r)))
        .map(|x| x.row.occurred_at + 1)
        .fold(e.occurred_at, i64::max)
}

fn new_entry(
    snap: &IntegrationSnapshot,
    e: &IncomingEvent<'_>,
    key: &DealKey,
    sale_key: Option<String>,
    occurred_at: i64,
) -> LogEntry {
    let data = StoredEvent {
        refs: e.payload.references(),
        price_cents: e.payload.price_cents,
        legacy_price: None,
        currency: e.payload.currency.clone(),
        details: e.payload.details.clone(),
    };
    let (delivery_id, import_run_id) = match &e.source {
        Source::Webhook { delivery_id } => (Some(delivery_id.clone()), None),
        Source::Import { run_id, .. } => (None, Some(run_id.clone())),
    };
    let row = deal_event::Model {
        id: new_id(),
        account_id: snap.account_id().to_owned(),
        group_id: key.group_id.clone(),
        contact_id: key.contact_id.clone(),
        deal_key: key.to_string(),
        dedup_id: e.dedup_id.clone(),
        sale_key,
        event: e.event.as_str().to_owned(),
        source: e.source.kind(),
        occurred_at,
        data: serde_json::to_string(&data).expect("event data serialises"),
        delivery_id,
        import_run_id,
        deal_id: None,
        effect: None,
        description: Some(match &e.source {
            Source::Import {
                reconciliation: true,
                ..
            } => format!(
                "{} (recovered by reconciliation: no webhook delivered it)",
                describe(e.event, e.payload)
            ),
            _ => describe(e.event, e.payload),
        }),
        recorded_at: now_ms(),
    };
    LogEntry {
        row,
        data,
        event: e.event,
        stored: None,
    }
}

/// A human line for the timeline.
fn describe(event: HotmartEvent, payload: &HotmartPayload) -> String {
    let mut text = event
        .default_origin()
        .map(|(name, _)| name.to_owned())
        .unwrap_or_else(|| event.as_str().replace('_', " ").to_lowercase());
    if let Some(product) = &payload.product_name {
        text.push_str(&format!(" — {product}"));
    }
    if let (Some(cents), Some(currency)) = (payload.price_cents, &payload.currency) {
        text.push_str(&format!(" ({currency} {})", crate::money::format(cents)));
    }
    if let Some(problem) = &payload.price_problem {
        text.push_str(&format!(" — price not used: {problem}"));
    }
    if let Some(reason) = &payload.refusal_reason {
        text.push_str(&format!(": {reason}"));
    }
    if let Some(tx) = &payload.transaction {
        text.push_str(&format!(" [{tx}]"));
    }
    text
}

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
    pub refs: std::collections::BTreeSet<String>,
    pub owner: OwnerPlan,
    pub is_new: bool,
    pub changed: bool,
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
    /// Folds every key that needs it and records where each event landed.
    fn fold_keys(
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
        // Stable ids: each journey keeps the stored deal that already held one of its events.
        let mut taken: HashSet<String> = HashSet::new();
        let mut ids = Vec::with_capacity(outcome.journeys.len());
        for journey in &outcome.journeys {
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
            let planned = plan_deal(log, key, journey, pick, now);
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
fn plan_deal(
    log: &KeyLog<'_>,
    key: &str,
    journey: &super::fold::Journey,
    existing: Option<&deal::Model>,
    now: i64,
) -> PlannedDeal {
    let snap = log.snap;
    let open = journey.status == DealStatus::Open;
    let mut model = deal::Model {
        id: new_id(),
        account_id: snap.account_id().to_owned(),
        group_id: log.key.group_id.clone(),
        origin_id: journey.origin_id.clone(),
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
    };
    let owner = owner_plan(existing, journey, snap.integration.keep_deal_owner);
    let Some(existing) = existing else {
        return PlannedDeal {
            model,
            refs: journey.refs.clone(),
            owner,
            is_new: true,
            changed: true,
        };
    };
    model.id = existing.id.clone();
    model.product_id = existing.product_id.clone();
    model.created_at = existing.created_at;
    model.owner_id = existing.owner_id.clone();
    let changed = differs(existing, &model);
    if !changed {
        model.updated_at = existing.updated_at;
    }
    PlannedDeal {
        model,
        refs: journey.refs.clone(),
        owner,
        is_new: false,
        changed,
    }
}

/// Who owns a journey's deal (see `docs/deal-engine.md`, "Owners"): a new deal takes the
/// contact's owner (`keepDealOwner`) or the rotation's next; a deal that moved takes the
/// new origin's next unless owners are kept.
fn owner_plan(
    existing: Option<&deal::Model>,
    journey: &super::fold::Journey,
    keep: bool,
) -> OwnerPlan {
    let origin_id = journey.origin_id.clone();
    match existing {
        None if keep => OwnerPlan::OfContact { origin_id },
        None => OwnerPlan::Rotate {
            origin_id,
            fallback: None,
        },
        Some(d) if d.origin_id != journey.origin_id && !keep => OwnerPlan::Rotate {
            origin_id,
            fallback: d.owner_id.clone(),
        },
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
}

/// A deal's details: each part from the latest of its events (in fold order) that
/// carries it.
fn details_of(log: &KeyLog<'_>, journey: &super::fold::Journey) -> Option<String> {
    let mut details = DealDetails::default();
    for &i in &journey.events {
        details.overlay(&log.entries[i].data.details);
    }
    (!details.is_empty()).then(|| serde_json::to_string(&details).expect("details serialise"))
}

/// For an info event without a product: the deal it goes on, among the contact's deals
/// in the group (newest last, with their sale references).
pub(super) fn info_deal(
    deals: &[(String, std::collections::BTreeSet<String>)],
    refs: &[String],
) -> (Option<String>, Effect) {
    let held: Vec<&std::collections::BTreeSet<String>> = deals.iter().map(|(_, r)| r).collect();
    match info_target(&held, refs) {
        Some(i) => (Some(deals[i].0.clone()), Effect::TimelineOnly),
        None => (None, Effect::ContactTimeline),
    }
}

/// Reads deals of `contact_ids` in `group_ids`, newest activity last.
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
