//! Reading and working deals: lists with filters, timelines, manual assignment.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, Set,
};

use crate::{
    Caller, DomainError, DomainResult,
    engine::{apply::EventSource, fold::Effect},
    groups,
    hotmart_event::DealStatus,
    new_id, now_ms,
    page::{Cursor, Page, PageRequest},
    scope::{find_scoped, scoped},
    tables::{contact, contact_label, deal, deal_event, deal_ref},
    users,
};

#[derive(Debug, Clone, Default)]
pub struct DealFilter {
    pub group_id: Option<String>,
    pub origin_id: Option<String>,
    pub status: Option<DealStatus>,
    pub owner_id: Option<String>,
    pub product_id: Option<String>,
    pub contact_email: Option<String>,
    /// Deals whose contact has this label.
    pub label_id: Option<String>,
}

/// Deals the caller may see (members: only in groups visible to them), newest first.
pub async fn page(
    db: &impl ConnectionTrait,
    caller: &Caller,
    filter: DealFilter,
    page: PageRequest,
) -> DomainResult<Page<deal::Model>> {
    use deal::Column;
    let mut query = scoped::<deal::Entity>(caller);
    if let Some(visible) = groups::visible_ids(db, caller).await? {
        query = query.filter(Column::GroupId.is_in(visible));
    }
    if let Some(group) = &filter.group_id {
        query = query.filter(Column::GroupId.eq(group.as_str()));
    }
    if let Some(origin) = &filter.origin_id {
        query = query.filter(Column::OriginId.eq(origin.as_str()));
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
    crate::page::fetch(db, query, Column::CreatedAt, Column::Id, page, |d| Cursor {
        at: d.created_at,
        id: d.id.clone(),
    })
    .await
}

/// A deal the caller may see.
pub async fn get(
    db: &impl ConnectionTrait,
    caller: &Caller,
    id: &str,
) -> DomainResult<deal::Model> {
    let deal = find_scoped::<deal::Entity>(db, caller, id).await?;
    groups::get(db, caller, &deal.group_id)
        .await
        .map_err(|_| DomainError::NotFound("deal"))?;
    Ok(deal)
}

/// The visible deals of a contact.
pub async fn of_contact(
    db: &impl ConnectionTrait,
    caller: &Caller,
    contact_id: &str,
) -> DomainResult<Vec<deal::Model>> {
    let mut query = scoped::<deal::Entity>(caller).filter(deal::Column::ContactId.eq(contact_id));
    if let Some(visible) = groups::visible_ids(db, caller).await? {
        query = query.filter(deal::Column::GroupId.is_in(visible));
    }
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
        .filter_map(|r| r.reference.strip_prefix("tx:").map(str::to_owned))
        .collect())
}

/// Sets (or clears) a deal's owner. Admins may assign any visible deal; members only the
/// deals they own.
pub async fn assign(
    db: &impl ConnectionTrait,
    caller: &Caller,
    deal_id: &str,
    user_id: Option<&str>,
) -> DomainResult<deal::Model> {
    let deal = get(db, caller, deal_id).await?;
    if !caller.is_admin() && deal.owner_id.as_deref() != Some(caller.user_id.as_str()) {
        return Err(DomainError::forbidden(
            "members may only reassign deals they own",
        ));
    }
    let owner = match user_id {
        Some(id) => Some(
            users::resolve_ids(db, caller, "userId", &[id.to_owned()])
                .await?
                .remove(0),
        ),
        None => None,
    };
    let now = now_ms();
    deal_event::ActiveModel {
        id: Set(new_id()),
        account_id: Set(caller.account_id.clone()),
        group_id: Set(deal.group_id.clone()),
        contact_id: Set(deal.contact_id.clone()),
        // Outside every key's log: manual entries never take part in the fold.
        deal_key: Set(format!("user:{}", deal.id)),
        dedup_id: Set(new_id()),
        sale_key: Set(None),
        event: Set("ASSIGNED".into()),
        source: Set(EventSource::User),
        occurred_at: Set(now),
        data: Set("{}".into()),
        delivery_id: Set(None),
        import_run_id: Set(None),
        deal_id: Set(Some(deal.id.clone())),
        effect: Set(Some(Effect::Updated)),
        description: Set(Some(match &owner {
            Some(user) => format!("Assigned to {}", user.name),
            None => "Owner removed".to_owned(),
        })),
        recorded_at: Set(now),
    }
    .insert(db)
    .await?;
    let mut model = deal.into_active_model();
    model.owner_id = Set(owner.map(|u| u.id));
    model.updated_at = Set(now);
    Ok(model.update(db).await?)
}
