//! A lenient parser for Hotmart webhook v2 deliveries.
//!
//! Only the envelope (`id`, `event`) is required. Every other field may be missing or of an
//! unexpected type (real, anonymised deliveries hold strings where objects belong); such a
//! field is treated as missing instead of failing the whole delivery.

use serde_json::Value;

pub use super::json::{at, text};

use crate::{HotmartEvent, sale::phone};

/// Hotmart's test events use product id `0` (and `"00000"`): never a real product.
pub fn is_test_product_id(id: &str) -> bool {
    !id.is_empty() && id.chars().all(|c| c == '0')
}

/// Limits that make a body malformed.
pub const MAX_EVENT_ID_LEN: usize = 128;
pub const MAX_EVENT_NAME_LEN: usize = 128;
pub const MAX_DEPTH: usize = 32;

/// Transactions used by Hotmart's "send test" button.
const TEST_TRANSACTIONS: [&str; 2] = ["HP16015479281022", "HP1121336654889"];

/// Why a body cannot be accepted as a delivery at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("body is not valid JSON: {0}")]
    NotJson(String),
    #[error("body must be a JSON object")]
    NotAnObject,
    #[error("missing `id`")]
    MissingId,
    #[error("`id` is longer than {MAX_EVENT_ID_LEN} characters")]
    IdTooLong,
    #[error("missing `event`")]
    MissingEvent,
    #[error("`event` is longer than {MAX_EVENT_NAME_LEN} characters")]
    EventTooLong,
    #[error("JSON nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// What the webhook endpoint needs to route a delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub id: String,
    pub event_name: String,
    pub event: Option<HotmartEvent>,
    pub product_id: Option<String>,
    pub is_test: bool,
    /// The `hottok` field of the body, when present.
    pub body_hottok: Option<String>,
}

fn depth(value: &Value) -> usize {
    // Iterative: a hostile body must not overflow the stack here either.
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

/// Parses a body into JSON and checks the envelope.
pub fn parse_body(body: &[u8]) -> Result<(Value, Envelope), Malformed> {
    let value: Value =
        serde_json::from_slice(body).map_err(|err| Malformed::NotJson(err.to_string()))?;
    let envelope = envelope(&value)?;
    Ok((value, envelope))
}

pub fn envelope(value: &Value) -> Result<Envelope, Malformed> {
    let Value::Object(map) = value else {
        return Err(Malformed::NotAnObject);
    };
    if depth(value) > MAX_DEPTH {
        return Err(Malformed::TooDeep);
    }
    let id = map.get("id").and_then(text).ok_or(Malformed::MissingId)?;
    if id.chars().count() > MAX_EVENT_ID_LEN {
        return Err(Malformed::IdTooLong);
    }
    let event_name = map
        .get("event")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(Malformed::MissingEvent)?;
    if event_name.chars().count() > MAX_EVENT_NAME_LEN {
        return Err(Malformed::EventTooLong);
    }
    let product_id = product_id(value);
    let transaction = at(value, &["data", "purchase", "transaction"]).and_then(text);
    let is_test = product_id.as_deref().is_some_and(is_test_product_id)
        || transaction
            .as_deref()
            .is_some_and(|t| TEST_TRANSACTIONS.contains(&t));
    Ok(Envelope {
        id,
        event: HotmartEvent::parse(event_name),
        event_name: event_name.to_owned(),
        product_id,
        is_test,
        body_hottok: map.get("hottok").and_then(text),
    })
}

/// The contact data of a delivery.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactData {
    pub email: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub document: Option<String>,
}

/// Everything the deal engine uses from a delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct HotmartPayload {
    pub envelope: Envelope,
    /// Event time in epoch ms (`creation_date`, or `creationDate`); `None` when absent.
    pub occurred_at: Option<i64>,
    pub product_name: Option<String>,
    pub contact: ContactData,
    pub transaction: Option<String>,
    pub subscriber_code: Option<String>,
    /// The price, when usable as a deal value (see [`crate::money::price`]).
    pub price_cents: Option<i64>,
    /// Why a price that was present is not used.
    pub price_problem: Option<String>,
    pub currency: Option<String>,
    pub refusal_reason: Option<String>,
    pub payment_type: Option<String>,
    /// Payment, subscription and attribution, as far as the delivery tells them.
    pub details: super::details::DealDetails,
}

