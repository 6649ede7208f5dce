//! What every HTTP handler (GraphQL, webhooks, websocket, metrics) is given.

use crate::{
    auth::TokenKeys,
    graphql::{AppContext, CrmSchema},
};

#[derive(Clone)]
pub struct HttpState {
    pub schema: CrmSchema,
    pub app: AppContext,
    pub tokens: TokenKeys,
    /// Requests served at once per pool; more are answered 503 at once (load shedding).
    pub max_concurrency: usize,
    /// Requests slower than this are answered 503.
    pub request_timeout: std::time::Duration,
    /// `/metrics` has a listener of its own (`METRICS_BIND`) and is not on the main router.
    pub metrics_apart: bool,
    /// Who may read `/metrics` beside the API (see `metrics.rs`).
    pub metrics_token: Option<String>,
    /// The last integrations' health counts for `/metrics`, and when.
    pub health_cache: HealthCache,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: crate::client::TrustedProxies,
    /// Claimed work unrenewed for this long counts as expired in `/metrics`.
    pub worker_lease: std::time::Duration,
    /// The process's counters.
    pub telemetry: jobs::telemetry::Telemetry,
}

/// Cached health counts of `/metrics`.
pub type HealthCache =
    std::sync::Arc<tokio::sync::Mutex<Option<(std::time::Instant, Vec<(&'static str, i64)>)>>>;
