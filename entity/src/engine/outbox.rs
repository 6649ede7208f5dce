//! The outbox: the messages a change emits, written in the change's own transaction (so a
//! change and its messages commit together or not at all), set-wise for a whole engine
//! group. A deal emits one message when its origin, stage, status or owner changed; a
//! new contact emits `contact.created`. With no enabled endpoint in the accounts touched,
//! this costs one read; with endpoints, at most three reads and one multi-row insert.

use std::collections::{BTreeSet, HashMap};

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use super::snapshot::IntegrationSnapshot;
use crate::{
    DomainResult, money,
    outbound::{
        body,
        endpoints::wants,
        iso,
        messages::{enabled_endpoints, insert, new_row},
    },
    tables::{contact, deal, enums::DealStatus, outbound_message, user, webhook_endpoint},
};

/// What made a change: a checkout's event, an import, or a person.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cause {
    /// `HOTMART`, `KIWIFY`, `EDUZZ`, `IMPORT` or `USER`.
    pub source: &'static str,
    /// The checkout event (`PURCHASE_APPROVED`…) or the person's action (`MOVE`…).
    pub event: Option<String>,
    pub user_id: Option<String>,
    pub import_run_id: Option<String>,
}

/// A deal as it was before a fold and as the fold wrote it.
#[derive(Debug, Clone)]
pub struct DealChange<'a> {
    pub snap: &'a IntegrationSnapshot,
    /// `None` for a new deal.
    pub previous: Option<deal::Model>,
    pub deal: deal::Model,
    pub cause: Cause,
}

/// A contact the group created.
#[derive(Debug, Clone)]
pub struct NewContact<'a> {
    pub snap: &'a IntegrationSnapshot,
    pub contact_id: String,
}

/// The event type a deal's change is, if it is one (the first that applies: created,
/// won, lost, reopened, moved, owner changed); `None` when none of the four changed.
pub fn deal_event_type(previous: Option<&deal::Model>, deal: &deal::Model) -> Option<&'static str> {
    let Some(p) = previous else {
        return Some("deal.created");
    };
    if p.status != deal.status {
        return Some(match deal.status {
            DealStatus::Won => "deal.won",
            DealStatus::Lost => "deal.lost",
            DealStatus::Open => "deal.reopened",
        });
    }
    if p.origin_id != deal.origin_id || p.stage_id != deal.stage_id {
        return Some("deal.moved");
    }
    (p.owner_id != deal.owner_id).then_some("deal.owner_changed")
}

/// One message to write, before its body is made.
struct Wanted<'e> {
    endpoint: &'e webhook_endpoint::Model,
    event_type: &'static str,
    /// Index in the changes, or in the new contacts.
    subject: Subject,
}

enum Subject {
    Deal(usize),
    Contact(usize),
}

