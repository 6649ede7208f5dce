//! Hotmart API credentials of an integration: checked, sealed at rest with the
//! installation's key, never returned.

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
    let current = integrations::get(db, caller, integration_id).await?;
    let check = |field: &str, value: &str| {
        let value = value.trim();
        if value.is_empty()
            || value.len() > 512
            || value.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            Err(DomainError::bad_input(
                field,
                "must be the value shown in Hotmart's developer credentials",
            ))
        } else {
            Ok(value.to_owned())
        }
    };
    let credentials = Credentials {
        client_id: check("clientId", client_id)?,
        client_secret: check("clientSecret", client_secret)?,
    };
    let sealed = keys.seal(&serde_json::to_vec(&credentials).expect("credentials serialise"));
    let mut model = current.into_active_model();
    model.credentials = Set(Some(sealed));
    model.updated_at = Set(now_ms());
    Ok(model.update(db).await?)
}

/// The integration's API credentials, opened.
pub fn credentials(
    keys: &SecretKeys,
    integration: &integration::Model,
) -> DomainResult<Credentials> {
    let sealed = integration.credentials.as_deref().ok_or_else(|| {
        DomainError::bad_input("integrationId", "set the Hotmart API credentials first")
    })?;
    serde_json::from_slice(&keys.open(sealed)?)
        .map_err(|_| DomainError::Internal("stored credentials are corrupt".into()))
}
