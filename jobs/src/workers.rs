//! Worker processes: the delivery workers and the sweeper, until shutdown.

use std::{future::Future, time::Duration};

use apalis::prelude::{BoxDynError, Data, Monitor, WorkerBuilder, WorkerBuilderExt};
use apalis_core::backend::ext::BackendExt;
use apalis_postgres::PostgresStorage;
use apalis_sqlite::SqliteStorage;
use entity::database::{Database, Pool};
use futures::FutureExt;

use crate::{
    context::{HotmartEndpoints, JobContext, WorkerSettings},
    deliveries::handle_deliveries,
    imports::handle_window,
    queue::{DELIVERY_QUEUE, HotmartJob, IMPORT_QUEUE, ProcessDeliveries, Queue},
};

async fn hotmart_job(job: HotmartJob, ctx: Data<JobContext>) -> Result<(), BoxDynError> {
    ctx.progress
        .store(entity::now_ms(), std::sync::atomic::Ordering::Relaxed);
    match job {
        HotmartJob::ImportWindow { window_id } => handle_window(&ctx, &window_id).await,
        HotmartJob::RefreshProducts {
            integration_id,
            hotmart_product_id,
            label,
        } => {
            crate::products::refresh(
                &ctx,
                &integration_id,
                hotmart_product_id.as_deref(),
                label.as_deref(),
            )
            .await
        }
    }
    Ok(())
}

async fn process_delivery_job(
    job: ProcessDeliveries,
    ctx: Data<JobContext>,
) -> Result<(), BoxDynError> {
    // Failures are recorded on the delivery and retried by `handle_delivery` itself.
    ctx.progress
        .store(entity::now_ms(), std::sync::atomic::Ordering::Relaxed);
    handle_deliveries(&ctx, &job.delivery_ids).await;
    Ok(())
}

/// Runs the workers until `shutdown` completes.
pub async fn run(
    db: Database,
    settings: WorkerSettings,
    keys: entity::secrets::SecretKeys,
    hotmart: HotmartEndpoints,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), BoxDynError> {
    let ctx = JobContext {
        queue: Queue::new(&db),
        db: db.clone(),
        settings: settings.clone(),
        progress: Default::default(),
        keys,
        hotmart,
    };
    let sweeper = tokio::spawn(sweep_forever(ctx.clone()));
    let shutdown = shutdown.boxed().shared();
    // A worker stops when its queue backend fails (the database went away); it is started
    // again after a pause, until shutdown.
    let result = loop {
        let stop = shutdown.clone();
        // A queue backend that failed (the database went away) can leave a worker without
        // a live task stream. A watchdog restarts the workers when runnable jobs wait while
        // nothing has been processed for a while.
        let watchdog = watch_for_stuck_queue(ctx.clone());
        let result = monitor(&ctx)
            .with_terminator(tokio::time::sleep(Duration::from_secs(2)))
            .run_with_signal(async move {
                tokio::select! {
                    _ = stop => {}
                    _ = watchdog => tracing::warn!("queue looks stuck; restarting the workers"),
                }
                Ok(())
            })
            .await;
        if shutdown.peek().is_some() {
            break result;
        }
        tracing::warn!(?result, "workers stopped; restarting in 1 s");
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    sweeper.abort();
    result.map_err(Into::into)
}

/// Registers one worker on `$queue` for jobs of type `$args`, on whichever backend the
/// database uses.
macro_rules! register {
    ($monitor:expr, $ctx:expr, $queue:expr, $args:ty, $name:expr, $concurrency:expr, $handler:expr) => {{
        let (ctx, settings, name, concurrency) =
            ($ctx.clone(), $ctx.settings.clone(), $name, $concurrency);
        match ctx.db.pool.clone() {
            Pool::Sqlite(pool) => $monitor.register(move |_| {
                let config = apalis_sqlite::Config::default()
                    .queue($queue)
                    .heartbeat_interval(settings.heartbeat);
                let backend = SqliteStorage::<$args>::new(&pool)
                    .with_config(config)
                    .poll_with_interval(settings.poll_interval);
                WorkerBuilder::new(name.as_str())
                    .backend(backend)
                    .data(ctx.clone())
                    .concurrency(concurrency)
                    .build($handler)
            }),
            Pool::Postgres(pool) => $monitor.register(move |_| {
                let config = apalis_postgres::Config::default()
                    .queue($queue)
                    .heartbeat_interval(settings.heartbeat);
                let backend = PostgresStorage::<$args>::new(&pool)
                    .with_config(config)
                    .poll_with_interval(settings.poll_interval);
                WorkerBuilder::new(name.as_str())
                    .backend(backend)
                    .data(ctx.clone())
                    .concurrency(concurrency)
                    .build($handler)
            }),
        }
    }};
}

/// The workers of this process: deliveries, and work against the Hotmart API.
fn monitor(ctx: &JobContext) -> Monitor {
    // Worker names are unique per process (and run): several processes share one queue.
    let deliveries = format!("deliveries-{}", crate::queue::new_job_id());
    let hotmart = format!("imports-{}", crate::queue::new_job_id());
    let monitor = register!(
        Monitor::new(),
        ctx,
        DELIVERY_QUEUE,
        ProcessDeliveries,
        deliveries,
        ctx.settings.concurrency,
        process_delivery_job
    );
    register!(
        monitor,
        ctx,
        IMPORT_QUEUE,
        HotmartJob,
        hotmart,
        2,
        hotmart_job
    )
}

/// Completes when runnable jobs have been waiting longer than `stale_after` while this
/// process has not started a job for that long.
async fn watch_for_stuck_queue(ctx: JobContext) {
    let stale = ctx.settings.stale_after;
    ctx.progress
        .store(entity::now_ms(), std::sync::atomic::Ordering::Relaxed);
    loop {
        tokio::time::sleep(ctx.settings.sweep_interval).await;
        let idle_ms = entity::now_ms() - ctx.progress.load(std::sync::atomic::Ordering::Relaxed);
        if idle_ms < stale.as_millis() as i64 {
            continue;
        }
        match crate::queue::runnable_jobs_older_than(&ctx.db, stale).await {
            Ok(0) => ctx
                .progress
                .store(entity::now_ms(), std::sync::atomic::Ordering::Relaxed),
            Ok(_) => return,
            Err(err) => tracing::debug!(error = %err, "watchdog: cannot read the queue"),
        }
    }
}

/// Runs the sweepers (deliveries whose job vanished, import windows nothing touches)
/// until the process stops.
async fn sweep_forever(ctx: JobContext) {
    let mut interval = tokio::time::interval(ctx.settings.sweep_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if let Err(err) = crate::deliveries::sweep_once(&ctx).await {
            tracing::warn!(error = %err, "sweeper pass failed");
        }
        if let Err(err) = crate::imports::sweep_windows(&ctx).await {
            tracing::warn!(error = %err, "import sweeper pass failed");
        }
    }
}
