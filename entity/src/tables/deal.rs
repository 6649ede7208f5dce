use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "deals")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: String,
    pub group_id: String,
    pub origin_id: String,
    /// A stage of `origin_id`.
    pub stage_id: String,
    pub contact_id: String,
    pub product_id: Option<String>,
    pub deal_key: String,
    pub open_key: Option<String>,
    pub status: crate::tables::enums::DealStatus,
    pub paid: bool,
    pub owner_id: Option<String>,
    /// In cents of `currency`.
    pub value_cents: Option<i64>,
    pub currency: Option<String>,
    pub lost_reason: Option<String>,
    /// Payment, subscription and attribution from the deal's events (JSON of
    /// the deal details of the `sale` module); `None` when no event carried any.
    pub details: Option<String>,
    pub created_at: i64,
    pub closed_at: Option<i64>,
    pub last_event_at: i64,
    pub updated_at: i64,
    /// Incremented by every change (a stale `expectedVersion` is refused).
    pub version: i64,
    /// The journey began with a pre-sale event (cart, pending, refused, expired).
    pub began_pre_sale: bool,
    /// When its first sale was paid.
    pub paid_at: Option<i64>,
    /// When a person first acted on it (a move, an outcome, a note, a claim…).
    pub first_action_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
