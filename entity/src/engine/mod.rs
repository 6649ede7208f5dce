//! The deal engine (see `docs/deal-engine.md`): a pure fold of a key's events — the
//! checkout's and the sellers' — into deals ([`fold`] over [`model`]), and the set-wise
//! persistence step around it ([`apply`]), which also writes the outbox of outbound
//! events ([`outbox`]). Modules depend one way: model → fold → log → plan → owners →
//! store → emit → apply; snapshot → outbox → emit.

pub mod apply;
mod emit;
pub mod fold;
#[cfg(test)]
mod fold_mixed;
pub mod key;
mod log;
pub mod model;
pub mod outbox;
mod owners;
mod plan;
pub mod snapshot;
mod store;
