//! Contacts, deals and their timelines; the inbox's replay.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{
    contacts::{self, ContactFilter as DomainContactFilter},
    deals::{self, DealFilter as DomainDealFilter},
    deliveries,
    hotmart::details::{Attribution, DealDetails, Payment, Subscription},
    page::PageRequest,
    tables::{activity, contact, deal, deal_event, group, origin, product, user},
};

use super::{
    context::ContextExt,
    error::{ApiError, ApiResult},
    types::{
        ActivityKind, DealStatus, Group, Label, Origin, PageInfo, Product, Stage, User,
        WebhookDelivery, time,
    },
};

pub struct Contact(pub contact::Model);

#[Object]
impl Contact {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn email(&self) -> &str {
        &self.0.email
    }
    /// Set when the buyer's personal data was erased (`eraseContact`).
    async fn erased_at(&self) -> Option<DateTime<Utc>> {
        self.0.erased_at.map(time)
    }
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }
    /// E.164.
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    async fn document(&self) -> Option<&str> {
        self.0.document.as_deref()
    }
    #[graphql(complexity = "super::UNPAGED_LIST * child_complexity + 1")]
    async fn labels(&self, ctx: &Context<'_>) -> ApiResult<Vec<Label>> {
        Ok(contacts::labels(&ctx.app().db.conn, &self.0.id)
            .await?
            .into_iter()
            .map(Label)
            .collect())
    }
    #[graphql(complexity = "super::UNPAGED_LIST * child_complexity + 1")]
    async fn deals(&self, ctx: &Context<'_>) -> ApiResult<Vec<Deal>> {
        let rows = deals::of_contact(&ctx.app().db.conn, ctx.caller()?, &self.0.id).await?;
        Ok(rows.into_iter().map(Deal).collect())
    }
    /// Events on the contact that belong to no deal (for example a members-area access
    /// before any purchase).
    #[graphql(complexity = "super::UNPAGED_LIST * child_complexity + 1")]
    async fn timeline(&self, ctx: &Context<'_>) -> ApiResult<Vec<TimelineEntry>> {
        let rows = contacts::loose_events(&ctx.app().db.conn, ctx.caller()?, &self.0.id).await?;
        Ok(rows.into_iter().map(TimelineEntry).collect())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        time(self.0.created_at)
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        time(self.0.updated_at)
    }
}

pub struct Deal(pub deal::Model);

