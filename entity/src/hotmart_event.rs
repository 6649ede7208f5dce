//! Hotmart's webhook events and what the CRM does with each (`docs/deal-engine.md`).

use crate::DomainError;

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

/// How an event moves a deal. The derived order is the tie-break rank of the fold (see
/// `docs/deal-engine.md`, "The log and the fold").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EventClass {
    PreSale,
    Paid,
    AfterSale,
    Info,
}

/// The entry status of a pipeline origin, and the status of a deal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sea_orm::EnumIter, sea_orm::DeriveActiveEnum)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(sea_orm::sea_query::StringLen::None)",
    rename_all = "SCREAMING_SNAKE_CASE"
)]
pub enum DealStatus {
    Open,
    Won,
    Lost,
}

impl DealStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DealStatus::Open => "OPEN",
            DealStatus::Won => "WON",
            DealStatus::Lost => "LOST",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "OPEN" => Some(Self::Open),
            "WON" => Some(Self::Won),
            "LOST" => Some(Self::Lost),
            _ => None,
        }
    }
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

    pub fn class(self) -> EventClass {
        match self {
            PurchaseOutOfShoppingCart
            | PurchaseBilletPrinted
            | PurchaseCanceled
            | PurchaseExpired => EventClass::PreSale,
            PurchaseApproved | PurchaseComplete => EventClass::Paid,
            PurchaseDelayed
            | PurchaseProtest
            | PurchaseRefunded
            | PurchaseChargeback
            | SubscriptionCancellation => EventClass::AfterSale,
            SwitchPlan | UpdateSubscriptionChargeDate | ClubFirstAccess | ClubModuleCompleted => {
                EventClass::Info
            }
        }
    }

    /// Deal-moving events get an origin; info events only go on timelines.
    pub fn moves_deals(self) -> bool {
        self.class() != EventClass::Info
    }

    /// Default origin name and entry status (`docs/deal-engine.md`, "Events and origins");
    /// `None` for info events.
    pub fn default_origin(self) -> Option<(&'static str, DealStatus)> {
        let origin = match self {
            PurchaseOutOfShoppingCart => ("Abandoned cart", DealStatus::Open),
            PurchaseBilletPrinted => ("Boleto/Pix pending", DealStatus::Open),
            PurchaseCanceled => ("Card refused", DealStatus::Open),
            PurchaseExpired => ("Boleto/Pix expired", DealStatus::Open),
            PurchaseApproved => ("Purchase approved", DealStatus::Won),
            PurchaseComplete => ("Purchase complete", DealStatus::Won),
            PurchaseDelayed => ("Payment overdue", DealStatus::Open),
            PurchaseProtest => ("Refund requested", DealStatus::Open),
            PurchaseRefunded => ("Refunded", DealStatus::Lost),
            PurchaseChargeback => ("Chargeback", DealStatus::Lost),
            SubscriptionCancellation => ("Subscription canceled", DealStatus::Open),
            _ => return None,
        };
        Some(origin)
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
            Some(("Purchase approved", DealStatus::Won))
        );
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
