//! Eduzz's webhook v3: the `x-signature` check over the raw body, the envelope
//! `{id, event, data, sentDate}`, and its MyEduzz invoice, contract and cart-abandonment
//! events mapped to neutral ones. An invoice may list several products: each gets its own
//! event. Money comes in the major unit (reais, with decimals).

use hmac::{Hmac, Mac};
use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::{
    sale::platform::Platform,
    sale::{
        CheckoutEvent, SaleKind,
        details::{Attribution, DealDetails, Payment},
        event::{
            ContactData, Envelope, MAX_EVENT_ID_LEN, MAX_EVENT_NAME_LEN, Malformed, SaleEvent,
        },
        json::{at, sao_paulo_time, text},
        phone,
    },
};

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-signature";

/// The event Eduzz sends when a configuration is saved.
pub const PING: &str = "ping";

/// `x-signature` is HMAC-SHA256 of the raw body keyed with the signing key, in hex.
pub fn signature_is_valid(key: &[u8], body: &[u8], presented: &str) -> bool {
    let expected = sign(key, body);
    let presented = presented.trim().to_ascii_lowercase();
    expected.as_bytes().ct_eq(presented.as_bytes()).into()
}

/// The signature Eduzz would send for `body`.
pub fn sign(key: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What an event is to the CRM (`data` decides for contract updates); `None` for an event
/// this adapter does not know.
pub fn kind_of(event: &str, data: Option<&Value>) -> Option<SaleKind> {
    use CheckoutEvent::*;
    let checkout = |e| Some(SaleKind::Checkout(e));
    match event {
        "sun.cart_abandonment" => checkout(CartAbandoned),
        "myeduzz.invoice_opened" | "myeduzz.invoice_waiting_payment" => checkout(PaymentPending),
        "myeduzz.invoice_refused" => checkout(PaymentRefused),
        "myeduzz.invoice_expired" | "myeduzz.invoice_canceled" => checkout(PaymentExpired),
        "myeduzz.invoice_paid" => checkout(PurchaseApproved),
        "myeduzz.invoice_waiting_refund" => checkout(RefundRequested),
        "myeduzz.invoice_refunded" => checkout(Refunded),
        "myeduzz.invoice_chargeback" => checkout(Chargeback),
        "myeduzz.invoice_overdue" => checkout(PaymentOverdue),
        "myeduzz.contract_updated" if is_cancelled(data) => checkout(SubscriptionCanceled),
        "myeduzz.contract_updated"
        | "myeduzz.contract_created"
        | "myeduzz.invoice_scheduled"
        | "myeduzz.invoice_negotiated"
        | "myeduzz.invoice_recovering"
        | "myeduzz.commission_processed"
        | PING => Some(SaleKind::Info),
        _ => None,
    }
}

fn is_cancelled(data: Option<&Value>) -> bool {
    data.and_then(|d| d.get("status"))
        .and_then(Value::as_str)
        .is_some_and(|s| s.to_ascii_lowercase().starts_with("cancel"))
}

/// The routing view: the event id (the dedup key), the event, the products.
pub fn envelope(value: &Value) -> Result<Envelope, Malformed> {
    let Some(name) = value
        .get("event")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
    else {
        return Err(foreign_or(value, Malformed::Missing("event")));
    };
    if name.chars().count() > MAX_EVENT_NAME_LEN {
        return Err(Malformed::TooLong("event"));
    }
    if value.get("hottok").is_some() || value.get("creation_date").is_some() {
        return Err(foreign_or(value, Malformed::Missing("sentDate")));
    }
    let id = value
        .get("id")
        .and_then(text)
        .ok_or(Malformed::Missing("id"))?;
    if id.chars().count() > MAX_EVENT_ID_LEN {
        return Err(Malformed::TooLong("id"));
    }
    let data = value.get("data").filter(|d| d.is_object());
    Ok(Envelope {
        id,
        kind: kind_of(name, data),
        event_name: name.to_owned(),
        product_ids: data.map(product_ids).unwrap_or_default(),
        is_test: name == PING,
        body_hottok: None,
    })
}

fn foreign_or(value: &Value, otherwise: Malformed) -> Malformed {
    let hint = if value.get("webhook_event_type").is_some() || value.get("order").is_some() {
        "it looks like Kiwify's; paste this integration's URL only into Eduzz"
    } else if value.get("hottok").is_some() || value.get("creation_date").is_some() {
        "it looks like Hotmart's; paste this integration's URL only into Eduzz"
    } else {
        return otherwise;
    };
    Malformed::WrongPlatform {
        expected: "Eduzz",
        hint,
    }
}

/// The products a `data` names: the invoice's items, a contract's product, the cart's
/// `productId` list.
fn product_ids(data: &Value) -> Vec<String> {
    let mut ids: Vec<String> = data
        .get("items")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.get("productId").and_then(text))
                .collect()
        })
        .unwrap_or_default();
    match data.get("productId") {
        Some(Value::Array(list)) => ids.extend(list.iter().filter_map(text)),
        Some(one) => ids.extend(text(one)),
        None => {}
    }
    ids.extend(at(data, &["product", "id"]).and_then(text));
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(id.clone()));
    ids
}

