//! Outbound events: the account's webhook endpoints, the outbox of messages (one row per
//! message and endpoint, which is also the message's delivery job) and their attempts.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("webhook_endpoints")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("account_id"))
                    .col(text("url"))
                    .col(text_null("description"))
                    .col(text("event_types"))
                    .col(text("group_ids"))
                    .col(boolean("include_contact_data"))
                    .col(boolean("enabled"))
                    .col(text_null("disabled_reason"))
                    .col(text("secret"))
                    .col(string("secret_hint"))
                    .col(text_null("previous_secret"))
                    .col(big_integer_null("previous_secret_until"))
                    .col(big_integer_null("failing_since"))
                    .col(big_integer_null("last_success_at"))
                    .col(big_integer("created_at"))
                    .col(big_integer("updated_at"))
                    .take(),
            )
            .await?;
        index(
            manager,
            "idx_webhook_endpoints_account",
            "webhook_endpoints",
            &["account_id"],
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table("outbound_messages")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("account_id"))
                    .col(string("endpoint_id"))
                    .col(string("event_type"))
                    .col(text("payload"))
                    .col(string("status"))
                    .col(integer("attempts"))
                    .col(big_integer_null("next_attempt_at"))
                    .col(big_integer_null("lease_until"))
                    .col(string("next_trigger"))
                    .col(big_integer("created_at"))
                    .col(big_integer_null("delivered_at"))
                    .take(),
            )
            .await?;
        index(
            manager,
            "idx_outbound_messages_due",
            "outbound_messages",
            &["endpoint_id", "status", "next_attempt_at"],
        )
        .await?;
        index(
            manager,
            "idx_outbound_messages_endpoint",
            "outbound_messages",
            &["endpoint_id", "created_at", "id"],
        )
        .await?;
        index(
            manager,
            "idx_outbound_messages_created",
            "outbound_messages",
            &["created_at"],
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table("outbound_attempts")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("message_id"))
                    .col(string("endpoint_id"))
                    .col(big_integer("at"))
                    .col(integer_null("http_status"))
                    .col(text_null("error"))
                    .col(integer("duration_ms"))
                    .col(string("trigger"))
                    .col(text_null("response"))
                    .take(),
            )
            .await?;
        index(
            manager,
            "idx_outbound_attempts_message",
            "outbound_attempts",
            &["message_id", "at"],
        )
        .await?;
        index(
            manager,
            "idx_outbound_attempts_at",
            "outbound_attempts",
            &["at"],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "outbound_attempts",
            "outbound_messages",
            "webhook_endpoints",
        ] {
            manager
                .drop_table(Table::drop().table(table).take())
                .await?;
        }
        Ok(())
    }
}

async fn index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: &str,
    cols: &[&str],
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.name(name).table(table.to_owned());
    for col in cols {
        index.col(Alias::new(*col));
    }
    manager.create_index(index.take()).await
}
