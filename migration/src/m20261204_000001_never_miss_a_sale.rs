//! Never miss a sale: the reconciliation schedule of an integration, the previous webhook
//! URL token during a rotation's grace period, import runs' kind and healed sales, the URL
//! a delivery came in on, and wrong-hottok refusals counted per integration and hour.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// `(table, column)` pairs added one by one (SQLite alters one column at a time).
fn columns() -> Vec<(&'static str, ColumnDef)> {
    vec![
        (
            "integrations",
            boolean("reconcile_enabled").default(false).take(),
        ),
        (
            "integrations",
            integer("reconcile_every_minutes").default(60).take(),
        ),
        (
            "integrations",
            integer("reconcile_lookback_hours").default(72).take(),
        ),
        ("integrations", big_integer_null("reconcile_next_at")),
        ("integrations", string_null("previous_webhook_token")),
        ("integrations", big_integer_null("previous_token_until")),
        ("import_runs", string("kind").default("MANUAL").take()),
        ("import_runs", big_integer("healed").default(0).take()),
        (
            "webhook_deliveries",
            boolean("via_previous_url").default(false).take(),
        ),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, mut column) in columns() {
            manager
                .alter_table(Table::alter().table(table).add_column(&mut column).take())
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_integrations_previous_token")
                    .table("integrations")
                    .col("previous_webhook_token")
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("hottok_refusals")
                    .if_not_exists()
                    .col(string("integration_id"))
                    .col(big_integer("hour"))
                    .col(big_integer("refused"))
                    .primary_key(Index::create().col("integration_id").col("hour"))
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("hottok_refusals").take())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_integrations_previous_token")
                    .table("integrations")
                    .to_owned(),
            )
            .await?;
        for (table, column) in columns().into_iter().rev() {
            let name = column.get_column_name();
            manager
                .alter_table(Table::alter().table(table).drop_column(name).take())
                .await?;
        }
        Ok(())
    }
}
