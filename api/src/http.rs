//! HTTP transport: the GraphQL endpoint (with authentication), GraphiQL and health.

use async_graphql::ErrorExtensions;
use async_graphql_axum::GraphQLResponse;
use axum::{
    Json, Router,
    body::Body,
    extract::{Request, State},
    http::{StatusCode, header::AUTHORIZATION},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::json;
use std::sync::Arc;
use tokio::sync::Semaphore;

use crate::auth::{self, AuthError};

/// Largest GraphQL request body accepted.
pub const MAX_GRAPHQL_BODY: usize = 256 * 1024;

pub use crate::state::HttpState;

/// Anonymous GraphQL requests (signing in) one client address may have in flight.
pub const ANONYMOUS_GRAPHQL_PER_ADDRESS: usize = 8;

/// Anonymous GraphQL requests of one address that may wait for one of its slots; beyond
/// these the address is answered 503 at once.
pub const ANONYMOUS_GRAPHQL_QUEUED_PER_ADDRESS: usize = 64;

/// Request slots, in four pools so that one kind of traffic cannot take the slots of
/// another: GraphQL with a token (and the console's files, metrics); webhooks that present
/// a hottok header (checked before their body is read, so a wrong one leaves at once);
/// webhooks without one, which must read their body to find a hottok or signature; and
/// GraphQL without a token (signing in). The last two are the requests an anonymous
/// client can make slow: each has a small pool, and anonymous GraphQL also a bound per
/// client address ([`ANONYMOUS_GRAPHQL_PER_ADDRESS`]), so one address cannot fill it.
/// Requests of an address beyond its bound wait in line (a team signing in at once
/// behind one NAT is served in turn), at most [`ANONYMOUS_GRAPHQL_QUEUED_PER_ADDRESS`]
/// of them and for at most the request timeout.
#[derive(Clone)]
struct Slots {
    graphql: Arc<Semaphore>,
    webhooks: Arc<Semaphore>,
    anonymous_webhooks: Arc<Semaphore>,
    anonymous_graphql: Arc<Semaphore>,
    per_address: Arc<std::sync::Mutex<AddressLines>>,
    trusted_proxies: crate::client::TrustedProxies,
    wait: std::time::Duration,
}

/// Per client address: its slots, and how many requests hold or wait for one.
type AddressLines = std::collections::HashMap<String, (Arc<Semaphore>, usize)>;

impl Slots {
    fn new(state: &HttpState) -> Self {
        let max = state.max_concurrency.max(1);
        Slots {
            graphql: Arc::new(Semaphore::new(max)),
            webhooks: Arc::new(Semaphore::new(max)),
            anonymous_webhooks: Arc::new(Semaphore::new((max / 8).max(8))),
            anonymous_graphql: Arc::new(Semaphore::new((max / 8).max(16))),
            per_address: Default::default(),
            trusted_proxies: state.trusted_proxies.clone(),
            wait: state.request_timeout,
        }
    }

    /// Takes one of `address`'s slots, waiting in line; `None` when its line is full or
    /// the wait is over.
    async fn enter(&self, address: String) -> Option<AddressSlot> {
        let line = {
            let mut lines = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
            let (slots, users) = lines
                .entry(address.clone())
                .or_insert_with(|| (Arc::new(Semaphore::new(ANONYMOUS_GRAPHQL_PER_ADDRESS)), 0));
            if *users >= ANONYMOUS_GRAPHQL_PER_ADDRESS + ANONYMOUS_GRAPHQL_QUEUED_PER_ADDRESS {
                return None;
            }
            *users += 1;
            slots.clone()
        };
        let mut slot = AddressSlot {
            lines: self.per_address.clone(),
            address,
            permit: None,
        };
        let permit = tokio::time::timeout(self.wait, line.acquire_owned()).await;
        slot.permit = Some(permit.ok()?.ok()?);
        Some(slot)
    }
}

/// One anonymous request of an address, in flight or in line; released when dropped.
struct AddressSlot {
    lines: Arc<std::sync::Mutex<AddressLines>>,
    address: String,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        self.permit.take();
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, users)) = lines.get_mut(&self.address) {
            *users -= 1;
            if *users == 0 {
                lines.remove(&self.address);
            }
        }
    }
}

