//! A checkout's API credentials of an integration (Hotmart's, Kiwify's with its account
//! id): checked, sealed at rest with the installation's key, never returned.

use sea_orm::{ActiveModelTrait, ConnectionTrait, IntoActiveModel, Set};
use serde::{Deserialize, Serialize};

use crate::{
    Caller, DomainError, DomainResult, integrations, now_ms, secrets::SecretKeys,
    tables::integration,
};

/// Hotmart API credentials of an integration, sealed at rest.
#[derive(Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub client_id: String,
    pub client_secret: String,
    /// Kiwify's account id (`x-kiwify-account-id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Stores an integration's API credentials, sealed.
pub async fn set_credentials(
    db: &impl ConnectionTrait,
    keys: &SecretKeys,
    caller: &Caller,
    integration_id: &str,
    client_id: &str,
    client_secret: &str,
) -> DomainResult<integration::Model> {
    set_platform_credentials(
        db,
        keys,
        caller,
        integration_id,
        client_id,
        client_secret,
        None,
    )
    .await
}

/// Stores an integration's API credentials (with Kiwify's account id), sealed.
pub async fn set_platform_credentials(
    db: &impl ConnectionTrait,
    keys: &SecretKeys,
    caller: &Caller,
    integration_id: &str,
    client_id: &str,
    client_secret: &str,
    account_id: Option<&str>,
) -> DomainResult<integration::Model> {
    let current = integrations::get(db, caller, integration_id).await?;
    let platform = crate::platform::Platform::of(&current);
    if platform == crate::platform::Platform::Eduzz {
        return Err(DomainError::bad_input(
            "integrationId",
            "Eduzz integrations take no API credentials: imports from Eduzz are not available",
        ));
    }
    let check = |field: &str, value: &str| {
        let value = value.trim();
        if value.is_empty()
            || value.len() > 512
            || value.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            Err(DomainError::bad_input(
                field,
                format!(
                    "must be the value shown in {}'s API credentials",
                    platform.title()
                ),
            ))
        } else {
            Ok(value.to_owned())
        }
    };
    let account_id = account_id_of(platform, account_id)?
        .map(|id| check("accountId", id))
        .transpose()?;
    let credentials = Credentials {
        client_id: check("clientId", client_id)?,
        client_secret: check("clientSecret", client_secret)?,
        account_id,
    };
    let sealed = keys.seal(&serde_json::to_vec(&credentials).expect("credentials serialise"));
    let mut model = current.into_active_model();
    model.credentials = Set(Some(sealed));
    model.updated_at = Set(now_ms());
    Ok(model.update(db).await?)
}

/// Kiwify's credentials need the account id; no other platform's carry one.
fn account_id_of(
    platform: crate::platform::Platform,
    account_id: Option<&str>,
) -> DomainResult<Option<&str>> {
    match (platform, account_id) {
        (crate::platform::Platform::Kiwify, None) => Err(DomainError::bad_input(
            "accountId",
            "Kiwify's API needs the account id shown beside the API keys",
        )),
        (crate::platform::Platform::Kiwify, some) => Ok(some),
        (_, Some(_)) => Err(DomainError::bad_input(
            "accountId",
            "only Kiwify credentials carry an account id",
        )),
        (_, None) => Ok(None),
    }
}

/// The integration's API credentials, opened.
pub fn credentials(
    keys: &SecretKeys,
    integration: &integration::Model,
) -> DomainResult<Credentials> {
    let sealed = integration
        .credentials
        .as_deref()
        .ok_or_else(|| DomainError::bad_input("integrationId", "set the API credentials first"))?;
    serde_json::from_slice(&keys.open(sealed)?)
        .map_err(|_| DomainError::Internal("stored credentials are corrupt".into()))
}
