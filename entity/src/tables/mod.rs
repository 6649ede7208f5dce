//! Row types, one module per table (see the migration for indexes and invariants).
//! Domain rules live in the service modules beside this folder, not here.

pub mod account;
pub mod activity;
pub mod audit_entry;
pub mod contact;
pub mod contact_label;
pub mod deal;
pub mod deal_event;
pub mod deal_ref;
pub mod enums;
pub mod export;
pub mod export_chunk;
pub mod group;
pub mod group_viewer;
pub mod import_run;
pub mod import_window;
pub mod integration;
pub mod label;
pub mod lost_reason;
pub mod origin;
pub mod origin_assignee;
pub mod outbound_attempt;
pub mod outbound_message;
pub mod product;
pub mod product_variation;
pub mod session;
pub mod stage;
pub mod user;
pub mod webhook_delivery;
pub mod webhook_endpoint;
