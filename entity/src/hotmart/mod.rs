//! Hotmart's wire formats, parsed leniently: webhook v2 deliveries, and the deal details
//! they (and Sales History items) carry, and the REST lists that complete imported sales.

pub mod details;
pub mod json;
pub mod payload;
pub mod rest;
