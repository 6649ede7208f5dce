//! Hotmart REST API client (see `docs/import.md`): an OAuth client-credentials token per
//! credential, shared by the process and cached until shortly before it expires; 401 → new
//! token and one retry, 429 → wait `RateLimit-Reset`, 5xx and network errors → capped
//! exponential backoff (the `backon` crate), 502 reported so the caller can narrow the
//! query; and a request budget per credential shared by every process through the
//! database, under Hotmart's 500 a minute. (An in-process limiter such as `governor`
//! cannot hold a limit that several processes share: the budget is a token bucket in the
//! database, taken atomically — see `entity::api_limits`.)

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
    db: entity::database::Database,
    limit_key: String,
    per_minute: f64,
}

impl HotmartClient {
    pub fn new(
        endpoints: &crate::context::HotmartEndpoints,
        credentials: Credentials,
        db: entity::database::Database,
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
        let wait = match self.take().await {
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

    /// Takes one request from the budget, in a write transaction: on SQLite it queues
    /// for the write lock in the process's gate instead of sleeping in SQLite's busy
    /// handler while an import page commits.
    async fn take(&self) -> entity::DomainResult<Duration> {
        let txn = self.db.begin_write().await?;
        let wait = entity::api_limits::take(&*txn, &self.limit_key, self.per_minute).await?;
        txn.commit().await?;
        Ok(wait)
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

    /// `GET {HOTMART_API_URL}{path}` with retries (the `backon` crate: capped exponential
    /// backoff, or the wait Hotmart's `RateLimit-Reset` asks for); the JSON body on success.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, HotmartError> {
        use backon::Retryable;
        let policy = backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(250))
            .with_max_delay(MAX_BACKOFF)
            .with_max_times(MAX_ATTEMPTS as usize - 1);
        (|| self.get_once(path, query))
            .retry(policy)
            .when(|failure| matches!(failure, Failure::Transient { .. }))
            .adjust(|failure, backoff| match failure {
                Failure::Transient {
                    wait: Some(wait), ..
                } => backoff.map(|_| *wait),
                _ => backoff,
            })
            .notify(|failure, wait| {
                tracing::warn!(error = %failure.error(), wait_ms = wait.as_millis() as u64, "Hotmart request failed; retrying");
            })
            .await
            .map_err(Failure::into_error)
    }

    /// One attempt: a request (and, when the token was refused, a new token and the same
    /// request again).
    async fn get_once(&self, path: &str, query: &[(&str, String)]) -> Result<Value, Failure> {
        let token = self.token(None).await.map_err(Failure::Final)?;
        let mut response = self.send(path, query, &token).await?;
        if response.status().as_u16() == 401 {
            // Expired or revoked token: a new one, once.
            let renewed = self.token(Some(&token)).await.map_err(Failure::Final)?;
            response = self.send(path, query, &renewed).await?;
        }
        read_answer(response).await
    }

    async fn send(
        &self,
        path: &str,
        query: &[(&str, String)],
        token: &str,
    ) -> Result<reqwest::Response, Failure> {
        self.acquire().await;
        self.http
            .get(format!("{}{path}", self.api_url))
            .query(query)
            .bearer_auth(token)
            .header("Content-Type", "application/json")
            .send()
            .await
            .map_err(|err| Failure::Transient {
                error: HotmartError::Network(err.without_url().to_string()),
                wait: None,
            })
    }
}

/// How an attempt failed: worth another attempt (after `wait`, when Hotmart said how
/// long), or not.
enum Failure {
    Transient {
        error: HotmartError,
        wait: Option<Duration>,
    },
    Final(HotmartError),
}

impl Failure {
    fn error(&self) -> &HotmartError {
        match self {
            Failure::Transient { error, .. } | Failure::Final(error) => error,
        }
    }

    fn into_error(self) -> HotmartError {
        match self {
            Failure::Transient { error, .. } | Failure::Final(error) => error,
        }
    }
}

/// The body of a successful answer, or what its status means.
async fn read_answer(response: reqwest::Response) -> Result<Value, Failure> {
    let status = response.status().as_u16();
    let reset = response
        .headers()
        .get("RateLimit-Reset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|secs| Duration::from_secs(secs).min(Duration::from_secs(60)));
    if status == 200 {
        return response
            .json()
            .await
            .map_err(|err| Failure::Final(HotmartError::Protocol(err.to_string())));
    }
    if status == 502 {
        return Err(Failure::Final(HotmartError::QueryTooSlow));
    }
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let detail = error_detail(&body);
    Err(match status {
        401 | 403 => Failure::Final(HotmartError::Credentials { status, detail }),
        429 => Failure::Transient {
            error: HotmartError::Http { status, detail },
            wait: reset,
        },
        500..=599 => Failure::Transient {
            error: HotmartError::Http { status, detail },
            wait: None,
        },
        _ => Failure::Final(HotmartError::Http { status, detail }),
    })
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

fn error_detail(body: &Value) -> String {
    match (body["error"].as_str(), body["error_description"].as_str()) {
        (Some(error), Some(description)) => format!("{error}: {description}"),
        (Some(error), None) => error.to_owned(),
        _ => "no details".to_owned(),
    }
}
