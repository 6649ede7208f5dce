//! The deal engine (PRODUCT.md §4): a pure fold of a key's events into deals
//! ([`fold`]), and the thin persistence step around it ([`apply`]).

pub mod apply;
pub mod fold;
