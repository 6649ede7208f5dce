//! What a webhook URL token routes to — its integration and products — kept in memory so
//! that a burst of deliveries does not read the same two rows for every request.
//!
//! The cache follows the `routes` version stamp in the database: every domain function
//! that changes an integration or its products bumps it in the same write (see
//! `entity::stamps`), whatever called it — GraphQL, the CLI, a job. Each process sees the
//! new version on its next check (at most every [`STAMP_CHECK`], by one small read, only
//! while webhooks arrive), and its own changes at once, without a read (the bumps it made,
//! counted in memory by `stamps::bumped_here`); other requests leave the cache alone. [`MAX_AGE`] is
//! only a safety net, for a change whose stamp could not be written (the process died
//! between the two).

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use entity::{
    DomainResult, deliveries, products, stamps,
    tables::{integration, product},
};
use sea_orm::DatabaseConnection;

/// How often the database's `routes` stamp is compared with the cache's.
pub const STAMP_CHECK: Duration = Duration::from_millis(250);

/// Longest an entry is trusted even when no change was recorded.
pub const MAX_AGE: Duration = Duration::from_secs(60);

/// Entries kept at most (tokens of active integrations; cleared when full).
const MAX_ENTRIES: usize = 10_000;

#[derive(Clone)]
pub struct Route {
    pub integration: Arc<integration::Model>,
    pub products: Arc<Vec<product::Model>>,
}

struct Entry {
    route: Route,
    generation: u64,
    loaded: Instant,
}

pub struct RouteCache {
    generation: AtomicU64,
    entries: Mutex<HashMap<String, Entry>>,
    /// The database's `routes` stamp when last read (-1: not read yet).
    stamp: AtomicI64,
    /// When the stamp was last read (ms since `started`).
    checked_ms: AtomicI64,
    /// [`stamps::bumped_here`] when last looked at.
    bumped_here: AtomicU64,
    started: Instant,
}

impl Default for RouteCache {
    fn default() -> Self {
        RouteCache {
            generation: AtomicU64::new(0),
            entries: Mutex::new(HashMap::new()),
            stamp: AtomicI64::new(-1),
            checked_ms: AtomicI64::new(-(STAMP_CHECK.as_millis() as i64)),
            bumped_here: AtomicU64::new(stamps::bumped_here()),
            started: Instant::now(),
        }
    }
}

impl RouteCache {
    /// Drops the entries when this process changed routes since the last look (no read:
    /// its own change holds from the next delivery).
    fn follow_own_changes(&self) {
        let here = stamps::bumped_here();
        if self.bumped_here.swap(here, Ordering::SeqCst) != here {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Drops the entries when another process recorded a change since the last check.
    /// One request checks at a time; the others use the entries meanwhile.
    async fn follow_stamp(&self, db: &DatabaseConnection) {
        let now = self.started.elapsed().as_millis() as i64;
        let last = self.checked_ms.load(Ordering::SeqCst);
        if now - last < STAMP_CHECK.as_millis() as i64
            || self
                .checked_ms
                .compare_exchange(last, now, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
        {
            return;
        }
        self.compare_stamp(db).await;
    }

    async fn compare_stamp(&self, db: &DatabaseConnection) {
        match stamps::read(db, stamps::ROUTES).await {
            Ok(version) => {
                if self.stamp.swap(version, Ordering::SeqCst) != version {
                    self.generation.fetch_add(1, Ordering::SeqCst);
                }
            }
            Err(err) => tracing::debug!(error = %err, "cannot read the routes stamp"),
        }
    }

    /// The route of `token`; `None` for an unknown token (never cached).
    pub async fn get(&self, db: &DatabaseConnection, token: &str) -> DomainResult<Option<Route>> {
        self.follow_own_changes();
        self.follow_stamp(db).await;
        let generation = self.generation.load(Ordering::SeqCst);
        if let Some(entry) = self.entries.lock().expect("route cache").get(token)
            && entry.generation == generation
            && entry.loaded.elapsed() < MAX_AGE
        {
            return Ok(Some(entry.route.clone()));
        }
        // Tagged with the generation read before loading: a change committed while
        // loading makes this entry stale at once.
        let loaded = Instant::now();
        let Some(integration) = deliveries::integration_by_token(db, token).await? else {
            return Ok(None);
        };
        let route = Route {
            products: Arc::new(products::of_integration(db, &integration.id).await?),
            integration: Arc::new(integration),
        };
        let mut entries = self.entries.lock().expect("route cache");
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            token.to_owned(),
            Entry {
                route: route.clone(),
                generation,
                loaded,
            },
        );
        Ok(Some(route))
    }
}
