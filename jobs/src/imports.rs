//! Import window jobs: page through Hotmart's sales history for one date window, one
//! transaction status at a time, and fold every sale through the deal engine. Each page
//! commits together with the window's cursor and the run's counters, so a restarted window
//! resumes at the page it was on and counters stay exact.

use std::collections::HashMap;

use crate::import_pages::ImportedPage;
use entity::{
    engine::apply::IntegrationSnapshot,
    hotmart::{
        payload::ContactData,
        rest::{self, RestSubscription, SubscriptionIndex},
    },
    imports::{self, ImportedSale, PageCounts, SaleExtras, WindowStatus},
    now_ms,
    tables::{import_run, import_window},
};
use sea_orm::EntityTrait;

use crate::{
    context::JobContext,
    hotmart::{HotmartClient, HotmartError},
};

pub const SALES_HISTORY: &str = "/payments/api/v1/sales/history";
pub const SALES_USERS: &str = "/payments/api/v1/sales/users";
pub const SUBSCRIPTIONS: &str = "/payments/api/v1/subscriptions";
const PAGE_SIZE: &str = "500";
/// The explicit old `accession_date` of subscription queries (Hotmart's default is 30
/// days back): 2000-01-01.
const OLD_ACCESSION_MS: i64 = 946_684_800_000;
/// A guard against a list whose page tokens never end.
const MAX_PAGES: usize = 2_000;

#[derive(Debug, thiserror::Error)]
enum WindowError {
    #[error(transparent)]
    Hotmart(#[from] HotmartError),
    #[error(transparent)]
    Kiwify(#[from] crate::kiwify::KiwifyError),
    #[error(transparent)]
    Domain(#[from] entity::DomainError),
    #[error(transparent)]
    Db(#[from] sea_orm::DbErr),
}

/// Runs one window job; `true` when the window was handed over because the process is
/// shutting down (the job must then not be acknowledged).
pub async fn handle_window(ctx: &JobContext, window_id: &str) -> bool {
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
        Ok(_) => return false,
        Err(err) => {
            tracing::warn!(window = window_id, error = %err, "cannot load import window; the sweeper will retry");
            return false;
        }
    };
    match run_window(ctx, &window).await {
        Ok(end) => return end == WindowEnd::HandedOver,
        Err(WindowError::Hotmart(HotmartError::QueryTooSlow)) => split(ctx, &window).await,
        Err(err) => {
            tracing::error!(window = window_id, error = %err, "import window failed");
            if let Err(err) = imports::fail_window(db, &window, &err.to_string()).await {
                tracing::error!(error = %err, "cannot record import failure");
            }
        }
    }
    false
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
    events: Vec<entity::HotmartEvent>,
    /// The subscriptions started before the window ends.
    subscriptions: SubscriptionIndex,
}

/// How paging through one status ended.
enum StatusEnd {
    Done,
    /// The run ended, or another run of the window took over: stop here.
    Stop,
    /// The process is shutting down: the window goes back to the queue and resumes from
    /// its cursor in the next process.
    HandOver,
    /// Another account's window waited for a slot: this one gave its slot up after the
    /// page and waits again behind it ([`JobContext::gave_way`]).
    GaveWay,
}

async fn run_window(
    ctx: &JobContext,
    window: &import_window::Model,
) -> Result<WindowEnd, WindowError> {
    let db = &ctx.db.conn;
    let Some(run) = import_run::Entity::find_by_id(window.run_id.clone())
        .one(db)
        .await?
    else {
        return Ok(WindowEnd::Finished);
    };
    if run.status.is_final() {
        return Ok(WindowEnd::Finished);
    }
    imports::mark_running(db, &run.id).await?;
    let snap = IntegrationSnapshot::load(db, &run.integration_id).await?;
    if entity::platform::Platform::of(&snap.integration) == entity::platform::Platform::Kiwify {
        return Ok(
            match crate::kiwify::run_window(ctx, window, &run, &snap).await? {
                true => WindowEnd::HandedOver,
                false => WindowEnd::Finished,
            },
        );
    }
    let credentials = imports::credentials(&ctx.keys, &snap.integration)?;
    let statuses = imports::statuses_of(&run)?;
    let mut work = WindowWork {
        ctx,
        window,
        client: HotmartClient::new(&ctx.hotmart, credentials, ctx.db.clone()),
        products: imports::product_ids_of(&run),
        events: imports::events_of(&run)?,
        run,
        snap,
        subscriptions: SubscriptionIndex::default(),
    };
    work.subscriptions = work.load_subscriptions().await?;
    let mut cursor: imports::WindowCursor =
        (window.cursor_status.clone(), window.page_token.clone());
    for status in &statuses[resume_at(window, &statuses)..] {
        match work.import_status(status, &mut cursor).await? {
            StatusEnd::Done => {}
            StatusEnd::Stop => return Ok(WindowEnd::Finished),
            StatusEnd::HandOver => return Ok(WindowEnd::HandedOver),
            StatusEnd::GaveWay => return Ok(WindowEnd::Finished),
        }
    }
    work.finish().await?;
    Ok(WindowEnd::Finished)
}

/// How a window job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WindowEnd {
    /// Done, or nothing left to do (the run ended, or the window failed).
    Finished,
    /// The process is shutting down: the window resumes from its cursor in the next one.
    HandedOver,
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
            if self.ctx.is_stopping() {
                return Ok(StatusEnd::HandOver);
            }
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
            self.ctx.telemetry.imported_sales(items.len() as u64);
            let buyers = self.fetch_buyers(status, &items).await?;
            let next = entity::hotmart::rest::next_page_token(&page);
            let moved_to: imports::WindowCursor = (Some(status.to_owned()), next.clone());
            let (events, counts) = self.page_events(&items, &buyers, now_ms());
            if !self.apply_page(&events, counts, cursor, &moved_to).await? {
                return Ok(StatusEnd::Stop);
            }
            *cursor = moved_to;
            page_token = next;
            if page_token.is_none() {
                return Ok(StatusEnd::Done);
            }
            if self.ctx.gave_way(self.window).await? {
                return Ok(StatusEnd::GaveWay);
            }
        }
    }

