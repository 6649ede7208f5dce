//! HTTP transport: the GraphQL endpoint (with authentication), GraphiQL and health.

use async_graphql::http::GraphiQLSource;
use async_graphql_axum::{GraphQLRequest, GraphQLResponse, rejection::GraphQLRejection};
use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, FromRequest, Request, State},
    http::{StatusCode, header::AUTHORIZATION},
    response::{Html, IntoResponse, Response},
    routing::get,
};
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
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route(
            "/graphql",
            get(graphiql)
                .post(graphql)
                .layer(DefaultBodyLimit::max(MAX_GRAPHQL_BODY)),
        )
        .route("/healthz", get(healthz))
        .with_state(state)
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
    let graphql_request =
        match GraphQLRequest::<GraphQLRejection>::from_request(request, &state).await {
            Ok(req) => req.into_inner(),
            Err(rejection) => return rejection.into_response(),
        };
    GraphQLResponse::from(state.schema.execute(graphql_request.data(caller)).await).into_response()
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