/// Whether a request is GraphQL without a token (a session cookie without its CSRF
/// header counts as none: it can only sign in).
fn anonymous_graphql(request: &Request) -> bool {
    request.uri().path() == "/graphql"
        && request.method() == axum::http::Method::POST
        && !request.headers().contains_key(AUTHORIZATION)
        && !matches!(
            crate::cookie::session(request.headers()),
            crate::cookie::CookieSession::Token(_)
        )
}

/// Takes a slot of the request's pool, or answers 503 at once (load shedding).
async fn admit(
    State(slots): State<Slots>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let shed = || overloaded(Box::new(tower::load_shed::error::Overloaded::new()));
    let mut by_address = None;
    let pool = if request.uri().path().starts_with("/webhooks/") {
        if request
            .headers()
            .contains_key(crate::webhook::HOTTOK_HEADER)
        {
            &slots.webhooks
        } else {
            &slots.anonymous_webhooks
        }
    } else if anonymous_graphql(&request) {
        let address =
            crate::client::address(peer_of(&request), request.headers(), &slots.trusted_proxies);
        match slots.enter(address).await {
            Some(slot) => by_address = Some(slot),
            None => return shed().await,
        }
        &slots.anonymous_graphql
    } else {
        &slots.graphql
    };
    match pool.clone().try_acquire_owned() {
        Ok(_slot) => {
            let response = next.run(request).await;
            drop(by_address);
            response
        }
        Err(_) => shed().await,
    }
}

/// The connection's peer, when the server recorded it.
fn peer_of(request: &Request) -> Option<std::net::SocketAddr> {
    request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0)
}

pub fn router(state: HttpState) -> Router {
    // Beyond capacity the server answers 503 at once instead of queueing without bound; a
    // request that takes too long is answered 503 too. Websockets stay outside both limits
    // (their operations get the same ones: see `graphql::guard`).
    let limits = tower::ServiceBuilder::new()
        .layer(axum::error_handling::HandleErrorLayer::new(overloaded))
        .timeout(state.request_timeout);
    let mut limited = Router::new()
        .route("/", get(crate::console::page))
        .route("/console/{name}", get(crate::console::asset))
        .route("/graphql", get(crate::graphiql::page).post(graphql))
        .route("/exports/{id}/download", get(crate::download::export))
        .route("/assets/graphiql/{name}", get(crate::graphiql::asset))
        .route("/webhooks/hotmart/{token}", post(crate::webhook::hotmart))
        .route("/webhooks/kiwify/{token}", post(crate::webhook::kiwify))
        .route("/webhooks/eduzz/{token}", post(crate::webhook::eduzz));
    if !state.metrics_apart {
        limited = limited.route("/metrics", get(crate::metrics::metrics));
    }
    let limited = limited
        .layer(limits)
        .layer(axum::middleware::from_fn_with_state(
            Slots::new(&state),
            admit,
        ));
    Router::new()
        .merge(limited)
        .route("/graphql/ws", get(graphql_ws))
        .route("/healthz", get(healthz))
        .with_state(state)
}

/// `/metrics` alone, for its own listener (`METRICS_BIND`).
pub fn metrics_router(state: HttpState) -> Router {
    Router::new()
        .route("/metrics", get(crate::metrics::metrics_apart))
        .with_state(state)
}

async fn overloaded(err: tower::BoxError) -> Response {
    let (status, message) = if err.is::<tower::load_shed::error::Overloaded>() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "server busy, retry shortly",
        )
    } else if err.is::<tower::timeout::error::Elapsed>() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "request took too long, retry",
        )
    } else {
        tracing::error!(error = %err, "request failed");
        (StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    };
    (
        status,
        [("retry-after", "1")],
        Json(json!({"error": message})),
    )
        .into_response()
}

/// Whether a document only signs in (`login`, and `__typename`): the one request that
/// needs no token.
fn only_signs_in(query: &str) -> bool {
    use async_graphql::parser::types::{OperationType, Selection};
    let Ok(document) = async_graphql::parser::parse_query(query) else {
        return false;
    };
    if !document.fragments.is_empty() {
        return false;
    }
    document.operations.iter().all(|(_, op)| {
        op.node.ty == OperationType::Mutation
            && op.node.selection_set.node.items.iter().all(|item| {
                matches!(&item.node, Selection::Field(f)
                    if matches!(f.node.name.node.as_str(), "login" | "__typename"))
            })
    })
}

