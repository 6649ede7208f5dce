//! HTTP transport: the GraphQL endpoint (with authentication), GraphiQL and health.

use async_graphql::{ErrorExtensions, http::GraphiQLSource};
use async_graphql_axum::GraphQLResponse;
use axum::{
    Json, Router,
    body::Body,
    extract::{Request, State},
    http::{StatusCode, header::AUTHORIZATION},
    response::{Html, IntoResponse, Response},
    routing::{get, post},
};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::json;

use crate::{
    auth::{self, AuthError, TokenKeys},
    graphql::{AppContext, CrmSchema},
};

/// Largest GraphQL request body accepted.
pub const MAX_GRAPHQL_BODY: usize = 256 * 1024;

#[derive(Clone)]
pub struct HttpState {
    pub schema: CrmSchema,
    pub app: AppContext,
    pub tokens: TokenKeys,
    /// Requests served at once; more are answered 503 at once (load shedding).
    pub max_concurrency: usize,
    /// Requests slower than this are answered 503.
    pub request_timeout: std::time::Duration,
}

pub fn router(state: HttpState) -> Router {
    // Beyond capacity the server answers 503 at once instead of queueing without bound; a
    // request that takes too long is answered 503 too. Websockets stay outside both limits.
    let limits = tower::ServiceBuilder::new()
        .layer(axum::error_handling::HandleErrorLayer::new(overloaded))
        .load_shed()
        // One semaphore for all routes (a per-route limit would multiply the capacity).
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            state.max_concurrency,
        ))
        .timeout(state.request_timeout);
    let limited = Router::new()
        .route("/graphql", get(graphiql).post(graphql))
        .route("/webhooks/hotmart/{token}", post(crate::webhook::hotmart))
        .route("/metrics", get(crate::metrics::metrics))
        .layer(limits);
    Router::new()
        .merge(limited)
        .route("/graphql/ws", get(graphql_ws))
        .route("/healthz", get(healthz))
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

async fn graphiql() -> Html<String> {
    Html(GraphiQLSource::build().endpoint("/graphql").finish())
}

/// Authenticates before the body is parsed, then runs the request as the caller.
async fn graphql(State(state): State<HttpState>, request: Request) -> Response {
    let header = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let caller = match auth::bearer(header) {
        Ok(token) => auth::authenticate(&state.app.db, &state.tokens, token).await,
        Err(err) => Err(err),
    };
    let caller = match caller {
        Ok(caller) => caller,
        Err(err) => return auth_error(err),
    };
    let graphql_request = match read_graphql_request(request.into_body()).await {
        Ok(req) => req,
        Err(response) => return response,
    };
    let mut response = state.schema.execute(graphql_request.data(caller)).await;
    // Whatever the operation changed, webhooks see it from the next delivery on.
    state.app.routes.invalidate();
    // Errors raised before any resolver ran (syntax, unknown enum values, wrong variable
    // types) carry no code yet: they are the client's input errors.
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
    GraphQLResponse::from(response).into_response()
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

/// GraphQL subscriptions over websocket (`graphql-transport-ws` or `graphql-ws`). The
/// token goes in the `connection_init` payload: `{"Authorization": "Bearer <token>"}`.
async fn graphql_ws(
    State(state): State<HttpState>,
    protocol: async_graphql_axum::GraphQLProtocol,
    upgrade: axum::extract::ws::WebSocketUpgrade,
) -> Response {
    let schema = state.schema.clone();
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            async_graphql_axum::GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(move |payload| async move {
                    let header = ["Authorization", "authorization", "token"]
                        .iter()
                        .find_map(|key| payload.get(*key).and_then(|v| v.as_str()))
                        .map(|v| {
                            if v.contains(' ') {
                                v.to_owned()
                            } else {
                                format!("Bearer {v}")
                            }
                        });
                    let token = auth::bearer(header.as_deref())
                        .map_err(|err| async_graphql::Error::new(err.to_string()))?;
                    let caller = auth::authenticate(&state.app.db, &state.tokens, token)
                        .await
                        .map_err(|err| async_graphql::Error::new(err.to_string()))?;
                    let mut data = async_graphql::Data::default();
                    data.insert(caller);
                    Ok(data)
                })
                .serve()
        })
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