/// The delivery's sale events: one per product it names (none for a `ping`).
pub fn sale_events(value: &Value) -> Result<Vec<SaleEvent>, Malformed> {
    let envelope = envelope(value)?;
    if envelope.is_test {
        return Ok(Vec::new());
    }
    let empty = Value::Object(Default::default());
    let data = value
        .get("data")
        .filter(|d| d.is_object())
        .unwrap_or(&empty);
    let base = base_event(value, data, &envelope);
    let items: Vec<&Value> = data
        .get("items")
        .and_then(Value::as_array)
        .map(|i| i.iter().collect())
        .unwrap_or_default();
    let several = envelope.product_ids.len() > 1;
    Ok(envelope
        .product_ids
        .iter()
        .map(|product| {
            let mut sale = base.clone();
            sale.product_id = Some(product.clone());
            let item = items
                .iter()
                .find(|i| i.get("productId").and_then(text).as_deref() == Some(product));
            sale.product_name = item
                .and_then(|i| value_of(i.get("name")))
                .or_else(|| value_of(at(data, &["product", "name"])));
            if several && let Some(item) = item {
                // Each product of a several-product invoice is its own deal, at its price.
                let price = crate::money::price(
                    at(item, &["price", "value"]).or_else(|| item.get("price")),
                );
                sale.price_cents = price.cents();
                sale.price_problem = price.problem().map(str::to_owned);
            }
            sale
        })
        .collect())
}

/// What every product's event of a delivery shares: the buyer, the sale or contract, the
/// invoice's price and details.
fn base_event(value: &Value, data: &Value, envelope: &Envelope) -> SaleEvent {
    let kind = envelope.kind.unwrap_or(SaleKind::Info);
    let mut base = SaleEvent::new(Platform::Eduzz, &envelope.event_name, kind);
    base.occurred_at = value.get("sentDate").and_then(sao_paulo_time);
    base.buyer = buyer(data);
    let cart = envelope.event_name == "sun.cart_abandonment";
    let contract = envelope.event_name.starts_with("myeduzz.contract_");
    let id = value_of(data.get("id"));
    base.sale_id = match (cart, contract) {
        (true, _) => id.clone().map(|id| format!("cart:{id}")),
        (_, true) => None,
        _ => id.clone(),
    };
    base.subscription_id = if contract {
        id
    } else {
        value_of(data.get("contractId")).or_else(|| value_of(at(data, &["contract", "id"])))
    };
    let price = crate::money::price(at(data, &["price", "value"]));
    base.price_cents = price.cents();
    base.price_problem = price.problem().map(str::to_owned);
    base.currency = value_of(at(data, &["price", "currency"])).filter(|c| c.len() == 3);
    base.details = details(data, cart);
    base
}

fn value_of(v: Option<&Value>) -> Option<String> {
    v.and_then(text).filter(|s| s.chars().count() <= 2048)
}

fn buyer(data: &Value) -> ContactData {
    let person = ["buyer", "customer", "student"]
        .iter()
        .filter_map(|k| data.get(*k).filter(|p| p.is_object()))
        .find(|p| p.get("email").and_then(text).is_some());
    let Some(person) = person else {
        return ContactData::default();
    };
    let field = |k: &str| value_of(person.get(k));
    ContactData {
        email: field("email"),
        name: field("name"),
        phone: ["cellphone", "phone", "phone2"]
            .iter()
            .find_map(|k| field(k).and_then(|p| phone::normalise(&p, None))),
        document: field("document"),
    }
}

