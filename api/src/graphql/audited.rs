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

impl Audited {
    /// Someone waits for the answer: on SQLite it goes before background writers.
    pub async fn begin(ctx: &Context<'_>) -> ApiResult<Self> {
        let txn = ctx
            .app()
            .db
            .begin_urgent_write()
            .await
            .map_err(DomainError::from)?;
        Ok(Audited(txn))
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