impl HotmartPayload {
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
}

pub fn payload(value: &Value) -> Result<HotmartPayload, Malformed> {
    let envelope = envelope(value)?;
    let occurred_at = ["creation_date", "creationDate"]
        .iter()
        .find_map(|key| value.get(*key).and_then(epoch_ms));
    let data = value.get("data").filter(|d| d.is_object());
    let field = |path: &[&str]| data.and_then(|d| at(d, path));
    let product_name = field(&["product", "name"])
        .or_else(|| field(&["subscription", "product", "name"]))
        .and_then(text);
    let person = ["buyer", "subscriber", "user"]
        .iter()
        .filter_map(|key| field(&[key]).filter(|v| v.is_object()))
        .find(|p| p.get("email").and_then(text).is_some())
        .or_else(|| field(&["subscription", "user"]).filter(|v| v.is_object()));
    let contact = person.map(contact_data).unwrap_or_default();
    let transaction = field(&["purchase", "transaction"]).and_then(text);
    let subscriber_code = field(&["subscription", "subscriber", "code"])
        .or_else(|| field(&["subscriber", "code"]))
        .or_else(|| field(&["subscription", "subscriber_code"]))
        .and_then(text);
    let price = crate::money::price(field(&["purchase", "price", "value"]));
    let currency = field(&["purchase", "price", "currency_value"])
        .and_then(text)
        .filter(|c| c.len() == 3);
    Ok(HotmartPayload {
        envelope,
        occurred_at,
        product_name,
        contact,
        transaction,
        subscriber_code,
        price_cents: price.cents(),
        price_problem: price.problem().map(str::to_owned),
        currency,
        refusal_reason: field(&["purchase", "payment", "refusal_reason"]).and_then(text),
        payment_type: field(&["purchase", "payment", "type"]).and_then(text),
        details: data.map(super::details::of_webhook).unwrap_or_default(),
    })
}

fn contact_data(person: &Value) -> ContactData {
    let phone = match (
        person.get("checkout_phone").and_then(text),
        person.get("checkout_phone_code").and_then(text),
    ) {
        (Some(number), code) => phone::normalise(&number, code.as_deref()),
        (None, _) => match person.get("phone") {
            Some(Value::Object(parts)) => {
                // v2 subscriber phone object: {dddCell, cell} or {dddPhone, phone}.
                let ddd = parts
                    .get("dddCell")
                    .or_else(|| parts.get("dddPhone"))
                    .and_then(text);
                let num = parts
                    .get("cell")
                    .or_else(|| parts.get("phone"))
                    .and_then(text);
                num.and_then(|n| phone::normalise(&format!("{}{n}", ddd.unwrap_or_default()), None))
            }
            Some(other) => text(other).and_then(|p| phone::normalise(&p, None)),
            None => None,
        },
    };
    ContactData {
        email: person.get("email").and_then(text),
        name: person.get("name").and_then(text),
        phone,
        document: person.get("document").and_then(text),
    }
}

fn product_id(value: &Value) -> Option<String> {
    at(value, &["data", "product", "id"])
        .or_else(|| at(value, &["data", "subscription", "product", "id"]))
        .and_then(text)
}

