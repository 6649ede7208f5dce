use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "origins")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: String,
    pub group_id: String,
    /// The neutral event whose deals the engine puts here; `None` for a hand-made origin
    /// (only people put deals in it).
    pub checkout_event: Option<super::enums::CheckoutEvent>,
    pub name: String,
    pub entry_status: crate::tables::enums::DealStatus,
    pub rotation_cursor: i64,
    /// The WhatsApp message; `None` for the default of its event.
    pub message_template: Option<String>,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
