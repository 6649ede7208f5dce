//! The fold: the deals of a key are a pure function of the key's events — the checkout's
//! and the sellers' (see `docs/deal-engine.md`, "The log and the fold").
//!
//! Events are applied in event-time order (ties: class rank, people's actions last, then
//! event id), so the result never depends on arrival order, retries, replays or the mix
//! of webhooks, imports and people.

use std::collections::BTreeSet;

pub use super::model::*;
use crate::{
    sale::{CheckoutEvent, EventClass, SaleKind},
    tables::enums::DealStatus,
};

/// Event-time order with the tie-breaks of `docs/deal-engine.md` ("The log and the fold").
pub fn fold_order(events: &[FoldEvent]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&events[a], &events[b]);
        (x.occurred_at, x.kind.rank(), &x.dedup_id).cmp(&(
            y.occurred_at,
            y.kind.rank(),
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

/// Folds a key's events. `origin_for` gives the origin of each checkout event (or `None`
/// when the integration has no origin for it: such events only go on timelines).
pub fn fold(
    events: &[FoldEvent],
    origin_for: impl Fn(CheckoutEvent) -> Option<OriginRule>,
) -> Outcome {
    let mut journeys: Vec<Journey> = Vec::new();
    let mut effects = vec![(None, Effect::ContactTimeline); events.len()];
    for index in fold_order(events) {
        let e = &events[index];
        effects[index] = match &e.kind {
            Kind::Sale(SaleKind::Info) => place_info(&mut journeys, e, index),
            Kind::Sale(SaleKind::Checkout(event)) => {
                let origin = origin_for(*event);
                place_sale(&mut journeys, e, *event, origin, index)
            }
            Kind::Action(action) => place_action(&mut journeys, e, action, index),
        };
    }
    Outcome {
        journeys,
        events: effects,
    }
}

/// The journey a checkout event belongs to (see `docs/deal-engine.md`, "Finding the
/// deal"): the newest holding one of its references, else the newest open and unpaid one,
/// else — for a payment — the latest one, when a person closed it before anything was paid.
fn find_for_sale(journeys: &[Journey], e: &FoldEvent, class: EventClass) -> Option<usize> {
    journeys
        .iter()
        .rposition(|j| e.refs.iter().any(|r| j.refs.contains(r)))
        .or_else(|| {
            journeys
                .iter()
                .rposition(|j| j.status == DealStatus::Open && !j.paid)
        })
        .or_else(|| {
            // Rule 4 (and rule 1 for a deal lost by hand): the latest deal, closed by a
            // person before anything of it was paid.
            let latest = journeys.len().checked_sub(1)?;
            let j = &journeys[latest];
            let by_hand = j.held && !j.paid && j.status != DealStatus::Open;
            (class == EventClass::Paid && by_hand).then_some(latest)
        })
}

fn place_sale(
    journeys: &mut Vec<Journey>,
    e: &FoldEvent,
    event: CheckoutEvent,
    origin: Option<OriginRule>,
    index: usize,
) -> (Option<usize>, Effect) {
    let class = event.class();
    let found = find_for_sale(journeys, e, class);
    // Paid or held journeys are not moved by pre-sale noise; events without an origin
    // are recorded but move nothing.
    if let Some(j) = found {
        let journey = &journeys[j];
        let noise = class == EventClass::PreSale && (journey.paid || journey.held);
        if origin.is_none() || noise {
            let shows_details = !journey.paid;
            record(&mut journeys[j], e, index, shows_details);
            return (Some(j), Effect::TimelineOnly);
        }
    }
    let Some(origin) = origin else {
        return (None, Effect::ContactTimeline);
    };
    let (j, effect) = match found {
        Some(j) if journeys[j].origin_id == origin.origin_id => (j, Effect::Updated),
        Some(j) => (j, Effect::Moved),
        None => {
            journeys.push(new_journey(&origin, e, class));
            (journeys.len() - 1, Effect::Created)
        }
    };
    move_to(&mut journeys[j], origin, e, class, index);
    // A contact has one open deal per key: an older open deal is closed when another one
    // becomes the open one.
    if journeys[j].status == DealStatus::Open {
        supersede_others(journeys, j, e.occurred_at);
    }
    (Some(j), effect)
}

/// A person's action lands on the deal it names (the journey holding that deal), else on
/// the newest deal; it changes the deal only when the deal's state allows it (see
/// `docs/deal-engine.md`, "People's actions").
fn place_action(
    journeys: &mut [Journey],
    e: &FoldEvent,
    action: &Action,
    index: usize,
) -> (Option<usize>, Effect) {
    let named = e
        .deal_hint
        .as_ref()
        .and_then(|hint| journeys.iter().rposition(|j| j.hints.contains(hint)));
    let Some(j) = named.or_else(|| journeys.len().checked_sub(1)) else {
        return (None, Effect::ContactTimeline);
    };
    let at = e.occurred_at;
    let journey = &mut journeys[j];
    record(journey, e, index, false);
    if action.is_work() {
        journey.first_action_at = Some(journey.first_action_at.map_or(at, |t| t.min(at)));
    }
    let open = journey.status == DealStatus::Open;
    let applies = match action {
        Action::Move { .. } | Action::Win | Action::Lose { .. } => open,
        Action::Reopen { .. } => !open,
        Action::Note | Action::OwnerChanged { .. } | Action::ActivityDone => true,
    };
    if !applies {
        return (Some(j), Effect::TimelineOnly);
    }
    change(journey, action, at);
    if matches!(action, Action::Reopen { .. }) {
        supersede_others(journeys, j, at);
    }
    (Some(j), action.effect())
}

/// What an action that applies does to its journey.
fn change(journey: &mut Journey, action: &Action, at: i64) {
    match action {
        Action::Move {
            origin_id,
            stage_id,
        } => {
            journey.origin_id = origin_id.clone();
            journey.stage_id = stage_id.clone();
            journey.stage_set_at = at;
            journey.auto_moved = false;
        }
        Action::Win => {
            journey.status = DealStatus::Won;
            journey.closed_at = Some(at);
            journey.won_by_hand = !journey.paid;
        }
        Action::Lose { reason } => {
            journey.status = DealStatus::Lost;
            journey.closed_at = Some(at);
            journey.lost_reason = reason.clone();
            journey.won_by_hand = false;
        }
        Action::Reopen {
            origin_id,
            stage_id,
        } => {
            journey.status = DealStatus::Open;
            journey.closed_at = None;
            journey.lost_reason = None;
            journey.won_by_hand = false;
            journey.origin_id = origin_id.clone();
            journey.stage_id = stage_id.clone();
            journey.stage_set_at = at;
            journey.auto_moved = false;
        }
        Action::Note | Action::OwnerChanged { .. } | Action::ActivityDone => {}
    }
    if action.holds() {
        journey.held = true;
    }
}

/// Where an info event lands: on the timeline of the deal [`info_target`] picks, else on
/// the contact's.
fn place_info(journeys: &mut [Journey], e: &FoldEvent, index: usize) -> (Option<usize>, Effect) {
    let held: Vec<&BTreeSet<String>> = journeys.iter().map(|j| &j.refs).collect();
    match info_target(&held, &e.refs) {
        Some(j) => {
            journeys[j].events.push(index);
            journeys[j].hints.extend(e.deal_hint.iter().cloned());
            (Some(j), Effect::TimelineOnly)
        }
        None => (None, Effect::ContactTimeline),
    }
}

/// Puts an event on a journey's timeline without moving it.
fn record(journey: &mut Journey, e: &FoldEvent, index: usize, shows_details: bool) {
    journey.events.push(index);
    if shows_details {
        journey.detail_events.push(index);
    }
    journey.refs.extend(e.refs.iter().cloned());
    journey.hints.extend(e.deal_hint.iter().cloned());
    journey.last_event_at = journey.last_event_at.max(e.occurred_at);
}

fn new_journey(origin: &OriginRule, e: &FoldEvent, class: EventClass) -> Journey {
    Journey {
        events: Vec::new(),
        detail_events: Vec::new(),
        origin_id: origin.origin_id.clone(),
        stage_id: origin.first_stage_id.clone(),
        stage_set_at: e.occurred_at,
        status: origin.entry_status,
        paid: false,
        value: None,
        currency: None,
        refs: BTreeSet::new(),
        created_at: e.occurred_at,
        closed_at: None,
        last_event_at: e.occurred_at,
        lost_reason: None,
        held: false,
        won_by_hand: false,
        auto_moved: false,
        began_pre_sale: class == EventClass::PreSale,
        paid_at: None,
        first_action_at: None,
        hints: BTreeSet::new(),
    }
}

/// Moves a journey to the event's origin, with that origin's entry status; a journey
/// entering another origin starts in that origin's first stage.
fn move_to(
    journey: &mut Journey,
    origin: OriginRule,
    e: &FoldEvent,
    class: EventClass,
    index: usize,
) {
    journey.events.push(index);
    journey.detail_events.push(index);
    if journey.origin_id != origin.origin_id {
        journey.stage_id = origin.first_stage_id;
        journey.stage_set_at = e.occurred_at;
        journey.auto_moved = true;
    }
    journey.origin_id = origin.origin_id;
    journey.status = origin.entry_status;
    journey.closed_at = match origin.entry_status {
        DealStatus::Open => None,
        DealStatus::Won | DealStatus::Lost => Some(e.occurred_at),
    };
    journey.lost_reason = None;
    journey.held = false;
    journey.won_by_hand = false;
    if let Some(price) = e.price {
        journey.value = Some(price);
        journey.currency = e.currency.clone().or(journey.currency.take());
    }
    journey.refs.extend(e.refs.iter().cloned());
    journey.hints.extend(e.deal_hint.iter().cloned());
    if class == EventClass::Paid {
        journey.paid = true;
        journey.paid_at.get_or_insert(e.occurred_at);
    }
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
    use crate::HotmartEvent;

    fn origin(event: CheckoutEvent) -> Option<OriginRule> {
        let (name, status) = event.default_origin();
        Some(OriginRule {
            origin_id: name.to_owned(),
            entry_status: status,
            first_stage_id: format!("{name}:s0"),
        })
    }

    fn ev(id: &str, event: HotmartEvent, at: i64, refs: &[&str]) -> FoldEvent {
        FoldEvent {
            dedup_id: id.to_owned(),
            kind: Kind::Sale(event.kind()),
            occurred_at: at,
            refs: refs.iter().map(|r| r.to_string()).collect(),
            price: None,
            currency: None,
            deal_hint: None,
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
        let expected = vec![("Compra aprovada".to_owned(), DealStatus::Won, 3)];
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
            vec![("Reembolsado".into(), DealStatus::Lost, 2)]
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
            vec![("Compra aprovada".into(), DealStatus::Won, 3)]
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
                ("Compra aprovada".into(), DealStatus::Won, 1),
                ("Carrinho abandonado".into(), DealStatus::Open, 1)
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
            vec![("Pagamento atrasado".into(), DealStatus::Open, 2)]
        );
        let mut events = events;
        events.push(ev("c", PurchaseApproved, 3, &["tx:2", "sub:S"]));
        let outcome = fold(&events, origin);
        assert_eq!(
            summary(&outcome),
            vec![("Compra aprovada".into(), DealStatus::Won, 3)]
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
            vec![("Compra aprovada".into(), DealStatus::Won, 2)]
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
        let only_approved = |event: CheckoutEvent| {
            (event == CheckoutEvent::PurchaseApproved).then(|| origin(event).unwrap())
        };
        let events = vec![
            ev("a", PurchaseApproved, 1, &["tx:1"]),
            ev("b", PurchaseRefunded, 2, &["tx:1"]),
        ];
        let outcome = fold(&events, only_approved);
        assert_eq!(
            summary(&outcome),
            vec![("Compra aprovada".into(), DealStatus::Won, 2)]
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
