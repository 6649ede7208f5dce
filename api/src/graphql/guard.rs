//! Checks around every operation, whatever the transport.
//!
//! - On a websocket the caller is checked again before **each** operation, as HTTP checks
//!   each request: the token's signature and `exp`, the user's existence and role from the
//!   database. A token that expired, a deleted user or a demoted admin are refused at once.
//! - Operations on a websocket get the HTTP limits: the same time limit and a bound on how
//!   many run at once.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use async_graphql::{
    Request, Response, ServerError, ServerResult, ValidationResult, Variables,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery,
        NextPrepareRequest, NextSubscribe, NextValidation,
    },
    parser::types::{ExecutableDocument, Selection, SelectionSet},
};
use tokio::sync::Semaphore;

use crate::auth::{self, AuthError, TokenKeys};

/// The token a websocket connection was opened with, kept in its connection data.
#[derive(Clone)]
pub struct SessionToken(pub String);

/// Subscriptions one websocket may run at once.
pub const MAX_SUBSCRIPTIONS_PER_SOCKET: usize = 8;
/// Subscriptions one user may run at once, over all their sockets.
pub const MAX_SUBSCRIPTIONS_PER_USER: usize = 32;

/// The running subscriptions of one websocket, kept in its connection data.
#[derive(Clone, Default)]
pub struct SocketSubscriptions(Arc<std::sync::atomic::AtomicUsize>);

/// The running subscriptions per user, for the whole process.
#[derive(Clone, Default)]
struct UserSubscriptions(Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>);

/// One running subscription, counted on its socket and its user until dropped.
struct Running {
    socket: Option<SocketSubscriptions>,
    users: UserSubscriptions,
    user: String,
}

impl UserSubscriptions {
    /// Counts a new subscription, or says why it may not start.
    fn start(&self, socket: Option<SocketSubscriptions>, user: &str) -> Result<Running, String> {
        let mut users = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = users.entry(user.to_owned()).or_default();
        if *count >= MAX_SUBSCRIPTIONS_PER_USER {
            return Err(format!(
                "too many subscriptions for this user (at most {MAX_SUBSCRIPTIONS_PER_USER})"
            ));
        }
        if let Some(socket) = &socket {
            let on_socket = socket.0.fetch_add(1, Ordering::SeqCst);
            if on_socket >= MAX_SUBSCRIPTIONS_PER_SOCKET {
                socket.0.fetch_sub(1, Ordering::SeqCst);
                return Err(format!(
                    "too many subscriptions on this connection (at most {MAX_SUBSCRIPTIONS_PER_SOCKET})"
                ));
            }
        }
        *count += 1;
        Ok(Running {
            socket,
            users: self.clone(),
            user: user.to_owned(),
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(socket) = &self.socket {
            socket.0.fetch_sub(1, Ordering::SeqCst);
        }
        let mut users = self.users.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = users.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                users.remove(&self.user);
            }
        }
    }
}

/// The guard, installed once in the schema.
pub struct Guard {
    keys: Option<TokenKeys>,
    subscriptions: UserSubscriptions,
    socket_slots: Arc<Semaphore>,
    timeout: Duration,
}

impl Guard {
    /// `keys` verify websocket tokens (`None` only for printing the schema);
    /// `concurrency` and `timeout` are the HTTP limits, applied to websocket operations.
    pub fn new(keys: Option<TokenKeys>, concurrency: usize, timeout: Duration) -> Self {
        Guard {
            keys,
            subscriptions: Default::default(),
            socket_slots: Arc::new(Semaphore::new(concurrency.max(1))),
            timeout,
        }
    }
}

impl ExtensionFactory for Guard {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(GuardExtension {
            keys: self.keys.clone(),
            subscriptions: self.subscriptions.clone(),
            socket_slots: self.socket_slots.clone(),
            timeout: self.timeout,
        })
    }
}

