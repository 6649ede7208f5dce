//! Sign-in: users' password hashes (Argon2id), sessions (a token names its session, and
//! a session can be revoked), and failed sign-ins per e-mail (slowed, then locked).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("users")
                    .add_column(string_null("password_hash"))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("sessions")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("account_id"))
                    .col(string("user_id"))
                    .col(big_integer("created_at"))
                    .col(big_integer("expires_at"))
                    .col(big_integer_null("revoked_at"))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_user")
                    .table("sessions")
                    .col("user_id")
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("login_failures")
                    .if_not_exists()
                    .col(string("email").primary_key())
                    .col(integer("failures"))
                    .col(big_integer("last_failed_at"))
                    .col(big_integer_null("locked_until"))
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["login_failures", "sessions"] {
            manager
                .drop_table(Table::drop().table(table).take())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table("users")
                    .drop_column("password_hash")
                    .take(),
            )
            .await
    }
}
