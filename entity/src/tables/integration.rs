use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "integrations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: String,
    pub platform: String,
    pub name: String,
    pub label: Option<String>,
    pub status: super::enums::IntegrationStatus,
    pub events: String,
    pub keep_deal_owner: bool,
    pub tag_contacts_with_product_name: bool,
    pub merge_products: bool,
    pub webhook_token: String,
    pub credentials: Option<String>,
    pub hottok_failures: i64,
    /// Scheduled reconciliation: on, how often, how far back, when next.
    pub reconcile_enabled: bool,
    pub reconcile_every_minutes: i32,
    pub reconcile_lookback_hours: i32,
    /// When the next reconciliation is due; `None` when disabled.
    pub reconcile_next_at: Option<i64>,
    /// The URL token before the last rotation, accepted until `previous_token_until`.
    pub previous_webhook_token: Option<String>,
    pub previous_token_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Kiwify's webhook token or Eduzz's signing key, sealed; `None` until set.
    pub webhook_secret: Option<String>,
    /// The group the integration's deals go to (its own, or one it joined).
    pub group_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
