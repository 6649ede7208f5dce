//! The fold: the deals of a key are a pure function of the key's events (see
//! `docs/deal-engine.md`, "The log and the fold").
//!
//! Events are applied in event-time order (ties: class rank, then event id), so the result
//! never depends on arrival order, retries, replays or the mix of webhooks and imports.

pub use crate::tables::enums::Effect;
use std::collections::BTreeSet;

use crate::{EventClass, HotmartEvent, hotmart_event::DealStatus};

/// One event of a key's log, as the fold sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldEvent {
    pub dedup_id: String,
    pub event: HotmartEvent,
    pub occurred_at: i64,
    /// Sale references (`tx:…`, `sub:…`).
    pub refs: Vec<String>,
    /// In cents.
    pub price: Option<i64>,
    pub currency: Option<String>,
}

/// Where an event puts a deal: the origin of its event and that origin's entry status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginRule {
    pub origin_id: String,
    pub entry_status: DealStatus,
}

pub const SUPERSEDED: &str = "Superseded by a newer deal of the same contact";

/// One computed deal ("journey").
#[derive(Debug, Clone, PartialEq)]
pub struct Journey {
    /// Indices (into the input) of the events on its timeline, in fold order.
    pub events: Vec<usize>,
    pub origin_id: String,
    pub status: DealStatus,
    pub paid: bool,
    /// In cents.
    pub value: Option<i64>,
    pub currency: Option<String>,
    pub refs: BTreeSet<String>,
    pub created_at: i64,
    pub closed_at: Option<i64>,
    pub last_event_at: i64,
    pub lost_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub journeys: Vec<Journey>,
    /// Per input event: the journey it landed on (if any) and what happened.
    pub events: Vec<(Option<usize>, Effect)>,
}

/// Event-time order with the tie-breaks of `docs/deal-engine.md` ("The log and the fold").
pub fn fold_order(events: &[FoldEvent]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&events[a], &events[b]);
        (x.occurred_at, x.event.class(), &x.dedup_id).cmp(&(
            y.occurred_at,
            y.event.class(),
            &y.dedup_id,
        ))
    });
    order
}

/// Where an info event goes among deals ordered oldest to newest (given by their sale
/// references): the newest deal holding one of the event's references, else the newest
/// deal; `None` when there is no deal (the event goes on the contact's timeline).
pub fn info_target(deals: &[&BTreeSet<String>], refs: &[String]) -> Option<usize> {
    deals
        .iter()
        .rposition(|held| refs.iter().any(|r| held.contains(r)))
        .or_else(|| deals.len().checked_sub(1))
}

/// Folds a key's events. `origin_for` gives the origin of each deal-moving event (or
/// `None` when the integration has no origin for it: such events only go on timelines).
pub fn fold(
    events: &[FoldEvent],
    origin_for: impl Fn(HotmartEvent) -> Option<OriginRule>,
) -> Outcome {
    let mut journeys: Vec<Journey> = Vec::new();
    let mut effects = vec![(None, Effect::ContactTimeline); events.len()];
    for index in fold_order(events) {
        let e = &events[index];
        // 1. Info events only go on a timeline.
        if e.event.class() == EventClass::Info {
            effects[index] = place_info(&mut journeys, e, index);
            continue;
        }
        // 2. Find the journey: the newest holding one of the event's references, else the
        //    newest open and unpaid one.
        let found = journeys
            .iter()
            .rposition(|j| e.refs.iter().any(|r| j.refs.contains(r)))
            .or_else(|| {
                journeys
                    .iter()
                    .rposition(|j| j.status == DealStatus::Open && !j.paid)
            });
        let origin = origin_for(e.event);
        // 3. Paid journeys are not reopened by pre-sale noise; events without an origin
        //    are recorded but move nothing.
        if let Some(j) = found
            && (origin.is_none() || (journeys[j].paid && e.event.class() == EventClass::PreSale))
        {
            record(&mut journeys[j], e, index);
            effects[index] = (Some(j), Effect::TimelineOnly);
            continue;
        }
        let Some(origin) = origin else {
            effects[index] = (None, Effect::ContactTimeline);
            continue;
        };
        // 4. Move (or create).
        let (j, effect) = match found {
            Some(j) if journeys[j].origin_id == origin.origin_id => (j, Effect::Updated),
            Some(j) => (j, Effect::Moved),
            None => {
                journeys.push(new_journey(&origin, e));
                (journeys.len() - 1, Effect::Created)
            }
        };
        move_to(&mut journeys[j], origin, e, index);
        effects[index] = (Some(j), effect);
        // A contact is in one origin per key for its current journey: an older open
        // deal is closed when another one becomes the open one.
        if journeys[j].status == DealStatus::Open {
            supersede_others(&mut journeys, j, e.occurred_at);
        }
    }
    Outcome {
        journeys,
        events: effects,
    }
}