    /// The filters of a sales query over `[from, to]` (both inclusive, as Hotmart's are).
    fn sales_query(&self, status: &str, from: i64, to: i64) -> Vec<(&'static str, String)> {
        let mut query = vec![
            ("max_results", PAGE_SIZE.to_owned()),
            ("start_date", from.to_string()),
            ("end_date", to.to_string()),
            ("transaction_status", status.to_owned()),
        ];
        if let [only] = self.products.as_slice() {
            query.push(("product_id", only.clone()));
        }
        query
    }

    async fn fetch_page(
        &self,
        status: &str,
        page_token: Option<&str>,
    ) -> Result<serde_json::Value, HotmartError> {
        // Hotmart's end date is inclusive; windows are half-open.
        let mut query = self.sales_query(status, self.window.range_from, self.window.range_to - 1);
        if let Some(token) = page_token {
            query.push(("page_token", token.to_owned()));
        }
        self.client.get(SALES_HISTORY, &query).await
    }

    /// The buyers (phone, document) of a page of Sales History, from `/sales/users` with
    /// the same filters narrowed to the page's order dates: about one call per page, not
    /// one per sale. A sale it does not list keeps the history's buyer.
    async fn fetch_buyers(
        &self,
        status: &str,
        items: &[serde_json::Value],
    ) -> Result<HashMap<String, ContactData>, HotmartError> {
        let dates = || {
            items
                .iter()
                .filter_map(|s| s["purchase"]["order_date"].as_i64())
        };
        let (Some(first), Some(last)) = (dates().min(), dates().max()) else {
            return Ok(HashMap::new());
        };
        let from = first.max(self.window.range_from);
        let to = last.min(self.window.range_to - 1).max(from);
        let users = self
            .client
            .get_all(SALES_USERS, &self.sales_query(status, from, to), MAX_PAGES)
            .await;
        Ok(self
            .unless_refused(users, "/sales/users")?
            .map(|users| rest::buyers(&users))
            .unwrap_or_default())
    }

    /// Every subscription started before the window ends (from an explicit old accession
    /// date: Hotmart's default is 30 days back). A refusal leaves sales without their
    /// subscription code rather than failing the window.
    async fn load_subscriptions(&self) -> Result<SubscriptionIndex, HotmartError> {
        let mut query = vec![
            ("max_results", PAGE_SIZE.to_owned()),
            ("accession_date", OLD_ACCESSION_MS.to_string()),
            ("end_accession_date", (self.window.range_to - 1).to_string()),
        ];
        if let [only] = self.products.as_slice() {
            query.push(("product_id", only.clone()));
        }
        let items = self.client.get_all(SUBSCRIPTIONS, &query, MAX_PAGES).await;
        Ok(self
            .unless_refused(items, "/subscriptions")?
            .map(|items| {
                SubscriptionIndex::new(items.iter().filter_map(RestSubscription::of).collect())
            })
            .unwrap_or_default())
    }

