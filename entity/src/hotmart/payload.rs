//! A lenient parser for Hotmart webhook v2 deliveries.
//!
//! Only the envelope (`id`, `event`) is required. Every other field may be missing or of an
//! unexpected type (real, anonymised deliveries hold strings where objects belong); such a
//! field is treated as missing instead of failing the whole delivery.

use serde_json::Value;

pub use super::json::{at, text};

pub use crate::sale::event::{ContactData, Envelope, Malformed};
use crate::{
    HotmartEvent,
    sale::platform::Platform,
    sale::{
        SaleKind,
        event::{MAX_DEPTH, MAX_EVENT_NAME_LEN, SaleEvent, depth},
        phone,
    },
};

/// Hotmart's test events use product id `0` (and `"00000"`): never a real product.
pub fn is_test_product_id(id: &str) -> bool {
    !id.is_empty() && id.chars().all(|c| c == '0')
}

/// Transactions used by Hotmart's "send test" button.
const TEST_TRANSACTIONS: [&str; 2] = ["HP16015479281022", "HP1121336654889"];

/// Hotmart's ids and names are shorter than the neutral limits.
const MAX_ID_LEN: usize = 128;

/// The routing view of a delivery: its event id and name, product, and whether it is a
/// test.
pub fn envelope(value: &Value) -> Result<Envelope, Malformed> {
    let Value::Object(map) = value else {
        return Err(Malformed::NotAnObject);
    };
    if depth(value) > MAX_DEPTH {
        return Err(Malformed::TooDeep);
    }
    let Some(id) = map.get("id").and_then(text) else {
        return Err(foreign_or(value, Malformed::Missing("id")));
    };
    if id.chars().count() > MAX_ID_LEN {
        return Err(Malformed::TooLong("id"));
    }
    let event_name = map
        .get("event")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(Malformed::Missing("event"))?;
    if event_name.chars().count() > MAX_EVENT_NAME_LEN {
        return Err(Malformed::TooLong("event"));
    }
    let product_id = product_id(value);
    let transaction = at(value, &["data", "purchase", "transaction"]).and_then(text);
    let is_test = product_id.as_deref().is_some_and(is_test_product_id)
        || transaction
            .as_deref()
            .is_some_and(|t| TEST_TRANSACTIONS.contains(&t));
    Ok(Envelope {
        id,
        kind: HotmartEvent::parse(event_name).map(HotmartEvent::kind),
        event_name: event_name.to_owned(),
        product_ids: product_id.into_iter().collect(),
        is_test,
        body_hottok: map.get("hottok").and_then(text),
    })
}

/// A body of another checkout's shape, told apart from a broken Hotmart one.
fn foreign_or(value: &Value, otherwise: Malformed) -> Malformed {
    let hint = if value.get("webhook_event_type").is_some() || value.get("order").is_some() {
        "it looks like Kiwify's; paste this integration's URL only into Hotmart"
    } else if value.get("sentDate").is_some() {
        "it looks like Eduzz's; paste this integration's URL only into Hotmart"
    } else {
        return otherwise;
    };
    Malformed::WrongPlatform {
        expected: "Hotmart",
        hint,
    }
}

