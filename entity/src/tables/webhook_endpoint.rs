use sea_orm::entity::prelude::*;

/// A receiver of the account's outbound events (see `docs/outbound.md`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: String,
    pub url: String,
    pub description: Option<String>,
    /// JSON array of event types; empty = every type, future ones included.
    pub event_types: String,
    /// JSON array of group ids; empty = every group.
    pub group_ids: String,
    pub include_contact_data: bool,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// The signing secret (`whsec_…`), sealed with the installation's key.
    pub secret: String,
    /// Its last four characters.
    pub secret_hint: String,
    /// The secret before the last rotation, sealed, signing too until `previous_secret_until`.
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<i64>,
    /// The first failed attempt since the last success (epoch ms).
    pub failing_since: Option<i64>,
    pub last_success_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
