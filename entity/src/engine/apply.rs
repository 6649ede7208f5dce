//! The persistence step around the fold: upsert the contact, append the event to its key's
//! log (deduplicated), re-fold the key and write the difference. Runs inside the caller's
//! transaction; its first statement is a write, so on SQLite the transaction holds the
//! write lock from the start and on PostgreSQL the contact row is locked: events of one
//! contact are applied one at a time.

use std::collections::{HashMap, HashSet};

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, Set, TryInsertResult,
    sea_query::{Expr, OnConflict},
};
use serde::{Deserialize, Serialize};

use super::fold::{Effect, FoldEvent, OriginRule, fold};
use crate::{
    Caller, DomainError, DomainResult, EventClass, HotmartEvent, Role,
    hotmart::payload::HotmartPayload,
    hotmart_event::DealStatus,
    labels, new_id, now_ms,
    tables::{
        contact, contact_label, deal, deal_event, deal_ref, group, integration, origin,
        origin_assignee, product,
    },
    values,
};

/// What the engine needs to know about an integration, loaded once per job.
#[derive(Debug, Clone)]
pub struct IntegrationSnapshot {
    pub integration: integration::Model,
    pub group: group::Model,
    pub origins: Vec<origin::Model>,
    pub products: Vec<product::Model>,
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
        Ok(Self {
            integration,
            group,
            origins,
            products,
        })
    }

    pub fn origin_rule(&self, event: HotmartEvent) -> Option<OriginRule> {
        self.origins
            .iter()
            .find(|o| o.event == event.as_str())
            .map(|o| OriginRule {
                origin_id: o.id.clone(),
                entry_status: DealStatus::parse(&o.entry_status).unwrap_or(DealStatus::Open),
            })
    }

    pub fn product(&self, hotmart_product_id: Option<&str>) -> Option<&product::Model> {
        let id = hotmart_product_id?;
        self.products.iter().find(|p| p.hotmart_product_id == id)
    }

    /// The identity the engine acts as inside the integration's account.
    fn system_caller(&self) -> Caller {
        Caller {
            user_id: String::new(),
            account_id: self.integration.account_id.clone(),
            role: Role::Admin,
        }
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
    },
}

impl Source {
    pub fn as_str(&self) -> &'static str {
        match self {
            Source::Webhook { .. } => "WEBHOOK",
            Source::Import { .. } => "IMPORT",
        }
    }
}

/// One event to apply.
#[derive(Debug, Clone)]
pub struct IncomingEvent<'a> {
    pub payload: &'a HotmartPayload,
    pub event: HotmartEvent,
    /// The log's deduplication id: the Hotmart event id, or `import:{tx}:{status}`.
    pub dedup_id: String,
    pub occurred_at: i64,
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The key's log already had this event: no second effect.
    Duplicate,
    /// No usable e-mail: nobody to attach the event to.
    NoContact,
    Applied {
        contact_id: String,
        deals_created: usize,
        deals_updated: usize,
    },
}

/// The part of an event the fold needs, kept in `deal_events.data`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredEvent {
    refs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    price: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    currency: Option<String>,
}

