//! The process's counters, kept as work happens, and the gauges `/metrics` reads from
//! the database at scrape time (cheap ones only: index ranges over small sets).
//!
//! Counters count what this process did since it started (Prometheus adds the processes
//! up and copes with restarts); nothing here counts a table, so a scrape costs the same on
//! a million deliveries as on ten.

use std::sync::Arc;

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Status {
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Health {
    pub health: &'static str,
}

/// One per process, shared by its HTTP side and its workers.
#[derive(Clone)]
pub struct Telemetry(Arc<Inner>);

struct Inner {
    registry: Registry,
    webhooks: Family<Outcome, Counter>,
    attempts: Family<Outcome, Counter>,
    imported: Counter,
    healed: Counter,
    handed_back: Counter,
    acks: AckHistograms,
    deliveries: Family<Status, Gauge>,
    integrations: Family<Health, Gauge>,
    queue: QueueGauges,
    outbound: OutboundMetrics,
}

struct OutboundMetrics {
    attempts: Family<Outcome, Counter>,
    disabled: Counter,
    endpoints_disabled: Gauge,
    oldest_pending: Gauge,
}

impl OutboundMetrics {
    fn register(r: &mut Registry) -> Self {
        OutboundMetrics {
            attempts: metric(
                r,
                "checkout_crm_outbound_attempts",
                "Outbound webhook attempts, by outcome (sent, retried, failed)",
            ),
            disabled: metric(
                r,
                "checkout_crm_outbound_endpoints_disabled_by_failures",
                "Webhook endpoints this process disabled (410 Gone, or days of failures)",
            ),
            endpoints_disabled: metric(
                r,
                "checkout_crm_outbound_endpoints_disabled",
                "Webhook endpoints disabled now",
            ),
            oldest_pending: metric(
                r,
                "checkout_crm_outbound_oldest_pending_seconds",
                "Age of the oldest outbound message not yet delivered or given up",
            ),
        }
    }
}

/// The queue's gauges.
struct QueueGauges {
    depth: Gauge,
    oldest_pending: Gauge,
    claims_expired: Gauge,
    oldest_claim: Gauge,
}

impl QueueGauges {
    fn register(r: &mut Registry) -> Self {
        QueueGauges {
            depth: metric(
                r,
                "checkout_crm_queue_depth",
                "Delivery jobs waiting in the queue",
            ),
            oldest_pending: metric(
                r,
                "checkout_crm_queue_oldest_pending_seconds",
                "Age of the oldest delivery job that is due and not started",
            ),
            claims_expired: metric(
                r,
                "checkout_crm_queue_claims_expired",
                "Jobs claimed by a process whose lease expired (killed or frozen), waiting to be taken over",
            ),
            oldest_claim: metric(
                r,
                "checkout_crm_queue_oldest_claim_seconds",
                "Age of the oldest claimed, unfinished job; growing without end means a stuck process",
            ),
        }
    }
}

/// Bounds (seconds) of the acknowledgement histograms: fine below 20 ms, where Hotmart's
/// timeout is far away but a launch burst's latency shows.
const ACK_BUCKETS: [f64; 14] = [
    0.000_5, 0.001, 0.002, 0.003, 0.005, 0.007_5, 0.01, 0.015, 0.02, 0.05, 0.1, 0.25, 1.0, 5.0,
];

/// How long webhook requests took inside the server.
struct AckHistograms {
    /// From the handler's start to its answer.
    handler: Histogram,
    /// The part spent storing the delivery: waiting for the inbox writer and its commit.
    inbox: Histogram,
}

impl AckHistograms {
    fn register(r: &mut Registry) -> Self {
        let histogram = |r: &mut Registry, name: &str, help: &str| {
            let h = Histogram::new(ACK_BUCKETS);
            r.register(name, help, h.clone());
            h
        };
        AckHistograms {
            handler: histogram(
                r,
                "checkout_crm_webhook_handler_seconds",
                "Time from a webhook request reaching its handler to its answer",
            ),
            inbox: histogram(
                r,
                "checkout_crm_webhook_inbox_seconds",
                "Time a webhook delivery waited for the inbox writer and its commit",
            ),
        }
    }
}

/// What `/metrics` reads from the database at scrape time.
#[derive(Debug, Clone, Default)]
pub struct Readings {
    pub pending_deliveries: i64,
    pub failed_deliveries: i64,
    pub queue: crate::queue::QueueStats,
    /// Active integrations by health (`OK`, `WARNING`, `FAILING`).
    pub integrations_by_health: Vec<(&'static str, i64)>,
    pub claims: crate::queue::ClaimStats,
    pub outbound_endpoints_disabled: i64,
    pub outbound_oldest_pending_secs: i64,
}

/// Registers a metric of the default kind under `name`.
fn metric<M>(registry: &mut Registry, name: &str, help: &str) -> M
where
    M: Default + Clone + prometheus_client::registry::Metric,
{
    let metric = M::default();
    registry.register(name, help, metric.clone());
    metric
}

impl Default for Telemetry {
    fn default() -> Self {
        let mut r = Registry::default();
        let inner = Inner {
            webhooks: metric(
                &mut r,
                "checkout_crm_webhooks",
                "Webhook requests answered, by outcome (accepted, duplicate, ignored, test, rejected, refused, unknown_url)",
            ),
            attempts: metric(
                &mut r,
                "checkout_crm_delivery_attempts",
                "Processing attempts of deliveries, by outcome (processed, retry, failed)",
            ),
            imported: metric(
                &mut r,
                "checkout_crm_imported_sales",
                "Sales read from the Hotmart API by import windows",
            ),
            healed: metric(
                &mut r,
                "checkout_crm_healed_sales",
                "Sales reconciliation found that no webhook had delivered",
            ),
            handed_back: metric(
                &mut r,
                "checkout_crm_jobs_handed_back",
                "Claimed jobs handed back to the queue when workers stopped",
            ),
            deliveries: metric(
                &mut r,
                "checkout_crm_webhook_deliveries",
                "Webhook deliveries waiting to be processed (PENDING) or given up (FAILED)",
            ),
            integrations: metric(
                &mut r,
                "checkout_crm_integrations",
                "Active integrations by health (OK, WARNING, FAILING)",
            ),
            queue: QueueGauges::register(&mut r),
            acks: AckHistograms::register(&mut r),
            outbound: OutboundMetrics::register(&mut r),
            // Last: the fields above registered themselves in it.
            registry: r,
        };
        Telemetry(Arc::new(inner))
    }
}

impl Telemetry {
    /// A webhook request answered with `outcome`.
    pub fn webhook(&self, outcome: &'static str) {
        self.0.webhooks.get_or_create(&Outcome { outcome }).inc();
    }

    /// `n` processing attempts ended with `outcome` (`processed`, `retry`, `failed`).
    pub fn attempts(&self, outcome: &'static str, n: u64) {
        if n > 0 {
            self.0
                .attempts
                .get_or_create(&Outcome { outcome })
                .inc_by(n);
        }
    }

    /// A webhook request's time in its handler.
    pub fn webhook_handled(&self, took: std::time::Duration) {
        self.0.acks.handler.observe(took.as_secs_f64());
    }

    /// A delivery's time in the inbox (queue and commit).
    pub fn webhook_stored(&self, took: std::time::Duration) {
        self.0.acks.inbox.observe(took.as_secs_f64());
    }

    pub fn imported_sales(&self, n: u64) {
        self.0.imported.inc_by(n);
    }

    pub fn healed_sales(&self, n: u64) {
        self.0.healed.inc_by(n);
    }

    pub fn handed_back(&self, n: u64) {
        self.0.handed_back.inc_by(n);
    }

    /// `n` outbound attempts ended with `outcome` (`sent`, `retried`, `failed`).
    pub fn outbound(&self, outcome: &'static str, n: u64) {
        if n > 0 {
            self.0
                .outbound
                .attempts
                .get_or_create(&Outcome { outcome })
                .inc_by(n);
        }
    }

    /// Endpoints disabled by their failures.
    pub fn outbound_disabled(&self, n: u64) {
        self.0.outbound.disabled.inc_by(n);
    }

    /// The Prometheus text of the counters and of `readings`.
    pub fn render(&self, readings: &Readings) -> String {
        let inner = &self.0;
        for (status, n) in [
            ("PENDING", readings.pending_deliveries),
            ("FAILED", readings.failed_deliveries),
        ] {
            inner.deliveries.get_or_create(&Status { status }).set(n);
        }
        for (health, n) in &readings.integrations_by_health {
            inner.integrations.get_or_create(&Health { health }).set(*n);
        }
        inner.queue.depth.set(readings.queue.depth);
        inner
            .queue
            .oldest_pending
            .set(readings.queue.oldest_due_age_secs);
        inner.queue.claims_expired.set(readings.claims.expired);
        inner
            .queue
            .oldest_claim
            .set(readings.claims.oldest_age_secs);
        inner
            .outbound
            .endpoints_disabled
            .set(readings.outbound_endpoints_disabled);
        inner
            .outbound
            .oldest_pending
            .set(readings.outbound_oldest_pending_secs);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &inner.registry);
        out
    }
}
