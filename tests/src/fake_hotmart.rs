//! A fake Hotmart REST API: a real local HTTP server speaking the documented protocol
//! (`hotmart.md` §4) — OAuth client-credentials tokens with Basic auth, the sales history
//! with `page_token` paging, status and date filters, the 500-item page cap, products,
//! offers and plans — with injectable 429, 500 and 502 answers and token expiry.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
};

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::{Value, json};

pub const CLIENT_ID: &str = "fake-client-id";
pub const CLIENT_SECRET: &str = "fake-client-secret";

#[derive(Default)]
pub struct Faults {
    /// The next N sales-history requests answer 429 with `RateLimit-Reset: 1`.
    pub rate_limited: AtomicU32,
    /// The next N sales-history requests answer 500.
    pub server_errors: AtomicU32,
    /// Up to N requests for a window longer than `slow_window_ms` answer 502.
    pub too_slow: AtomicU32,
    pub slow_window_ms: AtomicU64,
    /// Tokens stop working after this many uses (0 = never).
    pub token_uses: AtomicU32,
}

/// The number of sales the cached matches were computed from, and the matches by query.
type Matches = (usize, HashMap<String, Arc<Vec<Value>>>);

pub struct FakeState {
    pub sales: Mutex<Vec<Value>>,
    pub products: Mutex<Vec<Value>>,
    pub offers: Mutex<HashMap<String, Vec<Value>>>,
    pub plans: Mutex<HashMap<String, Vec<Value>>>,
    /// `transaction_status` values answered with 400 (Hotmart spells some differently).
    pub refused_statuses: Mutex<Vec<String>>,
    /// The sorted matches of each query (without its page token), for as long as the
    /// number of sales stays the same: paging costs the page, not a scan of every sale.
    matches: Mutex<Matches>,
    pub faults: Faults,
    tokens: Mutex<HashMap<String, u32>>,
    pub tokens_issued: AtomicU32,
    pub sales_requests: AtomicU32,
}

pub struct FakeHotmart {
    pub base: String,
    pub state: Arc<FakeState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeHotmart {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeHotmart {
    pub async fn start() -> FakeHotmart {
        let state = Arc::new(FakeState {
            sales: Mutex::new(Vec::new()),
            products: Mutex::new(Vec::new()),
            offers: Mutex::new(HashMap::new()),
            plans: Mutex::new(HashMap::new()),
            refused_statuses: Mutex::new(Vec::new()),
            matches: Mutex::new((0, HashMap::new())),
            faults: Faults::default(),
            tokens: Mutex::new(HashMap::new()),
            tokens_issued: AtomicU32::new(0),
            sales_requests: AtomicU32::new(0),
        });
        let router = Router::new()
            .route("/security/oauth/token", post(token))
            .route("/payments/api/v1/sales/history", get(sales_history))
            .route("/products/api/v1/products", get(products))
            .route("/products/api/v1/products/{ucode}/offers", get(offers))
            .route("/products/api/v1/products/{ucode}/plans", get(plans))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        FakeHotmart {
            base,
            state,
            server,
        }
    }
}

/// A Sales History item as Hotmart returns it.
pub fn sale(
    transaction: &str,
    status: &str,
    product: u64,
    email: &str,
    order_date: i64,
    price: f64,
) -> Value {
    let paid = matches!(
        status,
        "APPROVED" | "COMPLETE" | "REFUNDED" | "CHARGEBACK" | "PROTESTED"
    );
    json!({
        "product": {"id": product, "name": format!("Curso {product}")},
        "buyer": {"name": "Comprador", "ucode": "u", "email": email},
        "producer": {"name": "Produtor", "ucode": "p"},
        "purchase": {
            "transaction": transaction, "order_date": order_date,
            "approved_date": if paid { json!(order_date + 60_000) } else { Value::Null },
            "status": status, "recurrency_number": 1, "is_subscription": false,
            "price": {"value": price, "currency_code": "BRL"},
            "payment": {"method": "CREDIT_CARD_VISA", "installments_number": 1, "type": "CREDIT_CARD"}
        }
    })
}

fn error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

async fn token(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let expected = format!(
        "Basic {}",
        STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    let basic_ok =
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str());
    if query.get("grant_type").map(String::as_str) != Some("client_credentials") || !basic_ok {
        return error(StatusCode::UNAUTHORIZED, "unauthorized", "Bad credentials");
    }
    let token = format!("tok-{}", uuid::Uuid::now_v7().simple());
    let uses = state.faults.token_uses.load(Ordering::SeqCst);
    state
        .tokens
        .lock()
        .unwrap()
        .insert(token.clone(), if uses == 0 { u32::MAX } else { uses });
    state.tokens_issued.fetch_add(1, Ordering::SeqCst);
    Json(json!({"access_token": token, "token_type": "bearer", "expires_in": 86400, "scope": "read write", "jti": "x"})).into_response()
}

/// The refusal for a missing, unknown or expired bearer token; `None` when it is good.
fn refusal(state: &FakeState, headers: &HeaderMap) -> Option<Response> {
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
        Some(_) => Some(error(
            StatusCode::UNAUTHORIZED,
            "token_expired",
            "The token expired",
        )),
        None => Some(error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "Invalid token",
        )),
    }
}

