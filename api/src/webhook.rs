//! `POST /webhooks/{hotmart,kiwify,eduzz}/{token}`: the checkouts' deliveries into the
//! inbox (the rules are in `docs/webhooks.md`; each platform's in `docs/platforms.md`).
//!
//! The checks run in the order of the spec's table, and the cheap ones come before the body
//! is read: the URL token, the declared length, the content type and the header hottok.
//! Kiwify's and Eduzz's signatures are HMACs of the raw body: checked on the bytes as
//! received, before anything parses them.
//! An authentic, well-formed delivery is answered 2xx only after it is durably stored
//! (and, when accepted, its job enqueued).

use std::time::Duration;

use axum::{
    Json,
    body::Body,
    extract::{Path, Request, State},
    http::{HeaderMap, StatusCode, header::CONTENT_LENGTH, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
};
use entity::deliveries::Submission;
use entity::{
    deliveries::{self, Intake},
    integrations,
    platform::Platform,
    sale::event::{Envelope, Malformed},
};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::json;

use crate::{route_cache::Route, state::HttpState};

/// Largest delivery accepted.
pub const MAX_WEBHOOK_BODY: usize = 256 * 1024;
pub const HOTTOK_HEADER: &str = "x-hotmart-hottok";

fn reply(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

fn unavailable(err: impl std::fmt::Display) -> Response {
    tracing::error!(error = %err, "webhook: database unavailable");
    reply(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"error": "temporarily unavailable, retry later"}),
    )
}

fn is_form_encoded(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .is_some_and(|v| {
            v.starts_with("application/x-www-form-urlencoded")
                || v.starts_with("multipart/form-data")
        })
}

fn has_content_encoding(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.trim().eq_ignore_ascii_case("identity"))
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

async fn read_body(body: Body, timeout: Duration) -> Result<bytes::Bytes, Response> {
    let collect = Limited::new(body, MAX_WEBHOOK_BODY).collect();
    match tokio::time::timeout(timeout, collect).await {
        Err(_) => Err(reply(
            StatusCode::REQUEST_TIMEOUT,
            json!({"error": "the body did not arrive in time"}),
        )),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(err)) if err.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Ok(Err(err)) => Err(reply(
            StatusCode::BAD_REQUEST,
            json!({"error": format!("cannot read the body: {err}")}),
        )),
    }
}

fn unknown_url(state: &HttpState) -> Response {
    state.telemetry.webhook("unknown_url");
    reply(
        StatusCode::NOT_FOUND,
        json!({"error": "unknown webhook URL"}),
    )
}

fn too_large() -> Response {
    reply(
        StatusCode::PAYLOAD_TOO_LARGE,
        json!({"error": format!("body larger than {MAX_WEBHOOK_BODY} bytes")}),
    )
}

fn unauthorized(message: &str) -> Response {
    reply(StatusCode::UNAUTHORIZED, json!({"error": message}))
}

/// Refusals decided by the headers alone: a declared length over the limit, a compressed
/// body, a form-encoded (for Hotmart, version 1.0) delivery.
fn refuse_by_headers(platform: Platform, headers: &HeaderMap) -> Option<Response> {
    if declared_length(headers).is_some_and(|len| len > MAX_WEBHOOK_BODY as u64) {
        return Some(too_large());
    }
    if has_content_encoding(headers) {
        return Some(reply(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            json!({"error": "compressed bodies are not accepted: send plain JSON"}),
        ));
    }
    if is_form_encoded(headers) && platform != Platform::Hotmart {
        return Some(reply(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            json!({"error": format!("{} deliveries are JSON: this body is form-encoded", platform.title())}),
        ));
    }
    if is_form_encoded(headers) {
        return Some(reply(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            json!({"error": "this is a Hotmart webhook version 1.0 (form-encoded) delivery; \
                             select version 2.0 (JSON) for this URL in Hotmart"}),
        ));
    }
    None
}

/// Without a hottok header, the body's `hottok` must match one of the products'.
async fn check_body_hottok(
    state: &HttpState,
    integration_id: &str,
    products: &[entity::tables::product::Model],
    presented: Option<&str>,
) -> Option<Response> {
    match presented {
        Some(presented) if deliveries::hottok_is_valid(&state.app.keys, products, presented) => {
            None
        }
        Some(_) => Some(hottok_failure(state, integration_id, "wrong hottok").await),
        None => Some(
            hottok_failure(
                state,
                integration_id,
                "missing hottok: send the X-HOTMART-HOTTOK header",
            )
            .await,
        ),
    }
}

