//! Products registered in an integration (Hotmart's with their hottoks), and products
//! of one group declared the same across integrations.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, ModelTrait,
    QueryFilter, QueryOrder, Set,
};

use crate::{
    Caller, DomainError, DomainResult,
    error::is_unique_violation,
    integrations, labels, new_id, now_ms,
    platform::Platform,
    scope::find_scoped,
    secrets::SecretKeys,
    tables::{product, product_variation},
    values,
};

pub const MAX_HOTMART_PRODUCT_ID_LEN: usize = 64;
pub const MIN_HOTTOK_LEN: usize = 8;
pub const MAX_HOTTOK_LEN: usize = 256;

pub use crate::hotmart::payload::is_test_product_id;

fn platform_product_id(platform: Platform, field: &str, value: &str) -> DomainResult<String> {
    let id = value.trim();
    if id.is_empty() {
        return Err(DomainError::bad_input(field, "must not be empty"));
    }
    if id.len() > MAX_HOTMART_PRODUCT_ID_LEN
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(DomainError::bad_input(
            field,
            format!(
                "must be the product id shown in {} (letters, digits, - and _, at most 64)",
                platform.title()
            ),
        ));
    }
    if platform == Platform::Hotmart && is_test_product_id(id) {
        return Err(DomainError::bad_input(
            field,
            "0 is the id of Hotmart's test events, not a product",
        ));
    }
    Ok(id.to_owned())
}

fn hottok(value: &str) -> DomainResult<String> {
    let token = value.trim();
    if token.len() < MIN_HOTTOK_LEN || token.len() > MAX_HOTTOK_LEN {
        return Err(DomainError::bad_input(
            "hottok",
            format!("must be the Hotmart hottok ({MIN_HOTTOK_LEN} to {MAX_HOTTOK_LEN} characters)"),
        ));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(DomainError::bad_input("hottok", "must not contain spaces"));
    }
    Ok(token.to_owned())
}

/// The last 4 characters: enough for a person to recognise which hottok is stored.
fn hint(hottok: &str) -> String {
    let chars: Vec<char> = hottok.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

/// Hotmart products need a hottok; other platforms' have none.
fn hottok_of(platform: Platform, hottok: Option<&str>) -> DomainResult<Option<String>> {
    match (platform, hottok) {
        (Platform::Hotmart, Some(token)) => Ok(Some(self::hottok(token)?)),
        (Platform::Hotmart, None) => Err(DomainError::bad_input(
            "hottok",
            "a Hotmart product needs its hottok (Hotmart → Ferramentas → Webhook)",
        )),
        (_, Some(_)) => Err(DomainError::bad_input(
            "hottok",
            format!(
                "{} products have no hottok: the integration's webhook secret signs deliveries",
                platform.title()
            ),
        )),
        (_, None) => Ok(None),
    }
}

pub struct NewProduct<'a> {
    pub hotmart_product_id: &'a str,
    /// Hotmart products only (required there).
    pub hottok: Option<&'a str>,
    /// The input field naming the product id, for errors.
    pub id_field: &'static str,
    pub name: Option<&'a str>,
    pub label: Option<&'a str>,
}

pub async fn add(
    db: &impl ConnectionTrait,
    keys: &SecretKeys,
    caller: &Caller,
    integration_id: &str,
    input: NewProduct<'_>,
) -> DomainResult<product::Model> {
    let integration = integrations::get(db, caller, integration_id).await?;
    let platform = Platform::of(&integration);
    let hotmart_id = platform_product_id(platform, input.id_field, input.hotmart_product_id)?;
    let hottok = hottok_of(platform, input.hottok)?;
    let name = values::optional_name("name", input.name)?;
    let label = labels::optional_label_name("label", input.label)?;
    let duplicate = || {
        DomainError::bad_input(
            input.id_field,
            format!("product {hotmart_id} is already registered in this integration"),
        )
    };
    if registered(db, &integration.id, &hotmart_id).await? {
        return Err(duplicate());
    }
    let label = match label {
        Some(name) => Some(labels::ensure(db, caller, "label", &name).await?.name),
        None => None,
    };
    let added = product::ActiveModel {
        id: Set(new_id()),
        account_id: Set(caller.account_id.clone()),
        integration_id: Set(integration.id),
        hotmart_product_id: Set(hotmart_id.clone()),
        name: Set(name),
        label: Set(label),
        hottok_mac: Set(hottok
            .as_deref()
            .map(|t| keys.hottok_mac(t))
            .unwrap_or_default()),
        hottok_hint: Set(hottok.as_deref().map(hint).unwrap_or_default()),
        ucode: Set(None),
        refreshed_at: Set(None),
        refresh_error: Set(None),
        created_at: Set(now_ms()),
        same_as: Set(None),
    }
    .insert(db)
    .await
    .map_err(|err| {
        if is_unique_violation(&err) {
            duplicate()
        } else {
            DomainError::from(err)
        }
    })?;
    crate::stamps::bump(db, crate::stamps::ROUTES).await?;
    Ok(added)
}

