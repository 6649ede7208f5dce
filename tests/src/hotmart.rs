//! Hotmart webhook v2 bodies shaped like the real deliveries, for tests.

use serde_json::{Value, json};

/// A purchase-family event (`PURCHASE_*` except the cart).
#[derive(Debug, Clone)]
pub struct Purchase<'a> {
    pub id: &'a str,
    pub event: &'a str,
    pub at: i64,
    pub email: &'a str,
    pub product: u64,
    pub transaction: &'a str,
    pub price: f64,
    pub subscriber: Option<&'a str>,
}

fn status_of(event: &str) -> &'static str {
    match event {
        "PURCHASE_BILLET_PRINTED" => "BILLET_PRINTED",
        "PURCHASE_APPROVED" => "APPROVED",
        "PURCHASE_COMPLETE" => "COMPLETED",
        "PURCHASE_CANCELED" => "CANCELED",
        "PURCHASE_REFUNDED" => "REFUNDED",
        "PURCHASE_CHARGEBACK" => "CHARGEBACK",
        "PURCHASE_PROTEST" => "DISPUTE",
        "PURCHASE_EXPIRED" => "EXPIRED",
        "PURCHASE_DELAYED" => "DELAYED",
        _ => "UNKNOWN",
    }
}

impl Purchase<'_> {
    pub fn body(&self) -> Value {
        let mut data = json!({
            "product": {"id": self.product, "ucode": "0f0e0d0c-aaaa-bbbb-cccc-123456789abc", "name": format!("Curso {}", self.product)},
            "affiliates": [{"affiliate_code": "", "name": ""}],
            "buyer": {"email": self.email, "name": "Ana Souza", "checkout_phone": "11999990000", "checkout_phone_code": "55", "document": "00000000000"},
            "purchase": {
                "transaction": self.transaction, "status": status_of(self.event), "order_date": self.at - 60_000,
                "price": {"value": self.price, "currency_value": "BRL"},
                "payment": {"type": "CREDIT_CARD", "installments_number": 1}
            }
        });
        if self.event == "PURCHASE_CANCELED" {
            data["purchase"]["payment"]["refusal_reason"] = json!("Transaction refused");
        }
        if let Some(code) = self.subscriber {
            data["subscription"] = json!({"status": "ACTIVE", "plan": {"id": 1, "name": "Mensal"}, "subscriber": {"code": code}});
        }
        json!({"id": self.id, "creation_date": self.at, "event": self.event, "version": "2.0.0", "data": data})
    }
}

/// An abandoned cart.
pub fn cart(id: &str, at: i64, email: &str, product: u64) -> Value {
    json!({"id": id, "creation_date": at, "event": "PURCHASE_OUT_OF_SHOPPING_CART", "version": "2.0.0",
           "data": {"product": {"id": product, "name": format!("Curso {product}")},
                    "buyer": {"name": "Ana Souza", "email": email, "phone": "+55 11 99999-0000"},
                    "offer": {"code": "abc123de"}, "checkout_country": {"name": "Brasil", "iso": "BR"}, "affiliate": false}})
}

/// A purchase event with the common defaults: product 1234567, R$ 97.
pub fn purchase(id: &str, event: &str, at: i64, email: &str, transaction: &str) -> Value {
    Purchase {
        id,
        event,
        at,
        email,
        product: 1_234_567,
        transaction,
        price: 97.0,
        subscriber: None,
    }
    .body()
}
