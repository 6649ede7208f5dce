//! What the fold reads and computes: the events of a key's log as the fold sees them, and
//! the deals ("journeys") it folds them into. Pure data, no I/O (see
//! `docs/deal-engine.md`).

use std::collections::BTreeSet;

pub use crate::tables::enums::Effect;
use crate::{
    sale::{EventClass, SaleKind},
    tables::enums::DealStatus,
};

/// A person's action on a deal: an event of the deal's key log like any other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// To a stage (of any origin of the group); only an open deal moves.
    Move {
        origin_id: String,
        stage_id: String,
    },
    Win,
    Lose {
        reason: Option<String>,
    },
    /// Open again, in this stage.
    Reopen {
        origin_id: String,
        stage_id: String,
    },
    Note,
    /// A new owner; `claim` when a member took an unowned deal.
    OwnerChanged {
        claim: bool,
    },
    ActivityDone,
}

impl Action {
    /// The stored kind (`deal_events.kind`) and the timeline's event name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::Move { .. } => "STAGE_MOVED",
            Action::Win => "WON",
            Action::Lose { .. } => "LOST",
            Action::Reopen { .. } => "REOPENED",
            Action::Note => "NOTE",
            Action::OwnerChanged { .. } => "OWNER_CHANGED",
            Action::ActivityDone => "ACTIVITY_DONE",
        }
    }

    /// The effect when the action applies.
    pub fn effect(&self) -> Effect {
        match self {
            Action::Move { .. } => Effect::StageMoved,
            Action::Win => Effect::Won,
            Action::Lose { .. } => Effect::Lost,
            Action::Reopen { .. } => Effect::Reopened,
            Action::Note => Effect::Note,
            Action::OwnerChanged { .. } => Effect::OwnerChanged,
            Action::ActivityDone => Effect::ActivityDone,
        }
    }

    /// A person worked the deal (the recovery report's "first human action"); an owner
    /// set by an admin is not work on the deal, a claim is.
    pub fn is_work(&self) -> bool {
        !matches!(self, Action::OwnerChanged { claim: false })
    }

    /// After a person moved or closed a deal, pre-sale noise no longer moves it.
    pub fn holds(&self) -> bool {
        matches!(
            self,
            Action::Move { .. } | Action::Win | Action::Lose { .. } | Action::Reopen { .. }
        )
    }
}

/// What an event of the log is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Sale(SaleKind),
    Action(Action),
}

impl Kind {
    /// Tie-break rank at equal times: pre-sale, paid, after-sale, info, then people.
    pub fn rank(&self) -> u8 {
        match self {
            Kind::Sale(kind) => kind.class() as u8,
            Kind::Action(_) => EventClass::Info as u8 + 1,
        }
    }
}

/// One event of a key's log, as the fold sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldEvent {
    pub dedup_id: String,
    pub kind: Kind,
    pub occurred_at: i64,
    /// Sale references (`tx:…`, `sub:…`).
    pub refs: Vec<String>,
    /// In cents.
    pub price: Option<i64>,
    pub currency: Option<String>,
    /// The deal the event was on after the last fold; for a new action, the deal it names.
    pub deal_hint: Option<String>,
}

/// Where a checkout event puts a deal: the origin of its event, that origin's entry
/// status, and the stage a deal entering it starts in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginRule {
    pub origin_id: String,
    pub entry_status: DealStatus,
    pub first_stage_id: String,
}

pub const SUPERSEDED: &str = "Substituído por um negócio mais novo do mesmo contato";

/// One computed deal ("journey").
#[derive(Debug, Clone, PartialEq)]
pub struct Journey {
    /// Indices (into the input) of the events on its timeline, in fold order.
    pub events: Vec<usize>,
    /// The events whose details the deal shows (not pre-sale noise on a paid deal).
    pub detail_events: Vec<usize>,
    pub origin_id: String,
    pub stage_id: String,
    /// When the stage was last set (by entering an origin, or by a person).
    pub stage_set_at: i64,
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
    /// A person moved or closed it: pre-sale events no longer move it.
    pub held: bool,
    /// Its status is WON because a person said so (no paid sale made it so).
    pub won_by_hand: bool,
    /// Its origin last changed by a checkout event (the rotation may pick a new owner).
    pub auto_moved: bool,
    pub began_pre_sale: bool,
    pub paid_at: Option<i64>,
    pub first_action_at: Option<i64>,
    /// The stored deals its events were on (for stable ids and actions' targets).
    pub hints: BTreeSet<String>,
}

/// What a fold computed.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub journeys: Vec<Journey>,
    /// Per input event: the journey it landed on (if any) and what happened.
    pub events: Vec<(Option<usize>, Effect)>,
}