/// Whether the integration already has the platform's product `platform_id`.
async fn registered(
    db: &impl ConnectionTrait,
    integration_id: &str,
    platform_id: &str,
) -> DomainResult<bool> {
    Ok(product::Entity::find()
        .filter(product::Column::IntegrationId.eq(integration_id))
        .filter(product::Column::HotmartProductId.eq(platform_id))
        .one(db)
        .await?
        .is_some())
}

/// `None` leaves a field unchanged; a blank name or label clears it.
pub struct ProductChanges<'a> {
    pub name: Option<&'a str>,
    pub label: Option<&'a str>,
    pub hottok: Option<&'a str>,
    /// A product of another integration of the same group this one counts as; blank
    /// clears the link.
    pub same_as: Option<&'a str>,
}

pub async fn update(
    db: &impl ConnectionTrait,
    keys: &SecretKeys,
    caller: &Caller,
    id: &str,
    changes: ProductChanges<'_>,
) -> DomainResult<product::Model> {
    caller.require_admin()?;
    let current = find_scoped::<product::Entity>(db, caller, id).await?;
    let name = changes
        .name
        .map(|n| values::optional_name("name", Some(n)))
        .transpose()?;
    let label = changes
        .label
        .map(|l| labels::optional_label_name("label", Some(l)))
        .transpose()?;
    let hottok = changes.hottok.map(hottok).transpose()?;
    let same_as = match changes.same_as.map(str::trim) {
        Some("") => Some(None),
        Some(other) => Some(Some(same_as_target(db, caller, &current, other).await?)),
        None => None,
    };
    let mut model = current.into_active_model();
    if let Some(same_as) = same_as {
        model.same_as = Set(same_as);
    }
    if let Some(name) = name {
        model.name = Set(name);
    }
    if let Some(label) = label {
        model.label = Set(match label {
            Some(name) => Some(labels::ensure(db, caller, "label", &name).await?.name),
            None => None,
        });
    }
    if let Some(hottok) = hottok {
        model.hottok_mac = Set(keys.hottok_mac(&hottok));
        model.hottok_hint = Set(hint(&hottok));
    }
    let updated = model.update(db).await?;
    crate::stamps::bump(db, crate::stamps::ROUTES).await?;
    Ok(updated)
}

/// Checks that `other` may stand for `product` (§11.3): a product of another integration
/// of the same group, not itself linked (links are one step: no chains).
async fn same_as_target(
    db: &impl ConnectionTrait,
    caller: &Caller,
    product: &product::Model,
    other: &str,
) -> DomainResult<String> {
    let refuse = |why: &str| DomainError::bad_input("sameAs", why.to_owned());
    let target = find_scoped::<product::Entity>(db, caller, other)
        .await
        .map_err(|_| refuse("no such product"))?;
    if target.integration_id == product.integration_id {
        return Err(refuse(
            "products of one integration are merged with mergeProducts, not linked",
        ));
    }
    let mine = integrations::get(db, caller, &product.integration_id).await?;
    let theirs = integrations::get(db, caller, &target.integration_id).await?;
    if mine.group_id.is_none() || mine.group_id != theirs.group_id {
        return Err(refuse(
            "only products of integrations of the same group can be the same product",
        ));
    }
    if target.same_as.is_some() {
        return Err(refuse(
            "that product is itself linked to another: link to the one it names",
        ));
    }
    let linked_to_me = product::Entity::find()
        .filter(product::Column::SameAs.eq(product.id.as_str()))
        .one(db)
        .await?;
    if linked_to_me.is_some() {
        return Err(refuse(
            "other products are linked to this one: link them to the other product instead",
        ));
    }
    Ok(target.id)
}

/// A product of the caller's account, if it exists.
pub async fn find(
    db: &impl ConnectionTrait,
    caller: &Caller,
    id: &str,
) -> DomainResult<Option<product::Model>> {
    match find_scoped::<product::Entity>(db, caller, id).await {
        Ok(found) => Ok(Some(found)),
        Err(DomainError::NotFound(_)) => Ok(None),
        Err(err) => Err(err),
    }
}

/// The product a deal key names: the one a product is linked to, or itself.
pub fn key_product(product: &product::Model) -> &str {
    product.same_as.as_deref().unwrap_or(&product.id)
}

pub async fn remove(db: &impl ConnectionTrait, caller: &Caller, id: &str) -> DomainResult<bool> {
    caller.require_admin()?;
    let current = find_scoped::<product::Entity>(db, caller, id).await?;
    current.delete(db).await?;
    crate::stamps::bump(db, crate::stamps::ROUTES).await?;
    Ok(true)
}

pub async fn of_integration(
    db: &impl ConnectionTrait,
    integration_id: &str,
) -> DomainResult<Vec<product::Model>> {
    Ok(product::Entity::find()
        .filter(product::Column::IntegrationId.eq(integration_id))
        .order_by_asc(product::Column::CreatedAt)
        .order_by_asc(product::Column::Id)
        .all(db)
        .await?)
}

