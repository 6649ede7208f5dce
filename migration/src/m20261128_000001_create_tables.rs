//! The whole product's schema: tenants, set-up, pipelines, contacts, deals, the webhook
//! inbox and import runs. Invariants live here as unique indexes so that no code path
//! (nor two racing processes) can break them:
//! - one contact per account + normalised e-mail;
//! - at most one open deal per deal key (`deals.open_key` is the key while open, NULL after);
//! - one processed delivery per integration + Hotmart event id (`dedup_event_id`);
//! - label names unique per account, case-insensitively (`labels.name_key`);
//! - one event per deal key + dedup id in the key's event log.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn id() -> ColumnDef {
    string("id").primary_key().take()
}

fn account() -> ColumnDef {
    string("account_id")
}

fn ms(name: &'static str) -> ColumnDef {
    big_integer(name)
}

fn ms_null(name: &'static str) -> ColumnDef {
    big_integer_null(name)
}

fn flag(name: &'static str, default: bool) -> ColumnDef {
    boolean(name).default(default).take()
}

fn counter(name: &'static str) -> ColumnDef {
    big_integer(name).default(0).take()
}

fn fk(table: &'static str, column: &'static str, to: &'static str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, column)
        .to(to, "id")
        .on_delete(ForeignKeyAction::Cascade)
        .take()
}

