//! Version stamps of data that processes keep in memory (the webhook routes): a change
//! bumps its stamp, and every process drops its copy when it sees a new version.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("change_stamps")
                    .if_not_exists()
                    .col(string("name").primary_key())
                    .col(big_integer("version"))
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("change_stamps").take())
            .await
    }
}
