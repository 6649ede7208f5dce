//! The webhook inbox: every authentic delivery, as received (`docs/webhooks.md`) — routed
//! ([`routing`]), stored ([`intake`]), processed through the deal engine ([`processing`]),
//! retried or replayed ([`retry`]) and read ([`queries`]). The files depend one way:
//! routing ← intake, routing ← retry, processing ← retry.

pub use crate::tables::enums::DeliveryStatus;

mod intake;
mod processing;
mod queries;
mod retry;
mod routing;

pub use intake::*;
pub use processing::*;
pub use queries::*;
pub use retry::*;
pub use routing::*;
