//! Retroactive imports of past sales (`docs/import.md`): runs split into date windows, each
//! processed by one job that pages through Hotmart's sales history.

pub use crate::tables::enums::{ImportKind, ImportStatus, WindowStatus};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder, Set, sea_query::Expr,
};

use crate::{
    Caller, DomainError, DomainResult, HotmartEvent,
    engine::apply::Dating,
    hotmart::{details::DealDetails, payload::ContactData, rest::RestSubscription},
    hotmart_event::{decode_events, encode_events},
    integrations, labels, new_id, now_ms,
    platform::Platform,
    sale::event::SaleEvent,
    scope::{find_scoped, scoped},
    secrets::SecretKeys,
    tables::{import_run, import_window, integration, product},
};

pub const DEFAULT_WINDOW_MS: i64 = 30 * 86_400_000;
pub const MAX_RANGE_MS: i64 = 5 * 366 * 86_400_000;
/// Windows are not split below this when Hotmart answers 502 (query too slow).
pub const MIN_WINDOW_MS: i64 = 3_600_000;

/// The Sales API `transaction_status` values that report each importable event.
pub fn statuses_for(event: HotmartEvent) -> &'static [&'static str] {
    use HotmartEvent::*;
    match event {
        PurchaseApproved => &["APPROVED"],
        PurchaseComplete => &["COMPLETE"],
        PurchaseCanceled => &["CANCELLED"],
        PurchaseRefunded => &["REFUNDED", "PARTIALLY_REFUNDED"],
        PurchaseChargeback => &["CHARGEBACK"],
        PurchaseProtest => &["PROTESTED"],
        PurchaseExpired => &["EXPIRED"],
        PurchaseDelayed => &["OVERDUE"],
        PurchaseBilletPrinted => &["PRINTED_BILLET", "WAITING_PAYMENT"],
        _ => &[],
    }
}

/// Whether an import can find an event: in the sales history, or (cancellations and
/// overdue charges of subscriptions) in the subscriptions list.
pub fn is_importable(event: HotmartEvent) -> bool {
    !statuses_for(event).is_empty() || event == HotmartEvent::SubscriptionCancellation
}

/// Whether an import of `platform` can find an event (named by its Hotmart name, as runs
/// store them).
pub fn can_import(platform: Platform, event: HotmartEvent) -> bool {
    match platform {
        Platform::Hotmart => is_importable(event),
        other => event.neutral().is_some_and(|n| other.can_import(n)),
    }
}

/// The event a Sales API status stands for (both spellings accepted).
pub fn event_for_status(status: &str) -> Option<HotmartEvent> {
    use HotmartEvent::*;
    Some(match status {
        "APPROVED" => PurchaseApproved,
        "COMPLETE" | "COMPLETED" => PurchaseComplete,
        "CANCELLED" | "CANCELED" => PurchaseCanceled,
        "REFUNDED" | "PARTIALLY_REFUNDED" => PurchaseRefunded,
        "CHARGEBACK" => PurchaseChargeback,
        "PROTESTED" | "DISPUTE" => PurchaseProtest,
        "EXPIRED" => PurchaseExpired,
        "OVERDUE" | "DELAYED" => PurchaseDelayed,
        "PRINTED_BILLET" | "BILLET_PRINTED" | "WAITING_PAYMENT" => PurchaseBilletPrinted,
        _ => return None,
    })
}

pub use crate::credentials::{Credentials, credentials, set_credentials};

pub struct NewImport<'a> {
    pub from: i64,
    pub to: i64,
    pub events: &'a [HotmartEvent],
    pub hotmart_product_ids: Option<&'a [String]>,
    pub label: Option<&'a str>,
}

