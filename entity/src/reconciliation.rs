//! Scheduled reconciliation (see `docs/import.md`, "Reconciliation"): per integration with
//! credentials, an import run of kind `RECONCILIATION` over the last `lookback_hours`,
//! every `every_minutes`, through the import path. A sale it finds that no webhook
//! delivered is *healed*.
//!
//! The schedule is a column of the integration (`reconcile_next_at`). A due time is taken
//! by moving it forward with a conditional update, so with several worker processes one
//! of them starts the run; a run still going when the next time comes is not doubled.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, Set,
};

use crate::{
    Caller, DomainError, DomainResult,
    imports::{self, ImportKind},
    integrations::{self, IntegrationStatus},
    now_ms,
    secrets::SecretKeys,
    tables::{import_run, integration},
};

pub use crate::integrations::{
    DEFAULT_RECONCILE_EVERY_MINUTES as DEFAULT_EVERY_MINUTES,
    DEFAULT_RECONCILE_LOOKBACK_HOURS as DEFAULT_LOOKBACK_HOURS,
};
const EVERY_MINUTES: std::ops::RangeInclusive<i32> = 15..=1440;
const LOOKBACK_HOURS: std::ops::RangeInclusive<i32> = 1..=720;
const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;

/// What `setReconciliation` asks for; unset numbers keep their value (defaults at first).
pub struct Settings {
    pub enabled: bool,
    pub every_minutes: Option<i32>,
    pub lookback_hours: Option<i32>,
}

/// Turns reconciliation on (the first run is due at once) or off, with its intervals.
pub async fn set(
    db: &impl ConnectionTrait,
    keys: &SecretKeys,
    caller: &Caller,
    integration_id: &str,
    settings: Settings,
) -> DomainResult<integration::Model> {
    caller.require_admin()?;
    let current = integrations::get(db, caller, integration_id).await?;
    let every = settings
        .every_minutes
        .unwrap_or(current.reconcile_every_minutes);
    let lookback = settings
        .lookback_hours
        .unwrap_or(current.reconcile_lookback_hours);
    if !EVERY_MINUTES.contains(&every) {
        return Err(DomainError::bad_input(
            "everyMinutes",
            "must be between 15 minutes and 24 hours (1440)",
        ));
    }
    if !LOOKBACK_HOURS.contains(&lookback) {
        return Err(DomainError::bad_input(
            "lookbackHours",
            "must be between 1 hour and 30 days (720)",
        ));
    }
    if settings.enabled
        && crate::platform::Platform::of(&current) == crate::platform::Platform::Eduzz
    {
        return Err(DomainError::bad_input(
            "enabled",
            "reconciliation is not available for Eduzz: its sales API cannot be read yet",
        ));
    }
    if settings.enabled {
        // Reconciliation reads the platform's API: it needs working credentials.
        imports::credentials(keys, &current).map_err(|_| {
            DomainError::bad_input("enabled", "set the integration's API credentials first")
        })?;
    }
    let was_enabled = current.reconcile_enabled;
    let mut model = current.into_active_model();
    model.reconcile_enabled = Set(settings.enabled);
    model.reconcile_every_minutes = Set(every);
    model.reconcile_lookback_hours = Set(lookback);
    if !settings.enabled {
        model.reconcile_next_at = Set(None);
    } else if !was_enabled {
        model.reconcile_next_at = Set(Some(now_ms()));
    }
    model.updated_at = Set(now_ms());
    Ok(model.update(db).await?)
}

/// Integrations whose reconciliation is due now, each taken by this caller alone: its
/// next due time moved forward by one interval.
pub async fn take_due(db: &impl ConnectionTrait) -> DomainResult<Vec<integration::Model>> {
    let now = now_ms();
    let due = integration::Entity::find()
        .filter(integration::Column::ReconcileEnabled.eq(true))
        .filter(integration::Column::ReconcileNextAt.lte(now))
        .filter(integration::Column::Status.eq(IntegrationStatus::Active.as_str()))
        .all(db)
        .await?;
    let mut taken = Vec::new();
    for integration in due {
        let next = now + i64::from(integration.reconcile_every_minutes) * MINUTE_MS;
        let moved = integration::Entity::update_many()
            .col_expr(
                integration::Column::ReconcileNextAt,
                sea_orm::sea_query::Expr::val(next),
            )
            .filter(integration::Column::Id.eq(integration.id.as_str()))
            .filter(integration::Column::ReconcileNextAt.eq(integration.reconcile_next_at))
            .exec(db)
            .await?;
        if moved.rows_affected == 1 {
            taken.push(integration);
        }
    }
    Ok(taken)
}

/// Starts a reconciliation run of `integration` over the last `lookback_hours`, unless one
/// is still going (then `None`). The run and its windows, for the caller to enqueue.
pub async fn start(
    db: &impl ConnectionTrait,
    integration: &integration::Model,
) -> DomainResult<Option<(import_run::Model, Vec<String>)>> {
    if running(db, &integration.id).await?.is_some() {
        return Ok(None);
    }
    let events: Vec<_> = integrations::events(integration)?
        .into_iter()
        .filter(|e| imports::can_import(crate::platform::Platform::of(integration), *e))
        .collect();
    if events.is_empty() {
        return Ok(None);
    }
    let now = now_ms();
    let from = now - i64::from(integration.reconcile_lookback_hours) * HOUR_MS;
    let run = imports::create_run(
        db,
        integration,
        imports::RunSpec {
            from,
            to: now,
            events: &events,
            product_ids: imports::all_product_ids(db, integration).await?,
            label: None,
            kind: ImportKind::Reconciliation,
        },
    )
    .await?;
    Ok(Some(run))
}

/// `reconcileNow`: a run at once (or the one still going).
pub async fn now(
    db: &impl ConnectionTrait,
    keys: &SecretKeys,
    caller: &Caller,
    integration_id: &str,
) -> DomainResult<(import_run::Model, Vec<String>)> {
    caller.require_admin()?;
    let integration = integrations::get(db, caller, integration_id).await?;
    imports::credentials(keys, &integration)?;
    if let Some(run) = running(db, &integration.id).await? {
        return Ok((run, Vec::new()));
    }
    start(db, &integration).await?.ok_or_else(|| {
        DomainError::bad_input(
            "integrationId",
            "none of the integration's events can be read from the Hotmart API",
        )
    })
}

/// The integration's reconciliation run that has not ended, if any.
async fn running(
    db: &impl ConnectionTrait,
    integration_id: &str,
) -> DomainResult<Option<import_run::Model>> {
    Ok(import_run::Entity::find()
        .filter(import_run::Column::IntegrationId.eq(integration_id))
        .filter(import_run::Column::Kind.eq(ImportKind::Reconciliation.as_str()))
        .filter(import_run::Column::Status.is_in([
            imports::ImportStatus::Queued.as_str(),
            imports::ImportStatus::Running.as_str(),
        ]))
        .one(db)
        .await?)
}
