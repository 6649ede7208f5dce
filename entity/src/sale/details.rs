//! What a seller acts on, whatever the platform: how the buyer pays (the Pix code to send
//! again, the boleto link, why a card was refused, the checkout link), the subscription,
//! and who brought the sale. Kept per event in the log; a deal shows, per part, that of
//! the latest of its events carrying it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installments: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupon_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pix_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pix_qr_code_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pix_expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billet_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billet_barcode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal_reason: Option<String>,
    /// The checkout (or cart-recovery) link the buyer can pay on, when the platform gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub subscriber_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrence_number: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_charge_at: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribution {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affiliate_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affiliate_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sck: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xcod: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_transaction: Option<String>,
}

/// The parts of a deal's details one event carries (each part is whole: the latest event
/// carrying a part gives all of it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<Payment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<Subscription>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<Attribution>,
    /// The product's name as the platform told it (for messages when the registered
    /// product has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
}

impl DealDetails {
    pub fn is_empty(&self) -> bool {
        *self == DealDetails::default()
    }

    /// Parts of `newer` replace the same parts of `self`.
    pub fn overlay(&mut self, newer: &DealDetails) {
        if newer.payment.is_some() {
            self.payment = newer.payment.clone();
        }
        if newer.subscription.is_some() {
            self.subscription = newer.subscription.clone();
        }
        if newer.attribution.is_some() {
            self.attribution = newer.attribution.clone();
        }
        if newer.product_name.is_some() {
            self.product_name = newer.product_name.clone();
        }
    }
}
