use sea_orm::entity::prelude::*;

/// A follow-up a seller scheduled on a deal.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "activities")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: String,
    pub group_id: String,
    pub deal_id: String,
    pub kind: super::enums::ActivityKind,
    pub title: String,
    pub due_at: i64,
    pub done_at: Option<i64>,
    pub note: Option<String>,
    pub assignee_id: Option<String>,
    pub created_by: Option<String>,
    pub canceled_at: Option<i64>,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
