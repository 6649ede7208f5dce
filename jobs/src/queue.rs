//! The job queue lives in the application database (its own tables), on the same pool.
//!
//! Retries are not left to the queue: a handler records a failed attempt on the delivery
//! and schedules the next attempt itself with exponential backoff, so every job runs once
//! (`max_attempts = 1`) and the spacing of attempts is visible in the delivery.

use std::time::Duration;

use apalis::prelude::{TaskBuilder, TaskId, TaskSink};
use apalis_postgres::PostgresStorage;
use apalis_sqlite::SqliteStorage;
use entity::database::{Database, Pool};
use serde::{Deserialize, Serialize};

/// Queue of webhook deliveries to process.
pub const DELIVERY_QUEUE: &str = "checkout-crm.deliveries";

/// Queue of work against the Hotmart API: import windows and product refreshes.
pub const IMPORT_QUEUE: &str = "checkout-crm.hotmart";

/// A job of the background-work queue: calls to the platforms' APIs, and exports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum HotmartJob {
    /// Write the file of an export (`entity::exports::run`).
    RunExport { export_id: String },
    /// One date window of an import run to page through.
    ImportWindow { window_id: String },
    /// Refresh names, offers and plans of an integration's products (one, or all).
    RefreshProducts {
        integration_id: String,
        hotmart_product_id: Option<String>,
        label: Option<String>,
    },
}

/// Webhook deliveries to run through the deal engine (ids only: the rows are the truth).
/// Deliveries accepted together are processed together, in one transaction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessDeliveries {
    pub delivery_ids: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot set up the job queue: {0}")]
pub struct QueueSetupError(String);

#[derive(Debug, thiserror::Error)]
#[error("cannot enqueue job: {0}")]
pub struct EnqueueError(String);

/// Creates or upgrades the queue tables.
///
/// On SQLite this runs apalis' migrations directly instead of `SqliteStorage::setup()`,
/// which would switch one pooled connection to `synchronous=OFF`: every connection keeps
/// the WAL + `synchronous=NORMAL` settings the pool was opened with.
pub async fn setup(db: &Database) -> Result<(), QueueSetupError> {
    match &db.pool {
        Pool::Sqlite(pool) => SqliteStorage::<()>::migrations()
            .run(pool)
            .await
            .map_err(|err| QueueSetupError(err.to_string())),
        Pool::Postgres(pool) => PostgresStorage::<()>::setup(pool)
            .await
            .map_err(|err| QueueSetupError(err.to_string())),
    }
}

/// A new job id (apalis needs ULIDs).
pub(crate) fn new_job_id() -> String {
    ulid::Ulid::generate().to_string()
}

/// Where jobs of one type are pushed.
pub enum Sink<T> {
    Sqlite(SqliteStorage<T>),
    Postgres(PostgresStorage<T>),
}

impl<T> Clone for Sink<T> {
    fn clone(&self) -> Self {
        match self {
            Sink::Sqlite(storage) => Sink::Sqlite(storage.clone()),
            Sink::Postgres(storage) => Sink::Postgres(storage.clone()),
        }
    }
}

impl<T> Sink<T> {
    fn new(db: &Database, queue: &str) -> Self {
        match &db.pool {
            Pool::Sqlite(pool) => Sink::Sqlite(
                SqliteStorage::new(pool).with_config(apalis_sqlite::Config::default().queue(queue)),
            ),
            Pool::Postgres(pool) => Sink::Postgres(
                PostgresStorage::new(pool)
                    .with_config(apalis_postgres::Config::default().queue(queue)),
            ),
        }
    }
}