/// The range is ordered, at most 5 years long and not in the future; the events are
/// importable.
fn check_range_and_events(platform: Platform, input: &NewImport<'_>) -> DomainResult<()> {
    if platform == Platform::Eduzz {
        return Err(DomainError::bad_input(
            "integrationId",
            "imports from Eduzz are not available: its sales API cannot be read yet",
        ));
    }
    if input.from >= input.to {
        return Err(DomainError::bad_input("from", "must be before `to`"));
    }
    if input.to - input.from > MAX_RANGE_MS {
        return Err(DomainError::bad_input(
            "to",
            "the range may cover at most 5 years",
        ));
    }
    if input.to > now_ms() + 86_400_000 {
        return Err(DomainError::bad_input("to", "must not be in the future"));
    }
    if input.events.is_empty() {
        return Err(DomainError::bad_input(
            "events",
            "select at least one event",
        ));
    }
    if let Some(bad) = input.events.iter().find(|e| !can_import(platform, **e)) {
        let name = match platform {
            Platform::Hotmart => bad.as_str(),
            _ => bad.neutral().map_or(bad.as_str(), |n| n.as_str()),
        };
        return Err(DomainError::bad_input(
            "events",
            format!(
                "{name} cannot be imported: {}'s sales lists do not report it",
                platform.title()
            ),
        ));
    }
    Ok(())
}

/// The Hotmart product ids a run imports: those asked for (each registered in the
/// integration), else every registered product.
fn products_to_import(
    products: &[product::Model],
    asked: Option<&[String]>,
) -> DomainResult<Vec<String>> {
    match asked {
        Some(ids) if !ids.is_empty() => {
            if let Some(id) = ids
                .iter()
                .find(|id| !products.iter().any(|p| &p.hotmart_product_id == *id))
            {
                return Err(DomainError::bad_input(
                    "hotmartProductIds",
                    format!("product {id} is not registered in this integration"),
                ));
            }
            Ok(ids.to_vec())
        }
        _ if products.is_empty() => Err(DomainError::bad_input(
            "hotmartProductIds",
            "register a product first",
        )),
        _ => Ok(products
            .iter()
            .map(|p| p.hotmart_product_id.clone())
            .collect()),
    }
}

/// Validates and creates a run with its windows; returns the run and the window ids to enqueue.
pub async fn start(
    db: &impl ConnectionTrait,
    keys: &SecretKeys,
    caller: &Caller,
    integration_id: &str,
    input: NewImport<'_>,
) -> DomainResult<(import_run::Model, Vec<String>)> {
    let integration = integrations::get(db, caller, integration_id).await?;
    let platform = Platform::of(&integration);
    check_range_and_events(platform, &input)?;
    let credentials = credentials(keys, &integration)?;
    if platform == Platform::Kiwify && credentials.account_id.is_none() {
        return Err(DomainError::bad_input(
            "integrationId",
            "set Kiwify's API credentials with the account id first",
        ));
    }
    let products = crate::products::of_integration(db, &integration.id).await?;
    let product_ids = products_to_import(&products, input.hotmart_product_ids)?;
    let label = match labels::optional_label_name("label", input.label)? {
        Some(name) => Some(labels::ensure(db, caller, "label", &name).await?.name),
        None => None,
    };
    let spec = RunSpec {
        from: input.from,
        to: input.to,
        events: input.events,
        product_ids,
        label,
        kind: ImportKind::Manual,
    };
    create_run(db, &integration, spec).await
}

/// What a run covers.
pub struct RunSpec<'a> {
    pub from: i64,
    pub to: i64,
    pub events: &'a [HotmartEvent],
    pub product_ids: Vec<String>,
    pub label: Option<String>,
    pub kind: ImportKind,
}

/// The Hotmart product ids of every product of the integration.
pub async fn all_product_ids(
    db: &impl ConnectionTrait,
    integration: &integration::Model,
) -> DomainResult<Vec<String>> {
    let products = crate::products::of_integration(db, &integration.id).await?;
    Ok(products.into_iter().map(|p| p.hotmart_product_id).collect())
}

