//! The outbound dispatcher (see `docs/outbound.md`, "Delivery"): claims due outbox rows
//! (one per message and endpoint), sends each signed with Standard Webhooks through the
//! guarded client, and records the attempts in batches. Requests in flight are capped in
//! total and per endpoint, so an endpoint that hangs holds a few slots, never the rest.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Instant,
};

use entity::{
    outbound::{
        delivery::{self, AttemptResult},
        endpoints::signing_secrets,
        messages::endpoints_of,
    },
    tables::{outbound_message, webhook_endpoint},
};
use tokio::sync::{Notify, Semaphore, mpsc};

pub use crate::context::OutboundSettings;
use crate::{context::JobContext, outbound_net, standard_webhooks};

/// Most bytes of a response body kept with its attempt.
const RESPONSE_BYTES: usize = 1024;

/// Requests in flight per endpoint.
type InFlight = Arc<Mutex<HashMap<String, usize>>>;

/// Sends due messages until the process stops.
pub async fn dispatch_forever(ctx: JobContext) {
    let settings = ctx.settings.outbound.clone();
    let client = outbound_net::client(settings.policy.clone(), settings.timeout);
    let (results, received) = mpsc::unbounded_channel();
    // Dropped with this task (a shutdown or an abort), so are the recorder and the sends.
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(record_forever(ctx.clone(), received));
    let slots = Arc::new(Semaphore::new(settings.max_in_flight));
    let in_flight: InFlight = Arc::default();
    // A finished send frees a slot (and its endpoint's share): look again at once.
    let freed = Arc::new(Notify::new());
    while !ctx.is_stopping() {
        while tasks.try_join_next().is_some() {}
        let free = slots.available_permits();
        let claimed = if free == 0 {
            Vec::new()
        } else {
            claim(&ctx, &in_flight, free).await
        };
        if claimed.is_empty() {
            tokio::select! {
                () = freed.notified() => tokio::time::sleep(claim_pause(&ctx)).await,
                () = tokio::time::sleep(settings.poll_interval) => {}
            }
            continue;
        }
        for (message, endpoint) in claimed {
            let permit = slots.clone().acquire_owned().await.expect("never closed");
            let (client, ctx, results, in_flight, freed) = (
                client.clone(),
                ctx.clone(),
                results.clone(),
                in_flight.clone(),
                freed.clone(),
            );
            tasks.spawn(async move {
                let result = send(&client, &ctx, &endpoint, message).await;
                let _ = results.send(result);
                release(&in_flight, &endpoint.id);
                drop(permit);
                freed.notify_one();
            });
        }
    }
}

/// How long the dispatcher waits after a send finished before it claims again: more
/// sends finish meanwhile, and one claim (a write) takes their slots. While any job of
/// this process is at work (the engine applying deliveries or an import, an export) the
/// pause is longer, so claims are fewer and larger and outbound events give way to it (at 10 ms a claim took 16 messages on average); a backlog
/// built during a burst is sent once it is quiet.
fn claim_pause(ctx: &JobContext) -> std::time::Duration {
    let jobs_busy = ctx.busy.load(std::sync::atomic::Ordering::Relaxed) > 0;
    std::time::Duration::from_millis(if jobs_busy { 40 } else { 10 })
}

