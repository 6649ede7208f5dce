//! Erased buyers are looked up by an index of the tombstones only.
//!
//! Every engine group asks whether any of its buyers was erased (by the keyed hash of the
//! e-mail). The index on `(account_id, email_hash)` held every contact, nearly all with a
//! NULL hash; once SQLite's statistics say so (after `ANALYZE`), its planner judges that
//! index useless and scans the contacts table instead: 10 ms per group at 100,000
//! contacts, 100 ms at a million, all of it inside the engine's write transaction. A
//! partial index of the rows that have a hash (the tombstones) is small and always chosen.

use sea_orm_migration::{prelude::*, sea_orm::ConnectionTrait};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX IF EXISTS idx_contacts_email_hash")
            .await?;
        db.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS ix_contacts_tombstones ON contacts (account_id, email_hash) \
             WHERE email_hash IS NOT NULL",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX IF EXISTS ix_contacts_tombstones")
            .await?;
        db.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS idx_contacts_email_hash ON contacts (account_id, email_hash)",
        )
        .await?;
        Ok(())
    }
}