/// Authenticates before the body is parsed (a request without a token may only sign
/// in), then runs the request as the caller.
async fn graphql(State(state): State<HttpState>, request: Request) -> Response {
    let (header, csrf_refused) = request_token(request.headers());
    let caller = match auth::bearer(header.as_deref()) {
        Ok(token) => auth::authenticate_session(&state.app.db, &state.tokens, token)
            .await
            .map(Some),
        Err(err) => Err(err),
    };
    let caller = match caller {
        Ok(caller) => caller,
        // Signing in needs no token; nothing else does without one.
        Err(auth::AuthError::Missing) => None,
        Err(err) => return auth_error(err),
    };
    let client =
        crate::client::address(peer_of(&request), request.headers(), &state.trusted_proxies);
    // Without a token the body must arrive as quickly as a webhook's.
    let body_timeout = match caller {
        Some(_) => state.request_timeout,
        None => state.app.webhook_body_timeout,
    };
    let body = tokio::time::timeout(body_timeout, read_graphql_request(request.into_body()));
    let Ok(read) = body.await else {
        return request_error(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {} s",
                body_timeout.as_secs()
            ),
        );
    };
    let graphql_request = match read {
        Ok(req) => req,
        Err(response) => return response,
    };
    let graphql_request = graphql_request.data(crate::client::ClientAddress(client));
    let graphql_request = match caller {
        Some((caller, Some(session))) => graphql_request.data(caller).data(session),
        Some((caller, None)) => graphql_request.data(caller),
        None if only_signs_in(&graphql_request.query) => graphql_request,
        None if csrf_refused => return csrf_refusal(),
        None => return auth_error(auth::AuthError::Missing),
    };
    let mut response = state.schema.execute(graphql_request).await;
    code_input_errors(&mut response);
    bounded_answer(response)
}

/// The request's `Authorization` header, or the console's session cookie as one when its
/// CSRF header matches (see `cookie.rs`). A cookie without it stands for nothing (`true`
/// in the second place): signing in still works — over a stale cookie the console cannot
/// delete — and anything else is refused with [`csrf_refusal`].
fn request_token(headers: &axum::http::HeaderMap) -> (Option<String>, bool) {
    if let Some(value) = headers.get(AUTHORIZATION) {
        return (value.to_str().ok().map(str::to_owned), false);
    }
    match crate::cookie::session(headers) {
        crate::cookie::CookieSession::None => (None, false),
        crate::cookie::CookieSession::Token(token) => (Some(format!("Bearer {token}")), false),
        crate::cookie::CookieSession::CsrfMismatch => (None, true),
    }
}

fn csrf_refusal() -> Response {
    (
        StatusCode::FORBIDDEN,
        Json(json!({
            "data": null,
            "errors": [{
                "message": "the session cookie needs the X-CSRF-Token header of this console",
                "extensions": {"code": "FORBIDDEN"}
            }]
        })),
    )
        .into_response()
}

/// Errors raised before any resolver ran (syntax, unknown enum values, wrong variable
/// types) carry no code yet: they are the client's input errors.
fn code_input_errors(response: &mut async_graphql::Response) {
    for error in &mut response.errors {
        let has_code = error
            .extensions
            .as_ref()
            .is_some_and(|ext| ext.get("code").is_some());
        if !has_code {
            let extended = async_graphql::Error::new(error.message.clone())
                .extend_with(|_, ext| ext.set("code", "BAD_USER_INPUT"));
            error.extensions = extended.extensions;
        }
    }
}

/// Largest GraphQL answer sent: a bigger one is replaced by an error saying so.
pub const MAX_GRAPHQL_RESPONSE: usize = 8 * 1024 * 1024;

/// The answer as JSON, unless it is larger than [`MAX_GRAPHQL_RESPONSE`].
fn bounded_answer(mut response: async_graphql::Response) -> Response {
    let headers = std::mem::take(&mut response.http_headers);
    let mut answer = serialized_answer(response);
    answer.headers_mut().extend(headers);
    answer
}

