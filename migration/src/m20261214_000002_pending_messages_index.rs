//! The oldest pending outbound message is found by an index of pending messages only.
//!
//! `/metrics` reports the age of the oldest message still pending. Read by the index on
//! `created_at`, that walked every delivered message older than the first pending one
//! (messages are kept 30 days): 17 ms at 30,000 messages on PostgreSQL, growing with the
//! kept history. A partial index of the pending rows stays as small as the backlog, and
//! a message leaves it when it is delivered or fails.

use sea_orm_migration::{prelude::*, sea_orm::ConnectionTrait};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX IF NOT EXISTS ix_outbound_messages_pending \
                 ON outbound_messages (created_at) WHERE status = 'PENDING'",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS ix_outbound_messages_pending")
            .await?;
        Ok(())
    }
}
