//! What a webhook URL token routes to — its integration and products — kept in memory so
//! that a burst of deliveries does not read the same two rows for every request.
//!
//! An entry is used only while it is younger than [`ROUTE_TTL`] and no GraphQL request
//! has run in this process since it was loaded: every change to an integration or its
//! products is a GraphQL mutation, so a change made here is seen by the next delivery,
//! and a change made by another process (another server, the CLI) within the TTL.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use entity::{
    DomainResult, deliveries, products,
    tables::{integration, product},
};
use sea_orm::DatabaseConnection;

/// Longest an entry is trusted without a change seen in this process.
pub const ROUTE_TTL: Duration = Duration::from_secs(1);

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

#[derive(Default)]
pub struct RouteCache {
    generation: AtomicU64,
    entries: Mutex<HashMap<String, Entry>>,
}

impl RouteCache {
    /// Forgets every entry (called after every GraphQL request).
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The route of `token`; `None` for an unknown token (never cached).
    pub async fn get(&self, db: &DatabaseConnection, token: &str) -> DomainResult<Option<Route>> {
        let generation = self.generation.load(Ordering::SeqCst);
        if let Some(entry) = self.entries.lock().expect("route cache").get(token)
            && entry.generation == generation
            && entry.loaded.elapsed() < ROUTE_TTL
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
