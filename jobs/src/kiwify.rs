//! Imports from Kiwify's public API: an OAuth client-credentials token (renewed on 401),
//! the account id on every call, and the sales list paged by number over a window of at
//! most 90 days; 429 waits `Retry-After`, 5xx and network errors back off. Each page
//! commits with the window's cursor (the page number), as Hotmart's do.

use std::time::Duration;

use entity::{
    engine::apply::IntegrationSnapshot,
    imports::{self, Credentials, ImportedSale, PageCounts},
    kiwify::rest,
    tables::{import_run, import_window},
};
use sea_orm::EntityTrait;
use serde_json::Value;

use crate::{context::JobContext, import_pages::ImportedPage};

/// Sales per page asked for.
pub const PAGE_SIZE: u64 = 100;
const MAX_ATTEMPTS: u32 = 6;
const MAX_WAIT: Duration = Duration::from_secs(60);
/// A guard against a list that never ends.
const MAX_PAGES: u64 = 10_000;
/// The cursor's status part for Kiwify windows (one list, paged by number).
const CURSOR: &str = "kiwify";

#[derive(Debug, Clone, thiserror::Error)]
pub enum KiwifyError {
    #[error("Kiwify rejected the API credentials ({status}): {detail}")]
    Credentials { status: u16, detail: String },
    #[error("Kiwify answered {status}: {detail}")]
    Http { status: u16, detail: String },
    #[error("cannot reach Kiwify: {0}")]
    Network(String),
    #[error("unexpected answer from Kiwify: {0}")]
    Protocol(String),
    #[error(transparent)]
    Domain(#[from] entity::DomainError),
}

/// A Kiwify API client for one integration's credentials.
pub struct KiwifyClient {
    http: reqwest::Client,
    base: String,
    credentials: Credentials,
    token: tokio::sync::Mutex<Option<String>>,
}

impl KiwifyClient {
    pub fn new(base: &str, credentials: Credentials) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client builds");
        KiwifyClient {
            http,
            base: base.trim_end_matches('/').to_owned(),
            credentials,
            token: tokio::sync::Mutex::new(None),
        }
    }

    /// `POST /oauth/token` (form-encoded client credentials).
    async fn new_token(&self) -> Result<String, KiwifyError> {
        let form = [
            ("client_id", self.credentials.client_id.as_str()),
            ("client_secret", self.credentials.client_secret.as_str()),
        ];
        let response = self
            .http
            .post(format!("{}/oauth/token", self.base))
            .form(&form)
            .send()
            .await
            .map_err(|e| KiwifyError::Network(e.to_string()))?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status == 400 || status == 401 || status == 403 {
            return Err(KiwifyError::Credentials {
                status,
                detail: detail(&body),
            });
        }
        if !(200..300).contains(&status) {
            return Err(KiwifyError::Http {
                status,
                detail: detail(&body),
            });
        }
        body["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| KiwifyError::Protocol("no access_token in the token answer".into()))
    }

    async fn token(&self, renew: bool) -> Result<String, KiwifyError> {
        let mut slot = self.token.lock().await;
        if renew || slot.is_none() {
            *slot = Some(self.new_token().await?);
        }
        Ok(slot.clone().expect("set above"))
    }

    /// `GET {path}` with the token and the account id; retries as the module says.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, KiwifyError> {
        let account = self.credentials.account_id.clone().unwrap_or_default();
        let mut renewed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.token(false).await?;
            let sent = self
                .http
                .get(format!("{}{path}", self.base))
                .query(query)
                .bearer_auth(&token)
                .header("x-kiwify-account-id", &account)
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                Err(err) if attempt < MAX_ATTEMPTS => {
                    tracing::warn!(error = %err, "Kiwify unreachable; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
                Err(err) => return Err(KiwifyError::Network(err.to_string())),
            };
            let status = response.status().as_u16();
            let wait = retry_after(&response);
            let body: Value = response.json().await.unwrap_or(Value::Null);
            match status {
                200..=299 => return Ok(body),
                401 if !renewed => {
                    renewed = true;
                    self.token(true).await?;
                }
                401 | 403 => {
                    return Err(KiwifyError::Credentials {
                        status,
                        detail: detail(&body),
                    });
                }
                429 | 500..=599 if attempt < MAX_ATTEMPTS => {
                    tokio::time::sleep(wait.unwrap_or_else(|| backoff(attempt))).await;
                }
                _ => {
                    return Err(KiwifyError::Http {
                        status,
                        detail: detail(&body),
                    });
                }
            }
        }
    }
}

fn detail(body: &Value) -> String {
    let text = body["message"]
        .as_str()
        .or_else(|| body["error"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| body.to_string());
    text.chars().take(300).collect()
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200 * 2u64.pow(attempt.min(8))).min(MAX_WAIT)
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let secs: u64 = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(MAX_WAIT))
}

