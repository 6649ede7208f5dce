//! Hotmart REST API client (`hotmart.md` §4): OAuth client-credentials token cached until
//! shortly before it expires, 401 → new token and one retry, 429 → wait `RateLimit-Reset`,
//! 5xx → capped exponential backoff, 502 reported so the caller can narrow the query, and a
//! client-side limiter that stays under 500 requests per minute per credential.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use entity::imports::Credentials;
use serde_json::Value;

/// Requests per minute a credential may use by default; Hotmart allows 500.
pub const REQUESTS_PER_MINUTE: f64 = 480.0;
const MAX_ATTEMPTS: u32 = 6;
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A cached token is renewed this long before Hotmart says it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, thiserror::Error)]
pub enum HotmartError {
    #[error("Hotmart rejected the API credentials ({status}): {detail}")]
    Credentials { status: u16, detail: String },
    #[error("Hotmart answered 502: the query is too slow for this date range")]
    QueryTooSlow,
    #[error("Hotmart answered {status}: {detail}")]
    Http { status: u16, detail: String },
    #[error("cannot reach Hotmart: {0}")]
    Network(String),
    #[error("unexpected answer from Hotmart: {0}")]
    Protocol(String),
}

/// A token bucket per client id, shared by every client of this process.
struct Bucket {
    tokens: f64,
    at: Instant,
    per_minute: f64,
}

fn bucket_for(client_id: &str, per_minute: f64) -> Arc<Mutex<Bucket>> {
    static BUCKETS: OnceLock<Mutex<HashMap<String, Arc<Mutex<Bucket>>>>> = OnceLock::new();
    let map = BUCKETS.get_or_init(Default::default);
    map.lock()
        .expect("limiter map lock")
        .entry(client_id.to_owned())
        .or_insert_with(|| {
            Arc::new(Mutex::new(Bucket {
                tokens: per_minute,
                at: Instant::now(),
                per_minute,
            }))
        })
        .clone()
}

async fn acquire(bucket: &Mutex<Bucket>) {
    loop {
        let wait = {
            let mut b = bucket.lock().expect("limiter lock");
            let now = Instant::now();
            let refill = now.duration_since(b.at).as_secs_f64() * b.per_minute / 60.0;
            b.tokens = (b.tokens + refill).min(b.per_minute);
            b.at = now;
            if b.tokens >= 1.0 {
                b.tokens -= 1.0;
                return;
            }
            Duration::from_secs_f64((1.0 - b.tokens) * 60.0 / b.per_minute)
        };
        tokio::time::sleep(wait).await;
    }
}

struct CachedToken {
    value: String,
    renew_at: Instant,
}

pub struct HotmartClient {
    http: reqwest::Client,
    api_url: String,
    auth_url: String,
    credentials: Credentials,
    token: tokio::sync::Mutex<Option<CachedToken>>,
    limiter: Arc<Mutex<Bucket>>,
}

impl HotmartClient {
    pub fn new(endpoints: &crate::deliveries::HotmartEndpoints, credentials: Credentials) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .expect("HTTP client");
        Self {
            http,
            limiter: bucket_for(&credentials.client_id, endpoints.requests_per_minute),
            api_url: endpoints.api_url.trim_end_matches('/').to_owned(),
            auth_url: endpoints.auth_url.trim_end_matches('/').to_owned(),
            credentials,
            token: tokio::sync::Mutex::new(None),
        }
    }

    async fn token(&self, renew: bool) -> Result<String, HotmartError> {
        let mut cached = self.token.lock().await;
        if !renew
            && let Some(token) = cached.as_ref()
            && Instant::now() < token.renew_at
        {
            return Ok(token.value.clone());
        }
        acquire(&self.limiter).await;
        let basic = STANDARD.encode(format!(
            "{}:{}",
            self.credentials.client_id, self.credentials.client_secret
        ));
        let response = self
            .http
            .post(format!("{}/security/oauth/token", self.auth_url))
            .query(&[
                ("grant_type", "client_credentials"),
                ("client_id", self.credentials.client_id.as_str()),
                ("client_secret", self.credentials.client_secret.as_str()),
            ])
            .header("Authorization", format!("Basic {basic}"))
            .send()
            .await
            .map_err(|err| HotmartError::Network(err.without_url().to_string()))?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status == 401 || status == 403 || status == 400 {
            return Err(HotmartError::Credentials {
                status,
                detail: error_detail(&body),
            });
        }
        if status != 200 {
            return Err(HotmartError::Http {
                status,
                detail: error_detail(&body),
            });
        }
        let value = body["access_token"]
            .as_str()
            .ok_or_else(|| HotmartError::Protocol("token response without access_token".into()))?
            .to_owned();
        let lifetime = Duration::from_secs(body["expires_in"].as_u64().unwrap_or(3600));
        *cached = Some(CachedToken {
            value: value.clone(),
            renew_at: Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN),
        });
        Ok(value)
    }

    /// `GET {HOTMART_API_URL}{path}` with retries; the JSON body on success.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, HotmartError> {
        let mut renewed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.token(false).await?;
            acquire(&self.limiter).await;
            let response = self
                .http
                .get(format!("{}{path}", self.api_url))
                .query(query)
                .bearer_auth(&token)
                .header("Content-Type", "application/json")
                .send()
                .await;
            let response = match response {
                Ok(response) => response,
                Err(err) if attempt < MAX_ATTEMPTS => {
                    tracing::warn!(error = %err.without_url(), attempt, "Hotmart unreachable; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
                Err(err) => return Err(HotmartError::Network(err.without_url().to_string())),
            };
            let status = response.status().as_u16();
            let reset = response
                .headers()
                .get("RateLimit-Reset")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            match status {
                200 => {
                    return response
                        .json()
                        .await
                        .map_err(|err| HotmartError::Protocol(err.to_string()));
                }
                401 if !renewed => {
                    // Expired or revoked token: a new one, once.
                    renewed = true;
                    self.token(true).await?;
                    attempt -= 1;
                }
                401 | 403 => {
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    return Err(HotmartError::Credentials {
                        status,
                        detail: error_detail(&body),
                    });
                }
                429 if attempt < MAX_ATTEMPTS => {
                    let wait = reset
                        .map(Duration::from_secs)
                        .unwrap_or_else(|| backoff(attempt))
                        .min(Duration::from_secs(60));
                    tracing::warn!(
                        wait_ms = wait.as_millis() as u64,
                        "Hotmart rate limit; waiting"
                    );
                    tokio::time::sleep(wait).await;
                }
                502 => return Err(HotmartError::QueryTooSlow),
                500..=599 if attempt < MAX_ATTEMPTS => {
                    tracing::warn!(status, attempt, "Hotmart server error; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                _ => {
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    return Err(HotmartError::Http {
                        status,
                        detail: error_detail(&body),
                    });
                }
            }
        }
    }
}

fn backoff(attempt: u32) -> Duration {
    (Duration::from_millis(250) * 2u32.saturating_pow(attempt.saturating_sub(1))).min(MAX_BACKOFF)
}

fn error_detail(body: &Value) -> String {
    match (body["error"].as_str(), body["error_description"].as_str()) {
        (Some(error), Some(description)) => format!("{error}: {description}"),
        (Some(error), None) => error.to_owned(),
        _ => "no details".to_owned(),
    }
}