pub async fn hotmart(
    State(state): State<HttpState>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let started = std::time::Instant::now();
    let response = handle(&state, &token, request).await;
    state.telemetry.webhook_handled(started.elapsed());
    response
}

/// The route of a URL token, when it names an integration of `platform`.
async fn route_of(state: &HttpState, platform: Platform, token: &str) -> Result<Route, Response> {
    match state.app.routes.get(&state.app.db.conn, token).await {
        Ok(Some(route)) if Platform::of(&route.integration) == platform => Ok(route),
        Ok(_) => Err(unknown_url(state)),
        Err(err) => Err(unavailable(err)),
    }
}

async fn handle(state: &HttpState, token: &str, request: Request) -> Response {
    let route = match route_of(state, Platform::Hotmart, token).await {
        Ok(route) => route,
        Err(response) => return response,
    };
    let (parts, body) = request.into_parts();
    if let Some(refusal) = refuse_by_headers(Platform::Hotmart, &parts.headers) {
        return refusal;
    }
    let Route {
        integration,
        products,
    } = route;
    let Some(via_previous_url) = url_of(&integration, token) else {
        return unknown_url(state);
    };
    let header_hottok = parts.headers.get(HOTTOK_HEADER);
    let authenticated_by_header = header_hottok.is_some();
    if let Some(presented) = header_hottok
        && !deliveries::hottok_is_valid(
            &state.app.keys,
            &products,
            presented.to_str().unwrap_or(""),
        )
    {
        return hottok_failure(state, &integration.id, "wrong hottok").await;
    }
    let body = match read_body(body, state.app.webhook_body_timeout).await {
        Ok(body) => without_bom(body),
        Err(response) => return response,
    };
    let parsed = Platform::Hotmart.parse_body(&body);
    if !authenticated_by_header {
        let presented = parsed
            .as_ref()
            .ok()
            .and_then(|(_, env)| env.body_hottok.as_deref());
        if let Some(refusal) = check_body_hottok(state, &integration.id, &products, presented).await
        {
            return refusal;
        }
    }
    let route = Route {
        integration,
        products,
    };
    store(state, route, via_previous_url, &body, parsed).await
}

/// `POST /webhooks/kiwify/{token}`.
pub async fn kiwify(
    State(state): State<HttpState>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let started = std::time::Instant::now();
    let response = handle_signed(&state, Platform::Kiwify, &token, request).await;
    state.telemetry.webhook_handled(started.elapsed());
    response
}

/// `POST /webhooks/eduzz/{token}`.
pub async fn eduzz(
    State(state): State<HttpState>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let started = std::time::Instant::now();
    let response = handle_signed(&state, Platform::Eduzz, &token, request).await;
    state.telemetry.webhook_handled(started.elapsed());
    response
}

