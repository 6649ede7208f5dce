//! Background work: job types, their handlers, the workers that run them, and the
//! Hotmart API client; and the outbound webhook dispatcher. Jobs carry ids only; handlers are thin and call domain services.

pub mod context;
pub mod deliveries;
pub mod hotmart;
pub mod import_pages;
pub mod imports;
pub mod kiwify;
pub mod outbound;
pub mod outbound_net;
pub mod products;
pub mod queue;
pub mod standard_webhooks;
pub mod telemetry;
pub mod workers;
