//! A fake Hotmart REST API: a real local HTTP server speaking the documented protocol
//! — OAuth client-credentials tokens with Basic auth, the sales history
//! with `page_token` paging, status and date filters, the 500-item page cap, the sales'
//! participants (`/sales/users`), subscriptions, products, offers and plans (paged) — with injectable 429, 500 and 502 answers and token expiry.

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
    /// Every Sales History page takes this long to answer (a slow API, or a long import).
    pub history_latency_ms: AtomicU64,
}

/// The matching sales of a query, in order, and the range of them its dates select.
type SalesSlice = (Arc<Vec<Value>>, std::ops::Range<usize>);

/// The number of sales the cached matches were computed from, and the matches by query.
type Matches = (usize, HashMap<String, Arc<Vec<Value>>>);

pub struct FakeState {
    pub sales: Mutex<Vec<Value>>,
    pub products: Mutex<Vec<Value>>,
    pub offers: Mutex<HashMap<String, Vec<Value>>>,
    pub plans: Mutex<HashMap<String, Vec<Value>>>,
    /// `/sales/users` buyer entries (`user` objects) by transaction; a sale without one
    /// gets a buyer made of its Sales History buyer (no phone, no document).
    pub buyers: Mutex<HashMap<String, Value>>,
    /// Subscriptions as `GET /subscriptions` returns them.
    pub subscriptions: Mutex<Vec<Value>>,
    /// Requests per path (without the query), to check paging and call counts.
    pub requests: Mutex<HashMap<String, u32>>,
    /// `transaction_status` values answered with 400 (Hotmart spells some differently).
    pub refused_statuses: Mutex<Vec<String>>,
    /// The sorted matches of each query's filters other than dates and paging, for as long
    /// as the number of sales stays the same: a query costs a binary search of its date
    /// range and its page, not a scan of every sale.
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
            buyers: Mutex::new(HashMap::new()),
            subscriptions: Mutex::new(Vec::new()),
            requests: Mutex::new(HashMap::new()),
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
            .route("/payments/api/v1/sales/users", get(sales_users))
            .route("/payments/api/v1/subscriptions", get(subscriptions))
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

fn param(query: &[(String, String)], name: &str) -> Option<String> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

fn count_request(state: &FakeState, path: &str) {
    *state
        .requests
        .lock()
        .unwrap()
        .entry(path.to_owned())
        .or_default() += 1;
}

/// One page of `items` by the `max_results` (default `default_size`, capped at `cap`) and
/// `page_token` of the query. Each list has its own tokens (`kind`): a token of one list
/// is refused by another, as opaque tokens are.
fn paged(
    items: &[Value],
    query: &[(String, String)],
    kind: &str,
    default_size: usize,
    cap: usize,
) -> Response {
    let max = param(query, "max_results")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(default_size)
        .clamp(1, cap);
    let offset = match param(query, "page_token") {
        Some(token) => match STANDARD
            .decode(&token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix(kind).and_then(|n| n.parse::<usize>().ok()))
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
    let total = items.len();
    let page: Vec<Value> = items.iter().skip(offset).take(max).cloned().collect();
    let next = offset + page.len();
    let mut page_info = json!({"total_results": total, "results_per_page": max});
    if next < total {
        page_info["next_page_token"] = json!(STANDARD.encode(format!("{kind}{next}")));
    }
    Json(json!({"items": page, "page_info": page_info})).into_response()
}

/// The common part of the sales endpoints: auth, injected faults, filters. The matching
/// sales in Sales History's order, or the answer to give instead.
fn sales_query(
    state: &FakeState,
    headers: &HeaderMap,
    query: &[(String, String)],
) -> Result<SalesSlice, Box<Response>> {
    if let Some(response) = refusal(state, headers) {
        return Err(Box::new(response));
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
        return Err(Box::new(response));
    }
    if take(&state.faults.server_errors) {
        return Err(Box::new(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_server_error",
            "Try again",
        )));
    }
    let start = param(query, "start_date")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(i64::MIN);
    let end = param(query, "end_date")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(i64::MAX);
    let slow = state.faults.slow_window_ms.load(Ordering::SeqCst) as i64;
    if slow > 0 && end.saturating_sub(start) > slow && take(&state.faults.too_slow) {
        return Err(Box::new(error(
            StatusCode::BAD_GATEWAY,
            "internal_server_error",
            "Query took too long",
        )));
    }
    if let Some(status) = param(query, "transaction_status")
        && state.refused_statuses.lock().unwrap().contains(&status)
    {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            &format!("Invalid transaction_status: {status}"),
        )));
    }
    // Without a status filter Hotmart returns only approved and complete sales.
    let statuses: Vec<String> = match param(query, "transaction_status") {
        Some(status) => vec![status],
        None => vec!["APPROVED".into(), "COMPLETE".into()],
    };
    let product = param(query, "product_id");
    let transaction = param(query, "transaction");
    // The matches of the filters other than dates are cached in order; the date range is
    // a slice of them.
    let key = format!("{statuses:?}|{product:?}|{transaction:?}");
    let sales = state.sales.lock().unwrap();
    let mut cache = state.matches.lock().unwrap();
    if cache.0 != sales.len() {
        *cache = (sales.len(), HashMap::new());
    }
    let matching = cache
        .1
        .entry(key)
        .or_insert_with(|| {
            let filter = Filter {
                statuses: &statuses,
                product: product.as_deref(),
                transaction: transaction.as_deref(),
            };
            Arc::new(matching_sales(&sales, &filter))
        })
        .clone();
    let order = |s: &Value| s["purchase"]["order_date"].as_i64().unwrap_or(0);
    let from = matching.partition_point(|s| order(s) < start);
    let to = matching.partition_point(|s| order(s) <= end).max(from);
    Ok((matching, from..to))
}