/// The signature a delivery presents: Kiwify's `?signature=` query parameter, Eduzz's
/// `x-signature` header.
fn presented_signature(platform: Platform, parts: &axum::http::request::Parts) -> Option<String> {
    match platform {
        Platform::Kiwify => parts.uri.query().and_then(|query| {
            query
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(name, _)| *name == "signature")
                .map(|(_, value)| value.to_owned())
        }),
        _ => parts
            .headers
            .get(entity::eduzz::webhook::SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
    .filter(|s| !s.is_empty() && s.len() <= 256)
}

/// A platform that signs its deliveries: the signature over the raw bytes decides, then
/// the body is parsed.
async fn handle_signed(
    state: &HttpState,
    platform: Platform,
    token: &str,
    request: Request,
) -> Response {
    let route = match route_of(state, platform, token).await {
        Ok(route) => route,
        Err(response) => return response,
    };
    let (parts, body) = request.into_parts();
    if let Some(refusal) = refuse_by_headers(platform, &parts.headers) {
        return refusal;
    }
    let Some(via_previous_url) = url_of(&route.integration, token) else {
        return unknown_url(state);
    };
    let presented = presented_signature(platform, &parts);
    let body = match read_body(body, state.app.webhook_body_timeout).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let secret = match integrations::webhook_secret(&state.app.keys, &route.integration) {
        Ok(Some(secret)) => secret,
        Ok(None) => {
            let message = format!(
                "this integration has no {} yet: set it before sending deliveries",
                integrations::secret_name(platform)
            );
            return hottok_failure(state, &route.integration.id, &message).await;
        }
        Err(err) => return unavailable(err),
    };
    let Some(presented) = presented else {
        let message = match platform {
            Platform::Kiwify => "missing signature: Kiwify appends ?signature= to the URL",
            _ => "missing signature: send the x-signature header",
        };
        return hottok_failure(state, &route.integration.id, message).await;
    };
    if !platform.signature_is_valid(&secret, &body, &presented) {
        return hottok_failure(state, &route.integration.id, "wrong signature").await;
    }
    let parsed = platform.parse_body(&without_bom(body.clone()));
    store(state, route, via_previous_url, &body, parsed).await
}

/// Whether `token` is the integration's previous URL (`Some(true)`, during its grace
/// period) or its current one (`Some(false)`); `None` once the grace is over.
fn url_of(integration: &entity::tables::integration::Model, token: &str) -> Option<bool> {
    if integration.webhook_token == token {
        return Some(false);
    }
    integrations::accepts_previous(integration, token).then_some(true)
}

/// Stores an authentic delivery (or rejects a malformed one) and answers.
async fn store(
    state: &HttpState,
    route: Route,
    via_previous_url: bool,
    body: &bytes::Bytes,
    parsed: Result<(serde_json::Value, Envelope), Malformed>,
) -> Response {
    let Route {
        integration,
        products,
    } = route;
    let envelope = match parsed {
        Ok((_, envelope)) => envelope,
        Err(malformed) => return rejected(state, &integration, body, malformed).await,
    };
    let Ok(text) = std::str::from_utf8(body) else {
        let malformed = Malformed::NotJson("invalid UTF-8".into());
        return rejected(state, &integration, body, malformed).await;
    };
    let submission = Submission {
        integration,
        via_previous_url,
        products,
        envelope,
        // A hottok sent in the body authenticated it; it is not kept.
        body: entity::hotmart::without_hottok(text).into_owned(),
    };
    let started = std::time::Instant::now();
    let intake = state.app.inbox.submit(submission).await;
    state.telemetry.webhook_stored(started.elapsed());
    let intake = match intake {
        Ok(intake) => intake,
        Err(err) => return unavailable(err),
    };
    state.telemetry.webhook(match &intake {
        Intake::Accepted { .. } => "accepted",
        Intake::Duplicate { .. } => "duplicate",
        Intake::Test { .. } => "test",
        Intake::Ignored { .. } => "ignored",
    });
    answer(intake)
}

/// A UTF-8 byte-order mark is not JSON, but it is harmless: it is dropped.
fn without_bom(body: bytes::Bytes) -> bytes::Bytes {
    body.strip_prefix(b"\xEF\xBB\xBF")
        .map(bytes::Bytes::copy_from_slice)
        .unwrap_or(body)
}

/// The answer to a stored delivery.
fn answer(intake: Intake) -> Response {
    match intake {
        Intake::Accepted { delivery_id } => reply(
            StatusCode::OK,
            json!({"status": "accepted", "deliveryId": delivery_id}),
        ),
        Intake::Duplicate { delivery_id } => reply(
            StatusCode::OK,
            json!({"status": "duplicate", "deliveryId": delivery_id}),
        ),
        Intake::Test { delivery_id } => reply(
            StatusCode::OK,
            json!({"status": "test", "deliveryId": delivery_id}),
        ),
        Intake::Ignored {
            delivery_id,
            reason,
        } => reply(
            StatusCode::OK,
            json!({"status": "ignored", "reason": reason, "deliveryId": delivery_id}),
        ),
    }
}

async fn hottok_failure(state: &HttpState, integration_id: &str, message: &str) -> Response {
    state.telemetry.webhook("refused");
    if let Err(err) = deliveries::record_hottok_failure(&state.app.db.conn, integration_id).await {
        return unavailable(err);
    }
    unauthorized(message)
}

/// 400 for a malformed body; stored as `REJECTED` only when the header hottok vouched for it.
async fn rejected(
    state: &HttpState,
    integration: &entity::tables::integration::Model,
    body: &[u8],
    malformed: Malformed,
) -> Response {
    // Bodies authenticated by a body hottok were parsed, so reaching here means the header did it.
    state.telemetry.webhook("rejected");
    if let Err(err) = deliveries::record_rejected(
        &state.app.db.conn,
        integration,
        body,
        &malformed.to_string(),
    )
    .await
    {
        return unavailable(err);
    }
    reply(
        StatusCode::BAD_REQUEST,
        json!({"error": malformed.to_string()}),
    )
}
