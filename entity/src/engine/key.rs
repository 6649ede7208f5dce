//! The deal key: which events share a log and are folded together (see `docs/deal-engine.md`).

use std::fmt;

/// The product part of a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyProduct {
    /// The integration treats all its products as one (`mergeProducts`).
    Merged,
    /// One registered product (our id).
    Product(String),
    /// No registered product: info events without a product, or a product removed since.
    Unknown,
}

/// `(group, contact, product)`: one log of events and the deals folded from it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DealKey {
    pub group_id: String,
    pub contact_id: String,
    pub product: KeyProduct,
}

impl DealKey {
    /// The key of an event. Info events without a product never join a merged key: they
    /// attach to a deal of the contact instead.
    pub fn of_event(
        group_id: &str,
        contact_id: &str,
        product_id: Option<&str>,
        info: bool,
        merge_products: bool,
    ) -> Self {
        let product = match (product_id, info) {
            (None, true) => KeyProduct::Unknown,
            _ if merge_products => KeyProduct::Merged,
            (Some(id), _) => KeyProduct::Product(id.to_owned()),
            (None, false) => KeyProduct::Unknown,
        };
        DealKey {
            group_id: group_id.to_owned(),
            contact_id: contact_id.to_owned(),
            product,
        }
    }
}

impl DealKey {
    /// A key from its stored form.
    pub fn parse(stored: &str) -> Option<Self> {
        let mut parts = stored.split('|');
        let (group_id, contact_id) = (parts.next()?, parts.next()?);
        let product = match parts.next() {
            None => KeyProduct::Merged,
            Some("-") => KeyProduct::Unknown,
            Some(id) => KeyProduct::Product(id.to_owned()),
        };
        if parts.next().is_some() || group_id.is_empty() || contact_id.is_empty() {
            return None;
        }
        Some(DealKey {
            group_id: group_id.to_owned(),
            contact_id: contact_id.to_owned(),
            product,
        })
    }
}

/// The stored form (`deals.deal_key`, `deal_events.deal_key`, `deal_refs.deal_key`).
impl fmt::Display for DealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (group, contact) = (&self.group_id, &self.contact_id);
        match &self.product {
            KeyProduct::Merged => write!(f, "{group}|{contact}"),
            KeyProduct::Product(id) => write!(f, "{group}|{contact}|{id}"),
            KeyProduct::Unknown => write!(f, "{group}|{contact}|-"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_forms_are_distinct_per_product_rule() {
        let key = |p: Option<&str>, info, merged| DealKey::of_event("g", "c", p, info, merged);
        assert_eq!(key(Some("p"), false, false).to_string(), "g|c|p");
        assert_eq!(key(Some("p"), false, true).to_string(), "g|c");
        assert_eq!(key(None, true, true).to_string(), "g|c|-");
        assert_eq!(key(Some("p"), true, true).to_string(), "g|c");
        assert_eq!(key(None, false, false).to_string(), "g|c|-");
        for stored in ["g|c|p", "g|c", "g|c|-"] {
            assert_eq!(DealKey::parse(stored).unwrap().to_string(), stored);
        }
        assert_eq!(DealKey::parse("g"), None);
        assert_eq!(DealKey::parse("g|c|p|q"), None);
    }
}
