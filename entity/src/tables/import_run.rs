use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "import_runs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: String,
    pub integration_id: String,
    pub range_from: i64,
    pub range_to: i64,
    pub events: String,
    pub hotmart_product_ids: String,
    pub label: Option<String>,
    pub status: super::enums::ImportStatus,
    pub kind: super::enums::ImportKind,
    /// Sales this run found that no webhook had delivered (reconciliation runs).
    pub healed: i64,
    pub windows_total: i64,
    pub windows_done: i64,
    pub sales_seen: i64,
    pub deals_created: i64,
    pub deals_updated: i64,
    pub skipped: i64,
    pub failed_sales: i64,
    pub error: Option<String>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