impl<T: Serialize + serde::de::DeserializeOwned + Send + Sync + Unpin + 'static> Sink<T> {
    async fn push(
        &self,
        job_id: &str,
        args: T,
        delay: Option<Duration>,
    ) -> Result<(), EnqueueError> {
        let mut builder = TaskBuilder::new(args)
            .task_id(TaskId::from_string(job_id))
            .max_attempts(1);
        if let Some(delay) = delay {
            // The queue schedules in whole seconds: round up so a delay is never shortened.
            let due_ms = entity::now_ms() as u64 + delay.as_millis() as u64;
            builder = builder.run_at_timestamp(due_ms.div_ceil(1000));
        }
        let task = builder.build();
        let result = match self.clone() {
            Sink::Sqlite(mut storage) => storage.push_task(task).await.map_err(|e| e.to_string()),
            Sink::Postgres(mut storage) => storage.push_task(task).await.map_err(|e| e.to_string()),
        };
        result.map_err(EnqueueError)
    }
}

/// Handle for pushing jobs.
#[derive(Clone)]
pub struct Queue {
    deliveries: Sink<ProcessDeliveries>,
    imports: Sink<HotmartJob>,
}

impl Queue {
    pub fn new(db: &Database) -> Self {
        Self {
            deliveries: Sink::new(db, DELIVERY_QUEUE),
            imports: Sink::new(db, IMPORT_QUEUE),
        }
    }

    /// Enqueues one window of an import run.
    pub async fn enqueue_import_window(&self, window_id: &str) -> Result<(), EnqueueError> {
        let args = HotmartJob::ImportWindow {
            window_id: window_id.to_owned(),
        };
        self.imports.push(&new_job_id(), args, None).await
    }

    /// Enqueues a product refresh.
    pub async fn enqueue_refresh(
        &self,
        integration_id: &str,
        hotmart_product_id: Option<&str>,
        label: Option<&str>,
    ) -> Result<(), EnqueueError> {
        let args = HotmartJob::RefreshProducts {
            integration_id: integration_id.to_owned(),
            hotmart_product_id: hotmart_product_id.map(str::to_owned),
            label: label.map(str::to_owned),
        };
        self.imports.push(&new_job_id(), args, None).await
    }

    /// Enqueues the writing of an export's file.
    pub async fn enqueue_export(&self, export_id: &str) -> Result<(), EnqueueError> {
        let args = HotmartJob::RunExport {
            export_id: export_id.to_owned(),
        };
        self.imports.push(&new_job_id(), args, None).await
    }

    /// Enqueues the processing of a delivery, optionally delayed.
    pub async fn enqueue_delivery(
        &self,
        delivery_id: &str,
        delay: Option<Duration>,
    ) -> Result<(), EnqueueError> {
        let args = ProcessDeliveries {
            delivery_ids: vec![delivery_id.to_owned()],
        };
        self.deliveries.push(&new_job_id(), args, delay).await
    }
}

/// Writes the job that processes `delivery_ids` inside the caller's transaction, so the
/// deliveries and their job commit together (no window where a stored delivery has no
/// job). The row is the one apalis' own push writes (see `apalis-sqlite`'s and
/// `apalis-postgres`' `queries/task/sink.sql`), due now, one attempt.
pub async fn enqueue_deliveries_in(
    txn: &impl sea_orm::ConnectionTrait,
    delivery_ids: &[String],
) -> Result<(), sea_orm::DbErr> {
    use sea_orm::{DbBackend, Statement};
    let job_id = new_job_id();
    let job_id = job_id.as_str();
    let job = serde_json::to_vec(&ProcessDeliveries {
        delivery_ids: delivery_ids.to_vec(),
    })
    .map_err(|err| sea_orm::DbErr::Custom(err.to_string()))?;
    let statement = match txn.get_database_backend() {
        DbBackend::Postgres => Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO apalis.jobs (id, job_type, job, status, attempts, max_attempts, run_at, priority) \
             VALUES ($1, $2, $3, 'Pending', 0, 1, now(), 0)",
            [job_id.into(), DELIVERY_QUEUE.into(), job.into()],
        ),
        backend => Statement::from_sql_and_values(
            backend,
            "INSERT INTO Jobs (job, id, job_type, status, attempts, max_attempts, run_at, priority) \
             VALUES (?, ?, ?, 'Pending', 0, 1, ?, 0)",
            [
                job.into(),
                job_id.into(),
                DELIVERY_QUEUE.into(),
                (entity::now_ms() / 1000).into(),
            ],
        ),
    };
    txn.execute_raw(statement).await?;
    Ok(())
}

