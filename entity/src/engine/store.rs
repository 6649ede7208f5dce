//! The statements of a group (see [`super::apply`]): each reads or writes all rows of its
//! kind at once, in chunks that stay below both backends' parameter limits.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TryInsertResult, Value,
    sea_query::{Expr, OnConflict},
};

use super::{
    key::DealKey,
    log::{Applied, IncomingEvent, KeyLog, LogEntry, Source},
    plan::{DealPlan, deals_of_contacts, info_deal},
    snapshot::IntegrationSnapshot,
};
use crate::{
    DomainError, DomainResult, labels, new_id,
    tables::{contact, contact_label, deal, deal_event, deal_ref, label},
};

/// Rows per statement (each row binds at most ~20 values).
const CHUNK: usize = 500;

/// A contact's data as the engine merges it: newer non-empty values replace older ones;
/// empty values never erase data.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ContactFields {
    name: Option<String>,
    phone: Option<String>,
    document: Option<String>,
    data_at: i64,
}

impl ContactFields {
    const EMPTY: ContactFields = ContactFields {
        name: None,
        phone: None,
        document: None,
        data_at: i64::MIN,
    };

    /// Newer data replaces older; data of an import (Hotmart's REST lists, poorer than
    /// webhooks) only fills what is missing and does not date the contact's data.
    fn merge(&mut self, e: &IncomingEvent<'_>) {
        let data = &e.sale.buyer;
        let occurred_at = match e.source {
            Source::Import { .. } => None,
            _ => Some(e.occurred_at),
        };
        let newer = occurred_at.is_some_and(|at| at >= self.data_at);
        let clean = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty() && s.chars().count() <= 200)
                .map(str::to_owned)
        };
        let merge = |old: &mut Option<String>, new: Option<String>| match new {
            Some(new) if newer || old.is_none() => *old = Some(new),
            _ => {}
        };
        merge(&mut self.name, clean(&data.name));
        merge(&mut self.phone, clean(&data.phone));
        merge(&mut self.document, clean(&data.document));
        if let Some(at) = occurred_at {
            self.data_at = self.data_at.max(at);
        }
    }

    fn of(model: &contact::Model) -> Self {
        ContactFields {
            name: model.name.clone(),
            phone: model.phone.clone(),
            document: model.document.clone(),
            data_at: model.data_at,
        }
    }
}

