//! The deal details of Hotmart's formats (a webhook's `data`, a Sales History item): how
//! the buyer pays, the subscription, who brought the sale. Empty strings are absent
//! values; Hotmart's placeholder affiliate (an empty affiliate code) is no affiliate.

use serde_json::Value;

use super::json::{at, text};
pub use crate::sale::details::{Attribution, DealDetails, Payment, Subscription};

/// A bounded text value (codes and URLs, not prose: at most 2,048 characters).
fn value(v: Option<&Value>) -> Option<String> {
    v.and_then(text).filter(|s| s.chars().count() <= 2048)
}

fn integer(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An epoch-ms date between 2000 and 2100.
fn date(v: Option<&Value>) -> Option<i64> {
    integer(v).filter(|ms| (946_684_800_000..4_102_444_800_000).contains(ms))
}

/// The details of a webhook v2 delivery's `data` object.
pub fn of_webhook(data: &Value) -> DealDetails {
    let purchase = data.get("purchase").filter(|p| p.is_object());
    let p = |path: &[&str]| purchase.and_then(|p| at(p, path));
    let payment = Payment {
        method: value(p(&["payment", "type"])),
        installments: integer(p(&["payment", "installments_number"])),
        offer_code: value(p(&["offer", "code"])),
        coupon_code: value(p(&["offer", "coupon_code"])),
        pix_code: value(p(&["payment", "pix_code"])),
        pix_qr_code_url: value(p(&["payment", "pix_qrcode"])),
        pix_expires_at: date(p(&["payment", "pix_expiration_date"])),
        billet_url: value(p(&["payment", "billet_url"])),
        billet_barcode: value(p(&["payment", "billet_barcode"])),
        refusal_reason: value(p(&["payment", "refusal_reason"])),
        checkout_url: None,
    };
    let subscriber_code = value(at(data, &["subscription", "subscriber", "code"]))
        .or_else(|| value(at(data, &["subscriber", "code"])));
    let subscription = subscriber_code.map(|code| Subscription {
        subscriber_code: code,
        plan_name: value(at(data, &["subscription", "plan", "name"])),
        recurrence_number: integer(p(&["recurrence_number"])),
        next_charge_at: date(p(&["date_next_charge"])),
    });
    let affiliate = data
        .get("affiliates")
        .and_then(Value::as_array)
        .and_then(|list| {
            list.iter()
                .find(|a| value(a.get("affiliate_code")).is_some())
        });
    let attribution = Attribution {
        affiliate_code: affiliate.and_then(|a| value(a.get("affiliate_code"))),
        affiliate_name: affiliate.and_then(|a| value(a.get("name"))),
        src: value(p(&["origin", "src"])),
        sck: value(p(&["origin", "sck"])),
        xcod: value(p(&["origin", "xcod"])),
        parent_transaction: value(p(&["order_bump", "parent_purchase_transaction"])),
    };
    DealDetails {
        payment: (payment != Payment::default()).then_some(payment),
        subscription,
        attribution: (attribution != Attribution::default()).then_some(attribution),
        product_name: None,
    }
}

/// The details of a Sales History item (`purchase.payment`, `purchase.offer`,
/// `purchase.tracking`, `purchase.recurrency_number`).
pub fn of_sale(sale: &Value) -> DealDetails {
    let p = |path: &[&str]| sale.get("purchase").and_then(|p| at(p, path));
    let payment = Payment {
        method: value(p(&["payment", "type"])),
        installments: integer(p(&["payment", "installments_number"])),
        offer_code: value(p(&["offer", "code"])),
        ..Payment::default()
    };
    let attribution = Attribution {
        src: value(p(&["tracking", "source"])),
        sck: value(p(&["tracking", "source_sck"])),
        xcod: value(p(&["tracking", "external_code"])),
        ..Attribution::default()
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
    fn empty_strings_and_the_placeholder_affiliate_are_absent() {
        let data = json!({
            "purchase": {"payment": {"type": "PIX", "pix_code": "000201", "billet_url": ""},
                          "offer": {"code": "", "coupon_code": "   "},
                          "origin": {"src": "", "sck": "insta"},
                          "recurrence_number": 2, "date_next_charge": 1777464000000u64},
            "affiliates": [{"affiliate_code": "", "name": "Someone"}],
            "subscription": {"subscriber": {"code": "SUB1"}, "plan": {"name": "Mensal"}}
        });
        let details = of_webhook(&data);
        let payment = details.payment.unwrap();
        assert_eq!(payment.method.as_deref(), Some("PIX"));
        assert_eq!(payment.pix_code.as_deref(), Some("000201"));
        assert_eq!(
            (payment.billet_url, payment.offer_code, payment.coupon_code),
            (None, None, None)
        );
        let attribution = details.attribution.unwrap();
        assert_eq!(attribution.affiliate_code, None, "placeholder affiliate");
        assert_eq!(attribution.affiliate_name, None);
        assert_eq!(
            (attribution.src, attribution.sck.as_deref()),
            (None, Some("insta"))
        );
        let subscription = details.subscription.unwrap();
        assert_eq!(subscription.subscriber_code, "SUB1");
        assert_eq!(subscription.recurrence_number, Some(2));
        assert_eq!(subscription.next_charge_at, Some(1_777_464_000_000));
        assert!(of_webhook(&json!({"purchase": "x", "affiliates": "y"})).is_empty());
    }
}
