//! Kiwify's webhook: the `?signature=` check over the raw body, the two sale shapes (flat,
//! or wrapped as `{"order": …}`) and the abandoned-cart shape, mapped to neutral events.
//!
//! Kiwify sends no event id: a delivery's key is the order, the event and the order's
//! `updated_at` (a retry repeats all three; a new status changes the event or the time).
//! Money comes in integer cents; dates without a zone are São Paulo time.

use hmac::{Hmac, Mac};
use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::{
    sale::platform::Platform,
    sale::{
        CheckoutEvent, SaleKind,
        details::{Attribution, DealDetails, Payment, Subscription},
        event::{ContactData, Envelope, MAX_EVENT_ID_LEN, Malformed, SaleEvent},
        json::{at, sao_paulo_time, text},
        phone,
    },
};

/// The event name of the abandoned-cart shape (Kiwify's trigger name for it).
pub const CART_EVENT: &str = "carrinho_abandonado";

/// `signature` is HMAC-SHA1 of the raw body keyed with the webhook token, lower-case hex.
pub fn signature_is_valid(token: &[u8], body: &[u8], presented: &str) -> bool {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(token).expect("HMAC takes any key");
    mac.update(body);
    let expected = hex_lower(&mac.finalize().into_bytes());
    let presented = presented.trim().to_ascii_lowercase();
    expected.as_bytes().ct_eq(presented.as_bytes()).into()
}