/// Where an info event lands: on the timeline of the deal [`info_target`] picks, else on
/// the contact's.
fn place_info(journeys: &mut [Journey], e: &FoldEvent, index: usize) -> (Option<usize>, Effect) {
    let held: Vec<&BTreeSet<String>> = journeys.iter().map(|j| &j.refs).collect();
    match info_target(&held, &e.refs) {
        Some(j) => {
            journeys[j].events.push(index);
            (Some(j), Effect::TimelineOnly)
        }
        None => (None, Effect::ContactTimeline),
    }
}

/// Puts an event on a journey's timeline without moving it.
fn record(journey: &mut Journey, e: &FoldEvent, index: usize) {
    journey.events.push(index);
    journey.refs.extend(e.refs.iter().cloned());
    journey.last_event_at = journey.last_event_at.max(e.occurred_at);
}

fn new_journey(origin: &OriginRule, e: &FoldEvent) -> Journey {
    Journey {
        events: Vec::new(),
        origin_id: origin.origin_id.clone(),
        status: origin.entry_status,
        paid: false,
        value: None,
        currency: None,
        refs: BTreeSet::new(),
        created_at: e.occurred_at,
        closed_at: None,
        last_event_at: e.occurred_at,
        lost_reason: None,
    }
}

/// Moves a journey to the event's origin, with that origin's entry status.
fn move_to(journey: &mut Journey, origin: OriginRule, e: &FoldEvent, index: usize) {
    journey.events.push(index);
    journey.origin_id = origin.origin_id;
    journey.status = origin.entry_status;
    journey.closed_at = match origin.entry_status {
        DealStatus::Open => None,
        DealStatus::Won | DealStatus::Lost => Some(e.occurred_at),
    };
    journey.lost_reason = None;
    if let Some(price) = e.price {
        journey.value = Some(price);
        journey.currency = e.currency.clone().or(journey.currency.take());
    }
    journey.refs.extend(e.refs.iter().cloned());
    journey.paid |= e.event.class() == EventClass::Paid;
    journey.last_event_at = journey.last_event_at.max(e.occurred_at);
}

