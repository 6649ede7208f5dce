//! Schema history of checkout-crm. Every migration runs unchanged on SQLite and PostgreSQL.
//!
//! Conventions: ids are opaque strings (UUIDv7 text), times are epoch milliseconds
//! (`BIGINT`), lists are JSON text. Every business table carries `account_id`, so every
//! query can be scoped to one tenant.

pub use sea_orm_migration::prelude::*;

mod m20261128_000001_create_tables;
mod m20261201_000001_money_in_cents;
mod m20261201_000002_deal_details;
mod m20261202_000001_api_limits;
mod m20261203_000001_change_stamps;
mod m20261203_000002_deliveries_without_job_ids;
mod m20261204_000001_never_miss_a_sale;
mod m20261205_000001_sign_in;
mod m20261206_000001_working_the_pipeline;
mod m20261207_000001_every_checkout;
mod m20261208_000001_sign_in_throttle;
mod m20261209_000001_exports;
mod m20261210_000001_data_rights;
mod m20261211_000001_outbound;
mod m20261212_000001_contact_search;
mod m20261213_000001_deal_rollups;
mod m20261214_000001_tombstone_index;
mod m20261214_000002_pending_messages_index;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261128_000001_create_tables::Migration),
            Box::new(m20261201_000001_money_in_cents::Migration),
            Box::new(m20261201_000002_deal_details::Migration),
            Box::new(m20261202_000001_api_limits::Migration),
            Box::new(m20261203_000001_change_stamps::Migration),
            Box::new(m20261203_000002_deliveries_without_job_ids::Migration),
            Box::new(m20261204_000001_never_miss_a_sale::Migration),
            Box::new(m20261205_000001_sign_in::Migration),
            Box::new(m20261206_000001_working_the_pipeline::Migration),
            Box::new(m20261207_000001_every_checkout::Migration),
            Box::new(m20261208_000001_sign_in_throttle::Migration),
            Box::new(m20261209_000001_exports::Migration),
            Box::new(m20261210_000001_data_rights::Migration),
            Box::new(m20261211_000001_outbound::Migration),
            Box::new(m20261212_000001_contact_search::Migration),
            Box::new(m20261213_000001_deal_rollups::Migration),
            Box::new(m20261214_000001_tombstone_index::Migration),
            Box::new(m20261214_000002_pending_messages_index::Migration),
        ]
    }
}