#[Object]
impl Deal {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn contact(&self, ctx: &Context<'_>) -> ApiResult<Contact> {
        let contact = ctx
            .load_scoped::<contact::Entity>(&self.0.contact_id)
            .await?;
        Ok(Contact(
            contact.ok_or(entity::DomainError::NotFound("contact"))?,
        ))
    }
    async fn group(&self, ctx: &Context<'_>) -> ApiResult<Group> {
        // The deal is visible, so its group is.
        let group = ctx.load_scoped::<group::Entity>(&self.0.group_id).await?;
        Ok(Group(group.ok_or(entity::DomainError::NotFound("group"))?))
    }
    async fn origin(&self, ctx: &Context<'_>) -> ApiResult<Origin> {
        let origin = ctx.load_scoped::<origin::Entity>(&self.0.origin_id).await?;
        Ok(Origin(
            origin.ok_or(entity::DomainError::NotFound("origin"))?,
        ))
    }
    async fn product(&self, ctx: &Context<'_>) -> ApiResult<Option<Product>> {
        let Some(id) = &self.0.product_id else {
            return Ok(None);
        };
        Ok(ctx.load_scoped::<product::Entity>(id).await?.map(Product))
    }
    async fn status(&self) -> DealStatus {
        self.0.status.into()
    }
    async fn owner(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        let Some(id) = &self.0.owner_id else {
            return Ok(None);
        };
        Ok(ctx.load_scoped::<user::Entity>(id).await?.map(User))
    }
    async fn value(&self) -> Option<f64> {
        self.0.value_cents.map(entity::money::to_f64)
    }
    async fn currency(&self) -> Option<&str> {
        self.0.currency.as_deref()
    }
    /// The checkouts' sale ids in this deal (Hotmart transaction codes, Kiwify order ids, Eduzz
    /// invoice ids).
    #[graphql(complexity = "super::UNPAGED_LIST * child_complexity + 1")]
    async fn transactions(&self, ctx: &Context<'_>) -> ApiResult<Vec<String>> {
        Ok(deals::transactions(&ctx.app().db.conn, &self.0.id).await?)
    }
    async fn lost_reason(&self) -> Option<&str> {
        self.0.lost_reason.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        time(self.0.created_at)
    }
    async fn closed_at(&self) -> Option<DateTime<Utc>> {
        self.0.closed_at.map(time)
    }
    async fn last_event_at(&self) -> DateTime<Utc> {
        time(self.0.last_event_at)
    }
    /// How the deal's latest sale is (to be) paid; null when no event carried payment data.
    async fn payment(&self) -> ApiResult<Option<DealPayment>> {
        Ok(self.details()?.payment.map(DealPayment))
    }
    /// Set when the deal's sale is a subscription.
    async fn subscription(&self) -> ApiResult<Option<DealSubscription>> {
        Ok(self.details()?.subscription.map(DealSubscription))
    }
    /// Affiliate and tracking of the deal's latest sale; null when none.
    async fn attribution(&self) -> ApiResult<Option<DealAttribution>> {
        Ok(self.details()?.attribution.map(DealAttribution))
    }
    #[graphql(complexity = "super::UNPAGED_LIST * child_complexity + 1")]
    async fn timeline(&self, ctx: &Context<'_>) -> ApiResult<Vec<TimelineEntry>> {
        let rows = deals::timeline(&ctx.app().db.conn, &self.0.id).await?;
        Ok(rows.into_iter().map(TimelineEntry).collect())
    }
    async fn stage(&self, ctx: &Context<'_>) -> ApiResult<Stage> {
        let stage = ctx
            .load_scoped::<entity::tables::stage::Entity>(&self.0.stage_id)
            .await?;
        Ok(Stage(stage.ok_or(entity::DomainError::NotFound("stage"))?))
    }
    /// Incremented by every change; pass it as expectedVersion to refuse stale edits.
    async fn version(&self) -> i64 {
        self.0.version
    }
    /// The deal's activities not canceled, soonest first.
    #[graphql(complexity = "super::UNPAGED_LIST * child_complexity + 1")]
    async fn activities(&self, ctx: &Context<'_>) -> ApiResult<Vec<Activity>> {
        let filter = entity::activities::ActivityFilter {
            deal_id: Some(self.0.id.clone()),
            ..Default::default()
        };
        let request = PageRequest {
            first: entity::page::MAX_PAGE_SIZE,
            after: None,
            count: false,
        };
        let page =
            entity::activities::page(&ctx.app().db.conn, ctx.caller()?, filter, request).await?;
        Ok(page.nodes.into_iter().map(Activity).collect())
    }
    /// wa.me link with the origin's message filled in; null without a phone.
    async fn whatsapp_url(&self, ctx: &Context<'_>) -> ApiResult<Option<String>> {
        let Some(contact) = ctx
            .load_scoped::<contact::Entity>(&self.0.contact_id)
            .await?
        else {
            return Ok(None);
        };
        let Some(origin) = ctx.load_scoped::<origin::Entity>(&self.0.origin_id).await? else {
            return Ok(None);
        };
        let product = match &self.0.product_id {
            Some(id) => ctx.load_scoped::<product::Entity>(id).await?,
            None => None,
        };
        let details = self.details()?;
        let facts = entity::whatsapp::MessageFacts {
            name: contact.name.as_deref(),
            product: product
                .as_ref()
                .and_then(|p| p.name.as_deref())
                .or(details.product_name.as_deref()),
            value_cents: self.0.value_cents,
            currency: self.0.currency.as_deref(),
            paid: self.0.paid,
            details: Some(&details),
        };
        let template = entity::origins::message_template(&origin);
        Ok(entity::whatsapp::url(
            contact.phone.as_deref(),
            &template,
            &facts,
        ))
    }
}

