//! Import window jobs: page through Hotmart's sales history for one date window, one
//! transaction status at a time, and fold every sale through the deal engine. Each page
//! commits together with the window's cursor and the run's counters, so a restarted window
//! resumes at the page it was on and counters stay exact.

use entity::{
    engine::apply::{Applied, IntegrationSnapshot, Source, apply_group},
    imports::{self, ImportedSale, PageCounts, WindowStatus},
    now_ms,
    tables::{import_run, import_window},
};
use sea_orm::EntityTrait;

use crate::{
    deliveries::JobContext,
    hotmart::{HotmartClient, HotmartError},
};

pub const SALES_HISTORY: &str = "/payments/api/v1/sales/history";
const PAGE_SIZE: &str = "500";

#[derive(Debug, thiserror::Error)]
enum WindowError {
    #[error(transparent)]
    Hotmart(#[from] HotmartError),
    #[error(transparent)]
    Domain(#[from] entity::DomainError),
    #[error(transparent)]
    Db(#[from] sea_orm::DbErr),
}

pub async fn handle_window(ctx: &JobContext, window_id: &str) {
    let db = &ctx.db.conn;
    let window = match import_window::Entity::find_by_id(window_id.to_owned())
        .one(db)
        .await
    {
        Ok(Some(window))
            if matches!(window.status, WindowStatus::Pending | WindowStatus::Running) =>
        {
            window
        }
        Ok(_) => return,
        Err(err) => {
            tracing::warn!(window = window_id, error = %err, "cannot load import window; the sweeper will retry");
            return;
        }
    };
    match run_window(ctx, &window).await {
        Ok(()) => {}
        Err(WindowError::Hotmart(HotmartError::QueryTooSlow)) => split(ctx, &window).await,
        Err(err) => {
            tracing::error!(window = window_id, error = %err, "import window failed");
            if let Err(err) = imports::fail_window(db, &window, &err.to_string()).await {
                tracing::error!(error = %err, "cannot record import failure");
            }
        }
    }
}

async fn split(ctx: &JobContext, window: &import_window::Model) {
    let db = &ctx.db.conn;
    let Ok(Some(run)) = import_run::Entity::find_by_id(window.run_id.clone())
        .one(db)
        .await
    else {
        return;
    };
    match imports::split_window(db, window, &run).await {
        Ok(Some(halves)) => {
            for id in halves {
                if let Err(err) = ctx.queue.enqueue_import_window(&id).await {
                    tracing::warn!(error = %err, "cannot enqueue split window; the sweeper will");
                }
            }
        }
        Ok(None) => {
            let error = "Hotmart keeps answering 502 (query too slow) even for a one-hour window";
            let _ = imports::fail_window(db, window, error).await;
        }
        Err(err) => tracing::error!(error = %err, "cannot split import window"),
    }
}

async fn run_window(ctx: &JobContext, window: &import_window::Model) -> Result<(), WindowError> {
    let db = &ctx.db.conn;
    let Some(run) = import_run::Entity::find_by_id(window.run_id.clone())
        .one(db)
        .await?
    else {
        return Ok(());
    };
    if run.status.is_final() {
        return Ok(());
    }
    imports::mark_running(db, &run.id).await?;
    let snap = IntegrationSnapshot::load(db, &run.integration_id).await?;
    let credentials = imports::credentials(&ctx.keys, &snap.integration)?;
    let client = HotmartClient::new(&ctx.hotmart, credentials);
    let statuses = imports::statuses_of(&run)?;
    let products = imports::product_ids_of(&run);
    // Resume where the window stopped: mid-status at its saved page, or after a status
    // whose last page was already applied.
    let first = match (
        window.cursor_status.as_deref(),
        window.page_token.as_deref(),
    ) {
        (Some(status), token) => match statuses.iter().position(|x| *x == status) {
            Some(i) if token.is_some() => i,
            Some(i) => i + 1,
            None => 0,
        },
        (None, _) => 0,
    };
    let mut cursor: imports::WindowCursor =
        (window.cursor_status.clone(), window.page_token.clone());
    let mut page_token = window.page_token.clone();
    for status in &statuses[first..] {
        loop {
            // A canceled or failed run stops at the next page.
            let current = import_run::Entity::find_by_id(run.id.clone())
                .one(db)
                .await?;
            if current.is_none_or(|r| r.status.is_final()) {
                return Ok(());
            }
            imports::touch_window(db, &window.id).await?;
            let mut query = vec![
                ("max_results", PAGE_SIZE.to_owned()),
                ("start_date", window.range_from.to_string()),
                // Hotmart's end date is inclusive; windows are half-open.
                ("end_date", (window.range_to - 1).to_string()),
                ("transaction_status", (*status).to_owned()),
            ];
            if let [only] = products.as_slice() {
                query.push(("product_id", only.clone()));
            }
            if let Some(token) = &page_token {
                query.push(("page_token", token.clone()));
            }
            let page = client.get(SALES_HISTORY, &query).await?;
            let items = page["items"].as_array().cloned().unwrap_or_default();
            let next = page["page_info"]["next_page_token"]
                .as_str()
                .filter(|t| !t.is_empty())
                .map(str::to_owned);
            let (events, mut counts) = page_events(&items, &products, now_ms());
            let group: Vec<_> = events
                .iter()
                .map(|sale| {
                    let source = Source::Import {
                        run_id: run.id.clone(),
                        label: run.label.clone(),
                    };
                    (&snap, sale.incoming(source))
                })
                .collect();
            let txn = ctx.db.begin_write().await?;
            let outcome = apply_group(&*txn, &group).await?;
            for applied in &outcome.applied {
                match applied {
                    Applied::Applied { .. } => {}
                    Applied::Duplicate => counts.skipped += 1,
                    Applied::NoContact => counts.failed_sales += 1,
                }
            }
            counts.deals_created += outcome.deals_created as i64;
            counts.deals_updated += outcome.deals_updated as i64;
            let moved_to: imports::WindowCursor = (Some((*status).to_owned()), next.clone());
            if !imports::advance_cursor(&*txn, &window.id, &cursor, &moved_to).await? {
                // Another run of this window got here first; its page stands, not ours.
                txn.rollback().await?;
                return Ok(());
            }
            imports::add_counts(&*txn, &run.id, counts).await?;
            txn.commit().await?;
            cursor = moved_to;
            page_token = next;
            if page_token.is_none() {
                break;
            }
        }
    }
    imports::finish_window(db, window).await?;
    Ok(())
}

/// The importable sales of a page, and the counts of those that are not.
fn page_events(
    items: &[serde_json::Value],
    products: &[String],
    observed_at: i64,
) -> (Vec<ImportedSale>, PageCounts) {
    let mut counts = PageCounts::default();
    let mut sales = Vec::with_capacity(items.len());
    for sale in items {
        counts.sales_seen += 1;
        match imports::sale_event(sale, observed_at) {
            None => counts.failed_sales += 1,
            Some(s)
                if !s
                    .payload
                    .envelope
                    .product_id
                    .as_ref()
                    .is_some_and(|p| products.contains(p)) =>
            {
                counts.skipped += 1
            }
            Some(s) => sales.push(s),
        }
    }
    (sales, counts)
}

/// Re-enqueues windows of unfinished runs that nothing touched for a while (lost job, or
/// a restart): how an import resumes.
pub async fn sweep_windows(ctx: &JobContext) -> Result<usize, entity::DomainError> {
    let stale =
        imports::stale_windows(&ctx.db.conn, ctx.settings.stale_after.as_millis() as i64).await?;
    let mut requeued = 0;
    for window in stale {
        imports::touch_window(&ctx.db.conn, &window.id).await?;
        if ctx.queue.enqueue_import_window(&window.id).await.is_ok() {
            requeued += 1;
        }
    }
    Ok(requeued)
}
