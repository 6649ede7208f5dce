//! Working the pipeline: origins keyed by the platform-neutral checkout event (nullable:
//! hand-made origins have none) with a WhatsApp message template; stages and lost reasons
//! per origin; a deal's stage, version and the facts the recovery report counts; the kind
//! and author of each log event; activities; who-works-what per group.
//!
//! Existing origins get the three default stages (their deals go to the first) and the
//! default lost reasons; existing log events get their neutral kind, and manual owner
//! changes join the log of their deal's key.

use sea_orm_migration::{
    prelude::*,
    schema::*,
    sea_orm::{ConnectionTrait, DbBackend, Statement},
};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Hotmart event → neutral checkout event (the adapters' table, frozen here as history).
const NEUTRAL: [(&str, &str); 11] = [
    ("PURCHASE_OUT_OF_SHOPPING_CART", "CART_ABANDONED"),
    ("PURCHASE_BILLET_PRINTED", "PAYMENT_PENDING"),
    ("PURCHASE_CANCELED", "PAYMENT_REFUSED"),
    ("PURCHASE_EXPIRED", "PAYMENT_EXPIRED"),
    ("PURCHASE_APPROVED", "PURCHASE_APPROVED"),
    ("PURCHASE_COMPLETE", "PURCHASE_COMPLETE"),
    ("PURCHASE_DELAYED", "PAYMENT_OVERDUE"),
    ("PURCHASE_PROTEST", "REFUND_REQUESTED"),
    ("PURCHASE_REFUNDED", "REFUNDED"),
    ("PURCHASE_CHARGEBACK", "CHARGEBACK"),
    ("SUBSCRIPTION_CANCELLATION", "SUBSCRIPTION_CANCELED"),
];

const STAGES: [&str; 3] = ["Novo", "Em contato", "Negociação"];
const LOST_REASONS: [&str; 4] = [
    "Sem interesse",
    "Sem dinheiro no momento",
    "Comprou de concorrente",
    "Não responde",
];

fn neutral_case(column: &str) -> String {
    let arms: String = NEUTRAL
        .iter()
        .map(|(hotmart, neutral)| format!("WHEN '{hotmart}' THEN '{neutral}' "))
        .collect();
    format!("CASE {column} {arms}ELSE NULL END")
}

async fn run(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    let db = manager.get_connection();
    db.execute_raw(Statement::from_string(
        db.get_database_backend(),
        sql.to_owned(),
    ))
    .await?;
    Ok(())
}

async fn add_columns(
    manager: &SchemaManager<'_>,
    columns: Vec<(&'static str, ColumnDef)>,
) -> Result<(), DbErr> {
    for (table, mut column) in columns {
        manager
            .alter_table(Table::alter().table(table).add_column(&mut column).take())
            .await?;
    }
    Ok(())
}

/// `origins.event` (a Hotmart name, required) becomes `checkout_event` (neutral, nullable).
async fn rebuild_origins(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let neutral = neutral_case("event");
    if manager.get_database_backend() == DbBackend::Postgres {
        run(
            manager,
            "ALTER TABLE origins ADD COLUMN checkout_event VARCHAR NULL",
        )
        .await?;
        run(
            manager,
            &format!("UPDATE origins SET checkout_event = {neutral}"),
        )
        .await?;
        run(manager, "DROP INDEX IF EXISTS ux_origins_group_event").await?;
        run(manager, "ALTER TABLE origins DROP COLUMN event").await?;
        run(
            manager,
            "ALTER TABLE origins ADD COLUMN message_template TEXT NULL",
        )
        .await?;
    } else {
        // SQLite cannot change a column: copy aside, recreate, copy back. Foreign keys
        // (deals → origins) are checked at commit, when every row is back; dropping the
        // table still cascades to the rotations (origin_assignees), kept aside as well.
        run(manager, "PRAGMA defer_foreign_keys = ON").await?;
        run(
            manager,
            "CREATE TABLE origin_assignees_copy AS SELECT * FROM origin_assignees",
        )
        .await?;
        run(
            manager,
            &format!(
                "CREATE TABLE origins_copy AS SELECT id, account_id, group_id, {neutral} AS \
                 checkout_event, name, entry_status, rotation_cursor, created_at FROM origins"
            ),
        )
        .await?;
        run(manager, "DROP TABLE origins").await?;
        manager
            .create_table(
                Table::create()
                    .table("origins")
                    .col(string("id").primary_key())
                    .col(string("account_id"))
                    .col(string("group_id"))
                    .col(string_null("checkout_event"))
                    .col(string("name"))
                    .col(string("entry_status"))
                    .col(big_integer("rotation_cursor").default(0))
                    .col(text_null("message_template"))
                    .col(big_integer("created_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("origins", "group_id")
                            .to("groups", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        run(
            manager,
            "INSERT INTO origins (id, account_id, group_id, checkout_event, name, entry_status, \
             rotation_cursor, created_at) SELECT id, account_id, group_id, checkout_event, name, \
             entry_status, rotation_cursor, created_at FROM origins_copy",
        )
        .await?;
        run(manager, "DROP TABLE origins_copy").await?;
        run(
            manager,
            "INSERT INTO origin_assignees SELECT * FROM origin_assignees_copy",
        )
        .await?;
        run(manager, "DROP TABLE origin_assignees_copy").await?;
    }
    manager
        .create_index(
            Index::create()
                .name("ux_origins_group_checkout_event")
                .table("origins")
                .col("group_id")
                .col("checkout_event")
                .unique()
                .take(),
        )
        .await
}

async fn create_tables(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("stages")
                .col(string("id").primary_key())
                .col(string("account_id"))
                .col(string("origin_id"))
                .col(string("name"))
                .col(integer("position"))
                // A deleted stage is kept, pointing at the stage its deals went to, so
                // that sellers' moves in the log still resolve.
                .col(string_null("replaced_by"))
                .col(big_integer_null("deleted_at"))
                .col(big_integer("created_at"))
                .take(),
        )
        .await?;
    manager
        .create_table(
            Table::create()
                .table("lost_reasons")
                .col(string("id").primary_key())
                .col(string("account_id"))
                .col(string("origin_id"))
                .col(string("name"))
                .col(integer("position"))
                .col(big_integer("created_at"))
                .take(),
        )
        .await?;
    manager
        .create_table(
            Table::create()
                .table("activities")
                .col(string("id").primary_key())
                .col(string("account_id"))
                .col(string("group_id"))
                .col(string("deal_id"))
                .col(string("kind"))
                .col(string("title"))
                .col(big_integer("due_at"))
                .col(big_integer_null("done_at"))
                .col(text_null("note"))
                .col(string_null("assignee_id"))
                .col(string_null("created_by"))
                .col(big_integer_null("canceled_at"))
                .col(big_integer("created_at"))
                .take(),
        )
        .await?;
    Ok(())
}

async fn create_indexes(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let indexes: [(&str, &str, &[&str]); 6] = [
        ("stages", "ix_stages_origin", &["origin_id", "position"]),
        (
            "lost_reasons",
            "ix_lost_reasons_origin",
            &["origin_id", "position"],
        ),
        ("activities", "ix_activities_deal", &["deal_id", "due_at"]),
        (
            "activities",
            "ix_activities_assignee",
            &["account_id", "assignee_id", "due_at", "id"],
        ),
        (
            "deals",
            "ix_deals_stage_created",
            &["account_id", "stage_id", "created_at", "id"],
        ),
        (
            "deals",
            "ix_deals_group_updated",
            &["group_id", "updated_at"],
        ),
    ];
    for (table, name, columns) in indexes {
        let mut index = Index::create().name(name).table(table).take();
        for column in columns {
            index.col(*column);
        }
        manager.create_index(index).await?;
    }
    Ok(())
}

/// Default stages and lost reasons of the existing origins, their deals in the first
/// stage, and the log's new columns filled in.
async fn backfill(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    for (position, name) in STAGES.iter().enumerate() {
        run(
            manager,
            &format!(
                "INSERT INTO stages (id, account_id, origin_id, name, position, created_at) \
                 SELECT id || ':s{position}', account_id, id, '{name}', {position}, created_at \
                 FROM origins"
            ),
        )
        .await?;
    }
    for (position, name) in LOST_REASONS.iter().enumerate() {
        run(
            manager,
            &format!(
                "INSERT INTO lost_reasons (id, account_id, origin_id, name, position, created_at) \
                 SELECT id || ':r{position}', account_id, id, '{name}', {position}, created_at \
                 FROM origins WHERE checkout_event IS NOT NULL"
            ),
        )
        .await?;
    }
    run(manager, "UPDATE deals SET stage_id = origin_id || ':s0'").await?;
    run(
        manager,
        "UPDATE deals SET paid_at = closed_at WHERE paid AND status = 'WON'",
    )
    .await?;
    let kind = neutral_case("event");
    run(
        manager,
        &format!(
            "UPDATE deal_events SET kind = COALESCE({kind}, 'INFO') WHERE event <> 'ASSIGNED'"
        ),
    )
    .await?;
    run(
        manager,
        "UPDATE deal_events SET kind = 'OWNER_CHANGED', effect = 'OWNER_CHANGED', \
         deal_key = COALESCE((SELECT d.deal_key FROM deals d WHERE d.id = deal_events.deal_id), \
         deal_key) WHERE event = 'ASSIGNED'",
    )
    .await?;
    run(
        manager,
        "UPDATE deal_events SET event = 'OWNER_CHANGED' WHERE event = 'ASSIGNED'",
    )
    .await?;
    let pre_sale = "('CART_ABANDONED','PAYMENT_PENDING','PAYMENT_REFUSED','PAYMENT_EXPIRED')";
    run(
        manager,
        &format!(
            "UPDATE deals SET began_pre_sale = EXISTS (SELECT 1 FROM deal_events e WHERE \
             e.deal_id = deals.id AND e.occurred_at = deals.created_at AND e.kind IN {pre_sale})"
        ),
    )
    .await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rebuild_origins(manager).await?;
        add_columns(
            manager,
            vec![
                ("deals", string("stage_id").default("").take()),
                ("deals", big_integer("version").default(1).take()),
                ("deals", boolean("began_pre_sale").default(false).take()),
                ("deals", big_integer_null("paid_at")),
                ("deals", big_integer_null("first_action_at")),
                ("deal_events", string("kind").default("").take()),
                ("deal_events", string_null("author_id")),
                ("groups", string("member_scope").default("ALL").take()),
            ],
        )
        .await?;
        create_tables(manager).await?;
        create_indexes(manager).await?;
        backfill(manager).await
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration(
            "working the pipeline cannot be rolled back: restore a backup".into(),
        ))
    }
}