pub async fn variations(
    db: &impl ConnectionTrait,
    product_id: &str,
) -> DomainResult<Vec<product_variation::Model>> {
    Ok(product_variation::Entity::find()
        .filter(product_variation::Column::ProductId.eq(product_id))
        .order_by_asc(product_variation::Column::Kind)
        .order_by_asc(product_variation::Column::Code)
        .all(db)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_product_ids_are_recognised() {
        assert!(is_test_product_id("0"));
        assert!(is_test_product_id("00000"));
        assert!(!is_test_product_id("1234567"));
        assert!(!is_test_product_id(""));
    }

    #[test]
    fn hints_show_only_the_last_four_characters() {
        assert_eq!(hint("abcdefgh1234"), "1234");
        assert_eq!(hint("abc"), "abc");
    }

    #[test]
    fn product_ids_and_hottoks_are_validated() {
        let hotmart = |id| platform_product_id(Platform::Hotmart, "hotmartProductId", id);
        assert_eq!(hotmart(" 1234567 ").unwrap(), "1234567");
        assert!(hotmart("0").is_err());
        assert!(hotmart("12 34").is_err());
        let kiwify = |id| platform_product_id(Platform::Kiwify, "platformProductId", id);
        let uuid = "ba22c4a0-5c94-11ee-9c2d-8d32d7a17894";
        assert_eq!(kiwify(uuid).unwrap(), uuid);
        assert_eq!(
            kiwify("0").unwrap(),
            "0",
            "only Hotmart's test id is refused"
        );
        assert!(hottok("short").is_err());
        assert!(hottok("with space inside").is_err());
        assert!(hottok(&"x".repeat(MAX_HOTTOK_LEN + 1)).is_err());
    }
}

/// An offer or a plan of a product.
#[derive(Debug, Clone, PartialEq)]
pub struct Variation {
    /// `OFFER` or `PLAN`.
    pub kind: &'static str,
    pub code: String,
    pub name: Option<String>,
    /// In cents.
    pub price_cents: Option<i64>,
    pub currency: Option<String>,
}

/// A product's data as Hotmart's product API reports it.
#[derive(Debug, Clone, Default)]
pub struct RefreshedProduct {
    pub name: Option<String>,
    pub ucode: Option<String>,
    pub variations: Vec<Variation>,
}

/// Stores a refresh result (or its failure) on a product.
pub async fn record_refresh(
    db: &impl ConnectionTrait,
    product: &product::Model,
    result: Result<RefreshedProduct, String>,
    label: Option<&str>,
) -> DomainResult<()> {
    let mut model = product.clone().into_active_model();
    if let Some(label) = label {
        model.label = Set(Some(label.to_owned()));
    }
    match result {
        Ok(refreshed) => {
            product_variation::Entity::delete_many()
                .filter(product_variation::Column::ProductId.eq(product.id.as_str()))
                .exec(db)
                .await?;
            for Variation {
                kind,
                code,
                name,
                price_cents,
                currency,
            } in refreshed.variations
            {
                product_variation::ActiveModel {
                    id: Set(new_id()),
                    account_id: Set(product.account_id.clone()),
                    product_id: Set(product.id.clone()),
                    kind: Set(kind.to_owned()),
                    code: Set(code),
                    name: Set(name),
                    price_cents: Set(price_cents),
                    currency: Set(currency),
                }
                .insert(db)
                .await?;
            }
            if refreshed.name.is_some() {
                model.name = Set(refreshed.name);
            }
            if refreshed.ucode.is_some() {
                model.ucode = Set(refreshed.ucode);
            }
            model.refreshed_at = Set(Some(now_ms()));
            model.refresh_error = Set(None);
        }
        Err(error) => {
            model.refresh_error = Set(Some(error));
        }
    }
    model.update(db).await?;
    Ok(())
}

/// Validates a refresh request; returns the products to refresh and the label to set.
pub async fn plan_refresh(
    db: &impl ConnectionTrait,
    keys: &SecretKeys,
    caller: &Caller,
    integration_id: &str,
    hotmart_product_id: Option<&str>,
    label: Option<&str>,
) -> DomainResult<(crate::tables::integration::Model, Option<String>)> {
    let integration = integrations::get(db, caller, integration_id).await?;
    crate::credentials::credentials(keys, &integration)?;
    let products = of_integration(db, &integration.id).await?;
    if let Some(id) = hotmart_product_id
        && !products.iter().any(|p| p.hotmart_product_id == id)
    {
        return Err(DomainError::bad_input(
            "hotmartProductId",
            format!("product {id} is not registered in this integration"),
        ));
    }
    if products.is_empty() {
        return Err(DomainError::bad_input(
            "integrationId",
            "register a product first",
        ));
    }
    let label = match labels::optional_label_name("label", label)? {
        Some(name) => Some(labels::ensure(db, caller, "label", &name).await?.name),
        None => None,
    };
    Ok((integration, label))
}
