use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deal_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: String,
    pub group_id: String,
    pub contact_id: String,
    pub deal_key: String,
    pub dedup_id: String,
    /// `{transaction}:{event}`: how an imported sale recognises a webhook event of the same sale.
    pub sale_key: Option<String>,
    /// The platform's own event name (shown on the timeline), or a person's action.
    pub event: String,
    /// What the engine folds: a neutral checkout event, `INFO`, or a person's action
    /// (see `engine::model::Kind`).
    pub kind: String,
    pub source: super::enums::EventSource,
    pub occurred_at: i64,
    pub data: String,
    pub delivery_id: Option<String>,
    pub import_run_id: Option<String>,
    pub deal_id: Option<String>,
    pub effect: Option<super::enums::Effect>,
    pub description: Option<String>,
    /// The person, for `USER` events.
    pub author_id: Option<String>,
    pub recorded_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
