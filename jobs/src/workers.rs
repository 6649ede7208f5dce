//! Worker processes: the delivery workers and the sweeper, until shutdown.

use std::future::Future;

use apalis::prelude::{BoxDynError, Data, Monitor, WorkerBuilder, WorkerBuilderExt};
use apalis_core::backend::ext::BackendExt;
use apalis_postgres::PostgresStorage;
use apalis_sqlite::SqliteStorage;
use entity::database::{Database, Pool};

use crate::{
    deliveries::{JobContext, WorkerSettings, handle_delivery, sweep_forever},
    queue::{DELIVERY_QUEUE, ProcessDelivery, Queue},
};

async fn process_delivery_job(
    job: ProcessDelivery,
    ctx: Data<JobContext>,
) -> Result<(), BoxDynError> {
    // Failures are recorded on the delivery and retried by `handle_delivery` itself.
    handle_delivery(&ctx, &job.delivery_id).await;
    Ok(())
}

/// Runs the workers until `shutdown` completes.
pub async fn run(
    db: Database,
    settings: WorkerSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), BoxDynError> {
    let ctx = JobContext {
        queue: Queue::new(&db),
        db: db.clone(),
        settings: settings.clone(),
    };
    let sweeper = tokio::spawn(sweep_forever(ctx.clone()));
    // Worker names are unique per process: several processes share one queue.
    let name = format!("deliveries-{}", crate::queue::new_job_id());
    let monitor = match &db.pool {
        Pool::Sqlite(pool) => {
            let pool = pool.clone();
            Monitor::new().register(move |_| {
                let config = apalis_sqlite::Config::default()
                    .queue(DELIVERY_QUEUE)
                    .heartbeat_interval(settings.heartbeat);
                let backend = SqliteStorage::<ProcessDelivery>::new(&pool)
                    .with_config(config)
                    .poll_with_interval(settings.poll_interval);
                WorkerBuilder::new(name.as_str())
                    .backend(backend)
                    .data(ctx.clone())
                    .concurrency(settings.concurrency)
                    .build(process_delivery_job)
            })
        }
        Pool::Postgres(pool) => {
            let pool = pool.clone();
            Monitor::new().register(move |_| {
                let config = apalis_postgres::Config::default()
                    .queue(DELIVERY_QUEUE)
                    .heartbeat_interval(settings.heartbeat);
                let backend = PostgresStorage::<ProcessDelivery>::new(&pool)
                    .with_config(config)
                    .poll_with_interval(settings.poll_interval);
                WorkerBuilder::new(name.as_str())
                    .backend(backend)
                    .data(ctx.clone())
                    .concurrency(settings.concurrency)
                    .build(process_delivery_job)
            })
        }
    };
    let result = monitor
        .run_with_signal(async move {
            shutdown.await;
            Ok(())
        })
        .await;
    sweeper.abort();
    result.map_err(Into::into)
}