/// What `/metrics` reports about the queue.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QueueStats {
    /// Jobs waiting to run (due now or scheduled).
    pub depth: i64,
    /// Age in seconds of the oldest job that is due and not started; 0 when none.
    pub oldest_due_age_secs: i64,
}

pub async fn stats(db: &Database) -> Result<QueueStats, sqlx::Error> {
    let now_secs = entity::now_ms() / 1000;
    let (depth, oldest): (i64, Option<i64>) = match &db.pool {
        Pool::Sqlite(pool) => {
            sqlx::query_as(
                "SELECT count(*), min(CASE WHEN run_at <= ?2 THEN run_at END) FROM Jobs \
                 WHERE job_type = ?1 AND status IN ('Pending', 'Queued')",
            )
            .bind(DELIVERY_QUEUE)
            .bind(now_secs)
            .fetch_one(pool)
            .await?
        }
        Pool::Postgres(pool) => {
            sqlx::query_as(
                "SELECT count(*), min(CASE WHEN run_at <= now() THEN extract(epoch from run_at)::bigint END) \
                 FROM apalis.jobs WHERE job_type = $1 AND status IN ('Pending', 'Queued')",
            )
            .bind(DELIVERY_QUEUE)
            .fetch_one(pool)
            .await?
        }
    };
    Ok(QueueStats {
        depth,
        oldest_due_age_secs: oldest.map(|t| (now_secs - t).max(0)).unwrap_or(0),
    })
}

/// The deliveries that some unfinished job (waiting, scheduled for a retry, claimed or
/// running) will process.
pub async fn deliveries_in_unfinished_jobs(
    db: &Database,
) -> Result<std::collections::HashSet<String>, entity::DomainError> {
    let payloads: Vec<Vec<u8>> = match &db.pool {
        Pool::Sqlite(pool) => {
            sqlx::query_scalar(
                "SELECT job FROM Jobs WHERE job_type = ? \
                 AND status IN ('Pending', 'Queued', 'Running')",
            )
            .bind(DELIVERY_QUEUE)
            .fetch_all(pool)
            .await
        }
        Pool::Postgres(pool) => {
            sqlx::query_scalar(
                "SELECT job FROM apalis.jobs WHERE job_type = $1 \
                 AND status IN ('Pending', 'Queued', 'Running')",
            )
            .bind(DELIVERY_QUEUE)
            .fetch_all(pool)
            .await
        }
    }
    .map_err(entity::DomainError::database)?;
    Ok(payloads
        .iter()
        .filter_map(|job| serde_json::from_slice::<ProcessDeliveries>(job).ok())
        .flat_map(|job| job.delivery_ids)
        .collect())
}

/// Jobs of `queue` due for longer than `age` and still not started.
pub async fn runnable_jobs_older_than(
    db: &Database,
    queue: &str,
    age: Duration,
) -> Result<i64, sqlx::Error> {
    let cutoff_secs = (entity::now_ms() / 1000) - age.as_secs() as i64;
    match &db.pool {
        Pool::Sqlite(pool) => sqlx::query_scalar(
            "SELECT count(*) FROM Jobs WHERE job_type = ? AND status = 'Pending' AND lock_by IS NULL \
             AND run_at <= ?",
        )
        .bind(queue)
        .bind(cutoff_secs)
        .fetch_one(pool)
        .await,
        Pool::Postgres(pool) => {
            sqlx::query_scalar(
                "SELECT count(*) FROM apalis.jobs WHERE job_type = $1 AND status = 'Pending' \
                 AND run_at <= to_timestamp($2)",
            )
            .bind(queue)
            .bind(cutoff_secs as f64)
            .fetch_one(pool)
            .await
        }
    }
}

