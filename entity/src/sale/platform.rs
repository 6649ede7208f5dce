//! The checkouts checkout-crm takes sales from, and what the CRM knows of each without
//! reading their formats (those are the adapters').

use super::CheckoutEvent;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Platform {
    Hotmart,
    Kiwify,
    Eduzz,
}

impl Platform {
    pub const ALL: [Platform; 3] = [Platform::Hotmart, Platform::Kiwify, Platform::Eduzz];

    /// The stored and API form.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Hotmart => "HOTMART",
            Platform::Kiwify => "KIWIFY",
            Platform::Eduzz => "EDUZZ",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == value)
    }

    /// The name people know it by.
    pub fn title(self) -> &'static str {
        match self {
            Platform::Hotmart => "Hotmart",
            Platform::Kiwify => "Kiwify",
            Platform::Eduzz => "Eduzz",
        }
    }

    /// The webhook path segment: `/webhooks/{segment}/{token}`.
    pub fn path(self) -> &'static str {
        match self {
            Platform::Hotmart => "hotmart",
            Platform::Kiwify => "kiwify",
            Platform::Eduzz => "eduzz",
        }
    }

    /// The integration's platform (an unknown stored value is Hotmart's, the first).
    pub fn of(integration: &crate::tables::integration::Model) -> Self {
        Self::parse(&integration.platform).unwrap_or(Platform::Hotmart)
    }

    /// Whether the platform sends the neutral event at all (§11.1's table: a "—" is not).
    pub fn sends(self, event: CheckoutEvent) -> bool {
        use CheckoutEvent::*;
        match self {
            Platform::Hotmart => true,
            Platform::Kiwify => {
                !matches!(event, PaymentExpired | PurchaseComplete | RefundRequested)
            }
            Platform::Eduzz => event != PurchaseComplete,
        }
    }

    /// Whether the platform signs its deliveries with a secret of the integration (an
    /// HMAC of the raw body); Hotmart authenticates by the products' hottoks instead.
    pub fn signs(self) -> bool {
        self != Platform::Hotmart
    }

    /// Whether an import from the platform's API can find the neutral event (Kiwify's
    /// sales list reports pending, refused, paid, refunded and charged-back sales; Eduzz
    /// is not imported; Hotmart's rules are the import's own).
    pub fn can_import(self, event: CheckoutEvent) -> bool {
        use CheckoutEvent::*;
        match self {
            Platform::Hotmart => true,
            Platform::Kiwify => matches!(
                event,
                PaymentPending | PaymentRefused | PurchaseApproved | Refunded | Chargeback
            ),
            Platform::Eduzz => false,
        }
    }
}
