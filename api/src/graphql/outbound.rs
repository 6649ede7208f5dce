//! Outbound events (see `docs/outbound.md`): admins' webhook endpoints, their messages
//! and attempts, resends, recoveries and test messages.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{
    DomainError,
    outbound::{endpoints, messages},
    page::PageRequest,
    tables::{outbound_attempt, outbound_message, webhook_endpoint},
};

use super::{
    audited::write,
    context::ContextExt,
    error::ApiResult,
    types::{PageInfo, time},
};

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum OutboundStatus {
    Pending,
    Delivered,
    Failed,
}

impl OutboundStatus {
    fn as_str(self) -> &'static str {
        match self {
            OutboundStatus::Pending => entity::outbound::PENDING,
            OutboundStatus::Delivered => entity::outbound::DELIVERED,
            OutboundStatus::Failed => entity::outbound::FAILED,
        }
    }
}

#[derive(InputObject)]
pub struct WebhookEndpointInput {
    pub url: String,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub group_ids: Option<Vec<ID>>,
    pub include_contact_data: Option<bool>,
}

pub struct WebhookEndpoint(pub webhook_endpoint::Model);

#[Object]
impl WebhookEndpoint {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn url(&self) -> &str {
        &self.0.url
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// Standard Webhooks types (deal.won, ...); empty = all.
    #[graphql(complexity = "super::UNPAGED_LIST * child_complexity + 1")]
    async fn event_types(&self) -> Vec<String> {
        endpoints::event_types(&self.0)
    }
    /// Empty = every group.
    #[graphql(complexity = "super::UNPAGED_LIST * child_complexity + 1")]
    async fn group_ids(&self) -> Vec<ID> {
        endpoints::group_ids(&self.0).into_iter().map(ID).collect()
    }
    async fn include_contact_data(&self) -> bool {
        self.0.include_contact_data
    }
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    async fn disabled_reason(&self) -> Option<&str> {
        self.0.disabled_reason.as_deref()
    }
    /// Last 4 characters of the current secret.
    async fn secret_hint(&self) -> &str {
        &self.0.secret_hint
    }
    /// Until when the secret replaced by the last rotation still signs too.
    async fn previous_secret_until(&self) -> Option<DateTime<Utc>> {
        self.0
            .previous_secret_until
            .filter(|t| *t > entity::now_ms())
            .map(time)
    }
    /// The last delivered attempt.
    async fn last_success_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_success_at.map(time)
    }
    /// The first failure since the last success; 5 days of failures disable the endpoint.
    async fn failing_since(&self) -> Option<DateTime<Utc>> {
        self.0.failing_since.map(time)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        time(self.0.created_at)
    }
    #[graphql(complexity = "super::page_cost(first, child_complexity)")]
    async fn messages(
        &self,
        ctx: &Context<'_>,
        status: Option<OutboundStatus>,
        #[graphql(default = 50)] first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<OutboundMessageConnection> {
        let db = &ctx.app().db.conn;
        let mut page = PageRequest::parse(first, after.as_deref())?;
        page.count = ctx.look_ahead().field("totalCount").exists();
        let status = status.map(OutboundStatus::as_str);
        let page = messages::page(db, ctx.caller()?, &self.0.id, status, page).await?;
        let ids: Vec<&str> = page.nodes.iter().map(|m| m.id.as_str()).collect();
        let mut attempts = messages::attempts(db, &ids).await?;
        let (page_info, total_count, nodes) = PageInfo::split(page, |m| {
            let (mine, rest) = attempts.drain(..).partition(|a| a.message_id == m.id);
            attempts = rest;
            OutboundMessage(m, mine)
        });
        Ok(OutboundMessageConnection {
            nodes,
            page_info,
            total_count,
        })
    }
}

#[derive(SimpleObject)]
pub struct CreatedWebhookEndpoint {
    pub endpoint: WebhookEndpoint,
    /// whsec_...: shown only in this answer.
    pub secret: String,
}

pub struct OutboundMessage(
    pub outbound_message::Model,
    pub Vec<outbound_attempt::Model>,
);

