//! The domain of checkout-crm: tables, and the services that hold every business rule.
//!
//! Services are plain `async fn`s over `&impl ConnectionTrait` taking the caller's
//! [`Caller`], so the same code runs inside or outside a transaction and every read is
//! scoped to the caller's account through [`scope`].

pub mod activities;
pub mod api_limits;
pub mod audit;
pub mod caller;
pub mod contacts;
pub mod credentials;
pub mod database;
pub mod deals;
pub mod deliveries;
pub mod eduzz;
pub mod engine;
pub mod error;
pub mod exports;
pub mod groups;
pub mod health;
pub mod hotmart;
pub mod hotmart_event;
pub mod imports;
pub mod integrations;
pub mod kiwify;
pub mod labels;
pub mod money;
pub mod origins;
pub mod outbound;
pub mod page;
pub mod platform;
pub mod privacy;
pub mod products;
pub mod reconciliation;
pub mod reports;
pub mod sale;
pub mod scope;
pub mod secrets;
pub mod sign_in;
pub mod simulation;
pub mod stages;
pub mod stamps;
pub mod tables;
pub mod tenants;
pub mod throttle;
pub mod users;
pub mod values;
pub mod whatsapp;
pub mod work;

pub use caller::{Caller, Role};
pub use error::{DomainError, DomainResult};
pub use hotmart_event::HotmartEvent;
pub use sale::EventClass;
pub use tables::enums::DealStatus;

/// Milliseconds since the Unix epoch: the one time representation in the database.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A new opaque, time-ordered id.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod stored_names {
    use sea_orm::{ActiveEnum, Iterable};

    use crate::{
        Role,
        deliveries::DeliveryStatus,
        engine::{apply::EventSource, fold::Effect},
        hotmart_event::HotmartEvent,
        imports::{ImportStatus, WindowStatus},
        integrations::IntegrationStatus,
        tables::enums::{ActivityKind, CheckoutEvent, DealScope, DealStatus},
    };

    /// The names the API and the code use are the ones stored.
    #[test]
    fn as_str_is_the_stored_value() {
        fn check<E: ActiveEnum<Value = String> + Iterable + Copy>(as_str: fn(E) -> &'static str) {
            for value in E::iter() {
                assert_eq!(as_str(value), value.to_value());
            }
        }
        check(HotmartEvent::as_str);
        check(CheckoutEvent::as_str);
        check(DealScope::as_str);
        check(ActivityKind::as_str);
        check(DealStatus::as_str);
        check(Effect::as_str);
        check(DeliveryStatus::as_str);
        check(ImportStatus::as_str);
        check(IntegrationStatus::as_str);
        check(Role::as_str);
        check(EventSource::as_str);
        check(WindowStatus::as_str);
    }
}
