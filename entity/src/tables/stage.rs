use sea_orm::entity::prelude::*;

/// A step of an origin's pipeline (Clint's *etapa*).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "stages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: String,
    pub origin_id: String,
    pub name: String,
    pub position: i32,
    /// Set when deleted: the stage its deals moved to.
    pub replaced_by: Option<String>,
    pub deleted_at: Option<i64>,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
