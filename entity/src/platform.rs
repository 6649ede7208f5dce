//! The one door to the checkouts' adapters: each platform's folder (`hotmart/`,
//! `kiwify/`, `eduzz/`) verifies, parses and maps its own format to the neutral
//! [`SaleEvent`] (see `docs/architecture.md`, "Adapters"). Adding a checkout means one
//! folder, one value of [`Platform`] and one arm in each function here.

use serde_json::Value;

use crate::sale::event::{Envelope, Malformed, SaleEvent};
pub use crate::sale::platform::Platform;

impl Platform {
    /// The routing view of a parsed body.
    pub fn envelope(self, value: &Value) -> Result<Envelope, Malformed> {
        match self {
            Platform::Hotmart => crate::hotmart::payload::envelope(value),
            Platform::Kiwify => crate::kiwify::webhook::envelope(value),
            Platform::Eduzz => crate::eduzz::webhook::envelope(value),
        }
    }

    /// Parses a raw body into JSON and its routing view.
    pub fn parse_body(self, body: &[u8]) -> Result<(Value, Envelope), Malformed> {
        let value = crate::sale::event::json_object(body)?;
        let envelope = self.envelope(&value)?;
        Ok((value, envelope))
    }

    /// The sale events of a stored delivery's body: one, or (an Eduzz invoice of several
    /// products) one per product; none for a test or an event without sale data.
    pub fn sale_events(self, value: &Value) -> Result<Vec<SaleEvent>, Malformed> {
        match self {
            Platform::Hotmart => Ok(vec![crate::hotmart::payload::sale_event(value)?]),
            Platform::Kiwify => crate::kiwify::webhook::sale_events(value),
            Platform::Eduzz => crate::eduzz::webhook::sale_events(value),
        }
    }

    /// Checks a delivery's signature over its raw bytes, in constant time.
    pub fn signature_is_valid(self, secret: &[u8], body: &[u8], presented: &str) -> bool {
        match self {
            Platform::Hotmart => false,
            Platform::Kiwify => crate::kiwify::webhook::signature_is_valid(secret, body, presented),
            Platform::Eduzz => crate::eduzz::webhook::signature_is_valid(secret, body, presented),
        }
    }
}
