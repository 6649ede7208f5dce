//! The set-up flow (see `docs/webhooks.md`): integrations, products, groups and origins.

use async_graphql::{Context, ID, InputObject, Object};
use entity::{
    groups,
    integrations::{self, IntegrationChanges},
    origins,
    products::{self, NewProduct, ProductChanges},
};

use super::{
    context::ContextExt,
    error::ApiResult,
    types::{
        CheckoutEvent, DealStatus, Group, HotmartEvent, Integration, Origin, Platform, Product,
        domain_events,
    },
};

#[derive(Default)]
pub struct SetupQuery;

#[Object]
impl SetupQuery {
    #[graphql(complexity = "super::UNPAGED_LIST * child_complexity + 1")]
    async fn integrations(&self, ctx: &Context<'_>) -> ApiResult<Vec<Integration>> {
        let rows = integrations::list(&ctx.app().db.conn, ctx.caller()?).await?;
        Ok(rows.into_iter().map(Integration).collect())
    }

    async fn integration(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Integration>> {
        Ok(Some(Integration(
            integrations::get(&ctx.app().db.conn, ctx.caller()?, &id).await?,
        )))
    }

    #[graphql(complexity = "super::UNPAGED_LIST * child_complexity + 1")]
    /// The groups the caller may see.
    async fn groups(&self, ctx: &Context<'_>) -> ApiResult<Vec<Group>> {
        let rows = groups::list(&ctx.app().db.conn, ctx.caller()?).await?;
        Ok(rows.into_iter().map(Group).collect())
    }
}

#[derive(InputObject)]
pub struct CreateIntegrationInput {
    pub name: String,
    pub events: Vec<HotmartEvent>,
}

/// A new integration with any checkout (§11): the neutral events it receives, in a new
/// group or joining `groupId`.
#[derive(InputObject)]
pub struct CreateCheckoutIntegrationInput {
    pub platform: Platform,
    pub name: String,
    pub events: Vec<CheckoutEvent>,
    pub group_id: Option<ID>,
}

#[derive(InputObject)]
pub struct ProductInput {
    pub platform_product_id: String,
    pub name: Option<String>,
    pub label: Option<String>,
    /// Hotmart only.
    pub hottok: Option<String>,
}

#[derive(InputObject)]
pub struct UpdateIntegrationInput {
    pub name: Option<String>,
    /// A label name; an empty string removes the label.
    pub label: Option<String>,
    pub events: Option<Vec<HotmartEvent>>,
    /// The neutral events, for any platform (instead of `events`).
    pub checkout_events: Option<Vec<CheckoutEvent>>,
    pub keep_deal_owner: Option<bool>,
    pub tag_contacts_with_product_name: Option<bool>,
    pub merge_products: Option<bool>,
}

#[derive(InputObject)]
pub struct AddProductInput {
    pub hotmart_product_id: String,
    pub hottok: String,
    pub name: Option<String>,
    pub label: Option<String>,
}

#[derive(InputObject)]
pub struct UpdateProductInput {
    pub name: Option<String>,
    pub label: Option<String>,
    pub hottok: Option<String>,
    /// A product of another integration of the same group counted as this one; an empty
    /// string removes the link.
    pub same_as: Option<ID>,
}

#[derive(InputObject)]
pub struct GroupVisibilityInput {
    pub everyone: bool,
    pub user_ids: Option<Vec<ID>>,
    /// Which deals of the group members see (unchanged when absent).
    pub member_scope: Option<super::types::DealScope>,
}

#[derive(InputObject)]
pub struct UpdateOriginInput {
    pub name: Option<String>,
    pub entry_status: Option<DealStatus>,
    /// The WhatsApp message; empty restores the default.
    pub message_template: Option<String>,
}

fn ids(ids: Vec<ID>) -> Vec<String> {
    ids.into_iter().map(|id| id.0).collect()
}

#[derive(Default)]
pub struct SetupMutation;

#[Object]
impl SetupMutation {
    async fn create_hotmart_integration(
        &self,
        ctx: &Context<'_>,
        input: CreateIntegrationInput,
    ) -> ApiResult<Integration> {
        let events = domain_events(&input.events);
        let created =
            integrations::create(&ctx.app().db.conn, ctx.caller()?, &input.name, &events).await?;
        Ok(Integration(created))
    }

    /// A new integration with Hotmart, Kiwify or Eduzz.
    async fn create_integration(
        &self,
        ctx: &Context<'_>,
        input: CreateCheckoutIntegrationInput,
    ) -> ApiResult<Integration> {
        let events: Vec<entity::sale::CheckoutEvent> =
            input.events.into_iter().map(Into::into).collect();
        let created = integrations::create_checkout(
            &ctx.app().db.conn,
            ctx.caller()?,
            input.platform.into(),
            &input.name,
            &events,
            input.group_id.as_ref().map(|id| id.as_str()),
        )
        .await?;
        Ok(Integration(created))
    }

    /// A product of the integration's platform (Hotmart's with its hottok).
    async fn add_product(
        &self,
        ctx: &Context<'_>,
        integration_id: ID,
        input: ProductInput,
    ) -> ApiResult<Product> {
        let app = ctx.app();
        let new_product = NewProduct {
            hotmart_product_id: &input.platform_product_id,
            hottok: input.hottok.as_deref(),
            id_field: "platformProductId",
            name: input.name.as_deref(),
            label: input.label.as_deref(),
        };
        let product = products::add(
            &app.db.conn,
            &app.keys,
            ctx.caller()?,
            &integration_id,
            new_product,
        )
        .await?;
        Ok(Product(product))
    }

