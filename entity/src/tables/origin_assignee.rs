use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "origin_assignees")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub origin_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    pub account_id: String,
    pub position: i32,
    pub weight: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
