//! Hotmart's webhook events and the neutral checkout event each stands for
//! (`docs/deal-engine.md`, "Events and origins").

use crate::{
    DomainError,
    sale::{CheckoutEvent, EventClass},
    tables::enums::DealStatus,
};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    sea_orm::EnumIter,
    sea_orm::DeriveActiveEnum,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(sea_orm::sea_query::StringLen::None)",
    rename_all = "SCREAMING_SNAKE_CASE"
)]
pub enum HotmartEvent {
    PurchaseOutOfShoppingCart,
    PurchaseBilletPrinted,
    PurchaseCanceled,
    PurchaseExpired,
    PurchaseApproved,
    PurchaseComplete,
    PurchaseDelayed,
    PurchaseProtest,
    PurchaseRefunded,
    PurchaseChargeback,
    SubscriptionCancellation,
    SwitchPlan,
    UpdateSubscriptionChargeDate,
    ClubFirstAccess,
    ClubModuleCompleted,
}

use HotmartEvent::*;

impl HotmartEvent {
    pub const ALL: [HotmartEvent; 15] = [
        PurchaseOutOfShoppingCart,
        PurchaseBilletPrinted,
        PurchaseCanceled,
        PurchaseExpired,
        PurchaseApproved,
        PurchaseComplete,
        PurchaseDelayed,
        PurchaseProtest,
        PurchaseRefunded,
        PurchaseChargeback,
        SubscriptionCancellation,
        SwitchPlan,
        UpdateSubscriptionChargeDate,
        ClubFirstAccess,
        ClubModuleCompleted,
    ];

    /// The name exactly as Hotmart sends it in `event`.
    pub fn as_str(self) -> &'static str {
        match self {
            PurchaseOutOfShoppingCart => "PURCHASE_OUT_OF_SHOPPING_CART",
            PurchaseBilletPrinted => "PURCHASE_BILLET_PRINTED",
            PurchaseCanceled => "PURCHASE_CANCELED",
            PurchaseExpired => "PURCHASE_EXPIRED",
            PurchaseApproved => "PURCHASE_APPROVED",
            PurchaseComplete => "PURCHASE_COMPLETE",
            PurchaseDelayed => "PURCHASE_DELAYED",
            PurchaseProtest => "PURCHASE_PROTEST",
            PurchaseRefunded => "PURCHASE_REFUNDED",
            PurchaseChargeback => "PURCHASE_CHARGEBACK",
            SubscriptionCancellation => "SUBSCRIPTION_CANCELLATION",
            SwitchPlan => "SWITCH_PLAN",
            UpdateSubscriptionChargeDate => "UPDATE_SUBSCRIPTION_CHARGE_DATE",
            ClubFirstAccess => "CLUB_FIRST_ACCESS",
            ClubModuleCompleted => "CLUB_MODULE_COMPLETED",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|event| event.as_str() == value)
    }

    /// The neutral event this one stands for; `None` for info events (plan changes,
    /// billing dates, members-area activity), which only go on timelines.
    pub fn neutral(self) -> Option<CheckoutEvent> {
        Some(match self {
            PurchaseOutOfShoppingCart => CheckoutEvent::CartAbandoned,
            PurchaseBilletPrinted => CheckoutEvent::PaymentPending,
            PurchaseCanceled => CheckoutEvent::PaymentRefused,
            PurchaseExpired => CheckoutEvent::PaymentExpired,
            PurchaseApproved => CheckoutEvent::PurchaseApproved,
            PurchaseComplete => CheckoutEvent::PurchaseComplete,
            PurchaseDelayed => CheckoutEvent::PaymentOverdue,
            PurchaseProtest => CheckoutEvent::RefundRequested,
            PurchaseRefunded => CheckoutEvent::Refunded,
            PurchaseChargeback => CheckoutEvent::Chargeback,
            SubscriptionCancellation => CheckoutEvent::SubscriptionCanceled,
            SwitchPlan | UpdateSubscriptionChargeDate | ClubFirstAccess | ClubModuleCompleted => {
                return None;
            }
        })
    }

    /// The Hotmart event of a neutral one (every neutral event has one).
    pub fn of_neutral(event: CheckoutEvent) -> HotmartEvent {
        Self::ALL
            .into_iter()
            .find(|e| e.neutral() == Some(event))
            .expect("every neutral event has a Hotmart event")
    }

    /// What the engine sees of the event.
    pub fn kind(self) -> crate::sale::SaleKind {
        self.neutral()
            .map_or(crate::sale::SaleKind::Info, crate::sale::SaleKind::Checkout)
    }

    pub fn class(self) -> EventClass {
        self.neutral()
            .map_or(EventClass::Info, CheckoutEvent::class)
    }

    /// Deal-moving events get an origin; info events only go on timelines.
    pub fn moves_deals(self) -> bool {
        self.neutral().is_some()
    }

    /// Default origin name and entry status of a new integration's origin for this event;
    /// `None` for info events.
    pub fn default_origin(self) -> Option<(&'static str, DealStatus)> {
        self.neutral().map(CheckoutEvent::default_origin)
    }
}

/// Stored form of an event list: a JSON array of Hotmart names, in canonical order.
pub fn encode_events(events: &[HotmartEvent]) -> String {
    let mut sorted = events.to_vec();
    sorted.sort();
    sorted.dedup();
    serde_json::to_string(&sorted.iter().map(|e| e.as_str()).collect::<Vec<_>>())
        .expect("a list of strings serialises")
}

pub fn decode_events(stored: &str) -> Result<Vec<HotmartEvent>, DomainError> {
    let names: Vec<String> = serde_json::from_str(stored)
        .map_err(|err| DomainError::Internal(format!("stored event list is corrupt: {err}")))?;
    Ok(names
        .iter()
        .filter_map(|n| HotmartEvent::parse(n))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_round_trips_by_name() {
        for event in HotmartEvent::ALL {
            assert_eq!(HotmartEvent::parse(event.as_str()), Some(event));
        }
        assert_eq!(HotmartEvent::parse("PURCHASE_REFUSED"), None);
    }

    #[test]
    fn exactly_the_deal_moving_events_have_origins() {
        let with_origin: Vec<_> = HotmartEvent::ALL
            .into_iter()
            .filter(|e| e.default_origin().is_some())
            .collect();
        assert_eq!(with_origin.len(), 11);
        assert!(with_origin.iter().all(|e| e.moves_deals()));
        assert_eq!(
            PurchaseApproved.default_origin(),
            Some(("Compra aprovada", DealStatus::Won))
        );
        for event in CheckoutEvent::ALL {
            assert_eq!(HotmartEvent::of_neutral(event).neutral(), Some(event));
        }
        assert_eq!(
            PurchaseRefunded.default_origin().unwrap().1,
            DealStatus::Lost
        );
    }

    #[test]
    fn event_lists_are_stored_sorted_and_deduplicated() {
        let stored = encode_events(&[
            PurchaseApproved,
            PurchaseOutOfShoppingCart,
            PurchaseApproved,
        ]);
        assert_eq!(
            stored,
            r#"["PURCHASE_OUT_OF_SHOPPING_CART","PURCHASE_APPROVED"]"#
        );
        assert_eq!(
            decode_events(&stored).unwrap(),
            vec![PurchaseOutOfShoppingCart, PurchaseApproved]
        );
    }
}
