//! Hotmart REST API client (see `docs/import.md`): an OAuth client-credentials token per
//! credential, shared by the process and cached until shortly before it expires; 401 → new
//! token and one retry, 429 → wait `RateLimit-Reset`, 5xx → capped exponential backoff,
//! 502 reported so the caller can narrow the query; and a request budget per credential
//! shared by every process through the database, under Hotmart's 500 a minute.

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

/// An OAuth token, shared by every client of this process using the same credential.
#[derive(Clone)]
struct CachedToken {
    value: String,
    renew_at: Instant,
}

type TokenSlot = Arc<tokio::sync::Mutex<Option<CachedToken>>>;

/// The token slot of a credential at an authorisation server (client id and secret: a
/// changed secret gets its own slot).
fn token_slot(auth_url: &str, credentials: &Credentials) -> TokenSlot {
    static SLOTS: OnceLock<Mutex<HashMap<String, TokenSlot>>> = OnceLock::new();
    let key = entity::api_limits::key_of(&format!(
        "{auth_url}\n{}\n{}",
        credentials.client_id, credentials.client_secret
    ));
    SLOTS
        .get_or_init(Default::default)
        .lock()
        .expect("token cache lock")
        .entry(key)
        .or_default()
        .clone()
}

pub struct HotmartClient {
    http: reqwest::Client,
    api_url: String,
    auth_url: String,
    credentials: Credentials,
    token: TokenSlot,
    /// The shared request budget (see `entity::api_limits`).
    db: sea_orm::DatabaseConnection,
    limit_key: String,
    per_minute: f64,
}

impl HotmartClient {
    pub fn new(
        endpoints: &crate::context::HotmartEndpoints,
        credentials: Credentials,
        db: sea_orm::DatabaseConnection,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .expect("HTTP client");
        Self {
            http,
            token: token_slot(&endpoints.auth_url, &credentials),
            limit_key: entity::api_limits::key_of(&credentials.client_id),
            per_minute: endpoints.requests_per_minute,
            db,
            api_url: endpoints.api_url.trim_end_matches('/').to_owned(),
            auth_url: endpoints.auth_url.trim_end_matches('/').to_owned(),
            credentials,
        }
    }

    /// Waits for the credential's turn in the budget shared by every process. When the
    /// database cannot be asked, waits one request's share of the rate instead.
    async fn acquire(&self) {
        let wait = match entity::api_limits::take(&self.db, &self.limit_key, self.per_minute).await
        {
            Ok(wait) => wait,
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the shared Hotmart request budget");
                Duration::from_secs_f64(60.0 / self.per_minute)
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// The credential's token; `refused` is a token Hotmart just refused, renewed unless
    /// another client already did.
    async fn token(&self, refused: Option<&str>) -> Result<String, HotmartError> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref()
            && Instant::now() < token.renew_at
            && refused != Some(token.value.as_str())
        {
            return Ok(token.value.clone());
        }
        self.acquire().await;
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
            let token = self.token(None).await?;
            self.acquire().await;
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
            match self
                .next_step(response, attempt, &mut renewed, &token)
                .await
            {
                Step::Done(result) => return result,
                Step::Again { wait, counts } => {
                    if !counts {
                        attempt -= 1;
                    }
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
    }

    /// What to do with an answer: return it (or its error), or ask again after a wait.
    async fn next_step(
        &self,
        response: reqwest::Response,
        attempt: u32,
        renewed: &mut bool,
        token: &str,
    ) -> Step {
        let status = response.status().as_u16();
        let reset = response
            .headers()
            .get("RateLimit-Reset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let again = |wait| Step::Again { wait, counts: true };
        match status {
            200 => Step::Done(
                response
                    .json()
                    .await
                    .map_err(|err| HotmartError::Protocol(err.to_string())),
            ),
            401 if !*renewed => {
                // Expired or revoked token: a new one, once.
                *renewed = true;
                match self.token(Some(token)).await {
                    Ok(_) => Step::Again {
                        wait: Duration::ZERO,
                        counts: false,
                    },
                    Err(err) => Step::Done(Err(err)),
                }
            }
            401 | 403 => {
                let body: Value = response.json().await.unwrap_or(Value::Null);
                Step::Done(Err(HotmartError::Credentials {
                    status,
                    detail: error_detail(&body),
                }))
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
                again(wait)
            }
            502 => Step::Done(Err(HotmartError::QueryTooSlow)),
            500..=599 if attempt < MAX_ATTEMPTS => {
                tracing::warn!(status, attempt, "Hotmart server error; retrying");
                again(backoff(attempt))
            }
            _ => {
                let body: Value = response.json().await.unwrap_or(Value::Null);
                Step::Done(Err(HotmartError::Http {
                    status,
                    detail: error_detail(&body),
                }))
            }
        }
    }
}

/// The outcome of one answer of the API.
enum Step {
    Done(Result<Value, HotmartError>),
    /// Ask again after `wait`; `counts` when it uses one of the attempts.
    Again {
        wait: Duration,
        counts: bool,
    },
}

impl HotmartClient {
    /// Every item of a paged list (`items[]`, `page_info.next_page_token`), following
    /// the tokens; at most `max_pages` pages, as a guard against a token that loops.
    pub async fn get_all(
        &self,
        path: &str,
        query: &[(&str, String)],
        max_pages: usize,
    ) -> Result<Vec<Value>, HotmartError> {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..max_pages {
            let mut query = query.to_vec();
            if let Some(token) = &token {
                query.push(("page_token", token.clone()));
            }
            let page = self.get(path, &query).await?;
            items.extend(page["items"].as_array().into_iter().flatten().cloned());
            token = entity::hotmart::rest::next_page_token(&page);
            if token.is_none() {
                return Ok(items);
            }
        }
        Err(HotmartError::Protocol(format!(
            "{path} has more than {max_pages} pages"
        )))
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
