//! Checks around every operation, whatever the transport.
//!
//! - On a websocket the caller is checked again before **each** operation, as HTTP checks
//!   each request: the token's signature and `exp`, the user's existence and role from the
//!   database. A token that expired, a deleted user or a demoted admin are refused at once.
//! - Operations on a websocket get the HTTP limits: the same time limit and a bound on how
//!   many run at once.
//! - A mutation drops the webhook route cache when it ends, so webhooks see a changed
//!   route (a rotated URL, a new hottok) from the next delivery on.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use async_graphql::{
    Request, Response, ServerError, ServerResult, Variables,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery,
        NextPrepareRequest,
    },
    parser::types::{ExecutableDocument, OperationType},
};
use tokio::sync::Semaphore;

use crate::auth::{self, AuthError, TokenKeys};

/// The token a websocket connection was opened with, kept in its connection data.
#[derive(Clone)]
pub struct SessionToken(pub String);

/// The guard, installed once in the schema.
pub struct Guard {
    keys: Option<TokenKeys>,
    socket_slots: Arc<Semaphore>,
    timeout: Duration,
}

impl Guard {
    /// `keys` verify websocket tokens (`None` only for printing the schema);
    /// `concurrency` and `timeout` are the HTTP limits, applied to websocket operations.
    pub fn new(keys: Option<TokenKeys>, concurrency: usize, timeout: Duration) -> Self {
        Guard {
            keys,
            socket_slots: Arc::new(Semaphore::new(concurrency.max(1))),
            timeout,
        }
    }
}

impl ExtensionFactory for Guard {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(GuardExtension {
            keys: self.keys.clone(),
            socket_slots: self.socket_slots.clone(),
            timeout: self.timeout,
            mutation: AtomicBool::new(false),
        })
    }
}

struct GuardExtension {
    keys: Option<TokenKeys>,
    socket_slots: Arc<Semaphore>,
    timeout: Duration,
    mutation: AtomicBool,
}

fn refusal(code: &str, message: &str) -> ServerError {
    let mut error = ServerError::new(message, None);
    let mut extensions = async_graphql::ErrorExtensionValues::default();
    extensions.set("code", code);
    error.extensions = Some(extensions);
    error
}

#[async_trait::async_trait]
impl Extension for GuardExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let (Some(token), Some(keys)) = (ctx.data_opt::<SessionToken>(), &self.keys) else {
            return next.run(ctx, request).await;
        };
        let app = ctx.data_unchecked::<super::AppContext>();
        match auth::authenticate(&app.db, keys, &token.0).await {
            // The fresh caller shadows the one of the connection.
            Ok(caller) => next.run(ctx, request.data(caller)).await,
            Err(AuthError::Unavailable(detail)) => {
                tracing::error!(error = %detail, "cannot authenticate: database unavailable");
                Err(refusal("INTERNAL", "service unavailable, try again"))
            }
            Err(err) => Err(refusal("UNAUTHENTICATED", &err.to_string())),
        }
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let mutation = document
            .operations
            .iter()
            .any(|(_, op)| op.node.ty == OperationType::Mutation);
        self.mutation.store(mutation, Ordering::Relaxed);
        Ok(document)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let response = if ctx.data_opt::<SessionToken>().is_some() {
            let Ok(_slot) = self.socket_slots.clone().try_acquire_owned() else {
                return Response::from_errors(vec![refusal(
                    "SERVICE_UNAVAILABLE",
                    "server busy, retry shortly",
                )]);
            };
            match tokio::time::timeout(self.timeout, next.run(ctx, operation_name)).await {
                Ok(response) => response,
                Err(_) => Response::from_errors(vec![refusal(
                    "SERVICE_UNAVAILABLE",
                    "request took too long, retry",
                )]),
            }
        } else {
            next.run(ctx, operation_name).await
        };
        if self.mutation.load(Ordering::Relaxed) {
            ctx.data_unchecked::<super::AppContext>()
                .routes
                .invalidate();
        }
        response
    }
}
