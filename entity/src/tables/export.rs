use sea_orm::entity::prelude::*;

/// An export of deals or contacts as a person saw them; its file is in `export_chunks`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "exports")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: String,
    /// Who asked: the export holds what this user may see when it runs.
    pub user_id: String,
    /// `DEALS` or `CONTACTS`.
    pub kind: String,
    /// The filter asked for (JSON).
    pub filter: String,
    /// `QUEUED`, `RUNNING`, `SUCCEEDED` or `FAILED`.
    pub status: String,
    pub rows: i64,
    pub error: Option<String>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    /// When the export and its file are pruned.
    pub expires_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
