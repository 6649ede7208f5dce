//! Worker processes: the delivery workers, the outbound dispatcher and the sweeper,
//! until shutdown.

use std::{future::Future, sync::Arc, time::Duration};

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

/// Import-queue jobs one process runs at a time.
const IMPORT_CONCURRENCY: usize = 2;

async fn hotmart_job(job: HotmartJob, ctx: Data<JobContext>) -> Result<(), BoxDynError> {
    let handed_over = {
        let Some(_working) = ctx.start_work() else {
            return park().await;
        };
        ctx.import_progress
            .store(entity::now_ms(), std::sync::atomic::Ordering::Relaxed);
        let _running = crate::context::Working::count(&ctx.imports_running);
        match job {
            HotmartJob::ImportWindow { window_id } => handle_window(&ctx, &window_id).await,
            HotmartJob::RunExport { export_id } => {
                if let Err(err) = entity::exports::run(&ctx.db, &export_id).await {
                    tracing::warn!(export = %export_id, error = %err.chain(), "cannot run an export");
                }
                false
            }
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
                .await;
                false
            }
        }
    };
    if handed_over {
        return park().await;
    }
    Ok(())
}

async fn process_delivery_job(
    job: ProcessDeliveries,
    ctx: Data<JobContext>,
) -> Result<(), BoxDynError> {
    let Some(_working) = ctx.start_work() else {
        return park().await;
    };
    // Failures are recorded on the delivery and retried by `handle_deliveries` itself.
    ctx.progress
        .store(entity::now_ms(), std::sync::atomic::Ordering::Relaxed);
    handle_deliveries(&ctx, &job.delivery_ids).await;
    Ok(())
}

/// A job the process will not do because it is shutting down: it is never acknowledged,
/// so its claim is handed back to the queue when the workers stop.
async fn park() -> Result<(), BoxDynError> {
    std::future::pending().await
}