async fn sales_history(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    count_request(&state, "/sales/history");
    let latency = state.faults.history_latency_ms.load(Ordering::SeqCst);
    if latency > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    }
    match sales_query(&state, &headers, &query) {
        Ok((matching, range)) => paged(&matching[range], &query, "h", 50, 500),
        Err(response) => *response,
    }
}

/// `GET /sales/users`: the participants of the same sales, in the same order, with the
/// same filters and paging (its own page tokens).
async fn sales_users(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    count_request(&state, "/sales/users");
    let (matching, range) = match sales_query(&state, &headers, &query) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let buyers = state.buyers.lock().unwrap();
    let items: Vec<Value> = matching[range]
        .iter()
        .map(|sale| {
            let transaction = sale["purchase"]["transaction"].as_str().unwrap_or_default();
            let buyer = buyers.get(transaction).cloned().unwrap_or_else(|| {
                json!({"ucode": sale["buyer"]["ucode"], "name": sale["buyer"]["name"],
                       "email": sale["buyer"]["email"], "locale": "pt_BR"})
            });
            json!({
                "transaction": transaction,
                "product": sale["product"],
                "users": [
                    {"role": "PRODUCER", "user": {"ucode": "p", "name": "Produtor", "email": "produtor@example.com", "cellphone": "+5511900000000"}},
                    {"role": "BUYER", "user": buyer},
                ]
            })
        })
        .collect();
    paged(&items, &query, "u", 50, 500)
}

/// `GET /subscriptions`: filters by product, subscriber, transaction, status and
/// accession date — which, when not given, starts 30 days ago, as Hotmart's does.
async fn subscriptions(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    if let Some(response) = refusal(&state, &headers) {
        return response;
    }
    count_request(&state, "/subscriptions");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let from = param(&query, "accession_date")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(now - 30 * 86_400_000);
    let to = param(&query, "end_accession_date")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(i64::MAX);
    let statuses: Vec<String> = query
        .iter()
        .filter(|(k, _)| k == "status")
        .map(|(_, v)| v.clone())
        .collect();
    let text_is = |value: &Value, wanted: Option<String>| {
        wanted.is_none_or(|w| match value {
            Value::String(s) => *s == w,
            Value::Number(n) => n.as_i64().is_some_and(|n| Some(n) == w.parse().ok()),
            _ => false,
        })
    };
    let mut items: Vec<Value> = state
        .subscriptions
        .lock()
        .unwrap()
        .iter()
        .filter(|s| {
            let accession = s["accession_date"].as_i64().unwrap_or(0);
            accession >= from
                && accession <= to
                && text_is(&s["product"]["id"], param(&query, "product_id"))
                && text_is(&s["transaction"], param(&query, "transaction"))
                && text_is(&s["subscriber_code"], param(&query, "subscriber_code"))
                && (statuses.is_empty() || statuses.iter().any(|x| s["status"].as_str() == Some(x)))
        })
        .cloned()
        .collect();
    items.sort_by_key(|s| {
        (
            s["accession_date"].as_i64(),
            s["subscriber_code"].to_string(),
        )
    });
    paged(&items, &query, "s", 50, 500)
}

/// A subscription item as `GET /subscriptions` returns it.
pub fn subscription(
    code: &str,
    transaction: &str,
    product: u64,
    email: &str,
    accession_date: i64,
    status: &str,
) -> Value {
    json!({
        "subscriber_code": code, "subscription_id": 1, "status": status,
        "accession_date": accession_date, "request_date": accession_date, "trial": false,
        "transaction": transaction,
        "plan": {"name": "Plano mensal", "id": 7, "recurrency_period": 30},
        "product": {"id": product, "name": format!("Curso {product}"), "ucode": "x"},
        "price": {"value": 97.0, "currency_code": "BRL"},
        "subscriber": {"name": "Assinante", "email": email, "ucode": "u"}
    })
}

struct Filter<'a> {
    statuses: &'a [String],
    product: Option<&'a str>,
    transaction: Option<&'a str>,
}

/// Sales History's filter and order: by order date, then transaction.
fn matching_sales(sales: &[Value], f: &Filter) -> Vec<Value> {
    let mut matching: Vec<&Value> = sales
        .iter()
        .filter(|s| {
            let status = s["purchase"]["status"].as_str().unwrap_or_default();
            f.statuses.iter().any(|x| x == status)
                && f.transaction
                    .is_none_or(|t| s["purchase"]["transaction"].as_str() == Some(t))
                && f.product.is_none_or(|p| {
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
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    if let Some(response) = refusal(&state, &headers) {
        return response;
    }
    count_request(&state, "/offers");
    let items = state
        .offers
        .lock()
        .unwrap()
        .get(&ucode)
        .cloned()
        .unwrap_or_default();
    paged(&items, &query, "o", 50, 100)
}

/// Hotmart answers 400 for a product without plans (instead of an empty list).
async fn plans(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    Path(ucode): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    if let Some(response) = refusal(&state, &headers) {
        return response;
    }
    count_request(&state, "/plans");
    match state.plans.lock().unwrap().get(&ucode) {
        Some(items) if !items.is_empty() => paged(items, &query, "p", 50, 100),
        _ => error(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            "The product has no plans",
        ),
    }
}
