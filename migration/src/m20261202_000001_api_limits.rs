//! The request budget of each Hotmart API credential, shared by every process: a token
//! bucket per credential (`key` is a hash of the client id), so scaled-out workers stay
//! under Hotmart's per-credential limit together.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("api_limits")
                    .if_not_exists()
                    .col(string("key").primary_key())
                    .col(double("tokens"))
                    .col(big_integer("at"))
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("api_limits").take())
            .await
    }
}