/// Creates or updates the group's contacts; returns each event's contact id (`None`
/// without a usable e-mail) and the ids of the contacts it created. Contacts are written in (account, e-mail) order, which is
/// the order concurrent groups lock them in.
pub(super) async fn upsert_contacts(
    db: &impl ConnectionTrait,
    items: &[(&IntegrationSnapshot, IncomingEvent<'_>)],
    emails: &[Option<String>],
    now: i64,
) -> DomainResult<(Vec<Option<String>>, Vec<String>)> {
    let mut fresh: BTreeMap<(&str, &str), (String, ContactFields)> = BTreeMap::new();
    for ((snap, e), email) in items.iter().zip(emails) {
        if let Some(email) = email {
            let account = snap.integration.account_id.as_str();
            let (_, fields) = fresh
                .entry((account, email.as_str()))
                .or_insert_with(|| (new_id(), ContactFields::EMPTY));
            fields.merge(e);
        }
    }
    let mut stored: HashMap<(String, String), contact::Model> = HashMap::new();
    let rows: Vec<contact::ActiveModel> = fresh
        .iter()
        .map(|((account, email), (id, f))| contact::ActiveModel {
            id: Set(id.clone()),
            account_id: Set((*account).to_owned()),
            email: Set((*email).to_owned()),
            name: Set(f.name.clone()),
            phone: Set(f.phone.clone()),
            document: Set(f.document.clone()),
            data_at: Set(f.data_at.max(0)),
            created_at: Set(now),
            updated_at: Set(now),
            erased_at: Set(None),
            email_hash: Set(None),
            phone_hash: Set(None),
        })
        .collect();
    for chunk in rows.chunks(CHUNK) {
        let returned = contact::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::columns([contact::Column::AccountId, contact::Column::Email])
                    .value(contact::Column::UpdatedAt, Expr::val(now))
                    .to_owned(),
            )
            .exec_with_returning(db)
            .await?;
        for model in returned {
            stored.insert((model.account_id.clone(), model.email.clone()), model);
        }
    }
    merge_into_stored(db, items, emails, &fresh, &stored).await?;
    let created = inserted(&fresh, &stored);
    let ids = items
        .iter()
        .zip(emails)
        .map(|((snap, _), email)| {
            let key = (snap.integration.account_id.clone(), email.clone()?);
            stored.get(&key).map(|c| c.id.clone())
        })
        .collect();
    Ok((ids, created))
}

/// The contacts the upsert inserted: a returned row carrying the id made here.
fn inserted(
    fresh: &BTreeMap<(&str, &str), (String, ContactFields)>,
    stored: &HashMap<(String, String), contact::Model>,
) -> Vec<String> {
    fresh
        .iter()
        .filter(|((account, email), (id, _))| {
            let key = ((*account).to_owned(), (*email).to_owned());
            stored.get(&key).is_some_and(|c| &c.id == id)
        })
        .map(|(_, (id, _))| id.clone())
        .collect()
}

/// Contacts that already existed: the group's data merged over theirs, event by event.
async fn merge_into_stored(
    db: &impl ConnectionTrait,
    items: &[(&IntegrationSnapshot, IncomingEvent<'_>)],
    emails: &[Option<String>],
    fresh: &BTreeMap<(&str, &str), (String, ContactFields)>,
    stored: &HashMap<(String, String), contact::Model>,
) -> DomainResult<()> {
    let mut merged: BTreeMap<&str, (ContactFields, ContactFields)> = BTreeMap::new();
    for ((snap, e), email) in items.iter().zip(emails) {
        let Some(email) = email else { continue };
        let key = (snap.integration.account_id.clone(), email.clone());
        let Some(model) = stored.get(&key) else {
            continue;
        };
        let inserted = fresh
            .get(&(key.0.as_str(), key.1.as_str()))
            .is_some_and(|(id, _)| *id == model.id);
        if inserted {
            continue; // created with the group's data
        }
        let fields = ContactFields::of(model);
        let (_, now) = merged
            .entry(model.id.as_str())
            .or_insert_with(|| (fields.clone(), fields));
        now.merge(e);
    }
    let changed: Vec<(String, Vec<Value>)> = merged
        .into_iter()
        .filter(|(_, (before, after))| before != after)
        .map(|(id, (_, f))| {
            let values = vec![
                f.name.into(),
                f.phone.into(),
                f.document.into(),
                f.data_at.into(),
            ];
            (id.to_owned(), values)
        })
        .collect();
    use contact::Column as C;
    update_rows::<contact::Entity>(
        db,
        C::Id,
        &[C::Name, C::Phone, C::Document, C::DataAt],
        &changed,
    )
    .await
}

/// Sets columns of rows by id with one statement per chunk, joining the table to a list
/// of values (`UPDATE … FROM (VALUES …)`, on both backends): the work grows with the
/// number of rows, not with its square as one `CASE` per column would.
async fn update_rows<E: EntityTrait>(
    db: &impl ConnectionTrait,
    id: E::Column,
    columns: &[E::Column],
    rows: &[(String, Vec<Value>)],
) -> DomainResult<()> {
    use sea_orm::{DbBackend, IdenStatic, Statement};
    let backend = db.get_database_backend();
    let table = E::default().table_name().to_owned();
    let width = columns.len() + 1;
    for chunk in rows.chunks(CHUNK) {
        let mut values = Vec::with_capacity(chunk.len() * width);
        let mut tuples = Vec::with_capacity(chunk.len());
        for (row_id, row) in chunk {
            let mut marks = Vec::with_capacity(width);
            for value in std::iter::once(Value::from(row_id.as_str())).chain(row.iter().cloned()) {
                values.push(value);
                marks.push(match backend {
                    DbBackend::Postgres => format!("${}", values.len()),
                    _ => "?".to_owned(),
                });
            }
            tuples.push(format!("({})", marks.join(", ")));
        }
        let sets: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("\"{}\" = v.column{}", c.as_str(), i + 2))
            .collect();
        let sql = format!(
            "UPDATE \"{table}\" SET {} FROM (VALUES {}) AS v WHERE \"{table}\".\"{}\" = v.column1",
            sets.join(", "),
            tuples.join(", "),
            id.as_str(),
        );
        let result = db
            .execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        if result.rows_affected() != chunk.len() as u64 {
            return Err(DomainError::Conflict(
                "rows changed while the group was applied".into(),
            ));
        }
    }
    Ok(())
}

/// The logs of the touched keys, as stored.
/// Locks contacts for people's actions on their deals, as a group of events does (on
/// PostgreSQL, rows in e-mail order; SQLite has one writer).
pub(super) async fn lock_contacts<'a>(
    db: &impl ConnectionTrait,
    ids: impl Iterator<Item = &'a str>,
) -> DomainResult<bool> {
    if db.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(false);
    }
    let ids: BTreeSet<&str> = ids.collect();
    for chunk in ids.into_iter().collect::<Vec<_>>().chunks(CHUNK) {
        contact::Entity::find()
            .filter(contact::Column::Id.is_in(chunk.iter().copied()))
            .order_by_asc(contact::Column::Email)
            .lock_exclusive()
            .all(db)
            .await?;
    }
    Ok(true)
}