/// A webhook v2 delivery as the neutral event (an unknown event name is an info event:
/// the inbox does not accept those for processing).
pub fn sale_event(value: &Value) -> Result<SaleEvent, Malformed> {
    let envelope = envelope(value)?;
    let kind = envelope.kind.unwrap_or(SaleKind::Info);
    let mut sale = SaleEvent::new(Platform::Hotmart, &envelope.event_name, kind);
    sale.product_id = envelope.product_ids.into_iter().next();
    sale.occurred_at = ["creation_date", "creationDate"]
        .iter()
        .find_map(|key| value.get(*key).and_then(epoch_ms));
    let data = value.get("data").filter(|d| d.is_object());
    let field = |path: &[&str]| data.and_then(|d| at(d, path));
    sale.product_name = field(&["product", "name"])
        .or_else(|| field(&["subscription", "product", "name"]))
        .and_then(text);
    let person = ["buyer", "subscriber", "user"]
        .iter()
        .filter_map(|key| field(&[key]).filter(|v| v.is_object()))
        .find(|p| p.get("email").and_then(text).is_some())
        .or_else(|| field(&["subscription", "user"]).filter(|v| v.is_object()));
    sale.buyer = person.map(contact_data).unwrap_or_default();
    sale.sale_id = field(&["purchase", "transaction"]).and_then(text);
    sale.subscription_id = field(&["subscription", "subscriber", "code"])
        .or_else(|| field(&["subscriber", "code"]))
        .or_else(|| field(&["subscription", "subscriber_code"]))
        .and_then(text);
    let price = crate::money::price(field(&["purchase", "price", "value"]));
    sale.price_cents = price.cents();
    sale.price_problem = price.problem().map(str::to_owned);
    sale.currency = field(&["purchase", "price", "currency_value"])
        .and_then(text)
        .filter(|c| c.len() == 3);
    sale.details = data.map(super::details::of_webhook).unwrap_or_default();
    Ok(sale)
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
            Malformed::Missing("id")
        );
        assert_eq!(
            envelope(&json!({"id": "a"})).unwrap_err(),
            Malformed::Missing("event")
        );
        assert_eq!(
            envelope(&json!({"id": "x".repeat(129), "event": "X"})).unwrap_err(),
            Malformed::TooLong("id")
        );
        let mut deep = json!(1);
        for _ in 0..40 {
            deep = json!({"a": deep});
        }
        assert_eq!(
            envelope(&json!({"id": "a", "event": "X", "data": deep})).unwrap_err(),
            Malformed::TooDeep
        );
        let kiwify = json!({"order_id": "o1", "webhook_event_type": "order_approved"});
        assert!(matches!(
            envelope(&kiwify).unwrap_err(),
            Malformed::WrongPlatform {
                expected: "Hotmart",
                ..
            }
        ));
        let ok = envelope(&json!({"id": 42, "event": "PURCHASE_APPROVED"})).unwrap();
        assert_eq!(ok.id, "42");
        assert_eq!(ok.kind, Some(HotmartEvent::PurchaseApproved.kind()));
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
        let parsed = sale_event(&value).unwrap();
        assert_eq!(parsed.occurred_at, None);
        assert_eq!(parsed.product_name, None);
        assert_eq!(parsed.buyer.email.as_deref(), Some("Ana@Example.com"));
        assert_eq!(parsed.buyer.name.as_deref(), Some("5"));
        assert_eq!(
            parsed.buyer.phone, None,
            "letters in the phone make it unusable"
        );
        assert_eq!(parsed.subscription_id, None);
        assert_eq!(parsed.price_cents, Some(9750));
        assert_eq!(parsed.references(), vec!["tx:HP1".to_owned()]);
    }

    #[test]
    fn camel_case_creation_date_and_person_sources() {
        let club = json!({"id": "a", "event": "CLUB_FIRST_ACCESS", "creationDate": 1745952631331i64,
            "data": {"product": {"id": 1}, "user": {"email": "u@x.com", "name": "U"}}});
        let parsed = sale_event(&club).unwrap();
        assert_eq!(parsed.occurred_at, Some(1745952631331));
        assert_eq!(parsed.buyer.email.as_deref(), Some("u@x.com"));
        let cancel = json!({"id": "b", "event": "SUBSCRIPTION_CANCELLATION", "creation_date": 1745948018771i64,
            "data": {"subscriber": {"code": "ABCD1234", "email": "s@x.com"}, "product": {"id": 1}}});
        let parsed = sale_event(&cancel).unwrap();
        assert_eq!(parsed.buyer.email.as_deref(), Some("s@x.com"));
        assert_eq!(parsed.references(), vec!["sub:ABCD1234".to_owned()]);
        let cart = json!({"id": "c", "event": "PURCHASE_OUT_OF_SHOPPING_CART",
            "data": {"product": {"id": 1}, "buyer": {"email": "c@x.com", "phone": "+55 11 99999-0000"}}});
        assert_eq!(
            sale_event(&cart).unwrap().buyer.phone.as_deref(),
            Some("+5511999990000")
        );
    }
}