/// Creates a run of `integration` with its windows (checked by the caller); the run and
/// the window ids to enqueue.
pub async fn create_run(
    db: &impl ConnectionTrait,
    integration: &integration::Model,
    spec: RunSpec<'_>,
) -> DomainResult<(import_run::Model, Vec<String>)> {
    let run = import_run::ActiveModel {
        id: Set(new_id()),
        account_id: Set(integration.account_id.clone()),
        integration_id: Set(integration.id.clone()),
        range_from: Set(spec.from),
        range_to: Set(spec.to),
        events: Set(encode_events(spec.events)),
        hotmart_product_ids: Set(serde_json::to_string(&spec.product_ids).expect("ids serialise")),
        label: Set(spec.label),
        status: Set(ImportStatus::Queued),
        kind: Set(spec.kind),
        healed: Set(0),
        windows_total: Set(0),
        windows_done: Set(0),
        sales_seen: Set(0),
        deals_created: Set(0),
        deals_updated: Set(0),
        skipped: Set(0),
        failed_sales: Set(0),
        error: Set(None),
        created_at: Set(now_ms()),
        finished_at: Set(None),
    }
    .insert(db)
    .await?;
    let mut windows = Vec::new();
    let mut start = spec.from;
    while start < spec.to {
        let end = (start + DEFAULT_WINDOW_MS).min(spec.to);
        windows.push(insert_window(db, &run, start, end, None).await?);
        start = end;
    }
    let mut model = run.into_active_model();
    model.windows_total = Set(windows.len() as i64);
    let run = model.update(db).await?;
    Ok((run, windows))
}

async fn insert_window(
    db: &impl ConnectionTrait,
    run: &import_run::Model,
    from: i64,
    to: i64,
    cursor_status: Option<String>,
) -> DomainResult<String> {
    let id = new_id();
    import_window::ActiveModel {
        id: Set(id.clone()),
        account_id: Set(run.account_id.clone()),
        run_id: Set(run.id.clone()),
        range_from: Set(from),
        range_to: Set(to),
        status: Set(WindowStatus::Pending),
        cursor_status: Set(cursor_status),
        page_token: Set(None),
        attempts: Set(0),
        error: Set(None),
        updated_at: Set(now_ms()),
    }
    .insert(db)
    .await?;
    Ok(id)
}

pub async fn get(
    db: &impl ConnectionTrait,
    caller: &Caller,
    id: &str,
) -> DomainResult<import_run::Model> {
    caller.require_admin()?;
    find_scoped::<import_run::Entity>(db, caller, id).await
}

pub async fn of_integration(
    db: &impl ConnectionTrait,
    caller: &Caller,
    integration_id: &str,
) -> DomainResult<Vec<import_run::Model>> {
    let integration = integrations::get(db, caller, integration_id).await?;
    Ok(scoped::<import_run::Entity>(caller)
        .filter(import_run::Column::IntegrationId.eq(integration.id.as_str()))
        .order_by_desc(import_run::Column::CreatedAt)
        .all(db)
        .await?)
}

pub async fn cancel(
    db: &impl ConnectionTrait,
    caller: &Caller,
    id: &str,
) -> DomainResult<import_run::Model> {
    let run = get(db, caller, id).await?;
    if run.status.is_final() {
        return Err(DomainError::bad_input(
            "id",
            format!("the run already ended ({})", run.status.as_str()),
        ));
    }
    let mut model = run.into_active_model();
    model.status = Set(ImportStatus::Canceled);
    model.finished_at = Set(Some(now_ms()));
    Ok(model.update(db).await?)
}

pub fn events_of(run: &import_run::Model) -> DomainResult<Vec<HotmartEvent>> {
    decode_events(&run.events)
}

pub fn product_ids_of(run: &import_run::Model) -> Vec<String> {
    serde_json::from_str(&run.hotmart_product_ids).unwrap_or_default()
}

/// The Sales API statuses a run pages through, in a fixed order.
pub fn statuses_of(run: &import_run::Model) -> DomainResult<Vec<&'static str>> {
    let mut statuses: Vec<&'static str> = events_of(run)?
        .into_iter()
        .flat_map(statuses_for)
        .copied()
        .collect();
    statuses.sort();
    statuses.dedup();
    Ok(statuses)
}

/// One sale of the Sales API as an event for the deal engine.
pub struct ImportedSale {
    pub event: HotmartEvent,
    /// `import:{tx}:{status}`: a second import of the same status is a duplicate.
    pub dedup_id: String,
    pub occurred_at: i64,
    pub dating: Dating,
    pub payload: SaleEvent,
}

/// Whether the Sales API dates a status: an approval by `approved_date`, a pending
/// payment by `order_date`. The statuses a sale moves to later (complete, cancelled,
/// refunded, chargeback, protested, expired, overdue) come with no date of their own.
fn is_dated(event: HotmartEvent) -> bool {
    matches!(
        event,
        HotmartEvent::PurchaseApproved | HotmartEvent::PurchaseBilletPrinted
    )
}