    /// Kiwify's webhook token or Eduzz's signing key, sealed; never returned.
    async fn set_webhook_secret(
        &self,
        ctx: &Context<'_>,
        integration_id: ID,
        secret: String,
    ) -> ApiResult<Integration> {
        let app = ctx.app();
        let updated = integrations::set_webhook_secret(
            &app.db.conn,
            &app.keys,
            ctx.caller()?,
            &integration_id,
            &secret,
        )
        .await?;
        Ok(Integration(updated))
    }

    async fn add_hotmart_product(
        &self,
        ctx: &Context<'_>,
        integration_id: ID,
        input: AddProductInput,
    ) -> ApiResult<Product> {
        let app = ctx.app();
        let new_product = NewProduct {
            hotmart_product_id: &input.hotmart_product_id,
            hottok: Some(&input.hottok),
            id_field: "hotmartProductId",
            name: input.name.as_deref(),
            label: input.label.as_deref(),
        };
        let product = products::add(
            &app.db.conn,
            &app.keys,
            ctx.caller()?,
            &integration_id,
            new_product,
        )
        .await?;
        Ok(Product(product))
    }

    async fn update_product(
        &self,
        ctx: &Context<'_>,
        product_id: ID,
        input: UpdateProductInput,
    ) -> ApiResult<Product> {
        let app = ctx.app();
        let changes = ProductChanges {
            name: input.name.as_deref(),
            label: input.label.as_deref(),
            hottok: input.hottok.as_deref(),
            same_as: input.same_as.as_ref().map(|id| id.as_str()),
        };
        let product =
            products::update(&app.db.conn, &app.keys, ctx.caller()?, &product_id, changes).await?;
        Ok(Product(product))
    }

    async fn remove_product(&self, ctx: &Context<'_>, product_id: ID) -> ApiResult<bool> {
        Ok(products::remove(&ctx.app().db.conn, ctx.caller()?, &product_id).await?)
    }

    async fn update_integration(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateIntegrationInput,
    ) -> ApiResult<Integration> {
        let changes = IntegrationChanges {
            name: input.name,
            label: input.label,
            events: input.events.as_deref().map(domain_events),
            checkout_events: input
                .checkout_events
                .map(|e| e.into_iter().map(Into::into).collect()),
            keep_deal_owner: input.keep_deal_owner,
            tag_contacts_with_product_name: input.tag_contacts_with_product_name,
            merge_products: input.merge_products,
        };
        let updated = integrations::update(&ctx.app().db.conn, ctx.caller()?, &id, changes).await?;
        Ok(Integration(updated))
    }

    async fn set_group_visibility(
        &self,
        ctx: &Context<'_>,
        group_id: ID,
        input: GroupVisibilityInput,
    ) -> ApiResult<Group> {
        let user_ids = ids(input.user_ids.unwrap_or_default());
        let group = groups::set_visibility(
            &ctx.app().db.conn,
            ctx.caller()?,
            &group_id,
            input.everyone,
            &user_ids,
            input.member_scope.map(Into::into),
        )
        .await?;
        Ok(Group(group))
    }

    async fn activate_integration(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Integration> {
        Ok(Integration(
            integrations::activate(&ctx.app().db.conn, ctx.caller()?, &id).await?,
        ))
    }

    async fn pause_integration(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Integration> {
        Ok(Integration(
            integrations::pause(&ctx.app().db.conn, ctx.caller()?, &id).await?,
        ))
    }

    /// A new webhook URL; with `graceHours` the old one keeps accepting until then.
    async fn rotate_webhook_token(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(default = 0)] grace_hours: Option<i32>,
    ) -> ApiResult<Integration> {
        let db = &ctx.app().db.conn;
        let caller = ctx.caller()?;
        let grace = grace_hours.unwrap_or(0);
        Ok(Integration(
            integrations::rotate_webhook_token(db, caller, &id, grace).await?,
        ))
    }

    async fn delete_integration(&self, ctx: &Context<'_>, id: ID) -> ApiResult<bool> {
        Ok(integrations::delete(&ctx.app().db.conn, ctx.caller()?, &id).await?)
    }

    async fn update_origin(
        &self,
        ctx: &Context<'_>,
        origin_id: ID,
        input: UpdateOriginInput,
    ) -> ApiResult<Origin> {
        let origin = origins::update(
            &ctx.app().db.conn,
            ctx.caller()?,
            &origin_id,
            input.name.as_deref(),
            input.entry_status.map(Into::into),
            input.message_template.as_deref(),
        )
        .await?;
        Ok(Origin(origin))
    }

    async fn set_origin_assignees(
        &self,
        ctx: &Context<'_>,
        origin_id: ID,
        user_ids: Vec<ID>,
    ) -> ApiResult<Origin> {
        let origin = origins::set_assignees(
            &ctx.app().db.conn,
            ctx.caller()?,
            &origin_id,
            &ids(user_ids),
        )
        .await?;
        Ok(Origin(origin))
    }
}