/// Each (endpoint, subject) whose type and group the endpoint wants.
fn wanted<'e>(
    endpoints: &'e [webhook_endpoint::Model],
    changes: &[DealChange<'_>],
    contacts: &[NewContact<'_>],
    typed: &[(usize, &'static str)],
) -> Vec<Wanted<'e>> {
    let mut wanted = Vec::new();
    for e in endpoints {
        // A contact before its deals.
        for (i, c) in contacts.iter().enumerate() {
            if e.account_id == c.snap.account_id()
                && wants(e, "contact.created", Some(&c.snap.group.id))
            {
                wanted.push(Wanted {
                    endpoint: e,
                    event_type: "contact.created",
                    subject: Subject::Contact(i),
                });
            }
        }
        for &(i, event_type) in typed {
            let c = &changes[i];
            if e.account_id == c.snap.account_id() && wants(e, event_type, Some(&c.deal.group_id)) {
                wanted.push(Wanted {
                    endpoint: e,
                    event_type,
                    subject: Subject::Deal(i),
                });
            }
        }
    }
    wanted
}

/// Writes the messages of a group's changes; returns how many.
pub async fn write(
    db: &impl ConnectionTrait,
    changes: &[DealChange<'_>],
    contacts: &[NewContact<'_>],
    now: i64,
) -> DomainResult<usize> {
    let typed: Vec<(usize, &'static str)> = changes
        .iter()
        .enumerate()
        .filter_map(|(i, c)| Some((i, deal_event_type(c.previous.as_ref(), &c.deal)?)))
        .collect();
    if typed.is_empty() && contacts.is_empty() {
        return Ok(0);
    }
    let accounts: BTreeSet<&str> = changes
        .iter()
        .map(|c| c.snap.account_id())
        .chain(contacts.iter().map(|c| c.snap.account_id()))
        .collect();
    let endpoints = enabled_endpoints(db, accounts.into_iter()).await?;
    if endpoints.is_empty() {
        return Ok(0);
    }
    let wanted = wanted(&endpoints, changes, contacts, &typed);
    if wanted.is_empty() {
        return Ok(0);
    }
    let names = Names::read(db, changes, contacts, &wanted).await?;
    let rows: Vec<outbound_message::ActiveModel> = wanted
        .iter()
        .map(|w| {
            let data = match w.subject {
                Subject::Deal(i) => deal_data(&changes[i], &names, w.endpoint.include_contact_data),
                Subject::Contact(i) => {
                    contact_data(&contacts[i], &names, w.endpoint.include_contact_data)
                }
            };
            new_row(w.endpoint, w.event_type, body(w.event_type, now, data), now)
        })
        .collect();
    insert(db, rows).await
}

/// The people and contacts the messages name, read once for the group.
#[derive(Default)]
struct Names {
    users: HashMap<String, user::Model>,
    contacts: HashMap<String, contact::Model>,
}

impl Names {
    async fn read(
        db: &impl ConnectionTrait,
        changes: &[DealChange<'_>],
        contacts: &[NewContact<'_>],
        wanted: &[Wanted<'_>],
    ) -> DomainResult<Names> {
        let mut user_ids: BTreeSet<&str> = BTreeSet::new();
        let mut contact_ids: BTreeSet<&str> = BTreeSet::new();
        for w in wanted {
            match w.subject {
                Subject::Deal(i) => {
                    let c = &changes[i];
                    let owners = [
                        c.deal.owner_id.as_deref(),
                        c.previous.as_ref().and_then(|p| p.owner_id.as_deref()),
                    ];
                    user_ids.extend(owners.into_iter().flatten());
                    user_ids.extend(c.cause.user_id.as_deref());
                    if w.endpoint.include_contact_data {
                        contact_ids.insert(&c.deal.contact_id);
                    }
                }
                Subject::Contact(i) if w.endpoint.include_contact_data => {
                    contact_ids.insert(&contacts[i].contact_id);
                }
                Subject::Contact(_) => {}
            }
        }
        let mut names = Names::default();
        if !user_ids.is_empty() {
            let found = user::Entity::find()
                .filter(user::Column::Id.is_in(user_ids))
                .all(db)
                .await?;
            names.users = found.into_iter().map(|u| (u.id.clone(), u)).collect();
        }
        if !contact_ids.is_empty() {
            let found = contact::Entity::find()
                .filter(contact::Column::Id.is_in(contact_ids))
                .all(db)
                .await?;
            names.contacts = found.into_iter().map(|c| (c.id.clone(), c)).collect();
        }
        Ok(names)
    }

    fn user(&self, id: Option<&str>) -> Value {
        match id.and_then(|id| self.users.get(id)) {
            Some(u) => json!({"id": u.id, "name": u.name, "email": u.email}),
            None => id.map_or(Value::Null, |id| json!({"id": id})),
        }
    }

    fn contact(&self, id: &str, full: bool) -> Value {
        match self.contacts.get(id) {
            Some(c) if full && c.erased_at.is_none() => {
                json!({"id": c.id, "email": c.email, "name": c.name, "phone": c.phone})
            }
            _ => json!({"id": id}),
        }
    }
}

fn named<'a>(id: &'a str, name: Option<&'a str>) -> Value {
    json!({"id": id, "name": name})
}

fn deal_data(c: &DealChange<'_>, names: &Names, full: bool) -> Value {
    let (snap, d) = (c.snap, &c.deal);
    let origin = |id: &str| {
        named(
            id,
            snap.origins
                .iter()
                .find(|o| o.id == id)
                .map(|o| o.name.as_str()),
        )
    };
    let stage = |id: &str| {
        named(
            id,
            snap.stages
                .iter()
                .find(|s| s.id == id)
                .map(|s| s.name.as_str()),
        )
    };
    let product = d.product_id.as_deref().map_or(Value::Null, |id| {
        named(
            id,
            snap.products
                .iter()
                .find(|p| p.id == id)
                .and_then(|p| p.name.as_deref()),
        )
    });
    let previous = c.previous.as_ref().map_or(Value::Null, |p| {
        json!({
            "status": p.status.as_str(),
            "origin": origin(&p.origin_id),
            "stage": stage(&p.stage_id),
            "owner": names.user(p.owner_id.as_deref()),
        })
    });
    json!({
        "deal": {
            "id": d.id,
            "version": d.version,
            "status": d.status.as_str(),
            "origin": origin(&d.origin_id),
            "stage": stage(&d.stage_id),
            "group": named(&snap.group.id, Some(&snap.group.name)),
            "product": product,
            "value": d.value_cents.map(money::format),
            "currency": d.currency,
            "owner": names.user(d.owner_id.as_deref()),
            "lostReason": d.lost_reason,
            "contact": names.contact(&d.contact_id, full),
            "createdAt": iso(d.created_at),
            "closedAt": d.closed_at.map(iso),
        },
        "previous": previous,
        "cause": cause_data(&c.cause, names),
    })
}

fn cause_data(cause: &Cause, names: &Names) -> Value {
    let mut out = json!({"source": cause.source, "event": cause.event});
    if cause.source == "USER" {
        out["user"] = names.user(cause.user_id.as_deref());
    }
    if let Some(run) = &cause.import_run_id {
        out["importRunId"] = json!(run);
    }
    out
}

fn contact_data(c: &NewContact<'_>, names: &Names, full: bool) -> Value {
    json!({
        "contact": names.contact(&c.contact_id, full),
        "group": named(&c.snap.group.id, Some(&c.snap.group.name)),
    })
}
