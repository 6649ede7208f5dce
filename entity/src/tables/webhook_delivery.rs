use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: String,
    pub integration_id: String,
    pub event_id: Option<String>,
    pub dedup_event_id: Option<String>,
    pub event: Option<String>,
    pub status: super::enums::DeliveryStatus,
    pub reason: Option<String>,
    pub attempts: i32,
    pub payload: String,
    pub payload_sha256: String,
    pub body_differs: bool,
    /// Came in on the integration's previous URL, during a rotation's grace period.
    pub via_previous_url: bool,
    pub received_at: i64,
    pub processed_at: Option<i64>,
    /// When the delivery was last (re)enqueued, or is due again after a failed attempt.
    pub enqueued_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