/// Renews the lease on everything `workers` (this process's workers) have claimed: their
/// liveness stamp is set to now. Run on a timer of its own, so a process that is busy
/// (or slow) keeps its work; only a process that is gone or frozen stops renewing.
pub async fn renew_leases(db: &Database, workers: &[String]) -> Result<u64, sqlx::Error> {
    let renewed = match &db.pool {
        Pool::Sqlite(pool) => sqlx::query(
            "UPDATE Workers SET last_seen = strftime('%s', 'now') \
             WHERE id IN (SELECT value FROM json_each(?))",
        )
        .bind(serde_json::to_string(workers).unwrap_or_default())
        .execute(pool)
        .await?
        .rows_affected(),
        Pool::Postgres(pool) => {
            sqlx::query("UPDATE apalis.workers SET last_seen = now() WHERE id = ANY($1)")
                .bind(workers)
                .execute(pool)
                .await?
                .rows_affected()
        }
    };
    Ok(renewed)
}

/// Hands back what `workers` claimed and did not finish: their jobs become due again at
/// once, for any process. Called on shutdown, after the groups being processed finished
/// (or were abandoned, their transactions rolled back). A job whose effects had already
/// committed runs again harmlessly: the deliveries it names are no longer pending.
pub async fn release_claims(db: &Database, workers: &[String]) -> Result<u64, sqlx::Error> {
    let released = match &db.pool {
        Pool::Sqlite(pool) => sqlx::query(
            "UPDATE Jobs SET status = 'Pending', lock_by = NULL, lock_at = NULL \
             WHERE status IN ('Queued', 'Running') \
             AND lock_by IN (SELECT value FROM json_each(?))",
        )
        .bind(serde_json::to_string(workers).unwrap_or_default())
        .execute(pool)
        .await?
        .rows_affected(),
        Pool::Postgres(pool) => sqlx::query(
            "UPDATE apalis.jobs SET status = 'Pending', lock_by = NULL, lock_at = NULL \
             WHERE status IN ('Queued', 'Running') AND lock_by = ANY($1)",
        )
        .bind(workers)
        .execute(pool)
        .await?
        .rows_affected(),
    };
    Ok(released)
}

/// Work claimed by some process and not finished, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ClaimStats {
    /// Claimed jobs whose process has not renewed its lease within `lease`: they wait to
    /// be taken over (normally for less than a heartbeat).
    pub expired: i64,
    /// Age in seconds of the oldest claim; 0 when nothing is claimed. A figure that keeps
    /// growing is a stuck process.
    pub oldest_age_secs: i64,
}

pub async fn claim_stats(db: &Database, lease: Duration) -> Result<ClaimStats, sqlx::Error> {
    let now_secs = entity::now_ms() / 1000;
    let lease_secs = lease.as_secs() as i64;
    let (expired, oldest): (i64, Option<i64>) =
        match &db.pool {
            Pool::Sqlite(pool) => sqlx::query_as(
                "SELECT count(CASE WHEN w.last_seen IS NULL OR ?1 - w.last_seen >= ?2 THEN 1 END), \
                 min(j.lock_at) FROM Jobs j LEFT JOIN Workers w ON w.id = j.lock_by \
                 WHERE j.status IN ('Queued', 'Running')",
            )
            .bind(now_secs)
            .bind(lease_secs)
            .fetch_one(pool)
            .await?,
            Pool::Postgres(pool) => {
                sqlx::query_as(
                    "SELECT count(CASE WHEN w.last_seen IS NULL \
                   OR w.last_seen <= now() - make_interval(secs => $1) THEN 1 END), \
                 min(extract(epoch from j.lock_at))::bigint \
                 FROM apalis.jobs j LEFT JOIN apalis.workers w ON w.id = j.lock_by \
                 WHERE j.status IN ('Queued', 'Running')",
                )
                .bind(lease_secs as f64)
                .fetch_one(pool)
                .await?
            }
        };
    Ok(ClaimStats {
        expired,
        oldest_age_secs: oldest.map(|t| (now_secs - t).max(0)).unwrap_or(0),
    })
}
