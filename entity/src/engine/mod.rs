//! The deal engine (see `docs/deal-engine.md`): a pure fold of a key's events into deals
//! ([`fold`]), and the set-wise persistence step around it ([`apply`]).

pub mod apply;
pub mod fold;
pub mod key;
mod owners;
mod store;
