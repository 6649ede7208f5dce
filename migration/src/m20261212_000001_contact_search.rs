//! An index for searching contacts by any part of a name, e-mail or phone.
//!
//! SQLite: an FTS5 table with the trigram tokenizer, one row per contact (keyed by the
//! contact's rowid) holding its name, e-mail and phone, kept by triggers on `contacts`.
//! PostgreSQL: a GIN trigram index (`pg_trgm`) on the same text. Where `pg_trgm` cannot be
//! installed the migration goes on without the index: searches still work, by scanning.
//! A search always re-checks the contact's own columns, so the index only narrows it.

use sea_orm_migration::{prelude::*, sea_orm::ConnectionTrait};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The searched text of a contact row (`row` is `new`, `old` or a table name).
fn text(row: &str) -> String {
    format!("coalesce({row}.name, '') || ' ' || {row}.email || ' ' || coalesce({row}.phone, '')")
}

fn sqlite_up() -> Vec<String> {
    let new = text("new");
    vec![
        "CREATE VIRTUAL TABLE IF NOT EXISTS contact_search USING fts5(text, tokenize = 'trigram')"
            .into(),
        format!(
            "INSERT INTO contact_search (rowid, text) SELECT rowid, {} FROM contacts",
            text("contacts")
        ),
        format!(
            "CREATE TRIGGER IF NOT EXISTS contact_search_insert AFTER INSERT ON contacts BEGIN \
             INSERT INTO contact_search (rowid, text) VALUES (new.rowid, {new}); END"
        ),
        format!(
            "CREATE TRIGGER IF NOT EXISTS contact_search_update AFTER UPDATE OF name, email, phone ON contacts \
             WHEN old.name IS NOT new.name OR old.email IS NOT new.email OR old.phone IS NOT new.phone BEGIN \
             UPDATE contact_search SET text = {new} WHERE rowid = new.rowid; END"
        ),
        "CREATE TRIGGER IF NOT EXISTS contact_search_delete AFTER DELETE ON contacts BEGIN \
         DELETE FROM contact_search WHERE rowid = old.rowid; END"
            .into(),
    ]
}

/// The expression the PostgreSQL index is built on; searches repeat it exactly.
const POSTGRES_TEXT: &str =
    "(lower(coalesce(name, '')) || ' ' || email || ' ' || coalesce(phone, ''))";

fn postgres_up() -> Vec<String> {
    vec![
        "DO $$ BEGIN CREATE EXTENSION IF NOT EXISTS pg_trgm; \
         EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'pg_trgm is not available: contact searches scan'; END $$"
            .into(),
        format!(
            "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN \
             CREATE INDEX IF NOT EXISTS ix_contacts_search ON contacts USING gin ({POSTGRES_TEXT} gin_trgm_ops); \
             END IF; END $$"
        ),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let statements = match manager.get_database_backend() {
            sea_orm::DbBackend::Sqlite => sqlite_up(),
            _ => postgres_up(),
        };
        for statement in statements {
            manager
                .get_connection()
                .execute_unprepared(&statement)
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let statements: &[&str] = match manager.get_database_backend() {
            sea_orm::DbBackend::Sqlite => &[
                "DROP TRIGGER IF EXISTS contact_search_insert",
                "DROP TRIGGER IF EXISTS contact_search_update",
                "DROP TRIGGER IF EXISTS contact_search_delete",
                "DROP TABLE IF EXISTS contact_search",
            ],
            _ => &["DROP INDEX IF EXISTS ix_contacts_search"],
        };
        for statement in statements {
            manager
                .get_connection()
                .execute_unprepared(statement)
                .await?;
        }
        Ok(())
    }
}
