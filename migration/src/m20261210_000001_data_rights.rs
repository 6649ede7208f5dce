//! Data rights: an erased buyer's contact row becomes a tombstone (keyed hashes of the
//! e-mail and phone, and the erasure time), and the account's audit log.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            big_integer_null("erased_at"),
            string_null("email_hash"),
            string_null("phone_hash"),
        ] {
            manager
                .alter_table(Table::alter().table("contacts").add_column(column).take())
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_contacts_email_hash")
                    .table("contacts")
                    .col("account_id")
                    .col("email_hash")
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("audit_log")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("account_id"))
                    .col(big_integer("at"))
                    .col(string_null("actor_id"))
                    .col(string("actor_kind"))
                    .col(string("action"))
                    .col(string("target_type"))
                    .col(string_null("target_id"))
                    .col(text_null("details"))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_log_account_at")
                    .table("audit_log")
                    .col("account_id")
                    .col("at")
                    .col("id")
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_log_at")
                    .table("audit_log")
                    .col("at")
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("audit_log").take())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_contacts_email_hash")
                    .table("contacts")
                    .to_owned(),
            )
            .await?;
        for column in ["erased_at", "email_hash", "phone_hash"] {
            manager
                .alter_table(Table::alter().table("contacts").drop_column(column).take())
                .await?;
        }
        Ok(())
    }
}
