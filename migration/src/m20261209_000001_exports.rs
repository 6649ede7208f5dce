//! Exports: a CSV file of the deals or contacts a person may see, written by a background
//! job in chunks (so any server process can stream it back) and kept for a day.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("exports")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("account_id"))
                    .col(string("user_id"))
                    .col(string("kind"))
                    .col(text("filter"))
                    .col(string("status"))
                    .col(big_integer("rows").default(0))
                    .col(text_null("error"))
                    .col(big_integer("created_at"))
                    .col(big_integer_null("finished_at"))
                    .col(big_integer("expires_at"))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_exports_expires")
                    .table("exports")
                    .col("expires_at")
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("export_chunks")
                    .if_not_exists()
                    .col(string("export_id"))
                    .col(integer("seq"))
                    .col(blob("data"))
                    .primary_key(Index::create().col("export_id").col("seq"))
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["export_chunks", "exports"] {
            manager
                .drop_table(Table::drop().table(table).take())
                .await?;
        }
        Ok(())
    }
}