/// Claims due messages for the free slots; those beyond an endpoint's share are handed
/// straight back. Returns each with its endpoint, counted in flight.
async fn claim(
    ctx: &JobContext,
    in_flight: &InFlight,
    free: usize,
) -> Vec<(outbound_message::Model, webhook_endpoint::Model)> {
    let per_endpoint = ctx.settings.outbound.per_endpoint;
    let busy: Vec<String> = {
        let counts = in_flight.lock().expect("not poisoned");
        counts
            .iter()
            .filter(|(_, n)| **n >= per_endpoint)
            .map(|(id, _)| id.clone())
            .collect()
    };
    let db = &ctx.db.conn;
    let now = entity::now_ms();
    let claimed = match delivery::claim_due(
        db,
        now,
        free as u64,
        per_endpoint as u64,
        ctx.settings.outbound.lease_ms,
        &busy,
    )
    .await
    {
        Ok(claimed) => claimed,
        Err(err) => {
            tracing::warn!(error = %err.chain(), "cannot claim outbound messages");
            return Vec::new();
        }
    };
    if claimed.is_empty() {
        return Vec::new();
    }
    let endpoints = match endpoints_of(db, claimed.iter().map(|m| m.endpoint_id.as_str())).await {
        Ok(endpoints) => endpoints,
        Err(err) => {
            tracing::warn!(error = %err.chain(), "cannot read outbound endpoints");
            return Vec::new();
        }
    };
    let (out, handed_back) = share_out(in_flight, claimed, &endpoints, per_endpoint);
    if let Err(err) = delivery::release(db, &handed_back).await {
        tracing::debug!(error = %err.chain(), "cannot hand back claims; their lease expires");
    }
    out
}

/// Counts claimed messages in flight, up to each endpoint's share; returns the rest apart.
#[allow(clippy::type_complexity)]
fn share_out(
    in_flight: &InFlight,
    claimed: Vec<outbound_message::Model>,
    endpoints: &[webhook_endpoint::Model],
    per_endpoint: usize,
) -> (
    Vec<(outbound_message::Model, webhook_endpoint::Model)>,
    Vec<String>,
) {
    let mut out = Vec::new();
    let mut handed_back = Vec::new();
    let mut counts = in_flight.lock().expect("not poisoned");
    for message in claimed {
        let Some(endpoint) = endpoints.iter().find(|e| e.id == message.endpoint_id) else {
            continue;
        };
        let n = counts.entry(endpoint.id.clone()).or_default();
        if *n >= per_endpoint {
            handed_back.push(message.id);
            continue;
        }
        *n += 1;
        out.push((message, endpoint.clone()));
    }
    (out, handed_back)
}

fn release(in_flight: &InFlight, endpoint_id: &str) {
    let mut counts = in_flight.lock().expect("not poisoned");
    if let Some(n) = counts.get_mut(endpoint_id) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            counts.remove(endpoint_id);
        }
    }
}

/// One attempt: the URL checked again (an address literal is never resolved), signed
/// with every secret that signs now, at most the timeout, 1 KiB of the answer kept.
async fn send(
    client: &reqwest::Client,
    ctx: &JobContext,
    endpoint: &webhook_endpoint::Model,
    message: outbound_message::Model,
) -> AttemptResult {
    let at = entity::now_ms();
    let started = Instant::now();
    let outcome = attempt(client, ctx, endpoint, &message, at).await;
    let (http_status, error, response, retry_after_ms) = match outcome {
        Ok(answer) => (
            Some(answer.status),
            None,
            answer.body,
            answer.retry_after_ms,
        ),
        Err(error) => (None, Some(error), None, None),
    };
    let error = error.or_else(|| match http_status {
        Some(s) if !(200..300).contains(&s) => Some(format!("the receiver answered {s}")),
        _ => None,
    });
    AttemptResult {
        message,
        at,
        http_status,
        error,
        duration_ms: started.elapsed().as_millis().min(i32::MAX as u128) as i32,
        response,
        retry_after_ms,
    }
}

struct Answer {
    status: i32,
    body: Option<String>,
    retry_after_ms: Option<i64>,
}

