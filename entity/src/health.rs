//! How an integration is doing, from stored facts (see `docs/webhooks.md`, "Health"):
//! wrong-hottok refusals in the last hour, deliveries that failed, sales reconciliation had
//! to recover, and the last import's failure. Reasons are in plain words, worst first.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    Statement,
};

use crate::{
    DomainResult,
    deliveries::{self, DeliveryStatus},
    imports::{ImportKind, ImportStatus},
    now_ms,
    tables::{import_run, integration, webhook_delivery},
};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HealthStatus {
    Ok,
    Warning,
    Failing,
}

impl HealthStatus {
    pub const ALL: [HealthStatus; 3] = [Self::Ok, Self::Warning, Self::Failing];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Warning => "WARNING",
            Self::Failing => "FAILING",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub status: HealthStatus,
    /// Worst first; empty when OK.
    pub reasons: Vec<String>,
    pub refused_last_hour: i64,
    pub failed_deliveries: i64,
    pub last_reconciled_at: Option<i64>,
    pub healed_last_day: i64,
}

/// Refusals counted in the current and the previous clock hour.
async fn refused_last_hour(
    db: &impl ConnectionTrait,
    integration_id: &str,
    now: i64,
) -> DomainResult<i64> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT CAST(COALESCE(SUM(refused), 0) AS BIGINT) FROM hottok_refusals \
             WHERE integration_id = $1 AND hour >= $2"
        }
        _ => {
            "SELECT COALESCE(SUM(refused), 0) FROM hottok_refusals \
             WHERE integration_id = ? AND hour >= ?"
        }
    };
    let since = now / HOUR_MS - 1;
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [integration_id.into(), since.into()],
        ))
        .await?;
    Ok(row.map_or(Ok(0), |r| r.try_get_by_index::<i64>(0))?)
}

/// The facts health is computed from.
struct Facts {
    refused: i64,
    failed: i64,
    last_reconciled_at: Option<i64>,
    healed_last_day: i64,
    webhook_in_last_day: bool,
    /// An authentic delivery arrived in the last hour: the platform's secret matches.
    webhook_in_last_hour: bool,
    last_run: Option<import_run::Model>,
}

async fn facts(
    db: &impl ConnectionTrait,
    integration: &integration::Model,
    now: i64,
) -> DomainResult<Facts> {
    let failed = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::IntegrationId.eq(integration.id.as_str()))
        .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Failed.as_str()))
        .count(db)
        .await? as i64;
    // The integration's reconciliations that succeeded, latest first.
    let reconciled = || {
        import_run::Entity::find()
            .filter(import_run::Column::IntegrationId.eq(integration.id.as_str()))
            .filter(import_run::Column::Kind.eq(ImportKind::Reconciliation.as_str()))
            .filter(import_run::Column::Status.eq(ImportStatus::Succeeded.as_str()))
            .order_by_desc(import_run::Column::FinishedAt)
    };
    let reconciliations = reconciled()
        .filter(import_run::Column::FinishedAt.gte(now - DAY_MS))
        .all(db)
        .await?;
    let last_reconciled_at = match reconciliations.first() {
        Some(latest) => latest.finished_at,
        None => reconciled().one(db).await?.and_then(|run| run.finished_at),
    };
    let last_run = import_run::Entity::find()
        .filter(import_run::Column::IntegrationId.eq(integration.id.as_str()))
        .order_by_desc(import_run::Column::CreatedAt)
        .one(db)
        .await?;
    let last_webhook = deliveries::last_received(db, &integration.id, false).await?;
    Ok(Facts {
        refused: refused_last_hour(db, &integration.id, now).await?,
        failed,
        last_reconciled_at,
        healed_last_day: reconciliations.iter().map(|r| r.healed).sum(),
        webhook_in_last_day: last_webhook.is_some_and(|at| at >= now - DAY_MS),
        webhook_in_last_hour: last_webhook.is_some_and(|at| at >= now - 3_600_000),
        last_run,
    })
}

/// The health of an integration now.
pub async fn of(
    db: &impl ConnectionTrait,
    integration: &integration::Model,
) -> DomainResult<Health> {
    let facts = facts(db, integration, now_ms()).await?;
    let mut health = judge(&facts, crate::platform::Platform::of(integration));
    outbound_reasons(db, integration, &mut health).await?;
    if crate::platform::Platform::of(integration) == crate::platform::Platform::Eduzz {
        health.reasons.push(
            "reconciliation is off for Eduzz: its sales API cannot be read yet, so a webhook Eduzz never delivers is not recovered"
                .to_owned(),
        );
    }
    Ok(health)
}

