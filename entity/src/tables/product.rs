use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "products")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: String,
    pub integration_id: String,
    pub hotmart_product_id: String,
    pub name: Option<String>,
    pub label: Option<String>,
    pub hottok_mac: String,
    pub hottok_hint: String,
    pub ucode: Option<String>,
    pub refreshed_at: Option<i64>,
    pub refresh_error: Option<String>,
    pub created_at: i64,
    /// A product of another integration of the group this one counts as (one deal key).
    pub same_as: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
