//! Daily totals of deals for the pipeline report, on SQLite.
//!
//! SQLite adds up a million deals in seconds (it sorts every row to group them), so it
//! keeps `deal_rollups`: per account, group, origin, owner, status, currency, UTC day of
//! creation and the two "recovered" flags, how many deals and their value. Triggers on
//! `deals` keep it exact in the same transaction as every change, whoever writes. The
//! report reads whole days from it and the edges of its window from `deals`.
//! PostgreSQL aggregates the deals directly (and concurrent writers would contend on
//! shared total rows), so it has no such table. Both get a partial index of the deals a
//! person acted on (the report's medians read only those).

use sea_orm_migration::{prelude::*, sea_orm::ConnectionTrait};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// A deal row's bucket columns, in the table's order (`row` is `new`, `old` or `deals`).
fn bucket(row: &str) -> [String; 10] {
    let recovered =
        format!("(CASE WHEN {row}.began_pre_sale = TRUE AND {row}.paid = TRUE THEN 1 ELSE 0 END)");
    let by_team = format!("(CASE WHEN {row}.first_action_at < {row}.paid_at THEN 1 ELSE 0 END)");
    let day = format!("({row}.created_at / 86400000)");
    let key = format!(
        "{row}.account_id || '|' || {row}.group_id || '|' || {row}.origin_id || '|' || \
         coalesce({row}.owner_id, '') || '|' || {row}.status || '|' || coalesce({row}.currency, '') \
         || '|' || {day} || '|' || {recovered} || '|' || {by_team}"
    );
    [
        key,
        format!("{row}.account_id"),
        format!("{row}.group_id"),
        format!("{row}.origin_id"),
        format!("{row}.owner_id"),
        format!("{row}.status"),
        format!("{row}.currency"),
        day,
        recovered,
        by_team,
    ]
}

const COLUMNS: &str =
    "bucket, account_id, group_id, origin_id, owner_id, status, currency, day, recovered, by_team";

fn add(row: &str) -> String {
    format!(
        "INSERT INTO deal_rollups ({COLUMNS}, deals, cents) VALUES ({}, 1, coalesce({row}.value_cents, 0)) \
         ON CONFLICT (bucket) DO UPDATE SET deals = deals + 1, cents = cents + excluded.cents;",
        bucket(row).join(", ")
    )
}

fn remove(row: &str) -> String {
    format!(
        "UPDATE deal_rollups SET deals = deals - 1, cents = cents - coalesce({row}.value_cents, 0) \
         WHERE bucket = {};",
        bucket(row)[0]
    )
}

fn statements() -> Vec<String> {
    let changed = [
        "account_id",
        "group_id",
        "origin_id",
        "owner_id",
        "status",
        "currency",
        "created_at",
        "value_cents",
        "began_pre_sale",
        "paid",
        "first_action_at",
        "paid_at",
    ]
    .map(|c| format!("old.{c} IS NOT new.{c}"))
    .join(" OR ");
    vec![
        "CREATE TABLE IF NOT EXISTS deal_rollups (bucket TEXT PRIMARY KEY NOT NULL, \
         account_id TEXT NOT NULL, group_id TEXT NOT NULL, origin_id TEXT NOT NULL, owner_id TEXT, \
         status TEXT NOT NULL, currency TEXT, day BIGINT NOT NULL, recovered BIGINT NOT NULL, \
         by_team BIGINT NOT NULL, deals BIGINT NOT NULL, cents BIGINT NOT NULL)"
            .into(),
        "CREATE INDEX IF NOT EXISTS ix_deal_rollups_group_day ON deal_rollups (account_id, group_id, day)"
            .into(),
        format!(
            "INSERT INTO deal_rollups ({COLUMNS}, deals, cents) SELECT {}, count(*), \
             coalesce(sum(value_cents), 0) FROM deals GROUP BY 1",
            bucket("deals").join(", ")
        ),
        format!("CREATE TRIGGER IF NOT EXISTS deal_rollup_insert AFTER INSERT ON deals BEGIN {} END", add("new")),
        format!("CREATE TRIGGER IF NOT EXISTS deal_rollup_delete AFTER DELETE ON deals BEGIN {} END", remove("old")),
        format!(
            "CREATE TRIGGER IF NOT EXISTS deal_rollup_update AFTER UPDATE ON deals WHEN {changed} BEGIN {} {} END",
            remove("old"),
            add("new")
        ),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Both backends: the deals a person acted on, for the report's medians.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX IF NOT EXISTS ix_deals_first_action ON deals (account_id, group_id, created_at) \
                 WHERE first_action_at IS NOT NULL",
            )
            .await?;
        if manager.get_database_backend() != sea_orm::DbBackend::Sqlite {
            return Ok(());
        }
        for statement in statements() {
            manager
                .get_connection()
                .execute_unprepared(&statement)
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS ix_deals_first_action")
            .await?;
        if manager.get_database_backend() != sea_orm::DbBackend::Sqlite {
            return Ok(());
        }
        for statement in [
            "DROP TRIGGER IF EXISTS deal_rollup_insert",
            "DROP TRIGGER IF EXISTS deal_rollup_delete",
            "DROP TRIGGER IF EXISTS deal_rollup_update",
            "DROP TABLE IF EXISTS deal_rollups",
        ] {
            manager
                .get_connection()
                .execute_unprepared(statement)
                .await?;
        }
        Ok(())
    }
}
