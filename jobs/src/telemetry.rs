//! The process's counters, kept as work happens, and the gauges `/metrics` reads from
//! the database at scrape time (cheap ones only: index ranges over small sets).
//!
//! Counters count what this process did since it started (Prometheus adds the processes
//! up and copes with restarts); nothing here counts a table, so a scrape costs the same on
//! a million deliveries as on ten.

use std::sync::{Arc, atomic::AtomicI64};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
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

/// One per process, shared by its HTTP side and its workers.
#[derive(Clone)]
pub struct Telemetry(Arc<Inner>);

struct Inner {
    registry: Registry,
    webhooks: Family<Outcome, Counter>,
    attempts: Family<Outcome, Counter>,
    imported: Counter,
    handed_back: Counter,
    deliveries: Family<Status, Gauge>,
    queue_depth: Gauge,
    oldest_pending: Gauge,
    claims_expired: Gauge,
    oldest_claim: Gauge,
}

/// What `/metrics` reads from the database at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Readings {
    pub pending_deliveries: i64,
    pub failed_deliveries: i64,
    pub queue: crate::queue::QueueStats,
    pub claims: crate::queue::ClaimStats,
}

impl Default for Telemetry {
    fn default() -> Self {
        let mut registry = Registry::default();
        let webhooks = Family::<Outcome, Counter>::default();
        registry.register(
            "checkout_crm_webhooks",
            "Webhook requests answered, by outcome (accepted, duplicate, ignored, test, rejected, refused)",
            webhooks.clone(),
        );
        let attempts = Family::<Outcome, Counter>::default();
        registry.register(
            "checkout_crm_delivery_attempts",
            "Processing attempts of deliveries, by outcome (processed, retry, failed)",
            attempts.clone(),
        );
        let imported = Counter::default();
        registry.register(
            "checkout_crm_imported_sales",
            "Sales read from the Hotmart API by import windows",
            imported.clone(),
        );
        let handed_back = Counter::default();
        registry.register(
            "checkout_crm_jobs_handed_back",
            "Claimed jobs handed back to the queue when workers stopped",
            handed_back.clone(),
        );
        let deliveries = Family::<Status, Gauge>::default();
        registry.register(
            "checkout_crm_webhook_deliveries",
            "Webhook deliveries waiting to be processed (PENDING) or given up (FAILED)",
            deliveries.clone(),
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let gauge = Gauge::<i64, AtomicI64>::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let queue_depth = gauge(
            &mut registry,
            "checkout_crm_queue_depth",
            "Delivery jobs waiting in the queue",
        );
        let oldest_pending = gauge(
            &mut registry,
            "checkout_crm_queue_oldest_pending_seconds",
            "Age of the oldest delivery job that is due and not started",
        );
        let claims_expired = gauge(
            &mut registry,
            "checkout_crm_queue_claims_expired",
            "Jobs claimed by a process whose lease expired (killed or frozen), waiting to be taken over",
        );
        let oldest_claim = gauge(
            &mut registry,
            "checkout_crm_queue_oldest_claim_seconds",
            "Age of the oldest claimed, unfinished job; growing without end means a stuck process",
        );
        Telemetry(Arc::new(Inner {
            registry,
            webhooks,
            attempts,
            imported,
            handed_back,
            deliveries,
            queue_depth,
            oldest_pending,
            claims_expired,
            oldest_claim,
        }))
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

    pub fn imported_sales(&self, n: u64) {
        self.0.imported.inc_by(n);
    }

    pub fn handed_back(&self, n: u64) {
        self.0.handed_back.inc_by(n);
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
        inner.queue_depth.set(readings.queue.depth);
        inner.oldest_pending.set(readings.queue.oldest_due_age_secs);
        inner.claims_expired.set(readings.claims.expired);
        inner.oldest_claim.set(readings.claims.oldest_age_secs);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &inner.registry);
        out
    }
}