/// A key to read, with its integration and product.
pub(super) type LogHead<'s> = (
    DealKey,
    &'s IntegrationSnapshot,
    Option<&'s crate::tables::product::Model>,
);

pub(super) async fn read_logs<'s>(
    db: &impl ConnectionTrait,
    heads: impl IntoIterator<Item = LogHead<'s>>,
) -> DomainResult<BTreeMap<DealKey, KeyLog<'s>>> {
    let mut logs: BTreeMap<DealKey, KeyLog<'s>> = BTreeMap::new();
    for (key, snap, product) in heads {
        logs.entry(key.clone()).or_insert_with(|| KeyLog {
            key,
            snap,
            product,
            entries: Vec::new(),
            refold: false,
            attach: Vec::new(),
            removed: Vec::new(),
        });
    }
    let by_text: HashMap<String, DealKey> =
        logs.keys().map(|k| (k.to_string(), k.clone())).collect();
    let texts: Vec<&String> = by_text.keys().collect();
    for chunk in texts.chunks(CHUNK) {
        let rows = deal_event::Entity::find()
            .filter(deal_event::Column::DealKey.is_in(chunk.iter().map(|k| k.as_str())))
            .all(db)
            .await?;
        for row in rows {
            let key = &by_text[&row.deal_key];
            let log = logs.get_mut(key).expect("read keys are touched keys");
            log.entries.push(LogEntry::from_row(row)?);
        }
    }
    Ok(logs)
}

/// The stored deals of the keys to refold, oldest first.
pub(super) async fn read_deals(
    db: &impl ConnectionTrait,
    logs: &BTreeMap<DealKey, KeyLog<'_>>,
) -> DomainResult<DealPlan> {
    let keys: Vec<String> = logs
        .values()
        .filter(|l| l.refold)
        .map(|l| l.key.to_string())
        .collect();
    let mut stored: HashMap<String, Vec<deal::Model>> = HashMap::new();
    for chunk in keys.chunks(CHUNK) {
        let deals = deal::Entity::find()
            .filter(deal::Column::DealKey.is_in(chunk.iter().map(String::as_str)))
            .order_by_asc(deal::Column::CreatedAt)
            .order_by_asc(deal::Column::Id)
            .all(db)
            .await?;
        for d in deals {
            stored.entry(d.deal_key.clone()).or_default().push(d);
        }
    }
    Ok(DealPlan {
        stored,
        deals: Vec::new(),
        orphans: Vec::new(),
        refolded: Vec::new(),
    })
}

