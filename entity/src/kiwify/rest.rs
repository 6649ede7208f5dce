//! Kiwify's sales list (`GET /sales`, with `view_full_sale_details=true`) read into the
//! same neutral events as its webhooks: a sale's status is the event, named as the webhook
//! names it, so a sale both imported and delivered live is one event on the deal.

use serde_json::Value;

use crate::{
    HotmartEvent,
    engine::apply::Dating,
    imports::ImportedSale,
    sale::{
        CheckoutEvent, SaleKind,
        details::{Attribution, DealDetails, Payment},
        event::{ContactData, SaleEvent},
        json::{at, sao_paulo_time, text},
        phone,
        platform::Platform,
    },
};

/// Kiwify allows at most 90 days between `start_date` and `end_date`.
pub const MAX_QUERY_DAYS: i64 = 90;

/// A sale's status as the webhook event that reports it; `None` for statuses that are no
/// event the CRM follows (processing, a refund being requested…).
fn event_of(status: &str, method: Option<&str>) -> Option<(&'static str, CheckoutEvent)> {
    use CheckoutEvent::*;
    Some(match status {
        "paid" | "approved" | "authorized" => ("order_approved", PurchaseApproved),
        "waiting_payment" | "pending" if method == Some("pix") => ("pix_created", PaymentPending),
        "waiting_payment" | "pending" => ("billet_created", PaymentPending),
        "refused" => ("order_rejected", PaymentRefused),
        "refunded" => ("order_refunded", Refunded),
        "chargedback" => ("chargeback", Chargeback),
        _ => return None,
    })
}

fn value(v: Option<&Value>) -> Option<String> {
    v.and_then(text).filter(|s| s.chars().count() <= 2048)
}

/// When the sale was created (the window it belongs to).
pub fn created_at(sale: &Value) -> Option<i64> {
    sale.get("created_at").and_then(sao_paulo_time)
}

/// One sale of the list as an event, at the date of its status (approval, refund, or the
/// sale's last change); `None` when it is not an event the CRM follows or has no id.
pub fn sale_event(sale: &Value) -> Option<ImportedSale> {
    let id = value(sale.get("id"))?;
    let status = value(sale.get("status"))?;
    let method = value(sale.get("payment_method"));
    let (name, neutral) = event_of(&status, method.as_deref())?;
    let date = |k: &str| sale.get(k).and_then(sao_paulo_time);
    let occurred_at = match neutral {
        CheckoutEvent::PurchaseApproved => date("approved_date"),
        CheckoutEvent::PaymentPending => date("created_at"),
        CheckoutEvent::Refunded => date("refunded_at"),
        _ => None,
    }
    .or_else(|| date("updated_at"))
    .or_else(|| date("created_at"))?;
    let mut event = SaleEvent::new(Platform::Kiwify, name, SaleKind::Checkout(neutral));
    event.product_id = value(at(sale, &["product", "id"]));
    event.product_name = value(at(sale, &["product", "name"]));
    event.occurred_at = Some(occurred_at);
    let customer = |k: &str| value(at(sale, &["customer", k]));
    event.buyer = ContactData {
        email: customer("email"),
        name: customer("name"),
        phone: customer("mobile").and_then(|p| phone::normalise(&p, None)),
        document: customer("cpf"),
    };
    event.sale_id = Some(id.clone());
    let price = super::webhook::cents(
        at(sale, &["payment", "charge_amount"]).or_else(|| sale.get("net_amount")),
    );
    event.price_cents = price.cents();
    event.price_problem = price.problem().map(str::to_owned);
    event.currency = value(at(sale, &["payment", "charge_currency"]))
        .or_else(|| value(sale.get("currency")))
        .filter(|c| c.len() == 3);
    event.details = details(sale, method);
    Some(ImportedSale {
        event: HotmartEvent::of_neutral(neutral),
        dedup_id: format!("import:kiwify:{id}:{status}"),
        occurred_at,
        dating: Dating::Exact,
        payload: event,
    })
}

fn details(sale: &Value, method: Option<String>) -> DealDetails {
    let payment = Payment {
        method,
        installments: sale.get("installments").and_then(Value::as_i64),
        billet_url: value(sale.get("boleto_url")),
        refusal_reason: value(sale.get("card_rejection_reason")),
        ..Payment::default()
    };
    let tracking = |k: &str| value(at(sale, &["tracking", k]));
    let attribution = Attribution {
        src: tracking("src").or_else(|| tracking("utm_source")),
        sck: tracking("sck"),
        ..Attribution::default()
    };
    DealDetails {
        payment: (payment != Payment::default()).then_some(payment),
        subscription: None,
        attribution: (attribution != Attribution::default()).then_some(attribution),
        product_name: None,
    }
}

/// Whether a page of the list is the last: fewer sales than asked for, or the count
/// reached.
pub fn is_last_page(page: &Value, page_number: u64, page_size: u64) -> bool {
    let items = page["data"].as_array().map_or(0, Vec::len) as u64;
    let count = at(page, &["pagination", "count"]).and_then(Value::as_u64);
    items < page_size || count.is_some_and(|c| page_number * page_size >= c)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_listed_sale_is_the_webhook_s_event_at_its_status_date() {
        let sale = json!({"id": "o1", "status": "paid", "payment_method": "pix",
            "created_at": "2026-03-10T12:00:00.000Z", "updated_at": "2026-03-10T12:10:00.000Z",
            "approved_date": "2026-03-10T12:05:00.000Z",
            "product": {"id": "p1", "name": "Curso"}, "customer": {"email": "a@x.com", "mobile": "+5511988887777"},
            "payment": {"charge_amount": 19700, "charge_currency": "BRL"}, "net_amount": 17000});
        let imported = sale_event(&sale).unwrap();
        assert_eq!(imported.payload.event_name, "order_approved");
        assert_eq!(imported.payload.price_cents, Some(19700));
        assert_eq!(imported.occurred_at, 1_773_144_300_000);
        assert_eq!(
            imported.payload.sale_key().as_deref(),
            Some("o1:order_approved")
        );
        let waiting = json!({"id": "o2", "status": "waiting_payment", "payment_method": "pix", "created_at": "2026-03-10T12:00:00Z"});
        assert_eq!(
            sale_event(&waiting).unwrap().payload.event_name,
            "pix_created"
        );
        assert!(
            sale_event(
                &json!({"id": "o3", "status": "processing", "created_at": "2026-03-10T12:00:00Z"})
            )
            .is_none()
        );
        assert!(sale_event(&json!({"status": "paid"})).is_none());
    }

    #[test]
    fn the_last_page_is_known() {
        let full = json!({"pagination": {"count": 250}, "data": vec![json!({}); 100]});
        assert!(!is_last_page(&full, 1, 100));
        assert!(is_last_page(&full, 3, 100));
        let short = json!({"data": [{}]});
        assert!(is_last_page(&short, 1, 100));
    }
}