/// What the import learned of a sale besides Sales History: its buyer from
/// `/sales/users` and the subscription it belongs to.
#[derive(Debug, Default, Clone, Copy)]
pub struct SaleExtras<'a> {
    pub buyer: Option<&'a ContactData>,
    pub subscription: Option<&'a RestSubscription>,
}

/// One sale of the Sales API as an event: a dated status at its date (`approved_date`,
/// else `order_date`); any other status at `observed_at`, the time the import saw it, and
/// after every event already known of the sale (see `docs/import.md`).
pub fn sale_event(
    sale: &serde_json::Value,
    extras: SaleExtras<'_>,
    observed_at: i64,
) -> Option<ImportedSale> {
    use crate::hotmart::payload::{at, text};
    let purchase = sale.get("purchase")?;
    let transaction = purchase.get("transaction").and_then(text)?;
    let status = purchase.get("status").and_then(text)?;
    let event = event_for_status(&status)?;
    let sale_date = ["approved_date", "order_date"]
        .iter()
        .find_map(|k| purchase.get(*k).and_then(serde_json::Value::as_i64))?;
    let (occurred_at, dating) = if is_dated(event) {
        (sale_date, Dating::Exact)
    } else {
        (observed_at.max(sale_date), Dating::Observed)
    };
    let price = crate::money::price(at(purchase, &["price", "value"]));
    let dedup_id = format!("import:{transaction}:{status}");
    let buyer = extras.buyer.cloned().unwrap_or_default();
    let mut details = crate::hotmart::details::of_sale(sale);
    if let Some(sub) = extras.subscription {
        let recurrence = purchase
            .get("recurrency_number")
            .and_then(serde_json::Value::as_i64);
        details.subscription = Some(sub.details(recurrence));
    }
    let mut payload = SaleEvent::new(Platform::Hotmart, event.as_str(), event.kind());
    payload.product_id = at(sale, &["product", "id"]).and_then(text);
    payload.occurred_at = Some(occurred_at);
    payload.product_name = at(sale, &["product", "name"]).and_then(text);
    payload.buyer = ContactData {
        email: at(sale, &["buyer", "email"]).and_then(text),
        name: at(sale, &["buyer", "name"]).and_then(text).or(buyer.name),
        phone: buyer.phone,
        document: buyer.document,
    };
    payload.sale_id = Some(transaction);
    payload.subscription_id = extras.subscription.map(|s| s.code.clone());
    payload.price_cents = price.cents();
    payload.price_problem = price.problem().map(str::to_owned);
    payload.currency = at(purchase, &["price", "currency_code"]).and_then(text);
    payload.details = details;
    Some(ImportedSale {
        event,
        dedup_id,
        occurred_at,
        dating,
        payload,
    })
}

/// A subscription of `/subscriptions` whose status is an event (a cancellation, dated by
/// its cancellation date; an overdue charge, observed now and after the sale's known
/// events) as an event for the deal engine, on the deal of the sale that started it.
pub fn subscription_event(sub: &RestSubscription, observed_at: i64) -> Option<ImportedSale> {
    use crate::hotmart::payload::{at, text};
    let event = sub.event()?;
    let (occurred_at, dating) = match (event, sub.cancelled_at) {
        (HotmartEvent::SubscriptionCancellation, Some(at)) => (at, Dating::Exact),
        _ => (
            observed_at.max(sub.accession_at.unwrap_or(0)),
            Dating::Observed,
        ),
    };
    let dedup_id = format!("import:sub:{}:{}", sub.code, sub.status);
    let price = crate::money::price(at(&sub.item, &["price", "value"]));
    let mut details = DealDetails::default();
    details.subscription = Some(sub.details(None));
    let mut payload = SaleEvent::new(Platform::Hotmart, event.as_str(), event.kind());
    payload.product_id = at(&sub.item, &["product", "id"]).and_then(text);
    payload.occurred_at = Some(occurred_at);
    payload.product_name = at(&sub.item, &["product", "name"]).and_then(text);
    payload.buyer = ContactData {
        email: sub.email.clone(),
        name: at(&sub.item, &["subscriber", "name"]).and_then(text),
        phone: None,
        document: None,
    };
    payload.sale_id = sub.transaction.clone();
    payload.subscription_id = Some(sub.code.clone());
    payload.price_cents = price.cents();
    payload.price_problem = price.problem().map(str::to_owned);
    payload.currency = at(&sub.item, &["price", "currency_code"]).and_then(text);
    payload.details = details;
    Some(ImportedSale {
        event,
        dedup_id,
        occurred_at,
        dating,
        payload,
    })
}