struct GuardExtension {
    keys: Option<TokenKeys>,
    subscriptions: UserSubscriptions,
    socket_slots: Arc<Semaphore>,
    timeout: Duration,
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
        // Each request batches (and remembers) the rows its nodes point at.
        let request = match ctx.data_opt::<super::AppContext>() {
            Some(app) => request
                .data(super::loaders::row_loader(app.db.conn.clone()))
                .data(super::loaders::count_loader(app.db.conn.clone())),
            None => request,
        };
        let (Some(token), Some(keys)) = (ctx.data_opt::<SessionToken>(), &self.keys) else {
            return next.run(ctx, request).await;
        };
        let app = ctx.data_unchecked::<super::AppContext>();
        match auth::authenticate_session(&app.db, keys, &token.0).await {
            // The fresh caller shadows the one of the connection.
            Ok((caller, session)) => {
                let request = request.data(caller);
                let request = match session {
                    Some(session) => request.data(session),
                    None => request,
                };
                next.run(ctx, request).await
            }
            Err(AuthError::Unavailable(detail)) => {
                tracing::error!(error = %detail, "cannot authenticate: database unavailable");
                Err(refusal("INTERNAL", "service unavailable, try again"))
            }
            Err(err) => Err(refusal("UNAUTHENTICATED", &err.to_string())),
        }
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: futures::stream::BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> futures::stream::BoxStream<'s, Response> {
        use futures::StreamExt;
        let socket = ctx.data_opt::<SocketSubscriptions>().cloned();
        let user = ctx
            .data_opt::<entity::Caller>()
            .map_or_else(String::new, |c| c.user_id.clone());
        match self.subscriptions.start(socket, &user) {
            Ok(running) => next
                .run(ctx, stream)
                .map(move |response| {
                    let _counted = &running;
                    response
                })
                .boxed(),
            Err(message) => futures::stream::once(async move {
                Response::from_errors(vec![refusal("BAD_USER_INPUT", &message)])
            })
            .boxed(),
        }
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        if result.complexity > super::MAX_COMPLEXITY {
            return Err(vec![refusal(
                "BAD_USER_INPUT",
                &too_costly(result.complexity, super::MAX_COMPLEXITY),
            )]);
        }
        Ok(result)
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        if user_depth(&document) > super::MAX_DEPTH {
            return Err(ServerError::new("Query is nested too deep.", None));
        }
        if let Some(refused) = once_per_request(&document) {
            return Err(refusal("BAD_USER_INPUT", &refused));
        }
        Ok(document)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        if ctx.data_opt::<SessionToken>().is_some() {
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
        }
    }
}

/// Fields a request may hold once (aliases and fragments included): each `login` and
/// `changePassword` checks a password, and each introspection tree is a whole schema.
const ONCE_PER_REQUEST: [(&[&str], &str); 3] = [
    (&["login"], "one login per request"),
    (&["changePassword"], "one changePassword per request"),
    (
        &["__schema", "__type"],
        "one introspection field (__schema or __type) per request",
    ),
];

/// Why the document is refused, when it holds a field of [`ONCE_PER_REQUEST`] twice.
fn once_per_request(document: &ExecutableDocument) -> Option<String> {
    ONCE_PER_REQUEST.iter().find_map(|(names, message)| {
        let most = document
            .operations
            .iter()
            .map(|(_, op)| count_root(document, &op.node.selection_set.node, names, 0))
            .max()
            .unwrap_or(0);
        (most > 1).then(|| (*message).to_owned())
    })
}

/// How many root fields of the set are named one of `names`.
fn count_root(
    document: &ExecutableDocument,
    set: &SelectionSet,
    names: &[&str],
    nesting: usize,
) -> usize {
    if nesting > super::MAX_DEPTH {
        return 0;
    }
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(field) => usize::from(names.contains(&field.node.name.node.as_str())),
            Selection::InlineFragment(fragment) => count_root(
                document,
                &fragment.node.selection_set.node,
                names,
                nesting + 1,
            ),
            Selection::FragmentSpread(spread) => document
                .fragments
                .get(&spread.node.fragment_name.node)
                .map_or(0, |f| {
                    count_root(document, &f.node.selection_set.node, names, nesting + 1)
                }),
        })
        .sum()
}

/// How deep a query nests outside introspection (`__schema`, `__type`): user queries are
/// held to [`super::MAX_DEPTH`], while the standard introspection query — deeper by nature —
/// is held only to the schema's overall limit, [`super::MAX_INTROSPECTION_DEPTH`].
fn user_depth(document: &ExecutableDocument) -> usize {
    document
        .operations
        .iter()
        .map(|(_, op)| set_depth(document, &op.node.selection_set.node, 0))
        .max()
        .unwrap_or(0)
}

fn set_depth(document: &ExecutableDocument, set: &SelectionSet, spreads: usize) -> usize {
    // Fragment cycles are refused by validation; here they only need to end.
    if spreads > 64 {
        return 0;
    }
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(field) => match field.node.name.node.as_str() {
                "__schema" | "__type" => 0,
                _ => 1 + set_depth(document, &field.node.selection_set.node, spreads),
            },
            Selection::FragmentSpread(spread) => document
                .fragments
                .get(&spread.node.fragment_name.node)
                .map_or(0, |f| {
                    set_depth(document, &f.node.selection_set.node, spreads + 1)
                }),
            Selection::InlineFragment(inline) => {
                set_depth(document, &inline.node.selection_set.node, spreads + 1)
            }
        })
        .max()
        .unwrap_or(0)
}

/// The refusal of a request over the cost limit, naming both (in the console's language):
/// "custo 14.200, limite 10.000: peça menos itens".
pub fn too_costly(cost: usize, limit: usize) -> String {
    format!(
        "custo {}, limite {}: peça menos itens",
        thousands(cost),
        thousands(limit)
    )
}

/// `14200` as "14.200".
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(c);
    }
    out
}