/// The signature Kiwify would send for `body` (for tests and the simulator).
pub fn sign(token: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(token).expect("HMAC takes any key");
    mac.update(body);
    hex_lower(&mac.finalize().into_bytes())
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The neutral event of a `webhook_event_type` (or, without one, of an `order_status`);
/// `None` for an event Kiwify may add that this adapter does not know.
pub fn kind_of(event_type: &str) -> Option<SaleKind> {
    use CheckoutEvent::*;
    Some(SaleKind::Checkout(match event_type {
        CART_EVENT | "abandoned" => CartAbandoned,
        "billet_created" | "pix_created" | "waiting_payment" => PaymentPending,
        "order_rejected" | "refused" => PaymentRefused,
        "order_approved" | "paid" => PurchaseApproved,
        "order_refunded" | "refunded" => Refunded,
        "chargeback" | "chargedback" => Chargeback,
        "subscription_late" => PaymentOverdue,
        "subscription_canceled" => SubscriptionCanceled,
        "subscription_renewed" => return Some(SaleKind::Info),
        _ => return None,
    }))
}

/// The sale object: the body itself, or what `order` wraps.
fn order(value: &Value) -> &Value {
    match value.get("order") {
        Some(inner) if inner.is_object() => inner,
        _ => value,
    }
}

fn is_cart(order: &Value) -> bool {
    order.get("status").and_then(Value::as_str) == Some("abandoned")
        && order.get("webhook_event_type").is_none()
}

/// The event's name: `webhook_event_type`, the cart's, or the bare `order_status`.
fn event_name(order: &Value) -> Option<String> {
    if is_cart(order) {
        return Some(CART_EVENT.to_owned());
    }
    order
        .get("webhook_event_type")
        .or_else(|| order.get("order_status"))
        .and_then(text)
}

/// The routing view: key, event, product.
pub fn envelope(value: &Value) -> Result<Envelope, Malformed> {
    let order = order(value);
    let Some(name) = event_name(order) else {
        return Err(foreign_or(value, Malformed::Missing("webhook_event_type")));
    };
    let cart = is_cart(order);
    let id_field = if cart { "id" } else { "order_id" };
    let id = order
        .get(id_field)
        .and_then(text)
        .ok_or(Malformed::Missing(if cart { "id" } else { "order_id" }))?;
    let changed = order
        .get(if cart { "created_at" } else { "updated_at" })
        .and_then(text)
        .unwrap_or_default();
    let key = format!("{id}:{name}:{changed}");
    if key.chars().count() > MAX_EVENT_ID_LEN {
        return Err(Malformed::TooLong(id_field));
    }
    Ok(Envelope {
        id: key,
        kind: kind_of(&name),
        event_name: name,
        product_ids: product_id(order).into_iter().collect(),
        is_test: false,
        body_hottok: None,
    })
}

fn foreign_or(value: &Value, otherwise: Malformed) -> Malformed {
    let hint = if value.get("event").is_some() && value.get("sentDate").is_some() {
        "it looks like Eduzz's; paste this integration's URL only into Kiwify"
    } else if value.get("event").is_some() && value.get("data").is_some() {
        "it looks like Hotmart's; paste this integration's URL only into Kiwify"
    } else {
        return otherwise;
    };
    Malformed::WrongPlatform {
        expected: "Kiwify",
        hint,
    }
}

fn product_id(order: &Value) -> Option<String> {
    at(order, &["Product", "product_id"])
        .or_else(|| order.get("product_id"))
        .and_then(text)
}

/// The delivery's sale event (one per delivery).
pub fn sale_events(value: &Value) -> Result<Vec<SaleEvent>, Malformed> {
    let envelope = envelope(value)?;
    let order = order(value);
    let kind = envelope.kind.unwrap_or(SaleKind::Info);
    let mut sale = SaleEvent::new(Platform::Kiwify, &envelope.event_name, kind);
    sale.product_id = envelope.product_ids.into_iter().next();
    if is_cart(order) {
        fill_cart(&mut sale, order);
    } else {
        fill_sale(&mut sale, order);
    }
    Ok(vec![sale])
}

/// A bounded text value (codes and URLs, not prose).
fn value(v: Option<&Value>) -> Option<String> {
    v.and_then(text).filter(|s| s.chars().count() <= 2048)
}

fn fill_cart(sale: &mut SaleEvent, cart: &Value) {
    sale.product_name = value(cart.get("product_name"));
    sale.occurred_at = cart.get("created_at").and_then(sao_paulo_time);
    sale.buyer = ContactData {
        email: value(cart.get("email")),
        name: value(cart.get("name")),
        phone: value(cart.get("phone")).and_then(|p| phone::normalise(&p, None)),
        document: value(cart.get("cnpj")).or_else(|| value(cart.get("cpf"))),
    };
    sale.sale_id = value(cart.get("id")).map(|id| format!("cart:{id}"));
    let payment = Payment {
        checkout_url: value(cart.get("checkout_link")),
        ..Payment::default()
    };
    sale.details.payment = (payment != Payment::default()).then_some(payment);
}

fn fill_sale(sale: &mut SaleEvent, order: &Value) {
    let field = |path: &[&str]| at(order, path);
    sale.product_name = value(field(&["Product", "product_name"]));
    // The sale's last change; an approval or refund dated later is the event's time.
    sale.occurred_at = ["updated_at", "approved_date", "refunded_at"]
        .iter()
        .filter_map(|k| order.get(*k).and_then(sao_paulo_time))
        .max();
    let customer = order.get("Customer").filter(|c| c.is_object());
    let c = |key: &str| customer.and_then(|c| value(c.get(key)));
    sale.buyer = ContactData {
        email: c("email"),
        name: c("full_name").or_else(|| c("first_name")),
        phone: c("mobile").and_then(|p| phone::normalise(&p, None)),
        document: c("CPF").or_else(|| c("cnpj")),
    };
    sale.sale_id = value(order.get("order_id"));
    sale.subscription_id =
        value(order.get("subscription_id")).or_else(|| value(field(&["Subscription", "id"])));
    let price = cents(field(&["Commissions", "charge_amount"]));
    sale.price_cents = price.cents();
    sale.price_problem = price.problem().map(str::to_owned);
    sale.currency = value(field(&["Commissions", "currency"])).filter(|c| c.len() == 3);
    sale.details = details(order, sale.subscription_id.clone());
}

/// Kiwify's money: integer cents, as a number or a string of digits.
pub(crate) fn cents(v: Option<&Value>) -> crate::money::Price {
    use crate::money::{MAX_CENTS, Price};
    let n = match v {
        None | Some(Value::Null) => return Price::Absent,
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) if s.trim().is_empty() => return Price::Absent,
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(_) => None,
    };
    match n {
        None => Price::Refused("the amount is not a whole number of cents".into()),
        Some(c) if c < 0 => Price::Refused(format!("the amount {c} is negative")),
        Some(c) if c > MAX_CENTS => Price::Refused(format!("the amount {c} is implausibly large")),
        Some(c) => Price::Cents(c),
    }
}

