//! GraphQL object types: thin views over domain rows. Fields that need more data load it
//! through domain services; nothing here decides a business rule.

use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{
    deliveries, groups, integrations, origins,
    page::PageRequest,
    products,
    tables::{
        group, integration, label, lost_reason, origin, product, product_variation, stage, user,
        webhook_delivery,
    },
};

use super::{context::ContextExt, error::ApiResult};

pub fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::Role")]
pub enum Role {
    Admin,
    Member,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::platform::Platform")]
pub enum Platform {
    Hotmart,
    Kiwify,
    Eduzz,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::integrations::IntegrationStatus")]
pub enum IntegrationStatus {
    Draft,
    Active,
    Paused,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::tables::enums::DealStatus")]
pub enum DealStatus {
    Open,
    Won,
    Lost,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::deliveries::DeliveryStatus")]
pub enum DeliveryStatus {
    Pending,
    Processed,
    Duplicate,
    Ignored,
    Test,
    Failed,
    Rejected,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum ImportStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Canceled,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::imports::ImportKind")]
pub enum ImportKind {
    Manual,
    Reconciliation,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::health::HealthStatus")]
pub enum HealthStatus {
    Ok,
    Warning,
    Failing,
}

/// How an integration is doing, from stored facts.
#[derive(SimpleObject)]
pub struct IntegrationHealth {
    pub status: HealthStatus,
    /// Plain-language reasons, worst first; empty when OK.
    pub reasons: Vec<String>,
    pub refused_last_hour: i32,
    pub failed_deliveries: i32,
    pub last_reconciled_at: Option<DateTime<Utc>>,
    pub healed_last_day: i32,
}

#[derive(SimpleObject)]
pub struct ReconciliationSettings {
    pub enabled: bool,
    pub every_minutes: i32,
    pub lookback_hours: i32,
}

/// Platform-neutral checkout events; every platform's events map to one.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::tables::enums::CheckoutEvent")]
pub enum CheckoutEvent {
    CartAbandoned,
    PaymentPending,
    PaymentRefused,
    PaymentExpired,
    PurchaseApproved,
    PurchaseComplete,
    PaymentOverdue,
    RefundRequested,
    Refunded,
    Chargeback,
    SubscriptionCanceled,
}

/// Which deals of a visible group a member sees.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::tables::enums::DealScope")]
pub enum DealScope {
    All,
    Own,
    OwnAndUnowned,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::tables::enums::ActivityKind")]
pub enum ActivityKind {
    Call,
    Whatsapp,
    Email,
    Meeting,
    Task,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum VariationKind {
    Offer,
    Plan,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::HotmartEvent")]
pub enum HotmartEvent {
    PurchaseOutOfShoppingCart,
    PurchaseBilletPrinted,
    PurchaseCanceled,
    PurchaseExpired,
    PurchaseApproved,
    PurchaseComplete,
    PurchaseDelayed,
    PurchaseProtest,
    PurchaseRefunded,
    PurchaseChargeback,
    SubscriptionCancellation,
    SwitchPlan,
    UpdateSubscriptionChargeDate,
    ClubFirstAccess,
    ClubModuleCompleted,
}

pub fn domain_events(events: &[HotmartEvent]) -> Vec<entity::HotmartEvent> {
    events.iter().map(|e| (*e).into()).collect()
}

pub struct User(pub user::Model);

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn email(&self) -> &str {
        &self.0.email
    }
    async fn role(&self) -> Role {
        entity::users::role_of(&self.0).into()
    }
}

pub struct Label(pub label::Model);

#[Object]
impl Label {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn color(&self) -> Option<&str> {
        self.0.color.as_deref()
    }
}

pub struct Integration(pub integration::Model);

#[Object]
impl Integration {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn platform(&self) -> Platform {
        entity::platform::Platform::of(&self.0).into()
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn label(&self) -> Option<&str> {
        self.0.label.as_deref()
    }
    async fn status(&self) -> IntegrationStatus {
        integrations::status(&self.0).into()
    }
    #[graphql(complexity = "super::UNPAGED_LIST * child_complexity + 1")]
    async fn events(&self) -> ApiResult<Vec<HotmartEvent>> {
        Ok(integrations::events(&self.0)?
            .into_iter()
            .map(Into::into)
            .collect())
    }
    async fn keep_deal_owner(&self) -> bool {
        self.0.keep_deal_owner
    }
    async fn tag_contacts_with_product_name(&self) -> bool {
        self.0.tag_contacts_with_product_name
    }
    async fn merge_products(&self) -> bool {
        self.0.merge_products
    }
    /// The URL to paste into the platform (Hotmart: webhook version 2.0, all events).
    async fn webhook_url(&self, ctx: &Context<'_>) -> String {
        let platform = entity::platform::Platform::of(&self.0);
        ctx.app().webhook_url(platform, &self.0.webhook_token)
    }
    #[graphql(complexity = "super::UNPAGED_LIST * child_complexity + 1")]
    /// The neutral events received (for Hotmart, the mapping of `events`).
    async fn checkout_events(&self) -> ApiResult<Vec<CheckoutEvent>> {
        Ok(integrations::checkout_events(&self.0)?
            .into_iter()
            .map(Into::into)
            .collect())
    }
    /// Kiwify / Eduzz: the webhook secret is set (write-only: it is never returned).
    async fn has_webhook_secret(&self) -> bool {
        self.0.webhook_secret.is_some()
    }
    async fn has_credentials(&self) -> bool {
        self.0.credentials.is_some()
    }
    #[graphql(complexity = "super::UNPAGED_LIST * child_complexity + 1")]
    async fn products(&self, ctx: &Context<'_>) -> ApiResult<Vec<Product>> {
        let rows = products::of_integration(&ctx.app().db.conn, &self.0.id).await?;
        Ok(rows.into_iter().map(Product).collect())
    }
    async fn group(&self, ctx: &Context<'_>) -> ApiResult<Group> {
        Ok(Group(
            integrations::group_of(&ctx.app().db.conn, &self.0).await?,
        ))
    }
    /// When the last authentic delivery (other than a test) arrived.
    async fn last_event_at(&self, ctx: &Context<'_>) -> ApiResult<Option<DateTime<Utc>>> {
        Ok(
            deliveries::last_received(&ctx.app().db.conn, &self.0.id, false)
                .await?
                .map(time),
        )
    }
    /// When Hotmart's "send test" last reached this integration.
    async fn last_test_event_at(&self, ctx: &Context<'_>) -> ApiResult<Option<DateTime<Utc>>> {
        Ok(
            deliveries::last_received(&ctx.app().db.conn, &self.0.id, true)
                .await?
                .map(time),
        )
    }
    /// Authentication failures (missing or wrong hottok) since the integration was created.
    async fn hottok_failures(&self) -> i64 {
        self.0.hottok_failures
    }
    /// How the integration is doing: refused deliveries, failures, sales that only
    /// reconciliation found.
    #[graphql(complexity = "super::UNPAGED_LIST * child_complexity + 1")]
    async fn health(&self, ctx: &Context<'_>) -> ApiResult<IntegrationHealth> {
        let health = entity::health::of(&ctx.app().db.conn, &self.0).await?;
        let int = |n: i64| n.clamp(0, i64::from(i32::MAX)) as i32;
        Ok(IntegrationHealth {
            status: health.status.into(),
            reasons: health.reasons,
            refused_last_hour: int(health.refused_last_hour),
            failed_deliveries: int(health.failed_deliveries),
            last_reconciled_at: health.last_reconciled_at.map(time),
            healed_last_day: int(health.healed_last_day),
        })
    }
    async fn reconciliation(&self) -> ReconciliationSettings {
        ReconciliationSettings {
            enabled: self.0.reconcile_enabled,
            every_minutes: self.0.reconcile_every_minutes,
            lookback_hours: self.0.reconcile_lookback_hours,
        }
    }
    #[graphql(complexity = "super::page_cost(first, child_complexity)")]
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        status: Option<DeliveryStatus>,
        #[graphql(default = 50)] first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<DeliveryConnection> {
        let mut page = PageRequest::parse(first, after.as_deref())?;
        page.count = ctx.look_ahead().field("totalCount").exists();
        let page = deliveries::page_of_integration(
            &ctx.app().db.conn,
            &self.0.id,
            status.map(Into::into),
            page,
        )
        .await?;
        let (page_info, total_count, nodes) = PageInfo::split(page, WebhookDelivery);
        Ok(DeliveryConnection {
            page_info,
            total_count,
            nodes,
        })
    }
    async fn created_at(&self) -> DateTime<Utc> {
        time(self.0.created_at)
    }
}

pub struct Product(pub product::Model);

#[Object]
impl Product {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn hotmart_product_id(&self) -> &str {
        &self.0.hotmart_product_id
    }
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }
    async fn label(&self) -> Option<&str> {
        self.0.label.as_deref()
    }
    /// The last 4 characters of the hottok; the hottok itself is never returned.
    /// Admins only.
    async fn hottok_hint(&self, ctx: &Context<'_>) -> ApiResult<&str> {
        ctx.caller()?.require_admin()?;
        Ok(&self.0.hottok_hint)
    }
    #[graphql(complexity = "super::UNPAGED_LIST * child_complexity + 1")]
    async fn variations(&self, ctx: &Context<'_>) -> ApiResult<Vec<ProductVariation>> {
        let rows = products::variations(&ctx.app().db.conn, &self.0.id).await?;
        Ok(rows.into_iter().map(ProductVariation).collect())
    }
    async fn refreshed_at(&self) -> Option<DateTime<Utc>> {
        self.0.refreshed_at.map(time)
    }
    async fn refresh_error(&self) -> Option<&str> {
        self.0.refresh_error.as_deref()
    }
    /// The platform's product id (for Hotmart the same as hotmartProductId).
    async fn platform_product_id(&self) -> &str {
        &self.0.hotmart_product_id
    }
    /// A product of another integration of the same group counted as this one.
    async fn same_as(&self, ctx: &Context<'_>) -> ApiResult<Option<Product>> {
        let Some(id) = &self.0.same_as else {
            return Ok(None);
        };
        Ok(products::find(&ctx.app().db.conn, ctx.caller()?, id)
            .await?
            .map(Product))
    }
}

pub struct ProductVariation(pub product_variation::Model);

#[Object]
impl ProductVariation {
    async fn kind(&self) -> VariationKind {
        if self.0.kind == "PLAN" {
            VariationKind::Plan
        } else {
            VariationKind::Offer
        }
    }
    async fn code(&self) -> &str {
        &self.0.code
    }
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }
    async fn price(&self) -> Option<f64> {
        self.0.price_cents.map(entity::money::to_f64)
    }
    async fn currency(&self) -> Option<&str> {
        self.0.currency.as_deref()
    }
}

pub struct Group(pub group::Model);

#[Object]
impl Group {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    #[graphql(complexity = "super::UNPAGED_LIST * child_complexity + 1")]
    async fn origins(&self, ctx: &Context<'_>) -> ApiResult<Vec<Origin>> {
        let rows = origins::of_group(&ctx.app().db.conn, &self.0.id).await?;
        Ok(rows.into_iter().map(Origin).collect())
    }
    #[graphql(complexity = "super::UNPAGED_LIST * child_complexity + 1")]
    async fn visibility(&self, ctx: &Context<'_>) -> ApiResult<GroupVisibility> {
        let users = groups::viewers(&ctx.app().db.conn, &self.0.id).await?;
        Ok(GroupVisibility {
            everyone: self.0.visible_to_everyone,
            users: users.into_iter().map(User).collect(),
            member_scope: self.0.member_scope.into(),
        })
    }
    #[graphql(complexity = "super::UNPAGED_LIST * child_complexity + 1")]
    /// The integrations whose sales land in this group (admins only).
    async fn integrations(&self, ctx: &Context<'_>) -> ApiResult<Vec<Integration>> {
        ctx.caller()?.require_admin()?;
        let rows = integrations::members(&ctx.app().db.conn, &self.0.id).await?;
        Ok(rows.into_iter().map(Integration).collect())
    }
}

#[derive(SimpleObject)]
pub struct GroupVisibility {
    pub everyone: bool,
    pub users: Vec<User>,
    pub member_scope: DealScope,
}

pub struct Origin(pub origin::Model);

#[Object]
impl Origin {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Null for hand-made origins and for origins of other platforms.
    async fn event(&self) -> Option<HotmartEvent> {
        self.0
            .checkout_event
            .map(|e| entity::HotmartEvent::of_neutral(e).into())
    }
    /// Null for hand-made origins.
    async fn checkout_event(&self) -> Option<CheckoutEvent> {
        self.0.checkout_event.map(Into::into)
    }
    async fn entry_status(&self) -> DealStatus {
        self.0.entry_status.into()
    }
    #[graphql(complexity = "super::UNPAGED_LIST * child_complexity + 1")]
    async fn stages(&self, ctx: &Context<'_>) -> ApiResult<Vec<Stage>> {
        let stages = entity::stages::of_origin(&ctx.app().db.conn, &self.0.id).await?;
        Ok(stages.into_iter().map(Stage).collect())
    }
    #[graphql(complexity = "super::UNPAGED_LIST * child_complexity + 1")]
    async fn lost_reasons(&self, ctx: &Context<'_>) -> ApiResult<Vec<LostReason>> {
        let reasons = entity::stages::lost_reasons(&ctx.app().db.conn, &self.0.id).await?;
        Ok(reasons.into_iter().map(LostReason).collect())
    }
    /// WhatsApp message with {primeiro_nome} {nome} {produto} {valor} {pix} {boleto} {link}.
    async fn message_template(&self) -> Option<String> {
        Some(origins::message_template(&self.0))
    }
    #[graphql(complexity = "super::UNPAGED_LIST * child_complexity + 1")]
    async fn assignees(&self, ctx: &Context<'_>) -> ApiResult<Vec<User>> {
        let users = origins::assignees(&ctx.app().db.conn, &self.0.id).await?;
        Ok(users.into_iter().map(User).collect())
    }
    async fn deal_count(&self, ctx: &Context<'_>, status: Option<DealStatus>) -> ApiResult<i64> {
        deal_count(ctx, super::loaders::CountBy::Origin, &self.0.id, status).await
    }
}

pub struct Stage(pub stage::Model);

#[Object]
impl Stage {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn position(&self) -> i32 {
        self.0.position
    }
    async fn origin(&self, ctx: &Context<'_>) -> ApiResult<Origin> {
        let origin = ctx.load_scoped::<origin::Entity>(&self.0.origin_id).await?;
        Ok(Origin(
            origin.ok_or(entity::DomainError::NotFound("origin"))?,
        ))
    }
    async fn deal_count(&self, ctx: &Context<'_>, status: Option<DealStatus>) -> ApiResult<i64> {
        deal_count(ctx, super::loaders::CountBy::Stage, &self.0.id, status).await
    }
}

/// A `dealCount`, batched with the request's others (one grouped query per batch).
async fn deal_count(
    ctx: &Context<'_>,
    by: super::loaders::CountBy,
    id: &str,
    status: Option<DealStatus>,
) -> ApiResult<i64> {
    let key = super::loaders::CountKey {
        caller: ctx.caller()?.clone(),
        by,
        id: id.to_owned(),
        status: status.map(Into::into),
    };
    let loader = ctx.data_unchecked::<super::loaders::CountLoader>();
    let count = loader
        .load_one(key)
        .await
        .map_err(|err| crate::graphql::error::ApiError::from((*err).clone()))?;
    Ok(count.unwrap_or(0) as i64)
}

pub struct LostReason(pub lost_reason::Model);

#[Object]
impl LostReason {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
}

pub struct WebhookDelivery(pub webhook_delivery::Model);

#[Object]
impl WebhookDelivery {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn event_id(&self) -> Option<&str> {
        self.0.event_id.as_deref()
    }
    async fn event(&self) -> Option<&str> {
        self.0.event.as_deref()
    }
    async fn status(&self) -> DeliveryStatus {
        self.0.status.into()
    }
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    async fn received_at(&self) -> DateTime<Utc> {
        time(self.0.received_at)
    }
    async fn processed_at(&self) -> Option<DateTime<Utc>> {
        self.0.processed_at.map(time)
    }
    /// The body as received, except a `hottok` field in it, which is masked: hottoks are
    /// write-only.
    async fn payload(&self) -> String {
        entity::deliveries::redacted_payload(&self.0.payload)
    }
    /// Came in on the integration's previous URL, during a rotation's grace period.
    async fn via_previous_url(&self) -> bool {
        self.0.via_previous_url
    }
}

#[derive(SimpleObject)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

impl PageInfo {
    /// A domain page's paging, its total and its nodes wrapped by `node`.
    pub fn split<T, N>(
        page: entity::page::Page<T>,
        node: impl FnMut(T) -> N,
    ) -> (PageInfo, i64, Vec<N>) {
        let info = PageInfo {
            has_next_page: page.has_next_page,
            end_cursor: page.end_cursor,
        };
        let total = page.total_count as i64;
        (info, total, page.nodes.into_iter().map(node).collect())
    }
}

#[derive(SimpleObject)]
pub struct DeliveryConnection {
    pub nodes: Vec<WebhookDelivery>,
    pub page_info: PageInfo,
    pub total_count: i64,
}