/// Closes every other open journey: superseded by journey `open` at `at`.
fn supersede_others(journeys: &mut [Journey], open: usize, at: i64) {
    for (k, other) in journeys.iter_mut().enumerate() {
        if k != open && other.status == DealStatus::Open {
            other.status = DealStatus::Lost;
            other.closed_at = Some(at);
            other.lost_reason = Some(SUPERSEDED.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use HotmartEvent::*;

    use super::*;

    fn origin(event: HotmartEvent) -> Option<OriginRule> {
        event.default_origin().map(|(name, status)| OriginRule {
            origin_id: name.to_owned(),
            entry_status: status,
        })
    }

    fn ev(id: &str, event: HotmartEvent, at: i64, refs: &[&str]) -> FoldEvent {
        FoldEvent {
            dedup_id: id.to_owned(),
            event,
            occurred_at: at,
            refs: refs.iter().map(|r| r.to_string()).collect(),
            price: None,
            currency: None,
        }
    }

    fn summary(outcome: &Outcome) -> Vec<(String, DealStatus, usize)> {
        outcome
            .journeys
            .iter()
            .map(|j| (j.origin_id.clone(), j.status, j.events.len()))
            .collect()
    }

    #[test]
    fn cart_then_boleto_then_approval_is_one_won_deal_in_any_order() {
        let events = vec![
            ev("a", PurchaseOutOfShoppingCart, 1, &[]),
            ev("b", PurchaseBilletPrinted, 2, &["tx:1"]),
            ev("c", PurchaseApproved, 3, &["tx:1"]),
        ];
        let expected = vec![("Purchase approved".to_owned(), DealStatus::Won, 3)];
        assert_eq!(summary(&fold(&events, origin)), expected);
        let reversed: Vec<_> = events.iter().rev().cloned().collect();
        assert_eq!(summary(&fold(&reversed, origin)), expected);
        let outcome = fold(&events, origin);
        assert_eq!(
            outcome.events.iter().map(|(_, e)| *e).collect::<Vec<_>>(),
            vec![Effect::Created, Effect::Moved, Effect::Moved]
        );
        assert_eq!(outcome.journeys[0].closed_at, Some(3));
    }

    #[test]
    fn approved_then_refunded_is_lost() {
        let events = vec![
            ev("a", PurchaseApproved, 1, &["tx:1"]),
            ev("b", PurchaseRefunded, 2, &["tx:1"]),
        ];
        assert_eq!(
            summary(&fold(&events, origin)),
            vec![("Refunded".into(), DealStatus::Lost, 2)]
        );
    }

    #[test]
    fn boleto_expiring_after_a_card_payment_stays_on_the_timeline() {
        let events = vec![
            ev("a", PurchaseBilletPrinted, 1, &["tx:1"]),
            ev("b", PurchaseApproved, 2, &["tx:2"]),
            ev("c", PurchaseExpired, 3, &["tx:1"]),
        ];
        let outcome = fold(&events, origin);
        assert_eq!(
            summary(&outcome),
            vec![("Purchase approved".into(), DealStatus::Won, 3)]
        );
        assert_eq!(outcome.events[2], (Some(0), Effect::TimelineOnly));
    }

    #[test]
    fn a_new_cart_after_a_won_deal_is_a_new_open_deal() {
        let events = vec![
            ev("a", PurchaseApproved, 1, &["tx:1"]),
            ev("b", PurchaseOutOfShoppingCart, 100, &[]),
        ];
        assert_eq!(
            summary(&fold(&events, origin)),
            vec![
                ("Purchase approved".into(), DealStatus::Won, 1),
                ("Abandoned cart".into(), DealStatus::Open, 1)
            ]
        );
    }

    #[test]
    fn overdue_renewal_then_paid_goes_back_to_won() {
        let events = vec![
            ev("a", PurchaseApproved, 1, &["tx:1", "sub:S"]),
            ev("b", PurchaseDelayed, 2, &["tx:2", "sub:S"]),
        ];
        assert_eq!(
            summary(&fold(&events, origin)),
            vec![("Payment overdue".into(), DealStatus::Open, 2)]
        );
        let mut events = events;
        events.push(ev("c", PurchaseApproved, 3, &["tx:2", "sub:S"]));
        let outcome = fold(&events, origin);
        assert_eq!(
            summary(&outcome),
            vec![("Purchase approved".into(), DealStatus::Won, 3)]
        );
        assert_eq!(outcome.journeys[0].closed_at, Some(3));
    }

    #[test]
    fn refused_card_then_other_product_approved_when_merged() {
        // With mergeProducts on, both products share one key and so one log.
        let events = vec![
            ev("a", PurchaseCanceled, 1, &["tx:A"]),
            ev("b", PurchaseApproved, 2, &["tx:B"]),
        ];
        assert_eq!(
            summary(&fold(&events, origin)),
            vec![("Purchase approved".into(), DealStatus::Won, 2)]
        );
    }

    #[test]
    fn info_events_attach_to_the_deal_of_their_sale_or_the_latest_or_the_contact() {
        let events = vec![
            ev("i0", ClubFirstAccess, 0, &[]),
            ev("a", PurchaseApproved, 1, &["sub:S"]),
            ev("b", PurchaseOutOfShoppingCart, 2, &[]),
            ev("i1", UpdateSubscriptionChargeDate, 3, &["sub:S"]),
            ev("i2", ClubModuleCompleted, 4, &[]),
        ];
        let outcome = fold(&events, origin);
        assert_eq!(outcome.events[0], (None, Effect::ContactTimeline));
        assert_eq!(outcome.events[3], (Some(0), Effect::TimelineOnly));
        assert_eq!(outcome.events[4], (Some(1), Effect::TimelineOnly));
        assert_eq!(
            outcome.journeys[0].status,
            DealStatus::Won,
            "info events move nothing"
        );
    }

    #[test]
    fn at_most_one_open_deal_per_key() {
        let events = vec![
            ev("a", PurchaseApproved, 1, &["sub:S"]),
            ev("b", PurchaseDelayed, 2, &["sub:S"]),
            ev("c", PurchaseOutOfShoppingCart, 3, &[]),
        ];
        let outcome = fold(&events, origin);
        let open = outcome
            .journeys
            .iter()
            .filter(|j| j.status == DealStatus::Open)
            .count();
        assert_eq!(open, 1);
        assert_eq!(outcome.journeys[0].lost_reason.as_deref(), Some(SUPERSEDED));
    }

    #[test]
    fn events_without_an_origin_move_nothing() {
        let only_approved =
            |event: HotmartEvent| (event == PurchaseApproved).then(|| origin(event).unwrap());
        let events = vec![
            ev("a", PurchaseApproved, 1, &["tx:1"]),
            ev("b", PurchaseRefunded, 2, &["tx:1"]),
        ];
        let outcome = fold(&events, only_approved);
        assert_eq!(
            summary(&outcome),
            vec![("Purchase approved".into(), DealStatus::Won, 2)]
        );
        assert_eq!(outcome.events[1], (Some(0), Effect::TimelineOnly));
    }

    #[test]
    fn price_sets_value_and_currency() {
        let mut approved = ev("a", PurchaseApproved, 1, &["tx:1"]);
        approved.price = Some(9700);
        approved.currency = Some("BRL".into());
        let outcome = fold(
            &[ev("c", PurchaseOutOfShoppingCart, 0, &[]), approved],
            origin,
        );
        assert_eq!(outcome.journeys[0].value, Some(9700));
        assert_eq!(outcome.journeys[0].currency.as_deref(), Some("BRL"));
    }
}
