use sea_orm::entity::prelude::*;

/// One outbound message for one endpoint: the outbox row written with the change, and the
/// delivery job the dispatcher claims.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbound_messages")]
pub struct Model {
    /// `msg_…`: the `webhook-id` header, the same on every attempt.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: String,
    pub endpoint_id: String,
    pub event_type: String,
    /// The exact body sent: `{type, timestamp, data}`.
    pub payload: String,
    /// `PENDING`, `DELIVERED` or `FAILED`.
    pub status: String,
    pub attempts: i32,
    /// When the next attempt is due (epoch ms); `None` once delivered or failed.
    pub next_attempt_at: Option<i64>,
    /// Claimed by a dispatcher until then.
    pub lease_until: Option<i64>,
    /// `AUTO`, or `MANUAL` for a resend.
    pub next_trigger: String,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
