//! Every checkout: an integration's platform decides how its deliveries are verified and
//! read. Kiwify and Eduzz sign deliveries with a secret of the integration (sealed at
//! rest, like API credentials); an integration may join another's group (its origins then
//! serve both); a product may be declared the same as a product of another integration
//! of the group.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one column at a time.
        for column in ["webhook_secret", "group_id"] {
            manager
                .alter_table(
                    Table::alter()
                        .table("integrations")
                        .add_column(string_null(column))
                        .take(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table("products")
                    .add_column(string_null("same_as"))
                    .take(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE integrations SET group_id = \
                 (SELECT g.id FROM groups g WHERE g.integration_id = integrations.id)",
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_integrations_group")
                    .table("integrations")
                    .col("group_id")
                    .take(),
            )
            .await?;
        Ok(())
    }
}