/// Loads the rows that the selected fields of a page of deals point at, one batch per
/// kind, so that every node finds its own in the request's loader.
async fn prefetch_related(ctx: &Context<'_>, nodes: &[deal::Model]) -> ApiResult<()> {
    use super::loaders::{RowLoader, prefetch};
    let selected = ctx.look_ahead().field("nodes");
    let Some(loader) = ctx.data_opt::<RowLoader>() else {
        return Ok(());
    };
    if nodes.is_empty() || !selected.exists() {
        return Ok(());
    }
    let account = ctx.caller()?.account_id.as_str();
    let ids = |id: fn(&deal::Model) -> Option<&String>| {
        nodes.iter().filter_map(id).cloned().collect::<Vec<_>>()
    };
    let failed = |err: std::sync::Arc<entity::DomainError>| ApiError::from((*err).clone());
    if selected.field("contact").exists() {
        prefetch::<contact::Entity>(loader, account, ids(|d| Some(&d.contact_id)))
            .await
            .map_err(failed)?;
    }
    if selected.field("origin").exists() {
        prefetch::<origin::Entity>(loader, account, ids(|d| Some(&d.origin_id)))
            .await
            .map_err(failed)?;
    }
    if selected.field("group").exists() {
        prefetch::<group::Entity>(loader, account, ids(|d| Some(&d.group_id)))
            .await
            .map_err(failed)?;
    }
    if selected.field("owner").exists() {
        prefetch::<user::Entity>(loader, account, ids(|d| d.owner_id.as_ref()))
            .await
            .map_err(failed)?;
    }
    if selected.field("product").exists() {
        prefetch::<product::Entity>(loader, account, ids(|d| d.product_id.as_ref()))
            .await
            .map_err(failed)?;
    }
    Ok(())
}

pub struct Activity(pub activity::Model);

#[Object]
impl Activity {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn deal(&self, ctx: &Context<'_>) -> ApiResult<Deal> {
        Ok(Deal(
            deals::get(&ctx.app().db.conn, ctx.caller()?, &self.0.deal_id).await?,
        ))
    }
    async fn kind(&self) -> ActivityKind {
        self.0.kind.into()
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn due_at(&self) -> DateTime<Utc> {
        time(self.0.due_at)
    }
    async fn done_at(&self) -> Option<DateTime<Utc>> {
        self.0.done_at.map(time)
    }
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }
    async fn assignee(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        load_user(ctx, self.0.assignee_id.as_deref()).await
    }
    async fn created_by(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        load_user(ctx, self.0.created_by.as_deref()).await
    }
}

async fn load_user(ctx: &Context<'_>, id: Option<&str>) -> ApiResult<Option<User>> {
    let Some(id) = id else { return Ok(None) };
    Ok(ctx.load_scoped::<user::Entity>(id).await?.map(User))
}

pub struct TimelineEntry(pub deal_event::Model);

#[Object]
impl TimelineEntry {
    async fn at(&self) -> DateTime<Utc> {
        time(self.0.occurred_at)
    }
    async fn event(&self) -> &str {
        &self.0.event
    }
    /// WEBHOOK, IMPORT or USER
    async fn source(&self) -> &str {
        self.0.source.as_str()
    }
    /// What the engine did: CREATED, MOVED, UPDATED, TIMELINE_ONLY, ...
    async fn effect(&self) -> &str {
        self.0.effect.map_or("PENDING", |e| e.as_str())
    }
    async fn description(&self) -> &str {
        self.0.description.as_deref().unwrap_or_default()
    }
    async fn delivery_id(&self) -> Option<ID> {
        self.0.delivery_id.clone().map(ID)
    }
    /// The person, for USER entries.
    async fn author(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        let Some(id) = &self.0.author_id else {
            return Ok(None);
        };
        Ok(ctx.load_scoped::<user::Entity>(id).await?.map(User))
    }
}

impl Deal {
    fn details(&self) -> ApiResult<DealDetails> {
        match self.0.details.as_deref() {
            None => Ok(DealDetails::default()),
            Some(json) => serde_json::from_str(json)
                .map_err(|_| ApiError::new("INTERNAL", "the deal's stored details are unreadable")),
        }
    }
}

pub struct DealPayment(Payment);

