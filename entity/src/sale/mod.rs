//! The platform-neutral sale event: all the deal engine sees of a checkout. Each
//! platform's adapter (`hotmart/`, …) verifies, parses and maps its own formats to this;
//! nothing past the adapters knows a platform's shape (see `docs/architecture.md`, "The
//! adapter boundary").

pub mod checkout_event;
pub mod details;
pub mod phone;

pub use crate::tables::enums::{CheckoutEvent, Platform};
pub use checkout_event::EventClass;
use details::DealDetails;

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

/// The buyer as an event tells it (raw: the engine normalises the e-mail and merges).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Buyer {
    pub email: Option<String>,
    pub name: Option<String>,
    /// E.164, as the adapter normalised it.
    pub phone: Option<String>,
    pub document: Option<String>,
}

/// One sale event, whatever platform and path (webhook or import) it came by.
#[derive(Debug, Clone, PartialEq)]
pub struct SaleEvent {
    pub kind: SaleKind,
    /// The platform's own name of the event (`PURCHASE_APPROVED`, `order_approved`, …),
    /// kept on the timeline.
    pub platform_event: String,
    /// Deduplicates the event in its key's log: the platform's event id, or a key the
    /// adapter builds (an imported status, Kiwify's order + event + update time).
    pub dedup_id: String,
    /// Event time, epoch ms.
    pub occurred_at: i64,
    pub dating: Dating,
    /// The platform's product id.
    pub product_id: Option<String>,
    pub product_name: Option<String>,
    pub buyer: Buyer,
    /// The platform's order or transaction code.
    pub transaction: Option<String>,
    pub subscriber_code: Option<String>,
    /// The price in cents, when usable as a deal value.
    pub price_cents: Option<i64>,
    /// Why a price that was present is not used.
    pub price_problem: Option<String>,
    /// ISO 4217.
    pub currency: Option<String>,
    pub refusal_reason: Option<String>,
    pub details: DealDetails,
}

impl SaleEvent {
    /// Sale references: what ties events of one sale (or subscription) together.
    pub fn references(&self) -> Vec<String> {
        let mut refs = Vec::new();
        if let Some(tx) = &self.transaction {
            refs.push(format!("tx:{tx}"));
        }
        if let Some(code) = &self.subscriber_code {
            refs.push(format!("sub:{code}"));
        }
        refs
    }

    /// `{transaction}:{platform event}`: how an imported sale recognises a webhook event
    /// of the same sale.
    pub fn sale_key(&self) -> Option<String> {
        self.transaction
            .as_ref()
            .map(|tx| format!("{tx}:{}", self.platform_event))
    }
}