async fn attempt(
    client: &reqwest::Client,
    ctx: &JobContext,
    endpoint: &webhook_endpoint::Model,
    message: &outbound_message::Model,
    at: i64,
) -> Result<Answer, String> {
    let settings = &ctx.settings.outbound;
    let url = outbound_net::check_url(&endpoint.url, &settings.policy)?;
    let secrets = signing_secrets(&ctx.keys, endpoint, at).map_err(|e| e.to_string())?;
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let timestamp = at / 1000;
    let body = message.payload.as_bytes();
    let signature = standard_webhooks::header(&secrets, &message.id, timestamp, body)?;
    let request = client
        .post(url)
        .header("content-type", "application/json")
        .header("user-agent", "checkout-crm-webhooks/1")
        .header("webhook-id", &message.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(message.payload.clone());
    let read = async {
        let mut answer = request.send().await.map_err(|e| describe(&e))?;
        let status = i32::from(answer.status().as_u16());
        let retry_after_ms = matches!(status, 429 | 503)
            .then(|| retry_after(answer.headers()))
            .flatten();
        let mut kept = Vec::new();
        while kept.len() < RESPONSE_BYTES {
            match answer.chunk().await {
                Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
                _ => break,
            }
        }
        kept.truncate(RESPONSE_BYTES);
        let body = (!kept.is_empty()).then(|| String::from_utf8_lossy(&kept).into_owned());
        Ok::<_, String>(Answer {
            status,
            body,
            retry_after_ms,
        })
    };
    match tokio::time::timeout(settings.timeout, read).await {
        Ok(answer) => answer,
        Err(_) => Err(format!("no answer within {} s", settings.timeout.as_secs())),
    }
}

/// An error and its causes, joined (the guard's refusal is in a cause).
fn describe(err: &reqwest::Error) -> String {
    let mut text = if err.is_timeout() {
        "timed out".to_owned()
    } else {
        err.to_string()
    };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.chars().take(500).collect()
}

/// `Retry-After` in seconds, or as an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<i64> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<i64>() {
        return Some(secs.max(0).saturating_mul(1000));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some((at.timestamp_millis() - entity::now_ms()).max(0))
}

/// How long finished attempts gather before they are written: sends finish one by one,
/// and one transaction per few of them cost the database more than the sends did.
const RECORD_GATHER: std::time::Duration = std::time::Duration::from_millis(20);

/// Most attempts written per transaction.
const RECORD_BATCH: usize = 500;

/// Writes finished attempts, those that finish within [`RECORD_GATHER`] of the first in
/// one transaction. (A message whose attempt is not written yet stays claimed; if the
/// process stops first, its claim expires and it is sent again with the same id.)
async fn record_forever(ctx: JobContext, mut received: mpsc::UnboundedReceiver<AttemptResult>) {
    let policy = ctx.settings.outbound.retry.clone();
    while let Some(first) = received.recv().await {
        let mut batch = vec![first];
        let gathered = tokio::time::sleep(RECORD_GATHER);
        tokio::pin!(gathered);
        while batch.len() < RECORD_BATCH {
            tokio::select! {
                next = received.recv() => match next {
                    Some(next) => batch.push(next),
                    None => break,
                },
                () = &mut gathered => break,
            }
        }
        let sent = batch.iter().filter(|r| r.delivered()).count() as u64;
        let retried = batch
            .iter()
            .filter(|r| {
                !r.delivered() && r.http_status != Some(410) && r.message.next_trigger == "AUTO"
            })
            .filter(|r| policy.delay_after(r.message.attempts + 1).is_some())
            .count() as u64;
        let failed = batch.len() as u64 - sent - retried;
        match delivery::record(&ctx.db.conn, &batch, &policy, entity::now_ms()).await {
            Ok(disabled) => {
                ctx.telemetry.outbound("sent", sent);
                ctx.telemetry.outbound("retried", retried);
                ctx.telemetry.outbound("failed", failed);
                ctx.telemetry.outbound_disabled(disabled.len() as u64);
                for id in disabled {
                    tracing::warn!(endpoint = %id, "webhook endpoint disabled by its failures");
                }
            }
            // The claims expire and the messages are sent again (same webhook-id).
            Err(err) => tracing::warn!(error = %err.chain(), "cannot record outbound attempts"),
        }
    }
}
