//! The persistence step around the fold, set-wise: a group of events (a batch of webhook
//! deliveries, a page of an import, or people's actions) is applied with a fixed number of
//! statements, whatever its size (see `docs/deal-engine.md`, "Persistence"):
//!
//! 1. upsert the group's contacts in one statement (and write merged data back in one);
//! 2. read the logs and the deals of every touched key, one query each;
//! 3. in memory: drop duplicates, date imported statuses, append the new events, fold
//!    every touched key with the pure [`fold`](super::fold::fold), and diff the result
//!    against the stored deals;
//! 4. assign owners from one read of the assignees (and of the contacts' owners) and one
//!    atomic advance of the rotation cursors;
//! 5. write deals, references, events and tags with multi-row statements;
//! 6. write the outbox: a message per changed deal and new contact for each endpoint that
//!    wants it (one read when the accounts have no endpoint; see `docs/outbound.md`).
//!
//! Runs inside the caller's transaction. Its first statement locks the group's contacts
//! (on PostgreSQL, in e-mail order), so events of one contact are applied by one group at
//! a time; SQLite has one writer anyway. People's actions lock their deals' contacts the
//! same way.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

pub use super::log::{Applied, Dating, EventSource, IncomingEvent, Source};
pub use super::snapshot::IntegrationSnapshot;
use super::{
    key::DealKey,
    log::{LogEntry, StoredEvent, append},
    model::{Action, Kind},
    outbox::NewContact,
    store,
};
use crate::{
    DomainError, DomainResult, EventClass, new_id, now_ms, privacy,
    secrets::SecretKeys,
    tables::{deal, deal_event, enums::EventSource as Src},
    values,
};

/// What a group did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupOutcome {
    /// Per input event, in order.
    pub applied: Vec<Applied>,
    pub deals_created: usize,
    pub deals_updated: usize,
    /// The deals written (new or changed), as written.
    pub changed: Vec<deal::Model>,
}

/// Applies one event (a group of one).
pub async fn apply_event(
    db: &impl ConnectionTrait,
    keys: &SecretKeys,
    snap: &IntegrationSnapshot,
    incoming: IncomingEvent<'_>,
) -> DomainResult<Applied> {
    let mut outcome = apply_group(db, keys, &[(snap, incoming)]).await?;
    Ok(outcome.applied.remove(0))
}