fn epoch_ms(value: &Value) -> Option<i64> {
    let ms = match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }?;
    // Between 2000 and 2100: anything else is not an epoch-ms timestamp.
    (946_684_800_000..4_102_444_800_000)
        .contains(&ms)
        .then_some(ms)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn envelope_needs_id_and_event_within_bounds() {
        assert_eq!(envelope(&json!([])).unwrap_err(), Malformed::NotAnObject);
        assert_eq!(
            envelope(&json!({"event": "X"})).unwrap_err(),
            Malformed::MissingId
        );
        assert_eq!(
            envelope(&json!({"id": "a"})).unwrap_err(),
            Malformed::MissingEvent
        );
        assert_eq!(
            envelope(&json!({"id": "x".repeat(129), "event": "X"})).unwrap_err(),
            Malformed::IdTooLong
        );
        let mut deep = json!(1);
        for _ in 0..40 {
            deep = json!({"a": deep});
        }
        assert_eq!(
            envelope(&json!({"id": "a", "event": "X", "data": deep})).unwrap_err(),
            Malformed::TooDeep
        );
        let ok = envelope(&json!({"id": 42, "event": "PURCHASE_APPROVED"})).unwrap();
        assert_eq!(ok.id, "42");
        assert_eq!(ok.event, Some(HotmartEvent::PurchaseApproved));
    }

    #[test]
    fn test_events_are_recognised() {
        let by_product =
            json!({"id": "a", "event": "PURCHASE_APPROVED", "data": {"product": {"id": 0}}});
        assert!(envelope(&by_product).unwrap().is_test);
        let club = json!({"id": "a", "event": "CLUB_MODULE_COMPLETED", "data": {"product": {"id": "00000"}}});
        assert!(envelope(&club).unwrap().is_test);
        let by_tx = json!({"id": "a", "event": "PURCHASE_APPROVED", "data": {"product": {"id": 5}, "purchase": {"transaction": "HP16015479281022"}}});
        assert!(envelope(&by_tx).unwrap().is_test);
        let real =
            json!({"id": "a", "event": "PURCHASE_APPROVED", "data": {"product": {"id": 1234567}}});
        assert!(!envelope(&real).unwrap().is_test);
    }

    #[test]
    fn unexpected_types_are_treated_as_missing() {
        let value = json!({
            "id": "a", "event": "PURCHASE_APPROVED", "creation_date": "not a date",
            "data": {
                "product": {"id": 7, "name": ["x"]},
                "buyer": {"email": "Ana@Example.com", "name": 5, "address": "192.168.0.1", "checkout_phone": "+55 11 9a4f5-d5c1"},
                "subscription": "192.168.4.57",
                "purchase": {"transaction": "HP1", "price": {"value": "97.5", "currency_value": "BRL"}}
            }
        });
        let parsed = payload(&value).unwrap();
        assert_eq!(parsed.occurred_at, None);
        assert_eq!(parsed.product_name, None);
        assert_eq!(parsed.contact.email.as_deref(), Some("Ana@Example.com"));
        assert_eq!(parsed.contact.name.as_deref(), Some("5"));
        assert_eq!(
            parsed.contact.phone, None,
            "letters in the phone make it unusable"
        );
        assert_eq!(parsed.subscriber_code, None);
        assert_eq!(parsed.price_cents, Some(9750));
        assert_eq!(parsed.references(), vec!["tx:HP1".to_owned()]);
    }

    #[test]
    fn camel_case_creation_date_and_person_sources() {
        let club = json!({"id": "a", "event": "CLUB_FIRST_ACCESS", "creationDate": 1745952631331i64,
            "data": {"product": {"id": 1}, "user": {"email": "u@x.com", "name": "U"}}});
        let parsed = payload(&club).unwrap();
        assert_eq!(parsed.occurred_at, Some(1745952631331));
        assert_eq!(parsed.contact.email.as_deref(), Some("u@x.com"));
        let cancel = json!({"id": "b", "event": "SUBSCRIPTION_CANCELLATION", "creation_date": 1745948018771i64,
            "data": {"subscriber": {"code": "ABCD1234", "email": "s@x.com"}, "product": {"id": 1}}});
        let parsed = payload(&cancel).unwrap();
        assert_eq!(parsed.contact.email.as_deref(), Some("s@x.com"));
        assert_eq!(parsed.references(), vec!["sub:ABCD1234".to_owned()]);
        let cart = json!({"id": "c", "event": "PURCHASE_OUT_OF_SHOPPING_CART",
            "data": {"product": {"id": 1}, "buyer": {"email": "c@x.com", "phone": "+55 11 99999-0000"}}});
        assert_eq!(
            payload(&cart).unwrap().contact.phone.as_deref(),
            Some("+5511999990000")
        );
    }
}
