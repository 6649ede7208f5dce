//! A key's log: the events of one deal key, stored and new, as the engine reads, extends
//! and refolds it (see `docs/deal-engine.md`, "The log and the fold").

pub use crate::tables::enums::EventSource;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    key::DealKey,
    model::{Action, Effect, FoldEvent, Kind},
    snapshot::IntegrationSnapshot,
};
use crate::{
    DomainError, DomainResult, EventClass, new_id, now_ms,
    sale::{CheckoutEvent, SaleKind, details::DealDetails, event::SaleEvent},
    tables::{deal_event, product},
};

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

pub use crate::sale::Dating;

/// One event to apply.
#[derive(Debug, Clone)]
pub struct IncomingEvent<'a> {
    pub sale: &'a SaleEvent,
    /// The log's deduplication id: the platform's event id (or the delivery's key), or
    /// `import:{sale}:{status}`.
    pub dedup_id: String,
    pub occurred_at: i64,
    pub dating: Dating,
    pub source: Source,
}

impl<'a> IncomingEvent<'a> {
    /// A webhook delivery's event: deduplicated by `dedup_id` (the delivery's key), at
    /// the event's time (when absent, when it was received).
    pub fn webhook(
        sale: &'a SaleEvent,
        dedup_id: String,
        delivery_id: &str,
        received_at: i64,
    ) -> Self {
        IncomingEvent {
            sale,
            dedup_id,
            occurred_at: sale.occurred_at.unwrap_or(received_at),
            dating: Dating::Exact,
            source: Source::Webhook {
                delivery_id: delivery_id.to_owned(),
            },
        }
    }
}

/// What became of one event of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The key's log already had this event: no second effect.
    Duplicate,
    /// No usable e-mail: nobody to attach the event to.
    NoContact,
    /// The buyer was erased after this sale (or the stored delivery was redacted by the
    /// erasure): skipped, never re-creating them.
    Erased,
    Applied {
        contact_id: String,
    },
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
    /// A person's action: the stage (and its origin) it moved or reopened the deal to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_id: Option<String>,
    /// A person's action: why the deal was lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A person's action: the owner change was a member claiming an unowned deal.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub claim: bool,
}

impl StoredEvent {
    /// The data of a person's action.
    pub fn of_action(action: &Action) -> Self {
        let mut data = StoredEvent {
            refs: Vec::new(),
            price_cents: None,
            legacy_price: None,
            currency: None,
            details: DealDetails::default(),
            origin_id: None,
            stage_id: None,
            reason: None,
            claim: false,
        };
        match action {
            Action::Move {
                origin_id,
                stage_id,
            }
            | Action::Reopen {
                origin_id,
                stage_id,
            } => {
                data.origin_id = Some(origin_id.clone());
                data.stage_id = Some(stage_id.clone());
            }
            Action::Lose { reason } => data.reason = reason.clone(),
            Action::OwnerChanged { claim } => data.claim = *claim,
            Action::Win | Action::Note | Action::ActivityDone => {}
        }
        data
    }

    /// What a stored row is, from its kind and data; `None` when unreadable.
    fn kind(&self, stored: &str) -> Option<Kind> {
        let moved = || Some((self.origin_id.clone()?, self.stage_id.clone()?));
        let action = match stored {
            "INFO" => return Some(Kind::Sale(SaleKind::Info)),
            "STAGE_MOVED" => {
                let (origin_id, stage_id) = moved()?;
                Action::Move {
                    origin_id,
                    stage_id,
                }
            }
            "REOPENED" => {
                let (origin_id, stage_id) = moved()?;
                Action::Reopen {
                    origin_id,
                    stage_id,
                }
            }
            "WON" => Action::Win,
            "LOST" => Action::Lose {
                reason: self.reason.clone(),
            },
            "NOTE" => Action::Note,
            "OWNER_CHANGED" => Action::OwnerChanged { claim: self.claim },
            "ACTIVITY_DONE" => Action::ActivityDone,
            other => return CheckoutEvent::parse(other).map(|e| Kind::Sale(SaleKind::Checkout(e))),
        };
        Some(Kind::Action(action))
    }
}

