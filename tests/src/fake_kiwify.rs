//! A fake Kiwify public API: a real local HTTP server speaking the documented protocol —
//! `POST /oauth/token` (form-encoded client credentials), `GET /sales` with
//! `start_date`/`end_date` (São Paulo calendar days, at most 90 apart), `page_size` and
//! `page_number`, the `x-kiwify-account-id` header — with injectable 429 answers and
//! token expiry.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
};

use axum::{
    Json, Router,
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};

pub const CLIENT_ID: &str = "kiwify-client-id";
pub const CLIENT_SECRET: &str = "kiwify-client-secret";
pub const ACCOUNT_ID: &str = "Xk9pQ2rT7vLm3nB";

#[derive(Default)]
pub struct KiwifyState {
    /// Sales as `GET /sales?view_full_sale_details=true` lists them.
    pub sales: Mutex<Vec<Value>>,
    /// The next N sales requests answer 429 with `Retry-After: 1`.
    pub rate_limited: AtomicU32,
    /// Tokens stop working after this many uses (0 = never).
    pub token_uses: AtomicU32,
    tokens: Mutex<HashMap<String, u32>>,
    pub tokens_issued: AtomicU32,
    /// Every sales query: (start_date, end_date, page_number).
    pub queries: Mutex<Vec<(String, String, u64)>>,
    /// Queries refused for a range over 90 days.
    pub too_long: AtomicU32,
    /// Milliseconds each sales query takes.
    pub latency_ms: AtomicU64,
}

pub struct FakeKiwify {
    pub base: String,
    pub state: Arc<KiwifyState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeKiwify {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeKiwify {
    pub async fn start() -> FakeKiwify {
        let state = Arc::new(KiwifyState::default());
        let app = Router::new()
            .route("/oauth/token", post(token))
            .route("/sales", get(sales))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeKiwify {
            base,
            state,
            server,
        }
    }
}

/// A paid sale of the list (full details), created at `created_at` (ISO 8601, UTC).
pub fn sale(id: &str, status: &str, created_at: &str, email: &str, product: &str) -> Value {
    json!({
        "id": id, "reference": &id[..id.len().min(7)], "type": "product",
        "created_at": created_at, "updated_at": created_at,
        "approved_date": if status == "paid" { json!(created_at) } else { Value::Null },
        "product": {"id": product, "name": "Método Fluência"},
        "status": status, "payment_method": "credit_card", "net_amount": 17000, "currency": "BRL",
        "customer": {"id": "c1", "name": "Cliente", "email": email, "cpf": "39053344705", "mobile": "+5511987654321"},
        "installments": 1, "card_rejection_reason": null, "boleto_url": null,
        "payment": {"charge_amount": 19700, "charge_currency": "BRL", "net_amount": 17000},
        "refunded_at": null, "tracking": {"src": "ig", "sck": null}
    })
}

async fn token(State(state): State<Arc<KiwifyState>>, body: String) -> Response {
    // Form-encoded; the fake's credentials need no percent-decoding.
    let form: HashMap<&str, &str> = body.split('&').filter_map(|p| p.split_once('=')).collect();
    let ok = form.get("client_id") == Some(&CLIENT_ID)
        && form.get("client_secret") == Some(&CLIENT_SECRET);
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let token = format!("kw-{}", uuid::Uuid::now_v7().simple());
    let uses = state.token_uses.load(Ordering::SeqCst);
    state
        .tokens
        .lock()
        .unwrap()
        .insert(token.clone(), if uses == 0 { u32::MAX } else { uses });
    state.tokens_issued.fetch_add(1, Ordering::SeqCst);
    Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": 345600}))
        .into_response()
}

/// The refusal for a missing, unknown or expired token, or a wrong account; `None` when good.
fn refusal(state: &KiwifyState, headers: &HeaderMap) -> Option<Response> {
    if headers
        .get("x-kiwify-account-id")
        .and_then(|v| v.to_str().ok())
        != Some(ACCOUNT_ID)
    {
        return Some(
            (
                StatusCode::FORBIDDEN,
                Json(json!({"message": "unknown account"})),
            )
                .into_response(),
        );
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let mut tokens = state.tokens.lock().unwrap();
    match tokens.get_mut(token) {
        Some(uses) if *uses > 0 => {
            *uses -= 1;
            None
        }
        _ => Some(
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({"message": "token expired or invalid"})),
            )
                .into_response(),
        ),
    }
}

/// The São Paulo calendar day of an ISO 8601 instant.
fn day_of(iso: &str) -> Option<chrono::NaiveDate> {
    let at = chrono::DateTime::parse_from_rfc3339(iso).ok()?;
    Some((at.with_timezone(&chrono::Utc) - chrono::Duration::hours(3)).date_naive())
}

async fn sales(
    State(state): State<Arc<KiwifyState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(refused) = refusal(&state, &headers) {
        return refused;
    }
    let latency = state.latency_ms.load(Ordering::SeqCst);
    if latency > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    }
    if state
        .rate_limited
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            Json(json!({"message": "slow down"})),
        )
            .into_response();
    }
    let date = |k: &str| {
        query
            .get(k)
            .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
    };
    let (Some(from), Some(to)) = (date("start_date"), date("end_date")) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "start_date and end_date are required"})),
        )
            .into_response();
    };
    if (to - from).num_days() > 90 {
        state.too_long.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "o período máximo é de 90 dias"})),
        )
            .into_response();
    }
    let size: usize = query
        .get("page_size")
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
        .clamp(1, 100);
    let number: usize = query
        .get("page_number")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
        .max(1);
    state.queries.lock().unwrap().push((
        query["start_date"].clone(),
        query["end_date"].clone(),
        number as u64,
    ));
    let matching: Vec<Value> = state
        .sales
        .lock()
        .unwrap()
        .iter()
        .filter(|s| {
            s["created_at"]
                .as_str()
                .and_then(day_of)
                .is_some_and(|d| d >= from && d <= to)
        })
        .cloned()
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip((number - 1) * size)
        .take(size)
        .cloned()
        .collect();
    Json(json!({"pagination": {"count": matching.len(), "page_number": number, "page_size": size}, "data": page})).into_response()
}