impl ImportedSale {
    /// The sale as an event for the deal engine.
    pub fn incoming(
        &self,
        source: crate::engine::apply::Source,
    ) -> crate::engine::apply::IncomingEvent<'_> {
        crate::engine::apply::IncomingEvent {
            sale: &self.payload,
            dedup_id: self.dedup_id.clone(),
            occurred_at: self.occurred_at,
            dating: self.dating,
            source,
        }
    }
}

/// Counters a page of sales adds to its run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageCounts {
    pub sales_seen: i64,
    /// Sales that no webhook had delivered (counted by reconciliation runs).
    pub healed: i64,
    pub deals_created: i64,
    pub deals_updated: i64,
    pub skipped: i64,
    pub failed_sales: i64,
}

pub async fn add_counts(
    db: &impl ConnectionTrait,
    run_id: &str,
    counts: PageCounts,
) -> DomainResult<()> {
    use import_run::Column;
    use sea_orm::sea_query::ExprTrait;
    import_run::Entity::update_many()
        .col_expr(
            Column::SalesSeen,
            Expr::col(Column::SalesSeen).add(counts.sales_seen),
        )
        .col_expr(
            Column::DealsCreated,
            Expr::col(Column::DealsCreated).add(counts.deals_created),
        )
        .col_expr(
            Column::DealsUpdated,
            Expr::col(Column::DealsUpdated).add(counts.deals_updated),
        )
        .col_expr(
            Column::Skipped,
            Expr::col(Column::Skipped).add(counts.skipped),
        )
        .col_expr(Column::Healed, Expr::col(Column::Healed).add(counts.healed))
        .col_expr(
            Column::FailedSales,
            Expr::col(Column::FailedSales).add(counts.failed_sales),
        )
        .filter(Column::Id.eq(run_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Marks a run RUNNING (if it was queued).
pub async fn mark_running(db: &impl ConnectionTrait, run_id: &str) -> DomainResult<()> {
    import_run::Entity::update_many()
        .col_expr(import_run::Column::Status, Expr::val(ImportStatus::Running))
        .filter(import_run::Column::Id.eq(run_id))
        .filter(import_run::Column::Status.eq(ImportStatus::Queued))
        .exec(db)
        .await?;
    Ok(())
}

/// Where a window is: the status it pages through and the next page's token.
pub type WindowCursor = (Option<String>, Option<String>);

/// Moves a window's cursor from `from` to `to`, after a page was applied. Returns false
/// when the window is no longer where this job left it (another job took the page, or the
/// window ended): the caller must roll the page back.
pub async fn advance_cursor(
    db: &impl ConnectionTrait,
    window_id: &str,
    from: &WindowCursor,
    to: &WindowCursor,
) -> DomainResult<bool> {
    use import_window::Column;
    let same = |column: Column, value: &Option<String>| match value {
        Some(v) => column.eq(v.as_str()),
        None => column.is_null(),
    };
    let result = import_window::Entity::update_many()
        .col_expr(Column::Status, Expr::val(WindowStatus::Running))
        .col_expr(Column::CursorStatus, Expr::val(to.0.clone()))
        .col_expr(Column::PageToken, Expr::val(to.1.clone()))
        .col_expr(Column::UpdatedAt, Expr::val(now_ms()))
        .filter(Column::Id.eq(window_id))
        .filter(Column::Status.is_in([WindowStatus::Pending, WindowStatus::Running]))
        .filter(same(Column::CursorStatus, &from.0))
        .filter(same(Column::PageToken, &from.1))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Hotmart refused one status of a window (a 400 for that `transaction_status`): the
/// window moves past it and keeps the reason, and goes on with its other statuses; it
/// ends `FAILED` (and so does its run, once every window ended) with that reason. False
/// when the window is no longer where this job left it.
pub async fn skip_status(
    db: &impl ConnectionTrait,
    window_id: &str,
    from: &WindowCursor,
    to: &WindowCursor,
    note: &str,
) -> DomainResult<bool> {
    if !advance_cursor(db, window_id, from, to).await? {
        return Ok(false);
    }
    let Some(window) = import_window::Entity::find_by_id(window_id.to_owned())
        .one(db)
        .await?
    else {
        return Ok(false);
    };
    let error = match window.error {
        Some(earlier) => format!("{earlier}; {note}"),
        None => note.to_owned(),
    };
    import_window::Entity::update_many()
        .col_expr(import_window::Column::Error, Expr::val(error))
        .filter(import_window::Column::Id.eq(window_id))
        .exec(db)
        .await?;
    Ok(true)
}

/// A window finished: count it, and end the run when it was the last one. A window that
/// skipped a refused status ends `FAILED`, with the reason it kept.
/// Ends a window (DONE, or FAILED when a status was refused); false when it had already
/// ended.
pub async fn finish_window(
    db: &impl ConnectionTrait,
    window: &import_window::Model,
) -> DomainResult<bool> {
    use sea_orm::sea_query::ExprTrait;
    let ended = Expr::cust(format!(
        "CASE WHEN \"error\" IS NULL THEN '{}' ELSE '{}' END",
        WindowStatus::Done.as_str(),
        WindowStatus::Failed.as_str()
    ));
    let updated = import_window::Entity::update_many()
        .col_expr(import_window::Column::Status, ended)
        .col_expr(import_window::Column::UpdatedAt, Expr::val(now_ms()))
        .filter(import_window::Column::Id.eq(window.id.as_str()))
        .filter(import_window::Column::Status.is_in([WindowStatus::Pending, WindowStatus::Running]))
        .exec(db)
        .await?;
    if updated.rows_affected == 0 {
        return Ok(false);
    }
    import_run::Entity::update_many()
        .col_expr(
            import_run::Column::WindowsDone,
            Expr::col(import_run::Column::WindowsDone).add(1),
        )
        .filter(import_run::Column::Id.eq(window.run_id.as_str()))
        .exec(db)
        .await?;
    settle_run(db, &window.run_id).await?;
    Ok(true)
}

/// Ends a run when no window is left.
async fn settle_run(db: &impl ConnectionTrait, run_id: &str) -> DomainResult<()> {
    let open = import_window::Entity::find()
        .filter(import_window::Column::RunId.eq(run_id))
        .filter(import_window::Column::Status.is_in([WindowStatus::Pending, WindowStatus::Running]))
        .count(db)
        .await?;
    if open > 0 {
        return Ok(());
    }
    let failed = import_window::Entity::find()
        .filter(import_window::Column::RunId.eq(run_id))
        .filter(import_window::Column::Status.eq(WindowStatus::Failed))
        .one(db)
        .await?;
    let (status, error) = match failed {
        Some(window) => (ImportStatus::Failed, window.error),
        None => (ImportStatus::Succeeded, None),
    };
    end_run(db, run_id, status, error.as_deref()).await
}

/// Ends a run that is still queued or running (a run that already ended keeps its end).
async fn end_run(
    db: &impl ConnectionTrait,
    run_id: &str,
    status: ImportStatus,
    error: Option<&str>,
) -> DomainResult<()> {
    import_run::Entity::update_many()
        .col_expr(import_run::Column::Status, Expr::val(status))
        .col_expr(
            import_run::Column::Error,
            Expr::val(error.map(str::to_owned)),
        )
        .col_expr(import_run::Column::FinishedAt, Expr::val(now_ms()))
        .filter(import_run::Column::Id.eq(run_id))
        .filter(import_run::Column::Status.is_in([ImportStatus::Queued, ImportStatus::Running]))
        .exec(db)
        .await?;
    Ok(())
}

/// A window that cannot be completed: the run fails with its error.
pub async fn fail_window(
    db: &impl ConnectionTrait,
    window: &import_window::Model,
    error: &str,
) -> DomainResult<()> {
    import_window::Entity::update_many()
        .col_expr(
            import_window::Column::Status,
            Expr::val(WindowStatus::Failed),
        )
        .col_expr(import_window::Column::Error, Expr::val(error))
        .col_expr(import_window::Column::UpdatedAt, Expr::val(now_ms()))
        .filter(import_window::Column::Id.eq(window.id.as_str()))
        .exec(db)
        .await?;
    // Other windows stop at their next page; the run ends now.
    end_run(db, &window.run_id, ImportStatus::Failed, Some(error)).await
}

/// Hotmart said the query was too slow: the window becomes two halves (from the status it
/// was on). Returns the new window ids, or `None` when it is already minimal.
pub async fn split_window(
    db: &impl ConnectionTrait,
    window: &import_window::Model,
    run: &import_run::Model,
) -> DomainResult<Option<[String; 2]>> {
    use sea_orm::sea_query::ExprTrait;
    if window.range_to - window.range_from < 2 * MIN_WINDOW_MS {
        return Ok(None);
    }
    let mid = window.range_from + (window.range_to - window.range_from) / 2;
    let first = insert_window(
        db,
        run,
        window.range_from,
        mid,
        window.cursor_status.clone(),
    )
    .await?;
    let second = insert_window(db, run, mid, window.range_to, window.cursor_status.clone()).await?;
    import_window::Entity::update_many()
        .col_expr(
            import_window::Column::Status,
            Expr::val(WindowStatus::Split),
        )
        .col_expr(import_window::Column::UpdatedAt, Expr::val(now_ms()))
        .filter(import_window::Column::Id.eq(window.id.as_str()))
        .exec(db)
        .await?;
    import_run::Entity::update_many()
        .col_expr(
            import_run::Column::WindowsTotal,
            Expr::col(import_run::Column::WindowsTotal).add(1),
        )
        .filter(import_run::Column::Id.eq(run.id.as_str()))
        .exec(db)
        .await?;
    Ok(Some([first, second]))
}

/// Windows of unfinished runs that nothing has touched for `stale_ms` (their job was lost,
/// or the process restarted): to be enqueued again.
pub async fn stale_windows(
    db: &impl ConnectionTrait,
    stale_ms: i64,
) -> DomainResult<Vec<import_window::Model>> {
    let cutoff = now_ms() - stale_ms;
    let windows = import_window::Entity::find()
        .filter(import_window::Column::Status.is_in([WindowStatus::Pending, WindowStatus::Running]))
        .filter(import_window::Column::UpdatedAt.lt(cutoff))
        .all(db)
        .await?;
    let mut live = Vec::new();
    for window in windows {
        let run = import_run::Entity::find_by_id(window.run_id.clone())
            .one(db)
            .await?;
        if run.is_some_and(|r| !r.status.is_final()) {
            live.push(window);
        }
    }
    Ok(live)
}

/// Whether a window of another account waits for an import slot (import slots are shared
/// by the installation; a window gives its slot up after a page when one does).
pub async fn others_waiting(db: &impl ConnectionTrait, account_id: &str) -> DomainResult<bool> {
    use sea_orm::PaginatorTrait;
    let waiting = import_window::Entity::find()
        .filter(import_window::Column::Status.eq(WindowStatus::Pending))
        .filter(import_window::Column::AccountId.ne(account_id))
        .count(db)
        .await?;
    Ok(waiting > 0)
}

/// A window gives its slot up between pages: it waits again (its cursor kept), behind
/// the windows already waiting.
pub async fn give_way(db: &impl ConnectionTrait, window_id: &str) -> DomainResult<()> {
    import_window::Entity::update_many()
        .col_expr(
            import_window::Column::Status,
            Expr::val(WindowStatus::Pending),
        )
        .col_expr(import_window::Column::UpdatedAt, Expr::val(now_ms()))
        .filter(import_window::Column::Id.eq(window_id))
        .filter(import_window::Column::Status.eq(WindowStatus::Running))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn touch_window(db: &impl ConnectionTrait, window_id: &str) -> DomainResult<()> {
    import_window::Entity::update_many()
        .col_expr(import_window::Column::UpdatedAt, Expr::val(now_ms()))
        .filter(import_window::Column::Id.eq(window_id))
        .exec(db)
        .await?;
    Ok(())
}