/// One event of a key's log, stored or new, with its decoded data.
pub(super) struct LogEntry {
    pub row: deal_event::Model,
    pub data: StoredEvent,
    pub kind: Kind,
    /// Stored before this group (its `deal_id`/`effect` as stored).
    pub stored: Option<(Option<String>, Option<Effect>)>,
    /// The deal it was on (stored), or the deal it names (a new action).
    pub hint: Option<String>,
}

impl LogEntry {
    pub fn from_row(row: deal_event::Model) -> DomainResult<Self> {
        let corrupt = |what: &str| {
            DomainError::Internal(format!("deal event {} has {what}", row.id.as_str()))
        };
        let data: StoredEvent =
            serde_json::from_str(&row.data).map_err(|_| corrupt("unreadable data"))?;
        let kind = data
            .kind(&row.kind)
            .ok_or_else(|| corrupt("an unknown kind"))?;
        let stored = Some((row.deal_id.clone(), row.effect));
        Ok(Self {
            hint: row.deal_id.clone(),
            row,
            data,
            kind,
            stored,
        })
    }

    pub fn fold_event(&self) -> FoldEvent {
        FoldEvent {
            dedup_id: self.row.dedup_id.clone(),
            kind: self.kind.clone(),
            occurred_at: self.row.occurred_at,
            refs: self.data.refs.clone(),
            price: self
                .data
                .price_cents
                .or_else(|| self.data.legacy_price.map(|p| (p * 100.0).round() as i64)),
            currency: self.data.currency.clone(),
            deal_hint: self.hint.clone(),
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

/// Appends the group's events to their logs, in order: duplicates (the same event, or a
/// sale already known when the event is imported) are dropped; a live event replaces the
/// imported copy of the same sale event.
pub(super) fn append(
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
        let sale_key = e.sale.sale_key();
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
        let attach_only = e.sale.kind.class() == EventClass::Info && log.product.is_none();
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
    let references = e.sale.references();
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
        refs: e.sale.references(),
        price_cents: e.sale.price_cents,
        legacy_price: None,
        currency: e.sale.currency.clone(),
        details: DealDetails {
            product_name: e.sale.product_name.clone(),
            ..e.sale.details.clone()
        },
        origin_id: None,
        stage_id: None,
        reason: None,
        claim: false,
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
        event: e.sale.event_name.clone(),
        kind: e.sale.kind.as_str().to_owned(),
        source: e.source.kind(),
        occurred_at,
        data: serde_json::to_string(&data).expect("event data serialises"),
        delivery_id,
        import_run_id,
        deal_id: None,
        effect: None,
        description: Some(line_of(e)),
        author_id: None,
        recorded_at: now_ms(),
    };
    LogEntry {
        row,
        data,
        kind: Kind::Sale(e.sale.kind),
        stored: None,
        hint: None,
    }
}

/// The timeline's line of an incoming event.
fn line_of(e: &IncomingEvent<'_>) -> String {
    match &e.source {
        Source::Import {
            reconciliation: true,
            ..
        } => format!(
            "{} (recovered by reconciliation: no webhook delivered it)",
            describe(e.sale)
        ),
        _ => describe(e.sale),
    }
}

/// A human line for the timeline.
fn describe(payload: &SaleEvent) -> String {
    let mut text = payload
        .checkout_event()
        .map(|event| event.default_origin().0.to_owned())
        .unwrap_or_else(|| payload.event_name.replace(['_', '.'], " ").to_lowercase());
    if let Some(product) = &payload.product_name {
        text.push_str(&format!(" — {product}"));
    }
    if let (Some(cents), Some(currency)) = (payload.price_cents, &payload.currency) {
        text.push_str(&format!(" ({currency} {})", crate::money::format(cents)));
    }
    if let Some(problem) = &payload.price_problem {
        text.push_str(&format!(" — price not used: {problem}"));
    }
    if let Some(reason) = payload.refusal_reason() {
        text.push_str(&format!(": {reason}"));
    }
    if let Some(tx) = &payload.sale_id {
        text.push_str(&format!(" [{tx}]"));
    }
    text
}
