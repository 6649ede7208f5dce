//! Property tests of the fold over logs that mix sellers' actions with every kind of
//! checkout event (see `docs/deal-engine.md`, "People's actions"): the deals never depend
//! on the order the automatic events arrived in, a key has at most one open deal, and
//! pre-sale events never undo a payment or a seller's decision.

use proptest::prelude::*;

use super::fold::fold;
use super::model::*;
use crate::{
    sale::{CheckoutEvent, EventClass, SaleKind},
    tables::enums::DealStatus,
};

fn origin(event: CheckoutEvent) -> Option<OriginRule> {
    let (name, status) = event.default_origin();
    Some(OriginRule {
        origin_id: name.to_owned(),
        entry_status: status,
        first_stage_id: format!("{name}:s0"),
    })
}

fn action(kind: usize) -> Action {
    let stage = |n: &str| (format!("Carrinho abandonado:{n}"), "Carrinho abandonado");
    match kind {
        0 => {
            let (stage_id, origin_id) = stage("s1");
            Action::Move {
                origin_id: origin_id.to_owned(),
                stage_id,
            }
        }
        1 => Action::Win,
        2 => Action::Lose {
            reason: Some("Sem interesse".into()),
        },
        3 => {
            let (stage_id, origin_id) = stage("s0");
            Action::Reopen {
                origin_id: origin_id.to_owned(),
                stage_id,
            }
        }
        4 => Action::Note,
        5 => Action::OwnerChanged { claim: true },
        _ => Action::ActivityDone,
    }
}

/// An automatic event (`Some(event index)`, or info) or an action (`kind >= 100`).
fn event() -> impl Strategy<Value = (usize, i64, usize)> {
    (0..(CheckoutEvent::ALL.len() + 1 + 7), 0..40i64, 0..4usize)
}

fn build(specs: &[(usize, i64, usize)]) -> Vec<FoldEvent> {
    specs
        .iter()
        .enumerate()
        .map(|(i, &(k, at, tx))| {
            let n = CheckoutEvent::ALL.len();
            let kind = if k < n {
                Kind::Sale(SaleKind::Checkout(CheckoutEvent::ALL[k]))
            } else if k == n {
                Kind::Sale(SaleKind::Info)
            } else {
                Kind::Action(action(k - n - 1))
            };
            // Carts carry no sale reference; one transaction in four is unknown too.
            let refs = match (&kind, tx) {
                (Kind::Sale(SaleKind::Checkout(CheckoutEvent::CartAbandoned)), _) => vec![],
                (Kind::Action(_), _) | (_, 3) => vec![],
                (_, tx) => vec![format!("tx:{tx}")],
            };
            FoldEvent {
                dedup_id: format!("e{i:03}"),
                kind,
                occurred_at: at,
                refs,
                price: Some(1000 * (tx as i64 + 1)),
                currency: Some("BRL".into()),
                deal_hint: None,
            }
        })
        .collect()
}