#[Object]
impl OutboundMessage {
    /// msg_...: the webhook-id header, the same on every attempt.
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    #[graphql(name = "type")]
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }
    async fn payload(&self) -> &str {
        &self.0.payload
    }
    async fn status(&self) -> OutboundStatus {
        match self.0.status.as_str() {
            entity::outbound::DELIVERED => OutboundStatus::Delivered,
            entity::outbound::FAILED => OutboundStatus::Failed,
            _ => OutboundStatus::Pending,
        }
    }
    #[graphql(complexity = "super::UNPAGED_LIST * child_complexity + 1")]
    async fn attempts(&self) -> Vec<OutboundAttempt> {
        self.1.iter().cloned().map(OutboundAttempt).collect()
    }
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        self.0.next_attempt_at.map(time)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        time(self.0.created_at)
    }
}

pub struct OutboundAttempt(outbound_attempt::Model);

#[Object]
impl OutboundAttempt {
    async fn at(&self) -> DateTime<Utc> {
        time(self.0.at)
    }
    async fn http_status(&self) -> Option<i32> {
        self.0.http_status
    }
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    async fn duration_ms(&self) -> i32 {
        self.0.duration_ms
    }
    /// AUTO or MANUAL
    async fn trigger(&self) -> &str {
        &self.0.trigger
    }
    /// The first KiB of the receiver's answer.
    async fn response(&self) -> Option<&str> {
        self.0.response.as_deref()
    }
}

#[derive(SimpleObject)]
pub struct OutboundMessageConnection {
    pub nodes: Vec<OutboundMessage>,
    pub page_info: PageInfo,
    pub total_count: i64,
}

#[derive(Default)]
pub struct OutboundQuery;

#[Object]
impl OutboundQuery {
    #[graphql(complexity = "super::UNPAGED_LIST * child_complexity + 1")]
    async fn webhook_endpoints(&self, ctx: &Context<'_>) -> ApiResult<Vec<WebhookEndpoint>> {
        let found = endpoints::list(&ctx.app().db.conn, ctx.caller()?).await?;
        Ok(found.into_iter().map(WebhookEndpoint).collect())
    }

    async fn webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> ApiResult<Option<WebhookEndpoint>> {
        let found = endpoints::get(&ctx.app().db.conn, ctx.caller()?, &id).await?;
        Ok(Some(WebhookEndpoint(found)))
    }

    /// One outbound message with its attempts.
    async fn outbound_message(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> ApiResult<Option<OutboundMessage>> {
        message(ctx, &id).await.map(Some)
    }
}

async fn message(ctx: &Context<'_>, id: &str) -> ApiResult<OutboundMessage> {
    let db = &ctx.app().db.conn;
    let found = messages::get(db, ctx.caller()?, id).await?;
    let attempts = messages::attempts(db, &[found.id.as_str()]).await?;
    Ok(OutboundMessage(found, attempts))
}

/// The endpoint settings checked: the URL's scheme, credentials and addresses (a name is
/// resolved once here; the dispatcher checks again at every connection).
async fn endpoint_input(
    ctx: &Context<'_>,
    input: WebhookEndpointInput,
) -> ApiResult<endpoints::EndpointInput> {
    let url = input.url.trim().to_owned();
    check_address(ctx, &url).await?;
    Ok(endpoints::EndpointInput {
        url,
        description: input.description,
        event_types: input.event_types.unwrap_or_default(),
        group_ids: input
            .group_ids
            .unwrap_or_default()
            .into_iter()
            .map(|id| id.0)
            .collect(),
        include_contact_data: input.include_contact_data.unwrap_or(false),
    })
}

async fn check_address(ctx: &Context<'_>, url: &str) -> ApiResult<()> {
    let bad = |why: String| DomainError::bad_input("input.url", why);
    if url.len() > endpoints::MAX_URL {
        return Err(bad(format!("must be at most {} characters", endpoints::MAX_URL)).into());
    }
    let policy = &ctx.app().outbound_policy;
    let parsed = jobs::outbound_net::check_url(url, policy).map_err(bad)?;
    let host = parsed
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = parsed.port_or_known_default().unwrap_or(443);
    let lookup = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        tokio::net::lookup_host((host.clone(), port)),
    )
    .await;
    // A name that does not resolve now may later; the dispatcher checks it then.
    let Ok(Ok(addresses)) = lookup else {
        return Ok(());
    };
    let addresses: Vec<std::net::SocketAddr> = addresses.collect();
    let refused = addresses.iter().find_map(|a| policy.refusal(a.ip()));
    if let Some(reason) = refused {
        return Err(bad(format!(
            "{host} resolves to {reason}, which outbound webhooks may not reach"
        ))
        .into());
    }
    Ok(())
}

