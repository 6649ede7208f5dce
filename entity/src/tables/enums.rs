//! The enums stored in columns, kept apart from the services that use them so that the
//! tables depend on no domain module.

#[derive(Debug, Clone, Copy, PartialEq, Eq, sea_orm::EnumIter, sea_orm::DeriveActiveEnum)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(sea_orm::sea_query::StringLen::None)",
    rename_all = "SCREAMING_SNAKE_CASE"
)]
pub enum DeliveryStatus {
    Pending,
    Processed,
    Duplicate,
    Ignored,
    Test,
    Failed,
    Rejected,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 7] = [
        Self::Pending,
        Self::Processed,
        Self::Duplicate,
        Self::Ignored,
        Self::Test,
        Self::Failed,
        Self::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Processed => "PROCESSED",
            Self::Duplicate => "DUPLICATE",
            Self::Ignored => "IGNORED",
            Self::Test => "TEST",
            Self::Failed => "FAILED",
            Self::Rejected => "REJECTED",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, sea_orm::EnumIter, sea_orm::DeriveActiveEnum)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(sea_orm::sea_query::StringLen::None)",
    rename_all = "SCREAMING_SNAKE_CASE"
)]
pub enum IntegrationStatus {
    Draft,
    Active,
    Paused,
}

impl IntegrationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "DRAFT",
            Self::Active => "ACTIVE",
            Self::Paused => "PAUSED",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, sea_orm::EnumIter, sea_orm::DeriveActiveEnum)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(sea_orm::sea_query::StringLen::None)",
    rename_all = "SCREAMING_SNAKE_CASE"
)]
pub enum ImportStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Canceled,
}

impl ImportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Canceled => "CANCELED",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Canceled)
    }
}

/// Where an import window is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sea_orm::EnumIter, sea_orm::DeriveActiveEnum)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(sea_orm::sea_query::StringLen::None)",
    rename_all = "SCREAMING_SNAKE_CASE"
)]
pub enum WindowStatus {
    /// Waiting for its job.
    Pending,
    /// Paging through the history (its cursor says where).
    Running,
    Done,
    Failed,
    /// Replaced by two halves after Hotmart found the query too slow.
    Split,
}

impl WindowStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::Done => "DONE",
            Self::Failed => "FAILED",
            Self::Split => "SPLIT",
        }
    }
}

/// Where a log event came from, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sea_orm::EnumIter, sea_orm::DeriveActiveEnum)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(sea_orm::sea_query::StringLen::None)",
    rename_all = "SCREAMING_SNAKE_CASE"
)]
pub enum EventSource {
    Webhook,
    Import,
    /// A person's action (a move, an outcome, a note…): an event of its deal's key log.
    User,
}

impl EventSource {
    pub fn as_str(self) -> &'static str {
        match self {
            EventSource::Webhook => "WEBHOOK",
            EventSource::Import => "IMPORT",
            EventSource::User => "USER",
        }
    }
}

/// What the fold did with one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sea_orm::EnumIter, sea_orm::DeriveActiveEnum)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(sea_orm::sea_query::StringLen::None)",
    rename_all = "SCREAMING_SNAKE_CASE"
)]
pub enum Effect {
    /// Started a new deal.
    Created,
    /// Moved a deal to another origin.
    Moved,
    /// Touched a deal in the origin it was already in.
    Updated,
    /// Only added to a deal's timeline.
    TimelineOnly,
    /// No deal to attach to: on the contact's timeline.
    ContactTimeline,
    /// A person moved the deal to a stage.
    StageMoved,
    /// A person marked the deal won.
    Won,
    /// A person marked the deal lost.
    Lost,
    /// A person reopened the deal.
    Reopened,
    /// A person (or a claim) changed the owner.
    OwnerChanged,
    /// A person's note.
    Note,
    /// A person completed an activity of the deal.
    ActivityDone,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Created => "CREATED",
            Effect::Moved => "MOVED",
            Effect::Updated => "UPDATED",
            Effect::TimelineOnly => "TIMELINE_ONLY",
            Effect::ContactTimeline => "CONTACT_TIMELINE",
            Effect::StageMoved => "STAGE_MOVED",
            Effect::Won => "WON",
            Effect::Lost => "LOST",
            Effect::Reopened => "REOPENED",
            Effect::OwnerChanged => "OWNER_CHANGED",
            Effect::Note => "NOTE",
            Effect::ActivityDone => "ACTIVITY_DONE",
        }
    }
}

/// Why an import run exists: asked for, or scheduled reconciliation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sea_orm::EnumIter, sea_orm::DeriveActiveEnum)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(sea_orm::sea_query::StringLen::None)",
    rename_all = "SCREAMING_SNAKE_CASE"
)]
pub enum ImportKind {
    Manual,
    Reconciliation,
}

impl ImportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "MANUAL",
            Self::Reconciliation => "RECONCILIATION",
        }
    }
}

/// The platform-neutral checkout events (see `docs/deal-engine.md`, "Events and origins"):
/// every platform's events map to one of these, or are info events.
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
pub enum CheckoutEvent {
    CartAbandoned,
    PaymentPending,
    PaymentRefused,
    PaymentExpired,
    PurchaseApproved,
    PurchaseComplete,
    PaymentOverdue,
    RefundRequested,
    Refunded,
    Chargeback,
    SubscriptionCanceled,
}

/// Which deals of a visible group a member sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sea_orm::EnumIter, sea_orm::DeriveActiveEnum)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(sea_orm::sea_query::StringLen::None)",
    rename_all = "SCREAMING_SNAKE_CASE"
)]
pub enum DealScope {
    All,
    Own,
    OwnAndUnowned,
}

impl DealScope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "ALL",
            Self::Own => "OWN",
            Self::OwnAndUnowned => "OWN_AND_UNOWNED",
        }
    }
}

/// What a seller schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sea_orm::EnumIter, sea_orm::DeriveActiveEnum)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(sea_orm::sea_query::StringLen::None)",
    rename_all = "SCREAMING_SNAKE_CASE"
)]
pub enum ActivityKind {
    Call,
    Whatsapp,
    Email,
    Meeting,
    Task,
}

impl ActivityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Call => "CALL",
            Self::Whatsapp => "WHATSAPP",
            Self::Email => "EMAIL",
            Self::Meeting => "MEETING",
            Self::Task => "TASK",
        }
    }
}

/// The entry status of a pipeline origin, and the status of a deal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sea_orm::EnumIter, sea_orm::DeriveActiveEnum)]
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
