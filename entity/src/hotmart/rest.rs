//! Hotmart's REST answers beyond Sales History: the buyer of a sale from `/sales/users`
//! and subscriptions from `/subscriptions` (see `docs/import.md`).
//!
//! Sales History knows neither the buyer's phone nor the subscription a sale belongs to;
//! these two lists, read page by page next to it, complete the imported sales.

use std::collections::HashMap;

use serde_json::Value;

use super::payload::{ContactData, at, text};
use crate::{HotmartEvent, sale::details::Subscription, sale::phone};

/// The token of the next page of a REST list (`page_info.next_page_token`); `None` on the
/// last page.
pub fn next_page_token(page: &Value) -> Option<String> {
    page["page_info"]["next_page_token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// The buyer of each transaction of a `/sales/users` page: the `user` of the entry whose
/// role is `BUYER`, as contact data (phone: `cellphone`, else `phone`; the first document).
pub fn buyers(items: &[Value]) -> HashMap<String, ContactData> {
    items
        .iter()
        .filter_map(|item| {
            let transaction = item.get("transaction").and_then(text)?;
            let user = item
                .get("users")?
                .as_array()?
                .iter()
                .find(|u| u.get("role").and_then(Value::as_str) == Some("BUYER"))?
                .get("user")?;
            Some((transaction, buyer_contact(user)))
        })
        .collect()
}

fn buyer_contact(user: &Value) -> ContactData {
    let phone = ["cellphone", "phone"]
        .iter()
        .find_map(|k| user.get(*k).and_then(text))
        .and_then(|raw| phone::normalise(&raw, None));
    let document = user
        .get("documents")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|d| d.get("value").and_then(text));
    ContactData {
        email: user.get("email").and_then(text),
        name: user.get("name").and_then(text),
        phone,
        document,
    }
}

/// One subscription of `/subscriptions`.
#[derive(Debug, Clone, PartialEq)]
pub struct RestSubscription {
    pub code: String,
    pub status: String,
    /// The transaction of the purchase that started it.
    pub transaction: Option<String>,
    pub product_id: Option<String>,
    pub email: Option<String>,
    pub accession_at: Option<i64>,
    /// When it was cancelled (`cancelation_date`, else `end_accession_date`).
    pub cancelled_at: Option<i64>,
    pub next_charge_at: Option<i64>,
    pub plan_name: Option<String>,
    pub item: Value,
}

impl RestSubscription {
    pub fn of(item: &Value) -> Option<Self> {
        let date = |keys: &[&str]| keys.iter().find_map(|k| item.get(*k)?.as_i64());
        Some(RestSubscription {
            code: item.get("subscriber_code").and_then(text)?,
            status: item.get("status").and_then(text).unwrap_or_default(),
            transaction: item.get("transaction").and_then(text),
            product_id: at(item, &["product", "id"]).and_then(text),
            email: at(item, &["subscriber", "email"])
                .and_then(text)
                .map(|e| e.to_lowercase()),
            accession_at: date(&["accession_date"]),
            cancelled_at: date(&[
                "cancelation_date",
                "cancellation_date",
                "end_accession_date",
            ]),
            next_charge_at: date(&["date_next_charge"]),
            plan_name: at(item, &["plan", "name"]).and_then(text),
            item: item.clone(),
        })
    }

    /// The event its status stands for: a cancellation, or an overdue charge. Active,
    /// started and inactive subscriptions only lend their code to their sales.
    pub fn event(&self) -> Option<HotmartEvent> {
        match self.status.as_str() {
            "CANCELLED_BY_CUSTOMER" | "CANCELLED_BY_SELLER" | "CANCELLED_BY_ADMIN" => {
                Some(HotmartEvent::SubscriptionCancellation)
            }
            "DELAYED" | "OVERDUE" => Some(HotmartEvent::PurchaseDelayed),
            _ => None,
        }
    }

    /// The subscription part of a deal's details.
    pub fn details(&self, recurrence_number: Option<i64>) -> Subscription {
        Subscription {
            subscriber_code: self.code.clone(),
            plan_name: self.plan_name.clone(),
            recurrence_number,
            next_charge_at: self.next_charge_at,
        }
    }
}

/// Which subscription a Sales History sale belongs to: the one started by its transaction,
/// else — for a renewal, whose transaction is its own — the buyer's latest subscription of
/// the product started no later than the sale.
#[derive(Debug, Default)]
pub struct SubscriptionIndex {
    by_transaction: HashMap<String, usize>,
    by_buyer: HashMap<(String, String), Vec<usize>>,
    pub subscriptions: Vec<RestSubscription>,
}

impl SubscriptionIndex {
    pub fn new(subscriptions: Vec<RestSubscription>) -> Self {
        let mut index = SubscriptionIndex::default();
        for (i, s) in subscriptions.iter().enumerate() {
            if let Some(tx) = &s.transaction {
                index.by_transaction.insert(tx.clone(), i);
            }
            if let (Some(email), Some(product)) = (&s.email, &s.product_id) {
                index
                    .by_buyer
                    .entry((email.clone(), product.clone()))
                    .or_default()
                    .push(i);
            }
        }
        for list in index.by_buyer.values_mut() {
            list.sort_by_key(|&i| subscriptions[i].accession_at);
        }
        index.subscriptions = subscriptions;
        index
    }

    /// The subscription of a Sales History item, if it has one.
    pub fn of_sale(&self, sale: &Value) -> Option<&RestSubscription> {
        let purchase = sale.get("purchase")?;
        if let Some(&i) = purchase
            .get("transaction")
            .and_then(text)
            .and_then(|tx| self.by_transaction.get(&tx))
        {
            return Some(&self.subscriptions[i]);
        }
        let recurring = purchase.get("is_subscription").and_then(Value::as_bool) == Some(true)
            || purchase
                .get("recurrency_number")
                .and_then(Value::as_i64)
                .is_some_and(|n| n > 1);
        if !recurring {
            return None;
        }
        let email = at(sale, &["buyer", "email"]).and_then(text)?.to_lowercase();
        let product = at(sale, &["product", "id"]).and_then(text)?;
        let sold_at = ["order_date", "approved_date"]
            .iter()
            .find_map(|k| purchase.get(*k)?.as_i64())
            .unwrap_or(i64::MAX);
        let list = self.by_buyer.get(&(email, product))?;
        list.iter()
            .rev()
            .map(|&i| &self.subscriptions[i])
            .find(|s| s.accession_at.is_none_or(|a| a <= sold_at))
            .or_else(|| list.first().map(|&i| &self.subscriptions[i]))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_buyer_entry_gives_phone_and_document() {
        let items = vec![
            json!({"transaction": "HP1", "users": [
                {"role": "PRODUCER", "user": {"email": "p@x.com", "cellphone": "+5511900000000"}},
                {"role": "BUYER", "user": {"email": "b@x.com", "name": "Bia", "cellphone": "",
                    "phone": "(11) 98888-7777", "documents": [{"value": "12345678909", "type": "CPF"}]}}
            ]}),
            json!({"transaction": "HP2", "users": [{"role": "PRODUCER", "user": {}}]}),
        ];
        let buyers = buyers(&items);
        assert_eq!(buyers.len(), 1, "no buyer entry, no buyer");
        let b = &buyers["HP1"];
        assert_eq!(b.phone.as_deref(), Some("+5511988887777"));
        assert_eq!(b.document.as_deref(), Some("12345678909"));
        assert_eq!(b.name.as_deref(), Some("Bia"));
    }

    #[test]
    fn renewals_find_their_subscription_by_buyer_and_product() {
        let sub = |code: &str, tx: &str, at: i64| {
            RestSubscription::of(&json!({"subscriber_code": code, "status": "ACTIVE",
                "transaction": tx, "accession_date": at,
                "product": {"id": 9}, "subscriber": {"email": "A@x.com"}}))
            .unwrap()
        };
        let index = SubscriptionIndex::new(vec![sub("S1", "HP1", 100), sub("S2", "HP5", 500)]);
        let sale = |tx: &str, at: i64, recurring: bool| {
            json!({"product": {"id": 9}, "buyer": {"email": "a@x.com"},
                   "purchase": {"transaction": tx, "order_date": at, "is_subscription": recurring}})
        };
        let code = |v: &Value| index.of_sale(v).map(|s| s.code.clone());
        assert_eq!(code(&sale("HP1", 100, true)).as_deref(), Some("S1"));
        assert_eq!(code(&sale("HP2", 300, true)).as_deref(), Some("S1"));
        assert_eq!(code(&sale("HP6", 900, true)).as_deref(), Some("S2"));
        assert_eq!(code(&sale("HP7", 900, false)), None, "a one-off sale");
    }

    #[test]
    fn statuses_that_are_events() {
        let of = |status: &str| {
            RestSubscription::of(&json!({"subscriber_code": "S", "status": status}))
                .unwrap()
                .event()
        };
        assert_eq!(
            of("CANCELLED_BY_CUSTOMER"),
            Some(HotmartEvent::SubscriptionCancellation)
        );
        assert_eq!(of("OVERDUE"), Some(HotmartEvent::PurchaseDelayed));
        assert_eq!(of("ACTIVE"), None);
    }
}