pub async fn apply_event(
    db: &impl ConnectionTrait,
    snap: &IntegrationSnapshot,
    incoming: IncomingEvent<'_>,
) -> DomainResult<Applied> {
    let payload = incoming.payload;
    let Some(email) = payload
        .contact
        .email
        .as_deref()
        .and_then(|e| values::email("email", e).ok())
    else {
        return Ok(Applied::NoContact);
    };
    let contact = upsert_contact(db, snap, &email, payload, incoming.occurred_at).await?;
    let product = snap.product(payload.envelope.product_id.as_deref());
    let group_id = &snap.group.id;
    let refs = payload.references();
    let info = incoming.event.class() == EventClass::Info;
    let key = match (product, info) {
        (None, true) => format!("{group_id}|{}|-", contact.id),
        _ if snap.integration.merge_products => format!("{group_id}|{}", contact.id),
        (Some(p), _) => format!("{group_id}|{}|{}", contact.id, p.id),
        (None, false) => format!("{group_id}|{}|-", contact.id),
    };
    let sale_key = payload
        .transaction
        .as_ref()
        .map(|tx| format!("{tx}:{}", incoming.event.as_str()));

    // An imported sale already received by webhook (or imported before) is a duplicate.
    if let (Source::Import { .. }, Some(sale_key)) = (&incoming.source, &sale_key) {
        let known = deal_event::Entity::find()
            .filter(deal_event::Column::DealKey.eq(key.as_str()))
            .filter(deal_event::Column::SaleKey.eq(sale_key.as_str()))
            .one(db)
            .await?;
        if known.is_some() {
            return Ok(Applied::Duplicate);
        }
    }
    let stored = StoredEvent {
        refs: refs.clone(),
        price: payload.price,
        currency: payload.currency.clone(),
    };
    let (delivery_id, import_run_id) = match &incoming.source {
        Source::Webhook { delivery_id } => (Some(delivery_id.clone()), None),
        Source::Import { run_id, .. } => (None, Some(run_id.clone())),
    };
    let row = deal_event::ActiveModel {
        id: Set(new_id()),
        account_id: Set(snap.integration.account_id.clone()),
        group_id: Set(group_id.clone()),
        contact_id: Set(contact.id.clone()),
        deal_key: Set(key.clone()),
        dedup_id: Set(incoming.dedup_id.clone()),
        sale_key: Set(sale_key.clone()),
        event: Set(incoming.event.as_str().to_owned()),
        source: Set(incoming.source.as_str().to_owned()),
        occurred_at: Set(incoming.occurred_at),
        data: Set(serde_json::to_string(&stored).expect("event data serialises")),
        delivery_id: Set(delivery_id),
        import_run_id: Set(import_run_id),
        deal_id: Set(None),
        effect: Set(None),
        description: Set(Some(describe(incoming.event, payload))),
        recorded_at: Set(now_ms()),
    };
    let inserted = deal_event::Entity::insert(row)
        .on_conflict_do_nothing_on([deal_event::Column::DealKey, deal_event::Column::DedupId])
        .exec_without_returning(db)
        .await?;
    if !matches!(inserted, TryInsertResult::Inserted(n) if n > 0) {
        return Ok(Applied::Duplicate);
    }
    // A live event replaces the imported copy of the same sale event: one timeline entry.
    if let (Source::Webhook { .. }, Some(sale_key)) = (&incoming.source, &sale_key) {
        deal_event::Entity::delete_many()
            .filter(deal_event::Column::DealKey.eq(key.as_str()))
            .filter(deal_event::Column::SaleKey.eq(sale_key.as_str()))
            .filter(deal_event::Column::Source.eq("IMPORT"))
            .exec(db)
            .await?;
    }

    let (deals_created, deals_updated) = if info && product.is_none() {
        attach_info_without_product(db, snap, &contact.id, &key, &incoming.dedup_id, &refs).await?;
        (0, 0)
    } else {
        refold_key(db, snap, &key, &contact.id, product).await?
    };
    tag_contact(db, snap, &contact.id, product, &incoming.source).await?;
    Ok(Applied::Applied {
        contact_id: contact.id,
        deals_created,
        deals_updated,
    })
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
    if let (Some(price), Some(currency)) = (payload.price, &payload.currency) {
        text.push_str(&format!(" ({currency} {price:.2})"));
    }
    if let Some(reason) = &payload.refusal_reason {
        text.push_str(&format!(": {reason}"));
    }
    if let Some(tx) = &payload.transaction {
        text.push_str(&format!(" [{tx}]"));
    }
    text
}

