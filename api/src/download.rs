//! `GET /exports/{id}/download`: a finished export's CSV file, streamed chunk by chunk
//! from the database (flat memory however large), to the person who asked for it (or an
//! admin of the account) with their Bearer token or console session.

use axum::{
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use entity::{DomainError, database::Database, exports};
use serde_json::json;

use crate::{auth, state::HttpState};

fn refusal(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"errors": [{"message": message, "extensions": {"code": code}}]});
    (status, axum::Json(body)).into_response()
}

/// The caller of a download: a Bearer token, else the console's session cookie.
async fn caller(state: &HttpState, headers: &HeaderMap) -> Result<entity::Caller, auth::AuthError> {
    let token = match headers.get(header::AUTHORIZATION) {
        Some(value) => value.to_str().ok().map(str::to_owned),
        None => crate::cookie::session_for_reading(headers).map(|t| format!("Bearer {t}")),
    };
    let token = auth::bearer(token.as_deref())?;
    let (caller, _) = auth::authenticate_session(&state.app.db, &state.tokens, token).await?;
    Ok(caller)
}

pub async fn export(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let caller = match caller(&state, &headers).await {
        Ok(caller) => caller,
        Err(auth::AuthError::Unavailable(detail)) => {
            tracing::error!(error = %detail, "cannot authenticate a download");
            return refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "INTERNAL",
                "service unavailable, try again",
            );
        }
        Err(err) => {
            return refusal(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                &err.to_string(),
            );
        }
    };
    match exports::ready(&state.app.db.conn, &caller, &id).await {
        Ok(found) => file(state.app.db.clone(), found),
        Err(DomainError::NotFound(_)) => {
            refusal(StatusCode::NOT_FOUND, "NOT_FOUND", "export not found")
        }
        Err(DomainError::Conflict(message)) => refusal(StatusCode::CONFLICT, "CONFLICT", &message),
        Err(err) => {
            tracing::error!(export = %id, error = %err.chain(), "cannot serve an export");
            refusal(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "internal error",
            )
        }
    }
}

/// The file's response: its chunks read one at a time as the client takes them.
fn file(db: Database, found: entity::tables::export::Model) -> Response {
    let export_id = found.id.clone();
    let chunks = futures::stream::unfold(Some(0), move |next| {
        let db = db.clone();
        let export_id = export_id.clone();
        async move {
            let seq = next?;
            match exports::chunk(&db.conn, &export_id, seq).await {
                Ok(Some(data)) => Some((Ok(data), Some(seq + 1))),
                Ok(None) => None,
                Err(err) => Some((Err(std::io::Error::other(err.to_string())), None)),
            }
        }
    });
    let name = if found.kind == "CONTACTS" {
        "contatos"
    } else {
        "negocios"
    };
    let disposition = format!("attachment; filename=\"{name}-{}.csv\"", found.id);
    let mut response = Body::from_stream(chunks).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}
