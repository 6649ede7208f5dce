//! The one event the engine consumes, whatever the checkout: built by the platform
//! adapters (`hotmart`, `kiwify`, `eduzz`) from webhooks and imports alike.

use super::platform::Platform;
use super::{CheckoutEvent, SaleKind, details::DealDetails};

/// Limits that make a body malformed, on every platform.
pub const MAX_EVENT_ID_LEN: usize = 200;
pub const MAX_EVENT_NAME_LEN: usize = 128;
pub const MAX_DEPTH: usize = 32;

/// Why a body cannot be accepted as a delivery at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("body is not valid JSON: {0}")]
    NotJson(String),
    #[error("body must be a JSON object")]
    NotAnObject,
    #[error("missing `{0}`")]
    Missing(&'static str),
    #[error("`{0}` is too long")]
    TooLong(&'static str),
    #[error("JSON nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// A body of another checkout's format: the message names the one this URL expects.
    #[error("this is not a {expected} delivery: {hint}")]
    WrongPlatform {
        expected: &'static str,
        hint: &'static str,
    },
}

/// A buyer as a checkout tells them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactData {
    pub email: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub document: Option<String>,
}

/// What the inbox needs to route a delivery before it is processed.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The delivery's deduplication key (Hotmart and Eduzz: the event id; Kiwify: order,
    /// event and `updated_at`).
    pub id: String,
    /// The platform's own event name.
    pub event_name: String,
    /// What the event is to the CRM; `None` for an event this platform's adapter does
    /// not know.
    pub kind: Option<SaleKind>,
    /// The platform's product ids the delivery names (an Eduzz invoice may name several).
    pub product_ids: Vec<String>,
    /// A platform's test delivery (Hotmart's test button, Eduzz's `ping`).
    pub is_test: bool,
    /// Hotmart: the `hottok` field of the body, when present.
    pub body_hottok: Option<String>,
}

/// One sale event, platform-neutral: all the engine sees of a delivery or an imported
/// sale.
#[derive(Debug, Clone, PartialEq)]
pub struct SaleEvent {
    pub platform: Platform,
    /// The platform's own name of the event, kept on the timeline.
    pub event_name: String,
    pub kind: SaleKind,
    /// The platform's product id.
    pub product_id: Option<String>,
    pub product_name: Option<String>,
    /// The event's time in epoch ms, when the platform dates it.
    pub occurred_at: Option<i64>,
    pub buyer: ContactData,
    /// The sale's own id at the platform (Hotmart's transaction, Kiwify's order id,
    /// Eduzz's invoice id).
    pub sale_id: Option<String>,
    /// The subscription's id at the platform.
    pub subscription_id: Option<String>,
    /// The price, when usable as a deal value (see [`crate::money::price`]).
    pub price_cents: Option<i64>,
    /// Why a price that was present is not used.
    pub price_problem: Option<String>,
    pub currency: Option<String>,
    /// Payment, subscription and attribution, as far as the platform tells them.
    pub details: DealDetails,
}

impl SaleEvent {
    /// An event with nothing known but its name and kind (adapters fill the rest).
    pub fn new(platform: Platform, event_name: &str, kind: SaleKind) -> Self {
        SaleEvent {
            platform,
            event_name: event_name.to_owned(),
            kind,
            product_id: None,
            product_name: None,
            occurred_at: None,
            buyer: ContactData::default(),
            sale_id: None,
            subscription_id: None,
            price_cents: None,
            price_problem: None,
            currency: None,
            details: DealDetails::default(),
        }
    }

    /// Sale references: what ties events of one sale (or subscription) together. Hotmart's
    /// are bare (as stored since the first release); other platforms' carry their name, so
    /// two checkouts' ids never meet.
    pub fn references(&self) -> Vec<String> {
        let scope = match self.platform {
            Platform::Hotmart => String::new(),
            other => format!("{}:", other.as_str().to_lowercase()),
        };
        let mut refs = Vec::new();
        if let Some(id) = &self.sale_id {
            refs.push(format!("tx:{scope}{id}"));
        }
        if let Some(id) = &self.subscription_id {
            refs.push(format!("sub:{scope}{id}"));
        }
        refs
    }

    /// The neutral event, for deal-moving events.
    pub fn checkout_event(&self) -> Option<CheckoutEvent> {
        match self.kind {
            SaleKind::Checkout(event) => Some(event),
            SaleKind::Info => None,
        }
    }

    /// The key that tells an imported copy of this sale's status from a live one: the
    /// sale and the event's name.
    pub fn sale_key(&self) -> Option<String> {
        self.sale_id
            .as_ref()
            .map(|id| format!("{id}:{}", self.event_name))
    }

    /// Why a price that was refused, or the refusal of a card, for the timeline.
    pub fn refusal_reason(&self) -> Option<&str> {
        self.details
            .payment
            .as_ref()
            .and_then(|p| p.refusal_reason.as_deref())
    }
}

/// The depth of a JSON value, counted without recursion (a hostile body must not overflow
/// the stack).
pub fn depth(value: &serde_json::Value) -> usize {
    use serde_json::Value;
    let mut deepest = 0;
    let mut stack = vec![(value, 1usize)];
    while let Some((value, level)) = stack.pop() {
        deepest = deepest.max(level);
        if level > MAX_DEPTH {
            break;
        }
        match value {
            Value::Array(items) => stack.extend(items.iter().map(|v| (v, level + 1))),
            Value::Object(map) => stack.extend(map.values().map(|v| (v, level + 1))),
            _ => {}
        }
    }
    deepest
}

/// Parses a body into a JSON object within the depth limit.
pub fn json_object(body: &[u8]) -> Result<serde_json::Value, Malformed> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|err| Malformed::NotJson(err.to_string()))?;
    if !value.is_object() {
        return Err(Malformed::NotAnObject);
    }
    if depth(&value) > MAX_DEPTH {
        return Err(Malformed::TooDeep);
    }
    Ok(value)
}