fn take(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

async fn sales_history(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    if let Some(response) = refusal(&state, &headers) {
        return response;
    }
    state.sales_requests.fetch_add(1, Ordering::SeqCst);
    if take(&state.faults.rate_limited) {
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "Rate limit exceeded",
        );
        response
            .headers_mut()
            .insert("RateLimit-Reset", "1".parse().unwrap());
        return response;
    }
    if take(&state.faults.server_errors) {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_server_error",
            "Try again",
        );
    }
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let start = param("start_date")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(i64::MIN);
    let end = param("end_date")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(i64::MAX);
    let slow = state.faults.slow_window_ms.load(Ordering::SeqCst) as i64;
    if slow > 0 && end.saturating_sub(start) > slow && take(&state.faults.too_slow) {
        return error(
            StatusCode::BAD_GATEWAY,
            "internal_server_error",
            "Query took too long",
        );
    }
    if let Some(status) = param("transaction_status")
        && state.refused_statuses.lock().unwrap().contains(&status)
    {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            &format!("Invalid transaction_status: {status}"),
        );
    }
    // Without a status filter Hotmart returns only approved and complete sales.
    let statuses: Vec<String> = match param("transaction_status") {
        Some(status) => vec![status],
        None => vec!["APPROVED".into(), "COMPLETE".into()],
    };
    let product = param("product_id");
    let max = param("max_results")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(50)
        .clamp(1, 500);
    let offset = match param("page_token") {
        Some(token) => match STANDARD
            .decode(&token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse::<usize>().ok())
        {
            Some(offset) => offset,
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_token",
                    "Invalid page token",
                );
            }
        },
        None => 0,
    };
    let key = format!("{start}|{end}|{statuses:?}|{product:?}");
    let matching = {
        let sales = state.sales.lock().unwrap();
        let mut cache = state.matches.lock().unwrap();
        if cache.0 != sales.len() {
            *cache = (sales.len(), HashMap::new());
        }
        cache
            .1
            .entry(key)
            .or_insert_with(|| {
                Arc::new(matching_sales(
                    &sales,
                    start,
                    end,
                    &statuses,
                    product.as_deref(),
                ))
            })
            .clone()
    };
    let total = matching.len();
    let items: Vec<Value> = matching.iter().skip(offset).take(max).cloned().collect();
    let next = offset + items.len();
    let mut page_info = json!({"total_results": total, "results_per_page": max});
    if next < total {
        page_info["next_page_token"] = json!(STANDARD.encode(next.to_string()));
    }
    Json(json!({"items": items, "page_info": page_info})).into_response()
}

/// Sales History's filter and order: by order date, then transaction.
fn matching_sales(
    sales: &[Value],
    start: i64,
    end: i64,
    statuses: &[String],
    product: Option<&str>,
) -> Vec<Value> {
    let mut matching: Vec<&Value> = sales
        .iter()
        .filter(|s| {
            let order = s["purchase"]["order_date"].as_i64().unwrap_or(0);
            let status = s["purchase"]["status"].as_str().unwrap_or_default();
            order >= start
                && order <= end
                && statuses.iter().any(|x| x == status)
                && product.is_none_or(|p| {
                    // Ids are numbers in sales and strings in queries.
                    let id = s["product"]["id"].to_string();
                    id == p
                })
        })
        .collect();
    matching.sort_by_cached_key(|s| {
        (
            s["purchase"]["order_date"].as_i64(),
            s["purchase"]["transaction"].as_str().map(str::to_owned),
        )
    });
    matching.into_iter().cloned().collect()
}

async fn products(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(response) = refusal(&state, &headers) {
        return response;
    }
    let items: Vec<Value> = state
        .products
        .lock()
        .unwrap()
        .iter()
        .filter(|p| query.get("id").is_none_or(|id| &p["id"].to_string() == id))
        .cloned()
        .collect();
    Json(json!({"items": items, "page_info": {"results_per_page": 50}})).into_response()
}

async fn offers(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    Path(ucode): Path<String>,
) -> Response {
    if let Some(response) = refusal(&state, &headers) {
        return response;
    }
    let items = state
        .offers
        .lock()
        .unwrap()
        .get(&ucode)
        .cloned()
        .unwrap_or_default();
    Json(json!({"items": items, "page_info": {"results_per_page": 50}})).into_response()
}

/// Hotmart answers 400 for a product without plans (instead of an empty list).
async fn plans(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    Path(ucode): Path<String>,
) -> Response {
    if let Some(response) = refusal(&state, &headers) {
        return response;
    }
    match state.plans.lock().unwrap().get(&ucode) {
        Some(items) if !items.is_empty() => {
            Json(json!({"items": items, "page_info": {"results_per_page": 50}})).into_response()
        }
        _ => error(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            "The product has no plans",
        ),
    }
}
