//! What every job handler is given: the database, the queue, the settings, the keys
//! and where the Hotmart API is.

use std::time::Duration;

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
    /// Worker liveness heartbeat of the queue.
    pub heartbeat: Duration,
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
            heartbeat: Duration::from_secs(30),
        }
    }
}

/// What job handlers get.
#[derive(Clone)]
pub struct JobContext {
    pub db: Database,
    pub queue: Queue,
    pub settings: WorkerSettings,
    /// When this process last started a job (epoch ms), for the stuck-queue watchdog.
    pub progress: std::sync::Arc<std::sync::atomic::AtomicI64>,
    /// Decrypts stored Hotmart credentials.
    pub keys: entity::secrets::SecretKeys,
    pub hotmart: HotmartEndpoints,
}

/// Base URLs of the Hotmart API (`HOTMART_API_URL`, `HOTMART_AUTH_URL`) and the request
/// rate one credential may use (`HOTMART_REQUESTS_PER_MINUTE`).
#[derive(Debug, Clone)]
pub struct HotmartEndpoints {
    pub api_url: String,
    pub auth_url: String,
    pub requests_per_minute: f64,
}
