//! A buyer's data rights and the audit log (see `docs/privacy.md`): the access report,
//! erasure, and who changed what. Admins only.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{DomainError, audit, page::PageRequest, privacy, tables::audit_entry, tables::user};

use super::{
    audited::write,
    context::ContextExt,
    error::ApiResult,
    types::{PageInfo, User, time},
};

/// What an erasure removed.
#[derive(SimpleObject)]
pub struct ErasureReceipt {
    pub contact_id: ID,
    pub erased_at: DateTime<Utc>,
    pub deals_redacted: i32,
    pub deliveries_redacted: i32,
}

impl From<privacy::ErasureReceipt> for ErasureReceipt {
    fn from(r: privacy::ErasureReceipt) -> Self {
        let int = |n: i64| i32::try_from(n).unwrap_or(i32::MAX);
        ErasureReceipt {
            contact_id: ID(r.contact_id),
            erased_at: time(r.erased_at),
            deals_redacted: int(r.deals_redacted),
            deliveries_redacted: int(r.deliveries_redacted),
        }
    }
}

pub struct AuditEntry(pub audit_entry::Model);

#[Object]
impl AuditEntry {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn at(&self) -> DateTime<Utc> {
        time(self.0.at)
    }
    /// The user who acted; null for the command line and the system.
    async fn actor(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        let Some(id) = &self.0.actor_id else {
            return Ok(None);
        };
        Ok(ctx.load_scoped::<user::Entity>(id).await?.map(User))
    }
    /// e.g. integration.created, product.hottok_changed, visibility.changed, user.created, contact.erased
    async fn action(&self) -> &str {
        &self.0.action
    }
    async fn target_type(&self) -> &str {
        &self.0.target_type
    }
    async fn target_id(&self) -> Option<ID> {
        self.0.target_id.clone().map(ID)
    }
    /// JSON with what changed; never a secret's value.
    async fn details(&self) -> Option<&str> {
        self.0.details.as_deref()
    }
}

#[derive(SimpleObject)]
pub struct AuditEntryConnection {
    pub nodes: Vec<AuditEntry>,
    pub page_info: PageInfo,
    pub total_count: i64,
}

#[derive(InputObject, Default)]
pub struct AuditFilter {
    pub actor_id: Option<ID>,
    pub action: Option<String>,
}

#[derive(Default)]
pub struct PrivacyQuery;

#[Object]
impl PrivacyQuery {
    /// LGPD access: JSON of everything held about the buyer.
    async fn contact_data_report(&self, ctx: &Context<'_>, contact_id: ID) -> ApiResult<String> {
        let caller = ctx.caller()?;
        let txn = write(ctx).await?;
        let report = privacy::report(&*txn, caller, &contact_id).await?;
        txn.commit().await.map_err(DomainError::from)?;
        Ok(report)
    }

    #[graphql(complexity = "super::page_cost(first, child_complexity)")]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        filter: Option<AuditFilter>,
        #[graphql(default = 50)] first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<AuditEntryConnection> {
        let filter = filter.unwrap_or_default();
        let filter = audit::Filter {
            actor_id: filter.actor_id.map(|id| id.0),
            action: filter.action,
        };
        let mut page = PageRequest::parse(first, after.as_deref())?;
        page.count = ctx.look_ahead().field("totalCount").exists();
        let page = audit::page(&ctx.app().db.conn, ctx.caller()?, &filter, page).await?;
        let (page_info, total_count, nodes) = PageInfo::split(page, AuditEntry);
        Ok(AuditEntryConnection {
            nodes,
            page_info,
            total_count,
        })
    }
}

#[derive(Default)]
pub struct PrivacyMutation;

#[Object]
impl PrivacyMutation {
    /// Erases the buyer's personal data (LGPD art. 18); erasing again returns the same
    /// receipt.
    async fn erase_contact(
        &self,
        ctx: &Context<'_>,
        contact_id: ID,
        reason: String,
    ) -> ApiResult<ErasureReceipt> {
        let app = ctx.app();
        let caller = ctx.caller()?;
        // The erasure's own transaction nests in the request's write transaction.
        let txn = write(ctx).await?;
        let receipt = privacy::erase(&*txn, &app.keys, caller, &contact_id, &reason).await?;
        txn.commit().await.map_err(DomainError::from)?;
        Ok(receipt.into())
    }
}
