//! A buyer's data rights under the LGPD (see `docs/privacy.md`): the access report of
//! everything held about them, and erasure, which redacts them everywhere and leaves a
//! tombstone so their old sales are never re-created.

mod erase;
mod report;
pub mod scrub;

use std::collections::{BTreeSet, HashMap};

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};

pub use erase::{ErasureReceipt, erase};
pub use report::report;

use crate::{
    DomainResult,
    sale::event::SaleEvent,
    secrets::SecretKeys,
    tables::{contact, deal_event, webhook_delivery},
};

/// The tombstones of `accounts` with any of the keyed e-mail `hashes`: account, hash and
/// erasure time. Only tombstones have a hash, and the condition saying so lets the planner
/// use their partial index (`ix_contacts_tombstones`) instead of scanning every contact.
pub fn tombstones<'a>(
    accounts: impl IntoIterator<Item = &'a str>,
    hashes: impl IntoIterator<Item = &'a str>,
) -> sea_orm::Select<contact::Entity> {
    contact::Entity::find()
        .select_only()
        .columns([
            contact::Column::AccountId,
            contact::Column::EmailHash,
            contact::Column::ErasedAt,
        ])
        .filter(contact::Column::AccountId.is_in(accounts))
        .filter(contact::Column::EmailHash.is_not_null())
        .filter(contact::Column::EmailHash.is_in(hashes))
}

/// The reason a skipped event or delivery is given.
pub const BUYER_ERASED: &str = "buyer erased";

/// Per (account, normalised e-mail) asked about, when that buyer was erased: the
/// tombstones matching the keyed hashes of the e-mails (one query).
pub async fn erasures(
    db: &impl ConnectionTrait,
    keys: &SecretKeys,
    wanted: &[(&str, &str)],
) -> DomainResult<HashMap<(String, String), i64>> {
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let by_hash: HashMap<(&str, String), &str> = wanted
        .iter()
        .map(|(account, email)| ((*account, keys.buyer_hash(email)), *email))
        .collect();
    let accounts: BTreeSet<&str> = wanted.iter().map(|(a, _)| *a).collect();
    let hashes: BTreeSet<&str> = by_hash.keys().map(|(_, h)| h.as_str()).collect();
    let rows: Vec<(String, Option<String>, Option<i64>)> =
        tombstones(accounts, hashes).into_tuple().all(db).await?;
    let mut found = HashMap::new();
    for (account, hash, at) in rows {
        let (Some(hash), Some(at)) = (hash, at) else {
            continue;
        };
        if let Some(email) = by_hash.get(&(account.as_str(), hash)) {
            let latest = found
                .entry((account.clone(), (*email).to_owned()))
                .or_insert(at);
            *latest = (*latest).max(at);
        }
    }
    Ok(found)
}

/// Deliveries skipped because their buyer was erased (late ones, replays) are kept
/// without the buyer, as the erasure left the others: their payloads redacted by what
/// their own sales say of the buyer.
pub async fn redact_skipped(
    db: &impl ConnectionTrait,
    skipped: &[(&webhook_delivery::Model, &Vec<SaleEvent>)],
) -> DomainResult<()> {
    use sea_orm::ActiveValue::Set;
    for (delivery, sales) in skipped {
        let mut payload = delivery.payload.clone();
        for sale in sales.iter() {
            let b = &sale.buyer;
            let scrub = scrub::Scrubber::new(
                b.email.as_deref(),
                b.name.as_deref(),
                b.phone.as_deref(),
                b.document.as_deref(),
            );
            if let Some(redacted) = scrub.payload(&payload) {
                payload = redacted;
            }
        }
        if payload != delivery.payload {
            webhook_delivery::Entity::update(webhook_delivery::ActiveModel {
                id: Set(delivery.id.clone()),
                payload: Set(payload),
                ..Default::default()
            })
            .exec(db)
            .await?;
        }
    }
    Ok(())
}

/// The stored deliveries that name the buyer: those their events came from, and any
/// other of the account's whose body holds the e-mail (an ignored or failed one).
async fn deliveries_naming(
    db: &impl ConnectionTrait,
    contact: &contact::Model,
    email: Option<&str>,
) -> DomainResult<Vec<webhook_delivery::Model>> {
    use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
    let from_events: Vec<Option<String>> = deal_event::Entity::find()
        .select_only()
        .column(deal_event::Column::DeliveryId)
        .filter(deal_event::Column::AccountId.eq(contact.account_id.as_str()))
        .filter(deal_event::Column::ContactId.eq(contact.id.as_str()))
        .filter(deal_event::Column::DeliveryId.is_not_null())
        .into_tuple()
        .all(db)
        .await?;
    let ids: BTreeSet<String> = from_events.into_iter().flatten().collect();
    let mut naming = sea_orm::Condition::any();
    naming = naming.add(webhook_delivery::Column::Id.is_in(ids));
    if let Some(email) = email {
        let escaped = email
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let like = LikeExpr::new(format!("%{escaped}%")).escape('\\');
        naming = naming.add(Func::lower(Expr::col(webhook_delivery::Column::Payload)).like(like));
    }
    Ok(webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::AccountId.eq(contact.account_id.as_str()))
        .filter(naming)
        .all(db)
        .await?)
}