#[derive(Default)]
pub struct OutboundMutation;

#[Object]
impl OutboundMutation {
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: WebhookEndpointInput,
    ) -> ApiResult<CreatedWebhookEndpoint> {
        let caller = ctx.caller()?;
        caller.require_admin()?;
        let input = endpoint_input(ctx, input).await?;
        let secret = jobs::standard_webhooks::new_secret();
        let txn = write(ctx).await?;
        let created = endpoints::create(&*txn, &ctx.app().keys, caller, &input, &secret).await?;
        txn.commit().await.map_err(DomainError::from)?;
        Ok(CreatedWebhookEndpoint {
            endpoint: WebhookEndpoint(created),
            secret,
        })
    }

    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: WebhookEndpointInput,
    ) -> ApiResult<WebhookEndpoint> {
        let caller = ctx.caller()?;
        caller.require_admin()?;
        let input = endpoint_input(ctx, input).await?;
        let txn = write(ctx).await?;
        let updated = endpoints::update(&*txn, caller, &id, &input).await?;
        txn.commit().await.map_err(DomainError::from)?;
        Ok(WebhookEndpoint(updated))
    }

    async fn delete_webhook_endpoint(&self, ctx: &Context<'_>, id: ID) -> ApiResult<bool> {
        let txn = write(ctx).await?;
        endpoints::delete(&*txn, ctx.caller()?, &id).await?;
        txn.commit().await.map_err(DomainError::from)?;
        Ok(true)
    }

    async fn enable_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> ApiResult<WebhookEndpoint> {
        let txn = write(ctx).await?;
        let enabled = endpoints::enable(&*txn, ctx.caller()?, &id).await?;
        txn.commit().await.map_err(DomainError::from)?;
        Ok(WebhookEndpoint(enabled))
    }

    /// Stops sending to an endpoint until it is enabled; its pending messages fail.
    async fn disable_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> ApiResult<WebhookEndpoint> {
        let txn = write(ctx).await?;
        let disabled = endpoints::disable(&*txn, ctx.caller()?, &id).await?;
        txn.commit().await.map_err(DomainError::from)?;
        Ok(WebhookEndpoint(disabled))
    }

    async fn rotate_webhook_endpoint_secret(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(default = 24)] grace_hours: Option<i32>,
    ) -> ApiResult<CreatedWebhookEndpoint> {
        let secret = jobs::standard_webhooks::new_secret();
        let txn = write(ctx).await?;
        let keys = &ctx.app().keys;
        let rotated = endpoints::rotate(
            &*txn,
            keys,
            ctx.caller()?,
            &id,
            grace_hours.unwrap_or(24).into(),
            &secret,
        )
        .await?;
        txn.commit().await.map_err(DomainError::from)?;
        Ok(CreatedWebhookEndpoint {
            endpoint: WebhookEndpoint(rotated),
            secret,
        })
    }

    async fn send_test_webhook(&self, ctx: &Context<'_>, id: ID) -> ApiResult<OutboundMessage> {
        let txn = write(ctx).await?;
        let sent = messages::send_test(&*txn, ctx.caller()?, &id).await?;
        txn.commit().await.map_err(DomainError::from)?;
        Ok(OutboundMessage(sent, Vec::new()))
    }

    async fn resend_outbound_message(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> ApiResult<OutboundMessage> {
        let txn = write(ctx).await?;
        messages::resend(&*txn, ctx.caller()?, &id).await?;
        txn.commit().await.map_err(DomainError::from)?;
        message(ctx, &id).await
    }

    /// Requeues the endpoint's failed messages created in the window; returns how many.
    async fn recover_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        id: ID,
        since: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
    ) -> ApiResult<i32> {
        let txn = write(ctx).await?;
        let until = until.map(|t| t.timestamp_millis());
        let n =
            messages::recover(&*txn, ctx.caller()?, &id, since.timestamp_millis(), until).await?;
        txn.commit().await.map_err(DomainError::from)?;
        Ok(n as i32)
    }
}