/// A São Paulo calendar date (`YYYY-MM-DD`) of an instant, as Kiwify's date filters take.
fn sao_paulo_date(ms: i64) -> String {
    let offset = i64::from(entity::sale::json::SAO_PAULO_OFFSET_SECS) * 1000;
    chrono::DateTime::from_timestamp_millis(ms + offset)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// A canceled or failed run stops at the next page.
async fn run_is_over(ctx: &JobContext, run: &import_run::Model) -> Result<bool, KiwifyError> {
    let current = import_run::Entity::find_by_id(run.id.clone())
        .one(&ctx.db.conn)
        .await
        .map_err(entity::DomainError::from)?;
    Ok(current.is_none_or(|r| r.status.is_final()))
}

/// The sales list's query for one page of a window: the São Paulo days it touches.
fn sales_query(window: &import_window::Model, number: u64) -> [(&'static str, String); 5] {
    [
        ("start_date", sao_paulo_date(window.range_from)),
        ("end_date", sao_paulo_date(window.range_to - 1)),
        ("page_size", PAGE_SIZE.to_string()),
        ("page_number", number.to_string()),
        ("view_full_sale_details", "true".to_owned()),
    ]
}

/// Refuses a window longer than Kiwify's API answers for.
fn within_kiwify_span(window: &import_window::Model) -> Result<(), KiwifyError> {
    let span = window.range_to - window.range_from;
    if span > rest::MAX_QUERY_DAYS * 86_400_000 {
        return Err(KiwifyError::Protocol(format!(
            "a window of {} days is over Kiwify's 90",
            span / 86_400_000
        )));
    }
    Ok(())
}

/// Imports one window of a Kiwify run; `Ok(true)` when handed over (the process is
/// stopping), `Ok(false)` when done or the run ended.
pub async fn run_window(
    ctx: &JobContext,
    window: &import_window::Model,
    run: &import_run::Model,
    snap: &IntegrationSnapshot,
) -> Result<bool, KiwifyError> {
    let credentials = imports::credentials(&ctx.keys, &snap.integration)?;
    let client = KiwifyClient::new(&ctx.hotmart.kiwify_api_url, credentials);
    within_kiwify_span(window)?;
    let wanted = imports::events_of(run)?;
    let products = imports::product_ids_of(run);
    let page = ImportedPage {
        snap,
        run,
        window_id: &window.id,
    };
    let mut cursor: imports::WindowCursor =
        (window.cursor_status.clone(), window.page_token.clone());
    let mut number: u64 = cursor
        .1
        .as_deref()
        .and_then(|p| p.parse().ok())
        .unwrap_or(1);
    while number <= MAX_PAGES {
        if ctx.is_stopping() {
            return Ok(true);
        }
        if run_is_over(ctx, run).await? {
            return Ok(false);
        }
        imports::touch_window(&ctx.db.conn, &window.id).await?;
        let listed = client.get("/sales", &sales_query(window, number)).await?;
        let items = listed["data"].as_array().cloned().unwrap_or_default();
        ctx.telemetry.imported_sales(items.len() as u64);
        let (events, counts) = page_events(&items, window, &wanted, &products);
        let last = rest::is_last_page(&listed, number, PAGE_SIZE);
        let moved_to: imports::WindowCursor = (
            Some(CURSOR.to_owned()),
            (!last).then(|| (number + 1).to_string()),
        );
        if !page.apply(ctx, &events, counts, &cursor, &moved_to).await? {
            return Ok(false);
        }
        cursor = moved_to;
        if last {
            break;
        }
        if ctx.gave_way(window).await? {
            return Ok(false);
        }
        number += 1;
    }
    finish(ctx, window).await?;
    Ok(false)
}

/// The window's sales of the run's products and events; the others counted as skipped.
fn page_events(
    items: &[Value],
    window: &import_window::Model,
    wanted: &[entity::HotmartEvent],
    products: &[String],
) -> (Vec<ImportedSale>, PageCounts) {
    let mut counts = PageCounts::default();
    let mut events = Vec::new();
    for sale in items {
        // Kiwify filters by calendar day: a sale of a neighbouring window is left to it.
        let in_window = rest::created_at(sale)
            .is_some_and(|at| (window.range_from..window.range_to).contains(&at));
        if !in_window {
            continue;
        }
        counts.sales_seen += 1;
        match rest::sale_event(sale) {
            None => counts.skipped += 1,
            Some(s)
                if !wanted.contains(&s.event)
                    || !s
                        .payload
                        .product_id
                        .as_ref()
                        .is_some_and(|p| products.contains(p)) =>
            {
                counts.skipped += 1
            }
            Some(s) => events.push(s),
        }
    }
    (events, counts)
}

/// Ends the window (alone: every page already committed with its counters).
async fn finish(ctx: &JobContext, window: &import_window::Model) -> Result<(), KiwifyError> {
    let txn = ctx
        .db
        .begin_write()
        .await
        .map_err(entity::DomainError::from)?;
    if imports::finish_window(&*txn, window).await? {
        txn.commit().await.map_err(entity::DomainError::from)?;
    } else {
        txn.rollback().await.map_err(entity::DomainError::from)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_sao_paulo_days() {
        // 2026-03-10 02:00 UTC is still the 9th in São Paulo.
        assert_eq!(sao_paulo_date(1_773_108_000_000), "2026-03-09");
        assert_eq!(
            sao_paulo_date(1_773_108_000_000 + 3 * 3_600_000),
            "2026-03-10"
        );
    }
}
