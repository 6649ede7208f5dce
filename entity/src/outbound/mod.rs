//! Outbound events (see `docs/outbound.md`): the account's webhook endpoints, the outbox
//! the engine writes with every deal change ([`outbox`]), and the delivery records the
//! dispatcher keeps ([`delivery`]). Admins only; every read is scoped to the caller's
//! account.

pub mod delivery;
pub mod endpoints;
pub mod messages;

/// The event types a receiver may subscribe to (empty = all, future ones included).
pub const EVENT_TYPES: [&str; 8] = [
    "deal.created",
    "deal.moved",
    "deal.won",
    "deal.lost",
    "deal.reopened",
    "deal.owner_changed",
    "contact.created",
    "contact.erased",
];

/// The type of a message sent by `sendTestWebhook`: delivered whatever the filter.
pub const TEST_TYPE: &str = "webhook.test";

/// Message statuses.
pub const PENDING: &str = "PENDING";
pub const DELIVERED: &str = "DELIVERED";
pub const FAILED: &str = "FAILED";

/// A new message id: `msg_` and a time-ordered id (the `webhook-id` header).
pub fn new_message_id() -> String {
    format!("msg_{}", uuid::Uuid::now_v7().simple())
}

/// The body sent for a message: `{type, timestamp, data}`, serialised once (the
/// signature is made over these exact bytes).
pub fn body(event_type: &str, at_ms: i64, data: serde_json::Value) -> String {
    serde_json::json!({
        "type": event_type,
        "timestamp": iso(at_ms),
        "data": data,
    })
    .to_string()
}

/// Epoch milliseconds as RFC 3339 in UTC.
pub fn iso(at_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