#[Object]
impl DealPayment {
    /// The platform's payment method (Hotmart: PIX, BILLET, CREDIT_CARD; Kiwify: pix,
    /// boleto, credit_card; Eduzz: pix, bankslip, creditCard…).
    async fn method(&self) -> Option<&str> {
        self.0.method.as_deref()
    }
    async fn installments(&self) -> Option<i32> {
        self.0.installments.and_then(|n| i32::try_from(n).ok())
    }
    async fn offer_code(&self) -> Option<&str> {
        self.0.offer_code.as_deref()
    }
    async fn coupon_code(&self) -> Option<&str> {
        self.0.coupon_code.as_deref()
    }
    async fn pix_code(&self) -> Option<&str> {
        self.0.pix_code.as_deref()
    }
    async fn pix_qr_code_url(&self) -> Option<&str> {
        self.0.pix_qr_code_url.as_deref()
    }
    async fn pix_expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.pix_expires_at.map(time)
    }
    async fn billet_url(&self) -> Option<&str> {
        self.0.billet_url.as_deref()
    }
    async fn billet_barcode(&self) -> Option<&str> {
        self.0.billet_barcode.as_deref()
    }
    async fn refusal_reason(&self) -> Option<&str> {
        self.0.refusal_reason.as_deref()
    }
    /// The checkout (or cart-recovery) link the buyer can pay on, when the platform sent one.
    async fn checkout_url(&self) -> Option<&str> {
        self.0.checkout_url.as_deref()
    }
}

pub struct DealSubscription(Subscription);

#[Object]
impl DealSubscription {
    async fn subscriber_code(&self) -> &str {
        &self.0.subscriber_code
    }
    async fn plan_name(&self) -> Option<&str> {
        self.0.plan_name.as_deref()
    }
    /// 1 for the first purchase, more for a renewal.
    async fn recurrence_number(&self) -> Option<i32> {
        self.0.recurrence_number.and_then(|n| i32::try_from(n).ok())
    }
    async fn next_charge_at(&self) -> Option<DateTime<Utc>> {
        self.0.next_charge_at.map(time)
    }
}

pub struct DealAttribution(Attribution);

#[Object]
impl DealAttribution {
    async fn affiliate_code(&self) -> Option<&str> {
        self.0.affiliate_code.as_deref()
    }
    async fn affiliate_name(&self) -> Option<&str> {
        self.0.affiliate_name.as_deref()
    }
    async fn src(&self) -> Option<&str> {
        self.0.src.as_deref()
    }
    async fn sck(&self) -> Option<&str> {
        self.0.sck.as_deref()
    }
    async fn xcod(&self) -> Option<&str> {
        self.0.xcod.as_deref()
    }
    /// The main sale when this one is an order bump.
    async fn parent_transaction(&self) -> Option<&str> {
        self.0.parent_transaction.as_deref()
    }
}

#[derive(SimpleObject)]
pub struct DealConnection {
    pub nodes: Vec<Deal>,
    pub page_info: PageInfo,
    pub total_count: i64,
}

#[derive(SimpleObject)]
pub struct ContactConnection {
    pub nodes: Vec<Contact>,
    pub page_info: PageInfo,
    pub total_count: i64,
}

#[derive(InputObject, Default)]
pub struct DealFilter {
    pub group_id: Option<ID>,
    pub origin_id: Option<ID>,
    pub stage_id: Option<ID>,
    /// Buyer's name, e-mail or phone.
    pub search: Option<String>,
    pub status: Option<DealStatus>,
    pub owner_id: Option<ID>,
    pub product_id: Option<ID>,
    pub contact_email: Option<String>,
    /// Deals whose contact has this label.
    pub label_id: Option<ID>,
}

#[derive(InputObject, Default)]
pub struct ContactFilter {
    pub email: Option<String>,
    pub label_id: Option<ID>,
    pub search: Option<String>,
}

impl From<DealFilter> for DomainDealFilter {
    fn from(filter: DealFilter) -> Self {
        DomainDealFilter {
            group_id: filter.group_id.map(|id| id.0),
            origin_id: filter.origin_id.map(|id| id.0),
            stage_id: filter.stage_id.map(|id| id.0),
            search: filter.search,
            status: filter.status.map(Into::into),
            owner_id: filter.owner_id.map(|id| id.0),
            product_id: filter.product_id.map(|id| id.0),
            contact_email: filter.contact_email,
            label_id: filter.label_id.map(|id| id.0),
        }
    }
}