/// Creates or updates the contact. Newer non-empty values replace older ones; empty values
/// never erase data.
async fn upsert_contact(
    db: &impl ConnectionTrait,
    snap: &IntegrationSnapshot,
    email: &str,
    payload: &HotmartPayload,
    occurred_at: i64,
) -> DomainResult<contact::Model> {
    let now = now_ms();
    let clean = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.chars().count() <= 200)
            .map(str::to_owned)
    };
    let (name, phone, document) = (
        clean(&payload.contact.name),
        clean(&payload.contact.phone),
        clean(&payload.contact.document),
    );
    let row = contact::ActiveModel {
        id: Set(new_id()),
        account_id: Set(snap.integration.account_id.clone()),
        email: Set(email.to_owned()),
        name: Set(name.clone()),
        phone: Set(phone.clone()),
        document: Set(document.clone()),
        data_at: Set(occurred_at),
        created_at: Set(now),
        updated_at: Set(now),
    };
    // The write comes first: it takes the lock that serialises this contact's events, and
    // returns the contact as stored (new, or the existing one).
    let current = contact::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([contact::Column::AccountId, contact::Column::Email])
                .value(contact::Column::UpdatedAt, Expr::val(now))
                .to_owned(),
        )
        .exec_with_returning(db)
        .await?;
    let newer = occurred_at >= current.data_at;
    let merge = |old: &Option<String>, new: Option<String>| match (old, new) {
        (_, Some(new)) if newer => Some(new),
        (None, new) => new,
        (old, _) => old.clone(),
    };
    let merged = (
        merge(&current.name, name),
        merge(&current.phone, phone),
        merge(&current.document, document),
    );
    if merged
        != (
            current.name.clone(),
            current.phone.clone(),
            current.document.clone(),
        )
        || (newer && occurred_at != current.data_at)
    {
        let mut model = current.clone().into_active_model();
        model.name = Set(merged.0);
        model.phone = Set(merged.1);
        model.document = Set(merged.2);
        model.data_at = Set(current.data_at.max(occurred_at));
        return Ok(model.update(db).await?);
    }
    Ok(current)
}