fn details(data: &Value, cart: bool) -> DealDetails {
    let payment = Payment {
        method: value_of(data.get("paymentMethod")),
        installments: data.get("installments").and_then(Value::as_i64),
        billet_url: value_of(data.get("bankslipUrl"))
            .or_else(|| value_of(at(data, &["bankslip", "url"]))),
        billet_barcode: value_of(at(data, &["bankslip", "barcode"])),
        pix_code: value_of(at(data, &["pix", "code"])),
        checkout_url: if cart {
            value_of(data.get("saleRecoveryUrl"))
        } else {
            value_of(data.get("checkoutUrl"))
        },
        ..Payment::default()
    };
    let utm = |k: &str| value_of(at(data, &["utm", k]));
    let attribution = Attribution {
        affiliate_code: value_of(at(data, &["affiliate", "id"])),
        affiliate_name: value_of(at(data, &["affiliate", "name"])),
        src: utm("source"),
        sck: utm("campaign"),
        xcod: utm("content"),
        parent_transaction: None,
    };
    DealDetails {
        payment: (payment != Payment::default()).then_some(payment),
        subscription: None,
        attribution: (attribution != Attribution::default()).then_some(attribution),
        product_name: None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_the_raw_bytes() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let body = br#"{"id":"e1"}"#;
        assert!(signature_is_valid(b"k", body, &sign(b"k", body)));
        assert!(!signature_is_valid(
            b"k",
            br#"{"id": "e1"}"#,
            &sign(b"k", body)
        ));
        assert!(!signature_is_valid(b"other", body, &sign(b"k", body)));
    }

    #[test]
    fn an_invoice_of_several_products_is_one_event_per_product() {
        let body = json!({"id": "ev1", "event": "myeduzz.invoice_paid", "sentDate": "2026-03-10T17:05:00.000Z",
            "data": {"id": 991, "status": "paid", "buyer": {"email": "a@x.com", "name": "Ana", "cellphone": "11988887777"},
                "price": {"value": 297.9, "currency": "BRL"},
                "items": [{"productId": 11, "name": "Curso", "price": {"value": 197.9}},
                          {"productId": 12, "name": "Bônus", "price": {"value": 100}}]}});
        let events = sale_events(&body).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].product_id.as_deref(), Some("11"));
        assert_eq!(events[0].price_cents, Some(19790));
        assert_eq!(events[1].price_cents, Some(10000));
        assert_eq!(events[0].buyer.phone.as_deref(), Some("+5511988887777"));
        assert_eq!(events[0].references(), vec!["tx:eduzz:991".to_owned()]);
        assert_eq!(events[0].occurred_at, Some(1_773_162_300_000));
    }

    #[test]
    fn ping_contracts_carts_and_unknown_events() {
        let ping =
            json!({"id": "p", "event": "ping", "data": {}, "sentDate": "2026-03-10T17:05:00Z"});
        assert!(envelope(&ping).unwrap().is_test);
        assert!(sale_events(&ping).unwrap().is_empty());
        let cancelled = json!({"id": "c", "event": "myeduzz.contract_updated", "data": {"id": "k1", "status": "canceled", "product": {"id": 11}}});
        assert_eq!(
            envelope(&cancelled).unwrap().kind,
            Some(SaleKind::Checkout(CheckoutEvent::SubscriptionCanceled))
        );
        let active =
            json!({"id": "c", "event": "myeduzz.contract_updated", "data": {"status": "active"}});
        assert_eq!(envelope(&active).unwrap().kind, Some(SaleKind::Info));
        let cart = json!({"id": "a", "event": "sun.cart_abandonment", "data": {"id": "z", "productId": [11],
            "customer": {"email": "b@x.com"}, "saleRecoveryUrl": "https://sun.eduzz.com/r/z"}});
        let sale = sale_events(&cart).unwrap().remove(0);
        assert_eq!(sale.kind, SaleKind::Checkout(CheckoutEvent::CartAbandoned));
        assert_eq!(
            sale.details.payment.unwrap().checkout_url.as_deref(),
            Some("https://sun.eduzz.com/r/z")
        );
        let unknown = json!({"id": "u", "event": "myeduzz.something_new", "data": {}});
        assert_eq!(envelope(&unknown).unwrap().kind, None);
        let kiwify = json!({"order_id": "o", "webhook_event_type": "order_approved"});
        assert!(matches!(
            envelope(&kiwify).unwrap_err(),
            Malformed::WrongPlatform {
                expected: "Eduzz",
                ..
            }
        ));
    }
}
