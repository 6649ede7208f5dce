use sea_orm::entity::prelude::*;

/// One attempt to deliver an outbound message.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbound_attempts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub message_id: String,
    pub endpoint_id: String,
    pub at: i64,
    pub http_status: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i32,
    /// `AUTO` or `MANUAL`.
    pub trigger: String,
    /// At most 1 KiB of the response body.
    pub response: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
