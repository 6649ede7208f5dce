//! The platform-neutral side of a sale: the sale event the engine consumes, the checkout
//! events it folds and their classes, how an event's time is known, the deal details and phone numbers.

pub mod checkout_event;
pub mod details;
pub mod event;
pub mod json;
pub mod phone;
pub mod platform;

pub use crate::tables::enums::CheckoutEvent;
pub use checkout_event::EventClass;

/// What kind of sale event: one that moves deals, or one that only goes on a timeline
/// (a plan change, a members-area access, a renewal's billing date…).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaleKind {
    Checkout(CheckoutEvent),
    Info,
}

impl SaleKind {
    pub fn class(self) -> EventClass {
        match self {
            SaleKind::Checkout(event) => event.class(),
            SaleKind::Info => EventClass::Info,
        }
    }

    /// The stored form (`deal_events.kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            SaleKind::Checkout(event) => event.as_str(),
            SaleKind::Info => "INFO",
        }
    }
}

/// How an event's time is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dating {
    /// The platform dated it.
    Exact,
    /// A status an import observed at `occurred_at` with no date of its own: it sorts
    /// after every event already known of its sale, so it never goes back in time.
    Observed,
}