async fn index(
    manager: &SchemaManager<'_>,
    table: &'static str,
    name: &'static str,
    columns: &[&'static str],
    unique: bool,
) -> Result<(), DbErr> {
    let mut stmt = Index::create().name(name).table(table).take();
    for column in columns {
        stmt.col(*column);
    }
    if unique {
        stmt.unique();
    }
    manager.create_index(stmt).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("accounts")
                    .col(id())
                    .col(string("name"))
                    .col(ms("created_at"))
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("users")
                    .col(id())
                    .col(account())
                    .col(string("name"))
                    .col(string("email"))
                    .col(string("role"))
                    .col(ms("created_at"))
                    .foreign_key(&mut fk("users", "account_id", "accounts"))
                    .take(),
            )
            .await?;
        index(
            manager,
            "users",
            "ux_users_account_email",
            &["account_id", "email"],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("labels")
                    .col(id())
                    .col(account())
                    .col(string("name"))
                    .col(string("name_key"))
                    .col(string_null("color"))
                    .col(ms("created_at"))
                    .foreign_key(&mut fk("labels", "account_id", "accounts"))
                    .take(),
            )
            .await?;
        index(
            manager,
            "labels",
            "ux_labels_account_name",
            &["account_id", "name_key"],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("integrations")
                    .col(id())
                    .col(account())
                    .col(string("platform"))
                    .col(string("name"))
                    .col(string_null("label"))
                    .col(string("status"))
                    .col(text("events"))
                    .col(flag("keep_deal_owner", false))
                    .col(flag("tag_contacts_with_product_name", false))
                    .col(flag("merge_products", false))
                    .col(string("webhook_token"))
                    .col(text_null("credentials"))
                    .col(counter("hottok_failures"))
                    .col(ms("created_at"))
                    .col(ms("updated_at"))
                    .foreign_key(&mut fk("integrations", "account_id", "accounts"))
                    .take(),
            )
            .await?;
        index(
            manager,
            "integrations",
            "ux_integrations_webhook_token",
            &["webhook_token"],
            true,
        )
        .await?;
        index(
            manager,
            "integrations",
            "ix_integrations_account",
            &["account_id"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("groups")
                    .col(id())
                    .col(account())
                    .col(string("integration_id"))
                    .col(string("name"))
                    .col(flag("visible_to_everyone", true))
                    .col(ms("created_at"))
                    .foreign_key(&mut fk("groups", "account_id", "accounts"))
                    .foreign_key(&mut fk("groups", "integration_id", "integrations"))
                    .take(),
            )
            .await?;
        index(
            manager,
            "groups",
            "ux_groups_integration",
            &["integration_id"],
            true,
        )
        .await?;
        index(
            manager,
            "groups",
            "ix_groups_account",
            &["account_id"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("group_viewers")
                    .col(string("group_id"))
                    .col(string("user_id"))
                    .col(account())
                    .primary_key(Index::create().col("group_id").col("user_id"))
                    .foreign_key(&mut fk("group_viewers", "group_id", "groups"))
                    .foreign_key(&mut fk("group_viewers", "user_id", "users"))
                    .take(),
            )
            .await?;
        index(
            manager,
            "group_viewers",
            "ix_group_viewers_user",
            &["user_id"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("origins")
                    .col(id())
                    .col(account())
                    .col(string("group_id"))
                    .col(string("event"))
                    .col(string("name"))
                    .col(string("entry_status"))
                    .col(counter("rotation_cursor"))
                    .col(ms("created_at"))
                    .foreign_key(&mut fk("origins", "group_id", "groups"))
                    .take(),
            )
            .await?;
        index(
            manager,
            "origins",
            "ux_origins_group_event",
            &["group_id", "event"],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("origin_assignees")
                    .col(string("origin_id"))
                    .col(string("user_id"))
                    .col(account())
                    .col(integer("position"))
                    .col(integer("weight").default(1))
                    .primary_key(Index::create().col("origin_id").col("user_id"))
                    .foreign_key(&mut fk("origin_assignees", "origin_id", "origins"))
                    .foreign_key(&mut fk("origin_assignees", "user_id", "users"))
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("products")
                    .col(id())
                    .col(account())
                    .col(string("integration_id"))
                    .col(string("hotmart_product_id"))
                    .col(string_null("name"))
                    .col(string_null("label"))
                    .col(string("hottok_mac"))
                    .col(string("hottok_hint"))
                    .col(string_null("ucode"))
                    .col(ms_null("refreshed_at"))
                    .col(text_null("refresh_error"))
                    .col(ms("created_at"))
                    .foreign_key(&mut fk("products", "integration_id", "integrations"))
                    .take(),
            )
            .await?;
        index(
            manager,
            "products",
            "ux_products_integration_hotmart_id",
            &["integration_id", "hotmart_product_id"],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("product_variations")
                    .col(id())
                    .col(account())
                    .col(string("product_id"))
                    .col(string("kind"))
                    .col(string("code"))
                    .col(string_null("name"))
                    .col(double_null("price"))
                    .col(string_null("currency"))
                    .foreign_key(&mut fk("product_variations", "product_id", "products"))
                    .take(),
            )
            .await?;
        index(
            manager,
            "product_variations",
            "ux_product_variations_code",
            &["product_id", "kind", "code"],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("contacts")
                    .col(id())
                    .col(account())
                    .col(string("email"))
                    .col(string_null("name"))
                    .col(string_null("phone"))
                    .col(string_null("document"))
                    .col(big_integer("data_at").default(0))
                    .col(ms("created_at"))
                    .col(ms("updated_at"))
                    .foreign_key(&mut fk("contacts", "account_id", "accounts"))
                    .take(),
            )
            .await?;
        index(
            manager,
            "contacts",
            "ux_contacts_account_email",
            &["account_id", "email"],
            true,
        )
        .await?;
        index(
            manager,
            "contacts",
            "ix_contacts_account_created",
            &["account_id", "created_at", "id"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("contact_labels")
                    .col(string("contact_id"))
                    .col(string("label_id"))
                    .col(account())
                    .col(ms("created_at"))
                    .primary_key(Index::create().col("contact_id").col("label_id"))
                    .foreign_key(&mut fk("contact_labels", "contact_id", "contacts"))
                    .foreign_key(&mut fk("contact_labels", "label_id", "labels"))
                    .take(),
            )
            .await?;
        index(
            manager,
            "contact_labels",
            "ix_contact_labels_label",
            &["label_id"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("deals")
                    .col(id())
                    .col(account())
                    .col(string("group_id"))
                    .col(string("origin_id"))
                    .col(string("contact_id"))
                    .col(string_null("product_id"))
                    .col(string("deal_key"))
                    .col(string_null("open_key"))
                    .col(string("status"))
                    .col(flag("paid", false))
                    .col(string_null("owner_id"))
                    .col(double_null("value"))
                    .col(string_null("currency"))
                    .col(text_null("lost_reason"))
                    .col(ms("created_at"))
                    .col(ms_null("closed_at"))
                    .col(ms("last_event_at"))
                    .col(ms("updated_at"))
                    .foreign_key(&mut fk("deals", "group_id", "groups"))
                    .foreign_key(&mut fk("deals", "contact_id", "contacts"))
                    .take(),
            )
            .await?;
        // NULLs are distinct in unique indexes on both backends: only open deals collide.
        index(manager, "deals", "ux_deals_open_key", &["open_key"], true).await?;
        index(manager, "deals", "ix_deals_key", &["deal_key"], false).await?;
        index(manager, "deals", "ix_deals_contact", &["contact_id"], false).await?;
        index(
            manager,
            "deals",
            "ix_deals_group_status",
            &["account_id", "group_id", "status", "created_at", "id"],
            false,
        )
        .await?;
        index(
            manager,
            "deals",
            "ix_deals_account_created",
            &["account_id", "created_at", "id"],
            false,
        )
        .await?;
        index(
            manager,
            "deals",
            "ix_deals_origin_status",
            &["origin_id", "status"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("deal_refs")
                    .col(string("deal_id"))
                    .col(string("deal_key"))
                    .col(string("reference"))
                    .col(account())
                    .primary_key(Index::create().col("deal_id").col("reference"))
                    .foreign_key(&mut fk("deal_refs", "deal_id", "deals"))
                    .take(),
            )
            .await?;
        index(
            manager,
            "deal_refs",
            "ix_deal_refs_key_ref",
            &["deal_key", "reference"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("webhook_deliveries")
                    .col(id())
                    .col(account())
                    .col(string("integration_id"))
                    .col(string_null("event_id"))
                    .col(string_null("dedup_event_id"))
                    .col(string_null("event"))
                    .col(string("status"))
                    .col(text_null("reason"))
                    .col(integer("attempts").default(0))
                    .col(text("payload"))
                    .col(string("payload_sha256"))
                    .col(flag("body_differs", false))
                    .col(ms("received_at"))
                    .col(ms_null("processed_at"))
                    .col(string_null("job_id"))
                    .col(ms_null("enqueued_at"))
                    .foreign_key(&mut fk(
                        "webhook_deliveries",
                        "integration_id",
                        "integrations",
                    ))
                    .take(),
            )
            .await?;
        index(
            manager,
            "webhook_deliveries",
            "ux_deliveries_integration_event",
            &["integration_id", "dedup_event_id"],
            true,
        )
        .await?;
        index(
            manager,
            "webhook_deliveries",
            "ix_deliveries_integration_received",
            &["integration_id", "received_at", "id"],
            false,
        )
        .await?;
        index(
            manager,
            "webhook_deliveries",
            "ix_deliveries_integration_status",
            &["integration_id", "status", "received_at"],
            false,
        )
        .await?;
        index(
            manager,
            "webhook_deliveries",
            "ix_deliveries_status",
            &["status", "received_at"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("deal_events")
                    .col(id())
                    .col(account())
                    .col(string("group_id"))
                    .col(string("contact_id"))
                    .col(string("deal_key"))
                    .col(string("dedup_id"))
                    .col(string_null("sale_key"))
                    .col(string("event"))
                    .col(string("source"))
                    .col(ms("occurred_at"))
                    .col(text("data"))
                    .col(string_null("delivery_id"))
                    .col(string_null("import_run_id"))
                    .col(string_null("deal_id"))
                    .col(string_null("effect"))
                    .col(text_null("description"))
                    .col(ms("recorded_at"))
                    .foreign_key(&mut fk("deal_events", "contact_id", "contacts"))
                    .take(),
            )
            .await?;
        index(
            manager,
            "deal_events",
            "ux_deal_events_key_dedup",
            &["deal_key", "dedup_id"],
            true,
        )
        .await?;
        index(
            manager,
            "deal_events",
            "ix_deal_events_sale",
            &["deal_key", "sale_key"],
            false,
        )
        .await?;
        index(
            manager,
            "deal_events",
            "ix_deal_events_deal",
            &["deal_id", "occurred_at"],
            false,
        )
        .await?;
        index(
            manager,
            "deal_events",
            "ix_deal_events_contact",
            &["contact_id", "occurred_at"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("import_runs")
                    .col(id())
                    .col(account())
                    .col(string("integration_id"))
                    .col(ms("range_from"))
                    .col(ms("range_to"))
                    .col(text("events"))
                    .col(text("hotmart_product_ids"))
                    .col(string_null("label"))
                    .col(string("status"))
                    .col(counter("windows_total"))
                    .col(counter("windows_done"))
                    .col(counter("sales_seen"))
                    .col(counter("deals_created"))
                    .col(counter("deals_updated"))
                    .col(counter("skipped"))
                    .col(counter("failed_sales"))
                    .col(text_null("error"))
                    .col(ms("created_at"))
                    .col(ms_null("finished_at"))
                    .foreign_key(&mut fk("import_runs", "integration_id", "integrations"))
                    .take(),
            )
            .await?;
        index(
            manager,
            "import_runs",
            "ix_import_runs_integration",
            &["integration_id", "created_at"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("import_windows")
                    .col(id())
                    .col(account())
                    .col(string("run_id"))
                    .col(ms("range_from"))
                    .col(ms("range_to"))
                    .col(string("status"))
                    .col(string_null("cursor_status"))
                    .col(text_null("page_token"))
                    .col(integer("attempts").default(0))
                    .col(text_null("error"))
                    .col(ms("updated_at"))
                    .foreign_key(&mut fk("import_windows", "run_id", "import_runs"))
                    .take(),
            )
            .await?;
        index(
            manager,
            "import_windows",
            "ix_import_windows_run",
            &["run_id", "status"],
            false,
        )
        .await?;

        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "import_windows",
            "import_runs",
            "deal_events",
            "webhook_deliveries",
            "deal_refs",
            "deals",
            "contact_labels",
            "contacts",
            "product_variations",
            "products",
            "origin_assignees",
            "origins",
            "group_viewers",
            "groups",
            "integrations",
            "labels",
            "users",
            "accounts",
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().take())
                .await?;
        }
        Ok(())
    }
}
