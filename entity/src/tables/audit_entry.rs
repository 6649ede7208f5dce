use sea_orm::entity::prelude::*;

/// One line of an account's audit log: who changed what in its set-up or people.
/// Append-only; pruned after a year.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: String,
    pub at: i64,
    /// The user who acted; `None` for the command line and the system.
    pub actor_id: Option<String>,
    /// `USER`, `CLI` or `SYSTEM`.
    pub actor_kind: String,
    /// `integration.created`, `product.hottok_changed`, `contact.erased`…
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    /// JSON of what changed; never a secret's value.
    pub details: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