/// Outbound endpoints of the integration's group that failures or an admin disabled: its
/// deal changes no longer reach them (a warning, with the endpoint's reason).
async fn outbound_reasons(
    db: &impl ConnectionTrait,
    integration: &integration::Model,
    health: &mut Health,
) -> DomainResult<()> {
    use crate::tables::webhook_endpoint;
    let disabled = webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::AccountId.eq(integration.account_id.as_str()))
        .filter(webhook_endpoint::Column::Enabled.eq(false))
        .all(db)
        .await?;
    let mut group_id: Option<String> = None;
    for e in disabled {
        let groups = crate::outbound::endpoints::group_ids(&e);
        if !groups.is_empty() {
            if group_id.is_none() {
                group_id = Some(crate::integrations::group_of(db, integration).await?.id);
            }
            if !group_id.as_ref().is_some_and(|g| groups.contains(g)) {
                continue;
            }
        }
        health.status = health.status.max(HealthStatus::Warning);
        health.reasons.push(format!(
            "the outbound webhook {} is disabled ({}): deal changes are not sent to it until it is enabled",
            e.url,
            e.disabled_reason.as_deref().unwrap_or("no reason given")
        ));
    }
    Ok(())
}

/// Why a platform's deliveries are refused: the secret here no longer matches the platform's.
fn refusal_cause(platform: crate::platform::Platform) -> String {
    match platform {
        crate::platform::Platform::Hotmart => "their hottok is wrong: the hottok in Hotmart no longer matches the one here (was it changed in Hotmart?)".to_owned(),
        other => format!(
            "their signature is wrong or missing: the {} here no longer matches {}'s (was it changed there?)",
            crate::integrations::secret_name(other),
            other.title()
        ),
    }
}

/// Why the last run failed, in the words an admin acts on.
fn failed_run(run: &import_run::Model, platform: crate::platform::Platform) -> String {
    let error = run.error.as_deref().unwrap_or("unknown error");
    let what = match run.kind {
        ImportKind::Reconciliation => "the last reconciliation",
        ImportKind::Manual => "the last import",
    };
    if error.contains("credentials") {
        format!(
            "{} rejected the API credentials in {what}: enter them again",
            platform.title()
        )
    } else {
        format!("{what} failed: {error}")
    }
}

/// Deliveries refused for a wrong secret: failing when none of the platform's own pass
/// (its secret changed), a warning when they do (someone else posts to the URL).
fn refusals(facts: &Facts, platform: crate::platform::Platform) -> Option<(HealthStatus, String)> {
    if facts.refused == 0 {
        return None;
    }
    if facts.webhook_in_last_hour {
        let secret = match platform {
            crate::platform::Platform::Hotmart => "hottok",
            _ => "signature",
        };
        return Some((
            HealthStatus::Warning,
            format!(
                "{} deliveries with a wrong {secret} were refused in the last hour while {}'s own were accepted: someone else is posting to this webhook URL (rotate the URL if it goes on)",
                facts.refused,
                platform.title()
            ),
        ));
    }
    Some((
        HealthStatus::Failing,
        format!(
            "{} deliveries were refused in the last hour because {}",
            facts.refused,
            refusal_cause(platform)
        ),
    ))
}

/// The rules, worst first.
fn judge(facts: &Facts, platform: crate::platform::Platform) -> Health {
    let mut found: Vec<(HealthStatus, String)> = Vec::new();
    found.extend(refusals(facts, platform));
    if facts.healed_last_day > 0 && !facts.webhook_in_last_day {
        found.push((HealthStatus::Failing, format!(
            "reconciliation recovered {} sales in the last day and no webhook arrived in that time: the webhook URL is probably missing or deactivated in {}",
            facts.healed_last_day,
            platform.title()
        )));
    } else if facts.healed_last_day > 0 {
        found.push((HealthStatus::Warning, format!(
            "reconciliation recovered {} sales in the last day that no webhook delivered: some webhooks are being lost",
            facts.healed_last_day
        )));
    }
    if facts.failed > 0 {
        found.push((
            HealthStatus::Warning,
            format!(
                "{} deliveries failed to process: see them in the deliveries list and replay them",
                facts.failed
            ),
        ));
    }
    if let Some(run) = facts
        .last_run
        .as_ref()
        .filter(|r| r.status == ImportStatus::Failed)
    {
        found.push((HealthStatus::Warning, failed_run(run, platform)));
    }
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    Health {
        status: found.first().map_or(HealthStatus::Ok, |(s, _)| *s),
        reasons: found.into_iter().map(|(_, r)| r).collect(),
        refused_last_hour: facts.refused,
        failed_deliveries: facts.failed,
        last_reconciled_at: facts.last_reconciled_at,
        healed_last_day: facts.healed_last_day,
    }
}