/// A fold's deals without input indices: what a user sees.
fn shape(events: &[FoldEvent], outcome: &Outcome) -> Vec<String> {
    outcome
        .journeys
        .iter()
        .map(|j| {
            let mut ids: Vec<&str> = j
                .events
                .iter()
                .map(|&i| events[i].dedup_id.as_str())
                .collect();
            ids.sort();
            format!(
                "{} {} {:?} paid={} value={:?} closed={:?} held={} by_hand={} {:?}",
                j.origin_id,
                j.stage_id,
                j.status,
                j.paid,
                j.value,
                j.closed_at,
                j.held,
                j.won_by_hand,
                ids
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn the_arrival_order_of_automatic_events_changes_nothing(
        specs in prop::collection::vec(event(), 1..24),
        seed in any::<u64>(),
    ) {
        let events = build(&specs);
        let expected = shape(&events, &fold(&events, origin));
        // Shuffle the automatic events among themselves, actions staying where they are
        // (a person acts once, at a time; the checkouts' deliveries come in any order).
        let mut shuffled = events.clone();
        let automatic: Vec<usize> = (0..events.len())
            .filter(|&i| matches!(events[i].kind, Kind::Sale(_)))
            .collect();
        let mut order = automatic.clone();
        let mut state = seed | 1;
        for i in (1..order.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            order.swap(i, (state % (i as u64 + 1)) as usize);
        }
        for (slot, from) in automatic.iter().zip(&order) {
            shuffled[*slot] = events[*from].clone();
        }
        prop_assert_eq!(shape(&shuffled, &fold(&shuffled, origin)), expected);
    }

    #[test]
    fn one_open_deal_and_pre_sale_noise_undoes_nothing(
        specs in prop::collection::vec(event(), 1..24),
    ) {
        let mut events = build(&specs);
        let outcome = fold(&events, origin);
        let open = outcome.journeys.iter().filter(|j| j.status == DealStatus::Open).count();
        prop_assert!(open <= 1);
        // A pre-sale event after everything else, tied to a deal that is paid or that a
        // person moved or closed, only goes on its timeline.
        for (j, journey) in outcome.journeys.iter().enumerate() {
            let Some(tx) = journey.refs.iter().next() else { continue };
            if !(journey.paid || journey.held) {
                continue;
            }
            let mut later = events.clone();
            later.push(FoldEvent {
                dedup_id: "zzz".into(),
                kind: Kind::Sale(SaleKind::Checkout(CheckoutEvent::PaymentExpired)),
                occurred_at: 1_000,
                refs: vec![tx.clone()],
                price: None,
                currency: None,
                deal_hint: None,
            });
            let after = fold(&later, origin);
            prop_assert_eq!(after.events.last().unwrap(), &(Some(j), Effect::TimelineOnly));
            prop_assert_eq!(after.journeys[j].status, journey.status);
            prop_assert_eq!(&after.journeys[j].origin_id, &journey.origin_id);
        }
        // Money is the truth: a payment after everything else wins its deal.
        let tx = "tx:0".to_owned();
        events.push(FoldEvent {
            dedup_id: "zzz".into(),
            kind: Kind::Sale(SaleKind::Checkout(CheckoutEvent::PurchaseApproved)),
            occurred_at: 1_000,
            refs: vec![tx.clone()],
            price: Some(5),
            currency: None,
            deal_hint: None,
        });
        let paid = fold(&events, origin);
        let (Some(j), _) = *paid.events.last().unwrap() else {
            return Err(TestCaseError::fail("a payment always lands on a deal"));
        };
        prop_assert_eq!(paid.journeys[j].status, DealStatus::Won);
        prop_assert!(paid.journeys[j].refs.contains(&tx));
        prop_assert_eq!(CheckoutEvent::PurchaseApproved.class(), EventClass::Paid);
    }
}

/// The first action kind of [`event`]'s range (after the checkout events and info).
const ACTIONS: usize = CheckoutEvent::ALL.len() + 1;

#[test]
fn actions_apply_only_where_the_deal_allows() {
    let events = build(&[
        (0, 1, 0),
        (ACTIONS + 1, 2, 0),
        (ACTIONS + 2, 3, 0),
        (ACTIONS, 4, 0),
        (ACTIONS + 3, 5, 0),
    ]);
    let outcome = fold(&events, origin);
    let effects: Vec<Effect> = outcome.events.iter().map(|(_, e)| *e).collect();
    // Cart, won by hand, lost (already closed: timeline), move (closed: timeline), reopen.
    assert_eq!(
        effects,
        [
            Effect::Created,
            Effect::Won,
            Effect::TimelineOnly,
            Effect::TimelineOnly,
            Effect::Reopened
        ]
    );
    let journey = &outcome.journeys[0];
    assert_eq!(journey.status, DealStatus::Open);
    assert_eq!(journey.stage_id, "Carrinho abandonado:s0");
    assert_eq!(journey.first_action_at, Some(2));
}