/// Info events without a product: the deal of the contact in the group holding one of
/// their sale references, else the contact's latest deal there, else the contact.
async fn attach_info_without_product(
    db: &impl ConnectionTrait,
    snap: &IntegrationSnapshot,
    contact_id: &str,
    key: &str,
    dedup_id: &str,
    refs: &[String],
) -> DomainResult<()> {
    let deals = deal::Entity::find()
        .filter(deal::Column::GroupId.eq(snap.group.id.as_str()))
        .filter(deal::Column::ContactId.eq(contact_id))
        .order_by_desc(deal::Column::LastEventAt)
        .all(db)
        .await?;
    let mut target = None;
    if !refs.is_empty() && !deals.is_empty() {
        let holding = deal_ref::Entity::find()
            .filter(deal_ref::Column::DealId.is_in(deals.iter().map(|d| d.id.as_str())))
            .filter(deal_ref::Column::Reference.is_in(refs.iter().map(String::as_str)))
            .all(db)
            .await?;
        target = deals
            .iter()
            .find(|d| holding.iter().any(|r| r.deal_id == d.id));
    }
    let target = target.or(deals.first());
    let effect = if target.is_some() {
        Effect::TimelineOnly
    } else {
        Effect::ContactTimeline
    };
    deal_event::Entity::update_many()
        .col_expr(
            deal_event::Column::DealId,
            Expr::val(target.map(|d| d.id.clone())),
        )
        .col_expr(deal_event::Column::Effect, Expr::val(effect.as_str()))
        .filter(deal_event::Column::DealKey.eq(key))
        .filter(deal_event::Column::DedupId.eq(dedup_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Re-folds a key's log and writes the difference. Returns (deals created, deals updated).
async fn refold_key(
    db: &impl ConnectionTrait,
    snap: &IntegrationSnapshot,
    key: &str,
    contact_id: &str,
    product: Option<&product::Model>,
) -> DomainResult<(usize, usize)> {
    let rows = deal_event::Entity::find()
        .filter(deal_event::Column::DealKey.eq(key))
        .all(db)
        .await?;
    let events: Vec<FoldEvent> = rows
        .iter()
        .map(|row| {
            let data: StoredEvent = serde_json::from_str(&row.data).unwrap_or(StoredEvent {
                refs: Vec::new(),
                price: None,
                currency: None,
            });
            FoldEvent {
                dedup_id: row.dedup_id.clone(),
                event: HotmartEvent::parse(&row.event).unwrap_or(HotmartEvent::ClubFirstAccess),
                occurred_at: row.occurred_at,
                refs: data.refs,
                price: data.price,
                currency: data.currency,
            }
        })
        .collect();
    let outcome = fold(&events, |e| snap.origin_rule(e));
    let stored: Vec<deal::Model> = deal::Entity::find()
        .filter(deal::Column::DealKey.eq(key))
        .order_by_asc(deal::Column::CreatedAt)
        .all(db)
        .await?;

    // Stable ids: each journey keeps the stored deal that already held one of its events.
    let mut taken: HashSet<String> = HashSet::new();
    let mut mapped: Vec<Option<deal::Model>> = Vec::with_capacity(outcome.journeys.len());
    for journey in &outcome.journeys {
        let holders: HashSet<&str> = journey
            .events
            .iter()
            .filter_map(|&i| rows[i].deal_id.as_deref())
            .collect();
        let pick = stored
            .iter()
            .find(|d| holders.contains(d.id.as_str()) && !taken.contains(&d.id))
            .cloned();
        if let Some(d) = &pick {
            taken.insert(d.id.clone());
        }
        mapped.push(pick);
    }
    // Deals no journey kept (two journeys merged by a late event) disappear.
    let orphans: Vec<&str> = stored
        .iter()
        .filter(|d| !taken.contains(&d.id))
        .map(|d| d.id.as_str())
        .collect();
    if !orphans.is_empty() {
        deal::Entity::delete_many()
            .filter(deal::Column::Id.is_in(orphans))
            .exec(db)
            .await?;
    }

    let now = now_ms();
    let mut created = 0;
    let mut updated = 0;
    let mut ids = Vec::with_capacity(outcome.journeys.len());
    // Closed deals are written before open ones so `open_key` never collides midway.
    let mut order: Vec<usize> = (0..outcome.journeys.len()).collect();
    order.sort_by_key(|&j| outcome.journeys[j].status == DealStatus::Open);
    let mut written: HashMap<usize, String> = HashMap::new();
    for j in order {
        let journey = &outcome.journeys[j];
        let open_key = (journey.status == DealStatus::Open).then(|| key.to_owned());
        let id = match &mapped[j] {
            Some(existing) => {
                let moved = existing.origin_id != journey.origin_id;
                let owner = if moved && !snap.integration.keep_deal_owner {
                    match next_assignee(db, &journey.origin_id).await? {
                        Some(user) => Some(user),
                        None => existing.owner_id.clone(),
                    }
                } else {
                    existing.owner_id.clone()
                };
                let changed = moved
                    || existing.status != journey.status.as_str()
                    || existing.value != journey.value
                    || existing.currency != journey.currency
                    || existing.closed_at != journey.closed_at
                    || existing.last_event_at != journey.last_event_at
                    || existing.paid != journey.paid
                    || existing.lost_reason != journey.lost_reason
                    || existing.owner_id != owner;
                if changed {
                    let mut model = existing.clone().into_active_model();
                    model.origin_id = Set(journey.origin_id.clone());
                    model.status = Set(journey.status.as_str().to_owned());
                    model.open_key = Set(open_key);
                    model.paid = Set(journey.paid);
                    model.value = Set(journey.value);
                    model.currency = Set(journey.currency.clone());
                    model.lost_reason = Set(journey.lost_reason.clone());
                    model.closed_at = Set(journey.closed_at);
                    model.last_event_at = Set(journey.last_event_at);
                    model.owner_id = Set(owner);
                    model.updated_at = Set(now);
                    model.update(db).await?;
                    updated += 1;
                }
                existing.id.clone()
            }
            None => {
                let owner = initial_owner(db, snap, contact_id, &journey.origin_id).await?;
                let row = deal::ActiveModel {
                    id: Set(new_id()),
                    account_id: Set(snap.integration.account_id.clone()),
                    group_id: Set(snap.group.id.clone()),
                    origin_id: Set(journey.origin_id.clone()),
                    contact_id: Set(contact_id.to_owned()),
                    product_id: Set(product.map(|p| p.id.clone())),
                    deal_key: Set(key.to_owned()),
                    open_key: Set(open_key),
                    status: Set(journey.status.as_str().to_owned()),
                    paid: Set(journey.paid),
                    owner_id: Set(owner),
                    value: Set(journey.value),
                    currency: Set(journey.currency.clone()),
                    lost_reason: Set(journey.lost_reason.clone()),
                    created_at: Set(journey.created_at),
                    closed_at: Set(journey.closed_at),
                    last_event_at: Set(journey.last_event_at),
                    updated_at: Set(now),
                };
                created += 1;
                row.insert(db).await?.id
            }
        };
        written.insert(j, id);
    }
    for j in 0..outcome.journeys.len() {
        ids.push(written.remove(&j).expect("every journey was written"));
    }

    // Sale references of the key's deals.
    let deal_ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    if !deal_ids.is_empty() {
        deal_ref::Entity::delete_many()
            .filter(deal_ref::Column::DealId.is_in(deal_ids))
            .exec(db)
            .await?;
    }
    let refs: Vec<deal_ref::ActiveModel> = outcome
        .journeys
        .iter()
        .zip(&ids)
        .flat_map(|(journey, id)| {
            journey
                .refs
                .iter()
                .map(move |reference| deal_ref::ActiveModel {
                    deal_id: Set(id.clone()),
                    reference: Set(reference.clone()),
                    deal_key: Set(key.to_owned()),
                    account_id: Set(snap.integration.account_id.clone()),
                })
        })
        .collect();
    if !refs.is_empty() {
        deal_ref::Entity::insert_many(refs)
            .exec_without_returning(db)
            .await?;
    }

    // Each event records where it landed and what it did.
    for (row, (journey, effect)) in rows.iter().zip(&outcome.events) {
        let deal_id = journey.map(|j| ids[j].clone());
        if row.deal_id != deal_id || row.effect.as_deref() != Some(effect.as_str()) {
            let mut model = row.clone().into_active_model();
            model.deal_id = Set(deal_id);
            model.effect = Set(Some(effect.as_str().to_owned()));
            model.update(db).await?;
        }
    }
    Ok((created, updated))
}

/// Owner of a new deal (§4.4): with `keepDealOwner`, the owner of the contact's deals in
/// the group; else the next assignee of the origin's rotation; else none.
async fn initial_owner(
    db: &impl ConnectionTrait,
    snap: &IntegrationSnapshot,
    contact_id: &str,
    origin_id: &str,
) -> DomainResult<Option<String>> {
    if snap.integration.keep_deal_owner {
        let owned = deal::Entity::find()
            .filter(deal::Column::GroupId.eq(snap.group.id.as_str()))
            .filter(deal::Column::ContactId.eq(contact_id))
            .filter(deal::Column::OwnerId.is_not_null())
            .order_by_desc(deal::Column::UpdatedAt)
            .one(db)
            .await?;
        if let Some(deal) = owned {
            return Ok(deal.owner_id);
        }
    }
    next_assignee(db, origin_id).await
}

/// Round robin over an origin's assignees; advances the origin's cursor.
async fn next_assignee(db: &impl ConnectionTrait, origin_id: &str) -> DomainResult<Option<String>> {
    let assignees = origin_assignee::Entity::find()
        .filter(origin_assignee::Column::OriginId.eq(origin_id))
        .order_by_asc(origin_assignee::Column::Position)
        .all(db)
        .await?;
    if assignees.is_empty() {
        return Ok(None);
    }
    let Some(origin) = origin::Entity::find_by_id(origin_id.to_owned())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let pick = assignees[(origin.rotation_cursor as usize) % assignees.len()]
        .user_id
        .clone();
    let mut model = origin.into_active_model();
    let cursor = model.rotation_cursor.clone().unwrap();
    model.rotation_cursor = Set(cursor + 1);
    model.update(db).await?;
    Ok(Some(pick))
}

/// Tags the engine puts on contacts (§4.5).
async fn tag_contact(
    db: &impl ConnectionTrait,
    snap: &IntegrationSnapshot,
    contact_id: &str,
    product: Option<&product::Model>,
    source: &Source,
) -> DomainResult<()> {
    let mut names: Vec<String> = Vec::new();
    if let Some(product) = product {
        if snap.integration.tag_contacts_with_product_name
            && let Some(name) = &product.name
        {
            names.push(name.clone());
        }
        if let Some(label) = &product.label {
            names.push(label.clone());
        }
    }
    if let Source::Import {
        label: Some(label), ..
    } = source
    {
        names.push(label.clone());
    }
    if names.is_empty() {
        return Ok(());
    }
    let caller = snap.system_caller();
    for name in names {
        let Ok(label) = labels::ensure(db, &caller, "label", &name).await else {
            continue;
        };
        contact_label::Entity::insert(contact_label::ActiveModel {
            contact_id: Set(contact_id.to_owned()),
            label_id: Set(label.id),
            account_id: Set(snap.integration.account_id.clone()),
            created_at: Set(now_ms()),
        })
        .on_conflict_do_nothing_on([
            contact_label::Column::ContactId,
            contact_label::Column::LabelId,
        ])
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}