fn serialized_answer(response: async_graphql::Response) -> Response {
    let Ok(body) = serde_json::to_vec(&response) else {
        return GraphQLResponse::from(response).into_response();
    };
    if body.len() > MAX_GRAPHQL_RESPONSE {
        let refusal = async_graphql::Response::from_errors(vec![{
            let mut error = async_graphql::ServerError::new(
                format!(
                    "the answer is larger than {} MiB: ask for fewer items",
                    MAX_GRAPHQL_RESPONSE / (1024 * 1024)
                ),
                None,
            );
            let mut extensions = async_graphql::ErrorExtensionValues::default();
            extensions.set("code", "BAD_USER_INPUT");
            error.extensions = Some(extensions);
            error
        }]);
        return GraphQLResponse::from(refusal).into_response();
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/graphql-response+json",
        )],
        body,
    )
        .into_response()
}

/// Reads one JSON GraphQL request of at most [`MAX_GRAPHQL_BODY`] bytes, stopping as soon
/// as the limit is passed. Batches are not accepted.
async fn read_graphql_request(body: Body) -> Result<async_graphql::Request, Response> {
    let bytes = match Limited::new(body, MAX_GRAPHQL_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(request_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body is larger than {MAX_GRAPHQL_BODY} bytes"),
            ));
        }
        Err(err) => {
            return Err(request_error(
                StatusCode::BAD_REQUEST,
                format!("cannot read body: {err}"),
            ));
        }
    };
    serde_json::from_slice::<async_graphql::Request>(&bytes).map_err(|err| {
        request_error(
            StatusCode::BAD_REQUEST,
            format!("body must be one JSON GraphQL request {{\"query\", \"variables\"}}: {err}"),
        )
    })
}

fn request_error(status: StatusCode, message: String) -> Response {
    (
        status,
        Json(json!({
            "data": null,
            "errors": [{"message": message, "extensions": {"code": "BAD_USER_INPUT"}}],
        })),
    )
        .into_response()
}

/// GraphQL over websocket (`graphql-transport-ws` or `graphql-ws`): see [`crate::ws`].
async fn graphql_ws(
    State(state): State<HttpState>,
    headers: axum::http::HeaderMap,
    upgrade: axum::extract::ws::WebSocketUpgrade,
) -> Response {
    use std::str::FromStr;
    let protocol = headers
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .find_map(|p| async_graphql::http::WebSocketProtocols::from_str(p.trim()).ok())
        });
    let Some(protocol) = protocol else {
        return request_error(
            StatusCode::BAD_REQUEST,
            "unknown websocket subprotocol: use graphql-transport-ws or graphql-ws".to_owned(),
        );
    };
    // A page of this server may stand on its session cookie (no script can read it).
    let cookie_token = crate::cookie::same_origin(&headers)
        .then(|| crate::cookie::get(&headers, crate::cookie::SESSION))
        .flatten()
        .map(str::to_owned);
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        // No message larger than an HTTP GraphQL body is read, `connection_init` included.
        .max_message_size(MAX_GRAPHQL_BODY)
        .max_frame_size(MAX_GRAPHQL_BODY)
        .on_upgrade(move |socket| crate::ws::serve(socket, state, protocol, cookie_token))
}

fn auth_error(err: AuthError) -> Response {
    let (status, code) = match err {
        AuthError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "INTERNAL"),
        _ => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
    };
    if let AuthError::Unavailable(detail) = &err {
        tracing::error!(error = %detail, "cannot authenticate: database unavailable");
    }
    let message = match err {
        AuthError::Unavailable(_) => "service unavailable, try again".to_owned(),
        other => other.to_string(),
    };
    (
        status,
        Json(json!({
            "data": null,
            "errors": [{"message": message, "extensions": {"code": code}}],
        })),
    )
        .into_response()
}

/// 200 when the database answers, 503 otherwise.
async fn healthz(State(state): State<HttpState>) -> Response {
    match state.app.db.ping().await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ok"}))).into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "health check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "database": "unreachable"})),
            )
                .into_response()
        }
    }
}
