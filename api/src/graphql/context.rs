//! What every resolver may reach: the application services and the caller.

use entity::{Caller, database::Database, secrets::SecretKeys};

use super::error::{ApiError, ApiResult};

/// Application services, stored once in the schema.
#[derive(Clone)]
pub struct AppContext {
    pub db: Database,
    pub queue: jobs::queue::Queue,
    /// Stores webhook deliveries (group commit).
    pub inbox: crate::inbox::Inbox,
    /// Webhook token → integration and products, for the webhook hot path.
    pub routes: std::sync::Arc<crate::route_cache::RouteCache>,
    pub keys: SecretKeys,
    /// Signs the tokens `login` returns.
    pub tokens: crate::auth::TokenKeys,
    pub public_url: String,
    /// A webhook body that takes longer than this to arrive is abandoned (408).
    pub webhook_body_timeout: std::time::Duration,
    /// Subscriptions' database polls running at once (the others wait their turn).
    pub polls: std::sync::Arc<tokio::sync::Semaphore>,
    /// Feeds shared by the subscriptions of this process (one poll per board, per run).
    pub live: std::sync::Arc<crate::live::Live>,
    /// What outbound webhook URLs may point at (checked when an endpoint is saved, and
    /// again by the dispatcher at connect time).
    pub outbound_policy: std::sync::Arc<jobs::outbound_net::AddressPolicy>,
}

impl AppContext {
    /// Whether the subscription of `caller` (with its session, if any) may go on: the
    /// session is still live. Checked every [`crate::live::SESSION_CHECK`] (once for all the
    /// subscriptions of a session), and at once after a logout in this process.
    pub async fn still_signed_in(
        &self,
        caller: &entity::Caller,
        session: Option<&crate::auth::SessionId>,
    ) -> bool {
        match session {
            None => true,
            Some(session) => self.live.session_live(&session.0, &caller.user_id).await,
        }
    }
}

impl AppContext {
    pub fn webhook_url(&self, platform: entity::platform::Platform, token: &str) -> String {
        format!("{}/webhooks/{}/{token}", self.public_url, platform.path())
    }
}

pub trait ContextExt {
    fn app(&self) -> &AppContext;
    fn caller(&self) -> ApiResult<&Caller>;
    /// A row of `E` in the caller's account by id, batched with the other rows of its
    /// kind asked for at the same time (see [`super::loaders`]); `None` when missing.
    fn load_scoped<E>(
        &self,
        id: &str,
    ) -> impl std::future::Future<Output = ApiResult<Option<E::Model>>> + Send
    where
        E: entity::scope::AccountScoped + Send + Sync + 'static,
        E::Model: Clone + Send + Sync + 'static;
}

impl ContextExt for async_graphql::Context<'_> {
    fn app(&self) -> &AppContext {
        self.data_unchecked::<AppContext>()
    }

    fn caller(&self) -> ApiResult<&Caller> {
        self.data_opt::<Caller>()
            .ok_or_else(|| ApiError::new("UNAUTHENTICATED", "authentication required"))
    }

    fn load_scoped<E>(
        &self,
        id: &str,
    ) -> impl std::future::Future<Output = ApiResult<Option<E::Model>>> + Send
    where
        E: entity::scope::AccountScoped + Send + Sync + 'static,
        E::Model: Clone + Send + Sync + 'static,
    {
        let key = self
            .caller()
            .map(|caller| super::loaders::Key::<E>::new(&caller.account_id, id));
        let loader = self.data_unchecked::<super::loaders::RowLoader>();
        async move {
            loader
                .load_one(key?)
                .await
                .map_err(|err| ApiError::from((*err).clone()))
        }
    }
}
