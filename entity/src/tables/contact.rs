use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "contacts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: String,
    pub email: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub document: Option<String>,
    /// Event time of the newest data merged into this contact.
    pub data_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// Set when the buyer's data was erased: the row is then a tombstone.
    pub erased_at: Option<i64>,
    /// A tombstone's keyed hash of the normalised e-mail (see `privacy`).
    pub email_hash: Option<String>,
    /// A tombstone's keyed hash of the normalised phone.
    pub phone_hash: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
