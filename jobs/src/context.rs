//! What every job handler is given: the database, the queue, the settings, the keys
//! and where the Hotmart API is.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use entity::database::Database;

use crate::queue::Queue;

/// How deliveries are processed. Defaults suit production; tests shorten the intervals.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Attempts before a delivery becomes `FAILED`.
    pub max_attempts: i32,
    /// First retry delay; doubles with every attempt.
    pub backoff_base: Duration,
    /// A single processing attempt is abandoned (and counted as failed) after this.
    pub deadline: Duration,
    /// How often idle workers look for new jobs.
    pub poll_interval: Duration,
    /// How often the sweeper looks for deliveries whose job vanished.
    pub sweep_interval: Duration,
    /// A `PENDING` delivery whose job was enqueued longer ago than this, and is not
    /// waiting in the queue, is re-enqueued.
    pub stale_after: Duration,
    /// Jobs processed at once per worker process.
    pub concurrency: usize,
    /// How often a worker process renews the lease on the work it has claimed.
    pub heartbeat: Duration,
    /// Work whose lease was not renewed for this long (its process died or hangs) is
    /// taken by another process. At least two heartbeats.
    pub lease: Duration,
    /// On shutdown, how long the groups being processed get to finish before they are
    /// abandoned (their transactions roll back) and handed back.
    pub shutdown_grace: Duration,
    /// How outbound webhooks are sent.
    pub outbound: OutboundSettings,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            backoff_base: Duration::from_secs(5),
            deadline: Duration::from_secs(60),
            poll_interval: Duration::from_millis(200),
            sweep_interval: Duration::from_secs(30),
            stale_after: Duration::from_secs(300),
            concurrency: 4,
            heartbeat: Duration::from_secs(5),
            lease: Duration::from_secs(15),
            shutdown_grace: Duration::from_secs(20),
            outbound: Default::default(),
        }
    }
}

impl WorkerSettings {
    /// The retry policy of deliveries: after failed attempt number `attempt`, the delay
    /// before the next one — `backoff_base · 2^(attempt-1)`, at most one hour — or `None`
    /// when the delivery is out of attempts.
    pub fn retry_in(&self, attempt: i32) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let exp = (attempt.max(1) - 1).min(20) as u32;
        let secs = self
            .backoff_base
            .as_secs()
            .max(1)
            .saturating_mul(1u64 << exp);
        Some(Duration::from_secs(secs.min(3600)))
    }
}

/// How outbound messages are sent. Defaults suit production; tests shorten the schedule.
#[derive(Debug, Clone)]
pub struct OutboundSettings {
    pub policy: Arc<crate::outbound_net::AddressPolicy>,
    pub retry: entity::outbound::delivery::RetryPolicy,
    /// An attempt's deadline: a 2xx after this is a failure.
    pub timeout: Duration,
    /// Requests in flight per process.
    pub max_in_flight: usize,
    /// Requests in flight per endpoint.
    pub per_endpoint: usize,
    /// How often an idle dispatcher looks for due messages.
    pub poll_interval: Duration,
    /// A claimed message is another dispatcher's to take after this (its sender died), ms;
    /// longer than an attempt.
    pub lease_ms: i64,
}

impl Default for OutboundSettings {
    fn default() -> Self {
        OutboundSettings {
            policy: Arc::new(crate::outbound_net::AddressPolicy::default()),
            retry: Default::default(),
            timeout: Duration::from_secs(15),
            max_in_flight: 64,
            per_endpoint: 32,
            poll_interval: Duration::from_millis(200),
            lease_ms: 60_000,
        }
    }
}

/// What job handlers get.
#[derive(Clone)]
pub struct JobContext {
    pub db: Database,
    pub queue: Queue,
    pub settings: WorkerSettings,
    /// When this process last started a delivery job (epoch ms), for the stuck-queue
    /// watchdog.
    pub progress: std::sync::Arc<std::sync::atomic::AtomicI64>,
    /// The same for the import queue (imports, exports, product refreshes), with how many
    /// of its jobs run now: the watchdog looks at it only while a slot is free.
    pub import_progress: std::sync::Arc<std::sync::atomic::AtomicI64>,
    pub imports_running: Arc<AtomicUsize>,
    /// Decrypts stored Hotmart credentials.
    pub keys: entity::secrets::SecretKeys,
    pub hotmart: HotmartEndpoints,
    /// Set when the process is shutting down: long jobs (import windows) stop at their
    /// next checkpoint and hand the rest back to the queue.
    pub stopping: Arc<AtomicBool>,
    /// Jobs of this process doing work now (not parked), for the drain on shutdown.
    pub busy: Arc<AtomicUsize>,
    pub telemetry: crate::telemetry::Telemetry,
}

impl JobContext {
    /// Import windows take turns between accounts: when another account's window waits
    /// for a slot, this one (between two pages, its cursor saved) steps back into the
    /// queue behind it. `true` when it did; the caller then ends the job.
    pub async fn gave_way(
        &self,
        window: &entity::tables::import_window::Model,
    ) -> entity::DomainResult<bool> {
        let db = &self.db.conn;
        if !entity::imports::others_waiting(db, &window.account_id).await? {
            return Ok(false);
        }
        entity::imports::give_way(db, &window.id).await?;
        if let Err(err) = self.queue.enqueue_import_window(&window.id).await {
            tracing::warn!(error = %err, "cannot enqueue a window that gave way; the sweeper will");
        }
        Ok(true)
    }

    /// Whether the process is shutting down.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Counts a job as doing work until the guard drops, unless the process is shutting
    /// down (then the job must not start: `None`).
    pub fn start_work(&self) -> Option<Working> {
        // Counted first, checked second: the drain either sees the job busy or the job
        // sees the process stopping.
        let working = Working::count(&self.busy);
        (!self.is_stopping()).then_some(working)
    }
}

/// A job doing work (see [`JobContext::start_work`]): counted until dropped.
pub struct Working(Arc<AtomicUsize>);

impl Working {
    /// Counts one more in `counter` until dropped.
    pub fn count(counter: &Arc<AtomicUsize>) -> Working {
        counter.fetch_add(1, Ordering::SeqCst);
        Working(counter.clone())
    }
}

impl Drop for Working {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Base URLs of the Hotmart API (`HOTMART_API_URL`, `HOTMART_AUTH_URL`) and the request
/// rate one credential may use (`HOTMART_REQUESTS_PER_MINUTE`); and Kiwify's API
/// (`KIWIFY_API_URL`).
#[derive(Debug, Clone)]
pub struct HotmartEndpoints {
    pub api_url: String,
    pub auth_url: String,
    pub requests_per_minute: f64,
    pub kiwify_api_url: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_up_to_an_hour_and_stop_at_the_last_attempt() {
        let settings = WorkerSettings {
            max_attempts: 20,
            backoff_base: Duration::from_secs(5),
            ..WorkerSettings::default()
        };
        let delays: Vec<u64> = (1..=4)
            .map(|a| settings.retry_in(a).unwrap().as_secs())
            .collect();
        assert_eq!(delays, [5, 10, 20, 40]);
        assert_eq!(settings.retry_in(19), Some(Duration::from_secs(3600)));
        assert_eq!(settings.retry_in(20), None);
    }
}
