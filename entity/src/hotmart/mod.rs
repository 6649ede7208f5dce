//! Hotmart's adapter: its wire formats, parsed leniently into neutral sale events: webhook v2 deliveries, and the deal details
//! they (and Sales History items) carry, and the REST lists that complete imported sales.

pub mod details;
pub use crate::sale::json;
pub mod payload;
pub mod rest;
