//! Hotmart's wire formats, parsed leniently (see `hotmart.md` in the spec).

pub mod payload;
pub mod phone;
