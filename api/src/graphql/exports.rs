//! Exports of deals and contacts as CSV files (see `docs/privacy.md`): asking starts a
//! background job; the finished file is downloaded from `Export.downloadPath`.

use async_graphql::{Context, Enum, ID, Object};
use chrono::{DateTime, Utc};
use entity::{exports, tables::export};

use entity::audit::Change;

use super::{
    audited::Audited,
    context::ContextExt,
    error::ApiResult,
    pipeline::{ContactFilter, DealFilter},
    types::time,
};

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum ExportStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
}

pub struct Export(pub export::Model);

#[Object]
impl Export {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// DEALS or CONTACTS
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    async fn status(&self) -> ExportStatus {
        match self.0.status.as_str() {
            "RUNNING" => ExportStatus::Running,
            "SUCCEEDED" => ExportStatus::Succeeded,
            "FAILED" => ExportStatus::Failed,
            _ => ExportStatus::Queued,
        }
    }
    async fn rows(&self) -> i32 {
        i32::try_from(self.0.rows).unwrap_or(i32::MAX)
    }
    /// GET it with the same Bearer token; set once SUCCEEDED.
    async fn download_path(&self) -> Option<String> {
        (self.0.status == "SUCCEEDED").then(|| download_path(&self.0.id))
    }
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        time(self.0.created_at)
    }
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at.map(time)
    }
}

/// Where a finished export's file is served.
pub fn download_path(id: &str) -> String {
    format!("/exports/{id}/download")
}

#[derive(Default)]
pub struct ExportQuery;

#[Object]
impl ExportQuery {
    /// One of the caller's exports (admins: any of the account's).
    async fn export(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Export>> {
        Ok(Some(Export(
            exports::get(&ctx.app().db.conn, ctx.caller()?, &id).await?,
        )))
    }
}

#[derive(Default)]
pub struct ExportMutation;

/// Stores the export and enqueues its job; an export whose job cannot be enqueued fails
/// at once, with the reason.
async fn start(ctx: &Context<'_>, kind: &str, filter: exports::StoredFilter) -> ApiResult<Export> {
    let app = ctx.app();
    let caller = ctx.caller()?;
    let tx = Audited::begin(ctx).await?;
    let created = exports::start(tx.db(), caller, kind, filter).await?;
    let change = Change::new("export.started", "export", &created.id)
        .with(serde_json::json!({"kind": kind}));
    tx.commit(caller, change).await?;
    if let Err(err) = app.queue.enqueue_export(&created.id).await {
        tracing::error!(export = %created.id, error = %err, "cannot enqueue an export");
        exports::fail(&app.db.conn, &created.id, &err.to_string()).await?;
        return Ok(Export(
            exports::get(&app.db.conn, caller, &created.id).await?,
        ));
    }
    Ok(Export(created))
}

#[Object]
impl ExportMutation {
    /// Starts an export of the deals the caller may see under `filter`.
    async fn export_deals(
        &self,
        ctx: &Context<'_>,
        filter: Option<DealFilter>,
    ) -> ApiResult<Export> {
        let filter = entity::deals::DealFilter::from(filter.unwrap_or_default());
        start(ctx, "DEALS", (&filter).into()).await
    }

    /// Starts an export of the contacts the caller may see under `filter`.
    async fn export_contacts(
        &self,
        ctx: &Context<'_>,
        filter: Option<ContactFilter>,
    ) -> ApiResult<Export> {
        let filter = entity::contacts::ContactFilter::from(filter.unwrap_or_default());
        start(ctx, "CONTACTS", (&filter).into()).await
    }
}