/// Writes the refolded keys' deals and their sale references.
pub(super) async fn write_deals(db: &impl ConnectionTrait, plan: &DealPlan) -> DomainResult<()> {
    for chunk in plan.refolded.chunks(CHUNK) {
        deal_ref::Entity::delete_many()
            .filter(deal_ref::Column::DealKey.is_in(chunk.iter().map(String::as_str)))
            .exec(db)
            .await?;
    }
    for chunk in plan.orphans.chunks(CHUNK) {
        deal::Entity::delete_many()
            .filter(deal::Column::Id.is_in(chunk.iter().map(String::as_str)))
            .exec(db)
            .await?;
    }
    // Closed before open: a key's open deal is written after the one it replaces closed.
    for open in [false, true] {
        let changed: Vec<(String, Vec<Value>)> = plan
            .deals
            .iter()
            .filter(|d| !d.is_new && d.changed && d.model.open_key.is_some() == open)
            .map(|d| (d.model.id.clone(), deal_values(&d.model)))
            .collect();
        update_rows::<deal::Entity>(db, deal::Column::Id, &DEAL_COLUMNS, &changed).await?;
    }
    let new: Vec<deal::ActiveModel> = plan
        .deals
        .iter()
        .filter(|d| d.is_new)
        .map(|d| sea_orm::IntoActiveModel::into_active_model(d.model.clone()))
        .collect();
    for chunk in new.chunks(CHUNK) {
        deal::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await?;
    }
    let refs: Vec<deal_ref::ActiveModel> = plan
        .deals
        .iter()
        .flat_map(|d| {
            d.refs.iter().map(|reference| deal_ref::ActiveModel {
                deal_id: Set(d.model.id.clone()),
                reference: Set(reference.clone()),
                deal_key: Set(d.model.deal_key.clone()),
                account_id: Set(d.model.account_id.clone()),
            })
        })
        .collect();
    for chunk in refs.chunks(CHUNK) {
        deal_ref::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// The deal columns a fold changes.
const DEAL_COLUMNS: [deal::Column; 17] = [
    deal::Column::OriginId,
    deal::Column::StageId,
    deal::Column::Version,
    deal::Column::BeganPreSale,
    deal::Column::PaidAt,
    deal::Column::FirstActionAt,
    deal::Column::Status,
    deal::Column::OpenKey,
    deal::Column::Paid,
    deal::Column::ValueCents,
    deal::Column::Currency,
    deal::Column::LostReason,
    deal::Column::Details,
    deal::Column::ClosedAt,
    deal::Column::LastEventAt,
    deal::Column::OwnerId,
    deal::Column::UpdatedAt,
];

fn deal_values(d: &deal::Model) -> Vec<Value> {
    vec![
        d.origin_id.clone().into(),
        d.stage_id.clone().into(),
        d.version.into(),
        d.began_pre_sale.into(),
        d.paid_at.into(),
        d.first_action_at.into(),
        d.status.into(),
        d.open_key.clone().into(),
        d.paid.into(),
        d.value_cents.into(),
        d.currency.clone().into(),
        d.lost_reason.clone().into(),
        d.details.clone().into(),
        d.closed_at.into(),
        d.last_event_at.into(),
        d.owner_id.clone().into(),
        d.updated_at.into(),
    ]
}

/// Info events without a product in keys that were not refolded: each goes on a deal of
/// its contact in the group (one read of those deals and one of their references).
pub(super) async fn attach_info(
    db: &impl ConnectionTrait,
    logs: &mut BTreeMap<DealKey, KeyLog<'_>>,
) -> DomainResult<()> {
    let waiting: Vec<&DealKey> = logs
        .values()
        .filter(|l| !l.refold && !l.attach.is_empty())
        .map(|l| &l.key)
        .collect();
    if waiting.is_empty() {
        return Ok(());
    }
    let contacts: Vec<&str> = waiting.iter().map(|k| k.contact_id.as_str()).collect();
    let deals = deals_of_contacts(db, &contacts).await?;
    let mut refs: HashMap<String, BTreeSet<String>> = HashMap::new();
    let ids: Vec<&str> = deals.iter().map(|d| d.id.as_str()).collect();
    for chunk in ids.chunks(CHUNK) {
        let rows = deal_ref::Entity::find()
            .filter(deal_ref::Column::DealId.is_in(chunk.iter().copied()))
            .all(db)
            .await?;
        for row in rows {
            refs.entry(row.deal_id).or_default().insert(row.reference);
        }
    }
    let keys: Vec<DealKey> = waiting.into_iter().cloned().collect();
    for key in keys {
        let candidates: Vec<(String, BTreeSet<String>)> = deals
            .iter()
            .filter(|d| d.group_id == key.group_id && d.contact_id == key.contact_id)
            .map(|d| (d.id.clone(), refs.get(&d.id).cloned().unwrap_or_default()))
            .collect();
        let log = logs.get_mut(&key).expect("waiting keys are logs");
        for &i in &log.attach {
            let entry = &mut log.entries[i];
            let (deal_id, effect) = info_deal(&candidates, &entry.data.refs);
            entry.row.deal_id = deal_id;
            entry.row.effect = Some(effect);
        }
    }
    Ok(())
}

/// Writes the logs: imported copies replaced by live events go, new events are added
/// (a conflict means another process applied one meanwhile: the group is retried), and
/// stored events whose deal or effect changed are updated.
pub(super) async fn write_events(
    db: &impl ConnectionTrait,
    logs: &BTreeMap<DealKey, KeyLog<'_>>,
) -> DomainResult<()> {
    let removed: Vec<&str> = logs
        .values()
        .flat_map(|l| l.removed.iter().map(String::as_str))
        .collect();
    for chunk in removed.chunks(CHUNK) {
        deal_event::Entity::delete_many()
            .filter(deal_event::Column::Id.is_in(chunk.iter().copied()))
            .exec(db)
            .await?;
    }
    let entries = || logs.values().flat_map(|l| l.entries.iter());
    let new: Vec<deal_event::ActiveModel> = entries()
        .filter(|e| e.stored.is_none())
        .map(|e| sea_orm::IntoActiveModel::into_active_model(e.row.clone()))
        .collect();
    for chunk in new.chunks(CHUNK) {
        let inserted = deal_event::Entity::insert_many(chunk.to_vec())
            .on_conflict_do_nothing_on([deal_event::Column::DealKey, deal_event::Column::DedupId])
            .exec_without_returning(db)
            .await?;
        if !matches!(inserted, TryInsertResult::Inserted(n) if n == chunk.len() as u64) {
            return Err(DomainError::Conflict(
                "an event of the group was applied concurrently".into(),
            ));
        }
    }
    let changed: Vec<(String, Vec<Value>)> = entries()
        .filter(|e| {
            e.stored
                .as_ref()
                .is_some_and(|s| (&s.0, &s.1) != (&e.row.deal_id, &e.row.effect))
        })
        .map(|e| {
            let values = vec![e.row.deal_id.clone().into(), e.row.effect.into()];
            (e.row.id.clone(), values)
        })
        .collect();
    use deal_event::Column as C;
    update_rows::<deal_event::Entity>(db, C::Id, &[C::DealId, C::Effect], &changed).await
}

/// Tags the engine puts on the contacts of applied events: the integration's label, the
/// product's name (with `tagContactsWithProductName`), the product's label, the import's
/// label.
pub(super) async fn tag_contacts(
    db: &impl ConnectionTrait,
    items: &[(&IntegrationSnapshot, IncomingEvent<'_>)],
    applied: &[Applied],
    now: i64,
) -> DomainResult<()> {
    let mut tags: BTreeSet<(String, String, String)> = BTreeSet::new();
    for ((snap, e), applied) in items.iter().zip(applied) {
        let Applied::Applied { contact_id } = applied else {
            continue;
        };
        let mut names: Vec<&str> = snap.integration.label.as_deref().into_iter().collect();
        if let Some(product) = snap.product(e.sale.product_id.as_deref()) {
            if snap.integration.tag_contacts_with_product_name
                && let Some(name) = &product.name
            {
                names.push(name);
            }
            names.extend(product.label.as_deref());
        }
        if let Source::Import {
            label: Some(label), ..
        } = &e.source
        {
            names.push(label);
        }
        let account = &snap.integration.account_id;
        for name in names.into_iter().filter_map(labels::tag_name) {
            tags.insert((account.clone(), contact_id.clone(), name));
        }
    }
    if tags.is_empty() {
        return Ok(());
    }
    let ids = ensure_labels(db, &tags, now).await?;
    let rows: Vec<contact_label::ActiveModel> = tags
        .iter()
        .filter_map(|(account, contact_id, name)| {
            let label_id = ids.get(&(account.clone(), labels::name_key(name)))?;
            Some(contact_label::ActiveModel {
                contact_id: Set(contact_id.clone()),
                label_id: Set(label_id.clone()),
                account_id: Set(account.clone()),
                created_at: Set(now),
            })
        })
        .collect();
    for chunk in rows.chunks(CHUNK) {
        contact_label::Entity::insert_many(chunk.to_vec())
            .on_conflict_do_nothing_on([
                contact_label::Column::ContactId,
                contact_label::Column::LabelId,
            ])
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// The labels named by `tags`, created when missing; by (account, name key).
async fn ensure_labels(
    db: &impl ConnectionTrait,
    tags: &BTreeSet<(String, String, String)>,
    now: i64,
) -> DomainResult<HashMap<(String, String), String>> {
    let mut wanted: BTreeMap<(String, String), String> = BTreeMap::new();
    for (account, _, name) in tags {
        wanted
            .entry((account.clone(), labels::name_key(name)))
            .or_insert_with(|| name.clone());
    }
    let rows: Vec<label::ActiveModel> = wanted
        .iter()
        .map(|((account, key), name)| label::ActiveModel {
            id: Set(new_id()),
            account_id: Set(account.clone()),
            name: Set(name.clone()),
            name_key: Set(key.clone()),
            color: Set(None),
            created_at: Set(now),
        })
        .collect();
    label::Entity::insert_many(rows)
        .on_conflict_do_nothing_on([label::Column::AccountId, label::Column::NameKey])
        .exec_without_returning(db)
        .await?;
    let accounts: BTreeSet<&str> = wanted.keys().map(|(a, _)| a.as_str()).collect();
    let found = label::Entity::find()
        .filter(label::Column::AccountId.is_in(accounts))
        .filter(label::Column::NameKey.is_in(wanted.keys().map(|(_, k)| k.as_str())))
        .all(db)
        .await?;
    Ok(found
        .into_iter()
        .map(|l| ((l.account_id, l.name_key), l.id))
        .collect())
}