fn details(order: &Value, subscription_id: Option<String>) -> DealDetails {
    let field = |path: &[&str]| at(order, path);
    let payment = Payment {
        method: value(order.get("payment_method")),
        installments: order.get("installments").and_then(Value::as_i64),
        pix_code: value(order.get("pix_code")),
        pix_expires_at: order.get("pix_expiration").and_then(sao_paulo_time),
        billet_url: value(order.get("boleto_URL")),
        billet_barcode: value(order.get("boleto_barcode")),
        refusal_reason: value(order.get("card_rejection_reason")),
        checkout_url: value(order.get("checkout_link")),
        ..Payment::default()
    };
    let subscription = subscription_id.map(|code| Subscription {
        subscriber_code: code,
        plan_name: value(field(&["Subscription", "plan", "name"])),
        recurrence_number: field(&["Subscription", "charges", "completed"])
            .and_then(Value::as_array)
            .map(|c| c.len() as i64),
        next_charge_at: field(&["Subscription", "next_payment"]).and_then(sao_paulo_time),
    });
    let affiliate = field(&["Commissions", "commissioned_stores"])
        .and_then(Value::as_array)
        .and_then(|stores| {
            stores
                .iter()
                .find(|s| s.get("type").and_then(Value::as_str) == Some("affiliate"))
        });
    let tracking = |key: &str| value(field(&["TrackingParameters", key]));
    let attribution = Attribution {
        affiliate_code: affiliate.and_then(|a| value(a.get("affiliate_id"))),
        affiliate_name: affiliate.and_then(|a| value(a.get("custom_name"))),
        src: tracking("src").or_else(|| tracking("utm_source")),
        sck: tracking("sck"),
        xcod: None,
        parent_transaction: None,
    };
    DealDetails {
        payment: (payment != Payment::default()).then_some(payment),
        subscription,
        attribution: (attribution != Attribution::default()).then_some(attribution),
        product_name: None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_signature_is_hmac_sha1_of_the_raw_bytes() {
        // RFC 2202 test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        let body = br#"{"order_id":"o1"}"#;
        let good = sign(b"tok", body);
        assert!(signature_is_valid(b"tok", body, &good));
        assert!(signature_is_valid(b"tok", body, &good.to_uppercase()));
        assert!(!signature_is_valid(b"other", body, &good));
        assert!(!signature_is_valid(b"tok", br#"{"order_id": "o1"}"#, &good));
        assert!(!signature_is_valid(b"tok", body, ""));
    }

    #[test]
    fn both_sale_shapes_and_the_cart_are_read() {
        let flat = json!({"order_id": "o1", "webhook_event_type": "order_approved", "order_status": "paid",
            "updated_at": "2026-03-10 14:05", "Product": {"product_id": "p1", "product_name": "Curso"},
            "Customer": {"email": "a@x.com", "full_name": "Ana", "mobile": "+5511988887777"},
            "Commissions": {"charge_amount": 19700, "currency": "BRL"}});
        let wrapped = json!({"order": flat.clone()});
        for body in [&flat, &wrapped] {
            let sale = sale_events(body).unwrap().remove(0);
            assert_eq!(
                sale.kind,
                SaleKind::Checkout(CheckoutEvent::PurchaseApproved)
            );
            assert_eq!(sale.product_id.as_deref(), Some("p1"));
            assert_eq!(sale.price_cents, Some(19700));
            assert_eq!(sale.occurred_at, Some(1_773_162_300_000));
            assert_eq!(sale.references(), vec!["tx:kiwify:o1".to_owned()]);
            assert_eq!(
                envelope(body).unwrap().id,
                "o1:order_approved:2026-03-10 14:05"
            );
        }
        let cart = json!({"id": "c1", "status": "abandoned", "checkout_link": "https://pay.kiwify.com.br/x",
            "email": "b@x.com", "name": "Bia", "phone": "+1 415 555 0100", "product_id": "p1",
            "created_at": "2026-03-10 14:05"});
        let sale = sale_events(&cart).unwrap().remove(0);
        assert_eq!(sale.kind, SaleKind::Checkout(CheckoutEvent::CartAbandoned));
        assert_eq!(
            sale.buyer.phone.as_deref(),
            Some("+14155550100"),
            "kept as E.164"
        );
        assert_eq!(
            sale.details.payment.unwrap().checkout_url.as_deref(),
            Some("https://pay.kiwify.com.br/x")
        );
    }

    #[test]
    fn unknown_events_bad_amounts_and_other_formats() {
        let unknown = json!({"order_id": "o1", "webhook_event_type": "order_teleported"});
        assert_eq!(envelope(&unknown).unwrap().kind, None);
        let fractional = json!({"order_id": "o1", "webhook_event_type": "order_approved",
            "Commissions": {"charge_amount": 197.5}});
        let sale = sale_events(&fractional).unwrap().remove(0);
        assert_eq!(sale.price_cents, None);
        assert!(sale.price_problem.is_some());
        let hotmart = json!({"id": "e1", "event": "PURCHASE_APPROVED", "data": {}});
        assert!(matches!(
            envelope(&hotmart).unwrap_err(),
            Malformed::WrongPlatform {
                expected: "Kiwify",
                ..
            }
        ));
        assert_eq!(
            envelope(&json!({"webhook_event_type": "order_approved"})).unwrap_err(),
            Malformed::Missing("order_id")
        );
    }
}
