//! Sign-in throttling by key: the failure counts are kept per (e-mail, client address),
//! per client address and per user changing a password, each with the number of times it
//! was held back, so that each hold lasts longer than the one before. A user's tokens made
//! by the CLI can be ended all at once (`tokens_revoked_at`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The old counts were keyed on the e-mail alone; they mean nothing under the new keys.
        manager
            .get_connection()
            .execute_unprepared("DELETE FROM login_failures")
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("login_failures")
                    .add_column(integer("holds").default(0))
                    .take(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("users")
                    .add_column(big_integer_null("tokens_revoked_at"))
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("users")
                    .drop_column("tokens_revoked_at")
                    .take(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("login_failures")
                    .drop_column("holds")
                    .take(),
            )
            .await
    }
}
