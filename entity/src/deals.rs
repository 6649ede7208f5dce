//! Reading deals: lists with filters and search, timelines (people's actions on them are
//! in [`crate::work`]).

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::{
    Caller, DomainError, DomainResult, groups,
    page::{Cursor, Page, PageRequest},
    scope::scoped,
    tables::enums::DealStatus,
    tables::{contact, contact_label, deal, deal_event, deal_ref},
};

#[derive(Debug, Clone, Default)]
pub struct DealFilter {
    pub group_id: Option<String>,
    pub origin_id: Option<String>,
    pub stage_id: Option<String>,
    /// The buyer's name, e-mail or phone.
    pub search: Option<String>,
    pub status: Option<DealStatus>,
    pub owner_id: Option<String>,
    pub product_id: Option<String>,
    pub contact_email: Option<String>,
    /// Deals whose contact has this label.
    pub label_id: Option<String>,
}

/// Deals the caller may see (members: in groups visible to them, as the group's member
/// scope allows), newest first.
pub async fn page(
    db: &impl ConnectionTrait,
    caller: &Caller,
    filter: DealFilter,
    page: PageRequest,
) -> DomainResult<Page<deal::Model>> {
    let query = filtered(db, caller, &filter).await?;
    crate::page::fetch(
        db,
        query,
        deal::Column::CreatedAt,
        deal::Column::Id,
        page,
        |d| Cursor {
            at: d.created_at,
            id: d.id.clone(),
        },
    )
    .await
}

/// The deals the caller may see under `filter`, unordered: what [`page`] pages through.
pub async fn filtered(
    db: &impl ConnectionTrait,
    caller: &Caller,
    filter: &DealFilter,
) -> DomainResult<sea_orm::Select<deal::Entity>> {
    use deal::Column;
    let mut query = scoped::<deal::Entity>(caller).filter(groups::deal_condition(caller));
    if let Some(group) = &filter.group_id {
        query = query.filter(Column::GroupId.eq(group.as_str()));
    }
    if let Some(origin) = &filter.origin_id {
        query = query.filter(Column::OriginId.eq(origin.as_str()));
    }
    if let Some(stage) = &filter.stage_id {
        query = query.filter(Column::StageId.eq(stage.as_str()));
    }
    if let Some(status) = filter.status {
        query = query.filter(Column::Status.eq(status.as_str()));
    }
    if let Some(owner) = &filter.owner_id {
        query = query.filter(Column::OwnerId.eq(owner.as_str()));
    }
    if let Some(product) = &filter.product_id {
        query = query.filter(Column::ProductId.eq(product.as_str()));
    }
    by_contact(db, caller, filter, query).await
}

/// The filters on the deal's contact: e-mail, label and search.
async fn by_contact(
    db: &impl ConnectionTrait,
    caller: &Caller,
    filter: &DealFilter,
    mut query: sea_orm::Select<deal::Entity>,
) -> DomainResult<sea_orm::Select<deal::Entity>> {
    use deal::Column;
    if let Some(found) = crate::contacts::search(db, filter.search.as_deref()).await? {
        let mut contacts = sea_orm::sea_query::Query::select()
            .column((contact::Entity, contact::Column::Id))
            .from(contact::Entity)
            .and_where(contact::Column::AccountId.eq(caller.account_id.as_str()))
            .cond_where(found.condition)
            .to_owned();
        query = query.filter(if found.few {
            // Few contacts: read them, then their deals by index.
            Column::ContactId.in_subquery(contacts)
        } else {
            // Many: deals read in list order, each one's contact checked.
            sea_orm::sea_query::Expr::exists(
                contacts
                    .and_where(sea_orm::sea_query::ExprTrait::equals(
                        sea_orm::sea_query::Expr::col((contact::Entity, contact::Column::Id)),
                        (deal::Entity, Column::ContactId),
                    ))
                    .to_owned(),
            )
        });
    }
    if let Some(email) = &filter.contact_email {
        let email = email.trim().to_lowercase();
        let contact = scoped::<contact::Entity>(caller)
            .filter(contact::Column::Email.eq(email))
            .one(db)
            .await?;
        query = query.filter(Column::ContactId.eq(contact.map(|c| c.id).unwrap_or_default()));
    }
    if let Some(label_id) = &filter.label_id {
        query = query.filter(
            Column::ContactId.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(contact_label::Column::ContactId)
                    .from(contact_label::Entity)
                    .and_where(contact_label::Column::LabelId.eq(label_id.as_str()))
                    .and_where(contact_label::Column::AccountId.eq(caller.account_id.as_str()))
                    .to_owned(),
            ),
        );
    }
    Ok(query)
}

