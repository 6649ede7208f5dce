//! Money in integer cents: `deals.value` becomes `deals.value_cents` and
//! `product_variations.price` becomes `product_variations.price_cents`. Existing amounts
//! are converted (rounded to the cent).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const COLUMNS: [(&str, &str, &str); 2] = [
    ("deals", "value", "value_cents"),
    ("product_variations", "price", "price_cents"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, old, new) in COLUMNS {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .add_column(big_integer_null(new))
                        .take(),
                )
                .await?;
            manager
                .get_connection()
                .execute_unprepared(&format!(
                    "UPDATE {table} SET {new} = CAST(ROUND({old} * 100) AS BIGINT) WHERE {old} IS NOT NULL"
                ))
                .await?;
            manager
                .alter_table(Table::alter().table(table).drop_column(old).take())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, old, new) in COLUMNS {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .add_column(double_null(old))
                        .take(),
                )
                .await?;
            manager
                .get_connection()
                .execute_unprepared(&format!(
                    "UPDATE {table} SET {old} = {new} / 100.0 WHERE {new} IS NOT NULL"
                ))
                .await?;
            manager
                .alter_table(Table::alter().table(table).drop_column(new).take())
                .await?;
        }
        Ok(())
    }
}