impl From<ContactFilter> for DomainContactFilter {
    fn from(filter: ContactFilter) -> Self {
        DomainContactFilter {
            email: filter.email,
            label_id: filter.label_id.map(|id| id.0),
            search: filter.search,
        }
    }
}

#[derive(Default)]
pub struct PipelineQuery;

#[Object]
impl PipelineQuery {
    #[graphql(complexity = "super::page_cost(first, child_complexity)")]
    async fn deals(
        &self,
        ctx: &Context<'_>,
        filter: Option<DealFilter>,
        #[graphql(default = 50)] first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<DealConnection> {
        let mut request = PageRequest::parse(first, after.as_deref())?;
        request.count = ctx.look_ahead().field("totalCount").exists();
        let filter = DomainDealFilter::from(filter.unwrap_or_default());
        let page = deals::page(&ctx.app().db.conn, ctx.caller()?, filter, request).await?;
        prefetch_related(ctx, &page.nodes).await?;
        let (page_info, total_count, nodes) = PageInfo::split(page, Deal);
        Ok(DealConnection {
            page_info,
            total_count,
            nodes,
        })
    }

    async fn deal(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Deal>> {
        Ok(Some(Deal(
            deals::get(&ctx.app().db.conn, ctx.caller()?, &id).await?,
        )))
    }

    #[graphql(complexity = "super::page_cost(first, child_complexity)")]
    async fn contacts(
        &self,
        ctx: &Context<'_>,
        filter: Option<ContactFilter>,
        #[graphql(default = 50)] first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<ContactConnection> {
        let mut request = PageRequest::parse(first, after.as_deref())?;
        request.count = ctx.look_ahead().field("totalCount").exists();
        let filter = DomainContactFilter::from(filter.unwrap_or_default());
        let page = contacts::page(&ctx.app().db.conn, ctx.caller()?, filter, request).await?;
        let (page_info, total_count, nodes) = PageInfo::split(page, Contact);
        Ok(ContactConnection {
            page_info,
            total_count,
            nodes,
        })
    }

    async fn contact(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Contact>> {
        Ok(Some(Contact(
            contacts::get(&ctx.app().db.conn, ctx.caller()?, &id).await?,
        )))
    }
}

#[derive(Default)]
pub struct PipelineMutation;

#[Object]
impl PipelineMutation {
    /// Sets the owner of a deal (`userId: null` removes it).
    async fn assign_deal(
        &self,
        ctx: &Context<'_>,
        deal_id: ID,
        user_id: Option<ID>,
    ) -> ApiResult<Deal> {
        let intent = entity::work::Intent::Assign {
            user_id: user_id.map(|id| id.0),
        };
        let txn = super::audited::write(ctx).await?;
        let deal = entity::work::act(&*txn, ctx.caller()?, &deal_id, intent, None).await?;
        txn.commit().await.map_err(entity::DomainError::from)?;
        Ok(Deal(deal))
    }

    async fn label_contact(
        &self,
        ctx: &Context<'_>,
        contact_id: ID,
        label_id: ID,
    ) -> ApiResult<Contact> {
        Ok(Contact(
            contacts::add_label(&ctx.app().db.conn, ctx.caller()?, &contact_id, &label_id).await?,
        ))
    }

    async fn unlabel_contact(
        &self,
        ctx: &Context<'_>,
        contact_id: ID,
        label_id: ID,
    ) -> ApiResult<Contact> {
        Ok(Contact(
            contacts::remove_label(&ctx.app().db.conn, ctx.caller()?, &contact_id, &label_id)
                .await?,
        ))
    }

    /// Runs a delivery again (for example an IGNORED one after its product was added).
    async fn replay_delivery(&self, ctx: &Context<'_>, id: ID) -> ApiResult<WebhookDelivery> {
        let app = ctx.app();
        let (delivery, enqueue) = deliveries::replay(&app.db.conn, ctx.caller()?, &id).await?;
        if enqueue {
            app.queue
                .enqueue_delivery(&delivery.id, None)
                .await
                .map_err(|err| {
                    tracing::warn!(error = %err, "replay: enqueue failed; the sweeper will retry");
                    ApiError::new(
                        "INTERNAL",
                        "the delivery is pending but could not be queued yet",
                    )
                })?;
        }
        Ok(WebhookDelivery(delivery))
    }
}