    /// A list that only completes the sales: Hotmart refusing it (4xx) is noted and the
    /// window goes on without it (`None`); other errors fail as usual.
    fn unless_refused(
        &self,
        answer: Result<Vec<serde_json::Value>, HotmartError>,
        list: &str,
    ) -> Result<Option<Vec<serde_json::Value>>, HotmartError> {
        match answer {
            Ok(items) => Ok(Some(items)),
            Err(HotmartError::Http { status, detail }) if (400..500).contains(&status) => {
                tracing::warn!(window = %self.window.id, status, detail, list, "Hotmart refused a list that completes sales; going on without it");
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }

    /// The subscription events of the window (cancellations dated inside it; overdue
    /// subscriptions started inside it) of the run's events and products.
    fn subscription_events(&self, observed_at: i64) -> Vec<ImportedSale> {
        let inside = |at: Option<i64>| {
            at.is_some_and(|at| (self.window.range_from..self.window.range_to).contains(&at))
        };
        self.subscriptions
            .subscriptions
            .iter()
            .filter(|s| s.event().is_some_and(|e| self.events.contains(&e)))
            .filter(|s| {
                s.product_id
                    .as_ref()
                    .is_some_and(|p| self.products.contains(p))
            })
            .filter(|s| match s.event() {
                Some(entity::HotmartEvent::SubscriptionCancellation) => {
                    inside(s.cancelled_at.or(s.accession_at))
                }
                _ => inside(s.accession_at),
            })
            .filter_map(|s| imports::subscription_event(s, observed_at))
            .collect()
    }

    /// Ends the window: its subscription events land together with its end, so a
    /// restarted window neither loses nor counts them twice.
    async fn finish(&self) -> Result<(), WindowError> {
        let events = self.subscription_events(now_ms());
        let counts = PageCounts {
            sales_seen: events.len() as i64,
            ..PageCounts::default()
        };
        let page = ImportedPage {
            snap: &self.snap,
            run: &self.run,
            window_id: &self.window.id,
        };
        let txn = self.ctx.db.begin_write().await?;
        let counts = page
            .apply_events(&*txn, &self.ctx.keys, &events, counts)
            .await?;
        if !imports::finish_window(&*txn, self.window).await? {
            txn.rollback().await?;
            return Ok(());
        }
        imports::add_counts(&*txn, &self.run.id, counts).await?;
        txn.commit().await?;
        self.ctx.telemetry.healed_sales(counts.healed as u64);
        Ok(())
    }

    /// The importable sales of a page with their buyers and subscriptions, and the
    /// counts of those that are not importable.
    fn page_events(
        &self,
        items: &[serde_json::Value],
        buyers: &HashMap<String, ContactData>,
        observed_at: i64,
    ) -> (Vec<ImportedSale>, PageCounts) {
        let mut counts = PageCounts::default();
        let mut sales = Vec::with_capacity(items.len());
        for sale in items {
            counts.sales_seen += 1;
            let transaction = sale["purchase"]["transaction"].as_str().unwrap_or_default();
            let extras = SaleExtras {
                buyer: buyers.get(transaction),
                subscription: self.subscriptions.of_sale(sale),
            };
            match imports::sale_event(sale, extras, observed_at) {
                None => counts.failed_sales += 1,
                Some(s)
                    if !s
                        .payload
                        .product_id
                        .as_ref()
                        .is_some_and(|p| self.products.contains(p)) =>
                {
                    counts.skipped += 1
                }
                Some(s) => sales.push(s),
            }
        }
        (sales, counts)
    }

    /// Applies a page as one group of the deal engine, with the window's cursor and the
    /// run's counters, in one transaction. False when another run of the window moved the
    /// cursor first (its page stands, not this one).
    async fn apply_page(
        &self,
        events: &[ImportedSale],
        counts: PageCounts,
        from: &imports::WindowCursor,
        to: &imports::WindowCursor,
    ) -> Result<bool, WindowError> {
        let page = ImportedPage {
            snap: &self.snap,
            run: &self.run,
            window_id: &self.window.id,
        };
        Ok(page.apply(self.ctx, events, counts, from, to).await?)
    }
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

/// Starts the reconciliations that are due, each due time taken by one process (see
/// `entity::reconciliation`); how many started.
pub async fn start_due_reconciliations(ctx: &JobContext) -> Result<usize, entity::DomainError> {
    let mut started = 0;
    for integration in entity::reconciliation::take_due(&ctx.db.conn).await? {
        let Some((run, windows)) =
            entity::reconciliation::start(&ctx.db.conn, &integration).await?
        else {
            continue;
        };
        tracing::info!(run = %run.id, integration = %integration.id, "reconciliation started");
        for window in windows {
            if let Err(err) = ctx.queue.enqueue_import_window(&window).await {
                tracing::warn!(error = %err, "cannot enqueue a reconciliation window yet");
            }
        }
        started += 1;
    }
    Ok(started)
}
