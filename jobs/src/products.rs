//! Product refresh: names, offers and plans (as variations) from Hotmart's product API.

use entity::{
    imports,
    products::{self, RefreshedProduct, Variation},
    tables::{integration, product},
};
use sea_orm::EntityTrait;
use serde_json::Value;

use crate::{
    context::JobContext,
    hotmart::{HotmartClient, HotmartError},
};

pub async fn refresh(
    ctx: &JobContext,
    integration_id: &str,
    hotmart_product_id: Option<&str>,
    label: Option<&str>,
) {
    let db = &ctx.db.conn;
    let Ok(Some(integration)) = integration::Entity::find_by_id(integration_id.to_owned())
        .one(db)
        .await
    else {
        return;
    };
    let targets: Vec<product::Model> = match products::of_integration(db, &integration.id).await {
        Ok(all) => all
            .into_iter()
            .filter(|p| hotmart_product_id.is_none_or(|id| p.hotmart_product_id == id))
            .collect(),
        Err(err) => {
            tracing::warn!(error = %err, "product refresh: cannot load products");
            return;
        }
    };
    let client = match imports::credentials(&ctx.keys, &integration) {
        Ok(credentials) => Some(HotmartClient::new(
            &ctx.hotmart,
            credentials,
            ctx.db.clone(),
        )),
        Err(_) => None,
    };
    for product in targets {
        let result = match &client {
            Some(client) => fetch(client, &product.hotmart_product_id)
                .await
                .map_err(|err| err.to_string()),
            None => Err("no Hotmart API credentials".to_owned()),
        };
        if let Err(err) = products::record_refresh(db, &product, result, label).await {
            tracing::warn!(error = %err, "product refresh: cannot store the result");
        }
    }
}

/// Offers or plans of one product: 100 pages of 100 are far more than any product has.
const MAX_PAGES: usize = 100;

fn text(value: &Value) -> Option<String> {
    entity::hotmart::payload::text(value)
}

async fn fetch(
    client: &HotmartClient,
    hotmart_product_id: &str,
) -> Result<RefreshedProduct, HotmartError> {
    let listing = client
        .get(
            "/products/api/v1/products",
            &[("id", hotmart_product_id.to_owned())],
        )
        .await?;
    let item = listing["items"]
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .find(|p| text(&p["id"]).as_deref() == Some(hotmart_product_id))
        })
        .cloned()
        .ok_or_else(|| HotmartError::Http {
            status: 404,
            detail: format!("product {hotmart_product_id} is not in this Hotmart account"),
        })?;
    let mut refreshed = RefreshedProduct {
        name: text(&item["name"]),
        ucode: text(&item["ucode"]),
        variations: Vec::new(),
    };
    let Some(ucode) = refreshed.ucode.clone() else {
        return Ok(refreshed);
    };
    for (kind, path) in [("OFFER", "offers"), ("PLAN", "plans")] {
        let path = format!("/products/api/v1/products/{ucode}/{path}");
        let items = match client
            .get_all(&path, &[("max_results", "100".to_owned())], MAX_PAGES)
            .await
        {
            Ok(items) => items,
            // Hotmart answers 400 for a product without plans instead of an empty list.
            Err(HotmartError::Http { status: 400, .. }) if kind == "PLAN" => continue,
            Err(err) => return Err(err),
        };
        for variation in &items {
            let Some(code) = text(&variation["code"]) else {
                continue;
            };
            refreshed.variations.push(Variation {
                kind,
                code,
                name: text(&variation["name"]),
                price_cents: entity::money::price(variation["price"].get("value")).cents(),
                currency: text(&variation["price"]["currency_code"]),
            });
        }
    }
    Ok(refreshed)
}
