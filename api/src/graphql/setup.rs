//! The set-up flow (see `docs/webhooks.md`): integrations, products, groups and origins.

use async_graphql::{Context, ID, InputObject, Object};
use entity::{
    groups,
    integrations::{self, IntegrationChanges},
    origins,
    products::{self, NewProduct, ProductChanges},
};

use entity::audit::Change;
use serde_json::json;

use super::{
    audited::Audited,
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
        let caller = ctx.caller()?;
        let tx = Audited::begin(ctx).await?;
        let created = integrations::create(tx.db(), caller, &input.name, &events).await?;
        tx.commit(caller, created_integration(&created)).await?;
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
        let caller = ctx.caller()?;
        let tx = Audited::begin(ctx).await?;
        let created = integrations::create_checkout(
            tx.db(),
            caller,
            input.platform.into(),
            &input.name,
            &events,
            input.group_id.as_ref().map(|id| id.as_str()),
        )
        .await?;
        tx.commit(caller, created_integration(&created)).await?;
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
        let caller = ctx.caller()?;
        let tx = Audited::begin(ctx).await?;
        let product =
            products::add(tx.db(), &app.keys, caller, &integration_id, new_product).await?;
        tx.commit(caller, added_product(&product)).await?;
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
        let caller = ctx.caller()?;
        let tx = Audited::begin(ctx).await?;
        let updated =
            integrations::set_webhook_secret(tx.db(), &app.keys, caller, &integration_id, &secret)
                .await?;
        let change = Change::new("integration.secret_changed", "integration", &updated.id);
        tx.commit(caller, change).await?;
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
        let caller = ctx.caller()?;
        let tx = Audited::begin(ctx).await?;
        let product =
            products::add(tx.db(), &app.keys, caller, &integration_id, new_product).await?;
        tx.commit(caller, added_product(&product)).await?;
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
        let caller = ctx.caller()?;
        let action = if input.hottok.is_some() {
            "product.hottok_changed"
        } else {
            "product.updated"
        };
        let details = json!({"name": input.name, "label": input.label, "sameAs": input.same_as});
        let tx = Audited::begin(ctx).await?;
        let product = products::update(tx.db(), &app.keys, caller, &product_id, changes).await?;
        let change = Change::new(action, "product", &product.id).with(details);
        tx.commit(caller, change).await?;
        Ok(Product(product))
    }

    async fn remove_product(&self, ctx: &Context<'_>, product_id: ID) -> ApiResult<bool> {
        let caller = ctx.caller()?;
        let tx = Audited::begin(ctx).await?;
        let removed = products::remove(tx.db(), caller, &product_id).await?;
        tx.commit(
            caller,
            Change::new("product.removed", "product", &product_id),
        )
        .await?;
        Ok(removed)
    }

    async fn update_integration(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateIntegrationInput,
    ) -> ApiResult<Integration> {
        let details = json!({
            "name": input.name, "label": input.label,
            "events": as_json(&input.events), "checkoutEvents": as_json(&input.checkout_events),
            "keepDealOwner": input.keep_deal_owner,
            "tagContactsWithProductName": input.tag_contacts_with_product_name,
            "mergeProducts": input.merge_products,
        });
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
        let caller = ctx.caller()?;
        let tx = Audited::begin(ctx).await?;
        let updated = integrations::update(tx.db(), caller, &id, changes).await?;
        let change = Change::new("integration.updated", "integration", &updated.id).with(details);
        tx.commit(caller, change).await?;
        Ok(Integration(updated))
    }

    async fn set_group_visibility(
        &self,
        ctx: &Context<'_>,
        group_id: ID,
        input: GroupVisibilityInput,
    ) -> ApiResult<Group> {
        let user_ids = ids(input.user_ids.unwrap_or_default());
        let details = json!({"everyone": input.everyone, "userIds": user_ids,
            "memberScope": input.member_scope.map(|s| entity::tables::enums::DealScope::from(s).as_str())});
        let caller = ctx.caller()?;
        let tx = Audited::begin(ctx).await?;
        let group = groups::set_visibility(
            tx.db(),
            caller,
            &group_id,
            input.everyone,
            &user_ids,
            input.member_scope.map(Into::into),
        )
        .await?;
        let change = Change::new("visibility.changed", "group", &group.id).with(details);
        tx.commit(caller, change).await?;
        Ok(Group(group))
    }

    async fn activate_integration(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Integration> {
        let caller = ctx.caller()?;
        let tx = Audited::begin(ctx).await?;
        let updated = integrations::activate(tx.db(), caller, &id).await?;
        let change = Change::new("integration.activated", "integration", &updated.id);
        tx.commit(caller, change).await?;
        Ok(Integration(updated))
    }

    async fn pause_integration(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Integration> {
        let caller = ctx.caller()?;
        let tx = Audited::begin(ctx).await?;
        let updated = integrations::pause(tx.db(), caller, &id).await?;
        let change = Change::new("integration.paused", "integration", &updated.id);
        tx.commit(caller, change).await?;
        Ok(Integration(updated))
    }

    /// A new webhook URL; with `graceHours` the old one keeps accepting until then.
    async fn rotate_webhook_token(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(default = 0)] grace_hours: Option<i32>,
    ) -> ApiResult<Integration> {
        let caller = ctx.caller()?;
        let grace = grace_hours.unwrap_or(0);
        let tx = Audited::begin(ctx).await?;
        let updated = integrations::rotate_webhook_token(tx.db(), caller, &id, grace).await?;
        let change = Change::new("integration.url_rotated", "integration", &updated.id)
            .with(json!({"graceHours": grace}));
        tx.commit(caller, change).await?;
        Ok(Integration(updated))
    }

    async fn delete_integration(&self, ctx: &Context<'_>, id: ID) -> ApiResult<bool> {
        let caller = ctx.caller()?;
        let tx = Audited::begin(ctx).await?;
        let deleted = integrations::delete(tx.db(), caller, &id).await?;
        tx.commit(
            caller,
            Change::new("integration.deleted", "integration", &id),
        )
        .await?;
        Ok(deleted)
    }

    async fn update_origin(
        &self,
        ctx: &Context<'_>,
        origin_id: ID,
        input: UpdateOriginInput,
    ) -> ApiResult<Origin> {
        let details = json!({"name": input.name, "entryStatus": input.entry_status.map(|s| entity::DealStatus::from(s).as_str()),
            "messageTemplate": input.message_template});
        let caller = ctx.caller()?;
        let tx = Audited::begin(ctx).await?;
        let origin = origins::update(
            tx.db(),
            caller,
            &origin_id,
            input.name.as_deref(),
            input.entry_status.map(Into::into),
            input.message_template.as_deref(),
        )
        .await?;
        let change = Change::new("origin.updated", "origin", &origin.id).with(details);
        tx.commit(caller, change).await?;
        Ok(Origin(origin))
    }

    async fn set_origin_assignees(
        &self,
        ctx: &Context<'_>,
        origin_id: ID,
        user_ids: Vec<ID>,
    ) -> ApiResult<Origin> {
        let user_ids = ids(user_ids);
        let caller = ctx.caller()?;
        let tx = Audited::begin(ctx).await?;
        let origin = origins::set_assignees(tx.db(), caller, &origin_id, &user_ids).await?;
        let change = Change::new("origin.assignees_changed", "origin", &origin.id)
            .with(json!({"userIds": user_ids}));
        tx.commit(caller, change).await?;
        Ok(Origin(origin))
    }
}

fn created_integration(created: &entity::tables::integration::Model) -> Change {
    Change::new("integration.created", "integration", &created.id)
        .with(json!({"name": created.name, "platform": created.platform}))
}

fn added_product(product: &entity::tables::product::Model) -> Change {
    Change::new("product.added", "product", &product.id).with(json!({
        "integrationId": product.integration_id,
        "platformProductId": product.hotmart_product_id,
        "name": product.name,
    }))
}

/// An input value as the API spells it (enum names as in the schema).
fn as_json<T: async_graphql::InputType>(value: &T) -> serde_json::Value {
    value.to_value().into_json().unwrap_or_default()
}
