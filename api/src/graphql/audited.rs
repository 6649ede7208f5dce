//! Set-up changes and their audit entries in one transaction (see `docs/privacy.md`,
//! "Audit log"): a mutation begins an [`Audited`] transaction, makes its change through
//! [`Audited::db`], and commits with the entry; an error drops it, rolling both back.

use async_graphql::Context;
use entity::{
    Caller, DomainError,
    audit::{self, Change},
    database::WriteTxn,
};
use sea_orm::DatabaseTransaction;

use super::{context::ContextExt, error::ApiResult};

pub struct Audited(WriteTxn);

/// The write transaction of a request someone waits for: on SQLite it goes before the
/// background writers (the process's one writer), which give way while it waits, as they
/// do for a webhook's acknowledgement.
pub async fn write(ctx: &Context<'_>) -> ApiResult<WriteTxn> {
    let db = &ctx.app().db;
    let _waiting = db.intake_ticket();
    Ok(db.begin_urgent_write().await.map_err(DomainError::from)?)
}

impl Audited {
    pub async fn begin(ctx: &Context<'_>) -> ApiResult<Self> {
        Ok(Audited(write(ctx).await?))
    }

    pub fn db(&self) -> &DatabaseTransaction {
        &self.0
    }

    /// Records `change` by `caller` and commits it with the change.
    pub async fn commit(self, caller: &Caller, change: Change) -> ApiResult<()> {
        audit::by(&*self.0, caller, change).await?;
        self.0.commit().await.map_err(DomainError::from)?;
        Ok(())
    }
}
