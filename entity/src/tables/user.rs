use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub email: String,
    pub role: crate::Role,
    /// Argon2id (PHC string); `None` until a password is set. Never leaves the server.
    pub password_hash: Option<String>,
    pub created_at: i64,
    /// Tokens made by the CLI before this time (ms) are refused (`checkout-crm token revoke`).
    pub tokens_revoked_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
