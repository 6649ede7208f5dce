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

/// What a window job works with.
struct WindowWork<'a> {
    ctx: &'a JobContext,
    window: &'a import_window::Model,
    run: import_run::Model,
    snap: IntegrationSnapshot,
    client: HotmartClient,
    products: Vec<String>,
}

/// How paging through one status ended.
enum StatusEnd {
    Done,
    /// The run ended, or another run of the window took over: stop here.
    Stop,
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
    let statuses = imports::statuses_of(&run)?;
    let work = WindowWork {
        ctx,
        window,
        client: HotmartClient::new(&ctx.hotmart, credentials),
        products: imports::product_ids_of(&run),
        run,
        snap,
    };
    let mut cursor: imports::WindowCursor =
        (window.cursor_status.clone(), window.page_token.clone());
    for status in &statuses[resume_at(window, &statuses)..] {
        if let StatusEnd::Stop = work.import_status(status, &mut cursor).await? {
            return Ok(());
        }
    }
    imports::finish_window(db, window).await?;
    Ok(())
}

/// Where a window resumes: mid-status at its saved page, or after a status whose last
/// page was already applied.
fn resume_at(window: &import_window::Model, statuses: &[&str]) -> usize {
    let Some(status) = window.cursor_status.as_deref() else {
        return 0;
    };
    match statuses.iter().position(|x| *x == status) {
        Some(i) if window.page_token.is_some() => i,
        Some(i) => i + 1,
        None => 0,
    }
}

impl WindowWork<'_> {
    /// Pages through one `transaction_status`, from `cursor`. A status Hotmart refuses
    /// (400) is noted on the window and skipped: the other statuses still land.
    async fn import_status(
        &self,
        status: &str,
        cursor: &mut imports::WindowCursor,
    ) -> Result<StatusEnd, WindowError> {
        let db = &self.ctx.db.conn;
        let mut page_token = match cursor.0.as_deref() {
            Some(current) if current == status => cursor.1.clone(),
            _ => None,
        };
        loop {
            // A canceled or failed run stops at the next page.
            let current = import_run::Entity::find_by_id(self.run.id.clone())
                .one(db)
                .await?;
            if current.is_none_or(|r| r.status.is_final()) {
                return Ok(StatusEnd::Stop);
            }
            imports::touch_window(db, &self.window.id).await?;
            let page = match self.fetch_page(status, page_token.as_deref()).await {
                Err(HotmartError::Http {
                    status: 400,
                    detail,
                }) => {
                    let moved_to = (Some(status.to_owned()), None);
                    let note = format!("Hotmart refused transaction_status {status}: {detail}");
                    tracing::warn!(window = %self.window.id, "{note}");
                    if !imports::skip_status(db, &self.window.id, cursor, &moved_to, &note).await? {
                        return Ok(StatusEnd::Stop);
                    }
                    *cursor = moved_to;
                    return Ok(StatusEnd::Done);
                }
                page => page?,
            };
            let items = page["items"].as_array().cloned().unwrap_or_default();
            let next = page["page_info"]["next_page_token"]
                .as_str()
                .filter(|t| !t.is_empty())
                .map(str::to_owned);
            let moved_to: imports::WindowCursor = (Some(status.to_owned()), next.clone());
            if !self.apply_page(&items, cursor, &moved_to).await? {
                return Ok(StatusEnd::Stop);
            }
            *cursor = moved_to;
            page_token = next;
            if page_token.is_none() {
                return Ok(StatusEnd::Done);
            }
        }
    }

    async fn fetch_page(
        &self,
        status: &str,
        page_token: Option<&str>,
    ) -> Result<serde_json::Value, HotmartError> {
        let mut query = vec![
            ("max_results", PAGE_SIZE.to_owned()),
            ("start_date", self.window.range_from.to_string()),
            // Hotmart's end date is inclusive; windows are half-open.
            ("end_date", (self.window.range_to - 1).to_string()),
            ("transaction_status", status.to_owned()),
        ];
        if let [only] = self.products.as_slice() {
            query.push(("product_id", only.clone()));
        }
        if let Some(token) = page_token {
            query.push(("page_token", token.to_owned()));
        }
        self.client.get(SALES_HISTORY, &query).await
    }

    /// Applies a page as one group of the deal engine, with the window's cursor and the
    /// run's counters, in one transaction. False when another run of the window moved the
    /// cursor first (its page stands, not this one).
    async fn apply_page(
        &self,
        items: &[serde_json::Value],
        from: &imports::WindowCursor,
        to: &imports::WindowCursor,
    ) -> Result<bool, WindowError> {
        let (events, mut counts) = page_events(items, &self.products, now_ms());
        let group: Vec<_> = events
            .iter()
            .map(|sale| {
                let source = Source::Import {
                    run_id: self.run.id.clone(),
                    label: self.run.label.clone(),
                };
                (&self.snap, sale.incoming(source))
            })
            .collect();
        let txn = self.ctx.db.begin_write().await?;
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
        if !imports::advance_cursor(&*txn, &self.window.id, from, to).await? {
            txn.rollback().await?;
            return Ok(false);
        }
        imports::add_counts(&*txn, &self.run.id, counts).await?;
        txn.commit().await?;
        Ok(true)
    }
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
