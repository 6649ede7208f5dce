//! The webhook inbox: every authentic delivery, as received (PRODUCT.md §3).

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::{
    DomainResult,
    page::{Cursor, Page, PageRequest},
    tables::webhook_delivery,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Processed,
    Duplicate,
    Ignored,
    Test,
    Failed,
    Rejected,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 7] = [
        Self::Pending,
        Self::Processed,
        Self::Duplicate,
        Self::Ignored,
        Self::Test,
        Self::Failed,
        Self::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Processed => "PROCESSED",
            Self::Duplicate => "DUPLICATE",
            Self::Ignored => "IGNORED",
            Self::Test => "TEST",
            Self::Failed => "FAILED",
            Self::Rejected => "REJECTED",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }
}

/// Deliveries of one integration, newest first. The caller must already have been
/// allowed to see the integration.
pub async fn page_of_integration(
    db: &impl ConnectionTrait,
    integration_id: &str,
    status: Option<DeliveryStatus>,
    page: PageRequest,
) -> DomainResult<Page<webhook_delivery::Model>> {
    use webhook_delivery::Column;
    let mut query =
        webhook_delivery::Entity::find().filter(Column::IntegrationId.eq(integration_id));
    if let Some(status) = status {
        query = query.filter(Column::Status.eq(status.as_str()));
    }
    let total = query.clone().count(db).await?;
    if let Some(after) = &page.after {
        query = query.filter(
            Condition::any().add(Column::ReceivedAt.lt(after.at)).add(
                Condition::all()
                    .add(Column::ReceivedAt.eq(after.at))
                    .add(Column::Id.lt(after.id.as_str())),
            ),
        );
    }
    let rows = query
        .order_by_desc(Column::ReceivedAt)
        .order_by_desc(Column::Id)
        .limit(page.first + 1)
        .all(db)
        .await?;
    Ok(Page::from_rows(rows, page.first, total, |row| Cursor {
        at: row.received_at,
        id: row.id.clone(),
    }))
}