/// Runs the workers until `shutdown` completes, then drains: jobs not started by then
/// are not started, the jobs doing work get `shutdown_grace` to finish (import windows
/// stop at their next page), and whatever this process claimed and did not finish is
/// handed back to the queue, due at once for the next process.
pub async fn run(
    db: Database,
    settings: WorkerSettings,
    keys: entity::secrets::SecretKeys,
    hotmart: HotmartEndpoints,
    telemetry: crate::telemetry::Telemetry,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), BoxDynError> {
    let ctx = JobContext {
        telemetry,
        queue: Queue::new(&db),
        db: db.clone(),
        settings: settings.clone(),
        progress: Default::default(),
        import_progress: Default::default(),
        imports_running: Default::default(),
        keys,
        hotmart,
        stopping: Default::default(),
        busy: Default::default(),
    };
    // Stopped with this future, however it ends (returning, or dropped mid-way).
    let mut background = tokio::task::JoinSet::new();
    background.spawn(sweep_forever(ctx.clone()));
    background.spawn(crate::outbound::dispatch_forever(ctx.clone()));
    background.spawn(refresh_statistics_forever(ctx.clone()));
    let stopping = ctx.stopping.clone();
    let shutdown = async move {
        shutdown.await;
        stopping.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    .boxed()
    .shared();
    // The workers stop when their queue backend fails (the database went away), or when
    // the queue looks stuck; they are started again after a pause, until shutdown.
    let result = loop {
        let result = run_until_stopped(&ctx, shutdown.clone()).await;
        if shutdown.peek().is_some() {
            break result;
        }
        tracing::warn!(?result, "workers stopped; restarting in 1 s");
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    background.abort_all();
    result
}

/// Runs this process's workers until `stop`, a stuck queue or a failed backend; then
/// drains (on `stop`) and hands back what they claimed.
async fn run_until_stopped(
    ctx: &JobContext,
    stop: impl Future<Output = ()> + Send,
) -> Result<(), BoxDynError> {
    // A queue backend that failed can leave a worker without a live task stream. A
    // watchdog restarts the workers when runnable jobs wait while nothing has been
    // processed for a while.
    let watchdog = watch_for_stuck_queue(ctx.clone());
    // apalis ends a worker whose queue backend failed once (a fetch that met a locked or
    // lost database) and keeps running the others: the whole set is restarted instead.
    let died = Arc::new(tokio::sync::Notify::new());
    let (monitor, names) = monitor(ctx, died.clone());
    let leases = tokio::spawn(renew_leases_forever(ctx.clone(), names.clone()));
    // The monitor is not asked to shut down: a stopping apalis worker stops driving its
    // queue backend while its jobs finish, and a half-done fetch would keep SQLite's
    // write lock from those very jobs. The drain is done here, then the monitor is
    // dropped (what is left of its jobs rolls back) and the claims handed back.
    let result = tokio::select! {
        result = monitor.run() => result.map_err(BoxDynError::from),
        () = async {
            tokio::select! {
                _ = stop => drain(ctx).await,
                _ = watchdog => tracing::warn!("queue looks stuck; restarting the workers"),
                () = died.notified() => tracing::warn!("a worker stopped; restarting the workers"),
            }
        } => Ok(()),
    };
    leases.abort();
    hand_back(ctx, &names).await;
    result
}

/// Waits until no job of this process is doing work, at most `shutdown_grace`.
async fn drain(ctx: &JobContext) {
    let deadline = tokio::time::Instant::now() + ctx.settings.shutdown_grace;
    while ctx.busy.load(std::sync::atomic::Ordering::SeqCst) > 0 {
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!("shutdown grace period over; abandoning the jobs still running");
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The queue records what finished on its next turn.
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Releases what the stopped `workers` claimed and did not finish.
async fn hand_back(ctx: &JobContext, workers: &[String]) {
    match crate::queue::release_claims(&ctx.db, workers).await {
        Ok(0) => {}
        Ok(released) => {
            ctx.telemetry.handed_back(released);
            tracing::info!(released, "handed unfinished jobs back to the queue");
        }
        // Not lost: the lease expires and another process takes them.
        Err(err) => tracing::warn!(error = %err, "cannot hand jobs back; their lease will expire"),
    }
}

/// Renews the lease on this process's claimed work every heartbeat, apart from the work
/// itself: a busy or slow process keeps what it claimed.
async fn renew_leases_forever(ctx: JobContext, workers: Vec<String>) {
    let mut interval = tokio::time::interval(ctx.settings.heartbeat);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if let Err(err) = crate::queue::renew_leases(&ctx.db, &workers).await {
            tracing::warn!(error = %err, "cannot renew the lease on claimed jobs");
        }
    }
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
                    .heartbeat_interval(settings.heartbeat)
                    .missed_heartbeats(missed_heartbeats(&settings));
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
                    .heartbeat_interval(settings.heartbeat)
                    .missed_heartbeats(missed_heartbeats(&settings));
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

/// Heartbeats a claim may miss before another process takes the work: the lease.
fn missed_heartbeats(settings: &WorkerSettings) -> usize {
    let beats = settings.lease.as_millis() / settings.heartbeat.as_millis().max(1);
    (beats as usize).max(2)
}

/// The workers of this process (deliveries, and work against the Hotmart API), and
/// their names. A worker that stops on an error is not restarted alone: `died` is told.
fn monitor(ctx: &JobContext, died: Arc<tokio::sync::Notify>) -> (Monitor, Vec<String>) {
    // Worker names are unique per process (and run): several processes share one queue.
    // The process id in them tells an operator which process holds a claim.
    let pid = std::process::id();
    let deliveries = format!("deliveries-{pid}-{}", crate::queue::new_job_id());
    let hotmart = format!("imports-{pid}-{}", crate::queue::new_job_id());
    let names = vec![deliveries.clone(), hotmart.clone()];
    let monitor = Monitor::new().should_restart(move |worker, error| {
        tracing::warn!(worker = worker.name(), ?error, "worker stopped on an error");
        died.notify_one();
        false
    });
    let monitor = register!(
        monitor,
        ctx,
        DELIVERY_QUEUE,
        ProcessDeliveries,
        deliveries,
        ctx.settings.concurrency,
        process_delivery_job
    );
    let monitor = register!(
        monitor,
        ctx,
        IMPORT_QUEUE,
        HotmartJob,
        hotmart,
        IMPORT_CONCURRENCY,
        hotmart_job
    );
    (monitor, names)
}

/// Completes when a queue's runnable jobs have been waiting longer than `stale_after`
/// while this process has not started one of them for that long (for the import queue:
/// while it also had a slot free). A worker can be alive and never fetch again; this is
/// the net under that, whatever the cause.
async fn watch_for_stuck_queue(ctx: JobContext) {
    use std::sync::atomic::Ordering::Relaxed;
    ctx.progress.store(entity::now_ms(), Relaxed);
    ctx.import_progress.store(entity::now_ms(), Relaxed);
    loop {
        tokio::time::sleep(ctx.settings.sweep_interval).await;
        let deliveries = stuck(&ctx, DELIVERY_QUEUE, &ctx.progress, false).await;
        let busy = ctx.imports_running.load(Relaxed) >= IMPORT_CONCURRENCY;
        let imports = stuck(&ctx, IMPORT_QUEUE, &ctx.import_progress, busy).await;
        if deliveries || imports {
            tracing::warn!(
                deliveries,
                imports,
                "jobs wait while this process starts none"
            );
            return;
        }
    }
}

/// Whether `queue` looks stuck to this process (see [`watch_for_stuck_queue`]); when
/// nothing waits, its clock starts again.
async fn stuck(
    ctx: &JobContext,
    queue: &str,
    started: &std::sync::atomic::AtomicI64,
    busy: bool,
) -> bool {
    use std::sync::atomic::Ordering::Relaxed;
    let stale = ctx.settings.stale_after;
    if busy {
        started.store(entity::now_ms(), Relaxed);
        return false;
    }
    if entity::now_ms() - started.load(Relaxed) < stale.as_millis() as i64 {
        return false;
    }
    match crate::queue::runnable_jobs_older_than(&ctx.db, queue, stale).await {
        Ok(0) => {
            started.store(entity::now_ms(), Relaxed);
            false
        }
        Ok(_) => true,
        Err(err) => {
            tracing::debug!(error = %err, "watchdog: cannot read the queue");
            false
        }
    }
}

/// PostgreSQL: keeps the planner's statistics of the deal engine's tables fresh while they
/// grow (see `entity::database::refresh_statistics`), every few seconds.
async fn refresh_statistics_forever(ctx: JobContext) {
    if ctx.db.is_sqlite() {
        return;
    }
    let mut interval = tokio::time::interval(std::time::Duration::from_secs(5));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        match entity::database::refresh_statistics(&ctx.db).await {
            Ok(tables) if !tables.is_empty() => tracing::debug!(?tables, "analysed"),
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "cannot refresh table statistics"),
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
        if let Err(err) = crate::imports::start_due_reconciliations(&ctx).await {
            tracing::warn!(error = %err, "cannot start due reconciliations");
        }
        if let Err(err) = entity::sign_in::prune(&ctx.db.conn).await {
            tracing::warn!(error = %err, "cannot prune ended sessions");
        }
        if let Err(err) = entity::exports::prune(&ctx.db.conn, entity::now_ms()).await {
            tracing::warn!(error = %err, "cannot prune expired exports");
        }
        if let Err(err) = entity::audit::prune(&ctx.db.conn, entity::now_ms()).await {
            tracing::warn!(error = %err, "cannot prune old audit entries");
        }
        if let Err(err) = entity::outbound::delivery::prune(&ctx.db.conn, entity::now_ms()).await {
            tracing::warn!(error = %err, "cannot prune old outbound messages");
        }
    }
}