/// Applies a group of events with a fixed number of statements (see the module docs).
pub async fn apply_group(
    db: &impl ConnectionTrait,
    keys: &SecretKeys,
    items: &[(&IntegrationSnapshot, IncomingEvent<'_>)],
) -> DomainResult<GroupOutcome> {
    let now = now_ms();
    let mut emails: Vec<Option<String>> = items
        .iter()
        .map(|(_, e)| {
            let email = e.sale.buyer.email.as_deref()?;
            values::email("email", email).ok()
        })
        .collect();
    let erased = skip_erased(db, keys, items, &mut emails).await?;
    let (contacts, created) = store::upsert_contacts(db, items, &emails, now).await?;
    let keys: Vec<Option<DealKey>> = items
        .iter()
        .zip(&contacts)
        .map(|((snap, e), contact)| Some(key_of(snap, e, contact.as_deref()?)))
        .collect();
    let heads = keys.iter().zip(items).filter_map(|(key, (snap, e))| {
        let product = snap.product(e.sale.product_id.as_deref());
        Some((key.clone()?, *snap, product))
    });
    let mut logs = store::read_logs(db, heads).await?;
    let mut applied = append(&mut logs, items, &keys)?;
    for (applied, erased) in applied.iter_mut().zip(erased) {
        if erased {
            *applied = Applied::Erased;
        }
    }
    let mut plan = store::read_deals(db, &logs).await?;
    plan.fold_keys(&mut logs, now)?;
    super::owners::assign(db, &mut plan.deals).await?;
    store::write_deals(db, &plan).await?;
    store::attach_info(db, &mut logs).await?;
    store::write_events(db, &logs).await?;
    store::tag_contacts(db, items, &applied, now).await?;
    let new_contacts = new_contacts(items, &contacts, &created);
    let changes = super::emit::changes(&plan, &logs, &HashMap::new());
    super::outbox::write(db, &changes, &new_contacts, now).await?;
    Ok(GroupOutcome {
        deals_created: plan.deals.iter().filter(|d| d.is_new).count(),
        deals_updated: plan.deals.iter().filter(|d| !d.is_new && d.changed).count(),
        changed: plan.changed_deals(),
        applied,
    })
}

/// Events of erased buyers: a sale from before the buyer's erasure, or a stored delivery
/// the erasure redacted. Their e-mails are taken away (so no contact is made) and each
/// is marked; one query for the group.
async fn skip_erased(
    db: &impl ConnectionTrait,
    keys: &SecretKeys,
    items: &[(&IntegrationSnapshot, IncomingEvent<'_>)],
    emails: &mut [Option<String>],
) -> DomainResult<Vec<bool>> {
    let wanted: Vec<(&str, &str)> = items
        .iter()
        .zip(emails.iter())
        .filter_map(|((snap, _), email)| Some((snap.account_id(), email.as_deref()?)))
        .collect();
    let erasures = privacy::erasures(db, keys, &wanted).await?;
    let mut erased = Vec::with_capacity(items.len());
    for ((snap, e), email) in items.iter().zip(emails.iter_mut()) {
        let redacted = e.sale.buyer.email.as_deref() == Some(privacy::scrub::REDACTED);
        let before_erasure = email.as_ref().is_some_and(|address| {
            let key = (snap.account_id().to_owned(), address.clone());
            erasures.get(&key).is_some_and(|at| e.occurred_at <= *at)
        });
        if redacted || before_erasure {
            *email = None;
        }
        erased.push(redacted || before_erasure);
    }
    Ok(erased)
}

/// The contacts the group created, each with the snapshot of its first event.
fn new_contacts<'s>(
    items: &[(&'s IntegrationSnapshot, IncomingEvent<'_>)],
    contacts: &[Option<String>],
    created: &[String],
) -> Vec<NewContact<'s>> {
    let mut out: Vec<NewContact<'s>> = Vec::new();
    for ((snap, _), contact) in items.iter().zip(contacts) {
        let Some(id) = contact else { continue };
        if created.contains(id) && !out.iter().any(|c| &c.contact_id == id) {
            out.push(NewContact {
                snap,
                contact_id: id.clone(),
            });
        }
    }
    out
}

fn key_of(snap: &IntegrationSnapshot, e: &IncomingEvent<'_>, contact_id: &str) -> DealKey {
    let product = snap.product(e.sale.product_id.as_deref());
    DealKey::of_event(
        &snap.group.id,
        contact_id,
        product.map(crate::products::key_product),
        e.sale.kind.class() == EventClass::Info,
        snap.integration.merge_products,
    )
}

/// A person's action on a deal, checked by the caller (rights, version, targets).
#[derive(Debug, Clone)]
pub struct PersonAction {
    /// The deal as read in the caller's transaction.
    pub deal: deal::Model,
    pub action: Action,
    pub author_id: Option<String>,
    /// The timeline's line (a note's text, "Movido para Em contato"…).
    pub description: String,
    /// The owner the action sets (a claim, an assignment), written before the fold.
    pub owner: Option<Option<String>>,
}

/// Locks the contacts of deals people act on, as a group of events locks its contacts
/// (on PostgreSQL, in e-mail order; SQLite has one writer). Take it before reading the
/// deals to check. Returns whether rows were locked (on SQLite the transaction's write
/// lock already serialises writers).
pub async fn lock_contacts<'a>(
    db: &impl ConnectionTrait,
    contact_ids: impl Iterator<Item = &'a str>,
) -> DomainResult<bool> {
    store::lock_contacts(db, contact_ids).await
}

/// Applies people's actions on deals of one integration: each is appended to its deal's
/// key log and every touched key is refolded, with the statements of a group. The caller
/// has taken the deals' contacts' locks ([`lock_contacts`]) before reading the deals. Returns
/// the deals as written, in the order of `actions` (a deal named twice, once).
pub async fn apply_actions(
    db: &impl ConnectionTrait,
    snap: &IntegrationSnapshot,
    actions: &[PersonAction],
) -> DomainResult<Vec<deal::Model>> {
    let now = now_ms();
    let mut heads = Vec::new();
    for a in actions {
        let key = DealKey::parse(&a.deal.deal_key).ok_or_else(|| {
            DomainError::Internal(format!("deal {} has an unreadable key", a.deal.id))
        })?;
        let product = a
            .deal
            .product_id
            .as_deref()
            .and_then(|id| snap.products.iter().find(|p| p.id == id));
        heads.push((key, snap, product));
    }
    let mut logs = store::read_logs(db, heads.clone()).await?;
    for (a, (key, _, _)) in actions.iter().zip(&heads) {
        let log = logs.get_mut(key).expect("every key's log was read");
        // After everything already known of the deal, so an action is never dated
        // before the events it answered.
        let latest = log.entries.iter().map(|e| e.row.occurred_at).max();
        let at = now
            .max(a.deal.created_at + 1)
            .max(latest.map_or(0, |t| t + 1));
        log.entries.push(action_entry(snap, key, a, at));
        log.refold = true;
    }
    let mut plan = store::read_deals(db, &logs).await?;
    plan.fold_keys(&mut logs, now)?;
    super::owners::assign(db, &mut plan.deals).await?;
    store::write_deals(db, &plan).await?;
    store::write_events(db, &logs).await?;
    // The deals as the caller read them, before it set claimed or assigned owners.
    let before: HashMap<String, deal::Model> = actions
        .iter()
        .map(|a| (a.deal.id.clone(), a.deal.clone()))
        .collect();
    let changes = super::emit::changes(&plan, &logs, &before);
    super::outbox::write(db, &changes, &[], now).await?;
    let written = plan.changed_deals();
    let mut out: Vec<deal::Model> = Vec::new();
    for a in actions {
        if out.iter().any(|d| d.id == a.deal.id) {
            continue;
        }
        let deal = match written.iter().find(|d| d.id == a.deal.id) {
            Some(d) => d.clone(),
            None => deal::Entity::find()
                .filter(deal::Column::Id.eq(a.deal.id.as_str()))
                .one(db)
                .await?
                .ok_or(DomainError::NotFound("deal"))?,
        };
        out.push(deal);
    }
    Ok(out)
}

fn action_entry(snap: &IntegrationSnapshot, key: &DealKey, a: &PersonAction, at: i64) -> LogEntry {
    let data = StoredEvent::of_action(&a.action);
    let row = deal_event::Model {
        id: new_id(),
        account_id: snap.account_id().to_owned(),
        group_id: key.group_id.clone(),
        contact_id: key.contact_id.clone(),
        deal_key: key.to_string(),
        dedup_id: new_id(),
        sale_key: None,
        event: a.action.as_str().to_owned(),
        kind: a.action.as_str().to_owned(),
        source: Src::User,
        occurred_at: at,
        data: serde_json::to_string(&data).expect("event data serialises"),
        delivery_id: None,
        import_run_id: None,
        deal_id: None,
        effect: None,
        description: Some(a.description.clone()),
        author_id: a.author_id.clone(),
        recorded_at: now_ms(),
    };
    LogEntry {
        row,
        data,
        kind: Kind::Action(a.action.clone()),
        stored: None,
        hint: Some(a.deal.id.clone()),
    }
}