/// A deal the caller may see.
pub async fn get(
    db: &impl ConnectionTrait,
    caller: &Caller,
    id: &str,
) -> DomainResult<deal::Model> {
    scoped::<deal::Entity>(caller)
        .filter(deal::Column::Id.eq(id))
        .filter(groups::deal_condition(caller))
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("deal"))
}

/// The visible deals of a contact.
pub async fn of_contact(
    db: &impl ConnectionTrait,
    caller: &Caller,
    contact_id: &str,
) -> DomainResult<Vec<deal::Model>> {
    let query = scoped::<deal::Entity>(caller)
        .filter(deal::Column::ContactId.eq(contact_id))
        .filter(groups::deal_condition(caller));
    Ok(query.order_by_desc(deal::Column::CreatedAt).all(db).await?)
}

/// Every event that touched a deal, oldest first.
pub async fn timeline(
    db: &impl ConnectionTrait,
    deal_id: &str,
) -> DomainResult<Vec<deal_event::Model>> {
    Ok(deal_event::Entity::find()
        .filter(deal_event::Column::DealId.eq(deal_id))
        .order_by_asc(deal_event::Column::OccurredAt)
        .order_by_asc(deal_event::Column::RecordedAt)
        .all(db)
        .await?)
}

/// Hotmart transaction codes a deal holds.
pub async fn transactions(db: &impl ConnectionTrait, deal_id: &str) -> DomainResult<Vec<String>> {
    let refs = deal_ref::Entity::find()
        .filter(deal_ref::Column::DealId.eq(deal_id))
        .order_by_asc(deal_ref::Column::Reference)
        .all(db)
        .await?;
    Ok(refs
        .into_iter()
        .filter_map(|r| {
            let id = r.reference.strip_prefix("tx:")?;
            // Other platforms' ids carry the platform's name; carts are not sales.
            let id = ["kiwify:", "eduzz:"]
                .iter()
                .find_map(|p| id.strip_prefix(p))
                .unwrap_or(id);
            (!id.starts_with("cart:")).then(|| id.to_owned())
        })
        .collect())
}

/// Deals of a group the caller may see changed at or after `since` (ms), oldest change
/// first, at most `limit` (the live board's feed).
pub async fn changed_since(
    db: &impl ConnectionTrait,
    caller: &Caller,
    group_id: &str,
    since: i64,
    limit: u64,
) -> DomainResult<Vec<deal::Model>> {
    use sea_orm::QuerySelect;
    Ok(scoped::<deal::Entity>(caller)
        .filter(deal::Column::GroupId.eq(group_id))
        .filter(deal::Column::UpdatedAt.gte(since))
        .filter(groups::deal_condition(caller))
        .order_by_asc(deal::Column::UpdatedAt)
        .order_by_asc(deal::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

/// How many deals the caller may see have `column = id` (an origin's, a stage's), with
/// `status` when given.
/// The deals the caller sees per value of `column` among `ids` (origins or stages), in
/// one grouped query; ids with no deal are absent.
pub async fn count_by(
    db: &impl ConnectionTrait,
    caller: &Caller,
    column: deal::Column,
    ids: &[String],
    status: Option<DealStatus>,
) -> DomainResult<std::collections::HashMap<String, u64>> {
    use sea_orm::QuerySelect;
    let mut query = scoped::<deal::Entity>(caller)
        .filter(column.is_in(ids.iter().map(String::as_str)))
        .filter(groups::deal_condition(caller));
    if let Some(status) = status {
        query = query.filter(deal::Column::Status.eq(status.as_str()));
    }
    let rows: Vec<(Option<String>, i64)> = query
        .select_only()
        .column(column)
        .column_as(deal::Column::Id.count(), "n")
        .group_by(column)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, n)| Some((id?, n.max(0) as u64)))
        .collect())
}

pub async fn count_where(
    db: &impl ConnectionTrait,
    caller: &Caller,
    column: deal::Column,
    id: &str,
    status: Option<DealStatus>,
) -> DomainResult<u64> {
    use sea_orm::PaginatorTrait;
    let mut query = scoped::<deal::Entity>(caller)
        .filter(column.eq(id))
        .filter(groups::deal_condition(caller));
    if let Some(status) = status {
        query = query.filter(deal::Column::Status.eq(status.as_str()));
    }
    Ok(query.count(db).await?)
}
