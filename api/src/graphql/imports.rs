//! Hotmart API credentials and retroactive imports (see `docs/import.md`).

use async_graphql::{Context, ID, InputObject, Object, Subscription};
use chrono::{DateTime, Utc};
use entity::{
    imports::{self, ImportStatus as DomainImportStatus, NewImport},
    integrations,
    tables::import_run,
};
use futures::Stream;

use entity::audit::Change;
use serde_json::json;

use super::{
    audited::Audited,
    context::ContextExt,
    error::{ApiError, ApiResult},
    types::{HotmartEvent, ImportStatus, Integration, domain_events, time},
};

pub struct ImportRun(pub import_run::Model);

#[Object]
impl ImportRun {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn integration(&self, ctx: &Context<'_>) -> ApiResult<Integration> {
        Ok(Integration(
            integrations::get(&ctx.app().db.conn, ctx.caller()?, &self.0.integration_id).await?,
        ))
    }
    async fn from(&self) -> DateTime<Utc> {
        time(self.0.range_from)
    }
    async fn to(&self) -> DateTime<Utc> {
        time(self.0.range_to)
    }
    #[graphql(complexity = "super::UNPAGED_LIST * child_complexity + 1")]
    /// The neutral events the run imports.
    async fn checkout_events(&self) -> ApiResult<Vec<super::types::CheckoutEvent>> {
        Ok(imports::events_of(&self.0)?
            .into_iter()
            .filter_map(entity::HotmartEvent::neutral)
            .map(Into::into)
            .collect())
    }
    #[graphql(complexity = "super::UNPAGED_LIST * child_complexity + 1")]
    async fn events(&self) -> ApiResult<Vec<HotmartEvent>> {
        Ok(imports::events_of(&self.0)?
            .into_iter()
            .map(Into::into)
            .collect())
    }
    #[graphql(complexity = "super::UNPAGED_LIST * child_complexity + 1")]
    async fn hotmart_product_ids(&self) -> Vec<String> {
        imports::product_ids_of(&self.0)
    }
    async fn label(&self) -> Option<&str> {
        self.0.label.as_deref()
    }
    async fn status(&self) -> ImportStatus {
        match self.0.status {
            DomainImportStatus::Queued => ImportStatus::Queued,
            DomainImportStatus::Running => ImportStatus::Running,
            DomainImportStatus::Succeeded => ImportStatus::Succeeded,
            DomainImportStatus::Failed => ImportStatus::Failed,
            DomainImportStatus::Canceled => ImportStatus::Canceled,
        }
    }
    async fn windows_total(&self) -> i64 {
        self.0.windows_total
    }
    async fn windows_done(&self) -> i64 {
        self.0.windows_done
    }
    async fn sales_seen(&self) -> i64 {
        self.0.sales_seen
    }
    async fn deals_created(&self) -> i64 {
        self.0.deals_created
    }
    async fn deals_updated(&self) -> i64 {
        self.0.deals_updated
    }
    async fn skipped(&self) -> i64 {
        self.0.skipped
    }
    async fn failed_sales(&self) -> i64 {
        self.0.failed_sales
    }
    async fn kind(&self) -> super::types::ImportKind {
        self.0.kind.into()
    }
    /// Sales this run found that no webhook had delivered.
    async fn healed(&self) -> i64 {
        self.0.healed
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

#[derive(InputObject)]
pub struct CredentialsInput {
    pub client_id: String,
    pub client_secret: String,
}

#[derive(InputObject)]
pub struct PlatformCredentialsInput {
    pub client_id: String,
    pub client_secret: String,
    /// Kiwify's account id.
    pub account_id: Option<String>,
}

#[derive(InputObject)]
pub struct StartCheckoutImportInput {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub events: Vec<super::types::CheckoutEvent>,
    /// Our product ids; all of the integration's products when absent.
    pub product_ids: Option<Vec<ID>>,
    pub label: Option<String>,
}

#[derive(InputObject)]
pub struct StartImportInput {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub events: Vec<HotmartEvent>,
    pub hotmart_product_ids: Option<Vec<String>>,
    pub label: Option<String>,
}

#[derive(InputObject)]
pub struct RefreshProductsInput {
    /// Only this product; all of the integration's products when absent.
    pub hotmart_product_id: Option<String>,
    /// A label to set on the refreshed products.
    pub label: Option<String>,
}

#[derive(Default)]
pub struct ImportQuery;

#[Object]
impl ImportQuery {
    async fn import_run(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<ImportRun>> {
        Ok(Some(ImportRun(
            imports::get(&ctx.app().db.conn, ctx.caller()?, &id).await?,
        )))
    }

    #[graphql(complexity = "super::UNPAGED_LIST * child_complexity + 1")]
    async fn import_runs(
        &self,
        ctx: &Context<'_>,
        integration_id: ID,
    ) -> ApiResult<Vec<ImportRun>> {
        let runs =
            imports::of_integration(&ctx.app().db.conn, ctx.caller()?, &integration_id).await?;
        Ok(runs.into_iter().map(ImportRun).collect())
    }
}

/// The platform's ids of products of an integration, named by our ids.
async fn platform_ids(
    ctx: &Context<'_>,
    integration_id: &str,
    ids: Vec<ID>,
) -> ApiResult<Vec<String>> {
    let mut platform_ids = Vec::with_capacity(ids.len());
    for id in ids {
        let product = entity::products::find(&ctx.app().db.conn, ctx.caller()?, &id)
            .await?
            .filter(|p| p.integration_id == integration_id)
            .ok_or_else(|| {
                entity::DomainError::bad_input("productIds", format!("no product {}", id.0))
            })?;
        platform_ids.push(product.hotmart_product_id);
    }
    Ok(platform_ids)
}

/// Enqueues the windows of a new run (a window not enqueued now is by the sweeper).
async fn enqueue_windows(app: &super::AppContext, windows: Vec<String>) {
    for window in windows {
        if let Err(err) = app.queue.enqueue_import_window(&window).await {
            tracing::warn!(error = %err, "cannot enqueue import window yet");
        }
    }
}

#[derive(InputObject)]
pub struct ReconciliationInput {
    pub enabled: bool,
    /// Minutes between runs (15 – 1440; default 60).
    pub every_minutes: Option<i32>,
    /// Hours each run looks back (1 – 720; default 72).
    pub lookback_hours: Option<i32>,
}

#[derive(Default)]
pub struct ImportMutation;

#[Object]
impl ImportMutation {
    /// Stores the Hotmart API credentials, encrypted; they are never returned.
    async fn set_hotmart_credentials(
        &self,
        ctx: &Context<'_>,
        integration_id: ID,
        input: CredentialsInput,
    ) -> ApiResult<Integration> {
        let app = ctx.app();
        let caller = ctx.caller()?;
        let tx = Audited::begin(ctx).await?;
        let integration = imports::set_credentials(
            tx.db(),
            &app.keys,
            caller,
            &integration_id,
            &input.client_id,
            &input.client_secret,
        )
        .await?;
        let change = Change::new("credentials.set", "integration", &integration.id);
        tx.commit(caller, change).await?;
        Ok(Integration(integration))
    }

    /// Stores the platform's API credentials (Kiwify's with the account id), encrypted.
    async fn set_checkout_credentials(
        &self,
        ctx: &Context<'_>,
        integration_id: ID,
        input: PlatformCredentialsInput,
    ) -> ApiResult<Integration> {
        let app = ctx.app();
        let caller = ctx.caller()?;
        let tx = Audited::begin(ctx).await?;
        let integration = entity::credentials::set_platform_credentials(
            tx.db(),
            &app.keys,
            caller,
            &integration_id,
            &input.client_id,
            &input.client_secret,
            input.account_id.as_deref(),
        )
        .await?;
        let change = Change::new("credentials.set", "integration", &integration.id);
        tx.commit(caller, change).await?;
        Ok(Integration(integration))
    }

    /// Starts a retroactive import by neutral events (Hotmart's sales history, Kiwify's
    /// sales list; Eduzz is refused).
    async fn start_import(
        &self,
        ctx: &Context<'_>,
        integration_id: ID,
        input: StartCheckoutImportInput,
    ) -> ApiResult<ImportRun> {
        let app = ctx.app();
        let caller = ctx.caller()?;
        let integration = entity::integrations::get(&app.db.conn, caller, &integration_id).await?;
        let events: Vec<entity::HotmartEvent> = input
            .events
            .into_iter()
            .map(|e| entity::HotmartEvent::of_neutral(e.into()))
            .collect();
        let products = match input.product_ids {
            Some(ids) => Some(platform_ids(ctx, &integration.id, ids).await?),
            None => None,
        };
        let tx = Audited::begin(ctx).await?;
        let (run, windows) = imports::start(
            tx.db(),
            &app.keys,
            caller,
            &integration_id,
            NewImport {
                from: input.from.timestamp_millis(),
                to: input.to.timestamp_millis(),
                events: &events,
                hotmart_product_ids: products.as_deref(),
                label: input.label.as_deref(),
            },
        )
        .await?;
        tx.commit(caller, import_started(&run)).await?;
        enqueue_windows(app, windows).await;
        Ok(ImportRun(run))
    }

    /// Turns scheduled reconciliation on (the first run is due at once) or off.
    async fn set_reconciliation(
        &self,
        ctx: &Context<'_>,
        integration_id: ID,
        input: ReconciliationInput,
    ) -> ApiResult<super::types::Integration> {
        let app = ctx.app();
        let settings = entity::reconciliation::Settings {
            enabled: input.enabled,
            every_minutes: input.every_minutes,
            lookback_hours: input.lookback_hours,
        };
        let details = json!({"enabled": input.enabled, "everyMinutes": input.every_minutes,
            "lookbackHours": input.lookback_hours});
        let caller = ctx.caller()?;
        let tx = Audited::begin(ctx).await?;
        let integration =
            entity::reconciliation::set(tx.db(), &app.keys, caller, &integration_id, settings)
                .await?;
        let change =
            Change::new("reconciliation.changed", "integration", &integration.id).with(details);
        tx.commit(caller, change).await?;
        Ok(super::types::Integration(integration))
    }

    /// Starts a reconciliation run at once (or returns the one still going).
    async fn reconcile_now(&self, ctx: &Context<'_>, integration_id: ID) -> ApiResult<ImportRun> {
        let app = ctx.app();
        let caller = ctx.caller()?;
        let tx = Audited::begin(ctx).await?;
        let (run, windows) =
            entity::reconciliation::now(tx.db(), &app.keys, caller, &integration_id).await?;
        tx.commit(
            caller,
            Change::new("reconciliation.started", "import_run", &run.id),
        )
        .await?;
        enqueue_windows(app, windows).await;
        Ok(ImportRun(run))
    }

    async fn start_hotmart_import(
        &self,
        ctx: &Context<'_>,
        integration_id: ID,
        input: StartImportInput,
    ) -> ApiResult<ImportRun> {
        let app = ctx.app();
        let events = domain_events(&input.events);
        let caller = ctx.caller()?;
        let tx = Audited::begin(ctx).await?;
        let (run, windows) = imports::start(
            tx.db(),
            &app.keys,
            caller,
            &integration_id,
            NewImport {
                from: input.from.timestamp_millis(),
                to: input.to.timestamp_millis(),
                events: &events,
                hotmart_product_ids: input.hotmart_product_ids.as_deref(),
                label: input.label.as_deref(),
            },
        )
        .await?;
        tx.commit(caller, import_started(&run)).await?;
        enqueue_windows(app, windows).await;
        Ok(ImportRun(run))
    }

    /// Refreshes product names, offers and plans from the Hotmart API in the background;
    /// each product then shows `refreshedAt`, or `refreshError` with the reason.
    async fn refresh_hotmart_products(
        &self,
        ctx: &Context<'_>,
        integration_id: ID,
        input: Option<RefreshProductsInput>,
    ) -> ApiResult<Integration> {
        let app = ctx.app();
        let input = input.unwrap_or(RefreshProductsInput {
            hotmart_product_id: None,
            label: None,
        });
        let (integration, label) = entity::products::plan_refresh(
            &app.db.conn,
            &app.keys,
            ctx.caller()?,
            &integration_id,
            input.hotmart_product_id.as_deref(),
            input.label.as_deref(),
        )
        .await?;
        app.queue
            .enqueue_refresh(
                &integration.id,
                input.hotmart_product_id.as_deref(),
                label.as_deref(),
            )
            .await
            .map_err(|err| {
                tracing::warn!(error = %err, "cannot enqueue product refresh");
                ApiError::new("INTERNAL", "the refresh could not be queued; try again")
            })?;
        Ok(Integration(integration))
    }

    async fn cancel_import(&self, ctx: &Context<'_>, id: ID) -> ApiResult<ImportRun> {
        let caller = ctx.caller()?;
        let tx = Audited::begin(ctx).await?;
        let run = imports::cancel(tx.db(), caller, &id).await?;
        tx.commit(
            caller,
            Change::new("import.cancelled", "import_run", &run.id),
        )
        .await?;
        Ok(ImportRun(run))
    }
}

#[derive(Default)]
pub struct ImportSubscription;

#[Subscription]
impl ImportSubscription {
    /// Emits the run whenever its status or counters change, until it ends.
    async fn import_run_updated(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<impl Stream<Item = ImportRun>> {
        let app = ctx.app().clone();
        let caller = ctx.caller().map_err(async_graphql::Error::from)?.clone();
        let session = ctx.data_opt::<crate::auth::SessionId>().cloned();
        let first = imports::get(&app.db.conn, &caller, &id)
            .await
            .map_err(|err| async_graphql::Error::from(ApiError::from(err)))?;
        let mut feed = app.live.run(&first);
        let mut check = tokio::time::interval(crate::live::SESSION_CHECK);
        Ok(async_stream::stream! {
            let mut last = first.clone();
            yield ImportRun(first);
            while !last.status.is_final() {
                let next = tokio::select! {
                    changed = feed.changed() => Some(changed.is_ok()),
                    _ = check.tick() => None,
                };
                if !app.still_signed_in(&caller, session.as_ref()).await {
                    break;
                }
                let open = match next {
                    None => continue,
                    Some(open) => open,
                };
                let current = feed.borrow_and_update().clone();
                if current != last {
                    last = current.clone();
                    yield ImportRun(current);
                }
                if !open {
                    break;
                }
            }
        })
    }
}

fn import_started(run: &import_run::Model) -> Change {
    Change::new("import.started", "import_run", &run.id).with(json!({
        "integrationId": run.integration_id,
        "from": time(run.range_from).to_rfc3339(),
        "to": time(run.range_to).to_rfc3339(),
        "label": run.label,
    }))
}
